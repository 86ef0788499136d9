//! The lab's HTTP server (axum): files from a directory plus dynamic content
//! from a caller's handler (iPXE scripts per MAC, the sim's metadata). Every
//! request is a `LabEvent::HttpGet` (any method; the detail says which).
//! Range requests are not supported; iPXE and the kernel loaders do not need
//! them.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::Response;
use futures::StreamExt;
use futures::future::BoxFuture;
use thiserror::Error;
use tokio::task::JoinHandle;

use crate::lab::events::{EventLog, LabEvent, LabEventKind};

/// What a handler sees of a request.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub client: SocketAddr,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn text(body: impl Into<String>) -> Self {
        HttpReply {
            status: 200,
            content_type: "text/plain".into(),
            body: body.into().into_bytes(),
        }
    }
}

/// Dynamic content: `None` falls through to the directory.
pub type HttpHandler =
    Arc<dyn Fn(HttpRequest) -> BoxFuture<'static, Option<HttpReply>> + Send + Sync>;

#[derive(Clone)]
pub struct HttpConfig {
    pub name: String,
    /// Usually the segment's primary address, port 80; port 0 picks one.
    pub listen: SocketAddrV4,
    pub root: Option<PathBuf>,
    pub handler: Option<HttpHandler>,
}

#[derive(Debug, Error)]
pub enum HttpError {
    #[error("HTTP server could not bind {addr} in netns {netns}: {source}")]
    Bind {
        netns: String,
        addr: SocketAddrV4,
        #[source]
        source: std::io::Error,
    },
}

pub struct HttpServer {
    pub local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpServer {
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct AppState {
    cfg: HttpConfig,
    events: EventLog,
}

/// Start the HTTP server inside namespace `netns` (`None`: this one).
pub async fn start_http(
    netns: Option<&str>,
    cfg: HttpConfig,
    events: EventLog,
) -> Result<HttpServer, HttpError> {
    let bind_err = |source| HttpError::Bind {
        netns: netns.unwrap_or("(the host's)").to_string(),
        addr: cfg.listen,
        source,
    };
    let std_listener =
        crate::lab::netns::bind_tcp(netns, SocketAddr::V4(cfg.listen)).map_err(bind_err)?;
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind_err)?;
    let local_addr = listener.local_addr().map_err(bind_err)?;
    let app = axum::Router::new()
        .fallback(serve)
        .with_state(AppState { cfg, events });
    let task = tokio::spawn(async move {
        let svc = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, svc).await {
            tracing::warn!(error = %e, "lab HTTP server stopped");
        }
    });
    Ok(HttpServer { local_addr, task })
}

async fn serve(
    State(st): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let req = HttpRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        client,
        body: body.to_vec(),
    };
    let reply = answer(&st.cfg, req.clone()).await;
    let ip = match client {
        SocketAddr::V4(a) => *a.ip(),
        SocketAddr::V6(a) => a.ip().to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
    };
    let detail = format!(
        "method={} status={} bytes={}",
        req.method,
        reply.status,
        reply.body.len()
    );
    st.events.emit(
        LabEvent::new(LabEventKind::HttpGet, &st.cfg.name)
            .ip(ip)
            .path(uri.to_string())
            .detail(&detail),
    );
    // The body goes out in chunks; after the last one an HttpDone event
    // marks the end of the transfer (benchmarks split transfer from boot).
    // A body dropped before that (the client closed) is an HttpAborted.
    let total = reply.body.len();
    let chunks: Vec<Bytes> = reply
        .body
        .chunks(256 * 1024)
        .map(Bytes::copy_from_slice)
        .collect();
    let mut transfer = Transfer {
        events: st.events.clone(),
        event: LabEvent::new(LabEventKind::HttpDone, &st.cfg.name)
            .ip(ip)
            .path(uri.to_string())
            .detail(&detail),
        sent: 0,
        total,
        finished: false,
    };
    let body = futures::stream::iter(chunks.into_iter().map(Some).chain(std::iter::once(None)))
        .map(move |chunk| {
            match &chunk {
                Some(c) => transfer.sent += c.len(),
                None => transfer.finish(),
            }
            Ok::<_, std::convert::Infallible>(chunk.unwrap_or_default())
        });
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(ct) = reply.content_type.parse() {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp
}

/// One response body on its way: HttpDone when the last chunk was taken,
/// HttpAborted when the body is dropped before.
struct Transfer {
    events: EventLog,
    event: LabEvent,
    sent: usize,
    total: usize,
    finished: bool,
}

impl Transfer {
    fn finish(&mut self) {
        self.finished = true;
        self.events.emit(self.event.clone());
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if !self.finished {
            let mut ev = self.event.clone();
            ev.kind = LabEventKind::HttpAborted;
            ev.detail = Some(format!(
                "{}; client gone after {} of {} bytes queued",
                ev.detail.unwrap_or_default(),
                self.sent,
                self.total
            ));
            self.events.emit(ev);
        }
    }
}

async fn answer(cfg: &HttpConfig, req: HttpRequest) -> HttpReply {
    if let Some(h) = &cfg.handler
        && let Some(r) = h(req.clone()).await
    {
        return r;
    }
    let not_found = HttpReply {
        status: 404,
        content_type: "text/plain".into(),
        body: b"not found\n".to_vec(),
    };
    if req.method != "GET" && req.method != "HEAD" {
        return HttpReply {
            status: 405,
            ..not_found
        };
    }
    let Some(root) = &cfg.root else {
        return not_found;
    };
    let mut path = root.clone();
    for part in req.path.split('/').filter(|p| !p.is_empty()) {
        if part == ".." || part == "." {
            return not_found;
        }
        path.push(part);
    }
    match tokio::fs::read(&path).await {
        Ok(body) => HttpReply {
            status: 200,
            content_type: "application/octet-stream".into(),
            body,
        },
        Err(_) => not_found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::Duration;

    async fn server(events: &EventLog) -> (HttpServer, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("initrd"), vec![7u8; 8 << 20]).unwrap();
        let cfg = HttpConfig {
            name: "rack".into(),
            listen: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            root: Some(root.path().to_path_buf()),
            handler: None,
        };
        (start_http(None, cfg, events.clone()).await.unwrap(), root)
    }

    fn kinds(rx: &mut tokio::sync::broadcast::Receiver<LabEvent>) -> Vec<(LabEventKind, String)> {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            out.push((e.kind, e.detail.unwrap_or_default()));
        }
        out
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_download_ends_in_done_and_a_client_that_leaves_in_aborted() {
        let events = EventLog::new(None).unwrap();
        let mut rx = events.subscribe();
        let (srv, _root) = server(&events).await;
        let addr = srv.local_addr;
        let get = "GET /initrd HTTP/1.1\r\nHost: rack\r\nConnection: close\r\n\r\n";

        // The whole body read: Get, then Done.
        let body_len = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(get.as_bytes()).unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            all.len()
        })
        .await
        .unwrap();
        assert!(body_len > 8 << 20);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let seen = kinds(&mut rx);
        let k: Vec<LabEventKind> = seen.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            k,
            [LabEventKind::HttpGet, LabEventKind::HttpDone],
            "{seen:?}"
        );

        // A client that reads a little and closes: Get, then Aborted.
        tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(get.as_bytes()).unwrap();
            let mut some = [0u8; 4096];
            s.read_exact(&mut some).unwrap();
        })
        .await
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        while std::time::Instant::now() < deadline
            && !seen.iter().any(|(k, _)| *k == LabEventKind::HttpAborted)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
            seen.extend(kinds(&mut rx));
        }
        let k: Vec<LabEventKind> = seen.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            k,
            [LabEventKind::HttpGet, LabEventKind::HttpAborted],
            "{seen:?}"
        );
        assert!(seen[1].1.contains("client gone after"), "{seen:?}");
    }
}
