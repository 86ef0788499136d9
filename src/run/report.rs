//! The report stage's judging: the scenario's expectations and the
//! target's own checks against the observation, `result.yaml`, and the
//! golden snapshot. The runner writes JUnit and events once the run ends.

use std::path::Path;

use crate::plan::Plan;
use crate::report::checks;
use crate::report::events::{Fanout, Outcome, RunEvent};
use crate::report::redact::Redactor;
use crate::report::snapshot;
use crate::run::observe::Observation;
use crate::run::state;
use crate::scenario::{LoadedScenario, TargetKind};

/// Whether to compare with the golden snapshot, and whether to rewrite it.
pub struct SnapshotMode {
    pub compare: bool,
    pub update: bool,
}

/// What judging found: whether any check failed, and the report stage's
/// own outcome (writing `result.yaml`).
pub struct Verdict {
    pub checks_failed: bool,
    pub outcome: Outcome,
}

pub fn judge(
    events: &mut Fanout,
    loaded: &LoadedScenario,
    plan: &Plan,
    target: TargetKind,
    observation: Option<&Observation>,
    redactor: &Redactor,
    snapshots: SnapshotMode,
) -> Verdict {
    let s = &loaded.scenario;
    let mut verdict = Verdict {
        checks_failed: false,
        outcome: Outcome::Passed,
    };
    let Some(o) = observation else {
        for (i, e) in s.expect.iter().enumerate() {
            events.emit(RunEvent::CheckFinished {
                index: i,
                name: checks::describe(e),
                outcome: Outcome::Skipped("nothing was observed".into()),
            });
        }
        return verdict;
    };
    let select = |name: &str| {
        plan.select(name)
            .into_iter()
            .map(|m| m.name.clone())
            .collect::<Vec<_>>()
    };
    for (i, e) in s.expect.iter().enumerate() {
        let outcome = checks::evaluate(e, select, &o.machines, &o.api);
        verdict.checks_failed |= outcome.is_failed();
        events.emit(RunEvent::CheckFinished {
            index: i,
            name: checks::describe(e),
            outcome,
        });
    }
    for (j, (name, outcome)) in o.api.target_checks.iter().enumerate() {
        verdict.checks_failed |= outcome.is_failed();
        events.emit(RunEvent::CheckFinished {
            index: s.expect.len() + j,
            name: name.clone(),
            outcome: outcome.clone(),
        });
    }
    let yaml = o.result.snapshot_yaml(redactor);
    if let Err(e) = state::write_atomic(&result_path(plan), yaml.as_bytes()) {
        verdict.outcome = Outcome::Failed(e.to_string());
    }
    if snapshots.compare {
        let label = snapshot::target_label(target, plan.lab.sim.profile);
        let snap = snapshot::snapshot_path(&loaded.path, &s.name, &label);
        let outcome = snapshot::compare(&loaded.path, &snap, &yaml, snapshots.update);
        verdict.checks_failed |= outcome.is_failed();
        events.emit(RunEvent::SnapshotCompared {
            name: format!("{}.{}", s.name, label),
            outcome,
        });
    }
    verdict
}

fn result_path(plan: &Plan) -> std::path::PathBuf {
    Path::new(&plan.host.run_dir).join("result.yaml")
}
