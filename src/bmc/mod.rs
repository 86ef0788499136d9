//! The virtual BMC: many BMCs in one async process (see docs/bmc.md).
//!
//! Layers, outermost first: [`server`] (UDP task per BMC) and [`inband`]
//! (QEMU's VM serial protocol on a unix socket) -> [`instance`] (one BMC: one lock around
//! state, sessions, faults) -> [`session`] (1.5 and RMCP+ sessions) ->
//! [`cmd`] (one file per command group) -> [`state`]. [`codec`] is the pure
//! wire format both the BMC and the bench client use.

pub mod bench;
pub mod cli;
pub mod client;
pub mod cmd;
pub mod codec;
pub mod config;
pub mod fault;
pub mod inband;
pub mod instance;
pub mod loopback;
pub mod poll;
pub mod power;
pub mod redfish;
pub mod server;
pub mod session;
pub mod state;
pub mod transcript;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::FleetConfig;
pub use fault::{Fault, Where};
pub use instance::{Bmc, LatencyRecorder, UserView};

/// Why a fleet could not start or a handle call failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("BMC {bmc}: {source}")]
    Config {
        bmc: String,
        #[source]
        source: config::ConfigError,
    },
    #[error(
        "BMC {bmc}: cannot bind LAN socket {addr}: {source}; is the port free and the netns present?"
    )]
    Bind {
        bmc: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("BMC {bmc}: cannot listen on in-band socket {path}: {source}")]
    Inband {
        bmc: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open transcript {path}: {source}")]
    Transcript {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "BMC {bmc}: cannot listen for Redfish on {addr}: {source}; is the port free and the netns present?"
    )]
    RedfishBind {
        bmc: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    RedfishTls(#[from] redfish::tls::TlsError),
    #[error("no BMC named {0:?} in this fleet")]
    NoSuchBmc(String),
    #[error("BMC {bmc}: power backend: {source}")]
    Power {
        bmc: String,
        #[source]
        source: power::PowerError,
    },
}

/// A running fleet.
pub struct Fleet;

/// Control of a running fleet: faults, views, shutdown.
pub struct FleetHandle {
    bmcs: BTreeMap<String, Arc<Bmc>>,
    lan_addrs: BTreeMap<String, SocketAddr>,
    redfish_addrs: BTreeMap<String, SocketAddr>,
    /// The run's Redfish certificate (PEM, no key), when any BMC serves it.
    redfish_cert_pem: Option<String>,
    inband: BTreeMap<String, Arc<inband::VmLink>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Fleet {
    /// Bind every BMC's sockets and start serving.
    pub async fn start(config: FleetConfig) -> Result<FleetHandle, FleetError> {
        let transcript = match &config.transcript {
            Some(p) => Some(Arc::new(transcript::Transcript::create(p).map_err(
                |source| FleetError::Transcript {
                    path: p.clone(),
                    source,
                },
            )?)),
            None => None,
        };
        let (tx, rx) = watch::channel(false);
        let mut handle = FleetHandle {
            bmcs: BTreeMap::new(),
            lan_addrs: BTreeMap::new(),
            redfish_addrs: BTreeMap::new(),
            redfish_cert_pem: None,
            inband: BTreeMap::new(),
            shutdown: tx,
            tasks: Vec::new(),
        };
        // One certificate per fleet start, naming every Redfish address.
        let redfish_names: Vec<String> = config
            .bmcs
            .iter()
            .filter_map(|c| c.resolve().ok()?.redfish)
            .map(|a| a.ip().to_string())
            .collect();
        let redfish_tls = if redfish_names.is_empty() {
            None
        } else {
            let cert = redfish::tls::make(&redfish_names)?;
            handle.redfish_cert_pem = Some(cert.cert_pem.clone());
            Some(cert.server)
        };
        for cfg in &config.bmcs {
            let resolved = cfg
                .resolve()
                .map_err(|(field, message)| FleetError::Config {
                    bmc: cfg.name.clone(),
                    source: config::ConfigError::Invalid {
                        path: "<in-process config>".into(),
                        field,
                        message,
                    },
                })?;
            let link = cfg
                .inband
                .as_ref()
                .map(|_| Arc::new(inband::VmLink::default()));
            let power: Arc<dyn power::PowerBackend> = match &cfg.power {
                config::PowerConfig::Memory {
                    on,
                    powers_off_after,
                } => Arc::new(power::MemoryPower::powering_off_after(
                    *on,
                    *powers_off_after,
                )),
                config::PowerConfig::Libvirt { uri, domain } => {
                    Arc::new(power::LibvirtPower::new(uri.clone(), domain.clone()))
                }
                config::PowerConfig::Vm => link.clone().expect("validated: vm power needs inband"),
            };
            let bmc = Arc::new(Bmc::new(cfg, &resolved, power, transcript.clone()));
            let std_sock = crate::lab::netns::bind_udp(cfg.lan.netns.as_deref(), resolved.listen)
                .map_err(|source| FleetError::Bind {
                bmc: cfg.name.clone(),
                addr: resolved.listen,
                source,
            })?;
            let sock =
                tokio::net::UdpSocket::from_std(std_sock).map_err(|source| FleetError::Bind {
                    bmc: cfg.name.clone(),
                    addr: resolved.listen,
                    source,
                })?;
            let local = sock.local_addr().map_err(|source| FleetError::Bind {
                bmc: cfg.name.clone(),
                addr: resolved.listen,
                source,
            })?;
            handle.tasks.push(tokio::spawn(server::serve_lan(
                bmc.clone(),
                sock,
                rx.clone(),
            )));
            if let (Some(ib), Some(link)) = (&cfg.inband, link) {
                let listener = inband::listen(&ib.socket).map_err(|source| FleetError::Inband {
                    bmc: cfg.name.clone(),
                    path: ib.socket.clone(),
                    source,
                })?;
                handle.tasks.push(tokio::spawn(inband::serve(
                    bmc.clone(),
                    link.clone(),
                    listener,
                    ib.socket.clone(),
                    rx.clone(),
                )));
                handle.inband.insert(cfg.name.clone(), link);
            }
            if let (Some(addr), Some(tls)) = (resolved.redfish, &redfish_tls) {
                let bind_err = |source| FleetError::RedfishBind {
                    bmc: cfg.name.clone(),
                    addr,
                    source,
                };
                let std_listener = crate::lab::netns::bind_tcp(cfg.lan.netns.as_deref(), addr)
                    .map_err(bind_err)?;
                let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind_err)?;
                let local = listener.local_addr().map_err(bind_err)?;
                handle.tasks.push(tokio::spawn(redfish::serve(
                    bmc.clone(),
                    listener,
                    tls.clone(),
                    rx.clone(),
                )));
                handle.redfish_addrs.insert(cfg.name.clone(), local);
            }
            handle.lan_addrs.insert(cfg.name.clone(), local);
            handle.bmcs.insert(cfg.name.clone(), bmc);
        }
        Ok(handle)
    }
}

impl FleetHandle {
    pub fn bmc(&self, name: &str) -> Result<&Arc<Bmc>, FleetError> {
        self.bmcs
            .get(name)
            .ok_or_else(|| FleetError::NoSuchBmc(name.into()))
    }

    /// Names of the BMCs, sorted.
    pub fn names(&self) -> Vec<String> {
        self.bmcs.keys().cloned().collect()
    }

    /// The address a BMC's LAN socket is bound to (port 0 resolved).
    pub fn lan_addr(&self, name: &str) -> Result<SocketAddr, FleetError> {
        self.lan_addrs
            .get(name)
            .copied()
            .ok_or_else(|| FleetError::NoSuchBmc(name.into()))
    }

    /// The address a BMC's Redfish service listens on (port 0 resolved),
    /// if it serves Redfish.
    pub fn redfish_addr(&self, name: &str) -> Option<SocketAddr> {
        self.redfish_addrs.get(name).copied()
    }

    /// The run's Redfish certificate as PEM (public; the key never leaves
    /// this process's memory).
    pub fn redfish_cert_pem(&self) -> Option<&str> {
        self.redfish_cert_pem.as_deref()
    }

    /// The in-band link of a BMC, if it has one (connected, VM ops).
    pub fn vm_link(&self, name: &str) -> Option<Arc<inband::VmLink>> {
        self.inband.get(name).cloned()
    }

    pub fn set_fault(&self, bmc: &str, fault: Fault) -> Result<(), FleetError> {
        self.bmc(bmc)?.set_fault(fault);
        Ok(())
    }

    pub fn clear_faults(&self, bmc: &str) -> Result<(), FleetError> {
        self.bmc(bmc)?.clear_faults();
        Ok(())
    }

    /// Whether the machine behind the BMC is powered on.
    pub fn power_state(&self, bmc: &str) -> Result<bool, FleetError> {
        let b = self.bmc(bmc)?;
        b.power_state().map_err(|source| FleetError::Power {
            bmc: bmc.into(),
            source,
        })
    }

    /// The BMC's users, without passwords.
    pub fn users(&self, bmc: &str) -> Result<Vec<UserView>, FleetError> {
        Ok(self.bmc(bmc)?.users())
    }

    /// Stop every task and wait for them.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for mut t in self.tasks {
            // A Redfish client that keeps a connection half-open must not
            // hold up teardown.
            if tokio::time::timeout(std::time::Duration::from_secs(5), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
    }
}
