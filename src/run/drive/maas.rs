//! Machine steps through the MAAS API (sim, external, chart): the one MAAS
//! client of the run, and the system ids learnt from it. A machine MAAS
//! does not know yet is powered at its power button (libvirt), as a
//! person starts MAAS's enlistment.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::maas::client::{CommissionOptions, MaasClient};
use crate::maas::types::{Machine, NodeStatus, PowerState as MaasPower};
use crate::plan::MachinePlan;
use crate::run::context::RunContext;
use crate::run::drive::MachineStep;
use crate::run::error::{StageError, all_ok, one_or_many};
use crate::run::lab::vms::{self, console_path, last_console_line};
use crate::scenario::PowerState;

/// How often waits poll the API.
pub const POLL: Duration = Duration::from_secs(2);

pub struct MaasDriver {
    client: MaasClient,
    /// Plan machine name -> system_id, once MAAS knows the machine.
    system_ids: HashMap<String, String>,
    /// What the fleet steps measured (observe writes it out); boxed, as
    /// most runs have no fleet.
    pub fleet: Box<super::fleet::FleetLog>,
}

/// The machine MAAS knows by one of the plan machine's MACs.
pub fn machine_with_macs<'a>(machines: &'a [Machine], m: &MachinePlan) -> Option<&'a Machine> {
    let ours = |mac: &str| m.nics.iter().any(|n| n.mac.eq_ignore_ascii_case(mac));
    machines.iter().find(|x| {
        x.interface_set.iter().any(|i| ours(&i.mac_address))
            || x.boot_interface
                .as_ref()
                .is_some_and(|i| ours(&i.mac_address))
    })
}

impl MaasDriver {
    pub fn new(client: MaasClient) -> MaasDriver {
        MaasDriver {
            client,
            system_ids: HashMap::new(),
            fleet: Default::default(),
        }
    }

    pub fn client(&self) -> &MaasClient {
        &self.client
    }

    pub fn into_client(self) -> MaasClient {
        self.client
    }

    /// The machine's system_id, looked up by its MACs once MAAS has it.
    pub async fn system_id(&mut self, m: &MachinePlan) -> Result<Option<String>, StageError> {
        if let Some(id) = self.system_ids.get(&m.name) {
            return Ok(Some(id.clone()));
        }
        let machines = self.client.machines().await?;
        Ok(machine_with_macs(&machines, m).map(|x| {
            self.system_ids.insert(m.name.clone(), x.system_id.clone());
            x.system_id.clone()
        }))
    }

    async fn ids_of<'p>(
        &mut self,
        cx: &RunContext<'p>,
        name: &str,
    ) -> Result<Vec<(&'p MachinePlan, Option<String>)>, StageError> {
        let ms = cx.machines(name)?;
        // One list for all the machines not learnt yet (a fleet has 1,000).
        if ms.iter().any(|m| !self.system_ids.contains_key(&m.name)) {
            let known = self.client.machines().await?;
            for m in &ms {
                if let Some(x) = machine_with_macs(&known, m) {
                    self.system_ids.insert(m.name.clone(), x.system_id.clone());
                }
            }
        }
        Ok(ms
            .into_iter()
            .map(|m| (m, self.system_ids.get(&m.name).cloned()))
            .collect())
    }

    /// Until MAAS shows each machine in its BMC's chassis state (the
    /// `wait_power_settled` step; the BMCs are the lab's).
    pub async fn wait_power_settled(
        &mut self,
        cx: &RunContext<'_>,
        bmcs: &crate::bmc::FleetHandle,
        w: &crate::scenario::WaitPowerKnown,
    ) -> Result<(), StageError> {
        let ms = cx.machines(&w.machine.0)?;
        let chassis = |name: &str| bmcs.power_state(name).ok();
        super::fleet::wait_power_settled(&self.client, &mut self.fleet, &ms, &chassis, w.timeout.0)
            .await
    }

    pub async fn step(
        &mut self,
        cx: &RunContext<'_>,
        step: MachineStep<'_>,
    ) -> Result<(), StageError> {
        match step {
            MachineStep::Power { machines, on } => self.power(cx, machines, on).await,
            MachineStep::Commission { machines } => {
                let mut errors = Vec::new();
                for (m, id) in self.ids_of(cx, machines).await? {
                    match id {
                        None => errors.push(StageError::Step("MAAS does not know this machine yet (not enlisted); power it on and wait for New first".into()).on(&m.name)),
                        Some(id) => {
                            if let Err(e) = self.client.commission(&id, &CommissionOptions::default()).await {
                                errors.push(StageError::Step(format!("commission: {e}")).on(&m.name));
                            }
                        }
                    }
                }
                one_or_many(errors)
            }
            MachineStep::Create { machines } => self.create(cx, machines).await,
            MachineStep::WaitPowerKnown(w) => {
                let ms = cx.machines(&w.machine.0)?;
                super::fleet::wait_power_known(&self.client, &mut self.fleet, &ms, w.timeout.0)
                    .await
            }
            MachineStep::PowerFraction(p) => {
                let ms = cx.machines(&p.machine.0)?;
                // Learn the ids first (one list).
                self.ids_of(cx, &p.machine.0).await?;
                super::fleet::power_fraction(
                    &self.client,
                    &mut self.fleet,
                    &self.system_ids,
                    &ms,
                    p,
                )
                .await
            }
            MachineStep::WaitStatus(w) => {
                let want = NodeStatus(w.status.code() as i32);
                let runs = cx
                    .machines(&w.machine.0)?
                    .into_iter()
                    .map(|m| self.wait_status_one(cx, m, want, w.timeout.0));
                all_ok(runs).await
            }
            MachineStep::WaitPower(w) => {
                let want = match w.state {
                    PowerState::On => MaasPower::On,
                    PowerState::Off => MaasPower::Off,
                };
                let runs = cx
                    .machines(&w.machine.0)?
                    .into_iter()
                    .map(|m| self.wait_power_one(m, want, w.timeout.0));
                all_ok(runs).await
            }
        }
    }

    /// POST scripts/: the scenario's script, as a user uploads one.
    pub async fn upload_script(&self, u: &crate::scenario::UploadScript) -> Result<(), StageError> {
        let kind = match u.script_type {
            crate::scenario::ScriptType::Commissioning => "commissioning",
        };
        self.client
            .create_script(&u.name, kind, &u.script)
            .await
            .map(drop)
            .map_err(|e| StageError::Step(format!("uploading the script {}: {e}", u.name)))
    }

    /// Known machines: the MAAS API (the rack then drives the BMC). Unknown
    /// machines: the power button (libvirt), as MAAS's enlistment starts.
    async fn power(&mut self, cx: &RunContext<'_>, name: &str, on: bool) -> Result<(), StageError> {
        let mut errors = Vec::new();
        for (m, id) in self.ids_of(cx, name).await? {
            let r = match id {
                Some(id) => if on {
                    self.client.power_on(&id).await.map(drop)
                } else {
                    self.client.power_off(&id).await.map(drop)
                }
                .map_err(StageError::from),
                None if m.vm => vms::power_button(&m.domain, on).await,
                None => Err(StageError::Step(
                    "MAAS does not know this machine and it has no VM to switch on".to_string(),
                )),
            };
            if let Err(e) = r {
                errors.push(
                    StageError::Step(format!("power {}: {e}", if on { "on" } else { "off" }))
                        .on(&m.name),
                );
            }
        }
        one_or_many(errors)
    }

    /// An operator's create of each machine (see `create`), not yet known
    /// to MAAS; the system ids are learnt from the answers.
    async fn create(&mut self, cx: &RunContext<'_>, name: &str) -> Result<(), StageError> {
        let mut errors = Vec::new();
        let started = Instant::now();
        self.fleet.first_create.get_or_insert(started);
        for (m, id) in self.ids_of(cx, name).await? {
            if let Some(id) = id {
                errors.push(
                    StageError::Step(format!(
                        "create_machine: MAAS already has this machine ({id}); allowed: machines MAAS does not know yet"
                    ))
                    .on(&m.name),
                );
                continue;
            }
            let t = Instant::now();
            let r = self
                .client
                .create_machine(&super::create::create_request(m), false)
                .await;
            self.fleet.create.push(t.elapsed());
            match r {
                Ok(created) => {
                    self.system_ids.insert(m.name.clone(), created.system_id);
                }
                Err(e) => errors.push(StageError::Step(format!("create_machine: {e}")).on(&m.name)),
            }
        }
        self.fleet.create_total += started.elapsed();
        one_or_many(errors)
    }

    /// The system id without learning it (waits run concurrently, sharing
    /// the driver).
    async fn find_id(&self, m: &MachinePlan) -> Result<Option<String>, StageError> {
        if let Some(id) = self.system_ids.get(&m.name) {
            return Ok(Some(id.clone()));
        }
        let machines = self.client.machines().await?;
        Ok(machine_with_macs(&machines, m).map(|x| x.system_id.clone()))
    }

    async fn wait_status_one(
        &self,
        cx: &RunContext<'_>,
        m: &MachinePlan,
        want: NodeStatus,
        timeout: Duration,
    ) -> Result<(), StageError> {
        let console = || {
            last_console_line(&console_path(&cx.plan.host.vm_dir, m))
                .unwrap_or_else(|| "nothing".into())
        };
        let deadline = Instant::now() + timeout;
        let mut napper = self.client.napper();
        // First MAAS must know the machine (enlistment creates it).
        let id = loop {
            match self.find_id(m).await {
                Ok(Some(id)) => break id,
                Ok(None) | Err(_) if Instant::now() < deadline => napper.nap(POLL).await,
                Ok(None) => {
                    return Err(StageError::Step(format!(
                        "did not reach {want} within {}; last seen: MAAS has no machine with its MACs (not enlisted); the console's last line: {:?}",
                        humantime::format_duration(timeout),
                        console()
                    ))
                    .on(&m.name));
                }
                Err(e) => return Err(e.on(&m.name)),
            }
        };
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        self.client
            .wait_for_status(&id, want, left)
            .await
            .map(drop)
            .map_err(|e| {
                StageError::Step(format!("{e}; the console's last line: {:?}", console()))
                    .on(&m.name)
            })
    }

    async fn wait_power_one(
        &self,
        m: &MachinePlan,
        want: MaasPower,
        timeout: Duration,
    ) -> Result<(), StageError> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.find_id(m).await {
                // Known: what the rack's BMC query says (op=query_power_state).
                Ok(Some(id)) => match self.client.query_power_state(&id).await {
                    Ok(s) if s == want => return Ok(()),
                    Ok(s) => format!("power {} (queried through the BMC)", s.as_str()),
                    Err(e) => e.to_string(),
                },
                // Unknown: the VM itself.
                Ok(None) => match vms::is_running(&m.domain).await {
                    Ok(on) if on == (want == MaasPower::On) => return Ok(()),
                    Ok(on) => format!("VM {} (not enlisted yet)", if on { "on" } else { "off" }),
                    Err(e) => e.to_string(),
                },
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
            // MAAS learns the power state from the BMC, which reads the
            // VM: when the VM turns, ask again at once.
            if m.vm {
                vms::nap_until_vm_turns(&m.domain, want == MaasPower::On, POLL).await;
            } else {
                tokio::time::sleep(POLL).await;
            }
        }
    }
}
