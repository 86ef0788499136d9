//! `maas-e2e bmc bench`: a load generator built on our RMCP+ codec.

/// Bench options.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench: not yet implemented")
}
