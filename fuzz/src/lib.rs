//! The BMC modules of maas-e2e, compiled on their own for fuzzing. The
//! module tree mirrors the main crate so `crate::...` paths resolve.

#[path = "../../src/bmc/mod.rs"]
pub mod bmc;
#[path = "../../src/cmd.rs"]
pub mod cmd;
#[path = "../../src/process.rs"]
pub mod process;
#[path = "../../src/testing.rs"]
pub mod testing;
pub mod lab;

use std::sync::Arc;

use bmc::config::FleetConfig;

/// One BMC as the example fixture configures it, with in-memory power.
pub fn fixture_bmc() -> bmc::Bmc {
    let cfg = FleetConfig::from_yaml(include_str!("../../fixtures/bmc/example.yaml"), std::path::Path::new("example.yaml")).expect("fixture is valid");
    let b = &cfg.bmcs[0];
    let r = b.resolve().expect("fixture resolves");
    bmc::Bmc::new(b, &r, Arc::new(bmc::power::MemoryPower::new(false)), None)
}
