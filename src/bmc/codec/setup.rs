//! RMCP+ session-setup payloads (IPMI 2.0 §13.17-13.23): Open Session
//! Request/Response and RAKP messages 1 to 4, both directions (the BMC
//! decodes requests and encodes replies; the bench client does the reverse).

use super::DecodeError;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Open Session Request (console -> BMC), 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionRequest {
    pub tag: u8,
    /// Requested maximum privilege; 0 = highest matching the algorithms.
    pub privilege: u8,
    pub console_session_id: u32,
    pub auth: u8,
    pub integ: u8,
    pub conf: u8,
}

impl OpenSessionRequest {
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() < 32 {
            return Err(DecodeError::Short("Open Session Request"));
        }
        Ok(OpenSessionRequest {
            tag: b[0],
            privilege: b[1] & 0x0F,
            console_session_id: u32_at(b, 4),
            auth: b[12] & 0x3F,
            integ: b[20] & 0x3F,
            conf: b[28] & 0x3F,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.tag, self.privilege, 0, 0];
        v.extend_from_slice(&self.console_session_id.to_le_bytes());
        for (kind, alg) in [(0u8, self.auth), (1, self.integ), (2, self.conf)] {
            v.extend_from_slice(&[kind, 0, 0, 8, alg, 0, 0, 0]);
        }
        v
    }
}

/// Open Session Response (BMC -> console).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionResponse {
    pub tag: u8,
    pub status: u8,
    pub privilege: u8,
    pub console_session_id: u32,
    pub bmc_session_id: u32,
    pub auth: u8,
    pub integ: u8,
    pub conf: u8,
}

impl OpenSessionResponse {
    /// 36 bytes on success; tag + status + reserved + console id on error.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.tag, self.status, self.privilege, 0];
        v.extend_from_slice(&self.console_session_id.to_le_bytes());
        if self.status != 0 {
            return v;
        }
        v.extend_from_slice(&self.bmc_session_id.to_le_bytes());
        for (kind, alg) in [(0u8, self.auth), (1, self.integ), (2, self.conf)] {
            v.extend_from_slice(&[kind, 0, 0, 8, alg, 0, 0, 0]);
        }
        v
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() < 2 {
            return Err(DecodeError::Short("Open Session Response"));
        }
        if b[1] != 0 || b.len() < 36 {
            return Ok(OpenSessionResponse {
                tag: b[0],
                status: b[1],
                privilege: 0,
                console_session_id: 0,
                bmc_session_id: 0,
                auth: 0,
                integ: 0,
                conf: 0,
            });
        }
        Ok(OpenSessionResponse {
            tag: b[0],
            status: b[1],
            privilege: b[2] & 0x0F,
            console_session_id: u32_at(b, 4),
            bmc_session_id: u32_at(b, 8),
            auth: b[16] & 0x3F,
            integ: b[24] & 0x3F,
            conf: b[32] & 0x3F,
        })
    }
}

/// RAKP Message 1 (console -> BMC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp1 {
    pub tag: u8,
    pub bmc_session_id: u32,
    pub console_random: [u8; 16],
    /// Whole role byte: privilege bits 3:0 and the name-only bit 4.
    pub role: u8,
    pub username: Vec<u8>,
}

impl Rakp1 {
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() < 28 {
            return Err(DecodeError::Short("RAKP1"));
        }
        let ulen = b[27] as usize;
        if ulen > 16 {
            return Err(DecodeError::Unsupported {
                what: "username length",
                value: b[27],
            });
        }
        if b.len() < 28 + ulen {
            return Err(DecodeError::Length {
                said: ulen,
                have: b.len() - 28,
            });
        }
        Ok(Rakp1 {
            tag: b[0],
            bmc_session_id: u32_at(b, 4),
            console_random: b[8..24].try_into().expect("16 bytes"),
            role: b[24],
            username: b[28..28 + ulen].to_vec(),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.tag, 0, 0, 0];
        v.extend_from_slice(&self.bmc_session_id.to_le_bytes());
        v.extend_from_slice(&self.console_random);
        v.extend_from_slice(&[self.role, 0, 0, self.username.len() as u8]);
        v.extend_from_slice(&self.username);
        v
    }
}

/// RAKP Messages 2 and 4 (BMC -> console) share a shape: tag, status,
/// console session id, then message-specific bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RakpReply {
    pub tag: u8,
    pub status: u8,
    pub console_session_id: u32,
    /// RAKP2: Rc ‖ GUIDc ‖ auth code. RAKP4: the integrity check value.
    pub body: Vec<u8>,
}

impl RakpReply {
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.tag, self.status, 0, 0];
        v.extend_from_slice(&self.console_session_id.to_le_bytes());
        if self.status == 0 {
            v.extend_from_slice(&self.body);
        }
        v
    }

    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() < 2 {
            return Err(DecodeError::Short("RAKP reply"));
        }
        let id = if b.len() >= 8 { u32_at(b, 4) } else { 0 };
        Ok(RakpReply {
            tag: b[0],
            status: b[1],
            console_session_id: id,
            body: b.get(8..).unwrap_or(&[]).to_vec(),
        })
    }
}

/// RAKP Message 3 (console -> BMC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp3 {
    pub tag: u8,
    pub status: u8,
    pub bmc_session_id: u32,
    pub auth_code: Vec<u8>,
}

impl Rakp3 {
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() < 8 {
            return Err(DecodeError::Short("RAKP3"));
        }
        Ok(Rakp3 {
            tag: b[0],
            status: b[1],
            bmc_session_id: u32_at(b, 4),
            auth_code: b[8..].to_vec(),
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.tag, self.status, 0, 0];
        v.extend_from_slice(&self.bmc_session_id.to_le_bytes());
        v.extend_from_slice(&self.auth_code);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips() {
        let r = OpenSessionRequest {
            tag: 1,
            privilege: 4,
            console_session_id: 0xa0a2a3a4,
            auth: 3,
            integ: 4,
            conf: 1,
        };
        let e = r.encode();
        assert_eq!(e.len(), 32);
        assert_eq!(OpenSessionRequest::decode(&e).unwrap(), r);
        let resp = OpenSessionResponse {
            tag: 1,
            status: 0,
            privilege: 4,
            console_session_id: 5,
            bmc_session_id: 6,
            auth: 3,
            integ: 4,
            conf: 1,
        };
        assert_eq!(resp.encode().len(), 36);
        assert_eq!(OpenSessionResponse::decode(&resp.encode()).unwrap(), resp);
        let r1 = Rakp1 {
            tag: 2,
            bmc_session_id: 6,
            console_random: [7; 16],
            role: 0x14,
            username: b"admin".to_vec(),
        };
        assert_eq!(Rakp1::decode(&r1.encode()).unwrap(), r1);
        let r3 = Rakp3 {
            tag: 3,
            status: 0,
            bmc_session_id: 6,
            auth_code: vec![1; 20],
        };
        assert_eq!(Rakp3::decode(&r3.encode()).unwrap(), r3);
        assert!(Rakp1::decode(&[0; 27]).is_err());
        let mut long_name = r1.encode();
        long_name[27] = 17;
        assert!(Rakp1::decode(&long_name).is_err());
    }
}
