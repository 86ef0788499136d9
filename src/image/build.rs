//! Assemble, hash, compress and cache an image.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::cmd::Cmd;

use super::cpio::{Node, Tree, normalize};
use super::digest::{DigestMemo, Stamp, sha256};
use super::kernel::{HostKernel, ModuleDeps};
use super::libs::{is_dynamic_elf, needed_libraries};
use super::{Compression, Image, ImageError, ImageSpec, KernelSource};

/// Bumped when the layout of the image changes, so old cache entries are
/// not reused for a new layout.
const FORMAT: &str = "maas-e2e-image/2";

/// Where busybox lives in the image; applets link to it.
const BUSYBOX_HOST: &str = "/usr/bin/busybox";

/// Build the image (or find it in `cache_dir`) and return its paths.
pub fn build(spec: &ImageSpec, cache_dir: &Path) -> Result<Image, ImageError> {
    let kernel = resolve_kernel(&spec.kernel)?;
    let mut parts = assemble(spec, &kernel)?;
    let compression = choose_compression(spec.compression, &kernel)?;
    let vmlinuz =
        std::fs::read(&kernel.vmlinuz).map_err(ImageError::io("read", &kernel.vmlinuz))?;
    let kernel_meta =
        std::fs::metadata(&kernel.vmlinuz).map_err(ImageError::io("stat", &kernel.vmlinuz))?;
    parts.stamps.insert(
        KERNEL_KEY.into(),
        (kernel.vmlinuz.clone(), Stamp::of(&kernel_meta)),
    );

    let mut memo = DigestMemo::load(cache_dir);
    let hash = content_hash(&parts, &vmlinuz, compression, &mut memo);
    memo.save();

    let entry = cache_dir.join(&hash[..16]);
    let image = Image {
        kernel: entry.join("vmlinuz"),
        initrd: entry.join("initrd.img"),
        hash: hash.clone(),
    };
    if image.kernel.is_file() && image.initrd.is_file() {
        tracing::debug!(image = %spec.name, hash = %hash, "image cached");
        return Ok(image);
    }
    tracing::info!(image = %spec.name, hash = %hash, "building image");
    let cpio = parts.tree.to_newc();
    store(
        cache_dir,
        &entry,
        spec,
        &kernel,
        &parts.tree,
        &vmlinuz,
        &cpio,
        compression,
    )?;
    memo.save();
    Ok(image)
}

/// The key the kernel's stamp is kept under (not a path in the image).
const KERNEL_KEY: &str = "\0kernel";

/// sha256 over everything that goes in: the format, the compression, the
/// kernel, and every entry of the tree (path, kind, mode, size, and the
/// digest of its bytes). Host files' digests come from the memo while
/// their stamp is unchanged; generated files are hashed each time.
fn content_hash(
    parts: &Assembly,
    vmlinuz: &[u8],
    compression: Compression,
    memo: &mut DigestMemo,
) -> String {
    let mut digest_of = |key: &str, data: &[u8]| match parts.stamps.get(key) {
        Some((host, stamp)) => memo.digest(host, *stamp, data),
        None => sha256(data),
    };
    let mut h = Sha256::new();
    h.update(FORMAT);
    h.update([0]);
    h.update(format!("{compression:?}"));
    h.update([0]);
    h.update(digest_of(KERNEL_KEY, vmlinuz));
    for (path, node) in parts.tree.iter() {
        h.update(path.as_bytes());
        h.update([0]);
        match node {
            Node::Dir => h.update(b"d"),
            Node::File { mode, data } => {
                h.update(format!("f {mode:o} {} ", data.len()));
                h.update(digest_of(path, data));
            }
            Node::Symlink { target } => h.update(format!("l {target}")),
            Node::CharDev { mode, major, minor } => h.update(format!("c {mode:o} {major}:{minor}")),
        }
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// The tree, and for each file copied from the host, where from and its
/// stamp (keyed by the path in the tree, without the leading `/`).
struct Assembly {
    tree: Tree,
    stamps: BTreeMap<String, (PathBuf, Stamp)>,
}

impl Assembly {
    /// Copy a host file into the tree at `image_path`.
    fn add_host_file(
        &mut self,
        image_path: &str,
        host: &Path,
        mode: u32,
    ) -> Result<(), ImageError> {
        let meta = std::fs::metadata(host).map_err(ImageError::io("stat", host))?;
        let data = read_host(host)?;
        self.tree.insert(image_path, Node::File { mode, data });
        self.stamps.insert(
            normalize(image_path),
            (host.to_path_buf(), Stamp::of(&meta)),
        );
        Ok(())
    }
}

fn resolve_kernel(source: &KernelSource) -> Result<HostKernel, ImageError> {
    match source {
        KernelSource::NewestDebian {
            boot_dir,
            modules_root,
        } => HostKernel::newest_debian(boot_dir, modules_root),
        KernelSource::Release {
            boot_dir,
            modules_root,
            release,
        } => {
            let vmlinuz = boot_dir.join(format!("vmlinuz-{release}"));
            let modules_dir = modules_root.join(release);
            if !vmlinuz.is_file() || !modules_dir.join("modules.dep").is_file() {
                return Err(ImageError::NoKernel {
                    boot_dir: boot_dir.clone(),
                    modules_root: modules_root.clone(),
                });
            }
            HostKernel::at(&vmlinuz, &modules_dir, release, boot_dir)
        }
    }
}

fn choose_compression(wanted: Compression, kernel: &HostKernel) -> Result<Compression, ImageError> {
    let no_config = kernel.config.is_empty(); // trust the request when the config is unknown
    let zstd = no_config || kernel.has("CONFIG_RD_ZSTD");
    let gzip = no_config || kernel.has("CONFIG_RD_GZIP");
    match wanted {
        Compression::Auto if zstd && crate::testing::have_program("zstd") => Ok(Compression::Zstd),
        Compression::Auto | Compression::Gzip if gzip => Ok(Compression::Gzip),
        Compression::Zstd if zstd => Ok(Compression::Zstd),
        _ => Err(ImageError::NoCompression {
            release: kernel.release.clone(),
        }),
    }
}

/// The whole initramfs tree, in memory.
fn assemble(spec: &ImageSpec, kernel: &HostKernel) -> Result<Assembly, ImageError> {
    let mut parts = Assembly {
        tree: Tree::new(),
        stamps: BTreeMap::new(),
    };
    let tree = &mut parts.tree;
    for dir in [
        "/proc",
        "/sys",
        "/dev",
        "/tmp",
        "/run",
        "/root",
        "/var/run",
        "/var/lib",
        "/var/cache",
        "/etc",
    ] {
        tree.insert(dir, Node::Dir);
    }
    tree.insert(
        "/dev/console",
        Node::CharDev {
            mode: 0o600,
            major: 5,
            minor: 1,
        },
    );
    tree.insert(
        "/dev/null",
        Node::CharDev {
            mode: 0o666,
            major: 1,
            minor: 3,
        },
    );

    add_busybox(&mut parts)?;
    add_modules(&mut parts, spec, kernel)?;
    for binary in &spec.binaries {
        add_binary(&mut parts, binary)?;
    }
    for file in &spec.files {
        let path = file.path.to_string_lossy();
        if !file.path.is_absolute() || path.contains("/../") || path.ends_with('/') {
            return Err(ImageError::BadExtraFile {
                path: file.path.clone(),
                reason: "the path must be absolute, name a file and contain no `..`".into(),
            });
        }
        // Generated content replaces any host file here: hash its bytes.
        parts.stamps.remove(&normalize(&path));
        parts.tree.insert(
            &path,
            Node::File {
                mode: file.mode,
                data: file.contents.clone(),
            },
        );
    }
    parts.stamps.remove("init");
    parts.tree.insert(
        "/init",
        Node::File {
            mode: 0o755,
            data: spec.init.clone().into_bytes(),
        },
    );
    Ok(parts)
}

fn read_host(path: &Path) -> Result<Vec<u8>, ImageError> {
    std::fs::read(path).map_err(ImageError::io("read", path))
}

fn add_busybox(parts: &mut Assembly) -> Result<(), ImageError> {
    if !Path::new(BUSYBOX_HOST).is_file() {
        return Err(ImageError::MissingBinary {
            path: BUSYBOX_HOST.into(),
        });
    }
    parts.add_host_file("/bin/busybox", Path::new(BUSYBOX_HOST), 0o755)?;
    let list = Cmd::new(BUSYBOX_HOST)
        .arg("--list-full")
        .run_blocking()
        .map_err(|source| ImageError::Tool {
            what: "list busybox applets".into(),
            source,
        })?;
    for applet in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if applet == "bin/busybox" {
            continue;
        }
        parts.tree.insert_if_absent(
            &format!("/{applet}"),
            Node::Symlink {
                target: "/bin/busybox".into(),
            },
        );
    }
    Ok(())
}

fn add_modules(
    parts: &mut Assembly,
    spec: &ImageSpec,
    kernel: &HostKernel,
) -> Result<(), ImageError> {
    let deps = ModuleDeps::load(&kernel.modules_dir)?;
    let order = deps.resolve(&spec.modules, &kernel.modules_dir)?;
    let mut load_list = String::new();
    for rel in &order {
        let host = kernel.modules_dir.join(rel);
        let path = match rel.rsplit_once('.') {
            Some((plain, ext))
                if matches!(ext, "xz" | "zst" | "gz") && !kernel.loads_compressed(ext) =>
            {
                // Unpacked here, so hashed each time (rare: Debian's are plain).
                let path = format!("/lib/modules/{}/{plain}", kernel.release);
                let data = decompress(&host, ext)?;
                parts.tree.insert(&path, Node::File { mode: 0o644, data });
                path
            }
            _ => {
                let path = format!("/lib/modules/{}/{rel}", kernel.release);
                parts.add_host_file(&path, &host, 0o644)?;
                path
            }
        };
        load_list.push_str(&path);
        load_list.push('\n');
    }
    // /init loads these with insmod, in this order (dependencies first).
    let tree = &mut parts.tree;
    tree.insert(
        "/etc/maas-e2e/modules",
        Node::File {
            mode: 0o644,
            data: load_list.into_bytes(),
        },
    );
    tree.insert(
        "/etc/maas-e2e/kernel-release",
        Node::File {
            mode: 0o644,
            data: format!("{}\n", kernel.release).into_bytes(),
        },
    );
    Ok(())
}

/// A compressed module unpacked with xz/zstd/gzip, for kernels that
/// cannot load it compressed.
fn decompress(path: &Path, ext: &str) -> Result<Vec<u8>, ImageError> {
    let dir = tempfile_dir()?;
    let copy = dir.join(format!("m.ko.{ext}"));
    std::fs::copy(path, &copy).map_err(ImageError::io("copy", path))?;
    let tool = match ext {
        "xz" => "xz",
        "zst" => "zstd",
        _ => "gzip",
    };
    let result = Cmd::new(tool)
        .args(["-d", "-q", "-f"])
        .arg(copy.to_string_lossy())
        .run_blocking()
        .map_err(|source| ImageError::Tool {
            what: format!("decompress module {}", path.display()),
            source,
        })
        .and_then(|_| read_host(&dir.join("m.ko")));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tempfile_dir() -> Result<PathBuf, ImageError> {
    let dir = std::env::temp_dir().join(format!(
        "maas-e2e-image-{}-{}",
        std::process::id(),
        unique()
    ));
    std::fs::create_dir_all(&dir).map_err(ImageError::io("create", &dir))?;
    Ok(dir)
}

fn unique() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    nanos ^ ((COUNTER.fetch_add(1, Ordering::Relaxed) as u128) << 64)
}

fn add_binary(parts: &mut Assembly, binary: &Path) -> Result<(), ImageError> {
    if !binary.is_file() {
        return Err(ImageError::MissingBinary {
            path: binary.to_path_buf(),
        });
    }
    let key = binary.to_string_lossy().into_owned();
    parts.add_host_file(&key, binary, 0o755)?;
    let dynamic =
        matches!(parts.tree.get(&key), Some(Node::File { data, .. }) if is_dynamic_elf(data));
    if dynamic {
        for lib in needed_libraries(binary)? {
            add_library(parts, &lib)?;
        }
    }
    Ok(())
}

/// A library at the path ldd named. When that path is an absolute symlink
/// (Debian's /lib64/ld-linux-x86-64.so.2), the file goes at the link's
/// target and the link is kept, so both names resolve as on the host.
fn add_library(parts: &mut Assembly, lib: &Path) -> Result<(), ImageError> {
    let key = lib.to_string_lossy().into_owned();
    if parts.tree.contains(&key) {
        return Ok(());
    }
    match std::fs::read_link(lib) {
        Ok(target) if target.is_absolute() => {
            let target = target.to_string_lossy().into_owned();
            if !parts.tree.contains(&target) {
                parts.add_host_file(&target, lib, 0o755)?;
            }
            parts.tree.insert(&key, Node::Symlink { target });
        }
        _ => parts.add_host_file(&key, lib, 0o755)?,
    }
    Ok(())
}

/// Write the entry to a private directory, then rename it into place, so a
/// half-written image is never seen and two builders do not clash.
#[allow(clippy::too_many_arguments)]
fn store(
    cache_dir: &Path,
    entry: &Path,
    spec: &ImageSpec,
    kernel: &HostKernel,
    tree: &Tree,
    vmlinuz: &[u8],
    cpio: &[u8],
    compression: Compression,
) -> Result<(), ImageError> {
    create_readable_dir(cache_dir)?;
    let tmp = cache_dir.join(format!(".tmp-{}-{}", std::process::id(), unique()));
    create_readable_dir(&tmp)?;
    let result = write_entry(&tmp, spec, kernel, tree, vmlinuz, cpio, compression).and_then(|()| {
        match std::fs::rename(&tmp, entry) {
            Ok(()) => Ok(()),
            // Another builder finished the same hash first: theirs is as good.
            Err(_) if entry.join("initrd.img").is_file() => Ok(()),
            Err(source) => Err(ImageError::Io {
                what: "move the new image to",
                path: entry.to_path_buf(),
                source,
            }),
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn write_entry(
    dir: &Path,
    spec: &ImageSpec,
    kernel: &HostKernel,
    tree: &Tree,
    vmlinuz: &[u8],
    cpio: &[u8],
    compression: Compression,
) -> Result<(), ImageError> {
    write_readable(&dir.join("vmlinuz"), vmlinuz)?;
    let raw = dir.join("initrd.cpio");
    write_readable(&raw, cpio)?;
    let packed = match compression {
        Compression::Gzip => {
            Cmd::new("gzip")
                .args(["-n", "-9", "-q"])
                .arg(raw.to_string_lossy())
                .run_blocking()
                .map_err(|source| ImageError::Tool {
                    what: "gzip the initramfs".into(),
                    source,
                })?;
            dir.join("initrd.cpio.gz")
        }
        _ => {
            let out = dir.join("initrd.cpio.zst");
            Cmd::new("zstd")
                .args(["-q", "-9", "-T0", "--rm", "-o"])
                .arg(out.to_string_lossy())
                .arg(raw.to_string_lossy())
                .run_blocking()
                .map_err(|source| ImageError::Tool {
                    what: "zstd the initramfs".into(),
                    source,
                })?;
            out
        }
    };
    let initrd = dir.join("initrd.img");
    std::fs::rename(&packed, &initrd).map_err(ImageError::io("rename", &packed))?;
    std::fs::set_permissions(&initrd, std::fs::Permissions::from_mode(0o644))
        .map_err(ImageError::io("chmod", &initrd))?;
    let mut manifest = format!(
        "# {FORMAT}\nname: {}\nkernel: {}\ncompression: {compression:?}\n",
        spec.name, kernel.release
    );
    for (path, node) in tree.iter() {
        let kind = match node {
            Node::Dir => "dir".to_string(),
            Node::File { mode, data } => format!("file {mode:o} {}", data.len()),
            Node::Symlink { target } => format!("link -> {target}"),
            Node::CharDev { major, minor, .. } => format!("char {major}:{minor}"),
        };
        manifest.push_str(&format!("/{path} {kind}\n"));
    }
    write_readable(&dir.join("manifest.txt"), manifest.as_bytes())
}

fn write_readable(path: &Path, data: &[u8]) -> Result<(), ImageError> {
    std::fs::write(path, data).map_err(ImageError::io("write", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .map_err(ImageError::io("chmod", path))
}

/// Create `dir` (and parents) world-readable: libvirt's QEMU (user
/// libvirt-qemu) opens the kernel and initrd from here.
fn create_readable_dir(dir: &Path) -> Result<(), ImageError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_readable_dir(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(source) => {
            return Err(ImageError::Io {
                what: "create",
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(ImageError::io("chmod", dir))
}
