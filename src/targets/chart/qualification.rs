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
    /// its own: empty for a target without pins (the sim states its MAAS
    /// version with the `profile` axis instead).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pins: Vec<String>,
    /// The cells are a chosen cut of a bigger matrix (a test's, e.g.
    /// tests/spine/qualify/vm-matrix.yaml): they need not cover the cross
    /// product of the axes, each combination still at most once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cut: bool,
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
    /// The sim's MAAS version profile (`2.8`, `3.6`): a key of
    /// `overrides.profile`, required when the matrix has that axis (sim
    /// target only; the chart states its MAAS version with `pins`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// `pass` or a key of `failures`.
    pub expect: String,
}

impl Cell {
    /// The axes whose values select `overrides` entries, in the order they
    /// apply: firmware, ciphers, lan, then profile when the cell has one.
    pub fn axes(&self) -> Vec<(&'static str, &str)> {
        let mut axes = vec![
            ("firmware", self.firmware.as_str()),
            ("ciphers", self.ciphers.as_str()),
            ("lan", self.lan.as_str()),
        ];
        if let Some(p) = &self.profile {
            axes.push((PROFILE_AXIS, p.as_str()));
        }
        axes
    }
}

/// The axis naming the sim's MAAS version profile.
pub const PROFILE_AXIS: &str = "profile";

/// The override key that sets a cell scenario's `sim.profile`.
pub const SIM_PROFILE_KEY: &str = "sim.profile";

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
    #[error("{file}: field `{field}` = {value}: {allowed}")]
    Field {
        file: String,
        field: String,
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
    check_overrides(file, &m)?;
    let has_profile = m.overrides.contains_key(PROFILE_AXIS);
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
        if c.profile.is_some() != has_profile {
            return Err(MatrixError::Cell {
                file: file.into(),
                cell: c.id.clone(),
                field: "profile",
                value: c.profile.clone().unwrap_or_default(),
                allowed: if has_profile {
                    format!(
                        "one of {:?} (overrides.profile)",
                        m.overrides[PROFILE_AXIS].keys().collect::<Vec<_>>()
                    )
                } else {
                    "no profile: the matrix has no `overrides.profile` axis".into()
                },
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
            c.profile.clone(),
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
    let want = count("firmware")
        * count("ciphers")
        * count("lan")
        * m.pins.len().max(1)
        * count(PROFILE_AXIS).max(1);
    if seen_combos.len() != want && !m.cut {
        return Err(MatrixError::Coverage {
            file: file.into(),
            axes: axes_name(&m),
            detail: format!("{} cells for {want} combinations", seen_combos.len()),
        });
    }
    Ok(m)
}

fn axes_name(m: &Matrix) -> String {
    let mut name = String::from("firmware x ciphers x lan");
    if !m.pins.is_empty() {
        name.push_str(" x pin");
    }
    if m.overrides.contains_key(PROFILE_AXIS) {
        name.push_str(" x profile");
    }
    name
}

/// Every override key is one the cell scenarios can take: `machine.FIELD`,
/// `bmc.FIELD`, or `sim.profile` (a known profile, on target sim only; the
/// `profile` axis's value V sets exactly `sim.profile: V`, so a cell's
/// stated profile is the one it runs).
fn check_overrides(file: &str, m: &Matrix) -> Result<(), MatrixError> {
    let field_err = |field: String, value: String, allowed: String| MatrixError::Field {
        file: file.into(),
        field,
        value,
        allowed,
    };
    let profiles = || {
        crate::scenario::SimProfile::ALL
            .iter()
            .map(|p| format!("{:?}", p.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (axis, values) in &m.overrides {
        for (value, set) in values {
            let at = format!("overrides.{axis}.{value}");
            let Some(set) = set.as_object() else {
                return Err(field_err(
                    at,
                    set.to_string(),
                    "allowed: a mapping of machine.FIELD / bmc.FIELD / sim.profile to values"
                        .into(),
                ));
            };
            for (key, v) in set {
                match key.split_once('.') {
                    Some(("machine" | "bmc", f)) if !f.is_empty() => {}
                    _ if key == SIM_PROFILE_KEY => {
                        if m.target != "sim" {
                            return Err(field_err(
                                format!("{at}.{key}"),
                                v.to_string(),
                                format!(
                                    "the sim profile applies to target sim only (this matrix's target is {}); a chart matrix states its MAAS version with `pins`",
                                    m.target
                                ),
                            ));
                        }
                        let known = v
                            .as_str()
                            .is_some_and(|s| s.parse::<crate::scenario::SimProfile>().is_ok());
                        if !known {
                            return Err(field_err(
                                format!("{at}.{key}"),
                                v.to_string(),
                                format!("allowed: one of {}", profiles()),
                            ));
                        }
                    }
                    _ => {
                        return Err(field_err(
                            format!("{at}.{key}"),
                            v.to_string(),
                            "allowed keys: machine.FIELD, bmc.FIELD, sim.profile".into(),
                        ));
                    }
                }
            }
            if axis == PROFILE_AXIS {
                if m.target != "sim" {
                    return Err(field_err(
                        format!("overrides.{PROFILE_AXIS}"),
                        format!("{:?}", values.keys().collect::<Vec<_>>()),
                        format!(
                            "the profile axis applies to target sim only (this matrix's target is {}); a chart matrix states its MAAS version with `pins`",
                            m.target
                        ),
                    ));
                }
                let sets_itself = set.len() == 1
                    && set.get(SIM_PROFILE_KEY).and_then(|v| v.as_str()) == Some(value.as_str());
                if !sets_itself {
                    return Err(field_err(
                        at,
                        serde_json::Value::Object(set.clone()).to_string(),
                        format!(
                            "allowed: {{ sim.profile: {value:?} }} (a profile axis value sets that profile, nothing else; profiles: {})",
                            profiles()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
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
                profile: c.profile.clone(),
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
    // The pin and profile columns only where the matrix has that axis
    // (pins: the chart; profile: the sim).
    let pins = s.rows.iter().any(|r| r.pin.is_some());
    let profiles = s.rows.iter().any(|r| r.profile.is_some());
    out.push_str("| cell |");
    out.push_str(if pins { " pin |" } else { "" });
    out.push_str(if profiles { " profile |" } else { "" });
    out.push_str(" firmware | ciphers | lan | expected | actual | verdict |\n");
    out.push_str("| --- |");
    out.push_str(if pins { " --- |" } else { "" });
    out.push_str(if profiles { " --- |" } else { "" });
    out.push_str(" --- | --- | --- | --- | --- | --- |\n");
    for r in &s.rows {
        let verdict = match &r.verdict {
            Verdict::AsExpected => "as expected".to_string(),
            Verdict::Unexpected(why) => format!("**UNEXPECTED**: {why}"),
            Verdict::NotRun => "**NOT RUN**".to_string(),
        };
        let column = |v: &Option<String>, shown: bool| match (v, shown) {
            (Some(p), _) => format!(" {p} |"),
            (None, true) => " |".into(),
            (None, false) => String::new(),
        };
        let pin = column(&r.pin, pins);
        let profile = column(&r.profile, profiles);
        let _ = writeln!(
            out,
            "| {} |{pin}{profile} {} | {} | {} | {} | {} | {} |",
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
