//! The stage pipeline: plan -> lab -> deploy -> drive -> observe -> report.
//! It only orchestrates: each stage is its own module (run/lab, run/target,
//! run/drive, run/observe, run/report), and this file calls them in order,
//! times them, turns their results into events, and remembers what the run
//! failed at first (its exit code).
//!
//! The runner, not the stages, owns teardown (kind's pattern): every
//! resource is registered before it is created, and whatever happens (a
//! failed stage, Ctrl-C, SIGTERM, a panic) the runner removes it unless
//! `--keep` was given.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::plan::{self, Plan, RunId};
use crate::report::events::{Fanout, Outcome, Reporter, RunEvent, StageName};
use crate::report::junit::{self, SuiteInput};
use crate::report::redact::Redactor;
use crate::run::context::RunContext;
use crate::run::drive::{Driver, step_name};
use crate::run::error::{FailureClass, StageError};
use crate::run::lab::LabEnv;
use crate::run::observe::{self, Observation};
use crate::run::options::TargetOptions;
use crate::run::provider;
use crate::run::record::{RunRecord, redacted_scenario, redactor_for, sha256_hex};
use crate::run::report::{self as judge, SnapshotMode};
use crate::run::state::{self, RegistryEntry};
use crate::run::teardown::Teardown;
use crate::scenario::{LoadedScenario, TargetKind};

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
    /// What the run failed at first (None: passed or interrupted).
    pub failure: Option<FailureClass>,
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
    let mut plan = plan::plan(loaded, opts.target, run_id, opts.seed, &opts.out_dir);
    if let Some(profile) = opts.target_options.sim_profile {
        if opts.target != TargetKind::Sim {
            return Err(RunError::Options(format!(
                "--sim-profile {profile} applies to --target sim only (this run's target is {})",
                opts.target
            )));
        }
        plan.lab.sim.profile = profile;
    }
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

struct Runner<'a> {
    events: Fanout,
    cancel: &'a CancellationToken,
    interrupted: bool,
    /// The first failure's class; later failures follow from it.
    failure: Option<FailureClass>,
}

impl Runner<'_> {
    fn failed(&self) -> bool {
        self.failure.is_some()
    }

    fn fail(&mut self, class: FailureClass) {
        self.failure.get_or_insert(class);
    }

    /// Run one stage unless the run already failed or was interrupted.
    async fn stage<T, F>(&mut self, stage: StageName, fut: F) -> Option<T>
    where
        F: Future<Output = Result<T, StageError>>,
    {
        if self.failed() || self.interrupted {
            return None;
        }
        self.stage_always(stage, fut).await
    }

    /// A stage that runs even after a failure (observe), not after Ctrl-C.
    async fn stage_always<T, F>(&mut self, stage: StageName, fut: F) -> Option<T>
    where
        F: Future<Output = Result<T, StageError>>,
    {
        self.events.emit(RunEvent::StageStarted { stage });
        let t0 = Instant::now();
        let res = tokio::select! { r = fut => Some(r), _ = self.cancel.cancelled() => None };
        let (out, outcome) = match res {
            Some(Ok(v)) => (Some(v), Outcome::Passed),
            Some(Err(e)) => {
                self.fail(e.class());
                (None, Outcome::Failed(e.to_string()))
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

    /// Drive: each step is its own JUnit case; the first failure skips the
    /// rest. A failed step is the scenario's failure, whatever layer said no.
    async fn drive(
        &mut self,
        cx: &RunContext<'_>,
        lab: &LabEnv,
        driver: &mut Driver,
        loaded: &LoadedScenario,
    ) {
        if self.failed() || self.interrupted {
            return;
        }
        self.events.emit(RunEvent::StageStarted {
            stage: StageName::Drive,
        });
        let t0 = Instant::now();
        let mut stage_outcome = Outcome::Passed;
        for (i, step) in loaded.scenario.steps.iter().enumerate() {
            let name = step_name(step);
            if self.failed() || self.interrupted {
                self.events.emit(RunEvent::StepFinished {
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
            // A clone: the step borrows the driver while heartbeats look.
            let watch = driver.maas().cloned();
            let every = crate::run::drive::heartbeat::interval();
            let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            let step_run = driver.step(cx, lab, step);
            tokio::pin!(step_run);
            let r = loop {
                tokio::select! {
                    r = &mut step_run => break Some(r),
                    _ = self.cancel.cancelled() => break None,
                    _ = beat.tick() => {
                        let machines = crate::run::drive::heartbeat::glimpse(cx.plan, watch.as_ref()).await;
                        self.events.emit(RunEvent::StepProgress {
                            index: i,
                            name: name.clone(),
                            elapsed: t.elapsed(),
                            machines,
                        });
                    }
                }
            };
            let outcome = match r {
                Some(Ok(())) => Outcome::Passed,
                Some(Err(e)) => {
                    self.fail(FailureClass::Scenario);
                    stage_outcome = Outcome::Failed(format!("step {i} ({name}) failed"));
                    Outcome::Failed(e.to_string())
                }
                None => {
                    self.interrupted = true;
                    stage_outcome = Outcome::Skipped("interrupted".into());
                    Outcome::Skipped("interrupted".into())
                }
            };
            self.events.emit(RunEvent::StepFinished {
                index: i,
                name,
                duration: t.elapsed(),
                outcome,
            });
        }
        self.events.emit(RunEvent::StageFinished {
            stage: StageName::Drive,
            duration: t0.elapsed(),
            outcome: stage_outcome,
        });
    }
}

/// Observe even after a failed step: the result explains the failure.
/// With a MAAS, what its API shows (and what the target adds); without
/// one, the BMCs.
async fn observe_stage(
    cx: &RunContext<'_>,
    lab: &LabEnv,
    driver: &mut Driver,
    target: &mut dyn provider::Target,
) -> Result<Observation, StageError> {
    let mut observation = match (driver.maas_driver(), target.without_maas()) {
        (Some(maas), _) => observe::from_maas(cx, maas).await?,
        (None, None) => observe::from_bmcs(cx, lab)?,
        (None, Some(why)) => return Err(StageError::Target(why.into())),
    };
    target.checks(cx, driver.maas(), &mut observation.api).await;
    Ok(observation)
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
        sim_profile: opts.target_options.sim_profile,
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
    reporters.push(Box::new(crate::report::events::EventFile::create(
        &run_dir.join("events.jsonl"),
        redactor.clone(),
    )));
    let mut runner = Runner {
        events: Fanout::new(reporters),
        cancel,
        interrupted: false,
        failure: None,
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

    let cx = RunContext {
        plan: &plan,
        options: &opts.target_options,
        teardown: teardown.clone(),
    };
    let mut target = provider::select(plan.target);
    let mut lab = LabEnv::default();
    runner
        .stage(StageName::Lab, async {
            target.preflight(&cx).await?;
            lab.up(&cx, target.lab_shape()).await
        })
        .await;
    let maas = runner
        .stage(StageName::Deploy, target.deploy(&cx))
        .await
        .flatten();
    let mut driver = Driver::new(&cx, maas);
    runner.drive(&cx, &lab, &mut driver, loaded).await;

    if opts.hold && !runner.failed() && !runner.interrupted {
        teardown.set_keep(false);
        match target.connection(&cx) {
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

    let observed = if runner.interrupted {
        None
    } else {
        runner
            .stage_always(
                StageName::Observe,
                observe_stage(&cx, &lab, &mut driver, target.as_mut()),
            )
            .await
    };

    let report_t0 = Instant::now();
    runner.events.emit(RunEvent::StageStarted {
        stage: StageName::Report,
    });
    let verdict = judge::judge(
        &mut runner.events,
        loaded,
        &plan,
        opts.target,
        observed.as_ref(),
        &redactor,
        SnapshotMode {
            compare: opts.snapshots,
            update: opts.update_snapshots,
        },
    );
    if verdict.checks_failed {
        runner.fail(FailureClass::Scenario);
    }
    let mut report_outcome = verdict.outcome;

    // Evidence while the environment still stands.
    if !runner.interrupted {
        target.collect(&cx, driver.maas(), runner.failed()).await;
    }

    // Guests off first (no guest talks to servers going away), then the
    // target, then the BMCs; teardown before the verdict: a leak is a
    // failure too.
    lab.power_off(&plan).await;
    target.stop(&cx, driver.into_maas()).await;
    lab.stop().await;
    let teardown_failures = teardown.run();
    if !teardown_failures.is_empty() {
        runner.fail(FailureClass::Lab);
        report_outcome =
            Outcome::Failed(format!("teardown left: {}", teardown_failures.join("; ")));
    }
    let passed = !runner.failed() && !runner.interrupted;
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
        .map(|o| o.machines.values().flat_map(|m| m.events.clone()).collect())
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
        failure: if runner.interrupted {
            None
        } else {
            runner.failure
        },
        teardown_failures,
    })
}
