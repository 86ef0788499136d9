//! The sim rack's `redfish` power driver, behaving as MAAS 2.8's
//! provisioningserver/drivers/power/redfish.py (behaviour only):
//! - the address gets `https://` when it has no scheme; the certificate is
//!   not verified (MAAS 2.8's web client context does not verify);
//! - HTTP Basic auth on every request; the node is `node_id` or the first
//!   member of `redfish/v1/Systems`;
//! - a 404 on a URI without a trailing slash is retried with one; any other
//!   status >= 400 fails the action ("Redfish request failed with response
//!   status code: N.");
//! - query: GET Systems/ID, PowerState lower-cased;
//! - on: query; ForceOff if on; PATCH Boot {Once, Pxe}; Reset On;
//! - off: query; ForceOff unless off; PATCH Boot {Once, Pxe}.
//!
//! Connections are made inside the lab's network namespace, one per request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio_rustls::rustls;

use super::power::{
    PowerAction, PowerAttempt, PowerDriverConfig, PowerError, perform_with_retries,
    query_with_retries,
};
use crate::maas::types::PowerState;

/// The redfish power parameters MAAS stores for a machine.
#[derive(Clone, PartialEq, Eq)]
pub struct RedfishParams {
    pub power_address: String,
    pub power_user: String,
    pub power_pass: String,
    pub node_id: Option<String>,
}

impl std::fmt::Debug for RedfishParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedfishParams")
            .field("power_address", &self.power_address)
            .field("power_user", &self.power_user)
            .field("power_pass", &"<redacted>")
            .field("node_id", &self.node_id)
            .finish()
    }
}

impl RedfishParams {
    /// From a machine's power_parameters; address, user and password are
    /// required (MAAS's settings mark them so).
    pub fn from_json(v: &Value) -> Result<Self, PowerError> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let p = RedfishParams {
            power_address: s("power_address").trim().to_string(),
            power_user: s("power_user"),
            power_pass: s("power_pass"),
            node_id: Some(s("node_id").trim().to_string()).filter(|n| !n.is_empty()),
        };
        for (name, value) in [
            ("power_address", &p.power_address),
            ("power_user", &p.power_user),
            ("power_pass", &p.power_pass),
        ] {
            if value.is_empty() {
                return Err(PowerError::Settings(format!(
                    "{name} is not set; the redfish power type needs power_address, power_user and power_pass"
                )));
            }
        }
        Ok(p)
    }

    /// The service's base URL: `https://` is added when no scheme is given.
    pub fn base_url(&self) -> String {
        let a = self.power_address.trim_end_matches('/');
        if a.starts_with("https://") || a.starts_with("http://") {
            a.to_string()
        } else {
            format!("https://{a}")
        }
    }
}

/// One request as the driver sends it (pure: snapshot-tested).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RedfishRequest {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
}

pub fn pxe_once_patch(node: &str) -> RedfishRequest {
    RedfishRequest {
        method: "PATCH",
        path: format!("/redfish/v1/Systems/{node}"),
        body: Some(
            json!({"Boot": {"BootSourceOverrideEnabled": "Once", "BootSourceOverrideTarget": "Pxe"}}),
        ),
    }
}

pub fn reset(node: &str, reset_type: &str) -> RedfishRequest {
    RedfishRequest {
        method: "POST",
        path: format!("/redfish/v1/Systems/{node}/Actions/ComputerSystem.Reset"),
        body: Some(json!({ "ResetType": reset_type })),
    }
}

/// The requests of one power change given the state the query found.
pub fn plan(node: &str, action: PowerAction, state: &str) -> Vec<RedfishRequest> {
    let mut out = Vec::new();
    match action {
        PowerAction::On => {
            if state == "on" {
                out.push(reset(node, "ForceOff"));
            }
            out.push(pxe_once_patch(node));
            out.push(reset(node, "On"));
        }
        PowerAction::Off => {
            if state != "off" {
                out.push(reset(node, "ForceOff"));
            }
            out.push(pxe_once_patch(node));
        }
        PowerAction::Query => {}
    }
    out
}

/// Accepts any server certificate, as MAAS 2.8's redfish driver does;
/// handshake signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Runs MAAS's redfish power driver for the sim rack.
#[derive(Debug, Clone)]
pub struct RedfishPowerDriver {
    pub config: PowerDriverConfig,
}

impl RedfishPowerDriver {
    pub fn new(config: PowerDriverConfig) -> Self {
        RedfishPowerDriver { config }
    }

    fn tls(&self) -> Result<Arc<rustls::ClientConfig>, PowerError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| PowerError::Fatal(format!("TLS set-up: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth();
        Ok(Arc::new(cfg))
    }

    /// One HTTP exchange on a fresh connection made in the lab namespace:
    /// (status, body).
    async fn exchange(
        &self,
        p: &RedfishParams,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Bytes), PowerError> {
        let base = p.base_url();
        let uri: hyper::Uri = format!("{base}{path}")
            .parse()
            .map_err(|e| PowerError::Settings(format!("power_address {base:?}: {e}")))?;
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .ok_or_else(|| PowerError::Settings(format!("power_address {base:?} has no host")))?
            .trim_matches(['[', ']'])
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addr: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| PowerError::Conn(format!("cannot resolve {host}")))?;
        let timeout = self.config.command_timeout;
        let netns = self.config.netns.clone();
        let std_stream = tokio::task::spawn_blocking(move || {
            crate::lab::netns::run_in(netns.as_deref(), || {
                let s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
                s.set_nonblocking(true)?;
                Ok(s)
            })
        })
        .await
        .map_err(|e| PowerError::Fatal(e.to_string()))?
        .map_err(|e| PowerError::Conn(format!("Redfish connection to {addr} failed: {e}")))?;
        let tcp = tokio::net::TcpStream::from_std(std_stream)
            .map_err(|e| PowerError::Conn(e.to_string()))?;
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", p.power_user, p.power_pass));
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let req = hyper::Request::builder()
            .method(method)
            .uri(uri.path_and_query().map_or("/", |pq| pq.as_str()))
            .header(
                hyper::header::HOST,
                uri.authority().map_or("", |a| a.as_str()),
            )
            .header(hyper::header::USER_AGENT, "MAAS")
            .header(hyper::header::ACCEPT, "application/json")
            .header(hyper::header::AUTHORIZATION, format!("Basic {auth}"))
            .header(
                hyper::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| PowerError::Fatal(e.to_string()))?;
        let work = async {
            if https {
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| PowerError::Settings(format!("{host}: {e}")))?;
                let tls = tokio_rustls::TlsConnector::from(self.tls()?)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| PowerError::Conn(format!("TLS with {addr}: {e}")))?;
                send(TokioIo::new(tls), req).await
            } else {
                send(TokioIo::new(tcp), req).await
            }
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            PowerError::Conn(format!(
                "Connection timed out while performing power action: {method} {path}"
            ))
        })?
    }

    /// A request as redfish.py's redfish_request: the 404 retry with a
    /// trailing slash, >= 400 an error, the body as JSON when not empty.
    async fn request(
        &self,
        p: &RedfishParams,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, PowerError> {
        let (mut status, mut bytes) = self.exchange(p, method, path, body).await?;
        if status == 404 && !path.ends_with('/') {
            (status, bytes) = self.exchange(p, method, &format!("{path}/"), body).await?;
        }
        if status >= 400 {
            return Err(PowerError::Failed(format!(
                "Redfish request failed with response status code: {status}."
            )));
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            PowerError::Failed(format!(
                "Redfish request failed from a JSON parse error: {e}."
            ))
        })
    }

    async fn node_id(&self, p: &RedfishParams) -> Result<String, PowerError> {
        if let Some(n) = &p.node_id {
            return Ok(n.clone());
        }
        let systems = self.request(p, "GET", "/redfish/v1/Systems", None).await?;
        systems["Members"][0]["@odata.id"]
            .as_str()
            .map(|m| {
                m.trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .filter(|n| !n.is_empty())
            .ok_or_else(|| PowerError::Failed("Redfish Systems collection has no members".into()))
    }

    async fn state_of(&self, p: &RedfishParams, node: &str) -> Result<String, PowerError> {
        let v = self
            .request(p, "GET", &format!("/redfish/v1/Systems/{node}"), None)
            .await?;
        Ok(v["PowerState"].as_str().unwrap_or("").to_lowercase())
    }

    pub async fn query(&self, p: &RedfishParams) -> Result<PowerState, PowerError> {
        let node = self.node_id(p).await?;
        Ok(match self.state_of(p, &node).await?.as_str() {
            "on" => PowerState::On,
            "off" => PowerState::Off,
            _ => PowerState::Unknown,
        })
    }

    /// One attempt of a power change (power_on / power_off in redfish.py).
    pub async fn issue(&self, p: &RedfishParams, action: PowerAction) -> Result<(), PowerError> {
        let node = self.node_id(p).await?;
        let state = self.state_of(p, &node).await?;
        for r in plan(&node, action, &state) {
            self.request(p, r.method, &r.path, r.body.as_ref()).await?;
        }
        Ok(())
    }

    /// MAAS's perform_power around the change, the same retries as every
    /// driver (`power::perform_with_retries`).
    pub async fn perform(
        &self,
        system_id: &str,
        p: &RedfishParams,
        action: PowerAction,
        on_retry: impl FnMut(usize, &PowerError, Duration),
    ) -> Result<(), PowerError> {
        let attempt = RedfishAttempt { driver: self, p };
        perform_with_retries(&self.config, system_id, &attempt, action, on_retry).await
    }

    /// MAAS's PowerDriver.query (retried) for a redfish machine.
    pub async fn query_reporting(
        &self,
        p: &RedfishParams,
        on_retry: impl FnMut(usize, &PowerError, Duration),
    ) -> Result<PowerState, PowerError> {
        query_with_retries(&self.config, &RedfishAttempt { driver: self, p }, on_retry).await
    }
}

struct RedfishAttempt<'a> {
    driver: &'a RedfishPowerDriver,
    p: &'a RedfishParams,
}

impl PowerAttempt for RedfishAttempt<'_> {
    async fn attempt(&self, action: PowerAction) -> Result<PowerState, PowerError> {
        match action {
            PowerAction::Query => self.driver.query(self.p).await,
            change => self
                .driver
                .issue(self.p, change)
                .await
                .map(|()| PowerState::Unknown),
        }
    }
}

async fn send<T>(
    io: TokioIo<T>,
    req: hyper::Request<Full<Bytes>>,
) -> Result<(u16, Bytes), PowerError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| PowerError::Conn(format!("HTTP handshake: {e}")))?;
    let conn = tokio::spawn(conn);
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| PowerError::Conn(format!("Redfish request: {e}")))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| PowerError::Conn(format!("Redfish response: {e}")))?
        .to_bytes();
    drop(sender);
    conn.abort();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_redfish_py() {
        insta::assert_yaml_snapshot!("on_when_on", plan("1", PowerAction::On, "on"));
        let on_from_off = plan("1", PowerAction::On, "off");
        assert_eq!(on_from_off.len(), 2, "no ForceOff when off");
        let off_when_off = plan("1", PowerAction::Off, "off");
        assert_eq!(off_when_off, vec![pxe_once_patch("1")]);
        let off_when_on = plan("1", PowerAction::Off, "on");
        assert_eq!(off_when_on[0], reset("1", "ForceOff"));
    }

    #[test]
    fn params_need_address_user_password_and_hide_the_password() {
        let p = RedfishParams::from_json(
            &json!({"power_address": "10.0.0.5", "power_user": "u", "power_pass": "sekrit"}),
        )
        .unwrap();
        assert_eq!(p.base_url(), "https://10.0.0.5");
        assert!(!format!("{p:?}").contains("sekrit"));
        let e = RedfishParams::from_json(&json!({"power_address": "10.0.0.5"})).unwrap_err();
        assert!(e.to_string().contains("power_user"), "{e}");
        let p = RedfishParams::from_json(
            &json!({"power_address": "http://h:8000/", "power_user": "u", "power_pass": "p", "node_id": "7"}),
        )
        .unwrap();
        assert_eq!(
            (p.base_url().as_str(), p.node_id.as_deref()),
            ("http://h:8000", Some("7"))
        );
    }
}
