//! What must be refused: wrong password, unknown user, suite 0 by default,
//! USER changing power, replayed datagrams, expired sessions, too many
//! sessions; and the fault switches as real clients see them.

use std::time::Duration;

use maas_e2e::bmc::client::{ClientError, ClientSession};
use maas_e2e::bmc::{Fault, Where};

use crate::common::*;

/// Send `n` ASF presence pings one after another (bytes written here from
/// DMTF ASF 2.0 section 3.2.4, not by the codec under test); which got a pong.
async fn asf_pongs(bmc: std::net::SocketAddr, n: u8) -> Vec<bool> {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut got = Vec::new();
    for tag in 0..n {
        // RMCP v1, seq 0xFF (no ack), class ASF; IANA 4542, Presence Ping, tag.
        let ping = [
            0x06, 0x00, 0xFF, 0x06, 0x00, 0x00, 0x11, 0xBE, 0x80, tag, 0x00, 0x00,
        ];
        sock.send_to(&ping, bmc).await.unwrap();
        let mut buf = [0u8; 64];
        let pong = tokio::time::timeout(Duration::from_millis(700), sock.recv(&mut buf)).await;
        got.push(matches!(pong, Ok(Ok(len)) if len >= 12 && buf[8] == 0x40 && buf[9] == tag));
    }
    got
}

fn addr(lab: &Lab) -> std::net::SocketAddr {
    lab.fleet.lan_addr("n1").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_refused_at_rakp() {
    let lab = Lab::start(vec![bmc("n1")]).await;
    let a = addr(&lab);
    let e = ClientSession::open(a, ADMIN.0, "not-the-password", 17, 4)
        .await
        .err()
        .expect("refused");
    assert!(matches!(e, ClientError::PasswordInvalid), "{e}");
    let e = ClientSession::open(a, "nobody", "x", 3, 4)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(
            e,
            ClientError::Status {
                stage: "RAKP2",
                status: 0x0D
            }
        ),
        "{e}"
    );
    assert_eq!(lab.fleet.bmc("n1").unwrap().active_sessions(), 0);
    if have("ipmipower", "freeipmi-tools") {
        let port = a.port();
        let out = freeipmi(
            "ipmipower",
            port,
            (ADMIN.0, "wrong"),
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
        assert!(out.stdout.contains("password invalid"), "{out:?}");
        let out = freeipmi(
            "ipmipower",
            port,
            ("nobody", "x"),
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
        assert!(out.stdout.contains("username invalid"), "{out:?}");
        let out = freeipmi(
            "ipmipower",
            port,
            (ADMIN.0, "wrong"),
            &["--driver-type", "LAN", "--session-timeout=2000", "--stat"],
        )
        .await;
        // A bad Activate Session authcode is dropped unanswered (IPMI 2.0
        // §6.12.7); ipmipower names that timeout for what it is.
        assert!(
            out.stdout.contains("password verification timeout"),
            "1.5 wrong password: {out:?}"
        );
    }
    if have("ipmitool", "ipmitool") {
        let out = ipmitool(
            a.port(),
            "lanplus",
            Some(17),
            (ADMIN.0, "wrong"),
            &["power", "status"],
        )
        .await;
        assert!(!out.status.success(), "{out:?}");
    }
    assert!(lab.transcript().contains("rakp_refused"));
    lab.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suite_zero_only_when_enabled() {
    let mut b = bmc("n1");
    b.name = "n1".into();
    let mut open = bmc("n2");
    open.allow_cipher_suite_zero = true;
    let lab = Lab::start(vec![b, open]).await;
    let e = ClientSession::open(addr(&lab), ADMIN.0, ADMIN.1, 0, 4)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(
            e,
            ClientError::Status {
                stage: "open session",
                status: 0x11
            }
        ),
        "{e}"
    );
    let mut s = ClientSession::open(lab.fleet.lan_addr("n2").unwrap(), ADMIN.0, ADMIN.1, 0, 4)
        .await
        .unwrap();
    assert_eq!(s.request(0x00, 0x01, &[]).await.unwrap().cc, 0);
    if have("ipmitool", "ipmitool") {
        let out = ipmitool(
            addr(&lab).port(),
            "lanplus",
            Some(0),
            ADMIN,
            &["power", "status"],
        )
        .await;
        assert!(!out.status.success(), "{out:?}");
    }
    lab.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_privilege_reads_but_cannot_change_power() {
    let lab = Lab::start(vec![bmc("n1")]).await;
    let mut s = ClientSession::open(addr(&lab), USER.0, USER.1, 17, 2)
        .await
        .unwrap();
    let status = s.request(0x00, 0x01, &[]).await.unwrap();
    assert_eq!((status.cc, status.data[0] & 1), (0, 0));
    let r = s.request(0x00, 0x02, &[1]).await.unwrap();
    assert_eq!(r.cc, 0xD4, "insufficient privilege");
    assert!(!lab.fleet.power_state("n1").unwrap());
    // A USER cannot raise the session above its limit either.
    assert_eq!(s.request(0x06, 0x3B, &[4]).await.unwrap().cc, 0x81);
    if have("ipmitool", "ipmitool") {
        let out = ipmitool(
            addr(&lab).port(),
            "lanplus",
            Some(3),
            USER,
            &["-L", "USER", "power", "status"],
        )
        .await;
        assert!(out.status.success(), "{out:?}");
        let out = ipmitool(
            addr(&lab).port(),
            "lanplus",
            Some(3),
            USER,
            &["-L", "USER", "power", "on"],
        )
        .await;
        assert!(
            !out.status.success() || out.stderr.contains("Insufficient privilege"),
            "{out:?}"
        );
        assert!(!lab.fleet.power_state("n1").unwrap());
    }
    if have("ipmipower", "freeipmi-tools") {
        let out = freeipmi(
            "ipmipower",
            addr(&lab).port(),
            USER,
            &[
                "-W",
                "opensesspriv",
                "-l",
                "OPERATOR",
                "--driver-type",
                "LAN_2_0",
                "--on",
            ],
        )
        .await;
        assert!(
            out.stdout.contains("privilege level cannot be obtained"),
            "{out:?}"
        );
    }
    lab.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_datagram_is_dropped() {
    let lab = Lab::start(vec![bmc("n1")]).await;
    let mut s = ClientSession::open(addr(&lab), OPERATOR.0, OPERATOR.1, 17, 3)
        .await
        .unwrap();
    assert_eq!(s.request(0x00, 0x02, &[1]).await.unwrap().cc, 0);
    assert!(lab.fleet.power_state("n1").unwrap());
    let replay = s.last_sent.clone();
    // Power off, then replay the earlier "power on": it must do nothing.
    assert_eq!(s.request(0x00, 0x02, &[0]).await.unwrap().cc, 0);
    s.wait = Duration::from_millis(300);
    assert!(
        s.send_raw(&replay).await.unwrap().is_none(),
        "replay answered"
    );
    assert!(
        !lab.fleet.power_state("n1").unwrap(),
        "replay powered the machine on"
    );
    s.wait = Duration::from_secs(2);
    assert_eq!(
        s.request(0x00, 0x01, &[]).await.unwrap().cc,
        0,
        "session still usable"
    );
    s.close().await.unwrap();
    lab.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_past_timeout_is_gone_and_limit_holds() {
    let mut b = bmc("n1");
    b.session_timeout = Some("1s".into());
    b.max_sessions = Some(2);
    let lab = Lab::start(vec![b]).await;
    let mut s1 = ClientSession::open(addr(&lab), ADMIN.0, ADMIN.1, 3, 4)
        .await
        .unwrap();
    let mut s2 = ClientSession::open(addr(&lab), ADMIN.0, ADMIN.1, 17, 4)
        .await
        .unwrap();
    let e = ClientSession::open(addr(&lab), ADMIN.0, ADMIN.1, 3, 4)
        .await
        .err()
        .expect("third session refused");
    assert!(
        matches!(
            e,
            ClientError::Status {
                stage: "open session",
                status: 0x01
            }
        ),
        "{e}"
    );
    assert_eq!(s1.request(0x00, 0x01, &[]).await.unwrap().cc, 0);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    s1.wait = Duration::from_millis(300);
    let d = s1.build(0x00, 0x01, &[]);
    assert!(
        s1.send_raw(&d).await.unwrap().is_none(),
        "expired session answered"
    );
    assert!(matches!(
        s2.request(0x00, 0x01, &[]).await,
        Err(ClientError::Timeout(_))
    ));
    assert_eq!(lab.fleet.bmc("n1").unwrap().active_sessions(), 0);
    let mut s3 = ClientSession::open(addr(&lab), ADMIN.0, ADMIN.1, 3, 4)
        .await
        .unwrap();
    assert_eq!(s3.request(0x00, 0x01, &[]).await.unwrap().cc, 0);
    lab.fleet.shutdown().await;
}

/// Fault switches as ipmipower (MAAS's power driver) sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_switches_seen_by_ipmipower() {
    if !have("ipmipower", "freeipmi-tools") {
        return;
    }
    let lab = Lab::start(vec![bmc("n1")]).await;
    let port = addr(&lab).port();
    let power = |extra: &'static [&'static str]| {
        let mut a = vec![
            "-W",
            "opensesspriv",
            "-l",
            "OPERATOR",
            "--driver-type",
            "LAN_2_0",
        ];
        a.extend_from_slice(extra);
        async move { freeipmi("ipmipower", port, OPERATOR, &a).await }
    };
    lab.fleet
        .set_fault("n1", Fault::RefuseCipherSuite(17))
        .unwrap();
    let out = power(&["-I", "17", "--stat"]).await;
    assert!(
        out.stdout.contains("cipher suite id unavailable"),
        "{out:?}\n{}",
        lab.transcript()
    );
    assert!(power(&["-I", "3", "--stat"]).await.stdout.contains(": off"));
    lab.fleet.clear_faults("n1").unwrap();

    // "BMC error": a non-zero completion code on a pre-session packet.
    lab.fleet
        .set_fault(
            "n1",
            Fault::FailCommand {
                netfn: 0x06,
                cmd: 0x38,
                on: Where::Lan,
                times: 1,
                cc: 0xFF,
            },
        )
        .unwrap();
    let out = power(&["--stat", "--retransmission-timeout=200"]).await;
    assert!(out.stdout.contains("BMC error"), "{out:?}");
    assert!(
        power(&["--stat"]).await.stdout.contains(": off"),
        "only the first call fails"
    );

    lab.fleet
        .set_fault("n1", Fault::AckPowerOnWithoutDoing)
        .unwrap();
    assert!(power(&["--on"]).await.stdout.contains(": ok"));
    assert!(
        !lab.fleet.power_state("n1").unwrap(),
        "acknowledged, not done"
    );
    lab.fleet.clear_faults("n1").unwrap();

    // Latency: longer than the client waits, it times out (without the
    // switch the answer is prompt and this fails); a short one is only slow.
    lab.fleet
        .set_fault("n1", Fault::Latency(Duration::from_secs(4)))
        .unwrap();
    let out = power(&["--stat", "--session-timeout=1500"]).await;
    assert!(
        out.stdout.contains("connection timeout"),
        "answers held back 4 s: {out:?}"
    );
    lab.fleet
        .set_fault("n1", Fault::Latency(Duration::from_millis(150)))
        .unwrap();
    assert!(power(&["--on"]).await.stdout.contains(": ok"));
    assert!(lab.fleet.power_state("n1").unwrap());
    lab.fleet.clear_faults("n1").unwrap();

    // Every third datagram is dropped: six ASF pings get four pongs (the
    // third and sixth go unanswered), and ipmipower still gets through.
    lab.fleet.set_fault("n1", Fault::DropEveryNth(3)).unwrap();
    assert_eq!(
        asf_pongs(addr(&lab), 6).await,
        [true, true, false, true, true, false]
    );
    let out = power(&["--stat"]).await;
    assert!(
        out.stdout.contains(": on"),
        "retransmission gets through: {out:?}"
    );
    lab.fleet.clear_faults("n1").unwrap();
    assert_eq!(asf_pongs(addr(&lab), 3).await, [true; 3], "switch cleared");

    lab.fleet.set_fault("n1", Fault::NoAnswer).unwrap();
    let out = power(&["--stat", "--session-timeout=1500"]).await;
    assert!(out.stdout.contains("connection timeout"), "{out:?}");
    lab.fleet.clear_faults("n1").unwrap();
    assert!(power(&["--stat"]).await.stdout.contains(": on"));
    assert!(lab.transcript().contains("fault_set"));
    lab.fleet.shutdown().await;
}

/// ipmi-rs 0.6 (a Rust client: ASF ping, RMCP+ suite 3) as an extra peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmi_rs_client_reads_device_id() {
    let lab = Lab::start(vec![bmc("n1")]).await;
    let a = addr(&lab);
    let id = tokio::task::spawn_blocking(move || {
        let mut rmcp = ipmi_rs::rmcp::Rmcp::new(a, Duration::from_secs(2)).unwrap();
        rmcp.activate(true, Some(ADMIN.0), Some(ADMIN.1.as_bytes()))
            .map_err(|e| format!("{e:?}"))?;
        let mut ipmi = ipmi_rs::Ipmi::new(rmcp);
        ipmi.send_recv(ipmi_rs::app::GetDeviceId)
            .map(|d| d.device_id)
            .map_err(|e| format!("{e:?}"))
    })
    .await
    .unwrap();
    assert_eq!(id, Ok(0x20));
    lab.fleet.shutdown().await;
}
