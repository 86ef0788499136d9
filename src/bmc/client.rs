//! A small RMCP+ console built on our own codec: the bench load generator
//! uses it, and tests use it where a real client cannot do what a test
//! needs (replaying a datagram, idling past the session timeout).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::codec::crypto::{self, CipherSuite, ConfAlg, IntegAlg, RakpParams};
use super::codec::lan_msg::{LanRequest, LanResponse};
use super::codec::rmcp::{self, Rmcp};
use super::codec::rmcpp::{self, Protection, RmcppPacket, payload};
use super::codec::setup::{OpenSessionRequest, OpenSessionResponse, Rakp1, Rakp3, RakpReply};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("udp: {0}")]
    Io(#[from] std::io::Error),
    #[error("no answer from {0} in time")]
    Timeout(SocketAddr),
    #[error("{stage} refused with RMCP+ status {status:#04x}")]
    Status { stage: &'static str, status: u8 },
    #[error("RAKP2 auth code mismatch: password invalid")]
    PasswordInvalid,
    #[error("RAKP4 integrity check value mismatch")]
    BadIcv,
    #[error("unknown cipher suite {0}")]
    Suite(u8),
    #[error("malformed answer: {0}")]
    Malformed(String),
}

async fn exchange(
    sock: &UdpSocket,
    peer: SocketAddr,
    out: &[u8],
    wait: Duration,
) -> Result<Vec<u8>, ClientError> {
    sock.send_to(out, peer).await?;
    recv(sock, peer, wait)
        .await?
        .ok_or(ClientError::Timeout(peer))
}

async fn recv(
    sock: &UdpSocket,
    peer: SocketAddr,
    wait: Duration,
) -> Result<Option<Vec<u8>>, ClientError> {
    let mut buf = vec![0u8; 2048];
    match tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) if from == peer => Ok(Some(buf[..n].to_vec())),
        Ok(Ok(_)) => Ok(None),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Ok(None),
    }
}

fn rmcpp_body(dgram: &[u8]) -> Result<RmcppPacket<'_>, ClientError> {
    match rmcp::decode(dgram) {
        Ok(Rmcp::Ipmi(b)) => {
            RmcppPacket::decode(b).map_err(|e| ClientError::Malformed(e.to_string()))
        }
        other => Err(ClientError::Malformed(format!("{other:?}"))),
    }
}

/// An established RMCP+ session.
pub struct ClientSession {
    sock: UdpSocket,
    peer: SocketAddr,
    pub bmc_session_id: u32,
    console_session_id: u32,
    suite: CipherSuite,
    k1: Vec<u8>,
    k2: Vec<u8>,
    password: [u8; 20],
    next_seq: u32,
    rq_seq: u8,
    pub wait: Duration,
    /// The last datagram sent (for replay tests).
    pub last_sent: Vec<u8>,
}

impl ClientSession {
    /// Open Session, RAKP 1-4, then Set Session Privilege to `privilege`.
    pub async fn open(
        peer: SocketAddr,
        user: &str,
        password: &str,
        suite_id: u8,
        privilege: u8,
    ) -> Result<Self, ClientError> {
        let bind: SocketAddr = if peer.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let sock = UdpSocket::bind(bind).await?;
        let wait = Duration::from_secs(2);
        let suite = CipherSuite::by_id(suite_id).ok_or(ClientError::Suite(suite_id))?;
        let console_session_id: u32 = rand::random::<u32>() | 1;
        let open = OpenSessionRequest {
            tag: 0,
            privilege,
            console_session_id,
            auth: suite.auth as u8,
            integ: suite.integ as u8,
            conf: suite.conf as u8,
        };
        let d = exchange(
            &sock,
            peer,
            &rmcpp::encode(
                payload::OPEN_SESSION_REQUEST,
                0,
                0,
                &open.encode(),
                None,
                [0; 16],
            ),
            wait,
        )
        .await?;
        let resp = OpenSessionResponse::decode(rmcpp_body(&d)?.payload)
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        if resp.status != 0 {
            return Err(ClientError::Status {
                stage: "open session",
                status: resp.status,
            });
        }
        let mut pw = [0u8; 20];
        pw[..password.len().min(20)]
            .copy_from_slice(&password.as_bytes()[..password.len().min(20)]);
        let rm: [u8; 16] = rand::random();
        let role = 0x10 | privilege;
        let r1 = Rakp1 {
            tag: 1,
            bmc_session_id: resp.bmc_session_id,
            console_random: rm,
            role,
            username: user.as_bytes().to_vec(),
        };
        let d = exchange(
            &sock,
            peer,
            &rmcpp::encode(payload::RAKP1, 0, 0, &r1.encode(), None, [0; 16]),
            wait,
        )
        .await?;
        let r2 = RakpReply::decode(rmcpp_body(&d)?.payload)
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        if r2.status != 0 {
            return Err(ClientError::Status {
                stage: "RAKP2",
                status: r2.status,
            });
        }
        if r2.body.len() < 32 {
            return Err(ClientError::Malformed("short RAKP2".into()));
        }
        let rc: [u8; 16] = r2.body[..16].try_into().expect("16");
        let guid: [u8; 16] = r2.body[16..32].try_into().expect("16");
        let params = RakpParams {
            console_session_id,
            bmc_session_id: resp.bmc_session_id,
            console_random: &rm,
            bmc_random: &rc,
            bmc_guid: &guid,
            role,
            username: user.as_bytes(),
        };
        if params.rakp2_code(suite.auth, &pw) != r2.body[32..] {
            return Err(ClientError::PasswordInvalid);
        }
        let r3 = Rakp3 {
            tag: 2,
            status: 0,
            bmc_session_id: resp.bmc_session_id,
            auth_code: params.rakp3_code(suite.auth, &pw),
        };
        let d = exchange(
            &sock,
            peer,
            &rmcpp::encode(payload::RAKP3, 0, 0, &r3.encode(), None, [0; 16]),
            wait,
        )
        .await?;
        let r4 = RakpReply::decode(rmcpp_body(&d)?.payload)
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        if r4.status != 0 {
            return Err(ClientError::Status {
                stage: "RAKP4",
                status: r4.status,
            });
        }
        let sik = params.sik(suite.auth, &pw);
        if params.rakp4_icv(suite.auth, &sik) != r4.body {
            return Err(ClientError::BadIcv);
        }
        let (k1, k2) = crypto::derive_k1_k2(suite.auth, &sik);
        let mut s = ClientSession {
            sock,
            peer,
            bmc_session_id: resp.bmc_session_id,
            console_session_id,
            suite,
            k1,
            k2,
            password: pw,
            next_seq: 1,
            rq_seq: 0,
            wait,
            last_sent: Vec::new(),
        };
        if privilege > 2 {
            let r = s.request(0x06, 0x3B, &[privilege]).await?;
            if r.cc != 0 {
                return Err(ClientError::Malformed(format!(
                    "Set Session Privilege cc {:#04x}",
                    r.cc
                )));
            }
        }
        Ok(s)
    }

    fn protection(&self) -> Protection<'_> {
        Protection {
            integ: self.suite.integ,
            conf: self.suite.conf,
            k1: &self.k1,
            k2: &self.k2,
            password: &self.password,
        }
    }

    /// The datagram for the next request (advances the sequence numbers).
    pub fn build(&mut self, netfn: u8, cmd: u8, data: &[u8]) -> Vec<u8> {
        self.rq_seq = (self.rq_seq + 1) & 0x3F;
        let msg = LanRequest {
            rs_addr: 0x20,
            netfn,
            rs_lun: 0,
            rq_addr: 0x81,
            rq_seq: self.rq_seq,
            rq_lun: 0,
            cmd,
            data: data.to_vec(),
        }
        .encode();
        let seq = self.next_seq;
        self.next_seq += 1;
        let d = rmcpp::encode(
            payload::IPMI,
            self.bmc_session_id,
            seq,
            &msg,
            Some(&self.protection()),
            rand::random(),
        );
        self.last_sent = d.clone();
        d
    }

    /// Send a datagram, return the decoded answer or `None` if none came.
    pub async fn send_raw(&self, dgram: &[u8]) -> Result<Option<LanResponse>, ClientError> {
        self.sock.send_to(dgram, self.peer).await?;
        let Some(d) = recv(&self.sock, self.peer, self.wait).await? else {
            return Ok(None);
        };
        self.decode_answer(&d).map(Some)
    }

    fn decode_answer(&self, d: &[u8]) -> Result<LanResponse, ClientError> {
        let p = rmcpp_body(d)?;
        if p.session_id != self.console_session_id {
            return Err(ClientError::Malformed(format!(
                "answer for session {:#x}",
                p.session_id
            )));
        }
        if self.suite.integ != IntegAlg::None {
            p.verify(self.suite.integ, &self.k1, &self.password)
                .map_err(|e| ClientError::Malformed(e.to_string()))?;
        }
        let plain = if self.suite.conf != ConfAlg::None {
            crypto::aes_decrypt(&self.k2, p.payload)
                .map_err(|e| ClientError::Malformed(e.to_string()))?
        } else {
            p.payload.to_vec()
        };
        LanResponse::decode(&plain).map_err(|e| ClientError::Malformed(e.to_string()))
    }

    /// One request and its answer.
    pub async fn request(
        &mut self,
        netfn: u8,
        cmd: u8,
        data: &[u8],
    ) -> Result<LanResponse, ClientError> {
        let d = self.build(netfn, cmd, data);
        self.send_raw(&d)
            .await?
            .ok_or(ClientError::Timeout(self.peer))
    }

    /// Close Session.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let id = self.bmc_session_id.to_le_bytes();
        self.request(0x06, 0x3C, &id).await.map(|_| ())
    }
}
