//! Shared set-up: a Postgres and a sim region per test, torn down on drop,
//! and our own BMC on loopback (in-process, with its fault switches) for
//! the real FreeIPMI tools the sim's power driver runs.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use maas_e2e::maas::{MaasClient, RetryPolicy};
use maas_e2e::targets::sim::postgres::find_bin_dir;
use maas_e2e::targets::sim::{
    LocalPostgres, LocalPostgresOptions, PowerDriverConfig, SimProfile, SimRegion, SimRegionConfig,
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
    // Tests that tick the monitor want every machine queried each tick.
    start_sim_monitoring(tag, power, query_every, Duration::ZERO, heartbeat).await
}

/// `start_sim_with`, the monitor querying machines last queried more than
/// `stale` ago.
pub async fn start_sim_monitoring(
    tag: &str,
    power: PowerDriverConfig,
    query_every: Option<Duration>,
    stale: Duration,
    heartbeat: Option<Duration>,
) -> Option<Sim> {
    start_sim_profile(
        tag,
        power,
        query_every,
        stale,
        heartbeat,
        SimProfile::default(),
    )
    .await
}

/// `start_sim_monitoring` imitating the MAAS version `profile`.
pub async fn start_sim_profile(
    tag: &str,
    power: PowerDriverConfig,
    query_every: Option<Duration>,
    stale: Duration,
    heartbeat: Option<Duration>,
    profile: SimProfile,
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
    cfg.power_query_stale = stale;
    cfg.heartbeat_timeout = heartbeat;
    cfg.profile = profile;
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

/// One BMC of ours on 127.0.0.1 (a free port), in-memory power (off), the
/// user `maas` an Administrator; stopped on drop.
pub struct TestBmc {
    pub fleet: Option<maas_e2e::bmc::FleetHandle>,
    pub dir: tempfile::TempDir,
}

pub const BMC_NAME: &str = "node";
pub const BMC_USER: &str = "maas";
pub const BMC_PASS: &str = "pw-test-1";

impl TestBmc {
    pub async fn start() -> TestBmc {
        TestBmc::start_in(None).await
    }

    /// The BMC's LAN side on 127.0.0.1 inside `netns` (None: the host's).
    pub async fn start_in(netns: Option<&str>) -> TestBmc {
        TestBmc::start_with(netns, |_| {}).await
    }

    /// `start_in`, the configuration changed by `change` first (other
    /// users, a LAN MAC).
    pub async fn start_with(
        netns: Option<&str>,
        change: impl FnOnce(&mut maas_e2e::bmc::config::BmcConfig),
    ) -> TestBmc {
        use maas_e2e::bmc::config::{BmcConfig, PrivilegeName, UserConfig};
        let dir = tempfile::tempdir().unwrap();
        let mut bmc = BmcConfig::loopback(
            BMC_NAME,
            vec![UserConfig::new(
                BMC_USER,
                BMC_PASS,
                PrivilegeName::Administrator,
            )],
        );
        bmc.lan.netns = netns.map(String::from);
        bmc.lan.ip = Some("192.0.2.10".parse().unwrap());
        change(&mut bmc);
        let cfg = maas_e2e::bmc::FleetConfig {
            transcript: Some(dir.path().join("transcript.jsonl")),
            bmcs: vec![bmc],
        };
        cfg.validate(Path::new("<test>")).unwrap();
        let fleet = maas_e2e::bmc::Fleet::start(cfg).await.unwrap();
        TestBmc {
            fleet: Some(fleet),
            dir,
        }
    }

    fn fleet(&self) -> &maas_e2e::bmc::FleetHandle {
        self.fleet.as_ref().unwrap()
    }

    /// `127.0.0.1:PORT`: FreeIPMI takes a port after the host.
    pub fn address(&self) -> String {
        let a = self.fleet().lan_addr(BMC_NAME).unwrap();
        format!("127.0.0.1:{}", a.port())
    }

    /// MAAS power parameters for this BMC.
    pub fn power_parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "power_address": self.address(), "power_user": BMC_USER,
            "power_pass": BMC_PASS, "power_driver": "LAN_2_0", "power_boot_type": "efi"
        })
    }

    pub fn set_fault(&self, fault: maas_e2e::bmc::fault::Fault) {
        self.fleet().set_fault(BMC_NAME, fault).unwrap();
    }

    /// Whether the (in-memory) machine is on.
    pub fn is_on(&self) -> bool {
        self.fleet().power_state(BMC_NAME).unwrap()
    }

    /// The transcript's commands on the LAN, in order (`name` or `name -> 0xcc`).
    pub fn lan_commands(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("transcript.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["channel"] == "lan" && v["name"].is_string())
            .map(|v| {
                let name = snake_case(v["name"].as_str().unwrap());
                match v["cc"].as_u64() {
                    Some(0) | None => name,
                    Some(cc) => format!("{name} -> {cc:#04x}"),
                }
            })
            .collect()
    }
}

/// `GetChassisStatus` -> `get_chassis_status` (the transcript's names are
/// the command enum's).
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

impl Drop for TestBmc {
    fn drop(&mut self) {
        if let Some(f) = self.fleet.take() {
            // Stop the tasks; the runtime drops them if it ends first.
            tokio::spawn(f.shutdown());
        }
    }
}

/// Whether the real FreeIPMI tools are here (the sim's power driver runs them).
pub fn have_freeipmi() -> bool {
    maas_e2e::testing::require_program("ipmipower", "freeipmi-tools")
        && maas_e2e::testing::require_program("ipmi-chassis-config", "freeipmi-tools")
}

/// A power driver config for tests: waits scaled to milliseconds, and
/// `path` (a directory) first on PATH when given.
pub fn fast_power(path: Option<&Path>) -> PowerDriverConfig {
    PowerDriverConfig {
        wait_unit: Duration::from_millis(2),
        path_prepend: path.map(Path::to_path_buf),
        command_timeout: Duration::from_secs(10),
        ..PowerDriverConfig::default()
    }
}
