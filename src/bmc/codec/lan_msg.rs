//! The IPMI LAN message inside a session packet (IPMI 2.0 §13.8): addresses,
//! netfn/LUN, sequence, command, data, and the two two's-complement checksums.

use super::DecodeError;

/// The BMC's slave address.
pub const BMC_ADDR: u8 = 0x20;

/// Two's-complement checksum: the covered bytes plus it sum to zero.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |a, b| a.wrapping_add(*b))
        .wrapping_neg()
}

/// A decoded request from a console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanRequest {
    pub rs_addr: u8,
    pub netfn: u8,
    pub rs_lun: u8,
    pub rq_addr: u8,
    pub rq_seq: u8,
    pub rq_lun: u8,
    pub cmd: u8,
    pub data: Vec<u8>,
}

impl LanRequest {
    /// Decode and check both checksums.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() < 7 {
            return Err(DecodeError::Short("IPMI LAN message"));
        }
        if checksum(&b[..2]) != b[2] {
            return Err(DecodeError::Checksum("LAN message header"));
        }
        let last = b.len() - 1;
        if checksum(&b[3..last]) != b[last] {
            return Err(DecodeError::Checksum("LAN message body"));
        }
        Ok(LanRequest {
            rs_addr: b[0],
            netfn: b[1] >> 2,
            rs_lun: b[1] & 3,
            rq_addr: b[3],
            rq_seq: b[4] >> 2,
            rq_lun: b[4] & 3,
            cmd: b[5],
            data: b[6..last].to_vec(),
        })
    }

    /// Encode a request (for clients: bench and tests).
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.rs_addr, self.netfn << 2 | (self.rs_lun & 3)];
        v.push(checksum(&v));
        v.extend_from_slice(&[self.rq_addr, self.rq_seq << 2 | (self.rq_lun & 3), self.cmd]);
        v.extend_from_slice(&self.data);
        v.push(checksum(&v[3..]));
        v
    }

    /// The response to this request: addresses and LUNs swapped, rqSeq and
    /// command echoed, netfn made odd.
    pub fn response(&self, cc: u8, data: &[u8]) -> Vec<u8> {
        let mut v = vec![self.rq_addr, (self.netfn | 1) << 2 | (self.rq_lun & 3)];
        v.push(checksum(&v));
        v.extend_from_slice(&[
            self.rs_addr,
            self.rq_seq << 2 | (self.rs_lun & 3),
            self.cmd,
            cc,
        ]);
        v.extend_from_slice(data);
        v.push(checksum(&v[3..]));
        v
    }
}

/// A decoded response, for clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanResponse {
    pub netfn: u8,
    pub rq_seq: u8,
    pub cmd: u8,
    pub cc: u8,
    pub data: Vec<u8>,
}

impl LanResponse {
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() < 8 {
            return Err(DecodeError::Short("IPMI LAN response"));
        }
        let last = b.len() - 1;
        if checksum(&b[..2]) != b[2] || checksum(&b[3..last]) != b[last] {
            return Err(DecodeError::Checksum("LAN response"));
        }
        Ok(LanResponse {
            netfn: b[1] >> 2,
            rq_seq: b[4] >> 2,
            cmd: b[5],
            cc: b[6],
            data: b[7..last].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_roundtrip_and_response_checksums() {
        // Get Device ID exactly as ipmitool sends it: 20 18 c8 81 04 01 7a.
        let raw = [0x20, 0x18, 0xc8, 0x81, 0x04, 0x01, 0x7a];
        let r = LanRequest::decode(&raw).unwrap();
        assert_eq!((r.netfn, r.cmd, r.rq_seq), (6, 1, 1));
        assert_eq!(r.encode(), raw);
        let resp = r.response(0, &[0x20]);
        assert_eq!(&resp[..3], &[0x81, 0x1c, 0x63]);
        assert_eq!(resp.iter().skip(3).fold(0u8, |a, b| a.wrapping_add(*b)), 0);
        let d = LanResponse::decode(&resp).unwrap();
        assert_eq!(
            (d.netfn, d.cmd, d.cc, d.data.as_slice()),
            (7, 1, 0, &[0x20][..])
        );
        let mut bad = raw;
        bad[6] ^= 1;
        assert!(LanRequest::decode(&bad).is_err());
    }
}
