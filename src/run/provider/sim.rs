//! Target sim: the built-in MAAS-compatible reference region and rack.
//!
//! deploy: Postgres (a local process, or `--postgres container`), the
//! ephemeral image, the region (lab address for guests, loopback for the
//! harness) with its FreeIPMI power driver inside the lab namespace, and
//! the rack's DHCP/TFTP/HTTP. Its client goes to drive like any MAAS's.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::image::{ImageSpec, default_cache_dir};
use crate::maas::client::MaasClient;
use crate::report::checks::ObservedApi;
use crate::run::context::RunContext;
use crate::run::error::StageError;
use crate::run::lab::{LabShape, Network};
use crate::run::state::{self, Resource};
use crate::targets::sim::rack::{SimRack, SimRackConfig};
use crate::targets::sim::{
    LocalPostgres, LocalPostgresOptions, PgListen, PowerDriverConfig, SimRegion, SimRegionConfig,
};

use super::{Target, harness_client};

/// What the sim target holds between stages.
#[derive(Default)]
pub struct SimTarget {
    postgres: Option<LocalPostgres>,
    /// `--postgres container`: dropping it removes the container.
    container: Option<crate::targets::chart::postgres::PostgresContainer>,
    region: Option<SimRegion>,
    rack: Option<SimRack>,
}

/// The image `--postgres container` starts by default (ci/images/postgres
/// builds it from Debian packages; MAAS_E2E_PG_IMAGE_REPO/_TAG override).
const SIM_PG_IMAGE: (&str, &str) = ("maas-e2e/postgres", "15-bookworm");

/// A deploy failure of the sim: what failed, then why.
fn failed(what: &str, e: impl std::fmt::Display) -> StageError {
    StageError::Target(format!("{what}{e}"))
}

/// The process group leader of `pid` (from /proc/PID/stat).
fn pgid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// `ImageSpec::ephemeral()`, with busybox 1.35's `wget -T` (it crashes)
/// replaced by `timeout(1)` as the image branch now does; a no-op once
/// that fix is merged.
pub fn ephemeral_spec() -> ImageSpec {
    let mut spec = ImageSpec::ephemeral();
    for f in &mut spec.files {
        if let Ok(text) = std::str::from_utf8(&f.contents)
            && text.contains("wget -q -T 30 ")
        {
            f.contents = text
                .replace("wget -q -T 30 ", "timeout 60 wget -q ")
                .into_bytes();
        }
    }
    spec
}

impl SimTarget {
    /// Postgres as a local process (as user postgres) on a unix socket in
    /// the run's VM directory; registered as soon as its pid exists.
    async fn start_local_postgres(&mut self, cx: &RunContext<'_>) -> Result<String, StageError> {
        let base = cx.plan.host.vm_dir.join("postgres");
        let mut opts = LocalPostgresOptions::new(&base);
        opts.listen = PgListen::Unix {
            dir: base.join("sock"),
        };
        let pg = LocalPostgres::start(opts)
            .await
            .map_err(|e| StageError::Target(format!("starting Postgres: {e}")))?;
        // Registered as soon as its pid exists: teardown and `down` stop it.
        if let Some(pid) = std::fs::read_to_string(base.join("data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<i32>().ok())
        {
            let leader = pgid_of(pid).unwrap_or(pid);
            cx.register(Resource::Process {
                pid: leader,
                start_time: state::process_start_time(leader).unwrap_or(0),
                what: "postgres (sim region state)".into(),
            })?;
        }
        let url = pg.connection_string().to_string();
        self.postgres = Some(pg);
        Ok(url)
    }

    /// `--postgres container`: Debian's Postgres in a container of our own
    /// dockerd (testcontainers, the image ci/images/postgres builds),
    /// published on loopback for the region.
    async fn start_postgres_container(
        &mut self,
        cx: &RunContext<'_>,
    ) -> Result<String, StageError> {
        use crate::targets::chart::postgres::{self as pg, PostgresContainerSpec};
        let p = cx.plan;
        let spec = PostgresContainerSpec {
            name: p.postgres_container(),
            image: std::env::var("MAAS_E2E_PG_IMAGE_REPO")
                .unwrap_or_else(|_| SIM_PG_IMAGE.0.into()),
            tag: std::env::var("MAAS_E2E_PG_IMAGE_TAG").unwrap_or_else(|_| SIM_PG_IMAGE.1.into()),
            network: "bridge".into(),
            port: pg::PORT,
            env: vec![("POSTGRES_PASSWORD".into(), "<redacted>".into())],
            labels: vec![
                ("maas-e2e.run-id".into(), p.run_id.to_string()),
                (
                    crate::run::teardown::SWEEP_LABEL.0.into(),
                    crate::run::teardown::SWEEP_LABEL.1.into(),
                ),
            ],
            ready_line: pg::READY_LINE.into(),
            precreate_maasdb: false,
        };
        cx.register(Resource::Container {
            name: spec.name.clone(),
        })?;
        let password = hex::encode(rand::random::<[u8; 12]>());
        let c = pg::start_container(&spec, &password, Duration::from_secs(120))
            .await
            .map_err(|e| StageError::Target(format!("--postgres container: {e}")))?;
        tracing::info!(container = %spec.name, image = %format!("{}:{}", spec.image, spec.tag), port = c.host_port, "sim: postgres in a container");
        let url = format!(
            "host=127.0.0.1 port={} user={} password={password} dbname=postgres",
            c.host_port,
            pg::ADMIN_ROLE
        );
        self.container = Some(c);
        Ok(url)
    }
}

#[async_trait]
impl Target for SimTarget {
    fn lab_shape(&self) -> LabShape {
        LabShape {
            network: Network::Own { rack_ip: true },
            vms: true,
        }
    }

    async fn deploy(&mut self, cx: &RunContext<'_>) -> Result<Option<MaasClient>, StageError> {
        let p = cx.plan;
        let t0 = Instant::now();
        // The ephemeral environment (cached by content hash) is made or
        // found while Postgres starts: neither needs the other.
        let image = tokio::task::spawn_blocking(|| {
            crate::image::build(&ephemeral_spec(), &default_cache_dir())
        });
        let database = if cx.options.postgres_container {
            self.start_postgres_container(cx).await
        } else {
            self.start_local_postgres(cx).await
        };
        // Joined before `?`: no image build outlives a failed start.
        let image = image.await;
        let database = database?;
        tracing::info!(elapsed = ?t0.elapsed(), "sim: postgres up");
        let image = image
            .map_err(|e| failed("building the ephemeral image: ", e))?
            .map_err(|e| failed("building the ephemeral image: ", e))?;
        tracing::info!(elapsed = ?t0.elapsed(), hash = %image.hash, "sim: ephemeral image ready");

        // The region: loopback first (the harness's client), then the lab.
        let lab_addr = std::net::SocketAddr::from((p.lab.rack_ip, p.lab.region_port));
        let host = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| failed("binding the region on loopback: ", e))?;
        let lab = crate::lab::netns::bind_tcp(Some(&p.host.netns), lab_addr).map_err(|e| {
            failed(
                &format!("binding the region on {lab_addr} in {}: ", p.host.netns),
                e,
            )
        })?;
        let maas_url = format!("http://{lab_addr}/MAAS");
        let mut cfg = SimRegionConfig::new(database, vec![host, lab]);
        cfg.maas_url = Some(maas_url.clone());
        cfg.power = PowerDriverConfig {
            netns: Some(p.host.netns.clone()),
            // MAAS's waits (4,4,8,...) per unit: the scenario's
            // `sim.power_wait_unit` (default a quarter second; `maas`: 1 s).
            wait_unit: p.lab.sim.power_wait_unit(),
            command_timeout: Duration::from_secs(30),
            ..PowerDriverConfig::default()
        };
        // MAAS's rack power monitor: a 15 s tick, querying the nodes never
        // queried or last queried over 5 minutes ago.
        cfg.power_query_interval = Some(Duration::from_secs(15));
        // At most MAAS's 10 machines a tick, 5 at a time, unless the
        // scenario's `sim.power_query_batch` says otherwise (fleet benches).
        cfg.power_query_batch = p.lab.sim.power_query_batch() as usize;
        // MAAS's 5 minutes unless `sim.power_query_stale` shortens it (a
        // machine that powers itself off seen within a short run).
        cfg.power_query_stale = p.lab.sim.power_query_stale();
        // The password back-off of configure_ipmi_user: the scenario's
        // `sim.autodetect_retry_base` (default 1 s; `maas`: 30 s).
        cfg.ipmi_retry_base_seconds = Some(p.lab.sim.autodetect_retry_base().as_secs() as u32);
        // Which MAAS to imitate: the scenario's `sim.profile` or --sim-profile.
        cfg.profile = p.lab.sim.profile;
        let region = SimRegion::start(cfg).await.map_err(|e| failed("", e))?;
        let client = harness_client(region.client().map_err(|e| failed("", e))?);
        tracing::info!(elapsed = ?t0.elapsed(), "sim: region up");

        let rack = SimRack::start(
            SimRackConfig {
                netns: p.host.netns.clone(),
                interface: p.host.veth_lab.clone(),
                rack_ip: p.lab.rack_ip,
                subnet: crate::lab::net::Ipv4Subnet::new(p.lab.subnet, p.lab.prefix_len)?,
                pool: p.lab.dhcp_range,
                static_leases: Vec::new(),
                maas_url,
                image,
                events_log: Some(p.host.run_dir.join("network").join("events.jsonl")),
            },
            region.rack(),
        )
        .await
        .map_err(|e| failed("", e))?;
        tracing::info!(elapsed = ?t0.elapsed(), "sim: rack up");
        self.region = Some(region);
        self.rack = Some(rack);
        Ok(Some(client))
    }

    fn without_maas(&self) -> Option<&'static str> {
        Some("the sim region is not running")
    }

    /// Response header names of the region (5240), for header checks.
    async fn checks(
        &mut self,
        _cx: &RunContext<'_>,
        _maas: Option<&MaasClient>,
        api: &mut ObservedApi,
    ) {
        let Some(region) = &self.region else { return };
        let url = format!("{}/api/2.0/version/", region.local_maas_url());
        if let Ok(resp) = reqwest::get(&url).await {
            let names = resp
                .headers()
                .keys()
                .map(|k| k.as_str().to_ascii_lowercase())
                .collect();
            api.headers.insert("region".into(), names);
        }
    }

    /// `up` of the sim: the connection file another run's `--target
    /// external` sources (URL, API key, lab bridge, free BMC addresses).
    fn connection(&self, cx: &RunContext<'_>) -> Result<Option<PathBuf>, StageError> {
        let Some(region) = &self.region else {
            return Ok(None);
        };
        let p = cx.plan;
        let [a, b, c, _] = p.lab.subnet.octets();
        let text = connection_env(
            &region.local_maas_url(),
            &region.admin_key().expose(),
            &p.host.bridge,
            // Past the plan's BMCs (.20+) and DHCP pool (.100-.199).
            &format!("{a}.{b}.{c}.200/{}", p.lab.prefix_len),
        );
        let path = state::connection_path(&p.run_id);
        write_private(&path, text.as_bytes()).map_err(StageError::file(&path))?;
        Ok(Some(path))
    }

    async fn stop(&mut self, _cx: &RunContext<'_>, maas: Option<MaasClient>) {
        // The harness's client goes before the region it talks to.
        drop(maas);
        self.rack = None;
        if let Some(r) = self.region.take() {
            r.shutdown().await;
        }
        if let Some(mut pg) = self.postgres.take() {
            let _ = tokio::task::spawn_blocking(move || pg.stop()).await;
        }
        if let Some(c) = self.container.take() {
            let _ = c.container.rm().await;
        }
    }
}

pub fn connection_env(url: &str, key: &str, bridge: &str, bmc_addresses: &str) -> String {
    format!(
        "# maas-e2e up: the sim MAAS of this run, for `maas-e2e run --target external`\n\
         MAAS_URL={url}\nMAAS_API_KEY={key}\nMAAS_E2E_LAB_BRIDGE={bridge}\nMAAS_E2E_BMC_ADDRESSES={bmc_addresses}\n"
    )
}

/// Create `path` readable by its owner only, before any byte is written.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}
