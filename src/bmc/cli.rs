//! `maas-e2e bmc ...`: serve a fleet from a YAML file, or run the load
//! generator. The lead wires [`BmcCommand`] into src/cli.rs.

use std::path::PathBuf;

/// BMC subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BmcCommand {
    /// Serve the BMCs of a fleet config until Ctrl-C.
    Serve {
        /// Fleet YAML (see fixtures/bmc/example.yaml).
        #[arg(long)]
        config: PathBuf,
    },
    /// Load-generate against BMCs with our own RMCP+ client.
    Bench(super::bench::BenchArgs),
}

pub async fn run(cmd: BmcCommand) -> anyhow::Result<()> {
    match cmd {
        BmcCommand::Serve { config } => {
            let cfg = super::FleetConfig::load(&config)?;
            let handle = super::Fleet::start(cfg).await?;
            for name in handle.names() {
                match handle.redfish_addr(&name) {
                    Some(rf) => eprintln!(
                        "bmc {name}: LAN {} Redfish https://{rf}",
                        handle.lan_addr(&name)?
                    ),
                    None => eprintln!("bmc {name}: LAN {}", handle.lan_addr(&name)?),
                }
            }
            tokio::signal::ctrl_c().await?;
            handle.shutdown().await;
            Ok(())
        }
        BmcCommand::Bench(args) => super::bench::run(args).await,
    }
}
