//! The lab's read-only TFTP server (RFC 1350) with the options PXE loaders
//! use: blksize (RFC 2348) and tsize (RFC 2349). Files come from a directory
//! or from a caller's callback (dynamic pxelinux configs).
//!
//! Each transfer gets its own UDP socket inside the lab namespace and runs
//! lock-step with a retransmit timer. Writes are refused.
//!
//! A retransmitted read request is not answered twice. pxelinux (lwIP)
//! reuses a freed local port for its next open and takes the first packet
//! from any server port as the answer, so a second "not found" for a
//! retransmitted probe of file A, arriving while it waits for file B on the
//! same port, made it give up on B (seen under TCG: the MAC-named config
//! lost, the guest stuck in pxelinux for 5 minutes). The first transfer
//! retransmits on its own; a client that aborted (error 8, after a tsize
//! probe) and asks again is a new request and is served.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::lab::events::{EventLog, LabEvent, LabEventKind};

/// A callback: (requested path, client address) -> file contents.
pub type TftpCallback = Arc<dyn Fn(&str, Ipv4Addr) -> Option<Vec<u8>> + Send + Sync>;

#[derive(Clone)]
pub enum TftpSource {
    /// Serve files under this directory; `..` is refused.
    Dir(PathBuf),
    Callback(TftpCallback),
    /// Callback first, then the directory.
    Both(TftpCallback, PathBuf),
}

#[derive(Clone)]
pub struct TftpConfig {
    pub name: String,
    /// Usually the segment's primary address, port 69.
    pub listen: SocketAddrV4,
    pub source: TftpSource,
}

#[derive(Debug, Error)]
pub enum TftpError {
    #[error("TFTP server could not bind {addr} in netns {netns}: {source}")]
    Bind {
        netns: String,
        addr: SocketAddrV4,
        #[source]
        source: std::io::Error,
    },
}

pub struct TftpServer {
    task: JoinHandle<()>,
}

impl TftpServer {
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for TftpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How an answered request ended, for telling retransmissions apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Still sending (or waiting for the first ACK).
    Running,
    /// Answered with an error (not found, bad request) or completed.
    Answered,
    /// The client aborted or stopped answering: a repeat is a new request.
    Abandoned,
}

/// The same RRQ from the same client port within this window is a
/// retransmission, unless the client abandoned the first transfer.
const RETRANSMISSION_WINDOW: Duration = Duration::from_secs(3);

/// Recent requests by (client, request bytes).
#[derive(Default)]
struct Recent(HashMap<(SocketAddrV4, Vec<u8>), (Instant, Outcome)>);

impl Recent {
    /// Record `key` unless it repeats a request still running or answered
    /// moments ago; false means "drop it".
    fn admit(&mut self, key: (SocketAddrV4, Vec<u8>), now: Instant) -> bool {
        self.0
            .retain(|_, (at, _)| now.duration_since(*at) < RETRANSMISSION_WINDOW * 4);
        if let Some((at, outcome)) = self.0.get(&key)
            && (*outcome == Outcome::Running
                || (*outcome == Outcome::Answered
                    && now.duration_since(*at) < RETRANSMISSION_WINDOW))
        {
            return false;
        }
        self.0.insert(key, (now, Outcome::Running));
        true
    }

    fn finish(&mut self, key: &(SocketAddrV4, Vec<u8>), outcome: Outcome, now: Instant) {
        if let Some(e) = self.0.get_mut(key) {
            *e = (now, outcome);
        }
    }
}

const OP_RRQ: u16 = 1;
const OP_WRQ: u16 = 2;
const OP_DATA: u16 = 3;
const OP_ACK: u16 = 4;
const OP_ERROR: u16 = 5;
const OP_OACK: u16 = 6;

/// A parsed read request.
#[derive(Debug, PartialEq, Eq)]
pub struct ReadRequest {
    pub file: String,
    pub mode: String,
    pub blksize: Option<usize>,
    pub tsize: bool,
}

/// Parse an RRQ; `Err` carries the TFTP error to send back.
pub fn parse_request(pkt: &[u8]) -> Result<ReadRequest, (u16, &'static str)> {
    if pkt.len() < 4 {
        return Err((4, "short packet"));
    }
    match u16::from_be_bytes([pkt[0], pkt[1]]) {
        OP_RRQ => {}
        OP_WRQ => return Err((2, "read-only server")),
        _ => return Err((4, "expected a read request")),
    }
    let mut fields = pkt[2..]
        .split(|b| *b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned());
    let file = fields
        .next()
        .filter(|f| !f.is_empty())
        .ok_or((4, "no file name"))?;
    let mode = fields.next().unwrap_or_default().to_lowercase();
    let mut req = ReadRequest {
        file,
        mode,
        blksize: None,
        tsize: false,
    };
    while let (Some(k), Some(v)) = (fields.next(), fields.next()) {
        match k.to_lowercase().as_str() {
            "blksize" => req.blksize = v.parse::<usize>().ok().map(|b| b.clamp(8, 65464)),
            "tsize" => req.tsize = true,
            _ => {}
        }
    }
    Ok(req)
}

/// A request path as a relative path inside the root, or `None` if it
/// tries to leave it.
fn safe_relative(file: &str) -> Option<PathBuf> {
    let p = Path::new(file.trim_start_matches('/'));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

async fn lookup(source: &TftpSource, file: &str, client: Ipv4Addr) -> Option<Vec<u8>> {
    let from_dir =
        |dir: PathBuf| async move { tokio::fs::read(dir.join(safe_relative(file)?)).await.ok() };
    match source {
        TftpSource::Dir(d) => from_dir(d.clone()).await,
        TftpSource::Callback(cb) => cb(file, client),
        TftpSource::Both(cb, d) => match cb(file, client) {
            Some(v) => Some(v),
            None => from_dir(d.clone()).await,
        },
    }
}

fn error_packet(code: u16, msg: &str) -> Vec<u8> {
    let mut p = vec![0, OP_ERROR as u8];
    p.extend_from_slice(&code.to_be_bytes());
    p.extend_from_slice(msg.as_bytes());
    p.push(0);
    p
}

/// Start the TFTP server inside namespace `netns`.
pub async fn start_tftp(
    netns: &str,
    cfg: TftpConfig,
    events: EventLog,
) -> Result<TftpServer, TftpError> {
    let bind_err = |source| TftpError::Bind {
        netns: netns.to_string(),
        addr: cfg.listen,
        source,
    };
    let std_sock =
        crate::lab::netns::bind_udp(Some(netns), SocketAddr::V4(cfg.listen)).map_err(bind_err)?;
    let sock = UdpSocket::from_std(std_sock).map_err(bind_err)?;
    let netns = netns.to_string();
    let recent = Arc::new(std::sync::Mutex::new(Recent::default()));
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let SocketAddr::V4(peer) = peer else { continue };
            let pkt = buf[..n].to_vec();
            let key = (peer, pkt.clone());
            if !recent.lock().unwrap().admit(key.clone(), Instant::now()) {
                tracing::debug!(%peer, "TFTP: retransmitted request ignored (its transfer answers it)");
                continue;
            }
            let (cfg, events, netns, recent) =
                (cfg.clone(), events.clone(), netns.clone(), recent.clone());
            tokio::spawn(async move {
                let outcome = transfer(&netns, &cfg, &events, peer, &pkt).await;
                recent.lock().unwrap().finish(&key, outcome, Instant::now());
            });
        }
    });
    Ok(TftpServer { task })
}

async fn transfer(
    netns: &str,
    cfg: &TftpConfig,
    events: &EventLog,
    peer: SocketAddrV4,
    pkt: &[u8],
) -> Outcome {
    let ev = |k| LabEvent::new(k, &cfg.name).ip(*peer.ip());
    // The transfer's own port (TID), in the lab namespace, same address.
    let local = SocketAddr::V4(SocketAddrV4::new(*cfg.listen.ip(), 0));
    let Ok(sock) = crate::lab::netns::bind_udp(Some(netns), local).and_then(UdpSocket::from_std)
    else {
        return Outcome::Abandoned;
    };
    let req = match parse_request(pkt) {
        Ok(r) => r,
        Err((code, msg)) => {
            events.emit(ev(LabEventKind::TftpError).detail(msg));
            let _ = sock.send_to(&error_packet(code, msg), peer).await;
            return Outcome::Answered;
        }
    };
    events.emit(ev(LabEventKind::TftpRead).path(&req.file));
    let Some(data) = lookup(&cfg.source, &req.file, *peer.ip()).await else {
        events.emit(
            ev(LabEventKind::TftpError)
                .path(&req.file)
                .detail("not found"),
        );
        let _ = sock.send_to(&error_packet(1, "file not found"), peer).await;
        return Outcome::Answered;
    };
    let blksize = req.blksize.unwrap_or(512);
    // Option acknowledgement first when the client asked for options; the
    // client answers with ACK 0.
    if req.blksize.is_some() || req.tsize {
        let mut oack = vec![0, OP_OACK as u8];
        if req.blksize.is_some() {
            oack.extend_from_slice(format!("blksize\0{blksize}\0").as_bytes());
        }
        if req.tsize {
            oack.extend_from_slice(format!("tsize\0{}\0", data.len()).as_bytes());
        }
        match send_until_ack(&sock, peer, &oack, 0).await {
            Ok(()) => {}
            // iPXE and pxelinux ask for tsize first and then abort (error 8)
            // to open the file again: that is not a failure.
            Err(why) => {
                events.emit(ev(LabEventKind::TftpError).path(&req.file).detail(why));
                return Outcome::Abandoned;
            }
        }
    }
    let blocks = data.len() / blksize + 1;
    for i in 0..blocks {
        let block = ((i + 1) & 0xffff) as u16;
        let chunk = &data[i * blksize..((i + 1) * blksize).min(data.len())];
        let mut p = Vec::with_capacity(4 + chunk.len());
        p.extend_from_slice(&OP_DATA.to_be_bytes());
        p.extend_from_slice(&block.to_be_bytes());
        p.extend_from_slice(chunk);
        if let Err(why) = send_until_ack(&sock, peer, &p, block).await {
            events.emit(ev(LabEventKind::TftpError).path(&req.file).detail(why));
            return Outcome::Abandoned;
        }
    }
    events.emit(
        ev(LabEventKind::TftpDone)
            .path(&req.file)
            .detail(format!("bytes={} blksize={blksize}", data.len())),
    );
    Outcome::Answered
}

async fn send_until_ack(
    sock: &UdpSocket,
    peer: SocketAddrV4,
    pkt: &[u8],
    block: u16,
) -> Result<(), String> {
    let mut buf = [0u8; 1024];
    for _ in 0..6 {
        sock.send_to(pkt, peer)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1000);
        loop {
            let r = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await;
            let Ok(Ok((n, from))) = r else { break };
            if from != SocketAddr::V4(peer) || n < 4 {
                continue;
            }
            let op = u16::from_be_bytes([buf[0], buf[1]]);
            let num = u16::from_be_bytes([buf[2], buf[3]]);
            if op == OP_ACK && num == block {
                return Ok(());
            }
            if op == OP_ERROR {
                let msg = String::from_utf8_lossy(&buf[4..n])
                    .trim_end_matches('\0')
                    .to_string();
                return Err(format!("client error {num}: {msg}"));
            }
            // A duplicate ACK for an older block: keep waiting.
        }
    }
    Err(format!("no ACK for block {block} after 6 tries"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rrq_with_options() {
        let r =
            parse_request(b"\0\x01pxelinux.cfg/default\0octet\0tsize\0\x30\0blksize\0\x31432\0")
                .unwrap();
        assert_eq!(
            r,
            ReadRequest {
                file: "pxelinux.cfg/default".into(),
                mode: "octet".into(),
                blksize: Some(1432),
                tsize: true
            }
        );
        assert_eq!(parse_request(b"\0\x02x\0octet\0").unwrap_err().0, 2);
    }

    #[test]
    fn a_repeated_request_is_dropped_while_running_or_just_answered() {
        let peer: SocketAddrV4 = "10.0.0.5:49152".parse().unwrap();
        let key = |f: &str| (peer, format!("\0\x01{f}\0octet\0").into_bytes());
        let t0 = Instant::now();
        let mut r = Recent::default();
        assert!(r.admit(key("a"), t0));
        assert!(
            !r.admit(key("a"), t0 + Duration::from_millis(80)),
            "running: a retransmission"
        );
        assert!(r.admit(key("b"), t0), "another file is another request");
        r.finish(&key("a"), Outcome::Answered, t0 + Duration::from_millis(1));
        assert!(
            !r.admit(key("a"), t0 + Duration::from_millis(90)),
            "answered moments ago"
        );
        assert!(
            r.admit(key("a"), t0 + RETRANSMISSION_WINDOW * 2),
            "answered long ago: a new request"
        );
        r.finish(&key("b"), Outcome::Abandoned, t0 + Duration::from_millis(5));
        assert!(
            r.admit(key("b"), t0 + Duration::from_millis(6)),
            "the client aborted (tsize probe) and asks again"
        );
        let other: SocketAddrV4 = "10.0.0.5:49153".parse().unwrap();
        assert!(
            r.admit((other, key("a").1), t0 + Duration::from_millis(90)),
            "another client port is another request"
        );
    }

    #[test]
    fn refuses_paths_outside_the_root() {
        assert_eq!(safe_relative("/a/./b"), Some(PathBuf::from("a/b")));
        assert_eq!(safe_relative("../etc/shadow"), None);
        assert_eq!(safe_relative("a/../../x"), None);
    }
}
