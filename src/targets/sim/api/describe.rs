//! GET /MAAS/api/2.0/describe/: the API description MAAS's CLI and
//! python-libmaas read to learn the API, made from the route table
//! (maasserver/api/doc.py's shape: resources with anon and auth handlers,
//! each with name, doc, params, path, uri and sorted actions; "handlers"
//! lists them all), and the hash of it that MAAS sends as X-MAAS-API-Hash.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha1::Digest;

use super::{Resource, resources};

fn handler(res: &Resource, anon: bool, base: &str) -> Option<Value> {
    let mut actions: Vec<Value> = res
        .actions
        .iter()
        .filter(|a| a.access.allows(anon))
        .map(|a| {
            json!({
                "name": a.name(),
                "method": a.method.as_str(),
                "op": a.op,
                "restful": a.op.is_none(),
                "doc": a.doc,
            })
        })
        .collect();
    if actions.is_empty() {
        return None;
    }
    actions.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let name = if anon {
        format!("Anon{}", res.name)
    } else {
        res.name.to_string()
    };
    Some(json!({
        "name": name,
        "doc": res.doc,
        "params": res.params,
        "path": res.path,
        "uri": format!("{base}{}", res.path),
        "actions": actions,
    }))
}

/// The description; `base` ("http://host:port") makes the `uri`s absolute,
/// as MAAS builds them from the request ("" leaves them as paths).
pub fn description(base: &str) -> Value {
    let mut resources: Vec<Value> = resources()
        .iter()
        .map(|r| {
            let (anon, auth) = (handler(r, true, base), handler(r, false, base));
            json!({"name": r.name, "anon": anon, "auth": auth})
        })
        .collect();
    resources.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut handlers: Vec<Value> = resources
        .iter()
        .filter(|r| !r["anon"].is_null())
        .map(|r| r["anon"].clone())
        .collect();
    handlers.extend(
        resources
            .iter()
            .filter(|r| !r["auth"].is_null())
            .map(|r| r["auth"].clone()),
    );
    json!({"doc": "MAAS API", "resources": resources, "handlers": handlers})
}

/// SHA-1 of the description without absolute URIs (serde_json's maps are
/// sorted, so the text is canonical): changes exactly when the table does.
pub fn api_hash() -> String {
    let text = description("").to_string();
    hex::encode(sha1::Sha1::digest(text.as_bytes()))
}

/// The handler: MAAS answers anonymous callers too.
pub async fn describe(headers: HeaderMap) -> Response {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let mut d = description(&format!("http://{host}"));
    d["hash"] = json!(api_hash());
    axum::Json(d).into_response()
}
