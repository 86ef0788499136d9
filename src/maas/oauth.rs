//! OAuth 1.0 PLAINTEXT, the only scheme MAAS 2.8's API keys use.
//!
//! A MAAS API key is `consumer_key:token_key:token_secret` with an empty
//! consumer secret, so the signature is `&` + token_secret. Every request
//! carries a fresh nonce and the current timestamp. The same module parses
//! the header on the server side (the sim region checks it).

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

/// A MAAS API key. `Debug` and `Display` never show the token parts.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub consumer_key: String,
    pub token_key: String,
    pub token_secret: String,
}

/// A key string that is not `consumer_key:token_key:token_secret`.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "bad MAAS API key: expected three non-empty parts `consumer_key:token_key:token_secret` \
     separated by ':', got {parts} part(s) (the key itself is not shown)"
)]
pub struct ApiKeyError {
    pub parts: usize,
}

impl ApiKey {
    pub fn new(
        consumer_key: impl Into<String>,
        token_key: impl Into<String>,
        token_secret: impl Into<String>,
    ) -> Self {
        ApiKey {
            consumer_key: consumer_key.into(),
            token_key: token_key.into(),
            token_secret: token_secret.into(),
        }
    }

    /// A fresh random key (the sim region's admin key and per-node keys).
    /// Lengths follow MAAS: 18, 18 and 32 characters.
    pub fn generate() -> Self {
        ApiKey::new(random_token(18), random_token(18), random_token(32))
    }

    /// The key in MAAS's colon form, for handing to a trusted consumer
    /// (the preseed, a secret file). Never log it.
    pub fn expose(&self) -> String {
        format!(
            "{}:{}:{}",
            self.consumer_key, self.token_key, self.token_secret
        )
    }

    /// The `Authorization` header value for one request: a fresh nonce and
    /// the current timestamp each call.
    pub fn authorization_header(&self) -> String {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.authorization_header_with(&nonce, timestamp)
    }

    /// The header with a given nonce and timestamp (deterministic for tests).
    pub fn authorization_header_with(&self, nonce: &str, timestamp: u64) -> String {
        format!(
            "OAuth realm=\"\", oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", \
             oauth_consumer_key=\"{}\", oauth_token=\"{}\", oauth_signature=\"{}\", \
             oauth_nonce=\"{}\", oauth_timestamp=\"{}\"",
            percent_encode(&self.consumer_key),
            percent_encode(&self.token_key),
            percent_encode(&format!("&{}", self.token_secret)),
            percent_encode(nonce),
            timestamp
        )
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("consumer_key", &self.consumer_key)
            .field("token_key", &"<redacted>")
            .field("token_secret", &"<redacted>")
            .finish()
    }
}

impl FromStr for ApiKey {
    type Err = ApiKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(ApiKeyError { parts: parts.len() });
        }
        Ok(ApiKey::new(parts[0], parts[1], parts[2]))
    }
}

/// The OAuth parameters a request carried (server side).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OAuthParams {
    pub consumer_key: String,
    pub token: String,
    pub signature_method: String,
    /// Percent-decoded: `&` + token_secret for PLAINTEXT with an empty consumer secret.
    pub signature: String,
    pub nonce: String,
    pub timestamp: String,
}

/// Why a request's OAuth header was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum OAuthError {
    #[error("no OAuth Authorization header")]
    Missing,
    #[error("Authorization header is not `OAuth ...`")]
    NotOAuth,
    #[error("OAuth parameter {0} missing")]
    MissingParam(&'static str),
    #[error("unsupported OAuth signature method {0:?}; MAAS uses PLAINTEXT")]
    Method(String),
    #[error("unknown OAuth token")]
    UnknownToken,
    #[error("OAuth signature does not match")]
    BadSignature,
}

impl OAuthParams {
    /// Parse an `Authorization: OAuth k="v", ...` header.
    pub fn parse(header: &str) -> Result<Self, OAuthError> {
        let rest = header
            .trim()
            .strip_prefix("OAuth")
            .ok_or(OAuthError::NotOAuth)?;
        let mut p = OAuthParams::default();
        for item in rest.split(',') {
            let Some((k, v)) = item.trim().split_once('=') else {
                continue;
            };
            let v = percent_decode(v.trim().trim_matches('"'));
            match k.trim() {
                "oauth_consumer_key" => p.consumer_key = v,
                "oauth_token" => p.token = v,
                "oauth_signature_method" => p.signature_method = v,
                "oauth_signature" => p.signature = v,
                "oauth_nonce" => p.nonce = v,
                "oauth_timestamp" => p.timestamp = v,
                _ => {}
            }
        }
        for (name, value) in [
            ("oauth_consumer_key", &p.consumer_key),
            ("oauth_token", &p.token),
            ("oauth_signature_method", &p.signature_method),
            ("oauth_signature", &p.signature),
            ("oauth_nonce", &p.nonce),
            ("oauth_timestamp", &p.timestamp),
        ] {
            if value.is_empty() {
                return Err(OAuthError::MissingParam(name));
            }
        }
        if p.signature_method != "PLAINTEXT" {
            return Err(OAuthError::Method(p.signature_method));
        }
        Ok(p)
    }

    /// Check the PLAINTEXT signature against the key the token belongs to.
    pub fn verify(&self, key: &ApiKey) -> Result<(), OAuthError> {
        if self.consumer_key != key.consumer_key || self.token != key.token_key {
            return Err(OAuthError::UnknownToken);
        }
        // Consumer secret is empty in MAAS, so the signature is "&" + token secret.
        if !constant_time_eq(
            self.signature.as_bytes(),
            format!("&{}", key.token_secret).as_bytes(),
        ) {
            return Err(OAuthError::BadSignature);
        }
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in uuid::Uuid::new_v4().as_bytes() {
            // 248 = 4 * 62: reject the tail to keep the choice uniform.
            if *b < 248 && out.len() < len {
                out.push(ALPHABET[(*b as usize) % ALPHABET.len()] as char);
            }
        }
    }
    out
}

/// RFC 3986 percent-encoding (OAuth 1.0 section 3.6).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decode `%XX` escapes; malformed escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ApiKey {
        "ck123:tk456:sec789".parse().unwrap()
    }

    #[test]
    fn parses_three_parts_and_rejects_others() {
        assert_eq!(key().token_secret, "sec789");
        assert_eq!(
            "a:b".parse::<ApiKey>().unwrap_err(),
            ApiKeyError { parts: 2 }
        );
        assert_eq!(
            "a::c".parse::<ApiKey>().unwrap_err(),
            ApiKeyError { parts: 3 }
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", key());
        assert!(
            !shown.contains("sec789") && !shown.contains("tk456"),
            "{shown}"
        );
        assert!(shown.contains("ck123"));
    }

    #[test]
    fn header_shape_is_plaintext_with_ampersand_signature() {
        let h = key().authorization_header_with("n1", 1700000000);
        insta::assert_snapshot!(h, @r#"OAuth realm="", oauth_version="1.0", oauth_signature_method="PLAINTEXT", oauth_consumer_key="ck123", oauth_token="tk456", oauth_signature="%26sec789", oauth_nonce="n1", oauth_timestamp="1700000000""#);
    }

    #[test]
    fn fresh_nonce_each_request() {
        let k = key();
        let a = OAuthParams::parse(&k.authorization_header()).unwrap();
        let b = OAuthParams::parse(&k.authorization_header()).unwrap();
        assert_ne!(a.nonce, b.nonce);
    }

    #[test]
    fn round_trip_and_verify() {
        let k = key();
        let p = OAuthParams::parse(&k.authorization_header()).unwrap();
        assert_eq!(p.signature, "&sec789");
        assert_eq!(p.verify(&k), Ok(()));
        let mut wrong = k.clone();
        wrong.token_secret = "nope".into();
        assert_eq!(p.verify(&wrong), Err(OAuthError::BadSignature));
        wrong = k.clone();
        wrong.token_key = "other".into();
        assert_eq!(p.verify(&wrong), Err(OAuthError::UnknownToken));
    }

    #[test]
    fn rejects_other_methods_and_missing_params() {
        let h = key()
            .authorization_header()
            .replace("PLAINTEXT", "HMAC-SHA1");
        assert!(matches!(OAuthParams::parse(&h), Err(OAuthError::Method(_))));
        assert_eq!(OAuthParams::parse("Bearer x"), Err(OAuthError::NotOAuth));
        assert_eq!(
            OAuthParams::parse("OAuth oauth_consumer_key=\"a\""),
            Err(OAuthError::MissingParam("oauth_token"))
        );
    }

    #[test]
    fn generated_keys_differ() {
        let (a, b) = (ApiKey::generate(), ApiKey::generate());
        assert_ne!(a, b);
        assert_eq!(a.token_secret.len(), 32);
        assert_eq!(a.expose().parse::<ApiKey>().unwrap(), a);
    }
}
