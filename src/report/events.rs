//! The run's event stream. JUnit, the summary table and the progress display
//! are all consumers of these events (nextest's reporter pattern).

use std::time::Duration;

use serde::Serialize;

/// How one unit (a stage, step, check or the snapshot) ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "message")]
pub enum Outcome {
    Passed,
    Failed(String),
    /// Not run because an earlier unit failed or the run was interrupted.
    Skipped(String),
}

impl Outcome {
    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

/// What a heartbeat saw of one machine; each part only when known.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MachineGlimpse {
    pub machine: String,
    /// MAAS's status name, or why there is none (not enlisted yet).
    pub status: Option<String>,
    /// MAAS's power state, or the VM's own when MAAS does not know it.
    pub power: Option<String>,
    /// The machine's last MAAS event.
    pub last_event: Option<String>,
    /// The console's last line.
    pub console: Option<String>,
}

impl MachineGlimpse {
    /// `node: New, power off; last event "…"; console "…"`.
    pub fn line(&self) -> String {
        let mut parts = vec![
            self.status
                .clone()
                .unwrap_or_else(|| "status unknown".into()),
        ];
        if let Some(p) = &self.power {
            parts.push(format!("power {p}"));
        }
        let mut out = format!("{}: {}", self.machine, parts.join(", "));
        if let Some(e) = &self.last_event {
            out.push_str(&format!("; last event {e:?}"));
        }
        if let Some(c) = &self.console {
            out.push_str(&format!("; console {c:?}"));
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageName {
    Plan,
    Lab,
    Deploy,
    Drive,
    Observe,
    Report,
}

impl StageName {
    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Plan => "plan",
            StageName::Lab => "lab",
            StageName::Deploy => "deploy",
            StageName::Drive => "drive",
            StageName::Observe => "observe",
            StageName::Report => "report",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum RunEvent {
    RunStarted {
        run_id: String,
        scenario: String,
        target: String,
    },
    StageStarted {
        stage: StageName,
    },
    StageFinished {
        stage: StageName,
        duration: Duration,
        outcome: Outcome,
    },
    StepFinished {
        index: usize,
        name: String,
        duration: Duration,
        outcome: Outcome,
    },
    /// A step still running, at a steady interval (a heartbeat): what was
    /// last seen of each machine, so a long wait in a CI log is visibly
    /// alive, and a stuck one shows where it stands.
    StepProgress {
        index: usize,
        name: String,
        elapsed: Duration,
        machines: Vec<MachineGlimpse>,
    },
    CheckFinished {
        index: usize,
        name: String,
        outcome: Outcome,
    },
    SnapshotCompared {
        name: String,
        outcome: Outcome,
    },
    RunFinished {
        duration: Duration,
        passed: bool,
        interrupted: bool,
    },
}

/// Anything that consumes run events.
pub trait Reporter: Send {
    fn event(&mut self, event: &RunEvent);
}

/// Collects events for the consumers that need the whole run (JUnit, summary).
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    pub events: Vec<RunEvent>,
}

impl Reporter for Recorded {
    fn event(&mut self, event: &RunEvent) {
        self.events.push(event.clone());
    }
}

/// Fans one event out to several reporters.
#[derive(Default)]
pub struct Fanout {
    reporters: Vec<Box<dyn Reporter>>,
    pub recorded: Recorded,
}

impl Fanout {
    pub fn new(reporters: Vec<Box<dyn Reporter>>) -> Self {
        Fanout {
            reporters,
            recorded: Recorded::default(),
        }
    }

    pub fn emit(&mut self, event: RunEvent) {
        self.recorded.event(&event);
        for r in &mut self.reporters {
            r.event(&event);
        }
    }
}

/// Every event appended to `RUN_DIR/events.jsonl` as it happens, redacted,
/// so a run killed halfway keeps what it did (and a watcher can follow it).
/// The run rewrites the file whole at its end, with the same lines.
pub struct EventFile {
    file: Option<std::fs::File>,
    redactor: crate::report::redact::Redactor,
}

impl EventFile {
    pub fn create(path: &std::path::Path, redactor: crate::report::redact::Redactor) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)
            .map_err(|e| tracing::warn!("cannot write {}: {e}", path.display()))
            .ok();
        EventFile { file, redactor }
    }
}

impl Reporter for EventFile {
    fn event(&mut self, event: &RunEvent) {
        use std::io::Write;
        if let Some(f) = &mut self.file {
            let line = self
                .redactor
                .redact(&serde_json::to_string(event).expect("event serialises"));
            // One write per line: a reader never sees half an event.
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// Every event into the tracing log (and so into `RUN_DIR/maas-e2e.log`).
pub struct TracingReporter;

impl Reporter for TracingReporter {
    fn event(&mut self, event: &RunEvent) {
        // info, not warn: failures already reach the terminal through the
        // progress display; the log file keeps every event.
        tracing::info!(?event, "run event");
    }
}
