//! The load generator: a small smoke run here (counts, not times); the full
//! measurement is `bench_report`, ignored by default and run in release:
//! `cargo nextest run --release --test bmc --run-ignored only -E 'test(bench_report)' --no-capture`.

use std::time::Duration;

use maas_e2e::bmc::bench::{BenchArgs, measure, render};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_smoke_counts_requests_sessions_and_peers() {
    let args = BenchArgs {
        bmcs: 20,
        sessions: 5,
        duration: Duration::from_millis(300),
        suite: 3,
        ipmipower_runs: 2,
        json: None,
    };
    let r = measure(&args).await.unwrap();
    eprintln!("{}", render(&r));
    assert!(r.requests > 0 && r.sessions_opened > 0, "{r:?}");
    assert!(r.rss_bound_kib >= r.rss_before_kib);
    // The peers are part of what this checks: under CI=true their absence fails.
    if maas_e2e::testing::require_program("ipmipower", "freeipmi-tools") {
        let ours = &r.ipmipower[0];
        assert_eq!((ours.runs, ours.failures), (2, 0), "{ours:?}");
        if maas_e2e::testing::require_program("ipmi_sim", "openipmi") {
            assert_eq!(r.ipmipower.len(), 2, "ipmi_sim measured side by side");
            assert_eq!(r.ipmipower[1].failures, 0);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run in release, see the module header"]
async fn bench_report() {
    let mut args = BenchArgs::default();
    if let Ok(p) = std::env::var("BMC_BENCH_JSON") {
        args.json = Some(p.into());
    }
    let r = measure(&args).await.unwrap();
    println!("{}", render(&r));
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&r).unwrap()).unwrap();
    }
}
