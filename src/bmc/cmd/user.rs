//! User commands (IPMI 2.0 §22.26-22.30): access, name and password of the
//! user slots. The LAN channel carries each user's privilege limit and
//! IPMI-messaging bit; the system interface has no user limits.

use super::{Env, Reply, cc};
use crate::bmc::state::{LAN_CHANNEL, MAX_USERS, privilege};

fn lan_channel(env: &Env<'_>, raw: u8) -> bool {
    env.ctx.resolve_channel(raw) == LAN_CHANNEL
}

/// Get User Access (App 0x44).
pub fn get_access(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 2 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    if !lan_channel(env, data[0]) {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    let Some(u) = env.state.user(data[1] & 0x3F) else {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    };
    let enabled_count = env.state.users.iter().filter(|u| u.enabled).count() as u8;
    let status = if u.enabled { 0x40 } else { 0x80 };
    let a = u.lan;
    Reply::ok([
        MAX_USERS,
        status | enabled_count,
        1, // user 1 has a fixed (null) name
        (a.callback_only as u8) << 6
            | (a.link_auth as u8) << 5
            | (a.ipmi_messaging as u8) << 4
            | (a.privilege & 0x0F),
    ])
}

/// Set User Access (App 0x43).
pub fn set_access(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 3 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    if !lan_channel(env, data[0]) {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    let level = data[2] & 0x0F;
    if !((1..=5).contains(&level) || level == privilege::NO_ACCESS) {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    let Some(u) = env.state.user_mut(data[1] & 0x3F) else {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    };
    if data[0] & 0x80 != 0 {
        u.lan.callback_only = data[0] & 0x40 != 0;
        u.lan.link_auth = data[0] & 0x20 != 0;
        u.lan.ipmi_messaging = data[0] & 0x10 != 0;
    }
    u.lan.privilege = level;
    Reply::ok([])
}

/// Get User Name (App 0x46).
pub fn get_name(env: &mut Env<'_>, data: &[u8]) -> Reply {
    let Some(&id) = data.first() else {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    };
    match env.state.user(id & 0x3F) {
        Some(u) => Reply::ok(u.name),
        None => Reply::cc(cc::INVALID_DATA_FIELD),
    }
}

/// Set User Name (App 0x45). User 1's name is fixed (null).
pub fn set_name(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 17 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    let id = data[0] & 0x3F;
    let name: [u8; 16] = data[1..17].try_into().expect("16 bytes");
    if id == 1 && name != [0; 16] {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    let Some(u) = env.state.user_mut(id) else {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    };
    u.name = name;
    Reply::ok([])
}

/// Set User Password (App 0x47): disable, enable, set or test.
pub fn set_password(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 2 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    let size = if data[0] & 0x80 != 0 { 20 } else { 16 };
    let Some(u) = env.state.user_mut(data[0] & 0x3F) else {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    };
    let op = data[1] & 3;
    let mut pw = [0u8; 20];
    if op >= 2 {
        if data.len() != 2 + size {
            // Test with the wrong size answers 0x81 (IPMI 2.0 §22.30).
            return Reply::cc(if op == 3 {
                0x81
            } else {
                cc::REQUEST_LENGTH_INVALID
            });
        }
        pw[..size].copy_from_slice(&data[2..2 + size]);
    }
    match op {
        0 => u.enabled = false,
        1 => u.enabled = true,
        2 => u.password = pw,
        _ => {
            if u.password != pw {
                return Reply::cc(0x80);
            }
        }
    }
    Reply::ok([])
}
