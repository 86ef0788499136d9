//! Lab VMs under libvirt: domain XML from a `DomainSpec` (a pure function,
//! snapshot-tested), the files QEMU opens (qcow2 disks, OVMF NVRAM copy,
//! console log) in a run directory libvirt-qemu can reach, and lifecycle
//! through the `virt` crate on qemu:///system.
//!
//! Power normally goes through the virtual BMC; the lab only provides these
//! operations. KVM is used only when a probe guest actually starts under it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};

use crate::cmd::{Cmd, CmdError};
use crate::lab::dhcp::Firmware;
use crate::plan::VM_ROOT;

/// libvirt's URI for system domains (QEMU runs as libvirt-qemu).
pub const LIBVIRT_URI: &str = "qemu:///system";
/// XML namespace of our domain metadata (run id).
pub const METADATA_NS: &str = "https://maas-e2e.invalid/schema/run/1";
const METADATA_PREFIX: &str = "maase2e";
/// Where run directories live: outside /root, so libvirt-qemu can open files.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// A named CPU model: /proc/cpuinfo shows "Intel Core Processor (Haswell,
/// no TSX)", not "QEMU Virtual CPU" (MAAS skips IPMI autodetect on QEMU).
pub const DEFAULT_CPU_MODEL: &str = "Haswell-noTSX";
/// What the lab's machines say they are in SMBIOS (types 0, 1, 2, 3).
pub const LAB_MANUFACTURER: &str = "maas-e2e";
pub const LAB_PRODUCT: &str = "lab machine";
/// The DMI string prefixes systemd-detect-virt (systemd 255,
/// src/basic/virt.c, detect_vm_dmi_vendor) takes for a hypervisor, in
/// product_name, sys_vendor, board_vendor, bios_vendor and product_version.
/// fixtures/ephemeral/bmc_config36.sh models the same list.
pub const VM_DMI_PREFIXES: &[&str] = &[
    "KVM",
    "OpenStack",
    "KubeVirt",
    "Amazon EC2",
    "QEMU",
    "VMware",
    "VMW",
    "innotek GmbH",
    "VirtualBox",
    "Oracle Corporation",
    "Xen",
    "Bochs",
    "Parallels",
    "BHYVE",
    "Hyper-V",
    "Apple Virtualization",
    "Google Compute Engine",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NicModel {
    Virtio,
    E1000,
    Rtl8139,
}

impl NicModel {
    fn libvirt_name(self) -> &'static str {
        match self {
            NicModel::Virtio => "virtio",
            NicModel::E1000 => "e1000",
            NicModel::Rtl8139 => "rtl8139",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicSpec {
    pub model: NicModel,
    /// `52:54:00:xx:xx:xx`
    pub mac: String,
    /// Lab bridge in the host namespace.
    pub bridge: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpec {
    /// qcow2 file, created by `prepare_files` when missing.
    pub path: PathBuf,
    pub size_gib: u32,
}

/// A whole SMBIOS structure QEMU takes as it is (`-smbios file=`) and so
/// builds no structure of that type itself; `prepare_files` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmbiosFile {
    pub path: PathBuf,
    pub structure: Vec<u8>,
}

/// What the guest's firmware tables say the machine is. Lab machines stand
/// in for bare metal: MAAS 3.6 skips BMC setup when systemd-detect-virt
/// finds a VM (docs/lab.md, "What the VMs hide").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineIdentity {
    /// SMBIOS type 1, 2, 3 manufacturer (sys_vendor, board_vendor).
    pub manufacturer: String,
    /// Type 1 product (product_name).
    pub product: String,
    /// Type 1 serial (product_serial).
    pub serial: String,
    /// Whole structures, in this order on QEMU's command line.
    pub smbios_files: Vec<SmbiosFile>,
}

impl MachineIdentity {
    /// The lab's identity for machine `machine`: our strings, and a type 0
    /// (BIOS information) without the "virtual machine" bit, written to
    /// `dir/<machine>.smbios-type0.bin`.
    pub fn lab(dir: &Path, machine: &str, firmware: Firmware) -> MachineIdentity {
        let bios = crate::lab::smbios0::BiosInformation {
            vendor: LAB_MANUFACTURER.into(),
            version: "lab-1".into(),
            release_date: "01/01/2024".into(),
            release: (1, 0),
            uefi: firmware == Firmware::Uefi,
        };
        MachineIdentity {
            manufacturer: LAB_MANUFACTURER.into(),
            product: LAB_PRODUCT.into(),
            serial: machine.into(),
            smbios_files: vec![SmbiosFile {
                path: dir.join(format!("{machine}.smbios-type0.bin")),
                // Handle 0: QEMU numbers its own type 0 so, and builds none now.
                structure: bios.structure(0),
            }],
        }
    }
}

/// Accelerator: KVM only when a probe guest started under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

/// Everything the domain XML is made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainSpec {
    /// libvirt domain name; should start with the run id's prefix (sweep).
    pub name: String,
    pub uuid: String,
    pub run_id: String,
    pub memory_mib: u32,
    pub vcpus: u32,
    pub firmware: Firmware,
    pub cpu_model: String,
    pub nics: Vec<NicSpec>,
    pub disks: Vec<DiskSpec>,
    /// Serial console (ttyS0) written here.
    pub console_log: PathBuf,
    /// UEFI: this VM's copy of OVMF_VARS (made by `prepare_files`).
    pub nvram: Option<PathBuf>,
    /// In-band BMC socket (the virtual BMC listens, QEMU connects).
    pub bmc_socket: Option<PathBuf>,
    pub accel: Accel,
    pub identity: MachineIdentity,
}

#[derive(Debug, Error)]
pub enum VmError {
    #[error("domain spec `{name}` field `{field}`: {problem}")]
    Invalid {
        name: String,
        field: String,
        problem: String,
    },
    #[error(
        "libvirt {op} for domain `{name}` failed: {source}; is libvirtd running? (ci/setup-host.sh starts it)"
    )]
    Libvirt {
        op: &'static str,
        name: String,
        #[source]
        source: virt::error::Error,
    },
    #[error("preparing {what} for domain `{name}` at {path}: {source}")]
    File {
        name: String,
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("creating disk for domain `{name}`: {source}")]
    QemuImg {
        name: String,
        #[source]
        source: CmdError,
    },
    #[error("domain `{name}` did not reach {wanted:?} within {timeout:?}")]
    Timeout {
        name: String,
        wanted: DomainState,
        timeout: Duration,
    },
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

impl DomainSpec {
    pub fn validate(&self) -> Result<(), VmError> {
        let bad = |field: &str, problem: String| VmError::Invalid {
            name: self.name.clone(),
            field: field.into(),
            problem,
        };
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(bad("name", "use ASCII letters, digits, - _ .".into()));
        }
        if uuid::Uuid::parse_str(&self.uuid).is_err() {
            return Err(bad("uuid", format!("`{}` is not a UUID", self.uuid)));
        }
        if self.memory_mib < 128 || self.vcpus == 0 {
            return Err(bad(
                "memory_mib/vcpus",
                "at least 128 MiB and 1 vCPU".into(),
            ));
        }
        if self.cpu_model.to_ascii_uppercase().contains("QEMU") {
            return Err(bad(
                "cpu_model",
                format!(
                    "`{}` shows as QEMU in /proc/cpuinfo; MAAS then skips IPMI",
                    self.cpu_model
                ),
            ));
        }
        for (i, n) in self.nics.iter().enumerate() {
            if crate::lab::dhcp::parse_mac(&n.mac).is_none() {
                return Err(bad(
                    &format!("nics[{i}].mac"),
                    format!("`{}` is not aa:bb:cc:dd:ee:ff", n.mac),
                ));
            }
        }
        let strings = [
            ("identity.manufacturer", &self.identity.manufacturer),
            ("identity.product", &self.identity.product),
            ("identity.serial", &self.identity.serial),
        ];
        for (field, value) in strings {
            if value.is_empty() || value.chars().any(|c| c.is_control()) {
                return Err(bad(
                    field,
                    "a non-empty string without control characters".into(),
                ));
            }
            if let Some(p) = VM_DMI_PREFIXES.iter().find(|p| value.starts_with(*p)) {
                return Err(bad(
                    field,
                    format!(
                        "`{value}` starts with `{p}`, which systemd-detect-virt takes for a VM; MAAS 3.6 then skips BMC setup"
                    ),
                ));
            }
        }
        for (i, f) in self.identity.smbios_files.iter().enumerate() {
            let s = &f.structure;
            // A formatted area (type, length, handle) and its string set's
            // closing double NUL after it.
            if s.len() < 6
                || (s[1] as usize) < 4
                || s.len() < s[1] as usize + 2
                || !s.ends_with(&[0, 0])
            {
                return Err(bad(
                    &format!("identity.smbios_files[{i}].structure"),
                    "a whole SMBIOS structure: type, length >= 4, handle, ..., strings, two NULs"
                        .into(),
                ));
            }
        }
        if self.firmware == Firmware::Uefi && self.nvram.is_none() {
            return Err(bad("nvram", "UEFI needs a per-VM NVRAM path".into()));
        }
        let paths = [
            Some(&self.console_log),
            self.nvram.as_ref(),
            self.bmc_socket.as_ref(),
        ];
        for p in paths
            .into_iter()
            .flatten()
            .chain(self.disks.iter().map(|d| &d.path))
            .chain(self.identity.smbios_files.iter().map(|f| &f.path))
        {
            if p.starts_with("/root") {
                return Err(bad(
                    "paths",
                    format!(
                        "{} is under /root, which libvirt-qemu cannot open; use {VM_ROOT}",
                        p.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The libvirt domain XML for a spec. Pure: same spec, same XML.
pub fn domain_xml(spec: &DomainSpec) -> String {
    let e = xml_escape;
    let mut x = String::new();
    let dtype = match spec.accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "qemu",
    };
    let _ = writeln!(
        x,
        "<domain type='{dtype}' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
    );
    let _ = writeln!(x, "  <name>{}</name>", e(&spec.name));
    let _ = writeln!(x, "  <uuid>{}</uuid>", e(&spec.uuid));
    let _ = writeln!(x, "  <metadata>");
    let _ = writeln!(
        x,
        "    <{METADATA_PREFIX}:run xmlns:{METADATA_PREFIX}='{METADATA_NS}'>"
    );
    let _ = writeln!(
        x,
        "      <{METADATA_PREFIX}:id>{}</{METADATA_PREFIX}:id>",
        e(&spec.run_id)
    );
    let _ = writeln!(x, "    </{METADATA_PREFIX}:run>");
    let _ = writeln!(x, "  </metadata>");
    let _ = writeln!(x, "  <memory unit='MiB'>{}</memory>", spec.memory_mib);
    let _ = writeln!(x, "  <vcpu>{}</vcpu>", spec.vcpus);
    // SMBIOS types 1-3 (sys_vendor, product_name, board_vendor): ours, not
    // QEMU's. Type 0 (bios_vendor and the VM bit) comes as a file below.
    let id = &spec.identity;
    let _ = writeln!(x, "  <sysinfo type='smbios'>");
    let _ = writeln!(x, "    <system>");
    let _ = writeln!(
        x,
        "      <entry name='manufacturer'>{}</entry>",
        e(&id.manufacturer)
    );
    let _ = writeln!(x, "      <entry name='product'>{}</entry>", e(&id.product));
    let _ = writeln!(x, "      <entry name='serial'>{}</entry>", e(&id.serial));
    let _ = writeln!(x, "    </system>");
    let _ = writeln!(x, "    <baseBoard>");
    let _ = writeln!(
        x,
        "      <entry name='manufacturer'>{}</entry>",
        e(&id.manufacturer)
    );
    let _ = writeln!(x, "      <entry name='product'>{}</entry>", e(&id.product));
    let _ = writeln!(x, "    </baseBoard>");
    let _ = writeln!(x, "    <chassis>");
    let _ = writeln!(
        x,
        "      <entry name='manufacturer'>{}</entry>",
        e(&id.manufacturer)
    );
    let _ = writeln!(x, "    </chassis>");
    let _ = writeln!(x, "  </sysinfo>");
    let _ = writeln!(x, "  <os>");
    match spec.firmware {
        Firmware::Bios => {
            // SeaBIOS; the NIC option ROMs are QEMU's defaults (iPXE from
            // ipxe-qemu).
            let _ = writeln!(x, "    <type arch='x86_64' machine='pc'>hvm</type>");
        }
        Firmware::Uefi => {
            let _ = writeln!(x, "    <type arch='x86_64' machine='q35'>hvm</type>");
            let _ = writeln!(
                x,
                "    <loader readonly='yes' secure='no' type='pflash'>{OVMF_CODE}</loader>"
            );
            let nv = spec
                .nvram
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let _ = writeln!(x, "    <nvram template='{OVMF_VARS}'>{}</nvram>", e(&nv));
        }
    }
    let _ = writeln!(x, "    <smbios mode='sysinfo'/>");
    let _ = writeln!(x, "  </os>");
    let _ = writeln!(x, "  <features>\n    <acpi/>\n    <apic/>\n  </features>");
    // check='none': TCG lacks some Haswell features; QEMU warns, runs, and
    // the model name is what matters here.
    let _ = writeln!(x, "  <cpu mode='custom' match='exact' check='none'>");
    let _ = writeln!(
        x,
        "    <model fallback='allow'>{}</model>",
        e(&spec.cpu_model)
    );
    // CPUID leaf 1 ECX bit 31 ("hypervisor" in /proc/cpuinfo) clear: the
    // first thing systemd-detect-virt looks at.
    let _ = writeln!(x, "    <feature policy='disable' name='hypervisor'/>");
    let _ = writeln!(x, "  </cpu>");
    let _ = writeln!(x, "  <clock offset='utc'/>");
    let _ = writeln!(x, "  <on_poweroff>destroy</on_poweroff>");
    let _ = writeln!(x, "  <on_reboot>restart</on_reboot>");
    let _ = writeln!(x, "  <on_crash>destroy</on_crash>");
    let _ = writeln!(x, "  <devices>");
    let _ = writeln!(x, "    <emulator>/usr/bin/qemu-system-x86_64</emulator>");
    // Boot order: every NIC first (in order), then the disks.
    let mut order = 1;
    for n in &spec.nics {
        let _ = writeln!(x, "    <interface type='bridge'>");
        let _ = writeln!(x, "      <source bridge='{}'/>", e(&n.bridge));
        let _ = writeln!(
            x,
            "      <mac address='{}'/>",
            e(&n.mac.to_ascii_lowercase())
        );
        let _ = writeln!(x, "      <model type='{}'/>", n.model.libvirt_name());
        let _ = writeln!(x, "      <boot order='{order}'/>");
        let _ = writeln!(x, "    </interface>");
        order += 1;
    }
    for (i, d) in spec.disks.iter().enumerate() {
        let dev = format!("vd{}", (b'a' + i as u8) as char);
        let _ = writeln!(x, "    <disk type='file' device='disk'>");
        let _ = writeln!(x, "      <driver name='qemu' type='qcow2'/>");
        let _ = writeln!(
            x,
            "      <source file='{}'/>",
            e(&d.path.display().to_string())
        );
        let _ = writeln!(x, "      <target dev='{dev}' bus='virtio'/>");
        let _ = writeln!(x, "      <boot order='{order}'/>");
        let _ = writeln!(x, "    </disk>");
        order += 1;
    }
    let log = e(&spec.console_log.display().to_string());
    let _ = writeln!(
        x,
        "    <serial type='file'>\n      <source path='{log}'/>\n      <target port='0'/>\n    </serial>"
    );
    let _ = writeln!(
        x,
        "    <console type='file'>\n      <source path='{log}'/>\n      <target type='serial' port='0'/>\n    </console>"
    );
    let _ = writeln!(x, "    <video>\n      <model type='none'/>\n    </video>");
    let _ = writeln!(x, "    <controller type='usb' model='none'/>");
    let _ = writeln!(x, "    <memballoon model='none'/>");
    let _ = writeln!(x, "  </devices>");
    let mut args: Vec<String> = vec![];
    if let Some(sock) = &spec.bmc_socket {
        // The guest sees a KCS BMC (/dev/ipmi0); QEMU connects to the
        // virtual BMC's in-band socket and keeps retrying if it is not up.
        args.extend([
            "-chardev".to_string(),
            format!("socket,id=ipmi0,path={},reconnect-ms=1000", sock.display()),
            "-device".to_string(),
            "ipmi-bmc-extern,chardev=ipmi0,id=bmc0".to_string(),
            "-device".to_string(),
            "isa-ipmi-kcs,bmc=bmc0".to_string(),
        ]);
    }
    for f in &id.smbios_files {
        args.extend(["-smbios".to_string(), format!("file={}", f.path.display())]);
    }
    if !args.is_empty() {
        let _ = writeln!(x, "  <qemu:commandline>");
        for a in args {
            let _ = writeln!(x, "    <qemu:arg value='{}'/>", e(&a));
        }
        let _ = writeln!(x, "  </qemu:commandline>");
    }
    x.push_str("</domain>\n");
    x
}

/// Create the run directory files QEMU opens: qcow2 disks (qemu-img), the
/// NVRAM copy, an empty console log. Existing disks are kept.
pub async fn prepare_files(spec: &DomainSpec) -> Result<(), VmError> {
    spec.validate()?;
    let file_err = |what, path: &Path| {
        let (name, path) = (spec.name.clone(), path.to_path_buf());
        move |source| VmError::File {
            name,
            what,
            path,
            source,
        }
    };
    let mut dirs: Vec<&Path> = vec![];
    dirs.extend(spec.console_log.parent());
    dirs.extend(spec.nvram.as_deref().and_then(Path::parent));
    dirs.extend(spec.disks.iter().filter_map(|d| d.path.parent()));
    dirs.extend(
        spec.identity
            .smbios_files
            .iter()
            .filter_map(|f| f.path.parent()),
    );
    for d in dirs {
        std::fs::create_dir_all(d).map_err(file_err("directory", d))?;
        make_traversable(d);
    }
    for d in &spec.disks {
        if !d.path.exists() {
            Cmd::new("qemu-img")
                .args(["create", "-q", "-f", "qcow2"])
                .arg(d.path.display().to_string())
                .arg(format!("{}G", d.size_gib))
                .run()
                .await
                .map_err(|source| VmError::QemuImg {
                    name: spec.name.clone(),
                    source,
                })?;
        }
    }
    for f in &spec.identity.smbios_files {
        // Rewritten every time (it is tiny); QEMU (libvirt-qemu) reads it.
        std::fs::write(&f.path, &f.structure).map_err(file_err("SMBIOS structure", &f.path))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f.path, std::fs::Permissions::from_mode(0o644))
            .map_err(file_err("SMBIOS structure", &f.path))?;
    }
    if let Some(nv) = &spec.nvram
        && !nv.exists()
    {
        std::fs::copy(OVMF_VARS, nv).map_err(file_err("NVRAM copy", nv))?;
    }
    Ok(())
}

/// Give "others" search permission on `dir` and its parents up to /, so the
/// libvirt-qemu user can reach files libvirt hands it.
fn make_traversable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for d in dir.ancestors() {
        if let Ok(m) = std::fs::metadata(d) {
            let mode = m.permissions().mode();
            if mode & 0o001 == 0 {
                let _ = std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode | 0o001));
            }
        }
    }
}

/// A connection to libvirt with its stderr error printer turned off.
pub fn connect() -> Result<Connect, VmError> {
    virt::error::clear_error_callback();
    Connect::open(Some(LIBVIRT_URI)).map_err(|source| VmError::Libvirt {
        op: "connect",
        name: LIBVIRT_URI.into(),
        source,
    })
}

fn lv<'a>(op: &'static str, name: &'a str) -> impl FnOnce(virt::error::Error) -> VmError + 'a {
    move |source| VmError::Libvirt {
        op,
        name: name.to_string(),
        source,
    }
}

/// Define (or redefine) the domain from its spec; the XML is returned for
/// the run's artifacts.
pub async fn define(conn: &Connect, spec: &DomainSpec) -> Result<String, VmError> {
    prepare_files(spec).await?;
    let xml = domain_xml(spec);
    conn.define_domain_xml(&xml)
        .map_err(lv("define", &spec.name))?;
    Ok(xml)
}

/// Power on (no-op when running).
pub fn start(conn: &Connect, name: &str) -> Result<(), VmError> {
    let d = conn
        .lookup_domain_by_name(name)
        .map_err(lv("lookup", name))?;
    if d.is_active().map_err(lv("is_active", name))? {
        return Ok(());
    }
    d.create().map_err(lv("start", name))
}

/// Hard power off (no-op when off or gone).
pub fn destroy(conn: &Connect, name: &str) -> Result<(), VmError> {
    let Ok(d) = conn.lookup_domain_by_name(name) else {
        return Ok(());
    };
    if d.is_active().map_err(lv("is_active", name))?
        && let Err(e) = d.destroy()
        // It may have powered off between the two calls.
        && d.is_active().unwrap_or(true)
    {
        return Err(lv("destroy", name)(e));
    }
    Ok(())
}

/// Destroy and undefine, removing the NVRAM file (no-op when gone).
pub fn undefine(conn: &Connect, name: &str) -> Result<(), VmError> {
    destroy(conn, name)?;
    let Ok(d) = conn.lookup_domain_by_name(name) else {
        return Ok(());
    };
    d.undefine_flags(virt::sys::VIR_DOMAIN_UNDEFINE_NVRAM)
        .map_err(lv("undefine", name))
}

/// The domain's state; `None` when it is not defined.
pub fn state(conn: &Connect, name: &str) -> Result<Option<DomainState>, VmError> {
    let Ok(d) = conn.lookup_domain_by_name(name) else {
        return Ok(None);
    };
    let (s, _) = d.state().map_err(lv("state", name))?;
    Ok(Some(s.unwrap_or(DomainState::NoState)))
}

/// Wait (polling) until the domain reaches `wanted`.
pub async fn wait_state(
    conn: &Connect,
    name: &str,
    wanted: DomainState,
    timeout: Duration,
) -> Result<(), VmError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if state(conn, name)? == Some(wanted) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(VmError::Timeout {
                name: name.into(),
                wanted,
                timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The run id in a domain's metadata, if it is one of ours.
pub fn run_id_of(d: &Domain) -> Option<String> {
    let meta = d
        .metadata(
            virt::sys::VIR_DOMAIN_METADATA_ELEMENT as i32,
            Some(METADATA_NS),
            0,
        )
        .ok()?;
    let start = meta.find(":id>")? + 4;
    let end = meta[start..].find("</")? + start;
    Some(meta[start..end].to_string())
}

/// Destroy and undefine every domain whose metadata run id starts with
/// `run_id_prefix` (or, for a foreign-looking domain, whose name does).
/// Returns the names removed.
pub fn sweep(conn: &Connect, run_id_prefix: &str) -> Result<Vec<String>, VmError> {
    if run_id_prefix.len() < 4 {
        return Err(VmError::Invalid {
            name: "*".into(),
            field: "run_id_prefix".into(),
            problem: "shorter than 4 characters".into(),
        });
    }
    let mut removed = vec![];
    for d in conn.list_all_domains(0).map_err(lv("list", "*"))? {
        let Ok(name) = d.name() else { continue };
        let ours = run_id_of(&d).is_some_and(|r| r.starts_with(run_id_prefix))
            || name.starts_with(run_id_prefix);
        if ours {
            undefine(conn, &name)?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// KVM or TCG, decided once per process: KVM only when /dev/kvm exists and
/// a probe guest (no disk, no NIC) reaches "running" under it.
pub fn detect_accel(conn: &Connect) -> Accel {
    static CHOICE: OnceLock<Accel> = OnceLock::new();
    *CHOICE.get_or_init(|| {
        // The probe starts a guest (about 2 s, most of a run's lab stage),
        // so its answer is kept until the host changes: a reboot, KVM's
        // device made anew (a module loaded), QEMU upgraded.
        let key = accel_cache_key();
        let cache = Path::new(ACCEL_CACHE);
        if let Some(a) = key.as_deref().and_then(|k| {
            std::fs::read_to_string(cache)
                .ok()
                .and_then(|text| cached_accel(&text, k))
        }) {
            return a;
        }
        let accel = probe_kvm(conn);
        if let Some(k) = key {
            // A cache: failing to write it costs the next run a probe.
            let _ = std::fs::create_dir_all(Path::new(ACCEL_CACHE).parent().unwrap())
                .and_then(|()| std::fs::write(cache, accel_cache_line(&k, accel)));
        }
        accel
    })
}

/// Where the probe's answer is kept (see `detect_accel`).
pub const ACCEL_CACHE: &str = "/var/lib/maas-e2e/accel";

/// What the probe's answer depends on: this boot, /dev/kvm's inode and
/// change time, the QEMU binary's modification time. None when one cannot
/// be read (then the probe runs).
fn accel_cache_key() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let kvm = match std::fs::metadata("/dev/kvm") {
        Ok(m) => format!("{}.{}.{}", m.ino(), m.ctime(), m.ctime_nsec()),
        Err(_) => "none".into(),
    };
    let qemu = std::fs::metadata(QEMU_BINARY).ok()?;
    Some(format!(
        "boot={} kvm={kvm} qemu={}.{}",
        boot.trim(),
        qemu.mtime(),
        qemu.mtime_nsec()
    ))
}

/// The emulator libvirt runs for our domains.
const QEMU_BINARY: &str = "/usr/bin/qemu-system-x86_64";

/// The cache file's line: the key, then the answer.
fn accel_cache_line(key: &str, accel: Accel) -> String {
    let name = match accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "tcg",
    };
    format!("{key} accel={name}\n")
}

/// The cached answer when the file was written under this very key.
fn cached_accel(text: &str, key: &str) -> Option<Accel> {
    let rest = text.trim_end().strip_prefix(key)?.strip_prefix(" accel=")?;
    match rest {
        "kvm" => Some(Accel::Kvm),
        "tcg" => Some(Accel::Tcg),
        _ => None,
    }
}

fn probe_kvm(conn: &Connect) -> Accel {
    if !Path::new("/dev/kvm").exists() {
        return Accel::Tcg;
    }
    let name = format!("maas-e2e-kvmprobe-{}", std::process::id());
    let xml = format!(
        "<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64'>hvm</type></os><devices><video><model type='none'/></video>\
         <controller type='usb' model='none'/><memballoon model='none'/></devices></domain>"
    );
    let Ok(d) = conn.create_domain_xml(&xml, 0) else {
        return Accel::Tcg;
    };
    // A guest that "starts" but stops or pauses at once did not run.
    std::thread::sleep(Duration::from_millis(1500));
    let running = matches!(d.state(), Ok((s, _)) if s.is(DomainState::Running));
    let _ = d.destroy();
    if running { Accel::Kvm } else { Accel::Tcg }
}

/// A run's directory under the plan's VM_ROOT, created and reachable by libvirt-qemu.
pub fn run_dir(run_id: &str) -> std::io::Result<PathBuf> {
    let d = Path::new(VM_ROOT).join(run_id);
    std::fs::create_dir_all(&d)?;
    make_traversable(&d);
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_accelerator_counts_only_under_the_same_key() {
        let key = "boot=b1 kvm=12.1700000000.5 qemu=1700000001.7";
        for a in [Accel::Kvm, Accel::Tcg] {
            let line = accel_cache_line(key, a);
            assert_eq!(cached_accel(&line, key), Some(a));
        }
        let line = accel_cache_line(key, Accel::Tcg);
        // Rebooted, KVM's device made anew, QEMU upgraded: probe again.
        for other in [
            "boot=b2 kvm=12.1700000000.5 qemu=1700000001.7",
            "boot=b1 kvm=13.1700000009.5 qemu=1700000001.7",
            "boot=b1 kvm=12.1700000000.5 qemu=1700000002.7",
            "boot=b1",
        ] {
            assert_eq!(cached_accel(&line, other), None, "{other}");
        }
        assert_eq!(cached_accel("", key), None);
        assert_eq!(cached_accel(&format!("{key} accel=hvf\n"), key), None);
    }

    fn spec(firmware: Firmware, model: NicModel, bmc: bool) -> DomainSpec {
        let dir = PathBuf::from("/var/lib/maas-e2e/runs/RUN");
        DomainSpec {
            name: "r1234-node1".into(),
            uuid: "6f1d3c2a-0000-4000-8000-000000000001".into(),
            run_id: "r1234".into(),
            memory_mib: 512,
            vcpus: 1,
            firmware,
            cpu_model: DEFAULT_CPU_MODEL.into(),
            nics: vec![NicSpec {
                model,
                mac: "52:54:00:AA:00:01".into(),
                bridge: "r1234-br0".into(),
            }],
            disks: vec![DiskSpec {
                path: dir.join("node1-disk0.qcow2"),
                size_gib: 8,
            }],
            console_log: dir.join("node1-console.log"),
            nvram: (firmware == Firmware::Uefi).then(|| dir.join("node1_VARS.fd")),
            bmc_socket: bmc.then(|| dir.join("bmc/node1.sock")),
            accel: Accel::Tcg,
            identity: MachineIdentity::lab(&dir, "node1", firmware),
        }
    }

    #[test]
    fn xml_snapshots() {
        for fw in [Firmware::Bios, Firmware::Uefi] {
            for model in [NicModel::Virtio, NicModel::E1000, NicModel::Rtl8139] {
                for bmc in [false, true] {
                    let s = spec(fw, model, bmc);
                    s.validate().unwrap();
                    let name = format!(
                        "domain_{fw:?}_{model:?}_{}",
                        if bmc { "bmc" } else { "nobmc" }
                    )
                    .to_lowercase();
                    insta::assert_snapshot!(name, domain_xml(&s));
                }
            }
        }
    }

    #[test]
    fn xml_has_run_id_boot_order_and_no_qemu_cpu() {
        let x = domain_xml(&spec(Firmware::Uefi, NicModel::Virtio, true));
        assert!(x.contains("<maase2e:id>r1234</maase2e:id>"));
        assert!(
            x.find("<boot order='1'/>").unwrap() < x.find("<disk").unwrap(),
            "NIC boots first"
        );
        assert!(x.contains("isa-ipmi-kcs,bmc=bmc0"));
        assert!(!x.contains("QEMU"));
    }

    #[test]
    fn xml_hides_the_hypervisor_bit_vm_strings_and_qemus_type_0() {
        for fw in [Firmware::Bios, Firmware::Uefi] {
            for bmc in [false, true] {
                let s = spec(fw, NicModel::Virtio, bmc);
                let x = domain_xml(&s);
                assert!(x.contains("<feature policy='disable' name='hypervisor'/>"));
                assert!(x.contains("<smbios mode='sysinfo'/>"));
                assert!(x.contains("<entry name='manufacturer'>maas-e2e</entry>"));
                assert!(x.contains("<entry name='product'>lab machine</entry>"));
                // No <bios> entries: QEMU refuses type 0 fields next to a type 0 file.
                assert!(!x.contains("<bios>"));
                let file = s.identity.smbios_files[0].path.display().to_string();
                assert!(
                    x.contains(&format!("<qemu:arg value='file={file}'/>")),
                    "{x}"
                );
                assert_eq!(x.matches("<qemu:commandline>").count(), 1);
                let type0 = &s.identity.smbios_files[0].structure;
                assert_eq!(type0[0], 0, "a type 0 structure");
                assert_eq!(
                    type0[crate::lab::smbios0::EXTENSION_BYTE_2_OFFSET]
                        & crate::lab::smbios0::VIRTUAL_MACHINE_BIT,
                    0
                );
            }
        }
    }

    #[test]
    fn validate_refuses_vm_vendor_strings_and_broken_smbios_structures() {
        let mut s = spec(Firmware::Bios, NicModel::E1000, false);
        s.identity.manufacturer = "QEMU".into();
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("identity.manufacturer"), "{err}");
        assert!(err.contains("systemd-detect-virt"), "{err}");
        let mut s = spec(Firmware::Bios, NicModel::E1000, false);
        s.identity.product = "VirtualBox".into();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("identity.product")
        );
        let mut s = spec(Firmware::Bios, NicModel::E1000, false);
        s.identity.smbios_files[0].structure.pop();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("identity.smbios_files[0].structure")
        );
        let mut s = spec(Firmware::Bios, NicModel::E1000, false);
        s.identity.smbios_files[0].path = "/root/t0.bin".into();
        assert!(s.validate().unwrap_err().to_string().contains("/root"));
    }

    #[tokio::test]
    async fn prepare_files_writes_the_smbios_structures_readable_by_qemu() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(Firmware::Bios, NicModel::E1000, false);
        s.disks.clear();
        s.console_log = dir.path().join("console.log");
        s.identity = MachineIdentity::lab(dir.path(), "node1", Firmware::Bios);
        prepare_files(&s).await.unwrap();
        let f = &s.identity.smbios_files[0];
        assert_eq!(std::fs::read(&f.path).unwrap(), f.structure);
        let mode = std::fs::metadata(&f.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o004, 0o004, "others may read it: {mode:o}");
    }

    #[test]
    fn validate_refuses_qemu_cpu_root_paths_and_bad_macs() {
        let mut s = spec(Firmware::Bios, NicModel::E1000, false);
        s.cpu_model = "qemu64".into();
        assert!(s.validate().unwrap_err().to_string().contains("cpu_model"));
        let mut s = spec(Firmware::Bios, NicModel::E1000, false);
        s.console_log = "/root/x.log".into();
        assert!(s.validate().unwrap_err().to_string().contains("/root"));
        let mut s = spec(Firmware::Bios, NicModel::E1000, false);
        s.nics[0].mac = "52:54".into();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("nics[0].mac")
        );
        let mut s = spec(Firmware::Uefi, NicModel::E1000, false);
        s.nvram = None;
        assert!(s.validate().unwrap_err().to_string().contains("nvram"));
    }
}
