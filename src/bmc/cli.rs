//! `maas-e2e bmc ...`: serve a fleet from a YAML file, serve N BMCs on
//! loopback addresses in a process of their own, poll BMCs with
//! ipmipower as MAAS does, or run the load generator.

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
    /// Serve N BMCs (no VM, no sim), each on its own loopback address,
    /// until `--for` runs out or SIGTERM (the fleet bench's BMC process).
    Fleet(super::loopback::LoopbackFleetArgs),
    /// Query BMCs with `ipmipower --stat` as MAAS 2.8 does, at its
    /// cadence or at full speed; prints a JSON report.
    Poll(super::poll::PollArgs),
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
        BmcCommand::Fleet(args) => super::loopback::run(args).await,
        BmcCommand::Poll(args) => super::poll::run(args).await,
    }
}
