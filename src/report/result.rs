//! The normalised result of a run: what the snapshot holds.
//!
//! Built from what `observe` collected; periodic events are dropped, repeats
//! collapsed into counts, and every run value redacted before it is
//! compared, so the same scenario gives the same snapshot run after run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::redact::Redactor;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub scenario: String,
    pub target: String,
    pub machines: BTreeMap<String, MachineResult>,
    /// The scenario's fleet, summarised (src/report/fleet.rs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<super::fleet::FleetSummary>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MachineResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_type: Option<String>,
    /// Without `power_pass`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub power_parameters: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<InterfaceResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bmc: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InterfaceResult {
    pub name: String,
    pub mac: String,
    pub boot: bool,
}

/// One decoded BMC transcript line, as the BMC writes it (JSON lines).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TranscriptLine {
    #[serde(default)]
    pub channel: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub completion_code: Option<u8>,
    /// What the request asked for, where it tells one action from another
    /// (Chassis Control: `on`, `off`, `cycle`...; Set System Boot Options:
    /// the boot device), so a snapshot can see a changed action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argument: Option<String>,
}

/// Events MAAS logs periodically; they differ run to run in number only.
const PERIODIC: &[&str] = &[
    "Queried power state",
    "Query power state",
    "Power state queried",
];

/// pxelinux's probe for a config named by the SMBIOS UUID: the UUID is new
/// in every run (docs/sim.md, Snapshot normalisation).
fn is_uuid_config_probe(d: &str) -> bool {
    d.strip_prefix("TFTP Request - pxelinux.cfg/")
        .is_some_and(|rest| {
            rest.len() == 36 && rest.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        })
}

/// Events of a guest's network boot, as the rack logs them.
const BOOT_CHAIN: &[&str] = &[
    "PXE Request",
    "TFTP Request",
    "HTTP Request",
    "Performing PXE boot",
    "Loading ephemeral",
];

/// The power driver's confirmation that a machine is on.
const POWERED_ON: &str = "Node powered on";

/// Drop periodic events and pxelinux's UUID probe, put each "Node powered
/// on" before the boot events that raced it, and collapse consecutive
/// repeats into `TEXT (xN)`.
///
/// The race is MAAS's own: the guest starts its PXE boot the moment the
/// BMC powers it on, while the driver confirms only after ipmipower
/// returns and a query answers on, so under load the rack's first boot
/// events can come before the confirmation.
pub fn normalise_events<'a>(descriptions: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut kept: Vec<&str> = Vec::new();
    for d in descriptions {
        if PERIODIC.iter().any(|p| d.starts_with(p)) || is_uuid_config_probe(d) {
            continue;
        }
        if d == POWERED_ON {
            let boot_events = kept
                .iter()
                .rev()
                .take_while(|e| BOOT_CHAIN.iter().any(|b| e.starts_with(b)))
                .count();
            kept.insert(kept.len() - boot_events, d);
        } else {
            kept.push(d);
        }
    }
    collapse(kept)
}

/// Commands that set a LAN session up or down: the same in every session.
const HANDSHAKE: &[&str] = &[
    "get_channel_auth_capabilities",
    "get_session_challenge",
    "activate_session",
    "set_session_privilege",
    "close_session",
    "get_channel_cipher_suites",
];

/// Summarise a transcript: one line per LAN session (`lan: cmd, cmd -> 0xcc`,
/// a command's argument in brackets: `chassis_control(on)`) without the
/// handshake, one per in-band or Redfish command; sessions that only read
/// the power state (periodic queries, waits) are dropped, as are Redfish's
/// successful reads of it (each GET of the system is a whole query), and
/// consecutive repeats (retries) collapsed into counts.
pub fn summarise_transcript(lines: &[TranscriptLine]) -> Vec<String> {
    let show = |l: &TranscriptLine| {
        let cmd = match &l.argument {
            Some(a) => format!("{}({a})", l.command),
            None => l.command.clone(),
        };
        match l.completion_code {
            Some(0) | None => cmd,
            Some(cc) => format!("{cmd} -> {cc:#04x}"),
        }
    };
    let mut items: Vec<String> = Vec::new();
    let mut session: Vec<String> = Vec::new();
    let flush = |session: &mut Vec<String>, items: &mut Vec<String>| {
        let only_queries = session.iter().all(|c| c == "get_chassis_status");
        if !session.is_empty() && !only_queries {
            items.push(format!(
                "lan: {}",
                collapse(session.iter().map(String::as_str)).join(", ")
            ));
        }
        session.clear();
    };
    for l in lines {
        if l.channel == "redfish"
            && l.command == "get_chassis_status"
            && matches!(l.completion_code, Some(0) | None)
        {
            continue;
        }
        if l.channel != "lan" {
            items.push(format!("{}: {}", l.channel, show(l)));
            continue;
        }
        if l.command == "get_channel_auth_capabilities" || l.command == "close_session" {
            flush(&mut session, &mut items);
        }
        if !HANDSHAKE.contains(&l.command.as_str()) || l.completion_code.is_some_and(|c| c != 0) {
            session.push(show(l));
        }
    }
    flush(&mut session, &mut items);
    collapse(items.iter().map(String::as_str))
}

fn collapse<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for item in items {
        match out.last_mut() {
            Some((last, n)) if last == item => *n += 1,
            _ => out.push((item.to_string(), 1)),
        }
    }
    out.into_iter()
        .map(|(s, n)| if n == 1 { s } else { format!("{s} (x{n})") })
        .collect()
}

impl RunResult {
    /// The snapshot text: YAML with every run value redacted.
    pub fn snapshot_yaml(&self, redactor: &Redactor) -> String {
        let mut clean = self.clone();
        for m in clean.machines.values_mut() {
            m.power_parameters.remove("power_pass");
        }
        redactor.redact(&serde_norway::to_string(&clean).expect("result serialises"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_dropped_and_retries_counted() {
        let ev = normalise_events([
            "Powering on",
            "Queried power state",
            "TFTP Request - pxelinux.cfg/8131e8e7-f0d7-4e47-a86c-f539a9c0c3f7",
            "Failed to power on node",
            "Failed to power on node",
            "Powering on",
        ]);
        assert_eq!(
            ev,
            vec!["Powering on", "Failed to power on node (x2)", "Powering on"]
        );
    }

    #[test]
    fn node_powered_on_goes_before_the_boot_events_that_raced_it() {
        let raced = normalise_events([
            "Powering on",
            "PXE Request - bios firmware, boot file lpxelinux.0",
            "TFTP Request - lpxelinux.0",
            "Node powered on",
            "TFTP Request - ldlinux.c32",
        ]);
        let in_order = normalise_events([
            "Powering on",
            "Node powered on",
            "PXE Request - bios firmware, boot file lpxelinux.0",
            "TFTP Request - lpxelinux.0",
            "TFTP Request - ldlinux.c32",
        ]);
        assert_eq!(raced, in_order);
        assert_eq!(in_order[1], "Node powered on");
        // Only boot events are passed over: anything else keeps its place.
        let ev = normalise_events(["Powering on", "Failed to power on node", "Node powered on"]);
        assert_eq!(
            ev,
            ["Powering on", "Failed to power on node", "Node powered on"]
        );
    }

    #[test]
    fn transcript_summary_counts_repeats() {
        let l = |c: &str, cc| TranscriptLine {
            channel: "lan".into(),
            command: c.into(),
            completion_code: Some(cc),
            argument: (c == "chassis_control").then(|| "on".to_string()),
        };
        let session = |cmds: &[(&str, u8)]| {
            let mut v = vec![
                l("get_channel_auth_capabilities", 0),
                l("set_session_privilege", 0),
            ];
            v.extend(cmds.iter().map(|(c, cc)| l(c, *cc)));
            v.push(l("close_session", 0));
            v
        };
        let mut t = Vec::new();
        t.extend(session(&[
            ("get_chassis_status", 0),
            ("chassis_control", 0xff),
        ]));
        t.extend(session(&[("get_chassis_status", 0)])); // a power query: dropped
        t.extend(session(&[
            ("get_chassis_status", 0),
            ("chassis_control", 0xff),
        ]));
        t.extend(session(&[
            ("get_chassis_status", 0),
            ("chassis_control", 0),
        ]));
        t.push(TranscriptLine {
            channel: "inband".into(),
            command: "set_user_password".into(),
            completion_code: Some(0xd5),
            argument: None,
        });
        let s = summarise_transcript(&t);
        assert_eq!(
            s,
            vec![
                "lan: get_chassis_status, chassis_control(on) -> 0xff (x2)",
                "lan: get_chassis_status, chassis_control(on)",
                "inband: set_user_password -> 0xd5"
            ]
        );
    }

    #[test]
    fn redfish_power_reads_are_dropped_and_its_actions_kept() {
        let l = |c: &str, cc: u8, arg: Option<&str>| TranscriptLine {
            channel: "redfish".into(),
            command: c.into(),
            completion_code: Some(cc),
            argument: arg.map(str::to_string),
        };
        let t = vec![
            l("get_chassis_status", 0, None),
            l("set_system_boot_options", 0, Some("pxe")),
            l("get_chassis_status", 0, None),
            l("chassis_control", 0, Some("on")),
            l("get_chassis_status", 0xff, None),
            l("get_chassis_status", 0, None),
        ];
        assert_eq!(
            summarise_transcript(&t),
            vec![
                "redfish: set_system_boot_options(pxe)",
                "redfish: chassis_control(on)",
                "redfish: get_chassis_status -> 0xff",
            ]
        );
    }

    #[test]
    fn snapshot_never_has_the_password() {
        let mut r = RunResult::default();
        let mut m = MachineResult::default();
        m.power_parameters
            .insert("power_pass".into(), "pw-123456".into());
        m.power_parameters
            .insert("power_user".into(), "maas".into());
        r.machines.insert("a".into(), m);
        let y = r.snapshot_yaml(&Redactor::new());
        assert!(!y.contains("pw-123456") && y.contains("maas"));
    }
}
