//! The sim region's REST API 2.0 under /MAAS/api/2.0/: one route table
//! (`routes::table`) of MAAS's handlers, their URI parameters and actions,
//! from which both the axum router and `describe/` (with the API hash and
//! the X-MAAS-API-Hash header) are made, so a route added is a route
//! described.
//!
//! Dispatch follows MAAS's piston resources: a request with an
//! Authorization header must authenticate (401 "Invalid API key."
//! otherwise) and gets the handler's authenticated actions; one without
//! gets the anonymous ones, or 401 when the handler has none. The action is
//! chosen by (HTTP method, op); none matching is 400 "Unrecognised
//! signature: method=GET op=frobnicate".

mod describe;
mod handlers;
mod routes;
mod scripts;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawPathParams, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::http::{ApiError, Params, Principal, authenticate};
use super::state::RegionState;

pub use describe::{api_hash, describe};
pub use routes::table;

type ApiResult = Result<Response, ApiError>;

/// Everything an action gets: the state, who asked (None: anonymous), the
/// URI parameters by name, and the query and body parameters.
pub struct Req {
    pub st: Arc<RegionState>,
    pub who: Option<Principal>,
    pub path: HashMap<String, String>,
    pub p: Params,
}

impl Req {
    /// A URI parameter the route table guarantees.
    pub fn arg(&self, name: &str) -> &str {
        self.path.get(name).map(String::as_str).unwrap_or("")
    }
    /// The username of an authenticated caller ("" when anonymous).
    pub fn username(&self) -> &str {
        self.who.as_ref().map_or("", |w| w.username.as_str())
    }
}

type Run = fn(Req) -> Pin<Box<dyn Future<Output = ApiResult> + Send>>;

/// Who may call an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The authenticated handler only.
    Auth,
    /// The anonymous handler only.
    Anon,
    /// Both (MAAS has the operation on the anonymous and the
    /// authenticated handler).
    Both,
}

/// One operation of a handler: (method, op) -> run.
pub struct Action {
    pub method: Method,
    /// None for the CRUD actions (read, create, update, delete).
    pub op: Option<&'static str>,
    pub access: Access,
    pub doc: &'static str,
    pub run: Run,
}

impl Action {
    /// MAAS's name: the op, or the CRUD name of the method.
    pub fn name(&self) -> &'static str {
        match (self.op, self.method.as_str()) {
            (Some(op), _) => op,
            (None, "GET") => "read",
            (None, "POST") => "create",
            (None, "PUT") => "update",
            (None, "DELETE") => "delete",
            (None, _) => "unknown",
        }
    }
}

/// One MAAS handler at one path.
pub struct Resource {
    /// MAAS's class name of the authenticated handler ("MachinesHandler");
    /// the anonymous one is "Anon" + this.
    pub name: &'static str,
    /// Path with MAAS's URI parameters in braces (axum's syntax too).
    pub path: &'static str,
    pub params: &'static [&'static str],
    pub doc: &'static str,
    pub actions: Vec<Action>,
}

impl Resource {
    fn has(&self, anon: bool) -> bool {
        self.actions.iter().any(|a| a.access.allows(anon))
    }
}

impl Access {
    fn allows(self, anon: bool) -> bool {
        matches!(
            (self, anon),
            (Access::Both, _) | (Access::Anon, true) | (Access::Auth, false)
        )
    }
}

/// The route table, built once (describe/ and the router read the same).
pub fn resources() -> &'static [Resource] {
    static TABLE: OnceLock<Vec<Resource>> = OnceLock::new();
    TABLE.get_or_init(routes::table)
}

/// The API 2.0 routes and describe/.
pub fn router(state: Arc<RegionState>) -> Router {
    let hash = HeaderValue::from_str(&api_hash()).expect("hex is a valid header value");
    let mut r = Router::new().route("/MAAS/api/2.0/describe/", axum::routing::get(describe));
    for (i, res) in resources().iter().enumerate() {
        r = r.route(
            res.path,
            axum::routing::any(
                move |st: State<Arc<RegionState>>,
                      method: Method,
                      path: RawPathParams,
                      headers: HeaderMap,
                      uri: Uri,
                      body: Bytes| async move {
                    dispatch(&resources()[i], st.0, method, path, headers, uri, body).await
                },
            ),
        );
    }
    r.fallback(|uri: Uri| async move {
        ApiError::text(
            StatusCode::NOT_FOUND,
            format!("Unknown API endpoint: {}.", uri.path()),
        )
    })
    .layer(axum::middleware::map_response(move |mut resp: Response| {
        let hash = hash.clone();
        async move {
            resp.headers_mut().insert("X-MAAS-API-Hash", hash);
            resp
        }
    }))
    .with_state(state)
}

async fn dispatch(
    res: &'static Resource,
    st: Arc<RegionState>,
    method: Method,
    raw: RawPathParams,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let answer = async {
        // Anonymous-only handlers (version/) ignore credentials, as MAAS's
        // NoAuthentication resources do.
        let anon = !headers.contains_key(axum::http::header::AUTHORIZATION) || !res.has(false);
        let who = if anon {
            if !res.has(true) {
                return Err(ApiError::text(
                    StatusCode::UNAUTHORIZED,
                    "Authorization Error: Invalid API key.",
                ));
            }
            None
        } else {
            let p = authenticate(&st, &headers).await?;
            if p.system_id.is_some() {
                return Err(ApiError::text(
                    StatusCode::FORBIDDEN,
                    "a node key cannot use the admin API",
                ));
            }
            Some(p)
        };
        let p = Params::from_request(&uri, &headers, &body)?;
        let op = p.get("op").filter(|o| !o.is_empty());
        let matches = |a: &&Action| a.method == method && a.op == op;
        // An anonymous call of an authenticated-only action must log in
        // first (401), as MAAS falls back to its authenticated handler.
        if anon
            && res
                .actions
                .iter()
                .filter(matches)
                .all(|a| !a.access.allows(true))
            && res.actions.iter().any(|a| matches(&a))
        {
            return Err(ApiError::text(
                StatusCode::UNAUTHORIZED,
                "Authorization Error: Invalid API key.",
            ));
        }
        let action = res
            .actions
            .iter()
            .filter(matches)
            .find(|a| a.access.allows(anon))
            .ok_or_else(|| {
                ApiError::text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Unrecognised signature: method={} op={}",
                        method,
                        op.unwrap_or("None")
                    ),
                )
            })?;
        let path = raw
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (action.run)(Req { st, who, path, p }).await
    }
    .await;
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// Wrap an `async fn(Req) -> ApiResult` as an action's `run`.
macro_rules! run {
    ($f:path) => {
        |r| Box::pin($f(r))
    };
}
pub(crate) use run;
