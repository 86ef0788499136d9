//! Golden snapshots beside the scenario: `scenarios/NAME.TARGET.snap`
//! (TARGET `sim-3.6` for the sim's 3.6 profile: `target_label`), in
//! insta's file format, so `cargo insta review` accepts or rejects the
//! `.snap.new` a mismatch leaves.

use std::path::{Path, PathBuf};

use similar::TextDiff;

use super::events::Outcome;
use crate::scenario::{SimProfile, TargetKind};

/// The TARGET part of a golden's name: the target, with the sim profile
/// when it is not the default (`sim-3.6`), so each profile has its goldens
/// and the 2.8 files keep their names.
pub fn target_label(target: TargetKind, profile: SimProfile) -> String {
    if target == TargetKind::Sim && !profile.is_default() {
        format!("{target}-{profile}")
    } else {
        target.to_string()
    }
}

pub fn snapshot_path(scenario_path: &Path, name: &str, target: &str) -> PathBuf {
    let dir = scenario_path.parent().unwrap_or(Path::new("."));
    dir.join(format!("{name}.{target}.snap"))
}

fn render(scenario_path: &Path, body: &str) -> String {
    format!(
        "---\nsource: {}\nexpression: result\n---\n{}",
        scenario_path.display(),
        if body.ends_with('\n') {
            body.to_string()
        } else {
            format!("{body}\n")
        }
    )
}

/// The body of an insta snapshot file (after the second `---`).
pub fn body(contents: &str) -> &str {
    let rest = contents.strip_prefix("---\n").unwrap_or(contents);
    match rest.find("\n---\n") {
        Some(i) => &rest[i + 5..],
        None => contents,
    }
}

/// Compare `actual` with the golden; write it with `update`, else leave a
/// `.snap.new` on mismatch. Returns the outcome with a readable diff.
pub fn compare(scenario_path: &Path, snap: &Path, actual: &str, update: bool) -> Outcome {
    let pending = PathBuf::from(format!("{}.new", snap.display()));
    if update {
        let _ = std::fs::remove_file(&pending);
        return match std::fs::write(snap, render(scenario_path, actual)) {
            Ok(()) => Outcome::Passed,
            Err(e) => Outcome::Failed(format!("{}: cannot write snapshot: {e}", snap.display())),
        };
    }
    let golden = match std::fs::read_to_string(snap) {
        Ok(g) => g,
        Err(_) => {
            let _ = std::fs::write(&pending, render(scenario_path, actual));
            return Outcome::Failed(format!(
                "{} does not exist; the result is in {} (accept it with `cargo insta review` or `--update-snapshots`)",
                snap.display(),
                pending.display()
            ));
        }
    };
    let expected = body(&golden);
    if expected.trim_end() == actual.trim_end() {
        let _ = std::fs::remove_file(&pending);
        return Outcome::Passed;
    }
    let _ = std::fs::write(&pending, render(scenario_path, actual));
    let diff = TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header(&snap.display().to_string(), "this run")
        .to_string();
    Outcome::Failed(format!(
        "snapshot {} differs (review with `cargo insta review` or rerun with --update-snapshots):\n{diff}",
        snap.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_non_default_sim_profile_changes_the_golden_name() {
        let p = Path::new("scenarios/enlist-bios.yaml");
        let name = |t, profile| snapshot_path(p, "enlist-bios", &target_label(t, profile));
        assert_eq!(
            name(TargetKind::Sim, SimProfile::Maas28),
            Path::new("scenarios/enlist-bios.sim.snap")
        );
        assert_eq!(
            name(TargetKind::Sim, SimProfile::Maas36),
            Path::new("scenarios/enlist-bios.sim-3.6.snap")
        );
        assert_eq!(
            name(TargetKind::Chart, SimProfile::Maas36),
            Path::new("scenarios/enlist-bios.chart.snap")
        );
    }
}
