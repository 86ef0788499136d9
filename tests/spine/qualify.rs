//! Release qualification: each cell's scenario is the base with the cell's
//! overrides, validated like any scenario; without kind/helm the command
//! names what to install and starts nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use maas_e2e::run::qualify;
use maas_e2e::scenario::{self, Firmware, IpmiVersions};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

#[test]
fn every_cell_applies_its_overrides() {
    let matrix = qualify::load_matrix(&repo("ci/qualification/matrix.yaml")).unwrap();
    let base = scenario::load(&repo(&matrix.base_scenario)).unwrap();
    assert!(matrix.cells.len() >= 8);
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
            "--chart",
            "charts/maas",
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
