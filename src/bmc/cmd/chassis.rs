//! Chassis commands (IPMI 2.0 §28): Get Chassis Status, Chassis Control,
//! Chassis Identify. Power goes through the BMC's power backend; a backend
//! failure answers 0xC0 (node busy: clients retry), as virtualbmc does.

use super::{Env, Reply, cc};
use crate::bmc::power::PowerOp;

/// Get Chassis Status (Chassis 0x01, IPMI 2.0 §28.2).
pub fn get_status(env: &mut Env<'_>, _data: &[u8]) -> Reply {
    match env.power.is_on() {
        // byte1: power on, restore policy "stays off"; byte2: last event
        // "powered on by IPMI command"; byte3: identify supported.
        Ok(on) => Reply::ok([on as u8, 0x10, 0x40, 0x00]),
        Err(e) => {
            tracing::warn!(error = %e, "power backend failed reading state");
            Reply::cc(cc::NODE_BUSY)
        }
    }
}

/// Chassis Control (Chassis 0x02, IPMI 2.0 §28.3).
pub fn control(env: &mut Env<'_>, data: &[u8]) -> Reply {
    let Some(&b) = data.first() else {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    };
    let op = match b & 0x0F {
        0 => PowerOp::Off,
        1 => PowerOp::On,
        2 => PowerOp::Cycle,
        3 => PowerOp::Reset,
        4 => PowerOp::Nmi,
        5 => PowerOp::Soft,
        _ => return Reply::cc(cc::INVALID_DATA_FIELD),
    };
    if op == PowerOp::On && env.faults.ack_power_on_without_doing {
        return Reply::ok([]);
    }
    let on = match env.power.is_on() {
        Ok(on) => on,
        Err(e) => {
            tracing::warn!(error = %e, "power backend failed reading state");
            return Reply::cc(cc::NODE_BUSY);
        }
    };
    // Cycling, resetting or soft-stopping a machine that is off is not
    // possible in that state (IPMI 2.0 §28.3).
    if !on
        && matches!(
            op,
            PowerOp::Cycle | PowerOp::Reset | PowerOp::Soft | PowerOp::Nmi
        )
    {
        return Reply::cc(cc::NOT_SUPPORTED_IN_STATE);
    }
    match env.power.apply(op) {
        Ok(()) => Reply::ok([]),
        Err(e) => {
            tracing::warn!(error = %e, ?op, "power backend failed");
            Reply::cc(cc::NODE_BUSY)
        }
    }
}

/// Chassis Identify (Chassis 0x04, IPMI 2.0 §28.5): accepted, no light here.
pub fn identify(_env: &mut Env<'_>, _data: &[u8]) -> Reply {
    Reply::ok([])
}
