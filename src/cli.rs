//! Command line: clap derive; each subcommand maps flags to library options
//! and returns one of the documented exit codes (src/exit.rs).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::exit;
use crate::plan::RunId;
use crate::report::events::Reporter;
use crate::report::progress::Progress;
use crate::run::batch::{CommonRunArgs, finish, host_ready, install_signals, target_options};
use crate::run::down;
use crate::run::pipeline::{self, RunOptions};
use crate::run::state;
use crate::scenario::{self, TargetKind};

#[derive(Parser, Debug)]
#[command(
    name = "maas-e2e",
    version,
    about = "End-to-end tests of MAAS on virtual hardware: VMs with virtual BMCs, PXE, IPMI, commissioning"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run scenarios and compare their results with the golden snapshots.
    Run(RunArgs),
    /// Build a scenario's environment and keep it running until Ctrl-C or `down`.
    Up(UpArgs),
    /// Tear down a run (or every run whose process is gone, with --all).
    Down(DownArgs),
    /// List registered runs.
    List,
    /// Validate scenario files without starting anything.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check the host for what each target needs.
    Doctor {
        /// Only the prerequisites of this target.
        #[arg(long, value_enum)]
        target: Option<TargetKind>,
    },
    /// The virtual BMC on its own: serve a fleet from YAML, or load-test BMCs.
    #[command(subcommand)]
    Bmc(crate::bmc::cli::BmcCommand),
    /// The ephemeral environment (kernel + initramfs) the sim target boots.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Release qualification: run every cell of a matrix (or one partition
    /// of it), judge each against what it states, write a summary table and
    /// a fragment; `qualify merge` joins the fragments of many runners.
    Qualify(crate::run::qualify::command::QualifyArgs),
    /// The chart target's own commands (`chart check`).
    #[command(subcommand)]
    Chart(ChartCommand),
    /// Re-run exactly the scenario, seed and target a recorded run used.
    Repro {
        run_dir: PathBuf,
        #[arg(long)]
        keep: bool,
        #[arg(long, default_value = "runs")]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ChartCommand {
    /// Render the chart with the values a run passes; check the plan against it.
    Check(crate::run::chart_check::ChartCheckArgs),
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Build (or find in the cache) the ephemeral kernel + initramfs.
    Build {
        /// Cache directory (must be readable by libvirt-qemu, so not under /root).
        #[arg(long, default_value_os_t = crate::image::default_cache_dir())]
        cache: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
    #[command(flatten)]
    pub common: CommonRunArgs,
    /// Leave everything running after the run (tear down later with `down`).
    #[arg(long)]
    pub keep: bool,
    /// Print the plan and every action it would take; create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rewrite the golden snapshots with this run's results.
    #[arg(long)]
    pub update_snapshots: bool,
    /// Also write one JUnit file for every scenario of this invocation.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UpArgs {
    pub scenario: PathBuf,
    #[command(flatten)]
    pub common: CommonRunArgs,
}

#[derive(Args, Debug)]
pub struct DownArgs {
    /// The run to tear down (see `list`).
    #[arg(conflicts_with = "all", required_unless_present = "all")]
    pub run_id: Option<RunId>,
    /// Every registered run whose process is gone, and orphaned resources.
    #[arg(long)]
    pub all: bool,
    /// Also runs whose process is still alive (they are stopped first).
    #[arg(long)]
    pub force: bool,
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::PASSED
            };
            let _ = e.print();
            return code;
        }
    };
    crate::report::log::init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::HOST_NOT_READY;
        }
    };
    rt.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> i32 {
    match command {
        Command::Run(args) => run(args).await,
        Command::Up(args) => up(args).await,
        Command::Down(args) => down_cmd(args),
        Command::List => list(),
        Command::Validate { files } => validate(&files),
        Command::Doctor { target } => {
            let (text, ready) = crate::doctor::report(&crate::doctor::checks(), target);
            println!("{text}");
            if ready {
                exit::PASSED
            } else {
                exit::HOST_NOT_READY
            }
        }
        Command::Chart(ChartCommand::Check(args)) => {
            tokio::task::spawn_blocking(move || crate::run::chart_check::run(&args))
                .await
                .unwrap_or(exit::FAILED)
        }
        Command::Repro { run_dir, keep, out } => repro(run_dir, keep, out).await,
        Command::Qualify(args) => crate::run::qualify::command::run(args).await,
        Command::Bmc(cmd) => match crate::bmc::cli::run(cmd).await {
            Ok(()) => exit::PASSED,
            Err(e) => {
                eprintln!("error: {e:#}");
                exit::BAD_INPUT
            }
        },
        Command::Image(ImageCommand::Build { cache }) => {
            let spec = crate::image::ImageSpec::ephemeral();
            match tokio::task::spawn_blocking(move || crate::image::build(&spec, &cache)).await {
                Ok(Ok(img)) => {
                    println!(
                        "kernel {}\ninitrd {}\nhash   {}",
                        img.kernel.display(),
                        img.initrd.display(),
                        img.hash
                    );
                    exit::PASSED
                }
                Ok(Err(e)) => {
                    eprintln!("error: {e}");
                    exit::HOST_NOT_READY
                }
                Err(e) => {
                    eprintln!("error: the image build panicked: {e}");
                    exit::FAILED
                }
            }
        }
    }
}

/// Load every scenario first: one bad file means nothing starts.
fn load_all(files: &[PathBuf]) -> Result<Vec<scenario::LoadedScenario>, i32> {
    let mut loaded = Vec::new();
    let mut bad = false;
    for f in files {
        match scenario::load(f) {
            Ok(s) => loaded.push(s),
            Err(e) => {
                eprintln!("{e}");
                bad = true;
            }
        }
    }
    if bad {
        Err(exit::BAD_INPUT)
    } else {
        Ok(loaded)
    }
}

fn validate(files: &[PathBuf]) -> i32 {
    match load_all(files) {
        Ok(l) => {
            for s in l {
                println!(
                    "{}: ok ({} machines, {} steps, {} checks)",
                    s.path.display(),
                    s.machines().len() + s.scenario.fleet.as_ref().map_or(0, |f| f.count as usize),
                    s.scenario.steps.len(),
                    s.scenario.expect.len()
                );
            }
            exit::PASSED
        }
        Err(code) => code,
    }
}

fn print_dry_run(loaded: &scenario::LoadedScenario, opts: &RunOptions) -> i32 {
    let run_id = RunId::generate();
    let plan = match pipeline::plan_for(loaded, opts, &run_id) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    println!(
        "# dry run: {} on {} (run id {run_id}, seed {})",
        loaded.scenario.name, opts.target, opts.seed
    );
    println!("# nothing below was created");
    println!("--- plan");
    print!(
        "{}",
        serde_norway::to_string(&plan).expect("plan serialises")
    );
    println!("--- actions");
    for a in crate::run::dry_run::actions(&plan, &loaded.scenario, &opts.target_options) {
        println!("{a}");
    }
    exit::PASSED
}

async fn run(args: RunArgs) -> i32 {
    let loaded = match load_all(&args.scenarios) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let base = RunOptions {
        target: args.common.target,
        out_dir: args.common.out.clone(),
        seed: args.common.seed,
        run_id: None,
        keep: args.keep,
        update_snapshots: args.update_snapshots,
        hold: false,
        snapshots: true,
        target_options: target_options(&args.common),
    };
    for s in &loaded {
        if !s.scenario.targets.contains(&base.target) {
            eprintln!(
                "{}: scenario `{}` does not list target `{}` (it lists: {}); pick one with --target",
                s.path.display(),
                s.scenario.name,
                base.target,
                s.scenario
                    .targets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return exit::BAD_INPUT;
        }
    }
    if args.dry_run {
        return loaded
            .iter()
            .map(|s| print_dry_run(s, &base))
            .max()
            .unwrap_or(exit::PASSED);
    }
    // Flags the external target needs: checked before anything starts.
    for s in &loaded {
        if let Err(e) = pipeline::plan_for(s, &base, &RunId::generate()) {
            eprintln!("{}: {e}", s.path.display());
            return exit::BAD_INPUT;
        }
    }
    if base.target == TargetKind::External
        && let Err(e) = crate::targets::external::External::from_args(
            base.target_options.maas_url.as_deref(),
            base.target_options.api_key.as_deref(),
        )
    {
        eprintln!("error: {e}");
        return exit::BAD_INPUT;
    }
    if let Some(code) = host_ready(base.target) {
        return code;
    }
    let cancel = CancellationToken::new();
    install_signals(cancel.clone());
    let mut summaries = Vec::new();
    for s in &loaded {
        if cancel.is_cancelled() {
            break;
        }
        let reporters: Vec<Box<dyn Reporter>> = vec![Box::new(Progress::new())];
        match pipeline::execute(s, &base, &cancel, reporters).await {
            Ok(sum) => summaries.push(sum),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::BAD_INPUT;
            }
        }
    }
    finish(&summaries, args.junit.as_deref())
}

async fn up(args: UpArgs) -> i32 {
    let loaded = match load_all(std::slice::from_ref(&args.scenario)) {
        Ok(mut l) => l.remove(0),
        Err(code) => return code,
    };
    if let Some(code) = host_ready(args.common.target) {
        return code;
    }
    let opts = RunOptions {
        target: args.common.target,
        out_dir: args.common.out.clone(),
        seed: args.common.seed,
        run_id: None,
        keep: false,
        update_snapshots: false,
        hold: true,
        snapshots: false,
        target_options: target_options(&args.common),
    };
    let cancel = CancellationToken::new();
    install_signals(cancel.clone());
    match pipeline::execute(&loaded, &opts, &cancel, vec![Box::new(Progress::new())]).await {
        Ok(sum) if sum.teardown_failures.is_empty() && (sum.passed || sum.interrupted) => {
            exit::PASSED
        }
        Ok(sum) => sum.failure.map_or(exit::FAILED, |c| c.exit_code()),
        Err(e) => {
            eprintln!("error: {e}");
            exit::BAD_INPUT
        }
    }
}

fn down_cmd(args: DownArgs) -> i32 {
    let report = if args.all {
        down::down_all(args.force)
    } else {
        let mut r = down::DownReport::default();
        down::down_one(
            args.run_id
                .as_ref()
                .expect("clap requires a run id without --all"),
            &mut r,
        );
        r
    };
    for r in &report.removed {
        println!("removed  {r}");
    }
    for s in &report.skipped {
        println!("skipped  {s}");
    }
    for f in &report.failed {
        eprintln!("FAILED   {f}");
    }
    if report.failed.is_empty() {
        exit::PASSED
    } else {
        exit::FAILED
    }
}

fn list() -> i32 {
    let runs = state::registered_runs();
    if runs.is_empty() {
        println!("no registered runs");
    }
    for r in runs {
        match r {
            Ok(e) => {
                let alive = state::same_process_alive(e.pid, e.pid_start_time);
                println!(
                    "{}  {:<24} {:<8} pid {:<7} {:<8} {}",
                    e.run_id,
                    e.scenario,
                    e.target,
                    e.pid,
                    if alive { "running" } else { "gone" },
                    e.run_dir.display()
                );
            }
            Err(e) => eprintln!("unreadable registry entry: {e}"),
        }
    }
    exit::PASSED
}

async fn repro(run_dir: PathBuf, keep: bool, out: PathBuf) -> i32 {
    let record = match crate::run::record::read_record(&run_dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let loaded = match scenario::load(&record.scenario_path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: the recorded scenario cannot be loaded: {e}");
            return exit::BAD_INPUT;
        }
    };
    let now = crate::run::record::sha256_hex(loaded.source.as_bytes());
    if now != record.scenario_sha256 {
        eprintln!(
            "warning: {} changed since run {}; reproducing with the file as it is now",
            record.scenario_path.display(),
            record.run_id
        );
    }
    eprintln!(
        "reproducing run {} : scenario {}, target {}, seed {}",
        record.run_id, loaded.scenario.name, record.target, record.seed
    );
    let args = RunArgs {
        scenarios: vec![record.scenario_path.clone()],
        common: CommonRunArgs {
            target: record.target,
            out,
            seed: record.seed,
            maas_url: std::env::var("MAAS_URL").ok(),
            api_key: std::env::var("MAAS_API_KEY").ok(),
            lab_bridge: std::env::var("MAAS_E2E_LAB_BRIDGE").ok(),
            bmc_addresses: std::env::var("MAAS_E2E_BMC_ADDRESSES").ok(),
            chart: Default::default(),
            postgres: "local".into(),
            sim_profile: record.sim_profile,
        },
        keep,
        dry_run: false,
        update_snapshots: false,
        junit: None,
    };
    run(args).await
}
