//! What a run created, on disk, so teardown never relies on memory.
//!
//! Each resource is appended to `RUN_DIR/state.json` *before* it is created;
//! a registry entry `/run/maas-e2e/runs/RUN_ID.json` (run id -> run dir, pid)
//! lets `down --all` find runs made with any `--out`, even after SIGKILL.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::RunId;

/// Where the registry of runs lives (tmpfs: it is about this boot only).
pub const REGISTRY_DIR: &str = "/run/maas-e2e/runs";

/// Something a run creates on the host, in the order created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Resource {
    Netns {
        name: String,
    },
    Link {
        name: String,
    },
    Domain {
        name: String,
    },
    /// A process group we started; `start_time` (from /proc) guards against
    /// signalling a recycled pid.
    Process {
        pid: i32,
        start_time: u64,
        what: String,
    },
    /// A directory of files QEMU opened (disks, NVRAM, sockets).
    Dir {
        path: PathBuf,
    },
    /// A name given to another process's network namespace (a kind node's,
    /// for the chart wiring): removing it deletes only the name, never
    /// what runs inside.
    NetnsName {
        name: String,
    },
    /// A kind cluster the run created (`kind delete cluster`).
    KindCluster {
        name: String,
    },
    /// A docker container the run started (`docker rm --force --volumes`),
    /// named `me2e-RUNID-...` and labelled `maas-e2e.run-id`: the chart's
    /// Postgres, the sim's with `--postgres container`.
    Container {
        name: String,
    },
    /// A helm release in a cluster the run did not create (`--reuse-cluster`):
    /// `helm uninstall`, then the namespace is deleted.
    HelmRelease {
        release: String,
        namespace: String,
        kubeconfig: PathBuf,
    },
}

impl Resource {
    pub fn describe(&self) -> String {
        match self {
            Resource::Netns { name } => format!("network namespace {name}"),
            Resource::Link { name } => format!("link {name}"),
            Resource::Domain { name } => format!("libvirt domain {name}"),
            Resource::Process { pid, what, .. } => format!("process {pid} ({what})"),
            Resource::Dir { path } => format!("directory {}", path.display()),
            Resource::NetnsName { name } => format!("network namespace name {name}"),
            Resource::KindCluster { name } => format!("kind cluster {name}"),
            Resource::Container { name } => format!("docker container {name}"),
            Resource::HelmRelease {
                release, namespace, ..
            } => format!("helm release {release} in namespace {namespace}"),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RunState {
    pub run_id: Option<RunId>,
    pub resources: Vec<Resource>,
}

/// The registry entry for one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RegistryEntry {
    pub run_id: RunId,
    pub run_dir: PathBuf,
    pub pid: i32,
    pub pid_start_time: u64,
    pub scenario: String,
    pub target: String,
    pub started: String,
    /// `up` leaves the environment running on purpose.
    #[serde(default)]
    pub kept: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a valid state file: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Write `data` to `path` atomically (write a sibling, then rename).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), StateError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

pub fn state_path(run_dir: &Path) -> PathBuf {
    run_dir.join("state.json")
}

pub fn read_state(run_dir: &Path) -> Result<RunState, StateError> {
    let path = state_path(run_dir);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|source| StateError::Parse { path, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RunState::default()),
        Err(source) => Err(StateError::Io { path, source }),
    }
}

pub fn write_state(run_dir: &Path, state: &RunState) -> Result<(), StateError> {
    write_atomic(
        &state_path(run_dir),
        &serde_json::to_vec_pretty(state).expect("state serialises"),
    )
}

pub fn registry_path(run_id: &RunId) -> PathBuf {
    Path::new(REGISTRY_DIR).join(format!("{run_id}.json"))
}

pub fn register(entry: &RegistryEntry) -> Result<(), StateError> {
    write_atomic(
        &registry_path(&entry.run_id),
        &serde_json::to_vec_pretty(entry).expect("entry serialises"),
    )
}

pub fn unregister(run_id: &RunId) {
    let _ = std::fs::remove_file(registry_path(run_id));
    let _ = std::fs::remove_file(connection_path(run_id));
}

/// `up`'s connection file for the external target (URL, API key, bridge):
/// beside the registry entry, root only, never in the run directory (which
/// CI publishes).
pub fn connection_path(run_id: &RunId) -> PathBuf {
    Path::new(REGISTRY_DIR).join(format!("{run_id}.maas.env"))
}

/// Every registered run, oldest first. Unreadable entries are reported, not fatal.
pub fn registered_runs() -> Vec<Result<RegistryEntry, StateError>> {
    let Ok(dir) = std::fs::read_dir(REGISTRY_DIR) else {
        return Vec::new();
    };
    let mut out: Vec<_> = dir
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            serde_json::from_slice::<RegistryEntry>(&bytes)
                .map_err(|source| StateError::Parse { path, source })
        })
        .collect();
    out.sort_by(|a, b| match (a, b) {
        (Ok(a), Ok(b)) => a.started.cmp(&b.started),
        _ => std::cmp::Ordering::Equal,
    });
    out
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat).
pub fn process_start_time(pid: i32) -> Option<u64> {
    crate::process::ProcStat::read(pid).map(|s| s.start_time)
}

/// Whether the process that recorded `(pid, start_time)` still runs.
pub fn same_process_alive(pid: i32, start_time: u64) -> bool {
    crate::process::is_alive(pid) && process_start_time(pid) == Some(start_time)
}
