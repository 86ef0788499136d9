//! Serial-over-LAN configuration (Transport 0x21/0x22, IPMI 2.0 §26.2-26.3)
//! and user payload access (App 0x4C/0x4D, §24.6-24.7). This BMC offers no
//! SOL payload; these answer so that `ipmi-config --checkout` of the core
//! sections (SOL_Conf, UserN:SOL_Payload_Access) reads consistent values.

use super::{Env, Reply, cc};
use crate::bmc::state::LAN_CHANNEL;

/// Get SOL Configuration Parameters: fixed values, SOL disabled.
pub fn get_config(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 4 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    if env.ctx.resolve_channel(data[0]) != LAN_CHANNEL {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    if data[0] & 0x80 != 0 {
        return Reply::ok([0x11]);
    }
    let value: &[u8] = match data[1] {
        0 => &[0],           // set complete
        1 => &[0],           // SOL disabled
        2 => &[0x04],        // privilege: ADMIN, no forced auth/encryption
        3 => &[0x0C, 0x60],  // accumulate 60 ms, send threshold 96
        4 => &[0x07, 0x32],  // retry count 7, interval 500 ms
        5 | 6 => &[0x0A],    // 115200 bps
        7 => &[LAN_CHANNEL], // payload channel
        8 => &[0x6F, 0x02],  // port 623
        _ => return Reply::cc(0x80),
    };
    let mut out = vec![0x11];
    out.extend_from_slice(value);
    Reply::ok(out)
}

/// Set SOL Configuration Parameters: accepted and ignored (no SOL here).
pub fn set_config(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 3 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    if env.ctx.resolve_channel(data[0]) != LAN_CHANNEL {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    if data[1] > 8 {
        return Reply::cc(0x80);
    }
    Reply::ok([])
}

/// Get User Payload Access: no payloads beyond IPMI for anyone.
pub fn get_user_payload_access(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 2 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    if env.ctx.resolve_channel(data[0]) != LAN_CHANNEL || env.state.user(data[1] & 0x3F).is_none() {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    Reply::ok([0, 0, 0, 0])
}

/// Set User Payload Access: accepted (SOL cannot be enabled, so no effect).
pub fn set_user_payload_access(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 6 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    if env.ctx.resolve_channel(data[0]) != LAN_CHANNEL || env.state.user(data[1] & 0x3F).is_none() {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    Reply::ok([])
}
