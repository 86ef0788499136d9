//! The external target: a MAAS that already runs, given by URL and API key
//! (`--maas-url/--api-key` or MAAS_URL/MAAS_API_KEY). Nothing is deployed;
//! the same client drives it.

use std::net::Ipv4Addr;

use thiserror::Error;

use crate::lab::net::Ipv4Subnet;
use crate::maas::{ApiKey, ApiKeyError, MaasClient, MaasError, Version};

/// Where this run's VMs and BMCs join the external MAAS's network: an
/// existing host bridge its rack serves (DHCP/TFTP), and free addresses on
/// that subnet for the BMCs (machine i gets `first + i`), which the rack's
/// ipmipower must reach and which the BMCs report in-band to autodetect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalLab {
    pub bridge: String,
    pub first_bmc: Ipv4Addr,
    /// The bridge's subnet, from `first_bmc` and the prefix.
    pub subnet: Ipv4Subnet,
}

/// Why `--lab-bridge` / `--bmc-addresses` cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ExternalLabError {
    #[error(
        "external target: no lab bridge; pass --lab-bridge NAME or set MAAS_E2E_LAB_BRIDGE (an existing host bridge the MAAS rack serves DHCP on; `maas-e2e up` prints one)"
    )]
    NoBridge,
    #[error(
        "external target: --lab-bridge `{0}`: {1}; allowed: an interface name of 1 to 15 bytes without `/` or spaces"
    )]
    BadBridge(String, &'static str),
    #[error(
        "external target: no BMC addresses; pass --bmc-addresses FIRST/PREFIX or set MAAS_E2E_BMC_ADDRESSES (free addresses on the bridge's subnet, e.g. 10.20.0.200/24)"
    )]
    NoAddresses,
    #[error(
        "external target: --bmc-addresses `{0}`: {1}; allowed: FIRST/PREFIX, e.g. 10.20.0.200/24, with room for every machine before the broadcast address"
    )]
    BadAddresses(String, String),
}

impl ExternalLab {
    /// From flags, falling back to MAAS_E2E_LAB_BRIDGE / MAAS_E2E_BMC_ADDRESSES;
    /// `machines` BMC addresses must fit in the subnet.
    pub fn from_args(
        bridge: Option<&str>,
        bmc_addresses: Option<&str>,
        machines: usize,
    ) -> Result<ExternalLab, ExternalLabError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let bridge = bridge
            .map(String::from)
            .or_else(|| env("MAAS_E2E_LAB_BRIDGE"))
            .ok_or(ExternalLabError::NoBridge)?;
        if bridge.is_empty() || bridge.len() > crate::lab::net::MAX_NAME_LEN {
            return Err(ExternalLabError::BadBridge(bridge, "wrong length"));
        }
        if bridge.contains(['/', ' ']) {
            return Err(ExternalLabError::BadBridge(bridge, "not an interface name"));
        }
        let text = bmc_addresses
            .map(String::from)
            .or_else(|| env("MAAS_E2E_BMC_ADDRESSES"))
            .ok_or(ExternalLabError::NoAddresses)?;
        let bad = |why: String| ExternalLabError::BadAddresses(text.clone(), why);
        let (ip, prefix) = text
            .split_once('/')
            .ok_or_else(|| bad("no /PREFIX".into()))?;
        let first: Ipv4Addr = ip
            .parse()
            .map_err(|_| bad(format!("`{ip}` is not an IPv4 address")))?;
        let prefix_len: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| bad(format!("prefix `{prefix}` is not 8 to 30")))?;
        let subnet = Ipv4Subnet::new(first, prefix_len).map_err(|e| bad(e.to_string()))?;
        if first == subnet.addr {
            return Err(bad("the first address is the network address".into()));
        }
        let last = u32::from(first) + machines.saturating_sub(1) as u32;
        if last >= u32::from(subnet.broadcast()) {
            return Err(bad(format!(
                "{machines} machines need {first} to {}, past the subnet's last host",
                Ipv4Addr::from(last)
            )));
        }
        Ok(ExternalLab {
            bridge,
            first_bmc: first,
            subnet,
        })
    }
}

/// An existing MAAS.
#[derive(Clone)]
pub struct External {
    /// E.g. http://maas.example:5240/MAAS
    pub url: String,
    pub api_key: ApiKey,
}

impl std::fmt::Debug for External {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("External")
            .field("url", &self.url)
            .field("api_key", &self.api_key)
            .finish()
    }
}

/// Why the external MAAS cannot be used.
#[derive(Debug, Error)]
pub enum ExternalError {
    #[error(
        "external target: no MAAS URL; pass --maas-url URL or set MAAS_URL (e.g. http://HOST:5240/MAAS)"
    )]
    NoUrl,
    #[error(
        "external target: no API key; pass --api-key KEY or set MAAS_API_KEY (from `maas apikey --username admin`, or the chart's Secret maas-api-key, key token)"
    )]
    NoKey,
    #[error("external target: {0} (from --api-key / MAAS_API_KEY)")]
    BadKey(#[from] ApiKeyError),
    #[error(
        "external target: {url} does not answer version/ as a MAAS API 2.0 would: {source}; check the URL ends in /MAAS and the server is up"
    )]
    NotMaas {
        url: String,
        #[source]
        source: Box<MaasError>,
    },
    #[error(
        "external target: {url} answered version/ ({version}) but refused the API key: {source}; check the key belongs to an admin of this MAAS"
    )]
    KeyRefused {
        url: String,
        version: String,
        #[source]
        source: Box<MaasError>,
    },
}

impl External {
    /// From flags, falling back to MAAS_URL / MAAS_API_KEY.
    pub fn from_args(
        maas_url: Option<&str>,
        api_key: Option<&str>,
    ) -> Result<External, ExternalError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let url = maas_url
            .map(String::from)
            .or_else(|| env("MAAS_URL"))
            .ok_or(ExternalError::NoUrl)?;
        let key = api_key
            .map(String::from)
            .or_else(|| env("MAAS_API_KEY"))
            .ok_or(ExternalError::NoKey)?;
        Ok(External {
            url: url.trim_end_matches('/').to_string(),
            api_key: key.parse()?,
        })
    }

    pub fn client(&self) -> Result<MaasClient, MaasError> {
        MaasClient::new(&self.url, Some(self.api_key.clone()))
    }

    /// version/ anonymously, then one authenticated call (machines/).
    pub async fn check(&self) -> Result<Version, ExternalError> {
        let not_maas = |source| ExternalError::NotMaas {
            url: self.url.clone(),
            source: Box::new(source),
        };
        let client = self.client().map_err(not_maas)?;
        let version = client.version().await.map_err(not_maas)?;
        client
            .machines()
            .await
            .map_err(|source| ExternalError::KeyRefused {
                url: self.url.clone(),
                version: version.version.clone(),
                source: Box::new(source),
            })?;
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_flags_are_checked_with_the_allowed_form() {
        let lab = ExternalLab::from_args(Some("br-maas"), Some("10.20.0.200/24"), 3).unwrap();
        assert_eq!(
            lab,
            ExternalLab {
                bridge: "br-maas".into(),
                first_bmc: "10.20.0.200".parse().unwrap(),
                subnet: Ipv4Subnet::new("10.20.0.0".parse().unwrap(), 24).unwrap()
            }
        );
        let err = |b: Option<&str>, a: Option<&str>, n| {
            ExternalLab::from_args(b, a, n).unwrap_err().to_string()
        };
        assert!(
            err(Some("a-very-long-bridge-name"), Some("10.0.0.2/24"), 1).contains("1 to 15 bytes")
        );
        assert!(err(Some("br0"), Some("10.0.0.2"), 1).contains("no /PREFIX"));
        assert!(err(Some("br0"), Some("10.0.0.x/24"), 1).contains("not an IPv4 address"));
        assert!(err(Some("br0"), Some("10.0.0.0/24"), 1).contains("network address"));
        let full = err(Some("br0"), Some("10.0.0.250/24"), 6);
        assert!(
            full.contains("10.0.0.250 to 10.0.0.255") && full.contains("e.g. 10.20.0.200/24"),
            "{full}"
        );
    }

    #[test]
    fn flags_win_and_errors_say_what_to_pass() {
        let e = External::from_args(Some("http://h/MAAS/"), Some("a:b:c")).unwrap();
        assert_eq!(e.url, "http://h/MAAS");
        assert!(!format!("{e:?}").contains(":c"));
        let bad = External::from_args(Some("http://h/MAAS"), Some("nope"))
            .unwrap_err()
            .to_string();
        assert!(bad.contains("consumer_key:token_key:token_secret"), "{bad}");
    }
}
