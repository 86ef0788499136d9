//! Golden snapshots beside the scenario: `scenarios/NAME.TARGET.snap`, in
//! insta's file format, so `cargo insta review` accepts or rejects the
//! `.snap.new` a mismatch leaves.

use std::path::{Path, PathBuf};

use similar::TextDiff;

use super::events::Outcome;

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
