//! Redfish over HTTPS on the same BMC state as IPMI (docs/bmc.md,
//! "Redfish"): [`resources`] builds the JSON, [`auth`] checks Basic
//! credentials against the IPMI users and keeps SessionService sessions,
//! [`routes`] serves requests by running the IPMI commands they stand for,
//! [`tls`] makes the run's certificate and accepts TLS connections.

pub mod auth;
pub mod resources;
pub mod routes;
pub mod tls;

use std::sync::Arc;

use tokio::sync::watch;

use super::instance::Bmc;

/// Serve one BMC's Redfish service on `tcp` until `shutdown`.
pub async fn serve(
    bmc: Arc<Bmc>,
    tcp: tokio::net::TcpListener,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    shutdown: watch::Receiver<bool>,
) {
    let listener = match tls::TlsListener::new(tcp, tls, shutdown.clone()) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(bmc = %bmc.name, error = %e, "redfish listener failed");
            return;
        }
    };
    let svc = Arc::new(routes::Service {
        bmc,
        sessions: auth::Sessions::default(),
        shutdown: shutdown.clone(),
    });
    let app = routes::router(svc).into_make_service_with_connect_info::<tls::Peer>();
    let mut stop = shutdown;
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
}
