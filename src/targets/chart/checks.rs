//! Evaluating `plan.expectations()` against the deployed chart: each
//! check's name for reports and its verdict (the judges are in
//! maas_config.rs; this module fetches what they judge).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::maas::{ApiKey, MaasClient};

use super::maas_config::{ChartExpectation, check_no_server_header, check_rack_interfaces};

/// What the checks reach the deployment through.
pub struct CheckTarget<'a> {
    /// The harness's client (the admin key from the secret).
    pub client: &'a MaasClient,
    /// http://127.0.0.1:PORT/MAAS (the region's port-forward).
    pub maas_url: &'a str,
    /// The token read from Secret maas-api-key.
    pub api_key: &'a str,
    /// The rack MAAS configuration found (`{rack_id}`), if it got that far.
    pub rack_id: Option<&'a str>,
    /// Remote port -> the 127.0.0.1 port forwarded to it (5240, 5249).
    pub forwarded: &'a BTreeMap<u16, u16>,
}

/// The check's name in JUnit and the summary.
pub fn describe(e: &ChartExpectation) -> String {
    match e {
        ChartExpectation::RackInterfaces { includes, excludes } => {
            format!(
                "chart: rack interface_set lists {} and leaves out {}",
                includes.join(", "),
                excludes.join(", ")
            )
        }
        ChartExpectation::NoServerHeader { component, port } => {
            format!("chart: no Server header from the {component} on {port}")
        }
        ChartExpectation::ApiKeyAuthenticates { secret, key } => {
            format!("chart: secret {secret} key {key} authenticates (users/?op=whoami)")
        }
    }
}

/// Evaluate one check; `Err` says what was wrong.
pub async fn evaluate(e: &ChartExpectation, t: &CheckTarget<'_>) -> Result<(), String> {
    match e {
        ChartExpectation::RackInterfaces { includes, excludes } => {
            let id = t
                .rack_id
                .ok_or("no rack was found while configuring MAAS")?;
            let body = t
                .client
                .get_raw(&format!("rackcontrollers/{id}/"), &[])
                .await
                .map_err(|e| e.to_string())?;
            let rack: serde_json::Value = serde_json::from_str(&body)
                .map_err(|e| format!("rackcontrollers/{id}/: not JSON: {e}"))?;
            check_rack_interfaces(&rack, includes, excludes)
        }
        ChartExpectation::NoServerHeader { port, component } => {
            let local = t
                .forwarded
                .get(port)
                .ok_or_else(|| format!("no port-forward to the {component}'s {port}"))?;
            let url = if *port == 5240 {
                format!("http://127.0.0.1:{local}/MAAS/api/2.0/version/")
            } else {
                format!("http://127.0.0.1:{local}/")
            };
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| e.to_string())?;
            let resp = http
                .get(&url)
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            check_no_server_header(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(|e| format!("GET {url}: {e}"))
        }
        ChartExpectation::ApiKeyAuthenticates { secret, key } => {
            let parsed: ApiKey = t.api_key.parse().map_err(|e| {
                format!("secret {secret} key {key} is not consumer:token:secret: {e}")
            })?;
            let client = MaasClient::new(t.maas_url, Some(parsed)).map_err(|e| e.to_string())?;
            client
                .get_raw("users/", &[("op", "whoami")])
                .await
                .map(drop)
                .map_err(|e| format!("secret {secret} key {key}: {e}"))
        }
    }
}
