//! The guest kernel: which vmlinuz, what its config supports, and which
//! module files (with their dependencies, from modules.dep) to load in order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::ImageError;

/// A kernel found on the host: its image and its module tree.
#[derive(Debug, Clone)]
pub struct HostKernel {
    /// e.g. `6.1.0-56-amd64`.
    pub release: String,
    pub vmlinuz: PathBuf,
    /// `/lib/modules/<release>`.
    pub modules_dir: PathBuf,
    /// `CONFIG_*` options from /boot/config-<release> (empty if absent).
    pub config: BTreeMap<String, String>,
}

impl HostKernel {
    /// The newest `vmlinuz-*-amd64` in `boot_dir` whose modules are in
    /// `modules_root` (Debian's linux-image-amd64 layout).
    pub fn newest_debian(boot_dir: &Path, modules_root: &Path) -> Result<HostKernel, ImageError> {
        let entries = std::fs::read_dir(boot_dir).map_err(|source| ImageError::Io {
            what: "list kernels in",
            path: boot_dir.to_path_buf(),
            source,
        })?;
        let mut releases: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.strip_prefix("vmlinuz-").map(str::to_string))
            .filter(|r| r.ends_with("-amd64") && modules_root.join(r).join("modules.dep").is_file())
            .collect();
        releases.sort_by_key(|r| version_key(r));
        let release = releases.pop().ok_or_else(|| ImageError::NoKernel {
            boot_dir: boot_dir.to_path_buf(),
            modules_root: modules_root.to_path_buf(),
        })?;
        Self::at(
            &boot_dir.join(format!("vmlinuz-{release}")),
            &modules_root.join(&release),
            &release,
            boot_dir,
        )
    }

    /// A kernel at explicit paths; config is read from `boot_dir/config-<release>`.
    pub fn at(
        vmlinuz: &Path,
        modules_dir: &Path,
        release: &str,
        boot_dir: &Path,
    ) -> Result<HostKernel, ImageError> {
        let config_path = boot_dir.join(format!("config-{release}"));
        let config = std::fs::read_to_string(&config_path)
            .map(|text| parse_config(&text))
            .unwrap_or_default();
        Ok(HostKernel {
            release: release.to_string(),
            vmlinuz: vmlinuz.to_path_buf(),
            modules_dir: modules_dir.to_path_buf(),
            config,
        })
    }

    /// Whether `CONFIG_<name>=y`.
    pub fn has(&self, name: &str) -> bool {
        self.config.get(name).is_some_and(|v| v == "y")
    }

    /// Whether the kernel can load a module compressed with `ext` (xz, zst, gz) itself.
    pub fn loads_compressed(&self, ext: &str) -> bool {
        let option = match ext {
            "xz" => "CONFIG_MODULE_COMPRESS_XZ",
            "zst" => "CONFIG_MODULE_COMPRESS_ZSTD",
            "gz" => "CONFIG_MODULE_COMPRESS_GZIP",
            _ => return false,
        };
        // In-kernel decompression exists only with MODULE_DECOMPRESS; busybox
        // insmod passes the file as is, so without it the file must be plain.
        self.has("CONFIG_MODULE_DECOMPRESS") && self.has(option)
    }
}

/// `6.1.0-56-amd64` -> numbers to compare (6,1,0,56).
fn version_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn parse_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| l.starts_with("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// A module's canonical name: file stem without `.ko[.xz]`, `-` as `_`.
pub fn module_name(path_or_name: &str) -> String {
    let base = path_or_name.rsplit('/').next().unwrap_or(path_or_name);
    let stem = base.split(".ko").next().unwrap_or(base);
    stem.replace('-', "_")
}

/// modules.dep parsed: module name -> (relative path, relative paths of deps).
#[derive(Debug, Default)]
pub struct ModuleDeps {
    by_name: BTreeMap<String, (String, Vec<String>)>,
    builtin: BTreeSet<String>,
}

impl ModuleDeps {
    pub fn parse(modules_dep: &str, modules_builtin: &str) -> ModuleDeps {
        let mut by_name = BTreeMap::new();
        for line in modules_dep.lines() {
            let Some((path, deps)) = line.split_once(':') else {
                continue;
            };
            let deps = deps.split_whitespace().map(str::to_string).collect();
            by_name.insert(module_name(path), (path.to_string(), deps));
        }
        let builtin = modules_builtin.lines().map(module_name).collect();
        ModuleDeps { by_name, builtin }
    }

    pub fn load(modules_dir: &Path) -> Result<ModuleDeps, ImageError> {
        let dep_path = modules_dir.join("modules.dep");
        let dep = std::fs::read_to_string(&dep_path).map_err(|source| ImageError::Io {
            what: "read",
            path: dep_path,
            source,
        })?;
        let builtin =
            std::fs::read_to_string(modules_dir.join("modules.builtin")).unwrap_or_default();
        Ok(ModuleDeps::parse(&dep, &builtin))
    }

    /// Relative paths of `wanted` and everything they need, dependencies
    /// first (the order insmod must follow). Built-in modules are skipped.
    pub fn resolve(
        &self,
        wanted: &[String],
        modules_dir: &Path,
    ) -> Result<Vec<String>, ImageError> {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for name in wanted {
            let name = module_name(name);
            if self.builtin.contains(&name) {
                continue;
            }
            if !self.by_name.contains_key(&name) {
                return Err(ImageError::ModuleNotFound {
                    module: name,
                    modules_dir: modules_dir.to_path_buf(),
                });
            }
            self.visit(&name, &mut seen, &mut order);
        }
        Ok(order)
    }

    fn visit(&self, name: &str, seen: &mut BTreeSet<String>, order: &mut Vec<String>) {
        if !seen.insert(name.to_string()) {
            return;
        }
        let Some((path, deps)) = self.by_name.get(name) else {
            return;
        };
        for dep in deps {
            self.visit(&module_name(dep), seen, order);
        }
        order.push(path.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/drivers/char/ipmi/ipmi_msghandler.ko:
kernel/drivers/char/ipmi/ipmi_si.ko: kernel/drivers/char/ipmi/ipmi_msghandler.ko
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/virtio/virtio.ko:
";

    #[test]
    fn dependencies_come_first_once() {
        let deps = ModuleDeps::parse(DEP, "kernel/drivers/tty/serial/8250/8250.ko\n");
        let order = deps
            .resolve(
                &[
                    "ipmi_si".into(),
                    "virtio-net".into(),
                    "ipmi_msghandler".into(),
                    "8250".into(),
                ],
                Path::new("/m"),
            )
            .unwrap();
        assert_eq!(
            order,
            [
                "kernel/drivers/char/ipmi/ipmi_msghandler.ko",
                "kernel/drivers/char/ipmi/ipmi_si.ko",
                "kernel/net/core/failover.ko",
                "kernel/drivers/net/net_failover.ko",
                "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/net/virtio_net.ko.xz",
            ]
        );
    }

    #[test]
    fn unknown_module_is_named() {
        let deps = ModuleDeps::parse(DEP, "");
        let err = deps
            .resolve(&["nope".into()], Path::new("/lib/modules/x"))
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert!(err.to_string().contains("/lib/modules/x"), "{err}");
    }

    #[test]
    fn newest_release_sorts_numerically() {
        let mut v = ["6.1.0-9-amd64", "6.1.0-56-amd64", "5.10.0-30-amd64"];
        v.sort_by_key(|r| version_key(r));
        assert_eq!(v.last(), Some(&"6.1.0-56-amd64"));
    }
}
