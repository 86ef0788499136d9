//! Power backends behind one trait: in-memory (tests, VM-less "phantom"
//! machines), a libvirt domain, and the in-band VM link to QEMU (see
//! [`crate::bmc::inband`]). Calls are synchronous: the in-memory backend is
//! instant and libvirt's calls are local RPCs; a failure answers 0xC0.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A power action (Chassis Control, IPMI 2.0 §28.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerOp {
    On,
    Off,
    Cycle,
    Reset,
    /// ACPI soft off (power button).
    Soft,
    /// Diagnostic interrupt (Chassis Control 4; Redfish ResetType Nmi).
    Nmi,
}

#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    #[error(
        "libvirt domain {domain}: {action} failed: {message}; is libvirtd running and the domain defined?"
    )]
    Libvirt {
        domain: String,
        action: &'static str,
        message: String,
    },
    #[error("power {op:?} is not possible through {backend}: {why}")]
    Unsupported {
        backend: &'static str,
        op: PowerOp,
        why: &'static str,
    },
}

pub trait PowerBackend: Send + Sync {
    fn is_on(&self) -> Result<bool, PowerError>;
    fn apply(&self, op: PowerOp) -> Result<(), PowerError>;
    /// Every action applied so far, for backends that keep them (the
    /// in-memory one: tests count power cycles).
    fn applied(&self) -> Option<Vec<PowerOp>> {
        None
    }
}

/// Power held in memory. Soft off and cycle complete at once.
#[derive(Debug, Default)]
pub struct MemoryPower {
    on: AtomicBool,
    /// What was applied, in order: a retransmitted power cycle must show
    /// up once.
    applied: Mutex<Vec<PowerOp>>,
    /// A machine that shuts itself down: the chassis turns off this long
    /// after it was last powered on (fleet behaviour `powers_off_after`).
    powers_off_after: Option<Duration>,
    /// When the chassis last came on (for `powers_off_after`).
    on_since: Mutex<Option<Instant>>,
}

impl MemoryPower {
    pub fn new(on: bool) -> Self {
        MemoryPower::powering_off_after(on, None)
    }

    /// Power in memory whose chassis turns itself off `after` each power-on.
    pub fn powering_off_after(on: bool, after: Option<Duration>) -> Self {
        MemoryPower {
            on: AtomicBool::new(on),
            applied: Mutex::new(Vec::new()),
            powers_off_after: after,
            on_since: Mutex::new(on.then(Instant::now)),
        }
    }

    /// Turn the chassis off if it has been on for `powers_off_after`
    /// (checked on every read, so no timer task per BMC).
    fn settle(&self) {
        let Some(after) = self.powers_off_after else {
            return;
        };
        let mut since = self.on_since.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = *since
            && t.elapsed() >= after
        {
            self.on.store(false, Ordering::SeqCst);
            *since = None;
        }
    }
}

impl PowerBackend for MemoryPower {
    fn is_on(&self) -> Result<bool, PowerError> {
        self.settle();
        Ok(self.on.load(Ordering::SeqCst))
    }

    fn apply(&self, op: PowerOp) -> Result<(), PowerError> {
        self.settle();
        let mut since = self.on_since.lock().unwrap_or_else(|p| p.into_inner());
        match op {
            PowerOp::On | PowerOp::Cycle | PowerOp::Reset => {
                // On when already on keeps the time it came on.
                if !self.on.swap(true, Ordering::SeqCst) || op != PowerOp::On {
                    *since = Some(Instant::now());
                }
            }
            PowerOp::Off | PowerOp::Soft => {
                self.on.store(false, Ordering::SeqCst);
                *since = None;
            }
            PowerOp::Nmi => {}
        }
        drop(since);
        self.applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(op);
        Ok(())
    }

    fn applied(&self) -> Option<Vec<PowerOp>> {
        Some(
            self.applied
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// A libvirt domain, looked up by name on each call (it may be redefined).
pub struct LibvirtPower {
    uri: String,
    domain: String,
    conn: Mutex<Option<virt::connect::Connect>>,
}

impl LibvirtPower {
    pub fn new(uri: impl Into<String>, domain: impl Into<String>) -> Self {
        virt::error::clear_error_callback();
        LibvirtPower {
            uri: uri.into(),
            domain: domain.into(),
            conn: Mutex::new(None),
        }
    }

    fn with_domain<T>(
        &self,
        action: &'static str,
        f: impl FnOnce(&virt::domain::Domain) -> Result<T, virt::error::Error>,
    ) -> Result<T, PowerError> {
        let err = |e: virt::error::Error| PowerError::Libvirt {
            domain: self.domain.clone(),
            action,
            message: e.to_string(),
        };
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(virt::connect::Connect::open(Some(&self.uri)).map_err(err)?);
        }
        let conn = guard.as_ref().expect("connected above");
        let result = conn.lookup_domain_by_name(&self.domain).and_then(|d| f(&d));
        if result.is_err() {
            // Reconnect next time: libvirtd may have restarted.
            *guard = None;
        }
        result.map_err(err)
    }
}

impl PowerBackend for LibvirtPower {
    fn is_on(&self) -> Result<bool, PowerError> {
        self.with_domain("read state", |d| d.is_active())
    }

    fn apply(&self, op: PowerOp) -> Result<(), PowerError> {
        match op {
            PowerOp::On => {
                self.with_domain(
                    "create",
                    |d| if d.is_active()? { Ok(()) } else { d.create() },
                )
            }
            PowerOp::Off => self.with_domain("destroy", |d| d.destroy()),
            PowerOp::Soft => self.with_domain("shutdown", |d| d.shutdown()),
            PowerOp::Reset => self.with_domain("reset", |d| d.reset()),
            PowerOp::Cycle => self.with_domain("cycle", |d| {
                d.destroy()?;
                d.create()
            }),
            PowerOp::Nmi => self.with_domain("inject NMI", |d| {
                // virt 0.5 has no wrapper for virDomainInjectNMI.
                // SAFETY: the pointer is the live domain `d` owns; flags 0.
                let rc = unsafe { virt::sys::virDomainInjectNMI(d.as_ptr(), 0) };
                if rc < 0 {
                    Err(virt::error::Error::last_error())
                } else {
                    Ok(())
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_machine_that_shuts_itself_down_turns_off_after_its_time() {
        // Zero: off at the first read after power-on.
        let quick = MemoryPower::powering_off_after(false, Some(Duration::ZERO));
        quick.apply(PowerOp::On).unwrap();
        assert!(!quick.is_on().unwrap());
        // An hour: still on; off and on again restarts its time.
        let slow = MemoryPower::powering_off_after(false, Some(Duration::from_secs(3600)));
        slow.apply(PowerOp::On).unwrap();
        assert!(slow.is_on().unwrap());
        slow.apply(PowerOp::Off).unwrap();
        assert!(!slow.is_on().unwrap());
        // Without the behaviour the chassis stays on.
        let plain = MemoryPower::new(false);
        plain.apply(PowerOp::On).unwrap();
        assert!(plain.is_on().unwrap());
    }

    #[test]
    fn libvirt_test_driver_power_cycle() {
        // libvirt's test:///default driver runs in-process with a running
        // domain "test".
        let p = LibvirtPower::new("test:///default", "test");
        assert!(p.is_on().unwrap());
        p.apply(PowerOp::Off).unwrap();
        assert!(!p.is_on().unwrap());
        p.apply(PowerOp::On).unwrap();
        assert!(p.is_on().unwrap());
        p.apply(PowerOp::Reset).unwrap();
        p.apply(PowerOp::Cycle).unwrap();
        assert!(p.is_on().unwrap());
        let missing = LibvirtPower::new("test:///default", "no-such-domain");
        assert!(missing.is_on().is_err());
    }
}
