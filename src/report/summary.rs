//! The summary table printed at the end of `run`.

use std::time::Duration;

use super::events::{Outcome, RunEvent};

/// One scenario run, as the table shows it.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub target: String,
    pub run_dir: String,
    pub events: Vec<RunEvent>,
}

fn counts(events: &[RunEvent]) -> (usize, usize, String, Duration, bool, bool) {
    let (mut ok, mut total) = (0, 0);
    let mut snapshot = "-".to_string();
    let (mut duration, mut passed, mut interrupted) = (Duration::ZERO, false, false);
    for e in events {
        match e {
            RunEvent::StepFinished { outcome, .. } | RunEvent::CheckFinished { outcome, .. } => {
                total += 1;
                if *outcome == Outcome::Passed {
                    ok += 1;
                }
            }
            RunEvent::SnapshotCompared { outcome, .. } => {
                snapshot = match outcome {
                    Outcome::Passed => "match".into(),
                    Outcome::Failed(_) => "DIFF".into(),
                    Outcome::Skipped(_) => "skipped".into(),
                }
            }
            RunEvent::RunFinished {
                duration: d,
                passed: p,
                interrupted: i,
            } => {
                duration = *d;
                passed = *p;
                interrupted = *i;
            }
            _ => {}
        }
    }
    (ok, total, snapshot, duration, passed, interrupted)
}

pub fn table(rows: &[Row]) -> String {
    let mut lines = vec![
        [
            "scenario",
            "target",
            "result",
            "steps+checks",
            "snapshot",
            "time",
            "run dir",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for r in rows {
        let (ok, total, snap, d, passed, interrupted) = counts(&r.events);
        let verdict = if interrupted {
            "interrupted"
        } else if passed {
            "passed"
        } else {
            "FAILED"
        };
        lines.push(vec![
            r.scenario.clone(),
            r.target.clone(),
            verdict.into(),
            format!("{ok}/{total}"),
            snap,
            format!("{:.1}s", d.as_secs_f64()),
            r.run_dir.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
        .collect();
    lines
        .iter()
        .map(|l| {
            l.iter()
                .zip(&widths)
                .map(|(s, w)| format!("{s:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}
