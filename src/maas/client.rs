//! The MAAS 2.8 API 2.0 client every target shares.
//!
//! OAuth 1.0 PLAINTEXT on every authenticated call; retries with back-off on
//! connection errors and 5xx answers, never on 4xx (a 4xx is the caller's
//! mistake and repeating it cannot help).

use std::time::Duration;

use serde::de::DeserializeOwned;
use thiserror::Error;

use super::oauth::ApiKey;
use super::types::*;

/// How often and how long to retry a request that failed to connect or got a 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled each time up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// A failed API call.
#[derive(Debug, Error)]
pub enum MaasError {
    #[error("bad MAAS URL {url:?}: {reason} (expected e.g. http://HOST:5240/MAAS)")]
    BadUrl { url: String, reason: String },
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error(
        "{method} {url}: no connection after {attempts} attempt(s): {source}; is MAAS running and reachable at that address?"
    )]
    Connect {
        method: String,
        url: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method} {url}: HTTP {status} after {attempts} attempt(s): {body}")]
    Http {
        method: String,
        url: String,
        status: u16,
        attempts: u32,
        body: String,
    },
    #[error("{method} {url}: the answer is not {what}: {source}; body starts: {body}")]
    Decode {
        method: String,
        url: String,
        what: &'static str,
        body: String,
        #[source]
        source: serde_json::Error,
    },
}

impl MaasError {
    /// The HTTP status, when MAAS answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            MaasError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Install ring as rustls's process-wide provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Options of `machines/{id}/?op=commission`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommissionOptions {
    pub enable_ssh: bool,
    pub skip_bmc_config: bool,
    pub skip_networking: bool,
    pub skip_storage: bool,
    pub commissioning_scripts: Vec<String>,
    pub testing_scripts: Vec<String>,
}

/// The fields of an anonymous enlistment (`POST machines/`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnlistRequest {
    pub hostname: String,
    pub architecture: String,
    pub subarchitecture: Option<String>,
    pub power_type: String,
    pub power_parameters: serde_json::Value,
    pub mac_addresses: Vec<String>,
}

/// Filters of `events/?op=query`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub system_id: Option<String>,
    pub level: Option<String>,
    pub after: Option<i64>,
    pub limit: Option<u32>,
}

/// A MAAS API 2.0 client.
#[derive(Clone)]
pub struct MaasClient {
    /// E.g. http://10.0.0.1:5240/MAAS (no trailing slash).
    maas_url: String,
    key: Option<ApiKey>,
    http: reqwest::Client,
    retry: RetryPolicy,
    /// How often waiters poll.
    pub(crate) poll_interval: Duration,
    /// Moves when the MAAS's machines change (a MAAS in this process: the
    /// sim region); waiters then look at once instead of at their next poll.
    changes: Option<tokio::sync::watch::Receiver<u64>>,
}

impl std::fmt::Debug for MaasClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaasClient")
            .field("maas_url", &self.maas_url)
            .field("key", &self.key)
            .field("retry", &self.retry)
            .finish()
    }
}

/// A waiter's sleep between looks: the poll interval, cut short when the
/// MAAS signals a change after the waiter's last look began.
pub struct Napper {
    changes: Option<tokio::sync::watch::Receiver<u64>>,
}

/// After a change signal, how long to let the writes that come with it
/// (the events of a status change) land before looking.
const SETTLE: Duration = Duration::from_millis(20);

impl Napper {
    /// Sleep at most `max`; less when a change was signalled since the
    /// last nap ended (or the napper was made), so a change during a look
    /// is not missed.
    pub async fn nap(&mut self, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        let signalled = match &mut self.changes {
            None => false,
            Some(rx) => tokio::select! {
                _ = tokio::time::sleep_until(deadline) => false,
                r = rx.changed() => r.is_ok(),
            },
        };
        if signalled {
            tokio::time::sleep(SETTLE.min(max)).await;
            if let Some(rx) = &mut self.changes {
                rx.borrow_and_update();
            }
            return;
        }
        // The MAAS is gone: plain polling from here on.
        if self
            .changes
            .as_ref()
            .is_some_and(|rx| rx.has_changed().is_err())
        {
            self.changes = None;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

enum Body {
    None,
    Form(Vec<(String, String)>),
}

impl MaasClient {
    /// A client for `maas_url` (e.g. http://HOST:5240/MAAS); `key` None
    /// makes only anonymous calls work.
    pub fn new(maas_url: &str, key: Option<ApiKey>) -> Result<Self, MaasError> {
        install_crypto_provider();
        let trimmed = maas_url.trim_end_matches('/');
        if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
            return Err(MaasError::BadUrl {
                url: maas_url.into(),
                reason: "scheme must be http or https".into(),
            });
        }
        if trimmed.len() <= "https://".len() {
            return Err(MaasError::BadUrl {
                url: maas_url.into(),
                reason: "no host".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(MaasError::Client)?;
        Ok(MaasClient {
            maas_url: trimmed.to_string(),
            key,
            http,
            retry: RetryPolicy::default(),
            poll_interval: Duration::from_secs(2),
            changes: None,
        })
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How often `wait_for_status` polls (default 2 s).
    pub fn with_poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// Wake waiters as soon as `changes` moves (the sim region signals a
    /// machine enlisted or a status change), not only every poll interval.
    /// Polling stays: the signal only cuts a nap short.
    pub fn with_change_signal(mut self, changes: tokio::sync::watch::Receiver<u64>) -> Self {
        self.changes = Some(changes);
        self
    }

    /// The naps of one waiter (see [`Napper`]).
    pub fn napper(&self) -> Napper {
        let mut changes = self.changes.clone();
        if let Some(rx) = &mut changes {
            // Changes before the waiter's first look do not count.
            rx.borrow_and_update();
        }
        Napper { changes }
    }

    pub fn maas_url(&self) -> &str {
        &self.maas_url
    }

    /// `{maas_url}/api/2.0/{path}`; `path` like "machines/".
    pub fn api_url(&self, path: &str) -> String {
        format!("{}/api/2.0/{}", self.maas_url, path.trim_start_matches('/'))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Body,
    ) -> Result<String, MaasError> {
        let url = self.api_url(path);
        let shown = if query.is_empty() {
            url.clone()
        } else {
            let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{url}?{}", q.join("&"))
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), &url).query(query);
            if let Some(key) = &self.key {
                req = req.header(reqwest::header::AUTHORIZATION, key.authorization_header());
            }
            if let Body::Form(form) = &body {
                req = req.form(form);
            }
            let last = attempt >= self.retry.attempts;
            match req.send().await {
                Err(e) => {
                    if last || !(e.is_connect() || e.is_timeout() || e.is_request()) {
                        return Err(MaasError::Connect {
                            method: method.to_string(),
                            url: shown,
                            attempts: attempt,
                            source: e,
                        });
                    }
                    tracing::debug!(url = %shown, attempt, error = %e, "MAAS request failed to connect, retrying");
                }
                Ok(resp) => {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        return Ok(text);
                    }
                    if status.is_client_error() || last {
                        return Err(MaasError::Http {
                            method: method.to_string(),
                            url: shown,
                            status: status.as_u16(),
                            attempts: attempt,
                            body: excerpt(&text),
                        });
                    }
                    tracing::debug!(url = %shown, attempt, %status, "MAAS answered a server error, retrying");
                }
            }
            tokio::time::sleep(self.retry.delay(attempt)).await;
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Body,
        what: &'static str,
    ) -> Result<T, MaasError> {
        let text = self.call(method.clone(), path, query, body).await?;
        serde_json::from_str(&text).map_err(|source| MaasError::Decode {
            method: method.to_string(),
            url: self.api_url(path),
            what,
            body: excerpt(&text),
            source,
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &'static str,
    ) -> Result<T, MaasError> {
        self.json(reqwest::Method::GET, path, query, Body::None, what)
            .await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        form: Vec<(String, String)>,
        what: &'static str,
    ) -> Result<T, MaasError> {
        self.json(reqwest::Method::POST, path, query, Body::Form(form), what)
            .await
    }

    /// GET any API path and return the raw body (for probes and tests).
    pub async fn get_raw(&self, path: &str, query: &[(&str, &str)]) -> Result<String, MaasError> {
        self.call(reqwest::Method::GET, path, query, Body::None)
            .await
    }

    /// Any API call with form parameters (POST/PUT), raw body back: for
    /// calls planned as data (the chart target's MAAS configuration).
    pub async fn send_raw(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        form: Vec<(String, String)>,
    ) -> Result<String, MaasError> {
        let body = if form.is_empty() {
            Body::None
        } else {
            Body::Form(form)
        };
        self.call(method, path, query, body).await
    }

    pub async fn version(&self) -> Result<Version, MaasError> {
        self.get("version/", &[], "a version object").await
    }

    pub async fn machines(&self) -> Result<Vec<Machine>, MaasError> {
        self.get("machines/", &[], "a list of machines").await
    }

    /// `machines/` with its two costs apart: (machines, the response's
    /// time until its whole body arrived, the time to parse it). The parse
    /// of a 1,000-machine list runs on the blocking pool, so it does not
    /// hold up a runtime worker (the sim region and the BMCs may share it).
    pub async fn machines_timed(&self) -> Result<(Vec<Machine>, Duration, Duration), MaasError> {
        let t0 = std::time::Instant::now();
        let text = self
            .call(reqwest::Method::GET, "machines/", &[], Body::None)
            .await?;
        let answered = t0.elapsed();
        let t1 = std::time::Instant::now();
        let parsed = tokio::task::spawn_blocking(move || {
            serde_json::from_str::<Vec<Machine>>(&text).map_err(|e| (e, excerpt(&text)))
        })
        .await
        .expect("the parse task does not panic");
        let parse = t1.elapsed();
        match parsed {
            Ok(ms) => Ok((ms, answered, parse)),
            Err((source, body)) => Err(MaasError::Decode {
                method: "GET".into(),
                url: self.api_url("machines/"),
                what: "a list of machines",
                body,
                source,
            }),
        }
    }

    pub async fn machine(&self, system_id: &str) -> Result<Machine, MaasError> {
        self.get(&format!("machines/{system_id}/"), &[], "a machine")
            .await
    }

    /// Anonymous: whether a machine with this MAC exists.
    pub async fn is_registered(&self, mac_address: &str) -> Result<bool, MaasError> {
        self.get(
            "machines/",
            &[("op", "is_registered"), ("mac_address", mac_address)],
            "true or false",
        )
        .await
    }

    /// Anonymous enlistment, as the ephemeral environment does it.
    pub async fn enlist(&self, req: &EnlistRequest) -> Result<Machine, MaasError> {
        self.post("machines/", &[], enlist_form(req), "a machine")
            .await
    }

    /// An operator's create (`POST machines/` with the admin's key): the
    /// same fields as enlistment, and whether MAAS commissions it at once
    /// (2.8 defaults to yes for admins).
    pub async fn create_machine(
        &self,
        req: &EnlistRequest,
        commission: bool,
    ) -> Result<Machine, MaasError> {
        let mut form = enlist_form(req);
        form.push(("commission".into(), commission.to_string()));
        self.post("machines/", &[], form, "a machine").await
    }

    pub async fn commission(
        &self,
        system_id: &str,
        opts: &CommissionOptions,
    ) -> Result<Machine, MaasError> {
        let flag = |b: bool| if b { "1".to_string() } else { "0".to_string() };
        let mut form = vec![
            ("enable_ssh".to_string(), flag(opts.enable_ssh)),
            ("skip_bmc_config".to_string(), flag(opts.skip_bmc_config)),
            ("skip_networking".to_string(), flag(opts.skip_networking)),
            ("skip_storage".to_string(), flag(opts.skip_storage)),
        ];
        if !opts.commissioning_scripts.is_empty() {
            form.push((
                "commissioning_scripts".into(),
                opts.commissioning_scripts.join(","),
            ));
        }
        if !opts.testing_scripts.is_empty() {
            form.push(("testing_scripts".into(), opts.testing_scripts.join(",")));
        }
        self.post(
            &format!("machines/{system_id}/"),
            &[("op", "commission")],
            form,
            "a machine",
        )
        .await
    }

    /// DELETE machines/{id}/ (MAAS answers 204).
    pub async fn delete_machine(&self, system_id: &str) -> Result<(), MaasError> {
        self.call(
            reqwest::Method::DELETE,
            &format!("machines/{system_id}/"),
            &[],
            Body::None,
        )
        .await
        .map(drop)
    }

    pub async fn abort(&self, system_id: &str) -> Result<Machine, MaasError> {
        self.post(
            &format!("machines/{system_id}/"),
            &[("op", "abort")],
            vec![],
            "a machine",
        )
        .await
    }

    /// The machine's power parameters (contains the BMC password: never log it).
    pub async fn power_parameters(
        &self,
        system_id: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, MaasError> {
        self.get(
            &format!("machines/{system_id}/"),
            &[("op", "power_parameters")],
            "a power parameters object",
        )
        .await
    }

    pub async fn query_power_state(&self, system_id: &str) -> Result<PowerState, MaasError> {
        let r: PowerStateReply = self
            .get(
                &format!("machines/{system_id}/"),
                &[("op", "query_power_state")],
                "a power state",
            )
            .await?;
        Ok(r.state)
    }

    pub async fn power_on(&self, system_id: &str) -> Result<Machine, MaasError> {
        self.post(
            &format!("machines/{system_id}/"),
            &[("op", "power_on")],
            vec![],
            "a machine",
        )
        .await
    }

    pub async fn power_off(&self, system_id: &str) -> Result<Machine, MaasError> {
        self.post(
            &format!("machines/{system_id}/"),
            &[("op", "power_off")],
            vec![],
            "a machine",
        )
        .await
    }

    pub async fn events(&self, q: &EventQuery) -> Result<EventsPage, MaasError> {
        let after = q.after.map(|a| a.to_string());
        let limit = q.limit.map(|l| l.to_string());
        let mut query = vec![("op", "query")];
        if let Some(id) = &q.system_id {
            query.push(("id", id));
        }
        if let Some(level) = &q.level {
            query.push(("level", level));
        }
        if let Some(a) = &after {
            query.push(("after", a));
        }
        if let Some(l) = &limit {
            query.push(("limit", l));
        }
        self.get("events/", &query, "an events page").await
    }

    /// Commissioning script sets with their output (base64).
    pub async fn commissioning_results(
        &self,
        system_id: &str,
    ) -> Result<Vec<ScriptSet>, MaasError> {
        self.get(
            &format!("nodes/{system_id}/results/"),
            &[("type", "commissioning"), ("include_output", "1")],
            "a list of script sets",
        )
        .await
    }

    pub async fn get_config(&self, name: &str) -> Result<serde_json::Value, MaasError> {
        self.get(
            "maas/",
            &[("op", "get_config"), ("name", name)],
            "a config value",
        )
        .await
    }

    pub async fn set_config(&self, name: &str, value: &str) -> Result<(), MaasError> {
        let form = vec![
            ("name".to_string(), name.to_string()),
            ("value".to_string(), value.to_string()),
        ];
        self.call(
            reqwest::Method::POST,
            "maas/",
            &[("op", "set_config")],
            Body::Form(form),
        )
        .await
        .map(|_| ())
    }

    pub async fn rack_controllers(&self) -> Result<Vec<RackController>, MaasError> {
        self.get("rackcontrollers/", &[], "a list of rack controllers")
            .await
    }

    pub async fn fabrics(&self) -> Result<Vec<Fabric>, MaasError> {
        self.get("fabrics/", &[], "a list of fabrics").await
    }

    pub async fn vlans(&self, fabric_id: i64) -> Result<Vec<Vlan>, MaasError> {
        self.get(
            &format!("fabrics/{fabric_id}/vlans/"),
            &[],
            "a list of VLANs",
        )
        .await
    }

    /// `PUT fabrics/{f}/vlans/{vid}/` with dhcp_on and primary_rack.
    pub async fn update_vlan(
        &self,
        fabric_id: i64,
        vid: u16,
        dhcp_on: bool,
        primary_rack: Option<&str>,
    ) -> Result<Vlan, MaasError> {
        let mut form = vec![(
            "dhcp_on".to_string(),
            if dhcp_on { "True" } else { "False" }.to_string(),
        )];
        if let Some(rack) = primary_rack {
            form.push(("primary_rack".into(), rack.into()));
        }
        self.json(
            reqwest::Method::PUT,
            &format!("fabrics/{fabric_id}/vlans/{vid}/"),
            &[],
            Body::Form(form),
            "a VLAN",
        )
        .await
    }

    pub async fn subnets(&self) -> Result<Vec<Subnet>, MaasError> {
        self.get("subnets/", &[], "a list of subnets").await
    }

    /// `POST subnets/` with cidr (and optionally the fabric, vid, gateway).
    pub async fn create_subnet(
        &self,
        cidr: &str,
        fabric_id: Option<i64>,
        vid: Option<u16>,
        gateway_ip: Option<&str>,
    ) -> Result<Subnet, MaasError> {
        let mut form = vec![("cidr".to_string(), cidr.to_string())];
        if let Some(f) = fabric_id {
            form.push(("fabric".into(), f.to_string()));
        }
        if let Some(v) = vid {
            form.push(("vid".into(), v.to_string()));
        }
        if let Some(g) = gateway_ip {
            form.push(("gateway_ip".into(), g.into()));
        }
        self.post("subnets/", &[], form, "a subnet").await
    }

    pub async fn ip_ranges(&self) -> Result<Vec<IpRange>, MaasError> {
        self.get("ipranges/", &[], "a list of IP ranges").await
    }

    /// `POST ipranges/` type=dynamic|reserved start_ip end_ip.
    pub async fn create_ip_range(
        &self,
        range_type: &str,
        start_ip: &str,
        end_ip: &str,
        comment: &str,
    ) -> Result<IpRange, MaasError> {
        let form = vec![
            ("type".to_string(), range_type.to_string()),
            ("start_ip".to_string(), start_ip.to_string()),
            ("end_ip".to_string(), end_ip.to_string()),
            ("comment".to_string(), comment.to_string()),
        ];
        self.post("ipranges/", &[], form, "an IP range").await
    }

    /// `POST scripts/` name, type (commissioning|testing), script: a user
    /// script (2.8 api/scripts.py takes the content as a form field or a
    /// file part). Returns the script object as MAAS shows it.
    pub async fn create_script(
        &self,
        name: &str,
        script_type: &str,
        script: &str,
    ) -> Result<serde_json::Value, MaasError> {
        let form = vec![
            ("name".to_string(), name.to_string()),
            ("type".to_string(), script_type.to_string()),
            ("script".to_string(), script.to_string()),
        ];
        self.post("scripts/", &[], form, "a script").await
    }

    /// `DELETE scripts/NAME` (2.8's path has no trailing slash).
    pub async fn delete_script(&self, name: &str) -> Result<(), MaasError> {
        self.call(
            reqwest::Method::DELETE,
            &format!("scripts/{name}"),
            &[],
            Body::None,
        )
        .await
        .map(drop)
    }

    pub async fn boot_resources_is_importing(&self) -> Result<bool, MaasError> {
        self.get(
            "boot-resources/",
            &[("op", "is_importing")],
            "true or false",
        )
        .await
    }

    pub async fn boot_resources(&self) -> Result<Vec<BootResource>, MaasError> {
        self.get("boot-resources/", &[], "a list of boot resources")
            .await
    }
}

/// The first 300 characters of a body, for error messages.
fn excerpt(text: &str) -> String {
    let t: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        format!("{t}...")
    } else {
        t
    }
}

/// The form fields of `POST machines/` (enlistment and create).
fn enlist_form(req: &EnlistRequest) -> Vec<(String, String)> {
    let mut form = vec![
        ("hostname".to_string(), req.hostname.clone()),
        ("architecture".to_string(), req.architecture.clone()),
        ("power_type".to_string(), req.power_type.clone()),
        (
            "power_parameters".to_string(),
            req.power_parameters.to_string(),
        ),
    ];
    if let Some(sub) = &req.subarchitecture {
        form.push(("subarchitecture".into(), sub.clone()));
    }
    form.extend(
        req.mac_addresses
            .iter()
            .map(|m| ("mac_addresses".to_string(), m.clone())),
    );
    form
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn client_with_signal() -> (tokio::sync::watch::Sender<u64>, MaasClient) {
        let (tx, rx) = tokio::sync::watch::channel(0);
        let client = MaasClient::new("http://127.0.0.1:1/MAAS", None)
            .unwrap()
            .with_change_signal(rx);
        (tx, client)
    }

    // Paused clock: an hour's sleep ends at once when nothing else can run,
    // so "before the hour" says the signal, not the timer, ended the nap.
    #[tokio::test(start_paused = true)]
    async fn a_nap_ends_at_a_change_signalled_while_it_sleeps() {
        let (tx, client) = client_with_signal();
        let mut napper = client.napper();
        let t0 = tokio::time::Instant::now();
        let nap = tokio::spawn(async move { napper.nap(HOUR).await });
        tokio::task::yield_now().await;
        tx.send_modify(|n| *n += 1);
        nap.await.unwrap();
        assert!(t0.elapsed() < HOUR, "the change ended the nap");
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_during_a_look_ends_the_next_nap() {
        let (tx, client) = client_with_signal();
        let mut napper = client.napper();
        // Before the napper existed: does not count.
        let t0 = tokio::time::Instant::now();
        napper.nap(HOUR).await;
        assert!(t0.elapsed() >= HOUR, "no change, the whole nap");
        // Between two naps (the waiter was looking): counts.
        tx.send_modify(|n| *n += 1);
        let t1 = tokio::time::Instant::now();
        napper.nap(HOUR).await;
        assert!(
            t1.elapsed() < HOUR,
            "the change during the look ended the nap"
        );
        let t2 = tokio::time::Instant::now();
        napper.nap(HOUR).await;
        assert!(t2.elapsed() >= HOUR, "a change ends one nap only");
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_before_the_napper_and_a_gone_signal_leave_plain_polling() {
        let (tx, client) = client_with_signal();
        tx.send_modify(|n| *n += 1);
        let mut napper = client.napper();
        let t0 = tokio::time::Instant::now();
        napper.nap(HOUR).await;
        assert!(
            t0.elapsed() >= HOUR,
            "a change before the waiter's first look"
        );
        drop(tx);
        let t1 = tokio::time::Instant::now();
        napper.nap(HOUR).await;
        assert!(t1.elapsed() >= HOUR, "a closed signal does not end naps");
        // Without a signal at all: the poll interval's sleep.
        let mut plain = MaasClient::new("http://127.0.0.1:1/MAAS", None)
            .unwrap()
            .napper();
        let t2 = tokio::time::Instant::now();
        plain.nap(HOUR).await;
        assert!(t2.elapsed() >= HOUR);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        let d: Vec<u128> = (1..=5).map(|a| p.delay(a).as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        let e = MaasClient::new("ftp://x", None).unwrap_err().to_string();
        assert!(e.contains("scheme"), "{e}");
        let c = MaasClient::new("http://h:5240/MAAS/", None).unwrap();
        assert_eq!(
            c.api_url("machines/"),
            "http://h:5240/MAAS/api/2.0/machines/"
        );
    }
}
