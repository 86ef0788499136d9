//! The qualification matrix as checked in, and the summary across runs.

use maas_e2e::targets::chart::qualification::{
    CellResult, MatrixError, Verdict, parse_matrix, render_markdown, summarize,
};

fn matrix_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/ci/qualification/matrix.yaml"
    ))
    .unwrap()
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
fn the_checked_in_matrix_is_complete_and_only17_must_fail_power() {
    let m = parse_matrix("ci/qualification/matrix.yaml", &matrix_text()).unwrap();
    assert_eq!(m.cells.len(), 8);
    for c in &m.cells {
        let want = if c.ciphers == "only17" {
            "power-cipher-unsupported"
        } else {
            "pass"
        };
        assert_eq!(c.expect, want, "cell {}", c.id);
    }
    assert_eq!(
        m.failures["power-cipher-unsupported"].event,
        "Failed to power on node"
    );
}

#[test]
fn summary_snapshot_over_a_mixed_set_of_runs() {
    let m = parse_matrix("matrix.yaml", &matrix_text()).unwrap();
    let power_fail = ["Powering on", "Failed to power on node"];
    let results = vec![
        result("bios-suite3-lan15+20", true, None, &[]),
        result("bios-suite3-lan20", true, None, &[]),
        result(
            "bios-only17-lan15+20",
            false,
            Some("commission"),
            &power_fail,
        ),
        // Failed, but not the way the cell says: no power event.
        result(
            "bios-only17-lan20",
            false,
            Some("commission"),
            &["Node changed status"],
        ),
        result(
            "uefi-suite3-lan15+20",
            false,
            Some("enlist"),
            &["PXE Request"],
        ),
        // A pass where the named failure was expected.
        result("uefi-only17-lan15+20", true, None, &[]),
        result("uefi-only17-lan20", false, Some("commission"), &power_fail),
        // uefi-suite3-lan20 has no result.
    ];
    let s = summarize(&m, &results);
    assert!(!s.qualified);
    assert_eq!(
        s.rows
            .iter()
            .filter(|r| r.verdict == Verdict::AsExpected)
            .count(),
        4
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
                    Some("commission"),
                    &["Failed to power on node"],
                )
            }
        })
        .collect();
    // An earlier flaky attempt of a cell does not count once it re-ran.
    results.insert(0, result("bios-suite3-lan20", false, Some("enlist"), &[]));
    let s = summarize(&m, &results);
    assert!(s.qualified, "{}", render_markdown(&s));
    assert!(render_markdown(&s).contains("QUALIFIED: 8 of 8 cells as expected"));
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
        matches!(&err, MatrixError::Cell { field: "expect", cell, .. } if cell == "bios-only17-lan15+20"),
        "{err}"
    );
    let err =
        parse_matrix("m.yaml", &text.replacen("lan: lan20\n", "lan: lan16\n", 1)).unwrap_err();
    assert!(err.to_string().contains("field `lan` = \"lan16\""), "{err}");
    // Dropping a cell leaves a combination uncovered.
    let cut = text.find("  - id: uefi-only17-lan20").unwrap();
    let end = text[cut..].find("\n\n").unwrap() + cut;
    let err = parse_matrix("m.yaml", &format!("{}{}", &text[..cut], &text[end..])).unwrap_err();
    assert!(matches!(err, MatrixError::Coverage { .. }), "{err}");
}
