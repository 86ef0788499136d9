//! System boot options (Chassis 0x08 / 0x09, IPMI 2.0 §28.12-28.13):
//! parameters 0 (set in progress), 3 (valid-bit clearing), 4 (boot info
//! acknowledge) and 5 (boot flags). Others answer 0x80 "not supported",
//! which ipmitool and ipmi-config treat as non-fatal.

use super::{Env, Reply, cc};

const PARAM_NOT_SUPPORTED: u8 = 0x80;

/// Set System Boot Options.
pub fn set(env: &mut Env<'_>, data: &[u8]) -> Reply {
    let Some((&sel, value)) = data.split_first() else {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    };
    let boot = &mut env.state.boot;
    let need = |n: usize| {
        if value.len() < n {
            Err(Reply::cc(cc::REQUEST_LENGTH_INVALID))
        } else {
            Ok(())
        }
    };
    let result = match sel & 0x7F {
        0 => need(1).map(|_| boot.set_in_progress = value[0] & 3),
        3 => need(1).map(|_| boot.valid_bit_clearing = value[0] & 0x1F),
        4 => need(2).map(|_| {
            let mask = value[0];
            boot.info_ack[0] |= mask;
            boot.info_ack[1] = (boot.info_ack[1] & !mask) | (value[1] & mask);
        }),
        5 => need(5).map(|_| boot.flags.copy_from_slice(&value[..5])),
        _ => Err(Reply::cc(PARAM_NOT_SUPPORTED)),
    };
    match result {
        Ok(()) => Reply::ok([]),
        Err(r) => r,
    }
}

/// Get System Boot Options.
pub fn get(env: &mut Env<'_>, data: &[u8]) -> Reply {
    let Some(&sel) = data.first() else {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    };
    let param = sel & 0x7F;
    let boot = &env.state.boot;
    let value: Vec<u8> = match param {
        0 => vec![boot.set_in_progress],
        3 => vec![boot.valid_bit_clearing],
        4 => boot.info_ack.to_vec(),
        5 => boot.flags.to_vec(),
        _ => return Reply::cc(PARAM_NOT_SUPPORTED),
    };
    let mut out = vec![0x01, param];
    out.extend_from_slice(&value);
    Reply::ok(out)
}
