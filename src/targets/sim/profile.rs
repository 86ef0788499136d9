//! What differs between the MAAS versions the sim imitates, in one place:
//! the version document, the IPMI power driver's argv and defaults, which
//! power events the region records, what the preseed tells the guest.
//! The profile is chosen per scenario (`sim: {profile: "3.6"}`) or by
//! `run --sim-profile`; 2.8 is the default. Facts cite the MAAS source
//! file at the tag named (canonical/maas, 2.8.7 and 3.6.4); docs/sim.md
//! lists what the 3.6 profile does not model.

pub use crate::scenario::SimProfile;

impl SimProfile {
    /// `version` of `GET version/`: the MAAS release whose API the sim
    /// speaks (3.6.4: maasserver/api/version.py, str(get_maas_version())).
    pub fn maas_version(self) -> &'static str {
        match self {
            SimProfile::Maas28 => "2.8.7",
            SimProfile::Maas36 => "3.6.4",
        }
    }

    /// Whether the region records "Powering on/off", "Power cycling" and
    /// "Node powered on/off" around a power change. 2.8 does
    /// (rpc/power.py change_power_state, power_change_success); 3.6 runs
    /// power changes as Temporal workflows (maastemporalworker/workflow/
    /// power.py) that record no event, and its event table no longer has
    /// NODE_POWER_ON_STARTING (maascommon/events.py).
    pub fn records_power_change_events(self) -> bool {
        match self {
            SimProfile::Maas28 => true,
            SimProfile::Maas36 => false,
        }
    }

    /// Whether a failed power query records "Failed to query node's BMC"
    /// (NODE_POWER_QUERY_FAILED, the driver's message as description).
    /// The rack's power monitor does in both versions (rpc/power.py
    /// report_power_state -> power_query_failure, every 15 s,
    /// rackdservices/node_power_monitor_service.py). An API query
    /// (op=query_power_state) does in 2.8.7: the rack's PowerQuery answers
    /// {state: error, error_msg} and models/node.py power_query records it.
    /// In 3.6.4 it does not: Node.power_query runs the power-query Temporal
    /// workflow (maastemporalworker/workflow/power.py, 3 attempts); its
    /// failure is raised as PowerActionFail and the event callback
    /// (cb_create_event) runs only on a result.
    pub fn query_failure_event(self, via: QueryVia) -> bool {
        match (self, via) {
            (_, QueryVia::Monitor) => true,
            (SimProfile::Maas28, QueryVia::Api) => true,
            (SimProfile::Maas36, QueryVia::Api) => false,
        }
    }

    /// Whether an API query also marks the machine as just queried, so the
    /// monitor (nodes never queried or queried over 5 minutes ago) skips
    /// it. MAAS sets power_state_queried only when the rack lists the node
    /// for its monitor (rpc/nodes.py list_cluster_nodes_power_parameters,
    /// 2.8.7 and 3.6.4 alike). The 3.6 profile follows that, so a machine
    /// whose API queries fail gets its event from the monitor's next tick;
    /// the 2.8 profile keeps the sim's earlier shortcut (its goldens were
    /// recorded with it; docs/sim.md).
    pub fn api_query_marks_monitored(self) -> bool {
        match self {
            SimProfile::Maas28 => true,
            SimProfile::Maas36 => false,
        }
    }

    /// The IPMI power driver's command line (drivers/power/ipmi.py).
    pub fn ipmi_argv(self) -> IpmiArgv {
        match self {
            SimProfile::Maas28 => IpmiArgv::Maas28,
            SimProfile::Maas36 => IpmiArgv::Maas36,
        }
    }

    /// `MAAS_PROFILE` in the preseed: which BMC configuration the guest
    /// scripts follow (None: 2.8's, nothing written, the contract as before).
    pub fn preseed_value(self) -> Option<&'static str> {
        match self {
            SimProfile::Maas28 => None,
            SimProfile::Maas36 => Some("3.6"),
        }
    }
}

/// Who asked for a power query: the API (op=query_power_state) or the
/// rack's power monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryVia {
    Api,
    Monitor,
}

/// How the rack's IPMI driver builds FreeIPMI's arguments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IpmiArgv {
    /// 2.8.7: always `-W opensesspriv -l OPERATOR`, then driver, host, user,
    /// password; k_g and cipher_suite_id are not power settings yet.
    #[default]
    Maas28,
    /// 3.6.4: `-W` from workaround_flags (default opensesspriv, none when
    /// set empty), then driver, host, user, password, `-k` k_g, `-I`
    /// cipher_suite_id, `-l` privilege_level (OPERATOR when unset).
    Maas36,
}

/// MAAS 3.6.4's defaults for what its bmc_config.py reports and its IPMI
/// driver reads (models/config.py maas_auto_ipmi_*, bmc_config.py main(),
/// drivers/power/ipmi.py settings). The chart sets none of the
/// maas_auto_ipmi_* options, so these are what a 3.6 pin enlists with.
pub mod maas36 {
    /// maas_auto_ipmi_cipher_suite_id ("3" since 3.2; bmc_config.py
    /// --ipmi-cipher-suite-id default): reported as cipher_suite_id.
    pub const CIPHER_SUITE_ID: &str = "3";
    /// maas_auto_ipmi_user_privilege_level: the user is created
    /// Administrator and reported as privilege_level ADMIN.
    pub const PRIVILEGE_LEVEL: &str = "ADMIN";
    /// maas_auto_ipmi_k_g_bmc_key: none, reported as an empty k_g.
    pub const K_G: &str = "";
    /// The driver's default workaround_flags when the parameters have none.
    pub const WORKAROUND_FLAGS: &[&str] = &["opensesspriv"];
    /// The driver's privilege level when privilege_level is unset (LP:1889788).
    pub const UNSET_PRIVILEGE_LEVEL: &str = "OPERATOR";
    /// The power parameter names bmc_config.py reports for IPMI, besides
    /// power_pass (IPMI.get_credentials).
    pub const REPORTED_PARAMETERS: &[&str] = &[
        "cipher_suite_id",
        "k_g",
        "mac_address",
        "power_address",
        "power_boot_type",
        "power_driver",
        "power_user",
        "privilege_level",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_names_a_different_maas_release() {
        let versions: std::collections::BTreeSet<_> =
            SimProfile::ALL.iter().map(|p| p.maas_version()).collect();
        assert_eq!(versions.len(), SimProfile::ALL.len());
        assert!(SimProfile::Maas36.maas_version().starts_with("3.6."));
    }

    #[test]
    fn only_the_non_default_profile_is_written_into_preseeds() {
        assert_eq!(SimProfile::default().preseed_value(), None);
        assert_eq!(SimProfile::Maas36.preseed_value(), Some("3.6"));
    }
}
