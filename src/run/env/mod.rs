//! The environment of one run: the lab, the BMCs, the target, and the
//! operations steps perform on them. Stages call these; nothing here
//! reaches back into the scenario file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::bmc::config::{
    BmcConfig, FleetConfig, InbandEndpoint, LanEndpoint, PowerConfig, PrivilegeName, SessionType,
    UserConfig,
};
use crate::bmc::fault::{Fault as BmcFault, Where};
use crate::bmc::{Fleet, FleetHandle};
use crate::lab::net::{Ipv4Subnet, Lab, LabSpec, SegmentSpec};
use crate::maas::types::PowerState as MaasPower;
use crate::plan::{MachinePlan, Plan};
use crate::report::checks::{Observed, ObservedApi};
use crate::report::result::{self, MachineResult, RunResult, TranscriptLine};
use crate::run::pipeline::Observation;
use crate::run::state::Resource;
use crate::run::teardown::Teardown;
use crate::scenario::{Channel, Fault, IpmiVersions, PowerState, Step, TargetKind};
use crate::targets::sim::power::{IpmiParams, IpmiPowerDriver, PowerAction, PowerDriverConfig};

/// Target-specific flags from the command line.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    pub maas_url: Option<String>,
    pub api_key: Option<String>,
    pub lab_bridge: Option<String>,
    /// External target: FIRST/PREFIX for the BMCs on `lab_bridge`.
    pub bmc_addresses: Option<String>,
    /// The sim region's Postgres: a testcontainers container, not a local process.
    pub postgres_container: bool,
    pub chart: crate::targets::chart::ChartArgs,
}

mod chart;
mod external;
mod sim;

pub struct Env<'p> {
    plan: &'p Plan,
    options: TargetOptions,
    teardown: Teardown,
    lab: Option<Lab>,
    fleet: Option<FleetHandle>,
    /// On target none the harness plays the rack: FreeIPMI with MAAS's
    /// flags and retries, inside the lab namespace.
    power: IpmiPowerDriver,
    /// The MAAS under test and the machines it knows (sim, external, chart).
    sim: sim::SimEnv,
    /// The chart target's deployment (env/chart.rs).
    chart: chart::ChartEnv,
}

/// The fleet's transcript (all BMCs); split per machine at observe.
pub fn transcript_path(plan: &Plan) -> PathBuf {
    plan.host.run_dir.join("bmc-transcript.jsonl")
}

impl<'p> Env<'p> {
    pub fn new(plan: &'p Plan, options: &TargetOptions, teardown: Teardown) -> Self {
        let power = IpmiPowerDriver::new(PowerDriverConfig {
            netns: Some(plan.host.netns.clone()),
            // MAAS's waits (4,4,8,8,16,16,32,32 s) at a quarter of a second
            // per unit: the same retry shape, without minutes of sleeping.
            wait_unit: Duration::from_millis(250),
            command_timeout: Duration::from_secs(30),
            ..PowerDriverConfig::default()
        });
        Env {
            plan,
            options: options.clone(),
            teardown,
            lab: None,
            fleet: None,
            power,
            sim: sim::SimEnv::default(),
            chart: chart::ChartEnv::default(),
        }
    }

    pub(crate) fn lab_spec(&self) -> Result<LabSpec, String> {
        let p = self.plan;
        let subnet = Ipv4Subnet::new(p.lab.subnet, p.lab.prefix_len).map_err(|e| e.to_string())?;
        // On chart the rack's address lives on a bridge inside the kind
        // node (targets::chart::wiring), so the lab must not hold it too.
        let mut addresses = if p.target == TargetKind::Chart {
            Vec::new()
        } else {
            vec![p.lab.rack_ip]
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

    pub(crate) fn register(&self, r: Resource) -> Result<(), String> {
        self.teardown.register(r).map_err(|e| e.to_string())
    }

    /// The lab network, then the BMCs on it.
    pub async fn lab_up(&mut self) -> Result<(), String> {
        match self.plan.target {
            TargetKind::None => {}
            TargetKind::Sim => return self.sim_lab_up().await,
            // Kind, helm, kubectl, docker and the chart options first:
            // nothing is created when one is missing.
            TargetKind::Chart => {
                self.chart_preflight()?;
                return self.sim_lab_up().await;
            }
            TargetKind::External => return self.external_lab_up().await,
        }
        let p = self.plan;
        let spec = self.lab_spec()?;
        self.register(Resource::Dir {
            path: p.host.vm_dir.clone(),
        })?;
        self.register(Resource::Netns {
            name: p.host.netns.clone(),
        })?;
        self.register(Resource::Link {
            name: p.host.bridge.clone(),
        })?;
        self.register(Resource::Link {
            name: p.host.veth_host.clone(),
        })?;
        std::fs::create_dir_all(&p.host.vm_dir)
            .map_err(|e| format!("{}: {e}", p.host.vm_dir.display()))?;
        for m in &p.machines {
            let dir = p.host.run_dir.join("machines").join(&m.name);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        self.lab = Some(Lab::up(&spec).await.map_err(|e| e.to_string())?);
        if p.machines.iter().any(|m| m.vm) {
            return Err(format!(
                "target {}: machines with VMs need a MAAS target (sim, chart, external) to boot from",
                p.target
            ));
        }
        let fleet = Fleet::start(fleet_config(p))
            .await
            .map_err(|e| format!("starting the BMCs: {e}"))?;
        for m in &p.machines {
            for f in &m.bmc.faults {
                fleet
                    .set_fault(&m.name, bmc_fault(f))
                    .map_err(|e| e.to_string())?;
            }
        }
        self.fleet = Some(fleet);
        Ok(())
    }

    pub async fn deploy(&mut self) -> Result<(), String> {
        match self.plan.target {
            TargetKind::None => Ok(()),
            TargetKind::Sim => self.sim_deploy().await,
            TargetKind::External => self.external_deploy().await,
            TargetKind::Chart => self.chart_deploy().await,
        }
    }

    pub(crate) fn machines(&self, name: &str) -> Result<Vec<&'p MachinePlan>, String> {
        let ms = self.plan.select(name);
        if ms.is_empty() {
            Err(format!("no machine `{name}`"))
        } else {
            Ok(ms)
        }
    }

    pub(crate) fn fleet(&self) -> Result<&FleetHandle, String> {
        self.fleet
            .as_ref()
            .ok_or_else(|| "the BMCs are not running".to_string())
    }

    pub async fn step(&mut self, step: &Step) -> Result<(), String> {
        if self.plan.target != TargetKind::None && !matches!(step, Step::ExpectError(_)) {
            return self.sim_step(step).await;
        }
        if let Step::ExpectError(e) = step {
            let re = regex::Regex::new(&e.matches).map_err(|e| e.to_string())?;
            return match Box::pin(self.step(&e.step)).await {
                Ok(()) => Err(format!(
                    "the step succeeded; it was expected to fail with /{}/",
                    e.matches
                )),
                Err(msg) if re.is_match(&msg) => Ok(()),
                Err(msg) => Err(format!(
                    "the step failed, but not with /{}/: {msg}",
                    e.matches
                )),
            };
        }
        match step {
            Step::Sleep(d) => {
                tokio::time::sleep(d.0).await;
                Ok(())
            }
            // MAAS powers on with `--cycle --on-if-off`: a cycle when on.
            Step::PowerOn(r) | Step::PowerCycle(r) => self.power_all(&r.0, PowerAction::On).await,
            Step::PowerOff(r) => self.power_all(&r.0, PowerAction::Off).await,
            Step::WaitPower(w) => {
                let want = match w.state {
                    PowerState::On => MaasPower::On,
                    PowerState::Off => MaasPower::Off,
                };
                for m in self.machines(&w.machine.0)? {
                    self.wait_power(m, want, w.timeout.0).await?;
                }
                Ok(())
            }
            Step::InjectFault(f) => {
                for m in self.machines(&f.machine.0)? {
                    self.fleet()?
                        .set_fault(&m.name, bmc_fault(&f.fault))
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Step::ClearFaults(r) => {
                for m in self.machines(&r.0)? {
                    self.fleet()?
                        .clear_faults(&m.name)
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Step::ExpectError(_) => unreachable!("handled above"),
            Step::Commission(_) | Step::WaitStatus(_) => Err(format!(
                "target {}: this step needs a MAAS target",
                self.plan.target
            )),
        }
    }

    async fn power_all(&self, name: &str, action: PowerAction) -> Result<(), String> {
        let ms = self.machines(name)?;
        let runs = ms.iter().map(|m| {
            let params = ipmi_params(m);
            async move {
                self.power
                    .perform(&m.name, &params, action, |n, e, wait| tracing::info!(machine = %m.name, attempt = n, error = %e, ?wait, "power retry"))
                    .await
                    .map_err(|e| format!("{}: power {action:?}: {e}", m.name))
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
    ) -> Result<(), String> {
        let params = ipmi_params(m);
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.power.query(&params).await {
                Ok(s) if s == want => return Ok(()),
                Ok(s) => format!("power {}", s.as_str()),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "{}: power did not become {} within {}; last seen: {last}",
                    m.name,
                    want.as_str(),
                    humantime::format_duration(timeout)
                ));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    pub async fn observe(&mut self) -> Result<Observation, String> {
        if self.plan.target == TargetKind::Chart {
            return self.chart_observe().await;
        }
        if self.plan.target != TargetKind::None {
            return self.sim_observe().await;
        }
        let p = self.plan;
        let mut result = RunResult {
            scenario: p.scenario.clone(),
            target: p.target.to_string(),
            machines: BTreeMap::new(),
        };
        let mut observed = BTreeMap::new();
        let transcript = read_transcript(&transcript_path(p));
        for m in &p.machines {
            let lines: Vec<TranscriptLine> = transcript
                .iter()
                .filter(|(bmc, _)| *bmc == m.name)
                .map(|(_, l)| l.clone())
                .collect();
            write_machine_transcript(m, &transcript_path(p));
            let power_state = match &self.fleet {
                Some(f) => f
                    .power_state(&m.name)
                    .map(|on| if on { "on" } else { "off" }.to_string())
                    .map_err(|e| e.to_string())?,
                None => "unknown".into(),
            };
            let params = ipmi_params(m);
            let mut mr = MachineResult {
                power_state: Some(power_state.clone()),
                power_type: Some("ipmi".into()),
                ..MachineResult::default()
            };
            mr.power_parameters
                .insert("power_address".into(), params.power_address.clone().into());
            mr.power_parameters
                .insert("power_user".into(), params.power_user.clone().into());
            mr.power_parameters
                .insert("power_driver".into(), params.power_driver.clone().into());
            mr.bmc = result::summarise_transcript(&lines);
            let fields = serde_json::json!({
                "power_state": power_state,
                "power_type": "ipmi",
                "power_parameters": mr.power_parameters,
            });
            result.machines.insert(m.name.clone(), mr);
            observed.insert(
                m.name.clone(),
                Observed {
                    fields,
                    events: Vec::new(),
                    transcript: lines,
                },
            );
        }
        Ok((result, observed, ObservedApi::default()))
    }

    /// Gather the target's evidence into the run directory when the run
    /// failed or the target was asked to (chart: `--collect`).
    pub async fn collect(&mut self, failed: bool) {
        if self.plan.target == TargetKind::Chart {
            self.chart_collect(failed).await;
        }
    }

    /// Stop in-process services (BMCs, servers) before teardown removes
    /// what they sit on.
    pub async fn stop(&mut self) {
        match self.plan.target {
            TargetKind::Chart => self.chart_stop().await,
            TargetKind::External => self.external_forget_machines().await,
            _ => {}
        }
        self.sim_stop().await;
        if let Some(f) = self.fleet.take() {
            f.shutdown().await;
        }
        self.lab = None;
    }
}

/// Run per-machine operations concurrently; every failure is reported, one per line.
pub(crate) async fn all_ok(
    runs: impl IntoIterator<Item = impl std::future::Future<Output = Result<(), String>>>,
) -> Result<(), String> {
    let errors: Vec<String> = futures::future::join_all(runs)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

/// The power parameters MAAS's autodetect would report for this BMC.
pub(crate) fn ipmi_params(m: &MachinePlan) -> IpmiParams {
    IpmiParams {
        power_address: m.bmc.lan_ip.to_string(),
        power_user: m.bmc.username.clone(),
        power_pass: m.bmc.password.clone(),
        power_driver: if m.bmc.ipmi == IpmiVersions::V15 {
            "LAN"
        } else {
            "LAN_2_0"
        }
        .into(),
        power_boot_type: if m.firmware == crate::scenario::Firmware::Uefi {
            "efi"
        } else {
            "auto"
        }
        .into(),
        power_off_mode: "hard".into(),
    }
}

/// The BMC fleet for a plan: one BMC per machine, LAN inside the lab netns.
pub fn fleet_config(p: &Plan) -> FleetConfig {
    FleetConfig {
        transcript: Some(transcript_path(p)),
        bmcs: p
            .machines
            .iter()
            .map(|m| BmcConfig {
                name: m.name.clone(),
                lan: LanEndpoint {
                    address: format!("{}:{}", m.bmc.lan_ip, m.bmc.lan_port),
                    netns: Some(p.host.netns.clone()),
                    ip: Some(m.bmc.lan_ip),
                    netmask: Ipv4Subnet::new(p.lab.subnet, p.lab.prefix_len)
                        .ok()
                        .map(|s| s.netmask()),
                    // No rack of ours on someone else's network: no gateway.
                    gateway: (!p.lab.rack_ip.is_unspecified()).then_some(p.lab.rack_ip),
                    mac: Some(m.bmc.mac.clone()),
                },
                inband: m.vm.then(|| InbandEndpoint {
                    socket: m.bmc.inband_socket.clone(),
                }),
                users: vec![UserConfig {
                    name: m.bmc.username.clone(),
                    password: m.bmc.password.clone(),
                    privilege: PrivilegeName::Administrator,
                    enabled: true,
                }],
                power: if m.vm {
                    PowerConfig::Libvirt {
                        uri: "qemu:///system".into(),
                        domain: m.domain.clone(),
                    }
                } else {
                    PowerConfig::Memory { on: false }
                },
                session_types: match m.bmc.ipmi {
                    IpmiVersions::V15 => vec![SessionType::Ipmi15],
                    IpmiVersions::V20 => vec![SessionType::Ipmi20],
                    IpmiVersions::Both => vec![SessionType::Ipmi15, SessionType::Ipmi20],
                },
                cipher_suites: Some(
                    m.bmc
                        .cipher_suites
                        .iter()
                        .copied()
                        .filter(|s| *s != 0)
                        .collect(),
                ),
                allow_cipher_suite_zero: m.bmc.cipher_suites.contains(&0),
                auth_types: None,
                session_timeout: None,
                max_sessions: None,
                guid: Some(m.bmc.guid.replace('-', "")),
                kg: None,
            })
            .collect(),
    }
}

/// A scenario fault as the BMC's fault switch.
pub fn bmc_fault(f: &Fault) -> BmcFault {
    match f {
        Fault::NoAnswer => BmcFault::NoAnswer,
        Fault::Latency { delay } => BmcFault::Latency(delay.0),
        Fault::FailCommand {
            command,
            on,
            times,
            completion_code,
        } => {
            let (netfn, cmd) = command.code();
            let on = match on {
                Channel::Any => Where::Any,
                Channel::Lan => Where::Lan,
                Channel::Inband => Where::Inband,
            };
            BmcFault::FailCommand {
                netfn,
                cmd,
                on,
                times: *times,
                cc: *completion_code,
            }
        }
        Fault::IgnorePowerOn => BmcFault::AckPowerOnWithoutDoing,
        Fault::RefuseCipherSuite { suite } => BmcFault::RefuseCipherSuite(*suite),
        Fault::DropEveryNth { n } => BmcFault::DropEveryNth(*n),
    }
}

/// `ChassisControl` -> `chassis_control`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// (bmc name, line) for every command exchange in a fleet transcript.
pub(crate) fn read_transcript(path: &std::path::Path) -> Vec<(String, TranscriptLine)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "command")
        .map(|v| {
            (
                v["bmc"].as_str().unwrap_or_default().to_string(),
                TranscriptLine {
                    channel: v["channel"].as_str().unwrap_or_default().to_string(),
                    command: snake_case(v["name"].as_str().unwrap_or_default()),
                    completion_code: v["cc"].as_u64().map(|c| c as u8),
                },
            )
        })
        .collect()
}

/// machines/NAME/bmc-transcript.jsonl: this BMC's lines of the fleet transcript.
pub(crate) fn write_machine_transcript(m: &MachinePlan, fleet: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(fleet) else {
        return;
    };
    let needle = format!("\"bmc\":\"{}\"", m.name);
    let mine: String = text
        .lines()
        .filter(|l| l.contains(&needle))
        .map(|l| format!("{l}\n"))
        .collect();
    let _ = std::fs::write(&m.bmc.transcript, mine);
}
