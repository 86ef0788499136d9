//! `maas-e2e qualify` and `qualify merge`: flags, and the order things
//! happen in (everything checked before anything starts; a fragment written
//! on every exit path that ran cells).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use super::fragment::{self, MatrixRef};
use super::list;
use super::partition::{MAX_PARTITIONS, Partition, cells_of};
use crate::exit;
use crate::report::progress::Progress;
use crate::run::batch::{self, CommonRunArgs};
use crate::run::pipeline::{self, RunOptions};
use crate::run::record::sha256_hex;
use crate::run::state;
use crate::scenario;
use crate::targets::chart::pin::ChartMeta;
use crate::targets::chart::qualification::{
    Matrix, Summary, parse_matrix, render_markdown, summarize,
};

/// `qualify`: run a matrix (or one partition of it), or list it.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct QualifyArgs {
    #[command(subcommand)]
    pub command: Option<QualifyCommand>,
    /// The matrix (ci/qualification/matrix.yaml, ci/qualification/sim-matrix.yaml).
    #[arg(long, required = true)]
    pub matrix: Option<PathBuf>,
    /// Print the cells (id, pin, axes, expected outcome, partition) as a
    /// JSON `include` list for a CI's job matrix; run nothing.
    #[arg(long, conflicts_with = "list_partitions")]
    pub list: bool,
    /// With --list: the partition of N each cell falls in.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "list",
          value_parser = clap::value_parser!(u32).range(1..=MAX_PARTITIONS as i64))]
    pub partitions: u32,
    /// Print one JSON `include` entry per partition of N (`partition`,
    /// `cells`): the job matrix of N runners; run nothing.
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=MAX_PARTITIONS as i64))]
    pub list_partitions: Option<u32>,
    /// Run only this share of the cells (I of N, 1-based): the same split on
    /// every machine. Default: all cells (1/1).
    #[arg(long, value_name = "I/N")]
    pub partition: Option<Partition>,
    /// The commit under test, recorded in the fragment (default: `git
    /// rev-parse HEAD` in the working directory).
    #[arg(long, env = "MAAS_E2E_COMMIT", value_name = "SHA")]
    pub commit: Option<String>,
    /// The chart checkout for a pin of the matrix (repeatable), e.g.
    /// `--pin-chart 3.6=../sut/airship-maas-3.6/charts/maas`. `--chart` serves
    /// the pin its Chart.yaml names.
    #[arg(long = "pin-chart", value_name = "PIN=PATH")]
    pub pin_chart: Vec<String>,
    #[command(flatten)]
    pub common: CommonRunArgs,
    /// Also write one JUnit file: the runs' suites and one testcase per cell.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the summary table (Markdown) here.
    #[arg(long)]
    pub summary: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum QualifyCommand {
    /// Join the fragments of every partition (DIR and the directories right
    /// below it) into one summary and one JUnit file.
    Merge(MergeArgs),
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Directories holding `qualify-fragment-*.json` and their JUnit files.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Write the joined JUnit file here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write the summary table (Markdown) here.
    #[arg(long)]
    pub summary: Option<PathBuf>,
}

pub async fn run(args: QualifyArgs) -> i32 {
    match args.command {
        Some(QualifyCommand::Merge(m)) => merge(&m),
        None => qualify(args).await,
    }
}

/// Read the matrix and its identity (the file's SHA-256 and text).
fn read_matrix(path: &Path) -> Result<(Matrix, MatrixRef), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let m = parse_matrix(&path.display().to_string(), &text).map_err(|e| e.to_string())?;
    let r = MatrixRef {
        file: path.display().to_string(),
        suite: m.suite.clone(),
        sha256: sha256_hex(text.as_bytes()),
        text,
    };
    Ok((m, r))
}

/// `--commit`, else the working directory's `git rev-parse HEAD`.
fn resolve_commit(given: Option<&str>) -> Result<String, String> {
    if let Some(c) = given {
        let c = c.trim();
        if c.is_empty() || c.chars().any(char::is_whitespace) {
            return Err(format!("--commit {c:?}: allowed: a commit id (no spaces)"));
        }
        return Ok(c.to_string());
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .map_err(|e| format!("no commit: `git rev-parse HEAD` cannot run ({e}); pass --commit SHA (or MAAS_E2E_COMMIT)"))?;
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || sha.is_empty() {
        return Err(
            "no commit: not inside a git checkout; pass --commit SHA (or MAAS_E2E_COMMIT)".into(),
        );
    }
    Ok(sha)
}

/// The chart directory of each pin the selected cells need.
fn charts_for_pins(args: &QualifyArgs, pins: &[&str]) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut map = BTreeMap::new();
    for spec in &args.pin_chart {
        let Some((pin, path)) = spec.split_once('=') else {
            return Err(format!(
                "--pin-chart {spec:?}: allowed: PIN=PATH, e.g. 2.8=CHECKOUT/charts/maas"
            ));
        };
        map.insert(pin.to_string(), PathBuf::from(path));
    }
    if let Some(chart) = &args.common.chart.chart {
        // --chart serves the pin its own Chart.yaml names.
        let meta = ChartMeta::read(chart).map_err(|e| e.to_string())?;
        map.entry(meta.pin.label().to_string())
            .or_insert_with(|| chart.clone());
    }
    for pin in pins {
        if !map.contains_key(*pin) {
            return Err(format!(
                "the cells of this partition need pin {pin}, and no chart is given for it; allowed: --pin-chart {pin}=PATH, or --chart PATH of a chart whose Chart.yaml is that pin"
            ));
        }
    }
    Ok(map)
}

/// The rows of the cells this runner ran (a partition's own table).
fn only(summary: &Summary, ids: &[String]) -> Summary {
    let rows: Vec<_> = summary
        .rows
        .iter()
        .filter(|r| ids.contains(&r.cell))
        .cloned()
        .collect();
    Summary {
        suite: summary.suite.clone(),
        qualified: rows
            .iter()
            .all(|r| r.verdict == crate::targets::chart::qualification::Verdict::AsExpected),
        rows,
    }
}

async fn qualify(args: QualifyArgs) -> i32 {
    let matrix_path = args.matrix.clone().expect("clap requires --matrix");
    let (matrix, mref) = match read_matrix(&matrix_path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    if args.list {
        println!("{:#}", list::cells_json(&matrix, args.partitions));
        return exit::PASSED;
    }
    if let Some(n) = args.list_partitions {
        println!("{:#}", list::partitions_json(&matrix, n));
        return exit::PASSED;
    }
    let common = &args.common;
    if matrix.target != common.target.to_string() {
        eprintln!(
            "error: {}: field `target` = {:?}, but --target {}: the cells' expected outcomes hold on target {} only",
            matrix_path.display(),
            matrix.target,
            common.target,
            matrix.target
        );
        return exit::BAD_INPUT;
    }
    // Each cell states the MAAS it holds for (the sim's profile axis, else
    // the default 2.8): one flag for every cell would make them lie.
    if let Some(profile) = common.sim_profile {
        eprintln!(
            "error: --sim-profile {profile}: not allowed with qualify; {} states each cell's profile (axis `profile`, override `sim.profile`; none: 2.8)",
            matrix_path.display()
        );
        return exit::BAD_INPUT;
    }
    let part = args.partition.unwrap_or(Partition::WHOLE);
    let commit = match resolve_commit(args.commit.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let base = match scenario::load(Path::new(&matrix.base_scenario)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{}: base_scenario: {e}", matrix_path.display());
            return exit::BAD_INPUT;
        }
    };
    // Every cell's scenario first (not only this partition's): a bad
    // override stops every runner alike, before anything starts.
    let mut scenarios = BTreeMap::new();
    for cell in &matrix.cells {
        match super::cell_scenario(&base, &matrix, cell) {
            Ok(s) => {
                scenarios.insert(cell.id.clone(), s);
            }
            Err(e) => {
                eprintln!("{}: {e}", matrix_path.display());
                return exit::BAD_INPUT;
            }
        }
    }
    let mine = cells_of(&matrix, part);
    let mut pins: Vec<&str> = mine.iter().filter_map(|c| c.pin.as_deref()).collect();
    pins.sort_unstable();
    pins.dedup();
    let charts = if pins.is_empty() {
        BTreeMap::new()
    } else {
        match charts_for_pins(&args, &pins) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::BAD_INPUT;
            }
        }
    };
    if let Some(code) = batch::host_ready(common.target) {
        return code;
    }
    // Each pin's chart really is that pin (its Chart.yaml says so).
    for (pin, path) in &charts {
        match ChartMeta::read(path) {
            Ok(meta) if meta.pin.label() == pin => {}
            Ok(meta) => {
                eprintln!(
                    "error: --pin-chart {pin}={}: its Chart.yaml is version {} (pin {}); allowed: a chart of pin {pin}",
                    path.display(),
                    meta.version,
                    meta.pin.label()
                );
                return exit::BAD_INPUT;
            }
            Err(e) => {
                eprintln!("error: --pin-chart {pin}: {e}");
                return exit::BAD_INPUT;
            }
        }
    }
    eprintln!(
        "qualify {}: partition {part}: {} of {} cells: {}",
        matrix.suite,
        mine.len(),
        matrix.cells.len(),
        mine.iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let opts = RunOptions {
        target: common.target,
        out_dir: common.out.clone(),
        seed: common.seed,
        run_id: None,
        keep: false,
        update_snapshots: false,
        hold: false,
        snapshots: false,
        target_options: batch::target_options(common),
    };
    let cancel = CancellationToken::new();
    batch::install_signals(cancel.clone());
    let mut summaries = Vec::new();
    let mut results = Vec::new();
    for cell in &mine {
        if cancel.is_cancelled() {
            break;
        }
        let mut opts = opts.clone();
        if let Some(pin) = &cell.pin {
            opts.target_options.chart.chart = charts.get(pin).cloned();
        }
        let s = &scenarios[&cell.id];
        match pipeline::execute(s, &opts, &cancel, vec![Box::new(Progress::new())]).await {
            Ok(sum) => {
                results.push(super::cell_result(cell, &sum));
                summaries.push(sum);
            }
            Err(e) => {
                eprintln!("error: cell {}: {e}", cell.id);
                return exit::BAD_INPUT;
            }
        }
    }
    let _ = batch::finish(&summaries, None);
    let ids: Vec<String> = mine.iter().map(|c| c.id.clone()).collect();
    let judged = only(&summarize(&matrix, &results), &ids);
    let table = render_markdown(&judged);
    println!("{table}");
    let runs_junit = crate::report::junit::junit_xml(
        &summaries
            .iter()
            .map(|s| crate::report::junit::SuiteInput {
                name: s.suite.clone(),
                events: &s.events,
                redactor: &s.redactor,
            })
            .collect::<Vec<_>>(),
    );
    let frag = fragment::fragment(
        mref,
        &matrix,
        &commit,
        &common.target.to_string(),
        part,
        &results,
    );
    let (frag_name, junit_name) = fragment::file_names(part);
    let mut wrote = Vec::new();
    let mut write = |path: PathBuf, bytes: Vec<u8>| match state::write_atomic(&path, &bytes) {
        Ok(()) => wrote.push(path),
        Err(e) => eprintln!("error: {e}"),
    };
    write(
        common.out.join(&junit_name),
        runs_junit.clone().into_bytes(),
    );
    write(
        common.out.join(&frag_name),
        serde_json::to_vec_pretty(&frag).expect("fragment serialises"),
    );
    if let Some(p) = &args.junit {
        match fragment::join_junit(&[(junit_name.clone(), runs_junit)], &judged) {
            Ok(x) => write(p.clone(), x.into_bytes()),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    if let Some(p) = &args.summary {
        write(p.clone(), table.clone().into_bytes());
    }
    let wanted = 2 + usize::from(args.junit.is_some()) + usize::from(args.summary.is_some());
    eprintln!(
        "fragment: {} (merge with `maas-e2e qualify merge DIR...`)",
        common.out.join(&frag_name).display()
    );
    if summaries.iter().any(|s| s.interrupted) || cancel.is_cancelled() {
        exit::INTERRUPTED
    } else if wrote.len() < wanted {
        exit::FAILED
    } else if judged.qualified {
        exit::PASSED
    } else {
        exit::FAILED
    }
}

fn merge(args: &MergeArgs) -> i32 {
    let joined = fragment::find_fragments(&args.dirs)
        .and_then(|paths| fragment::load(&paths))
        .and_then(|loaded| {
            let merged = fragment::merge(&loaded.fragments)?;
            let parts: Vec<(String, String)> = loaded
                .fragments
                .iter()
                .map(|(p, _)| (p.display().to_string(), loaded.junit[p].clone()))
                .collect();
            let junit = fragment::join_junit(&parts, &merged.summary)?;
            Ok((loaded.fragments.len(), merged, junit))
        });
    let (count, merged, junit) = match joined {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: qualify merge: {e}");
            return exit::BAD_INPUT;
        }
    };
    let table = render_markdown(&merged.summary);
    println!("{table}");
    eprintln!(
        "merged {count} fragments of {} at commit {}",
        merged.matrix.suite, merged.commit
    );
    let mut ok = true;
    for (path, bytes) in [
        (&args.junit, junit.as_bytes()),
        (&args.summary, table.as_bytes()),
    ] {
        if let Some(p) = path
            && let Err(e) = state::write_atomic(p, bytes)
        {
            eprintln!("error: {e}");
            ok = false;
        }
    }
    if ok && merged.summary.qualified {
        exit::PASSED
    } else {
        exit::FAILED
    }
}
