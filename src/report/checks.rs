//! Expectations: small typed checks evaluated on what `observe` collected.
//! Pure functions, so each is unit-tested without a lab.

use std::collections::BTreeMap;

use regex::Regex;

use crate::scenario::{Channel, Expectation, Want};

use super::events::Outcome;
use super::result::TranscriptLine;

/// Everything a check can look at for one machine, before redaction.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The machine as the API shows it (or as the BMC does, on target none),
    /// plus `power_state`, `interface_count`.
    pub fields: serde_json::Value,
    pub events: Vec<String>,
    pub transcript: Vec<TranscriptLine>,
}

/// API objects and HTTP headers fetched for `api` and `http_header_absent`.
#[derive(Debug, Clone, Default)]
pub struct ObservedApi {
    /// GET path -> JSON body.
    pub objects: BTreeMap<String, serde_json::Value>,
    /// endpoint -> header names (lowercase) of its response.
    pub headers: BTreeMap<String, Vec<String>>,
    /// Checks the target itself brings (the chart's expectations), already
    /// judged: (name, outcome), reported after the scenario's own checks.
    pub target_checks: Vec<(String, Outcome)>,
}

/// A short name for JUnit and the progress display.
pub fn describe(e: &Expectation) -> String {
    match e {
        Expectation::Machine(c) => format!("{} {} {}", c.machine.0, c.field, want_text(&c.want)),
        Expectation::Events(c) => format!(
            "{} events in order: {}",
            c.machine.0,
            c.subsequence.join(" > ")
        ),
        Expectation::BmcTranscript(c) => format!(
            "{} bmc transcript has {}{}{}",
            c.machine.0,
            c.command,
            match c.channel {
                Channel::Any => String::new(),
                ch => format!(" on {}", channel_name(ch)),
            },
            c.completion_code
                .map(|cc| format!(" -> {cc:#04x}"))
                .unwrap_or_default()
        ),
        Expectation::Api(c) => format!("GET {} {} {}", c.path, c.field, want_text(&c.want)),
        Expectation::HttpHeaderAbsent(c) => format!("no {} header from {}", c.header, c.endpoint),
    }
}

fn want_text(w: &Want) -> String {
    match w {
        Want::Equals(v) => format!("== {v}"),
        Want::Matches(r) => format!("=~ /{r}/"),
    }
}

fn channel_name(c: Channel) -> &'static str {
    match c {
        Channel::Any => "any",
        Channel::Lan => "lan",
        Channel::Inband => "inband",
        Channel::Redfish => "redfish",
    }
}

/// Look up a dotted path (`power_parameters.power_user`, `interfaces.0.mac`).
pub fn field<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    path.split('.').try_fold(v, |v, key| match v {
        serde_json::Value::Object(m) => m.get(key),
        serde_json::Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

fn check_want(value: Option<&serde_json::Value>, want: &Want) -> Result<(), String> {
    let Some(v) = value else {
        return Err("the field is absent".into());
    };
    match want {
        Want::Equals(expected) => {
            let same = v == expected
                || (v.as_str().is_some() && v.as_str() == expected.as_str())
                || text(v) == text(expected);
            if same {
                Ok(())
            } else {
                Err(format!("is {v}, expected {expected}"))
            }
        }
        Want::Matches(re) => {
            let re = Regex::new(re).map_err(|e| e.to_string())?;
            if re.is_match(&text(v)) {
                Ok(())
            } else {
                Err(format!("is {v}, which does not match /{re}/"))
            }
        }
    }
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether `want` occurs in `have` in order, others interleaved.
pub fn is_subsequence(have: &[String], want: &[String]) -> bool {
    let mut it = have.iter();
    want.iter().all(|w| {
        it.any(|h| h == w || h.starts_with(&format!("{w} ")) || h.starts_with(&format!("{w} - ")))
    })
}

/// Evaluate one expectation. `machines` maps the machines it names.
pub fn evaluate(
    e: &Expectation,
    select: impl Fn(&str) -> Vec<String>,
    machines: &BTreeMap<String, Observed>,
    api: &ObservedApi,
) -> Outcome {
    let per_machine = |name: &str, f: &dyn Fn(&Observed) -> Result<(), String>| -> Outcome {
        let names = select(name);
        if names.is_empty() {
            return Outcome::Failed(format!("no machine matches `{name}`"));
        }
        let failures: Vec<String> = names
            .iter()
            .filter_map(|n| match machines.get(n) {
                None => Some(format!("{n}: nothing was observed")),
                Some(o) => f(o).err().map(|e| format!("{n}: {e}")),
            })
            .collect();
        if failures.is_empty() {
            Outcome::Passed
        } else {
            Outcome::Failed(failures.join("\n"))
        }
    };
    match e {
        Expectation::Machine(c) => per_machine(&c.machine.0, &|o| {
            check_want(field(&o.fields, &c.field), &c.want).map_err(|e| format!("{} {e}", c.field))
        }),
        Expectation::Events(c) => per_machine(&c.machine.0, &|o| {
            if is_subsequence(&o.events, &c.subsequence) {
                Ok(())
            } else {
                Err(format!(
                    "events {:?} do not contain {:?} in order",
                    o.events, c.subsequence
                ))
            }
        }),
        Expectation::BmcTranscript(c) => per_machine(&c.machine.0, &|o| {
            let hit = o.transcript.iter().any(|l| {
                l.command == c.command
                    && (c.channel == Channel::Any || l.channel == channel_name(c.channel))
                    && c.completion_code
                        .is_none_or(|cc| l.completion_code == Some(cc))
            });
            if hit {
                Ok(())
            } else {
                let seen: std::collections::BTreeSet<_> = o
                    .transcript
                    .iter()
                    .map(|l| format!("{} {}", l.channel, l.command))
                    .collect();
                Err(format!(
                    "the transcript has no {}; it has: {}",
                    describe(e),
                    seen.into_iter().collect::<Vec<_>>().join(", ")
                ))
            }
        }),
        Expectation::Api(c) => match api.objects.get(&c.path) {
            None => Outcome::Failed(format!(
                "GET {} was not fetched (needs a MAAS target)",
                c.path
            )),
            Some(v) => match check_want(field(v, &c.field), &c.want) {
                Ok(()) => Outcome::Passed,
                Err(e) => Outcome::Failed(format!("GET {} {} {e}", c.path, c.field)),
            },
        },
        Expectation::HttpHeaderAbsent(c) => match api.headers.get(&c.endpoint) {
            None => Outcome::Failed(format!("no response from {} was recorded", c.endpoint)),
            Some(h) if h.iter().any(|x| x.eq_ignore_ascii_case(&c.header)) => Outcome::Failed(
                format!("{} answered with a {} header", c.endpoint, c.header),
            ),
            Some(_) => Outcome::Passed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{EventsCheck, FieldCheck, MachineRef, TranscriptCheck};

    fn obs() -> BTreeMap<String, Observed> {
        let mut m = BTreeMap::new();
        m.insert(
            "a".to_string(),
            Observed {
                fields: serde_json::json!({"status_name": "Ready", "power_parameters": {"power_user": "maas"}, "interface_count": 2}),
                events: vec!["Node changed status - From 'New' to 'Commissioning'".into(), "Powering on".into(), "Node changed status - From 'Commissioning' to 'Ready'".into()],
                transcript: vec![TranscriptLine { channel: "lan".into(), command: "chassis_control".into(), completion_code: Some(0xff), argument: None }],
            },
        );
        m
    }
    fn sel(n: &str) -> Vec<String> {
        if n == "all" || n == "a" {
            vec!["a".into()]
        } else {
            vec![]
        }
    }

    #[test]
    fn machine_fields() {
        let ok = Expectation::Machine(FieldCheck {
            machine: MachineRef("a".into()),
            field: "power_parameters.power_user".into(),
            want: Want::Equals("maas".into()),
        });
        assert_eq!(
            evaluate(&ok, sel, &obs(), &ObservedApi::default()),
            Outcome::Passed
        );
        let n = Expectation::Machine(FieldCheck {
            machine: MachineRef("all".into()),
            field: "interface_count".into(),
            want: Want::Equals(2.into()),
        });
        assert_eq!(
            evaluate(&n, sel, &obs(), &ObservedApi::default()),
            Outcome::Passed
        );
        let bad = Expectation::Machine(FieldCheck {
            machine: MachineRef("a".into()),
            field: "status_name".into(),
            want: Want::Matches("^New$".into()),
        });
        assert!(evaluate(&bad, sel, &obs(), &ObservedApi::default()).is_failed());
        let absent = Expectation::Machine(FieldCheck {
            machine: MachineRef("a".into()),
            field: "nope".into(),
            want: Want::Equals(1.into()),
        });
        assert!(evaluate(&absent, sel, &obs(), &ObservedApi::default()).is_failed());
    }

    #[test]
    fn events_in_order() {
        let want = |v: &[&str]| {
            Expectation::Events(EventsCheck {
                machine: MachineRef("a".into()),
                subsequence: v.iter().map(|s| s.to_string()).collect(),
            })
        };
        assert_eq!(
            evaluate(
                &want(&["Node changed status", "Powering on"]),
                sel,
                &obs(),
                &ObservedApi::default()
            ),
            Outcome::Passed
        );
        assert!(
            evaluate(
                &want(&["Powering on", "Powering on"]),
                sel,
                &obs(),
                &ObservedApi::default()
            )
            .is_failed()
        );
    }

    #[test]
    fn transcript_with_code_and_channel() {
        let t = |ch, cc| {
            Expectation::BmcTranscript(TranscriptCheck {
                machine: MachineRef("a".into()),
                command: "chassis_control".into(),
                completion_code: cc,
                channel: ch,
            })
        };
        assert_eq!(
            evaluate(
                &t(Channel::Lan, Some(0xff)),
                sel,
                &obs(),
                &ObservedApi::default()
            ),
            Outcome::Passed
        );
        assert!(
            evaluate(
                &t(Channel::Inband, None),
                sel,
                &obs(),
                &ObservedApi::default()
            )
            .is_failed()
        );
        assert!(
            evaluate(
                &t(Channel::Any, Some(0)),
                sel,
                &obs(),
                &ObservedApi::default()
            )
            .is_failed()
        );
    }
}
