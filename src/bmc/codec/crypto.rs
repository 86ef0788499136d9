//! The cryptography of IPMI 1.5 authcodes and RMCP+ (IPMI 2.0 §13.28-13.31):
//! algorithm ids, cipher suites, RAKP key exchange codes, session key
//! derivation (SIK, K1, K2), integrity authcodes and AES-CBC-128.
//!
//! Pure functions over byte slices; no session state lives here.

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit, block_padding::NoPadding};
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;

/// RMCP+ authentication (RAKP) algorithm, IPMI 2.0 table 13-17.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AuthAlg {
    None = 0,
    HmacSha1 = 1,
    HmacMd5 = 2,
    HmacSha256 = 3,
}

/// RMCP+ integrity algorithm, IPMI 2.0 table 13-18.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum IntegAlg {
    None = 0,
    HmacSha1_96 = 1,
    HmacMd5_128 = 2,
    Md5_128 = 3,
    HmacSha256_128 = 4,
}

/// RMCP+ confidentiality algorithm, IPMI 2.0 table 13-19 (xRC4 not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ConfAlg {
    None = 0,
    AesCbc128 = 1,
}

impl AuthAlg {
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::None,
            1 => Self::HmacSha1,
            2 => Self::HmacMd5,
            3 => Self::HmacSha256,
            _ => return None,
        })
    }

    /// Length of the full keyed digest (RAKP2/RAKP3 codes, SIK, K1, K2).
    pub fn digest_len(self) -> usize {
        match self {
            Self::None => 0,
            Self::HmacSha1 => 20,
            Self::HmacMd5 => 16,
            Self::HmacSha256 => 32,
        }
    }

    /// Length of the RAKP4 integrity check value (truncated HMAC).
    pub fn rakp4_icv_len(self) -> usize {
        match self {
            Self::None => 0,
            Self::HmacSha1 => 12,
            Self::HmacMd5 => 16,
            Self::HmacSha256 => 16,
        }
    }

    /// HMAC of the concatenation of `parts`, keyed with `key`.
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            Self::None => Vec::new(),
            Self::HmacSha1 => hmac_parts::<Hmac<Sha1>>(key, parts),
            Self::HmacMd5 => hmac_parts::<Hmac<Md5>>(key, parts),
            Self::HmacSha256 => hmac_parts::<Hmac<Sha256>>(key, parts),
        }
    }
}

impl IntegAlg {
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::None,
            1 => Self::HmacSha1_96,
            2 => Self::HmacMd5_128,
            3 => Self::Md5_128,
            4 => Self::HmacSha256_128,
            _ => return None,
        })
    }

    /// Bytes of authcode in the RMCP+ session trailer.
    pub fn authcode_len(self) -> usize {
        match self {
            Self::None => 0,
            Self::HmacSha1_96 => 12,
            Self::HmacMd5_128 | Self::Md5_128 | Self::HmacSha256_128 => 16,
        }
    }

    /// The trailer authcode over `covered` (auth type byte through next
    /// header). HMAC variants are keyed with K1; MD5-128 wraps the covered
    /// bytes in the password padded to 20 bytes (IPMI 2.0 §13.28.4).
    pub fn authcode(self, k1: &[u8], password: &[u8; 20], covered: &[u8]) -> Vec<u8> {
        let mut code = match self {
            Self::None => return Vec::new(),
            Self::HmacSha1_96 => hmac_parts::<Hmac<Sha1>>(k1, &[covered]),
            Self::HmacMd5_128 => hmac_parts::<Hmac<Md5>>(k1, &[covered]),
            Self::Md5_128 => md5_parts(&[password, covered, password]).to_vec(),
            Self::HmacSha256_128 => hmac_parts::<Hmac<Sha256>>(k1, &[covered]),
        };
        code.truncate(self.authcode_len());
        code
    }
}

impl ConfAlg {
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::None,
            1 => Self::AesCbc128,
            _ => return None,
        })
    }
}

/// One cipher suite: the algorithm triple a console proposes by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CipherSuite {
    pub id: u8,
    pub auth: AuthAlg,
    pub integ: IntegAlg,
    pub conf: ConfAlg,
}

/// Suites this BMC can implement (IPMI 2.0 table 22-20, without xRC4).
pub const SUPPORTED_SUITES: [u8; 12] = [0, 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17];

impl CipherSuite {
    pub fn by_id(id: u8) -> Option<Self> {
        use AuthAlg as A;
        use ConfAlg as C;
        use IntegAlg as I;
        let (auth, integ, conf) = match id {
            0 => (A::None, I::None, C::None),
            1 => (A::HmacSha1, I::None, C::None),
            2 => (A::HmacSha1, I::HmacSha1_96, C::None),
            3 => (A::HmacSha1, I::HmacSha1_96, C::AesCbc128),
            6 => (A::HmacMd5, I::None, C::None),
            7 => (A::HmacMd5, I::HmacMd5_128, C::None),
            8 => (A::HmacMd5, I::HmacMd5_128, C::AesCbc128),
            11 => (A::HmacMd5, I::Md5_128, C::None),
            12 => (A::HmacMd5, I::Md5_128, C::AesCbc128),
            15 => (A::HmacSha256, I::None, C::None),
            16 => (A::HmacSha256, I::HmacSha256_128, C::None),
            17 => (A::HmacSha256, I::HmacSha256_128, C::AesCbc128),
            _ => return None,
        };
        Some(CipherSuite {
            id,
            auth,
            integ,
            conf,
        })
    }

    /// The suite among `allowed` whose triple is exactly (auth, integ, conf).
    pub fn matching(allowed: &[u8], auth: u8, integ: u8, conf: u8) -> Option<Self> {
        allowed
            .iter()
            .filter_map(|&id| Self::by_id(id))
            .find(|s| s.auth as u8 == auth && s.integ as u8 == integ && s.conf as u8 == conf)
    }
}

fn hmac_parts<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Plain MD5 of the concatenation of `parts`.
pub fn md5_parts(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Inputs of the RAKP exchange both sides must agree on (IPMI 2.0 §13.31).
#[derive(Debug, Clone)]
pub struct RakpParams<'a> {
    pub console_session_id: u32,
    pub bmc_session_id: u32,
    pub console_random: &'a [u8; 16],
    pub bmc_random: &'a [u8; 16],
    pub bmc_guid: &'a [u8; 16],
    /// RAKP1 byte 24 whole, the name-only lookup bit included.
    pub role: u8,
    pub username: &'a [u8],
}

impl RakpParams<'_> {
    fn ulen(&self) -> [u8; 1] {
        [self.username.len() as u8]
    }

    /// Key-exchange authcode the BMC sends in RAKP2, keyed with the password.
    pub fn rakp2_code(&self, auth: AuthAlg, password: &[u8]) -> Vec<u8> {
        auth.hmac(
            password,
            &[
                &self.console_session_id.to_le_bytes(),
                &self.bmc_session_id.to_le_bytes(),
                self.console_random,
                self.bmc_random,
                self.bmc_guid,
                &[self.role],
                &self.ulen(),
                self.username,
            ],
        )
    }

    /// Authcode the console sends in RAKP3.
    pub fn rakp3_code(&self, auth: AuthAlg, password: &[u8]) -> Vec<u8> {
        auth.hmac(
            password,
            &[
                self.bmc_random,
                &self.console_session_id.to_le_bytes(),
                &[self.role],
                &self.ulen(),
                self.username,
            ],
        )
    }

    /// Session integrity key, keyed with K_G when set, else the password.
    pub fn sik(&self, auth: AuthAlg, kg_or_password: &[u8]) -> Vec<u8> {
        auth.hmac(
            kg_or_password,
            &[
                self.console_random,
                self.bmc_random,
                &[self.role],
                &self.ulen(),
                self.username,
            ],
        )
    }

    /// Integrity check value the BMC sends in RAKP4 (truncated).
    pub fn rakp4_icv(&self, auth: AuthAlg, sik: &[u8]) -> Vec<u8> {
        let mut v = auth.hmac(
            sik,
            &[
                self.console_random,
                &self.bmc_session_id.to_le_bytes(),
                self.bmc_guid,
            ],
        );
        v.truncate(auth.rakp4_icv_len());
        v
    }
}

/// K1 and K2 from the SIK, with 20-byte constants for every algorithm as
/// ipmitool, FreeIPMI and pyghmi do. RAKP-none gives the bare constants.
pub fn derive_k1_k2(auth: AuthAlg, sik: &[u8]) -> (Vec<u8>, Vec<u8>) {
    if auth == AuthAlg::None {
        return (vec![1; 20], vec![2; 20]);
    }
    (auth.hmac(sik, &[&[1u8; 20]]), auth.hmac(sik, &[&[2u8; 20]]))
}

/// AES-CBC-128 payload: IV ‖ AES(K2[..16], IV, plain ‖ 1,2..N ‖ N).
pub fn aes_encrypt(k2: &[u8], iv: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    let pad = (16 - (plain.len() + 1) % 16) % 16;
    let mut buf = Vec::with_capacity(16 + plain.len() + pad + 1);
    buf.extend_from_slice(plain);
    buf.extend(1..=pad as u8);
    buf.push(pad as u8);
    let len = buf.len();
    let key: [u8; 16] = k2[..16].try_into().expect("K2 is at least 16 bytes");
    cbc::Encryptor::<aes::Aes128>::new(&key.into(), &(*iv).into())
        .encrypt_padded::<NoPadding>(&mut buf, len)
        .expect("buffer is a whole number of blocks");
    let mut out = iv.to_vec();
    out.extend_from_slice(&buf);
    out
}

/// Why an encrypted payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("encrypted payload is not IV plus whole AES blocks")]
    BadLength,
    #[error("confidentiality pad bytes are not 1..N")]
    BadPad,
}

/// Inverse of [`aes_encrypt`]; checks the IPMI pad bytes.
pub fn aes_decrypt(k2: &[u8], payload: &[u8]) -> Result<Vec<u8>, DecryptError> {
    if payload.len() < 32 || !payload.len().is_multiple_of(16) {
        return Err(DecryptError::BadLength);
    }
    let (iv, ct) = payload.split_at(16);
    let iv: [u8; 16] = iv.try_into().expect("16 bytes");
    let key: [u8; 16] = k2[..16].try_into().expect("K2 is at least 16 bytes");
    let mut buf = ct.to_vec();
    cbc::Decryptor::<aes::Aes128>::new(&key.into(), &iv.into())
        .decrypt_padded::<NoPadding>(&mut buf)
        .map_err(|_| DecryptError::BadLength)?;
    let pad = *buf.last().expect("at least one block") as usize;
    if pad > 15 || pad + 1 > buf.len() {
        return Err(DecryptError::BadPad);
    }
    let body_len = buf.len() - pad - 1;
    if !buf[body_len..body_len + pad]
        .iter()
        .enumerate()
        .all(|(i, &b)| b as usize == i + 1)
    {
        return Err(DecryptError::BadPad);
    }
    buf.truncate(body_len);
    Ok(buf)
}

/// IPMI 1.5 authentication type (IPMI 2.0 §22.13, table 13-9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType15 {
    None = 0,
    Md5 = 2,
    Password = 4,
}

impl AuthType15 {
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::None,
            2 => Self::Md5,
            4 => Self::Password,
            _ => return None,
        })
    }

    /// Bit of this type in Auth Caps and LAN parameter 1/2 bitmasks.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The 16-byte authcode of a 1.5 packet (absent for `None`).
    pub fn authcode(
        self,
        password: &[u8; 16],
        session_id: u32,
        msg: &[u8],
        seq: u32,
    ) -> Option<[u8; 16]> {
        match self {
            Self::None => None,
            Self::Password => Some(*password),
            Self::Md5 => Some(md5_parts(&[
                password,
                &session_id.to_le_bytes(),
                msg,
                &seq.to_le_bytes(),
                password,
            ])),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2202_hmac_sha1_and_md5_vectors() {
        // RFC 2202 test case 2: key "Jefe".
        let data = b"what do ya want for nothing?";
        assert_eq!(
            hex::encode(AuthAlg::HmacSha1.hmac(b"Jefe", &[data])),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex::encode(AuthAlg::HmacMd5.hmac(b"Jefe", &[&data[..10], &data[10..]])),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(AuthAlg::HmacSha256.hmac(b"Jefe", &[data])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn aes_fips197_block_and_ipmi_pad_roundtrip() {
        // FIPS-197 C.1 with a zero IV: CBC of one block equals ECB.
        let key = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let pt = hex::decode("00112233445566778899aabbccddeeff").unwrap();
        // 16 bytes of plain text plus the pad makes two blocks; the first is ECB.
        let out = aes_encrypt(&key, &[0; 16], &pt);
        assert_eq!(
            hex::encode(&out[16..32]),
            "69c4e0d86a7b0430d8cdb78070b4c55a"
        );
        assert_eq!(out.len(), 16 + 32);
        assert_eq!(aes_decrypt(&key, &out).unwrap(), pt);
        for n in 0..40 {
            let plain: Vec<u8> = (0..n as u8).collect();
            let enc = aes_encrypt(&key, &[7; 16], &plain);
            assert_eq!((enc.len() - 16) % 16, 0);
            assert_eq!(aes_decrypt(&key, &enc).unwrap(), plain);
        }
        let mut bad = aes_encrypt(&key, &[7; 16], b"abc");
        bad[20] ^= 0xff;
        assert!(aes_decrypt(&key, &bad).is_err() || aes_decrypt(&key, &bad).unwrap() != b"abc");
    }

    #[test]
    fn k1_k2_use_twenty_byte_constants() {
        let sik = [0x55u8; 16];
        let (k1, k2) = derive_k1_k2(AuthAlg::HmacMd5, &sik);
        assert_eq!(k1, AuthAlg::HmacMd5.hmac(&sik, &[&[1; 20]]));
        assert_ne!(k1, AuthAlg::HmacMd5.hmac(&sik, &[&[1; 16]]));
        assert_eq!(k2.len(), 16);
        let (k1, _) = derive_k1_k2(AuthAlg::HmacSha256, &[1; 32]);
        assert_eq!(k1.len(), 32);
    }

    #[test]
    fn md5_authcode_wraps_in_password() {
        let mut pw = [0u8; 16];
        pw[..8].copy_from_slice(b"password");
        let code = AuthType15::Md5
            .authcode(&pw, 0x01020304, b"\x20\x18", 7)
            .unwrap();
        let mut manual = Vec::new();
        manual.extend_from_slice(&pw);
        manual.extend_from_slice(&[4, 3, 2, 1, 0x20, 0x18, 7, 0, 0, 0]);
        manual.extend_from_slice(&pw);
        assert_eq!(code, md5_parts(&[&manual]));
        // RFC 1321 vector for MD5 itself.
        assert_eq!(
            hex::encode(md5_parts(&[b"abc"])),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(AuthType15::Password.authcode(&pw, 1, b"", 1), Some(pw));
        assert_eq!(AuthType15::None.authcode(&pw, 1, b"", 1), None);
    }

    #[test]
    fn suites_match_exact_triples_only() {
        let s = CipherSuite::matching(&[3, 17], 3, 4, 1).unwrap();
        assert_eq!(s.id, 17);
        assert!(CipherSuite::matching(&[3], 3, 4, 1).is_none());
        assert!(CipherSuite::matching(&[17], 1, 1, 1).is_none());
        for id in SUPPORTED_SUITES {
            assert_eq!(CipherSuite::by_id(id).unwrap().id, id);
        }
    }

    #[test]
    fn integrity_lengths() {
        let pw = [0u8; 20];
        assert_eq!(
            IntegAlg::HmacSha1_96.authcode(&[1; 20], &pw, b"x").len(),
            12
        );
        assert_eq!(
            IntegAlg::HmacSha256_128.authcode(&[1; 32], &pw, b"x").len(),
            16
        );
        assert_eq!(
            IntegAlg::Md5_128.authcode(&[], &pw, b"x"),
            md5_parts(&[&pw, b"x", &pw]).to_vec()
        );
    }

    /// RAKP values computed independently with Python's hmac/hashlib
    /// (exact-length password key; we key with the 20-byte padded form,
    /// which must give the same HMAC).
    #[test]
    fn rakp_vectors_match_an_independent_implementation() {
        let (rm, rc, guid): ([u8; 16], [u8; 16], [u8; 16]) = (
            core::array::from_fn(|i| i as u8),
            core::array::from_fn(|i| 16 + i as u8),
            core::array::from_fn(|i| 32 + i as u8),
        );
        let p = RakpParams {
            console_session_id: 0x1122_3344,
            bmc_session_id: 0xa0b0_c0d0,
            console_random: &rm,
            bmc_random: &rc,
            bmc_guid: &guid,
            role: 0x14,
            username: b"admin",
        };
        let mut pw = [0u8; 20];
        pw[..8].copy_from_slice(b"password");
        let cases = [
            (
                AuthAlg::HmacSha1,
                "d8ddd685456b4de8dd647989a758125c64586db1",
                "4402012e214da511895a399bd77d5396e7998a4d",
                "122c77c4b11ccd93251cbae6c34a9cb6310da154",
                "e4472be78f9a81fa68297aab696a7be8c97fc9f8",
                "2b6552012a2517cb3b5713901d757a6efc7d8301",
                "42ae7dd363e0c205d20bbf44",
            ),
            (
                AuthAlg::HmacMd5,
                "53f9e06679c4a4116c619db3e797c023",
                "58e9be14586d6c196cd3712544a9b11c",
                "f5aecc7e7958555f1a0cff5b39dbdb36",
                "1a850f03ec7c1413d660cf08648e0be2",
                "a9861046f4b96cf599fad35133e1445c",
                "5c4844f88c7304570bd796d42929fd49",
            ),
            (
                AuthAlg::HmacSha256,
                "4be7b724c94318237c758b889de9ed8e7f0d55bb939a17c4228bbd0c87711b06",
                "e6f17841e92f8c11cbc4fd1cafcc9c21e3d814e713e13e9ee640103b50c0ef15",
                "e5935f7199865ad961063477b0662684e2ce9b1da8f2b8d41c5ce127d37e9bcf",
                "dc4fe73d075306f6897115dd63257385e845c10404fa1d73991790c6a101bec2",
                "2a4f969ea6dfa83066f36674fdc2fea289fa1a21da90303e9b5269b54ec5adb5",
                "b03f475184357f9c8c60d1e05fac9ae6",
            ),
        ];
        for (alg, r2, r3, sik, k1, k2, icv) in cases {
            assert_eq!(hex::encode(p.rakp2_code(alg, &pw)), r2, "{alg:?} RAKP2");
            assert_eq!(hex::encode(p.rakp3_code(alg, &pw)), r3, "{alg:?} RAKP3");
            let s = p.sik(alg, &pw);
            assert_eq!(hex::encode(&s), sik, "{alg:?} SIK");
            let (a, b) = derive_k1_k2(alg, &s);
            assert_eq!(
                (hex::encode(a), hex::encode(b)),
                (k1.to_string(), k2.to_string()),
                "{alg:?} K1/K2"
            );
            assert_eq!(hex::encode(p.rakp4_icv(alg, &s)), icv, "{alg:?} RAKP4 ICV");
        }
        // IPMI 1.5 MD5 authcode of Set Session Privilege, same tool.
        let mut p16 = [0u8; 16];
        p16[..8].copy_from_slice(b"password");
        let msg = [0x20, 0x18, 0xc8, 0x81, 0x04, 0x3b, 0x04, 0x3c];
        let code = AuthType15::Md5
            .authcode(&p16, 0x0102_0304, &msg, 5)
            .unwrap();
        assert_eq!(hex::encode(code), "a1f16e3893415c81f48603d3e69f424e");
    }
}
