//! The binary's contract: exit codes, validate, dry-run creates nothing,
//! doctor names the fix.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_maas-e2e"))
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

#[test]
fn validate_exit_codes() {
    let ok = bin()
        .arg("validate")
        .arg(repo("scenarios/commission.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = bin()
        .arg("validate")
        .arg(repo("tests/invalid-scenarios/unknown-key.yaml"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("unknown-key.yaml:3:5: machines[0]: unknown field `colour`"),
        "{err}"
    );
    let usage = bin().arg("frobnicate").output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let missing = bin()
        .arg("validate")
        .arg("/nonexistent/x.yaml")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/x.yaml"));
}

#[test]
fn bad_scenario_among_good_ones_starts_nothing() {
    let out = tempfile::tempdir().unwrap();
    let r = bin()
        .args(["run", "--target", "none", "--out"])
        .arg(out.path())
        .arg(repo("scenarios/bmc-power.yaml"))
        .arg(repo("tests/invalid-scenarios/zero-count.yaml"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "a run directory was created"
    );
}

#[test]
fn target_not_listed_is_bad_input() {
    let out = tempfile::tempdir().unwrap();
    let r = bin()
        .args(["run", "--target", "chart", "--out"])
        .arg(out.path())
        .arg(repo("scenarios/bmc-power.yaml"))
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("does not list target `chart`"));
}

#[test]
fn dry_run_prints_plan_and_actions_and_creates_nothing() {
    let out = tempfile::tempdir().unwrap();
    let r = bin()
        .args(["run", "--dry-run", "--seed", "4", "--out"])
        .arg(out.path())
        .arg(repo("scenarios/commission.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let text = String::from_utf8_lossy(&r.stdout);
    for want in [
        "--- plan",
        "--- actions",
        "ip netns add me2e-",
        "virsh define",
        "step 03: commission all",
        "node-3",
    ] {
        assert!(text.contains(want), "dry run lacks `{want}`:\n{text}");
    }
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "dry run created a run directory"
    );
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("run_id: "))
        .unwrap()
        .trim()
        .to_string();
    assert!(!Path::new(&format!("/run/netns/me2e-{id}")).exists());
    assert!(!Path::new(&format!("/run/maas-e2e/runs/{id}.json")).exists());
}

#[test]
fn doctor_names_the_package_to_install() {
    let empty = tempfile::tempdir().unwrap();
    let r = bin()
        .arg("doctor")
        .arg("--target")
        .arg("none")
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(3),
        "a host without tools is not ready"
    );
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains("MISSING  ipmitool") && text.contains("apt-get install -y ipmitool"),
        "{text}"
    );
    assert!(text.contains("apt-get install -y freeipmi-tools"), "{text}");
    // Chart tools are not needed for target none.
    assert!(!text.contains("helm"), "{text}");
    let chart = bin()
        .arg("doctor")
        .arg("--target")
        .arg("chart")
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&chart.stdout);
    assert!(
        text.contains("MISSING  helm") && text.contains("MISSING  kind"),
        "{text}"
    );
}

/// A copy of this host's real dpkg database, with qemu-system-x86 put back
/// to bookworm's own build: doctor names the mix and the command that fixes it.
#[test]
fn doctor_names_a_qemu_install_mixed_between_suites() {
    let status = std::fs::read_to_string("/var/lib/dpkg/status").unwrap();
    if !maas_e2e::testing::require(
        "qemu-system-x86 installed (dpkg)",
        status.contains("Package: qemu-system-x86\n"),
        "run ci/setup-host.sh",
    ) {
        return;
    }
    let doctor = |admindir: &Path| {
        let r = bin()
            .args(["doctor", "--target", "sim"])
            .env("MAAS_E2E_DPKG_ADMINDIR", admindir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&r.stdout).into_owned()
    };
    let text = doctor(Path::new("/var/lib/dpkg"));
    assert!(
        text.contains("ok       QEMU packages from one suite"),
        "{text}"
    );

    let mixed = tempfile::tempdir().unwrap();
    let edited: Vec<String> = status
        .split("\n\n")
        .map(|p| {
            if p.starts_with("Package: qemu-system-x86\n") {
                p.lines()
                    .map(|l| {
                        if l.starts_with("Version:") {
                            "Version: 1:7.2+dfsg-7+deb12u16".to_string()
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                p.to_string()
            }
        })
        .collect();
    std::fs::write(mixed.path().join("status"), edited.join("\n\n")).unwrap();
    let text = doctor(mixed.path());
    assert!(
        text.contains("MISSING  QEMU packages from one suite")
            && text.contains("qemu-system-x86 1:7.2+dfsg-7+deb12u16 (bookworm)"),
        "{text}"
    );
    let fix = text
        .lines()
        .skip_while(|l| !l.contains("QEMU packages from one suite"))
        .find_map(|l| l.trim().strip_prefix("fix: "))
        .unwrap_or_else(|| panic!("no fix line: {text}"));
    assert!(fix.starts_with("apt-get install -y"), "{fix}");
    assert!(
        fix.contains("qemu-system-x86") && fix.contains("qemu-utils"),
        "{fix}"
    );
}

#[test]
fn repro_of_a_non_run_dir_is_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let r = bin().arg("repro").arg(d.path()).output().unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("run.json"));
}

/// The external target's flags are checked before anything starts, each
/// error naming the flag and its allowed form; with them, the dry run
/// shows the run joining the user's bridge without creating one.
#[test]
fn external_target_flags_are_bad_input_until_complete() {
    let out = tempfile::tempdir().unwrap();
    let scenario = repo("scenarios/enlist-commission.yaml");
    let run = |extra: &[&str]| {
        let r = bin()
            .args(["run", "--target", "external", "--out"])
            .arg(out.path())
            .args(extra)
            .arg(&scenario)
            .env_remove("MAAS_URL")
            .env_remove("MAAS_API_KEY")
            .env_remove("MAAS_E2E_LAB_BRIDGE")
            .env_remove("MAAS_E2E_BMC_ADDRESSES")
            .output()
            .unwrap();
        (
            r.status.code(),
            String::from_utf8_lossy(&r.stdout).into_owned() + &String::from_utf8_lossy(&r.stderr),
        )
    };
    let url = [
        "--maas-url",
        "http://127.0.0.1:1/MAAS",
        "--api-key",
        "a:b:c",
    ];
    let (code, text) = run(&url);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--lab-bridge NAME"), "{text}");
    let (code, text) = run(&[&url[..], &["--lab-bridge", "br-maas"]].concat());
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--bmc-addresses FIRST/PREFIX"), "{text}");
    let (code, text) = run(&[
        &url[..],
        &[
            "--lab-bridge",
            "br-maas",
            "--bmc-addresses",
            "10.0.0.255/24",
        ],
    ]
    .concat());
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("past the subnet's last host"), "{text}");
    let (code, text) = run(&[
        "--lab-bridge",
        "br-maas",
        "--bmc-addresses",
        "10.0.0.200/24",
    ]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("--maas-url URL"), "{text}");
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "a run directory was created"
    );

    let (code, text) = run(&[
        &url[..],
        &[
            "--lab-bridge",
            "br-maas",
            "--bmc-addresses",
            "10.0.0.200/24",
            "--dry-run",
        ],
    ]
    .concat());
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("check br-maas is an existing bridge"),
        "{text}"
    );
    assert!(text.contains("lan_ip: 10.0.0.200"), "{text}");
    assert!(!text.contains("ip link add br-maas type bridge"), "{text}");
    assert!(text.contains("DELETE machines/{id}/"), "{text}");
}

/// `--sim-profile` (issue 12): the 3.6 golden is named in the dry run, the
/// flag is refused for other targets, an unknown version or a scenario's
/// unknown `sim.profile` says what is allowed.
#[test]
fn sim_profile_names_its_goldens_and_refuses_what_it_cannot_be() {
    let out = tempfile::tempdir().unwrap();
    let dry = bin()
        .args(["run", "--dry-run", "--sim-profile", "3.6", "--out"])
        .arg(out.path())
        .arg(repo("scenarios/enlist-bios.yaml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        text.contains("compare scenarios/enlist-bios.sim-3.6.snap"),
        "{text}"
    );
    assert!(
        text.contains("profile: '3.6'"),
        "the plan shows the profile:\n{text}"
    );

    let other = bin()
        .args([
            "run",
            "--target",
            "none",
            "--sim-profile",
            "3.6",
            "--dry-run",
            "--out",
        ])
        .arg(out.path())
        .arg(repo("scenarios/bmc-power.yaml"))
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(2));
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(
        err.contains("--sim-profile 3.6 applies to --target sim only"),
        "{err}"
    );

    let unknown = bin()
        .args(["run", "--dry-run", "--sim-profile", "4.0"])
        .arg(repo("scenarios/enlist-bios.yaml"))
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("allowed: 2.8, 3.6"));

    let file = out.path().join("bad-profile.yaml");
    std::fs::write(
        &file,
        "machines:\n  - name: node\nsim:\n  profile: \"3.7\"\n",
    )
    .unwrap();
    let bad = bin().arg("validate").arg(&file).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("bad-profile.yaml:4:") && err.contains("2.8") && err.contains("3.6"),
        "{err}"
    );
}
