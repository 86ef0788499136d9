//! `maas-e2e chart check --chart DIR [SCENARIO...]`: the chart options a
//! run would build (per scenario, or the defaults), the check, the table,
//! and the exit code (0 all hold, 1 a mismatch, 2 bad input, 3 host).

use std::path::PathBuf;

use clap::Args;

use crate::exit;
use crate::plan::RunId;
use crate::scenario::TargetKind;

use crate::targets::chart::args::ChartArgs;
use crate::targets::chart::options::{ChartOptions, region_secret_from_seed};
use crate::targets::chart::render_check::{CheckFailure, CheckSettings, check};

/// Flags of `chart check`: the run's chart flags, scenarios, seed.
#[derive(Debug, Clone, Args)]
pub struct ChartCheckArgs {
    /// Scenarios whose runs to check (none: a one-machine lab's defaults).
    pub scenarios: Vec<PathBuf>,
    #[command(flatten)]
    pub chart: ChartArgs,
    /// The seed the run would use (its lab addresses, its region secret).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also require every image the run loads to be in the local docker
    /// (what a real run's preflight requires).
    #[arg(long)]
    pub local_images: bool,
}

/// Why `chart check` could not build the options to check: bad input.
#[derive(Debug, thiserror::Error)]
enum InputError {
    #[error(transparent)]
    Scenario(#[from] crate::scenario::ScenarioError),
    #[error("{path}: {source}", path = .0.display(), source = .1)]
    Options(PathBuf, crate::targets::chart::ChartOptionsError),
    #[error(transparent)]
    Defaults(#[from] crate::targets::chart::ChartOptionsError),
}

/// The options `run --target chart` would build for this scenario.
fn options_for(
    args: &ChartCheckArgs,
    scenario: Option<&PathBuf>,
) -> Result<ChartOptions, InputError> {
    let run_id = RunId::generate();
    let out = std::env::temp_dir().join("maas-e2e-chart-check");
    let mut opts = match scenario {
        Some(path) => {
            let loaded = crate::scenario::load(path)?;
            let plan = crate::plan::plan(&loaded, TargetKind::Chart, &run_id, args.seed, &out);
            let t = crate::run::options::TargetOptions {
                chart: args.chart.clone(),
                ..Default::default()
            };
            crate::run::provider::chart_options(&plan, &t)
                .map_err(|e| InputError::Options(path.clone(), e))?
        }
        None => {
            let wiring = ChartOptions::new("check", &out, "/").wiring;
            args.chart
                .to_options(run_id.as_str(), out.join(run_id.as_str()), false, 1, wiring)?
        }
    };
    opts.secrets.region_secret = region_secret_from_seed(args.seed);
    Ok(opts)
}

/// Run the command; prints the table(s), returns the exit code.
pub fn run(args: &ChartCheckArgs) -> i32 {
    let settings = CheckSettings {
        require_local_images: args.local_images,
        helm: String::new(),
    };
    let targets: Vec<Option<&PathBuf>> = if args.scenarios.is_empty() {
        vec![None]
    } else {
        args.scenarios.iter().map(Some).collect()
    };
    let mut code = exit::PASSED;
    for scenario in targets {
        if let Some(p) = scenario {
            println!("# scenario {}", p.display());
        }
        let opts = match options_for(args, scenario) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::BAD_INPUT;
            }
        };
        match check(&opts, settings.clone()) {
            Ok(report) => {
                print!("{}", report.table());
                if !report.passed() {
                    code = exit::FAILED;
                }
            }
            Err(CheckFailure::BadInput(e)) => {
                eprintln!("error: {e}");
                return exit::BAD_INPUT;
            }
            Err(CheckFailure::HostNotReady(e)) => {
                eprintln!("error: {e}");
                return exit::HOST_NOT_READY;
            }
        }
    }
    code
}
