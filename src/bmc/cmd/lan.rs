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

    /// Every parameter `ipmitool lan print` reads, as the example BMC
    /// answers it: completion code 0 and the exact bytes.
    #[test]
    fn lan_print_parameters_snapshot() {
        let bmc = example_bmc();
        let mut answers = BTreeMap::new();
        for param in [
            0u8, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 22, 23, 24, 26,
        ] {
            let r = bmc.handle_inband(0x0C, 0x02, &[0x01, param, 0, 0]);
            assert_eq!(r.cc, 0, "parameter {param}");
            answers.insert(format!("{param:02}"), hex::encode(&r.data));
        }
        let suites = bmc.handle_inband(0x06, 0x54, &[0x01, 0x00, 0x80]);
        answers.insert("cipher_suites_0".into(), hex::encode(&suites.data));
        insta::assert_yaml_snapshot!(answers);
    }
}
