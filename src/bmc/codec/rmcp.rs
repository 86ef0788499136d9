//! RMCP header (DMTF ASF 2.0 §3.2.2.2) and ASF presence ping/pong (§3.2.4).

use super::DecodeError;

pub const RMCP_VERSION: u8 = 0x06;
pub const CLASS_ASF: u8 = 0x06;
pub const CLASS_IPMI: u8 = 0x07;
/// IANA enterprise number of the ASF (4542), big-endian on the wire.
pub const ASF_IANA: [u8; 4] = [0x00, 0x00, 0x11, 0xBE];

/// What an RMCP datagram carries, by class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rmcp<'a> {
    /// ASF presence ping, with its message tag.
    AsfPing { tag: u8 },
    /// Any other ASF message: ignored.
    AsfOther,
    /// An IPMI session packet (1.5 or RMCP+), the bytes after the header.
    Ipmi(&'a [u8]),
}

/// Split the RMCP header off a datagram.
pub fn decode(dgram: &[u8]) -> Result<Rmcp<'_>, DecodeError> {
    if dgram.len() < 4 {
        return Err(DecodeError::Short("RMCP header"));
    }
    if dgram[0] != RMCP_VERSION {
        return Err(DecodeError::NotRmcp);
    }
    let body = &dgram[4..];
    match dgram[3] {
        CLASS_IPMI => Ok(Rmcp::Ipmi(body)),
        CLASS_ASF => {
            if body.len() < 8 {
                return Err(DecodeError::Short("ASF message"));
            }
            if body[..4] == ASF_IANA && body[4] == 0x80 {
                Ok(Rmcp::AsfPing { tag: body[5] })
            } else {
                Ok(Rmcp::AsfOther)
            }
        }
        c => Err(DecodeError::Class(c)),
    }
}

/// RMCP header for IPMI-class packets (sequence 0xFF: no RMCP ACK).
pub fn ipmi_header() -> [u8; 4] {
    [RMCP_VERSION, 0, 0xFF, CLASS_IPMI]
}

/// The 28-byte presence pong: IPMI supported, no RMCP security extensions.
pub fn pong(tag: u8) -> Vec<u8> {
    let mut v = vec![RMCP_VERSION, 0, 0xFF, CLASS_ASF];
    v.extend_from_slice(&ASF_IANA);
    v.extend_from_slice(&[0x40, tag, 0x00, 0x10]);
    v.extend_from_slice(&ASF_IANA); // OEM IANA: none, so ASF's own
    v.extend_from_slice(&[0; 4]); // OEM defined
    v.push(0x81); // entities: IPMI supported, ASF 1.0
    v.push(0x00); // interactions
    v.extend_from_slice(&[0; 6]);
    v
}

/// A presence ping, for clients (bench, tests).
pub fn ping(tag: u8) -> Vec<u8> {
    let mut v = vec![RMCP_VERSION, 0, 0xFF, CLASS_ASF];
    v.extend_from_slice(&ASF_IANA);
    v.extend_from_slice(&[0x80, tag, 0x00, 0x00]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_pong() {
        assert_eq!(decode(&ping(9)).unwrap(), Rmcp::AsfPing { tag: 9 });
        let p = pong(9);
        assert_eq!(p.len(), 28);
        assert_eq!(&p[8..12], &[0x40, 9, 0, 0x10]);
        assert_eq!(p[20], 0x81);
        assert_eq!(
            decode(&[6, 0, 0xff]),
            Err(DecodeError::Short("RMCP header"))
        );
        assert_eq!(decode(&[5, 0, 0xff, 7]), Err(DecodeError::NotRmcp));
        assert_eq!(decode(&[6, 0, 0xff, 7, 1]).unwrap(), Rmcp::Ipmi(&[1]));
    }
}
