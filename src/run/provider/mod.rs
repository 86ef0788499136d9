//! The MAAS under test, behind one interface: each target (none, sim,
//! external, chart) is one file here implementing [`Target`], and
//! [`select`] is the one place that picks it. The pipeline calls the
//! trait's methods in order: preflight and the lab's shape (lab stage),
//! deploy (which hands the MAAS client forward to drive), checks (after
//! observe), collect, stop. As kind's providers: a new target is a new
//! file and one line in `select`.

mod chart;
mod external;
mod none;
mod sim;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;

use crate::maas::client::{MaasClient, RetryPolicy};
use crate::report::checks::ObservedApi;
use crate::run::context::RunContext;
use crate::run::drive::maas::POLL;
use crate::run::error::StageError;
use crate::run::lab::LabShape;
use crate::scenario::TargetKind;

pub use chart::{chart_options, chart_resources};
pub use sim::{connection_env, ephemeral_spec};

#[async_trait]
pub trait Target: Send {
    /// How this target's lab differs from the default.
    fn lab_shape(&self) -> LabShape;

    /// Before the lab: what must hold for the run to start (programs,
    /// options, a MAAS that answers). Nothing exists yet when this fails.
    async fn preflight(&mut self, _cx: &RunContext<'_>) -> Result<(), StageError> {
        Ok(())
    }

    /// The MAAS under test, up; its client goes to drive (None: no MAAS,
    /// the BMCs are driven directly).
    async fn deploy(&mut self, cx: &RunContext<'_>) -> Result<Option<MaasClient>, StageError>;

    /// Why observe cannot run when deploy handed no client forward; None
    /// when the target has no MAAS and the BMCs are observed instead.
    fn without_maas(&self) -> Option<&'static str> {
        None
    }

    /// What the target itself adds to the observation: its own checks
    /// (chart) or response headers (sim).
    async fn checks(
        &mut self,
        _cx: &RunContext<'_>,
        _maas: Option<&MaasClient>,
        _api: &mut ObservedApi,
    ) {
    }

    /// Evidence while the environment still stands: on failure, or when
    /// the target was asked to (chart: `--collect`).
    async fn collect(&mut self, _cx: &RunContext<'_>, _maas: Option<&MaasClient>, _failed: bool) {}

    /// `up`: the file another run's `--target external` sources, if this
    /// target serves a MAAS others can use.
    fn connection(&self, _cx: &RunContext<'_>) -> Result<Option<PathBuf>, StageError> {
        Ok(None)
    }

    /// Stop what the target runs (after the guests are off, before the
    /// lab's BMCs stop and teardown removes the rest).
    async fn stop(&mut self, _cx: &RunContext<'_>, _maas: Option<MaasClient>) {}
}

/// The one place a target kind becomes a target.
pub fn select(kind: TargetKind) -> Box<dyn Target> {
    match kind {
        TargetKind::None => Box::new(none::NoMaas),
        TargetKind::Sim => Box::<sim::SimTarget>::default(),
        TargetKind::External => Box::<external::ExternalTarget>::default(),
        TargetKind::Chart => Box::<chart::ChartTarget>::default(),
    }
}

/// Every MAAS client the harness drives with: short retries on connection
/// errors and 5xx, and the waits' poll interval.
pub fn harness_client(client: MaasClient) -> MaasClient {
    client
        .with_retry(RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
        })
        .with_poll_interval(POLL)
}
