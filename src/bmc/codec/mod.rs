//! The pure, synchronous wire codec: RMCP framing and ASF ping/pong
//! ([`rmcp`]), the IPMI LAN message with its checksums ([`lan_msg`]), the
//! IPMI 1.5 session wrapper ([`v15`]), the RMCP+ session wrapper
//! ([`rmcpp`]) and the RMCP+ session-setup payloads ([`setup`]), over the
//! algorithms in [`crypto`]. No I/O and no session state: the session layer
//! decides which keys apply; these functions only check and build bytes.

pub mod crypto;
pub mod lan_msg;
pub mod rmcp;
pub mod rmcpp;
pub mod setup;
pub mod v15;

/// Why a datagram could not be decoded. The server drops such datagrams
/// silently, as real BMCs do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("datagram too short for {0}")]
    Short(&'static str),
    #[error("not RMCP version 6")]
    NotRmcp,
    #[error("RMCP class {0:#04x} not handled")]
    Class(u8),
    #[error("bad checksum in {0}")]
    Checksum(&'static str),
    #[error("length field says {said} bytes but {have} are present")]
    Length { said: usize, have: usize },
    #[error("unsupported {what} {value:#04x}")]
    Unsupported { what: &'static str, value: u8 },
    #[error("bad integrity pad")]
    Pad,
}
