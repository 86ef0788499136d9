//! maas-e2e: an end-to-end test harness with virtual hardware for the MaaS
//! Helm artifacts. The flow runs one way:
//!
//! scenario -> plan -> lab -> target -> drive -> observe -> result -> report
//!
//! Each arrow is one module; later stages see earlier ones only through the
//! values those hand forward. See docs/architecture.md.

pub mod bmc;
pub mod cli;
pub mod cmd;
pub mod doctor;
pub mod exit;
pub mod image;
pub mod lab;
pub mod maas;
pub mod plan;
pub mod process;
pub mod report;
pub mod run;
pub mod scenario;
pub mod targets;
pub mod testing;
