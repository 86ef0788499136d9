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
