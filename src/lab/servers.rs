//! One call to start the PXE servers of a lab segment (DHCP, TFTP, HTTP,
//! router advertisements) on the segment's primary address, all feeding one
//! event log. The sim target's rack and the lab tests use this; each server
//! can also be started on its own (dhcp::start_dhcp, tftp::start_tftp, ...).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::lab::dhcp::{self, BootPolicy, DhcpConfig, DhcpServer, StaticLease};
use crate::lab::events::EventLog;
use crate::lab::http::{self, HttpConfig, HttpHandler, HttpServer};
use crate::lab::net::SegmentSpec;
use crate::lab::ra::{self, RaConfig, RaSender};
use crate::lab::tftp::{self, TftpConfig, TftpServer, TftpSource};

/// What to serve on a segment; `None` leaves a server off.
#[derive(Clone)]
pub struct SegmentServersConfig {
    /// Server name in events.
    pub name: String,
    pub dhcp: Option<DhcpSettings>,
    pub tftp: Option<TftpSource>,
    pub http: Option<HttpSettings>,
    /// Send router advertisements (removes iPXE's ~13 s IPv6 wait).
    pub router_advertisements: bool,
}

#[derive(Clone)]
pub struct DhcpSettings {
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub lease_secs: u32,
    pub static_leases: Vec<StaticLease>,
    pub pool: Option<(Ipv4Addr, Ipv4Addr)>,
    pub boot: BootPolicy,
}

#[derive(Clone)]
pub struct HttpSettings {
    /// 80 for PXE; 0 picks a free port (see `SegmentServers::http`).
    pub port: u16,
    pub root: Option<PathBuf>,
    pub handler: Option<HttpHandler>,
    /// See `HttpConfig::pacing`.
    pub pacing: Option<u32>,
    /// See `HttpConfig::congestion`.
    pub congestion: Option<String>,
}

#[derive(Debug, Error)]
pub enum ServersError {
    #[error(transparent)]
    Dhcp(#[from] dhcp::DhcpError),
    #[error(transparent)]
    Tftp(#[from] tftp::TftpError),
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error(transparent)]
    Ra(#[from] ra::RaError),
}

/// The running servers of a segment; dropping this stops them all.
pub struct SegmentServers {
    pub dhcp: Option<DhcpServer>,
    pub tftp: Option<TftpServer>,
    pub http: Option<HttpServer>,
    pub ra: Option<RaSender>,
}

/// Start the configured servers inside `netns` on `segment`'s primary
/// address and lab veth.
pub async fn start_segment_servers(
    netns: &str,
    segment: &SegmentSpec,
    cfg: SegmentServersConfig,
    events: EventLog,
) -> Result<SegmentServers, ServersError> {
    let ip = segment.addresses[0];
    let dhcp = match cfg.dhcp {
        Some(d) => Some(
            dhcp::start_dhcp(
                netns,
                DhcpConfig {
                    name: cfg.name.clone(),
                    interface: segment.veth_lab.clone(),
                    server_ip: ip,
                    subnet: segment.subnet,
                    router: d.router,
                    dns: d.dns,
                    lease_secs: d.lease_secs,
                    static_leases: d.static_leases,
                    pool: d.pool,
                    boot: d.boot,
                },
                events.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let tftp = match cfg.tftp {
        Some(source) => Some(
            tftp::start_tftp(
                netns,
                TftpConfig {
                    name: cfg.name.clone(),
                    listen: SocketAddrV4::new(ip, 69),
                    source,
                },
                events.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let http = match cfg.http {
        Some(h) => Some(
            http::start_http(
                Some(netns),
                HttpConfig {
                    name: cfg.name.clone(),
                    listen: SocketAddrV4::new(ip, h.port),
                    root: h.root,
                    handler: h.handler,
                    pacing: h.pacing,
                    congestion: h.congestion,
                },
                events.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let ra = if cfg.router_advertisements {
        Some(
            ra::start_ra(
                netns,
                RaConfig {
                    name: cfg.name.clone(),
                    interface: segment.veth_lab.clone(),
                    interval: Duration::from_secs(2),
                },
                events.clone(),
            )
            .await?,
        )
    } else {
        None
    };
    Ok(SegmentServers {
        dhcp,
        tftp,
        http,
        ra,
    })
}
