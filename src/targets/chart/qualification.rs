//! The release-qualification matrix (ci/qualification/matrix.yaml for the
//! chart, sim-matrix.yaml for the sim): its
//! schema and checks, and the summary across runs (a pure function).
//!
//! A cell's verdict is "as expected" when the run did what the cell says:
//! passed where `pass` is expected, or failed at the named failure's step
//! with its event seen. Anything else is unexpected, including a pass
//! where a failure was expected.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The matrix file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    pub suite: String,
    pub target: String,
    pub base_scenario: String,
    /// Chart pins the cells run on (`2.8`, `3.6`; see pin.rs), an axis of
    /// its own: empty for a target without pins (the sim is MAAS 2.8.7).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pins: Vec<String>,
    /// Named failures cells may expect.
    pub failures: BTreeMap<String, NamedFailure>,
    pub cells: Vec<Cell>,
    /// Axis -> value -> scenario overrides.
    pub overrides: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
}

/// A failure a cell may expect, by name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamedFailure {
    /// The scenario step that must fail.
    pub step: String,
    /// Text a MAAS event must contain (none on target `none`: no MAAS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    pub why: String,
}

/// One combination of the axes and what it must do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    pub id: String,
    pub firmware: String,
    pub ciphers: String,
    pub lan: String,
    /// One of the matrix's `pins` (required when it lists any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
    /// `pass` or a key of `failures`.
    pub expect: String,
}

impl Cell {
    pub fn axes(&self) -> [(&'static str, &str); 3] {
        [
            ("firmware", &self.firmware),
            ("ciphers", &self.ciphers),
            ("lan", &self.lan),
        ]
    }
}

/// A matrix that cannot be used, naming the cell and field.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MatrixError {
    #[error("{file}: {detail}")]
    Parse { file: String, detail: String },
    #[error("{file}: cell {cell}: field `{field}` = {value:?}: {allowed}")]
    Cell {
        file: String,
        cell: String,
        field: &'static str,
        value: String,
        allowed: String,
    },
    #[error("{file}: the cells do not cover {axes} exactly once: {detail}")]
    Coverage {
        file: String,
        axes: String,
        detail: String,
    },
}

/// Parse and check a matrix: every cell's axis values have overrides,
/// every expectation is `pass` or a named failure, ids are unique, and the
/// cells cover the cross product of the axes exactly once.
pub fn parse_matrix(file: &str, text: &str) -> Result<Matrix, MatrixError> {
    let m: Matrix = serde_norway::from_str(text).map_err(|e| MatrixError::Parse {
        file: file.into(),
        detail: e.to_string(),
    })?;
    let mut seen_ids = Vec::new();
    let mut seen_combos = Vec::new();
    for c in &m.cells {
        if seen_ids.contains(&c.id) {
            return Err(MatrixError::Cell {
                file: file.into(),
                cell: c.id.clone(),
                field: "id",
                value: c.id.clone(),
                allowed: "unique ids".into(),
            });
        }
        seen_ids.push(c.id.clone());
        for (axis, value) in c.axes() {
            let values = m
                .overrides
                .get(axis)
                .map(|v| v.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            if !values.iter().any(|v| v == value) {
                return Err(MatrixError::Cell {
                    file: file.into(),
                    cell: c.id.clone(),
                    field: axis,
                    value: value.into(),
                    allowed: format!("one of {values:?} (overrides.{axis})"),
                });
            }
        }
        if c.expect != "pass" && !m.failures.contains_key(&c.expect) {
            return Err(MatrixError::Cell {
                file: file.into(),
                cell: c.id.clone(),
                field: "expect",
                value: c.expect.clone(),
                allowed: format!("pass or one of {:?}", m.failures.keys().collect::<Vec<_>>()),
            });
        }
        match (&c.pin, m.pins.is_empty()) {
            (None, true) => {}
            (Some(p), false) if m.pins.contains(p) => {}
            (pin, _) => {
                return Err(MatrixError::Cell {
                    file: file.into(),
                    cell: c.id.clone(),
                    field: "pin",
                    value: pin.clone().unwrap_or_default(),
                    allowed: if m.pins.is_empty() {
                        "no pin: the matrix lists no `pins`".into()
                    } else {
                        format!("one of {:?} (pins)", m.pins)
                    },
                });
            }
        }
        let combo = (
            c.firmware.clone(),
            c.ciphers.clone(),
            c.lan.clone(),
            c.pin.clone(),
        );
        if seen_combos.contains(&combo) {
            return Err(MatrixError::Coverage {
                file: file.into(),
                axes: axes_name(&m),
                detail: format!("{combo:?} appears twice (cell {})", c.id),
            });
        }
        seen_combos.push(combo);
    }
    let count = |axis: &str| m.overrides.get(axis).map_or(0, |v| v.len());
    let want = count("firmware") * count("ciphers") * count("lan") * m.pins.len().max(1);
    if seen_combos.len() != want {
        return Err(MatrixError::Coverage {
            file: file.into(),
            axes: axes_name(&m),
            detail: format!("{} cells for {want} combinations", seen_combos.len()),
        });
    }
    Ok(m)
}

fn axes_name(m: &Matrix) -> String {
    if m.pins.is_empty() {
        "firmware x ciphers x lan".into()
    } else {
        "firmware x ciphers x lan x pin".into()
    }
}

/// What one run of a cell did, as the report stage records it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CellResult {
    pub cell: String,
    pub passed: bool,
    /// The step that failed, if any.
    pub failed_step: Option<String>,
    /// MAAS event descriptions seen during the run.
    pub events: Vec<String>,
    /// Where the run's artifacts are.
    pub run_dir: Option<String>,
}

/// A cell's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    AsExpected,
    Unexpected(String),
    NotRun,
}

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryRow {
    pub cell: String,
    pub pin: Option<String>,
    pub firmware: String,
    pub ciphers: String,
    pub lan: String,
    pub expected: String,
    pub actual: String,
    pub verdict: Verdict,
}

/// The summary across the runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub suite: String,
    pub rows: Vec<SummaryRow>,
    /// Every cell ran and did what it states.
    pub qualified: bool,
}

fn judge(m: &Matrix, cell: &Cell, result: Option<&CellResult>) -> (String, Verdict) {
    let Some(r) = result else {
        return ("(no result)".into(), Verdict::NotRun);
    };
    let actual = if r.passed {
        "pass".to_string()
    } else {
        format!(
            "fail at {}",
            r.failed_step.as_deref().unwrap_or("(unknown step)")
        )
    };
    let verdict = match (cell.expect.as_str(), r.passed) {
        ("pass", true) => Verdict::AsExpected,
        ("pass", false) => Verdict::Unexpected("expected pass".into()),
        (_, true) => Verdict::Unexpected(format!("expected {}, but it passed", cell.expect)),
        (name, false) => {
            let f = &m.failures[name];
            if r.failed_step.as_deref() != Some(f.step.as_str()) {
                Verdict::Unexpected(format!("expected {name} at {}", f.step))
            } else if let Some(event) = &f.event
                && !r.events.iter().any(|e| e.contains(event))
            {
                Verdict::Unexpected(format!("expected event {event:?}"))
            } else {
                Verdict::AsExpected
            }
        }
    };
    (actual, verdict)
}

/// Judge every cell against its result (the last result for a cell wins).
pub fn summarize(m: &Matrix, results: &[CellResult]) -> Summary {
    let rows: Vec<SummaryRow> = m
        .cells
        .iter()
        .map(|c| {
            let result = results.iter().rev().find(|r| r.cell == c.id);
            let (actual, verdict) = judge(m, c, result);
            SummaryRow {
                cell: c.id.clone(),
                pin: c.pin.clone(),
                firmware: c.firmware.clone(),
                ciphers: c.ciphers.clone(),
                lan: c.lan.clone(),
                expected: c.expect.clone(),
                actual,
                verdict,
            }
        })
        .collect();
    let qualified = rows.iter().all(|r| r.verdict == Verdict::AsExpected);
    Summary {
        suite: m.suite.clone(),
        rows,
        qualified,
    }
}

/// The summary as a Markdown table plus a one-line verdict.
pub fn render_markdown(s: &Summary) -> String {
    let mut out = format!("# {}\n\n", s.suite);
    // The pin column only where the matrix has pins (the sim has none).
    let pins = s.rows.iter().any(|r| r.pin.is_some());
    out.push_str("| cell |");
    out.push_str(if pins { " pin |" } else { "" });
    out.push_str(" firmware | ciphers | lan | expected | actual | verdict |\n");
    out.push_str(if pins { "| --- | --- |" } else { "| --- |" });
    out.push_str(" --- | --- | --- | --- | --- | --- |\n");
    for r in &s.rows {
        let verdict = match &r.verdict {
            Verdict::AsExpected => "as expected".to_string(),
            Verdict::Unexpected(why) => format!("**UNEXPECTED**: {why}"),
            Verdict::NotRun => "**NOT RUN**".to_string(),
        };
        let pin = match (&r.pin, pins) {
            (Some(p), _) => format!(" {p} |"),
            (None, true) => " |".into(),
            (None, false) => String::new(),
        };
        let _ = writeln!(
            out,
            "| {} |{pin} {} | {} | {} | {} | {} | {} |",
            r.cell, r.firmware, r.ciphers, r.lan, r.expected, r.actual, verdict
        );
    }
    let bad = s
        .rows
        .iter()
        .filter(|r| r.verdict != Verdict::AsExpected)
        .count();
    let _ = writeln!(
        out,
        "\n{}: {} of {} cells as expected",
        if s.qualified {
            "QUALIFIED"
        } else {
            "NOT QUALIFIED"
        },
        s.rows.len() - bad,
        s.rows.len()
    );
    out
}
