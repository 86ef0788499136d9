//! The fleet's result: never one row per machine. What the snapshot holds
//! is what the scenario decides (counts by power type, power state and
//! status, failures by cause); how long things took (latency percentiles)
//! varies run to run, so it goes to `fleet.json` and the log instead.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The snapshot's part: counts only.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FleetSummary {
    pub machines: u32,
    pub by_power_type: BTreeMap<String, u32>,
    pub by_power_state: BTreeMap<String, u32>,
    pub by_status: BTreeMap<String, u32>,
    /// Failure cause (an event text with addresses and numbers masked) ->
    /// how many machines it happened to.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub failures: BTreeMap<String, u32>,
    /// Fleet behaviour (plain, faulty, powers_off_after, never_powers_on)
    /// -> how many machines were given it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub by_behaviour: BTreeMap<String, u32>,
    /// Machines MAAS shows in another power state than the last one a
    /// step asked for, with no failure reported ("asked on, shows off"):
    /// they changed by themselves.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub changed_unasked: BTreeMap<String, u32>,
}

/// One machine of the fleet as MAAS showed it at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetMachine {
    pub power_type: String,
    pub power_state: String,
    pub status: String,
    /// Why it failed, if it did (the last failure event's text).
    pub failure: Option<String>,
    /// Its fleet behaviour (the plan's).
    pub behaviour: String,
    /// The power state a step last asked for ("on", "off"), if any.
    pub asked: Option<String>,
}

/// Count what the machines show.
pub fn summarise(machines: &[FleetMachine]) -> FleetSummary {
    let mut s = FleetSummary {
        machines: machines.len() as u32,
        ..FleetSummary::default()
    };
    for m in machines {
        *s.by_power_type.entry(m.power_type.clone()).or_default() += 1;
        *s.by_power_state.entry(m.power_state.clone()).or_default() += 1;
        *s.by_status.entry(m.status.clone()).or_default() += 1;
        *s.by_behaviour.entry(m.behaviour.clone()).or_default() += 1;
        if let Some(f) = &m.failure {
            *s.failures.entry(failure_cause(f)).or_default() += 1;
        } else if let Some(asked) = &m.asked
            && matches!(m.power_state.as_str(), "on" | "off")
            && *asked != m.power_state
        {
            let k = format!("asked {asked}, shows {}", m.power_state);
            *s.changed_unasked.entry(k).or_default() += 1;
        }
    }
    s
}

/// An event text as a cause: IPv4 addresses and numbers masked, so the
/// same failure on different BMCs counts once.
pub fn failure_cause(text: &str) -> String {
    let ip = regex::Regex::new(r"\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b").expect("valid regex");
    let num = regex::Regex::new(r"\b\d+(\.\d+)?\b").expect("valid regex");
    let t = ip.replace_all(text, "<address>");
    num.replace_all(&t, "N").trim().to_string()
}

/// p50/p90/p99/max of some latencies, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank percentiles (no interpolation).
pub fn percentiles(samples: &[Duration]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    v.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    };
    let round = |x: f64| (x * 10.0).round() / 10.0;
    Percentiles {
        count: v.len(),
        p50_ms: round(at(50.0)),
        p90_ms: round(at(90.0)),
        p99_ms: round(at(99.0)),
        max_ms: round(*v.last().expect("not empty")),
    }
}

/// The timings of a fleet run (fleet.json and the log, not the snapshot).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FleetTimings {
    /// Each operator's create (`POST machines/`), and all of them.
    pub create: Percentiles,
    pub create_total_s: f64,
    /// From the first create to every power state known (each
    /// `wait_power_known` step).
    pub until_known_s: Vec<f64>,
    /// Request to state seen, per `power_fraction` step ("on 25%").
    pub power: BTreeMap<String, Percentiles>,
    /// `GET machines/` while the fleet was polled: request to the whole
    /// body received (MAAS's side and the transfer).
    pub list_machines: Percentiles,
    /// The harness parsing those bodies (not MAAS's time).
    #[serde(default)]
    pub list_machines_parse: Percentiles,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_and_masks_addresses_in_causes() {
        let m = |t: &str, p: &str, f: Option<&str>| FleetMachine {
            power_type: t.into(),
            power_state: p.into(),
            status: "New".into(),
            failure: f.map(str::to_string),
            behaviour: if f.is_some() { "faulty" } else { "plain" }.into(),
            asked: None,
        };
        let s = summarise(&[
            m("ipmi", "on", None),
            m("ipmi", "off", None),
            m(
                "redfish",
                "error",
                Some("Failed to query node's BMC - 10.64.1.7:443 timed out after 30 s"),
            ),
            m(
                "ipmi",
                "error",
                Some("Failed to query node's BMC - 10.64.1.9:443 timed out after 30 s"),
            ),
        ]);
        insta::assert_yaml_snapshot!(s);
    }

    #[test]
    fn a_machine_off_after_being_asked_on_counts_as_changed_unasked() {
        let m = |p: &str, asked: Option<&str>, f: Option<&str>, b: &str| FleetMachine {
            power_type: "ipmi".into(),
            power_state: p.into(),
            status: "New".into(),
            failure: f.map(str::to_string),
            behaviour: b.into(),
            asked: asked.map(str::to_string),
        };
        let s = summarise(&[
            m("on", Some("on"), None, "plain"),
            m("off", Some("on"), None, "powers_off_after"),
            m(
                "off",
                Some("on"),
                Some("Failed to power on node - x"),
                "never_powers_on",
            ),
            m("error", Some("on"), None, "faulty"),
            m("off", None, None, "plain"),
        ]);
        assert_eq!(
            s.changed_unasked,
            BTreeMap::from([("asked on, shows off".to_string(), 1)])
        );
        assert_eq!(s.by_behaviour["plain"], 2);
        assert_eq!(s.failures.len(), 1);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = percentiles(&d);
        assert_eq!(
            (p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(percentiles(&[]).count, 0);
        let one = percentiles(&[Duration::from_millis(7)]);
        assert_eq!((one.p50_ms, one.max_ms), (7.0, 7.0));
    }
}
