//! One BMC: its shared state, sessions and fault switches behind one lock,
//! its power backend and transcript. Both endpoints (LAN datagrams and
//! in-band VM messages) come through here, so what the guest configures
//! in-band is what the next LAN session sees.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use super::cmd::{self, Ctx, Env, Reply};
use super::config::{BmcConfig, Resolved, SessionType};
use super::fault::{Fault, Faults, Medium, ReplyFault, ReplyKind};
use super::power::{PowerBackend, PowerError};
use super::session::{self, BmcParts, SessionLimits, SessionTable};
use super::state::*;
use super::transcript::{Entry, Transcript};

/// Mutable parts of a BMC.
pub struct Inner {
    pub state: BmcState,
    pub sessions: SessionTable,
    pub faults: Faults,
}

/// An answer to one datagram and how long a reply fault holds it back.
#[derive(Debug, Clone)]
pub struct HeldAnswer {
    pub bytes: Vec<u8>,
    pub delay: Option<std::time::Duration>,
}

/// A user as shown to the harness (no password).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserView {
    pub id: u8,
    pub name: String,
    pub enabled: bool,
    pub lan_privilege: u8,
    pub lan_ipmi_messaging: bool,
}

pub struct Bmc {
    pub name: String,
    pub(crate) inner: Mutex<Inner>,
    pub(crate) power: Arc<dyn PowerBackend>,
    pub(crate) transcript: Option<Arc<Transcript>>,
    pub(crate) limits: SessionLimits,
    /// Server-side latency samples, only when a benchmark asks for them.
    pub(crate) latency: std::sync::OnceLock<Arc<LatencyRecorder>>,
}

/// Nanoseconds from a datagram's arrival to its answer being sent.
#[derive(Debug, Default)]
pub struct LatencyRecorder {
    samples: Mutex<Vec<u32>>,
}

impl LatencyRecorder {
    pub fn record(&self, nanos: u128) {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(nanos.min(u32::MAX as u128) as u32);
    }

    /// Take the samples recorded so far.
    pub fn take(&self) -> Vec<u32> {
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Bmc {
    /// A BMC from validated config and its resolved values.
    pub fn new(
        cfg: &BmcConfig,
        r: &Resolved,
        power: Arc<dyn PowerBackend>,
        transcript: Option<Arc<Transcript>>,
    ) -> Self {
        let mut users = vec![User::empty(); MAX_USERS as usize];
        for (i, u) in cfg.users.iter().enumerate() {
            let slot = &mut users[i + 1];
            slot.name[..u.name.len()].copy_from_slice(u.name.as_bytes());
            slot.password[..u.password.len()].copy_from_slice(u.password.as_bytes());
            slot.enabled = u.enabled;
            slot.lan = UserChannelAccess {
                privilege: u.privilege.level(),
                ipmi_messaging: true,
                link_auth: false,
                callback_only: false,
            };
        }
        let access = ChannelAccess {
            access_mode: 2,
            user_level_auth_disabled: false,
            per_message_auth_disabled: false,
            pef_alerting_disabled: true,
            privilege_limit: privilege::ADMIN,
        };
        let auth_bits = r.auth_types.iter().fold(0u8, |a, t| a | t.bit());
        let mut enables = [auth_bits; 5];
        enables[4] = 0;
        let state = BmcState {
            users,
            lan_access_nonvolatile: access,
            lan_access_volatile: access,
            lan: LanConfig {
                set_in_progress: 0,
                auth_enables: enables,
                ip: r.reported_ip,
                ip_source: 1,
                mac: r.mac,
                netmask: cfg
                    .lan
                    .netmask
                    .unwrap_or(std::net::Ipv4Addr::new(255, 255, 255, 0)),
                ipv4_header: [0x40, 0x40, 0x10],
                arp_control: 0,
                garp_interval: 0,
                gateway_ip: cfg.lan.gateway.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                gateway_mac: [0; 6],
                backup_gateway_ip: std::net::Ipv4Addr::UNSPECIFIED,
                backup_gateway_mac: [0; 6],
                community: *b"public\0\0\0\0\0\0\0\0\0\0\0\0",
                vlan_id: [0, 0],
                vlan_priority: 0,
                cipher_privileges: [privilege::ADMIN; 16],
                bad_password_threshold: [0; 6],
            },
            boot: BootOptions {
                set_in_progress: 0,
                valid_bit_clearing: 0,
                info_ack: [0, 0],
                flags: [0; 5],
            },
            identity: DeviceIdentity {
                device_id: 0x20,
                device_revision: 1,
                firmware_major: 1,
                firmware_minor: 0x00,
                manufacturer_id: 0,
                product_id: 0x0E2E,
                device_guid: r.guid,
                system_guid: r.guid,
            },
            cipher_suites: r.suites.clone(),
            auth_type_support: auth_bits,
            global_enables: 0x0C,
            kg: r.kg,
            v15_sessions: cfg.session_types.contains(&SessionType::Ipmi15),
            v20_sessions: cfg.session_types.contains(&SessionType::Ipmi20),
        };
        Bmc {
            name: cfg.name.clone(),
            inner: Mutex::new(Inner {
                state,
                sessions: SessionTable::default(),
                faults: Faults::default(),
            }),
            power,
            transcript,
            limits: SessionLimits {
                timeout: r.session_timeout,
                max_sessions: r.max_sessions,
            },
            latency: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock must not take the BMC down.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handle one LAN datagram: the bytes to send back, if any (a reply
    /// fault that drops this answer gives `None`; one that delays it is
    /// ignored here, see [`Bmc::answer_lan`]).
    pub fn handle_lan(&self, peer: SocketAddr, dgram: &[u8], now: Instant) -> Option<Vec<u8>> {
        self.answer_lan(peer, dgram, now).map(|a| a.bytes)
    }

    /// Handle one LAN datagram: the answer and how long to hold it back
    /// (a reply fault), or `None` when there is nothing to send.
    pub fn answer_lan(&self, peer: SocketAddr, dgram: &[u8], now: Instant) -> Option<HeldAnswer> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let parts = BmcParts {
            name: &self.name,
            state: &mut inner.state,
            sessions: &mut inner.sessions,
            faults: &mut inner.faults,
            power: &*self.power,
            transcript: self.transcript.as_deref(),
            limits: self.limits,
        };
        let answer = session::handle_datagram(parts, peer, dgram, now)?;
        let hold = if answer.fresh {
            inner.faults.take_reply_fault(answer.what)
        } else {
            None
        };
        let delay = match hold {
            None => None,
            Some(ReplyFault::Drop) => {
                self.log_reply_fault(peer, answer.what, "dropped");
                return None;
            }
            Some(ReplyFault::Delay(d)) => {
                self.log_reply_fault(peer, answer.what, &format!("delayed by {d:?}"));
                Some(d)
            }
        };
        Some(HeldAnswer {
            bytes: answer.bytes,
            delay,
        })
    }

    fn log_reply_fault(&self, peer: SocketAddr, what: ReplyKind, how: &str) {
        if let Some(t) = &self.transcript {
            let mut e = Entry::new(&self.name, Medium::Lan, "reply_fault");
            e.peer = Some(peer.to_string());
            e.detail = Some(format!("{what:?} {how}"));
            t.write(&e);
        }
    }

    /// Handle one in-band request from the system interface.
    pub fn handle_inband(&self, netfn: u8, cmd: u8, data: &[u8]) -> Reply {
        self.run_command(Medium::Inband, privilege::ADMIN, netfn, cmd, data)
    }

    /// Run one IPMI command outside a LAN session: in-band, or on behalf of
    /// a Redfish request (whose user's privilege limits it as on the LAN).
    /// Command faults apply and the transcript records it.
    pub fn run_command(
        &self,
        medium: Medium,
        privilege: u8,
        netfn: u8,
        cmd: u8,
        data: &[u8],
    ) -> Reply {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let ctx = Ctx {
            medium,
            privilege,
            active_sessions: inner.sessions.active_count().min(63) as u8,
        };
        let mut env = Env {
            state: &mut inner.state,
            power: &*self.power,
            faults: &mut inner.faults,
            ctx,
        };
        let reply = cmd::dispatch(&mut env, netfn, cmd, data);
        if let Some(t) = &self.transcript {
            t.write(&Entry::new(&self.name, medium, "command").command(
                netfn,
                cmd,
                data,
                reply.cc,
                &reply.data,
            ));
        }
        reply
    }

    /// Write a transcript line, if this BMC keeps a transcript.
    pub fn log(&self, e: &Entry<'_>) {
        if let Some(t) = &self.transcript {
            t.write(e);
        }
    }

    /// Record server-side latency of every answered datagram from now on.
    pub fn record_latency(&self, recorder: Arc<LatencyRecorder>) {
        let _ = self.latency.set(recorder);
    }

    pub fn set_fault(&self, fault: Fault) {
        if let Some(t) = &self.transcript {
            let mut e = Entry::new(&self.name, Medium::Lan, "fault_set");
            e.detail = Some(format!("{fault:?}"));
            t.write(&e);
        }
        self.lock().faults.set(fault);
    }

    pub fn clear_faults(&self) {
        self.lock().faults = Faults::default();
    }

    /// Take the fault decision for one incoming datagram: `None` to drop it,
    /// else the extra latency to add before answering.
    pub fn admit_datagram(&self) -> Option<Option<std::time::Duration>> {
        let mut inner = self.lock();
        if inner.faults.drop_datagram() {
            return None;
        }
        Some(inner.faults.latency)
    }

    pub fn power_state(&self) -> Result<bool, PowerError> {
        self.power.is_on()
    }

    /// Power actions applied so far, if the backend keeps them (in-memory).
    pub fn power_actions(&self) -> Option<Vec<super::power::PowerOp>> {
        self.power.applied()
    }

    pub fn users(&self) -> Vec<UserView> {
        let inner = self.lock();
        inner
            .state
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| UserView {
                id: i as u8 + 1,
                name: u.name_str(),
                enabled: u.enabled,
                lan_privilege: u.lan.privilege,
                lan_ipmi_messaging: u.lan.ipmi_messaging,
            })
            .collect()
    }

    /// A copy of the whole state (tests, snapshots).
    pub fn state(&self) -> BmcState {
        self.lock().state.clone()
    }

    /// Sessions active now.
    pub fn active_sessions(&self) -> usize {
        let mut inner = self.lock();
        inner.sessions.purge(Instant::now(), self.limits.timeout);
        inner.sessions.active_count()
    }
}
