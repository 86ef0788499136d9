//! The builder: cache behaviour and initramfs contents.

use std::collections::BTreeSet;
use std::path::Path;

use maas_e2e::cmd::Cmd;
use maas_e2e::image::{self, ImageSpec, cpio, libs};

/// The initramfs of `initrd` unpacked into entries.
pub fn read_initrd(initrd: &Path, scratch: &Path) -> Vec<cpio::Entry> {
    let out = scratch.join("initrd.cpio");
    let magic = std::fs::read(initrd).unwrap();
    let tool = if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zstd"
    } else {
        "gzip"
    };
    // Binary output: std's Command writes it to a file as is.
    let status = std::process::Command::new(tool)
        .args(["-d", "-q", "-c"])
        .arg(initrd)
        .stdout(std::fs::File::create(&out).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "{tool} -d {initrd:?}");
    cpio::read_newc(&std::fs::read(&out).unwrap()).expect("initramfs is a newc archive")
}

fn have_tools() -> bool {
    maas_e2e::testing::require_program("busybox", "busybox-static")
        && maas_e2e::testing::require(
            "a Debian kernel in /boot",
            Path::new("/boot").is_dir(),
            "apt-get install linux-image-amd64",
        )
}

#[test]
fn same_inputs_reuse_the_cache_and_a_change_rebuilds() {
    if !have_tools() {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let first = image::build(&ImageSpec::marker("cache-test-a"), cache.path()).unwrap();
    let built_at = std::fs::metadata(&first.initrd)
        .unwrap()
        .modified()
        .unwrap();
    let again = image::build(&ImageSpec::marker("cache-test-a"), cache.path()).unwrap();
    assert_eq!(first, again, "same inputs give the same image");
    assert_eq!(
        std::fs::metadata(&again.initrd)
            .unwrap()
            .modified()
            .unwrap(),
        built_at,
        "not rebuilt"
    );

    let changed = image::build(&ImageSpec::marker("cache-test-b"), cache.path()).unwrap();
    assert_ne!(changed.hash, first.hash, "a changed file changes the hash");
    assert_ne!(changed.initrd, first.initrd);
    assert!(changed.initrd.is_file() && first.initrd.is_file());
    let mut entries: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    entries.retain(|e| e != ".digests"); // the digest memo (docs/image.md)
    assert_eq!(
        entries.len(),
        2,
        "two cache entries, no leftovers: {entries:?}"
    );

    // A file given in the spec replaces a host file at the same path: its
    // own bytes count, not the host file's remembered digest.
    let mut spec = ImageSpec::marker("cache-test-a");
    spec.files
        .push(image::ExtraFile::new("/bin/busybox", 0o755, "not busybox"));
    let replaced = image::build(&spec, cache.path()).unwrap();
    assert_ne!(replaced.hash, first.hash);
}

#[test]
fn bad_module_and_extra_file_are_refused_clearly() {
    if !have_tools() {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let mut spec = ImageSpec::marker("x");
    spec.modules.push("no_such_module".into());
    let err = image::build(&spec, cache.path()).unwrap_err().to_string();
    assert!(
        err.contains("no_such_module") && err.contains("modules.dep"),
        "{err}"
    );

    let mut spec = ImageSpec::marker("x");
    spec.files
        .push(image::ExtraFile::new("relative/file", 0o644, "x"));
    let err = image::build(&spec, cache.path()).unwrap_err().to_string();
    assert!(
        err.contains("relative/file") && err.contains("absolute"),
        "{err}"
    );
}

#[test]
fn ephemeral_initramfs_has_ipmi_config_and_every_library_it_needs() {
    if !have_tools() || !maas_e2e::testing::require_program("ipmi-config", "freeipmi-tools") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let image = image::build(&ImageSpec::ephemeral(), &image::default_cache_dir()).unwrap();
    let entries = read_initrd(&image.initrd, scratch.path());
    let by_path: std::collections::BTreeMap<&str, &cpio::Entry> =
        entries.iter().map(|e| (e.path.as_str(), e)).collect();

    // Resolve inside the archive, from the archived files' own DT_NEEDED:
    // every soname must be in a directory the loader searches.
    let mut todo = vec![
        "usr/sbin/ipmi-config".to_string(),
        "usr/bin/ipmitool".to_string(),
    ];
    let mut seen = BTreeSet::new();
    while let Some(path) = todo.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let entry = by_path
            .get(path.as_str())
            .unwrap_or_else(|| panic!("{path} is not in the initramfs"));
        for soname in libs::elf_needed(&entry.data) {
            let found = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"]
                .iter()
                .map(|dir| format!("{dir}/{soname}"))
                .find(|p| by_path.contains_key(p.as_str()))
                .unwrap_or_else(|| panic!("{path} needs {soname}, which is not in the initramfs"));
            todo.push(found);
        }
    }
    for lib in [
        "libfreeipmi.so",
        "libipmidetect.so",
        "libgcrypt.so",
        "libgpg-error.so",
        "libc.so",
    ] {
        assert!(
            seen.iter().any(|p| p.contains(lib)),
            "{lib} resolved: {seen:?}"
        );
    }
    assert!(
        by_path.contains_key("lib64/ld-linux-x86-64.so.2"),
        "the ELF interpreter's path is there"
    );

    // bmc-config is the script that execs ipmi-config; busybox gives the shell.
    let bmc_config = String::from_utf8_lossy(&by_path["usr/sbin/bmc-config"].data).into_owned();
    assert!(bmc_config.contains("ipmi-config"), "{bmc_config}");
    for applet in ["bin/sh", "sbin/udhcpc", "usr/bin/wget", "bin/busybox"] {
        assert!(by_path.contains_key(applet), "{applet} in the initramfs");
    }
    // The IPMI modules, their dependency first in the load list.
    let list = String::from_utf8_lossy(&by_path["etc/maas-e2e/modules"].data).into_owned();
    let pos = |m: &str| {
        list.lines()
            .position(|l| l.ends_with(&format!("/{m}.ko")))
            .unwrap_or_else(|| panic!("{m} in {list}"))
    };
    assert!(
        pos("ipmi_msghandler") < pos("ipmi_si") && pos("ipmi_msghandler") < pos("ipmi_devintf")
    );
    assert!(pos("virtio") < pos("virtio_net") && pos("failover") < pos("virtio_net"));
    for line in list.lines() {
        assert!(
            by_path.contains_key(line.trim_start_matches('/')),
            "{line} listed and present"
        );
    }
}

/// Benchmark, not a test: cold build vs cached lookup and image sizes.
/// `cargo nextest run -E 'binary(image) and test(bench_)' --run-ignored only --no-capture`
#[test]
#[ignore = "benchmark; run explicitly"]
fn bench_build_cold_vs_cached() {
    if !have_tools() {
        return;
    }
    for (name, spec) in [
        ("marker", ImageSpec::marker("bench")),
        ("ephemeral", ImageSpec::ephemeral()),
    ] {
        let mut cold = Vec::new();
        let mut cached = Vec::new();
        for _ in 0..3 {
            let cache = tempfile::tempdir().unwrap();
            let t = std::time::Instant::now();
            let image = image::build(&spec, cache.path()).unwrap();
            cold.push(t.elapsed());
            for _ in 0..3 {
                let t = std::time::Instant::now();
                image::build(&spec, cache.path()).unwrap();
                cached.push(t.elapsed());
            }
            let manifest =
                std::fs::read_to_string(image.initrd.with_file_name("manifest.txt")).unwrap();
            let raw: u64 = manifest
                .lines()
                .filter(|l| l.contains(" file "))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                .sum();
            eprintln!(
                "BENCH {name}: initrd {} bytes compressed, {raw} bytes of files, {} entries, kernel {} bytes",
                std::fs::metadata(&image.initrd).unwrap().len(),
                manifest.lines().count() - 4,
                std::fs::metadata(&image.kernel).unwrap().len(),
            );
        }
        cold.sort();
        cached.sort();
        eprintln!(
            "BENCH {name}: cold median {:?} (runs {cold:?})",
            cold[cold.len() / 2]
        );
        eprintln!(
            "BENCH {name}: cached median {:?} (runs {cached:?})",
            cached[cached.len() / 2]
        );
    }
}

/// A kernel whose modules are .ko.xz and which cannot load them compressed
/// (no CONFIG_MODULE_DECOMPRESS): the builder unpacks them; one that can
/// gets them as they are.
#[test]
fn compressed_modules_are_unpacked_only_when_the_kernel_needs_it() {
    if !have_tools() || !maas_e2e::testing::require_program("xz", "xz-utils") {
        return;
    }
    for (decompress_in_kernel, expect_path) in [(false, "dep_mod.ko"), (true, "dep_mod.ko.xz")] {
        let root = tempfile::tempdir().unwrap();
        let boot = root.path().join("boot");
        let modules = root.path().join("modules/9.9.9-test-amd64");
        std::fs::create_dir_all(&boot).unwrap();
        std::fs::create_dir_all(modules.join("kernel")).unwrap();
        std::fs::write(boot.join("vmlinuz-9.9.9-test-amd64"), b"not a real kernel").unwrap();
        let mut config =
            String::from("CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\nCONFIG_MODULE_COMPRESS_XZ=y\n");
        if decompress_in_kernel {
            config.push_str("CONFIG_MODULE_DECOMPRESS=y\n");
        }
        std::fs::write(boot.join("config-9.9.9-test-amd64"), config).unwrap();
        for name in ["dep_mod", "top_mod"] {
            let ko = modules.join(format!("kernel/{name}.ko"));
            std::fs::write(&ko, format!("module {name} bytes")).unwrap();
            Cmd::new("xz")
                .arg(ko.to_string_lossy())
                .run_blocking()
                .unwrap();
        }
        std::fs::write(
            modules.join("modules.dep"),
            "kernel/dep_mod.ko.xz:\nkernel/top_mod.ko.xz: kernel/dep_mod.ko.xz\n",
        )
        .unwrap();
        let mut spec = ImageSpec::marker("xz");
        spec.kernel = image::KernelSource::Release {
            boot_dir: boot.clone(),
            modules_root: root.path().join("modules"),
            release: "9.9.9-test-amd64".into(),
        };
        spec.modules = vec!["top_mod".into()];
        let cache = root.path().join("cache");
        let built = image::build(&spec, &cache).unwrap();
        let entries = read_initrd(&built.initrd, root.path());
        let find = |suffix: &str| entries.iter().find(|e| e.path.ends_with(suffix));
        let dep = find(&format!("kernel/{expect_path}"))
            .unwrap_or_else(|| panic!("{expect_path} in the image"));
        if !decompress_in_kernel {
            assert_eq!(dep.data, b"module dep_mod bytes", "unpacked");
        }
        let list = String::from_utf8(find("etc/maas-e2e/modules").unwrap().data.clone()).unwrap();
        let order: Vec<_> = list
            .lines()
            .map(|l| l.rsplit('/').next().unwrap())
            .collect();
        let ext = if decompress_in_kernel {
            ".ko.xz"
        } else {
            ".ko"
        };
        assert_eq!(
            order,
            [format!("dep_mod{ext}"), format!("top_mod{ext}")],
            "dependency first"
        );
    }
}
