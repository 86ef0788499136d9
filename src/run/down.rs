//! `down`: remove what runs left behind, from their state files and by
//! listing host objects that carry a run id.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::plan::{RunId, VM_ROOT};
use crate::run::state::{self, RegistryEntry, Resource};
use crate::run::teardown;

/// What `down` did for one run.
#[derive(Debug, Default)]
pub struct DownReport {
    pub removed: Vec<String>,
    pub skipped: Vec<String>,
    pub failed: Vec<String>,
}

fn alive(e: &RegistryEntry) -> bool {
    state::same_process_alive(e.pid, e.pid_start_time)
}

/// Tear down one run. A run whose process is alive is asked to stop
/// (SIGTERM: it tears itself down), then swept.
pub fn down_one(run_id: &RunId, report: &mut DownReport) {
    let entry = state::registered_runs()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| &e.run_id == run_id);
    let mut resources: Vec<Resource> = Vec::new();
    if let Some(e) = &entry {
        if alive(e) {
            // `up` and running `run`s tear down on SIGTERM; give them time.
            crate::process::terminate(e.pid, Duration::from_secs(60));
        }
        if let Ok(s) = state::read_state(&e.run_dir) {
            resources.extend(s.resources);
        }
    }
    for r in teardown::discover(Some(run_id)) {
        if !resources.contains(&r) {
            resources.push(r);
        }
    }
    let vm_dir = Path::new(VM_ROOT).join(run_id.as_str());
    if vm_dir.exists() {
        resources.insert(0, Resource::Dir { path: vm_dir });
    }
    sweep(&resources, report);
    if let Some(e) = &entry {
        let _ = state::write_state(
            &e.run_dir,
            &state::RunState {
                run_id: Some(run_id.clone()),
                resources: Vec::new(),
            },
        );
    }
    state::unregister(run_id);
}

/// Tear down every run whose process is gone (or every run, with `force`).
pub fn down_all(force: bool) -> DownReport {
    let mut report = DownReport::default();
    let mut live = Vec::new();
    for entry in state::registered_runs() {
        match entry {
            Ok(e) if alive(&e) && !force => {
                report.skipped.push(format!(
                    "run {} (pid {} still running; use --force or `down {}`)",
                    e.run_id, e.pid, e.run_id
                ));
                live.push(e.run_id.clone());
            }
            Ok(e) => down_one(&e.run_id, &mut report),
            Err(err) => report.failed.push(err.to_string()),
        }
    }
    // Orphans: host objects with a run id no registry entry covers.
    let mut by_run: BTreeMap<RunId, ()> = BTreeMap::new();
    for r in teardown::discover(None) {
        let name = match &r {
            Resource::Netns { name }
            | Resource::NetnsName { name }
            | Resource::Link { name }
            | Resource::Domain { name }
            | Resource::Container { name } => name.clone(),
            _ => continue,
        };
        if let Some(id) = teardown::run_id_of(&name)
            && !live.contains(&id)
        {
            by_run.insert(id, ());
        }
    }
    // Processes naming a run's directory, even one already removed.
    for (id, _) in teardown::run_processes() {
        if !live.contains(&id) {
            by_run.insert(id, ());
        }
    }
    if let Ok(dir) = std::fs::read_dir(VM_ROOT) {
        for e in dir.filter_map(Result::ok) {
            if let Ok(id) = e.file_name().to_string_lossy().parse::<RunId>()
                && !live.contains(&id)
            {
                by_run.insert(id, ());
            }
        }
    }
    // A run that registered after the first listing (it started while this
    // sweep ran) is alive, not an orphan: look again before each removal.
    for id in by_run.into_keys() {
        let now_alive = state::registered_runs()
            .into_iter()
            .filter_map(Result::ok)
            .any(|e| e.run_id == id && alive(&e));
        if now_alive && !force {
            report
                .skipped
                .push(format!("run {id} (started during this sweep)"));
            continue;
        }
        down_one(&id, &mut report);
    }
    report
}

fn sweep(resources: &[Resource], report: &mut DownReport) {
    // Processes first, then domains, links, namespace names (the wiring's
    // links go with them), the chart's release, container and cluster,
    // namespaces, directories.
    let rank = |r: &Resource| match r {
        Resource::Process { .. } => 0,
        Resource::Domain { .. } => 1,
        Resource::Link { .. } => 2,
        Resource::NetnsName { .. } => 3,
        Resource::HelmRelease { .. } => 4,
        Resource::Container { .. } => 5,
        Resource::KindCluster { .. } => 6,
        Resource::Netns { .. } => 7,
        Resource::Dir { .. } => 8,
    };
    let mut ordered: Vec<&Resource> = resources.iter().collect();
    ordered.sort_by_key(|r| rank(r));
    for r in ordered {
        match teardown::remove(r) {
            Ok(()) => report.removed.push(r.describe()),
            Err(e) => report.failed.push(format!("{}: {e}", r.describe())),
        }
    }
}

/// Forced teardown of the runs this process registered (second Ctrl-C).
pub fn down_all_owned_by(pid: i32) -> DownReport {
    let mut report = DownReport::default();
    for e in state::registered_runs()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.pid == pid)
    {
        let mut resources = state::read_state(&e.run_dir)
            .map(|s| s.resources)
            .unwrap_or_default();
        resources.extend(teardown::discover(Some(&e.run_id)));
        sweep(&resources, &mut report);
        state::unregister(&e.run_id);
    }
    report
}
