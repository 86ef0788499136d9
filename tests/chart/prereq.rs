//! Before anything starts: missing kind, helm or docker is named with what
//! to install.

use maas_e2e::targets::chart::prereq::{TOOLS, check_with};

/// A PATH lookup over one directory, like the real one over PATH.
fn lookup_in(dir: &std::path::Path) -> impl Fn(&str) -> bool + '_ {
    move |p: &str| dir.join(p).is_file()
}

#[test]
fn a_host_without_kind_helm_and_docker_is_told_what_to_install() {
    let dir = tempfile::tempdir().unwrap();
    for present in ["kubectl", "ip"] {
        std::fs::write(dir.path().join(present), "#!/bin/sh\n").unwrap();
    }
    let err = check_with(lookup_in(dir.path())).unwrap_err();
    let names: Vec<&str> = err.missing.iter().map(|t| t.program).collect();
    assert_eq!(names, ["docker", "kind", "helm"]);
    let text = err.to_string();
    assert!(
        text.contains("kind (the Kubernetes cluster): install"),
        "{text}"
    );
    assert!(text.contains("https://kind.sigs.k8s.io"), "{text}");
    assert!(text.contains("https://helm.sh"), "{text}");
    assert!(text.contains("apt-get install docker.io"), "{text}");
    assert!(text.contains("nothing was started"), "{text}");
    assert!(
        !text.contains("kubectl ("),
        "present tools are not listed: {text}"
    );
}

#[test]
fn a_complete_host_passes() {
    let dir = tempfile::tempdir().unwrap();
    for t in TOOLS {
        std::fs::write(dir.path().join(t.program), "").unwrap();
    }
    check_with(lookup_in(dir.path())).unwrap();
}

/// The real check looks the tools up on PATH, whatever this host has:
/// a PATH holding all of them passes, the same PATH minus `kind` names
/// kind (nextest runs each test in a process of its own, so the PATH
/// change stays in this test).
#[test]
fn the_real_check_reads_path() {
    let dir = tempfile::tempdir().unwrap();
    for t in TOOLS {
        std::fs::write(dir.path().join(t.program), "#!/bin/sh\n").unwrap();
    }
    // SAFETY: this test's process runs no other thread that reads the environment.
    unsafe { std::env::set_var("PATH", dir.path()) };
    maas_e2e::targets::chart::prereq::check().expect("every tool on PATH");
    std::fs::remove_file(dir.path().join("kind")).unwrap();
    let err = maas_e2e::targets::chart::prereq::check().unwrap_err();
    let names: Vec<&str> = err.missing.iter().map(|t| t.program).collect();
    assert_eq!(names, ["kind"]);
}
