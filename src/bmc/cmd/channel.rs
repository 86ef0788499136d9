//! Channel commands (IPMI 2.0 §22.22-22.25, §22.15, §22.13): channel info
//! and access, payload support, cipher suites, and the session-less Get
//! Channel Authentication Capabilities that starts every LAN session.

use super::{Ctx, Env, Reply, cc};
use crate::bmc::codec::crypto::CipherSuite;
use crate::bmc::state::{BmcState, ChannelAccess, LAN_CHANNEL, SYSTEM_CHANNEL};

/// IPMI's own IANA (7154), LS byte first.
const IPMI_IANA: [u8; 3] = [0xF2, 0x1B, 0x00];

/// Get Channel Info (App 0x42).
pub fn get_info(env: &mut Env<'_>, data: &[u8]) -> Reply {
    let Some(&raw) = data.first() else {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    };
    let ch = env.ctx.resolve_channel(raw);
    let (medium, protocol, sessions) = match ch {
        // 802.3 LAN, IPMB-1.0 protocol, multi-session.
        LAN_CHANNEL => (0x04, 0x01, 0x80 | (env.ctx.active_sessions & 0x3F)),
        // System interface, KCS, session-less.
        SYSTEM_CHANNEL => (0x0C, 0x05, 0x00),
        _ => return Reply::cc(cc::INVALID_DATA_FIELD),
    };
    let mut out = vec![ch, medium, protocol, sessions];
    out.extend_from_slice(&IPMI_IANA);
    out.extend_from_slice(&[0xFF, 0xFF]);
    Reply::ok(out)
}

/// Get Channel Access (App 0x41): bits 7:6 of byte 2 pick non-volatile (01)
/// or volatile (10).
pub fn get_access(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 2 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    if env.ctx.resolve_channel(data[0]) != LAN_CHANNEL {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    let a = match data[1] >> 6 {
        1 => &env.state.lan_access_nonvolatile,
        2 => &env.state.lan_access_volatile,
        _ => return Reply::cc(cc::INVALID_DATA_FIELD),
    };
    Reply::ok([a.byte1(), a.privilege_limit])
}

/// Set Channel Access (App 0x40).
pub fn set_access(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 3 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    if env.ctx.resolve_channel(data[0]) != LAN_CHANNEL {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    let (b, p) = (data[1], data[2]);
    let level = p & 0x0F;
    if p >> 6 != 0 && p >> 6 != 3 && !(1..=5).contains(&level) {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    let apply_access = |a: &mut ChannelAccess| {
        a.access_mode = b & 7;
        a.user_level_auth_disabled = b & 0x08 != 0;
        a.per_message_auth_disabled = b & 0x10 != 0;
        a.pef_alerting_disabled = b & 0x20 != 0;
    };
    let st = &mut env.state;
    match b >> 6 {
        1 => apply_access(&mut st.lan_access_nonvolatile),
        2 => apply_access(&mut st.lan_access_volatile),
        _ => {}
    }
    match p >> 6 {
        1 => st.lan_access_nonvolatile.privilege_limit = level,
        2 => st.lan_access_volatile.privilege_limit = level,
        _ => {}
    }
    Reply::ok([])
}

/// Get Channel Payload Support (App 0x4E): IPMI messages only (no SOL).
pub fn get_payload_support(env: &mut Env<'_>, data: &[u8]) -> Reply {
    let Some(&raw) = data.first() else {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    };
    if env.ctx.resolve_channel(raw) != LAN_CHANNEL {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    Reply::ok([0x01, 0x00, 0x3F, 0x00, 0, 0, 0, 0])
}

/// Get Channel Cipher Suites (App 0x54, IPMI 2.0 §22.15): slice `index` of
/// the record stream, 16 bytes at most.
pub fn get_cipher_suites(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 3 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    let ch = env.ctx.resolve_channel(data[0]);
    if ch != LAN_CHANNEL || data[1] & 0x3F != 0 {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    let by_suite = data[2] & 0x80 != 0;
    let index = (data[2] & 0x3F) as usize;
    let suites: Vec<CipherSuite> = env
        .state
        .cipher_suites
        .iter()
        .filter_map(|&id| CipherSuite::by_id(id))
        .collect();
    let mut stream = Vec::new();
    if by_suite {
        for s in &suites {
            stream.extend_from_slice(&[
                0xC0,
                s.id,
                s.auth as u8,
                0x40 | s.integ as u8,
                0x80 | s.conf as u8,
            ]);
        }
    } else {
        let mut algs: Vec<u8> = Vec::new();
        for s in &suites {
            for tagged in [s.auth as u8, 0x40 | s.integ as u8, 0x80 | s.conf as u8] {
                if !algs.contains(&tagged) {
                    algs.push(tagged);
                }
            }
        }
        algs.sort_unstable();
        stream = algs;
    }
    let mut out = vec![ch];
    out.extend(stream.iter().skip(index * 16).take(16));
    Reply::ok(out)
}

/// Set/Read Channel Security Keys (App 0x56, IPMI 2.0 §22.25): K_G can be
/// read and set; K_R reads as zero and ignores writes. Keys are not lockable.
pub fn security_keys(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 3 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    if env.ctx.resolve_channel(data[0]) != LAN_CHANNEL || data[2] > 1 {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    let kg = data[2] == 1;
    match data[1] & 3 {
        0 => {
            let mut out = vec![0x00];
            out.extend_from_slice(if kg { &env.state.kg } else { &[0; 20] });
            Reply::ok(out)
        }
        1 => {
            let key = &data[3..];
            if key.len() > 20 {
                return Reply::cc(cc::REQUEST_LENGTH_INVALID);
            }
            if kg {
                env.state.kg = [0; 20];
                env.state.kg[..key.len()].copy_from_slice(key);
            }
            Reply::ok([0x00])
        }
        // Locking is not supported.
        _ => Reply::cc(0x80),
    }
}

/// Get Channel Authentication Capabilities (App 0x38, IPMI 2.0 §22.13).
/// Answers with the auth types enabled at the requested privilege; never
/// 0xCC for a privilege above the limit (FreeIPMI would read that as
/// "IPMI 2.0 unavailable"), the session layer refuses it later instead.
pub fn auth_capabilities(state: &BmcState, ctx: &Ctx, data: &[u8]) -> Reply {
    if data.len() < 2 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    let ch = ctx.resolve_channel(data[0]);
    if ch != LAN_CHANNEL {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    let want_v20 = data[0] & 0x80 != 0;
    let level = (data[1] & 0x0F) as usize;
    if !(1..=5).contains(&level) {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    let mut types = if state.v15_sessions {
        state.lan.auth_enables[level - 1] & state.auth_type_support
    } else {
        0
    };
    if want_v20 && state.v20_sessions {
        types |= 0x80;
    }
    let null_user = state.user(1).is_some_and(|u| u.enabled);
    let status = (state.kg_set() as u8) << 5
        | (state.lan_access_volatile.per_message_auth_disabled as u8) << 4
        | (state.lan_access_volatile.user_level_auth_disabled as u8) << 3
        | 1 << 2 // non-null user names enabled
        | (null_user as u8) << 1;
    let versions = if want_v20 {
        (state.v15_sessions as u8) | (state.v20_sessions as u8) << 1
    } else {
        0
    };
    Reply::ok([ch, types, status, versions, 0, 0, 0, 0])
}
