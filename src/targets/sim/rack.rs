//! The sim rack: the lab's DHCP, TFTP and HTTP servers inside the lab
//! namespace, glued to the region through `RackHandle`.
//!
//! As MAAS 2.8's rack: DHCP hands BIOS clients `lpxelinux.0` (TFTP) and
//! UEFI clients a boot program; pxelinux reads `pxelinux.cfg/01-<mac>`
//! over TFTP, which the rack writes from the region's boot decision, and
//! fetches kernel and initrd over HTTP (port 5248, `/boot/ephemeral/...`).
//! There is no signed `bootx64.efi` (shim + grub) on this host, so UEFI
//! clients, whose network stack is QEMU's iPXE ROM, get an iPXE script
//! (`/boot/ipxe/<mac>`) instead: the same decision, the same kernel and
//! initrd. Every request the servers see becomes a MAAS event on the
//! machine with that MAC ("PXE Request", "TFTP Request", "Performing PXE
//! boot", "Loading ephemeral", "HTTP Request"), recorded in the order the
//! servers saw them by one forwarding task.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;
use tokio::task::JoinHandle;

use super::boot::{BootConfig, BootContext, BootPurpose, Firmware, boot_config};
use super::events;
use super::region::RackHandle;
use crate::image::Image;
use crate::lab::dhcp::{self, BootPolicy, BootTarget, DhcpConfig, DhcpServer, StaticLease};
use crate::lab::events::{EventLog, LabEvent, LabEventKind};
use crate::lab::http::{self, HttpConfig, HttpHandler, HttpReply, HttpServer};
use crate::lab::net::Ipv4Subnet;
use crate::lab::tftp::{self, TftpCallback, TftpConfig, TftpServer, TftpSource};

/// The port MAAS's rack serves boot resources on.
pub const BOOT_HTTP_PORT: u16 = 5248;
/// pxelinux for BIOS (Debian's pxelinux package).
pub const PXELINUX_DIR: &str = "/usr/lib/PXELINUX";
/// pxelinux's modules (ldlinux.c32, poweroff.c32, ...; syslinux-common).
pub const SYSLINUX_MODULES_DIR: &str = "/usr/lib/syslinux/modules/bios";

/// Everything the rack needs to start.
pub struct SimRackConfig {
    pub netns: String,
    /// The lab veth inside the namespace (DHCP binds to it).
    pub interface: String,
    /// The rack's address on the lab segment.
    pub rack_ip: Ipv4Addr,
    pub subnet: Ipv4Subnet,
    /// Dynamic range for MACs without a static lease.
    pub pool: (Ipv4Addr, Ipv4Addr),
    /// Fixed addresses (and DHCP hostnames) for known MACs.
    pub static_leases: Vec<StaticLease>,
    /// The region as guests reach it (http://ADDR:PORT/MAAS).
    pub maas_url: String,
    /// The ephemeral environment served as kernel + initrd.
    pub image: Image,
    /// Lab events (every DHCP/TFTP/HTTP request) as JSON lines.
    pub events_log: Option<PathBuf>,
}

#[derive(Debug, Error)]
pub enum RackError {
    #[error("sim rack: {0}")]
    Dhcp(#[from] dhcp::DhcpError),
    #[error("sim rack: {0}")]
    Tftp(#[from] tftp::TftpError),
    #[error("sim rack: {0}")]
    Http(#[from] http::HttpError),
    #[error("sim rack: reading {what} {path}: {source}; is the package that ships it installed?")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A running rack; stops its servers when dropped.
pub struct SimRack {
    pub events: EventLog,
    pub boot_http: String,
    _dhcp: DhcpServer,
    _tftp: TftpServer,
    _http: HttpServer,
    forwarder: JoinHandle<()>,
}

impl Drop for SimRack {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

/// The shared inputs of the request handlers.
struct Boot {
    rack: RackHandle,
    ctx: BootContext,
    kernel: Arc<Vec<u8>>,
    initrd: Arc<Vec<u8>>,
}

impl Boot {
    async fn decide(&self, mac: &str, firmware: Firmware) -> Option<BootConfig> {
        match self.rack.machine_for_mac(mac).await {
            Ok(m) => Some(boot_config(&self.ctx, m.as_ref(), mac, firmware)),
            Err(e) => {
                tracing::warn!(error = %e, mac, "sim rack: no boot decision (region state unreadable)");
                None
            }
        }
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, RackError> {
    std::fs::read(path).map_err(|source| RackError::Io {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// The DHCP boot files: BIOS gets pxelinux (PXE ROM or iPXE alike, as MAAS
/// 2.8), UEFI iPXE gets its script; a UEFI client without iPXE gets nothing
/// (no EFI loader to hand it; see the module header).
pub fn boot_policy(boot_http: &str) -> BootPolicy {
    BootPolicy {
        bios: BootTarget {
            pxe: Some("lpxelinux.0".into()),
            ipxe: Some("lpxelinux.0".into()),
        },
        uefi: BootTarget {
            pxe: None,
            ipxe: Some(format!("{boot_http}/ipxe/{{mac}}")),
        },
    }
}

/// The pxelinux config for a decision (pure).
pub fn pxelinux_config(cfg: &BootConfig) -> String {
    match (cfg.purpose, &cfg.kernel_url, &cfg.initrd_url, &cfg.cmdline) {
        (
            BootPurpose::Enlist | BootPurpose::Commission | BootPurpose::Poweroff,
            Some(k),
            Some(i),
            Some(c),
        ) => {
            format!(
                "DEFAULT execute\nPROMPT 0\nTIMEOUT 0\nLABEL execute\n  KERNEL {k}\n  INITRD {i}\n  APPEND {c}\n"
            )
        }
        (BootPurpose::Local, ..) => {
            "DEFAULT local\nPROMPT 0\nTIMEOUT 0\nLABEL local\n  LOCALBOOT 0\n".into()
        }
        _ => "DEFAULT poweroff\nPROMPT 0\nTIMEOUT 0\nLABEL poweroff\n  COM32 poweroff.c32\n".into(),
    }
}

/// The iPXE script for a decision (pure). iPXE hands EFI kernels the
/// initrd only when the command line names it (`initrd=initrd`).
pub fn ipxe_script(cfg: &BootConfig) -> String {
    match (cfg.purpose, &cfg.kernel_url, &cfg.initrd_url, &cfg.cmdline) {
        (
            BootPurpose::Enlist | BootPurpose::Commission | BootPurpose::Poweroff,
            Some(k),
            Some(i),
            Some(c),
        ) => {
            format!("#!ipxe\nkernel {k} initrd=initrd {c}\ninitrd {i}\nboot\n")
        }
        (BootPurpose::Local, ..) => "#!ipxe\nexit\n".into(),
        _ => "#!ipxe\npoweroff\n".into(),
    }
}

/// `pxelinux.cfg/01-aa-bb-cc-dd-ee-ff` -> `aa:bb:cc:dd:ee:ff`.
pub fn mac_of_pxelinux_path(path: &str) -> Option<String> {
    let name = path
        .trim_start_matches('/')
        .strip_prefix("pxelinux.cfg/01-")?;
    super::store::normalise_mac(name)
}

impl SimRack {
    /// Start DHCP (67), TFTP (69) and HTTP (5248) on the rack address
    /// inside the lab namespace, and the task that turns their requests
    /// into region events.
    pub async fn start(cfg: SimRackConfig, rack: RackHandle) -> Result<SimRack, RackError> {
        let events = EventLog::new(cfg.events_log.as_deref()).map_err(|source| RackError::Io {
            what: "the lab event log",
            path: cfg.events_log.clone().unwrap_or_default(),
            source,
        })?;
        let boot_http = format!("http://{}:{BOOT_HTTP_PORT}/boot", cfg.rack_ip);
        let boot = Arc::new(Boot {
            rack: rack.clone(),
            ctx: BootContext {
                maas_url: cfg.maas_url.clone(),
                boot_http: boot_http.clone(),
            },
            kernel: Arc::new(read("the ephemeral kernel", &cfg.image.kernel)?),
            initrd: Arc::new(read("the ephemeral initrd", &cfg.image.initrd)?),
        });
        // Fail now, not when the first machine boots.
        let pxelinux = Arc::new(read(
            "pxelinux",
            &Path::new(PXELINUX_DIR).join("lpxelinux.0"),
        )?);
        read(
            "ldlinux.c32",
            &Path::new(SYSLINUX_MODULES_DIR).join("ldlinux.c32"),
        )?;

        // The forwarder subscribes before any server can emit.
        let forwarder = tokio::spawn(forward(events.subscribe(), boot.clone()));

        let dhcp = dhcp::start_dhcp(
            &cfg.netns,
            DhcpConfig {
                name: "rack".into(),
                interface: cfg.interface.clone(),
                server_ip: cfg.rack_ip,
                subnet: cfg.subnet,
                router: None,
                dns: vec![],
                lease_secs: 600,
                static_leases: cfg.static_leases.clone(),
                pool: Some(cfg.pool),
                boot: boot_policy(&boot_http),
            },
            events.clone(),
        )
        .await?;

        let tftp_boot = boot.clone();
        let callback: TftpCallback = Arc::new(move |path: &str, _client| {
            let path = path.trim_start_matches('/');
            if path == "lpxelinux.0" {
                return Some(pxelinux.as_ref().clone());
            }
            if let Some(mac) = mac_of_pxelinux_path(path) {
                // The TFTP callback is synchronous; the decision reads the
                // region's state. The CLI runs a multi-thread runtime.
                let b = tftp_boot.clone();
                let decide = async move { b.decide(&mac, Firmware::Bios).await };
                let cfg = match tokio::runtime::Handle::try_current() {
                    Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                        tokio::task::block_in_place(|| h.block_on(decide))
                    }
                    _ => None,
                }?;
                return Some(pxelinux_config(&cfg).into_bytes());
            }
            let module = path.rsplit('/').next()?;
            if module.ends_with(".c32") && !module.contains("..") {
                return std::fs::read(Path::new(SYSLINUX_MODULES_DIR).join(module)).ok();
            }
            None
        });
        let tftp = tftp::start_tftp(
            &cfg.netns,
            TftpConfig {
                name: "rack".into(),
                listen: SocketAddrV4::new(cfg.rack_ip, 69),
                source: TftpSource::Callback(callback),
            },
            events.clone(),
        )
        .await?;

        let http_boot = boot.clone();
        let handler: HttpHandler = Arc::new(move |req| {
            let b = http_boot.clone();
            Box::pin(async move { answer_http(&b, &req.method, &req.path).await })
        });
        let http = http::start_http(
            Some(&cfg.netns),
            HttpConfig {
                name: "rack".into(),
                listen: SocketAddrV4::new(cfg.rack_ip, BOOT_HTTP_PORT),
                root: None,
                handler: Some(handler),
                pacing: None,
                // The namespace's default: CUBIC here stalled pxelinux more
                // in the sim's runs (issue 18, docs/lab.md).
                congestion: None,
            },
            events.clone(),
        )
        .await?;
        tracing::info!(rack_ip = %cfg.rack_ip, %boot_http, "sim rack serving DHCP, TFTP and HTTP boot");
        Ok(SimRack {
            events,
            boot_http,
            _dhcp: dhcp,
            _tftp: tftp,
            _http: http,
            forwarder,
        })
    }
}

async fn answer_http(b: &Boot, method: &str, path: &str) -> Option<HttpReply> {
    if method != "GET" && method != "HEAD" {
        return None;
    }
    let bin = |data: &Arc<Vec<u8>>| HttpReply {
        status: 200,
        content_type: "application/octet-stream".into(),
        body: data.as_ref().clone(),
    };
    match path {
        "/boot/ephemeral/kernel" => Some(bin(&b.kernel)),
        "/boot/ephemeral/initrd" => Some(bin(&b.initrd)),
        p => {
            let mac = super::store::normalise_mac(p.strip_prefix("/boot/ipxe/")?)?;
            let cfg = b.decide(&mac, Firmware::Uefi).await?;
            Some(HttpReply::text(ipxe_script(&cfg)))
        }
    }
}

/// Firmware and boot file from a DHCP event's detail
/// (`firmware=bios ipxe=true boot=lpxelinux.0`).
fn pxe_from_detail(detail: &str) -> Option<(Firmware, String)> {
    let mut fw = None;
    let mut file = None;
    for part in detail.split_whitespace() {
        match part.split_once('=') {
            Some(("firmware", "bios")) => fw = Some(Firmware::Bios),
            Some(("firmware", "uefi")) => fw = Some(Firmware::Uefi),
            Some(("boot", f)) => file = Some(f.to_string()),
            _ => {}
        }
    }
    Some((fw?, file?))
}

/// A client that re-sends its TFTP read request because the answer was
/// slow starts a second transfer of the same file; that is one request.
/// True for a read of the same path by the same MAC within 3 s.
fn is_retransmission(
    last: &mut std::collections::HashMap<String, (String, u128)>,
    ev: &LabEvent,
) -> bool {
    let (LabEventKind::TftpRead, Some(mac), Some(path)) = (ev.kind, &ev.mac, &ev.path) else {
        return false;
    };
    let again = last
        .get(mac)
        .is_some_and(|(p, t)| p == path && ev.time_ms.saturating_sub(*t) < 3000);
    last.insert(mac.clone(), (path.clone(), ev.time_ms));
    again
}

/// A starved guest's DHCP client re-sends its REQUEST and the server acks
/// each copy; one boot is one "PXE Request" (2.8.7 records it once per
/// boot, from the config request). True for an ack with the same MAC and
/// transaction id as that MAC's last ack.
fn is_repeated_ack(last: &mut std::collections::HashMap<String, String>, ev: &LabEvent) -> bool {
    let (LabEventKind::DhcpAck, Some(mac), Some(detail)) = (ev.kind, &ev.mac, &ev.detail) else {
        return false;
    };
    let Some(xid) = detail
        .split_whitespace()
        .find_map(|part| part.strip_prefix("xid="))
    else {
        return false;
    };
    last.insert(mac.clone(), xid.to_string())
        .is_some_and(|previous| previous == xid)
}

/// Turn lab events into region events, one at a time, in order.
async fn forward(mut rx: tokio::sync::broadcast::Receiver<LabEvent>, boot: Arc<Boot>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut last_read: std::collections::HashMap<String, (String, u128)> =
        std::collections::HashMap::new();
    let mut last_ack: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "sim rack: lab events were dropped before they became region events"
                );
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        if is_retransmission(&mut last_read, &ev) || is_repeated_ack(&mut last_ack, &ev) {
            continue;
        }
        if let Err(e) = record(&boot, &ev).await {
            tracing::warn!(error = %e, ?ev, "sim rack: could not record an event");
        }
    }
}

async fn record(b: &Boot, ev: &LabEvent) -> Result<(), super::store::StoreError> {
    let Some(mac) = ev.mac.as_deref() else {
        return Ok(());
    };
    let path = ev.path.as_deref().unwrap_or_default();
    match ev.kind {
        // Only PXE clients (they send option 93): the ephemeral
        // environment's own DHCP is not a PXE request.
        LabEventKind::DhcpAck => {
            if let Some((fw, file)) = ev.detail.as_deref().and_then(pxe_from_detail) {
                b.rack.record_pxe_request(mac, fw, &file).await?;
            }
        }
        LabEventKind::TftpRead => {
            b.rack
                .record_tftp_request(mac, path.trim_start_matches('/'))
                .await?;
            if mac_of_pxelinux_path(path).is_some() {
                performing_pxe_boot(b, mac, Firmware::Bios).await?;
            }
        }
        LabEventKind::HttpGet => {
            let plain = path.split('?').next().unwrap_or_default();
            b.rack.record_http_request(mac, plain).await?;
            if plain.starts_with("/boot/ipxe/") {
                performing_pxe_boot(b, mac, Firmware::Uefi).await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// "Performing PXE boot" after the boot config was handed out, for every
/// ephemeral boot (as `RackHandle::boot_config` records it).
async fn performing_pxe_boot(
    b: &Boot,
    mac: &str,
    fw: Firmware,
) -> Result<(), super::store::StoreError> {
    let machine = b.rack.machine_for_mac(mac).await?;
    let cfg = boot_config(&b.ctx, machine.as_ref(), mac, fw);
    if cfg.kernel_url.is_some() {
        b.rack.record(mac, &events::PERFORMING_PXE_BOOT, "").await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> BootContext {
        BootContext {
            maas_url: "http://10.9.0.1:5240/MAAS".into(),
            boot_http: "http://10.9.0.1:5248/boot".into(),
        }
    }

    #[test]
    fn boot_programs_per_purpose() {
        let mac = "52:54:00:aa:bb:01";
        let enlist = boot_config(&ctx(), None, mac, Firmware::Bios);
        let ready = super::super::store::MachineBootState {
            system_id: "abc".into(),
            hostname: "n".into(),
            status: crate::maas::types::NodeStatus::READY,
        };
        let off = boot_config(&ctx(), Some(&ready), mac, Firmware::Uefi);
        insta::assert_snapshot!(
            "boot_programs",
            format!(
                "{}---\n{}---\n{}---\n{}",
                pxelinux_config(&enlist),
                ipxe_script(&enlist),
                pxelinux_config(&off),
                ipxe_script(&off)
            )
        );
    }

    #[test]
    fn a_repeated_tftp_read_within_seconds_is_one_request() {
        let mut last = std::collections::HashMap::new();
        let read = |path: &str, t: u128| {
            let mut e = LabEvent::new(LabEventKind::TftpRead, "rack")
                .mac("52:54:00:00:00:01")
                .path(path);
            e.time_ms = t;
            e
        };
        assert!(!is_retransmission(
            &mut last,
            &read("pxelinux.cfg/01-x", 1000)
        ));
        assert!(is_retransmission(
            &mut last,
            &read("pxelinux.cfg/01-x", 1050)
        ));
        assert!(!is_retransmission(&mut last, &read("ldlinux.c32", 1100)));
        assert!(
            !is_retransmission(&mut last, &read("ldlinux.c32", 9000)),
            "a later boot reads it again"
        );
    }

    #[test]
    fn dhcp_detail_and_pxelinux_paths() {
        assert_eq!(
            pxe_from_detail("firmware=bios ipxe=true boot=lpxelinux.0"),
            Some((Firmware::Bios, "lpxelinux.0".into()))
        );
        assert_eq!(pxe_from_detail("firmware=none ipxe=false"), None);
        assert_eq!(
            mac_of_pxelinux_path("/pxelinux.cfg/01-52-54-00-AA-bb-01").as_deref(),
            Some("52:54:00:aa:bb:01")
        );
        assert_eq!(mac_of_pxelinux_path("pxelinux.cfg/default"), None);
        let p = boot_policy("http://10.0.0.1:5248/boot");
        assert_eq!(
            p.choose(dhcp::Firmware::Uefi, true, "52:54:00:00:00:01")
                .as_deref(),
            Some("http://10.0.0.1:5248/boot/ipxe/52-54-00-00-00-01")
        );
        assert_eq!(
            p.choose(dhcp::Firmware::Bios, true, "52:54:00:00:00:01")
                .as_deref(),
            Some("lpxelinux.0")
        );
    }

    #[test]
    fn a_re_sent_dhcp_request_is_one_pxe_request_and_a_new_exchange_another() {
        let ack = |mac: &str, xid: &str| {
            LabEvent::new(LabEventKind::DhcpAck, "rack")
                .mac(mac)
                .detail(format!(
                    "firmware=bios ipxe=true boot=lpxelinux.0 xid={xid}"
                ))
        };
        let mut last = std::collections::HashMap::new();
        let seen: Vec<bool> = [
            ack("m1", "0000abcd"),
            ack("m1", "0000abcd"), // the REQUEST again, acked again
            ack("m2", "0000abcd"), // another machine
            ack("m1", "00001234"), // m1 boots again: a new exchange
            ack("m1", "00001234"),
        ]
        .iter()
        .map(|e| is_repeated_ack(&mut last, e))
        .collect();
        assert_eq!(seen, [false, true, false, false, true]);
    }
}
