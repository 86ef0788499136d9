//! Measurements (ignored by default; run with `--run-ignored only`): print
//! timings for docs/performance/sim.md, assert nothing about them.

use std::time::{Duration, Instant};

use maas_e2e::maas::*;
use maas_e2e::targets::sim::{LocalPostgres, LocalPostgresOptions, SimRegion, SimRegionConfig};
use serde_json::json;

use crate::common::{TestBmc, TestDir, fast_power, have_freeipmi, postgres_available};

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
}

#[tokio::test]
#[ignore = "benchmark: run with --run-ignored only"]
async fn bench_sim_region() {
    if !postgres_available() {
        return;
    }
    maas_e2e::maas::install_crypto_provider();
    let dir = TestDir::new("bench");
    if !have_freeipmi() {
        return;
    }
    // Our BMCs for the 10 machines commissioned below (real FreeIPMI runs).
    let mut bmcs = Vec::new();
    for _ in 0..10 {
        bmcs.push(TestBmc::start().await);
    }
    let t0 = Instant::now();
    let pg = LocalPostgres::start(LocalPostgresOptions::new(dir.0.join("pg")))
        .await
        .unwrap();
    let pg_start = t0.elapsed();
    let t1 = Instant::now();
    let mut cfg = SimRegionConfig::new(
        pg.connection_string(),
        vec![std::net::TcpListener::bind("127.0.0.1:0").unwrap()],
    );
    cfg.power = fast_power(None);
    let region = SimRegion::start(cfg).await.unwrap();
    let region_start = t1.elapsed();
    let admin = region
        .client()
        .unwrap()
        .with_poll_interval(Duration::from_millis(20));
    let anon = MaasClient::new(&region.local_maas_url(), None).unwrap();

    let n = 100;
    let mut enlist = Vec::new();
    let mut registered = Vec::new();
    let mut get_machine = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let mac = format!("52:54:00:b0:{:02x}:{:02x}", i / 256, i % 256);
        let t = Instant::now();
        anon.is_registered(&mac).await.unwrap();
        registered.push(t.elapsed());
        let req = EnlistRequest {
            hostname: format!("bench-{i}"),
            architecture: "amd64".into(),
            power_type: "ipmi".into(),
            // One BMC address per machine: 2.8 takes a second enlistment
            // with a known BMC address as the same machine.
            power_parameters: match bmcs.get(i) {
                Some(b) => b.power_parameters(),
                None => {
                    json!({"power_address": format!("192.0.2.{}", i % 250), "power_user": "maas", "power_pass": "bench"})
                }
            },
            mac_addresses: vec![mac],
            ..Default::default()
        };
        let t = Instant::now();
        let m = anon.enlist(&req).await.unwrap();
        enlist.push(t.elapsed());
        let t = Instant::now();
        admin.machine(&m.system_id).await.unwrap();
        get_machine.push(t.elapsed());
        ids.push(m.system_id);
    }
    let t = Instant::now();
    let all = admin.machines().await.unwrap();
    let list_100 = t.elapsed();
    assert_eq!(all.len(), n);

    // Commission 10 machines through FreeIPMI and our BMCs and signals, to Ready.
    let http = reqwest::Client::new();
    let t = Instant::now();
    for id in &ids[..10] {
        admin
            .commission(id, &CommissionOptions::default())
            .await
            .unwrap();
    }
    let mut signal = Vec::new();
    for id in &ids[..10] {
        let pre = http
            .get(format!(
                "{}/metadata/latest/by-id/{id}/?op=get_preseed",
                region.local_maas_url()
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let key: ApiKey = pre
            .lines()
            .find_map(|l| l.strip_prefix("OAUTH_KEY="))
            .unwrap()
            .trim_matches('\'')
            .parse()
            .unwrap();
        for form in [
            vec![("op", "signal"), ("status", "WORKING")],
            vec![("op", "signal"), ("status", "OK")],
        ] {
            let s = Instant::now();
            let r = http
                .post(format!("{}/metadata/2012-03-01/", region.local_maas_url()))
                .header("Authorization", key.authorization_header())
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            signal.push(s.elapsed());
        }
        admin
            .wait_for_status(id, NodeStatus::READY, Duration::from_secs(30))
            .await
            .unwrap();
    }
    let ten_ready = t.elapsed();
    eprintln!(
        "BENCH postgres start (initdb + start + createdb): {:.0} ms",
        pg_start.as_secs_f64() * 1000.0
    );
    eprintln!(
        "BENCH region start (migrate + keys + listen): {:.0} ms",
        region_start.as_secs_f64() * 1000.0
    );
    eprintln!(
        "BENCH is_registered p50 {:.2} ms p95 {:.2} ms (n={n})",
        pct(registered.clone(), 0.5),
        pct(registered, 0.95)
    );
    eprintln!(
        "BENCH enlist POST p50 {:.2} ms p95 {:.2} ms (n={n})",
        pct(enlist.clone(), 0.5),
        pct(enlist, 0.95)
    );
    eprintln!(
        "BENCH GET machine p50 {:.2} ms p95 {:.2} ms (n={n})",
        pct(get_machine.clone(), 0.5),
        pct(get_machine, 0.95)
    );
    eprintln!(
        "BENCH GET machines/ with {n} machines: {:.0} ms",
        list_100.as_secs_f64() * 1000.0
    );
    eprintln!(
        "BENCH signal p50 {:.2} ms p95 {:.2} ms (n={})",
        pct(signal.clone(), 0.5),
        pct(signal.clone(), 0.95),
        signal.len()
    );
    eprintln!(
        "BENCH 10 machines commission -> Ready (fake FreeIPMI, 2 ms wait unit, sequential signals): {:.0} ms",
        ten_ready.as_secs_f64() * 1000.0
    );
    drop(region);
    drop(pg);
}
