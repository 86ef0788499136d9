//! The plan: a pure function (scenario, run id, seed) -> every name and
//! number the run will use.
//!
//! Names that live on the host (netns, bridges, veths, libvirt domains,
//! socket paths) come from the run id, so concurrent runs never collide.
//! What lives inside a run's own lab (MACs, UUIDs, IPs, ports, generated
//! passwords) comes from the seed, so the same seed gives the same lab and
//! `repro` (same seed, new run id) rebuilds it.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::scenario::{
    self, Fault, Firmware, IpmiVersions, LoadedScenario, NicModel, PowerType, TargetKind,
};

/// Eight lowercase hex digits; short enough for 15-byte interface names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

impl RunId {
    pub fn generate() -> RunId {
        RunId(format!("{:08x}", rand::random::<u32>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RunId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 8
            && s.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        {
            Ok(RunId(s))
        } else {
            Err(format!(
                "run id `{s}` is not valid; allowed: 8 lowercase hex digits, as `maas-e2e list` shows"
            ))
        }
    }
}

impl std::str::FromStr for RunId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RunId::try_from(s.to_string())
    }
}

impl From<RunId> for String {
    fn from(r: RunId) -> String {
        r.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Prefix of every host-side name a run creates; `down --all` sweeps by it.
pub const NAME_PREFIX: &str = "me2e";

/// Where runs keep the files QEMU opens (libvirt-qemu cannot read /root).
/// The one definition: lab/vm.rs creates run directories under it.
pub const VM_ROOT: &str = "/var/lib/maas-e2e/runs";

/// The Postgres container of a run (sim `--postgres container`, chart):
/// host-wide, so named from the run id like every other host name. Free
/// function for the chart's options, which carry the run id only.
pub fn postgres_container_name(run_id: &str) -> String {
    format!("{NAME_PREFIX}-{run_id}-postgres")
}

/// The kind cluster a chart run creates.
pub fn kind_cluster_name(run_id: &str) -> String {
    format!("{NAME_PREFIX}-{run_id}")
}

/// The name the chart wiring gives the network namespace of rack node `i`
/// (teardown removes only the name: the namespace is the container's).
pub fn node_netns_name(run_id: &str, i: usize) -> String {
    format!("{NAME_PREFIX}-{run_id}-n{i}")
}

/// The lab namespace of a chart plan made without a scenario (`chart check`
/// with no scenario, the chart target's own defaults).
pub fn chart_lab_netns_name(run_id: &str) -> String {
    format!("{NAME_PREFIX}-{run_id}-lab")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Plan {
    pub run_id: RunId,
    pub seed: u64,
    pub scenario: String,
    pub target: TargetKind,
    pub host: HostPlan,
    pub lab: LabPlan,
    pub machines: Vec<MachinePlan>,
    /// Scripts the scenario uploads (`upload_script`): a MAAS that outlives
    /// the run (target external) gets them deleted at stop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uploaded_scripts: Vec<String>,
}

/// Names on the host, from the run id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HostPlan {
    pub netns: String,
    /// The PXE network: VM NICs attach here; one veth joins it to the netns.
    pub bridge: String,
    pub veth_host: String,
    pub veth_lab: String,
    pub run_dir: PathBuf,
    pub vm_dir: PathBuf,
}

/// Addresses inside the lab namespace, from the seed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabPlan {
    pub subnet: Ipv4Addr,
    pub prefix_len: u8,
    /// The rack/region (sim) or the harness (none) side of the PXE network.
    pub rack_ip: Ipv4Addr,
    pub dhcp_range: (Ipv4Addr, Ipv4Addr),
    pub region_port: u16,
    pub capture: bool,
    /// The sim target's named speed shortcuts (scenario `sim:`); left out
    /// of the plan's text when they are the defaults.
    #[serde(default, skip_serializing_if = "is_default_sim")]
    pub sim: scenario::SimSettings,
}

fn is_default_sim(s: &scenario::SimSettings) -> bool {
    *s == scenario::SimSettings::default()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MachinePlan {
    pub name: String,
    pub vm: bool,
    /// libvirt domain name (host-wide, so from the run id).
    pub domain: String,
    pub uuid: String,
    pub firmware: Firmware,
    pub cpu: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    pub nics: Vec<NicPlan>,
    pub disks: Vec<DiskPlan>,
    pub console_log: PathBuf,
    pub bmc: BmcPlan,
    /// How MAAS drives its power (`redfish`: set through the API).
    #[serde(default, skip_serializing_if = "PowerType::is_ipmi")]
    pub power_type: PowerType,
    /// One of the scenario's fleet: summarised, never listed, in results.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fleet: bool,
    /// A fleet machine's behaviour (`plain`, `faulty`, `powers_off_after`,
    /// `never_powers_on`): the fleet summary counts machines by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_behaviour: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NicPlan {
    pub model: NicModel,
    pub mac: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DiskPlan {
    pub path: PathBuf,
    pub size_mib: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BmcPlan {
    pub lan_ip: Ipv4Addr,
    pub lan_port: u16,
    pub mac: String,
    pub guid: String,
    pub inband_socket: PathBuf,
    pub ipmi: IpmiVersions,
    pub cipher_suites: Vec<u8>,
    pub username: String,
    /// Never serialised: plan.yaml is an artifact. Re-derived from the seed
    /// (or read from the scenario) when needed.
    #[serde(skip)]
    pub password: String,
    pub faults: Vec<Fault>,
    pub transcript: PathBuf,
    /// Redfish on the BMC's address too (HTTPS, port 443).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redfish: bool,
    /// A VM-less machine that shuts itself down: its chassis turns off
    /// this long after each power-on (fleet `powers_off_after`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::bmc::fault::opt_duration"
    )]
    pub powers_off_after: Option<std::time::Duration>,
}

/// Build the plan. Pure: the same inputs give the same plan.
pub fn plan(
    loaded: &LoadedScenario,
    target: TargetKind,
    run_id: &RunId,
    seed: u64,
    out_dir: &Path,
) -> Plan {
    let s = &loaded.scenario;
    let r = run_id.as_str();
    let run_dir = out_dir.join(r);
    let vm_dir = Path::new(VM_ROOT).join(r);
    let host = HostPlan {
        netns: format!("{NAME_PREFIX}-{r}"),
        bridge: format!("m2b{r}"),
        veth_host: format!("m2h{r}"),
        veth_lab: format!("m2l{r}"),
        run_dir: run_dir.clone(),
        vm_dir: vm_dir.clone(),
    };
    // 10.A.B.0/24: private to the run's namespace, so runs may share a subnet;
    // the seed picks it so a repro sees the same addresses. A fleet too big
    // for .20-.99 gets a wider network (see `bmc_addressing`).
    let fleet_count = s.fleet.as_ref().map_or(0, |f| f.count);
    let total = scenario::expand(&s.machines).len() as u32 + fleet_count;
    let (prefix_len, bmc_offset) = bmc_addressing(total);
    let h = derive(seed, "subnet", "", 0);
    let block_mask = !((1u32 << (32 - prefix_len)) - 1);
    let subnet = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 64 + h[0] % 64, h[1], 0)) & block_mask);
    let [a, b, c, _] = subnet.octets();
    let ip = |last: u8| Ipv4Addr::new(a, b, c, last);
    let bmc_ip = |i: usize| Ipv4Addr::from(u32::from(subnet) + bmc_offset + i as u32);
    let lab = LabPlan {
        subnet,
        prefix_len,
        rack_ip: ip(1),
        dhcp_range: (ip(100), ip(199)),
        region_port: 5240,
        capture: s.lab.capture,
        sim: s.sim,
    };
    let machines = scenario::expand(&s.machines)
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let g = m.group;
            let name = &m.name;
            let nics = g
                .nics
                .iter()
                .enumerate()
                .map(|(k, n)| NicPlan {
                    model: n.model.unwrap_or(NicModel::default_for(g.firmware)),
                    mac: mac(seed, name, k as u32),
                    name: n.name.clone(),
                })
                .collect();
            let disks = g
                .disks
                .iter()
                .enumerate()
                .map(|(k, d)| DiskPlan {
                    path: vm_dir.join(format!("{name}-disk{k}.qcow2")),
                    size_mib: d.size.mib(),
                })
                .collect();
            let password = g.bmc.credentials.password.clone().unwrap_or_else(|| {
                let p = derive(seed, "bmc-password", name, 0);
                hex::encode(&p[..8])
            });
            MachinePlan {
                name: name.clone(),
                vm: g.vm,
                domain: format!("{NAME_PREFIX}-{r}-{name}"),
                uuid: uuid(seed, "machine", name),
                firmware: g.firmware,
                cpu: g.cpu.clone(),
                vcpus: g.vcpus,
                memory_mib: g.memory.mib(),
                nics,
                disks,
                console_log: run_dir.join("machines").join(name).join("console.log"),
                bmc: BmcPlan {
                    lan_ip: bmc_ip(i),
                    lan_port: 623,
                    mac: mac(seed, name, 0xB3C),
                    guid: uuid(seed, "bmc-guid", name),
                    inband_socket: vm_dir.join(format!("{name}.bmc.sock")),
                    ipmi: g.bmc.ipmi,
                    cipher_suites: g.bmc.cipher_suites.clone(),
                    // A redfish machine's BMC serves Redfish, whatever `bmc` says.
                    redfish: g.bmc.redfish || g.power_type == PowerType::Redfish,
                    powers_off_after: None,
                    username: g.bmc.credentials.username.clone(),
                    password,
                    faults: g.bmc.faults.clone(),
                    transcript: run_dir
                        .join("machines")
                        .join(name)
                        .join("bmc-transcript.jsonl"),
                },
                power_type: g.power_type,
                fleet: false,
                fleet_behaviour: None,
            }
        })
        .collect::<Vec<_>>();
    let mut machines = machines;
    if let Some(f) = &s.fleet {
        let first = machines.len();
        let behaviours = f.behaviours();
        machines.extend((0..f.count).map(|k| {
            fleet_machine(
                f,
                k,
                behaviours[k as usize],
                seed,
                r,
                &run_dir,
                &vm_dir,
                bmc_ip(first + k as usize),
            )
        }));
    }
    Plan {
        run_id: run_id.clone(),
        seed,
        scenario: s.name.clone(),
        target,
        host,
        lab,
        machines,
        uploaded_scripts: uploaded_scripts(&s.steps),
    }
}

/// The names of the scripts `upload_script` steps upload (also inside
/// `expect_error`).
fn uploaded_scripts(steps: &[scenario::Step]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|step| match step {
            scenario::Step::UploadScript(u) => Some(u.name.clone()),
            scenario::Step::ExpectError(e) => match &*e.step {
                scenario::Step::UploadScript(u) => Some(u.name.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The lab network's prefix and the offset of the first BMC address:
/// .20-.99 of a /24 while the machines fit (.1 is the rack, .100-.199 the
/// DHCP pool); past 80, the BMCs follow the first /24 in a network sized
/// for all of them (a 1,000-machine fleet: a /21, BMCs from .1.0).
pub fn bmc_addressing(machines: u32) -> (u8, u32) {
    if machines <= 80 {
        return (24, 20);
    }
    let needed = 256 + machines as u64 + 1; // + broadcast
    let mut prefix = 24u8;
    while (1u64 << (32 - prefix)) < needed {
        prefix -= 1;
    }
    (prefix, 256)
}

/// Machine `k` of a fleet: a BMC with no VM, one NIC (its MAC is what MAAS
/// is given), power type and fault from the fleet's shares.
#[allow(clippy::too_many_arguments)]
fn fleet_machine(
    f: &scenario::FleetSpec,
    k: u32,
    behaviour: scenario::FleetBehaviour,
    seed: u64,
    r: &str,
    run_dir: &Path,
    vm_dir: &Path,
    lan_ip: Ipv4Addr,
) -> MachinePlan {
    let name = f.machine_name(k);
    let password = hex::encode(&derive(seed, "bmc-password", &name, 0)[..8]);
    let redfish = scenario::FleetSpec::picks(f.redfish, k);
    MachinePlan {
        vm: false,
        domain: format!("{NAME_PREFIX}-{r}-{name}"),
        uuid: uuid(seed, "machine", &name),
        firmware: Firmware::Bios,
        cpu: "Haswell-noTSX".into(),
        vcpus: 1,
        memory_mib: 1024,
        nics: vec![NicPlan {
            model: NicModel::default_for(Firmware::Bios),
            mac: fleet_mac(seed, &f.name, "nic", k),
            name: None,
        }],
        disks: Vec::new(),
        console_log: run_dir.join("machines").join(&name).join("console.log"),
        bmc: BmcPlan {
            lan_ip,
            lan_port: 623,
            mac: fleet_mac(seed, &f.name, "bmc", k),
            guid: uuid(seed, "bmc-guid", &name),
            inband_socket: vm_dir.join(format!("{name}.bmc.sock")),
            ipmi: IpmiVersions::Both,
            cipher_suites: vec![1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17],
            username: "admin".into(),
            password,
            faults: match behaviour {
                scenario::FleetBehaviour::Faulty => f.faults.clone(),
                // Power-on acknowledged, chassis untouched (IPMI and Redfish).
                scenario::FleetBehaviour::NeverPowersOn => vec![scenario::Fault::IgnorePowerOn],
                _ => Vec::new(),
            },
            powers_off_after: match behaviour {
                scenario::FleetBehaviour::PowersOffAfter(d) => Some(d),
                _ => None,
            },
            transcript: run_dir
                .join("machines")
                .join(&name)
                .join("bmc-transcript.jsonl"),
            redfish,
        },
        power_type: if redfish {
            PowerType::Redfish
        } else {
            PowerType::Ipmi
        },
        fleet: true,
        fleet_behaviour: Some(behaviour.as_str().into()),
        name,
    }
}

/// The plan of a run on someone else's network (target external): VM NICs
/// join `bridge`, whose subnet is `network/prefix_len`, machine i's BMC
/// takes `first_bmc + i`, and no rack of ours exists (`rack_ip` is
/// unspecified). Host names stay the run's own: our namespace and veth
/// still carry the BMC addresses.
pub fn on_existing_bridge(
    mut plan: Plan,
    bridge: &str,
    network: Ipv4Addr,
    prefix_len: u8,
    first_bmc: Ipv4Addr,
) -> Plan {
    plan.host.bridge = bridge.to_string();
    plan.lab.subnet = network;
    plan.lab.prefix_len = prefix_len;
    plan.lab.rack_ip = Ipv4Addr::UNSPECIFIED;
    plan.lab.dhcp_range = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED);
    for (i, m) in plan.machines.iter_mut().enumerate() {
        m.bmc.lan_ip = Ipv4Addr::from(u32::from(first_bmc) + i as u32);
    }
    plan
}

impl Plan {
    /// The run's Postgres container (see [`postgres_container_name`]).
    pub fn postgres_container(&self) -> String {
        postgres_container_name(self.run_id.as_str())
    }

    pub fn machine(&self, name: &str) -> Option<&MachinePlan> {
        self.machines.iter().find(|m| m.name == name)
    }

    /// Machines a step or check names: `all`, a group name, or one machine.
    pub fn select(&self, name: &str) -> Vec<&MachinePlan> {
        if name == "all" {
            return self.machines.iter().collect();
        }
        if let Some(m) = self.machine(name) {
            return vec![m];
        }
        let prefix = format!("{name}-");
        self.machines
            .iter()
            .filter(|m| {
                m.name
                    .strip_prefix(&prefix)
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .collect()
    }

    /// Every host-side name, each at most 15 bytes where the kernel limits it.
    pub fn interface_names(&self) -> [&str; 3] {
        [&self.host.bridge, &self.host.veth_host, &self.host.veth_lab]
    }
}

fn derive(seed: u64, kind: &str, name: &str, index: u32) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(name.as_bytes());
    h.update([0]);
    h.update(index.to_le_bytes());
    h.finalize().into()
}

/// A fleet machine's MAC: the fleet's byte from the seed, then the
/// machine's index, so 10,000 MACs never collide (24 hashed bits would,
/// a few times in a hundred, at 1,000 machines).
fn fleet_mac(seed: u64, fleet: &str, kind: &str, k: u32) -> String {
    let h = derive(seed, "fleet-mac", fleet, 0);
    let b = if kind == "bmc" { h[1] } else { h[0] };
    format!("52:54:00:{b:02x}:{:02x}:{:02x}", (k >> 8) & 0xff, k & 0xff)
}

/// A locally administered-looking QEMU MAC (52:54:00 is QEMU's OUI).
fn mac(seed: u64, name: &str, index: u32) -> String {
    let h = derive(seed, "mac", name, index);
    format!("52:54:00:{:02x}:{:02x}:{:02x}", h[0], h[1], h[2])
}

fn uuid(seed: u64, kind: &str, name: &str) -> String {
    let h = derive(seed, kind, name, 0);
    uuid::Builder::from_random_bytes(h[..16].try_into().unwrap())
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod fleet_tests {
    use super::*;

    #[test]
    fn the_bmc_network_is_sized_from_the_plan() {
        assert_eq!(bmc_addressing(1), (24, 20));
        assert_eq!(bmc_addressing(80), (24, 20));
        assert_eq!(bmc_addressing(81), (23, 256));
        assert_eq!(bmc_addressing(1000), (21, 256));
        assert_eq!(bmc_addressing(10_000), (18, 256));
        assert_eq!(bmc_addressing(767), (22, 256));
        assert_eq!(bmc_addressing(768), (21, 256));
    }

    #[test]
    fn a_thousand_machine_fleet_gets_unique_addresses_inside_its_network() {
        let src = "targets: [sim]\nfleet: {count: 1000, redfish: 0.25, faulty: 0.1}\n";
        let loaded = scenario::parse(Path::new("f.yaml"), src).unwrap();
        let run: RunId = "0c4a27e0".parse().unwrap();
        let p = plan(&loaded, TargetKind::Sim, &run, 7, Path::new("runs"));
        assert_eq!(p.machines.len(), 1000);
        assert_eq!(p.lab.prefix_len, 21);
        let net = u32::from(p.lab.subnet);
        assert_eq!(net & 0x7ff, 0, "aligned to its prefix");
        let mut seen = std::collections::BTreeSet::new();
        for m in &p.machines {
            let a = u32::from(m.bmc.lan_ip);
            assert!(a >= net + 256 && a < net + 2047, "{} outside", m.bmc.lan_ip);
            assert!(seen.insert(a), "{} twice", m.bmc.lan_ip);
            assert!(m.fleet && !m.vm);
            assert_eq!(m.bmc.redfish, m.power_type == PowerType::Redfish);
        }
        let redfish = p
            .machines
            .iter()
            .filter(|m| m.power_type == PowerType::Redfish)
            .count();
        let macs: std::collections::BTreeSet<&str> =
            p.machines.iter().map(|m| m.nics[0].mac.as_str()).collect();
        assert_eq!(macs.len(), 1000, "every NIC MAC differs");
        let faulty = p
            .machines
            .iter()
            .filter(|m| !m.bmc.faults.is_empty())
            .count();
        assert_eq!((redfish, faulty), (250, 100));
        // The rack and the DHCP pool keep the first /24.
        assert_eq!(u32::from(p.lab.rack_ip), net + 1);
        assert!(u32::from(p.lab.dhcp_range.1) < net + 256);
    }

    #[test]
    fn fleet_behaviours_take_their_shares_on_distinct_machines() {
        let src = "targets: [sim]\nfleet: {count: 1000, faulty: 0.1, never_powers_on: 0.05, powers_off_after: {share: 0.2, after: 30s}}\n";
        let loaded = scenario::parse(Path::new("f.yaml"), src).unwrap();
        let run: RunId = "0c4a27e0".parse().unwrap();
        let p = plan(&loaded, TargetKind::Sim, &run, 7, Path::new("runs"));
        let count = |b: &str| {
            p.machines
                .iter()
                .filter(|m| m.fleet_behaviour.as_deref() == Some(b))
                .count()
        };
        assert_eq!(
            (
                count("plain"),
                count("faulty"),
                count("powers_off_after"),
                count("never_powers_on")
            ),
            (650, 100, 200, 50)
        );
        for m in &p.machines {
            let b = m.fleet_behaviour.as_deref().unwrap();
            assert_eq!(m.bmc.powers_off_after.is_some(), b == "powers_off_after");
            let ignores_on = m.bmc.faults == vec![scenario::Fault::IgnorePowerOn];
            assert_eq!(ignores_on, b == "never_powers_on", "{}", m.name);
        }
        // Spread: every tenth of the fleet has its share of each.
        for chunk in p.machines.chunks(100) {
            let n = chunk
                .iter()
                .filter(|m| m.fleet_behaviour.as_deref() == Some("powers_off_after"))
                .count();
            assert!((19..=21).contains(&n), "{n} in a tenth");
        }
    }
}
