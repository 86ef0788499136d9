//! The drive stage: one scenario step at a time. The steps every target
//! shares are here, once (`expect_error`, `sleep`, the BMC fault
//! switches); the machine steps go to one of two drivers, chosen once from
//! what deploy handed forward: the MAAS API when there is a MAAS
//! ([`maas::MaasDriver`], which owns the one MAAS client), the BMCs
//! directly when there is none ([`bmc::BmcDriver`]).

pub mod bmc;
pub mod create;
pub mod fleet;
pub mod heartbeat;
pub mod maas;

use crate::maas::MaasClient;
use crate::run::context::RunContext;
use crate::run::error::StageError;
use crate::run::lab::LabEnv;
use crate::run::lab::bmcs::bmc_fault;
use crate::scenario::{PowerFraction, Step, WaitPower, WaitPowerKnown, WaitStatus};

/// The steps a machine driver performs: what differs between going
/// through a MAAS and going to the BMCs directly.
pub enum MachineStep<'s> {
    /// On (power_on, power_cycle: MAAS powers on with `--cycle
    /// --on-if-off`, a cycle when on) or off.
    Power {
        machines: &'s str,
        on: bool,
    },
    WaitPower(&'s WaitPower),
    Commission {
        machines: &'s str,
    },
    /// Create the machines through the API with their power settings.
    Create {
        machines: &'s str,
    },
    WaitStatus(&'s WaitStatus),
    /// A share of the machines on or off, watched through the API (fleets).
    PowerFraction(&'s PowerFraction),
    /// Until MAAS knows every machine's power state (fleets).
    WaitPowerKnown(&'s WaitPowerKnown),
}

/// A power wait that ran out, saying what was seen last (both drivers).
fn power_wait_timed_out(
    machine: &str,
    want: &str,
    timeout: std::time::Duration,
    last: &str,
) -> StageError {
    StageError::Step(format!(
        "power did not become {want} within {}; last seen: {last}",
        humantime::format_duration(timeout)
    ))
    .on(machine)
}

/// Who performs the machine steps (power, waits, commission).
pub enum Driver {
    Bmc(bmc::BmcDriver),
    Maas(maas::MaasDriver),
}

impl Driver {
    /// The MAAS API when deploy handed a client forward, else the BMCs.
    pub fn new(cx: &RunContext<'_>, maas: Option<MaasClient>) -> Driver {
        match maas {
            Some(client) => Driver::Maas(maas::MaasDriver::new(client)),
            None => Driver::Bmc(bmc::BmcDriver::new(cx.plan)),
        }
    }

    /// The MAAS client, for observe, the target's checks and collection.
    pub fn maas(&self) -> Option<&MaasClient> {
        match self {
            Driver::Maas(d) => Some(d.client()),
            Driver::Bmc(_) => None,
        }
    }

    /// The MAAS driver, with what it learnt of system ids (observe).
    pub fn maas_driver(&mut self) -> Option<&mut maas::MaasDriver> {
        match self {
            Driver::Maas(d) => Some(d),
            Driver::Bmc(_) => None,
        }
    }

    /// Give the client up (stop: the target may still need it once).
    pub fn into_maas(self) -> Option<MaasClient> {
        match self {
            Driver::Maas(d) => Some(d.into_client()),
            Driver::Bmc(_) => None,
        }
    }

    pub async fn step(
        &mut self,
        cx: &RunContext<'_>,
        lab: &LabEnv,
        step: &Step,
    ) -> Result<(), StageError> {
        match step {
            Step::ExpectError(e) => {
                let re =
                    regex::Regex::new(&e.matches).map_err(|e| StageError::Step(e.to_string()))?;
                match Box::pin(self.step(cx, lab, &e.step)).await {
                    Ok(()) => Err(StageError::Step(format!(
                        "the step succeeded; it was expected to fail with /{}/",
                        e.matches
                    ))),
                    Err(err) => {
                        let msg = err.to_string();
                        if re.is_match(&msg) {
                            Ok(())
                        } else {
                            Err(StageError::Step(format!(
                                "the step failed, but not with /{}/: {msg}",
                                e.matches
                            )))
                        }
                    }
                }
            }
            Step::Sleep(d) => {
                tokio::time::sleep(d.0).await;
                Ok(())
            }
            Step::InjectFault(f) => {
                for m in cx.machines(&f.machine.0)? {
                    lab.fleet()?.set_fault(&m.name, bmc_fault(&f.fault))?;
                }
                Ok(())
            }
            Step::ClearFaults(r) => {
                for m in cx.machines(&r.0)? {
                    lab.fleet()?.clear_faults(&m.name)?;
                }
                Ok(())
            }
            Step::PressPowerButton(r) => {
                for m in cx.machines(&r.0)? {
                    if !m.vm {
                        return Err(StageError::Step(
                            "has no VM whose power button could be pressed".into(),
                        )
                        .on(&m.name));
                    }
                    crate::run::lab::vms::power_button(&m.domain, true).await?;
                }
                Ok(())
            }
            Step::UploadScript(u) => match self {
                Driver::Maas(d) => d.upload_script(u).await,
                Driver::Bmc(_) => Err(StageError::Step(
                    "upload_script needs a MAAS; this target has none".into(),
                )),
            },
            Step::PowerOn(r) | Step::PowerCycle(r) => {
                self.machine_step(
                    cx,
                    MachineStep::Power {
                        machines: &r.0,
                        on: true,
                    },
                )
                .await
            }
            Step::PowerOff(r) => {
                self.machine_step(
                    cx,
                    MachineStep::Power {
                        machines: &r.0,
                        on: false,
                    },
                )
                .await
            }
            Step::WaitPower(w) => self.machine_step(cx, MachineStep::WaitPower(w)).await,
            Step::Commission(r) => {
                self.machine_step(cx, MachineStep::Commission { machines: &r.0 })
                    .await
            }
            Step::CreateMachine(r) => {
                self.machine_step(cx, MachineStep::Create { machines: &r.0 })
                    .await
            }
            Step::WaitStatus(w) => self.machine_step(cx, MachineStep::WaitStatus(w)).await,
            Step::PowerFraction(p) => self.machine_step(cx, MachineStep::PowerFraction(p)).await,
            Step::WaitPowerKnown(w) => self.machine_step(cx, MachineStep::WaitPowerKnown(w)).await,
            Step::WaitPowerSettled(w) => match self {
                Driver::Maas(d) => d.wait_power_settled(cx, lab.fleet()?, w).await,
                Driver::Bmc(_) => Err(StageError::Step(format!(
                    "target {}: this step needs a MAAS target",
                    cx.plan.target
                ))),
            },
        }
    }
}

impl Driver {
    async fn machine_step(
        &mut self,
        cx: &RunContext<'_>,
        step: MachineStep<'_>,
    ) -> Result<(), StageError> {
        match self {
            Driver::Bmc(d) => d.step(cx, step).await,
            Driver::Maas(d) => d.step(cx, step).await,
        }
    }
}

/// A step's name for JUnit: `power_on node-1`, `wait_status all Ready`.
pub fn step_name(step: &Step) -> String {
    match step {
        Step::PowerOn(m) => format!("power_on {}", m.0),
        Step::PowerOff(m) => format!("power_off {}", m.0),
        Step::PowerCycle(m) => format!("power_cycle {}", m.0),
        Step::Commission(m) => format!("commission {}", m.0),
        Step::CreateMachine(m) => format!("create_machine {}", m.0),
        Step::PowerFraction(p) => format!(
            "power_fraction {} {:?} {}% within {}",
            p.machine.0,
            p.state,
            (p.fraction * 100.0).round(),
            humantime::format_duration(p.timeout.0)
        ),
        Step::WaitPowerKnown(w) => format!(
            "wait_power_known {} within {}",
            w.machine.0,
            humantime::format_duration(w.timeout.0)
        ),
        Step::WaitPowerSettled(w) => format!(
            "wait_power_settled {} within {}",
            w.machine.0,
            humantime::format_duration(w.timeout.0)
        ),
        Step::WaitStatus(w) => format!(
            "wait_status {} {:?} within {}",
            w.machine.0,
            w.status,
            humantime::format_duration(w.timeout.0)
        ),
        Step::WaitPower(w) => format!(
            "wait_power {} {:?} within {}",
            w.machine.0,
            w.state,
            humantime::format_duration(w.timeout.0)
        ),
        Step::InjectFault(f) => format!("inject_fault {}", f.machine.0),
        Step::ClearFaults(m) => format!("clear_faults {}", m.0),
        Step::PressPowerButton(m) => format!("press_power_button {}", m.0),
        Step::UploadScript(u) => format!("upload_script {}", u.name),
        Step::Sleep(d) => format!("sleep {}", humantime::format_duration(d.0)),
        Step::ExpectError(e) => format!("{} fails with /{}/", step_name(&e.step), e.matches),
    }
}
