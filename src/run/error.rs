//! The one error type of the stage seam, and the failure class each run
//! ends with (which the CLI turns into an exit code, src/exit.rs).
//!
//! Messages keep the words the stages always used: `expect_error` steps
//! match their regex against the display of these errors, and the events,
//! JUnit and summary show them as they are.

use std::path::PathBuf;

use crate::bmc::FleetError;
use crate::lab::net::LabNetError;
use crate::lab::vm::VmError;
use crate::maas::client::MaasError;
use crate::run::state::StateError;
use crate::targets::chart::ChartError;
use crate::targets::chart::configure::ConfigureError;
use crate::targets::chart::prereq::MissingTools;
use crate::targets::external::ExternalError;

/// What a failed run failed at, from the lowest layer up: a broken host
/// explains a failed MAAS, and a failed MAAS explains a failed check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureClass {
    /// The host or the lab: netns, bridges, BMCs, libvirt, files, teardown.
    Lab,
    /// The MAAS under test or its deployment (sim region, chart, external).
    Target,
    /// The scenario: a step, an expectation or the snapshot.
    Scenario,
}

impl FailureClass {
    /// The exit code documented in README.md ("Exit codes").
    pub fn exit_code(self) -> i32 {
        match self {
            FailureClass::Lab => crate::exit::LAB_FAILED,
            FailureClass::Target => crate::exit::TARGET_FAILED,
            FailureClass::Scenario => crate::exit::FAILED,
        }
    }
}

/// Why a stage (or one step of drive) failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A file or directory of the run on the host.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The run's state file (what teardown and `down` remove).
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Net(#[from] LabNetError),
    #[error("starting the BMCs: {0}")]
    BmcStart(#[source] FleetError),
    #[error(transparent)]
    Bmc(#[from] FleetError),
    #[error(transparent)]
    Vm(#[from] VmError),
    /// A program the target needs is not installed (says what to install).
    #[error(transparent)]
    MissingTools(#[from] MissingTools),
    /// Any other host or lab problem, said in words.
    #[error("{0}")]
    Lab(String),
    /// A call to the MAAS under test.
    #[error(transparent)]
    Maas(#[from] MaasError),
    /// The chart's deployment (kind, Postgres, helm, the waits).
    #[error(transparent)]
    Chart(#[from] ChartError),
    /// Configuring the chart's MAAS after deploy.
    #[error(transparent)]
    Configure(#[from] ConfigureError),
    /// The external MAAS: its flags, its answer, its key.
    #[error(transparent)]
    External(#[from] ExternalError),
    /// The target's deployment or its MAAS, said in words.
    #[error("{0}")]
    Target(String),
    /// A step that cannot do what the scenario asks.
    #[error("{0}")]
    Step(String),
    /// One machine's failure, named.
    #[error("{machine}: {source}")]
    Machine {
        machine: String,
        #[source]
        source: Box<StageError>,
    },
    /// Operations on several machines that failed at once: one line each.
    #[error("{}", join_lines(.0))]
    Many(Vec<StageError>),
}

fn join_lines(errors: &[StageError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl StageError {
    /// Which layer failed, by where the error came from.
    pub fn class(&self) -> FailureClass {
        match self {
            StageError::File { .. }
            | StageError::State(_)
            | StageError::Net(_)
            | StageError::BmcStart(_)
            | StageError::Bmc(_)
            | StageError::Vm(_)
            | StageError::MissingTools(_)
            | StageError::Lab(_) => FailureClass::Lab,
            StageError::Maas(_)
            | StageError::Chart(_)
            | StageError::Configure(_)
            | StageError::External(_)
            | StageError::Target(_) => FailureClass::Target,
            StageError::Step(_) => FailureClass::Scenario,
            StageError::Machine { source, .. } => source.class(),
            StageError::Many(errors) => errors
                .iter()
                .map(StageError::class)
                .min()
                .unwrap_or(FailureClass::Scenario),
        }
    }

    /// `what failed` for machine `name`.
    pub fn on(self, machine: &str) -> StageError {
        StageError::Machine {
            machine: machine.to_string(),
            source: Box::new(self),
        }
    }

    /// A file error with its path.
    pub fn file(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StageError {
        let path = path.into();
        move |source| StageError::File { path, source }
    }
}

/// Run per-machine operations concurrently; every failure is reported,
/// one per line.
pub async fn all_ok(
    runs: impl IntoIterator<Item = impl Future<Output = Result<(), StageError>>>,
) -> Result<(), StageError> {
    let errors: Vec<StageError> = futures::future::join_all(runs)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    one_or_many(errors)
}

/// Ok when nothing failed, the error itself when one did, all of them
/// (one per line) when several did.
pub fn one_or_many(mut errors: Vec<StageError>) -> Result<(), StageError> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(StageError::Many(errors)),
    }
}
