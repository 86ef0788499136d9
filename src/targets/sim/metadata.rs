//! The metadata service the ephemeral environment talks to (the contract
//! fixed with the image; documented in docs/sim.md, do not change it alone):
//!
//! - GET /MAAS/metadata/latest/enlist-preseed/?op=get_enlist_preseed and
//!   GET /MAAS/metadata/latest/by-id/{system_id}/?op=get_preseed return
//!   text/plain shell lines `KEY='value'` (MAAS_MODE, MAAS_URL, METADATA_URL,
//!   and for commission and poweroff SYSTEM_ID, OAUTH_KEY, HOSTNAME;
//!   IPMI_RETRY_BASE_SECONDS when configured; MAAS_PROFILE=3.6 under the
//!   3.6 profile).
//! - POST /MAAS/metadata/2012-03-01/?op=signal, form-urlencoded or
//!   multipart, OAuth PLAINTEXT with the node's key: status=WORKING|TESTING|OK|FAILED,
//!   error, power_type, power_parameters (JSON string), and script results
//!   as WORKING signals with script_name, exit_status, output_b64, or as
//!   MAAS's own signal sends them: file parts named after the script.
//! - GET /MAAS/metadata/2012-03-01/maas-scripts/{name}, the node's key: an
//!   uploaded commissioning script of its current set (named in the
//!   preseed's COMMISSIONING_USER_SCRIPTS).

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
use super::store::{Phase, ReportedHardware, ReportedInterface, StoreError};
use crate::maas::types::{NodeStatus, ScriptStatus};

type St = State<Arc<RegionState>>;

pub fn router(state: Arc<RegionState>) -> Router {
    Router::new()
        .route("/MAAS/metadata/latest/enlist-preseed/", get(enlist_preseed))
        .route("/MAAS/metadata/latest/by-id/{id}/", get(node_preseed))
        .route("/MAAS/metadata/2012-03-01/", post(signal))
        .route(
            "/MAAS/metadata/2012-03-01/maas-scripts/{name}",
            get(user_script),
        )
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

/// What a known node's preseed tells the guest to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeMode {
    /// Commissioning or Testing: run the scripts.
    Commission,
    /// Any status whose boot purpose is "poweroff" (New, Ready, Failed
    /// ...): MAAS 2.8 boots it into the commissioning environment and
    /// serves user data that only powers it off (rpc/boot.py
    /// get_final_boot_purpose, metadataserver/api.py UserDataHandler.read).
    Poweroff,
}

/// A known node's part of its preseed.
pub struct NodePreseed<'a> {
    pub mode: NodeMode,
    pub system_id: &'a str,
    pub key: &'a str,
    pub hostname: &'a str,
    /// Uploaded commissioning scripts in its script set, fetched one by one
    /// from maas-scripts/ (names have no spaces: 2.8's name rules).
    pub user_scripts: &'a [String],
}

/// The preseed shell lines (pure; the contract's single source).
pub fn preseed_text(maas_url: &str, retry_base: Option<u32>, node: Option<&NodePreseed>) -> String {
    let mut s = String::new();
    let mode = match node.map(|n| n.mode) {
        None => "enlist",
        Some(NodeMode::Commission) => "commission",
        Some(NodeMode::Poweroff) => "poweroff",
    };
    s += &shell_line("MAAS_MODE", mode);
    s += &shell_line("MAAS_URL", maas_url);
    s += &shell_line("METADATA_URL", &format!("{maas_url}/metadata"));
    if let Some(n) = node {
        s += &shell_line("SYSTEM_ID", n.system_id);
        s += &shell_line("OAUTH_KEY", n.key);
        s += &shell_line("HOSTNAME", n.hostname);
        if !n.user_scripts.is_empty() {
            s += &shell_line("COMMISSIONING_USER_SCRIPTS", &n.user_scripts.join(" "));
        }
    }
    if let Some(b) = retry_base {
        s += &shell_line("IPMI_RETRY_BASE_SECONDS", &b.to_string());
    }
    s
}

/// `MAAS_PROFILE` for a profile other than 2.8: the guest scripts then
/// follow that MAAS's BMC configuration (fixtures/ephemeral/bmc_config36.sh).
pub fn profile_lines(profile: super::profile::SimProfile) -> String {
    profile
        .preseed_value()
        .map_or(String::new(), |v| shell_line("MAAS_PROFILE", v))
}

async fn enlist_preseed(State(st): St) -> Response {
    text(preseed_text(&st.maas_url, st.ipmi_retry_base_seconds, None) + &profile_lines(st.profile))
}

async fn node_preseed(State(st): St, Path(id): Path<String>) -> Result<Response, ApiError> {
    let m = st.store.machine(&id).await?;
    let key = st.store.node_key(&id).await?;
    // 2.8 records "Gathering information" when a Commissioning node reads
    // its user data (metadataserver/api.py UserDataHandler.read).
    if m.status == NodeStatus::COMMISSIONING {
        st.event(&id, &events::GATHERING_INFO, "").await;
    }
    let commissioning = m.status == NodeStatus::COMMISSIONING || m.status == NodeStatus::TESTING;
    let user_scripts: Vec<String> = if commissioning {
        st.store
            .commissioning_user_scripts(&id)
            .await?
            .into_iter()
            .map(|s| s.name)
            .collect()
    } else {
        Vec::new()
    };
    let key = key.expose();
    Ok(text(
        preseed_text(
            &st.maas_url,
            st.ipmi_retry_base_seconds,
            Some(&NodePreseed {
                mode: if commissioning {
                    NodeMode::Commission
                } else {
                    NodeMode::Poweroff
                },
                system_id: &m.system_id,
                key: &key,
                hostname: &m.hostname,
                user_scripts: &user_scripts,
            }),
        ) + &profile_lines(st.profile),
    ))
}

/// GET maas-scripts/NAME (the node's key): an uploaded script in the
/// node's commissioning set, as MAAS serves a node its scripts
/// (metadataserver/api.py MAASScriptsHandler, there as one tar.xz).
async fn user_script(
    State(st): St,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let who = authenticate(&st, &headers).await?;
    let Some(system_id) = who.system_id else {
        return Err(ApiError::text(
            StatusCode::FORBIDDEN,
            "Not authenticated as a known node.",
        ));
    };
    let script = st
        .store
        .commissioning_user_scripts(&system_id)
        .await?
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| ApiError::text(StatusCode::NOT_FOUND, "Not Found"))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        script.script,
    )
        .into_response())
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
    phase: Phase,
    name: &str,
    exit_status: i32,
    output: &[u8],
) -> Result<(), ApiError> {
    store_result_parsing(st, system_id, phase, name, exit_status, output, output).await
}

/// `store_result`, the region's hook reading `stdout` (MAAS's hooks parse
/// the script's stdout, NAME.out, while NAME is the combined output).
async fn store_result_parsing(
    st: &RegionState,
    system_id: &str,
    phase: Phase,
    name: &str,
    exit_status: i32,
    output: &[u8],
    stdout: &[u8],
) -> Result<(), ApiError> {
    let mut result_status = st
        .store
        .store_script_result(system_id, phase, name, exit_status, output)
        .await?;
    if exit_status == 0
        && phase == Phase::Commissioning
        && let Err(problem) = apply_script(st, system_id, name, stdout).await
    {
        let mut out = output.to_vec();
        out.extend_from_slice(
            format!("\nsim region: could not use this output: {problem}\n").as_bytes(),
        );
        st.store
            .store_script_result(system_id, phase, name, 1, &out)
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
    if !SIGNAL_STATUSES.contains(&status) {
        return Err(ApiError::text(
            StatusCode::BAD_REQUEST,
            format!("Unknown status: '{status}'"),
        ));
    }
    let machine = st.store.machine(&system_id).await?;
    let phase = match machine.status {
        NodeStatus::COMMISSIONING => Phase::Commissioning,
        NodeStatus::TESTING => Phase::Testing,
        // 2.8 answers these and changes nothing (VersionIndexHandler:
        // signalable_states without a process function, and NEW, which
        // only acts on COMMISSIONING, a self-commissioning the sim does not
        // model).
        s if IGNORED_IN.contains(&s) => return Ok(text("OK".into())),
        other => {
            return Err(ApiError::text(
                StatusCode::CONFLICT,
                format!("Machine status isn't valid (status is {})", other.name()),
            ));
        }
    };
    st.store.ping(&system_id).await?;

    // Commissioning signals may carry the BMC's new power settings (the
    // user data's "Finished setting BMC password").
    if phase == Phase::Commissioning
        && let Some(power_type) = p.get("power_type").filter(|t| !t.is_empty())
    {
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
        store_result(&st, &system_id, phase, name, exit_status, &output).await?;
    }
    // MAAS's own signal: results as multipart files named after the script
    // (NAME is the combined output; NAME.out, NAME.err, NAME.yaml are the
    // streams and the result file). The sim stores the combined output (or
    // stdout without it) and hands stdout to its hooks, as MAAS does.
    let file = |n: &str| {
        p.files
            .iter()
            .find(|(f, _)| f == n)
            .map(|(_, d)| d.as_slice())
    };
    let mut names: Vec<&str> = p
        .files
        .iter()
        .map(|(n, _)| {
            [".out", ".err", ".yaml"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n)
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let stdout = file(&format!("{name}.out"));
        let combined = file(name).or(stdout).unwrap_or_default();
        let stdout = stdout.unwrap_or(combined);
        store_result_parsing(&st, &system_id, phase, name, exit_status, combined, stdout).await?;
    }

    // _process_commissioning / _process_testing: the status the signal asks for.
    let mut target = match (phase, status) {
        (_, "OK") => Some(NodeStatus::READY),
        (Phase::Commissioning, "FAILED") => Some(NodeStatus::FAILED_COMMISSIONING),
        (Phase::Commissioning, "TESTING") => Some(NodeStatus::TESTING),
        (Phase::Testing, "FAILED") => Some(NodeStatus::FAILED_TESTING),
        _ => None,
    };
    if phase == Phase::Commissioning
        && matches!(target, Some(NodeStatus::READY | NodeStatus::TESTING))
        && !st
            .store
            .failed_scripts(&system_id, Phase::Commissioning)
            .await?
            .is_empty()
    {
        // A script that failed (or whose output the region could not use)
        // fails commissioning, whatever the guest says.
        target = Some(NodeStatus::FAILED_COMMISSIONING);
    }
    let Some(target) = target else {
        return Ok(text("OK".into()));
    };
    let kind = match target {
        NodeStatus::READY => Some(&events::READY),
        NodeStatus::FAILED_COMMISSIONING => Some(&events::FAILED_COMMISSIONING),
        NodeStatus::FAILED_TESTING => Some(&events::FAILED_TESTING),
        _ => None,
    };
    if let Some(kind) = kind {
        st.event(&system_id, kind, "").await;
    }
    let failed = matches!(
        target,
        NodeStatus::FAILED_COMMISSIONING | NodeStatus::FAILED_TESTING
    );
    // Leaving a phase closes its script set; a failure aborts what is
    // still pending or running in both sets (testing does not run).
    if failed {
        for phase in [Phase::Commissioning, Phase::Testing] {
            st.store.end_script_set(&system_id, phase, 5).await?;
        }
    } else {
        st.store.end_script_set(&system_id, phase, 9).await?;
    }
    let error = p.get("error").filter(|e| !e.is_empty());
    st.store
        .set_status(&system_id, target, error.filter(|_| failed))
        .await?;
    Ok(text("OK".into()))
}

/// MAAS 2.8's SIGNAL_STATUS choices.
const SIGNAL_STATUSES: &[&str] = &[
    "OK",
    "FAILED",
    "WORKING",
    "COMMISSIONING",
    "TESTING",
    "TIMEDOUT",
    "INSTALLING",
    "APPLYING_NETCONF",
];

/// Statuses whose signals 2.8 answers 200 and ignores (the signalable
/// states without a process function, and New).
const IGNORED_IN: &[NodeStatus] = &[
    NodeStatus::NEW,
    NodeStatus::BROKEN,
    NodeStatus::FAILED_COMMISSIONING,
    NodeStatus::FAILED_DEPLOYMENT,
    NodeStatus::READY,
    NodeStatus::FAILED_ENTERING_RESCUE_MODE,
    NodeStatus::FAILED_TESTING,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preseed_lines() {
        let enlist = preseed_text("http://10.9.0.1:5240/MAAS", Some(1), None);
        let node = |mode, user_scripts| NodePreseed {
            mode,
            system_id: "abc123",
            key: "ck:tk:sec",
            hostname: "it's-a-node",
            user_scripts,
        };
        let commission = preseed_text(
            "http://10.9.0.1:5240/MAAS",
            None,
            Some(&node(NodeMode::Commission, &[])),
        );
        let scripts = ["99-fail".to_string(), "zz-last".to_string()];
        let with_scripts = preseed_text(
            "http://10.9.0.1:5240/MAAS",
            None,
            Some(&node(NodeMode::Commission, &scripts)),
        );
        let poweroff = preseed_text(
            "http://10.9.0.1:5240/MAAS",
            None,
            Some(&node(NodeMode::Poweroff, &[])),
        );
        insta::assert_snapshot!(enlist);
        insta::assert_snapshot!(commission);
        insta::assert_snapshot!("preseed_with_user_scripts", with_scripts);
        insta::assert_snapshot!("preseed_poweroff", poweroff);
    }

    #[test]
    fn only_the_3_6_profile_adds_a_line() {
        use crate::targets::sim::profile::SimProfile;
        assert_eq!(profile_lines(SimProfile::Maas28), "");
        assert_eq!(profile_lines(SimProfile::Maas36), "MAAS_PROFILE='3.6'\n");
    }
}
