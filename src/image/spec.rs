//! What goes into an image, and the two ready-made specs: a marker image
//! for lab tests and the MAAS ephemeral environment.

use std::path::PathBuf;

/// Everything an image is made of. Two equal specs on the same host give
/// the same hash.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// For people and the manifest; not part of the hash.
    pub name: String,
    pub kernel: KernelSource,
    /// Module names (`ipmi_si`, `virtio_net`); dependencies are added.
    pub modules: Vec<String>,
    /// Host binaries, placed at the same path, with their shared libraries.
    pub binaries: Vec<PathBuf>,
    /// Files written as given (scripts, configuration).
    pub files: Vec<ExtraFile>,
    /// The `/init` script (mode 0755).
    pub init: String,
    pub compression: Compression,
}

/// Which kernel boots the image.
#[derive(Debug, Clone)]
pub enum KernelSource {
    /// The newest `vmlinuz-*-amd64` in `boot_dir` with modules in
    /// `modules_root/<release>` (Debian's linux-image-amd64).
    NewestDebian {
        boot_dir: PathBuf,
        modules_root: PathBuf,
    },
    /// One release, at `boot_dir/vmlinuz-<release>`.
    Release {
        boot_dir: PathBuf,
        modules_root: PathBuf,
        release: String,
    },
}

impl Default for KernelSource {
    fn default() -> Self {
        KernelSource::NewestDebian {
            boot_dir: "/boot".into(),
            modules_root: "/lib/modules".into(),
        }
    }
}

/// How the initramfs is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// zstd when the kernel unpacks it (CONFIG_RD_ZSTD), else gzip.
    #[default]
    Auto,
    Zstd,
    Gzip,
}

/// One file placed in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// Absolute path inside the image.
    pub path: PathBuf,
    /// Permission bits, e.g. 0o755 for scripts.
    pub mode: u32,
    pub contents: Vec<u8>,
}

impl ExtraFile {
    pub fn new(path: impl Into<PathBuf>, mode: u32, contents: impl Into<Vec<u8>>) -> Self {
        ExtraFile {
            path: path.into(),
            mode,
            contents: contents.into(),
        }
    }
}

/// The guest scripts of the ephemeral environment (fixtures/ephemeral/).
const EPHEMERAL_INIT: &str = include_str!("../../fixtures/ephemeral/init");
const EPHEMERAL_SCRIPTS: &[(&str, &str)] = &[
    (
        "/maas/lib.sh",
        include_str!("../../fixtures/ephemeral/lib.sh"),
    ),
    (
        "/maas/autodetect.sh",
        include_str!("../../fixtures/ephemeral/autodetect.sh"),
    ),
    (
        "/maas/bmc_config36.sh",
        include_str!("../../fixtures/ephemeral/bmc_config36.sh"),
    ),
    (
        "/maas/enlist.sh",
        include_str!("../../fixtures/ephemeral/enlist.sh"),
    ),
    (
        "/maas/commission.sh",
        include_str!("../../fixtures/ephemeral/commission.sh"),
    ),
    (
        "/maas/udhcpc.script",
        include_str!("../../fixtures/ephemeral/udhcpc.script"),
    ),
    (
        "/maas/commissioning.d/00-maas-00-support-info",
        include_str!("../../fixtures/ephemeral/commissioning.d/00-maas-00-support-info"),
    ),
    (
        "/maas/commissioning.d/40-maas-01-network-interfaces",
        include_str!("../../fixtures/ephemeral/commissioning.d/40-maas-01-network-interfaces"),
    ),
    (
        "/maas/commissioning.d/50-maas-01-commissioning",
        include_str!("../../fixtures/ephemeral/commissioning.d/50-maas-01-commissioning"),
    ),
    (
        "/maas/testing.d/smartctl-validate",
        include_str!("../../fixtures/ephemeral/testing.d/smartctl-validate"),
    ),
];

/// The marker image's /init: print the marker on the console, power off.
const MARKER_INIT: &str = "#!/bin/sh
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t proc proc /proc
cat /etc/maas-e2e/marker > /dev/console
poweroff -f
";

impl ImageSpec {
    /// A ready-made spec by name, for the command line: `ephemeral`, or
    /// `marker:TEXT`. `None` for anything else.
    pub fn named(name: &str) -> Option<ImageSpec> {
        match name {
            "ephemeral" => Some(ImageSpec::ephemeral()),
            _ => name.strip_prefix("marker:").map(ImageSpec::marker),
        }
    }

    /// Busybox only: prints `marker` (and a newline) on the console
    /// (ttyS0 with `console=ttyS0`) and powers off. For lab tests.
    pub fn marker(marker: &str) -> ImageSpec {
        ImageSpec {
            name: "marker".into(),
            kernel: KernelSource::default(),
            modules: Vec::new(),
            binaries: Vec::new(),
            files: vec![ExtraFile::new(
                "/etc/maas-e2e/marker",
                0o644,
                format!("{marker}\n"),
            )],
            init: MARKER_INIT.into(),
            compression: Compression::Auto,
        }
    }

    /// The MAAS 2.8 ephemeral environment: IPMI and NIC modules, FreeIPMI,
    /// ipmitool, busybox; enlists or commissions as its cloud-config says.
    /// Kernel command line and guest contract: docs/image.md.
    pub fn ephemeral() -> ImageSpec {
        let modules = [
            "ipmi_msghandler",
            "ipmi_devintf",
            "ipmi_si",
            "ipmi_ssif",
            "virtio_pci",
            "virtio_net",
            "virtio_blk",
            "e1000",
            "8139cp",
            "8139too",
        ];
        let binaries = [
            "/usr/sbin/ipmi-config",
            "/usr/sbin/bmc-config",
            "/usr/sbin/ipmi-locate",
            "/usr/sbin/bmc-info",
            "/usr/sbin/ipmi-chassis-config",
            "/usr/bin/ipmitool",
        ];
        let mut files: Vec<ExtraFile> = EPHEMERAL_SCRIPTS
            .iter()
            .map(|(path, text)| ExtraFile::new(*path, 0o755, *text))
            .collect();
        // FreeIPMI reads its config file when present; an empty one keeps
        // it from warning and pins no driver.
        files.push(ExtraFile::new("/etc/freeipmi/freeipmi.conf", 0o644, ""));
        ImageSpec {
            name: "ephemeral".into(),
            kernel: KernelSource::default(),
            modules: modules.map(String::from).to_vec(),
            binaries: binaries.map(PathBuf::from).to_vec(),
            files,
            init: EPHEMERAL_INIT.into(),
            compression: Compression::Auto,
        }
    }
}
