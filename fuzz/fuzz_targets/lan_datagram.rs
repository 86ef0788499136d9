//! Any sequence of datagrams into one BMC's LAN handler (RMCP, ASF, IPMI
//! 1.5 sessions, RMCP+ setup and session packets) must never panic.
//! Input: datagrams, each prefixed by a one-byte length.
#![no_main]

use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use maas_e2e_bmc_fuzz::bmc::Bmc;

static BMC: OnceLock<Bmc> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let bmc = BMC.get_or_init(maas_e2e_bmc_fuzz::fixture_bmc);
    let peer = "127.0.0.1:623".parse().unwrap();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = (len as usize).min(tail.len());
        let _ = bmc.handle_lan(peer, &tail[..n], Instant::now());
        rest = &tail[n..];
    }
});
