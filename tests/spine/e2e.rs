//! End to end on target `none`: VM-less machines whose power is driven with
//! ipmipower (MAAS's flags) against our BMCs inside a lab namespace; the
//! results match the golden snapshots, no secret reaches an artifact, and
//! `repro` reproduces a run.

use std::path::{Path, PathBuf};
use std::process::Command;

use maas_e2e::plan::{self, RunId};
use maas_e2e::scenario::{self, TargetKind};
use maas_e2e::testing::{require_program, require_root};

use crate::walk::{files, run_dirs};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_maas-e2e"))
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn prerequisites() -> bool {
    require_root()
        && require_program("ipmipower", "freeipmi-tools")
        && require_program("ipmi-chassis-config", "freeipmi-tools")
        && require_program("ip", "iproute2")
}

#[test]
fn none_target_scenarios_match_their_snapshots_and_leak_nothing() {
    if !prerequisites() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let names = ["bmc-power", "bmc-faults"];
    let r = bin()
        .args(["run", "--target", "none", "--seed", "1", "--out"])
        .arg(out.path())
        .args(names.iter().map(|n| repo(&format!("scenarios/{n}.yaml"))))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&r.stdout);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(
        r.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("bmc-power") && stdout.contains("match"),
        "{stdout}"
    );

    for dir in run_dirs(out.path()) {
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
        let scenario_path = PathBuf::from(record["scenario_path"].as_str().unwrap());
        let loaded = scenario::load(&scenario_path).unwrap();
        let run_id: RunId = record["run_id"].as_str().unwrap().parse().unwrap();
        // A finished run leaves nothing on the host.
        assert!(!Path::new(&format!("/run/netns/me2e-{run_id}")).exists());
        let rules = Command::new("iptables")
            .args(["-w", "-S", "FORWARD"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        assert!(
            !rules.contains(run_id.as_str()),
            "an iptables rule of run {run_id} is left:\n{rules}"
        );
        assert!(
            !Path::new("/sys/class/net")
                .join(format!("m2b{run_id}"))
                .exists()
        );
        let plan = plan::plan(&loaded, TargetKind::None, &run_id, 1, out.path());
        // Every artifact of the run, the transcripts included, is free of
        // the BMC passwords the plan derived.
        for f in files(&dir) {
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
            for m in &plan.machines {
                assert!(
                    !text.contains(&m.bmc.password),
                    "{} holds the BMC password of {}",
                    f.display(),
                    m.name
                );
            }
        }
        let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
        let doc = roxmltree::Document::parse(&junit).unwrap();
        let cases = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .count();
        assert_eq!(
            cases,
            loaded.scenario.steps.len() + loaded.scenario.expect.len() + 1,
            "{junit}"
        );
        assert_eq!(
            doc.descendants()
                .filter(|n| n.has_tag_name("failure"))
                .count(),
            0,
            "{junit}"
        );
        for m in &plan.machines {
            let t = std::fs::read_to_string(&m.bmc.transcript).unwrap();
            assert!(
                t.contains("\"name\":\"ChassisControl\""),
                "{} transcript lacks Chassis Control",
                m.name
            );
        }
    }
}

#[test]
fn repro_reruns_the_same_scenario_seed_and_target() {
    if !prerequisites() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let first = bin()
        .args(["run", "--target", "none", "--seed", "1", "--out"])
        .arg(out.path())
        .arg(repo("scenarios/bmc-power.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let dir = run_dirs(out.path()).pop().unwrap();
    let out2 = tempfile::tempdir().unwrap();
    let again = bin()
        .arg("repro")
        .arg(&dir)
        .arg("--out")
        .arg(out2.path())
        .output()
        .unwrap();
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let dir2 = run_dirs(out2.path()).pop().unwrap();
    assert_ne!(dir.file_name(), dir2.file_name(), "repro uses a new run id");
    let plan_a = std::fs::read_to_string(dir.join("plan.yaml")).unwrap();
    let plan_b = std::fs::read_to_string(dir2.join("plan.yaml")).unwrap();
    let lab = |p: &str| {
        p.split("\nlab:")
            .nth(1)
            .unwrap()
            .split("machines:")
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        lab(&plan_a),
        lab(&plan_b),
        "the same seed gives the same lab"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("result.yaml")).unwrap(),
        std::fs::read_to_string(dir2.join("result.yaml")).unwrap()
    );
}

/// The exit code says where a run failed: 1 a check of the scenario, 4 the
/// lab (a VM on target none has no MAAS to boot it), 5 the target (an
/// external MAAS that does not answer). README.md "Exit codes".
#[test]
fn exit_codes_tell_a_failed_check_from_the_lab_from_the_target() {
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, yaml: &str, args: &[&str]| {
        let path = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        let r = bin()
            .arg("run")
            .args(args)
            .arg("--out")
            .arg(tmp.path().join("runs"))
            .arg(&path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        );
        (r.status.code(), text)
    };

    let (code, text) = run(
        "check",
        "description: the machine is on; the check says off\ntargets: [none]\n\
         machines:\n  - name: node\n    vm: false\n\
         steps:\n  - power_on: node\n\
         expect:\n  - machine: {machine: node, field: power_state, equals: \"off\"}\n",
        &["--target", "none"],
    );
    assert_eq!(code, Some(1), "a failed check: {text}");

    let (code, text) = run(
        "lab",
        "description: a VM without a MAAS to boot it\ntargets: [none]\n\
         machines:\n  - name: node\n    vm: true\n\
         steps:\n  - power_on: node\n",
        &["--target", "none"],
    );
    assert_eq!(code, Some(4), "a lab failure: {text}");
    assert!(
        text.contains("machines with VMs need a MAAS target"),
        "{text}"
    );

    let (code, text) = run(
        "target",
        "description: an external MAAS that does not answer\ntargets: [external]\n\
         machines:\n  - name: node\n    vm: false\n\
         steps:\n  - power_on: node\n",
        &[
            "--target",
            "external",
            // Port 9 (discard) on loopback: nothing listens.
            "--maas-url",
            "http://127.0.0.1:9/MAAS",
            "--api-key",
            "aaaaaaaaaaaaaaaaaa:bbbbbbbbbbbbbbbbbb:cccccccccccccccccccccccccccccccc",
            "--lab-bridge",
            "m2nosuchbr",
            "--bmc-addresses",
            "10.99.0.20/24",
        ],
    );
    assert_eq!(code, Some(5), "a target failure: {text}");
    for dir in run_dirs(&tmp.path().join("runs")) {
        let id = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !Path::new("/run/netns")
                .join(format!("{}-{id}", plan::NAME_PREFIX))
                .exists(),
            "netns of {id} left"
        );
    }
}
