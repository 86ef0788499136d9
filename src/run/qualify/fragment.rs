//! What one qualification runner leaves behind (a summary fragment beside
//! its JUnit file), and `qualify merge`: the fragments of every partition
//! joined into the summary and JUnit one runner would have written.
//!
//! A fragment names its matrix by the file's SHA-256 and carries the file's
//! text, so the merge needs nothing but the fragments, and refuses to join
//! runs of different matrices or commits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Serialize};

use super::partition::{Partition, cells_of};
use crate::run::record::sha256_hex;
use crate::targets::chart::qualification::{
    CellResult, Matrix, Summary, Verdict, parse_matrix, summarize,
};

/// The fragment format; a merge refuses any other.
pub const FORMAT: u32 = 1;
/// Fragment files are named `qualify-fragment-I-of-N.json`.
pub const FRAGMENT_PREFIX: &str = "qualify-fragment-";

/// The matrix a fragment was run from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixRef {
    /// The path given to `--matrix` (for messages only).
    pub file: String,
    pub suite: String,
    /// SHA-256 of the file's bytes: what identifies the matrix.
    pub sha256: String,
    /// The file itself, so a merge can judge without a checkout.
    pub text: String,
}

/// One cell of the partition: what it did (`result`), or that it never ran
/// (interrupted), with the outcome in words as the summary shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FragmentCell {
    pub id: String,
    pub expect: String,
    /// `pass`, `fail at STEP` or `(no result)`.
    pub outcome: String,
    pub as_expected: bool,
    pub result: Option<CellResult>,
}

/// A runner's summary fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fragment {
    pub format: u32,
    pub matrix: MatrixRef,
    pub commit: String,
    pub target: String,
    pub partition: Partition,
    /// The JUnit file of this partition's runs, beside the fragment.
    pub junit: String,
    pub cells: Vec<FragmentCell>,
}

/// File names of a partition's fragment and JUnit file.
pub fn file_names(p: Partition) -> (String, String) {
    (
        format!("{FRAGMENT_PREFIX}{}.json", p.file_tag()),
        format!("qualify-junit-{}.xml", p.file_tag()),
    )
}

/// The fragment of partition `p` from the results its runner got.
pub fn fragment(
    matrix: MatrixRef,
    m: &Matrix,
    commit: &str,
    target: &str,
    p: Partition,
    results: &[CellResult],
) -> Fragment {
    let ids: Vec<String> = cells_of(m, p).iter().map(|c| c.id.clone()).collect();
    let summary = summarize(m, results);
    let cells = summary
        .rows
        .iter()
        .filter(|r| ids.contains(&r.cell))
        .map(|r| FragmentCell {
            id: r.cell.clone(),
            expect: r.expected.clone(),
            outcome: r.actual.clone(),
            as_expected: r.verdict == Verdict::AsExpected,
            result: results.iter().rev().find(|x| x.cell == r.cell).cloned(),
        })
        .collect();
    Fragment {
        format: FORMAT,
        matrix,
        commit: commit.to_string(),
        target: target.to_string(),
        partition: p,
        junit: file_names(p).1,
        cells,
    }
}

/// Fragments that cannot be joined: each names the file(s) and the cell.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    #[error("{0}: no {FRAGMENT_PREFIX}*.json here or one directory below")]
    NoFragments(String),
    #[error("{file}: {detail}")]
    Unreadable { file: String, detail: String },
    #[error("{file}: field `format` = {found}: allowed: {FORMAT}")]
    Format { file: String, found: u32 },
    /// `theirs` and `ours`: the matrix file and its SHA-256, in words.
    #[error(
        "{file}: matrix {theirs} is not the matrix of {first} ({ours}): fragments of different matrices"
    )]
    OtherMatrix {
        file: String,
        theirs: String,
        first: String,
        ours: String,
    },
    #[error("{file}: field `matrix.text` does not hash to `matrix.sha256` {sha256}")]
    Tampered { file: String, sha256: String },
    #[error(
        "{file}: commit {theirs} is not the commit of {first} ({ours}): fragments of different commits"
    )]
    OtherCommit {
        file: String,
        theirs: String,
        first: String,
        ours: String,
    },
    #[error("{file}: field `target` = {theirs:?}, but {first} ran target {ours:?}")]
    OtherTarget {
        file: String,
        theirs: String,
        first: String,
        ours: String,
    },
    #[error(
        "{file}: partition {partition} holds cells {found:?}, but that partition of the matrix is {want:?}"
    )]
    WrongCells {
        file: String,
        partition: Partition,
        found: Vec<String>,
        want: Vec<String>,
    },
    #[error("cell {cell} is in two fragments: {first} and {second}")]
    Doubled {
        cell: String,
        first: String,
        second: String,
    },
    #[error(
        "cells missing from every fragment: {}",
        .0.iter().map(|(c, p)| format!("{c} (partition {p})")).collect::<Vec<_>>().join(", ")
    )]
    Missing(Vec<(String, Partition)>),
    #[error("{file}: {detail}")]
    Junit { file: String, detail: String },
}

/// Every `qualify-fragment-*.json` in each directory and the directories
/// right below it (a CI's artifact download puts each runner's in its own).
pub fn find_fragments(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, MergeError> {
    let mut found = Vec::new();
    for dir in dirs {
        let before = found.len();
        let mut scan = vec![dir.clone()];
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut subs: Vec<PathBuf> = rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            subs.sort();
            scan.extend(subs);
        } else {
            return Err(MergeError::Unreadable {
                file: dir.display().to_string(),
                detail: "not a readable directory".into(),
            });
        }
        for d in scan {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut here: Vec<PathBuf> = rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(FRAGMENT_PREFIX) && n.ends_with(".json"))
                })
                .collect();
            here.sort();
            found.extend(here);
        }
        if found.len() == before {
            return Err(MergeError::NoFragments(dir.display().to_string()));
        }
    }
    Ok(found)
}

/// The fragments read, each with its path; JUnit texts by fragment path.
pub struct Loaded {
    pub fragments: Vec<(PathBuf, Fragment)>,
    pub junit: BTreeMap<PathBuf, String>,
}

/// Read the fragment files and the JUnit file each names (beside it).
pub fn load(paths: &[PathBuf]) -> Result<Loaded, MergeError> {
    let mut fragments = Vec::new();
    let mut junit = BTreeMap::new();
    for p in paths {
        let unreadable = |detail: String| MergeError::Unreadable {
            file: p.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(p).map_err(|e| unreadable(e.to_string()))?;
        let f: Fragment = serde_json::from_str(&text)
            .map_err(|e| unreadable(format!("not a qualification fragment: {e}")))?;
        let jpath = p.with_file_name(&f.junit);
        let j = std::fs::read_to_string(&jpath).map_err(|e| MergeError::Junit {
            file: jpath.display().to_string(),
            detail: format!("the JUnit file of {} is not readable: {e}", p.display()),
        })?;
        junit.insert(p.clone(), j);
        fragments.push((p.clone(), f));
    }
    Ok(Loaded { fragments, junit })
}

/// What the merge produced: the matrix, every cell's result, the summary.
#[derive(Debug)]
pub struct Merged {
    pub matrix: Matrix,
    pub commit: String,
    pub results: Vec<CellResult>,
    pub summary: Summary,
}

/// Join fragments: one matrix (same SHA-256, text intact), one commit, one
/// target; each fragment holds exactly its partition's cells; every cell of
/// the matrix in exactly one fragment.
pub fn merge(fragments: &[(PathBuf, Fragment)]) -> Result<Merged, MergeError> {
    let name = |p: &Path| p.display().to_string();
    let Some((first_path, first)) = fragments.first() else {
        return Err(MergeError::NoFragments("(no directory)".into()));
    };
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    let mut results = Vec::new();
    let mut matrix = None;
    for (path, f) in fragments {
        if f.format != FORMAT {
            return Err(MergeError::Format {
                file: name(path),
                found: f.format,
            });
        }
        if f.matrix.sha256 != first.matrix.sha256 {
            return Err(MergeError::OtherMatrix {
                file: name(path),
                theirs: format!("{} (sha256 {})", f.matrix.file, f.matrix.sha256),
                first: name(first_path),
                ours: format!("{}, sha256 {}", first.matrix.file, first.matrix.sha256),
            });
        }
        if sha256_hex(f.matrix.text.as_bytes()) != f.matrix.sha256 {
            return Err(MergeError::Tampered {
                file: name(path),
                sha256: f.matrix.sha256.clone(),
            });
        }
        if f.commit != first.commit {
            return Err(MergeError::OtherCommit {
                file: name(path),
                theirs: f.commit.clone(),
                first: name(first_path),
                ours: first.commit.clone(),
            });
        }
        if f.target != first.target {
            return Err(MergeError::OtherTarget {
                file: name(path),
                theirs: f.target.clone(),
                first: name(first_path),
                ours: first.target.clone(),
            });
        }
        if matrix.is_none() {
            matrix = Some(parse_matrix(&f.matrix.file, &f.matrix.text).map_err(|e| {
                MergeError::Unreadable {
                    file: name(path),
                    detail: format!("the matrix it carries: {e}"),
                }
            })?);
        }
        let m = matrix.as_ref().expect("set above");
        let want: Vec<String> = cells_of(m, f.partition)
            .iter()
            .map(|c| c.id.clone())
            .collect();
        let found: Vec<String> = f.cells.iter().map(|c| c.id.clone()).collect();
        if found != want {
            return Err(MergeError::WrongCells {
                file: name(path),
                partition: f.partition,
                found,
                want,
            });
        }
        for c in &f.cells {
            if let Some(prev) = owner.insert(c.id.clone(), name(path)) {
                return Err(MergeError::Doubled {
                    cell: c.id.clone(),
                    first: prev,
                    second: name(path),
                });
            }
            // A result for another cell would be judged as that cell.
            if let Some(r) = &c.result {
                if r.cell != c.id {
                    return Err(MergeError::Unreadable {
                        file: name(path),
                        detail: format!("cell {}: its result is for cell {}", c.id, r.cell),
                    });
                }
                results.push(r.clone());
            }
        }
    }
    let m = matrix.expect("at least one fragment");
    let missing: Vec<(String, Partition)> = m
        .cells
        .iter()
        .filter(|c| !owner.contains_key(&c.id))
        .map(|c| {
            // Named by the partition of the split the first fragment used.
            let count = first.partition.count;
            let index = (1..=count)
                .find(|i| {
                    cells_of(&m, Partition { index: *i, count })
                        .iter()
                        .any(|x| x.id == c.id)
                })
                .unwrap_or(1);
            (c.id.clone(), Partition { index, count })
        })
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing(missing));
    }
    let summary = summarize(&m, &results);
    Ok(Merged {
        matrix: m,
        commit: first.commit.clone(),
        results,
        summary,
    })
}

/// One JUnit report: every runner's run suites, then a suite with one
/// testcase per cell and its verdict (what the summary table says).
/// A single runner writes the same from its own runs.
pub fn join_junit(parts: &[(String, String)], summary: &Summary) -> Result<String, MergeError> {
    let mut report = Report::new("maas-e2e");
    for (file, xml) in parts {
        let r = Report::deserialize_from_str(xml).map_err(|e| MergeError::Junit {
            file: file.clone(),
            detail: format!("not a JUnit report: {e}"),
        })?;
        report.add_test_suites(r.test_suites);
    }
    let mut suite = TestSuite::new(format!("qualification: {}", summary.suite));
    for r in &summary.rows {
        let status = match &r.verdict {
            Verdict::AsExpected => TestCaseStatus::success(),
            Verdict::Unexpected(why) => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_message(format!("{}: {why}", r.actual));
                st
            }
            Verdict::NotRun => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
                st.set_message("not run");
                st
            }
        };
        let mut case = TestCase::new(format!("cell {}: expect {}", r.cell, r.expected), status);
        case.set_classname(summary.suite.clone());
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    report.to_string().map_err(|e| MergeError::Junit {
        file: "(merged report)".into(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIM: &str = include_str!("../../../ci/qualification/sim-matrix.yaml");

    fn matrix() -> (Matrix, MatrixRef) {
        let m = parse_matrix("sim-matrix.yaml", SIM).unwrap();
        let r = MatrixRef {
            file: "sim-matrix.yaml".into(),
            suite: m.suite.clone(),
            sha256: sha256_hex(SIM.as_bytes()),
            text: SIM.into(),
        };
        (m, r)
    }

    fn results(m: &Matrix) -> Vec<CellResult> {
        m.cells
            .iter()
            .map(|c| CellResult {
                cell: c.id.clone(),
                passed: c.expect == "pass",
                failed_step: (c.expect != "pass").then(|| "wait_power".into()),
                events: vec!["Failed to query node's BMC - power settings".into()],
                run_dir: None,
            })
            .collect()
    }

    fn part(index: u32, count: u32) -> Partition {
        Partition { index, count }
    }

    #[test]
    fn any_n_merges_to_the_single_runner_summary() {
        let (m, r) = matrix();
        let res = results(&m);
        let single = summarize(&m, &res);
        for n in 1..=6 {
            let frags: Vec<(PathBuf, Fragment)> = (1..=n)
                .map(|i| {
                    let f = fragment(r.clone(), &m, "c1", "sim", part(i, n), &res);
                    (PathBuf::from(format!("f{i}")), f)
                })
                .collect();
            let merged = merge(&frags).unwrap();
            assert_eq!(merged.summary, single, "n {n}");
            assert!(merged.summary.qualified);
        }
    }

    #[test]
    fn refusals_name_the_fragment_and_the_cell() {
        let (m, r) = matrix();
        let res = results(&m);
        let f = |i, n, commit: &str| {
            (
                PathBuf::from(format!("dir{i}/{FRAGMENT_PREFIX}{i}-of-{n}.json")),
                fragment(r.clone(), &m, commit, "sim", part(i, n), &res),
            )
        };
        let missing = merge(&[f(1, 2, "c1")]).unwrap_err();
        let doubled = merge(&[f(1, 2, "c1"), f(2, 2, "c1"), f(2, 2, "c1")]).unwrap_err();
        let commit = merge(&[f(1, 2, "c1"), f(2, 2, "c2")]).unwrap_err();
        let mut other = f(2, 2, "c1");
        other.1.matrix.text.push_str("# edited\n");
        other.1.matrix.sha256 = sha256_hex(other.1.matrix.text.as_bytes());
        let other_sha = other.1.matrix.sha256.clone();
        let matrix_err = merge(&[f(1, 2, "c1"), other]).unwrap_err();
        let mut tampered = f(1, 1, "c1");
        tampered.1.matrix.text.push(' ');
        let tampered = merge(&[tampered]).unwrap_err();
        let mut wrong = f(1, 2, "c1");
        wrong.1.partition = part(2, 2);
        let wrong = merge(&[wrong]).unwrap_err();
        let all = [missing, doubled, commit, matrix_err, tampered, wrong]
            .iter()
            .map(|e| {
                e.to_string()
                    .replace(&r.sha256, "SHA")
                    .replace(&other_sha, "OTHER_SHA")
            })
            .collect::<Vec<_>>()
            .join("\n");
        insta::assert_snapshot!("merge_refusals", all);
    }
}
