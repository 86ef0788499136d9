//! Integration tests of the virtual BMC against real clients (ipmitool,
//! FreeIPMI), our own RMCP+ client, ipmi-rs, real QEMU and a named mock of it on the in-band
//! socket. One test binary for the whole area.

#[path = "bmc/backends.rs"]
mod backends;
#[path = "bmc/bench.rs"]
mod bench;
#[path = "bmc/common.rs"]
mod common;
#[path = "bmc/fleet_process.rs"]
mod fleet_process;
#[path = "bmc/freeipmi.rs"]
mod freeipmi;
#[path = "bmc/inband.rs"]
mod inband;
#[path = "bmc/ipmitool.rs"]
mod ipmitool;
#[path = "bmc/negative.rs"]
mod negative;
#[path = "bmc/redfish.rs"]
mod redfish;
#[path = "bmc/retransmit.rs"]
mod retransmit;
#[path = "bmc/robustness.rs"]
mod robustness;
#[path = "bmc/sessions.rs"]
mod sessions;
