//! The sim (and external) target's environment: VMs under libvirt behind
//! the BMCs (in-band socket + libvirt power), the sim region and rack, and
//! steps that go through the MAAS API.
//!
//! lab: the lab network, the BMC fleet, qcow2 disks and libvirt domains
//! (defined, not started: power goes through the BMC). deploy: Postgres,
//! the ephemeral image, the region (lab address for guests, loopback for
//! the harness) with its FreeIPMI power driver inside the lab namespace,
//! and the rack's DHCP/TFTP/HTTP. Steps call the MAAS API; a machine MAAS
//! does not know yet is powered at its power button (libvirt), as a person
//! starts MAAS's enlistment.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::image::{ImageSpec, default_cache_dir};
use crate::lab::vm;
use crate::maas::client::{CommissionOptions, EventQuery, MaasClient, RetryPolicy};
use crate::maas::types::{Machine, NodeStatus, PowerState as MaasPower};
use crate::plan::MachinePlan;
use crate::report::checks::{Observed, ObservedApi};
use crate::report::result::{self, InterfaceResult, MachineResult, RunResult, TranscriptLine};
use crate::run::pipeline::Observation;
use crate::run::state::{self, Resource};
use crate::scenario::{Firmware, NicModel, PowerState, Step};
use crate::targets::sim::rack::{SimRack, SimRackConfig};
use crate::targets::sim::{
    LocalPostgres, LocalPostgresOptions, PgListen, PowerDriverConfig, SimRegion, SimRegionConfig,
};

use super::{
    Env, bmc_fault, fleet_config, read_transcript, transcript_path, write_machine_transcript,
};

/// What the sim target holds between stages.
#[derive(Default)]
pub struct SimEnv {
    postgres: Option<LocalPostgres>,
    /// `--postgres container`: dropping it removes the container.
    container: Option<crate::targets::chart::postgres::PostgresContainer>,
    region: Option<SimRegion>,
    rack: Option<SimRack>,
    /// The harness's client of the MAAS under test (sim, external or chart).
    pub(super) client: Option<MaasClient>,
    /// Plan machine name -> system_id, once MAAS knows the machine.
    system_ids: HashMap<String, String>,
}

/// The image `--postgres container` starts by default (ci/images/postgres
/// builds it from Debian packages; MAAS_E2E_PG_IMAGE_REPO/_TAG override).
const SIM_PG_IMAGE: (&str, &str) = ("maas-e2e/postgres", "15-bookworm");

/// How often waits poll the API.
pub(super) const POLL: Duration = Duration::from_secs(2);

/// The domain's files: kept beside the disks, where libvirt-qemu may write.
fn console_path(vm_dir: &Path, m: &MachinePlan) -> PathBuf {
    vm_dir.join(format!("{}.console.log", m.name))
}

/// The libvirt domain for a plan machine.
pub fn domain_spec(p: &crate::plan::Plan, m: &MachinePlan, accel: vm::Accel) -> vm::DomainSpec {
    let firmware = match m.firmware {
        Firmware::Bios => crate::lab::dhcp::Firmware::Bios,
        Firmware::Uefi => crate::lab::dhcp::Firmware::Uefi,
    };
    vm::DomainSpec {
        name: m.domain.clone(),
        uuid: run_uuid(p.run_id.as_str(), &m.uuid),
        run_id: p.run_id.to_string(),
        memory_mib: m.memory_mib as u32,
        vcpus: m.vcpus,
        firmware,
        cpu_model: m.cpu.clone(),
        nics: m
            .nics
            .iter()
            .map(|n| vm::NicSpec {
                model: match n.model {
                    NicModel::Virtio => vm::NicModel::Virtio,
                    NicModel::E1000 => vm::NicModel::E1000,
                    NicModel::Rtl8139 => vm::NicModel::Rtl8139,
                },
                mac: n.mac.clone(),
                bridge: p.host.bridge.clone(),
            })
            .collect(),
        // Sizes in GiB for the spec; the disks themselves are made first
        // with their exact MiB size (prepare_files keeps existing disks).
        disks: m
            .disks
            .iter()
            .map(|d| vm::DiskSpec {
                path: d.path.clone(),
                size_gib: d.size_mib.div_ceil(1024).max(1) as u32,
            })
            .collect(),
        console_log: console_path(&p.host.vm_dir, m),
        nvram: (m.firmware == Firmware::Uefi)
            .then(|| p.host.vm_dir.join(format!("{}_VARS.fd", m.name))),
        bmc_socket: Some(m.bmc.inband_socket.clone()),
        accel,
    }
}

/// The libvirt UUID of a run's domain: the plan's UUID comes from the seed
/// and machine name, so two runs of one scenario would ask libvirt for the
/// same UUID, which it refuses; mixing in the run id keeps them apart.
pub fn run_uuid(run_id: &str, plan_uuid: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{run_id}/{plan_uuid}").as_bytes());
    let mut b: [u8; 16] = h[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// `vm::define`, with the console file opened for appending: a machine
/// boots more than once (enlist, then commission) and the log keeps
/// every boot.
async fn define_keeping_console(
    conn: &virt::connect::Connect,
    spec: &vm::DomainSpec,
) -> Result<String, vm::VmError> {
    vm::prepare_files(spec).await?;
    let log = spec.console_log.display().to_string();
    let xml = vm::domain_xml(spec).replace(
        &format!("<source path='{log}'/>"),
        &format!("<source path='{log}' append='on'/>"),
    );
    conn.define_domain_xml(&xml)
        .map_err(|source| vm::VmError::Libvirt {
            op: "define",
            name: spec.name.clone(),
            source,
        })?;
    Ok(xml)
}

/// Let libvirt-qemu (QEMU's user) connect to a root-made unix socket.
fn open_socket(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| format!("{}: {e}", path.display()))
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

/// The last line the guest printed, for wait errors.
fn last_console_line(path: &Path) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&text);
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(160).collect())
}

/// The machine MAAS knows by one of the plan machine's MACs.
pub(super) fn machine_with_macs<'a>(
    machines: &'a [Machine],
    m: &MachinePlan,
) -> Option<&'a Machine> {
    let ours = |mac: &str| m.nics.iter().any(|n| n.mac.eq_ignore_ascii_case(mac));
    machines.iter().find(|x| {
        x.interface_set.iter().any(|i| ours(&i.mac_address))
            || x.boot_interface
                .as_ref()
                .is_some_and(|i| ours(&i.mac_address))
    })
}

fn wanted_status(s: crate::scenario::MachineStatus) -> NodeStatus {
    NodeStatus(s.code() as i32)
}

impl<'p> Env<'p> {
    pub(super) async fn sim_lab_up(&mut self) -> Result<(), String> {
        let p = self.plan;
        let spec = self.lab_spec()?;
        self.register(Resource::Dir {
            path: p.host.vm_dir.clone(),
        })?;
        self.register(Resource::Netns {
            name: p.host.netns.clone(),
        })?;
        self.register(Resource::Link {
            name: p.host.bridge.clone(),
        })?;
        self.register(Resource::Link {
            name: p.host.veth_host.clone(),
        })?;
        vm::run_dir(p.run_id.as_str()).map_err(|e| format!("{}: {e}", p.host.vm_dir.display()))?;
        std::fs::create_dir_all(&p.host.vm_dir)
            .map_err(|e| format!("{}: {e}", p.host.vm_dir.display()))?;
        for m in &p.machines {
            let dir = p.host.run_dir.join("machines").join(&m.name);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        self.lab = Some(
            crate::lab::net::Lab::up(&spec)
                .await
                .map_err(|e| e.to_string())?,
        );
        self.machines_up().await
    }

    /// The BMC fleet inside the lab namespace, then the libvirt domains
    /// (defined, not started) and their disks.
    pub(super) async fn machines_up(&mut self) -> Result<(), String> {
        let p = self.plan;
        let fleet = crate::bmc::Fleet::start(fleet_config(p))
            .await
            .map_err(|e| format!("starting the BMCs: {e}"))?;
        for m in &p.machines {
            for f in &m.bmc.faults {
                fleet
                    .set_fault(&m.name, bmc_fault(f))
                    .map_err(|e| e.to_string())?;
            }
            if m.vm {
                open_socket(&m.bmc.inband_socket)?;
            }
        }
        self.fleet = Some(fleet);

        let vms: Vec<&MachinePlan> = p.machines.iter().filter(|m| m.vm).collect();
        if vms.is_empty() {
            return Ok(());
        }
        let conn = vm::connect().map_err(|e| e.to_string())?;
        let accel = vm::detect_accel(&conn);
        for m in vms {
            self.register(Resource::Domain {
                name: m.domain.clone(),
            })?;
            for d in &m.disks {
                if !d.path.exists() {
                    crate::cmd::Cmd::new("qemu-img")
                        .args(["create", "-q", "-f", "qcow2"])
                        .arg(d.path.display().to_string())
                        .arg(format!("{}M", d.size_mib))
                        .run()
                        .await
                        .map_err(|e| format!("{}: disk {}: {e}", m.name, d.path.display()))?;
                }
            }
            let spec = domain_spec(p, m, accel);
            let xml = define_keeping_console(&conn, &spec)
                .await
                .map_err(|e| format!("{}: {e}", m.name))?;
            let _ = std::fs::write(
                p.host
                    .run_dir
                    .join("machines")
                    .join(&m.name)
                    .join("domain.xml"),
                xml,
            );
        }
        Ok(())
    }

    /// Postgres as a local process (as user postgres) on a unix socket in
    /// the run's VM directory; registered as soon as its pid exists.
    async fn start_local_postgres(&mut self) -> Result<String, String> {
        let base = self.plan.host.vm_dir.join("postgres");
        let mut opts = LocalPostgresOptions::new(&base);
        opts.listen = PgListen::Unix {
            dir: base.join("sock"),
        };
        let pg = LocalPostgres::start(opts)
            .await
            .map_err(|e| format!("starting Postgres: {e}"))?;
        // Registered as soon as its pid exists: teardown and `down` stop it.
        if let Some(pid) = std::fs::read_to_string(base.join("data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<i32>().ok())
        {
            let leader = pgid_of(pid).unwrap_or(pid);
            self.register(Resource::Process {
                pid: leader,
                start_time: state::process_start_time(leader).unwrap_or(0),
                what: "postgres (sim region state)".into(),
            })?;
        }
        self.sim.postgres = Some(pg);
        Ok(self
            .sim
            .postgres
            .as_ref()
            .expect("set above")
            .connection_string()
            .to_string())
    }

    /// `--postgres container`: Debian's Postgres in a container of our own
    /// dockerd (testcontainers, the image ci/images/postgres builds),
    /// published on loopback for the region.
    async fn start_postgres_container(&mut self) -> Result<String, String> {
        use crate::targets::chart::postgres::{self as pg, PostgresContainerSpec};
        let p = self.plan;
        let spec = PostgresContainerSpec {
            name: format!("{}-{}-postgres", crate::plan::NAME_PREFIX, p.run_id),
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
        self.register(Resource::Container {
            name: spec.name.clone(),
        })?;
        let password = hex::encode(rand::random::<[u8; 12]>());
        let c = pg::start_container(&spec, &password, Duration::from_secs(120))
            .await
            .map_err(|e| format!("--postgres container: {e}"))?;
        tracing::info!(container = %spec.name, image = %format!("{}:{}", spec.image, spec.tag), port = c.host_port, "sim: postgres in a container");
        let url = format!(
            "host=127.0.0.1 port={} user={} password={password} dbname=postgres",
            c.host_port,
            pg::ADMIN_ROLE
        );
        self.sim.container = Some(c);
        Ok(url)
    }

    pub(super) async fn sim_deploy(&mut self) -> Result<(), String> {
        let p = self.plan;
        let t0 = Instant::now();
        let database = if self.options.postgres_container {
            self.start_postgres_container().await?
        } else {
            self.start_local_postgres().await?
        };
        tracing::info!(elapsed = ?t0.elapsed(), "sim: postgres up");

        // The ephemeral environment (cached by content hash).
        let image = tokio::task::spawn_blocking(|| {
            crate::image::build(&ephemeral_spec(), &default_cache_dir())
        })
        .await
        .map_err(|e| format!("building the ephemeral image: {e}"))?
        .map_err(|e| format!("building the ephemeral image: {e}"))?;
        tracing::info!(elapsed = ?t0.elapsed(), hash = %image.hash, "sim: ephemeral image ready");

        // The region: loopback first (the harness's client), then the lab.
        let lab_addr = std::net::SocketAddr::from((p.lab.rack_ip, p.lab.region_port));
        let host = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("binding the region on loopback: {e}"))?;
        let lab = crate::lab::netns::bind_tcp(Some(&p.host.netns), lab_addr)
            .map_err(|e| format!("binding the region on {lab_addr} in {}: {e}", p.host.netns))?;
        let maas_url = format!("http://{lab_addr}/MAAS");
        let mut cfg = SimRegionConfig::new(database, vec![host, lab]);
        cfg.maas_url = Some(maas_url.clone());
        cfg.power = PowerDriverConfig {
            netns: Some(p.host.netns.clone()),
            // MAAS's waits (4,4,8,...) at a quarter second per unit: the same
            // retry shape as MAAS, without minutes of sleeping.
            wait_unit: Duration::from_millis(250),
            command_timeout: Duration::from_secs(30),
            ..PowerDriverConfig::default()
        };
        // MAAS's rack queries power every 5 minutes (node power monitor).
        cfg.power_query_interval = Some(Duration::from_secs(300));
        // The password back-off of configure_ipmi_user: 1 s instead of 30 s.
        cfg.ipmi_retry_base_seconds = Some(1);
        let region = SimRegion::start(cfg).await.map_err(|e| e.to_string())?;
        let client = region
            .client()
            .map_err(|e| e.to_string())?
            .with_retry(RetryPolicy {
                attempts: 4,
                base_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(2),
            })
            .with_poll_interval(POLL);
        tracing::info!(elapsed = ?t0.elapsed(), "sim: region up");

        let rack = SimRack::start(
            SimRackConfig {
                netns: p.host.netns.clone(),
                interface: p.host.veth_lab.clone(),
                rack_ip: p.lab.rack_ip,
                subnet: crate::lab::net::Ipv4Subnet::new(p.lab.subnet, p.lab.prefix_len)
                    .map_err(|e| e.to_string())?,
                pool: p.lab.dhcp_range,
                static_leases: Vec::new(),
                maas_url,
                image,
                events_log: Some(p.host.run_dir.join("network").join("events.jsonl")),
            },
            region.rack(),
        )
        .await
        .map_err(|e| e.to_string())?;
        tracing::info!(elapsed = ?t0.elapsed(), "sim: rack up");
        self.sim.region = Some(region);
        self.sim.rack = Some(rack);
        self.sim.client = Some(client);
        Ok(())
    }

    /// `up` of the sim: the connection file another run's `--target
    /// external` sources (URL, API key, lab bridge, free BMC addresses).
    pub fn write_connection(&self) -> Result<Option<PathBuf>, String> {
        let Some(region) = &self.sim.region else {
            return Ok(None);
        };
        let p = self.plan;
        let [a, b, c, _] = p.lab.subnet.octets();
        let text = connection_env(
            &region.local_maas_url(),
            &region.admin_key().expose(),
            &p.host.bridge,
            // Past the plan's BMCs (.20+) and DHCP pool (.100-.199).
            &format!("{a}.{b}.{c}.200/{}", p.lab.prefix_len),
        );
        let path = state::connection_path(&p.run_id);
        write_private(&path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Some(path))
    }

    fn client(&self) -> Result<&MaasClient, String> {
        self.sim
            .client
            .as_ref()
            .ok_or_else(|| "the sim region is not running".to_string())
    }

    /// The machine's system_id, looked up by its MACs once MAAS has it.
    async fn system_id(&mut self, m: &MachinePlan) -> Result<Option<String>, String> {
        if let Some(id) = self.sim.system_ids.get(&m.name) {
            return Ok(Some(id.clone()));
        }
        let machines = self.client()?.machines().await.map_err(|e| e.to_string())?;
        Ok(machine_with_macs(&machines, m).map(|x| {
            self.sim
                .system_ids
                .insert(m.name.clone(), x.system_id.clone());
            x.system_id.clone()
        }))
    }

    async fn ids_of(
        &mut self,
        name: &str,
    ) -> Result<Vec<(&'p MachinePlan, Option<String>)>, String> {
        let mut out = Vec::new();
        for m in self.machines(name)? {
            let id = self.system_id(m).await?;
            out.push((m, id));
        }
        Ok(out)
    }

    pub(super) async fn sim_step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Sleep(d) => {
                tokio::time::sleep(d.0).await;
                Ok(())
            }
            Step::PowerOn(r) | Step::PowerCycle(r) => self.sim_power(&r.0, true).await,
            Step::PowerOff(r) => self.sim_power(&r.0, false).await,
            Step::Commission(r) => {
                let mut errors = Vec::new();
                for (m, id) in self.ids_of(&r.0).await? {
                    match id {
                        None => errors.push(format!("{}: MAAS does not know this machine yet (not enlisted); power it on and wait for New first", m.name)),
                        Some(id) => {
                            if let Err(e) = self.client()?.commission(&id, &CommissionOptions::default()).await {
                                errors.push(format!("{}: commission: {e}", m.name));
                            }
                        }
                    }
                }
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(errors.join("\n"))
                }
            }
            Step::WaitStatus(w) => {
                let ms = self.machines(&w.machine.0)?;
                let want = wanted_status(w.status);
                let runs = ms
                    .into_iter()
                    .map(|m| self.wait_status_one(m, want, w.timeout.0));
                super::all_ok(runs).await
            }
            Step::WaitPower(w) => {
                let want = match w.state {
                    PowerState::On => MaasPower::On,
                    PowerState::Off => MaasPower::Off,
                };
                let ms = self.machines(&w.machine.0)?;
                let runs = ms
                    .into_iter()
                    .map(|m| self.wait_power_one(m, want, w.timeout.0));
                super::all_ok(runs).await
            }
            Step::InjectFault(f) => {
                for m in self.machines(&f.machine.0)? {
                    self.fleet()?
                        .set_fault(&m.name, bmc_fault(&f.fault))
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Step::ClearFaults(r) => {
                for m in self.machines(&r.0)? {
                    self.fleet()?
                        .clear_faults(&m.name)
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Step::ExpectError(_) => {
                unreachable!("env/mod.rs handles expect_error and calls back for the inner step")
            }
        }
    }

    /// Known machines: the MAAS API (the rack then drives the BMC). Unknown
    /// machines: the power button (libvirt), as MAAS's enlistment starts.
    async fn sim_power(&mut self, name: &str, on: bool) -> Result<(), String> {
        let mut errors = Vec::new();
        for (m, id) in self.ids_of(name).await? {
            let r = match id {
                Some(id) => {
                    let c = self.client()?;
                    if on {
                        c.power_on(&id).await.map(drop)
                    } else {
                        c.power_off(&id).await.map(drop)
                    }
                    .map_err(|e| e.to_string())
                }
                None if m.vm => {
                    let domain = m.domain.clone();
                    tokio::task::spawn_blocking(move || {
                        let conn = vm::connect()?;
                        if on {
                            vm::start(&conn, &domain)
                        } else {
                            vm::destroy(&conn, &domain)
                        }
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                }
                None => {
                    Err("MAAS does not know this machine and it has no VM to switch on".to_string())
                }
            };
            if let Err(e) = r {
                errors.push(format!(
                    "{}: power {}: {e}",
                    m.name,
                    if on { "on" } else { "off" }
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// A fresh client for a concurrent wait (the env is borrowed shared).
    async fn find_id(
        &self,
        client: &MaasClient,
        m: &MachinePlan,
    ) -> Result<Option<String>, String> {
        if let Some(id) = self.sim.system_ids.get(&m.name) {
            return Ok(Some(id.clone()));
        }
        let machines = client.machines().await.map_err(|e| e.to_string())?;
        Ok(machine_with_macs(&machines, m).map(|x| x.system_id.clone()))
    }

    async fn wait_status_one(
        &self,
        m: &MachinePlan,
        want: NodeStatus,
        timeout: Duration,
    ) -> Result<(), String> {
        let client = self.client()?;
        let deadline = Instant::now() + timeout;
        // First MAAS must know the machine (enlistment creates it).
        let id = loop {
            match self.find_id(client, m).await {
                Ok(Some(id)) => break id,
                Ok(None) | Err(_) if Instant::now() < deadline => tokio::time::sleep(POLL).await,
                Ok(None) => {
                    let console = last_console_line(&console_path(&self.plan.host.vm_dir, m))
                        .unwrap_or_else(|| "nothing".into());
                    return Err(format!(
                        "{}: did not reach {want} within {}; last seen: MAAS has no machine with its MACs (not enlisted); the console's last line: {console:?}",
                        m.name,
                        humantime::format_duration(timeout)
                    ));
                }
                Err(e) => return Err(format!("{}: {e}", m.name)),
            }
        };
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        client
            .wait_for_status(&id, want, left)
            .await
            .map(drop)
            .map_err(|e| {
                let console = last_console_line(&console_path(&self.plan.host.vm_dir, m))
                    .unwrap_or_else(|| "nothing".into());
                format!("{}: {e}; the console's last line: {console:?}", m.name)
            })
    }

    async fn wait_power_one(
        &self,
        m: &MachinePlan,
        want: MaasPower,
        timeout: Duration,
    ) -> Result<(), String> {
        let client = self.client()?;
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.find_id(client, m).await {
                // Known: what the rack's BMC query says (op=query_power_state).
                Ok(Some(id)) => match client.query_power_state(&id).await {
                    Ok(s) if s == want => return Ok(()),
                    Ok(s) => format!("power {} (queried through the BMC)", s.as_str()),
                    Err(e) => e.to_string(),
                },
                // Unknown: the VM itself.
                Ok(None) => {
                    let domain = m.domain.clone();
                    let on = tokio::task::spawn_blocking(move || {
                        vm::connect().and_then(|c| vm::state(&c, &domain))
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                    .map(|s| {
                        matches!(
                            s,
                            Some(
                                virt::domain::DomainState::Running
                                    | virt::domain::DomainState::Paused
                            )
                        )
                    });
                    match on {
                        Ok(on) if on == (want == MaasPower::On) => return Ok(()),
                        Ok(on) => {
                            format!("VM {} (not enlisted yet)", if on { "on" } else { "off" })
                        }
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "{}: power did not become {} within {}; last seen: {last}",
                    m.name,
                    want.as_str(),
                    humantime::format_duration(timeout)
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub(super) async fn sim_observe(&mut self) -> Result<Observation, String> {
        let p = self.plan;
        let mut result = RunResult {
            scenario: p.scenario.clone(),
            target: p.target.to_string(),
            machines: BTreeMap::new(),
        };
        let mut observed = BTreeMap::new();
        let transcript = read_transcript(&transcript_path(p));
        for m in &p.machines {
            let lines: Vec<TranscriptLine> = transcript
                .iter()
                .filter(|(bmc, _)| *bmc == m.name)
                .map(|(_, l)| l.clone())
                .collect();
            write_machine_transcript(m, &transcript_path(p));
            if m.vm {
                let _ = std::fs::copy(console_path(&p.host.vm_dir, m), &m.console_log);
            }
            let mut mr = MachineResult {
                bmc: result::summarise_transcript(&snapshot_lines(&lines)),
                ..MachineResult::default()
            };
            let mut fields = serde_json::json!({});
            let mut events = Vec::new();
            if let Some(id) = self.system_id(m).await? {
                let client = self.client()?;
                let raw = client
                    .get_raw(&format!("machines/{id}/"), &[])
                    .await
                    .map_err(|e| format!("{}: {e}", m.name))?;
                fields = serde_json::from_str(&raw)
                    .map_err(|e| format!("{}: machine JSON: {e}", m.name))?;
                let machine: crate::maas::types::Machine =
                    serde_json::from_value(fields.clone())
                        .map_err(|e| format!("{}: machine JSON: {e}", m.name))?;
                let mut params = client
                    .power_parameters(&id)
                    .await
                    .map_err(|e| format!("{}: {e}", m.name))?;
                params.remove("power_pass");
                let page = client
                    .events(&EventQuery {
                        system_id: Some(id.clone()),
                        level: Some("DEBUG".into()),
                        after: None,
                        limit: Some(1000),
                    })
                    .await
                    .map_err(|e| format!("{}: {e}", m.name))?;
                let mut evs = page.events;
                evs.sort_by_key(|e| e.id);
                events = evs
                    .iter()
                    .map(|e| {
                        let text = if e.description.is_empty() {
                            e.event_type.clone()
                        } else {
                            format!("{} - {}", e.event_type, e.description)
                        };
                        dashed_macs_to_colons(&text, m)
                    })
                    .collect();
                let boot_mac = machine
                    .boot_interface
                    .as_ref()
                    .map(|i| i.mac_address.to_ascii_lowercase());
                mr.status = Some(machine.status_name.clone());
                mr.power_state = Some(machine.power_state.as_str().to_string());
                mr.power_type = Some(machine.power_type.clone());
                mr.power_parameters = params.clone().into_iter().collect();
                mr.interfaces = machine
                    .interface_set
                    .iter()
                    .map(|i| InterfaceResult {
                        name: i.name.clone(),
                        mac: i.mac_address.to_ascii_lowercase(),
                        boot: boot_mac.as_deref() == Some(&i.mac_address.to_ascii_lowercase()),
                    })
                    .collect();
                mr.events = result::normalise_events(events.iter().map(String::as_str));
                if let Some(o) = fields.as_object_mut() {
                    o.insert("power_parameters".into(), serde_json::Value::Object(params));
                    o.insert("power_state".into(), machine.power_state.as_str().into());
                    o.insert("interface_count".into(), machine.interface_set.len().into());
                }
            } else {
                mr.status = Some("not enlisted".into());
                fields = serde_json::json!({"status_name": "not enlisted", "interface_count": 0});
            }
            result.machines.insert(m.name.clone(), mr);
            observed.insert(
                m.name.clone(),
                Observed {
                    fields,
                    events,
                    transcript: lines,
                },
            );
        }
        let mut api = ObservedApi::default();
        if let Ok(client) = self.client() {
            for path in ["version/", "rackcontrollers/"] {
                if let Ok(body) = client.get_raw(path, &[]).await
                    && let Ok(v) = serde_json::from_str(&body)
                {
                    api.objects.insert(path.to_string(), v);
                }
            }
        }
        // Response header names of the region (5240), for header checks.
        // (The external target's headers are its own business.)
        if let Some(region) = &self.sim.region {
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
        Ok((result, observed, api))
    }

    pub(super) async fn sim_stop(&mut self) {
        // Domains off first: a guest must not talk to servers going away.
        let domains: Vec<String> = self
            .plan
            .machines
            .iter()
            .filter(|m| m.vm)
            .map(|m| m.domain.clone())
            .collect();
        if !domains.is_empty() {
            let _ = tokio::task::spawn_blocking(move || {
                if let Ok(conn) = vm::connect() {
                    for d in domains {
                        let _ = vm::destroy(&conn, &d);
                    }
                }
            })
            .await;
        }
        self.sim.rack = None;
        self.sim.client = None;
        if let Some(r) = self.sim.region.take() {
            r.shutdown().await;
        }
        if let Some(mut pg) = self.sim.postgres.take() {
            let _ = tokio::task::spawn_blocking(move || pg.stop()).await;
        }
        if let Some(c) = self.sim.container.take() {
            let _ = c.container.rm().await;
        }
    }
}

/// A sourceable env file for `--target external`.
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

/// The transcript lines the snapshot summarises: every LAN session, and
/// the in-band commands that change the BMC. The in-band reads (the
/// kernel driver's polling, FreeIPMI's channel probing) vary in number
/// with guest timing; checks still see every line.
pub fn snapshot_lines(lines: &[TranscriptLine]) -> Vec<TranscriptLine> {
    let read = |c: &str| {
        c.starts_with("get_")
            || c.starts_with("read_")
            || c == "clear_message_flags"
            || c == "unknown"
    };
    let mut out: Vec<TranscriptLine> = Vec::new();
    for l in lines
        .iter()
        .filter(|l| l.channel != "inband" || !read(&l.command))
    {
        // The same LAN request twice in a row inside one session is the
        // client's retransmission (the answer took longer than its timer,
        // e.g. while libvirt starts the domain); sessions are separated by
        // their handshake lines, so retries in new sessions still count.
        if l.channel == "lan" && out.last() == Some(l) && !l.command.starts_with("set_system_boot")
        {
            continue;
        }
        out.push(l.clone());
    }
    out
}

/// pxelinux asks for `pxelinux.cfg/01-aa-bb-...`: write the plan's MACs in
/// colon form so the run's redaction knows them.
fn dashed_macs_to_colons(text: &str, m: &MachinePlan) -> String {
    let mut out = text.to_string();
    for n in &m.nics {
        let dashed = n.mac.to_ascii_lowercase().replace(':', "-");
        out = out
            .replace(&dashed, &n.mac.to_ascii_lowercase())
            .replace(&dashed.to_ascii_uppercase(), &n.mac.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_lines_keep_writes_and_drop_retransmissions() {
        let l = |ch: &str, c: &str, cc: u8| TranscriptLine {
            channel: ch.into(),
            command: c.into(),
            completion_code: Some(cc),
        };
        let lines = vec![
            l("inband", "get_channel_info", 0xcc),
            l("inband", "set_user_password", 0),
            l("lan", "get_channel_auth_capabilities", 0),
            l("lan", "chassis_control", 0),
            l("lan", "chassis_control", 0),
            l("lan", "close_session", 0),
            l("lan", "get_channel_auth_capabilities", 0),
            l("lan", "chassis_control", 0),
        ];
        let kept: Vec<String> = snapshot_lines(&lines)
            .iter()
            .map(|l| format!("{} {}", l.channel, l.command))
            .collect();
        assert_eq!(
            kept,
            [
                "inband set_user_password",
                "lan get_channel_auth_capabilities",
                "lan chassis_control",
                "lan close_session",
                "lan get_channel_auth_capabilities",
                "lan chassis_control"
            ]
        );
    }
}
