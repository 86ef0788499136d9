//! The ephemeral environment: kernel + initramfs built from host packages.
//!
//! `build(&spec, cache_dir)` assembles an initramfs tree in memory (busybox
//! and its applet links, kernel modules with their dependencies, host
//! binaries with every shared library they need, extra files, `/init`),
//! hashes it together with the kernel, and writes `vmlinuz` + `initrd.img`
//! under `cache_dir/<hash>` only when that hash is not there yet.
//! See docs/image.md for the guest contract of `ImageSpec::ephemeral()`.

mod build;
pub mod contract;
pub mod cpio;
mod digest;
pub mod kernel;
pub mod libs;
mod spec;

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::cmd::CmdError;

pub use build::build;
pub use spec::{Compression, ExtraFile, ImageSpec, KernelSource};

/// Where images go unless told otherwise: readable by libvirt-qemu, which
/// cannot open files under /root.
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/maas-e2e/images";

/// `$MAAS_E2E_IMAGE_DIR` if set, else [`DEFAULT_CACHE_DIR`].
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("MAAS_E2E_IMAGE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR))
}

/// A built image: boot it with `-kernel kernel -initrd initrd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// sha256 (hex) of everything that went in; names the cache entry.
    pub hash: String,
}

/// Why an image could not be built.
#[derive(Debug, Error)]
pub enum ImageError {
    #[error(
        "no Debian kernel: no vmlinuz-*-amd64 in {boot_dir} with modules under {modules_root}; \
         install one with `apt-get install linux-image-amd64`"
    )]
    NoKernel {
        boot_dir: PathBuf,
        modules_root: PathBuf,
    },
    #[error(
        "kernel module `{module}` is not in {modules_dir}/modules.dep nor built in; check the name (e.g. ipmi_si)"
    )]
    ModuleNotFound {
        module: String,
        modules_dir: PathBuf,
    },
    #[error("could not {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "host binary {path} for the image does not exist; install the package that has it (e.g. freeipmi-tools, ipmitool)"
    )]
    MissingBinary { path: PathBuf },
    #[error("could not list the libraries of {binary}")]
    Ldd {
        binary: PathBuf,
        #[source]
        source: CmdError,
    },
    #[error(
        "{binary} needs {library}, which the host's loader cannot find; install the package that has it"
    )]
    MissingLibrary { binary: PathBuf, library: String },
    #[error("image file {path}: {reason}")]
    BadExtraFile { path: PathBuf, reason: String },
    #[error(
        "kernel {release} can unpack neither a zstd nor a gzip initramfs (CONFIG_RD_ZSTD / CONFIG_RD_GZIP)"
    )]
    NoCompression { release: String },
    #[error("could not {what}")]
    Tool {
        what: String,
        #[source]
        source: CmdError,
    },
}

impl ImageError {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.to_path_buf();
        move |source| ImageError::Io { what, path, source }
    }
}
