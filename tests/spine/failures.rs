//! Runs that must fail, through the built binary on target `none` (no VM
//! adds anything here): a failing drive step, a failing `expect` check and
//! a snapshot diff each give exit 1, a JUnit failure naming what failed,
//! and a complete teardown (empty state file, no registry entry, no lab
//! namespace or bridge). Also the registry's pid-reuse check that decides
//! what `down` kills.

use std::path::{Path, PathBuf};
use std::process::Command;

use maas_e2e::plan::RunId;
use maas_e2e::run::state::{self, RegistryEntry};
use maas_e2e::testing::{require_program, require_root};

use crate::walk::run_dirs;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_maas-e2e"))
}

fn prerequisites() -> bool {
    require_root()
        && require_program("ipmipower", "freeipmi-tools")
        && require_program("ipmi-chassis-config", "freeipmi-tools")
        && require_program("ip", "iproute2")
}

/// What a finished run left: its exit code, output, and run directory.
struct Finished {
    code: Option<i32>,
    text: String,
    dir: PathBuf,
}

/// `maas-e2e run --target none SCENARIO` with `extra` args, into `out`.
fn run_none(out: &Path, scenario: &Path, extra: &[&str]) -> Finished {
    let before = if out.exists() { run_dirs(out) } else { vec![] };
    let r = bin()
        .args(["run", "--target", "none", "--seed", "1", "--out"])
        .arg(out)
        .args(extra)
        .arg(scenario)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    let dir = run_dirs(out)
        .into_iter()
        .find(|d| !before.contains(d))
        .unwrap_or_else(|| panic!("no run directory: {text}"));
    Finished {
        code: r.status.code(),
        text,
        dir,
    }
}

/// The JUnit test cases of a run that carry a <failure>, by name.
fn junit_failures(dir: &Path) -> Vec<String> {
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&junit).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter(|n| n.children().any(|c| c.has_tag_name("failure")))
        .map(|n| n.attribute("name").unwrap_or_default().to_string())
        .collect()
}

/// The run tore down everything it made.
fn torn_down(f: &Finished) {
    let run_id: RunId = f
        .dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .parse()
        .unwrap();
    let st = state::read_state(&f.dir).expect("state file");
    assert_eq!(st.resources, vec![], "resources left: {}", f.text);
    assert!(
        !state::registry_path(&run_id).exists(),
        "registry entry left: {}",
        f.text
    );
    assert!(!Path::new(&format!("/run/netns/me2e-{run_id}")).exists());
    assert!(
        !Path::new("/sys/class/net")
            .join(format!("m2b{run_id}"))
            .exists()
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_failing_drive_step_fails_the_run_and_tears_down() {
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // The BMC acknowledges power on without doing it: the step fails
    // ("never transitioned", as MAAS's power driver says) after MAAS's
    // waits, here 25 ms per unit (3 s in all).
    let scenario = write(
        tmp.path(),
        "failing-step.yaml",
        "description: a BMC that lies about power on\ntargets: [none]\n\
         machines:\n  - name: liar\n    vm: false\n    bmc:\n      faults: [ignore_power_on]\n\
         sim:\n  power_wait_unit: 25ms\n\
         steps:\n  - power_on: liar\n",
    );
    let f = run_none(&tmp.path().join("runs"), &scenario, &[]);
    assert_eq!(f.code, Some(1), "{}", f.text);
    let failures = junit_failures(&f.dir);
    assert!(
        failures.iter().any(|n| n.contains("power_on liar")),
        "{failures:?}\n{}",
        f.text
    );
    torn_down(&f);
}

#[test]
fn a_failing_expect_check_fails_the_run_and_tears_down() {
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let scenario = write(
        tmp.path(),
        "failing-check.yaml",
        "description: the machine is on; the check says off\ntargets: [none]\n\
         machines:\n  - name: node\n    vm: false\n\
         steps:\n  - power_on: node\n\
         expect:\n  - machine: {machine: node, field: power_state, equals: \"off\"}\n",
    );
    // No golden yet: written, so the snapshot passes and only the check fails.
    let f = run_none(&tmp.path().join("runs"), &scenario, &["--update-snapshots"]);
    assert_eq!(f.code, Some(1), "{}", f.text);
    let failures = junit_failures(&f.dir);
    assert_eq!(failures.len(), 1, "only the check failed: {failures:?}");
    assert!(failures[0].contains("power_state"), "{failures:?}");
    torn_down(&f);
}

#[test]
fn a_snapshot_diff_fails_the_run_and_tears_down() {
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let scenario = write(
        tmp.path(),
        "snap.yaml",
        "description: one machine powered on\ntargets: [none]\n\
         machines:\n  - name: node\n    vm: false\n\
         steps:\n  - power_on: node\n",
    );
    let out = tmp.path().join("runs");
    // The first run writes the golden (a new snapshot is accepted).
    let first = run_none(&out, &scenario, &["--update-snapshots"]);
    assert_eq!(first.code, Some(0), "{}", first.text);
    let snap = tmp.path().join("snap.none.snap");
    let golden = std::fs::read_to_string(&snap).expect("golden written");
    assert!(golden.contains("power_state: on"), "{golden}");
    // The same run against a golden that says otherwise fails.
    std::fs::write(&snap, golden.replace("power_state: on", "power_state: off")).unwrap();
    let f = run_none(&out, &scenario, &[]);
    assert_eq!(f.code, Some(1), "{}", f.text);
    assert!(
        junit_failures(&f.dir)
            .iter()
            .any(|n| n.contains("snapshot")),
        "{:?}\n{}",
        junit_failures(&f.dir),
        f.text
    );
    assert!(
        f.text.contains("power_state"),
        "the diff is shown: {}",
        f.text
    );
    torn_down(&f);
}

/// A registry entry whose pid now belongs to another process (same pid,
/// other start time) is a dead run: `down RUN_ID` sweeps it and never
/// signals that process. Its twin, with the true start time, is a live run
/// and gets SIGTERM.
#[test]
fn down_kills_only_the_process_that_registered_the_run() {
    if !require_root() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut bystander = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = bystander.id() as i32;
    let start = state::process_start_time(pid).expect("start time of a live process");
    let entry = |start_time: u64| {
        let run_id: RunId = format!("{:08x}", rand::random::<u32>()).parse().unwrap();
        let run_dir = tmp.path().join(run_id.as_str());
        std::fs::create_dir_all(&run_dir).unwrap();
        let e = RegistryEntry {
            run_id: run_id.clone(),
            run_dir,
            pid,
            pid_start_time: start_time,
            scenario: "pid-reuse".into(),
            target: "none".into(),
            started: "test".into(),
            kept: false,
        };
        state::register(&e).unwrap();
        run_id
    };
    let down = |run_id: &RunId| {
        let r = bin().args(["down", run_id.as_str()]).output().unwrap();
        assert!(
            r.status.success(),
            "{}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(!state::registry_path(run_id).exists(), "entry removed");
    };

    let reused = entry(start + 1);
    down(&reused);
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "down signalled a process that only reuses the run's pid"
    );

    let live = entry(start);
    down(&live);
    let status = bystander.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGTERM),
        "the registering process was asked to stop"
    );
}

/// The second Ctrl-C forces: while the first one's teardown runs, a second
/// SIGINT makes the run remove what its state files list and exit 130 at
/// once; nothing of the run is left.
#[test]
fn a_second_ctrl_c_forces_and_still_leaves_nothing() {
    use std::io::{BufRead, BufReader};
    if !prerequisites() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["run", "--target", "none", "--out"])
        .arg(out.path())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/hold-bmc.yaml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut wait_for = |needle: &str, seen: &mut Vec<String>| {
        for l in lines.by_ref() {
            let l = l.unwrap();
            seen.push(l.clone());
            if l.contains(needle) {
                return;
            }
        }
        panic!("stderr ended before {needle:?}: {seen:#?}");
    };
    // The power-on step ended, so the lab is up and the sleep has begun.
    wait_for("step 00 power_on held: ok", &mut seen);
    let id = run_dirs(out.path())[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        !super::teardown::leftovers(&id).is_empty(),
        "the lab exists before the interrupt"
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    wait_for("interrupted: tearing down", &mut seen);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    wait_for("forced:", &mut seen);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen:#?}");
    assert_eq!(super::teardown::leftovers(&id), Vec::<String>::new());
}

/// Removes the immutable flag and the run this test left, whatever happens.
struct Unpin {
    file: PathBuf,
    run_id: String,
}

impl Drop for Unpin {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.file).status();
        let _ = bin().args(["down", &self.run_id]).output();
    }
}

/// A resource teardown cannot remove fails the run: the lab exit code,
/// the report's JUnit case says what was left, everything else is gone,
/// and the state file still lists the leftover for `down`.
#[test]
fn a_teardown_leftover_fails_the_run() {
    if !prerequisites() || !require_program("chattr", "e2fsprogs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let scenario = write(
        tmp.path(),
        "leftover.yaml",
        "description: a run whose directory cannot be removed\ntargets: [none]\n\
         machines:\n  - name: node\n    vm: false\n\
         steps:\n  - power_on: node\n  - sleep: 8s\n",
    );
    let out = tmp.path().join("runs");
    let child = bin()
        .args(["run", "--target", "none", "--update-snapshots", "--out"])
        .arg(&out)
        .arg(&scenario)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the run's directory exists, pin a file in it (immutable: even
    // root cannot remove it, so neither can teardown).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let run_id = loop {
        let id = std::fs::read_dir(&out)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned());
        if let Some(id) = id
            && Path::new(maas_e2e::plan::VM_ROOT).join(&id).is_dir()
        {
            break id;
        }
        assert!(std::time::Instant::now() < deadline, "no run directory");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let pinned = Path::new(maas_e2e::plan::VM_ROOT)
        .join(&run_id)
        .join("pinned");
    std::fs::write(&pinned, "cannot go").unwrap();
    let _unpin = Unpin {
        file: pinned.clone(),
        run_id: run_id.clone(),
    };
    assert!(
        Command::new("chattr")
            .arg("+i")
            .arg(&pinned)
            .status()
            .unwrap()
            .success()
    );
    let r = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(r.status.code(), Some(maas_e2e::exit::LAB_FAILED), "{text}");
    let dir = out.join(&run_id);
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("teardown left"), "{junit}");
    assert!(
        junit.contains("directory /var/lib/maas-e2e/runs/&lt;run-id&gt;: Operation not permitted"),
        "names the directory and why (run id redacted): {junit}"
    );
    // The rest is gone; the leftover is still listed for `down`.
    assert!(!Path::new(&format!("/run/netns/me2e-{run_id}")).exists());
    let st = state::read_state(&dir).unwrap();
    assert!(
        st.resources
            .iter()
            .any(|r| matches!(r, state::Resource::Dir { .. })),
        "{st:?}"
    );
}
