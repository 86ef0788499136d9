//! Progress: a spinner per stage on a terminal, plain lines otherwise
//! (CI logs), both from the event stream.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::events::{Outcome, Reporter, RunEvent};

pub struct Progress {
    spinner: Option<ProgressBar>,
    tty: bool,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            spinner: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, text: String) {
        match &self.spinner {
            Some(s) => s.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

fn mark(o: &Outcome) -> &'static str {
    match o {
        Outcome::Passed => "ok",
        Outcome::Failed(_) => "FAILED",
        Outcome::Skipped(_) => "skipped",
    }
}

impl Reporter for Progress {
    fn event(&mut self, event: &RunEvent) {
        match event {
            RunEvent::RunStarted {
                run_id,
                scenario,
                target,
            } => self.line(format!("==> {scenario} on {target} (run {run_id})")),
            RunEvent::StageStarted { stage } => {
                if self.tty {
                    let s = ProgressBar::new_spinner();
                    s.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap());
                    s.set_message(stage.as_str().to_string());
                    s.enable_steady_tick(Duration::from_millis(120));
                    self.spinner = Some(s);
                } else {
                    self.line(format!("  stage {} ...", stage.as_str()));
                }
            }
            RunEvent::StageFinished {
                stage,
                duration,
                outcome,
            } => {
                if let Some(s) = self.spinner.take() {
                    s.finish_and_clear();
                }
                self.line(format!(
                    "  stage {} {} ({:.1}s)",
                    stage.as_str(),
                    mark(outcome),
                    duration.as_secs_f64()
                ));
                if let Outcome::Failed(m) = outcome {
                    self.line(format!("    {}", m.replace('\n', "\n    ")));
                }
            }
            RunEvent::StepFinished {
                index,
                name,
                duration,
                outcome,
            } => {
                self.line(format!(
                    "    step {index:02} {name}: {} ({:.1}s)",
                    mark(outcome),
                    duration.as_secs_f64()
                ));
                if let Outcome::Failed(m) = outcome {
                    self.line(format!("      {}", m.replace('\n', "\n      ")));
                }
            }
            RunEvent::CheckFinished {
                index,
                name,
                outcome,
            } => {
                self.line(format!("    expect {index:02} {name}: {}", mark(outcome)));
                if let Outcome::Failed(m) = outcome {
                    self.line(format!("      {}", m.replace('\n', "\n      ")));
                }
            }
            RunEvent::SnapshotCompared { name, outcome } => {
                self.line(format!("    snapshot {name}: {}", mark(outcome)));
                if let Outcome::Failed(m) = outcome {
                    self.line(format!("      {}", m.replace('\n', "\n      ")));
                }
            }
            RunEvent::RunFinished {
                duration,
                passed,
                interrupted,
            } => {
                let verdict = if *interrupted {
                    "INTERRUPTED"
                } else if *passed {
                    "PASSED"
                } else {
                    "FAILED"
                };
                self.line(format!("<== {verdict} in {:.1}s", duration.as_secs_f64()));
            }
        }
    }
}
