//! BMC device and messaging commands (IPMI 2.0 §20, §22): Get Device ID,
//! BMC Global Enables. GUIDs, self test and message flags are one-liners in
//! the dispatcher.

use super::{Env, Reply, cc};

/// Get Device ID (App 0x01, IPMI 2.0 §20.1).
pub fn get_device_id(env: &mut Env<'_>, _data: &[u8]) -> Reply {
    let id = &env.state.identity;
    let m = id.manufacturer_id.to_le_bytes();
    let p = id.product_id.to_le_bytes();
    Reply::ok([
        id.device_id,
        id.device_revision & 0x0F,
        id.firmware_major & 0x7F,
        id.firmware_minor,
        0x02, // IPMI 2.0
        0x80, // additional device support: chassis device
        m[0],
        m[1],
        m[2] & 0x0F,
        p[0],
        p[1],
        0,
        0,
        0,
        0, // auxiliary firmware revision
    ])
}

/// Set BMC Global Enables (App 0x2E, IPMI 2.0 §22.1).
pub fn set_global_enables(env: &mut Env<'_>, data: &[u8]) -> Reply {
    let Some(&b) = data.first() else {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    };
    env.state.global_enables = b;
    Reply::ok([])
}
