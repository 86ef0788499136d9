//! The README's first command on a new machine: ci/setup-host.sh's package
//! phase with real installs, in a fresh container of this project's machine
//! kind (ci/images/fresh-host: Debian 12, qemu-utils from bookworm-backports,
//! no qemu-system-x86, no backports source). The container's apt-cache is
//! the real one writing slowly, so a `apt-cache ... | grep -q` under
//! pipefail loses its match every time rather than by chance.

use std::path::{Path, PathBuf};
use std::process::Command;

use maas_e2e::testing::{have_program, require};

/// The commit whose parent still had the `apt-cache policy | grep -q` check.
const PIPEFAIL_FIX: &str = "11423db";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn docker_ready() -> bool {
    require(
        "dockerd",
        have_program("docker")
            && Command::new("docker")
                .arg("info")
                .output()
                .is_ok_and(|o| o.status.success()),
        "start it: ci/setup-host.sh --docker",
    )
}

/// Runs ci/images/fresh-host/check.sh; returns (success, stdout+stderr).
fn fresh_host(script: Option<&Path>, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("ci/images/fresh-host/check.sh"));
    if let Some(script) = script {
        cmd.arg("--script").arg(script);
    }
    cmd.args(args);
    let out = cmd.output().expect("running ci/images/fresh-host/check.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The versions the check prints last: qemu-system-x86, qemu-utils, docker.io.
fn versions(output: &str) -> (String, String, String) {
    let line = output
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("fresh-host: qemu-system-x86 "))
        .unwrap_or_else(|| panic!("no version line in:\n{output}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 5, "version line: {line}");
    assert_eq!(
        (f[1], f[3]),
        ("qemu-utils", "docker.io"),
        "version line: {line}"
    );
    (f[0].into(), f[2].into(), f[4].into())
}

#[test]
fn pre_fix_setup_host_fails_on_a_fresh_machine_every_time() {
    if !docker_ready() {
        return;
    }
    let old = tempfile::NamedTempFile::new().unwrap();
    let shown = Command::new("git")
        .args(["show", &format!("{PIPEFAIL_FIX}^:ci/setup-host.sh")])
        .current_dir(repo())
        .output()
        .expect("git show");
    assert!(
        shown.status.success(),
        "this test needs the repository's history (a full clone): {}",
        String::from_utf8_lossy(&shown.stderr)
    );
    std::fs::write(old.path(), &shown.stdout).unwrap();
    // Three times: the slow apt-cache makes the old failure certain, not luck.
    for attempt in 1..=3 {
        let (ok, out) = fresh_host(Some(old.path()), &["--docker"]);
        assert!(!ok, "attempt {attempt}: the pre-fix script passed:\n{out}");
        assert!(
            out.contains("pkgProblemResolver::Resolve generated breaks"),
            "attempt {attempt}: failed for another reason:\n{out}"
        );
    }
}

#[test]
fn setup_host_packages_install_on_a_fresh_machine() {
    if !docker_ready() {
        return;
    }
    let (ok, out) = fresh_host(None, &["--packages-only"]);
    assert!(ok, "ci/setup-host.sh --packages-only failed:\n{out}");
    let (system, utils, docker) = versions(&out);
    assert_eq!(system, utils, "QEMU mixed between suites:\n{out}");
    assert!(
        utils.contains("bpo12"),
        "qemu-utils is not the image's backports build: {utils}"
    );
    assert_eq!(docker, "absent", "docker.io installed without --docker");
}

#[test]
fn setup_host_docker_packages_install_on_a_fresh_machine() {
    if !docker_ready() {
        return;
    }
    let (ok, out) = fresh_host(None, &["--packages-only", "--docker"]);
    assert!(
        ok,
        "ci/setup-host.sh --packages-only --docker failed:\n{out}"
    );
    let (system, utils, docker) = versions(&out);
    assert_eq!(system, utils, "QEMU mixed between suites:\n{out}");
    assert_ne!(docker, "absent", "docker.io missing after --docker:\n{out}");
}
