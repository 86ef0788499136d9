//! The BMC side of the lab: the fleet config a plan asks for, scenario
//! faults as fault switches, the power parameters MAAS's autodetect would
//! report, and the fleet transcript split per machine.

use std::path::{Path, PathBuf};

use crate::bmc::config::{
    BmcConfig, FleetConfig, InbandEndpoint, LanEndpoint, PowerConfig, PrivilegeName,
    RedfishEndpoint, SessionType, UserConfig,
};
use crate::bmc::fault::{Fault as BmcFault, Where};
use crate::lab::net::Ipv4Subnet;
use crate::plan::{MachinePlan, Plan};
use crate::report::result::TranscriptLine;
use crate::scenario::{Channel, Fault, IpmiVersions};
use crate::targets::sim::power::IpmiParams;

/// The fleet's transcript (all BMCs); split per machine at observe.
pub fn transcript_path(plan: &Plan) -> PathBuf {
    plan.host.run_dir.join("bmc-transcript.jsonl")
}

/// The power parameters MAAS's autodetect would report for this BMC.
pub fn ipmi_params(m: &MachinePlan) -> IpmiParams {
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
        k_g: String::new(),
        cipher_suite_id: String::new(),
        privilege_level: String::new(),
        workaround_flags: None,
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
                    PowerConfig::Memory {
                        on: false,
                        powers_off_after: m.bmc.powers_off_after,
                    }
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
                redfish: m.bmc.redfish.then(|| RedfishEndpoint {
                    address: format!("{}:443", m.bmc.lan_ip),
                }),
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
                Channel::Redfish => Where::Redfish,
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
pub fn read_transcript(path: &Path) -> Vec<(String, TranscriptLine)> {
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
                    argument: argument(
                        v["name"].as_str().unwrap_or_default(),
                        v["request"].as_str().unwrap_or_default(),
                    ),
                },
            )
        })
        .collect()
}

/// What a request asked for, for the commands whose data tells one action
/// from another: Chassis Control's action (IPMI 2.0 §28.3) and the boot
/// device of Set System Boot Options parameter 5 (§28.13, boot flags);
/// other parameters by number. `None` for everything else.
pub fn argument(name: &str, request_hex: &str) -> Option<String> {
    let req = hex::decode(request_hex).ok()?;
    match name {
        "ChassisControl" => Some(
            match req.first()? & 0x0F {
                0 => "off",
                1 => "on",
                2 => "cycle",
                3 => "reset",
                4 => "diag",
                5 => "soft",
                _ => "invalid",
            }
            .to_string(),
        ),
        "SetSystemBootOptions" => {
            let param = req.first()? & 0x7F;
            if param != 5 {
                return Some(format!("param {param}"));
            }
            let flags: [u8; 5] = req.get(1..6)?.try_into().ok()?;
            let mut a = crate::bmc::state::boot_device_name(&flags).to_string();
            if flags[0] & 0x80 == 0 {
                a.push_str(", not valid");
            }
            if flags[0] & 0x40 != 0 {
                a.push_str(", persistent");
            }
            if flags[0] & 0x20 != 0 {
                a.push_str(", efi");
            }
            Some(a)
        }
        _ => None,
    }
}

/// machines/NAME/bmc-transcript.jsonl: this BMC's lines of the fleet transcript.
pub fn write_machine_transcript(m: &MachinePlan, fleet: &Path) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_redfish_puts_an_https_endpoint_on_the_bmc_address() {
        let src = "description: r\ntargets: [none]\nmachines:\n  - name: rf\n    vm: false\n    bmc: {redfish: true}\n  - name: plain\n    vm: false\nsteps: []\n";
        let loaded = crate::scenario::parse(Path::new("r.yaml"), src).unwrap();
        let p = crate::plan::plan(
            &loaded,
            crate::scenario::TargetKind::None,
            &crate::plan::RunId::generate(),
            1,
            Path::new("/tmp/maas-e2e-redfish-plan-test"),
        );
        let cfg = fleet_config(&p);
        let rf = cfg.bmcs.iter().find(|b| b.name == "rf").unwrap();
        let ip = p
            .machines
            .iter()
            .find(|m| m.name == "rf")
            .unwrap()
            .bmc
            .lan_ip;
        assert_eq!(
            rf.redfish.as_ref().map(|r| r.address.clone()),
            Some(format!("{ip}:443"))
        );
        assert_eq!(rf.lan.netns.as_deref(), Some(p.host.netns.as_str()));
        let plain = cfg.bmcs.iter().find(|b| b.name == "plain").unwrap();
        assert!(plain.redfish.is_none());
    }

    #[test]
    fn arguments_tell_power_actions_and_boot_devices_apart() {
        assert_eq!(argument("ChassisControl", "01").as_deref(), Some("on"));
        assert_eq!(argument("ChassisControl", "00").as_deref(), Some("off"));
        assert_eq!(argument("ChassisControl", "02").as_deref(), Some("cycle"));
        assert_eq!(argument("ChassisControl", "05").as_deref(), Some("soft"));
        // Boot flags: valid, EFI, device PXE (1 << 2) as ipmi-chassis-config sets them.
        assert_eq!(
            argument("SetSystemBootOptions", "05a00400000000").as_deref(),
            Some("pxe, efi")
        );
        assert_eq!(
            argument("SetSystemBootOptions", "05c00800000000").as_deref(),
            Some("disk, persistent")
        );
        assert_eq!(
            argument("SetSystemBootOptions", "0001").as_deref(),
            Some("param 0")
        );
        assert_eq!(argument("GetChassisStatus", ""), None);
        assert_eq!(argument("ChassisControl", "<redacted>"), None);
        assert_eq!(argument("ChassisControl", ""), None);
    }
}
