//! The actions of the route table: thin, each a store call or a power
//! task, answers in MAAS 2.8's shapes. Store errors become HTTP answers in
//! one place (`http::ApiError`'s `From<StoreError>`).

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{ApiResult, Req};
use crate::maas::types::{
    BootResource, Interface, Machine, NodeStatus, PowerState, PowerStateReply, RackController,
    Version,
};
use crate::targets::sim::events;
use crate::targets::sim::http::ApiError;
use crate::targets::sim::state::{PowerChange, RegionState};
use crate::targets::sim::store::{EnlistForm, Phase, StoreError};

const API: &str = "/MAAS/api/2.0";

fn ok_json<T: serde::Serialize>(v: &T) -> ApiResult {
    Ok(axum::Json(v).into_response())
}

fn required(field: &str) -> ApiError {
    StoreError::Invalid {
        field: field.into(),
        message: "This field is required.".into(),
    }
    .into()
}

// ---- version ---------------------------------------------------------

pub async fn version(r: Req) -> ApiResult {
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
        // Speaks the profile's API (2.8.7 or 3.6.4); says in the
        // subversion that it is not MAAS (3.6 leaves subversion empty).
        version: r.st.profile.maas_version().into(),
        subversion: format!(
            "maas-e2e sim region {} (a reference implementation, not MAAS)",
            env!("CARGO_PKG_VERSION")
        ),
    })
}

// ---- machines --------------------------------------------------------

pub async fn machines_read(r: Req) -> ApiResult {
    let t0 = std::time::Instant::now();
    let ms = r.st.store.machines().await?;
    let read = t0.elapsed();
    // Encoding 1,000 machines is the request's biggest cost (hundreds of
    // ms in a debug build): on the blocking pool, not a runtime worker the
    // rack's power tasks and (in one process) the BMCs also need.
    let body = tokio::task::spawn_blocking(move || serde_json::to_vec(&ms))
        .await
        .expect("the encode task does not panic")
        .expect("machines encode as JSON (plain structs, string-keyed maps)");
    tracing::debug!(
        read_ms = read.as_secs_f64() * 1e3,
        encode_ms = (t0.elapsed() - read).as_secs_f64() * 1e3,
        bytes = body.len(),
        "GET machines/"
    );
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

pub async fn machines_is_registered(r: Req) -> ApiResult {
    let mac = r.p.get("mac_address").unwrap_or("");
    if crate::targets::sim::store::normalise_mac(mac).is_none() {
        return Err(StoreError::Invalid {
            field: "mac_address".into(),
            message: format!("'{mac}' is not a valid MAC address."),
        }
        .into());
    }
    // 2.8: anonymous callers (the enlisting guest) do not count New,
    // Commissioning or Retired machines, so enlistment may run again.
    let ignore: &[NodeStatus] = if r.who.is_some() {
        &[NodeStatus::RETIRED]
    } else {
        &[
            NodeStatus::NEW,
            NodeStatus::COMMISSIONING,
            NodeStatus::RETIRED,
        ]
    };
    ok_json(&r.st.store.is_registered(mac, ignore).await?)
}

/// POST machines/: anonymous enlistment leaves the machine New; an admin's
/// create commissions it (2.8: `commission` defaults to true for admins).
pub async fn machines_create(r: Req) -> ApiResult {
    let p = &r.p;
    let form = EnlistForm {
        hostname: p.get("hostname").unwrap_or("").into(),
        architecture: p.get("architecture").unwrap_or("").into(),
        subarchitecture: p.get("subarchitecture").unwrap_or("").into(),
        power_type: p.get("power_type").unwrap_or("").into(),
        power_parameters: power_parameters_field(p),
        mac_addresses: p.all("mac_addresses"),
    };
    if r.who.is_none()
        && let Some(id) = r.st.store.enlisted_before(&form).await?
    {
        // 2.8 AnonMachinesHandler.create: a repeat of an enlistment
        // updates the New or Commissioning machine it matches.
        tracing::info!(system_id = %id, "found existing machine, enlisting");
        return ok_json(&r.st.store.update_enlisted(&id, &form).await?);
    }
    let m = r.st.store.enlist(&form).await?;
    tracing::info!(system_id = %m.system_id, hostname = %m.hostname, "machine enlisted");
    if r.who.is_some() && p.flag("commission").unwrap_or(true) {
        // 2.8 ignores a failure to start commissioning here (the machine
        // is created either way: api/machines.py MachinesHandler.create).
        match commission(&r, &m.system_id).await {
            Ok(answer) => return Ok(answer),
            Err(e) => tracing::warn!(system_id = %m.system_id, status = %e.status, body = %e.body,
                "created machine not commissioned"),
        }
        return ok_json(&r.st.store.machine(&m.system_id).await?);
    }
    ok_json(&m)
}

/// power_parameters as one JSON string (enlistment) or, as MAAS's forms
/// also take them, `power_parameters_<name>` fields.
fn power_parameters_field(p: &crate::targets::sim::http::Params) -> String {
    if let Some(j) = p.get("power_parameters") {
        return j.to_string();
    }
    let fields: serde_json::Map<String, Value> = p
        .pairs
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("power_parameters_")
                .map(|n| (n.to_string(), json!(v)))
        })
        .collect();
    if fields.is_empty() {
        String::new()
    } else {
        Value::Object(fields).to_string()
    }
}

/// machines/?op=power_parameters: every machine's (or the `id`s') power
/// parameters by system_id.
pub async fn machines_power_parameters(r: Req) -> ApiResult {
    let wanted = r.p.all("id");
    let mut out = serde_json::Map::new();
    for m in r.st.store.machines().await? {
        if wanted.is_empty() || wanted.contains(&m.system_id) {
            let s = r.st.store.power_settings(&m.system_id).await?;
            out.insert(m.system_id, s.power_parameters);
        }
    }
    ok_json(&out)
}

/// machines/?op=list_allocated: the sim allocates nothing.
pub async fn machines_list_allocated(_: Req) -> ApiResult {
    ok_json(&Vec::<Machine>::new())
}

pub async fn machine_read(r: Req) -> ApiResult {
    ok_json(&r.st.store.machine(r.arg("system_id")).await?)
}

pub async fn machine_power_parameters(r: Req) -> ApiResult {
    ok_json(
        &r.st
            .store
            .power_settings(r.arg("system_id"))
            .await?
            .power_parameters,
    )
}

pub async fn machine_query_power_state(r: Req) -> ApiResult {
    let id = r.arg("system_id");
    r.st.store.machine(id).await?;
    match r
        .st
        .query_power(id, crate::targets::sim::state::QueryVia::Api)
        .await
    {
        Ok(state) => ok_json(&PowerStateReply { state }),
        Err(e) => Err(ApiError::text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Power state could not be queried: {e}"),
        )),
    }
}

/// DELETE machines/{id}/: 204, as MAAS answers.
pub async fn machine_delete(r: Req) -> ApiResult {
    r.st.store.delete_machine(r.arg("system_id")).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn commission(r: &Req, id: &str) -> ApiResult {
    let settings = r.st.store.power_settings(id).await?;
    if settings.power_type.is_empty() {
        return Err(ApiError::text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Unable to start machine {id}: no power type is set; MAAS cannot power it on."),
        ));
    }
    let machine = r.st.store.machine(id).await?;
    r.st.store.check_commissionable(&machine)?;
    // models/node.py start_commissioning: the request event ("(USER)"),
    // "Commissioning", then the status change.
    r.st.event(
        id,
        &events::USER_COMMISSIONING,
        &format!("({})", r.username()),
    )
    .await;
    r.st.event(id, &events::COMMISSIONING, "").await;
    r.st.store.start_commissioning(id).await?;
    // Node._start: a machine that is on is power cycled, else powered on.
    let change = if machine.power_state == PowerState::On {
        PowerChange::Cycle
    } else {
        PowerChange::On
    };
    r.st.start_power(id.to_string(), change).await;
    ok_json(&r.st.store.machine(id).await?)
}

pub async fn machine_commission(r: Req) -> ApiResult {
    let id = r.arg("system_id").to_string();
    commission(&r, &id).await
}

async fn power(r: Req, change: PowerChange) -> ApiResult {
    let id = r.arg("system_id").to_string();
    r.st.store.machine(&id).await?;
    r.st.start_power(id.clone(), change).await;
    ok_json(&r.st.store.machine(&id).await?)
}

pub async fn machine_power_on(r: Req) -> ApiResult {
    power(r, PowerChange::On).await
}

pub async fn machine_power_off(r: Req) -> ApiResult {
    power(r, PowerChange::Off).await
}

pub async fn machine_abort(r: Req) -> ApiResult {
    let id = r.arg("system_id").to_string();
    let m = r.st.store.machine(&id).await?;
    if m.status != NodeStatus::COMMISSIONING && m.status != NodeStatus::TESTING {
        return Err(ApiError::text(
            StatusCode::CONFLICT,
            format!(
                "Node {id} has no action to abort (status {}).",
                m.status.name()
            ),
        ));
    }
    for phase in [Phase::Commissioning, Phase::Testing] {
        r.st.store.end_script_set(&id, phase, 5).await?;
    }
    r.st.store
        .set_status(&id, NodeStatus::NEW, Some("Aborted"))
        .await?;
    r.st.start_power(id.clone(), PowerChange::Off).await;
    ok_json(&r.st.store.machine(&id).await?)
}

/// op=details: 2.8 answers BSON {"lshw": bytes|null, "lldp": bytes|null};
/// the sim keeps no probe data, so both are null.
pub async fn node_details(r: Req) -> ApiResult {
    r.st.store.machine(r.arg("system_id")).await?;
    let mut doc = Vec::new();
    for key in ["lshw", "lldp"] {
        doc.push(0x0a); // BSON null element
        doc.extend_from_slice(key.as_bytes());
        doc.push(0);
    }
    let mut bson = ((doc.len() + 5) as i32).to_le_bytes().to_vec();
    bson.extend(doc);
    bson.push(0);
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/bson")],
        bson,
    )
        .into_response())
}

// ---- nodes -----------------------------------------------------------

/// nodes/: machines and controllers alike.
pub async fn nodes_read(r: Req) -> ApiResult {
    let mut out: Vec<Value> =
        r.st.store
            .machines()
            .await?
            .iter()
            .map(|m| serde_json::to_value(m).unwrap_or_default())
            .collect();
    for rack in racks_with_interfaces(&r.st).await? {
        out.push(serde_json::to_value(rack).unwrap_or_default());
    }
    ok_json(&out)
}

/// nodes/{id}/: a machine, or a controller.
pub async fn node_read(r: Req) -> ApiResult {
    let id = r.arg("system_id");
    match r.st.store.machine(id).await {
        Ok(m) => ok_json(&m),
        Err(StoreError::NotFound(_)) => ok_json(&rack(&r.st, id).await?),
        Err(e) => Err(e.into()),
    }
}

pub async fn results_read(r: Req) -> ApiResult {
    let phase = match r.p.get("type").unwrap_or("commissioning") {
        "commissioning" | "0" => Phase::Commissioning,
        "testing" | "2" => Phase::Testing,
        "installation" | "1" => return ok_json(&Vec::<()>::new()),
        other => {
            return Err(ApiError::text(
                StatusCode::BAD_REQUEST,
                format!("Unknown script type {other:?}: commissioning, testing or installation"),
            ));
        }
    };
    let include_output = matches!(r.p.get("include_output"), Some("1" | "true" | "True"));
    ok_json(
        &r.st
            .store
            .script_sets(r.arg("system_id"), phase, include_output)
            .await?,
    )
}

// ---- events, config ----------------------------------------------------

pub async fn events_query(r: Req) -> ApiResult {
    let q = &r.p;
    let after = q.get("after").and_then(|a| a.parse().ok());
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let page =
        r.st.store
            .events(q.get("id"), q.get("level").unwrap_or("INFO"), after, limit)
            .await?;
    ok_json(&page)
}

pub async fn maas_get_config(r: Req) -> ApiResult {
    let name =
        r.p.get("name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| required("name"))?;
    ok_json(&r.st.store.get_config(name).await?)
}

pub async fn maas_set_config(r: Req) -> ApiResult {
    let name =
        r.p.get("name")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| required("name"))?;
    r.st.store
        .set_config(name, r.p.get("value").unwrap_or(""))
        .await?;
    Ok("OK".into_response())
}

// ---- controllers -------------------------------------------------------

/// The racks, the sim's own with the interfaces it was told to report.
async fn racks_with_interfaces(st: &RegionState) -> Result<Vec<RackController>, StoreError> {
    let mut racks = st.store.rack_controllers().await?;
    for r in racks
        .iter_mut()
        .filter(|r| r.system_id == st.rack_system_id)
    {
        r.interface_set = st
            .rack_interfaces
            .iter()
            .enumerate()
            .map(|(i, name)| {
                Interface::physical(
                    i as i64 + 1,
                    name,
                    &format!("00:16:3e:00:00:{:02x}", i + 1),
                    &r.system_id,
                )
            })
            .collect();
    }
    Ok(racks)
}

async fn rack(st: &RegionState, id: &str) -> Result<RackController, StoreError> {
    racks_with_interfaces(st)
        .await?
        .into_iter()
        .find(|r| r.system_id == id)
        .ok_or_else(|| {
            StoreError::NotFound(format!(
                "No RackController matches the given query (system_id {id})."
            ))
        })
}

pub async fn racks_read(r: Req) -> ApiResult {
    ok_json(&racks_with_interfaces(&r.st).await?)
}

pub async fn rack_read(r: Req) -> ApiResult {
    ok_json(&rack(&r.st, r.arg("system_id")).await?)
}

/// op=list_boot_images (MAAS 2.8 answers images, connected, status; the
/// sim's one image is always synced).
pub async fn rack_list_boot_images(r: Req) -> ApiResult {
    rack(&r.st, r.arg("system_id")).await?;
    ok_json(&json!({
        "images": [{"name": "maas-e2e/ephemeral", "architecture": "amd64", "subarches": ["generic"]}],
        "connected": true,
        "status": "synced",
    }))
}

/// The region controller: the sim region runs with its rack, as a MAAS
/// region+rack host does, so it is the rack's node as a region.
async fn regions(st: &RegionState) -> Result<Vec<Value>, StoreError> {
    Ok(racks_with_interfaces(st)
        .await?
        .into_iter()
        .filter(|r| r.system_id == st.rack_system_id)
        .map(|r| {
            let mut v = serde_json::to_value(&r).unwrap_or_default();
            v["node_type"] = json!(4);
            v["node_type_name"] = json!("Region and rack controller");
            v["service_set"] = json!([{"name": "regiond", "status": "running", "status_info": ""}]);
            v["resource_uri"] = json!(format!("{API}/regioncontrollers/{}/", r.system_id));
            v
        })
        .collect())
}

pub async fn regions_read(r: Req) -> ApiResult {
    ok_json(&regions(&r.st).await?)
}

pub async fn region_read(r: Req) -> ApiResult {
    let id = r.arg("system_id");
    regions(&r.st)
        .await?
        .into_iter()
        .find(|v| v["system_id"] == id)
        .map_or_else(|| Err(not_found()), |v| ok_json(&v))
}

fn not_found() -> ApiError {
    StoreError::NotFound(String::new()).into()
}

// ---- users -------------------------------------------------------------

fn user(name: &str) -> Value {
    json!({
        "username": name,
        "email": format!("{name}@maas"),
        "is_superuser": true,
        "is_local": true,
        "resource_uri": format!("{API}/users/{name}/"),
    })
}

pub async fn users_read(_: Req) -> ApiResult {
    ok_json(&[user("admin")])
}

pub async fn users_whoami(r: Req) -> ApiResult {
    ok_json(&user(r.username()))
}

pub async fn user_read(r: Req) -> ApiResult {
    match r.arg("username") {
        "admin" => ok_json(&user("admin")),
        _ => Err(not_found()),
    }
}

// ---- network -------------------------------------------------------------

pub async fn fabrics_read(r: Req) -> ApiResult {
    ok_json(&r.st.store.fabrics().await?)
}

pub async fn fabric_read(r: Req) -> ApiResult {
    let id: i64 = r.arg("id").parse().map_err(|_| not_found())?;
    r.st.store
        .fabrics()
        .await?
        .into_iter()
        .find(|f| f.id == id)
        .map_or_else(|| Err(not_found()), |f| ok_json(&f))
}

fn fabric_id(r: &Req) -> Result<i64, ApiError> {
    r.arg("fabric_id").parse().map_err(|_| not_found())
}

pub async fn vlans_read(r: Req) -> ApiResult {
    ok_json(&r.st.store.vlans(fabric_id(&r)?).await?)
}

pub async fn vlan_read(r: Req) -> ApiResult {
    let (fabric, vid) = (fabric_id(&r)?, r.arg("vid"));
    r.st.store
        .vlans(fabric)
        .await?
        .into_iter()
        .find(|v| v.vid.to_string() == vid)
        .map_or_else(|| Err(not_found()), |v| ok_json(&v))
}

pub async fn vlan_update(r: Req) -> ApiResult {
    let fabric = fabric_id(&r)?;
    let vid: i32 = r.arg("vid").parse().map_err(|_| not_found())?;
    let dhcp_on = r.p.flag("dhcp_on");
    let rack = r.p.get("primary_rack").map(String::from);
    ok_json(&r.st.store.update_vlan(fabric, vid, dhcp_on, rack).await?)
}

pub async fn subnets_read(r: Req) -> ApiResult {
    ok_json(&r.st.store.subnets().await?)
}

pub async fn subnet_read(r: Req) -> ApiResult {
    let id = r.arg("id");
    r.st.store
        .subnets()
        .await?
        .into_iter()
        .find(|s| s.id.to_string() == id || s.cidr == id)
        .map_or_else(|| Err(not_found()), |s| ok_json(&s))
}

pub async fn subnets_create(r: Req) -> ApiResult {
    let p = &r.p;
    let cidr = p.get("cidr").unwrap_or("");
    let fabric = p.get("fabric").and_then(|f| f.parse().ok());
    let vid = p.get("vid").and_then(|v| v.parse().ok());
    ok_json(
        &r.st
            .store
            .create_subnet(
                cidr,
                fabric,
                vid,
                p.get("gateway_ip").filter(|g| !g.is_empty()),
            )
            .await?,
    )
}

pub async fn ipranges_read(r: Req) -> ApiResult {
    ok_json(&r.st.store.ip_ranges().await?)
}

pub async fn ipranges_create(r: Req) -> ApiResult {
    let p = &r.p;
    let range =
        r.st.store
            .create_ip_range(
                p.get("type").unwrap_or(""),
                p.get("start_ip").unwrap_or(""),
                p.get("end_ip").unwrap_or(""),
                p.get("comment").unwrap_or(""),
            )
            .await?;
    ok_json(&range)
}

/// spaces/: 2.8 lists the "undefined" pseudo-space (id -1) holding every
/// VLAN and subnet not in a space; the sim has no other.
async fn undefined_space(st: &RegionState) -> Result<Value, StoreError> {
    let subnets = st.store.subnets().await?;
    let mut vlans = Vec::new();
    for f in st.store.fabrics().await? {
        vlans.extend(f.vlans);
    }
    Ok(json!({
        "id": -1,
        "name": "undefined",
        "vlans": vlans,
        "subnets": subnets,
        "resource_uri": format!("{API}/spaces/undefined/"),
    }))
}

pub async fn spaces_read(r: Req) -> ApiResult {
    ok_json(&[undefined_space(&r.st).await?])
}

pub async fn space_read(r: Req) -> ApiResult {
    match r.arg("id") {
        "-1" | "undefined" => ok_json(&undefined_space(&r.st).await?),
        _ => Err(not_found()),
    }
}

// ---- zones, pools, tags, domains (one default each, none for tags) -------

fn zone() -> Value {
    json!({"id": 1, "name": "default", "description": "", "resource_uri": format!("{API}/zones/default/")})
}

fn pool() -> Value {
    json!({"id": 0, "name": "default", "description": "Default pool", "resource_uri": format!("{API}/resourcepool/0/")})
}

fn domain() -> Value {
    json!({"id": 0, "name": "maas", "authoritative": true, "ttl": null, "is_default": true,
           "resource_record_count": 0, "resource_uri": format!("{API}/domains/0/")})
}

pub async fn zones_read(_: Req) -> ApiResult {
    ok_json(&[zone()])
}

pub async fn zone_read(r: Req) -> ApiResult {
    match r.arg("name") {
        "default" => ok_json(&zone()),
        _ => Err(not_found()),
    }
}

pub async fn pools_read(_: Req) -> ApiResult {
    ok_json(&[pool()])
}

pub async fn pool_read(r: Req) -> ApiResult {
    match r.arg("id") {
        "0" | "default" => ok_json(&pool()),
        _ => Err(not_found()),
    }
}

pub async fn tags_read(_: Req) -> ApiResult {
    ok_json(&Vec::<Value>::new())
}

pub async fn tag_read(_: Req) -> ApiResult {
    Err(not_found())
}

pub async fn domains_read(_: Req) -> ApiResult {
    ok_json(&[domain()])
}

pub async fn domain_read(r: Req) -> ApiResult {
    match r.arg("id") {
        "0" | "maas" => ok_json(&domain()),
        _ => Err(not_found()),
    }
}

// ---- boot resources and sources --------------------------------------------

pub async fn boot_resources_read(_: Req) -> ApiResult {
    ok_json(&vec![BootResource {
        id: 1,
        resource_type: "Synced".into(),
        name: "maas-e2e/ephemeral".into(),
        architecture: "amd64/generic".into(),
        resource_uri: format!("{API}/boot-resources/1/"),
    }])
}

/// The sim's boot resources are the harness-built ephemeral image: never importing.
pub async fn boot_resources_is_importing(_: Req) -> ApiResult {
    ok_json(&false)
}

/// boot-sources/: 2.8's default source (the sim imports nothing from it).
fn boot_source() -> Value {
    json!({
        "id": 1,
        "url": "http://images.maas.io/ephemeral-v3/stable/",
        "keyring_filename": "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg",
        "keyring_data": "",
        "resource_uri": format!("{API}/boot-sources/1/"),
    })
}

pub async fn boot_sources_read(_: Req) -> ApiResult {
    ok_json(&[boot_source()])
}

pub async fn boot_source_read(r: Req) -> ApiResult {
    match r.arg("id") {
        "1" => ok_json(&boot_source()),
        _ => Err(not_found()),
    }
}
