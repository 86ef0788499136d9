//! The metadata service the ephemeral environment talks to (the contract
//! fixed with the image; documented in docs/sim.md, do not change it alone):
//!
//! - GET /MAAS/metadata/latest/enlist-preseed/?op=get_enlist_preseed and
//!   GET /MAAS/metadata/latest/by-id/{system_id}/?op=get_preseed return
//!   text/plain shell lines `KEY='value'` (MAAS_MODE, MAAS_URL, METADATA_URL,
//!   and for commission SYSTEM_ID, OAUTH_KEY, HOSTNAME; IPMI_RETRY_BASE_SECONDS
//!   when configured).
//! - POST /MAAS/metadata/2012-03-01/?op=signal, form-urlencoded or
//!   multipart, OAuth PLAINTEXT with the node's key: status=WORKING|OK|FAILED,
//!   error, power_type, power_parameters (JSON string), and script results
//!   as WORKING signals with script_name, exit_status, output_b64, or as
//!   MAAS's own signal sends them: file parts named after the script.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::b64;
use super::events;
use super::http::{ApiError, Params, authenticate};
use super::state::RegionState;
use super::store::{ReportedHardware, ReportedInterface, StoreError};
use crate::maas::types::{NodeStatus, ScriptStatus};

type St = State<Arc<RegionState>>;

pub fn router(state: Arc<RegionState>) -> Router {
    Router::new()
        .route("/MAAS/metadata/latest/enlist-preseed/", get(enlist_preseed))
        .route("/MAAS/metadata/latest/by-id/{id}/", get(node_preseed))
        .route("/MAAS/metadata/2012-03-01/", post(signal))
        .with_state(state)
}

/// `KEY='value'` with the value single-quoted for sh.
fn shell_line(key: &str, value: &str) -> String {
    format!("{key}='{}'\n", value.replace('\'', r"'\''"))
}

fn text(body: String) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The preseed shell lines (pure; the contract's single source).
pub fn preseed_text(
    maas_url: &str,
    retry_base: Option<u32>,
    commission: Option<(&str, &str, &str)>,
) -> String {
    let mut s = String::new();
    s += &shell_line(
        "MAAS_MODE",
        if commission.is_some() {
            "commission"
        } else {
            "enlist"
        },
    );
    s += &shell_line("MAAS_URL", maas_url);
    s += &shell_line("METADATA_URL", &format!("{maas_url}/metadata"));
    if let Some((system_id, key, hostname)) = commission {
        s += &shell_line("SYSTEM_ID", system_id);
        s += &shell_line("OAUTH_KEY", key);
        s += &shell_line("HOSTNAME", hostname);
    }
    if let Some(b) = retry_base {
        s += &shell_line("IPMI_RETRY_BASE_SECONDS", &b.to_string());
    }
    s
}

async fn enlist_preseed(State(st): St) -> Response {
    text(preseed_text(&st.maas_url, st.ipmi_retry_base_seconds, None))
}

async fn node_preseed(State(st): St, Path(id): Path<String>) -> Result<Response, ApiError> {
    let m = st.store.machine(&id).await?;
    let key = st.store.node_key(&id).await?;
    st.event(
        &id,
        &events::LOADING_EPHEMERAL,
        "commissioning preseed fetched",
    )
    .await;
    Ok(text(preseed_text(
        &st.maas_url,
        st.ipmi_retry_base_seconds,
        Some((&m.system_id, &key.expose(), &m.hostname)),
    )))
}

#[derive(Deserialize)]
struct InterfacesReport {
    interfaces: Vec<IfaceEntry>,
}

#[derive(Deserialize)]
struct IfaceEntry {
    name: String,
    mac: String,
    #[serde(default)]
    boot: bool,
}

#[derive(Deserialize)]
struct HardwareReport {
    cpu_count: i32,
    #[serde(default)]
    cpu_model: Option<String>,
    memory_mib: i64,
    #[serde(default)]
    disks: Vec<DiskEntry>,
}

#[derive(Deserialize)]
struct DiskEntry {
    name: String,
    size_bytes: i64,
}

/// Apply what a known commissioning script reported; Err is the parse
/// problem, which fails the script as MAAS fails a script whose hook fails.
async fn apply_script(
    st: &RegionState,
    system_id: &str,
    name: &str,
    output: &[u8],
) -> Result<(), String> {
    match name {
        "40-maas-01-network-interfaces" => {
            let r: InterfacesReport =
                serde_json::from_slice(output).map_err(|e| format!("interfaces JSON: {e}"))?;
            let ifaces: Vec<ReportedInterface> = r
                .interfaces
                .into_iter()
                .map(|i| ReportedInterface {
                    name: i.name,
                    mac: i.mac,
                    boot: i.boot,
                })
                .collect();
            st.store
                .apply_interfaces(system_id, &ifaces)
                .await
                .map_err(|e| e.to_string())
        }
        "50-maas-01-commissioning" => {
            let r: HardwareReport =
                serde_json::from_slice(output).map_err(|e| format!("commissioning JSON: {e}"))?;
            let hw = ReportedHardware {
                cpu_count: r.cpu_count,
                cpu_model: r.cpu_model,
                memory_mib: r.memory_mib,
                disks: r
                    .disks
                    .into_iter()
                    .map(|d| (d.name, d.size_bytes))
                    .collect(),
            };
            st.store
                .apply_hardware(system_id, &hw)
                .await
                .map_err(|e| e.to_string())
        }
        _ => Ok(()),
    }
}

/// Store one script's result, apply what a known script reported, and
/// record MAAS's "Script result" event.
async fn store_result(
    st: &RegionState,
    system_id: &str,
    name: &str,
    exit_status: i32,
    output: &[u8],
) -> Result<(), ApiError> {
    let mut result_status = st
        .store
        .store_script_result(system_id, name, exit_status, output)
        .await?;
    if exit_status == 0
        && let Err(problem) = apply_script(st, system_id, name, output).await
    {
        let mut out = output.to_vec();
        out.extend_from_slice(
            format!("\nsim region: could not use this output: {problem}\n").as_bytes(),
        );
        st.store
            .store_script_result(system_id, name, 1, &out)
            .await?;
        result_status = ScriptStatus::FAILED;
    }
    st.event(
        system_id,
        &events::SCRIPT_RESULT,
        &format!(
            "{name} changed status from 'Running' to '{}'",
            ScriptStatus::name(result_status)
        ),
    )
    .await;
    Ok(())
}

async fn signal(
    State(st): St,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = authenticate(&st, &headers).await?;
    let Some(system_id) = who.system_id else {
        return Err(ApiError::text(
            StatusCode::FORBIDDEN,
            "signal needs a node's key, not a user's",
        ));
    };
    let p = Params::from_request(&uri, &headers, &body)?;
    if p.op() != "signal" {
        return Err(ApiError::text(
            StatusCode::BAD_REQUEST,
            format!("Unrecognised signature: method=POST op={}", p.op()),
        ));
    }
    let status = p.get("status").unwrap_or("");
    if !matches!(status, "WORKING" | "OK" | "FAILED") {
        return Err(StoreError::Invalid {
            field: "status".into(),
            message: format!("Unknown status code: {status:?}"),
        }
        .into());
    }
    let machine = st.store.machine(&system_id).await?;
    if machine.status != NodeStatus::COMMISSIONING {
        return Err(ApiError::text(
            StatusCode::CONFLICT,
            format!(
                "Node wasn't commissioning/installing/entering rescue mode/testing (status is {})",
                machine.status.name()
            ),
        ));
    }
    st.store.ping(&system_id).await?;

    if let Some(power_type) = p.get("power_type").filter(|t| !t.is_empty()) {
        let params: serde_json::Value =
            serde_json::from_str(p.get("power_parameters").unwrap_or("{}")).map_err(|e| {
                StoreError::Invalid {
                    field: "power_parameters".into(),
                    message: format!("not JSON: {e}"),
                }
            })?;
        st.store.set_power(&system_id, power_type, &params).await?;
    }

    let exit_status: i32 = p
        .get("exit_status")
        .and_then(|e| e.trim().parse().ok())
        .unwrap_or(0);
    if let Some(name) = p.get("script_name").filter(|n| !n.is_empty()) {
        // A '+' the sender forgot to percent-encode arrives as ' ': base64
        // has no spaces, so put it back.
        let output =
            b64::decode(&p.get("output_b64").unwrap_or("").replace(' ', "+")).ok_or_else(|| {
                StoreError::Invalid {
                    field: "output_b64".into(),
                    message: "not base64".into(),
                }
            })?;
        store_result(&st, &system_id, name, exit_status, &output).await?;
        return Ok(text("OK".into()));
    }
    // MAAS's own signal: results as multipart files named after the script
    // (NAME is the combined output; NAME.out, NAME.err, NAME.yaml are the
    // streams and the result file, which the sim does not keep apart).
    let files: Vec<(&str, &[u8])> = p
        .files
        .iter()
        .filter(|(n, _)| ![".out", ".err", ".yaml"].iter().any(|s| n.ends_with(s)))
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    for (name, output) in &files {
        store_result(&st, &system_id, name, exit_status, output).await?;
    }
    if !files.is_empty() && status == "WORKING" {
        return Ok(text("OK".into()));
    }

    match status {
        "WORKING" => {
            st.event(
                &system_id,
                &events::GATHERING_INFO,
                p.get("error").unwrap_or(""),
            )
            .await;
        }
        "OK" => {
            let failed = st.store.commissioning_failed_scripts(&system_id).await?;
            st.store.end_script_set(&system_id, 9).await?;
            if failed.is_empty() {
                st.store
                    .set_status(&system_id, NodeStatus::READY, None)
                    .await?;
            } else {
                let msg = format!("Failed scripts: {}", failed.join(", "));
                st.store
                    .set_status(&system_id, NodeStatus::FAILED_COMMISSIONING, Some(&msg))
                    .await?;
            }
        }
        _ => {
            let error = p.get("error").unwrap_or("");
            st.store.end_script_set(&system_id, 5).await?;
            st.store
                .set_status(&system_id, NodeStatus::FAILED_COMMISSIONING, Some(error))
                .await?;
        }
    }
    Ok(text("OK".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preseed_lines() {
        let enlist = preseed_text("http://10.9.0.1:5240/MAAS", Some(1), None);
        let commission = preseed_text(
            "http://10.9.0.1:5240/MAAS",
            None,
            Some(("abc123", "ck:tk:sec", "it's-a-node")),
        );
        insta::assert_snapshot!(enlist);
        insta::assert_snapshot!(commission);
    }
}
