//! MAAS deployed by the MaaS Helm chart on kind: the `chart` target.
//!
//! `ChartOptions` (options) -> `ChartPlan::new` (plan, pure) -> the run:
//! kind cluster (kind_config), Postgres (postgres), lab wiring (wiring),
//! `helm upgrade --install` with a generated override (values), the
//! deployment flow's waits (waits), MAAS configuration and chart checks
//! (maas_config; performed by configure, judged by checks), collection;
//! prerequisites (prereq); the release
//! qualification matrix and its summary (qualification).
//! See docs/chart.md.

pub mod args;
pub mod checks;
pub mod configure;
pub mod image_build;
pub mod kind_config;
pub mod maas_config;
pub mod options;
pub mod pin;
pub mod plan;
pub mod postgres;
pub mod prereq;
pub mod qualification;
pub mod render;
pub mod render_check;
pub mod run;
pub mod values;
pub mod waits;
pub mod wiring;

pub use args::ChartArgs;
pub use options::{
    ChartOptions, ChartOptionsError, ChartSecrets, ChartTimeouts, ClusterSource, Ipv4Cidr, LabLink,
    PostgresMode, PostgresOptions, WiringOptions,
};
pub use plan::{ChartPlan, Stage, Step};
pub use run::{ChartError, ChartRun, Deployed};

/// What `run --target chart --dry-run` prints: the whole plan.
pub fn dry_run(opts: &ChartOptions) -> Result<String, ChartOptionsError> {
    Ok(ChartPlan::new(opts)?.render())
}
