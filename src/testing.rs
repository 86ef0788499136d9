//! Prerequisite checks for tests: under CI=true a missing prerequisite fails
//! the test loudly; on a laptop it is reported and the test returns early.

/// Whether `program` is on PATH.
pub fn have_program(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(program);
            std::fs::metadata(&p).is_ok_and(|m| m.is_file())
        })
    })
}

/// Whether tests run in CI, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// `true` when the prerequisite is there. When it is not: panics under
/// CI=true, else prints why the test does nothing and returns `false`.
#[track_caller]
pub fn require(what: &str, available: bool, how_to_fix: &str) -> bool {
    if available {
        return true;
    }
    let msg = format!("prerequisite missing: {what}; {how_to_fix}");
    if in_ci() {
        panic!("{msg} (CI=true: tests never skip)");
    }
    eprintln!("SKIP: {msg}");
    false
}

/// `require` for a program on PATH, naming the Debian package that has it.
#[track_caller]
pub fn require_program(program: &str, debian_package: &str) -> bool {
    require(
        program,
        have_program(program),
        &format!("install it: apt-get install {debian_package} (or run ci/setup-host.sh)"),
    )
}

/// `require` for root (network namespaces, bridges, libvirt system domains).
#[track_caller]
pub fn require_root() -> bool {
    require(
        "root",
        nix::unistd::Uid::effective().is_root(),
        "run the test as root",
    )
}
