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
}

/// Events MAAS logs periodically; they differ run to run in number only.
const PERIODIC: &[&str] = &["Queried power state", "Query power state", "Power state queried"];

/// Drop periodic events and collapse consecutive repeats into `TEXT (xN)`.
pub fn normalise_events<'a>(descriptions: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    collapse(descriptions.into_iter().filter(|d| !PERIODIC.iter().any(|p| d.starts_with(p))))
}

/// Summarise a transcript: `channel command -> cc`, consecutive repeats
/// collapsed into counts (retries), session set-up noise kept in order.
pub fn summarise_transcript(lines: &[TranscriptLine]) -> Vec<String> {
    let items: Vec<String> = lines
        .iter()
        .map(|l| match l.completion_code {
            Some(0) | None => format!("{} {}", l.channel, l.command),
            Some(cc) => format!("{} {} -> {:#04x}", l.channel, l.command, cc),
        })
        .collect();
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
    out.into_iter().map(|(s, n)| if n == 1 { s } else { format!("{s} (x{n})") }).collect()
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
        let ev = normalise_events(["Powering on", "Queried power state", "Failed to power on node", "Failed to power on node", "Powering on"]);
        assert_eq!(ev, vec!["Powering on", "Failed to power on node (x2)", "Powering on"]);
    }

    #[test]
    fn transcript_summary_counts_repeats() {
        let l = |c: &str, cc| TranscriptLine { channel: "lan".into(), command: c.into(), completion_code: Some(cc) };
        let s = summarise_transcript(&[l("get_chassis_status", 0), l("chassis_control", 0xff), l("chassis_control", 0xff), l("chassis_control", 0)]);
        assert_eq!(s, vec!["lan get_chassis_status", "lan chassis_control -> 0xff (x2)", "lan chassis_control"]);
    }

    #[test]
    fn snapshot_never_has_the_password() {
        let mut r = RunResult::default();
        let mut m = MachineResult::default();
        m.power_parameters.insert("power_pass".into(), "pw-123456".into());
        m.power_parameters.insert("power_user".into(), "maas".into());
        r.machines.insert("a".into(), m);
        let y = r.snapshot_yaml(&Redactor::new());
        assert!(!y.contains("pw-123456") && y.contains("maas"));
    }
}
