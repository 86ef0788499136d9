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
    /// Cap on each connection's send rate in bytes per second (the
    /// kernel's TCP pacing, `SO_MAX_PACING_RATE`); `None` sends as fast as
    /// the client's window allows.
    pub pacing: Option<u32>,
    /// TCP congestion control of each connection (`TCP_CONGESTION`);
    /// `None` keeps the namespace's default (for reproductions: issue 18).
    pub congestion: Option<String>,
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
    let name = cfg.name.clone();
    let pacing = cfg.pacing;
    let congestion = cfg.congestion.clone();
    let listener = axum::serve::ListenerExt::tap_io(listener, move |tcp| {
        if let Some(rate) = pacing
            && let Err(e) = set_pacing(tcp, rate)
        {
            tracing::warn!(server = %name, error = %e, "lab HTTP: pacing not set");
        }
        if let Some(cc) = &congestion
            && let Err(e) = set_congestion(tcp, cc)
        {
            tracing::warn!(server = %name, congestion = %cc, error = %e, "lab HTTP: congestion control not set");
        }
    });
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

/// Caps the connection's send rate; the kernel spaces the segments out
/// (TCP's own pacing, no qdisc needed).
fn set_pacing(tcp: &tokio::net::TcpStream, bytes_per_s: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let rate = bytes_per_s;
    // SAFETY: a valid socket fd and a u32 of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MAX_PACING_RATE,
            (&rate as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The connection's congestion control algorithm, by name.
fn set_congestion(tcp: &tokio::net::TcpStream, name: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket fd and a buffer of the length passed.
    let rc = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
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
    // With the length in the head hyper stops polling after the last
    // byte, so the last chunk taken is the end (an empty body ends on drop).
    let body = futures::stream::iter(chunks).map(move |chunk| {
        transfer.sent += chunk.len();
        if transfer.sent == transfer.total {
            transfer.finish();
        }
        Ok::<_, std::convert::Infallible>(chunk)
    });
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(ct) = reply.content_type.parse() {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    // The length goes in the head although the body is a stream (hyper
    // then frames it by length, not chunked or by closing): pxelinux sizes
    // its buffer from it, as with a real rack's nginx; without it pxelinux
    // grows the buffer 1 MiB at a time and copies the file so far each time
    // (issue 18, docs/lab.md).
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, header::HeaderValue::from(total));
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
        self.events.emit(self.stamped(LabEventKind::HttpDone));
    }

    /// The event as of now (the template carries the request's time).
    fn stamped(&self, kind: LabEventKind) -> LabEvent {
        let mut ev = self.event.clone();
        ev.kind = kind;
        ev.time_ms = LabEvent::new(kind, &ev.server).time_ms;
        ev
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if !self.finished && self.sent == self.total {
            self.finish();
        } else if !self.finished {
            let mut ev = self.stamped(LabEventKind::HttpAborted);
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
        server_with(events, None).await
    }

    /// An 8 MiB `initrd` on loopback, each connection with `congestion`.
    async fn server_with(
        events: &EventLog,
        congestion: Option<&str>,
    ) -> (HttpServer, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("initrd"), vec![7u8; 8 << 20]).unwrap();
        let cfg = HttpConfig {
            name: "rack".into(),
            listen: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            root: Some(root.path().to_path_buf()),
            handler: None,
            pacing: None,
            congestion: congestion.map(str::to_string),
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

    /// The events' kinds are `want`, in order.
    fn assert_kinds(seen: &[(LabEventKind, String)], want: &[LabEventKind]) {
        let k: Vec<LabEventKind> = seen.iter().map(|(k, _)| *k).collect();
        assert_eq!(k, want, "{seen:?}");
    }

    /// pxelinux's request (core/fs/pxe/http.c): HTTP/1.0, Connection: close.
    const PXELINUX_GET: &str = "GET /initrd HTTP/1.0\r\nHost: rack\r\nUser-Agent: Syslinux/6.04\r\nConnection: close\r\n\r\n";

    /// The response head (up to the blank line) and what came after it.
    fn read_head(s: &mut std::net::TcpStream) -> (String, Vec<u8>) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed inside the head");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                return (head, buf[end + 4..].to_vec());
            }
        }
    }

    fn content_length(head: &str) -> Option<usize> {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
    }

    /// A client like pxelinux in a CPU-starved guest: it reads a little,
    /// stops reading for seconds (the server's socket buffer fills), then
    /// reads on. It must get the whole file, and the head must say how
    /// long the file is (pxelinux sizes its buffer from Content-Length;
    /// without it, it grows the buffer 1 MiB at a time).
    #[tokio::test(flavor = "multi_thread")]
    async fn a_pxelinux_like_client_that_stops_reading_gets_the_whole_file_and_its_length() {
        let events = EventLog::new(None).unwrap();
        let mut rx = events.subscribe();
        let (srv, _root) = server(&events).await;
        let addr = srv.local_addr;
        let (head, body) = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            // A small receive buffer, as lwIP's 64000-byte window.
            nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBuf, &65536).unwrap();
            s.write_all(PXELINUX_GET.as_bytes()).unwrap();
            let (head, mut body) = read_head(&mut s);
            let mut some = vec![0u8; 64 * 1024];
            s.read_exact(&mut some).unwrap();
            body.extend_from_slice(&some);
            std::thread::sleep(Duration::from_secs(3));
            s.read_to_end(&mut body).unwrap();
            (head, body)
        })
        .await
        .unwrap();
        assert!(head.starts_with("HTTP/1."), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("transfer-encoding"),
            "{head}"
        );
        assert_eq!(
            content_length(&head),
            Some(8 << 20),
            "no Content-Length: {head}"
        );
        assert_eq!(body.len(), 8 << 20, "body cut short");
        assert!(body.iter().all(|&b| b == 7), "body is not the file");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_kinds(
            &kinds(&mut rx),
            &[LabEventKind::HttpGet, LabEventKind::HttpDone],
        );
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
        assert_kinds(
            &kinds(&mut rx),
            &[LabEventKind::HttpGet, LabEventKind::HttpDone],
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
        assert_kinds(&seen, &[LabEventKind::HttpGet, LabEventKind::HttpAborted]);
        assert!(seen[1].1.contains("client gone after"), "{seen:?}");
    }

    /// The server sets each connection's congestion control (the boot
    /// servers use CUBIC, not a namespace default that paces: issue 18);
    /// `ss` shows the algorithm of the server's end.
    #[tokio::test]
    async fn each_connection_gets_the_configured_congestion_control() {
        let events = EventLog::new(None).unwrap();
        // Neither this machine's default (bbr) nor the boot servers'.
        let (srv, _root) = server_with(&events, Some("reno")).await;
        let port = srv.local_addr.port();
        let ss = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /initrd HTTP/1.0\r\n\r\n").unwrap();
            let mut head = [0u8; 512];
            let _ = s.read(&mut head).unwrap();
            // The connection is up and the body on its way: ask the kernel.
            let out = std::process::Command::new("ss")
                .args(["-tniH", "state", "established"])
                .arg(format!("sport = :{port}"))
                .output()
                .expect("ss (iproute2)");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .await
        .unwrap();
        assert!(
            ss.split_whitespace().any(|w| w == "reno"),
            "the server's end does not use reno:\n{ss}"
        );
        srv.stop();
    }
}
