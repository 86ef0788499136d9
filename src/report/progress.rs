//! Progress: a spinner per stage on a terminal, plain lines otherwise
//! (CI logs), both from the event stream.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::events::{MachineGlimpse, Outcome, Reporter, RunEvent, StageName};

pub struct Progress {
    spinner: Option<ProgressBar>,
    tty: bool,
    /// Each stage's time, and the longest step, for the closing line.
    stages: Vec<(StageName, Duration)>,
    longest_step: Option<(String, Duration)>,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            spinner: None,
            tty: std::io::stderr().is_terminal(),
            stages: Vec::new(),
            longest_step: None,
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
                self.stages.push((*stage, *duration));
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
            RunEvent::StepProgress {
                index,
                name,
                elapsed,
                machines,
            } => {
                let lines = heartbeat_lines(*index, name, *elapsed, machines);
                match &self.spinner {
                    // A terminal: the spinner shows it, nothing scrolls.
                    Some(s) if self.tty => s.set_message(lines.join(" | ")),
                    _ => lines.into_iter().for_each(|l| self.line(l)),
                }
            }
            RunEvent::StepFinished {
                index,
                name,
                duration,
                outcome,
            } => {
                if self.longest_step.as_ref().is_none_or(|(_, d)| duration > d) {
                    self.longest_step = Some((format!("step {index:02} {name}"), *duration));
                }
                if let Some(s) = &self.spinner {
                    s.set_message("drive");
                }
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
                self.line(time_line(&self.stages, self.longest_step.as_ref()));
            }
        }
    }
}

/// A heartbeat as plain lines: the step and how long it has run, then one
/// line per machine (at most 10; a fleet says how many more).
pub fn heartbeat_lines(
    index: usize,
    name: &str,
    elapsed: Duration,
    machines: &[MachineGlimpse],
) -> Vec<String> {
    let mut out = vec![format!(
        "    ... step {index:02} {name}: still running after {}",
        humantime::format_duration(Duration::from_secs(elapsed.as_secs()))
    )];
    out.extend(
        machines
            .iter()
            .take(10)
            .map(|m| format!("        {}", m.line())),
    );
    if machines.len() > 10 {
        out.push(format!(
            "        ... and {} more machines",
            machines.len() - 10
        ));
    }
    out
}

/// Where the time went: each stage, and the step that took longest.
pub fn time_line(stages: &[(StageName, Duration)], longest: Option<&(String, Duration)>) -> String {
    let parts: Vec<String> = stages
        .iter()
        .map(|(s, d)| format!("{} {:.1}s", s.as_str(), d.as_secs_f64()))
        .collect();
    let mut out = format!("    time: {}", parts.join(", "));
    if let Some((name, d)) = longest {
        out.push_str(&format!("; longest: {name} {:.1}s", d.as_secs_f64()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_says_what_each_machine_last_showed() {
        let machines = vec![
            MachineGlimpse {
                machine: "node-1".into(),
                status: Some("Commissioning".into()),
                power: Some("on".into()),
                last_event: Some("PXE Request - commissioning".into()),
                console: Some("maas-e2e: commission: running 50-maas-01-commissioning".into()),
            },
            MachineGlimpse {
                machine: "node-2".into(),
                status: Some("not enlisted yet".into()),
                power: Some("on (the VM)".into()),
                ..Default::default()
            },
        ];
        let lines = heartbeat_lines(
            4,
            "wait_status all Ready within 12m",
            Duration::from_millis(90_400),
            &machines,
        );
        insta::assert_snapshot!(lines.join("\n"), @r#"
            ... step 04 wait_status all Ready within 12m: still running after 1m 30s
                node-1: Commissioning, power on; last event "PXE Request - commissioning"; console "maas-e2e: commission: running 50-maas-01-commissioning"
                node-2: not enlisted yet, power on (the VM)
        "#);
    }

    #[test]
    fn the_closing_line_says_where_the_time_went() {
        let stages = [
            (StageName::Plan, Duration::from_millis(3)),
            (StageName::Lab, Duration::from_millis(2_020)),
            (StageName::Drive, Duration::from_millis(72_480)),
        ];
        let longest = (
            "step 01 wait_status node New within 6m".to_string(),
            Duration::from_millis(70_190),
        );
        assert_eq!(
            time_line(&stages, Some(&longest)),
            "    time: plan 0.0s, lab 2.0s, drive 72.5s; longest: step 01 wait_status node New within 6m 70.2s"
        );
    }
}
