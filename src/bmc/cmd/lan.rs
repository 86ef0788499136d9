//! LAN configuration parameters (Transport 0x01 / 0x02, IPMI 2.0 §23.1-23.2).
//! Every parameter `ipmitool lan print` reads answers cc 0; parameter 3 is
//! the BMC's own lab address, which MAAS's autodetect turns into the
//! machine's power_address.

use std::net::Ipv4Addr;

use super::{Env, Reply, cc};
use crate::bmc::state::LAN_CHANNEL;

const NOT_SUPPORTED: u8 = 0x80;
const READ_ONLY: u8 = 0x82;
/// Parameter revision: 1.1 (IPMI 2.0 §23.2).
const REVISION: u8 = 0x11;

/// Get LAN Configuration Parameters.
pub fn get(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 4 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    if env.ctx.resolve_channel(data[0]) != LAN_CHANNEL {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    if data[0] & 0x80 != 0 {
        return Reply::ok([REVISION]);
    }
    let st = &env.state;
    let l = &st.lan;
    let value: Vec<u8> = match data[1] {
        0 => vec![l.set_in_progress],
        1 => vec![st.auth_type_support],
        2 => l.auth_enables.to_vec(),
        3 => l.ip.octets().to_vec(),
        4 => vec![l.ip_source],
        5 => l.mac.to_vec(),
        6 => l.netmask.octets().to_vec(),
        7 => l.ipv4_header.to_vec(),
        8 => 623u16.to_le_bytes().to_vec(),
        9 => 664u16.to_le_bytes().to_vec(),
        10 => vec![l.arp_control],
        11 => vec![l.garp_interval],
        12 => l.gateway_ip.octets().to_vec(),
        13 => l.gateway_mac.to_vec(),
        14 => l.backup_gateway_ip.octets().to_vec(),
        15 => l.backup_gateway_mac.to_vec(),
        16 => l.community.to_vec(),
        17 => vec![0], // no alert destinations
        20 => l.vlan_id.to_vec(),
        21 => vec![l.vlan_priority],
        22 => vec![st.cipher_suites.len() as u8],
        23 => {
            let mut v = vec![0];
            v.extend_from_slice(&st.cipher_suites);
            v
        }
        24 => {
            let mut v = vec![0];
            for pair in l.cipher_privileges.chunks(2) {
                v.push((pair[0] & 0x0F) | (pair[1] & 0x0F) << 4);
            }
            v
        }
        26 => l.bad_password_threshold.to_vec(),
        _ => return Reply::cc(NOT_SUPPORTED),
    };
    let mut out = vec![REVISION];
    out.extend_from_slice(&value);
    Reply::ok(out)
}

/// Set LAN Configuration Parameters.
pub fn set(env: &mut Env<'_>, data: &[u8]) -> Reply {
    if data.len() < 3 {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    }
    if env.ctx.resolve_channel(data[0]) != LAN_CHANNEL {
        return Reply::cc(cc::INVALID_DATA_FIELD);
    }
    let v = &data[2..];
    let l = &mut env.state.lan;
    let sized = |n: usize| -> Result<&[u8], Reply> {
        if v.len() < n {
            Err(Reply::cc(cc::REQUEST_LENGTH_INVALID))
        } else {
            Ok(&v[..n])
        }
    };
    let ip = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    let r: Result<(), Reply> = (|| {
        match data[1] {
            0 => l.set_in_progress = sized(1)?[0] & 3,
            1 | 8 | 9 | 17 | 22 | 23 => return Err(Reply::cc(READ_ONLY)),
            2 => l.auth_enables.copy_from_slice(sized(5)?),
            3 => l.ip = ip(sized(4)?),
            4 => l.ip_source = sized(1)?[0] & 0x0F,
            5 => l.mac.copy_from_slice(sized(6)?),
            6 => l.netmask = ip(sized(4)?),
            7 => l.ipv4_header.copy_from_slice(sized(3)?),
            10 => l.arp_control = sized(1)?[0],
            11 => l.garp_interval = sized(1)?[0],
            12 => l.gateway_ip = ip(sized(4)?),
            13 => l.gateway_mac.copy_from_slice(sized(6)?),
            14 => l.backup_gateway_ip = ip(sized(4)?),
            15 => l.backup_gateway_mac.copy_from_slice(sized(6)?),
            16 => l.community.copy_from_slice(sized(18)?),
            20 => l.vlan_id.copy_from_slice(sized(2)?),
            21 => l.vlan_priority = sized(1)?[0],
            24 => {
                let b = sized(9)?;
                for (i, byte) in b[1..].iter().enumerate() {
                    l.cipher_privileges[2 * i] = byte & 0x0F;
                    l.cipher_privileges[2 * i + 1] = byte >> 4;
                }
            }
            26 => l.bad_password_threshold.copy_from_slice(sized(6)?),
            _ => return Err(Reply::cc(NOT_SUPPORTED)),
        }
        Ok(())
    })();
    match r {
        Ok(()) => Reply::ok([]),
        Err(reply) => reply,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::bmc::Bmc;
    use crate::bmc::config::FleetConfig;
    use crate::bmc::power::MemoryPower;

    fn example_bmc() -> Bmc {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bmc/example.yaml");
        let cfg = FleetConfig::load(&path).unwrap();
        let b = &cfg.bmcs[0];
        Bmc::new(
            b,
            &b.resolve().unwrap(),
            Arc::new(MemoryPower::new(false)),
            None,
        )
    }

    /// A parameter's bytes as named fields, decoded here from the IPMI 2.0
    /// tables (§23.2, §22.15) independently of the handler, so the snapshot
    /// reads as `ipmitool lan print` would show it and a changed byte shows
    /// up as a changed field.
    fn decode(param: u8, d: &[u8]) -> serde_json::Value {
        use serde_json::json;
        let ip = |b: &[u8]| format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
        let mac = |b: &[u8]| {
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        };
        let auth_types = |b: u8| {
            [
                (0, "none"),
                (1, "md2"),
                (2, "md5"),
                (4, "password"),
                (5, "oem"),
            ]
            .iter()
            .filter(|(bit, _)| b & (1 << bit) != 0)
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
        };
        let privilege = |n: u8| match n {
            1 => "callback",
            2 => "user",
            3 => "operator",
            4 => "administrator",
            5 => "oem",
            _ => "reserved",
        };
        match param {
            0 => {
                json!({ "set_in_progress": (["set complete", "set in progress", "commit write", "reserved"][(d[0] & 3) as usize]) })
            }
            1 => json!({ "auth_type_support": auth_types(d[0]) }),
            2 => json!({
                "callback": auth_types(d[0]), "user": auth_types(d[1]),
                "operator": auth_types(d[2]), "admin": auth_types(d[3]), "oem": auth_types(d[4]),
            }),
            3 => json!({ "ip_address": ip(d) }),
            4 => {
                json!({ "ip_source": (["unspecified", "static", "dhcp", "bios", "other"].get(d[0] as usize & 0x0F).copied().unwrap_or("reserved")) })
            }
            5 => json!({ "mac_address": mac(d) }),
            6 => json!({ "subnet_mask": ip(d) }),
            7 => {
                json!({ "ttl": d[0], "flags": d[1] >> 5, "precedence": d[2] >> 5, "tos": (d[2] >> 1) & 0x0F })
            }
            10 => json!({ "bmc_arp_responses": d[0] & 2 != 0, "gratuitous_arp": d[0] & 1 != 0 }),
            11 => json!({ "gratuitous_arp_interval_ms": u32::from(d[0]) * 500 }),
            12 => json!({ "default_gateway_ip": ip(d) }),
            13 => json!({ "default_gateway_mac": mac(d) }),
            14 => json!({ "backup_gateway_ip": ip(d) }),
            15 => json!({ "backup_gateway_mac": mac(d) }),
            16 => json!({ "community": String::from_utf8_lossy(d).trim_end_matches('\0') }),
            22 => json!({ "cipher_suite_entries": d[0] }),
            23 => json!({ "cipher_suite_ids": &d[1..] }),
            24 => json!({
                "cipher_suite_max_privilege": d[1..]
                    .iter()
                    .flat_map(|b| [b & 0x0F, b >> 4])
                    .map(privilege)
                    .collect::<Vec<_>>(),
            }),
            26 => json!({
                "generate_event": d[0] & 1 != 0,
                "threshold": d[1],
                "reset_interval_s": u32::from(u16::from_le_bytes([d[2], d[3]])) * 10,
                "lockout_interval_s": u32::from(u16::from_le_bytes([d[4], d[5]])) * 10,
            }),
            _ => json!(hex::encode(d)),
        }
    }

    /// Get Channel Cipher Suites records (§22.15): each 0xC0 starts a suite.
    fn decode_suites(d: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        let mut i = 1; // after the channel number
        while i + 1 < d.len() {
            assert_eq!(d[i], 0xC0, "a standard cipher suite record at {i}: {d:x?}");
            let id = d[i + 1];
            let mut algs = Vec::new();
            i += 2;
            while i < d.len() && d[i] != 0xC0 {
                let kind = ["auth", "integrity", "confidentiality", "?"][(d[i] >> 6) as usize];
                algs.push(format!("{kind} {}", d[i] & 0x3F));
                i += 1;
            }
            out.push(format!("suite {id}: {}", algs.join(", ")));
        }
        out
    }

    /// Every parameter `ipmitool lan print` reads, as the example BMC
    /// answers it: completion code 0, parameter revision 1.1, and each
    /// field by name.
    #[test]
    fn lan_print_parameters_snapshot() {
        let bmc = example_bmc();
        let mut answers = BTreeMap::new();
        for param in [
            0u8, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 22, 23, 24, 26,
        ] {
            let r = bmc.handle_inband(0x0C, 0x02, &[0x01, param, 0, 0]);
            assert_eq!(r.cc, 0, "parameter {param}");
            assert_eq!(r.data[0], 0x11, "parameter revision of {param}");
            answers.insert(format!("{param:02}"), decode(param, &r.data[1..]));
        }
        let suites = bmc.handle_inband(0x06, 0x54, &[0x01, 0x00, 0x80]);
        assert_eq!(suites.cc, 0);
        answers.insert(
            "cipher_suites".into(),
            serde_json::json!(decode_suites(&suites.data)),
        );
        insta::assert_yaml_snapshot!(answers);
    }
}
