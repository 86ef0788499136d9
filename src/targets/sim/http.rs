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
            // MAAS's 404 body is Django's plain "Not Found"; the detail is logged.
            StoreError::NotFound(m) => {
                tracing::debug!(detail = %m, "not found");
                ApiError::text(StatusCode::NOT_FOUND, "Not Found")
            }
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

/// Query string and body parameters (MAAS reads `op` from either). The body
/// is `application/x-www-form-urlencoded` or `multipart/form-data` (what
/// python-libmaas and MAAS's own CLI send for every POST and PUT); parts
/// with a filename are files, kept apart as bytes.
#[derive(Debug, Default)]
pub struct Params {
    pub pairs: Vec<(String, String)>,
    pub files: Vec<(String, Vec<u8>)>,
}

impl Params {
    /// Query string and a urlencoded body.
    pub fn from(uri: &Uri, body: &[u8]) -> Params {
        let mut pairs = parse_form(uri.query().unwrap_or("").as_bytes());
        pairs.extend(parse_form(body));
        Params {
            pairs,
            files: Vec::new(),
        }
    }

    /// Query string and a body of the type its Content-Type names.
    pub fn from_request(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Params, ApiError> {
        let ctype = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(boundary) = multipart_boundary(ctype) else {
            return Ok(Params::from(uri, body));
        };
        let mut p = Params::from(uri, b"");
        let parts = parse_multipart(body, &boundary).map_err(|e| {
            ApiError::text(StatusCode::BAD_REQUEST, format!("Bad multipart body: {e}"))
        })?;
        for part in parts {
            match part.filename {
                Some(_) => p.files.push((part.name, part.data)),
                None => p
                    .pairs
                    .push((part.name, String::from_utf8_lossy(&part.data).into_owned())),
            }
        }
        Ok(p)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    pub fn all(&self, k: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect()
    }
    pub fn file(&self, k: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_slice())
    }
    pub fn op(&self) -> &str {
        self.get("op").unwrap_or("")
    }
    /// A boolean parameter as Django's BooleanField reads it.
    pub fn flag(&self, k: &str) -> Option<bool> {
        self.get(k).map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "true" | "1" | "yes" | "on"
            )
        })
    }
}

/// The boundary of a `multipart/form-data` Content-Type, if it is one.
fn multipart_boundary(ctype: &str) -> Option<String> {
    let mut it = ctype.split(';');
    if !it
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/form-data")
    {
        return None;
    }
    it.filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim_matches('"').to_string())
}

/// One part of a multipart body.
#[derive(Debug, PartialEq)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// `name="v"` from a header's parameters.
fn header_param(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Split a multipart/form-data body (RFC 7578). Parts sent with
/// `Content-Transfer-Encoding: base64` (python-libmaas sends every part so)
/// are decoded.
pub fn parse_multipart(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut pos = find(body, delim.as_bytes(), 0).ok_or("no opening boundary")? + delim.len();
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            return Ok(parts);
        }
        // Skip the line break after the boundary line.
        pos = find(body, b"\n", pos).ok_or("boundary line without end")? + 1;
        let next = find(body, delim.as_bytes(), pos).ok_or("part without closing boundary")?;
        let segment = &body[pos..next];
        let head_end = find(segment, b"\r\n\r\n", 0)
            .map(|i| (pos + i, pos + i + 4))
            .or_else(|| find(segment, b"\n\n", 0).map(|i| (pos + i, pos + i + 2)));
        // An empty part (python's email module writes one for a body
        // without fields) carries nothing.
        let Some(head_end) = head_end else {
            pos = next + delim.len();
            continue;
        };
        // Unfold continuation lines (python's email module folds long
        // Content-Disposition headers before `filename=`).
        let head = String::from_utf8_lossy(&body[pos..head_end.0])
            .replace("\r\n", "\n")
            .replace("\n ", " ")
            .replace("\n\t", " ");
        let mut data = &body[head_end.1..next];
        data = data.strip_suffix(b"\n").unwrap_or(data);
        data = data.strip_suffix(b"\r").unwrap_or(data);
        let (mut name, mut filename, mut b64) = (None, None, false);
        for line in head.lines() {
            let (k, v) = line.split_once(':').unwrap_or((line, ""));
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = header_param(v, "name");
                filename = header_param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-transfer-encoding") {
                b64 = v.trim().eq_ignore_ascii_case("base64");
            }
        }
        let data = if b64 {
            super::b64::decode(&String::from_utf8_lossy(data))
                .ok_or("a base64 part is not base64")?
        } else {
            data.to_vec()
        };
        parts.push(Part {
            name: name.ok_or("part without a name")?,
            filename,
            data,
        });
        pos = next + delim.len();
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
    // MAAS answers every OAuth failure alike; the reason goes to the log.
    let unauthorized = |e: OAuthError| {
        tracing::debug!(reason = %e, "API request refused");
        ApiError::text(
            StatusCode::UNAUTHORIZED,
            "Authorization Error: Invalid API key.",
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
    fn multipart_as_libmaas_sends_it() {
        let body = b"--XyZ\r\nContent-Type: text/plain; charset=\"utf-8\"\r\nMIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: form-data; name=\"hostname\"\r\n\r\nbm9kZS0x\r\n--XyZ\r\nContent-Disposition: form-data; name=\"mac_addresses\"\r\n\r\n52:54:00:00:00:01\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\";\r\n filename=\"f\"\r\n\r\n\x00\x01\r\n--XyZ--\r\n";
        let parts = parse_multipart(body, "XyZ").unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data.as_slice()),
            ("hostname", &b"node-1"[..])
        );
        assert_eq!(parts[1].data, b"52:54:00:00:00:01");
        assert_eq!(parts[2].filename.as_deref(), Some("f"));
        assert_eq!(parts[2].data, b"\x00\x01");
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"XyZ\"").as_deref(),
            Some("XyZ")
        );
        assert_eq!(
            multipart_boundary("application/x-www-form-urlencoded"),
            None
        );
    }

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
