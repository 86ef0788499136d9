//! What a run writes about itself for `repro` and people: the record
//! (`run.json`), the scenario with its passwords redacted, and the
//! redactor that hides the run's values in everything written.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::{Plan, RunId};
use crate::report::redact::Redactor;
use crate::scenario::{LoadedScenario, TargetKind};

/// What `repro` needs to run the same scenario again: `RUN_DIR/run.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub run_id: RunId,
    pub seed: u64,
    pub target: TargetKind,
    pub scenario_path: PathBuf,
    pub scenario_sha256: String,
    pub version: String,
    /// `--sim-profile` as given (None: the scenario's own choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim_profile: Option<crate::scenario::SimProfile>,
}

/// Why a run record cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{}: {source}; is {} a run directory?", path.display(), run_dir.display())]
    Read {
        path: PathBuf,
        run_dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a run record: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Read the record of a finished run, for `repro`.
pub fn read_record(run_dir: &Path) -> Result<RunRecord, RecordError> {
    let path = run_dir.join("run.json");
    let bytes = std::fs::read(&path).map_err(|source| RecordError::Read {
        path: path.clone(),
        run_dir: run_dir.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| RecordError::Parse { path, source })
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
