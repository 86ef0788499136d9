//! Stable exit codes, documented in README.md.

/// Every scenario passed.
pub const PASSED: i32 = 0;
/// At least one scenario failed (an expectation, a step, or the snapshot).
pub const FAILED: i32 = 1;
/// Bad input or usage: nothing was started.
pub const BAD_INPUT: i32 = 2;
/// The host lacks a prerequisite (`maas-e2e doctor` says which).
pub const HOST_NOT_READY: i32 = 3;
/// Interrupted (SIGINT/SIGTERM); teardown ran.
pub const INTERRUPTED: i32 = 130;
/// A run failed in the host or the lab (netns, bridges, BMCs, libvirt,
/// files, teardown) before its scenario could be judged.
pub const LAB_FAILED: i32 = 4;
/// A run failed in the target: the MAAS under test or its deployment
/// (sim region, chart, external MAAS) before its scenario could be judged.
pub const TARGET_FAILED: i32 = 5;
