//! Configuration of a fleet of BMCs, from YAML for standalone use
//! (`maas-e2e bmc serve --config FILE`) or built in code by the run
//! pipeline. Unknown fields are errors; every error names the file and the
//! field, and says what is allowed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::codec::crypto::{AuthType15, SUPPORTED_SUITES};

/// A whole fleet: BMCs served by one process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// JSON-lines transcript of every request and response of every BMC.
    #[serde(default)]
    pub transcript: Option<PathBuf>,
    pub bmcs: Vec<BmcConfig>,
}

/// One BMC.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BmcConfig {
    pub name: String,
    pub lan: LanEndpoint,
    /// OpenIPMI "VM" serial protocol socket for QEMU's ipmi-bmc-extern.
    #[serde(default)]
    pub inband: Option<InbandEndpoint>,
    pub users: Vec<UserConfig>,
    #[serde(default)]
    pub power: PowerConfig,
    /// Session types offered on the LAN: `ipmi15`, `ipmi20` (default both).
    #[serde(default = "default_session_types")]
    pub session_types: Vec<SessionType>,
    /// RMCP+ cipher suites offered (default 1 2 3 6 7 8 11 12 15 16 17).
    #[serde(default)]
    pub cipher_suites: Option<Vec<u8>>,
    /// Offer cipher suite 0 (no authentication at all).
    #[serde(default)]
    pub allow_cipher_suite_zero: bool,
    /// IPMI 1.5 authentication types offered (default md5, password).
    #[serde(default)]
    pub auth_types: Option<Vec<AuthType15>>,
    /// Idle time after which a session is gone, e.g. "60s" (the default).
    #[serde(default)]
    pub session_timeout: Option<String>,
    /// Sessions at once (default 16).
    #[serde(default)]
    pub max_sessions: Option<usize>,
    /// System GUID (hex, 32 digits); derived from the name when absent.
    #[serde(default)]
    pub guid: Option<String>,
    /// BMC key K_G (at most 20 bytes); unset by default.
    #[serde(default)]
    pub kg: Option<String>,
    /// Serve Redfish over HTTPS too, on the same state (docs/bmc.md).
    #[serde(default)]
    pub redfish: Option<RedfishEndpoint>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedfishEndpoint {
    /// Where to listen: "IP" (port 443) or "IP:PORT"; port 0 picks a free
    /// one. Bound in the LAN endpoint's network namespace.
    pub address: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LanEndpoint {
    /// Where to listen: "IP" (port 623) or "IP:PORT"; port 0 picks a free one.
    pub address: String,
    /// Named network namespace to bind the socket in (the lab's).
    #[serde(default)]
    pub netns: Option<String>,
    /// Address reported in LAN parameter 3 (default: the listening IP).
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    #[serde(default)]
    pub netmask: Option<Ipv4Addr>,
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// MAC reported in LAN parameter 5, "aa:bb:cc:dd:ee:ff".
    #[serde(default)]
    pub mac: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InbandEndpoint {
    /// Unix socket path QEMU's `-chardev socket,path=...` connects to.
    pub socket: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub password: String,
    #[serde(default = "default_privilege")]
    pub privilege: PrivilegeName,
    #[serde(default = "yes")]
    pub enabled: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PrivilegeName {
    Callback,
    User,
    Operator,
    Administrator,
}

impl PrivilegeName {
    pub fn level(self) -> u8 {
        match self {
            Self::Callback => 1,
            Self::User => 2,
            Self::Operator => 3,
            Self::Administrator => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SessionType {
    Ipmi15,
    Ipmi20,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum PowerConfig {
    /// Power held in memory.
    Memory {
        #[serde(default)]
        on: bool,
        /// The chassis turns itself off this long after each power-on (a
        /// machine that shuts down by itself), e.g. "30s".
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::bmc::fault::opt_duration"
        )]
        powers_off_after: Option<std::time::Duration>,
    },
    /// A libvirt domain.
    Libvirt { uri: String, domain: String },
    /// The VM on the in-band socket: power off/reset/soft through the VM
    /// protocol, "on" while QEMU is connected. Needs `inband`.
    Vm,
}

impl Default for PowerConfig {
    fn default() -> Self {
        PowerConfig::Memory {
            on: false,
            powers_off_after: None,
        }
    }
}

fn default_session_types() -> Vec<SessionType> {
    vec![SessionType::Ipmi15, SessionType::Ipmi20]
}

fn default_privilege() -> PrivilegeName {
    PrivilegeName::Administrator
}

fn yes() -> bool {
    true
}

/// Why a fleet configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read BMC config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("BMC config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("BMC config {path}: field `{field}`: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
}

/// Values computed from a [`BmcConfig`] after validation.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub listen: SocketAddr,
    pub reported_ip: Ipv4Addr,
    pub mac: [u8; 6],
    pub guid: [u8; 16],
    pub kg: [u8; 20],
    pub suites: Vec<u8>,
    pub auth_types: Vec<AuthType15>,
    pub session_timeout: Duration,
    pub max_sessions: usize,
    /// Where Redfish listens, when it is on.
    pub redfish: Option<SocketAddr>,
}

impl FleetConfig {
    /// Read, parse and validate a YAML file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    /// Parse and validate YAML text; `path` is only used in errors.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let cfg: FleetConfig = serde_norway::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Check everything that parsing cannot.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |field: String, message: String| {
            Err(ConfigError::Invalid {
                path: path.into(),
                field,
                message,
            })
        };
        if self.bmcs.is_empty() {
            return bad("bmcs".into(), "at least one BMC is needed".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, b) in self.bmcs.iter().enumerate() {
            let f = |name: &str| format!("bmcs[{i}].{name}");
            if b.name.is_empty() || !names.insert(&b.name) {
                return bad(
                    f("name"),
                    format!("{:?} is empty or used twice; names must be unique", b.name),
                );
            }
            b.resolve()
                .map_err(|(field, message)| ConfigError::Invalid {
                    path: path.into(),
                    field: f(&field),
                    message,
                })?;
        }
        Ok(())
    }
}

/// "IP" (with `default_port`) or "IP:PORT".
fn parse_listen(s: &str, default_port: u16) -> Option<SocketAddr> {
    s.parse::<SocketAddr>().ok().or_else(|| {
        s.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, default_port))
    })
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    parts.try_into().ok()
}

impl UserConfig {
    /// An enabled user.
    pub fn new(name: &str, password: &str, privilege: PrivilegeName) -> UserConfig {
        UserConfig {
            name: name.into(),
            password: password.into(),
            privilege,
            enabled: true,
        }
    }
}

impl BmcConfig {
    /// A BMC on 127.0.0.1 with a free port and these users, power in memory
    /// (off), both session types, every other option off. Tests and the
    /// benchmark start from it and change the fields they care about.
    pub fn loopback(name: &str, users: Vec<UserConfig>) -> BmcConfig {
        BmcConfig {
            name: name.into(),
            lan: LanEndpoint {
                address: "127.0.0.1:0".into(),
                netns: None,
                ip: None,
                netmask: None,
                gateway: None,
                mac: None,
            },
            inband: None,
            users,
            power: PowerConfig::Memory {
                on: false,
                powers_off_after: None,
            },
            session_types: default_session_types(),
            cipher_suites: None,
            allow_cipher_suite_zero: false,
            auth_types: None,
            session_timeout: None,
            max_sessions: None,
            guid: None,
            kg: None,
            redfish: None,
        }
    }

    /// Validate and compute derived values; errors are (field, message).
    pub fn resolve(&self) -> Result<Resolved, (String, String)> {
        let listen: SocketAddr = match self.lan.address.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => match self.lan.address.parse::<IpAddr>() {
                Ok(ip) => SocketAddr::new(ip, 623),
                Err(_) => {
                    return Err((
                        "lan.address".into(),
                        format!("{:?} is not \"IP\" or \"IP:PORT\"", self.lan.address),
                    ));
                }
            },
        };
        let reported_ip = match (self.lan.ip, listen.ip()) {
            (Some(ip), _) => ip,
            (None, IpAddr::V4(ip)) => ip,
            (None, IpAddr::V6(_)) => {
                return Err((
                    "lan.ip".into(),
                    "an IPv6 listener needs an IPv4 `ip` to report in LAN parameter 3".into(),
                ));
            }
        };
        let digest = super::codec::crypto::md5_parts(&[b"maas-e2e bmc ", self.name.as_bytes()]);
        let mac = match &self.lan.mac {
            Some(m) => parse_mac(m).ok_or((
                "lan.mac".into(),
                format!("{m:?} is not a MAC like 52:54:00:12:34:56"),
            ))?,
            // Locally administered, derived from the name: stable across runs.
            None => [0x02, digest[0], digest[1], digest[2], digest[3], digest[4]],
        };
        let guid = match &self.guid {
            Some(g) => hex::decode(g.replace('-', ""))
                .ok()
                .and_then(|v| v.try_into().ok())
                .ok_or(("guid".into(), format!("{g:?} is not 32 hex digits")))?,
            None => {
                let mut g = digest;
                g[6] = (g[6] & 0x0F) | 0x30; // version 3 (name based, MD5)
                g[8] = (g[8] & 0x3F) | 0x80;
                g
            }
        };
        let mut kg = [0u8; 20];
        if let Some(k) = &self.kg {
            if k.len() > 20 {
                return Err(("kg".into(), "K_G is at most 20 bytes".into()));
            }
            kg[..k.len()].copy_from_slice(k.as_bytes());
        }
        let mut suites = self
            .cipher_suites
            .clone()
            .unwrap_or_else(|| vec![1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17]);
        if let Some(bad) = suites.iter().find(|s| !SUPPORTED_SUITES.contains(s)) {
            return Err((
                "cipher_suites".into(),
                format!(
                    "suite {bad} is not implemented; allowed: {SUPPORTED_SUITES:?} (0 needs allow_cipher_suite_zero)"
                ),
            ));
        }
        if suites.contains(&0) && !self.allow_cipher_suite_zero {
            return Err((
                "cipher_suites".into(),
                "suite 0 (no authentication) needs allow_cipher_suite_zero: true".into(),
            ));
        }
        if self.allow_cipher_suite_zero && !suites.contains(&0) {
            suites.insert(0, 0);
        }
        if suites.len() > 16 {
            return Err((
                "cipher_suites".into(),
                "at most 16 suites fit LAN parameter 23".into(),
            ));
        }
        if self.session_types.is_empty() {
            return Err((
                "session_types".into(),
                "offer at least one of ipmi15, ipmi20".into(),
            ));
        }
        let auth_types = self
            .auth_types
            .clone()
            .unwrap_or(vec![AuthType15::Md5, AuthType15::Password]);
        let session_timeout = match &self.session_timeout {
            Some(t) => humantime::parse_duration(t).map_err(|e| {
                (
                    "session_timeout".into(),
                    format!("{t:?}: {e}; write e.g. \"60s\""),
                )
            })?,
            None => Duration::from_secs(60),
        };
        let max_sessions = self.max_sessions.unwrap_or(16);
        if !(1..=63).contains(&max_sessions) {
            return Err((
                "max_sessions".into(),
                "must be 1..=63 (6 bits in Get Channel Info)".into(),
            ));
        }
        if self.users.len() > super::state::MAX_USERS as usize - 1 {
            return Err((
                "users".into(),
                format!(
                    "at most {} users (IDs 2..{})",
                    super::state::MAX_USERS - 1,
                    super::state::MAX_USERS
                ),
            ));
        }
        for (i, u) in self.users.iter().enumerate() {
            if u.name.is_empty() || u.name.len() > 16 {
                return Err((format!("users[{i}].name"), "1 to 16 bytes".into()));
            }
            if u.password.len() > 20 {
                return Err((format!("users[{i}].password"), "at most 20 bytes".into()));
            }
        }
        let redfish = match &self.redfish {
            Some(r) => Some(parse_listen(&r.address, 443).ok_or((
                "redfish.address".into(),
                format!("{:?} is not \"IP\" or \"IP:PORT\"", r.address),
            ))?),
            None => None,
        };
        if matches!(self.power, PowerConfig::Vm) && self.inband.is_none() {
            return Err(("power".into(), "kind vm needs an `inband` socket".into()));
        }
        Ok(Resolved {
            listen,
            reported_ip,
            mac,
            guid,
            kg,
            suites,
            auth_types,
            session_timeout,
            max_sessions,
            redfish,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_fixture_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bmc/example.yaml");
        let cfg = FleetConfig::load(&path).unwrap();
        assert_eq!(cfg.bmcs.len(), 2);
        let r = cfg.bmcs[1].resolve().unwrap();
        assert_eq!(r.listen, "127.0.0.1:9002".parse().unwrap());
        assert_eq!(r.suites, vec![1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17]);
    }

    #[test]
    fn errors_name_file_and_field() {
        let p = Path::new("x.yaml");
        let e = FleetConfig::from_yaml(
            "bmcs:\n - name: a\n   lan: {address: 127.0.0.1}\n   users: []\n   colour: red\n",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("x.yaml") && e.contains("colour"), "{e}");
        let e = FleetConfig::from_yaml(
            "bmcs:\n - name: a\n   lan: {address: nowhere}\n   users: []\n",
            p,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bmcs[0].lan.address"), "{e}");
        let e = FleetConfig::from_yaml("bmcs:\n - name: a\n   lan: {address: 127.0.0.1}\n   users: []\n   cipher_suites: [0, 3]\n", p).unwrap_err().to_string();
        assert!(e.contains("allow_cipher_suite_zero"), "{e}");
        let e = FleetConfig::from_yaml("bmcs:\n - name: a\n   lan: {address: 127.0.0.1}\n   users: [{name: u, password: 123456789012345678901}]\n", p).unwrap_err().to_string();
        assert!(e.contains("users[0].password"), "{e}");
        let e = FleetConfig::from_yaml("bmcs:\n - name: a\n   lan: {address: 127.0.0.1}\n   users: []\n   redfish: {address: 'port 8443'}\n", p).unwrap_err().to_string();
        assert!(e.contains("bmcs[0].redfish.address"), "{e}");
        let ok = FleetConfig::from_yaml("bmcs:\n - name: a\n   lan: {address: 127.0.0.1}\n   users: []\n   redfish: {address: 127.0.0.1}\n", p).unwrap();
        assert_eq!(
            ok.bmcs[0].resolve().unwrap().redfish,
            Some("127.0.0.1:443".parse().unwrap())
        );
    }
}
