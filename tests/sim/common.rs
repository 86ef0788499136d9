//! Shared set-up: a Postgres and a sim region per test, torn down on drop,
//! and fake FreeIPMI programs.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use maas_e2e::maas::{MaasClient, RetryPolicy};
use maas_e2e::targets::sim::postgres::find_bin_dir;
use maas_e2e::targets::sim::{
    LocalPostgres, LocalPostgresOptions, PowerDriverConfig, SimRegion, SimRegionConfig,
};
use maas_e2e::testing::require;

/// A directory for one test's Postgres: outside /root when root (the
/// postgres user must reach it), removed on drop.
pub struct TestDir(pub PathBuf);

impl TestDir {
    pub fn new(tag: &str) -> TestDir {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let base = if nix::unistd::Uid::effective().is_root() {
            PathBuf::from("/var/lib/maas-e2e")
        } else {
            std::env::temp_dir().join("maas-e2e")
        };
        std::fs::create_dir_all(&base).unwrap();
        TestDir(base.join(format!("test-{tag}-{}", &id[..10])))
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether a local Postgres can be started here.
pub fn postgres_available() -> bool {
    let bins = find_bin_dir().is_ok();
    let user = !nix::unistd::Uid::effective().is_root()
        || nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .is_some();
    require(
        "Postgres server binaries and the postgres user",
        bins && user,
        "apt-get install postgresql (ci/setup-host.sh)",
    )
}

/// A running sim: Postgres + region + an admin client. Drop order: the
/// region, then Postgres, then the directory.
pub struct Sim {
    pub region: Option<SimRegion>,
    pub client: MaasClient,
    pub pg: Option<LocalPostgres>,
    pub _dir: TestDir,
}

impl Sim {
    pub fn region(&self) -> &SimRegion {
        self.region.as_ref().unwrap()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        drop(self.region.take());
        if let Some(mut pg) = self.pg.take() {
            pg.stop();
        }
    }
}

/// Start Postgres and a region on 127.0.0.1 with a fast power driver.
pub async fn start_sim(tag: &str, power: PowerDriverConfig) -> Option<Sim> {
    start_sim_with(tag, power, None, None).await
}

/// `start_sim` with periodic power queries every `query_every` and a
/// heartbeat timeout.
pub async fn start_sim_with(
    tag: &str,
    power: PowerDriverConfig,
    query_every: Option<Duration>,
    heartbeat: Option<Duration>,
) -> Option<Sim> {
    if !postgres_available() {
        return None;
    }
    maas_e2e::maas::install_crypto_provider();
    let dir = TestDir::new(tag);
    let pg = LocalPostgres::start(LocalPostgresOptions::new(dir.0.join("pg")))
        .await
        .expect("start local postgres");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cfg = SimRegionConfig::new(pg.connection_string(), vec![listener]);
    cfg.power = power;
    cfg.ipmi_retry_base_seconds = Some(1);
    cfg.power_query_interval = query_every;
    cfg.heartbeat_timeout = heartbeat;
    let region = SimRegion::start(cfg).await.expect("start sim region");
    let client = region
        .client()
        .unwrap()
        .with_poll_interval(Duration::from_millis(50))
        .with_retry(RetryPolicy {
            attempts: 2,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(100),
        });
    Some(Sim {
        region: Some(region),
        client,
        pg: Some(pg),
        _dir: dir,
    })
}

/// A power driver config for tests: waits scaled to milliseconds, fakes first on PATH.
pub fn fast_power(fakes: Option<&Path>) -> PowerDriverConfig {
    PowerDriverConfig {
        wait_unit: Duration::from_millis(2),
        path_prepend: fakes.map(Path::to_path_buf),
        command_timeout: Duration::from_secs(10),
        ..PowerDriverConfig::default()
    }
}

/// Write FAKE ipmipower and ipmi-chassis-config scripts into `dir`. Each
/// appends its argv (one line) to `dir/calls.log`. ipmipower fails with
/// "BMC error" while `dir/fail_count` holds a number > 0 (decremented each
/// call), then answers as FreeIPMI does (`ADDR: ok`, `ADDR: on`).
pub fn write_fake_freeipmi(dir: &Path, fail_first: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("fail_count"), fail_first.to_string()).unwrap();
    let d = dir.display();
    let ipmipower = format!(
        r#"#!/bin/sh
# FAKE ipmipower for tests (not FreeIPMI): logs argv, fails with "BMC error"
# while {d}/fail_count > 0, else answers like ipmipower.
echo "ipmipower $*" >> {d}/calls.log
host=""; prev=""
for a in "$@"; do [ "$prev" = "-h" ] && host="$a"; prev="$a"; done
n=$(cat {d}/fail_count)
if [ "$n" -gt 0 ]; then echo $((n-1)) > {d}/fail_count; echo "$host: BMC error"; exit 1; fi
case " $* " in
  *" --stat "*) state=$(cat {d}/state 2>/dev/null || echo off); echo "$host: $state" ;;
  *" --off "*|*" --soft "*) echo off > {d}/state; echo "$host: ok" ;;
  *" --on-if-off "*) echo on > {d}/state; echo "$host: ok" ;;
esac
"#
    );
    let chassis = format!(
        r#"#!/bin/sh
# FAKE ipmi-chassis-config for tests (not FreeIPMI): logs argv and the file.
echo "ipmi-chassis-config $*" >> {d}/calls.log
prev=""
for a in "$@"; do [ "$prev" = "--filename" ] && cat "$a" >> {d}/chassis.cfg; prev="$a"; done
exit 0
"#
    );
    for (name, body) in [("ipmipower", ipmipower), ("ipmi-chassis-config", chassis)] {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The fake's log, one call per line.
pub fn fake_calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}
