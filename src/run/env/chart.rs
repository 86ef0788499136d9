//! The chart target's environment: kind + Postgres + the MaaS chart,
//! deployed by `target::chart::ChartRun`, then driven like any MAAS.

use super::Env;

/// What the chart target holds between stages.
#[derive(Default)]
pub struct ChartEnv {}

impl<'p> Env<'p> {
    pub(super) async fn chart_deploy(&mut self) -> Result<(), String> {
        Err("target chart: the non-dry run is not wired into the pipeline yet; use --dry-run".into())
    }

    pub(super) async fn chart_stop(&mut self) {}
}
