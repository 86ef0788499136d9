//! What both HTTP faces of the sim region (the REST API and the metadata
//! service) share: the error answer, request parameters, and OAuth
//! PLAINTEXT authentication against the tokens table.

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::state::RegionState;
use super::store::StoreError;
use crate::maas::{OAuthError, OAuthParams};

/// An error answer: status and body as MAAS would send.
pub struct ApiError {
    pub status: StatusCode,
    pub body: String,
    pub json: bool,
}

impl ApiError {
    pub fn text(status: StatusCode, body: impl Into<String>) -> Self {
        ApiError {
            status,
            body: body.into(),
            json: false,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let ctype = if self.json {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, ctype)],
            self.body,
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { field, message } => ApiError {
                status: StatusCode::BAD_REQUEST,
                body: json!({ field: [message] }).to_string(),
                json: true,
            },
            StoreError::NotFound(m) => ApiError::text(StatusCode::NOT_FOUND, m),
            StoreError::Conflict(m) => ApiError::text(StatusCode::CONFLICT, m),
            StoreError::Sql { .. } => {
                tracing::error!(error = %e, "sim region database error");
                ApiError::text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

/// `application/x-www-form-urlencoded` pairs, repeated keys kept.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| crate::maas::oauth::percent_decode(&s.replace('+', " "));
            (dec(k), dec(v))
        })
        .collect()
}

/// Query string and form body pairs (MAAS reads `op` from either).
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn from(uri: &Uri, body: &[u8]) -> Params {
        let mut v = parse_form(uri.query().unwrap_or("").as_bytes());
        v.extend(parse_form(body));
        Params(v)
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn op(&self) -> &str {
        self.get("op").unwrap_or("")
    }
}

/// Who a request authenticated as.
pub struct Principal {
    pub username: String,
    /// Set for node tokens (the metadata service's callers).
    pub system_id: Option<String>,
}

/// Check the OAuth PLAINTEXT header against the tokens table.
pub async fn authenticate(state: &RegionState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let unauthorized = |e: OAuthError| {
        ApiError::text(
            StatusCode::UNAUTHORIZED,
            format!("Authorization Error: {e}"),
        )
    };
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| unauthorized(OAuthError::Missing))?;
    let params = OAuthParams::parse(header).map_err(unauthorized)?;
    let (key, username, system_id) = state
        .store
        .lookup_token(&params.token)
        .await?
        .ok_or_else(|| unauthorized(OAuthError::UnknownToken))?;
    params.verify(&key).map_err(unauthorized)?;
    Ok(Principal {
        username,
        system_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_keeps_repeats_and_decodes() {
        let f = parse_form(b"hostname=a+b&mac_addresses=52%3A54%3A00%3A00%3A00%3A01&mac_addresses=52:54:00:00:00:02&x");
        assert_eq!(
            f,
            vec![
                ("hostname".to_string(), "a b".to_string()),
                ("mac_addresses".to_string(), "52:54:00:00:00:01".to_string()),
                ("mac_addresses".to_string(), "52:54:00:00:00:02".to_string()),
                ("x".to_string(), String::new()),
            ]
        );
    }
}
