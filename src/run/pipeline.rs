//! The stage pipeline: plan -> lab -> deploy -> drive -> observe -> report.
//!
//! The runner, not the stages, owns teardown (kind's pattern): every
//! resource is registered before it is created, and whatever happens (a
//! failed stage, Ctrl-C, SIGTERM, a panic) the runner removes it unless
//! `--keep` was given.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::plan::{self, Plan, RunId};
use crate::report::checks::{self, Observed, ObservedApi};
use crate::report::events::{Fanout, Outcome, Reporter, RunEvent, StageName};
use crate::report::junit::{self, SuiteInput};
use crate::report::redact::Redactor;
use crate::report::result::RunResult;
use crate::report::snapshot;
use crate::run::env::{Env, TargetOptions};
use crate::run::state::{self, RegistryEntry};
use crate::run::teardown::Teardown;
use crate::scenario::{LoadedScenario, Step, TargetKind};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub target: TargetKind,
    pub out_dir: PathBuf,
    pub seed: u64,
    /// Fixed by tests; otherwise generated.
    pub run_id: Option<RunId>,
    pub keep: bool,
    pub update_snapshots: bool,
    /// `up`: after the steps, hold the environment until cancelled.
    pub hold: bool,
    /// Compare with the golden snapshot (qualification cells have none).
    pub snapshots: bool,
    pub target_options: TargetOptions,
}

/// What `repro` needs to run the same scenario again: `RUN_DIR/run.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub run_id: RunId,
    pub seed: u64,
    pub target: TargetKind,
    pub scenario_path: PathBuf,
    pub scenario_sha256: String,
    pub version: String,
}

#[derive(Debug)]
pub struct RunSummary {
    pub suite: String,
    pub run_id: RunId,
    /// Hides this run's values in anything written from the events.
    pub redactor: Redactor,
    /// Every machine's event descriptions, for qualification verdicts.
    pub machine_events: Vec<String>,
    pub run_dir: PathBuf,
    pub passed: bool,
    pub interrupted: bool,
    pub events: Vec<RunEvent>,
    pub teardown_failures: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "scenario {scenario} does not list target `{target}` (it lists: {allowed}); pick one of those with --target"
    )]
    TargetNotAllowed {
        scenario: String,
        target: TargetKind,
        allowed: String,
    },
    #[error("cannot prepare the run directory: {0}")]
    State(#[from] state::StateError),
    #[error("{0}")]
    Options(String),
}

/// The run's plan: scenario and seed, placed on the user's bridge for the
/// external target. Errors name the flag to fix; nothing has started.
pub fn plan_for(
    loaded: &LoadedScenario,
    opts: &RunOptions,
    run_id: &RunId,
) -> Result<Plan, RunError> {
    let plan = plan::plan(loaded, opts.target, run_id, opts.seed, &opts.out_dir);
    if opts.target != TargetKind::External {
        return Ok(plan);
    }
    let t = &opts.target_options;
    let lab = crate::targets::external::ExternalLab::from_args(
        t.lab_bridge.as_deref(),
        t.bmc_addresses.as_deref(),
        plan.machines.len(),
    )
    .map_err(|e| RunError::Options(e.to_string()))?;
    Ok(plan::on_existing_bridge(
        plan,
        &lab.bridge,
        lab.subnet.addr,
        lab.subnet.prefix,
        lab.first_bmc,
    ))
}

/// Build a redactor for a plan: every run value gets a stable placeholder.
pub fn redactor_for(plan: &Plan) -> Redactor {
    let mut r = Redactor::new();
    r.value(plan.run_id.as_str(), "run-id");
    for m in &plan.machines {
        r.secret(m.bmc.password.clone());
        r.value(m.uuid.clone(), format!("uuid:{}", m.name));
        r.value(m.bmc.guid.clone(), format!("guid:{}", m.name));
        r.value(m.bmc.mac.clone(), format!("bmc-mac:{}", m.name));
        r.value(m.bmc.lan_ip.to_string(), format!("bmc-ip:{}", m.name));
        for (i, n) in m.nics.iter().enumerate() {
            r.value(n.mac.clone(), format!("mac:{}/{i}", m.name));
        }
    }
    if !plan.lab.rack_ip.is_unspecified() {
        r.value(plan.lab.rack_ip.to_string(), "rack-ip");
    }
    r
}

/// The scenario file as written into the run directory: passwords redacted.
pub fn redacted_scenario(loaded: &LoadedScenario) -> String {
    let re = regex::Regex::new(r#"(?m)^(\s*password:\s*).*$"#).unwrap();
    re.replace_all(&loaded.source, "${1}<secret>").into_owned()
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

struct Runner<'a> {
    events: Fanout,
    cancel: &'a CancellationToken,
    interrupted: bool,
    failed: bool,
}

impl Runner<'_> {
    /// Run one stage unless the run already failed or was interrupted.
    async fn stage<T, F>(&mut self, stage: StageName, fut: F) -> Option<T>
    where
        F: Future<Output = Result<T, String>>,
    {
        if self.failed || self.interrupted {
            return None;
        }
        self.events.emit(RunEvent::StageStarted { stage });
        let t0 = Instant::now();
        let res = tokio::select! {
            r = fut => Some(r),
            _ = self.cancel.cancelled() => None,
        };
        let duration = t0.elapsed();
        match res {
            Some(Ok(v)) => {
                self.events.emit(RunEvent::StageFinished {
                    stage,
                    duration,
                    outcome: Outcome::Passed,
                });
                Some(v)
            }
            Some(Err(e)) => {
                self.failed = true;
                self.events.emit(RunEvent::StageFinished {
                    stage,
                    duration,
                    outcome: Outcome::Failed(e),
                });
                None
            }
            None => {
                self.interrupted = true;
                self.events.emit(RunEvent::StageFinished {
                    stage,
                    duration,
                    outcome: Outcome::Skipped("interrupted".into()),
                });
                None
            }
        }
    }
}

/// Run one scenario end to end. Teardown has run when this returns, unless
/// `keep` (or `hold` ended by anything but a signal) says otherwise.
pub async fn execute(
    loaded: &LoadedScenario,
    opts: &RunOptions,
    cancel: &CancellationToken,
    reporters: Vec<Box<dyn Reporter>>,
) -> Result<RunSummary, RunError> {
    let s = &loaded.scenario;
    if !s.targets.contains(&opts.target) {
        return Err(RunError::TargetNotAllowed {
            scenario: s.name.clone(),
            target: opts.target,
            allowed: s
                .targets
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let run_id = opts.run_id.clone().unwrap_or_else(RunId::generate);
    let plan = plan_for(loaded, opts, &run_id)?;
    let run_dir = plan.host.run_dir.clone();
    let redactor = redactor_for(&plan);
    let t_run = Instant::now();

    // Plan stage: the run directory, the record for repro, the registry.
    let record = RunRecord {
        run_id: run_id.clone(),
        seed: opts.seed,
        target: opts.target,
        scenario_path: std::fs::canonicalize(&loaded.path).unwrap_or_else(|_| loaded.path.clone()),
        scenario_sha256: sha256_hex(loaded.source.as_bytes()),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    state::write_atomic(
        &run_dir.join("scenario.yaml"),
        redacted_scenario(loaded).as_bytes(),
    )?;
    state::write_atomic(
        &run_dir.join("plan.yaml"),
        serde_norway::to_string(&plan)
            .expect("plan serialises")
            .as_bytes(),
    )?;
    state::write_atomic(
        &run_dir.join("run.json"),
        &serde_json::to_vec_pretty(&record).expect("record serialises"),
    )?;
    let teardown = Teardown::new(&run_id, &run_dir, opts.keep)?;
    crate::report::log::begin_run(&run_dir);
    tracing::info!(run_id = %run_id, scenario = %s.name, target = %opts.target, seed = opts.seed, "run started");
    let me = std::process::id() as i32;
    state::register(&RegistryEntry {
        run_id: run_id.clone(),
        run_dir: std::fs::canonicalize(&run_dir).unwrap_or_else(|_| run_dir.clone()),
        pid: me,
        pid_start_time: state::process_start_time(me).unwrap_or(0),
        scenario: s.name.clone(),
        target: opts.target.to_string(),
        started: chrono::Utc::now().to_rfc3339(),
        kept: opts.keep,
    })?;

    let mut reporters = reporters;
    reporters.push(Box::new(crate::report::events::TracingReporter));
    let mut runner = Runner {
        events: Fanout::new(reporters),
        cancel,
        interrupted: false,
        failed: false,
    };
    runner.events.emit(RunEvent::RunStarted {
        run_id: run_id.to_string(),
        scenario: s.name.clone(),
        target: opts.target.to_string(),
    });
    runner.events.emit(RunEvent::StageStarted {
        stage: StageName::Plan,
    });
    runner.events.emit(RunEvent::StageFinished {
        stage: StageName::Plan,
        duration: t_run.elapsed(),
        outcome: Outcome::Passed,
    });

    let mut env = Env::new(&plan, &opts.target_options, teardown.clone());
    runner.stage(StageName::Lab, env.lab_up()).await;
    runner.stage(StageName::Deploy, env.deploy()).await;

    // Drive: each step is its own JUnit case; the first failure skips the rest.
    if !runner.failed && !runner.interrupted {
        runner.events.emit(RunEvent::StageStarted {
            stage: StageName::Drive,
        });
        let t0 = Instant::now();
        let mut stage_outcome = Outcome::Passed;
        for (i, step) in s.steps.iter().enumerate() {
            let name = step_name(step);
            if runner.failed || runner.interrupted {
                runner.events.emit(RunEvent::StepFinished {
                    index: i,
                    name,
                    duration: Duration::ZERO,
                    outcome: Outcome::Skipped(
                        "an earlier step failed or the run was interrupted".into(),
                    ),
                });
                continue;
            }
            let t = Instant::now();
            let r =
                tokio::select! { r = env.step(step) => Some(r), _ = cancel.cancelled() => None };
            let outcome = match r {
                Some(Ok(())) => Outcome::Passed,
                Some(Err(e)) => {
                    runner.failed = true;
                    stage_outcome = Outcome::Failed(format!("step {i} ({name}) failed"));
                    Outcome::Failed(e)
                }
                None => {
                    runner.interrupted = true;
                    stage_outcome = Outcome::Skipped("interrupted".into());
                    Outcome::Skipped("interrupted".into())
                }
            };
            runner.events.emit(RunEvent::StepFinished {
                index: i,
                name,
                duration: t.elapsed(),
                outcome,
            });
        }
        runner.events.emit(RunEvent::StageFinished {
            stage: StageName::Drive,
            duration: t0.elapsed(),
            outcome: stage_outcome,
        });
    }

    if opts.hold && !runner.failed && !runner.interrupted {
        teardown.set_keep(false);
        match env.write_connection() {
            Ok(Some(path)) => eprintln!(
                "the MAAS of run {run_id} is up; its URL, API key, lab bridge and free BMC addresses are in {} (mode 0600): \
                 `set -a; . {0}; set +a; maas-e2e run --target external SCENARIO`",
                path.display()
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot write the connection file"),
        }
        eprintln!(
            "environment of run {run_id} is up; Ctrl-C or `maas-e2e down {run_id}` tears it down"
        );
        cancel.cancelled().await;
        runner.interrupted = true;
    }

    // Observe even after a failed step: the result explains the failure.
    let observed = if runner.interrupted {
        None
    } else {
        runner
            .stage_always(StageName::Observe, env.observe(), cancel)
            .await
    };

    let report_t0 = Instant::now();
    runner.events.emit(RunEvent::StageStarted {
        stage: StageName::Report,
    });
    let mut report_outcome = Outcome::Passed;
    if let Some((result, machines, api)) = &observed {
        let select = |name: &str| {
            plan.select(name)
                .into_iter()
                .map(|m| m.name.clone())
                .collect::<Vec<_>>()
        };
        for (i, e) in s.expect.iter().enumerate() {
            let outcome = checks::evaluate(e, select, machines, api);
            if outcome.is_failed() {
                runner.failed = true;
            }
            runner.events.emit(RunEvent::CheckFinished {
                index: i,
                name: checks::describe(e),
                outcome,
            });
        }
        for (j, (name, outcome)) in api.target_checks.iter().enumerate() {
            if outcome.is_failed() {
                runner.failed = true;
            }
            runner.events.emit(RunEvent::CheckFinished {
                index: s.expect.len() + j,
                name: name.clone(),
                outcome: outcome.clone(),
            });
        }
        let yaml = result.snapshot_yaml(&redactor);
        if let Err(e) = state::write_atomic(&run_dir.join("result.yaml"), yaml.as_bytes()) {
            report_outcome = Outcome::Failed(e.to_string());
        }
        if opts.snapshots {
            let snap = snapshot::snapshot_path(&loaded.path, &s.name, &opts.target.to_string());
            let outcome = snapshot::compare(&loaded.path, &snap, &yaml, opts.update_snapshots);
            if outcome.is_failed() {
                runner.failed = true;
            }
            runner.events.emit(RunEvent::SnapshotCompared {
                name: format!("{}.{}", s.name, opts.target),
                outcome,
            });
        }
    } else {
        for (i, e) in s.expect.iter().enumerate() {
            runner.events.emit(RunEvent::CheckFinished {
                index: i,
                name: checks::describe(e),
                outcome: Outcome::Skipped("nothing was observed".into()),
            });
        }
    }

    // Evidence while the environment still stands: on failure, or when
    // the target was asked to (chart: --collect).
    if !runner.interrupted {
        env.collect(runner.failed).await;
    }

    // Teardown before the verdict: a leak is a failure too.
    env.stop().await;
    let teardown_failures = teardown.run();
    if !teardown_failures.is_empty() {
        runner.failed = true;
        report_outcome =
            Outcome::Failed(format!("teardown left: {}", teardown_failures.join("; ")));
    }
    let passed = !runner.failed && !runner.interrupted;
    runner.events.emit(RunEvent::StageFinished {
        stage: StageName::Report,
        duration: report_t0.elapsed(),
        outcome: report_outcome,
    });
    runner.events.emit(RunEvent::RunFinished {
        duration: t_run.elapsed(),
        passed,
        interrupted: runner.interrupted,
    });

    tracing::info!(passed, interrupted = runner.interrupted, "run finished");
    crate::report::log::end_run();
    let events = runner.events.recorded.events.clone();
    let xml = junit::junit_xml(&[SuiteInput {
        name: format!("{}.{}", s.name, opts.target),
        events: &events,
        redactor: &redactor,
    }]);
    let _ = state::write_atomic(&run_dir.join("junit.xml"), xml.as_bytes());
    let _ = state::write_atomic(
        &run_dir.join("events.jsonl"),
        events
            .iter()
            .map(|e| redactor.redact(&serde_json::to_string(e).unwrap()) + "\n")
            .collect::<String>()
            .as_bytes(),
    );
    if !opts.keep {
        state::unregister(&run_id);
    }
    let machine_events = observed
        .as_ref()
        .map(|(_, m, _)| m.values().flat_map(|o| o.events.clone()).collect())
        .unwrap_or_default();
    Ok(RunSummary {
        suite: format!("{}.{}", s.name, opts.target),
        run_id,
        redactor,
        machine_events,
        run_dir,
        passed,
        interrupted: runner.interrupted,
        events,
        teardown_failures,
    })
}

impl Runner<'_> {
    /// A stage that runs even after a failure (observe), not after Ctrl-C.
    async fn stage_always<T, F>(
        &mut self,
        stage: StageName,
        fut: F,
        cancel: &CancellationToken,
    ) -> Option<T>
    where
        F: Future<Output = Result<T, String>>,
    {
        self.events.emit(RunEvent::StageStarted { stage });
        let t0 = Instant::now();
        let res = tokio::select! { r = fut => Some(r), _ = cancel.cancelled() => None };
        let (out, outcome) = match res {
            Some(Ok(v)) => (Some(v), Outcome::Passed),
            Some(Err(e)) => {
                self.failed = true;
                (None, Outcome::Failed(e))
            }
            None => {
                self.interrupted = true;
                (None, Outcome::Skipped("interrupted".into()))
            }
        };
        self.events.emit(RunEvent::StageFinished {
            stage,
            duration: t0.elapsed(),
            outcome,
        });
        out
    }
}

/// A step's name for JUnit: `power_on node-1`, `wait_status all Ready`.
pub fn step_name(step: &Step) -> String {
    match step {
        Step::PowerOn(m) => format!("power_on {}", m.0),
        Step::PowerOff(m) => format!("power_off {}", m.0),
        Step::PowerCycle(m) => format!("power_cycle {}", m.0),
        Step::Commission(m) => format!("commission {}", m.0),
        Step::WaitStatus(w) => format!(
            "wait_status {} {:?} within {}",
            w.machine.0,
            w.status,
            humantime::format_duration(w.timeout.0)
        ),
        Step::WaitPower(w) => format!(
            "wait_power {} {:?} within {}",
            w.machine.0,
            w.state,
            humantime::format_duration(w.timeout.0)
        ),
        Step::InjectFault(f) => format!("inject_fault {}", f.machine.0),
        Step::ClearFaults(m) => format!("clear_faults {}", m.0),
        Step::Sleep(d) => format!("sleep {}", humantime::format_duration(d.0)),
        Step::ExpectError(e) => format!("{} fails with /{}/", step_name(&e.step), e.matches),
    }
}

/// Read the record of a finished run, for `repro`.
pub fn read_record(run_dir: &Path) -> Result<RunRecord, String> {
    let path = run_dir.join("run.json");
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "{}: {e}; is {} a run directory?",
            path.display(),
            run_dir.display()
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not a run record: {e}", path.display()))
}

/// What observe hands to report.
pub type Observation = (RunResult, BTreeMap<String, Observed>, ObservedApi);
