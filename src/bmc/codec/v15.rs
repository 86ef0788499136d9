//! The IPMI 1.5 session wrapper (IPMI 2.0 §13.6, table 13-8): auth type,
//! sequence number, session id, optional 16-byte authcode, message length.

use super::DecodeError;
use super::rmcp;

/// A decoded 1.5 session packet (after the RMCP header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V15Packet<'a> {
    pub auth_type: u8,
    pub seq: u32,
    pub session_id: u32,
    pub authcode: Option<[u8; 16]>,
    /// The IPMI LAN message, exactly as long as the length byte says.
    pub msg: &'a [u8],
}

impl<'a> V15Packet<'a> {
    pub fn decode(b: &'a [u8]) -> Result<Self, DecodeError> {
        if b.len() < 10 {
            return Err(DecodeError::Short("IPMI 1.5 session header"));
        }
        let auth_type = b[0] & 0x0F;
        let seq = u32::from_le_bytes(b[1..5].try_into().expect("4 bytes"));
        let session_id = u32::from_le_bytes(b[5..9].try_into().expect("4 bytes"));
        let (authcode, rest) = if auth_type == 0 {
            (None, &b[9..])
        } else {
            if b.len() < 26 {
                return Err(DecodeError::Short("IPMI 1.5 authcode"));
            }
            (Some(b[9..25].try_into().expect("16 bytes")), &b[25..])
        };
        let len = rest[0] as usize;
        let have = rest.len() - 1;
        if len > have {
            return Err(DecodeError::Length { said: len, have });
        }
        // Trailing bytes past the length (legacy pad) are ignored.
        Ok(V15Packet {
            auth_type,
            seq,
            session_id,
            authcode,
            msg: &rest[1..1 + len],
        })
    }
}

/// Encode a full datagram (RMCP header included).
pub fn encode(
    auth_type: u8,
    seq: u32,
    session_id: u32,
    authcode: Option<[u8; 16]>,
    msg: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + 26 + msg.len());
    v.extend_from_slice(&rmcp::ipmi_header());
    v.push(auth_type);
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend_from_slice(&session_id.to_le_bytes());
    if let Some(code) = authcode {
        v.extend_from_slice(&code);
    }
    v.push(msg.len() as u8);
    v.extend_from_slice(msg);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_with_and_without_authcode() {
        let d = encode(0, 0, 0, None, &[1, 2, 3]);
        let p = V15Packet::decode(&d[4..]).unwrap();
        assert_eq!(
            (p.auth_type, p.authcode, p.msg),
            (0, None, &[1u8, 2, 3][..])
        );
        let d = encode(2, 5, 0xdeadbeef, Some([9; 16]), &[4, 5]);
        let p = V15Packet::decode(&d[4..]).unwrap();
        assert_eq!(
            (p.seq, p.session_id, p.authcode, p.msg),
            (5, 0xdeadbeef, Some([9; 16]), &[4u8, 5][..])
        );
        let mut long = d[4..].to_vec();
        long.push(0); // legacy pad
        assert_eq!(V15Packet::decode(&long).unwrap().msg, &[4, 5]);
        assert!(V15Packet::decode(&d[4..d.len() - 1]).is_err());
    }
}
