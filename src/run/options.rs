//! Target-specific flags from the command line, as every stage sees them.

/// Target-specific flags from the command line.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    pub maas_url: Option<String>,
    pub api_key: Option<String>,
    pub lab_bridge: Option<String>,
    /// External target: FIRST/PREFIX for the BMCs on `lab_bridge`.
    pub bmc_addresses: Option<String>,
    /// The sim region's Postgres: a testcontainers container, not a local process.
    pub postgres_container: bool,
    pub chart: crate::targets::chart::ChartArgs,
    /// Sim target: overrides the scenario's `sim.profile`.
    pub sim_profile: Option<crate::scenario::SimProfile>,
}
