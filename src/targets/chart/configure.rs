//! Performing `plan.maas_calls()` with a MAAS client: fill each call's
//! `{placeholders}` from earlier answers, capture what later calls need,
//! repeat the waits until they hold. The calls themselves are planned (and
//! snapshot-tested) in maas_config.rs; this module only carries them out.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use thiserror::Error;

use crate::maas::{MaasClient, MaasError};

use super::maas_config::{ApiCall, Method};

/// What the captures need to know about the wired network.
#[derive(Debug, Clone)]
pub struct ConfigureContext {
    /// The bridge inside the rack's node that carries the PXE address.
    pub node_bridge: String,
    /// The PXE subnet in CIDR form (`10.40.0.0/24`), as MAAS names it.
    pub pxe_cidr: String,
    /// How often the waits (`until`) poll.
    pub poll: Duration,
    /// How long one wait may take.
    pub timeout: Duration,
}

/// Why configuring MAAS stopped.
#[derive(Debug, Error)]
pub enum ConfigureError {
    #[error("MAAS configuration, {call}: {source}")]
    Call {
        call: String,
        #[source]
        source: MaasError,
    },
    #[error("MAAS configuration, {call}: cannot fill {{{name}}}: {detail}")]
    Capture {
        call: String,
        name: String,
        detail: String,
    },
    #[error(
        "MAAS configuration, {call}: placeholder {{{name}}} was never captured by an earlier call"
    )]
    Placeholder { call: String, name: String },
    #[error("MAAS configuration, {call}: `{until}` did not hold within {}; last answer: {last}", humantime::format_duration(*.timeout))]
    Timeout {
        call: String,
        until: String,
        timeout: Duration,
        last: String,
    },
    #[error("MAAS configuration, {call}: unknown wait condition `{until}`")]
    UnknownCondition { call: String, until: String },
}

/// The values captured along the way (`rack_id`, `subnet_id`, ...).
pub type Captured = BTreeMap<String, String>;

/// Perform `calls` in order; returns what they captured.
pub async fn perform(
    client: &MaasClient,
    calls: &[ApiCall],
    ctx: &ConfigureContext,
) -> Result<Captured, ConfigureError> {
    let mut captured = Captured::new();
    for call in calls {
        let path = fill(&call.path, &captured, call)?;
        let params = call
            .params
            .iter()
            .map(|(k, v)| Ok((k.clone(), fill(v, &captured, call)?)))
            .collect::<Result<Vec<_>, ConfigureError>>()?;
        let shown = format!("{} {path}", method_name(call.method));
        let deadline = Instant::now() + ctx.timeout;
        let body = loop {
            let body = send(client, call.method, &path, &params)
                .await
                .map_err(|source| ConfigureError::Call {
                    call: shown.clone(),
                    source,
                })?;
            let Some(until) = &call.until else { break body };
            if holds(until, &body).map_err(|()| ConfigureError::UnknownCondition {
                call: shown.clone(),
                until: until.clone(),
            })? {
                break body;
            }
            if Instant::now() >= deadline {
                return Err(ConfigureError::Timeout {
                    call: shown,
                    until: until.clone(),
                    timeout: ctx.timeout,
                    last: body.chars().take(200).collect(),
                });
            }
            tokio::time::sleep(ctx.poll).await;
        };
        for (name, rule) in &call.captures {
            let value =
                capture(name, rule, &body, ctx).map_err(|detail| ConfigureError::Capture {
                    call: shown.clone(),
                    name: name.clone(),
                    detail,
                })?;
            tracing::info!(%name, %value, call = %shown, "captured");
            captured.insert(name.clone(), value);
        }
        tracing::info!(call = %shown, why = %call.why, "MAAS configured");
    }
    Ok(captured)
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
    }
}

async fn send(
    client: &MaasClient,
    method: Method,
    path: &str,
    params: &[(String, String)],
) -> Result<String, MaasError> {
    match method {
        Method::Get => {
            let query: Vec<(&str, &str)> = params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            client.get_raw(path, &query).await
        }
        Method::Post => {
            client
                .send_raw(reqwest::Method::POST, path, &[], params.to_vec())
                .await
        }
        Method::Put => {
            client
                .send_raw(reqwest::Method::PUT, path, &[], params.to_vec())
                .await
        }
    }
}

/// Replace every `{name}` in `text` with its captured value.
fn fill(text: &str, captured: &Captured, call: &ApiCall) -> Result<String, ConfigureError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 1..start + len];
        let value = captured
            .get(name)
            .ok_or_else(|| ConfigureError::Placeholder {
                call: format!("{} {}", method_name(call.method), call.path),
                name: name.to_string(),
            })?;
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether a wait condition of the plan holds for this answer; `Err` for
/// a condition this module does not know.
fn holds(until: &str, body: &str) -> Result<bool, ()> {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if until == "answer is false" {
        return Ok(v == Value::Bool(false));
    }
    if let Some(want) = until.strip_prefix("status is ") {
        let want = want.trim_matches('"');
        return Ok(v.get("status").and_then(Value::as_str) == Some(want));
    }
    Err(())
}

/// One captured value from an answer.
fn capture(name: &str, rule: &str, body: &str, ctx: &ConfigureContext) -> Result<String, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let list = v.as_array().ok_or("the answer is not a list")?;
    if name == "rack_id" {
        let has_bridge = |r: &&Value| {
            r.get("interface_set")
                .and_then(Value::as_array)
                .is_some_and(|ifs| {
                    ifs.iter().any(|i| {
                        i.get("name").and_then(Value::as_str) == Some(ctx.node_bridge.as_str())
                    })
                })
        };
        return list
            .iter()
            .find(has_bridge)
            .and_then(|r| r.get("system_id").and_then(Value::as_str))
            .map(String::from)
            .ok_or_else(|| format!("no rack controller lists interface {} (racks: {}); did the rack register after the wiring?", ctx.node_bridge, rack_summary(list)));
    }
    // Subnet captures: "the subnet whose cidr is X: /json/pointer".
    let pointer = rule
        .rsplit_once(": ")
        .map(|(_, p)| p)
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| format!("rule `{rule}` has no JSON pointer"))?;
    let subnet = list
        .iter()
        .find(|s| s.get("cidr").and_then(Value::as_str) == Some(ctx.pxe_cidr.as_str()))
        .ok_or_else(|| {
            let cidrs: Vec<&str> = list.iter().filter_map(|s| s.get("cidr").and_then(Value::as_str)).collect();
            format!("no subnet {} (MAAS has: {cidrs:?}); MAAS makes it when the rack reports its bridge address", ctx.pxe_cidr)
        })?;
    match subnet.pointer(pointer) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        other => Err(format!(
            "subnet {} has no {pointer} (found {other:?})",
            ctx.pxe_cidr
        )),
    }
}

fn rack_summary(list: &[Value]) -> String {
    let racks: Vec<String> = list
        .iter()
        .map(|r| {
            let names: Vec<&str> = r
                .get("interface_set")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i.get("name").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{} [{}]",
                r.get("hostname").and_then(Value::as_str).unwrap_or("?"),
                names.join(", ")
            )
        })
        .collect();
    if racks.is_empty() {
        "none".into()
    } else {
        racks.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ConfigureContext {
        ConfigureContext {
            node_bridge: "maas-pxe".into(),
            pxe_cidr: "10.40.0.0/24".into(),
            poll: Duration::ZERO,
            timeout: Duration::ZERO,
        }
    }

    #[test]
    fn captures_pick_the_rack_by_bridge_and_the_subnet_by_cidr() {
        let racks = r#"[{"system_id":"a","hostname":"x","interface_set":[{"name":"eth0"}]},{"system_id":"b","hostname":"y","interface_set":[{"name":"maas-pxe"}]}]"#;
        assert_eq!(capture("rack_id", "", racks, &ctx()).unwrap(), "b");
        let subnets = r#"[{"id":3,"cidr":"10.9.0.0/24","vlan":{"vid":0,"fabric_id":1}},{"id":7,"cidr":"10.40.0.0/24","vlan":{"vid":0,"fabric_id":2}}]"#;
        assert_eq!(
            capture(
                "subnet_id",
                "the subnet whose cidr is 10.40.0.0/24: /id",
                subnets,
                &ctx()
            )
            .unwrap(),
            "7"
        );
        assert_eq!(
            capture(
                "fabric_id",
                "the subnet whose cidr is 10.40.0.0/24: /vlan/fabric_id",
                subnets,
                &ctx()
            )
            .unwrap(),
            "2"
        );
        let e = capture(
            "rack_id",
            "",
            r#"[{"system_id":"a","hostname":"x","interface_set":[]}]"#,
            &ctx(),
        )
        .unwrap_err();
        assert!(e.contains("maas-pxe") && e.contains("x []"), "{e}");
        let e = capture(
            "vid",
            "s: /vlan/vid",
            r#"[{"id":1,"cidr":"10.1.0.0/24"}]"#,
            &ctx(),
        )
        .unwrap_err();
        assert!(
            e.contains("10.40.0.0/24") && e.contains("10.1.0.0/24"),
            "{e}"
        );
    }

    #[test]
    fn waits_and_placeholders() {
        assert_eq!(holds("answer is false", "false"), Ok(true));
        assert_eq!(holds("answer is false", "true"), Ok(false));
        assert_eq!(
            holds("status is \"synced\"", r#"{"status":"synced"}"#),
            Ok(true)
        );
        assert_eq!(
            holds("status is \"synced\"", r#"{"status":"syncing"}"#),
            Ok(false)
        );
        assert!(holds("moon is full", "").is_err());
        let call = ApiCall {
            method: Method::Put,
            path: "fabrics/{fabric_id}/vlans/{vid}/".into(),
            params: vec![],
            captures: vec![],
            until: None,
            why: String::new(),
        };
        let mut c = Captured::new();
        c.insert("fabric_id".into(), "2".into());
        assert!(
            matches!(fill(&call.path, &c, &call), Err(ConfigureError::Placeholder { name, .. }) if name == "vid")
        );
        c.insert("vid".into(), "0".into());
        assert_eq!(fill(&call.path, &c, &call).unwrap(), "fabrics/2/vlans/0/");
    }
}
