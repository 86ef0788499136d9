//! Session edge cases with real clients where a client can make them:
//! K_G (ipmitool -k), half-open sessions evicted so a real login still gets
//! in, and closing another session (ipmitool raw Close Session, App 0x3C)
//! as an administrator, refused to an operator. Sequence-number wrap is a
//! unit test of the replay window (src/bmc/session.rs): no client reaches
//! 2^32 requests.

use maas_e2e::bmc::client::{ClientError, ClientSession};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kg_is_required_when_the_bmc_has_one() {
    if !have("ipmitool", "ipmitool") {
        return;
    }
    let mut b = bmc("n1");
    b.kg = Some("kg-secret-0123".into());
    let lab = Lab::start(vec![b]).await;
    let port = lab.port("n1");
    let with = ipmitool(
        port,
        "lanplus",
        Some(3),
        ADMIN,
        &["-k", "kg-secret-0123", "power", "status"],
    )
    .await;
    assert!(
        with.status.success() && with.stdout.contains("Chassis Power is off"),
        "{with:?}"
    );
    let without = ipmitool(port, "lanplus", Some(3), ADMIN, &["power", "status"]).await;
    assert!(!without.status.success(), "no K_G: {without:?}");
    let wrong = ipmitool(
        port,
        "lanplus",
        Some(3),
        ADMIN,
        &["-k", "not-the-kg", "power", "status"],
    )
    .await;
    assert!(!wrong.status.success(), "wrong K_G: {wrong:?}");
    assert!(
        !lab.transcript().contains("kg-secret-0123"),
        "K_G never in the transcript"
    );
    lab.fleet.shutdown().await;
}

/// An RMCP+ Open Session Request for cipher suite 3, bytes written here
/// from IPMI 2.0 sections 13.6 and 13.17 (not by the codec under test).
fn open_session_request(console_id: u32) -> Vec<u8> {
    let mut p = vec![0x00, 0x00, 0x00, 0x00]; // tag, max privilege, reserved
    p.extend_from_slice(&console_id.to_le_bytes());
    p.extend_from_slice(&[0x00, 0, 0, 0x08, 0x01, 0, 0, 0]); // RAKP-HMAC-SHA1
    p.extend_from_slice(&[0x01, 0, 0, 0x08, 0x01, 0, 0, 0]); // HMAC-SHA1-96
    p.extend_from_slice(&[0x02, 0, 0, 0x08, 0x01, 0, 0, 0]); // AES-CBC-128
    let mut d = vec![0x06, 0x00, 0xFF, 0x07, 0x06, 0x10, 0, 0, 0, 0, 0, 0, 0, 0];
    d.extend_from_slice(&(p.len() as u16).to_le_bytes());
    d.extend_from_slice(&p);
    d
}

/// Sessions left half-open (Open Session answered, no RAKP) fill the
/// table; a real client must still log in, evicting the oldest of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_sessions_never_lock_a_real_client_out() {
    if !have("ipmitool", "ipmitool") {
        return;
    }
    let mut b = bmc("n1");
    b.max_sessions = Some(2);
    let lab = Lab::start(vec![b]).await;
    let port = lab.port("n1");
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for console_id in [0x1111_0001u32, 0x1111_0002, 0x1111_0003] {
        sock.send_to(&open_session_request(console_id), ("127.0.0.1", port))
            .await
            .unwrap();
        let mut buf = [0u8; 128];
        let n = tokio::time::timeout(std::time::Duration::from_secs(2), sock.recv(&mut buf))
            .await
            .expect("Open Session Response")
            .unwrap();
        // Payload type 0x11, then tag and status code 0 (no error).
        assert!(n > 18 && buf[5] == 0x11, "{:x?}", &buf[..n]);
        assert_eq!(
            buf[17],
            0,
            "status of half-open {console_id:x}: {:x?}",
            &buf[..n]
        );
    }
    let out = ipmitool(port, "lanplus", Some(17), ADMIN, &["power", "status"]).await;
    assert!(
        out.status.success() && out.stdout.contains("Chassis Power is off"),
        "a real login with the table full of half-open sessions: {out:?}"
    );
    lab.fleet.shutdown().await;
}

/// Close Session (App 0x3C) naming another session: an administrator may,
/// an operator may not, an unknown id is 0x87.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_closes_another_session_an_operator_cannot() {
    if !have("ipmitool", "ipmitool") {
        return;
    }
    let lab = Lab::start(vec![bmc("n1")]).await;
    let port = lab.port("n1");
    let addr = lab.fleet.lan_addr("n1").unwrap();
    let mut victim = ClientSession::open(addr, OPERATOR.0, OPERATOR.1, 3, 3)
        .await
        .unwrap();
    assert_eq!(victim.request(0x00, 0x01, &[]).await.unwrap().cc, 0);
    let id = victim
        .bmc_session_id
        .to_le_bytes()
        .map(|b| format!("0x{b:02x}"));
    let close = |who: (&'static str, &'static str), ids: [String; 4]| async move {
        let mut args = vec!["raw", "0x06", "0x3c"];
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        args.extend(ids.iter().copied());
        let args: Vec<&str> = args;
        ipmitool(port, "lanplus", Some(17), who, &args).await
    };

    // An operator (ipmitool's session at OPERATOR) may not close it.
    let out = ipmitool(
        port,
        "lanplus",
        Some(17),
        OPERATOR,
        &[
            "-L", "OPERATOR", "raw", "0x06", "0x3c", &id[0], &id[1], &id[2], &id[3],
        ],
    )
    .await;
    assert!(!out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains("rsp=0xd4"),
        "insufficient privilege: {out:?}"
    );
    assert_eq!(
        victim.request(0x00, 0x01, &[]).await.unwrap().cc,
        0,
        "the session still works"
    );

    // An unknown session id: 0x87.
    let out = close(ADMIN, ["0x01", "0x02", "0x03", "0x04"].map(String::from)).await;
    assert!(out.stderr.contains("rsp=0x87"), "{out:?}");

    // An administrator closes it: the victim's next request goes unanswered.
    let out = close(ADMIN, id.clone()).await;
    assert!(out.status.success(), "{out:?}");
    victim.wait = std::time::Duration::from_millis(500);
    assert!(
        matches!(
            victim.request(0x00, 0x01, &[]).await,
            Err(ClientError::Timeout(_))
        ),
        "closed by the administrator"
    );
    lab.fleet.shutdown().await;
}
