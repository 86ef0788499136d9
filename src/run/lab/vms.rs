//! The libvirt side of the lab: a plan machine's domain (defined, not
//! started: power goes through the BMC), its console, and the power button
//! a person presses before MAAS knows the machine.

use std::path::{Path, PathBuf};

use crate::lab::vm;
use crate::plan::MachinePlan;
use crate::run::error::StageError;
use crate::scenario::{Firmware, NicModel};

/// The domain's files: kept beside the disks, where libvirt-qemu may write.
pub fn console_path(vm_dir: &Path, m: &MachinePlan) -> PathBuf {
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
        identity: vm::MachineIdentity::lab(&p.host.vm_dir, &m.name, firmware),
    }
}

/// The libvirt UUID of a run's domain: the plan's UUID comes from the seed
/// and machine name, so two runs of one scenario would ask libvirt for the
/// same UUID, which it refuses; mixing in the run id keeps them apart.
///
/// One byte is not left to chance: iPXE sends the SMBIOS UUID in DHCP
/// option 97 with its first three fields little-endian, and pxelinux takes
/// wire byte 6 (so the low byte of the third field) for the version and
/// skips its `pxelinux.cfg/<uuid>` probe unless it is 0x10..=0xef. With a
/// random byte one machine in eight never probed, which made the TFTP
/// requests a run records depend on its run id.
pub fn run_uuid(run_id: &str, plan_uuid: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("{run_id}/{plan_uuid}").as_bytes());
    let mut b: [u8; 16] = h[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[7] = 0x10 + b[7] % 0xe0;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// Whether pxelinux probes `pxelinux.cfg/<uuid>` for a machine with this
/// SMBIOS UUID booted by iPXE (see `run_uuid`).
pub fn pxelinux_probes_uuid(uuid: &uuid::Uuid) -> bool {
    // iPXE's wire order swaps the first three fields; wire byte 6 is the
    // third field's low byte, RFC 4122 byte 7.
    (0x10..0xf0).contains(&uuid.as_bytes()[7])
}

/// `vm::define`, with the console file opened for appending: a machine
/// boots more than once (enlist, then commission) and the log keeps
/// every boot.
pub async fn define_keeping_console(
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
pub fn open_socket(path: &Path) -> Result<(), StageError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(StageError::file(path))
}

/// The last line the guest printed, for wait errors.
pub fn last_console_line(path: &Path) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&text);
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(|l| l.chars().take(160).collect())
}

/// Press the domain's power button (start) or pull its plug (destroy).
pub async fn power_button(domain: &str, on: bool) -> Result<(), StageError> {
    let domain = domain.to_string();
    tokio::task::spawn_blocking(move || {
        let conn = vm::connect()?;
        if on {
            vm::start(&conn, &domain)
        } else {
            vm::destroy(&conn, &domain)
        }
    })
    .await
    .map_err(|e| StageError::Lab(e.to_string()))?
    .map_err(StageError::from)
}

/// Whether the domain runs (a paused guest counts as on).
pub async fn is_running(domain: &str) -> Result<bool, StageError> {
    let domain = domain.to_string();
    let state =
        tokio::task::spawn_blocking(move || vm::connect().and_then(|c| vm::state(&c, &domain)))
            .await
            .map_err(|e| StageError::Lab(e.to_string()))??;
    Ok(matches!(
        state,
        Some(virt::domain::DomainState::Running | virt::domain::DomainState::Paused)
    ))
}

/// Where libvirt (qemu:///system) keeps a running domain's pid file.
const LIBVIRT_QEMU_RUN_DIR: &str = "/run/libvirt/qemu";

/// Whether the domain's QEMU process runs, from libvirt's pid file and
/// /proc: a look that costs no libvirt call, for naps; None when it cannot
/// tell (no libvirt run directory, an unreadable file).
pub fn qemu_running(domain: &str) -> Option<bool> {
    let dir = Path::new(LIBVIRT_QEMU_RUN_DIR);
    if !dir.is_dir() {
        return None;
    }
    match std::fs::read_to_string(dir.join(format!("{domain}.pid"))) {
        Ok(pid) => {
            let pid = pid.trim();
            Some(!pid.is_empty() && Path::new("/proc").join(pid).exists())
        }
        // libvirt deletes the pid file when the domain stops.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}

/// How often a nap looks at the QEMU process.
const VM_LOOK: std::time::Duration = std::time::Duration::from_millis(100);

/// Sleep `max`, or less: until the domain's QEMU process is seen to start
/// (`on`) or to end (`!on`). Only a turn counts: a VM already in that state
/// (a BMC that answers otherwise, a fault) naps the whole `max`.
pub async fn nap_until_vm_turns(domain: &str, on: bool, max: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + max;
    let before = qemu_running(domain);
    if before.is_none() || before == Some(on) {
        return tokio::time::sleep_until(deadline).await;
    }
    while tokio::time::Instant::now() < deadline {
        let left = deadline - tokio::time::Instant::now();
        tokio::time::sleep(VM_LOOK.min(left)).await;
        if qemu_running(domain) == Some(on) {
            return;
        }
    }
}

/// Every domain of the plan off, errors ignored: teardown removes them.
pub async fn destroy_all(domains: Vec<String>) {
    if domains.is_empty() {
        return;
    }
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(conn) = vm::connect() {
            for d in domains {
                let _ = vm::destroy(&conn, &d);
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_uuid_is_a_v4_uuid_pxelinux_probes() {
        for i in 0..2000 {
            let u = uuid::Uuid::parse_str(&run_uuid(&format!("run{i}"), "plan")).unwrap();
            assert_eq!(u.get_version_num(), 4);
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122);
            assert!(pxelinux_probes_uuid(&u), "{u}");
        }
    }

    #[test]
    fn the_probe_depends_on_the_third_fields_low_byte() {
        // seen in one commission run: probed, and not probed
        let probed = uuid::Uuid::parse_str("744ae803-84ad-4bc8-9ea3-1ba057984556").unwrap();
        let skipped = uuid::Uuid::parse_str("fe1e5485-16e9-4c0a-901d-c415c62c54d1").unwrap();
        assert!(pxelinux_probes_uuid(&probed));
        assert!(!pxelinux_probes_uuid(&skipped));
    }
}
