//! Who a Redfish request is: HTTP Basic against the BMC's IPMI user table
//! (one set of users for both protocols: a user MAAS creates in-band can
//! log in over Redfish), or an `X-Auth-Token` from SessionService. Tokens
//! and passwords never reach the transcript or logs; only session ids do.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::bmc::state::BmcState;

/// Sessions at once per BMC.
pub const MAX_SESSIONS: usize = 64;
/// Idle time after which a session is gone (SessionService.SessionTimeout).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(1800);

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    /// IPMI privilege level of the user on the LAN channel.
    pub privilege: u8,
    /// The session used, if the request came with a token.
    pub session: Option<String>,
}

/// Check `user`/`password` against the BMC's users: enabled, named, with
/// LAN privilege; the password compared in its zero-padded 20-byte form.
pub fn check_password(state: &BmcState, user: &str, password: &str) -> Option<u8> {
    if user.is_empty() || user.len() > 16 || password.len() > 20 {
        return None;
    }
    let (_, u) = state.find_user(user.as_bytes())?;
    let mut padded = [0u8; 20];
    padded[..password.len()].copy_from_slice(password.as_bytes());
    let limit = state.lan_privilege_limit();
    (u.enabled && u.password == padded && u.lan.privilege <= 5 && u.lan.privilege >= 1)
        .then(|| u.lan.privilege.min(limit))
}

/// `Authorization: Basic ...` -> (user, password).
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let b64 = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

struct Session {
    token: String,
    user: String,
    last_used: Instant,
}

/// The SessionService's sessions of one BMC.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

/// Why a session could not be created.
#[derive(Debug, PartialEq, Eq)]
pub enum CreateError {
    Full,
}

impl Sessions {
    fn purge(map: &mut HashMap<String, Session>, now: Instant) {
        map.retain(|_, s| now.duration_since(s.last_used) < SESSION_TIMEOUT);
    }

    /// A new session for `user`: (id, token).
    pub fn create(&self, user: &str) -> Result<(String, String), CreateError> {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        Self::purge(&mut map, now);
        if map.len() >= MAX_SESSIONS {
            return Err(CreateError::Full);
        }
        let id = hex::encode(rand::random::<[u8; 8]>());
        let token = hex::encode(rand::random::<[u8; 24]>());
        map.insert(
            id.clone(),
            Session {
                token: token.clone(),
                user: user.to_string(),
                last_used: now,
            },
        );
        Ok((id, token))
    }

    /// The session a token belongs to: (id, user); refreshes its idle timer.
    pub fn lookup(&self, token: &str) -> Option<(String, String)> {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        Self::purge(&mut map, now);
        let (id, s) = map.iter_mut().find(|(_, s)| s.token == token)?;
        s.last_used = now;
        Some((id.clone(), s.user.clone()))
    }

    /// The user of session `id`, if it exists.
    pub fn user_of(&self, id: &str) -> Option<String> {
        let map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).map(|s| s.user.clone())
    }

    pub fn delete(&self, id: &str) -> bool {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id).is_some()
    }

    /// Session ids, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        Self::purge(&mut map, Instant::now());
        let mut ids: Vec<String> = map.keys().cloned().collect();
        ids.sort();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_parses() {
        assert_eq!(
            parse_basic("Basic YWRtaW46cHc6eA=="),
            Some(("admin".into(), "pw:x".into()))
        );
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }

    #[test]
    fn sessions_create_lookup_delete() {
        let s = Sessions::default();
        let (id, token) = s.create("admin").unwrap();
        assert_eq!(s.lookup(&token), Some((id.clone(), "admin".into())));
        assert_eq!(s.lookup("nope"), None);
        assert_eq!(s.ids(), vec![id.clone()]);
        assert!(s.delete(&id));
        assert_eq!(s.lookup(&token), None);
        assert!(!s.delete(&id));
    }
}
