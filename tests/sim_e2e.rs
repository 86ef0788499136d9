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

#[path = "support/walk.rs"]
mod walk;
use walk::{files, run_dirs};
#[path = "support/held_up.rs"]
mod held_up;
#[path = "support/left_nothing.rs"]
mod left_nothing;
use held_up::HeldUp;

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
        && require(
            "pxelinux",
            Path::new("/usr/lib/PXELINUX/lpxelinux.0").exists(),
            "apt-get install pxelinux syslinux-common",
        )
        && require(
            "postgresql",
            maas_e2e::targets::sim::postgres::find_bin_dir().is_ok(),
            "apt-get install postgresql",
        )
        && require(
            "libvirtd",
            Path::new("/var/run/libvirt/libvirt-sock").exists(),
            "start libvirtd (ci/setup-host.sh does)",
        )
}

/// Run scenarios on the sim target; assert exit 0, then check every run.
fn run_and_check(names: &[&str]) {
    run_and_check_with(names, &[]);
}

/// `run_and_check` with more `run` options; returns the output directory.
/// With `--sim-profile PROFILE` the goldens compared are NAME.sim-PROFILE.snap.
fn run_and_check_with(names: &[&str], options: &[&str]) -> tempfile::TempDir {
    let profile = options
        .iter()
        .position(|o| *o == "--sim-profile")
        .map(|i| options[i + 1]);
    let out = tempfile::tempdir().unwrap();
    // Heartbeats every 5 s: no run waits less than that for its guests.
    let r = bin()
        .args(["run", "--target", "sim", "--seed", "1"])
        .args(options)
        .arg("--out")
        .arg(out.path())
        .args(names.iter().map(|n| repo(&format!("scenarios/{n}.yaml"))))
        .env("MAAS_E2E_HEARTBEAT", "5s")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&r.stdout);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(
        r.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // Without a terminal, a long wait is visibly alive in the log: the step
    // and what each machine showed, and at the end where the time went.
    let beats: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(": still running after "))
        .collect();
    assert!(!beats.is_empty(), "no heartbeat line in:\n{stderr}");
    assert!(
        stderr.lines().any(|l| l.trim_start().starts_with("node")
            && (l.contains("power on") || l.contains("power off"))),
        "no machine line in the heartbeats:\n{stderr}"
    );
    assert_eq!(
        stderr
            .lines()
            .filter(|l| l.trim_start().starts_with("time: plan "))
            .count(),
        names.len(),
        "one closing time line per run:\n{stderr}"
    );
    let dirs = run_dirs(out.path());
    assert_eq!(dirs.len(), names.len(), "one run directory per scenario");
    let domains = Command::new("virsh")
        .args(["-c", "qemu:///system", "list", "--all", "--name"])
        .output()
        .unwrap();
    let domains = String::from_utf8_lossy(&domains.stdout).into_owned();
    for dir in dirs {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
        // The profile is recorded (repro runs it again) and was the one used.
        assert_eq!(record["sim_profile"].as_str(), profile, "{record}");
        let loaded = scenario::load(Path::new(record["scenario_path"].as_str().unwrap())).unwrap();
        let run_id: RunId = record["run_id"].as_str().unwrap().parse().unwrap();
        let plan = plan::plan(&loaded, TargetKind::Sim, &run_id, 1, out.path());
        for m in &plan.machines {
            // The chain really ran: the guest enlisted, and its BMC saw the
            // in-band user setup.
            let console = std::fs::read_to_string(&m.console_log).unwrap_or_default();
            assert!(
                console.contains("maas-e2e: enlist: done"),
                "{}: the console shows no enlistment:\n{console}",
                m.name
            );
            // Commissioning that should end Ready ran every script on the
            // guest (a power-on failure never boots it).
            let commissioned = loaded
                .scenario
                .steps
                .iter()
                .any(|s| matches!(s, scenario::Step::Commission(_)))
                && !loaded.scenario.steps.iter().any(|s| {
                    matches!(s, scenario::Step::WaitStatus(w)
                        if w.status == scenario::MachineStatus::FailedCommissioning)
                });
            if commissioned {
                assert!(
                    console.contains("maas-e2e: commission: done"),
                    "{}: the console shows no commissioning:\n{console}",
                    m.name
                );
            }
            if profile == Some("3.6") {
                // MAAS 3.6 skips BMC setup inside a VM: the guest's model
                // of systemd-detect-virt found none of its signals, so the
                // lab's VM passes for bare metal (docs/lab.md).
                assert!(
                    console.contains(
                        "maas-e2e: bmc-config 3.6: systemd-detect-virt: no VM (signals: none)"
                    ),
                    "{}: the console shows no bare-metal verdict:\n{console}",
                    m.name
                );
                assert!(
                    !console.contains("Running on virtual machine"),
                    "{}: the guest took itself for a VM:\n{console}",
                    m.name
                );
                // The guest followed MAAS 3.6's bmc_config.py.
                assert!(
                    console.contains("maas-e2e: bmc-config 3.6: user maas in User"),
                    "{}: the console shows no 3.6 BMC configuration:\n{console}",
                    m.name
                );
            }
            let t = std::fs::read_to_string(&m.bmc.transcript).unwrap();
            assert!(
                t.contains("\"channel\":\"inband\""),
                "{}: no in-band traffic in the BMC transcript",
                m.name
            );
            assert!(
                !domains.contains(&m.domain),
                "domain {} was left defined",
                m.domain
            );
        }
        assert!(
            !plan.host.vm_dir.exists(),
            "{} was left behind",
            plan.host.vm_dir.display()
        );
        left_nothing::assert_run_left_nothing(&dir, &plan);
    }
    out
}

/// UEFI here; BIOS in the `--postgres container` test below (same golden
/// whichever Postgres holds the region's state, and every other scenario
/// runs with the local one).
#[test]
fn enlist_uefi_on_a_real_vm_matches_its_snapshot() {
    if !prerequisites() {
        return;
    }
    run_and_check(&["enlist-uefi"]);
}

#[test]
fn commissioning_multi_nic_flaky_autodetect_and_power_retries_reach_their_end_states() {
    if !prerequisites() {
        return;
    }
    run_and_check(&[
        "commission",
        "multi-nic",
        "autodetect-flaky-bmc",
        "bmc-error",
    ]);
}

/// The parity scenarios of issue 15: autodetect refused during
/// commissioning (Ready, old credentials), power-on failure at commission
/// (Failed commissioning, MAAS's text), a transient BMC error during a power
/// query (retried, passes), a New machine booted again (powered off, not
/// enlisted twice), an uploaded commissioning script that fails (all run,
/// then Failed commissioning).
#[test]
fn parity_autodetect_refused_power_on_failure_and_query_retry_match_their_snapshots() {
    if !prerequisites() {
        return;
    }
    run_and_check(&[
        "autodetect-refused-commissioning",
        "power-on-failure-commission",
        "power-query-transient",
        "enlist-twice",
        "commissioning-script-fails",
    ]);
}

/// Issue 12: the sim's MAAS 3.6 profile (the chart's HEAD) on real VMs: the
/// guests configure their BMCs as 3.6's bmc_config.py does and report 3.6's
/// power parameters (cipher_suite_id 3, privilege_level ADMIN, mac_address),
/// the rack powers them with 3.6's argv; goldens NAME.sim-3.6.snap.
#[test]
fn maas_3_6_profile_enlists_and_commissions_matching_its_goldens() {
    if !prerequisites() {
        return;
    }
    run_and_check_with(&["enlist-bios", "commission"], &["--sim-profile", "3.6"]);
}

/// `--postgres container`: the sim region's state in Debian's Postgres in a
/// container of our own dockerd; same golden, and the container is gone after.
#[test]
fn enlist_bios_with_postgres_in_a_container() {
    if !(prerequisites() && require_program("docker", "docker.io")) {
        return;
    }
    let out = run_and_check_with(&["enlist-bios"], &["--postgres", "container"]);
    let dir = run_dirs(out.path()).pop().unwrap();
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    let log = std::fs::read_to_string(dir.join("maas-e2e.log")).unwrap();
    assert!(
        log.contains(&format!("me2e-{id}-postgres")),
        "the run log names no Postgres container:\n{log}"
    );
    assert!(
        !log.contains("starting postgres command="),
        "a local Postgres was started too"
    );
    let left = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=maas-e2e.run-id={id}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&left.stdout).trim(),
        "",
        "containers of run {id} left"
    );
}

/// Target external against a running sim: `up` hands out the MAAS in a
/// 0600 file; a run with those values enlists and commissions a VM of its
/// own through that MAAS (its BMC on the sim's bridge via our veth), then
/// deletes the machine it enlisted and leaves nothing. Bad key and bad
/// bridge fail before anything starts.
#[test]
fn external_target_drives_a_held_up_sim() {
    use std::os::unix::fs::PermissionsExt;
    if !prerequisites() {
        return;
    }
    let up_out = tempfile::tempdir().unwrap();
    let mut up = HeldUp::start(bin(), up_out.path(), &repo("scenarios/sim-maas.yaml"), 3);
    let conn = up.conn.clone();
    let mode = std::fs::metadata(&conn).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} is readable by others", conn.display());
    let vars = up.vars();
    let var = |k: &str| {
        vars.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{k} missing in {}", conn.display()))
    };
    let key = var("MAAS_API_KEY");
    assert!(
        !std::fs::read_to_string(up_out.path().join("up.log"))
            .unwrap()
            .contains(&key),
        "up printed the API key"
    );

    let external_run = |out: &Path, overrides: &[(&str, &str)]| {
        let mut c = bin();
        c.args(["run", "--target", "external", "--seed", "2", "--out"])
            .arg(out)
            .arg(repo("scenarios/enlist-commission.yaml"));
        for (k, v) in &vars {
            c.env(k, v);
        }
        for (k, v) in overrides {
            c.env(k, v);
        }
        let r = c.output().unwrap();
        (
            r.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&r.stdout),
                String::from_utf8_lossy(&r.stderr)
            ),
        )
    };
    let no_netns_left = |out: &Path| {
        for dir in run_dirs(out) {
            let id = dir.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !Path::new("/run/netns")
                    .join(format!("{}-{id}", plan::NAME_PREFIX))
                    .exists(),
                "netns of {id} left"
            );
        }
    };

    // A key MAAS does not know: refused before anything is created.
    let bad = tempfile::tempdir().unwrap();
    let (code, text) = external_run(
        bad.path(),
        &[(
            "MAAS_API_KEY",
            "aaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbb:cccccccccccccccccccccccccccccccc",
        )],
    );
    // The MAAS said no: the target's failure (exit 5, issue 10).
    assert_eq!(code, Some(5), "{text}");
    assert!(text.contains("refused the API key"), "{text}");
    no_netns_left(bad.path());
    // A bridge that does not exist.
    let (code, text) = external_run(bad.path(), &[("MAAS_E2E_LAB_BRIDGE", "m2nosuchbr")]);
    // The lab could not be built: exit 4 (issue 10).
    assert_eq!(code, Some(4), "{text}");
    assert!(text.contains("no bridge `m2nosuchbr`"), "{text}");
    no_netns_left(bad.path());

    // The real run: enlist and commission through the held-up sim.
    let out = tempfile::tempdir().unwrap();
    let (code, text) = external_run(out.path(), &[]);
    assert_eq!(code, Some(0), "{text}");
    let dir = run_dirs(out.path()).pop().unwrap();
    let result = std::fs::read_to_string(dir.join("result.yaml")).unwrap();
    assert!(
        result.contains("status: Ready") && result.contains("power_address: <bmc-ip:node>"),
        "{result}"
    );
    let loaded = scenario::load(&repo("scenarios/enlist-commission.yaml")).unwrap();
    let run_id: RunId = dir.file_name().unwrap().to_string_lossy().parse().unwrap();
    let p = plan::plan(&loaded, TargetKind::External, &run_id, 2, out.path());
    let console = std::fs::read_to_string(&p.machines[0].console_log).unwrap_or_default();
    assert!(
        console.contains("maas-e2e: commission: done"),
        "the console shows no commissioning:\n{console}"
    );
    for f in files(&dir) {
        let t = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert!(!t.contains(&key), "{} holds the API key", f.display());
    }
    // Its namespace gone, no BMC password in its files, an empty state file.
    left_nothing::assert_run_left_nothing(&dir, &p);
    // The machine it enlisted is gone from the MAAS; the bridge is still there.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client =
        maas_e2e::maas::MaasClient::new(&var("MAAS_URL"), Some(key.parse().unwrap())).unwrap();
    let machines = rt.block_on(client.machines()).unwrap();
    let mac = p.machines[0].nics[0].mac.to_ascii_lowercase();
    assert!(
        !machines.iter().any(|m| m
            .interface_set
            .iter()
            .any(|i| i.mac_address.to_ascii_lowercase() == mac)),
        "the enlisted machine is still in MAAS"
    );
    let bridge = var("MAAS_E2E_LAB_BRIDGE");
    assert!(
        Command::new("ip")
            .args(["link", "show", "dev", &bridge])
            .status()
            .unwrap()
            .success(),
        "the user's bridge was removed"
    );

    // Ctrl-C on `up`: everything of the sim goes, the connection file too.
    assert_eq!(
        up.interrupt(),
        Some(0),
        "{}",
        std::fs::read_to_string(up_out.path().join("up.log")).unwrap()
    );
    assert!(!conn.exists(), "{} left behind", conn.display());
    assert!(
        !Command::new("ip")
            .args(["link", "show", "dev", &bridge])
            .status()
            .unwrap()
            .success(),
        "the sim's bridge was left"
    );
}
