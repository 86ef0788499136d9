//! The lab's DHCPv4 server: static leases per MAC, a dynamic pool, and PXE
//! boot files chosen by firmware (option 93) and by whether the client is
//! iPXE (user class "iPXE", option 77, or iPXE's own option 175).
//!
//! `Responder` is the pure part (a request in, a reply out); `start_dhcp`
//! binds UDP 67 inside the lab namespace on the lab veth (SO_BINDTODEVICE)
//! and answers by broadcast, since PXE clients have no address yet.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use dhcproto::v4::{self, DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::task::JoinHandle;

use crate::lab::events::{EventLog, LabEvent, LabEventKind};
use crate::lab::net::Ipv4Subnet;

/// Firmware as a PXE client reports it in option 93 (RFC 4578).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    Bios,
    Uefi,
}

impl Firmware {
    /// 0 = x86 BIOS; 6 = IA32 EFI, 7 = x64 EFI (BC), 9 = x64 EFI (as
    /// OVMF's iPXE sends it); 10/11 ARM EFI are treated as UEFI too.
    pub fn from_arch(arch: u16) -> Firmware {
        if arch == 0 {
            Firmware::Bios
        } else {
            Firmware::Uefi
        }
    }
}

/// What to hand one kind of client. A file name without a scheme goes to
/// TFTP (siaddr = server); `http://...` is a URL for iPXE. `{mac}` is
/// replaced by the client's MAC (`52-54-00-...`, pxelinux style).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootTarget {
    /// For a plain PXE ROM (no iPXE).
    pub pxe: Option<String>,
    /// For iPXE (QEMU's NIC ROMs and OVMF's network stack here are iPXE).
    pub ipxe: Option<String>,
}

/// Boot files per firmware.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootPolicy {
    pub bios: BootTarget,
    pub uefi: BootTarget,
}

impl BootPolicy {
    /// The boot file for a client, `{mac}` filled in; `None`: no PXE answer.
    pub fn choose(&self, firmware: Firmware, ipxe: bool, mac: &str) -> Option<String> {
        let t = match firmware {
            Firmware::Bios => &self.bios,
            Firmware::Uefi => &self.uefi,
        };
        let f = if ipxe {
            t.ipxe.as_ref().or(t.pxe.as_ref())
        } else {
            t.pxe.as_ref()
        }?;
        Some(f.replace("{mac}", &mac.replace(':', "-")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticLease {
    /// `52:54:00:12:34:56`, lower case.
    pub mac: String,
    pub ip: Ipv4Addr,
    pub hostname: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpConfig {
    /// Server name in events (e.g. the netns).
    pub name: String,
    /// The lab veth inside the netns the server binds to.
    pub interface: String,
    /// Our address on that interface: server identifier and next-server.
    pub server_ip: Ipv4Addr,
    pub subnet: Ipv4Subnet,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub lease_secs: u32,
    pub static_leases: Vec<StaticLease>,
    /// Inclusive range for unknown MACs; `None`: only static leases answer.
    pub pool: Option<(Ipv4Addr, Ipv4Addr)>,
    pub boot: BootPolicy,
}

#[derive(Debug, Error)]
pub enum DhcpError {
    #[error("DHCP config `{field}`: {problem}")]
    Config { field: String, problem: String },
    #[error("DHCP server could not bind UDP 67 on {interface} in netns {netns}: {source}")]
    Bind {
        netns: String,
        interface: String,
        #[source]
        source: std::io::Error,
    },
}

/// The pure DHCP logic with its lease table.
pub struct Responder {
    cfg: DhcpConfig,
    dynamic: HashMap<String, Ipv4Addr>,
}

/// What the server learnt from one request, for events and replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub mac: String,
    pub firmware: Option<Firmware>,
    pub ipxe: bool,
}

impl Responder {
    pub fn new(cfg: DhcpConfig) -> Result<Responder, DhcpError> {
        let bad = |field: &str, problem: String| DhcpError::Config {
            field: field.into(),
            problem,
        };
        if !cfg.subnet.contains(cfg.server_ip) {
            return Err(bad(
                "server_ip",
                format!("{} is outside {}", cfg.server_ip, cfg.subnet),
            ));
        }
        for (i, l) in cfg.static_leases.iter().enumerate() {
            if !cfg.subnet.contains(l.ip) {
                return Err(bad(
                    &format!("static_leases[{i}].ip"),
                    format!("{} is outside {}", l.ip, cfg.subnet),
                ));
            }
            if parse_mac(&l.mac).is_none() {
                return Err(bad(
                    &format!("static_leases[{i}].mac"),
                    format!("`{}` is not aa:bb:cc:dd:ee:ff", l.mac),
                ));
            }
        }
        if let Some((a, b)) = cfg.pool
            && (!cfg.subnet.contains(a) || !cfg.subnet.contains(b) || u32::from(a) > u32::from(b))
        {
            return Err(bad(
                "pool",
                format!("{a}-{b} is not an ascending range inside {}", cfg.subnet),
            ));
        }
        Ok(Responder {
            cfg,
            dynamic: HashMap::new(),
        })
    }

    pub fn client_info(req: &Message) -> ClientInfo {
        let mac = format_mac(req.chaddr());
        let firmware = match req.opts().get(OptionCode::ClientSystemArchitecture) {
            Some(DhcpOption::ClientSystemArchitecture(a)) => {
                Some(Firmware::from_arch(u16::from(*a)))
            }
            _ => None,
        };
        let user_class_ipxe = match req.opts().get(OptionCode::UserClass) {
            // RFC 3004 wants length-prefixed items; iPXE sends the bare
            // string. Either way the bytes contain "iPXE".
            Some(DhcpOption::UserClass(v)) => v.windows(4).any(|w| w == b"iPXE"),
            _ => false,
        };
        let has_175 = req.opts().get(OptionCode::Unknown(175)).is_some();
        ClientInfo {
            mac,
            firmware,
            ipxe: user_class_ipxe || has_175,
        }
    }

    fn address_for(&mut self, mac: &str) -> Option<Ipv4Addr> {
        if let Some(l) = self
            .cfg
            .static_leases
            .iter()
            .find(|l| l.mac.eq_ignore_ascii_case(mac))
        {
            return Some(l.ip);
        }
        if let Some(ip) = self.dynamic.get(mac) {
            return Some(*ip);
        }
        let (lo, hi) = self.cfg.pool?;
        let taken: Vec<Ipv4Addr> = self
            .dynamic
            .values()
            .copied()
            .chain(self.cfg.static_leases.iter().map(|l| l.ip))
            .chain([self.cfg.server_ip])
            .collect();
        let ip = (u32::from(lo)..=u32::from(hi))
            .map(Ipv4Addr::from)
            .find(|ip| !taken.contains(ip))?;
        self.dynamic.insert(mac.to_string(), ip);
        Some(ip)
    }

    /// Answer one request. Returns the reply (if any) and the events.
    pub fn handle(&mut self, req: &Message) -> (Option<Message>, Vec<LabEvent>) {
        let name = self.cfg.name.clone();
        let ev = |k| LabEvent::new(k, &name);
        if req.opcode() != Opcode::BootRequest || req.hlen() != 6 {
            return (None, vec![]);
        }
        let info = Self::client_info(req);
        let fw = info
            .firmware
            .map(|f| format!("{f:?}").to_lowercase())
            .unwrap_or_else(|| "none".into());
        let what = format!("firmware={fw} ipxe={}", info.ipxe);
        let mut events = vec![];
        match req.opts().msg_type() {
            Some(MessageType::Discover) => {
                events.push(ev(LabEventKind::DhcpDiscover).mac(&info.mac).detail(&what));
                let Some(ip) = self.address_for(&info.mac) else {
                    return (None, events);
                };
                let (reply, boot) = self.reply(req, &info, MessageType::Offer, ip);
                events.push(
                    ev(LabEventKind::DhcpOffer)
                        .mac(&info.mac)
                        .ip(ip)
                        .detail(boot_detail(&what, &boot)),
                );
                (Some(reply), events)
            }
            Some(MessageType::Request) => {
                events.push(ev(LabEventKind::DhcpRequest).mac(&info.mac).detail(&what));
                // A request for another server's offer is not ours to answer.
                if let Some(DhcpOption::ServerIdentifier(sid)) =
                    req.opts().get(OptionCode::ServerIdentifier)
                    && *sid != self.cfg.server_ip
                {
                    return (None, events);
                }
                let Some(ip) = self.address_for(&info.mac) else {
                    return (None, events);
                };
                let wanted = match req.opts().get(OptionCode::RequestedIpAddress) {
                    Some(DhcpOption::RequestedIpAddress(r)) => Some(*r),
                    _ if !req.ciaddr().is_unspecified() => Some(req.ciaddr()),
                    _ => None,
                };
                if wanted.is_some_and(|w| w != ip) {
                    let mut nak = self.base_reply(req, MessageType::Nak);
                    nak.set_yiaddr(Ipv4Addr::UNSPECIFIED);
                    events.push(
                        ev(LabEventKind::DhcpNak)
                            .mac(&info.mac)
                            .detail(format!("wanted {}", wanted.unwrap())),
                    );
                    return (Some(nak), events);
                }
                let (reply, boot) = self.reply(req, &info, MessageType::Ack, ip);
                // The transaction id: a client's retransmitted REQUEST
                // keeps it, a new DHCP exchange (a new boot) does not.
                events.push(
                    ev(LabEventKind::DhcpAck)
                        .mac(&info.mac)
                        .ip(ip)
                        .detail(format!(
                            "{} xid={:08x}",
                            boot_detail(&what, &boot),
                            req.xid()
                        )),
                );
                (Some(reply), events)
            }
            Some(MessageType::Release) => {
                events.push(
                    ev(LabEventKind::DhcpRelease)
                        .mac(&info.mac)
                        .ip(req.ciaddr()),
                );
                self.dynamic.remove(&info.mac);
                (None, events)
            }
            Some(MessageType::Inform) => {
                events.push(ev(LabEventKind::DhcpInform).mac(&info.mac).ip(req.ciaddr()));
                let mut reply = self.base_reply(req, MessageType::Ack);
                reply.set_yiaddr(Ipv4Addr::UNSPECIFIED);
                (Some(reply), events)
            }
            _ => (None, events),
        }
    }

    fn base_reply(&self, req: &Message, kind: MessageType) -> Message {
        let mut m = Message::default();
        m.set_opcode(Opcode::BootReply)
            .set_htype(req.htype())
            .set_xid(req.xid())
            .set_flags(req.flags())
            .set_giaddr(req.giaddr())
            .set_chaddr(req.chaddr());
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        m.opts_mut()
            .insert(DhcpOption::ServerIdentifier(self.cfg.server_ip));
        m
    }

    fn reply(
        &self,
        req: &Message,
        info: &ClientInfo,
        kind: MessageType,
        ip: Ipv4Addr,
    ) -> (Message, Option<String>) {
        let mut m = self.base_reply(req, kind);
        m.set_yiaddr(ip).set_siaddr(self.cfg.server_ip);
        let o = m.opts_mut();
        o.insert(DhcpOption::AddressLeaseTime(self.cfg.lease_secs));
        o.insert(DhcpOption::SubnetMask(self.cfg.subnet.netmask()));
        o.insert(DhcpOption::BroadcastAddr(self.cfg.subnet.broadcast()));
        if let Some(r) = self.cfg.router {
            o.insert(DhcpOption::Router(vec![r]));
        }
        if !self.cfg.dns.is_empty() {
            o.insert(DhcpOption::DomainNameServer(self.cfg.dns.clone()));
        }
        if let Some(h) = self
            .cfg
            .static_leases
            .iter()
            .find(|l| l.mac.eq_ignore_ascii_case(&info.mac))
            .and_then(|l| l.hostname.clone())
        {
            o.insert(DhcpOption::Hostname(h));
        }
        if info.ipxe {
            // iPXE's "no-pxedhcp" setting (option 175, sub-option 176 = 1):
            // without it iPXE keeps collecting offers for ~3 s, waiting
            // for a ProxyDHCP server the lab does not have.
            o.insert(DhcpOption::Unknown(v4::UnknownOption::new(
                OptionCode::Unknown(175),
                vec![176, 1, 1],
            )));
        }
        let boot = info
            .firmware
            .and_then(|fw| self.cfg.boot.choose(fw, info.ipxe, &info.mac));
        if let Some(file) = &boot {
            o.insert(DhcpOption::TFTPServerName(
                self.cfg.server_ip.to_string().into_bytes(),
            ));
            o.insert(DhcpOption::BootfileName(file.clone().into_bytes()));
            // Also in the fixed `file` field: older PXE ROMs read only that.
            if file.len() < 128 {
                m.set_fname_str(file);
            }
        }
        (m, boot)
    }
}

fn boot_detail(what: &str, boot: &Option<String>) -> String {
    match boot {
        Some(b) => format!("{what} boot={b}"),
        None => what.to_string(),
    }
}

pub fn format_mac(b: &[u8]) -> String {
    b.iter()
        .take(6)
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    parts.try_into().ok()
}

/// A running server; stops when dropped or on `stop`.
pub struct DhcpServer {
    task: JoinHandle<()>,
}

impl DhcpServer {
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for DhcpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start the DHCP server inside namespace `netns`.
pub async fn start_dhcp(
    netns: &str,
    cfg: DhcpConfig,
    events: EventLog,
) -> Result<DhcpServer, DhcpError> {
    let interface = cfg.interface.clone();
    let bind_err = |source| DhcpError::Bind {
        netns: netns.to_string(),
        interface: interface.clone(),
        source,
    };
    let std_sock = crate::lab::netns::run_in(Some(netns), || {
        let s = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        s.set_reuse_address(true)?;
        s.set_broadcast(true)?;
        // Only this lab's segment: another segment (or lab) never hears us.
        s.bind_device(Some(cfg.interface.as_bytes()))?;
        s.bind(&SocketAddr::from(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 67)).into())?;
        s.set_nonblocking(true)?;
        Ok(std::net::UdpSocket::from(s))
    })
    .map_err(bind_err)?;
    let sock = tokio::net::UdpSocket::from_std(std_sock).map_err(bind_err)?;
    let mut responder = Responder::new(cfg)?;
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        loop {
            let Ok((n, _peer)) = sock.recv_from(&mut buf).await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let Ok(req) = Message::decode(&mut Decoder::new(&buf[..n])) else {
                continue;
            };
            let (reply, evs) = responder.handle(&req);
            for e in evs {
                events.emit(e);
            }
            if let Some(reply) = reply {
                let mut out = Vec::with_capacity(600);
                if reply.encode(&mut Encoder::new(&mut out)).is_ok() {
                    let dst = SocketAddrV4::new(Ipv4Addr::BROADCAST, 68);
                    if let Err(e) = sock.send_to(&out, dst).await {
                        tracing::warn!(error = %e, "DHCP reply not sent");
                    }
                }
            }
        }
    });
    Ok(DhcpServer { task })
}

/// Build a client request (tests and the baseline checks use it).
pub fn client_message(
    kind: MessageType,
    mac: [u8; 6],
    xid: u32,
    arch: Option<u16>,
    ipxe: bool,
) -> Message {
    let mut m = Message::default();
    m.set_opcode(Opcode::BootRequest)
        .set_xid(xid)
        .set_chaddr(&mac)
        .set_flags(v4::Flags::default().set_broadcast());
    m.opts_mut().insert(DhcpOption::MessageType(kind));
    if let Some(a) = arch {
        m.opts_mut()
            .insert(DhcpOption::ClientSystemArchitecture(a.into()));
    }
    if ipxe {
        m.opts_mut().insert(DhcpOption::UserClass(b"iPXE".to_vec()));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DhcpConfig {
        DhcpConfig {
            name: "t".into(),
            interface: "veth".into(),
            server_ip: Ipv4Addr::new(10, 9, 0, 1),
            subnet: "10.9.0.0/24".parse().unwrap(),
            router: None,
            dns: vec![],
            lease_secs: 600,
            static_leases: vec![StaticLease {
                mac: "52:54:00:00:00:01".into(),
                ip: Ipv4Addr::new(10, 9, 0, 50),
                hostname: Some("node1".into()),
            }],
            pool: Some((Ipv4Addr::new(10, 9, 0, 100), Ipv4Addr::new(10, 9, 0, 101))),
            boot: BootPolicy {
                bios: BootTarget {
                    pxe: Some("lpxelinux.0".into()),
                    ipxe: Some("http://10.9.0.1/bios/{mac}.ipxe".into()),
                },
                uefi: BootTarget {
                    pxe: None,
                    ipxe: Some("http://10.9.0.1/uefi.ipxe".into()),
                },
            },
        }
    }

    fn roundtrip(m: &Message) -> Message {
        let mut out = vec![];
        m.encode(&mut Encoder::new(&mut out)).unwrap();
        Message::decode(&mut Decoder::new(&out)).unwrap()
    }

    fn bootfile(m: &Message) -> Option<String> {
        match m.opts().get(OptionCode::BootfileName) {
            Some(DhcpOption::BootfileName(b)) => Some(String::from_utf8(b.clone()).unwrap()),
            _ => None,
        }
    }

    #[test]
    fn static_lease_and_boot_file_by_firmware() {
        let mut r = Responder::new(cfg()).unwrap();
        let mac = [0x52, 0x54, 0, 0, 0, 1];
        let (offer, ev) = r.handle(&roundtrip(&client_message(
            MessageType::Discover,
            mac,
            7,
            Some(0),
            false,
        )));
        let offer = roundtrip(&offer.unwrap());
        assert_eq!(offer.yiaddr(), Ipv4Addr::new(10, 9, 0, 50));
        assert_eq!(offer.siaddr(), Ipv4Addr::new(10, 9, 0, 1));
        assert_eq!(offer.xid(), 7);
        assert_eq!(bootfile(&offer).as_deref(), Some("lpxelinux.0"));
        assert_eq!(
            ev.iter().map(|e| e.kind).collect::<Vec<_>>(),
            vec![LabEventKind::DhcpDiscover, LabEventKind::DhcpOffer]
        );
        let (ack, _) = r.handle(&roundtrip(&client_message(
            MessageType::Request,
            mac,
            8,
            Some(0),
            true,
        )));
        let ack = roundtrip(&ack.unwrap());
        assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(
            bootfile(&ack).as_deref(),
            Some("http://10.9.0.1/bios/52-54-00-00-00-01.ipxe")
        );
        match ack.opts().get(OptionCode::Unknown(175)) {
            Some(DhcpOption::Unknown(u)) => assert_eq!(u.data(), &[176, 1, 1], "iPXE no-pxedhcp"),
            other => panic!("no option 175 for an iPXE client: {other:?}"),
        }
        assert!(
            offer.opts().get(OptionCode::Unknown(175)).is_none(),
            "175 only for iPXE"
        );
        let (ack, _) = r.handle(&client_message(MessageType::Request, mac, 9, Some(7), true));
        assert_eq!(
            bootfile(&ack.unwrap()).as_deref(),
            Some("http://10.9.0.1/uefi.ipxe")
        );
        // UEFI without iPXE: the policy has nothing, so no boot file.
        let (ack, _) = r.handle(&client_message(
            MessageType::Request,
            mac,
            9,
            Some(9),
            false,
        ));
        assert_eq!(bootfile(&ack.unwrap()), None);
    }

    #[test]
    fn pool_allocates_keeps_and_runs_out() {
        let mut r = Responder::new(cfg()).unwrap();
        let ip = |r: &mut Responder, last: u8| {
            r.handle(&client_message(
                MessageType::Discover,
                [2, 0, 0, 0, 0, last],
                1,
                None,
                false,
            ))
            .0
            .map(|m| m.yiaddr())
        };
        assert_eq!(ip(&mut r, 1), Some(Ipv4Addr::new(10, 9, 0, 100)));
        assert_eq!(ip(&mut r, 2), Some(Ipv4Addr::new(10, 9, 0, 101)));
        assert_eq!(ip(&mut r, 1), Some(Ipv4Addr::new(10, 9, 0, 100)));
        assert_eq!(ip(&mut r, 3), None, "pool of two is exhausted");
    }

    #[test]
    fn request_for_other_address_is_naked() {
        let mut r = Responder::new(cfg()).unwrap();
        let mut req = client_message(
            MessageType::Request,
            [0x52, 0x54, 0, 0, 0, 1],
            1,
            None,
            false,
        );
        req.opts_mut()
            .insert(DhcpOption::RequestedIpAddress(Ipv4Addr::new(10, 9, 0, 77)));
        let (reply, _) = r.handle(&req);
        assert_eq!(reply.unwrap().opts().msg_type(), Some(MessageType::Nak));
    }

    #[test]
    fn config_errors_name_the_field() {
        let mut c = cfg();
        c.static_leases[0].ip = Ipv4Addr::new(192, 168, 0, 1);
        let e = Responder::new(c).err().unwrap().to_string();
        assert!(e.contains("static_leases[0].ip"), "{e}");
    }
}
