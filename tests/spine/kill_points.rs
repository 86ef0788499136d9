//! A run killed with SIGKILL at any point of its life, then `down --all`,
//! leaves nothing: processes, domains, namespaces, links, containers, the
//! registry entry, the run's directories. The kill points are moments the
//! run itself shows (its events, its Postgres appearing, its guest booting),
//! stepped through lab, deploy, boot and drive; not fixed delays. The same
//! for an `up` holding a sim.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use maas_e2e::testing::{require, require_program, require_root};

use super::teardown::{leftovers, processes_naming};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_maas-e2e"))
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

fn prerequisites() -> bool {
    require_root()
        && require_program("ipmipower", "freeipmi-tools")
        && require_program("virsh", "libvirt-clients")
        && require_program("qemu-system-x86_64", "qemu-system-x86")
        && require(
            "Postgres server binaries",
            std::fs::read_dir("/usr/lib/postgresql").is_ok_and(|mut d| d.next().is_some()),
            "apt-get install postgresql",
        )
}

/// A moment in a run's life, seen from outside.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// The lab stage has started.
    LabStarted,
    /// The deploy stage has started.
    DeployStarted,
    /// The run's own Postgres process exists (deploy, before the region).
    PostgresRunning,
    /// The drive stage has started.
    DriveStarted,
    /// The first step finished: the guest is PXE booting.
    GuestBooting,
    /// Some seconds into waiting for the guest to enlist.
    MidWait,
    /// An `up` holds its environment: the connection file for --target
    /// external is written.
    Held,
}

fn run_dir(out: &Path) -> Option<(String, PathBuf)> {
    let e = std::fs::read_dir(out).ok()?.filter_map(Result::ok).next()?;
    Some((e.file_name().to_string_lossy().into_owned(), e.path()))
}

fn reached(point: KillPoint, dir: &Path, id: &str, since: Instant) -> bool {
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
    let has = |needle: &str| events.lines().any(|l| l.contains(needle));
    match point {
        KillPoint::LabStarted => has(r#""stage":"lab""#),
        KillPoint::DeployStarted => has(r#""stage":"deploy""#),
        KillPoint::PostgresRunning => processes_naming(&format!("{id}/postgres"))
            .iter()
            .any(|p| p.contains("postgres -D") || p.contains("postgres: ")),
        KillPoint::DriveStarted => has(r#""stage":"drive""#),
        KillPoint::GuestBooting => has(r#""event":"step_finished""#),
        KillPoint::MidWait => {
            has(r#""event":"step_finished""#) && since.elapsed() > Duration::from_secs(8)
        }
        KillPoint::Held => Path::new(&format!("/run/maas-e2e/runs/{id}.maas.env")).exists(),
    }
}

/// SIGKILLs the run if the test fails before it does (a failed wait must
/// not leave a run holding its lab), then sweeps what the run left.
struct KillOnPanic(Option<Child>);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = Command::new(bin()).args(["down", "--all"]).output();
        }
    }
}

fn kill_at(child: Child, out: &Path, point: KillPoint, limit: Duration) -> String {
    let mut guard = KillOnPanic(Some(child));
    let child = guard.0.as_mut().expect("set above");
    let start = Instant::now();
    let mut booting_since: Option<Instant> = None;
    let id = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let log = run_dir(out)
                .and_then(|(_, d)| std::fs::read_to_string(d.join("events.jsonl")).ok())
                .unwrap_or_default();
            panic!("{point:?}: the run exited ({status}) before that point; events:\n{log}");
        }
        assert!(
            start.elapsed() < limit,
            "{point:?}: not reached within {limit:?}"
        );
        if let Some((id, dir)) = run_dir(out) {
            let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
            if booting_since.is_none() && events.contains(r#""event":"step_finished""#) {
                booting_since = Some(Instant::now());
            }
            if reached(point, &dir, &id, booting_since.unwrap_or_else(Instant::now)) {
                break id;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut child = guard.0.take().expect("still held");
    child.kill().unwrap(); // SIGKILL: no teardown of its own
    child.wait().unwrap();
    id
}

fn down_all_leaves_nothing(id: &str, point: &str) {
    let down = Command::new(bin())
        .args(["down", "--all"])
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{point}: down --all failed: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(
        leftovers(id),
        Vec::<String>::new(),
        "{point}: left behind after down --all"
    );
    // Nothing is left for a second sweep either.
    let again = Command::new(bin())
        .args(["down", "--all"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{point}: second down --all failed");
}

#[test]
fn sigkill_at_every_stage_then_down_all_leaves_nothing() {
    if !prerequisites() {
        return;
    }
    for point in [
        KillPoint::LabStarted,
        KillPoint::DeployStarted,
        KillPoint::PostgresRunning,
        KillPoint::DriveStarted,
        KillPoint::GuestBooting,
        KillPoint::MidWait,
    ] {
        let out = tempfile::tempdir().unwrap();
        let child = Command::new(bin())
            .args(["run", "--target", "sim", "--out"])
            .arg(out.path())
            .arg(scenario("enlist-bios.yaml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start maas-e2e run");
        let id = kill_at(child, out.path(), point, Duration::from_secs(240));
        down_all_leaves_nothing(&id, &format!("{point:?}"));
    }
}

#[test]
fn sigkill_of_an_up_then_down_all_leaves_nothing() {
    if !prerequisites() {
        return;
    }
    for point in [
        KillPoint::DeployStarted,
        KillPoint::PostgresRunning,
        KillPoint::Held,
    ] {
        let out = tempfile::tempdir().unwrap();
        let child = Command::new(bin())
            .args(["up", "--target", "sim", "--out"])
            .arg(out.path())
            .arg(scenario("sim-maas.yaml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start maas-e2e up");
        let id = kill_at(child, out.path(), point, Duration::from_secs(240));
        down_all_leaves_nothing(&id, &format!("up, {point:?}"));
    }
}
