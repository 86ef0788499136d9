//! A byte stream from "QEMU" on the in-band socket: the VM protocol decoder,
//! then every command handler with system-interface privilege (no session
//! stands in the way here, so this reaches all handlers). Never panics.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use maas_e2e_bmc_fuzz::bmc::Bmc;
use maas_e2e_bmc_fuzz::bmc::inband::{Decoder, Frame, encode_response};

static BMC: OnceLock<Bmc> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let bmc = BMC.get_or_init(maas_e2e_bmc_fuzz::fixture_bmc);
    let mut dec = Decoder::default();
    let mut frames = Vec::new();
    dec.feed(data, &mut frames);
    for f in frames {
        if let Frame::Request {
            seq,
            netfn,
            lun,
            cmd,
            data,
        } = f
        {
            let r = bmc.handle_inband(netfn, cmd, &data);
            let _ = encode_response(seq, netfn, lun, cmd, r.cc, &r.data);
        }
    }
});
