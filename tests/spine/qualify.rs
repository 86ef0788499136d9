//! Release qualification: each cell's scenario is the base with the cell's
//! overrides, validated like any scenario; without kind/helm the command
//! names what to install and starts nothing. `--list`, `--partition` and
//! `qualify merge` through the built binary: merges that must be refused,
//! and real runs (target none, and the sim with VMs) whose merged summary
//! is the single runner's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use maas_e2e::run::qualify::{self, fragment, partition::Partition};
use maas_e2e::scenario::{self, Firmware, IpmiVersions};
use maas_e2e::targets::chart::qualification::{CellResult, render_markdown, summarize};
use maas_e2e::testing::{require, require_program, require_root};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

#[test]
fn every_cell_applies_its_overrides() {
    let matrix = qualify::load_matrix(&repo("ci/qualification/matrix.yaml")).unwrap();
    let base = scenario::load(&repo(&matrix.base_scenario)).unwrap();
    assert_eq!(matrix.cells.len(), 16);
    for cell in &matrix.cells {
        let s = qualify::cell_scenario(&base, &matrix, cell).unwrap_or_else(|e| panic!("{e}"));
        for g in &s.scenario.machines {
            assert_eq!(
                g.firmware,
                if cell.firmware == "uefi" {
                    Firmware::Uefi
                } else {
                    Firmware::Bios
                },
                "{}",
                cell.id
            );
            assert_eq!(
                g.bmc.cipher_suites,
                if cell.ciphers == "only17" {
                    vec![17]
                } else {
                    vec![3]
                },
                "{}",
                cell.id
            );
            assert_eq!(
                g.bmc.ipmi,
                if cell.lan == "lan20" {
                    IpmiVersions::V20
                } else {
                    IpmiVersions::Both
                },
                "{}",
                cell.id
            );
        }
        assert_eq!(s.scenario.steps, base.scenario.steps);
        assert!(
            s.scenario.name.starts_with("enlist-commission-"),
            "{}",
            s.scenario.name
        );
    }
}

#[test]
fn qualify_without_kind_or_helm_names_them_and_starts_nothing() {
    let out = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let r = Command::new(env!("CARGO_BIN_EXE_maas-e2e"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "qualify",
            "--matrix",
            "ci/qualification/matrix.yaml",
            "--target",
            "chart",
            // Checked for presence only before the host check.
            "--pin-chart",
            "2.8=charts/maas",
            "--pin-chart",
            "3.6=charts/maas",
            // No git on the empty PATH.
            "--commit",
            "c0ffee",
            "--out",
        ])
        .arg(out.path())
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("kind") && err.contains("helm"), "{err}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_maas-e2e"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn list_prints_every_cell_with_its_pin_as_a_ci_include_matrix() {
    let o = bin()
        .args([
            "qualify",
            "--matrix",
            "ci/qualification/matrix.yaml",
            "--list",
        ])
        .args(["--partitions", "4"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Only `include` at the top: any other key would be an axis to a CI.
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    let cells = v["include"].as_array().unwrap();
    assert_eq!(cells.len(), 16);
    for pin in ["2.8", "3.6"] {
        assert_eq!(cells.iter().filter(|c| c["pin"] == pin).count(), 8, "{pin}");
    }
    for c in cells {
        for key in ["id", "firmware", "ciphers", "lan", "expect", "partition"] {
            assert!(c[key].is_string(), "{key} in {c}");
        }
        let p: Partition = c["partition"].as_str().unwrap().parse().unwrap();
        assert_eq!(p.count, 4);
    }
    // The per-partition listing holds the same split.
    let o = bin()
        .args(["qualify", "--matrix", "ci/qualification/matrix.yaml"])
        .args(["--list-partitions", "4"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let parts: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let parts = parts["include"].as_array().unwrap();
    assert_eq!(parts.len(), 4);
    let mut seen = 0;
    for p in parts {
        for id in p["cells"].as_str().unwrap().split_whitespace() {
            let cell = cells.iter().find(|c| c["id"] == id).unwrap();
            assert_eq!(cell["partition"], p["partition"], "{id}");
            seen += 1;
        }
    }
    assert_eq!(seen, 16);
}

/// The shipped sim matrix, profile axis included, through the binary: for
/// N = 1..=8 every cell in exactly one partition, `--list --partitions N`
/// and `--list-partitions N` agree, and the split does not depend on the
/// file's order (a reversed copy splits the same).
#[test]
fn every_sim_matrix_cell_is_in_exactly_one_partition_for_n_1_to_8() {
    let sim = "ci/qualification/sim-matrix.yaml";
    let m = qualify::load_matrix(&repo(sim)).unwrap();
    assert_eq!(m.cells.len(), 8);
    let reversed = tempfile::NamedTempFile::new().unwrap();
    let mut rev = m.clone();
    rev.cells.reverse();
    std::fs::write(reversed.path(), serde_norway::to_string(&rev).unwrap()).unwrap();
    let json = |args: &[&str]| -> serde_json::Value {
        let o = bin().arg("qualify").args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let rev_path = reversed.path().to_str().unwrap();
    for n in 1..=8u32 {
        let n_s = n.to_string();
        let cells = json(&["--matrix", sim, "--list", "--partitions", &n_s]);
        let cells = cells["include"].as_array().unwrap().clone();
        assert_eq!(cells.len(), m.cells.len(), "n {n}");
        for c in &cells {
            assert!(
                ["2.8", "3.6"].contains(&c["profile"].as_str().unwrap()),
                "{c}"
            );
        }
        let parts = json(&["--matrix", sim, "--list-partitions", &n_s]);
        // Each partition's ids as a set: a cell stays in its partition
        // whatever the file's order (which orders ids inside one).
        let split = |v: &serde_json::Value| -> Vec<std::collections::BTreeSet<String>> {
            v["include"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    p["cells"]
                        .as_str()
                        .unwrap()
                        .split_whitespace()
                        .map(String::from)
                        .collect()
                })
                .collect()
        };
        let again = json(&["--matrix", rev_path, "--list-partitions", &n_s]);
        assert_eq!(
            split(&parts),
            split(&again),
            "n {n}: the file's order moved cells"
        );
        let mut seen = std::collections::BTreeMap::new();
        let mut sizes = Vec::new();
        for p in parts["include"].as_array().unwrap() {
            let ids: Vec<&str> = p["cells"].as_str().unwrap().split_whitespace().collect();
            sizes.push(ids.len());
            for id in ids {
                assert!(
                    seen.insert(id.to_string(), p["partition"].clone())
                        .is_none(),
                    "n {n}: {id} twice"
                );
            }
        }
        assert_eq!(sizes.len(), n as usize);
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "n {n}: {sizes:?}"
        );
        assert_eq!(seen.len(), m.cells.len(), "n {n}");
        for c in &cells {
            assert_eq!(
                seen[c["id"].as_str().unwrap()],
                c["partition"],
                "n {n}: {c}"
            );
        }
    }
}

/// The VM test's two cells are the shipped sim matrix's (ids, axes,
/// expectations, named failures), one value of each profile, and each
/// cell's scenario runs the profile it states.
#[test]
fn the_vm_matrix_is_a_cut_of_the_sim_matrix_covering_both_profiles() {
    let sim = qualify::load_matrix(&repo("ci/qualification/sim-matrix.yaml")).unwrap();
    let vm = qualify::load_matrix(&repo("tests/spine/qualify/vm-matrix.yaml")).unwrap();
    assert!(vm.cut && !sim.cut);
    assert_eq!(vm.cells.len(), 2);
    for c in &vm.cells {
        let twin = sim
            .cells
            .iter()
            .find(|x| x.id == c.id)
            .unwrap_or_else(|| panic!("{}", c.id));
        assert_eq!(c, twin);
        if c.expect != "pass" {
            assert_eq!(vm.failures[&c.expect], sim.failures[&c.expect]);
        }
    }
    for axis in ["profile", "ciphers"] {
        let values: std::collections::BTreeSet<_> = vm
            .cells
            .iter()
            .map(|c| {
                c.axes()
                    .into_iter()
                    .find(|(a, _)| *a == axis)
                    .unwrap()
                    .1
                    .to_string()
            })
            .collect();
        assert_eq!(values.len(), 2, "{axis}: {values:?}");
    }
    for m in [&sim, &vm] {
        let base = scenario::load(&repo(&m.base_scenario)).unwrap();
        for c in &m.cells {
            let s = qualify::cell_scenario(&base, m, c).unwrap();
            assert_eq!(
                Some(s.scenario.sim.profile.as_str()),
                c.profile.as_deref(),
                "{}",
                c.id
            );
        }
    }
}

#[test]
fn bad_partitions_targets_and_missing_pin_charts_start_nothing() {
    let out = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "--matrix",
                "ci/qualification/sim-matrix.yaml",
                "--sim-profile",
                "3.6",
            ],
            "--sim-profile 3.6: not allowed with qualify; ci/qualification/sim-matrix.yaml states each cell's profile",
        ),
        (
            &[
                "--matrix",
                "ci/qualification/sim-matrix.yaml",
                "--partition",
                "3/2",
            ],
            "allowed: I/N with 1 <= I <= N",
        ),
        (
            &[
                "--matrix",
                "ci/qualification/sim-matrix.yaml",
                "--target",
                "none",
            ],
            "field `target` = \"sim\", but --target none",
        ),
        (
            &[
                "--matrix",
                "ci/qualification/matrix.yaml",
                "--target",
                "chart",
            ],
            "need pin 2.8, and no chart is given for it",
        ),
        (
            &[
                "--matrix",
                "ci/qualification/matrix.yaml",
                "--target",
                "chart",
                "--pin-chart",
                "2.8",
                "--partition",
                "1/1",
            ],
            "--pin-chart \"2.8\": allowed: PIN=PATH",
        ),
    ];
    for (args, want) in cases {
        let o = bin()
            .arg("qualify")
            .args(args)
            .args(["--commit", "c0ffee", "--out"])
            .arg(out.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(want),
            "{args:?}: {}",
            text(&o)
        );
    }
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
}

/// Fragments as a runner writes them, from given results (no runs): the
/// merge's checks are about the fragments, not about how results came.
fn write_fragment(
    dir: &Path,
    matrix_file: &str,
    commit: &str,
    p: Partition,
    results: &[CellResult],
) {
    let path = repo(matrix_file);
    let text = std::fs::read_to_string(&path).unwrap();
    let m = maas_e2e::targets::chart::qualification::parse_matrix(matrix_file, &text).unwrap();
    let mref = fragment::MatrixRef {
        file: matrix_file.into(),
        suite: m.suite.clone(),
        sha256: maas_e2e::run::record::sha256_hex(text.as_bytes()),
        text,
    };
    let f = fragment::fragment(mref, &m, commit, &m.target, p, results);
    let (name, junit) = fragment::file_names(p);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), serde_json::to_vec_pretty(&f).unwrap()).unwrap();
    std::fs::write(dir.join(junit), maas_e2e::report::junit::junit_xml(&[])).unwrap();
}

fn as_stated(matrix_file: &str) -> Vec<CellResult> {
    let m = qualify::load_matrix(&repo(matrix_file)).unwrap();
    m.cells
        .iter()
        .map(|c| {
            let f = m.failures.get(&c.expect);
            CellResult {
                cell: c.id.clone(),
                passed: f.is_none(),
                failed_step: f.map(|f| f.step.clone()),
                events: f.and_then(|f| f.event.clone()).into_iter().collect(),
                run_dir: None,
            }
        })
        .collect()
}

fn merge(dirs: &[&Path], extra: &[&str]) -> Output {
    bin()
        .args(["qualify", "merge"])
        .args(dirs)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn merge_joins_partitions_and_refuses_missing_doubled_and_foreign_fragments() {
    let sim = "ci/qualification/sim-matrix.yaml";
    let t = tempfile::tempdir().unwrap();
    let results = as_stated(sim);
    let (p1, p2) = (
        Partition { index: 1, count: 2 },
        Partition { index: 2, count: 2 },
    );
    write_fragment(&t.path().join("a/p1"), sim, "c1", p1, &results);
    write_fragment(&t.path().join("a/p2"), sim, "c1", p2, &results);
    let summary = t.path().join("merged.md");
    let junit = t.path().join("merged.xml");
    // One directory with a runner's artifact in each subdirectory.
    let o = merge(
        &[&t.path().join("a")],
        &[
            "--summary",
            summary.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let m = qualify::load_matrix(&repo(sim)).unwrap();
    let single = render_markdown(&summarize(&m, &results));
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), single);
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert_eq!(cases.len(), m.cells.len(), "{xml}");
    assert_eq!(cases.len(), 8, "{xml}");
    assert!(cases.iter().all(|c| c.starts_with("cell ")), "{cases:?}");

    // Partition 2 never arrived.
    let o = merge(&[&t.path().join("a/p1")], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("cells missing from every fragment: ")
            && text(&o).contains("3.6-uefi-only17-lan20 (partition 2/2)"),
        "{}",
        text(&o)
    );
    // The same partition twice.
    let o = merge(&[&t.path().join("a"), &t.path().join("a/p2")], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is in two fragments"), "{}", text(&o));
    // Another commit.
    write_fragment(&t.path().join("b/p1"), sim, "c1", p1, &results);
    write_fragment(&t.path().join("b/p2"), sim, "c2", p2, &results);
    let o = merge(&[&t.path().join("b")], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("commit c2 is not the commit of"),
        "{}",
        text(&o)
    );
    // Another matrix (the none test matrix's partition 2).
    let none = "tests/spine/qualify/none-matrix.yaml";
    write_fragment(&t.path().join("c/p1"), sim, "c1", p1, &results);
    write_fragment(&t.path().join("c/p2"), none, "c1", p2, &as_stated(none));
    let o = merge(&[&t.path().join("c")], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("fragments of different matrices"),
        "{}",
        text(&o)
    );
    // A fragment edited to claim another partition's cells.
    let f = t.path().join("a/p1").join(fragment::file_names(p1).0);
    let edited = std::fs::read_to_string(&f)
        .unwrap()
        .replace("\"1/2\"", "\"2/2\"");
    std::fs::create_dir_all(t.path().join("d")).unwrap();
    std::fs::write(t.path().join("d").join(fragment::file_names(p2).0), edited).unwrap();
    std::fs::copy(
        t.path().join("a/p1").join(fragment::file_names(p1).1),
        t.path().join("d").join(fragment::file_names(p1).1),
    )
    .unwrap();
    let o = merge(&[&t.path().join("d")], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("but that partition of the matrix is"),
        "{}",
        text(&o)
    );
    // Not a fragment directory at all.
    let o = merge(&[&t.path().join("nothing")], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// Run `qualify` on a matrix, returning the process output.
fn qualify_run(matrix: &str, target: &str, out: &Path, extra: &[&str]) -> std::process::Child {
    bin()
        .args([
            "qualify", "--matrix", matrix, "--target", target, "--seed", "1",
        ])
        .args(["--commit", "test-commit", "--out"])
        .arg(out)
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Two partitions side by side, then merged: both exit 0 (every cell as
/// stated), and the merge exits 0. Returns the merged summary.
fn partitions_then_merge(matrix: &str, target: &str, dir: &Path) -> String {
    let runs: Vec<_> = (1..=2)
        .map(|i| {
            let out = dir.join(format!("p{i}"));
            qualify_run(matrix, target, &out, &["--partition", &format!("{i}/2")])
        })
        .collect();
    for r in runs {
        let o = r.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let merged = dir.join("merged.md");
    let o = merge(
        &[&dir.join("p1"), &dir.join("p2")],
        &["--summary", merged.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::read_to_string(merged).unwrap()
}

#[test]
fn target_none_single_runner_and_two_merged_partitions_give_one_summary() {
    if !(require_root()
        && require_program("ipmipower", "freeipmi-tools")
        && require_program("ipmi-chassis-config", "freeipmi-tools")
        && require_program("ip", "iproute2"))
    {
        return;
    }
    let matrix = "tests/spine/qualify/none-matrix.yaml";
    let t = tempfile::tempdir().unwrap();
    let single = t.path().join("single.md");
    let o = qualify_run(
        matrix,
        "none",
        &t.path().join("single"),
        &["--summary", single.to_str().unwrap()],
    )
    .wait_with_output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let single = std::fs::read_to_string(single).unwrap();
    // The cells really ran: the only17 ones failed at power_on.
    assert!(
        single.contains("| fail at power_on | as expected |"),
        "{single}"
    );
    assert!(single.contains("QUALIFIED: 4 of 4"), "{single}");
    let merged = partitions_then_merge(matrix, "none", t.path());
    assert_eq!(merged, single);
}

/// A sim matrix as CI runs one: two partitions side by side with real VMs,
/// merged. Two cells (tests/spine/qualify/vm-matrix.yaml), one per
/// partition, so both outcomes and both sim profiles are seen at the cost
/// of one boot per partition; the shipped eight-cell matrix is checked
/// without VMs above.
/// The single-runner summary is compared from the same cell results
/// (the functions the single runner renders with); the single-runner path
/// itself runs for real in the target-none test above and in
/// ci/bench/qualify-sim.sh.
#[test]
fn vm_sim_matrix_in_two_partitions_merges_to_the_single_runner_summary() {
    if !(require_root()
        && require_program("qemu-system-x86_64", "qemu-system-x86")
        && require_program("virsh", "libvirt-clients")
        && require_program("ipmipower", "freeipmi-tools")
        && require_program("ip", "iproute2")
        && require(
            "pxelinux",
            Path::new("/usr/lib/PXELINUX/lpxelinux.0").exists(),
            "apt-get install pxelinux syslinux-common",
        )
        && require(
            "libvirtd",
            Path::new("/var/run/libvirt/libvirt-sock").exists(),
            "start libvirtd (ci/setup-host.sh does)",
        ))
    {
        return;
    }
    let matrix = "tests/spine/qualify/vm-matrix.yaml";
    let t = tempfile::tempdir().unwrap();
    let merged = partitions_then_merge(matrix, "sim", t.path());
    let mut results = Vec::new();
    for i in 1..=2 {
        let p = Partition { index: i, count: 2 };
        let f: fragment::Fragment = serde_json::from_slice(
            &std::fs::read(
                t.path()
                    .join(format!("p{i}"))
                    .join(fragment::file_names(p).0),
            )
            .unwrap(),
        )
        .unwrap();
        results.extend(f.cells.into_iter().filter_map(|c| c.result));
    }
    assert_eq!(results.len(), 2);
    let m = qualify::load_matrix(&repo(matrix)).unwrap();
    assert_eq!(merged, render_markdown(&summarize(&m, &results)));
    assert!(merged.contains("QUALIFIED: 2 of 2"), "{merged}");
    // Both profiles ran: the 2.8 cell passed, the 3.6 only17 cell failed
    // where sim-matrix.yaml says MAAS 3.6.4 fails it: the power query
    // right after enlistment, the event from the rack's power monitor.
    assert!(
        merged.contains("| 2.8-bios-suite3-lan20 | 2.8 |"),
        "{merged}"
    );
    assert!(
        merged.contains("| 3.6-bios-only17-lan20 | 3.6 | bios | only17 | lan20 | power-cipher-default-3 | fail at wait_power | as expected |"),
        "{merged}"
    );
    let failing: Vec<_> = results
        .iter()
        .filter(|r| r.cell.contains("only17"))
        .collect();
    assert_eq!(failing.len(), 1, "{results:?}");
    for r in failing {
        assert_eq!(r.failed_step.as_deref(), Some("wait_power"), "{r:?}");
        assert!(
            r.events
                .iter()
                .any(|e| e.contains("Failed to query node's BMC")),
            "{r:?}"
        );
    }
}
