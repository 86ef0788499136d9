//! End to end on target `sim`: real VMs under libvirt (TCG) behind our
//! BMCs, PXE from the sim rack, the ephemeral environment enlisting (and
//! commissioning) against the sim region, power through FreeIPMI in the lab
//! namespace. Each run must pass its checks, match its golden snapshot,
//! leave nothing behind, and keep the BMC passwords out of its artifacts.

use std::path::{Path, PathBuf};
use std::process::Command;

use maas_e2e::plan::{self, RunId};
use maas_e2e::scenario::{self, TargetKind};
use maas_e2e::testing::{require, require_program, require_root};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_maas-e2e"))
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn prerequisites() -> bool {
    require_root()
        && require_program("qemu-system-x86_64", "qemu-system-x86")
        && require_program("qemu-img", "qemu-utils")
        && require_program("virsh", "libvirt-clients")
        && require_program("ipmipower", "freeipmi-tools")
        && require_program("ipmi-chassis-config", "freeipmi-tools")
        && require_program("ip", "iproute2")
        && require("pxelinux", Path::new("/usr/lib/PXELINUX/lpxelinux.0").exists(), "apt-get install pxelinux syslinux-common")
        && require("postgresql", maas_e2e::target::sim::postgres::find_bin_dir().is_ok(), "apt-get install postgresql")
        && require("libvirtd", Path::new("/var/run/libvirt/libvirt-sock").exists(), "start libvirtd (ci/setup-host.sh does)")
}

fn run_dirs(out: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    v.sort();
    v
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap()) {
        if e.file_type().unwrap().is_dir() {
            out.extend(files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// Run scenarios on the sim target; assert exit 0, then check every run.
fn run_and_check(names: &[&str]) {
    let out = tempfile::tempdir().unwrap();
    let r = bin()
        .args(["run", "--target", "sim", "--seed", "1", "--out"])
        .arg(out.path())
        .args(names.iter().map(|n| repo(&format!("scenarios/{n}.yaml"))))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&r.stdout);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let dirs = run_dirs(out.path());
    assert_eq!(dirs.len(), names.len(), "one run directory per scenario");
    let domains = Command::new("virsh").args(["-c", "qemu:///system", "list", "--all", "--name"]).output().unwrap();
    let domains = String::from_utf8_lossy(&domains.stdout).into_owned();
    for dir in dirs {
        let record: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
        let loaded = scenario::load(Path::new(record["scenario_path"].as_str().unwrap())).unwrap();
        let run_id: RunId = record["run_id"].as_str().unwrap().parse().unwrap();
        let plan = plan::plan(&loaded, TargetKind::Sim, &run_id, 1, out.path());
        for m in &plan.machines {
            // The chain really ran: the guest enlisted, and its BMC saw the
            // in-band user setup.
            let console = std::fs::read_to_string(&m.console_log).unwrap_or_default();
            assert!(console.contains("maas-e2e: enlist: done"), "{}: the console shows no enlistment:\n{console}", m.name);
            let commissioned = loaded.scenario.steps.iter().any(|s| matches!(s, scenario::Step::Commission(_)));
            if commissioned {
                assert!(console.contains("maas-e2e: commission: done"), "{}: the console shows no commissioning:\n{console}", m.name);
            }
            let t = std::fs::read_to_string(&m.bmc.transcript).unwrap();
            assert!(t.contains("\"channel\":\"inband\""), "{}: no in-band traffic in the BMC transcript", m.name);
            assert!(!domains.contains(&m.domain), "domain {} was left defined", m.domain);
        }
        assert!(!plan.host.vm_dir.exists(), "{} was left behind", plan.host.vm_dir.display());
        assert!(!Path::new("/run/netns").join(&plan.host.netns).exists(), "netns {} was left behind", plan.host.netns);
        for f in files(&dir) {
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
            for m in &plan.machines {
                assert!(!text.contains(&m.bmc.password), "{} holds the BMC password of {}", f.display(), m.name);
            }
        }
        let state: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap();
        assert_eq!(state["resources"].as_array().map(Vec::len), Some(0), "teardown left: {state}");
    }
}

#[test]
fn enlist_bios_and_uefi_on_real_vms_match_their_snapshots() {
    if !prerequisites() {
        return;
    }
    run_and_check(&["enlist-bios", "enlist-uefi"]);
}

#[test]
fn commissioning_multi_nic_flaky_autodetect_and_power_retries_reach_their_end_states() {
    if !prerequisites() {
        return;
    }
    run_and_check(&["commission", "multi-nic", "autodetect-flaky-bmc", "bmc-error"]);
}
