//! Scenarios: the YAML a user writes, loaded and validated.
//!
//! Every error reads `file:line:col: path.to.field: what is wrong; what is
//! allowed`, and a scenario that fails validation starts nothing.

mod prune;
mod schema;
pub mod spans;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

pub use schema::*;
use spans::SpanIndex;

/// One problem in a scenario file, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    /// The field path, serde style: `machines[0].bmc.cipher_suites`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(document)"
        } else {
            &self.path
        };
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.col,
            path,
            self.message
        )
    }
}

/// Why a scenario cannot be used. Bad input: exit code 2, nothing started.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: cannot read scenario: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

impl ScenarioError {
    pub fn problems(&self) -> &[Problem] {
        match self {
            ScenarioError::Invalid(p) => p,
            ScenarioError::Read { .. } => &[],
        }
    }
}

/// A validated scenario and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedScenario {
    pub path: PathBuf,
    pub source: String,
    pub scenario: Scenario,
}

impl LoadedScenario {
    /// The machines after expanding `count`, in file order.
    pub fn machines(&self) -> Vec<Machine<'_>> {
        expand(&self.scenario.machines)
    }
}

/// One machine of a group: `NAME` when count is 1, else `NAME-1..NAME-N`.
#[derive(Debug, Clone)]
pub struct Machine<'a> {
    pub name: String,
    pub group: &'a MachineGroup,
    /// Index of the group in `machines`, for error paths.
    pub group_index: usize,
}

pub fn expand(groups: &[MachineGroup]) -> Vec<Machine<'_>> {
    let mut out = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        if g.count == 1 {
            out.push(Machine {
                name: g.name.clone(),
                group: g,
                group_index: gi,
            });
        } else {
            for i in 1..=g.count {
                out.push(Machine {
                    name: format!("{}-{i}", g.name),
                    group: g,
                    group_index: gi,
                });
            }
        }
    }
    out
}

/// Read, parse and validate a scenario file.
pub fn load(path: &Path) -> Result<LoadedScenario, ScenarioError> {
    let source = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &source)
}

/// Parse and validate scenario text; `path` is used in messages and for the
/// default name. Reports every problem it finds, in file order: what serde
/// refuses is cut out and the rest read again (see `prune`), then the checks
/// that need the whole scenario run on what is left.
pub fn parse(path: &Path, source: &str) -> Result<LoadedScenario, ScenarioError> {
    let spans = SpanIndex::build(source);
    let locate = |field: &str| spans.find(field).unwrap_or(spans::Pos { line: 1, col: 1 });
    let mut problems: Vec<Problem> = Vec::new();
    let mut pruned = prune::Pruned::default();
    // The document as a value, once a cut is needed; None until then.
    let mut cut_doc: Option<serde_norway::Value> = None;
    let mut scenario = loop {
        let text = match &cut_doc {
            None => std::borrow::Cow::Borrowed(source),
            Some(doc) => match serde_norway::to_string(doc) {
                Ok(t) => std::borrow::Cow::Owned(t),
                Err(_) => break None,
            },
        };
        // Steps, faults and checks are written as one-key maps (`power_on: a`),
        // not YAML tags.
        let de = serde_norway::Deserializer::from_str(&text);
        let e = match serde_norway::with::singleton_map_recursive::deserialize::<Scenario, _>(de) {
            Ok(s) => break Some(s),
            Err(e) => e,
        };
        let mut problem = serde_problem(path, &text, &e);
        let cut_path = problem.path.clone();
        if cut_doc.is_some() {
            // Located in the user's file, not in the re-read text.
            problem.path = pruned.original(&problem.path);
            let unknown = unknown_field(&problem.message);
            let at = match unknown {
                Some(f) if !problem.path.is_empty() => format!("{}.{f}", problem.path),
                Some(f) => f.to_string(),
                None => problem.path.clone(),
            };
            let pos = locate(&at);
            (problem.line, problem.col) = (pos.line, pos.col);
        }
        let consequence = cut_doc.is_some() && pruned.follows_from_cut(&problem.path);
        let unknown = unknown_field(&problem.message).map(str::to_string);
        if !consequence {
            problems.push(problem);
        }
        if cut_doc.is_none() {
            match serde_norway::from_str::<serde_norway::Value>(source) {
                Ok(doc) => cut_doc = Some(doc),
                Err(_) => break None, // not YAML: one problem is all there is
            }
        }
        let doc = cut_doc.as_mut().expect("set above");
        if problems.len() > 100 || !pruned.cut(doc, &cut_path, unknown.as_deref()) {
            break None;
        }
    };
    if let Some(scenario) = &mut scenario {
        if scenario.name.is_empty() {
            scenario.name = path
                .file_stem()
                .map(|s| {
                    s.to_string_lossy()
                        .trim_end_matches(".scenario")
                        .to_string()
                })
                .unwrap_or_default();
        }
        for (field, message) in validate(scenario) {
            let field = pruned.original(&field);
            // After a machine group was cut, its name is missing for a reason
            // already reported.
            let cut_names = pruned.machine_group_cut
                && (message.contains("is not in `machines`") || field == "machines");
            if pruned.follows_from_cut(&field) && cut_doc.is_some() || cut_names {
                continue;
            }
            let pos = locate(&field);
            problems.push(Problem {
                file: path.to_path_buf(),
                line: pos.line,
                col: pos.col,
                path: field,
                message,
            });
        }
    }
    match scenario {
        Some(scenario) if problems.is_empty() => Ok(LoadedScenario {
            path: path.to_path_buf(),
            source: source.to_string(),
            scenario,
        }),
        _ => {
            // File order, as a linter prints them; equal places keep their order.
            problems.sort_by_key(|p| (p.line, p.col));
            Err(ScenarioError::Invalid(problems))
        }
    }
}

/// `X` of serde's "unknown field `X`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split_once('`'))
        .map(|(f, _)| f)
}

fn serde_problem(path: &Path, source: &str, e: &serde_norway::Error) -> Problem {
    let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
    let mut text = e.to_string();
    // serde_norway appends " at line L column C"; the location leads instead.
    if let Some(cut) = text.rfind(" at line ") {
        text.truncate(cut);
    }
    let (field, message) = match text.split_once(": ") {
        Some((p, m)) if !p.contains(' ') || p.contains('[') => (p.to_string(), m.to_string()),
        _ => (String::new(), text.clone()),
    };
    let message = explain_serde(&message, source.is_empty());
    Problem {
        file: path.to_path_buf(),
        line,
        col,
        path: field,
        message,
    }
}

/// Make serde's wording say what is allowed where it does not already.
fn explain_serde(message: &str, empty: bool) -> String {
    if empty || message.starts_with("EOF while parsing") {
        return "the file is empty; allowed: a mapping with at least `machines`".into();
    }
    if message.starts_with("missing field") {
        return format!("{message}; it is required");
    }
    if message.starts_with("invalid type") || message.starts_with("invalid value") {
        return message
            .replacen(", expected ", "; allowed: ", 1)
            .replace("allowed: u32", "allowed: a whole number, 0 or more")
            .replace("allowed: u8", "allowed: a whole number from 0 to 255")
            .replace("allowed: enum Firmware", "allowed: `bios` or `uefi`")
            .replace(
                "allowed: enum NicModel",
                "allowed: one of `virtio`, `e1000`, `rtl8139`",
            )
            .replace(
                "allowed: enum IpmiVersions",
                "allowed: one of `1.5`, `2.0`, `both`",
            )
            .replace(
                "allowed: enum TargetKind",
                "allowed: one of `none`, `sim`, `chart`, `external`",
            )
            .replace("allowed: enum PowerState", "allowed: `on` or `off`");
    }
    if message.starts_with("unknown field") || message.starts_with("unknown variant") {
        return message.replacen(", expected ", "; allowed: ", 1);
    }
    if message.contains("while parsing")
        || message.contains("while scanning")
        || message.contains("did not find expected")
    {
        return format!(
            "not valid YAML: {message}; allowed: well-formed YAML (check indentation, quotes and brackets)"
        );
    }
    message.to_string()
}

const MAX_MACHINES: usize = 64;

/// A fleet's machines are BMCs only; 10,000 is the stretch figure.
pub const MAX_FLEET: u32 = 10_000;

fn check_fleet(f: &FleetSpec, maas_only: bool, err: &mut impl FnMut(String, String)) {
    if !valid_name(&f.name, 18) {
        err(
            "fleet.name".into(),
            format!(
                "`{}` is not a valid fleet name; allowed: lowercase letters, digits and `-`, starting with a letter, at most 18 characters",
                f.name
            ),
        );
    }
    if !(1..=MAX_FLEET).contains(&f.count) {
        err(
            "fleet.count".into(),
            format!("is {}; allowed: 1 to {MAX_FLEET}", f.count),
        );
    }
    for (field, share) in [("redfish", f.redfish), ("faulty", f.faulty)] {
        if !(0.0..=1.0).contains(&share) {
            err(
                format!("fleet.{field}"),
                format!("is {share}; allowed: a share from 0 to 1, e.g. 0.25"),
            );
        }
    }
    for (k, fault) in f.faults.iter().enumerate() {
        check_fault(fault, &format!("fleet.faults[{k}]"), err);
    }
    let mut shares = vec![("faulty", f.faulty)];
    if !(0.0..=1.0).contains(&f.never_powers_on) {
        err(
            "fleet.never_powers_on".into(),
            format!(
                "is {}; allowed: a share from 0 to 1, e.g. 0.1",
                f.never_powers_on
            ),
        );
    }
    shares.push(("never_powers_on", f.never_powers_on));
    if let Some(p) = &f.powers_off_after {
        if !(p.share > 0.0 && p.share <= 1.0) {
            err(
                "fleet.powers_off_after.share".into(),
                format!("is {}; allowed: more than 0, at most 1, e.g. 0.1", p.share),
            );
        }
        // MAAS's first re-check after a power-on is 4 s; an hour is far
        // beyond any run.
        if p.after.0 < std::time::Duration::from_secs(1)
            || p.after.0 > std::time::Duration::from_secs(3600)
        {
            err(
                "fleet.powers_off_after.after".into(),
                format!(
                    "is {}; allowed: from 1s to 1h, e.g. 30s",
                    humantime::format_duration(p.after.0)
                ),
            );
        }
        shares.push(("powers_off_after.share", p.share));
    }
    let total: f64 = shares.iter().map(|(_, x)| x).sum();
    if total > 1.0 + 1e-9 {
        err(
            "fleet".into(),
            format!(
                "the shares {} add up to {total}; allowed: at most 1 (a machine has one behaviour)",
                shares
                    .iter()
                    .map(|(n, x)| format!("{n} ({x})"))
                    .collect::<Vec<_>>()
                    .join(" + ")
            ),
        );
    }
    if maas_only {
        err(
            "fleet".into(),
            "needs a MAAS (machines are created through its API and polled by its rack), but `targets` is only `none`; allowed targets: sim, chart, external".into(),
        );
    }
}

/// Checks that need more than one field. Returns (path, message) pairs.
fn validate(s: &Scenario) -> Vec<(String, String)> {
    let mut errs: Vec<(String, String)> = Vec::new();
    let mut err = |p: String, m: String| errs.push((p, m));

    if !valid_name(&s.name, 48) {
        err(
            "name".into(),
            format!(
                "`{}` is not a valid scenario name; allowed: lowercase letters, digits and `-`, starting with a letter, at most 48 characters",
                s.name
            ),
        );
    }
    if s.targets.is_empty() {
        err(
            "targets".into(),
            "is empty; allowed: one or more of none, sim, chart, external".into(),
        );
    }
    if s.machines.is_empty() && s.fleet.is_none() {
        err(
            "machines".into(),
            "is empty; allowed: at least one machine group (or a `fleet`)".into(),
        );
    }
    let mut total = 0usize;
    for (i, g) in s.machines.iter().enumerate() {
        let at = |f: &str| format!("machines[{i}].{f}");
        if !valid_name(&g.name, 24) {
            err(
                at("name"),
                format!(
                    "`{}` is not a valid machine name; allowed: lowercase letters, digits and `-`, starting with a letter, at most 24 characters",
                    g.name
                ),
            );
        }
        if g.count == 0 {
            err(at("count"), "is 0; allowed: 1 to 64".into());
        }
        total += g.count as usize;
        if !(1..=8).contains(&g.vcpus) {
            err(at("vcpus"), format!("is {}; allowed: 1 to 8", g.vcpus));
        }
        if !(128..=16384).contains(&g.memory.mib()) {
            err(
                at("memory"),
                format!("is {}MiB; allowed: 128MiB to 16GiB", g.memory.mib()),
            );
        }
        if g.cpu.to_ascii_uppercase().contains("QEMU") || g.cpu == "host" || g.cpu == "max" {
            err(
                at("cpu"),
                format!(
                    "`{}` reports a QEMU model name, and MAAS skips IPMI autodetect on those; allowed: a named model such as Haswell-noTSX, Skylake-Client, Nehalem",
                    g.cpu
                ),
            );
        }
        if g.vm && g.nics.is_empty() {
            err(
                at("nics"),
                "is empty; allowed: 1 to 4 NICs (a VM boots from its first NIC)".into(),
            );
        }
        if g.nics.len() > 4 {
            err(
                at("nics"),
                format!("has {} NICs; allowed: 1 to 4", g.nics.len()),
            );
        }
        if g.disks.len() > 4 {
            err(
                at("disks"),
                format!("has {} disks; allowed: 0 to 4", g.disks.len()),
            );
        }
        for (d, disk) in g.disks.iter().enumerate() {
            if disk.size.mib() < 64 {
                err(
                    at(&format!("disks[{d}].size")),
                    format!("is {}MiB; allowed: at least 64MiB", disk.size.mib()),
                );
            }
        }
        let b = &g.bmc;
        let lan2 = b.ipmi != IpmiVersions::V15;
        if lan2 && b.cipher_suites.is_empty() {
            err(at("bmc.cipher_suites"), "is empty while the BMC accepts IPMI 2.0; allowed: a subset of 0, 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17".into());
        }
        let mut seen_suites = BTreeSet::new();
        for (k, suite) in b.cipher_suites.iter().enumerate() {
            if !SUPPORTED_SUITES.contains(suite) {
                err(
                    at(&format!("bmc.cipher_suites[{k}]")),
                    format!(
                        "suite {suite} is not supported; allowed: 0, 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17"
                    ),
                );
            } else if !seen_suites.insert(*suite) {
                err(
                    at(&format!("bmc.cipher_suites[{k}]")),
                    format!("suite {suite} is listed twice; allowed: each suite once"),
                );
            }
        }
        if b.credentials.username.is_empty() || b.credentials.username.len() > 16 {
            err(
                at("bmc.credentials.username"),
                "allowed: 1 to 16 characters (IPMI user names are 16 bytes)".into(),
            );
        }
        if let Some(p) = &b.credentials.password
            && (p.is_empty() || p.len() > 20)
        {
            err(
                at("bmc.credentials.password"),
                "allowed: 1 to 20 characters (IPMI passwords are 16 or 20 bytes)".into(),
            );
        }
        for (k, f) in b.faults.iter().enumerate() {
            check_fault(f, &at(&format!("bmc.faults[{k}]")), &mut err);
        }
    }
    if total > MAX_MACHINES {
        err(
            "machines".into(),
            format!("{total} machines in all; allowed: at most {MAX_MACHINES}"),
        );
    }

    let machines = expand(&s.machines);
    let mut names = BTreeSet::new();
    for m in &machines {
        if !names.insert(m.name.clone()) {
            err(
                format!("machines[{}].name", m.group_index),
                format!(
                    "machine name `{}` is used twice; allowed: unique names (a group with count N makes NAME-1..NAME-N)",
                    m.name
                ),
            );
        }
    }
    let maas_only = !s.targets.iter().any(|t| *t != TargetKind::None);
    let mut fleet_names = BTreeSet::new();
    if let Some(f) = &s.fleet {
        check_fleet(f, maas_only, &mut err);
        for i in 0..f.count.min(MAX_FLEET) {
            fleet_names.insert(f.machine_name(i));
        }
        if s.machines.iter().any(|g| g.name == f.name)
            || names.iter().any(|n| fleet_names.contains(n))
        {
            err(
                "fleet.name".into(),
                format!(
                    "`{}` is also a machine name in `machines`; allowed: a name of its own",
                    f.name
                ),
            );
        }
    }
    let in_fleet = |r: &MachineRef| {
        s.fleet
            .as_ref()
            .is_some_and(|f| f.name == r.0 || fleet_names.contains(&r.0))
    };
    let known = |r: &MachineRef| {
        r.0 == "all"
            || names.contains(&r.0)
            || s.machines.iter().any(|g| g.name == r.0)
            || in_fleet(r)
    };
    let unknown = |r: &MachineRef| {
        format!(
            "machine `{}` is not in `machines`; allowed: `all`, a group name, or one of {}",
            r.0,
            names.iter().cloned().collect::<Vec<_>>().join(", ")
        )
    };
    for (i, top) in s.steps.iter().enumerate() {
        let (step, at_prefix) = match top {
            Step::ExpectError(e) => {
                if let Err(re) = regex::Regex::new(&e.matches) {
                    err(format!("steps[{i}].expect_error.matches"), bad_regex(&re));
                }
                if matches!(*e.step, Step::ExpectError(_) | Step::Sleep(_)) {
                    err(
                        format!("steps[{i}].expect_error.step"),
                        "cannot fail; allowed: a power, commission, wait or fault step".into(),
                    );
                }
                (&*e.step, format!("steps[{i}].expect_error.step"))
            }
            other => (other, format!("steps[{i}]")),
        };
        let at = |f: &str| format!("{at_prefix}.{f}");
        let (field, r) = match step {
            Step::PowerOn(r) => ("power_on", Some(r)),
            Step::PowerOff(r) => ("power_off", Some(r)),
            Step::PowerCycle(r) => ("power_cycle", Some(r)),
            Step::Commission(r) => ("commission", Some(r)),
            Step::CreateMachine(r) => ("create_machine", Some(r)),
            Step::PowerFraction(p) => ("power_fraction.machine", Some(&p.machine)),
            Step::WaitPowerKnown(w) => ("wait_power_known.machine", Some(&w.machine)),
            Step::WaitPowerSettled(w) => ("wait_power_settled.machine", Some(&w.machine)),
            Step::ClearFaults(r) => ("clear_faults", Some(r)),
            Step::WaitStatus(w) => ("wait_status.machine", Some(&w.machine)),
            Step::WaitPower(w) => ("wait_power.machine", Some(&w.machine)),
            Step::InjectFault(f) => ("inject_fault.machine", Some(&f.machine)),
            Step::Sleep(_) => ("sleep", None),
            Step::ExpectError(_) => ("expect_error", None),
            Step::PressPowerButton(r) => ("press_power_button", Some(r)),
            Step::UploadScript(_) => ("upload_script", None),
        };
        if let Some(r) = r
            && !known(r)
        {
            err(at(field), unknown(r));
        }
        match step {
            Step::Commission(_)
            | Step::CreateMachine(_)
            | Step::WaitStatus(_)
            | Step::UploadScript(_)
            | Step::PowerFraction(_)
            | Step::WaitPowerKnown(_)
            | Step::WaitPowerSettled(_)
                if maas_only =>
            {
                err(at_prefix.clone(), "needs a MAAS, but `targets` is only `none`; allowed here: power_on, power_off, power_cycle, press_power_button, wait_power, inject_fault, clear_faults, sleep".into());
            }
            Step::WaitStatus(w) if w.timeout.0.is_zero() => err(
                at("wait_status.timeout"),
                "is zero; allowed: a positive duration such as 5m".into(),
            ),
            Step::WaitPower(w) if w.timeout.0.is_zero() => err(
                at("wait_power.timeout"),
                "is zero; allowed: a positive duration such as 30s".into(),
            ),
            Step::InjectFault(f) => check_fault(&f.fault, &at("inject_fault.fault"), &mut err),
            Step::UploadScript(u) => check_upload_script(u, &at("upload_script"), &mut err),
            _ => {}
        }
        if let Step::PowerFraction(p) = step {
            if !(p.fraction > 0.0 && p.fraction <= 1.0) {
                err(
                    at("power_fraction.fraction"),
                    format!("is {}; allowed: more than 0, at most 1", p.fraction),
                );
            }
            if p.timeout.0.is_zero() {
                err(
                    at("power_fraction.timeout"),
                    "is zero; allowed: a positive duration such as 2m".into(),
                );
            }
        }
        match step {
            Step::WaitPowerKnown(w) if w.timeout.0.is_zero() => err(
                at("wait_power_known.timeout"),
                "is zero; allowed: a positive duration such as 5m".into(),
            ),
            Step::WaitPowerSettled(w) if w.timeout.0.is_zero() => err(
                at("wait_power_settled.timeout"),
                "is zero; allowed: a positive duration such as 2m".into(),
            ),
            _ => {}
        }
    }
    check_power_types(s, &machines, maas_only, &mut err);
    for (i, e) in s.expect.iter().enumerate() {
        let at = |f: &str| format!("expect[{i}].{f}");
        match e {
            Expectation::Machine(c) => {
                if in_fleet(&c.machine) {
                    err(
                        at("machine.machine"),
                        format!(
                            "`{}` is in the fleet, which the result summarises; allowed: a machine of `machines` (the fleet's summary is in the snapshot)",
                            c.machine.0
                        ),
                    );
                } else if !known(&c.machine) {
                    err(at("machine.machine"), unknown(&c.machine));
                }
                if let Want::Matches(re) = &c.want
                    && let Err(e) = regex::Regex::new(re)
                {
                    err(at("machine.matches"), bad_regex(&e));
                }
            }
            Expectation::Events(c) => {
                if !known(&c.machine) {
                    err(at("events.machine"), unknown(&c.machine));
                }
                if c.subsequence.is_empty() {
                    err(
                        at("events.subsequence"),
                        "is empty; allowed: one or more event descriptions".into(),
                    );
                }
            }
            Expectation::BmcTranscript(c) => {
                if !known(&c.machine) {
                    err(at("bmc_transcript.machine"), unknown(&c.machine));
                }
            }
            Expectation::Api(c) => {
                if let Want::Matches(re) = &c.want
                    && let Err(e) = regex::Regex::new(re)
                {
                    err(at("api.matches"), bad_regex(&e));
                }
            }
            Expectation::HttpHeaderAbsent(_) => {}
        }
    }
    errs
}

/// An uploaded script: a name MAAS 2.8 takes (forms/script.py: not
/// "none", not a number, nothing a shell quotes) that is also a file name
/// in the guest, and some content.
fn check_upload_script(u: &UploadScript, at: &str, err: &mut impl FnMut(String, String)) {
    let name = &u.name;
    let allowed = "allowed: letters, digits and `_ . + -`, not starting with `.`, not `none`, not only digits, e.g. 99-my-check";
    let name_ok = !name.is_empty()
        && !name.starts_with('.')
        && !name.eq_ignore_ascii_case("none")
        && !name.chars().all(|c| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c));
    if !name_ok {
        err(
            format!("{at}.name"),
            format!("`{name}` is not a script name; {allowed}"),
        );
    }
    if u.script.trim().is_empty() {
        err(
            format!("{at}.script"),
            "is empty; allowed: a script, its first line `#!` and an interpreter, e.g. #!/bin/sh"
                .into(),
        );
    } else if !u.script.starts_with("#!") {
        err(
            format!("{at}.script"),
            "has no `#!` line; allowed: a script whose first line names its interpreter, e.g. #!/bin/sh".into(),
        );
    }
}

/// A machine MAAS drives through Redfish needs a MAAS, and a
/// `create_machine` step that gives MAAS the power type (2.8 cannot
/// detect Redfish from inside the machine).
fn check_power_types(
    s: &Scenario,
    machines: &[Machine<'_>],
    maas_only: bool,
    err: &mut impl FnMut(String, String),
) {
    let created: Vec<&str> = s
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::CreateMachine(r) => Some(r.0.as_str()),
            Step::ExpectError(e) => match &*e.step {
                Step::CreateMachine(r) => Some(r.0.as_str()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let mut reported = BTreeSet::new();
    for m in machines {
        if m.group.power_type != PowerType::Redfish || !reported.insert(m.group_index) {
            continue;
        }
        let at = format!("machines[{}].power_type", m.group_index);
        if maas_only {
            err(at, "is redfish, which needs a MAAS to drive it, but `targets` is only `none`; allowed here: ipmi (the harness drives BMCs with ipmipower)".into());
            continue;
        }
        let creates = |m: &Machine<'_>| {
            created
                .iter()
                .any(|r| *r == "all" || *r == m.name || *r == m.group.name)
        };
        if let Some(missing) = machines
            .iter()
            .filter(|x| x.group_index == m.group_index)
            .find(|x| !creates(x))
        {
            err(
                at,
                format!(
                    "is redfish, but no `create_machine` step creates `{}` (MAAS 2.8 cannot detect Redfish from inside a machine); allowed: add `create_machine: {}` before its first power step, or power_type ipmi",
                    missing.name, m.group.name
                ),
            );
        }
    }
}

fn check_fault(f: &Fault, at: &str, err: &mut impl FnMut(String, String)) {
    match f {
        Fault::RefuseCipherSuite { suite } if !SUPPORTED_SUITES.contains(suite) => {
            err(
                format!("{at}.refuse_cipher_suite.suite"),
                format!(
                    "suite {suite} is not supported; allowed: 0, 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17"
                ),
            );
        }
        Fault::DropEveryNth { n } if *n < 2 => {
            err(
                format!("{at}.drop_every_nth.n"),
                format!("is {n}; allowed: 2 or more (1 would drop everything: use no_answer)"),
            );
        }
        Fault::FailCommand { times, .. } if *times == 0 => {
            err(
                format!("{at}.fail_command.times"),
                "is 0; allowed: 1 or more".into(),
            );
        }
        Fault::FailCommand {
            completion_code, ..
        } if *completion_code == 0 => {
            err(
                format!("{at}.fail_command.completion_code"),
                "is 0 (success); allowed: a non-zero IPMI completion code such as 0xC0 or 0xFF"
                    .into(),
            );
        }
        _ => {}
    }
}

fn bad_regex(e: &regex::Error) -> String {
    let why = e.to_string();
    let why = why
        .lines()
        .last()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    format!("is not a valid regular expression ({why}); allowed: a Rust regex, e.g. `^Ready$`")
}

fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty()
        && name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}
