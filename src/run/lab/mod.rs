//! The lab stage, once for every target: the run's directories, the lab
//! network (a bridge of our own, or the user's bridge joined), the BMC
//! fleet inside the lab namespace, then the libvirt domains and their
//! disks. Each resource is registered with teardown before it exists.
//!
//! The target says only how its lab differs ([`LabShape`]); nothing here
//! knows which target runs.

pub mod bmcs;
pub mod vms;

use crate::bmc::{Fleet, FleetHandle};
use crate::lab::events::EventLog;
use crate::lab::net::{Ipv4Subnet, Lab, LabSpec, SegmentSpec};
use crate::lab::ra::{RaConfig, RaSender};
use crate::lab::vm;
use crate::plan::{MachinePlan, Plan};
use crate::run::context::RunContext;
use crate::run::error::StageError;
use crate::run::state::Resource;

/// How a target's lab differs from the default (our own bridge, the
/// rack's address on it, VMs allowed).
#[derive(Debug, Clone, Copy)]
pub struct LabShape {
    pub network: Network,
    /// Whether a MAAS boots the VMs; without one, VMs are refused.
    pub vms: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// A bridge of our own; `rack_ip` says whether the lab namespace holds
    /// the rack's address (not on chart: the rack sits in the kind node).
    Own { rack_ip: bool },
    /// The user's bridge (external): our namespace joins it with a veth
    /// holding the BMC addresses; the bridge is left as found.
    JoinExisting,
}

/// What the lab stage made and later stages use.
#[derive(Default)]
pub struct LabEnv {
    lab: Option<Lab>,
    fleet: Option<FleetHandle>,
    router_adverts: Option<RaSender>,
}

/// Unsolicited router advertisements this often; a solicitation is
/// answered at once.
const RA_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// The lab network of a plan with our own bridge.
pub fn lab_spec(p: &Plan, rack_ip: bool) -> Result<LabSpec, StageError> {
    let subnet = Ipv4Subnet::new(p.lab.subnet, p.lab.prefix_len)?;
    let mut addresses = if rack_ip {
        vec![p.lab.rack_ip]
    } else {
        Vec::new()
    };
    addresses.extend(p.machines.iter().map(|m| m.bmc.lan_ip));
    Ok(LabSpec {
        run_id: p.run_id.to_string(),
        netns: p.host.netns.clone(),
        segments: vec![SegmentSpec {
            bridge: p.host.bridge.clone(),
            veth_host: p.host.veth_host.clone(),
            veth_lab: p.host.veth_lab.clone(),
            subnet,
            addresses,
        }],
    })
}

impl LabEnv {
    /// The lab network, then the BMCs on it, then the VMs behind them.
    pub async fn up(&mut self, cx: &RunContext<'_>, shape: LabShape) -> Result<(), StageError> {
        let p = cx.plan;
        cx.register(Resource::Dir {
            path: p.host.vm_dir.clone(),
        })?;
        cx.register(Resource::Netns {
            name: p.host.netns.clone(),
        })?;
        if let Network::Own { .. } = shape.network {
            cx.register(Resource::Link {
                name: p.host.bridge.clone(),
            })?;
        }
        cx.register(Resource::Link {
            name: p.host.veth_host.clone(),
        })?;
        // Under the VM root, where libvirt-qemu may open files.
        vm::run_dir(p.run_id.as_str()).map_err(StageError::file(&p.host.vm_dir))?;
        for m in &p.machines {
            let dir = p.host.run_dir.join("machines").join(&m.name);
            std::fs::create_dir_all(&dir).map_err(StageError::file(dir))?;
        }
        match shape.network {
            Network::Own { rack_ip } => self.lab = Some(Lab::up(&lab_spec(p, rack_ip)?).await?),
            Network::JoinExisting => {
                let addresses: Vec<String> = p
                    .machines
                    .iter()
                    .map(|m| format!("{}/{}", m.bmc.lan_ip, p.lab.prefix_len))
                    .collect();
                crate::lab::net::join_existing_bridge(
                    &p.host.netns,
                    &p.host.bridge,
                    &p.host.veth_host,
                    &p.host.veth_lab,
                    &addresses,
                )
                .await
                .map_err(|e| StageError::Lab(format!("--lab-bridge {}: {e}", p.host.bridge)))?;
            }
        }
        self.router_adverts_up(p).await?;
        if !shape.vms && p.machines.iter().any(|m| m.vm) {
            return Err(StageError::Lab(format!(
                "target {}: machines with VMs need a MAAS target (sim, chart, external) to boot from",
                p.target
            )));
        }
        self.bmcs_up(p).await?;
        self.domains_up(cx).await
    }

    /// IPv6 router advertisements on the boot network, from the lab side:
    /// iPXE waits about 16 s for one before it boots when none comes. The
    /// lab is our network (a real rack sends none, so the sim's rack does
    /// not either); lifetime 0 and no prefix, so no guest gets a route.
    async fn router_adverts_up(&mut self, p: &Plan) -> Result<(), StageError> {
        let events = EventLog::new(None)
            .map_err(|e| StageError::Lab(format!("router advertisements: {e}")))?;
        let sender = crate::lab::ra::start_ra(
            &p.host.netns,
            RaConfig {
                name: "lab-ra".into(),
                interface: p.host.veth_lab.clone(),
                interval: RA_INTERVAL,
            },
            events,
        )
        .await
        .map_err(|e| StageError::Lab(e.to_string()))?;
        self.router_adverts = Some(sender);
        Ok(())
    }

    /// The BMC fleet inside the lab namespace, with the plan's faults set.
    async fn bmcs_up(&mut self, p: &Plan) -> Result<(), StageError> {
        let fleet = Fleet::start(bmcs::fleet_config(p))
            .await
            .map_err(StageError::BmcStart)?;
        for m in &p.machines {
            for f in &m.bmc.faults {
                fleet.set_fault(&m.name, bmcs::bmc_fault(f))?;
            }
            if m.vm {
                vms::open_socket(&m.bmc.inband_socket)?;
            }
        }
        self.fleet = Some(fleet);
        Ok(())
    }

    /// The libvirt domains (defined, not started) and their disks.
    async fn domains_up(&self, cx: &RunContext<'_>) -> Result<(), StageError> {
        let p = cx.plan;
        let machines: Vec<&MachinePlan> = p.machines.iter().filter(|m| m.vm).collect();
        if machines.is_empty() {
            return Ok(());
        }
        let conn = vm::connect()?;
        let accel = vm::detect_accel(&conn);
        for m in machines {
            cx.register(Resource::Domain {
                name: m.domain.clone(),
            })?;
            for d in &m.disks {
                if !d.path.exists() {
                    crate::cmd::Cmd::new("qemu-img")
                        .args(["create", "-q", "-f", "qcow2"])
                        .arg(d.path.display().to_string())
                        .arg(format!("{}M", d.size_mib))
                        .run()
                        .await
                        .map_err(|e| {
                            StageError::Lab(format!("disk {}: {e}", d.path.display())).on(&m.name)
                        })?;
                }
            }
            let spec = vms::domain_spec(p, m, accel);
            let xml = vms::define_keeping_console(&conn, &spec)
                .await
                .map_err(|e| StageError::from(e).on(&m.name))?;
            let _ = std::fs::write(
                p.host
                    .run_dir
                    .join("machines")
                    .join(&m.name)
                    .join("domain.xml"),
                xml,
            );
        }
        Ok(())
    }

    /// The BMCs, for steps that go to them directly and for observe.
    pub fn fleet(&self) -> Result<&FleetHandle, StageError> {
        self.fleet
            .as_ref()
            .ok_or_else(|| StageError::Lab("the BMCs are not running".to_string()))
    }

    /// The guests off: first of all at stop, so that no guest talks to
    /// servers going away.
    pub async fn power_off(&self, p: &Plan) {
        vms::destroy_all(
            p.machines
                .iter()
                .filter(|m| m.vm)
                .map(|m| m.domain.clone())
                .collect(),
        )
        .await;
    }

    /// Stop the BMCs and let go of the lab before teardown removes what
    /// they sit on.
    pub async fn stop(&mut self) {
        if let Some(ra) = self.router_adverts.take() {
            ra.stop();
        }
        if let Some(f) = self.fleet.take() {
            f.shutdown().await;
        }
        self.lab = None;
    }
}
