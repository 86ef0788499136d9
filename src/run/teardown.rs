//! Teardown: the runner registers each resource before creating it, and
//! removes everything in reverse order on every exit path: success, failure,
//! Ctrl-C/SIGTERM, panic (through `Drop`), and `down` after a SIGKILL.
//!
//! Removal is idempotent and works from the state file alone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cmd::{Cmd, CmdError};
use crate::plan::{NAME_PREFIX, RunId, VM_ROOT};
use crate::run::state::{self, Resource, RunState};
use crate::testing::have_program;

/// The resources of one run, mirrored to its state file on every change.
#[derive(Clone)]
pub struct Teardown {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    run_dir: PathBuf,
    state: RunState,
    /// `--keep`: leave everything for inspection; `down` removes it later.
    keep: bool,
    done: bool,
}

impl Teardown {
    pub fn new(run_id: &RunId, run_dir: &Path, keep: bool) -> Result<Teardown, state::StateError> {
        let state = RunState {
            run_id: Some(run_id.clone()),
            resources: Vec::new(),
        };
        state::write_state(run_dir, &state)?;
        Ok(Teardown {
            inner: Arc::new(Mutex::new(Inner {
                run_dir: run_dir.to_path_buf(),
                state,
                keep,
                done: false,
            })),
        })
    }

    /// Record `resource` before it is created, so a crash mid-creation is
    /// still swept.
    pub fn register(&self, resource: Resource) -> Result<(), state::StateError> {
        let mut inner = self.inner.lock().unwrap();
        if !inner.state.resources.contains(&resource) {
            inner.state.resources.push(resource);
        }
        state::write_state(&inner.run_dir, &inner.state)
    }

    pub fn resources(&self) -> Vec<Resource> {
        self.inner.lock().unwrap().state.resources.clone()
    }

    /// Drop `resource` from the state: its owner removed it already (the
    /// chart target's own teardown deletes its cluster in order).
    pub fn forget(&self, resource: &Resource) -> Result<(), state::StateError> {
        let mut inner = self.inner.lock().unwrap();
        inner.state.resources.retain(|r| r != resource);
        state::write_state(&inner.run_dir, &inner.state)
    }

    /// Whether everything stays (`--keep`, `up`).
    pub fn keeps(&self) -> bool {
        self.inner.lock().unwrap().keep
    }

    pub fn set_keep(&self, keep: bool) {
        self.inner.lock().unwrap().keep = keep;
    }

    /// Remove everything (unless kept); returns what could not be removed.
    pub fn run(&self) -> Vec<String> {
        let mut inner = self.inner.lock().unwrap();
        if inner.done || inner.keep {
            return Vec::new();
        }
        inner.done = true;
        let failures = remove_all(&inner.state.resources);
        if failures.is_empty() {
            inner.state.resources.clear();
            let _ = state::write_state(&inner.run_dir, &inner.state);
        }
        failures
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle going away without `run` (a panic unwinding past
        // the runner) still tears down, registry entry included: nothing is
        // left for `down` to find.
        if self.done || self.keep {
            return;
        }
        if !self.state.resources.is_empty() {
            let failed = remove_all(&self.state.resources);
            if !failed.is_empty() {
                // Leave the state and the registry entry for `down`.
                return;
            }
            self.state.resources.clear();
            let _ = state::write_state(&self.run_dir, &self.state);
        }
        if let Some(id) = &self.state.run_id {
            state::unregister(id);
        }
    }
}

/// Remove resources in reverse creation order. Never stops at the first error.
pub fn remove_all(resources: &[Resource]) -> Vec<String> {
    resources
        .iter()
        .rev()
        .filter_map(|r| remove(r).err().map(|e| format!("{}: {e}", r.describe())))
        .collect()
}

/// Why one resource could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    /// The command that removes it failed (its argv and output inside).
    #[error(transparent)]
    Cmd(#[from] CmdError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// It cannot be removed from here: how to remove it by hand.
    #[error("{0}")]
    ByHand(String),
}

/// Remove one resource; absent counts as removed, and so does one another
/// sweep (a second `down`) removed while this one was at it.
pub fn remove(resource: &Resource) -> Result<(), RemoveError> {
    if !still_there(resource) {
        return Ok(());
    }
    match delete(resource) {
        Err(_) if !still_there(resource) => Ok(()),
        result => result,
    }
}

/// Whether any of `resource` is left on this host. True when that cannot
/// be told (no kind, a helm release): `delete` then says what it can.
fn still_there(resource: &Resource) -> bool {
    let ok = |cmd: Cmd| cmd.run_blocking().is_ok();
    match resource {
        Resource::Process {
            pid, start_time, ..
        } => state::same_process_alive(*pid, *start_time),
        Resource::Domain { name } => {
            have_program("virsh")
                && ok(Cmd::new("virsh").args(["-c", "qemu:///system", "dominfo", name]))
        }
        // The lab's iptables rule for a bridge outlives the bridge.
        Resource::Link { name } => {
            Path::new("/sys/class/net").join(name).exists()
                || (have_program("iptables") && ok(crate::lab::net::forward_rule("-C", name)))
        }
        Resource::Netns { name } | Resource::NetnsName { name } => {
            crate::lab::netns::netns_path(name).exists()
        }
        Resource::Dir { path } => path.symlink_metadata().is_ok(),
        Resource::KindCluster { name } => {
            !have_program("kind")
                || Cmd::new("kind")
                    .args(["get", "clusters"])
                    .run_blocking()
                    .map_or(true, |listed| listed.lines().any(|l| l.trim() == name))
        }
        Resource::Container { name } => {
            have_program("docker")
                && ok(Cmd::new("docker").args(["inspect", "--format", "{{.Id}}", name]))
        }
        Resource::HelmRelease { .. } => true,
    }
}

/// Delete what is there of `resource`.
fn delete(resource: &Resource) -> Result<(), RemoveError> {
    match resource {
        Resource::Process { pid, .. } => {
            crate::process::terminate_group(*pid, Duration::from_secs(3));
            Ok(())
        }
        Resource::Domain { name } => {
            let virsh = |args: &[&str]| {
                Cmd::new("virsh")
                    .args(["-c", "qemu:///system"])
                    .args(args.iter().copied())
                    .run_blocking()
            };
            let _ = virsh(&["destroy", name]);
            virsh(&["undefine", "--nvram", name])
                .or_else(|_| virsh(&["undefine", name]))
                .map(drop)
                .map_err(RemoveError::from)
        }
        Resource::Link { name } => {
            if have_program("iptables") {
                let rule = |op| crate::lab::net::forward_rule(op, name);
                while rule("-C").run_blocking().is_ok() {
                    // A second sweep may delete it between the check and ours.
                    if let Err(e) = rule("-D").run_blocking()
                        && rule("-C").run_blocking().is_ok()
                    {
                        return Err(e.into());
                    }
                }
            }
            if !Path::new("/sys/class/net").join(name).exists() {
                return Ok(());
            }
            Cmd::new("ip")
                .args(["link", "del", name])
                .run_blocking()
                .map(drop)
                .map_err(RemoveError::from)
        }
        Resource::Netns { name } => {
            // Processes left inside (ours, by construction) go first.
            if let Ok(pids) = Cmd::new("ip").args(["netns", "pids", name]).run_blocking() {
                for pid in pids
                    .split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok())
                {
                    crate::process::terminate_group(pid, Duration::from_secs(2));
                }
            }
            Cmd::new("ip")
                .args(["netns", "del", name])
                .run_blocking()
                .map(drop)
                .map_err(RemoveError::from)
        }
        Resource::Dir { path } => Ok(std::fs::remove_dir_all(path)?),
        // Only the name: the namespace belongs to a container, and so does
        // everything running in it.
        Resource::NetnsName { name } => Cmd::new("ip")
            .args(["netns", "delete", name])
            .run_blocking()
            .map(drop)
            .map_err(RemoveError::from),
        Resource::KindCluster { name } => {
            if !have_program("kind") {
                return Err(RemoveError::ByHand(format!(
                    "kind is not on PATH; delete it where kind is installed: kind delete cluster --name {name}"
                )));
            }
            Cmd::new("kind")
                .args(["delete", "cluster", "--name", name])
                .run_blocking()
                .map(drop)
                .map_err(RemoveError::from)
        }
        Resource::Container { name } => Cmd::new("docker")
            .args(["rm", "--force", "--volumes", name])
            .run_blocking()
            .map(drop)
            .map_err(RemoveError::from),
        Resource::HelmRelease {
            release,
            namespace,
            kubeconfig,
        } => {
            let kc = kubeconfig.display().to_string();
            if !kubeconfig.exists() {
                return Err(RemoveError::ByHand(format!(
                    "kubeconfig {kc} is gone; uninstall by hand: helm uninstall {release} --namespace {namespace}"
                )));
            }
            if let Err(e) = Cmd::new("helm")
                .args([
                    "uninstall",
                    release,
                    "--namespace",
                    namespace,
                    "--kubeconfig",
                    &kc,
                ])
                .run_blocking()
                && !e.to_string().contains("not found")
            {
                return Err(e.into());
            }
            Cmd::new("kubectl")
                .args([
                    "--kubeconfig",
                    &kc,
                    "delete",
                    "namespace",
                    namespace,
                    "--ignore-not-found",
                    "--wait=false",
                ])
                .run_blocking()
                .map(drop)
                .map_err(RemoveError::from)
        }
    }
}

/// Host objects whose names carry `run_id` (or any run id when `None`),
/// found by listing, for sweeping what a state file may not know about.
pub fn discover(run_id: Option<&RunId>) -> Vec<Resource> {
    let matches = |name: &str| -> bool {
        match run_id {
            Some(r) => {
                name.contains(r.as_str())
                    && (name.starts_with(NAME_PREFIX) || name.starts_with("m2"))
            }
            None => name.starts_with(&format!("{NAME_PREFIX}-")) || is_run_link(name),
        }
    };
    let mut out = Vec::new();
    if let Ok(list) = Cmd::new("virsh")
        .args(["-c", "qemu:///system", "list", "--all", "--name"])
        .run_blocking()
    {
        out.extend(
            list.lines()
                .map(str::trim)
                .filter(|n| !n.is_empty() && matches(n) && n.starts_with(NAME_PREFIX))
                .map(|n| Resource::Domain { name: n.into() }),
        );
    }
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        out.extend(
            dir.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| is_run_link(n) && matches(n))
                .map(|name| Resource::Link { name }),
        );
    }
    // Rules left for bridges that are gone (a run killed between the two).
    if have_program("iptables")
        && let Ok(rules) = Cmd::new("iptables")
            .args(["-w", "-S", "FORWARD"])
            .run_blocking()
    {
        for name in rules
            .lines()
            .filter(|l| l.contains("maas-e2e-lab"))
            .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "-i").nth(1))
        {
            let r = Resource::Link {
                name: name.to_string(),
            };
            if is_run_link(name) && matches(name) && !out.contains(&r) {
                out.push(r);
            }
        }
    }
    // Processes a run started (its Postgres, a capture) found by what they
    // run: their command line names the run's directory. A run killed
    // between starting one and recording it leaves it for this.
    for (id, process) in run_processes() {
        if run_id.is_none_or(|r| *r == id) && !out.contains(&process) {
            out.push(process);
        }
    }
    // Containers that live and die with their run (the sim's Postgres), by
    // label: a foreign container, or a chart Postgres kept with its
    // cluster, is never touched here.
    if have_program("docker")
        && let Ok(list) = Cmd::new("docker")
            .args([
                "ps",
                "-a",
                "--filter",
                SWEEP_LABEL_FILTER,
                "--format",
                "{{.Names}}",
            ])
            .run_blocking()
    {
        out.extend(
            list.lines()
                .map(str::trim)
                .filter(|n| n.starts_with(NAME_PREFIX) && matches(n))
                .map(|n| Resource::Container { name: n.into() }),
        );
    }
    if let Ok(dir) = std::fs::read_dir("/run/netns") {
        out.extend(
            dir.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(NAME_PREFIX) && matches(n))
                .map(|name| {
                    if is_node_netns_name(&name) {
                        Resource::NetnsName { name }
                    } else {
                        Resource::Netns { name }
                    }
                }),
        );
    }
    // A kind cluster and the Postgres container of a chart run, only when
    // asked for one run: `down --all` leaves clusters kept with
    // --keep-cluster alone (a crashed run's cluster is in its state file).
    if let Some(run_id) = run_id {
        let own = |n: &str| n.starts_with(&format!("{NAME_PREFIX}-{run_id}"));
        if have_program("kind")
            && let Ok(list) = Cmd::new("kind").args(["get", "clusters"]).run_blocking()
        {
            out.extend(
                list.lines()
                    .map(str::trim)
                    .filter(|n| own(n))
                    .map(|n| Resource::KindCluster { name: n.into() }),
            );
        }
        if have_program("docker")
            && let Ok(list) = Cmd::new("docker")
                .args(["ps", "--all", "--format", "{{.Names}}"])
                .run_blocking()
        {
            out.extend(
                list.lines()
                    .map(str::trim)
                    .filter(|n| own(n) && n.ends_with("-postgres"))
                    .map(|n| Resource::Container { name: n.into() }),
            );
        }
    }
    out
}

/// Process groups whose members name a run's directory under VM_ROOT on
/// their command line, with that run's id; one entry per group, led by its
/// group leader (so its children go with it).
pub fn run_processes() -> Vec<(RunId, Resource)> {
    let me = std::process::id() as i32;
    let prefix = format!("{VM_ROOT}/");
    let mut out: Vec<(RunId, Resource)> = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for pid in dir
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        let Some(id) = cmdline
            .split(&prefix)
            .nth(1)
            .and_then(|rest| rest.get(..8))
            .and_then(|hex| hex.parse::<RunId>().ok())
        else {
            continue;
        };
        let pgid = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid)))
            .map(|g| g.as_raw())
            .unwrap_or(pid);
        // Never this process's own group (`down` run from a shell of the run).
        if pid == me || pgid == me {
            continue;
        }
        // The group's leader when it still runs (its children go with it),
        // else the process itself.
        let Some((leader, start_time)) = [pgid, pid]
            .into_iter()
            .find_map(|p| Some((p, crate::run::state::process_start_time(p)?)))
        else {
            continue;
        };
        if out
            .iter()
            .any(|(_, r)| matches!(r, Resource::Process { pid, .. } if *pid == leader))
        {
            continue;
        }
        out.push((
            id.clone(),
            Resource::Process {
                pid: leader,
                start_time,
                what: format!("process group naming {VM_ROOT}/{id}"),
            },
        ));
    }
    out
}

/// `me2e-<run id>-n<i>`: the name the chart wiring gives a kind node's
/// network namespace (not ours to empty).
pub fn is_node_netns_name(name: &str) -> bool {
    name.strip_prefix(&format!("{NAME_PREFIX}-"))
        .and_then(|rest| rest.get(8..))
        .and_then(|rest| rest.strip_prefix("-n"))
        .is_some_and(|i| !i.is_empty() && i.chars().all(|c| c.is_ascii_digit()))
}

/// The label of containers `down --all` may remove once their run is gone.
pub const SWEEP_LABEL: (&str, &str) = ("maas-e2e.sweep", "with-run");
const SWEEP_LABEL_FILTER: &str = "label=maas-e2e.sweep=with-run";

/// Our link names: `m2` + one letter + 8 hex digits (+ an optional index).
fn is_run_link(name: &str) -> bool {
    name.len() >= 11 && name.starts_with("m2") && name[3..11].chars().all(|c| c.is_ascii_hexdigit())
}

/// The run id inside a name we made, if any.
pub fn run_id_of(name: &str) -> Option<RunId> {
    let hex = if let Some(rest) = name.strip_prefix(&format!("{NAME_PREFIX}-")) {
        rest.get(..8)?
    } else if is_run_link(name) {
        &name[3..11]
    } else {
        return None;
    };
    hex.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_netns_names_are_told_apart_from_lab_namespaces() {
        assert!(is_node_netns_name("me2e-0c4a27e0-n0"));
        assert!(is_node_netns_name("me2e-0c4a27e0-n12"));
        assert!(!is_node_netns_name("me2e-0c4a27e0"));
        assert!(!is_node_netns_name("me2e-0c4a27e0-lab"));
        assert!(!is_node_netns_name("me2e-0c4a27e0-n"));
        assert_eq!(
            run_id_of("me2e-0c4a27e0-n0").map(|r| r.to_string()),
            Some("0c4a27e0".into())
        );
    }
}
