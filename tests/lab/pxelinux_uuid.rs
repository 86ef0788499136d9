//! Why a run's machines always probe `pxelinux.cfg/<uuid>`: the real chain
//! (SeaBIOS, QEMU's iPXE ROM, Debian's lpxelinux) booted under TCG with
//! QEMU's own user-mode network (its DHCP and TFTP live inside the QEMU
//! process: nothing leaves it) and every packet dumped to a pcap. pxelinux
//! skips the UUID probe for some UUIDs (it reads the version from the
//! wrong byte of iPXE's option 97); `run_uuid` never makes one of those.

use std::path::Path;
use std::time::Duration;

use maas_e2e::cmd::Cmd;
use maas_e2e::run::lab::vms::{pxelinux_probes_uuid, run_uuid};
use maas_e2e::testing::{require, require_program};

const PXELINUX: &str = "/usr/lib/PXELINUX/lpxelinux.0";
const MODULES: &str = "/usr/lib/syslinux/modules/bios";

/// A TFTP root that boots pxelinux and powers the VM off from `default`,
/// the last config pxelinux tries (so every probe before it is seen).
fn tftp_root(dir: &Path) {
    std::fs::copy(PXELINUX, dir.join("lpxelinux.0")).unwrap();
    for m in ["ldlinux.c32", "poweroff.c32", "libcom32.c32"] {
        std::fs::copy(Path::new(MODULES).join(m), dir.join(m)).unwrap();
    }
    std::fs::create_dir_all(dir.join("pxelinux.cfg")).unwrap();
    std::fs::write(
        dir.join("pxelinux.cfg/default"),
        "DEFAULT off\nLABEL off\n  COM32 poweroff.c32\n",
    )
    .unwrap();
}

/// The files pxelinux asked for, in order, booting a VM with this SMBIOS UUID.
fn tftp_reads(dir: &Path, uuid: &str) -> Vec<String> {
    let pcap = dir.join(format!("{uuid}.pcap"));
    Cmd::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg",
            "-m",
            "256",
            "-nographic",
            "-nodefaults",
            "-no-reboot",
        ])
        .args(["-serial", "null", "-uuid", uuid, "-boot", "n", "-netdev"])
        .arg(format!(
            "user,id=n0,restrict=on,tftp={},bootfile=lpxelinux.0",
            dir.display()
        ))
        .args(["-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56"])
        .arg("-object")
        .arg(format!(
            "filter-dump,id=f0,netdev=n0,file={}",
            pcap.display()
        ))
        .timeout(Duration::from_secs(180))
        .run_blocking()
        .unwrap_or_else(|e| panic!("the VM did not power itself off: {e}"));
    let dump = Cmd::new("tcpdump")
        .args(["-n", "-r"])
        .arg(pcap.display().to_string())
        .args(["udp", "dst", "port", "69"])
        .run_blocking()
        .unwrap();
    dump.lines()
        .filter_map(|l| l.split("RRQ \"").nth(1)?.split('"').next())
        .map(str::to_string)
        .collect()
}

/// pxelinux's UUID path: iPXE's wire order, the first three fields swapped.
fn pxelinux_uuid_path(uuid: &str) -> String {
    let b = uuid::Uuid::parse_str(uuid).unwrap().to_bytes_le();
    format!("pxelinux.cfg/{}", uuid::Uuid::from_bytes(b))
}

#[test]
fn vm_pxelinux_probes_the_uuid_config_only_for_uuids_run_uuid_makes() {
    if !(require_program("qemu-system-x86_64", "qemu-system-x86")
        && require_program("tcpdump", "tcpdump")
        && require(
            "pxelinux and the syslinux modules",
            Path::new(PXELINUX).is_file() && Path::new(MODULES).join("poweroff.c32").is_file(),
            "apt-get install pxelinux syslinux-common (ci/setup-host.sh)",
        ))
    {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("maas-e2e-pxelinux-")
        .tempdir_in("/var/tmp")
        .unwrap();
    tftp_root(dir.path());

    // A UUID of the kind that made the probe come and go (seen in a
    // commission run): its third field's low byte is 0x0d.
    let skipped = "8e04c046-9d15-4f0d-ad25-cf3c886e33d7";
    assert!(!pxelinux_probes_uuid(
        &uuid::Uuid::parse_str(skipped).unwrap()
    ));
    let reads = tftp_reads(dir.path(), skipped);
    assert!(
        reads.iter().any(|r| r == "pxelinux.cfg/default"),
        "{reads:?}"
    );
    assert!(!reads.contains(&pxelinux_uuid_path(skipped)), "{reads:?}");
    assert!(
        reads.iter().any(|r| r.starts_with("pxelinux.cfg/01-")),
        "{reads:?}"
    );

    // What a run gives its machines: the probe comes first, before the MAC's.
    let ours = run_uuid("3f2a9c1d", "8e04c046-9d15-4f0d-ad25-cf3c886e33d7");
    assert!(pxelinux_probes_uuid(&uuid::Uuid::parse_str(&ours).unwrap()));
    let reads = tftp_reads(dir.path(), &ours);
    let probe = reads.iter().position(|r| *r == pxelinux_uuid_path(&ours));
    let by_mac = reads
        .iter()
        .position(|r| r == "pxelinux.cfg/01-52-54-00-12-34-56");
    assert!(probe.is_some() && probe < by_mac, "{reads:?}");
}
