//! A tiny IPv6 router advertisement sender for the lab segment.
//!
//! iPXE configures IPv6 alongside DHCPv4 and waits (about 13 s with
//! Debian's build) for a router advertisement nobody sends. One RA with the
//! managed and other-config flags clear ends that wait: iPXE's IPv6
//! configurator finishes at once. Router lifetime is 0 (we are not a default
//! router) and no prefix is announced, so no guest gets a global address.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use thiserror::Error;
use tokio::task::JoinHandle;

use crate::lab::events::{EventLog, LabEvent, LabEventKind};

const ICMPV6_RS: u8 = 133;
const ICMPV6_RA: u8 = 134;

#[derive(Debug, Clone)]
pub struct RaConfig {
    pub name: String,
    /// The lab veth inside the netns.
    pub interface: String,
    /// Unsolicited RA period; solicitations are answered at once.
    pub interval: Duration,
}

#[derive(Debug, Error)]
pub enum RaError {
    #[error("router advertisement socket on {interface} in netns {netns}: {source}")]
    Socket {
        netns: String,
        interface: String,
        #[source]
        source: std::io::Error,
    },
}

pub struct RaSender {
    task: JoinHandle<()>,
}

impl RaSender {
    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for RaSender {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The RA message body (the kernel fills in the checksum).
pub fn router_advertisement() -> Vec<u8> {
    vec![
        ICMPV6_RA, 0, 0, 0,  // type, code, checksum
        64, // current hop limit
        0,  // flags: M=0 O=0 -> no DHCPv6, configuration done
        0, 0, // router lifetime 0: not a default router
        0, 0, 0, 0, // reachable time: unspecified
        0, 0, 0, 0, // retrans timer: unspecified
    ]
}

/// Start sending RAs on `cfg.interface` inside namespace `netns`.
pub async fn start_ra(netns: &str, cfg: RaConfig, events: EventLog) -> Result<RaSender, RaError> {
    let err = |source| RaError::Socket {
        netns: netns.to_string(),
        interface: cfg.interface.clone(),
        source,
    };
    let iface = cfg.interface.clone();
    let (sock, ifindex) = crate::lab::netns::run_in(Some(netns), move || {
        let ifindex =
            nix::net::if_::if_nametoindex(iface.as_str()).map_err(std::io::Error::from)?;
        let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        s.bind_device(Some(iface.as_bytes()))?;
        // RFC 4861: hop limit 255, or receivers drop the RA.
        s.set_multicast_hops_v6(255)?;
        s.set_unicast_hops_v6(255)?;
        s.set_multicast_if_v6(ifindex)?;
        s.set_multicast_loop_v6(false)?;
        s.join_multicast_v6(&"ff02::2".parse().unwrap(), ifindex)?;
        s.set_nonblocking(true)?;
        Ok((s, ifindex))
    })
    .map_err(err)?;
    // A raw ICMPv6 socket behaves as a datagram socket: tokio's UdpSocket
    // drives it (recv/send_to) without extra unsafe code.
    let sock = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(sock)).map_err(err)?;
    let all_nodes = SocketAddrV6::new("ff02::1".parse::<Ipv6Addr>().unwrap(), 0, 0, ifindex);
    let ra = router_advertisement();
    let name = cfg.name.clone();
    let task = tokio::spawn(async move {
        let send = |s: &tokio::net::UdpSocket| {
            let _ = s.try_send_to(&ra, all_nodes.into());
        };
        send(&sock);
        let mut tick = tokio::time::interval(cfg.interval);
        let mut buf = [0u8; 1500];
        loop {
            tokio::select! {
                _ = tick.tick() => send(&sock),
                got = sock.recv_from(&mut buf) => {
                    if let Ok((n, _)) = got
                        && n > 0
                        && buf[0] == ICMPV6_RS
                    {
                        send(&sock);
                        events.emit(LabEvent::new(LabEventKind::RouterAdvert, &name).detail("answered a router solicitation"));
                    }
                }
            }
        }
    });
    Ok(RaSender { task })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ra_has_no_flags_and_zero_lifetime() {
        let ra = super::router_advertisement();
        assert_eq!(ra[0], 134);
        assert_eq!(ra[5], 0, "M and O flags clear");
        assert_eq!(&ra[6..8], &[0, 0], "router lifetime 0");
    }
}
