//! Release qualification: every cell of a matrix runs the base scenario
//! with the cell's overrides; the summary judges each run against what its
//! cell states (pass, or a named failure at a step with an event).
//! Many runners split a matrix with `--partition` ([`partition`]) and join
//! their fragments with `qualify merge` ([`fragment`]).

pub mod command;
pub mod fragment;
pub mod list;
pub mod partition;

use std::path::Path;

use crate::report::events::{Outcome, RunEvent};
use crate::run::pipeline::RunSummary;
use crate::scenario::{self, LoadedScenario, ScenarioError};
use crate::targets::chart::qualification::{
    Cell, CellResult, Matrix, MatrixError, SIM_PROFILE_KEY,
};

/// Why a matrix cannot be read or a cell's scenario cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum QualifyError {
    #[error("{}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Matrix(#[from] MatrixError),
    /// The matrix's `overrides` table does not fit the cell (said in words).
    #[error("{0}")]
    Overrides(String),
    #[error("cell {cell}: {source}")]
    Cell {
        cell: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Yaml(#[from] serde_norway::Error),
    #[error(transparent)]
    Utf8(#[from] std::string::FromUtf8Error),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
}

/// The base scenario with a cell's overrides applied: `machine.FIELD` and
/// `bmc.FIELD` keys of the matrix's `overrides` table to every machine
/// group, `sim.profile` to the scenario's `sim` settings (the profile axis).
pub fn cell_scenario(
    base: &LoadedScenario,
    m: &Matrix,
    cell: &Cell,
) -> Result<LoadedScenario, QualifyError> {
    let mut doc = serde_json::to_value(&base.scenario)?;
    for (axis, value) in cell.axes() {
        let Some(table) = m.overrides.get(axis) else {
            continue;
        };
        let Some(set) = table.get(value) else {
            return Err(QualifyError::Overrides(format!(
                "cell {}: {axis} `{value}` has no entry in `overrides.{axis}`",
                cell.id
            )));
        };
        let set = set.as_object().ok_or_else(|| QualifyError::Overrides(format!("overrides.{axis}.{value}: allowed: a mapping of machine.FIELD / bmc.FIELD / sim.profile to values")))?;
        for (key, v) in set {
            match key.split_once('.') {
                Some(("machine", f)) => {
                    for group in doc["machines"].as_array_mut().into_iter().flatten() {
                        group[f] = v.clone();
                    }
                }
                Some(("bmc", f)) => {
                    for group in doc["machines"].as_array_mut().into_iter().flatten() {
                        group["bmc"][f] = v.clone();
                    }
                }
                // The scenario's own key (`sim: {profile: ...}`), as a
                // scenario file would set it; parse_matrix checked the value.
                _ if key == SIM_PROFILE_KEY => doc["sim"]["profile"] = v.clone(),
                _ => {
                    return Err(QualifyError::Overrides(format!(
                        "overrides.{axis}.{value}.{key}: allowed: machine.FIELD, bmc.FIELD or sim.profile"
                    )));
                }
            }
        }
    }
    let name = format!(
        "{}-{}",
        base.scenario.name,
        cell.id
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<String>()
    );
    doc["name"] = name.into();
    // Back to YAML and through the validator, so a bad override reads like
    // any other scenario error.
    let mut yaml = Vec::new();
    let mut ser = serde_norway::Serializer::new(&mut yaml);
    serde_norway::with::singleton_map_recursive::serialize(
        &serde_json::from_value::<scenario::Scenario>(doc).map_err(|source| {
            QualifyError::Cell {
                cell: cell.id.clone(),
                source,
            }
        })?,
        &mut ser,
    )?;
    let source = String::from_utf8(yaml)?;
    let mut loaded = scenario::parse(
        &base.path.with_file_name(format!("{}.yaml", cell.id)),
        &source,
    )?;
    // Repro and snapshots point at the base file.
    loaded.path = base.path.clone();
    Ok(loaded)
}

/// What the qualification summary needs from one run.
pub fn cell_result(cell: &Cell, run: &RunSummary) -> CellResult {
    let failed_step = run.events.iter().find_map(|e| match e {
        RunEvent::StepFinished {
            name,
            outcome: Outcome::Failed(_),
            ..
        } => Some(
            name.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        _ => None,
    });
    CellResult {
        cell: cell.id.clone(),
        passed: run.passed,
        failed_step,
        // Fragments travel between CI jobs: no run value in them.
        events: run
            .machine_events
            .iter()
            .map(|e| run.redactor.redact(e))
            .collect(),
        run_dir: Some(run.run_dir.display().to_string()),
    }
}

/// Read a matrix file.
pub fn load_matrix(path: &Path) -> Result<Matrix, QualifyError> {
    let text = std::fs::read_to_string(path).map_err(|source| QualifyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(crate::targets::chart::qualification::parse_matrix(
        &path.display().to_string(),
        &text,
    )?)
}
