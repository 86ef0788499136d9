//! The RMCP+ session wrapper (IPMI 2.0 §13.6, table 13-8): payload type with
//! encrypted/authenticated bits, session id, sequence, payload length, and
//! the integrity trailer (pad of 0xFF, pad length, next header 0x07, authcode).

use super::DecodeError;
use super::crypto::{self, ConfAlg, IntegAlg};
use super::rmcp;

/// Payload types (IPMI 2.0 table 13-16).
pub mod payload {
    pub const IPMI: u8 = 0x00;
    pub const OPEN_SESSION_REQUEST: u8 = 0x10;
    pub const OPEN_SESSION_RESPONSE: u8 = 0x11;
    pub const RAKP1: u8 = 0x12;
    pub const RAKP2: u8 = 0x13;
    pub const RAKP3: u8 = 0x14;
    pub const RAKP4: u8 = 0x15;
}

/// A decoded RMCP+ packet (after the RMCP header). Integrity is not yet
/// checked: the session layer knows the keys and calls [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RmcppPacket<'a> {
    pub payload_type: u8,
    pub encrypted: bool,
    pub authenticated: bool,
    pub session_id: u32,
    pub seq: u32,
    /// The payload as on the wire (IV + ciphertext when encrypted).
    pub payload: &'a [u8],
    /// Everything after the payload (integrity trailer, if any).
    pub trailer: &'a [u8],
    /// The whole session packet: what the integrity authcode covers, up to
    /// and including the next-header byte.
    pub raw: &'a [u8],
}

impl<'a> RmcppPacket<'a> {
    pub fn decode(b: &'a [u8]) -> Result<Self, DecodeError> {
        if b.len() < 12 {
            return Err(DecodeError::Short("RMCP+ session header"));
        }
        if b[0] & 0x0F != 6 {
            return Err(DecodeError::Unsupported {
                what: "auth format",
                value: b[0],
            });
        }
        let pt = b[1];
        if pt & 0x3F == 0x02 {
            // OEM explicit payloads are not supported.
            return Err(DecodeError::Unsupported {
                what: "payload type",
                value: pt,
            });
        }
        let session_id = u32::from_le_bytes(b[2..6].try_into().expect("4 bytes"));
        let seq = u32::from_le_bytes(b[6..10].try_into().expect("4 bytes"));
        let len = u16::from_le_bytes([b[10], b[11]]) as usize;
        let have = b.len() - 12;
        if len > have {
            return Err(DecodeError::Length { said: len, have });
        }
        Ok(RmcppPacket {
            payload_type: pt & 0x3F,
            encrypted: pt & 0x80 != 0,
            authenticated: pt & 0x40 != 0,
            session_id,
            seq,
            payload: &b[12..12 + len],
            trailer: &b[12 + len..],
            raw: b,
        })
    }

    /// Check the integrity trailer with the session's algorithm and keys.
    pub fn verify(
        &self,
        integ: IntegAlg,
        k1: &[u8],
        password: &[u8; 20],
    ) -> Result<(), DecodeError> {
        let n = integ.authcode_len();
        if self.trailer.len() < n + 2 {
            return Err(DecodeError::Short("integrity trailer"));
        }
        let code_at = self.raw.len() - n;
        if self.raw[code_at - 1] != 0x07 {
            return Err(DecodeError::Pad);
        }
        let pad_len = self.raw[code_at - 2] as usize;
        let pad_start = 12 + self.payload.len();
        if pad_len > 4
            || pad_start + pad_len + 2 != code_at
            || !self.raw[pad_start..pad_start + pad_len]
                .iter()
                .all(|&b| b == 0xFF)
        {
            return Err(DecodeError::Pad);
        }
        let want = integ.authcode(k1, password, &self.raw[..code_at]);
        if !constant_time_eq(&want, &self.raw[code_at..]) {
            return Err(DecodeError::Checksum("integrity authcode"));
        }
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Keys and algorithms that protect an established session's packets.
#[derive(Debug, Clone)]
pub struct Protection<'k> {
    pub integ: IntegAlg,
    pub conf: ConfAlg,
    pub k1: &'k [u8],
    pub k2: &'k [u8],
    pub password: &'k [u8; 20],
}

/// Encode an RMCP+ datagram (RMCP header included). `protect` is `None` for
/// session-setup and session-less packets; `iv` is the AES IV to use.
pub fn encode(
    payload_type: u8,
    session_id: u32,
    seq: u32,
    plain: &[u8],
    protect: Option<&Protection<'_>>,
    iv: [u8; 16],
) -> Vec<u8> {
    let mut pt = payload_type & 0x3F;
    let body;
    let payload: &[u8] = match protect {
        Some(p) if p.conf == ConfAlg::AesCbc128 => {
            pt |= 0x80;
            body = crypto::aes_encrypt(p.k2, &iv, plain);
            &body
        }
        _ => plain,
    };
    let integ = protect.map_or(IntegAlg::None, |p| p.integ);
    if integ != IntegAlg::None {
        pt |= 0x40;
    }
    let mut v = Vec::with_capacity(4 + 12 + payload.len() + 24);
    v.extend_from_slice(&rmcp::ipmi_header());
    v.push(0x06);
    v.push(pt);
    v.extend_from_slice(&session_id.to_le_bytes());
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    v.extend_from_slice(payload);
    if let Some(p) = protect.filter(|_| integ != IntegAlg::None) {
        // Pad so that header + payload + pad + pad length + next header is a
        // multiple of 4 (counted from the auth type byte).
        let unpadded = 12 + payload.len() + 2;
        let pad = (4 - unpadded % 4) % 4;
        v.extend(std::iter::repeat_n(0xFF, pad));
        v.push(pad as u8);
        v.push(0x07);
        let code = integ.authcode(p.k1, p.password, &v[4..]);
        v.extend_from_slice(&code);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprotected_roundtrip() {
        let d = encode(
            payload::OPEN_SESSION_REQUEST,
            0,
            0,
            &[1, 2, 3],
            None,
            [0; 16],
        );
        let p = RmcppPacket::decode(&d[4..]).unwrap();
        assert_eq!(
            (p.payload_type, p.encrypted, p.authenticated),
            (0x10, false, false)
        );
        assert_eq!((p.payload, p.trailer), (&[1u8, 2, 3][..], &[][..]));
    }

    #[test]
    fn protected_roundtrip_every_integrity() {
        let pw = [b'p'; 20];
        for integ in [
            IntegAlg::HmacSha1_96,
            IntegAlg::HmacMd5_128,
            IntegAlg::Md5_128,
            IntegAlg::HmacSha256_128,
        ] {
            for conf in [ConfAlg::None, ConfAlg::AesCbc128] {
                let prot = Protection {
                    integ,
                    conf,
                    k1: &[1; 32],
                    k2: &[2; 32],
                    password: &pw,
                };
                for n in 0..20u8 {
                    let plain: Vec<u8> = (0..n).collect();
                    let d = encode(payload::IPMI, 0x1234, 9, &plain, Some(&prot), [5; 16]);
                    assert_eq!((d.len() - 4 - integ.authcode_len()) % 4, 0);
                    let p = RmcppPacket::decode(&d[4..]).unwrap();
                    assert!(p.authenticated);
                    assert_eq!(p.encrypted, conf == ConfAlg::AesCbc128);
                    p.verify(integ, &[1; 32], &pw).unwrap();
                    let got = if p.encrypted {
                        crypto::aes_decrypt(&[2; 32], p.payload).unwrap()
                    } else {
                        p.payload.to_vec()
                    };
                    assert_eq!(got, plain);
                    assert!(p.verify(integ, &[3; 32], &[b'q'; 20]).is_err());
                    let mut tampered = d.clone();
                    tampered[17] ^= 1;
                    let t = RmcppPacket::decode(&tampered[4..]).unwrap();
                    assert!(t.verify(integ, &[1; 32], &pw).is_err());
                }
            }
        }
    }
}
