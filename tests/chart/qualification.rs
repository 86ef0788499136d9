//! The qualification matrices as checked in (the chart's, with both pins,
//! and the sim's), the summary across runs, and `--list`'s JSON.

use maas_e2e::run::qualify::list;
use maas_e2e::targets::chart::qualification::{
    CellResult, MatrixError, Verdict, parse_matrix, render_markdown, summarize,
};

fn matrix_text() -> String {
    read("ci/qualification/matrix.yaml")
}

fn read(p: &str) -> String {
    std::fs::read_to_string(format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn result(cell: &str, passed: bool, step: Option<&str>, events: &[&str]) -> CellResult {
    CellResult {
        cell: cell.into(),
        passed,
        failed_step: step.map(String::from),
        events: events.iter().map(|e| e.to_string()).collect(),
        run_dir: Some(format!("runs/{cell}")),
    }
}

#[test]
fn the_checked_in_matrix_is_complete_on_both_pins_and_only17_must_fail_power() {
    let m = parse_matrix("ci/qualification/matrix.yaml", &matrix_text()).unwrap();
    assert_eq!(m.cells.len(), 16);
    assert_eq!(m.pins, ["2.8", "3.6"]);
    for c in &m.cells {
        let want = match (c.ciphers.as_str(), c.pin.as_deref()) {
            ("only17", Some("2.8")) => "power-cipher-unsupported",
            ("only17", Some("3.6")) => "power-cipher-default-3",
            _ => "pass",
        };
        assert_eq!(c.expect, want, "cell {}", c.id);
        assert!(c.id.starts_with(c.pin.as_deref().unwrap()), "cell {}", c.id);
    }
    // The first LAN session after enlistment is the power query.
    for f in m.failures.values() {
        assert_eq!(f.step, "wait_power");
        assert_eq!(f.event.as_deref(), Some("Failed to query node's BMC"));
    }
}

#[test]
fn the_sim_matrix_states_outcomes_as_the_chart_matrix_does_per_profile() {
    let sim = parse_matrix("sim-matrix.yaml", &read("ci/qualification/sim-matrix.yaml")).unwrap();
    let chart = parse_matrix("matrix.yaml", &matrix_text()).unwrap();
    assert_eq!(sim.target, "sim");
    // The nightly runs every cell with a VM; this project's CI a cut of 2.
    assert_eq!(sim.cells.len(), 8);
    assert!(sim.pins.is_empty());
    for profile in ["2.8", "3.6"] {
        let n = sim
            .cells
            .iter()
            .filter(|c| c.profile.as_deref() == Some(profile))
            .count();
        assert_eq!(n, 4, "{profile}");
    }
    for c in &sim.cells {
        // The same cell of the chart matrix, on the pin of the cell's
        // profile, states the same.
        let twin = chart
            .cells
            .iter()
            .find(|x| x.id == c.id)
            .unwrap_or_else(|| panic!("no chart twin of {}", c.id));
        assert_eq!(twin.pin, c.profile, "cell {}", c.id);
        assert_eq!(c.expect, twin.expect, "cell {}", c.id);
        if c.expect != "pass" {
            assert_eq!(sim.failures[&c.expect], chart.failures[&c.expect]);
        }
        assert_eq!(
            sim.overrides["ciphers"][&c.ciphers],
            chart.overrides["ciphers"][&c.ciphers]
        );
    }
}

#[test]
fn list_json_snapshots() {
    let sim = parse_matrix("sim-matrix.yaml", &read("ci/qualification/sim-matrix.yaml")).unwrap();
    insta::assert_json_snapshot!("list_sim_cells_2", list::cells_json(&sim, 2));
    let chart = parse_matrix("matrix.yaml", &matrix_text()).unwrap();
    insta::assert_json_snapshot!("list_chart_partitions_3", list::partitions_json(&chart, 3));
}

#[test]
fn summary_snapshot_over_a_mixed_set_of_runs() {
    let m = parse_matrix("matrix.yaml", &matrix_text()).unwrap();
    let power_fail = ["Powering on", "Failed to query node's BMC"];
    let results = vec![
        result("2.8-bios-suite3-lan15+20", true, None, &[]),
        result("2.8-bios-suite3-lan20", true, None, &[]),
        result(
            "2.8-bios-only17-lan15+20",
            false,
            Some("wait_power"),
            &power_fail,
        ),
        // Failed, but not the way the cell says: no power event.
        result(
            "2.8-bios-only17-lan20",
            false,
            Some("wait_power"),
            &["Node changed status"],
        ),
        result(
            "2.8-uefi-suite3-lan15+20",
            false,
            Some("enlist"),
            &["PXE Request"],
        ),
        // A pass where the named failure was expected.
        result("2.8-uefi-only17-lan15+20", true, None, &[]),
        result(
            "2.8-uefi-only17-lan20",
            false,
            Some("wait_power"),
            &power_fail,
        ),
        // Failed later than the named failure's step.
        result(
            "3.6-bios-only17-lan20",
            false,
            Some("commission"),
            &["Failed to power on node"],
        ),
        result("3.6-bios-suite3-lan20", true, None, &[]),
        // 2.8-uefi-suite3-lan20 and the other 3.6 cells have no result.
    ];
    let s = summarize(&m, &results);
    assert!(!s.qualified);
    assert_eq!(
        s.rows
            .iter()
            .filter(|r| r.verdict == Verdict::AsExpected)
            .count(),
        5
    );
    insta::assert_snapshot!("qualification_summary_mixed", render_markdown(&s));
}

#[test]
fn all_cells_as_expected_qualifies_and_the_last_result_wins() {
    let m = parse_matrix("matrix.yaml", &matrix_text()).unwrap();
    let mut results: Vec<CellResult> = m
        .cells
        .iter()
        .map(|c| {
            if c.expect == "pass" {
                result(&c.id, true, None, &[])
            } else {
                result(
                    &c.id,
                    false,
                    Some("wait_power"),
                    &["Failed to query node's BMC"],
                )
            }
        })
        .collect();
    // An earlier flaky attempt of a cell does not count once it re-ran.
    results.insert(
        0,
        result("2.8-bios-suite3-lan20", false, Some("enlist"), &[]),
    );
    let s = summarize(&m, &results);
    assert!(s.qualified, "{}", render_markdown(&s));
    assert!(render_markdown(&s).contains("QUALIFIED: 16 of 16 cells as expected"));
}

#[test]
fn bad_matrices_name_the_cell_and_field() {
    let text = matrix_text();
    let err = parse_matrix(
        "m.yaml",
        &text.replacen("expect: power-cipher-unsupported", "expect: power-fails", 1),
    )
    .unwrap_err();
    assert!(
        matches!(&err, MatrixError::Cell { field: "expect", cell, .. } if cell == "2.8-bios-only17-lan15+20"),
        "{err}"
    );
    let err =
        parse_matrix("m.yaml", &text.replacen("lan: lan20\n", "lan: lan16\n", 1)).unwrap_err();
    assert!(err.to_string().contains("field `lan` = \"lan16\""), "{err}");
    // Dropping a cell leaves a combination uncovered.
    let cut = text.find("  - id: 3.6-uefi-only17-lan20").unwrap();
    let end = text[cut..].find("\n\n").unwrap() + cut;
    let err = parse_matrix("m.yaml", &format!("{}{}", &text[..cut], &text[end..])).unwrap_err();
    assert!(matches!(err, MatrixError::Coverage { .. }), "{err}");
    // A cell without a pin, and a pin the matrix does not list.
    let err = parse_matrix("m.yaml", &text.replacen("    pin: \"2.8\"\n", "", 1)).unwrap_err();
    assert!(
        err.to_string()
            .contains("field `pin` = \"\": one of [\"2.8\", \"3.6\"]"),
        "{err}"
    );
    let err =
        parse_matrix("m.yaml", &text.replacen("pin: \"3.6\"", "pin: \"3.7\"", 1)).unwrap_err();
    assert!(err.to_string().contains("field `pin` = \"3.7\""), "{err}");
}

#[test]
fn bad_profile_axes_name_the_file_field_and_allowed_values() {
    let sim = read("ci/qualification/sim-matrix.yaml");
    let bad = |from: &str, to: &str| {
        assert!(sim.contains(from), "{from}");
        parse_matrix("sim.yaml", &sim.replacen(from, to, 1))
            .unwrap_err()
            .to_string()
    };
    // An unknown profile in the override.
    let err = bad(
        "\"3.6\": { sim.profile: \"3.6\" }",
        "\"3.6\": { sim.profile: \"3.7\" }",
    );
    assert_eq!(
        err,
        "sim.yaml: field `overrides.profile.3.6.sim.profile` = \"3.7\": allowed: one of \"2.8\", \"3.6\""
    );
    // A profile axis value that runs another profile than it names.
    let err = bad(
        "\"3.6\": { sim.profile: \"3.6\" }",
        "\"3.6\": { sim.profile: \"2.8\" }",
    );
    assert!(
        err.starts_with("sim.yaml: field `overrides.profile.3.6`")
            && err.contains("allowed: { sim.profile: \"3.6\" }"),
        "{err}"
    );
    // A cell with a profile the axis lacks, and a cell without one.
    let err = bad("profile: \"3.6\"\n", "profile: \"3.7\"\n");
    assert!(
        err.contains(
            "cell 3.6-bios-suite3-lan20: field `profile` = \"3.7\": one of [\"2.8\", \"3.6\"]"
        ),
        "{err}"
    );
    let err = bad("    profile: \"2.8\"\n", "");
    assert!(
        err.contains("cell 2.8-bios-suite3-lan20: field `profile` = \"\""),
        "{err}"
    );
    // Another override key under sim.
    let err = bad("{ sim.profile: \"2.8\" }", "{ sim.power_wait_unit: 1s }");
    assert!(
        err.contains("field `overrides.profile.2.8.sim.power_wait_unit`")
            && err.contains("allowed keys: machine.FIELD, bmc.FIELD, sim.profile"),
        "{err}"
    );
    // A profile on the chart target, which states its MAAS with pins.
    let err = bad("target: sim", "target: chart");
    assert!(
        err.contains("field `overrides.profile.2.8.sim.profile`")
            && err.contains("applies to target sim only (this matrix's target is chart)"),
        "{err}"
    );
    // Without `cut: true`, two cells do not cover the cross product.
    let vm = read("tests/spine/qualify/vm-matrix.yaml");
    assert!(parse_matrix("vm.yaml", &vm).is_ok());
    let err = parse_matrix("vm.yaml", &vm.replacen("cut: true\n", "", 1)).unwrap_err();
    assert!(
        matches!(&err, MatrixError::Coverage { axes, .. } if axes == "firmware x ciphers x lan x profile"),
        "{err}"
    );
}

#[test]
fn the_sim_summary_shows_each_cells_profile() {
    let sim = parse_matrix("sim-matrix.yaml", &read("ci/qualification/sim-matrix.yaml")).unwrap();
    let results: Vec<CellResult> = sim
        .cells
        .iter()
        .map(|c| match sim.failures.get(&c.expect) {
            // The 3.6 only17 BIOS cell passes: a sim that fell back to suite 17.
            Some(_) if c.id == "3.6-bios-only17-lan20" => result(&c.id, true, None, &[]),
            Some(f) => result(&c.id, false, Some(&f.step), &["Failed to query node's BMC"]),
            None => result(&c.id, true, None, &[]),
        })
        .collect();
    let s = summarize(&sim, &results);
    assert!(!s.qualified);
    insta::assert_snapshot!("qualification_summary_sim_profiles", render_markdown(&s));
}
