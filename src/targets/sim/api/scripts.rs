//! scripts/ and scripts/{name} (2.8 api/scripts.py NodeScriptsHandler,
//! NodeScriptHandler): upload, list, read and delete the scripts
//! op=commission runs besides the built-ins. A script is a `script` file
//! part or form field, as 2.8's create takes it.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::Response;
use serde_json::{Value, json};

use super::{ApiResult, Req};
use crate::targets::sim::b64;
use crate::targets::sim::http::ApiError;
use crate::targets::sim::store::{SCRIPT_TYPE_COMMISSIONING, UserScript, script_type_of};

/// A script as 2.8 displays it (the fields the sim models; the rest have
/// 2.8's value for a script without them).
fn script_json(s: &UserScript, include_script: bool) -> Value {
    let commissioning = s.script_type == SCRIPT_TYPE_COMMISSIONING;
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "title": "",
        "description": "",
        "tags": [],
        "type": s.script_type,
        "type_name": if commissioning { "Commissioning script" } else { "Testing script" },
        "hardware_type": 0,
        "hardware_type_name": "Node",
        "parallel": 0,
        "parallel_name": "Disabled",
        "results": {},
        "parameters": {},
        "packages": {},
        "timeout": "0:00:00",
        "destructive": false,
        "for_hardware": [],
        "may_reboot": false,
        "recommission": false,
        "default": false,
        "apply_configured_networking": false,
        "resource_uri": format!("/MAAS/api/2.0/scripts/{}", s.name),
    });
    if include_script {
        v["script"] = json!(b64::encode(&s.script));
    }
    v
}

fn admin_only(r: &Req) -> Result<(), ApiError> {
    if r.username() == "admin" {
        Ok(())
    } else {
        Err(ApiError::text(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        ))
    }
}

/// POST scripts/ (admin): name, type (default testing), script.
pub async fn scripts_create(r: Req) -> ApiResult {
    admin_only(&r)?;
    let p = &r.p;
    let script_type = script_type_of(p.get("type"))?;
    let content = p
        .file("script")
        .map(<[u8]>::to_vec)
        .or_else(|| p.get("script").map(|s| s.as_bytes().to_vec()))
        .unwrap_or_default();
    let s =
        r.st.store
            .create_user_script(p.get("name").unwrap_or(""), script_type, &content)
            .await?;
    Ok(axum::Json(script_json(&s, false)).into_response())
}

/// GET scripts/ [type] [include_script].
pub async fn scripts_read(r: Req) -> ApiResult {
    let p = &r.p;
    let script_type = match p.get("type") {
        Some(t) => Some(script_type_of(Some(t))?),
        None => None,
    };
    let include = p.flag("include_script").unwrap_or(false);
    let all = r.st.store.user_scripts(script_type).await?;
    let list: Vec<Value> = all.iter().map(|s| script_json(s, include)).collect();
    Ok(axum::Json(list).into_response())
}

/// GET scripts/{name} [include_script].
pub async fn script_read(r: Req) -> ApiResult {
    let s = r.st.store.user_script(r.arg("name")).await?;
    let include = r.p.flag("include_script").unwrap_or(false);
    Ok(axum::Json(script_json(&s, include)).into_response())
}

/// DELETE scripts/{name} (admin): 204, or 404 for an unknown name.
pub async fn script_delete(r: Req) -> Result<Response, ApiError> {
    admin_only(&r)?;
    r.st.store.delete_user_script(r.arg("name")).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
