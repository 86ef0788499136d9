//! Machine steps without a MAAS (target none): the harness plays the rack,
//! running FreeIPMI with MAAS's flags and retries inside the lab namespace.

use std::time::{Duration, Instant};

use crate::maas::types::PowerState as MaasPower;
use crate::plan::{MachinePlan, Plan};
use crate::run::context::RunContext;
use crate::run::drive::MachineStep;
use crate::run::error::{StageError, all_ok};
use crate::run::lab::bmcs::ipmi_params;
use crate::scenario::PowerState;
use crate::targets::sim::power::{IpmiPowerDriver, PowerAction, PowerDriverConfig};

pub struct BmcDriver {
    power: IpmiPowerDriver,
}

impl BmcDriver {
    pub fn new(plan: &Plan) -> BmcDriver {
        let power = IpmiPowerDriver::new(PowerDriverConfig {
            netns: Some(plan.host.netns.clone()),
            // MAAS's waits (4,4,8,8,16,16,32,32) per unit, as the sim's rack
            // does: the scenario's `sim.power_wait_unit` (a quarter second
            // by default, `maas`: 1 s).
            wait_unit: plan.lab.sim.power_wait_unit(),
            command_timeout: Duration::from_secs(30),
            ..PowerDriverConfig::default()
        });
        BmcDriver { power }
    }

    pub async fn step(
        &mut self,
        cx: &RunContext<'_>,
        step: MachineStep<'_>,
    ) -> Result<(), StageError> {
        match step {
            MachineStep::Power { machines, on: true } => {
                self.power_all(cx, machines, PowerAction::On).await
            }
            MachineStep::Power {
                machines,
                on: false,
            } => self.power_all(cx, machines, PowerAction::Off).await,
            MachineStep::WaitPower(w) => {
                let want = match w.state {
                    PowerState::On => MaasPower::On,
                    PowerState::Off => MaasPower::Off,
                };
                for m in cx.machines(&w.machine.0)? {
                    self.wait_power(m, want, w.timeout.0).await?;
                }
                Ok(())
            }
            MachineStep::Commission { .. }
            | MachineStep::Create { .. }
            | MachineStep::PowerFraction(_)
            | MachineStep::WaitPowerKnown(_)
            | MachineStep::WaitStatus(_) => Err(StageError::Step(format!(
                "target {}: this step needs a MAAS target",
                cx.plan.target
            ))),
        }
    }

    async fn power_all(
        &self,
        cx: &RunContext<'_>,
        name: &str,
        action: PowerAction,
    ) -> Result<(), StageError> {
        let ms = cx.machines(name)?;
        let runs = ms.iter().map(|m| {
            let params = ipmi_params(m);
            async move {
                self.power
                    .perform(&m.name, &params, action, |n, e, wait| tracing::info!(machine = %m.name, attempt = n, error = %e, ?wait, "power retry"))
                    .await
                    .map_err(|e| StageError::Step(format!("power {action:?}: {e}")).on(&m.name))
            }
        });
        all_ok(runs).await
    }

    /// Poll what the rack would see (ipmipower --stat) until `want`.
    async fn wait_power(
        &self,
        m: &MachinePlan,
        want: MaasPower,
        timeout: Duration,
    ) -> Result<(), StageError> {
        let params = ipmi_params(m);
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.power.query(&params).await {
                Ok(s) if s == want => return Ok(()),
                Ok(s) => format!("power {}", s.as_str()),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(super::power_wait_timed_out(
                    &m.name,
                    want.as_str(),
                    timeout,
                    &last,
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
