//! Power backends behind one trait: in-memory (tests, VM-less "phantom"
//! machines), a libvirt domain, and the in-band VM link to QEMU (see
//! [`crate::bmc::inband`]). Calls are synchronous: the in-memory backend is
//! instant and libvirt's calls are local RPCs; a failure answers 0xC0.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

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
}

impl MemoryPower {
    pub fn new(on: bool) -> Self {
        MemoryPower {
            on: AtomicBool::new(on),
            applied: Mutex::new(Vec::new()),
        }
    }
}

impl PowerBackend for MemoryPower {
    fn is_on(&self) -> Result<bool, PowerError> {
        Ok(self.on.load(Ordering::SeqCst))
    }

    fn apply(&self, op: PowerOp) -> Result<(), PowerError> {
        match op {
            PowerOp::On | PowerOp::Cycle | PowerOp::Reset => self.on.store(true, Ordering::SeqCst),
            PowerOp::Off | PowerOp::Soft => self.on.store(false, Ordering::SeqCst),
            PowerOp::Nmi => {}
        }
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
