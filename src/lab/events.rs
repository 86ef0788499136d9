//! Lab events: every DHCP, TFTP and HTTP request the lab servers see, as a
//! JSON-lines log and a broadcast channel callers subscribe to.
//!
//! TFTP and HTTP requests carry only an IP; the log fills in the MAC from the
//! DHCP acknowledgements it has seen, so one machine's boot reads as one story.

use std::collections::HashMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LabEventKind {
    DhcpDiscover,
    DhcpOffer,
    DhcpRequest,
    DhcpAck,
    DhcpNak,
    DhcpRelease,
    DhcpInform,
    TftpRead,
    TftpDone,
    TftpError,
    HttpGet,
    /// The last byte of a response body was handed to the socket.
    HttpDone,
    /// The client went away before the body was sent (the detail says how
    /// far it got): a guest that gave up on a download.
    HttpAborted,
    RouterAdvert,
}

/// One thing a lab server saw or did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabEvent {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u128,
    pub kind: LabEventKind,
    /// Which server instance (the caller names it, e.g. the netns).
    pub server: String,
    pub mac: Option<String>,
    pub ip: Option<Ipv4Addr>,
    /// TFTP file name or HTTP path.
    pub path: Option<String>,
    /// Firmware as DHCP option 93 said (`bios`, `uefi`), iPXE or not, boot
    /// file handed out, HTTP status and size, TFTP error.
    pub detail: Option<String>,
}

impl LabEvent {
    pub fn new(kind: LabEventKind, server: &str) -> Self {
        LabEvent {
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            kind,
            server: server.to_string(),
            mac: None,
            ip: None,
            path: None,
            detail: None,
        }
    }
    pub fn mac(mut self, mac: impl Into<String>) -> Self {
        self.mac = Some(mac.into());
        self
    }
    pub fn ip(mut self, ip: Ipv4Addr) -> Self {
        self.ip = Some(ip);
        self
    }
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Shared by every server of a lab: clone freely.
#[derive(Clone)]
pub struct EventLog {
    inner: Arc<Inner>,
}

struct Inner {
    tx: broadcast::Sender<LabEvent>,
    file: Mutex<Option<std::fs::File>>,
    mac_by_ip: Mutex<HashMap<Ipv4Addr, String>>,
}

impl EventLog {
    /// `jsonl`: append every event to this file (created with its parent).
    pub fn new(jsonl: Option<&Path>) -> std::io::Result<EventLog> {
        let file = match jsonl {
            Some(p) => {
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)?,
                )
            }
            None => None,
        };
        let (tx, _) = broadcast::channel(4096);
        Ok(EventLog {
            inner: Arc::new(Inner {
                tx,
                file: Mutex::new(file),
                mac_by_ip: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LabEvent> {
        self.inner.tx.subscribe()
    }

    pub fn emit(&self, mut ev: LabEvent) {
        if let Some(ip) = ev.ip {
            let mut map = self.inner.mac_by_ip.lock().unwrap();
            match (&ev.mac, ev.kind) {
                (Some(mac), LabEventKind::DhcpAck) => {
                    map.insert(ip, mac.clone());
                }
                (None, _) => ev.mac = map.get(&ip).cloned(),
                _ => {}
            }
        }
        tracing::debug!(kind = ?ev.kind, mac = ?ev.mac, ip = ?ev.ip, path = ?ev.path, "lab event");
        if let Some(f) = self.inner.file.lock().unwrap().as_mut()
            && let Ok(line) = serde_json::to_string(&ev)
        {
            let _ = writeln!(f, "{line}");
        }
        let _ = self.inner.tx.send(ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_events_get_the_mac_of_the_acked_ip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net/events.jsonl");
        let log = EventLog::new(Some(&path)).unwrap();
        let mut rx = log.subscribe();
        let ip = Ipv4Addr::new(10, 0, 0, 5);
        log.emit(
            LabEvent::new(LabEventKind::DhcpAck, "t")
                .mac("52:54:00:00:00:01")
                .ip(ip),
        );
        log.emit(
            LabEvent::new(LabEventKind::HttpGet, "t")
                .ip(ip)
                .path("/boot.ipxe"),
        );
        assert_eq!(rx.try_recv().unwrap().kind, LabEventKind::DhcpAck);
        let get = rx.try_recv().unwrap();
        assert_eq!(get.mac.as_deref(), Some("52:54:00:00:00:01"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().nth(1).unwrap().contains("\"HttpGet\""));
    }
}
