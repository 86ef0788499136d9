//! Fault switches a scenario step flips at run time (they apply to LAN and
//! Redfish alike; a dropped or silent Redfish request gets no answer): silence, latency,
//! failing a command with a chosen completion code for its first N calls,
//! acknowledging power-on without doing it, refusing a cipher suite,
//! dropping every Nth datagram, and dropping or delaying one answer of a
//! chosen kind after the request was carried out (retransmission tests).
//!
//! Completion codes worth knowing (see docs/bmc.md):
//! - ipmipower prints "BMC error" for a non-zero completion code on a
//!   pre-session / IPMI 1.5 packet, e.g. 0xFF (unspecified) on Get Channel
//!   Authentication Capabilities (netfn 0x06, cmd 0x38).
//! - MAAS's in-band `bmc-config --commit` of a password fails on any
//!   non-zero code for Set User Password (0x06/0x47) other than the test
//!   answers; 0xC0 (node busy) makes libfreeipmi report "BMC busy".

use std::time::Duration;

/// Which endpoint a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Medium {
    Lan,
    Inband,
    /// HTTPS Redfish (src/bmc/redfish): its actions run as IPMI commands on
    /// the same state, so command faults name the IPMI command.
    Redfish,
}

/// Where a command failure applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Where {
    Lan,
    Inband,
    Redfish,
    Any,
}

impl Where {
    fn covers(self, m: Medium) -> bool {
        matches!(
            (self, m),
            (Where::Any, _)
                | (Where::Lan, Medium::Lan)
                | (Where::Inband, Medium::Inband)
                | (Where::Redfish, Medium::Redfish)
        )
    }
}

/// One fault to switch on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Drop every LAN datagram unanswered.
    NoAnswer,
    /// Delay every LAN answer by this much.
    Latency(#[serde(with = "humantime_serde_compat")] Duration),
    /// Answer `cc` to (netfn, cmd) on `on` for its next `times` calls.
    FailCommand {
        netfn: u8,
        cmd: u8,
        on: Where,
        times: u32,
        cc: u8,
    },
    /// Answer Chassis Control "power up" with cc 0 and do nothing.
    AckPowerOnWithoutDoing,
    /// Refuse Open Session for this cipher suite (status 0x11).
    RefuseCipherSuite(u8),
    /// Drop every Nth LAN datagram (counting from the first after the switch).
    DropEveryNth(u32),
    /// Carry out the next request whose answer is of this kind, then drop
    /// the answer: the client must retransmit, and the BMC must answer the
    /// retransmission without doing the work twice (docs/bmc.md).
    DropReply(ReplyKind),
    /// As `DropReply`, but send the answer this late instead of never.
    DelayReply {
        reply: ReplyKind,
        #[serde(with = "humantime_serde_compat")]
        delay: Duration,
    },
}

/// Which answer a reply fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// RMCP+ Open Session Response.
    OpenSessionResponse,
    /// RAKP message 2 (answer to RAKP1).
    Rakp2,
    /// RAKP message 4 (answer to RAKP3).
    Rakp4,
    /// IPMI 1.5 Activate Session response.
    ActivateSession,
    /// The answer to this command inside an active session (1.5 or 2.0).
    InSession { netfn: u8, cmd: u8 },
    /// Anything else (presence pong, session-less commands): no fault
    /// names it; it exists so every answer has a kind.
    Other,
}

/// What a reply fault does to the one answer it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyFault {
    Drop,
    Delay(Duration),
}

mod humantime_serde_compat {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        humantime::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

/// An optional duration as humantime text ("30s"), for configs.
pub(crate) mod opt_duration {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let s: Option<String> = serde::Deserialize::deserialize(d)?;
        s.map(|s| humantime::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FailRule {
    netfn: u8,
    cmd: u8,
    on: Where,
    remaining: u32,
    cc: u8,
}

/// The switches currently on for one BMC.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub no_answer: bool,
    pub latency: Option<Duration>,
    pub ack_power_on_without_doing: bool,
    pub refused_suites: Vec<u8>,
    drop_every: Option<u32>,
    drop_counter: u32,
    failures: Vec<FailRule>,
    /// One-shot reply faults, taken in the order they were set.
    reply_faults: Vec<(ReplyKind, ReplyFault)>,
}

impl Faults {
    pub fn set(&mut self, fault: Fault) {
        match fault {
            Fault::NoAnswer => self.no_answer = true,
            Fault::Latency(d) => self.latency = Some(d),
            Fault::FailCommand {
                netfn,
                cmd,
                on,
                times,
                cc,
            } => self.failures.push(FailRule {
                netfn,
                cmd,
                on,
                remaining: times,
                cc,
            }),
            Fault::AckPowerOnWithoutDoing => self.ack_power_on_without_doing = true,
            Fault::RefuseCipherSuite(id) => self.refused_suites.push(id),
            Fault::DropEveryNth(n) => {
                self.drop_every = (n > 0).then_some(n);
                self.drop_counter = 0;
            }
            Fault::DropReply(kind) => self.reply_faults.push((kind, ReplyFault::Drop)),
            Fault::DelayReply { reply, delay } => {
                self.reply_faults.push((reply, ReplyFault::Delay(delay)))
            }
        }
    }

    /// The reply fault for this answer, if one is waiting for its kind
    /// (each applies once).
    pub fn take_reply_fault(&mut self, kind: ReplyKind) -> Option<ReplyFault> {
        let i = self.reply_faults.iter().position(|(k, _)| *k == kind)?;
        Some(self.reply_faults.remove(i).1)
    }

    /// The completion code to fail this request with, counting it down.
    pub fn take_failure(&mut self, netfn: u8, cmd: u8, medium: Medium) -> Option<u8> {
        let rule = self
            .failures
            .iter_mut()
            .find(|r| r.netfn == netfn && r.cmd == cmd && r.on.covers(medium) && r.remaining > 0)?;
        rule.remaining -= 1;
        Some(rule.cc)
    }

    /// Whether this LAN datagram is to be dropped (no answer, every Nth).
    pub fn drop_datagram(&mut self) -> bool {
        if self.no_answer {
            return true;
        }
        match self.drop_every {
            Some(n) => {
                self.drop_counter += 1;
                if self.drop_counter >= n {
                    self.drop_counter = 0;
                    true
                } else {
                    false
                }
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_counts_down_and_respects_medium() {
        let mut f = Faults::default();
        f.set(Fault::FailCommand {
            netfn: 6,
            cmd: 0x47,
            on: Where::Inband,
            times: 2,
            cc: 0xC0,
        });
        assert_eq!(f.take_failure(6, 0x47, Medium::Lan), None);
        assert_eq!(f.take_failure(6, 0x47, Medium::Inband), Some(0xC0));
        assert_eq!(f.take_failure(6, 0x47, Medium::Inband), Some(0xC0));
        assert_eq!(f.take_failure(6, 0x47, Medium::Inband), None);
    }

    #[test]
    fn reply_faults_take_one_answer_of_their_kind() {
        let mut f = Faults::default();
        let cc = ReplyKind::InSession {
            netfn: 0x00,
            cmd: 0x02,
        };
        f.set(Fault::DropReply(ReplyKind::Rakp2));
        f.set(Fault::DelayReply {
            reply: cc,
            delay: Duration::from_secs(2),
        });
        assert_eq!(f.take_reply_fault(ReplyKind::Rakp4), None);
        assert_eq!(
            f.take_reply_fault(cc),
            Some(ReplyFault::Delay(Duration::from_secs(2)))
        );
        assert_eq!(f.take_reply_fault(cc), None, "one answer only");
        assert_eq!(f.take_reply_fault(ReplyKind::Rakp2), Some(ReplyFault::Drop));
        assert_eq!(f.take_reply_fault(ReplyKind::Rakp2), None);
    }

    #[test]
    fn drops_every_third() {
        let mut f = Faults::default();
        f.set(Fault::DropEveryNth(3));
        let drops: Vec<bool> = (0..6).map(|_| f.drop_datagram()).collect();
        assert_eq!(drops, [false, false, true, false, false, true]);
    }
}
