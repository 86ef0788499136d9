//! Typed MAAS 2.8 API 2.0 objects, shared by the client and the sim region.
//!
//! Field names and status numbers are MAAS 2.8's. Fields a harness does not
//! read are left out when deserialising (serde ignores unknown fields) and
//! optional fields default, so a real MAAS answer and a sim answer both parse.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A node status number (maasserver/enum.py NODE_STATUS).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeStatus(pub i32);

impl NodeStatus {
    pub const NEW: NodeStatus = NodeStatus(0);
    pub const COMMISSIONING: NodeStatus = NodeStatus(1);
    pub const FAILED_COMMISSIONING: NodeStatus = NodeStatus(2);
    pub const MISSING: NodeStatus = NodeStatus(3);
    pub const READY: NodeStatus = NodeStatus(4);
    pub const RESERVED: NodeStatus = NodeStatus(5);
    pub const DEPLOYED: NodeStatus = NodeStatus(6);
    pub const RETIRED: NodeStatus = NodeStatus(7);
    pub const BROKEN: NodeStatus = NodeStatus(8);
    pub const DEPLOYING: NodeStatus = NodeStatus(9);
    pub const ALLOCATED: NodeStatus = NodeStatus(10);
    pub const FAILED_DEPLOYMENT: NodeStatus = NodeStatus(11);
    pub const RELEASING: NodeStatus = NodeStatus(12);
    pub const FAILED_RELEASING: NodeStatus = NodeStatus(13);
    pub const DISK_ERASING: NodeStatus = NodeStatus(14);
    pub const FAILED_DISK_ERASING: NodeStatus = NodeStatus(15);
    pub const RESCUE_MODE: NodeStatus = NodeStatus(16);
    pub const ENTERING_RESCUE_MODE: NodeStatus = NodeStatus(17);
    pub const FAILED_ENTERING_RESCUE_MODE: NodeStatus = NodeStatus(18);
    pub const EXITING_RESCUE_MODE: NodeStatus = NodeStatus(19);
    pub const FAILED_EXITING_RESCUE_MODE: NodeStatus = NodeStatus(20);
    pub const TESTING: NodeStatus = NodeStatus(21);
    pub const FAILED_TESTING: NodeStatus = NodeStatus(22);

    /// MAAS's display name (NODE_STATUS_CHOICES).
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "New",
            1 => "Commissioning",
            2 => "Failed commissioning",
            3 => "Missing",
            4 => "Ready",
            5 => "Reserved",
            6 => "Deployed",
            7 => "Retired",
            8 => "Broken",
            9 => "Deploying",
            10 => "Allocated",
            11 => "Failed deployment",
            12 => "Releasing",
            13 => "Releasing failed",
            14 => "Disk erasing",
            15 => "Failed disk erasing",
            16 => "Rescue mode",
            17 => "Entering rescue mode",
            18 => "Failed to enter rescue mode",
            19 => "Exiting rescue mode",
            20 => "Failed to exit rescue mode",
            21 => "Testing",
            22 => "Failed testing",
            _ => "Unknown",
        }
    }

    /// A status a waiter can stop at: the machine will not move on by itself.
    pub fn is_failed(self) -> bool {
        matches!(self.0, 2 | 11 | 13 | 15 | 18 | 20 | 22)
    }
}

impl fmt::Debug for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

impl Serialize for NodeStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(self.0)
    }
}

impl<'de> Deserialize<'de> for NodeStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i32::deserialize(d).map(NodeStatus)
    }
}

/// A machine's power state as MAAS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PowerState {
    On,
    Off,
    Error,
    #[default]
    #[serde(other)]
    Unknown,
}

impl PowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::Error => "error",
            PowerState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> PowerState {
        match s {
            "on" => PowerState::On,
            "off" => PowerState::Off,
            "error" => PowerState::Error,
            _ => PowerState::Unknown,
        }
    }
}

/// `version/` (anonymous).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub capabilities: Vec<String>,
    pub version: String,
    pub subversion: String,
}

/// A zone or resource pool reference inside a machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedRef {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub resource_uri: String,
}

/// A domain reference inside a machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub authoritative: bool,
    #[serde(default)]
    pub resource_uri: String,
}

/// A VLAN (also embedded in interfaces and subnets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vlan {
    pub id: i64,
    pub vid: u16,
    pub name: String,
    /// The fabric's name.
    pub fabric: String,
    pub fabric_id: i64,
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    #[serde(default)]
    pub dhcp_on: bool,
    #[serde(default)]
    pub external_dhcp: Option<String>,
    /// system_id of the rack serving DHCP.
    #[serde(default)]
    pub primary_rack: Option<String>,
    #[serde(default)]
    pub secondary_rack: Option<String>,
    #[serde(default)]
    pub relay_vlan: Option<serde_json::Value>,
    #[serde(default)]
    pub space: Option<String>,
    #[serde(default)]
    pub resource_uri: String,
}

fn default_mtu() -> u32 {
    1500
}

/// A fabric with its VLANs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fabric {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub class_type: Option<String>,
    pub vlans: Vec<Vlan>,
    #[serde(default)]
    pub resource_uri: String,
}

/// A subnet; its VLAN is embedded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subnet {
    pub id: i64,
    pub name: String,
    pub cidr: String,
    pub vlan: Vlan,
    #[serde(default)]
    pub gateway_ip: Option<String>,
    #[serde(default)]
    pub dns_servers: Vec<String>,
    #[serde(default = "yes")]
    pub managed: bool,
    #[serde(default)]
    pub active_discovery: bool,
    #[serde(default = "yes")]
    pub allow_dns: bool,
    #[serde(default = "yes")]
    pub allow_proxy: bool,
    #[serde(default)]
    pub rdns_mode: i32,
    #[serde(default)]
    pub space: Option<String>,
    #[serde(default)]
    pub resource_uri: String,
}

fn yes() -> bool {
    true
}

/// An IP range (`type` dynamic or reserved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpRange {
    pub id: i64,
    #[serde(rename = "type")]
    pub range_type: String,
    pub start_ip: String,
    pub end_ip: String,
    #[serde(default)]
    pub comment: String,
    pub subnet: Subnet,
    /// The user object of whoever made the range (`username` inside).
    #[serde(default)]
    pub user: serde_json::Value,
    #[serde(default)]
    pub resource_uri: String,
}

/// An IP link of an interface (address assignment on a subnet).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceLink {
    pub id: i64,
    pub mode: String,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub subnet: Option<Subnet>,
}

/// A network interface of a machine or controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub iface_type: String,
    pub mac_address: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub vlan: Option<Vlan>,
    #[serde(default)]
    pub links: Vec<InterfaceLink>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub params: serde_json::Value,
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub vendor: Option<String>,
    // The rest of MAAS 2.8's DISPLAYED_INTERFACE_FIELDS (api/interfaces.py),
    // with the values 2.8 gives an interface nothing was learnt about.
    #[serde(default)]
    pub system_id: String,
    #[serde(default)]
    pub parents: Vec<String>,
    #[serde(default)]
    pub children: Vec<String>,
    #[serde(default)]
    pub discovered: Option<serde_json::Value>,
    #[serde(default)]
    pub effective_mtu: u32,
    #[serde(default)]
    pub firmware_version: Option<String>,
    #[serde(default)]
    pub link_connected: bool,
    #[serde(default)]
    pub interface_speed: u64,
    #[serde(default)]
    pub link_speed: u64,
    #[serde(default)]
    pub numa_node: Option<i64>,
    #[serde(default)]
    pub sriov_max_vf: u32,
    #[serde(default)]
    pub resource_uri: String,
}

impl Interface {
    /// A physical interface as MAAS 2.8 shows one known only by name and
    /// MAC: enabled, connected, MTU 1500, NUMA node 0, no VLAN or links.
    pub fn physical(id: i64, name: &str, mac: &str, system_id: &str) -> Interface {
        Interface {
            id,
            name: name.to_string(),
            iface_type: "physical".into(),
            mac_address: mac.to_string(),
            enabled: true,
            vlan: None,
            links: Vec::new(),
            tags: Vec::new(),
            params: serde_json::Value::String(String::new()),
            product: None,
            vendor: None,
            system_id: system_id.to_string(),
            parents: Vec::new(),
            children: Vec::new(),
            discovered: None,
            effective_mtu: 1500,
            firmware_version: None,
            link_connected: true,
            interface_speed: 0,
            link_speed: 0,
            numa_node: Some(0),
            sriov_max_vf: 0,
            resource_uri: format!("/MAAS/api/2.0/nodes/{system_id}/interfaces/{id}/"),
        }
    }
}

/// A physical block device (commissioning reports them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockDevice {
    pub id: i64,
    pub name: String,
    pub size: u64,
    #[serde(default = "block_size")]
    pub block_size: u64,
    #[serde(rename = "type", default = "physical")]
    pub device_type: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub serial: String,
    #[serde(default)]
    pub resource_uri: String,
}

fn block_size() -> u64 {
    512
}

fn physical() -> String {
    "physical".to_string()
}

/// A machine (`machines/`, `machines/{system_id}/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub system_id: String,
    pub hostname: String,
    #[serde(default)]
    pub fqdn: String,
    #[serde(default)]
    pub domain: Option<Domain>,
    pub status: NodeStatus,
    pub status_name: String,
    #[serde(default)]
    pub status_message: Option<String>,
    #[serde(default)]
    pub power_state: PowerState,
    #[serde(default)]
    pub power_type: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub boot_interface: Option<Interface>,
    #[serde(default)]
    pub interface_set: Vec<Interface>,
    #[serde(default)]
    pub cpu_count: u32,
    #[serde(default)]
    pub cpu_speed: u32,
    /// MiB.
    #[serde(default)]
    pub memory: u64,
    /// MB (MAAS reports a float).
    #[serde(default)]
    pub storage: f64,
    #[serde(default)]
    pub physicalblockdevice_set: Vec<BlockDevice>,
    #[serde(default)]
    pub zone: Option<NamedRef>,
    #[serde(default)]
    pub pool: Option<NamedRef>,
    #[serde(default)]
    pub node_type: i32,
    #[serde(default)]
    pub node_type_name: String,
    #[serde(default)]
    pub commissioning_status: i32,
    #[serde(default)]
    pub commissioning_status_name: String,
    #[serde(default)]
    pub testing_status: i32,
    #[serde(default)]
    pub testing_status_name: String,
    #[serde(default)]
    pub netboot: bool,
    #[serde(default)]
    pub osystem: String,
    #[serde(default)]
    pub distro_series: String,
    #[serde(default)]
    pub bios_boot_method: Option<String>,
    #[serde(default)]
    pub ip_addresses: Vec<String>,
    #[serde(default)]
    pub tag_names: Vec<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub description: String,
    // The rest of MAAS 2.8's DISPLAYED_MACHINE_FIELDS (api/machines.py),
    // typed as 2.8 gives them; `constraints_by_type` exists only on an
    // allocated machine. JSON values where the sim models nothing inside.
    #[serde(default)]
    pub hardware_uuid: Option<String>,
    #[serde(default)]
    pub owner_data: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub locked: bool,
    #[serde(default)]
    pub cache_sets: Vec<serde_json::Value>,
    #[serde(default)]
    pub bcaches: Vec<serde_json::Value>,
    #[serde(default)]
    pub min_hwe_kernel: Option<String>,
    #[serde(default)]
    pub hwe_kernel: Option<String>,
    #[serde(default)]
    pub swap_size: Option<u64>,
    #[serde(default)]
    pub address_ttl: Option<u32>,
    #[serde(default)]
    pub disable_ipv4: bool,
    #[serde(default)]
    pub boot_disk: Option<serde_json::Value>,
    #[serde(default)]
    pub blockdevice_set: Vec<serde_json::Value>,
    #[serde(default)]
    pub iscsiblockdevice_set: Vec<serde_json::Value>,
    #[serde(default)]
    pub virtualblockdevice_set: Vec<serde_json::Value>,
    #[serde(default)]
    pub volume_groups: Vec<serde_json::Value>,
    #[serde(default)]
    pub raids: Vec<serde_json::Value>,
    #[serde(default)]
    pub special_filesystems: Vec<serde_json::Value>,
    #[serde(default)]
    pub status_action: Option<String>,
    #[serde(default)]
    pub pod: Option<serde_json::Value>,
    #[serde(default)]
    pub default_gateways: serde_json::Value,
    #[serde(default)]
    pub current_commissioning_result_id: Option<i64>,
    #[serde(default)]
    pub current_testing_result_id: Option<i64>,
    #[serde(default)]
    pub current_installation_result_id: Option<i64>,
    #[serde(default)]
    pub cpu_test_status: i32,
    #[serde(default)]
    pub cpu_test_status_name: String,
    #[serde(default)]
    pub memory_test_status: i32,
    #[serde(default)]
    pub memory_test_status_name: String,
    #[serde(default)]
    pub network_test_status: i32,
    #[serde(default)]
    pub network_test_status_name: String,
    #[serde(default)]
    pub storage_test_status: i32,
    #[serde(default)]
    pub storage_test_status_name: String,
    #[serde(default)]
    pub other_test_status: i32,
    #[serde(default)]
    pub other_test_status_name: String,
    #[serde(default)]
    pub interface_test_status: i32,
    #[serde(default)]
    pub interface_test_status_name: String,
    #[serde(default)]
    pub hardware_info: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub numanode_set: Vec<NumaNode>,
    #[serde(default)]
    pub resource_uri: String,
}

/// A NUMA node of a machine (DISPLAYED_NUMANODE_FIELDS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumaNode {
    pub index: u32,
    pub cores: Vec<u32>,
    /// MiB.
    pub memory: u64,
}

/// A service a controller runs (`service_set`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    pub status: String,
    #[serde(default)]
    pub status_info: String,
}

/// A rack controller (`rackcontrollers/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RackController {
    pub system_id: String,
    pub hostname: String,
    #[serde(default)]
    pub fqdn: String,
    #[serde(default)]
    pub node_type: i32,
    #[serde(default)]
    pub node_type_name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub interface_set: Vec<Interface>,
    #[serde(default)]
    pub service_set: Vec<ServiceStatus>,
    #[serde(default)]
    pub resource_uri: String,
}

/// One event (`events/?op=query`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    /// The node's system_id (null for events no machine could be found for).
    pub node: Option<String>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub username: String,
    pub level: String,
    /// "Wed, 25 Nov. 2026 12:00:00" (MAAS's format, region time zone).
    pub created: String,
    /// The event type's description, e.g. "Node changed status".
    #[serde(rename = "type")]
    pub event_type: String,
    /// E.g. "From 'New' to 'Commissioning'".
    pub description: String,
}

/// The answer of `events/?op=query`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsPage {
    pub count: usize,
    pub events: Vec<Event>,
    #[serde(default)]
    pub next_uri: String,
    #[serde(default)]
    pub prev_uri: String,
}

/// Script result status (metadataserver/enum.py SCRIPT_STATUS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptStatus;

impl ScriptStatus {
    pub const PENDING: i32 = 0;
    pub const RUNNING: i32 = 1;
    pub const PASSED: i32 = 2;
    pub const FAILED: i32 = 3;
    pub const TIMEDOUT: i32 = 4;

    pub fn name(status: i32) -> &'static str {
        match status {
            0 => "Pending",
            1 => "Running",
            2 => "Passed",
            3 => "Failed",
            4 => "Timed out",
            5 => "Aborted",
            6 => "Degraded",
            7 => "Installing dependencies",
            8 => "Failed installing dependencies",
            9 => "Skipped",
            _ => "Unknown",
        }
    }
}

/// One script's result inside a script set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptResult {
    pub id: i64,
    pub name: String,
    pub status: i32,
    pub status_name: String,
    #[serde(default)]
    pub exit_status: Option<i32>,
    #[serde(default)]
    pub started: Option<String>,
    #[serde(default)]
    pub ended: Option<String>,
    #[serde(default)]
    pub runtime: String,
    #[serde(default)]
    pub suppressed: bool,
    /// Base64 of the combined output, present with include_output=1.
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub stdout: Option<String>,
    #[serde(default)]
    pub stderr: Option<String>,
    /// Base64 of the result YAML, present with include_output=1.
    #[serde(default)]
    pub result: Option<String>,
}

/// A script set (`nodes/{id}/results/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptSet {
    pub id: i64,
    pub system_id: String,
    /// 0 commissioning, 1 installation, 2 testing.
    #[serde(rename = "type")]
    pub result_type: i32,
    pub type_name: String,
    pub status: i32,
    pub status_name: String,
    #[serde(default)]
    pub last_ping: Option<String>,
    #[serde(default)]
    pub started: Option<String>,
    #[serde(default)]
    pub ended: Option<String>,
    #[serde(default)]
    pub runtime: String,
    pub results: Vec<ScriptResult>,
    #[serde(default)]
    pub resource_uri: String,
}

/// A synced boot resource (`boot-resources/`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootResource {
    pub id: i64,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub name: String,
    pub architecture: String,
    #[serde(default)]
    pub resource_uri: String,
}

/// `machines/{id}/?op=query_power_state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerStateReply {
    pub state: PowerState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_match_maas() {
        let pairs: Vec<(i32, &str)> = [0, 1, 2, 4, 21, 22]
            .iter()
            .map(|n| (*n, NodeStatus(*n).name()))
            .collect();
        insta::assert_yaml_snapshot!(pairs);
        assert!(NodeStatus::FAILED_COMMISSIONING.is_failed());
        assert!(!NodeStatus::READY.is_failed());
    }

    #[test]
    fn power_state_unknown_values_map_to_unknown() {
        let p: PowerState = serde_json::from_str("\"weird\"").unwrap();
        assert_eq!(p, PowerState::Unknown);
        assert_eq!(serde_json::to_string(&PowerState::On).unwrap(), "\"on\"");
    }
}
