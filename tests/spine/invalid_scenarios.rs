//! Every broken scenario under tests/invalid-scenarios/ is refused with the
//! exact message in its `.expected` file (UPDATE_EXPECTED=1 rewrites them).

use std::path::Path;

#[test]
fn broken_scenarios_give_located_messages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid-scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "the corpus has {} files; the issue asks for at least 15",
        files.len()
    );
    let update = std::env::var_os("UPDATE_EXPECTED").is_some();
    let mut failures = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
        let source = std::fs::read_to_string(file).unwrap();
        let err = match maas_e2e::scenario::parse(rel, &source) {
            Ok(_) => {
                failures.push(format!("{}: was accepted", rel.display()));
                continue;
            }
            Err(e) => e.to_string(),
        };
        // Every message is located and says what is allowed or required.
        for line in err.lines() {
            let prefix = format!("{}:", rel.display());
            assert!(line.starts_with(&prefix), "{line}: not located");
            assert!(
                line.contains("allowed") || line.contains("required") || line.contains("expected"),
                "{line}: does not say what is allowed"
            );
        }
        let expected_path = file.with_extension("expected");
        if update {
            std::fs::write(&expected_path, format!("{err}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!(
                "{} is missing; run with UPDATE_EXPECTED=1",
                expected_path.display()
            )
        });
        if expected.trim_end() != err {
            failures.push(format!(
                "{}:\n  expected: {}\n  got:      {}",
                rel.display(),
                expected.trim_end(),
                err
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
