//! JUnit parses and its counts match the events; snapshots behave like
//! insta's; redaction keeps secrets out.

use std::time::Duration;

use maas_e2e::report::events::{Outcome, RunEvent, StageName};
use maas_e2e::report::junit::{SuiteInput, junit_xml};
use maas_e2e::report::redact::Redactor;
use maas_e2e::report::snapshot;

fn sample_events(secret: &str) -> Vec<RunEvent> {
    vec![
        RunEvent::RunStarted {
            run_id: "0badc0de".into(),
            scenario: "s".into(),
            target: "none".into(),
        },
        RunEvent::StageStarted {
            stage: StageName::Drive,
        },
        RunEvent::StepFinished {
            index: 0,
            name: "power_on all".into(),
            duration: Duration::from_millis(20),
            outcome: Outcome::Passed,
        },
        RunEvent::StepFinished {
            index: 1,
            name: "power_off all".into(),
            duration: Duration::from_millis(20),
            outcome: Outcome::Failed(format!("ipmipower -p {secret} said BMC error")),
        },
        RunEvent::StepFinished {
            index: 2,
            name: "sleep 1s".into(),
            duration: Duration::ZERO,
            outcome: Outcome::Skipped("an earlier step failed".into()),
        },
        RunEvent::StageFinished {
            stage: StageName::Drive,
            duration: Duration::from_millis(40),
            outcome: Outcome::Failed("step 1 failed".into()),
        },
        RunEvent::CheckFinished {
            index: 0,
            name: "a power_state == off".into(),
            outcome: Outcome::Passed,
        },
        RunEvent::SnapshotCompared {
            name: "s.none".into(),
            outcome: Outcome::Failed("differs".into()),
        },
        RunEvent::RunFinished {
            duration: Duration::from_millis(50),
            passed: false,
            interrupted: false,
        },
    ]
}

#[test]
fn junit_parses_and_counts_match() {
    let secret = "Sup3rSecretPw";
    let mut redactor = Redactor::new();
    redactor.secret(secret);
    let events = sample_events(secret);
    let xml = junit_xml(&[SuiteInput {
        name: "s.none".into(),
        events: &events,
        redactor: &redactor,
    }]);
    let doc = roxmltree::Document::parse(&xml).expect("junit.xml is well-formed XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    // 3 steps + 1 failed stage + 1 check + 1 snapshot.
    assert_eq!(cases.len(), 6, "{xml}");
    let failures = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    let skipped = doc
        .descendants()
        .filter(|n| n.has_tag_name("skipped"))
        .count();
    assert_eq!((failures, skipped), (3, 1), "{xml}");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("tests"), Some("6"));
    assert_eq!(suite.attribute("failures"), Some("3"));
    assert!(!xml.contains(secret), "the password leaked into junit.xml");
    assert!(xml.contains("&lt;secret&gt;") || xml.contains("<secret>"));
}

#[test]
fn snapshots_new_match_mismatch_update() {
    let dir = tempfile::tempdir().unwrap();
    let scen = dir.path().join("s.yaml");
    let snap = snapshot::snapshot_path(&scen, "s", "none");
    assert_eq!(snap, dir.path().join("s.none.snap"));
    let pending = dir.path().join("s.none.snap.new");

    // No golden: fails, leaves a pending snapshot for `cargo insta review`.
    let o = snapshot::compare(&scen, &snap, "a: 1\n", false);
    assert!(o.is_failed());
    assert!(pending.exists() && !snap.exists());

    // --update-snapshots writes the golden in insta's format.
    assert_eq!(
        snapshot::compare(&scen, &snap, "a: 1\n", true),
        Outcome::Passed
    );
    let golden = std::fs::read_to_string(&snap).unwrap();
    assert!(golden.starts_with("---\nsource: "), "{golden}");
    assert_eq!(snapshot::body(&golden), "a: 1\n");
    assert!(!pending.exists());

    // Same result: passes. Different: a readable diff and a pending file.
    assert_eq!(
        snapshot::compare(&scen, &snap, "a: 1\n", false),
        Outcome::Passed
    );
    match snapshot::compare(&scen, &snap, "a: 2\n", false) {
        Outcome::Failed(msg) => {
            assert!(msg.contains("-a: 1") && msg.contains("+a: 2"), "{msg}");
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert!(pending.exists());
}
