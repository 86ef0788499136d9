//! Redfish requests of one BMC: routing, authentication, fault switches,
//! and the actions, each carried out as the IPMI command it stands for on
//! the BMC's one state (Get Chassis Status, Chassis Control, Set System
//! Boot Options), so power and boot changes are shared with IPMI and
//! command faults and the transcript cover both protocols.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::watch;

use super::auth::{self, Caller, Sessions};
use super::resources::{self as res, BootView, Message, SystemView};
use super::tls::Peer;
use crate::bmc::cmd::{Reply, cc, netfn};
use crate::bmc::fault::Medium;
use crate::bmc::instance::Bmc;
use crate::bmc::state::privilege;
use crate::bmc::transcript::Entry;

/// Request bodies larger than this are refused.
const MAX_BODY: usize = 64 * 1024;

/// One BMC's Redfish service.
pub struct Service {
    pub bmc: Arc<Bmc>,
    pub sessions: Sessions,
    pub shutdown: watch::Receiver<bool>,
}

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Versions,
    Root,
    OdataDocument,
    Metadata,
    Systems,
    System,
    Reset,
    Managers,
    Manager,
    EthernetInterfaces,
    EthernetInterface,
    ChassisCollection,
    Chassis,
    SessionService,
    Sessions,
    Session(String),
    AccountService,
    Roles,
    Role(String),
    NotFound,
}

impl Route {
    /// The route of a path; a trailing slash does not matter (MAAS retries
    /// a 404 with one added).
    pub fn of(path: &str) -> Route {
        let p = path.trim_end_matches('/');
        match p {
            "/redfish" => Route::Versions,
            "/redfish/v1" => Route::Root,
            "/redfish/v1/odata" => Route::OdataDocument,
            "/redfish/v1/$metadata" => Route::Metadata,
            "/redfish/v1/Systems" => Route::Systems,
            "/redfish/v1/Systems/1" => Route::System,
            "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset" => Route::Reset,
            "/redfish/v1/Managers" => Route::Managers,
            "/redfish/v1/Managers/1" => Route::Manager,
            "/redfish/v1/Managers/1/EthernetInterfaces" => Route::EthernetInterfaces,
            "/redfish/v1/Managers/1/EthernetInterfaces/1" => Route::EthernetInterface,
            "/redfish/v1/Chassis" => Route::ChassisCollection,
            "/redfish/v1/Chassis/1" => Route::Chassis,
            "/redfish/v1/SessionService" => Route::SessionService,
            "/redfish/v1/AccountService" => Route::AccountService,
            "/redfish/v1/AccountService/Roles" => Route::Roles,
            // POST to a collection's Members is POST to the collection.
            "/redfish/v1/SessionService/Sessions"
            | "/redfish/v1/SessionService/Sessions/Members" => Route::Sessions,
            _ => {
                let member = |prefix: &str| {
                    p.strip_prefix(prefix)
                        .filter(|id| !id.is_empty() && !id.contains('/'))
                        .map(String::from)
                };
                if let Some(id) = member("/redfish/v1/SessionService/Sessions/") {
                    Route::Session(id)
                } else if let Some(id) = member("/redfish/v1/AccountService/Roles/") {
                    Route::Role(id)
                } else {
                    Route::NotFound
                }
            }
        }
    }

    /// Methods this resource supports.
    pub fn allowed(&self) -> &'static [Method] {
        const READ: &[Method] = &[Method::GET, Method::HEAD];
        match self {
            Route::System => &[Method::GET, Method::HEAD, Method::PATCH],
            Route::Reset => &[Method::POST],
            Route::Sessions => &[Method::GET, Method::HEAD, Method::POST],
            Route::Session(_) => &[Method::GET, Method::HEAD, Method::DELETE],
            Route::NotFound => &[],
            _ => READ,
        }
    }

    /// Whether the request needs no credentials (DSP0266 §13.3.4: the
    /// service root, `$metadata`, the OData document, and logging in).
    pub fn open(&self, method: &Method) -> bool {
        match self {
            Route::Versions | Route::Root | Route::OdataDocument | Route::Metadata => true,
            Route::Sessions => method == Method::POST,
            _ => false,
        }
    }
}

pub fn router(svc: Arc<Service>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(svc)
}

fn with_common_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert("OData-Version", HeaderValue::from_static("4.0"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

fn json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        )],
        body.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, m: Message) -> Response {
    json(status, &res::error(&m, None))
}

fn unauthorized() -> Response {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        Message::new("NoValidSession", &[]),
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"Redfish\""),
    );
    r
}

fn forbidden() -> Response {
    error(
        StatusCode::FORBIDDEN,
        Message::new("InsufficientPrivilege", &[]),
    )
}

/// An IPMI completion code that stopped a Redfish request, as HTTP.
fn refused(reply: &Reply) -> Response {
    match reply.cc {
        cc::INSUFFICIENT_PRIVILEGE => forbidden(),
        cc::NOT_SUPPORTED_IN_STATE => error(
            StatusCode::CONFLICT,
            Message::new("ChassisPowerStateOnRequired", &[res::MEMBER_ID]),
        ),
        cc::NODE_BUSY => {
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                Message::new("ServiceTemporarilyUnavailable", &["5"]),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
        code => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &res::error(
                &Message::new("GeneralError", &[]),
                Some(&format!("The BMC answered completion code {code:#04x}.")),
            ),
        ),
    }
}

async fn handle(
    State(svc): State<Arc<Service>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    req: Request<Body>,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    // Fault switches: one decision per request, as per LAN datagram.
    let latency = match svc.bmc.admit_datagram() {
        Some(latency) => latency,
        None => {
            let mut e = Entry::new(&svc.bmc.name, Medium::Redfish, "dropped");
            e.peer = Some(peer.to_string());
            e.detail = Some(format!("{method} {path}"));
            svc.bmc.log(&e);
            // No answer: the client times out, as with a silent BMC.
            let mut shutdown = svc.shutdown.clone();
            let _ = shutdown.wait_for(|stop| *stop).await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    if let Some(d) = latency {
        tokio::time::sleep(d).await;
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return with_common_headers(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                Message::new("GeneralError", &[]),
            ));
        }
    };
    let (response, user) = respond(&svc, &method, &path, &parts.headers, &body);
    let mut e = Entry::new(&svc.bmc.name, Medium::Redfish, "http");
    e.peer = Some(peer.to_string());
    e.user = user;
    e.detail = Some(format!("{method} {path} {}", response.status().as_u16()));
    svc.bmc.log(&e);
    with_common_headers(response)
}

/// The response and the user it was for (for the transcript).
fn respond(
    svc: &Service,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> (Response, Option<String>) {
    let route = Route::of(path);
    if route == Route::NotFound {
        let r = error(
            StatusCode::NOT_FOUND,
            Message::new("ResourceNotFound", &["Resource", path]),
        );
        return (r, None);
    }
    if !route.allowed().contains(method) {
        let allow: Vec<&str> = route.allowed().iter().map(Method::as_str).collect();
        let mut r = error(
            StatusCode::METHOD_NOT_ALLOWED,
            Message::new("OperationNotAllowed", &[]),
        );
        if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
            r.headers_mut().insert(header::ALLOW, v);
        }
        return (r, None);
    }
    // DSP0266: an OData-Version the service does not support is refused.
    if let Some(v) = headers.get("OData-Version")
        && v.as_bytes() != b"4.0"
    {
        let r = error(
            StatusCode::PRECONDITION_FAILED,
            Message::new("GeneralError", &[]),
        );
        return (r, None);
    }
    let (mut response, user) = if route.open(method) {
        (open_resource(svc, &route, body), None)
    } else {
        match authenticate(svc, headers) {
            None => (unauthorized(), None),
            Some(caller) if caller.privilege < privilege::USER => (forbidden(), Some(caller.user)),
            Some(caller) => (
                authenticated(svc, &route, method, headers, body, &caller),
                Some(caller.user),
            ),
        }
    };
    if matches!(*method, Method::GET | Method::HEAD) && response.status().is_success() {
        let allow: Vec<&str> = route.allowed().iter().map(Method::as_str).collect();
        if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
            response.headers_mut().insert(header::ALLOW, v);
        }
        if let Some(schema) = described_schema(&route)
            && let Ok(v) = HeaderValue::from_str(&format!("<{schema}>; rel=describedby"))
        {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    (response, user)
}

/// The JSON schema of a route's resource (for the Link header).
fn described_schema(route: &Route) -> Option<String> {
    let t = match route {
        Route::Versions | Route::OdataDocument | Route::Metadata | Route::NotFound => {
            return None;
        }
        Route::Root => "#ServiceRoot.v1_5_0.ServiceRoot",
        Route::Systems => "#ComputerSystemCollection.ComputerSystemCollection",
        Route::System => "#ComputerSystem.v1_10_0.ComputerSystem",
        Route::Reset => return None,
        Route::Managers => "#ManagerCollection.ManagerCollection",
        Route::Manager => "#Manager.v1_5_0.Manager",
        Route::EthernetInterfaces => "#EthernetInterfaceCollection.EthernetInterfaceCollection",
        Route::EthernetInterface => "#EthernetInterface.v1_5_1.EthernetInterface",
        Route::ChassisCollection => "#ChassisCollection.ChassisCollection",
        Route::Chassis => "#Chassis.v1_10_0.Chassis",
        Route::SessionService => "#SessionService.v1_1_8.SessionService",
        Route::Sessions => "#SessionCollection.SessionCollection",
        Route::Session(_) => "#Session.v1_3_0.Session",
        Route::AccountService => "#AccountService.v1_5_0.AccountService",
        Route::Roles => "#RoleCollection.RoleCollection",
        Route::Role(_) => "#Role.v1_2_4.Role",
    };
    res::described_by(t)
}

fn authenticate(svc: &Service, headers: &HeaderMap) -> Option<Caller> {
    let state = svc.bmc.state();
    if let Some(token) = headers.get("X-Auth-Token").and_then(|v| v.to_str().ok()) {
        let (id, user) = svc.sessions.lookup(token)?;
        // The user's current privilege: IPMI may have changed it since.
        let (_, u) = state.find_user(user.as_bytes())?;
        if !u.enabled {
            return None;
        }
        return Some(Caller {
            privilege: u.lan.privilege.min(state.lan_privilege_limit()),
            user,
            session: Some(id),
        });
    }
    let (user, password) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::parse_basic)?;
    let privilege = auth::check_password(&state, &user, &password)?;
    Some(Caller {
        user,
        privilege,
        session: None,
    })
}

fn uuid_of(bmc: &Bmc) -> String {
    uuid::Uuid::from_bytes(bmc.state().identity.system_guid).to_string()
}

/// The view of the machine, reading power through Get Chassis Status; the
/// refusing IPMI reply when that fails (see [`refused`]).
fn view(bmc: &Bmc, caller: &Caller) -> Result<SystemView, Reply> {
    let reply = bmc.run_command(Medium::Redfish, caller.privilege, netfn::CHASSIS, 0x01, &[]);
    if reply.cc != cc::OK || reply.data.is_empty() {
        return Err(reply);
    }
    let st = bmc.state();
    Ok(SystemView {
        bmc_name: bmc.name.clone(),
        uuid: uuid::Uuid::from_bytes(st.identity.system_guid).to_string(),
        power_on: reply.data[0] & 1 != 0,
        boot: BootView::from_ipmi(&st.boot.flags),
        mac: st
            .lan
            .mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        ip: st.lan.ip.to_string(),
        netmask: st.lan.netmask.to_string(),
        gateway: st.lan.gateway_ip.to_string(),
    })
}

fn open_resource(svc: &Service, route: &Route, body: &Bytes) -> Response {
    match route {
        Route::Versions => json(StatusCode::OK, &res::redfish_versions()),
        Route::OdataDocument => json(StatusCode::OK, &res::odata_service_document()),
        Route::Metadata => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            )],
            res::metadata_xml(),
        )
            .into_response(),
        Route::Root => {
            let v = SystemView {
                bmc_name: svc.bmc.name.clone(),
                uuid: uuid_of(&svc.bmc),
                power_on: false,
                boot: BootView::from_ipmi(&[0; 5]),
                mac: String::new(),
                ip: String::new(),
                netmask: String::new(),
                gateway: String::new(),
            };
            json(StatusCode::OK, &res::service_root(&v))
        }
        Route::Sessions => login(svc, body),
        _ => unauthorized(),
    }
}

/// POST SessionService/Sessions: a session and its token.
fn login(svc: &Service, body: &Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, Message::new("MalformedJSON", &[]));
    };
    let field = |k: &str| v.get(k).and_then(Value::as_str);
    let (Some(user), Some(password)) = (field("UserName"), field("Password")) else {
        return error(
            StatusCode::BAD_REQUEST,
            Message::new("PropertyMissing", &["UserName"]),
        );
    };
    let state = svc.bmc.state();
    if auth::check_password(&state, user, password).is_none() {
        return unauthorized();
    }
    match svc.sessions.create(user) {
        Ok((id, token)) => {
            let mut r = json(StatusCode::CREATED, &res::session(&id, user));
            let h = r.headers_mut();
            if let (Ok(loc), Ok(tok)) = (
                HeaderValue::from_str(&format!("{}/{id}", res::SESSIONS)),
                HeaderValue::from_str(&token),
            ) {
                h.insert(header::LOCATION, loc);
                h.insert("X-Auth-Token", tok);
            }
            r
        }
        Err(auth::CreateError::Full) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            Message::new("CreateLimitReachedForResource", &[]),
        ),
    }
}

fn authenticated(
    svc: &Service,
    route: &Route,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
    caller: &Caller,
) -> Response {
    let bmc = &*svc.bmc;
    let with_view = |f: fn(&SystemView) -> Value| match view(bmc, caller) {
        Ok(v) => json(StatusCode::OK, &f(&v)),
        Err(r) => refused(&r),
    };
    match (route, method) {
        (Route::Root, _) | (Route::Versions, _) => unauthorized(),
        (Route::Systems, _) => json(StatusCode::OK, &res::systems()),
        (Route::System, &Method::PATCH) => patch_system(bmc, headers, body, caller),
        (Route::System, _) => match view(bmc, caller) {
            Ok(v) => {
                let etag = res::system_etag(&v);
                let matches = headers
                    .get(header::IF_NONE_MATCH)
                    .and_then(|h| h.to_str().ok())
                    .is_some_and(|h| h.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
                let mut r = if matches {
                    StatusCode::NOT_MODIFIED.into_response()
                } else {
                    json(StatusCode::OK, &res::system(&v))
                };
                if let Ok(h) = HeaderValue::from_str(&etag) {
                    r.headers_mut().insert(header::ETAG, h);
                }
                r
            }
            Err(r) => refused(&r),
        },
        (Route::Reset, _) => reset(bmc, body, caller),
        (Route::Managers, _) => json(StatusCode::OK, &res::managers()),
        (Route::Manager, _) => with_view(res::manager),
        (Route::EthernetInterfaces, _) => json(StatusCode::OK, &res::ethernet_interfaces()),
        (Route::EthernetInterface, _) => with_view(res::ethernet_interface),
        (Route::ChassisCollection, _) => json(StatusCode::OK, &res::chassis_collection()),
        (Route::Chassis, _) => with_view(res::chassis),
        (Route::SessionService, _) => json(
            StatusCode::OK,
            &res::session_service(auth::SESSION_TIMEOUT.as_secs()),
        ),
        (Route::Sessions, _) => json(StatusCode::OK, &res::sessions(&svc.sessions.ids())),
        (Route::Session(id), &Method::DELETE) => {
            let owner = svc.sessions.user_of(id);
            match owner {
                None => error(
                    StatusCode::NOT_FOUND,
                    Message::new("ResourceNotFound", &["Session", id]),
                ),
                // Only its owner or an administrator ends a session.
                Some(o) if o != caller.user && caller.privilege < privilege::ADMIN => forbidden(),
                Some(_) => {
                    svc.sessions.delete(id);
                    StatusCode::NO_CONTENT.into_response()
                }
            }
        }
        (Route::Session(id), _) => match svc.sessions.user_of(id) {
            Some(user) => json(StatusCode::OK, &res::session(id, &user)),
            None => error(
                StatusCode::NOT_FOUND,
                Message::new("ResourceNotFound", &["Session", id]),
            ),
        },
        (Route::AccountService, _) => json(StatusCode::OK, &res::account_service()),
        (Route::Roles, _) => json(StatusCode::OK, &res::roles()),
        (Route::Role(id), _) => match res::role(id) {
            Some(r) => json(StatusCode::OK, &r),
            None => error(
                StatusCode::NOT_FOUND,
                Message::new("ResourceNotFound", &["Role", id]),
            ),
        },
        (Route::OdataDocument, _) | (Route::Metadata, _) | (Route::NotFound, _) => {
            error(StatusCode::NOT_FOUND, Message::new("GeneralError", &[]))
        }
    }
}

/// Chassis Control data byte for a reset type, and whether the machine
/// must be on (`Some(true)`) or off (`Some(false)`) for it.
pub fn reset_plan(reset_type: &str) -> Option<(u8, bool)> {
    Some(match reset_type {
        "On" => (0x01, false),
        "ForceOff" => (0x00, true),
        "GracefulShutdown" => (0x05, true),
        "ForceRestart" => (0x03, true),
        "PowerCycle" => (0x02, true),
        "Nmi" => (0x04, true),
        _ => return None,
    })
}

fn reset(bmc: &Bmc, body: &Bytes, caller: &Caller) -> Response {
    const ACTION: &str = "ComputerSystem.Reset";
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, Message::new("MalformedJSON", &[]));
    };
    let Some(rt) = v.get("ResetType") else {
        return error(
            StatusCode::BAD_REQUEST,
            Message::new("ActionParameterMissing", &[ACTION, "ResetType"]),
        );
    };
    let shown = rt.as_str().map_or_else(|| rt.to_string(), str::to_string);
    let Some((control, needs_on)) = rt.as_str().and_then(reset_plan) else {
        return error(
            StatusCode::BAD_REQUEST,
            Message::new(
                "ActionParameterValueNotInList",
                &[&shown, "ResetType", ACTION],
            ),
        );
    };
    if caller.privilege < privilege::OPERATOR {
        return forbidden();
    }
    let on = match view(bmc, caller) {
        Ok(v) => v.power_on,
        Err(r) => return refused(&r),
    };
    if on != needs_on {
        let key = if needs_on {
            "ChassisPowerStateOnRequired"
        } else {
            "ChassisPowerStateOffRequired"
        };
        return error(StatusCode::CONFLICT, Message::new(key, &[res::MEMBER_ID]));
    }
    let reply = bmc.run_command(
        Medium::Redfish,
        caller.privilege,
        netfn::CHASSIS,
        0x02,
        &[control],
    );
    if reply.cc != cc::OK {
        return refused(&reply);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// What a PATCH of the system asks for, checked against the lists.
pub fn parse_boot_patch(body: &Value, current: BootView) -> Result<BootView, Message> {
    let Some(obj) = body.as_object() else {
        return Err(Message::new("MalformedJSON", &[]));
    };
    let mut boot = current;
    for (k, v) in obj {
        if k != "Boot" {
            let known = [
                "@odata.id",
                "@odata.type",
                "@odata.etag",
                "Id",
                "Name",
                "UUID",
                "PowerState",
                "Status",
                "SystemType",
                "Actions",
                "Links",
            ];
            return Err(if known.contains(&k.as_str()) {
                Message::new("PropertyNotWritable", &[k])
            } else {
                Message::new("PropertyUnknown", &[k])
            });
        }
        let Some(b) = v.as_object() else {
            return Err(Message::new(
                "PropertyValueTypeError",
                &[&v.to_string(), "Boot"],
            ));
        };
        for (bk, bv) in b {
            let list: &[&'static str] = match bk.as_str() {
                "BootSourceOverrideEnabled" => &res::BOOT_ENABLED,
                "BootSourceOverrideTarget" => &res::BOOT_TARGETS,
                "BootSourceOverrideMode" => &res::BOOT_MODES,
                _ => return Err(Message::new("PropertyUnknown", &[&format!("Boot/{bk}")])),
            };
            let shown = bv.as_str().map_or_else(|| bv.to_string(), str::to_string);
            let Some(value) = list.iter().find(|x| Some(**x) == bv.as_str()) else {
                return Err(Message::new(
                    "PropertyValueNotInList",
                    &[&shown, &format!("Boot/{bk}")],
                ));
            };
            match bk.as_str() {
                "BootSourceOverrideEnabled" => boot.enabled = value,
                "BootSourceOverrideTarget" => boot.target = value,
                _ => boot.mode = value,
            }
        }
    }
    Ok(boot)
}

fn patch_system(bmc: &Bmc, headers: &HeaderMap, body: &Bytes, caller: &Caller) -> Response {
    let current = match view(bmc, caller) {
        Ok(v) => v,
        Err(r) => return refused(&r),
    };
    if let Some(want) = headers.get(header::IF_MATCH).and_then(|h| h.to_str().ok()) {
        let etag = res::system_etag(&current);
        if !want.split(',').any(|t| t.trim() == "*" || t.trim() == etag) {
            return error(
                StatusCode::PRECONDITION_FAILED,
                Message::new("PreconditionFailed", &[]),
            );
        }
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, Message::new("MalformedJSON", &[]));
    };
    let boot = match parse_boot_patch(&v, current.boot) {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    if caller.privilege < privilege::OPERATOR {
        return forbidden();
    }
    let old = bmc.state().boot.flags;
    let mut data = vec![0x05];
    data.extend_from_slice(&boot.to_ipmi(&old));
    let reply = bmc.run_command(
        Medium::Redfish,
        caller.privilege,
        netfn::CHASSIS,
        0x08,
        &data,
    );
    if reply.cc != cc::OK {
        return refused(&reply);
    }
    match view(bmc, caller) {
        Ok(v) => {
            let mut r = json(StatusCode::OK, &res::system(&v));
            if let Ok(h) = HeaderValue::from_str(&res::system_etag(&v)) {
                r.headers_mut().insert(header::ETAG, h);
            }
            r
        }
        Err(r) => refused(&r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_ignore_a_trailing_slash() {
        assert_eq!(Route::of("/redfish/v1/"), Route::Root);
        assert_eq!(Route::of("/redfish/v1"), Route::Root);
        assert_eq!(Route::of("/redfish/v1/Systems/1/"), Route::System);
        assert_eq!(
            Route::of("/redfish/v1/SessionService/Sessions/ab12"),
            Route::Session("ab12".into())
        );
        assert_eq!(Route::of("/redfish/v1/Systems/2"), Route::NotFound);
        assert!(Route::Root.open(&Method::GET));
        assert!(!Route::System.open(&Method::GET));
        assert!(Route::Sessions.open(&Method::POST));
        assert!(!Route::Sessions.open(&Method::GET));
    }

    #[test]
    fn boot_patch_checks_names_and_values() {
        let cur = BootView::from_ipmi(&[0; 5]);
        let b = parse_boot_patch(
            &serde_json::json!({"Boot": {"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Pxe"}}),
            cur,
        )
        .unwrap();
        assert_eq!((b.enabled, b.target, b.mode), ("Once", "Pxe", "Legacy"));
        let e = parse_boot_patch(
            &serde_json::json!({"Boot": {"BootSourceOverrideTarget": "Tape"}}),
            cur,
        )
        .err()
        .unwrap();
        assert_eq!(e.key, "PropertyValueNotInList");
        let e = parse_boot_patch(&serde_json::json!({"PowerState": "On"}), cur)
            .err()
            .unwrap();
        assert_eq!(e.key, "PropertyNotWritable");
        let e = parse_boot_patch(&serde_json::json!({"Colour": 1}), cur)
            .err()
            .unwrap();
        assert_eq!(e.key, "PropertyUnknown");
    }

    #[test]
    fn reset_types_need_the_right_state() {
        assert_eq!(reset_plan("On"), Some((1, false)));
        assert_eq!(reset_plan("ForceOff"), Some((0, true)));
        assert_eq!(reset_plan("Nmi"), Some((4, true)));
        assert_eq!(reset_plan("PushPowerButton"), None);
    }
}
