//! The sim wired into a lab network namespace, as the lead wires it: Postgres
//! inside the namespace on a unix socket, the region serving both the host's
//! loopback (harness) and the namespace's own loopback (guests), FreeIPMI
//! run inside the namespace. The namespace is this test's own, removed on drop.

use std::time::Duration;

use maas_e2e::cmd::Cmd;
use maas_e2e::maas::*;
use maas_e2e::targets::sim::{
    LocalPostgres, LocalPostgresOptions, PgListen, SimRegion, SimRegionConfig,
};
use maas_e2e::testing::{require_program, require_root};

use crate::common::{TestBmc, TestDir, fast_power, have_freeipmi, postgres_available};

/// A network namespace created by this test (unique name), deleted on drop.
pub struct TestNetns(pub String);

impl TestNetns {
    pub fn create() -> TestNetns {
        let name = format!(
            "me2e-sim-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Cmd::new("ip")
            .args(["netns", "add", &name])
            .run_blocking()
            .unwrap();
        let ns = TestNetns(name);
        Cmd::new("ip")
            .args(["-n", &ns.0, "link", "set", "lo", "up"])
            .run_blocking()
            .unwrap();
        ns
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Cmd::new("ip")
            .args(["netns", "del", &self.0])
            .run_blocking();
    }
}

#[tokio::test]
async fn region_postgres_and_power_inside_a_lab_namespace() {
    if !(require_root()
        && require_program("ip", "iproute2")
        && require_program("busybox", "busybox-static")
        && have_freeipmi()
        && postgres_available())
    {
        return;
    }
    maas_e2e::maas::install_crypto_provider();
    let ns = TestNetns::create();
    let dir = TestDir::new("netns");
    // Our BMC on the namespace's own loopback: only FreeIPMI run inside
    // the namespace reaches it.
    let bmc = TestBmc::start_in(Some(&ns.0)).await;

    let mut opts = LocalPostgresOptions::new(dir.0.join("pg"));
    opts.listen = PgListen::Unix {
        dir: dir.0.join("sock"),
    };
    opts.netns = Some(ns.0.clone());
    let pg = LocalPostgres::start(opts).await.unwrap();

    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let lab = maas_e2e::lab::netns::bind_tcp(Some(&ns.0), "127.0.0.1:0".parse().unwrap()).unwrap();
    let lab_addr = lab.local_addr().unwrap();
    let mut cfg = SimRegionConfig::new(pg.connection_string(), vec![host, lab]);
    cfg.maas_url = Some(format!("http://{lab_addr}/MAAS"));
    let mut power = fast_power(None);
    power.netns = Some(ns.0.clone());
    cfg.power = power;
    let region = SimRegion::start(cfg).await.unwrap();
    let admin = region
        .client()
        .unwrap()
        .with_poll_interval(Duration::from_millis(50));

    // A guest inside the namespace enlists through the lab socket.
    let params = bmc.power_parameters().to_string();
    let data = format!(
        "hostname=lab-node&architecture=amd64&power_type=ipmi&power_parameters={}&mac_addresses=52%3A54%3A00%3A11%3A00%3A01",
        maas_e2e::maas::oauth::percent_encode(&params)
    );
    let body = Cmd::new("busybox")
        .args([
            "wget",
            "-q",
            "-O",
            "-",
            "--post-data",
            &data,
            &format!("{}/api/2.0/machines/", region.maas_url()),
        ])
        .in_netns(ns.0.clone())
        .timeout(Duration::from_secs(20))
        .run()
        .await
        .unwrap();
    let m: Machine = serde_json::from_str(&body).unwrap();
    // The harness sees it on the host loopback.
    assert_eq!(
        admin.machine(&m.system_id).await.unwrap().hostname,
        "lab-node"
    );

    // Power runs inside the namespace.
    admin.power_on(&m.system_id).await.unwrap();
    for _ in 0..200 {
        if admin.machine(&m.system_id).await.unwrap().power_state == PowerState::On {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        admin.machine(&m.system_id).await.unwrap().power_state,
        PowerState::On
    );
    assert!(
        bmc.is_on(),
        "the BMC inside {} powered its machine on",
        ns.0
    );

    region.shutdown().await;
    drop(pg);
}
