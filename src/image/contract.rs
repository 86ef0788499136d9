//! The guest contract of the ephemeral environment, in code: the kernel
//! command line it reads and the cloud-config text it fetches. The server
//! side (targets/sim) renders these so both ends agree; docs/image.md
//! describes the same contract in prose.

use std::fmt::Write as _;

use thiserror::Error;

/// What the ephemeral environment does after it boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// is_registered? autodetect, POST machines/, power off.
    Enlist,
    /// autodetect, signal WORKING, scripts, signal OK/FAILED, power off.
    Commission,
    /// A known machine MAAS wants off (New, Ready, Failed ...): power off.
    Poweroff,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enlist => "enlist",
            Mode::Commission => "commission",
            Mode::Poweroff => "poweroff",
        }
    }
}

/// Credentials and identity a commissioning run needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commissioning {
    pub system_id: String,
    /// `consumer_key:token_key:token_secret` (OAuth 1.0 PLAINTEXT).
    pub oauth_key: String,
    pub hostname: String,
}

/// The body served at `cloud-config-url`: shell `KEY='value'` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudConfig {
    pub mode: Mode,
    /// e.g. `http://10.x.y.1:5240/MAAS` (no trailing slash).
    pub maas_url: String,
    /// e.g. `http://10.x.y.1:5240/MAAS/metadata` (no trailing slash).
    pub metadata_url: String,
    /// Required for [`Mode::Commission`].
    pub commissioning: Option<Commissioning>,
    /// Back-off base of the BMC password retries (MAAS: 30 s).
    pub ipmi_retry_base_seconds: Option<u32>,
    /// Wait after switching the BMC to DHCP when it reports no address (MAAS: 60 s).
    pub ipmi_dhcp_wait_seconds: Option<u32>,
}

/// A cloud-config that cannot be rendered.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ContractError {
    #[error("cloud-config {key}: {reason}")]
    BadValue {
        key: &'static str,
        reason: &'static str,
    },
    #[error("cloud-config: MAAS_MODE commission needs SYSTEM_ID, OAUTH_KEY and HOSTNAME")]
    MissingCommissioning,
}

impl CloudConfig {
    /// The text the guest sources: only `KEY='value'` lines (the guest
    /// ignores every other line and never runs them). Errors on a newline
    /// in a value.
    pub fn render(&self) -> Result<String, ContractError> {
        let mut pairs: Vec<(&'static str, String)> = vec![
            ("MAAS_MODE", self.mode.as_str().to_string()),
            ("MAAS_URL", self.maas_url.trim_end_matches('/').to_string()),
            (
                "METADATA_URL",
                self.metadata_url.trim_end_matches('/').to_string(),
            ),
        ];
        match (&self.commissioning, self.mode) {
            (Some(c), _) => {
                if c.oauth_key.split(':').count() != 3 {
                    return Err(ContractError::BadValue {
                        key: "OAUTH_KEY",
                        reason: "must be consumer_key:token_key:token_secret",
                    });
                }
                pairs.push(("SYSTEM_ID", c.system_id.clone()));
                pairs.push(("OAUTH_KEY", c.oauth_key.clone()));
                pairs.push(("HOSTNAME", c.hostname.clone()));
            }
            (None, Mode::Commission) => return Err(ContractError::MissingCommissioning),
            (None, Mode::Enlist | Mode::Poweroff) => {}
        }
        if let Some(s) = self.ipmi_retry_base_seconds {
            pairs.push(("IPMI_RETRY_BASE_SECONDS", s.to_string()));
        }
        if let Some(s) = self.ipmi_dhcp_wait_seconds {
            pairs.push(("IPMI_DHCP_WAIT_SECONDS", s.to_string()));
        }
        let mut out = String::from("# maas-e2e ephemeral cloud-config\n");
        for (key, value) in pairs {
            // The guest takes ^KEY='([^']|'\\'')*'$ lines: a quote is
            // written as sh writes it ('\''); a newline cannot be carried.
            if value.contains('\n') {
                return Err(ContractError::BadValue {
                    key,
                    reason: "must not contain a newline",
                });
            }
            let _ = writeln!(out, "{key}='{}'", value.replace('\'', r"'\''"));
        }
        Ok(out)
    }
}

/// The kernel command line for the ephemeral environment booted from
/// the NIC with `boot_mac`, fetching its cloud-config from `url`.
pub fn kernel_cmdline(boot_mac: &str, cloud_config_url: &str, debug: bool) -> String {
    let bootif = format!("01-{}", boot_mac.to_ascii_lowercase().replace(':', "-"));
    let mut line =
        format!("console=ttyS0 panic=-1 BOOTIF={bootif} cloud-config-url={cloud_config_url}");
    if debug {
        line.push_str(" maas_e2e.debug=1");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commission() -> CloudConfig {
        CloudConfig {
            mode: Mode::Commission,
            maas_url: "http://10.20.0.1:5240/MAAS/".into(),
            metadata_url: "http://10.20.0.1:5240/MAAS/metadata".into(),
            commissioning: Some(Commissioning {
                system_id: "xyz7ab".into(),
                oauth_key: "CK:TK:TS".into(),
                hostname: "node-1".into(),
            }),
            ipmi_retry_base_seconds: Some(1),
            ipmi_dhcp_wait_seconds: None,
        }
    }

    #[test]
    fn commission_config_renders_the_contract_keys() {
        insta::assert_snapshot!(commission().render().unwrap());
    }

    #[test]
    fn commission_without_credentials_is_refused() {
        let config = CloudConfig {
            commissioning: None,
            ..commission()
        };
        assert_eq!(config.render(), Err(ContractError::MissingCommissioning));
    }

    #[test]
    fn quotes_are_escaped_as_sh_does_and_newlines_refused() {
        let mut config = commission();
        config.commissioning.as_mut().unwrap().hostname = "it's".into();
        assert!(config.render().unwrap().contains(r"HOSTNAME='it'\''s'"));
        config.commissioning.as_mut().unwrap().hostname = "a\nb".into();
        let err = config.render().unwrap_err();
        assert!(err.to_string().contains("HOSTNAME"), "{err}");
    }

    #[test]
    fn cmdline_carries_bootif_and_url() {
        assert_eq!(
            kernel_cmdline("52:54:00:AB:cd:01", "http://10.20.0.1:5248/cc/52-54", true),
            "console=ttyS0 panic=-1 BOOTIF=01-52-54-00-ab-cd-01 cloud-config-url=http://10.20.0.1:5248/cc/52-54 maas_e2e.debug=1"
        );
    }
}
