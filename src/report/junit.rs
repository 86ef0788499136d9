//! JUnit XML from the event stream: one testsuite per scenario run, one
//! testcase per stage failure, step, check and snapshot.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::events::{Outcome, RunEvent};
use super::redact::Redactor;

/// One scenario's events, with the redactor that hides its run values.
pub struct SuiteInput<'a> {
    pub name: String,
    pub events: &'a [RunEvent],
    pub redactor: &'a Redactor,
}

pub fn junit_xml(suites: &[SuiteInput<'_>]) -> String {
    let mut report = Report::new("maas-e2e");
    for s in suites {
        let mut suite = TestSuite::new(s.name.clone());
        for e in s.events {
            let (name, outcome, time) = match e {
                RunEvent::StepFinished {
                    index,
                    name,
                    duration,
                    outcome,
                } => (format!("step {index:02}: {name}"), outcome, Some(*duration)),
                RunEvent::CheckFinished {
                    index,
                    name,
                    outcome,
                } => (format!("expect {index:02}: {name}"), outcome, None),
                RunEvent::SnapshotCompared { name, outcome } => {
                    (format!("snapshot: {name}"), outcome, None)
                }
                // A stage shows up only when it failed: the steps carry the rest.
                RunEvent::StageFinished {
                    stage,
                    duration,
                    outcome,
                } if outcome.is_failed() => (
                    format!("stage: {}", stage.as_str()),
                    outcome,
                    Some(*duration),
                ),
                _ => continue,
            };
            let status = match outcome {
                Outcome::Passed => TestCaseStatus::success(),
                Outcome::Failed(msg) => {
                    let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    let msg = s.redactor.redact(msg);
                    st.set_message(first_line(&msg)).set_description(msg);
                    st
                }
                Outcome::Skipped(msg) => {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(s.redactor.redact(msg));
                    st
                }
            };
            let mut case = TestCase::new(s.redactor.redact(&name), status);
            case.set_classname(s.name.clone());
            if let Some(t) = time {
                case.set_time(t);
            }
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string().expect("junit serialises")
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}
