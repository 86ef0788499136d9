//! The scenario file: what a user writes. Every struct denies unknown keys;
//! defaults are the ones a MAAS 2.8 lab machine would have.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Defaults to the file stem; names snapshots and JUnit suites.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Targets this scenario is meant for; `run` refuses others.
    #[serde(default = "default_targets")]
    pub targets: Vec<TargetKind>,
    #[serde(default)]
    pub lab: LabOptions,
    #[serde(default)]
    pub machines: Vec<MachineGroup>,
    /// Many BMCs without VMs, summarised rather than listed (fleet mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetSpec>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub expect: Vec<Expectation>,
    #[serde(default = "default_snapshot")]
    pub snapshot: Vec<SnapshotPart>,
    /// Where the sim target takes a deliberate shortcut for speed.
    #[serde(default)]
    pub sim: SimSettings,
}

/// The sim target's speed shortcuts, each named, each with MAAS's value
/// available as `maas` (docs/sim.md lists them).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SimSettings {
    /// The patched configure_ipmi_user sleeps attempt x this after a failed
    /// attempt (MAAS: 30s, 2.8_configure_ipmi_user.patch backoff_amount).
    #[serde(default = "default_autodetect_retry_base")]
    pub autodetect_retry_base: Speed,
    /// One unit of the rack's power waits 4,4,8,8,16,16,32,32 (MAAS: 1s,
    /// 2.8_ipmi_error.patch wait_time in seconds).
    #[serde(default = "default_power_wait_unit")]
    pub power_wait_unit: Speed,
    /// Which MAAS the sim imitates: "2.8" (the default, MAAS 2.8.7 as the
    /// chart's 2.8 pin patches it) or "3.6" (MAAS 3.6.4, the chart's HEAD).
    /// `run --sim-profile` overrides it. docs/sim.md lists what differs.
    #[serde(default, skip_serializing_if = "SimProfile::is_default")]
    pub profile: SimProfile,
    /// How many stale machines the rack's power monitor queries per 15 s
    /// tick (MAAS 2.8: 10, rpc/nodes.py list_cluster_nodes_power_parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_query_batch: Option<u32>,
    /// How long a machine's power state stays fresh before the monitor
    /// queries it again (MAAS 2.8: 5 minutes, the same function's
    /// power_state_queried cut-off). Fleet scenarios shorten it so a
    /// machine that powers itself off is seen within a short run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_query_stale: Option<DurationStr>,
}

/// The MAAS version the sim target imitates (docs/sim.md, "MAAS 3.6 profile").
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
pub enum SimProfile {
    #[default]
    #[serde(rename = "2.8")]
    Maas28,
    #[serde(rename = "3.6")]
    Maas36,
}

impl SimProfile {
    pub const ALL: [SimProfile; 2] = [SimProfile::Maas28, SimProfile::Maas36];

    /// As written in scenarios and on the command line: "2.8", "3.6".
    pub fn as_str(self) -> &'static str {
        match self {
            SimProfile::Maas28 => "2.8",
            SimProfile::Maas36 => "3.6",
        }
    }

    pub fn is_default(&self) -> bool {
        *self == SimProfile::default()
    }
}

impl fmt::Display for SimProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SimProfile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SimProfile::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("sim profile `{s}` is not known; allowed: 2.8, 3.6"))
    }
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            autodetect_retry_base: default_autodetect_retry_base(),
            power_wait_unit: default_power_wait_unit(),
            profile: SimProfile::default(),
            power_query_batch: None,
            power_query_stale: None,
        }
    }
}

impl SimSettings {
    /// MAAS's own values.
    pub const MAAS_AUTODETECT_RETRY_BASE: Duration = Duration::from_secs(30);
    pub const MAAS_POWER_WAIT_UNIT: Duration = Duration::from_secs(1);

    pub fn autodetect_retry_base(&self) -> Duration {
        self.autodetect_retry_base
            .or(Self::MAAS_AUTODETECT_RETRY_BASE)
    }

    pub fn power_wait_unit(&self) -> Duration {
        self.power_wait_unit.or(Self::MAAS_POWER_WAIT_UNIT)
    }

    /// MAAS 2.8's batch of the power monitor.
    pub const MAAS_POWER_QUERY_BATCH: u32 = 10;

    pub fn power_query_batch(&self) -> u32 {
        self.power_query_batch
            .unwrap_or(Self::MAAS_POWER_QUERY_BATCH)
    }

    /// MAAS 2.8's staleness of a queried power state.
    pub const MAAS_POWER_QUERY_STALE: Duration = Duration::from_secs(5 * 60);

    pub fn power_query_stale(&self) -> Duration {
        self.power_query_stale
            .map_or(Self::MAAS_POWER_QUERY_STALE, |d| d.0)
    }
}

fn default_autodetect_retry_base() -> Speed {
    Speed::Value(DurationStr(Duration::from_secs(1)))
}

fn default_power_wait_unit() -> Speed {
    Speed::Value(DurationStr(Duration::from_millis(250)))
}

/// A sim speed setting: `maas` (MAAS's value) or a duration.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(into = "String")]
pub enum Speed {
    Maas,
    Value(DurationStr),
}

impl Speed {
    fn or(self, maas: Duration) -> Duration {
        match self {
            Speed::Maas => maas,
            Speed::Value(d) => d.0,
        }
    }
}

impl From<Speed> for String {
    fn from(s: Speed) -> String {
        match s {
            Speed::Maas => "maas".into(),
            Speed::Value(d) => d.into(),
        }
    }
}

impl<'de> Deserialize<'de> for Speed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == "maas" {
            return Ok(Speed::Maas);
        }
        humantime::parse_duration(&s)
            .map(|d| Speed::Value(DurationStr(d)))
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "`{s}` is not understood ({e}); allowed: `maas` (MAAS's own value) or a duration, e.g. 1s, 250ms"
                ))
            })
    }
}

fn default_targets() -> Vec<TargetKind> {
    vec![TargetKind::Sim]
}

fn default_snapshot() -> Vec<SnapshotPart> {
    vec![
        SnapshotPart::Machines,
        SnapshotPart::Events,
        SnapshotPart::Bmc,
    ]
}

#[derive(
    Debug,
    Clone,
    Copy,
    Deserialize,
    Serialize,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// No MAAS: BMCs (and VMs) driven directly.
    None,
    /// The built-in MAAS-compatible reference region + rack.
    Sim,
    /// MAAS deployed by the Helm chart on kind.
    Chart,
    /// A MAAS that already runs.
    External,
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TargetKind::None => "none",
            TargetKind::Sim => "sim",
            TargetKind::Chart => "chart",
            TargetKind::External => "external",
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LabOptions {
    /// Capture the PXE network with tcpdump. The capture holds secrets (the
    /// enlist POST carries the BMC password), so it is opt-in and unpublished.
    #[serde(default)]
    pub capture: bool,
}

/// `count` identical machines named NAME-1..NAME-N (or NAME when count is 1).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MachineGroup {
    pub name: String,
    #[serde(default = "one")]
    pub count: u32,
    /// `false`: a BMC with no VM behind it (power is in-memory).
    #[serde(default = "yes")]
    pub vm: bool,
    #[serde(default)]
    pub firmware: Firmware,
    /// A named QEMU CPU model; MAAS skips IPMI autodetect on "QEMU" CPUs.
    #[serde(default = "default_cpu")]
    pub cpu: String,
    #[serde(default = "one")]
    pub vcpus: u32,
    #[serde(default = "default_memory")]
    pub memory: ByteSize,
    #[serde(default = "default_nics")]
    pub nics: Vec<Nic>,
    #[serde(default = "default_disks")]
    pub disks: Vec<Disk>,
    #[serde(default)]
    pub bmc: BmcOptions,
    /// How MAAS drives this machine's power. `ipmi`: what in-guest
    /// autodetect reports at enlistment. `redfish`: the BMC serves Redfish
    /// too, and the machine gets the type as an operator gives it, through
    /// the API (a `create_machine` step; MAAS 2.8 cannot autodetect Redfish).
    #[serde(default, skip_serializing_if = "PowerType::is_ipmi")]
    pub power_type: PowerType,
}

/// The MAAS power types a scenario machine can have (each one our BMC serves).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PowerType {
    #[default]
    Ipmi,
    Redfish,
}

impl PowerType {
    pub fn is_ipmi(&self) -> bool {
        *self == PowerType::Ipmi
    }

    /// MAAS's name of the power type.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerType::Ipmi => "ipmi",
            PowerType::Redfish => "redfish",
        }
    }
}

/// A fleet: `count` VM-less BMC machines named NAME-1..NAME-N, each given
/// to MAAS by an operator's create (`create_machine: NAME`), then loaded by
/// MAAS's own power polling. The result summarises them (counts, latency
/// percentiles, failures by cause) instead of listing them.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FleetSpec {
    #[serde(default = "default_fleet_name")]
    pub name: String,
    pub count: u32,
    /// The share of machines with power_type redfish (0 to 1); the rest
    /// are ipmi. Spread evenly over the fleet.
    #[serde(default)]
    pub redfish: f64,
    /// The share of machines whose BMC has `faults` from the start (0 to 1).
    #[serde(default)]
    pub faulty: f64,
    /// What is wrong with a faulty machine's BMC (default: no answer).
    #[serde(default = "default_fleet_faults")]
    pub faults: Vec<Fault>,
    /// A share of machines that shut themselves down: the chassis turns
    /// off `after` each power-on, nobody asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub powers_off_after: Option<PowersOffAfter>,
    /// The share of machines whose BMC accepts power-on (IPMI and Redfish)
    /// but whose chassis never comes on (0 to 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub never_powers_on: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// `powers_off_after: {share: 0.1, after: 30s}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PowersOffAfter {
    pub share: f64,
    pub after: DurationStr,
}

/// What a fleet machine is, besides its power type: each machine has at
/// most one (the shares are disjoint; see [`FleetSpec::behaviours`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetBehaviour {
    /// Nothing wrong.
    Plain,
    /// Its BMC has the fleet's `faults` from the start.
    Faulty,
    /// Its chassis turns off this long after each power-on.
    PowersOffAfter(Duration),
    /// Its BMC accepts power-on; the chassis never comes on.
    NeverPowersOn,
}

impl FleetBehaviour {
    /// The name the fleet summary counts it under.
    pub fn as_str(self) -> &'static str {
        match self {
            FleetBehaviour::Plain => "plain",
            FleetBehaviour::Faulty => "faulty",
            FleetBehaviour::PowersOffAfter(_) => "powers_off_after",
            FleetBehaviour::NeverPowersOn => "never_powers_on",
        }
    }
}

fn default_fleet_name() -> String {
    "fleet".into()
}

fn default_fleet_faults() -> Vec<Fault> {
    vec![Fault::NoAnswer]
}

impl FleetSpec {
    /// Whether machine `i` (0-based) is in the first `share` of the fleet,
    /// spread evenly: i is picked when floor((i+1)*share) > floor(i*share).
    pub fn picks(share: f64, i: u32) -> bool {
        ((i + 1) as f64 * share).floor() > (i as f64 * share).floor()
    }

    pub fn machine_name(&self, i: u32) -> String {
        format!("{}-{}", self.name, i + 1)
    }

    /// Each machine's behaviour: floor(share x count) machines for each,
    /// never two on one machine, each spread evenly over the fleet. Every
    /// behaviour's k-th machine (plain ones too) has the ideal place
    /// k/n of the way along; machines are handed out in the order of those
    /// places (ties: plain, faulty, powers_off_after, never_powers_on).
    pub fn behaviours(&self) -> Vec<FleetBehaviour> {
        let n = self.count as u64;
        let how_many = |share: f64| ((n as f64) * share + 1e-9).floor() as u64;
        let mut wanted: Vec<(u64, FleetBehaviour)> = vec![
            (0, FleetBehaviour::Plain),
            (how_many(self.faulty), FleetBehaviour::Faulty),
        ];
        if let Some(p) = &self.powers_off_after {
            wanted.push((how_many(p.share), FleetBehaviour::PowersOffAfter(p.after.0)));
        }
        wanted.push((
            how_many(self.never_powers_on),
            FleetBehaviour::NeverPowersOn,
        ));
        let taken: u64 = wanted.iter().map(|(k, _)| k).sum();
        wanted[0].0 = n.saturating_sub(taken);
        // (k, of, tie order, behaviour): the k-th of `of` sits at k/of.
        let mut places: Vec<(u64, u64, usize, FleetBehaviour)> = wanted
            .iter()
            .enumerate()
            .flat_map(|(order, (of, b))| (1..=*of).map(move |k| (k, *of, order, *b)))
            .collect();
        places.sort_by(|a, b| (a.0 * b.1).cmp(&(b.0 * a.1)).then(a.2.cmp(&b.2)));
        places
            .into_iter()
            .take(self.count as usize)
            .map(|p| p.3)
            .collect()
    }
}

fn one() -> u32 {
    1
}
fn yes() -> bool {
    true
}
fn default_cpu() -> String {
    "Haswell-noTSX".into()
}
fn default_memory() -> ByteSize {
    ByteSize(1024 * MIB)
}
fn default_nics() -> Vec<Nic> {
    vec![Nic {
        model: None,
        name: None,
    }]
}
fn default_disks() -> Vec<Disk> {
    vec![Disk {
        size: ByteSize(4 * 1024 * MIB),
    }]
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    #[default]
    Bios,
    Uefi,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Nic {
    /// None: `NicModel::default_for` the machine's firmware.
    #[serde(default)]
    pub model: Option<NicModel>,
    /// Interface name the guest should see (informational for snapshots).
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NicModel {
    Virtio,
    E1000,
    Rtl8139,
}

impl NicModel {
    /// The model of a NIC whose scenario names none. A BIOS machine
    /// PXE-boots through its NIC's iPXE ROM, and lpxelinux downloads the
    /// kernel through that ROM's UNDI. iPXE's virtio-net there (Debian's
    /// ipxe-qemu) turns the queue's interrupt back on without looking at
    /// the ring again, so packets QEMU delivers in that gap raise nothing;
    /// when they fill its 8 receive buffers the download stops for good
    /// (issue 18, docs/lab.md). e1000 has no such gap: unmasking raises
    /// what is pending. UEFI machines' iPXE polls, so they keep virtio.
    pub fn default_for(firmware: Firmware) -> NicModel {
        match firmware {
            Firmware::Bios => NicModel::E1000,
            Firmware::Uefi => NicModel::Virtio,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub size: ByteSize,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BmcOptions {
    /// What the BMC's LAN side accepts. In-band, QEMU's KCS always says 2.0.
    #[serde(default)]
    pub ipmi: IpmiVersions,
    /// Cipher suites offered over RMCP+; 0 only when listed here.
    #[serde(default = "default_suites")]
    pub cipher_suites: Vec<u8>,
    /// The factory account; the password never reaches logs or snapshots.
    #[serde(default)]
    pub credentials: Credentials,
    /// Faults active from the start; steps can inject and clear more.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Serve Redfish over HTTPS too, on the same state, on the BMC's
    /// address, port 443 (docs/bmc.md "Redfish").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redfish: bool,
}

impl Default for BmcOptions {
    fn default() -> Self {
        BmcOptions {
            ipmi: IpmiVersions::default(),
            cipher_suites: default_suites(),
            credentials: Credentials::default(),
            faults: Vec::new(),
            redfish: false,
        }
    }
}

fn default_suites() -> Vec<u8> {
    vec![1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17]
}

/// The cipher suites a BMC may offer.
pub const SUPPORTED_SUITES: [u8; 12] = [0, 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17];

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum IpmiVersions {
    #[serde(rename = "1.5")]
    V15,
    #[serde(rename = "2.0")]
    V20,
    #[default]
    #[serde(rename = "both")]
    Both,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    #[serde(default = "default_user")]
    pub username: String,
    /// Omitted: a password derived from the seed.
    #[serde(default)]
    pub password: Option<String>,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials {
            username: default_user(),
            password: None,
        }
    }
}

fn default_user() -> String {
    "admin".into()
}

/// A BMC misbehaviour, injected at start or by a step.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// The BMC stops answering on its LAN side.
    NoAnswer,
    /// Every answer is delayed.
    Latency { delay: DurationStr },
    /// A command fails with `completion_code` for its first `times` calls.
    FailCommand {
        command: IpmiCommandName,
        #[serde(default)]
        on: Channel,
        #[serde(default = "one")]
        times: u32,
        /// Defaults to 0xFF ("unspecified", which ipmipower prints as "BMC error").
        #[serde(default = "default_cc")]
        completion_code: u8,
    },
    /// Chassis Control "power up" answers success and does nothing.
    IgnorePowerOn,
    /// The cipher suite is refused at Open Session.
    RefuseCipherSuite { suite: u8 },
    /// Every Nth datagram is dropped.
    DropEveryNth { n: u32 },
}

fn default_cc() -> u8 {
    0xFF
}

/// Commands a fault may target, by their IPMI spec names.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IpmiCommandName {
    /// The first datagram of every LAN session: failing it with 0xFF is what
    /// makes ipmipower print "BMC error" (in-session failures on LAN_2_0 it
    /// swallows silently).
    GetChannelAuthCapabilities,
    GetChassisStatus,
    ChassisControl,
    SetSystemBootOptions,
    SetUserPassword,
    SetUserName,
    SetUserAccess,
    GetDeviceId,
    GetLanConfigParameters,
    SetLanConfigParameters,
    SetChannelAccess,
}

impl IpmiCommandName {
    /// (netfn, cmd) per the IPMI 2.0 specification's command tables.
    pub fn code(self) -> (u8, u8) {
        match self {
            IpmiCommandName::GetChassisStatus => (0x00, 0x01),
            IpmiCommandName::ChassisControl => (0x00, 0x02),
            IpmiCommandName::SetSystemBootOptions => (0x00, 0x08),
            IpmiCommandName::GetDeviceId => (0x06, 0x01),
            IpmiCommandName::GetChannelAuthCapabilities => (0x06, 0x38),
            IpmiCommandName::SetChannelAccess => (0x06, 0x40),
            IpmiCommandName::SetUserAccess => (0x06, 0x43),
            IpmiCommandName::SetUserName => (0x06, 0x45),
            IpmiCommandName::SetUserPassword => (0x06, 0x47),
            IpmiCommandName::SetLanConfigParameters => (0x0C, 0x01),
            IpmiCommandName::GetLanConfigParameters => (0x0C, 0x02),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    #[default]
    Any,
    Lan,
    Inband,
    Redfish,
}

/// One action of the drive stage, run in order.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    PowerOn(MachineRef),
    PowerOff(MachineRef),
    PowerCycle(MachineRef),
    /// POST op=commission (needs a MAAS target).
    Commission(MachineRef),
    /// POST machines/ as the admin, with the machine's MACs, power type and
    /// power parameters, without commissioning: how an operator adds
    /// hardware MAAS cannot enlist by itself (needs a MAAS target).
    CreateMachine(MachineRef),
    WaitStatus(WaitStatus),
    WaitPower(WaitPower),
    InjectFault(InjectFault),
    ClearFaults(MachineRef),
    Sleep(DurationStr),
    /// Power a share of the machines on or off through the API and wait
    /// until MAAS shows each in that state or its change failed (fleets).
    PowerFraction(PowerFraction),
    /// Wait until MAAS knows the power state (on, off or error) of every
    /// machine: its power monitor has queried each one (fleets).
    WaitPowerKnown(WaitPowerKnown),
    /// Wait until MAAS shows every machine in the power state its BMC's
    /// chassis is in (the BMCs are the lab's), machines whose power reads
    /// fail (MAAS shows error) aside: the monitor has caught up with the
    /// machines that changed by themselves (fleets).
    WaitPowerSettled(WaitPowerKnown),
    /// The inner step must fail with an error matching `matches` (e.g. a
    /// BMC that acknowledges power on without doing it).
    ExpectError(ExpectError),
    /// Someone presses the machine's own power button (its VM starts, MAAS
    /// not asked): how a known machine MAAS will not start boots again
    /// (2.8 refuses op=power_on for a machine nobody allocated).
    PressPowerButton(MachineRef),
    /// A user uploads a script through the MAAS API (POST scripts/, 2.8
    /// api/scripts.py); op=commission then runs it after the built-ins.
    UploadScript(UploadScript),
}

/// A script the scenario uploads (the `upload_script` step).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UploadScript {
    /// MAAS's script name: letters, digits and `_ . + -`.
    pub name: String,
    /// When MAAS runs it.
    #[serde(rename = "type")]
    pub script_type: ScriptType,
    /// The script itself (a `#!` line first).
    pub script: String,
}

/// 2.8's script types a scenario may upload (testing scripts run only
/// when tagged or named, which the sim does not model).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScriptType {
    Commissioning,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectError {
    pub step: Box<Step>,
    /// A regular expression the step's error must match.
    pub matches: String,
}

/// A machine name, or `all`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(transparent)]
pub struct MachineRef(pub String);

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WaitStatus {
    pub machine: MachineRef,
    pub status: MachineStatus,
    pub timeout: DurationStr,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WaitPower {
    pub machine: MachineRef,
    pub state: PowerState,
    pub timeout: DurationStr,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PowerFraction {
    pub machine: MachineRef,
    /// The first ceil(fraction x N) machines of the selection (0 to 1).
    pub fraction: f64,
    pub state: PowerState,
    pub timeout: DurationStr,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WaitPowerKnown {
    pub machine: MachineRef,
    pub timeout: DurationStr,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    On,
    Off,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InjectFault {
    pub machine: MachineRef,
    pub fault: Fault,
}

/// MAAS 2.8 node statuses a scenario may wait for, by their status_name.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum MachineStatus {
    New,
    Commissioning,
    #[serde(rename = "Failed commissioning")]
    FailedCommissioning,
    Ready,
    Testing,
    #[serde(rename = "Failed testing")]
    FailedTesting,
}

impl MachineStatus {
    /// The status number MAAS 2.8 uses (src/maasserver/enum.py NODE_STATUS).
    pub fn code(self) -> u32 {
        match self {
            MachineStatus::New => 0,
            MachineStatus::Commissioning => 1,
            MachineStatus::FailedCommissioning => 2,
            MachineStatus::Ready => 4,
            MachineStatus::Testing => 21,
            MachineStatus::FailedTesting => 22,
        }
    }
}

/// A typed check on the observed result.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Expectation {
    /// A field of the machine's result (status_name, power_type, power_state,
    /// power_parameters.power_user, ...) equals or matches.
    Machine(FieldCheck),
    /// These event descriptions occur in this order (others may interleave).
    Events(EventsCheck),
    /// The BMC transcript contains a command (optionally with a completion code).
    BmcTranscript(TranscriptCheck),
    /// A field of an API object (GET PATH, then a dotted field path).
    Api(ApiCheck),
    /// An HTTP response lacks a header (e.g. `Server`, the secure_headers patch).
    HttpHeaderAbsent(HeaderCheck),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldCheck {
    pub machine: MachineRef,
    pub field: String,
    #[serde(flatten)]
    pub want: Want,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Want {
    Equals(serde_json::Value),
    /// A regular expression the value's text form must match.
    Matches(String),
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EventsCheck {
    pub machine: MachineRef,
    pub subsequence: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TranscriptCheck {
    pub machine: MachineRef,
    pub command: String,
    #[serde(default)]
    pub completion_code: Option<u8>,
    #[serde(default)]
    pub channel: Channel,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiCheck {
    pub path: String,
    pub field: String,
    #[serde(flatten)]
    pub want: Want,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeaderCheck {
    /// `region` (5240) or `rack` (5249), or a path on the region.
    pub endpoint: String,
    pub header: String,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotPart {
    Machines,
    Events,
    Bmc,
    Network,
}

const MIB: u64 = 1024 * 1024;

/// A size written as `512MiB`, `4GiB` or a plain number of MiB.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(into = "String")]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn mib(self) -> u64 {
        self.0 / MIB
    }
}

impl From<ByteSize> for String {
    fn from(b: ByteSize) -> String {
        if b.0.is_multiple_of(1024 * MIB) {
            format!("{}GiB", b.0 / (1024 * MIB))
        } else {
            format!("{}MiB", b.0 / MIB)
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of MiB or a size such as 512MiB or 4GiB")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(n * MIB))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ByteSize, E> {
                let bad = || {
                    E::custom(format!(
                        "size `{s}` is not understood; allowed: a number of MiB or a number with MiB or GiB, e.g. 512MiB, 4GiB"
                    ))
                };
                let t = s.trim();
                let (num, unit) =
                    t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
                let n: u64 = num.parse().map_err(|_| bad())?;
                let mult = match unit.trim() {
                    "" | "M" | "MiB" => MIB,
                    "G" | "GiB" => 1024 * MIB,
                    _ => return Err(bad()),
                };
                Ok(ByteSize(n * mult))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A duration written as humantime text (`90s`, `5m`, `1h 30m`).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(into = "String")]
pub struct DurationStr(pub Duration);

impl From<DurationStr> for String {
    fn from(d: DurationStr) -> String {
        humantime::format_duration(d.0).to_string()
    }
}

impl<'de> Deserialize<'de> for DurationStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map(DurationStr).map_err(|e| {
            serde::de::Error::custom(format!(
                "duration `{s}` is not understood ({e}); allowed: a number with a unit, e.g. 30s, 5m, 1h 30m"
            ))
        })
    }
}

#[cfg(test)]
mod sim_settings_tests {
    use super::*;

    #[test]
    fn sim_profile_is_2_8_unless_named_and_unknown_ones_say_what_is_allowed() {
        let s: SimSettings = serde_norway::from_str("{}").unwrap();
        assert_eq!(s.profile, SimProfile::Maas28);
        let s: SimSettings = serde_norway::from_str("profile: \"3.6\"\n").unwrap();
        assert_eq!(s.profile, SimProfile::Maas36);
        let e = serde_norway::from_str::<SimSettings>("profile: \"3.7\"\n").unwrap_err();
        assert!(
            e.to_string().contains("2.8") && e.to_string().contains("3.6"),
            "{e}"
        );
        assert_eq!("3.6".parse::<SimProfile>(), Ok(SimProfile::Maas36));
        let e = "4.0".parse::<SimProfile>().unwrap_err();
        assert!(e.contains("allowed: 2.8, 3.6"), "{e}");
        // The default is left out of a plan's text, so 2.8 plans read as before.
        assert!(
            !serde_norway::to_string(&SimSettings::default())
                .unwrap()
                .contains("profile")
        );
    }

    #[test]
    fn sim_speed_settings_take_maas_or_a_duration() {
        let s: SimSettings = serde_norway::from_str("power_wait_unit: maas\n").unwrap();
        assert_eq!(s.power_wait_unit(), Duration::from_secs(1));
        assert_eq!(s.autodetect_retry_base(), Duration::from_secs(1));
        let s: SimSettings = serde_norway::from_str("autodetect_retry_base: maas\n").unwrap();
        assert_eq!(s.autodetect_retry_base(), Duration::from_secs(30));
        assert_eq!(s.power_wait_unit(), Duration::from_millis(250));
        let s: SimSettings = serde_norway::from_str("power_wait_unit: 10ms\n").unwrap();
        assert_eq!(s.power_wait_unit(), Duration::from_millis(10));
    }
}
