//! The external target: a MAAS that already runs, given by URL and API key
//! (`--maas-url/--api-key` or MAAS_URL/MAAS_API_KEY). Nothing is deployed;
//! the same client drives it.

use thiserror::Error;

use crate::maas::{ApiKey, ApiKeyError, MaasClient, MaasError, Version};

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
