//! The sim region: state, start/stop, power orchestration and the handle
//! the rack uses. HTTP handlers live in `api` (REST API 2.0) and `metadata`
//! (the ephemeral environment's side).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use super::boot::{BootConfig, BootContext, Firmware, boot_config};
use super::events::{self, EventKind};
use super::postgres::{self, PostgresError};
use super::power::{IpmiPowerDriver, PowerDriverConfig};
use super::profile::SimProfile;
use super::state::RegionState;
use super::store::{Store, StoreError};
use crate::maas::{ApiKey, MaasClient, MaasError};

/// How to start the sim region.
pub struct SimRegionConfig {
    /// libpq connection string or URL of the state database
    /// (`LocalPostgres::connection_string`, or a container's URL).
    pub database: String,
    /// Sockets to serve on, already bound: loopback for the harness and/or a
    /// lab address (bind inside the lab with `lab::netns::bind_tcp`).
    pub listeners: Vec<std::net::TcpListener>,
    /// The region's URL as guests reach it (http://ADDR:PORT/MAAS); written
    /// into preseeds and boot command lines. Default: the first listener.
    pub maas_url: Option<String>,
    pub power: PowerDriverConfig,
    /// The power monitor's tick (None: no monitor). Each tick queries the
    /// machines never queried or last queried more than
    /// `power_query_stale` ago (2.8: 15 s and 5 minutes,
    /// rackd/services/power_monitor and rpc/nodes.py).
    pub power_query_interval: Option<Duration>,
    pub power_query_stale: Duration,
    /// At most this many machines per tick (2.8: 10,
    /// list_cluster_nodes_power_parameters' limit), queried this many at
    /// a time (2.8: 5, query_all_nodes' max_concurrency).
    pub power_query_batch: usize,
    pub power_query_concurrency: usize,
    /// Fail commissioning when a Commissioning machine has not signalled
    /// for this long (MAAS 2.8: node_timeout, 30 minutes; None: never).
    pub heartbeat_timeout: Option<Duration>,
    /// Put IPMI_RETRY_BASE_SECONDS into preseeds (tests set 1).
    pub ipmi_retry_base_seconds: Option<u32>,
    /// Which MAAS the region imitates (2.8 by default; profile.rs). It
    /// also picks the power driver's argv (`power.argv` is set from it).
    pub profile: SimProfile,
    /// The sim rack's hostname in rackcontrollers/.
    pub rack_hostname: String,
    /// Interface names the sim rack reports in its interface_set (MAAS
    /// lists the rack host's NICs; the sim has none unless told).
    pub rack_interfaces: Vec<String>,
}

impl SimRegionConfig {
    pub fn new(database: impl Into<String>, listeners: Vec<std::net::TcpListener>) -> Self {
        SimRegionConfig {
            database: database.into(),
            listeners,
            maas_url: None,
            power: PowerDriverConfig::default(),
            power_query_interval: None,
            power_query_stale: Duration::from_secs(5 * 60),
            power_query_batch: 10,
            power_query_concurrency: 5,
            heartbeat_timeout: Some(Duration::from_secs(30 * 60)),
            ipmi_retry_base_seconds: None,
            profile: SimProfile::default(),
            rack_hostname: "sim-rack".into(),
            rack_interfaces: Vec::new(),
        }
    }
}

/// A failure starting the region.
#[derive(Debug, Error)]
pub enum SimError {
    #[error("sim region: no listener given; bind at least one socket")]
    NoListener,
    #[error("sim region: listener: {0}")]
    Listener(#[source] std::io::Error),
    #[error("sim region: {0}")]
    Postgres(#[from] PostgresError),
    #[error("sim region state: {0}")]
    Store(#[from] StoreError),
    #[error("sim region client: {0}")]
    Client(#[from] MaasError),
}

/// A running sim region.
pub struct SimRegion {
    state: Arc<RegionState>,
    admin_key: ApiKey,
    addrs: Vec<SocketAddr>,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

impl SimRegion {
    /// Connect to the database, apply migrations, create the admin key and
    /// the rack controller, and serve on every listener.
    pub async fn start(cfg: SimRegionConfig) -> Result<SimRegion, SimError> {
        crate::maas::install_crypto_provider();
        if cfg.listeners.is_empty() {
            return Err(SimError::NoListener);
        }
        let mut client = postgres::connect(&cfg.database).await?;
        postgres::migrate(&mut client).await?;
        let store = Store::new(client);
        let admin_key = ApiKey::generate();
        store.insert_token(&admin_key, "admin", None).await?;
        let rack_system_id = store
            .register_rack(&cfg.rack_hostname, env!("CARGO_PKG_VERSION"))
            .await?;
        let mut addrs = Vec::new();
        let mut listeners = Vec::new();
        for l in cfg.listeners {
            l.set_nonblocking(true).map_err(SimError::Listener)?;
            addrs.push(l.local_addr().map_err(SimError::Listener)?);
            listeners.push(tokio::net::TcpListener::from_std(l).map_err(SimError::Listener)?);
        }
        let maas_url = cfg
            .maas_url
            .unwrap_or_else(|| format!("http://{}/MAAS", addrs[0]));
        let state = Arc::new(RegionState {
            store,
            maas_url: maas_url.trim_end_matches('/').to_string(),
            power: IpmiPowerDriver::new(PowerDriverConfig {
                argv: cfg.profile.ipmi_argv(),
                ..cfg.power
            }),
            profile: cfg.profile,
            ipmi_retry_base_seconds: cfg.ipmi_retry_base_seconds,
            rack_system_id,
            rack_interfaces: cfg.rack_interfaces,
            tasks: Mutex::new(Vec::new()),
            power_busy: Default::default(),
        });
        let (shutdown, rx) = watch::channel(false);
        let app = super::api::router(state.clone()).merge(super::metadata::router(state.clone()));
        let mut servers = Vec::new();
        for l in listeners {
            let app = app.clone();
            let mut rx = rx.clone();
            servers.push(tokio::spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(l, app).with_graceful_shutdown(stop).await {
                    tracing::error!(error = %e, "sim region server stopped");
                }
            }));
        }
        if let Some(every) = cfg.power_query_interval {
            let stale = cfg.power_query_stale;
            let batch = cfg.power_query_batch.max(1);
            let at_once = cfg.power_query_concurrency.max(1);
            let st = state.clone();
            let mut rx = rx.clone();
            servers.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = rx.wait_for(|s| *s) => return,
                        _ = tokio::time::sleep(every) => {}
                    }
                    if let Ok(ids) = st.store.machines_to_monitor(stale).await {
                        use futures::StreamExt;
                        let due: Vec<String> = ids
                            .into_iter()
                            .filter(|id| !st.power_busy(id))
                            .take(batch)
                            .collect();
                        futures::stream::iter(due)
                            .for_each_concurrent(at_once, |id| {
                                let st = st.clone();
                                async move {
                                    let _ =
                                        st.query_power(&id, super::state::QueryVia::Monitor).await;
                                }
                            })
                            .await;
                    }
                }
            }));
        }
        if let Some(timeout) = cfg.heartbeat_timeout {
            let st = state.clone();
            let mut rx = rx.clone();
            let every = (timeout / 4).clamp(Duration::from_millis(20), Duration::from_secs(10));
            servers.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = rx.wait_for(|s| *s) => return,
                        _ = tokio::time::sleep(every) => {}
                    }
                    st.fail_silent_machines(timeout).await;
                }
            }));
        }
        tracing::info!(%maas_url, ?addrs, "sim region (a MAAS 2.8 reference implementation, not MAAS) serving");
        Ok(SimRegion {
            state,
            admin_key,
            addrs,
            shutdown,
            servers,
        })
    }

    /// The admin's API key (consumer:token:secret); never log it.
    pub fn admin_key(&self) -> &ApiKey {
        &self.admin_key
    }

    /// Where the region listens.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The URL guests are told (preseeds, boot command lines).
    pub fn maas_url(&self) -> &str {
        &self.state.maas_url
    }

    /// http://<first listener>/MAAS
    pub fn local_maas_url(&self) -> String {
        format!("http://{}/MAAS", self.addrs[0])
    }

    /// An admin client on the first listener; its waiters wake when a
    /// machine enlists or changes status, not only at their next poll.
    pub fn client(&self) -> Result<MaasClient, MaasError> {
        Ok(
            MaasClient::new(&self.local_maas_url(), Some(self.admin_key.clone()))?
                .with_change_signal(self.state.store.subscribe_changes()),
        )
    }

    /// The handle the sim rack uses (boot decisions, PXE/TFTP events).
    pub fn rack(&self) -> RackHandle {
        RackHandle {
            state: self.state.clone(),
        }
    }

    pub fn rack_system_id(&self) -> &str {
        &self.state.rack_system_id
    }

    /// Stop serving and cancel running power tasks.
    pub async fn shutdown(mut self) {
        self.stop_now();
        for s in self.servers.drain(..) {
            let _ = s.await;
        }
    }

    fn stop_now(&mut self) {
        let _ = self.shutdown.send(true);
        if let Ok(mut tasks) = self.state.tasks.try_lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
    }
}

impl Drop for SimRegion {
    fn drop(&mut self) {
        self.stop_now();
        for s in &self.servers {
            s.abort();
        }
    }
}

/// One subnet the rack serves DHCP on (derived from the API's objects).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DhcpSubnet {
    pub cidr: String,
    pub vid: u16,
    pub gateway_ip: Option<String>,
    pub dns_servers: Vec<String>,
    /// (start, end) inclusive; leases come only from these.
    pub dynamic_ranges: Vec<(String, String)>,
    pub reserved_ranges: Vec<(String, String)>,
}

/// What the sim rack calls: boot decisions and the events MAAS's rack sends.
#[derive(Clone)]
pub struct RackHandle {
    state: Arc<RegionState>,
}

impl RackHandle {
    /// Decide the boot for `mac` (see `boot::boot_config`) and record
    /// "Performing PXE boot" for the ephemeral boots (Poweroff is one).
    pub async fn boot_config(
        &self,
        mac: &str,
        firmware: Firmware,
        boot_http: &str,
    ) -> Result<BootConfig, StoreError> {
        let machine = self.state.store.machine_for_mac(mac).await?;
        let ctx = BootContext {
            maas_url: self.state.maas_url.clone(),
            boot_http: boot_http.to_string(),
        };
        let cfg = boot_config(&ctx, machine.as_ref(), mac, firmware);
        // 2.8 logs it for every purpose but local (rpc/boot.py event_log_pxe_request).
        if cfg.kernel_url.is_some() {
            self.record(mac, &events::PERFORMING_PXE_BOOT, "").await?;
        }
        Ok(cfg)
    }

    /// This rack's system_id (what `primary_rack` must name for DHCP).
    pub fn system_id(&self) -> &str {
        &self.state.rack_system_id
    }

    /// What this rack's DHCP server should serve, as MAAS configures
    /// dhcpd: every subnet on a VLAN with dhcp_on whose primary rack is this
    /// rack, with its dynamic ranges (leases come only from those).
    pub async fn dhcp_config(&self) -> Result<Vec<DhcpSubnet>, StoreError> {
        let subnets = self.state.store.subnets().await?;
        let ranges = self.state.store.ip_ranges().await?;
        Ok(subnets
            .into_iter()
            .filter(|s| {
                s.vlan.dhcp_on
                    && s.vlan.primary_rack.as_deref() == Some(self.state.rack_system_id.as_str())
            })
            .map(|s| DhcpSubnet {
                dynamic_ranges: ranges
                    .iter()
                    .filter(|r| r.subnet.id == s.id && r.range_type == "dynamic")
                    .map(|r| (r.start_ip.clone(), r.end_ip.clone()))
                    .collect(),
                reserved_ranges: ranges
                    .iter()
                    .filter(|r| r.subnet.id == s.id && r.range_type == "reserved")
                    .map(|r| (r.start_ip.clone(), r.end_ip.clone()))
                    .collect(),
                cidr: s.cidr,
                gateway_ip: s.gateway_ip,
                dns_servers: s.dns_servers,
                vid: s.vlan.vid,
            })
            .collect())
    }

    /// The machine a MAC belongs to (None: unknown, it will enlist).
    pub async fn machine_for_mac(
        &self,
        mac: &str,
    ) -> Result<Option<super::store::MachineBootState>, StoreError> {
        self.state.store.machine_for_mac(mac).await
    }

    /// A DHCP request from a PXE client ("PXE Request").
    pub async fn record_pxe_request(
        &self,
        mac: &str,
        firmware: Firmware,
        boot_file: &str,
    ) -> Result<(), StoreError> {
        let fw = match firmware {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        };
        self.record(
            mac,
            &events::PXE_REQUEST,
            &format!("{fw} firmware, boot file {boot_file}"),
        )
        .await
    }

    /// A TFTP read ("TFTP Request", the description is the path, as MAAS).
    pub async fn record_tftp_request(&self, mac: &str, path: &str) -> Result<(), StoreError> {
        self.record(mac, &events::TFTP_REQUEST, path).await
    }

    /// An HTTP boot resource read: the kernel or initrd is "Loading ephemeral".
    pub async fn record_http_request(&self, mac: &str, path: &str) -> Result<(), StoreError> {
        let kind = if path.contains("kernel") || path.contains("initrd") {
            &events::LOADING_EPHEMERAL
        } else {
            &events::HTTP_REQUEST
        };
        self.record(mac, kind, path).await
    }

    /// Any event about the machine with `mac` (kept by MAC when unknown).
    pub async fn record(
        &self,
        mac: &str,
        kind: &EventKind,
        description: &str,
    ) -> Result<(), StoreError> {
        let machine = self.state.store.machine_for_mac(mac).await?;
        let mac_norm = super::store::normalise_mac(mac).unwrap_or_else(|| mac.to_string());
        self.state
            .store
            .record_event(
                machine.as_ref().map(|m| m.system_id.as_str()),
                Some(&mac_norm),
                kind,
                description,
            )
            .await
            .map(|_| ())
    }
}
