//! Teardown: a run interrupted with SIGINT mid-stage leaves nothing; a run
//! killed with SIGKILL, followed by `down --all`, leaves nothing. Checked by
//! listing network namespaces, links, libvirt domains and processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use maas_e2e::testing::{require_program, require_root};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_maas-e2e"))
}

fn start_run(out: &Path) -> Child {
    Command::new(bin())
        .args(["run", "--target", "none", "--out"])
        .arg(out)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios/hold-bmc.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start maas-e2e run")
}

/// The run id once the run has built its lab (its netns exists).
fn wait_for_lab(out: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run exited before building its lab"
        );
        if let Some(id) = std::fs::read_dir(out)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
        {
            let netns = Path::new("/run/netns").join(format!("me2e-{id}"));
            let state =
                std::fs::read_to_string(out.join(&id).join("state.json")).unwrap_or_default();
            // Past the lab stage: the BMC's LAN side is listening in the netns.
            if netns.exists()
                && state.contains("netns")
                && out.join(&id).join("bmc-transcript.jsonl").exists()
            {
                return id;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the lab did not come up within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Command lines of live processes that name `needle` (not this test's own).
pub(crate) fn processes_naming(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let c = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let zombie = std::fs::read_to_string(e.path().join("stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(true);
        if c.contains(needle) && !zombie {
            out.push(format!("process {pid}: {c}"));
        }
    }
    out
}

/// Everything on the host that carries the run id (kill_points.rs too).
pub(crate) fn leftovers(id: &str) -> Vec<String> {
    let mut out = processes_naming(id);
    for dir in ["/run/netns", "/sys/class/net"] {
        if let Ok(d) = std::fs::read_dir(dir) {
            out.extend(
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(id))
                    .map(|n| format!("{dir}/{n}")),
            );
        }
    }
    if let Ok(o) = Command::new("virsh")
        .args(["-c", "qemu:///system", "list", "--all", "--name"])
        .output()
    {
        out.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains(id))
                .map(|l| format!("domain {l}")),
        );
    }
    if let Ok(o) = Command::new("iptables")
        .args(["-w", "-S", "FORWARD"])
        .output()
    {
        out.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains(id))
                .map(|l| format!("iptables {l}")),
        );
    }
    if let Ok(o) = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .output()
    {
        out.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains(id))
                .map(|l| format!("container {l}")),
        );
    }
    if Path::new(&format!("/run/maas-e2e/runs/{id}.json")).exists() {
        out.push(format!("registry entry {id}"));
    }
    if Path::new(&format!("/var/lib/maas-e2e/runs/{id}")).exists() {
        out.push(format!("/var/lib/maas-e2e/runs/{id}"));
    }
    out
}

fn descendants_alive(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(d) = std::fs::read_dir("/proc") {
        for e in d.filter_map(Result::ok) {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            // field 4 (ppid) and 5 (pgrp): our children run in their own groups,
            // so look for any process whose parent was the run.
            if f.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) && f[0] != "Z" {
                out.push(stat.split(')').next().unwrap_or_default().to_string());
            }
        }
    }
    out
}

#[test]
fn sigint_mid_stage_leaves_nothing() {
    if !(require_root()
        && require_program("ipmipower", "freeipmi-tools")
        && require_program("ip", "iproute2"))
    {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut child = start_run(out.path());
    let id = wait_for_lab(out.path(), &mut child);
    assert!(
        !leftovers(&id).is_empty(),
        "the lab should exist before the interrupt"
    );
    let pid = child.id();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the run did not stop within 60 s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(130), "an interrupted run exits 130");
    assert_eq!(leftovers(&id), Vec::<String>::new());
    assert_eq!(descendants_alive(pid), Vec::<String>::new());
    let junit = std::fs::read_to_string(out.path().join(&id).join("junit.xml")).unwrap();
    assert!(
        junit.contains("interrupted"),
        "junit.xml records the interruption: {junit}"
    );
}

#[test]
fn sigkill_then_down_all_leaves_nothing() {
    if !(require_root()
        && require_program("ipmipower", "freeipmi-tools")
        && require_program("ip", "iproute2"))
    {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let mut child = start_run(out.path());
    let id = wait_for_lab(out.path(), &mut child);
    child.kill().unwrap(); // SIGKILL: no teardown runs
    child.wait().unwrap();
    assert!(
        !leftovers(&id).is_empty(),
        "SIGKILL leaves the lab behind for down to find"
    );
    let down = Command::new(bin())
        .args(["down", "--all"])
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "down --all failed: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(leftovers(&id), Vec::<String>::new());
    // Idempotent: a second sweep finds nothing and succeeds.
    let again = Command::new(bin())
        .args(["down", "--all"])
        .output()
        .unwrap();
    assert!(again.status.success());
}

/// An `up` process, killed if the test panics before it is brought down.
struct UpGuard(Child);

impl Drop for UpGuard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = self.0.wait();
        }
    }
}

fn start_up(out: &Path) -> UpGuard {
    UpGuard(
        Command::new(bin())
            .args(["up", "--target", "none", "--out"])
            .arg(out)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/bmc-power.yaml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start maas-e2e up"),
    )
}

/// The run id of an `up` once its environment is held (the steps ran).
fn wait_for_up(out: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "up exited before holding its environment"
        );
        if let Some(id) = std::fs::read_dir(out)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
        {
            let events =
                std::fs::read_to_string(out.join(&id).join("state.json")).unwrap_or_default();
            let list = Command::new(bin()).arg("list").output().unwrap();
            let listed = String::from_utf8_lossy(&list.stdout)
                .lines()
                .any(|l| l.starts_with(&id) && l.contains("running"));
            if listed
                && events.contains("netns")
                && Path::new(&format!("/run/netns/me2e-{id}")).exists()
            {
                // Past the drive stage: the power steps touched the BMCs.
                if std::fs::read_to_string(out.join(&id).join("bmc-transcript.jsonl"))
                    .unwrap_or_default()
                    .contains("ChassisControl")
                {
                    return id;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "up did not hold its environment within 90 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn up_up_again_down_down_again() {
    if !(require_root()
        && require_program("ipmipower", "freeipmi-tools")
        && require_program("ip", "iproute2"))
    {
        return;
    }
    let (out1, out2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = start_up(out1.path());
    let id_a = wait_for_up(out1.path(), &mut a.0);
    let mut b = start_up(out2.path());
    let id_b = wait_for_up(out2.path(), &mut b.0);
    assert_ne!(id_a, id_b);
    // `down --all` leaves live runs alone.
    let all = Command::new(bin())
        .args(["down", "--all"])
        .output()
        .unwrap();
    assert!(all.status.success());
    assert!(
        String::from_utf8_lossy(&all.stdout).contains(&format!("skipped  run {id_a}")),
        "{}",
        String::from_utf8_lossy(&all.stdout)
    );
    assert!(Path::new(&format!("/run/netns/me2e-{id_a}")).exists());
    for (id, child) in [(&id_a, &mut a), (&id_b, &mut b)] {
        let d = Command::new(bin()).args(["down", id]).output().unwrap();
        assert!(
            d.status.success(),
            "down {id}: {}",
            String::from_utf8_lossy(&d.stderr)
        );
        let status = child.0.wait().unwrap();
        assert_eq!(status.code(), Some(0), "up exits 0 after an orderly down");
        assert_eq!(leftovers(id), Vec::<String>::new());
        let again = Command::new(bin()).args(["down", id]).output().unwrap();
        assert!(again.status.success(), "a second down of {id} fails");
    }
}

/// A container a killed run left (`--postgres container`) is found by its
/// sweep label and removed; one with only the run-id label (a chart
/// Postgres kept with its cluster) is not, though its name looks like ours.
#[test]
fn down_all_sweeps_our_labelled_containers_only() {
    if !(require_root() && require_program("docker", "docker.io")) {
        return;
    }
    let id = maas_e2e::plan::RunId::generate().to_string();
    let ours = format!("me2e-{id}-postgres");
    let foreign = format!("me2e-{id}-foreign");
    let image = "maas-e2e/postgres:15-bookworm";
    let create = |name: &str, sweep: bool| {
        let mut c = Command::new("docker");
        c.args([
            "create",
            "--name",
            name,
            "--label",
            &format!("maas-e2e.run-id={id}"),
        ]);
        if sweep {
            c.args(["--label", "maas-e2e.sweep=with-run"]);
        }
        let o = c.arg(image).output().unwrap();
        assert!(
            o.status.success(),
            "docker create {name} (is {image} built? ci/images/postgres/build.sh): {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    create(&ours, true);
    create(&foreign, false);
    let down = Command::new(bin())
        .args(["down", "--all"])
        .output()
        .unwrap();
    let exists = |name: &str| {
        Command::new("docker")
            .args(["container", "inspect", name])
            .output()
            .unwrap()
            .status
            .success()
    };
    let (ours_left, foreign_left) = (exists(&ours), exists(&foreign));
    let _ = Command::new("docker").args(["rm", "-f", &foreign]).output();
    assert!(
        down.status.success(),
        "down --all failed: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert!(
        !ours_left,
        "down --all left {ours}: {}",
        String::from_utf8_lossy(&down.stdout)
    );
    assert!(
        foreign_left,
        "down --all removed {foreign}, which has no sweep label"
    );
}

/// A panic inside a run unwinds past the runner (here a reporter panics
/// when the lab stage ends, after the namespace, bridge and BMCs exist):
/// the teardown's `Drop` still removes everything the run created and its
/// registry entry.
#[test]
fn a_panic_mid_run_still_tears_everything_down() {
    use maas_e2e::report::events::{Reporter, RunEvent, StageName};
    use maas_e2e::run::pipeline::{self, RunOptions};
    if !(require_root()
        && require_program("ipmipower", "freeipmi-tools")
        && require_program("ip", "iproute2"))
    {
        return;
    }
    struct PanicAfterLab;
    impl Reporter for PanicAfterLab {
        fn event(&mut self, e: &RunEvent) {
            if matches!(
                e,
                RunEvent::StageFinished {
                    stage: StageName::Lab,
                    ..
                }
            ) {
                panic!("injected: a reporter panics after the lab stage");
            }
        }
    }
    let out = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/bmc-power.yaml");
    let loaded = maas_e2e::scenario::load(&scenario).unwrap();
    let run_id = maas_e2e::plan::RunId::generate();
    let opts = RunOptions {
        target: maas_e2e::scenario::TargetKind::None,
        out_dir: out.path().to_path_buf(),
        seed: 1,
        run_id: Some(run_id.clone()),
        keep: false,
        update_snapshots: false,
        hold: false,
        snapshots: false,
        target_options: Default::default(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let created = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    // What existed when the panic struck, so the check below is not vacuous.
    struct Witness(String, std::sync::Arc<std::sync::Mutex<Vec<String>>>);
    impl Reporter for Witness {
        fn event(&mut self, e: &RunEvent) {
            if matches!(
                e,
                RunEvent::StageFinished {
                    stage: StageName::Lab,
                    ..
                }
            ) {
                *self.1.lock().unwrap() = leftovers(&self.0);
            }
        }
    }
    let reporters: Vec<Box<dyn Reporter>> = vec![
        Box::new(Witness(run_id.to_string(), created.clone())),
        Box::new(PanicAfterLab),
    ];
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(pipeline::execute(&loaded, &opts, &cancel, reporters))
    }));
    drop(rt);
    assert!(r.is_err(), "the injected panic did not happen");
    let created = created.lock().unwrap().clone();
    assert!(
        created.iter().any(|l| l.contains("/run/netns/")),
        "the lab did not exist when the panic struck: {created:?}"
    );
    assert_eq!(leftovers(run_id.as_str()), Vec::<String>::new());
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.path().join(run_id.as_str()).join("state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        state["resources"].as_array().map(Vec::len),
        Some(0),
        "{state}"
    );
}
