//! What every command that runs scenarios shares (`run`, `up`, `qualify`):
//! the common flags and the target options they make, the host check
//! before anything starts, Ctrl-C handling, and a batch's summary table,
//! JUnit file and exit code.

use clap::Args;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

use crate::exit;
use crate::report::summary::{self, Row};
use crate::run::down;
use crate::run::options::TargetOptions;
use crate::run::pipeline;
use crate::run::state;
use crate::scenario::TargetKind;

#[derive(Args, Debug, Clone)]
pub struct CommonRunArgs {
    /// Which MAAS is under test.
    #[arg(long, value_enum, default_value_t = TargetKind::Sim)]
    pub target: TargetKind,
    /// Where run directories go (RUN_ID/ beneath).
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Seed for everything inside the lab (MACs, IPs, UUIDs).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// External target: the MAAS URL (http://host:5240/MAAS).
    #[arg(long, env = "MAAS_URL")]
    pub maas_url: Option<String>,
    /// External target: consumer_key:token_key:token_secret.
    #[arg(long, env = "MAAS_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// External target: an existing host bridge the VMs join (the MAAS rack serves it).
    #[arg(long, env = "MAAS_E2E_LAB_BRIDGE")]
    pub lab_bridge: Option<String>,
    /// External target: FIRST/PREFIX, free addresses on that bridge's subnet for the BMCs (machine i gets FIRST+i).
    #[arg(long, env = "MAAS_E2E_BMC_ADDRESSES")]
    pub bmc_addresses: Option<String>,
    #[command(flatten, next_help_heading = "Chart target")]
    pub chart: crate::targets::chart::ChartArgs,
    /// Postgres for the sim region: a local process (default) or a container.
    #[arg(long, value_parser = ["local", "container"], default_value = "local")]
    pub postgres: String,
    /// Sim target: the MAAS version to imitate, 2.8 or 3.6 (default: the
    /// scenario's `sim.profile`, else 2.8). Goldens: NAME.sim-3.6.snap.
    #[arg(long, value_name = "VERSION")]
    pub sim_profile: Option<crate::scenario::SimProfile>,
}

pub fn target_options(c: &CommonRunArgs) -> TargetOptions {
    TargetOptions {
        maas_url: c.maas_url.clone(),
        api_key: c.api_key.clone(),
        lab_bridge: c.lab_bridge.clone(),
        bmc_addresses: c.bmc_addresses.clone(),
        postgres_container: c.postgres == "container",
        chart: c.chart.clone(),
        sim_profile: c.sim_profile,
    }
}

/// Ctrl-C / SIGTERM cancel the token (teardown runs); a second one forces:
/// what is registered is killed without grace and the process exits.
pub fn install_signals(cancel: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        eprintln!("interrupted: tearing down (press Ctrl-C again to force)");
        cancel.cancel();
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        eprintln!("forced: removing what the state files list, then exiting");
        // The graceful teardown still runs beside this: its commands in
        // flight are stopped before the sweep and again after it, so none
        // outlives the exit.
        crate::process::kill_own_children();
        let _ = down::down_all_owned_by(std::process::id() as i32);
        crate::process::kill_own_children();
        std::process::exit(exit::INTERRUPTED);
    });
}

/// The summary table, the combined JUnit file, and the exit code of a batch.
pub fn finish(summaries: &[pipeline::RunSummary], junit: Option<&std::path::Path>) -> i32 {
    let rows: Vec<Row> = summaries
        .iter()
        .map(|s| Row {
            scenario: s
                .suite
                .rsplit_once('.')
                .map_or(s.suite.clone(), |(n, _)| n.to_string()),
            target: s
                .suite
                .rsplit_once('.')
                .map_or(String::new(), |(_, t)| t.to_string()),
            run_dir: s.run_dir.display().to_string(),
            events: s.events.clone(),
        })
        .collect();
    println!("{}", summary::table(&rows));
    if let Some(path) = junit {
        let suites: Vec<_> = summaries
            .iter()
            .map(|s| crate::report::junit::SuiteInput {
                name: s.suite.clone(),
                events: &s.events,
                redactor: &s.redactor,
            })
            .collect();
        if let Err(e) =
            state::write_atomic(path, crate::report::junit::junit_xml(&suites).as_bytes())
        {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    }
    if summaries.iter().any(|s| s.interrupted) {
        exit::INTERRUPTED
    } else if summaries.iter().all(|s| s.passed) {
        exit::PASSED
    } else {
        // The lowest layer that failed: a broken lab explains a failed
        // MAAS, which explains a failed check.
        summaries
            .iter()
            .filter_map(|s| s.failure)
            .min()
            .map_or(exit::FAILED, |c| c.exit_code())
    }
}

/// Refuse to start when the host lacks what the target needs.
pub fn host_ready(target: TargetKind) -> Option<i32> {
    let (text, ready) = crate::doctor::report(&crate::doctor::checks(), Some(target));
    if ready {
        None
    } else {
        eprintln!(
            "the host is not ready for target {target}:\n{}",
            text.lines()
                .filter(|l| !l.starts_with("ok"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        Some(exit::HOST_NOT_READY)
    }
}
