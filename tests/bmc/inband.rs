//! The in-band endpoint with a fake QEMU on the unix socket: the VM
//! protocol handshake, requests, MAAS-style user set-up in-band then a LAN
//! session as that user, an in-band fault, VM power ops, and reconnects.

use std::time::Duration;

use maas_e2e::bmc::client::ClientSession;
use maas_e2e::bmc::config::{InbandEndpoint, PowerConfig};
use maas_e2e::bmc::inband::{self, Decoder, Frame};
use maas_e2e::bmc::{Fault, Where};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::common::*;

/// Stands in for QEMU's ipmi-bmc-extern.
struct FakeQemu {
    stream: UnixStream,
    seq: u8,
    raw: Vec<u8>,
}

impl FakeQemu {
    async fn connect(path: &std::path::Path) -> FakeQemu {
        let mut stream = UnixStream::connect(path).await.unwrap();
        // What QEMU sends on every connect: version 1, capabilities 0x3F.
        stream
            .write_all(&[0xFF, 0x01, 0xA1, 0x08, 0x3F, 0xA1])
            .await
            .unwrap();
        let mut q = FakeQemu {
            stream,
            seq: 0,
            raw: Vec::new(),
        };
        assert_eq!(
            q.next_control().await,
            vec![0xFF, 0x01],
            "BMC announces protocol version 1"
        );
        q
    }

    /// Read until one whole frame (message or control) arrives.
    async fn next_frame(&mut self) -> (bool, Vec<u8>) {
        loop {
            if let Some(end) = self.raw.iter().position(|b| *b == 0xA0 || *b == 0xA1) {
                let frame: Vec<u8> = self.raw.drain(..=end).collect();
                let is_msg = frame[end] == 0xA0;
                let mut out = Vec::new();
                let mut esc = false;
                for &b in &frame[..end] {
                    if b == 0xAA {
                        esc = true;
                        continue;
                    }
                    out.push(if std::mem::take(&mut esc) {
                        b & !0x10
                    } else {
                        b
                    });
                }
                return (is_msg, out);
            }
            let mut buf = [0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(4), self.stream.read(&mut buf))
                .await
                .expect("BMC answers within QEMU's 4 s")
                .unwrap();
            assert!(n > 0, "BMC closed the socket");
            self.raw.extend_from_slice(&buf[..n]);
        }
    }

    async fn next_control(&mut self) -> Vec<u8> {
        let (is_msg, f) = self.next_frame().await;
        assert!(!is_msg, "unsolicited message frame: {f:x?}");
        f
    }

    async fn request(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> (u8, Vec<u8>) {
        self.seq = self.seq.wrapping_add(1);
        self.stream
            .write_all(&inband::encode_request(self.seq, netfn, 0, cmd, data))
            .await
            .unwrap();
        let (is_msg, f) = self.next_frame().await;
        assert!(is_msg);
        let (seq, rnetfn, rcmd, cc, data) =
            inband::decode_response(&f).expect("valid response frame");
        assert_eq!((seq, rnetfn, rcmd), (self.seq, netfn | 1, cmd));
        (cc, data)
    }
}

fn bmc_with_socket(
    name: &str,
    dir: &std::path::Path,
    power: PowerConfig,
) -> maas_e2e::bmc::config::BmcConfig {
    let mut b = bmc(name);
    b.inband = Some(InbandEndpoint {
        socket: dir.join(format!("{name}.sock")),
    });
    b.power = power;
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inband_configures_user_that_lan_then_uses() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(vec![bmc_with_socket(
        "n1",
        dir.path(),
        PowerConfig::Memory { on: true },
    )])
    .await;
    let sock = dir.path().join("n1.sock");
    let mut q = FakeQemu::connect(&sock).await;
    let link = lab.fleet.vm_link("n1").unwrap();
    let (cc, id) = q.request(0x06, 0x01, &[]).await;
    assert_eq!(
        (cc, id[0], id[4]),
        (0, 0x20, 0x02),
        "Get Device ID, IPMI 2.0"
    );
    assert_eq!(link.capabilities(), 0x3F);
    // Channel discovery as FreeIPMI does it in-band.
    let (cc, info) = q.request(0x06, 0x42, &[0x01]).await;
    assert_eq!((cc, info[1]), (0, 0x04), "channel 1 is 802.3 LAN");
    let (cc, info) = q.request(0x06, 0x42, &[0x0E]).await;
    assert_eq!(
        (cc, info[0], info[1]),
        (0, 0x0F, 0x0C),
        "this channel is the system interface"
    );

    // MAAS's configure_ipmi_user retries: the first Set User Password fails.
    lab.fleet
        .set_fault(
            "n1",
            Fault::FailCommand {
                netfn: 0x06,
                cmd: 0x47,
                on: Where::Inband,
                times: 1,
                cc: 0xC0,
            },
        )
        .unwrap();
    let mut name = [0u8; 17];
    name[0] = 6;
    name[1..5].copy_from_slice(b"maas");
    assert_eq!(q.request(0x06, 0x45, &name).await.0, 0);
    let mut pw = vec![0x86, 0x02];
    let mut p20 = [0u8; 20];
    p20.copy_from_slice(b"Zq8fAe2xWm4pLr7tKc3v");
    pw.extend_from_slice(&p20);
    assert_eq!(q.request(0x06, 0x47, &pw).await.0, 0xC0, "injected failure");
    assert_eq!(q.request(0x06, 0x47, &pw).await.0, 0, "retry succeeds");
    assert_eq!(q.request(0x06, 0x47, &[0x06, 0x01]).await.0, 0, "enable");
    assert_eq!(
        q.request(0x06, 0x43, &[0x91, 0x06, 0x04, 0x00]).await.0,
        0,
        "LAN access, IPMI msgs, ADMIN"
    );
    let (cc, ip) = q.request(0x0C, 0x02, &[0x01, 3, 0, 0]).await;
    assert_eq!(
        (cc, &ip[1..]),
        (0, &[192, 0, 2, 10][..]),
        "Lan_Conf IP_Address is the lab address"
    );
    assert_eq!(q.request(0x2C, 0x00, &[0]).await.0, 0xC1, "unknown command");
    assert_eq!(q.request(0x06, 0x45, &[6]).await.0, 0xC7, "short request");

    // The same state over LAN: log in as the user made in-band. With the
    // LAN channel disabled in-band first, nothing answers on the LAN.
    let a = lab.fleet.lan_addr("n1").unwrap();
    assert_eq!(
        q.request(0x06, 0x40, &[0x01, 0x80, 0x00]).await.0,
        0,
        "volatile access mode: disabled"
    );
    assert!(
        ClientSession::open(a, "maas", "Zq8fAe2xWm4pLr7tKc3v", 17, 4)
            .await
            .is_err(),
        "LAN disabled"
    );
    assert_eq!(
        q.request(0x06, 0x40, &[0x01, 0x82, 0x00]).await.0,
        0,
        "volatile access mode: always available"
    );
    let mut s = ClientSession::open(a, "maas", "Zq8fAe2xWm4pLr7tKc3v", 17, 4)
        .await
        .unwrap();
    assert_eq!(s.request(0x00, 0x01, &[]).await.unwrap().cc, 0);
    if have("ipmipower", "freeipmi-tools") {
        let out = freeipmi(
            "ipmipower",
            a.port(),
            ("maas", "Zq8fAe2xWm4pLr7tKc3v"),
            &[
                "-W",
                "opensesspriv",
                "-l",
                "OPERATOR",
                "--driver-type",
                "LAN_2_0",
                "--stat",
            ],
        )
        .await;
        assert!(out.stdout.contains(": on"), "{out:?}");
    }
    let t = lab.transcript();
    assert!(t.contains("\"channel\":\"inband\""));
    assert!(
        !t.contains(&hex::encode(b"Zq8fAe2xWm4pLr7tKc3v")),
        "password redacted"
    );
    lab.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_power_ops_and_reconnect() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(vec![bmc_with_socket("n1", dir.path(), PowerConfig::Vm)]).await;
    let sock = dir.path().join("n1.sock");
    let link = lab.fleet.vm_link("n1").unwrap();
    assert!(
        !lab.fleet.power_state("n1").unwrap(),
        "no VM connected: off"
    );
    let mut q = FakeQemu::connect(&sock).await;
    let _ = q.request(0x06, 0x01, &[]).await; // the link is up once a request went through
    assert!(lab.fleet.power_state("n1").unwrap(), "VM connected: on");

    let a = lab.fleet.lan_addr("n1").unwrap();
    let mut s = ClientSession::open(a, ADMIN.0, ADMIN.1, 3, 4)
        .await
        .unwrap();
    assert_eq!(
        s.request(0x00, 0x02, &[3]).await.unwrap().cc,
        0,
        "hard reset"
    );
    assert_eq!(q.next_control().await, vec![0x04]);
    assert_eq!(s.request(0x00, 0x02, &[5]).await.unwrap().cc, 0, "soft off");
    assert_eq!(q.next_control().await, vec![0x09]);
    assert_eq!(
        s.request(0x00, 0x02, &[0]).await.unwrap().cc,
        0,
        "power off"
    );
    assert_eq!(q.next_control().await, vec![0x03]);

    // QEMU exits (power off) and a new one connects and reports a reset.
    drop(q);
    tokio::time::timeout(Duration::from_secs(2), async {
        while link.connected() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("disconnect noticed");
    assert_eq!(
        s.request(0x00, 0x02, &[1]).await.unwrap().cc,
        0xC0,
        "no power-on op in the VM protocol"
    );
    let mut q = FakeQemu::connect(&sock).await;
    q.stream.write_all(&[0x04, 0xA1]).await.unwrap();
    let (cc, _) = q.request(0x00, 0x01, &[]).await;
    assert_eq!(cc, 0);
    assert_eq!((link.connections(), link.resets()), (2, 1));
    lab.fleet.shutdown().await;
    assert!(!sock.exists(), "socket removed on shutdown");
}

#[test]
fn decoder_survives_garbage() {
    let mut rng_state = 0x1234_5678u32;
    let mut d = Decoder::default();
    let mut frames = Vec::new();
    for _ in 0..100_000 {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 17;
        rng_state ^= rng_state << 5;
        d.feed(&[(rng_state & 0xFF) as u8], &mut frames);
    }
    for f in frames {
        if let Frame::Request { data, .. } = f {
            assert!(data.len() <= 1024);
        }
    }
}
