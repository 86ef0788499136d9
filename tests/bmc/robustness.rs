//! A fixed-seed barrage of random and mutated datagrams at a running BMC,
//! through its UDP socket and straight into its datagram handler; then real
//! clients must still get correct answers.

use std::net::SocketAddr;
use std::time::Instant;

use maas_e2e::bmc::client::ClientSession;
use maas_e2e::bmc::codec::lan_msg::LanRequest;
use maas_e2e::bmc::codec::setup::{OpenSessionRequest, Rakp1};
use maas_e2e::bmc::codec::{rmcp, rmcpp, v15};
use rand::{RngExt, SeedableRng};

use crate::common::*;

/// Valid datagrams of every kind the BMC parses: the seeds for mutation.
fn seeds(in_session: Vec<u8>, bmc_session_id: u32) -> Vec<Vec<u8>> {
    let req = |netfn, cmd, data: &[u8]| {
        LanRequest {
            rs_addr: 0x20,
            netfn,
            rs_lun: 0,
            rq_addr: 0x81,
            rq_seq: 1,
            rq_lun: 0,
            cmd,
            data: data.to_vec(),
        }
        .encode()
    };
    let mut name = [0u8; 17];
    name[0] = 2;
    name[1..6].copy_from_slice(b"admin");
    let open = OpenSessionRequest {
        tag: 1,
        privilege: 4,
        console_session_id: 0x1234_5678,
        auth: 3,
        integ: 4,
        conf: 1,
    };
    let rakp1 = Rakp1 {
        tag: 2,
        bmc_session_id,
        console_random: [7; 16],
        role: 0x14,
        username: b"admin".to_vec(),
    };
    vec![
        rmcp::ping(3),
        v15::encode(0, 0, 0, None, &req(6, 0x38, &[0x8E, 4])),
        v15::encode(0, 0, 0, None, &req(6, 0x39, &name)),
        v15::encode(
            2,
            0,
            0x1111,
            Some([1; 16]),
            &req(
                6,
                0x3A,
                &[
                    2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                ],
            ),
        ),
        rmcpp::encode(0, 0, 0, &req(6, 0x54, &[0x0E, 0, 0x80]), None, [0; 16]),
        rmcpp::encode(0x10, 0, 0, &open.encode(), None, [0; 16]),
        rmcpp::encode(0x12, 0, 0, &rakp1.encode(), None, [0; 16]),
        rmcpp::encode(0x14, 0, 0, &[3, 0, 0, 0, 1, 2, 3, 4, 9, 9], None, [0; 16]),
        in_session,
    ]
}

fn mutate(rng: &mut rand::rngs::StdRng, seed: &[u8]) -> Vec<u8> {
    let mut d = seed.to_vec();
    match rng.random_range(0..6u8) {
        0 => {
            let n = rng.random_range(0..300usize);
            d = (0..n).map(|_| rng.random::<u8>()).collect();
        }
        1 => d.truncate(rng.random_range(0..=d.len())),
        2 => {
            for _ in 0..rng.random_range(1..8) {
                let extra: u8 = rng.random();
                d.push(extra);
            }
        }
        _ => {
            for _ in 0..rng.random_range(1..6) {
                if d.is_empty() {
                    break;
                }
                let i = rng.random_range(0..d.len());
                d[i] = if rng.random::<bool>() {
                    d[i] ^ (1 << rng.random_range(0..8))
                } else {
                    rng.random()
                };
            }
        }
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_datagrams_do_not_break_the_bmc() {
    let lab = Lab::start(vec![bmc("n1"), bmc("n2")]).await;
    let a = lab.fleet.lan_addr("n1").unwrap();
    let mut live = ClientSession::open(a, ADMIN.0, ADMIN.1, 17, 4)
        .await
        .unwrap();
    let in_session = live.build(0x00, 0x01, &[]);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x00C0_FFEE);
    let bmc = lab.fleet.bmc("n1").unwrap().clone();
    let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();

    // 1. Straight into the handler: 200,000 datagrams, every one checked
    //    not to panic (a panic fails the test here).
    let pending = ClientSession::open(a, ADMIN.0, ADMIN.1, 3, 4)
        .await
        .unwrap();
    let seed_set = seeds(in_session.clone(), pending.bmc_session_id);
    let mut answered = 0usize;
    for _ in 0..200_000 {
        let seed = &seed_set[rng.random_range(0..seed_set.len())];
        let d = mutate(&mut rng, seed);
        answered += bmc.handle_lan(peer, &d, Instant::now()).is_some() as usize;
    }
    assert!(
        answered > 0,
        "some mutated datagrams are still valid requests"
    );

    // 2. Through the socket of the running BMC: 20,000 datagrams.
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for i in 0..20_000 {
        let seed = &seed_set[rng.random_range(0..seed_set.len())];
        let d = mutate(&mut rng, seed);
        let _ = sock.send_to(&d, a).await;
        if i % 256 == 0 {
            // Let the BMC keep up; loopback drops what overflows its buffer.
            tokio::task::yield_now().await;
            let mut buf = [0u8; 2048];
            while let Ok(Ok(_)) = tokio::time::timeout(
                std::time::Duration::from_millis(1),
                sock.recv_from(&mut buf),
            )
            .await
            {}
        }
    }

    // 3. Still serving, correctly: the established session, a new session,
    //    a real client, and the other BMC of the same process.
    assert_eq!(live.request(0x00, 0x01, &[]).await.unwrap().cc, 0);
    let mut fresh = ClientSession::open(a, OPERATOR.0, OPERATOR.1, 3, 3)
        .await
        .unwrap();
    assert_eq!(fresh.request(0x00, 0x02, &[1]).await.unwrap().cc, 0);
    assert!(lab.fleet.power_state("n1").unwrap());
    let mut other = ClientSession::open(lab.fleet.lan_addr("n2").unwrap(), ADMIN.0, ADMIN.1, 17, 4)
        .await
        .unwrap();
    assert_eq!(other.request(0x06, 0x01, &[]).await.unwrap().data[0], 0x20);
    if have("ipmitool", "ipmitool") {
        let out = ipmitool(a.port(), "lanplus", Some(17), ADMIN, &["power", "status"]).await;
        assert!(
            out.status.success() && out.stdout.contains("Chassis Power is on"),
            "{out:?}"
        );
    }
    let users = lab.fleet.users("n1").unwrap();
    assert_eq!(
        users.iter().filter(|u| u.enabled).count(),
        3,
        "no user was changed by noise"
    );
    lab.fleet.shutdown().await;
}
