//! The sim region's REST API 2.0 under /MAAS/api/2.0/: the paths, answers
//! and status codes a harness sees from MAAS 2.8.
//!
//! Anonymous: version/, machines/?op=is_registered, POST machines/ (enlist).
//! Everything else needs the admin's OAuth PLAINTEXT key (401 otherwise).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::events;
use super::http::{ApiError, Params, Principal, authenticate};
use super::power::PowerAction;
use super::state::RegionState;
use super::store::{EnlistForm, StoreError};
use crate::maas::types::{NodeStatus, PowerStateReply, Version};

type St = State<Arc<RegionState>>;

type ApiResult = Result<Response, ApiError>;

fn ok_json<T: serde::Serialize>(v: &T) -> ApiResult {
    Ok(axum::Json(v).into_response())
}

async fn admin(state: &RegionState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let p = authenticate(state, headers).await?;
    if p.system_id.is_some() {
        return Err(ApiError::text(
            StatusCode::FORBIDDEN,
            "a node key cannot use the admin API",
        ));
    }
    Ok(p)
}

fn bad_op(op: &str) -> ApiError {
    ApiError::text(
        StatusCode::BAD_REQUEST,
        format!("Unrecognised signature: method={op}"),
    )
}

/// The API 2.0 routes.
pub fn router(state: Arc<RegionState>) -> Router {
    Router::new()
        .route("/MAAS/api/2.0/version/", get(version))
        .route(
            "/MAAS/api/2.0/machines/",
            get(machines_get).post(machines_post),
        )
        .route(
            "/MAAS/api/2.0/machines/{id}/",
            get(machine_get).post(machine_post).delete(machine_delete),
        )
        .route("/MAAS/api/2.0/events/", get(events_get))
        .route("/MAAS/api/2.0/nodes/{id}/results/", get(results_get))
        .route("/MAAS/api/2.0/maas/", get(maas_get).post(maas_post))
        .route("/MAAS/api/2.0/rackcontrollers/", get(racks_get))
        .route("/MAAS/api/2.0/rackcontrollers/{id}/", get(rack_get))
        .route("/MAAS/api/2.0/users/", get(users_get))
        .route("/MAAS/api/2.0/fabrics/", get(fabrics_get))
        .route("/MAAS/api/2.0/fabrics/{fabric}/vlans/", get(vlans_get))
        .route(
            "/MAAS/api/2.0/fabrics/{fabric}/vlans/{vid}/",
            get(vlan_get).put(vlan_put),
        )
        .route(
            "/MAAS/api/2.0/subnets/",
            get(subnets_get).post(subnets_post),
        )
        .route(
            "/MAAS/api/2.0/ipranges/",
            get(ipranges_get).post(ipranges_post),
        )
        .route("/MAAS/api/2.0/boot-resources/", get(boot_resources_get))
        .fallback(|uri: Uri| async move {
            ApiError::text(
                StatusCode::NOT_FOUND,
                format!("Unknown API endpoint: {}", uri.path()),
            )
        })
        .with_state(state)
}

async fn version() -> ApiResult {
    ok_json(&Version {
        capabilities: [
            "networks-management",
            "static-ipaddresses",
            "ipv6-deployment-ubuntu",
            "devices-management",
            "storage-deployment-ubuntu",
            "network-deployment-ubuntu",
            "bridging-interface-ubuntu",
            "bridging-automatic-ubuntu",
            "authenticate-api",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        // Speaks 2.8's API; says in the subversion that it is not MAAS.
        version: "2.8.7".into(),
        subversion: format!(
            "maas-e2e sim region {} (a reference implementation, not MAAS)",
            env!("CARGO_PKG_VERSION")
        ),
    })
}

async fn machines_get(State(st): St, headers: HeaderMap, uri: Uri) -> ApiResult {
    let q = Params::from(&uri, b"");
    match q.op() {
        "is_registered" => {
            let mac = q.get("mac_address").unwrap_or("");
            if super::store::normalise_mac(mac).is_none() {
                return Err(ApiError {
                    status: StatusCode::BAD_REQUEST,
                    body:
                        json!({ "mac_address": [format!("'{mac}' is not a valid MAC address.")] })
                            .to_string(),
                    json: true,
                });
            }
            ok_json(&st.store.machine_for_mac(mac).await?.is_some())
        }
        "" => {
            admin(&st, &headers).await?;
            ok_json(&st.store.machines().await?)
        }
        op => Err(bad_op(op)),
    }
}

async fn machines_post(State(st): St, uri: Uri, body: Bytes) -> ApiResult {
    let p = Params::from(&uri, &body);
    if !p.op().is_empty() {
        return Err(bad_op(p.op()));
    }
    let form = EnlistForm {
        hostname: p.get("hostname").unwrap_or("").into(),
        architecture: p.get("architecture").unwrap_or("").into(),
        subarchitecture: p.get("subarchitecture").unwrap_or("").into(),
        power_type: p.get("power_type").unwrap_or("").into(),
        power_parameters: p.get("power_parameters").unwrap_or("").into(),
        mac_addresses: p.all("mac_addresses"),
    };
    let m = st.store.enlist(&form).await?;
    tracing::info!(system_id = %m.system_id, hostname = %m.hostname, "machine enlisted");
    ok_json(&m)
}

async fn machine_get(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult {
    admin(&st, &headers).await?;
    let q = Params::from(&uri, b"");
    match q.op() {
        "" => ok_json(&st.store.machine(&id).await?),
        "power_parameters" => ok_json(&st.store.power_settings(&id).await?.power_parameters),
        "query_power_state" => match st.query_power(&id).await {
            Ok(state) => ok_json(&PowerStateReply { state }),
            Err(e) => Err(ApiError::text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Power state could not be queried: {e}"),
            )),
        },
        op => Err(bad_op(op)),
    }
}

/// DELETE machines/{id}/: 204, as MAAS answers.
async fn machine_delete(State(st): St, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    admin(&st, &headers).await?;
    st.store.delete_machine(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn machine_post(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
    body: Bytes,
) -> ApiResult {
    let who = admin(&st, &headers).await?;
    let p = Params::from(&uri, &body);
    match p.op() {
        "commission" => {
            let settings = st.store.power_settings(&id).await?;
            if settings.power_type.is_empty() {
                return Err(ApiError::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "Unable to start machine {id}: no power type is set; MAAS cannot power it on."
                    ),
                ));
            }
            let old = st.store.start_commissioning(&id).await?;
            st.event(
                &id,
                &events::USER_COMMISSIONING,
                &format!("(admin: {})", who.username),
            )
            .await;
            st.start_power(id.clone(), PowerAction::On, Some(old)).await;
            ok_json(&st.store.machine(&id).await?)
        }
        "power_on" => {
            st.store.machine(&id).await?;
            st.start_power(id.clone(), PowerAction::On, None).await;
            ok_json(&st.store.machine(&id).await?)
        }
        "power_off" => {
            st.store.machine(&id).await?;
            st.start_power(id.clone(), PowerAction::Off, None).await;
            ok_json(&st.store.machine(&id).await?)
        }
        "abort" => {
            let m = st.store.machine(&id).await?;
            if m.status != NodeStatus::COMMISSIONING && m.status != NodeStatus::TESTING {
                return Err(ApiError::text(
                    StatusCode::CONFLICT,
                    format!(
                        "Node {id} has no action to abort (status {}).",
                        m.status.name()
                    ),
                ));
            }
            st.store.end_script_set(&id, 5).await?;
            st.store
                .set_status(&id, NodeStatus::NEW, Some("Aborted"))
                .await?;
            st.start_power(id.clone(), PowerAction::Off, None).await;
            ok_json(&st.store.machine(&id).await?)
        }
        op => Err(bad_op(op)),
    }
}

async fn events_get(State(st): St, headers: HeaderMap, uri: Uri) -> ApiResult {
    admin(&st, &headers).await?;
    let q = Params::from(&uri, b"");
    if q.op() != "query" {
        return Err(bad_op(q.op()));
    }
    let after = q.get("after").and_then(|a| a.parse().ok());
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let page = st
        .store
        .events(q.get("id"), q.get("level").unwrap_or("INFO"), after, limit)
        .await?;
    ok_json(&page)
}

async fn results_get(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult {
    admin(&st, &headers).await?;
    let q = Params::from(&uri, b"");
    match q.get("type").unwrap_or("commissioning") {
        "commissioning" | "0" => {}
        "testing" | "2" | "installation" | "1" => return ok_json(&Vec::<()>::new()),
        other => {
            return Err(ApiError::text(
                StatusCode::BAD_REQUEST,
                format!("Unknown script type {other:?}: commissioning, testing or installation"),
            ));
        }
    }
    let include_output = matches!(q.get("include_output"), Some("1" | "true" | "True"));
    ok_json(&st.store.script_sets(&id, include_output).await?)
}

async fn maas_get(State(st): St, headers: HeaderMap, uri: Uri) -> ApiResult {
    admin(&st, &headers).await?;
    let q = Params::from(&uri, b"");
    match q.op() {
        "get_config" => ok_json(&st.store.get_config(q.get("name").unwrap_or("")).await?),
        op => Err(bad_op(op)),
    }
}

async fn maas_post(State(st): St, headers: HeaderMap, uri: Uri, body: Bytes) -> ApiResult {
    admin(&st, &headers).await?;
    let p = Params::from(&uri, &body);
    match p.op() {
        "set_config" => {
            let name = p.get("name").unwrap_or("");
            if name.is_empty() {
                return Err(StoreError::Invalid {
                    field: "name".into(),
                    message: "This field is required.".into(),
                }
                .into());
            }
            st.store
                .set_config(name, p.get("value").unwrap_or(""))
                .await?;
            Ok("OK".into_response())
        }
        op => Err(bad_op(op)),
    }
}

async fn racks_get(State(st): St, headers: HeaderMap) -> ApiResult {
    admin(&st, &headers).await?;
    ok_json(&racks_with_interfaces(&st).await?)
}

/// The racks, the sim's own with the interfaces it was told to report.
async fn racks_with_interfaces(
    st: &RegionState,
) -> Result<Vec<crate::maas::types::RackController>, StoreError> {
    let mut racks = st.store.rack_controllers().await?;
    for r in racks
        .iter_mut()
        .filter(|r| r.system_id == st.rack_system_id)
    {
        r.interface_set = st
            .rack_interfaces
            .iter()
            .enumerate()
            .map(|(i, name)| crate::maas::types::Interface {
                id: i as i64 + 1,
                name: name.clone(),
                iface_type: "physical".into(),
                mac_address: format!("00:16:3e:00:00:{:02x}", i + 1),
                enabled: true,
                vlan: None,
                links: Vec::new(),
                tags: Vec::new(),
                params: serde_json::Value::Null,
                product: None,
                vendor: None,
                resource_uri: format!("/MAAS/api/2.0/nodes/{}/interfaces/{}/", r.system_id, i + 1),
            })
            .collect();
    }
    Ok(racks)
}

/// GET rackcontrollers/{id}/ and op=list_boot_images (MAAS 2.8 answers
/// images, connected, status; the sim's one image is always synced).
async fn rack_get(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult {
    admin(&st, &headers).await?;
    let rack = racks_with_interfaces(&st)
        .await?
        .into_iter()
        .find(|r| r.system_id == id)
        .ok_or_else(|| {
            StoreError::NotFound(format!(
                "No RackController matches the given query (system_id {id})."
            ))
        })?;
    match Params::from(&uri, b"").op() {
        "" => ok_json(&rack),
        "list_boot_images" => ok_json(&serde_json::json!({
            "images": [{"name": "maas-e2e/ephemeral", "architecture": "amd64", "subarches": ["generic"]}],
            "connected": true,
            "status": "synced",
        })),
        op => Err(bad_op(op)),
    }
}

/// GET users/?op=whoami: who the key belongs to.
async fn users_get(State(st): St, headers: HeaderMap, uri: Uri) -> ApiResult {
    let p = admin(&st, &headers).await?;
    match Params::from(&uri, b"").op() {
        "whoami" => ok_json(&serde_json::json!({
            "username": p.username,
            "email": format!("{}@maas", p.username),
            "is_superuser": true,
            "is_local": true,
        })),
        op => Err(bad_op(op)),
    }
}

async fn fabrics_get(State(st): St, headers: HeaderMap) -> ApiResult {
    admin(&st, &headers).await?;
    ok_json(&st.store.fabrics().await?)
}

async fn vlans_get(State(st): St, headers: HeaderMap, Path(fabric): Path<i64>) -> ApiResult {
    admin(&st, &headers).await?;
    ok_json(&st.store.vlans(fabric).await?)
}

async fn vlan_get(
    State(st): St,
    headers: HeaderMap,
    Path((fabric, vid)): Path<(i64, i32)>,
) -> ApiResult {
    admin(&st, &headers).await?;
    let v = st
        .store
        .vlans(fabric)
        .await?
        .into_iter()
        .find(|v| i32::from(v.vid) == vid);
    match v {
        Some(v) => ok_json(&v),
        None => Err(StoreError::NotFound(format!(
            "No VLAN matches the given query (fabric {fabric}, vid {vid})."
        ))
        .into()),
    }
}

async fn vlan_put(
    State(st): St,
    headers: HeaderMap,
    Path((fabric, vid)): Path<(i64, i32)>,
    uri: Uri,
    body: Bytes,
) -> ApiResult {
    admin(&st, &headers).await?;
    let p = Params::from(&uri, &body);
    let dhcp_on = p
        .get("dhcp_on")
        .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"));
    let rack = p.get("primary_rack").map(String::from);
    ok_json(&st.store.update_vlan(fabric, vid, dhcp_on, rack).await?)
}

async fn subnets_get(State(st): St, headers: HeaderMap) -> ApiResult {
    admin(&st, &headers).await?;
    ok_json(&st.store.subnets().await?)
}

async fn subnets_post(State(st): St, headers: HeaderMap, uri: Uri, body: Bytes) -> ApiResult {
    admin(&st, &headers).await?;
    let p = Params::from(&uri, &body);
    let cidr = p.get("cidr").unwrap_or("");
    let fabric = p.get("fabric").and_then(|f| f.parse().ok());
    let vid = p.get("vid").and_then(|v| v.parse().ok());
    ok_json(
        &st.store
            .create_subnet(
                cidr,
                fabric,
                vid,
                p.get("gateway_ip").filter(|g| !g.is_empty()),
            )
            .await?,
    )
}

async fn ipranges_get(State(st): St, headers: HeaderMap) -> ApiResult {
    admin(&st, &headers).await?;
    ok_json(&st.store.ip_ranges().await?)
}

async fn ipranges_post(State(st): St, headers: HeaderMap, uri: Uri, body: Bytes) -> ApiResult {
    admin(&st, &headers).await?;
    let p = Params::from(&uri, &body);
    let r = st
        .store
        .create_ip_range(
            p.get("type").unwrap_or(""),
            p.get("start_ip").unwrap_or(""),
            p.get("end_ip").unwrap_or(""),
            p.get("comment").unwrap_or(""),
        )
        .await?;
    ok_json(&r)
}

async fn boot_resources_get(State(st): St, headers: HeaderMap, uri: Uri) -> ApiResult {
    admin(&st, &headers).await?;
    let q = Params::from(&uri, b"");
    match q.op() {
        // The sim's boot resources are the harness-built ephemeral image: never importing.
        "is_importing" => ok_json(&false),
        "" => ok_json(&vec![crate::maas::types::BootResource {
            id: 1,
            resource_type: "Synced".into(),
            name: "maas-e2e/ephemeral".into(),
            architecture: "amd64/generic".into(),
            resource_uri: "/MAAS/api/2.0/boot-resources/1/".into(),
        }]),
        op => Err(bad_op(op)),
    }
}
