//! TLS for the Redfish endpoints: one self-signed certificate made per
//! fleet start (per run), with every Redfish address as a subject
//! alternative name. The private key lives only in this process's memory:
//! it is never written anywhere; the certificate (public) can be handed to
//! clients that want to verify. A listener that does the TLS handshake off
//! the accept path feeds axum.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;

/// A handshake that takes longer than this is abandoned.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make the run's Redfish certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot build the TLS server configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The run's certificate and the server configuration holding its key.
pub struct RunCertificate {
    /// PEM of the certificate only (no key).
    pub cert_pem: String,
    pub server: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for RunCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunCertificate").finish_non_exhaustive()
    }
}

/// A fresh self-signed certificate for `names` (IP addresses or DNS names).
pub fn make(names: &[String]) -> Result<RunCertificate, TlsError> {
    let mut sans: Vec<String> = names.to_vec();
    sans.push("localhost".into());
    sans.sort();
    sans.dedup();
    let ck = rcgen::generate_simple_self_signed(sans)?;
    let cert_der = ck.cert.der().clone();
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
        rustls::pki_types::PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()),
    );
    // An explicit provider: the process-level default may not be installed.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key_der)?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(RunCertificate {
        cert_pem: ck.cert.pem(),
        server: Arc::new(server),
    })
}

/// Accepted, handshaken connections for axum.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accept on `tcp` until `shutdown`; each handshake runs in its own task
    /// so a slow or broken client does not hold up the others.
    pub fn new(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        mut shutdown: watch::Receiver<bool>,
    ) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    r = tcp.accept() => match r {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::debug!(error = %e, "redfish accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    _ = shutdown.changed() => return,
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(x) => x,
            // The acceptor stopped (shutdown): never yield again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The peer address, as axum connect info for [`TlsListener`].
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_has_no_key_in_its_pem() {
        let c = make(&["127.0.0.1".into()]).unwrap();
        assert!(c.cert_pem.contains("BEGIN CERTIFICATE"));
        assert!(!c.cert_pem.contains("PRIVATE KEY"));
        assert!(!format!("{c:?}").contains("PRIVATE"));
    }
}
