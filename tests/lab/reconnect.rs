//! A machine that PXE-boots again within a minute of its last boot
//! (enlistment, then commissioning) opens its HTTP connection the way
//! pxelinux's lwIP does: from port 49153 with the same initial sequence as
//! the last boot. The lab must answer that SYN with a new connection, not
//! with the old connection's ACK from a TIME_WAIT socket (the guest would
//! reset and try again 3 s later, for every file). The client here is a raw
//! socket in its own namespace on the lab bridge, so the test chooses the
//! port and the sequence number as lwIP does.

use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use maas_e2e::cmd::Cmd;
use maas_e2e::lab::net::{Lab, NetnsTarget};
use maas_e2e::lab::netns;
use socket2::{Domain, Protocol, Socket, Type};

use super::support::{BootFlow, TestLab, new_run_id};

/// pxelinux's first local port (lwIP's TCP_LOCAL_PORT_RANGE_START).
const LWIP_PORT: u16 = 49153;

const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;

/// One TCP segment seen by the raw socket.
#[derive(Debug, Clone, Copy)]
struct Segment {
    src: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
    ack: u32,
    flags: u8,
}

fn parse(packet: &[u8]) -> Option<Segment> {
    let ihl = usize::from(packet.first()? & 0x0f) * 4;
    let tcp = packet.get(ihl..ihl + 20)?;
    let be16 = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some(Segment {
        src: Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        src_port: be16(&tcp[0..2]),
        dst_port: be16(&tcp[2..4]),
        ack: be32(&tcp[8..12]),
        flags: tcp[13],
    })
}

/// A SYN as lwIP sends it (MSS option), checksummed over the pseudo header.
fn syn(src: Ipv4Addr, dst: Ipv4Addr, src_port: u16, dst_port: u16, seq: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&src_port.to_be_bytes());
    h.extend_from_slice(&dst_port.to_be_bytes());
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes());
    h.push(6 << 4); // data offset: 6 words (the MSS option)
    h.push(SYN);
    h.extend_from_slice(&5840u16.to_be_bytes()); // window
    h.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    h.extend_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for pair in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&[0, 6]);
    add(&(h.len() as u16).to_be_bytes());
    add(&h);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    h[16..18].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    h
}

/// The next segment from `server` to our port, within `wait`.
fn next_from(raw: &Socket, server: SocketAddrV4, wait: Duration) -> Option<Segment> {
    let deadline = Instant::now() + wait;
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        raw.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let Ok(n) = raw.recv(&mut buf) else { continue };
        // SAFETY: recv initialised the first n bytes.
        let bytes: Vec<u8> = buf[..n]
            .iter()
            .map(|b| unsafe { b.assume_init() })
            .collect();
        if let Some(s) = parse(&bytes)
            && s.src == *server.ip()
            && s.src_port == server.port()
            && s.dst_port == LWIP_PORT
        {
            return Some(s);
        }
    }
    None
}

/// What the server answers a second SYN from the same port and sequence
/// as the first connection, which the server closed first.
/// Also returns the sequence number both SYNs carried.
fn second_syn_answer(client_ns: &str, client: Ipv4Addr, server: SocketAddrV4) -> (Segment, u32) {
    let raw = netns::run_in(Some(client_ns), || {
        Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP))
    })
    .expect("raw socket in the client namespace");
    let tcp = netns::run_in(Some(client_ns), || {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        s.bind(&SocketAddr::from((client, LWIP_PORT)).into())?;
        Ok(s)
    })
    .expect("TCP socket on port 49153 in the client namespace");

    // The first boot's download: HTTP/1.0, as pxelinux asks.
    tcp.connect_timeout(&SocketAddr::V4(server).into(), Duration::from_secs(5))
        .expect("first connection");
    let mut stream: std::net::TcpStream = tcp.into();
    stream
        .write_all(b"GET /boot.ipxe HTTP/1.0\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .expect("the server closes the HTTP/1.0 connection first");
    assert!(
        reply.starts_with(b"HTTP/1."),
        "no HTTP answer: {:?}",
        String::from_utf8_lossy(&reply)
    );
    drop(stream);

    let syn_ack = next_from(&raw, server, Duration::from_secs(1))
        .filter(|s| s.flags & (SYN | ACK) == SYN | ACK)
        .expect("the raw socket saw the first connection's SYN-ACK");
    let isn = syn_ack.ack.wrapping_sub(1);
    // Let both ends finish closing, then drop what the raw socket queued.
    std::thread::sleep(Duration::from_millis(300));
    while next_from(&raw, server, Duration::from_millis(50)).is_some() {}

    // The second boot: same port, same initial sequence (lwIP starts over).
    let packet = syn(client, *server.ip(), LWIP_PORT, server.port(), isn);
    raw.send_to(
        &packet,
        &SocketAddr::V4(SocketAddrV4::new(*server.ip(), 0)).into(),
    )
    .expect("send the second SYN");
    let answer = next_from(&raw, server, Duration::from_secs(2))
        .expect("the lab answered the second SYN within 2 s");
    (answer, isn)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_machine_that_boots_again_within_a_minute_gets_its_http_connection_at_once() {
    if !super::net_prereqs() {
        return;
    }
    let run_id = new_run_id();
    let lab = TestLab::with_servers(&run_id, BootFlow::IpxeScript, false, &[]).await;
    let client = lab.spec.segments[0].subnet.host(77);
    let client_ns = format!("{run_id}-cr");
    Cmd::new("ip")
        .args(["netns", "add", &client_ns])
        .run()
        .await
        .unwrap();
    Lab::join_bridge(
        lab.bridge(),
        &format!("{run_id}-hr"),
        &format!("{run_id}-lr"),
        &NetnsTarget::Named(client_ns.clone()),
        &[format!("{client}/24")],
    )
    .await
    .expect("client on the lab bridge");
    let server = SocketAddrV4::new(lab.server_ip, 80);
    let ns = client_ns.clone();
    let (answer, isn) = tokio::task::spawn_blocking(move || second_syn_answer(&ns, client, server))
        .await
        .unwrap();
    Cmd::new("ip")
        .args(["netns", "del", &client_ns])
        .run()
        .await
        .unwrap();
    assert!(
        answer.flags & (SYN | ACK) == SYN | ACK && answer.flags & RST == 0,
        "the second SYN from port {LWIP_PORT} got {answer:?} (flags {:#04x}), not a SYN-ACK: \
         the old connection's TIME_WAIT answered, so a guest would reset and wait 3 s",
        answer.flags
    );
    assert_eq!(
        answer.ack,
        isn.wrapping_add(1),
        "the SYN-ACK acknowledges the second SYN"
    );
}
