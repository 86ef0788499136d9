//! The LAN session layer: everything between a datagram and a command
//! handler. IPMI 1.5 (Get Session Challenge, Activate Session, MD5 /
//! straight password / none authcodes) and RMCP+ (Open Session, RAKP 1-4,
//! integrity, AES), then Set Session Privilege and Close Session; sequence
//! numbers, replay window, timeouts and the session limit. Anything that
//! fails a check is dropped without an answer, as the spec asks for
//! unauthenticated traffic; nothing a client sends can panic here.
//! A retransmission (a set-up message again, or a session's last request
//! again) is answered with what the first one got and is never carried out
//! twice: clients retry when an answer is late (docs/bmc.md,
//! "Retransmissions").

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::cmd::{self, Command, Ctx, Env, Reply, cc};
use super::codec::crypto::{self, AuthType15, CipherSuite, ConfAlg, IntegAlg, RakpParams};
use super::codec::lan_msg::LanRequest;
use super::codec::rmcp::{self, Rmcp};
use super::codec::rmcpp::{self, Protection, RmcppPacket, payload};
use super::codec::setup::{OpenSessionRequest, OpenSessionResponse, Rakp1, Rakp3, RakpReply};
use super::codec::v15::{self, V15Packet};
use super::fault::Medium;
use super::fault::{Faults, ReplyKind};
use super::power::PowerBackend;
use super::state::BmcState;
use super::state::{User, privilege};
use super::transcript::{Entry, Transcript};

/// RMCP+ status codes (IPMI 2.0 table 13-15).
pub mod status {
    pub const NO_RESOURCES: u8 = 0x01;
    pub const INVALID_SESSION_ID: u8 = 0x02;
    pub const INVALID_ROLE: u8 = 0x09;
    pub const UNAUTHORIZED_ROLE: u8 = 0x0A;
    pub const UNAUTHORIZED_NAME: u8 = 0x0D;
    pub const INVALID_INTEGRITY_CHECK: u8 = 0x0F;
    pub const NO_CIPHER_SUITE_MATCH: u8 = 0x11;
}

/// Limits that apply to every session of one BMC.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Idle time after which a session is gone (IPMI 2.0 §6.12.15 suggests 60 s).
    pub timeout: Duration,
    /// Sessions (active or being set up) at once.
    pub max_sessions: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            timeout: Duration::from_secs(60),
            max_sessions: 16,
        }
    }
}

/// Inbound sequence numbers: accept each number once, within 16 behind and
/// 32 ahead of the highest accepted (clients start a few numbers in).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayWindow {
    highest: u32,
    /// Bit i set: `highest - i` was received.
    seen: u32,
}

impl ReplayWindow {
    pub fn starting_after(highest: u32) -> Self {
        ReplayWindow { highest, seen: 1 }
    }

    pub fn accept(&mut self, seq: u32) -> bool {
        if seq == 0 {
            return false;
        }
        let d = distance(self.highest, seq);
        if d > 0 {
            let ahead = d as u32;
            if ahead > 32 {
                return false;
            }
            self.seen = if ahead >= 32 { 0 } else { self.seen << ahead } | 1;
            self.highest = seq;
            true
        } else {
            let behind = d.unsigned_abs();
            if behind >= 16 || self.seen & (1 << behind) != 0 {
                return false;
            }
            self.seen |= 1 << behind;
            true
        }
    }
}

/// How far `seq` is ahead of `highest` (negative: behind). Session
/// sequence numbers run 1..=u32::MAX and wrap to 1, skipping 0 (IPMI 2.0
/// section 6.12.13), so the distance is taken on that ring of 2^32 - 1
/// values; `highest` 0 stands for "before 1".
fn distance(highest: u32, seq: u32) -> i64 {
    const RING: i64 = u32::MAX as i64;
    let pos = |v: u32| (v as i64 - 1).rem_euclid(RING);
    let d = (pos(seq) - pos(highest)).rem_euclid(RING);
    if d > RING / 2 { d - RING } else { d }
}

/// RAKP exchange values kept between RAKP1 and RAKP3.
#[derive(Debug, Clone)]
struct RakpExchange {
    console_random: [u8; 16],
    bmc_random: [u8; 16],
    role: u8,
    username: Vec<u8>,
}

#[derive(Debug, Clone)]
enum Stage {
    /// RMCP+: Open Session answered, waiting for RAKP1.
    AwaitRakp1,
    /// RMCP+: RAKP2 sent.
    AwaitRakp3(RakpExchange),
    /// RMCP+: RAKP1 or RAKP3 refused. Kept (until it times out or is
    /// evicted) so a retransmission of the refused message gets the same
    /// refusal instead of "no such session".
    Refused,
    Active,
}

/// How packets of a session are protected.
#[derive(Clone)]
pub enum Protocol {
    V15 {
        auth: AuthType15,
    },
    V20 {
        suite: CipherSuite,
        k1: Vec<u8>,
        k2: Vec<u8>,
    },
}

/// One session, active or being set up.
#[derive(Clone)]
pub struct Session {
    /// The BMC's session ID: what the console sends in its headers.
    pub bmc_id: u32,
    /// The console's ID (RMCP+); the BMC sends it in its headers.
    console_id: u32,
    protocol: Protocol,
    stage: Stage,
    pub user_id: u8,
    pub username: String,
    /// Password of the user, zero padded (MD5 authcodes, MD5-128 integrity).
    password: [u8; 20],
    max_privilege: u8,
    pub privilege: u8,
    next_outbound: u32,
    inbound: ReplayWindow,
    last_activity: Instant,
    /// Where the session was opened from: a repeated Open Session counts
    /// as one only from the same console.
    peer: SocketAddr,
    /// Set-up messages (message tag zeroed) with the answers they got, so a
    /// retransmission is answered the same (IPMI 2.0 §13.17-13.23).
    open: Option<(OpenSessionRequest, OpenSessionResponse)>,
    rakp1: Option<(Rakp1, RakpReply)>,
    rakp3: Option<(Rakp3, RakpReply)>,
    /// The last request carried out in the session and its reply.
    last: Option<LastRequest>,
}

/// A request carried out in a session, kept to recognise its retransmission.
#[derive(Clone)]
struct LastRequest {
    seq: u32,
    req: LanRequest,
    reply: Reply,
    at: Instant,
}

/// How long after a state-changing request a renumbered copy of it counts
/// as its retransmission (ipmipower's retransmissions back off to a few
/// seconds; the IPMB sequence-number expiration interval is 5 s).
const RENUMBERED_REPEAT_WINDOW: Duration = Duration::from_secs(5);

/// Why a request counts as a retransmission of the session's last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Same session sequence number and content: the datagram again.
    SameSequence,
    /// New session sequence number, same rqSeq and content (ipmitool).
    SameRqSeq,
    /// New session sequence number and rqSeq, same state-changing command
    /// and data, soon after (ipmipower renumbers both when it retries).
    Renumbered,
}

impl Repeat {
    fn describe(self) -> &'static str {
        match self {
            Repeat::SameSequence => "same session sequence number and content",
            Repeat::SameRqSeq => "same rqSeq and content, new session sequence number",
            Repeat::Renumbered => "same state-changing command and data, renumbered, within 5 s",
        }
    }
}

impl LastRequest {
    /// Whether `req` (session sequence `seq`) repeats this request.
    fn repeated_by(&self, seq: u32, req: &LanRequest, now: Instant) -> Option<Repeat> {
        if *req == self.req {
            return Some(if seq == self.seq {
                Repeat::SameSequence
            } else {
                Repeat::SameRqSeq
            });
        }
        let same_but_rq_seq = LanRequest {
            rq_seq: self.req.rq_seq,
            ..req.clone()
        } == self.req;
        // Reads are carried out again (harmless, and a poll such as
        // ipmipower's --wait-until-on must see fresh state); only a command
        // that must not happen twice is matched without its rqSeq.
        let once_only = Command::from_wire(req.netfn, req.cmd) == Command::ChassisControl;
        (same_but_rq_seq && once_only && now.duration_since(self.at) <= RENUMBERED_REPEAT_WINDOW)
            .then_some(Repeat::Renumbered)
    }
}

impl Session {
    /// A session just opened or activated, before any exchange.
    #[allow(clippy::too_many_arguments)]
    fn new(
        bmc_id: u32,
        console_id: u32,
        protocol: Protocol,
        stage: Stage,
        peer: SocketAddr,
        now: Instant,
    ) -> Self {
        Session {
            bmc_id,
            console_id,
            protocol,
            stage,
            user_id: 0,
            username: String::new(),
            password: [0; 20],
            max_privilege: 0,
            privilege: 0,
            next_outbound: 1,
            inbound: ReplayWindow::default(),
            last_activity: now,
            peer,
            open: None,
            rakp1: None,
            rakp3: None,
            last: None,
        }
    }

    fn take_outbound(&mut self) -> u32 {
        let s = self.next_outbound;
        self.next_outbound = self.next_outbound.wrapping_add(1).max(1);
        s
    }
}

/// A 1.5 challenge handed out by Get Session Challenge.
#[derive(Debug, Clone)]
struct Challenge {
    challenge: [u8; 16],
    auth: AuthType15,
    user_id: u8,
    created: Instant,
}

/// All sessions of one BMC.
#[derive(Default)]
pub struct SessionTable {
    sessions: HashMap<u32, Session>,
    challenges: HashMap<u32, Challenge>,
    last_purge: Option<Instant>,
    /// The session a Close Session just removed, with the outbound sequence
    /// number its answer carries: the answer is built after the removal.
    closed: Option<(u32, Session)>,
    /// IPMI 1.5 Activate Session answers by temporary session ID, so a
    /// retransmitted Activate Session gets the same session again.
    activated: HashMap<u32, Activated>,
}

/// An Activate Session that succeeded (or was refused) and what it answered.
#[derive(Debug, Clone)]
struct Activated {
    auth: AuthType15,
    password: [u8; 16],
    request: Vec<u8>,
    reply: Reply,
    seq: u32,
    created: Instant,
}

impl SessionTable {
    /// Forget expired sessions, at most once a second (cheap on the hot path).
    pub fn maybe_purge(&mut self, now: Instant, timeout: Duration) {
        if self
            .last_purge
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
        {
            self.purge(now, timeout);
        }
    }

    pub fn active_count(&self) -> usize {
        self.sessions
            .values()
            .filter(|s| matches!(s.stage, Stage::Active))
            .count()
    }

    pub fn purge(&mut self, now: Instant, timeout: Duration) {
        self.last_purge = Some(now);
        self.sessions
            .retain(|_, s| now.duration_since(s.last_activity) <= timeout);
        self.challenges
            .retain(|_, c| now.duration_since(c.created) <= timeout);
        self.activated
            .retain(|_, a| now.duration_since(a.created) <= timeout);
    }

    /// Make room by forgetting the oldest session still in RAKP set-up:
    /// unauthenticated half-open sessions must not lock real users out.
    fn evict_oldest_pending(&mut self) -> bool {
        let oldest = self
            .sessions
            .values()
            .filter(|s| !matches!(s.stage, Stage::Active))
            .min_by_key(|s| s.last_activity)
            .map(|s| s.bmc_id);
        oldest.is_some_and(|id| self.sessions.remove(&id).is_some())
    }

    fn new_id(&self) -> u32 {
        loop {
            let id: u32 = rand::random();
            if id != 0
                && !self.sessions.contains_key(&id)
                && !self.challenges.contains_key(&id)
                && !self.activated.contains_key(&id)
            {
                return id;
            }
        }
    }

    /// A live session, or `None` (and forget it) when it has timed out.
    fn live(&mut self, id: u32, now: Instant, timeout: Duration) -> Option<&mut Session> {
        let expired = now.duration_since(self.sessions.get(&id)?.last_activity) > timeout;
        if expired {
            self.sessions.remove(&id);
            return None;
        }
        self.sessions.get_mut(&id)
    }
}

/// The parts of one BMC a datagram may touch, lent by the instance for the
/// time of one datagram (the instance owns them; this layer only borrows,
/// so imports run one way: instance -> session).
pub struct BmcParts<'a> {
    pub name: &'a str,
    pub state: &'a mut BmcState,
    pub sessions: &'a mut SessionTable,
    pub faults: &'a mut Faults,
    pub power: &'a dyn PowerBackend,
    pub transcript: Option<&'a Transcript>,
    pub limits: SessionLimits,
}

/// One answer to send back.
#[derive(Debug, Clone)]
pub struct Answer {
    pub bytes: Vec<u8>,
    pub what: ReplyKind,
    /// False when the answer repeats an earlier one for a retransmitted
    /// request: reply faults apply to an exchange once, not to its repeats.
    pub fresh: bool,
}

/// One datagram being handled, with everything it may touch.
struct Lan<'a> {
    bmc: BmcParts<'a>,
    peer: SocketAddr,
    now: Instant,
    what: ReplyKind,
    fresh: bool,
}

/// Handle one LAN datagram; the answer to send back, if any.
pub fn handle_datagram(
    bmc: BmcParts<'_>,
    peer: SocketAddr,
    dgram: &[u8],
    now: Instant,
) -> Option<Answer> {
    bmc.sessions.maybe_purge(now, bmc.limits.timeout);
    let mut lan = Lan {
        bmc,
        peer,
        now,
        what: ReplyKind::Other,
        fresh: true,
    };
    let bytes = match rmcp::decode(dgram).ok()? {
        Rmcp::AsfPing { tag } => Some(rmcp::pong(tag)),
        Rmcp::AsfOther => None,
        // Channel access mode "disabled" (Set Channel Access): the LAN
        // channel takes no IPMI messages at all.
        Rmcp::Ipmi(_) if lan.bmc.state.lan_access_volatile.access_mode == 0 => None,
        Rmcp::Ipmi(body) => {
            if body.first()? & 0x0F == 0x06 {
                lan.rmcpp(RmcppPacket::decode(body).ok()?)
            } else {
                lan.v15(V15Packet::decode(body).ok()?)
            }
        }
    }?;
    Some(Answer {
        bytes,
        what: lan.what,
        fresh: lan.fresh,
    })
}

impl Lan<'_> {
    fn log(&self, mut e: Entry<'_>) {
        if let Some(t) = self.bmc.transcript {
            e.peer = Some(self.peer.to_string());
            t.write(&e);
        }
    }

    fn ctx(&self, privilege: u8) -> Ctx {
        Ctx {
            medium: Medium::Lan,
            privilege,
            active_sessions: self.bmc.sessions.active_count().min(63) as u8,
        }
    }

    /// Run a command that is not a session command.
    fn run(&mut self, privilege: u8, req: &LanRequest) -> Reply {
        let ctx = self.ctx(privilege);
        let mut env = Env {
            state: &mut *self.bmc.state,
            power: self.bmc.power,
            faults: &mut *self.bmc.faults,
            ctx,
        };
        cmd::dispatch(&mut env, req.netfn, req.cmd, &req.data)
    }

    /// Commands outside any session.
    fn sessionless(&mut self, req: &LanRequest, v15_format: bool) -> Reply {
        let command = Command::from_wire(req.netfn, req.cmd);
        let reply = if command == Command::GetSessionChallenge && v15_format {
            self.get_session_challenge(&req.data)
        } else if command.sessionless() && command != Command::ActivateSession {
            self.run(0, req)
        } else {
            Reply::cc(cc::INSUFFICIENT_PRIVILEGE)
        };
        self.log(Entry::new(self.bmc.name, Medium::Lan, "command").command(
            req.netfn,
            req.cmd,
            &req.data,
            reply.cc,
            &reply.data,
        ));
        reply
    }

    // ---- IPMI 1.5 ----

    fn v15(&mut self, pkt: V15Packet<'_>) -> Option<Vec<u8>> {
        let req = LanRequest::decode(pkt.msg).ok()?;
        if pkt.session_id == 0 {
            if pkt.auth_type != 0 {
                return None;
            }
            let reply = self.sessionless(&req, true);
            return Some(v15::encode(
                0,
                0,
                0,
                None,
                &req.response(reply.cc, &reply.data),
            ));
        }
        if !self.bmc.state.v15_sessions {
            return None;
        }
        let table = &self.bmc.sessions;
        if table.challenges.contains_key(&pkt.session_id)
            || table.activated.contains_key(&pkt.session_id)
        {
            return self.activate_session(&pkt, &req);
        }
        let limits = self.bmc.limits;
        let s = self
            .bmc
            .sessions
            .live(pkt.session_id, self.now, limits.timeout)?;
        let Protocol::V15 { auth } = s.protocol else {
            return None;
        };
        if pkt.auth_type != auth as u8 {
            return None;
        }
        let pw16: [u8; 16] = s.password[..16].try_into().expect("16 bytes");
        if auth.authcode(&pw16, s.bmc_id, pkt.msg, pkt.seq) != pkt.authcode {
            return None;
        }
        let (id, user) = (s.bmc_id, s.username.clone());
        let reply = self.answer_in_session(id, pkt.seq, &req, &user)?;
        let s = self.bmc.sessions.sessions.get_mut(&id);
        // Close Session removed it: answer with the state it had.
        let (seq, pw) = match s {
            Some(s) => (s.take_outbound(), s.password),
            None => {
                let (seq, s) = self.bmc.sessions.closed.as_ref()?;
                (*seq, s.password)
            }
        };
        let msg = req.response(reply.cc, &reply.data);
        let pw16: [u8; 16] = pw[..16].try_into().expect("16 bytes");
        Some(v15::encode(
            auth as u8,
            seq,
            id,
            auth.authcode(&pw16, id, &msg, seq),
            &msg,
        ))
    }

    /// Get Session Challenge (App 0x39, IPMI 2.0 §22.16).
    fn get_session_challenge(&mut self, data: &[u8]) -> Reply {
        if data.len() < 17 {
            return Reply::cc(cc::REQUEST_LENGTH_INVALID);
        }
        let st = &self.bmc.state;
        let Some(auth) = AuthType15::from_id(data[0] & 0x0F)
            .filter(|a| st.v15_sessions && st.auth_type_support & a.bit() != 0)
        else {
            return Reply::cc(cc::INVALID_DATA_FIELD);
        };
        let name = &data[1..17];
        let Some((user_id, user)) = st.find_user(name) else {
            let null = name.iter().all(|&b| b == 0);
            return Reply::cc(if null { 0x82 } else { 0x81 });
        };
        if !user.enabled {
            return Reply::cc(0x81);
        }
        let limits = self.bmc.limits;
        let table = &mut self.bmc.sessions;
        table.purge(self.now, limits.timeout);
        if table.challenges.len() >= limits.max_sessions * 4 {
            return Reply::cc(cc::NODE_BUSY);
        }
        let temp_id = table.new_id();
        let challenge: [u8; 16] = rand::random();
        table.challenges.insert(
            temp_id,
            Challenge {
                challenge,
                auth,
                user_id,
                created: self.now,
            },
        );
        let mut out = temp_id.to_le_bytes().to_vec();
        out.extend_from_slice(&challenge);
        Reply::ok(out)
    }

    /// Activate Session (App 0x3A, IPMI 2.0 §22.17), sent with the temporary
    /// session ID; answered with it too, signed with the user's password.
    /// A retransmission (same temporary ID, same request data) gets the
    /// same answer and the same session, never a second one.
    fn activate_session(&mut self, pkt: &V15Packet<'_>, req: &LanRequest) -> Option<Vec<u8>> {
        if Command::from_wire(req.netfn, req.cmd) != Command::ActivateSession {
            return None;
        }
        self.what = ReplyKind::ActivateSession;
        let temp_id = pkt.session_id;
        let encode = |a: &Activated| {
            let msg = req.response(a.reply.cc, &a.reply.data);
            Some(v15::encode(
                a.auth as u8,
                a.seq,
                temp_id,
                a.auth.authcode(&a.password, temp_id, &msg, a.seq),
                &msg,
            ))
        };
        if let Some(a) = self.bmc.sessions.activated.get(&temp_id).cloned() {
            if pkt.auth_type != a.auth as u8
                || a.auth.authcode(&a.password, temp_id, pkt.msg, pkt.seq) != pkt.authcode
                || req.data != a.request
            {
                return None;
            }
            let mut e = Entry::new(self.bmc.name, Medium::Lan, "retransmission").command(
                req.netfn,
                req.cmd,
                &req.data,
                a.reply.cc,
                &a.reply.data,
            );
            e.detail = Some("Activate Session repeated: answered from cache".into());
            self.log(e);
            self.fresh = false;
            return encode(&a);
        }
        let ch = self.bmc.sessions.challenges.get(&temp_id)?.clone();
        let user = self.bmc.state.user(ch.user_id)?.clone();
        let pw16 = user.password16();
        if pkt.auth_type != ch.auth as u8
            || ch.auth.authcode(&pw16, temp_id, pkt.msg, pkt.seq) != pkt.authcode
        {
            return None;
        }
        let d = &req.data;
        let (reply, seq) = if d.len() < 22 {
            (Reply::cc(cc::REQUEST_LENGTH_INVALID), 0)
        } else {
            if d[0] & 0x0F != ch.auth as u8 || d[2..18] != ch.challenge {
                return None;
            }
            let initial_outbound = u32::from_le_bytes(d[18..22].try_into().expect("4 bytes"));
            self.bmc.sessions.challenges.remove(&temp_id);
            (
                self.activate(&ch, &user, d[1] & 0x0F, initial_outbound),
                initial_outbound,
            )
        };
        self.log(Entry::new(self.bmc.name, Medium::Lan, "command").command(
            req.netfn,
            req.cmd,
            d,
            reply.cc,
            &reply.data,
        ));
        let a = Activated {
            auth: ch.auth,
            password: pw16,
            request: d.clone(),
            reply,
            seq,
            created: self.now,
        };
        if d.len() >= 22 {
            self.bmc.sessions.activated.insert(temp_id, a.clone());
        }
        encode(&a)
    }

    /// The checks and the new session behind an Activate Session whose
    /// challenge matched: the reply to send.
    fn activate(
        &mut self,
        ch: &Challenge,
        user: &User,
        wanted: u8,
        initial_outbound: u32,
    ) -> Reply {
        let st = &self.bmc.state;
        if !(privilege::USER..=privilege::ADMIN).contains(&wanted) && wanted != privilege::CALLBACK
        {
            return Reply::cc(cc::INVALID_DATA_FIELD);
        }
        if initial_outbound == 0 {
            return Reply::cc(0x84);
        }
        let limit = user.lan.privilege.min(st.lan_privilege_limit());
        if !user.lan.ipmi_messaging || user.lan.privilege == privilege::NO_ACCESS || wanted > limit
        {
            return Reply::cc(0x86);
        }
        if st.lan.auth_enables[wanted as usize - 1] & ch.auth.bit() == 0 {
            return Reply::cc(cc::INVALID_DATA_FIELD);
        }
        let limits = self.bmc.limits;
        let table = &mut *self.bmc.sessions;
        table.purge(self.now, limits.timeout);
        if table.sessions.len() >= limits.max_sessions && !table.evict_oldest_pending() {
            return Reply::cc(0x81);
        }
        let id = table.new_id();
        let inbound: u32 = rand::random::<u32>() % 0x4000_0000 + 1;
        let mut s = Session::new(
            id,
            id,
            Protocol::V15 { auth: ch.auth },
            Stage::Active,
            self.peer,
            self.now,
        );
        s.user_id = ch.user_id;
        s.username = user.name_str();
        s.password = user.password;
        s.max_privilege = wanted;
        s.privilege = wanted.min(privilege::USER);
        s.next_outbound = initial_outbound.wrapping_add(1).max(1);
        s.inbound = ReplayWindow::starting_after(inbound - 1);
        table.sessions.insert(id, s);
        let mut out = vec![ch.auth as u8];
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&inbound.to_le_bytes());
        out.push(wanted);
        let mut e = Entry::new(self.bmc.name, Medium::Lan, "session_activated");
        e.session_id = Some(id);
        e.user = Some(user.name_str());
        e.detail = Some(format!("ipmi 1.5 auth {:?}", ch.auth));
        self.log(e);
        Reply::ok(out)
    }

    // ---- commands inside a session (1.5 and 2.0) ----

    /// An authenticated request inside an active session. A retransmission
    /// of the session's last request is answered with that request's reply
    /// and not carried out again (a repeated power cycle cycles once);
    /// anything else must pass the replay window (IPMI 2.0 §6.12), then
    /// runs.
    fn answer_in_session(
        &mut self,
        id: u32,
        seq: u32,
        req: &LanRequest,
        user: &str,
    ) -> Option<Reply> {
        self.what = ReplyKind::InSession {
            netfn: req.netfn,
            cmd: req.cmd,
        };
        let now = self.now;
        let s = self.bmc.sessions.sessions.get_mut(&id)?;
        let repeat = s
            .last
            .as_ref()
            .and_then(|l| Some((l.repeated_by(seq, req, now)?, l.reply.clone())));
        if let Some((how, reply)) = repeat {
            // Mark a new number seen, so this datagram cannot run later.
            if how != Repeat::SameSequence && !s.inbound.accept(seq) {
                return None;
            }
            s.last_activity = now;
            if let Some(l) = s.last.as_mut() {
                l.seq = seq;
                l.req = req.clone();
            }
            let mut e = Entry::new(self.bmc.name, Medium::Lan, "retransmission").command(
                req.netfn,
                req.cmd,
                &req.data,
                reply.cc,
                &reply.data,
            );
            e.session_id = Some(id);
            e.user = Some(user.to_string());
            e.detail = Some(format!(
                "answered from cache ({}); not carried out again",
                how.describe()
            ));
            self.log(e);
            self.fresh = false;
            return Some(reply);
        }
        if !s.inbound.accept(seq) {
            return None;
        }
        s.last_activity = now;
        let reply = self.in_session(id, req, user)?;
        if let Some(s) = self.bmc.sessions.sessions.get_mut(&id) {
            s.last = Some(LastRequest {
                seq,
                req: req.clone(),
                reply: reply.clone(),
                at: now,
            });
        }
        Some(reply)
    }

    fn in_session(&mut self, id: u32, req: &LanRequest, user: &str) -> Option<Reply> {
        let command = Command::from_wire(req.netfn, req.cmd);
        let s = self.bmc.sessions.sessions.get_mut(&id)?;
        let reply = match command {
            Command::SetSessionPrivilege => set_session_privilege(s, &req.data),
            Command::CloseSession => {
                let r = self.close_session(id, &req.data);
                let mut e = Entry::new(self.bmc.name, Medium::Lan, "command")
                    .command(req.netfn, req.cmd, &req.data, r.cc, &r.data);
                e.session_id = Some(id);
                e.user = Some(user.to_string());
                self.log(e);
                return Some(r);
            }
            Command::ActivateSession | Command::GetSessionChallenge => {
                Reply::cc(cc::INVALID_COMMAND)
            }
            _ => {
                let p = s.privilege;
                self.run(p, req)
            }
        };
        let mut e = Entry::new(self.bmc.name, Medium::Lan, "command").command(
            req.netfn,
            req.cmd,
            &req.data,
            reply.cc,
            &reply.data,
        );
        e.session_id = Some(id);
        e.user = Some(user.to_string());
        self.log(e);
        Some(reply)
    }

    /// Close Session (App 0x3C): answer, then forget the session.
    fn close_session(&mut self, own: u32, data: &[u8]) -> Reply {
        if data.len() < 4 {
            return Reply::cc(cc::REQUEST_LENGTH_INVALID);
        }
        let target = u32::from_le_bytes(data[..4].try_into().expect("4 bytes"));
        let table = &mut self.bmc.sessions;
        if target != own {
            let admin = table
                .sessions
                .get(&own)
                .is_some_and(|s| s.privilege >= privilege::ADMIN);
            if !admin {
                return Reply::cc(cc::INSUFFICIENT_PRIVILEGE);
            }
            return match table.sessions.remove(&target) {
                Some(_) => Reply::ok([]),
                None => Reply::cc(0x87),
            };
        }
        if let Some(mut s) = table.sessions.remove(&own) {
            // Keep what the answer to this last request needs.
            let seq = s.take_outbound();
            self.bmc.sessions.closed = Some((seq, s));
        }
        Reply::ok([])
    }

    // ---- RMCP+ ----

    fn rmcpp(&mut self, pkt: RmcppPacket<'_>) -> Option<Vec<u8>> {
        match pkt.payload_type {
            payload::IPMI => self.rmcpp_ipmi(&pkt),
            _ if !self.bmc.state.v20_sessions => None,
            payload::OPEN_SESSION_REQUEST => self.open_session(pkt.payload),
            payload::RAKP1 => self.rakp1(pkt.payload),
            payload::RAKP3 => self.rakp3(pkt.payload),
            _ => None,
        }
    }

    fn setup_reply(pt: u8, body: &[u8]) -> Vec<u8> {
        rmcpp::encode(pt, 0, 0, body, None, [0; 16])
    }

    fn log_setup(&self, event: &str, id: Option<u32>, user: Option<String>, detail: String) {
        let mut e = Entry::new(self.bmc.name, Medium::Lan, event);
        e.session_id = id;
        e.user = user;
        e.detail = Some(detail);
        self.log(e);
    }

    /// Log a set-up message answered again from the session's cache.
    fn log_repeat(&mut self, id: u32, user: Option<String>, what: &str) {
        self.fresh = false;
        self.log_setup(
            "retransmission",
            Some(id),
            user,
            format!("{what} repeated: answered from cache"),
        );
    }

    /// Open Session Request (IPMI 2.0 §13.17): the exact proposed suite or
    /// status 0x11; a concrete maximum privilege in the answer (§13.18). The
    /// same request again from the same console, while its session is not
    /// yet active, gets the same answer and the same session: the first
    /// answer was lost or late and the console asked again.
    fn open_session(&mut self, body: &[u8]) -> Option<Vec<u8>> {
        let req = OpenSessionRequest::decode(body).ok()?;
        self.what = ReplyKind::OpenSessionResponse;
        let key = OpenSessionRequest {
            tag: 0,
            ..req.clone()
        };
        let peer = self.peer;
        let cached = self.bmc.sessions.sessions.values_mut().find(|s| {
            s.peer == peer
                && !matches!(s.stage, Stage::Active)
                && s.open.as_ref().is_some_and(|(seen, _)| *seen == key)
        });
        if let Some(s) = cached {
            s.last_activity = self.now;
            let (id, mut resp) = (s.bmc_id, s.open.as_ref().expect("matched").1.clone());
            resp.tag = req.tag;
            self.log_repeat(id, None, "Open Session Request");
            return Some(Self::setup_reply(
                payload::OPEN_SESSION_RESPONSE,
                &resp.encode(),
            ));
        }
        // The same request for a session that is active but unused: the
        // console never saw RAKP4 and starts over (ipmitool restarts the
        // whole set-up instead of repeating RAKP3). Retire the orphan so it
        // does not hold a session slot until it times out.
        let orphan = self
            .bmc
            .sessions
            .sessions
            .values()
            .find(|s| {
                s.peer == peer
                    && matches!(s.stage, Stage::Active)
                    && s.last.is_none()
                    && s.open.as_ref().is_some_and(|(seen, _)| *seen == key)
            })
            .map(|s| (s.bmc_id, s.username.clone()));
        if let Some((id, user)) = orphan {
            self.bmc.sessions.sessions.remove(&id);
            self.log_setup(
                "session_retired",
                Some(id),
                Some(user),
                "Open Session Request repeated for this active, unused session (RAKP4 lost): \
                 closed; a new session follows"
                    .into(),
            );
        }
        let mut resp = OpenSessionResponse {
            tag: req.tag,
            status: 0,
            privilege: 0,
            console_session_id: req.console_session_id,
            bmc_session_id: 0,
            auth: req.auth,
            integ: req.integ,
            conf: req.conf,
        };
        let st = &self.bmc.state;
        let offered: Vec<u8> = st
            .cipher_suites
            .iter()
            .copied()
            .filter(|id| !self.bmc.faults.refused_suites.contains(id))
            .collect();
        let suite = CipherSuite::matching(&offered, req.auth, req.integ, req.conf);
        let channel_limit = st.lan_privilege_limit().min(privilege::ADMIN);
        let max = suite.map_or(0, |s| st.cipher_privilege(s.id).min(channel_limit));
        resp.status = if req.console_session_id == 0 {
            status::INVALID_SESSION_ID
        } else if suite.is_none() {
            status::NO_CIPHER_SUITE_MATCH
        } else if req.privilege > privilege::ADMIN
            || req.privilege == privilege::CALLBACK
            || req.privilege > max
            || max < privilege::USER
        {
            status::INVALID_ROLE
        } else {
            0
        };
        let limits = self.bmc.limits;
        let table = &mut *self.bmc.sessions;
        if resp.status == 0 {
            table.purge(self.now, limits.timeout);
            if table.sessions.len() >= limits.max_sessions && !table.evict_oldest_pending() {
                resp.status = status::NO_RESOURCES;
            }
        }
        if resp.status != 0 {
            self.log_setup(
                "open_session_refused",
                None,
                None,
                format!(
                    "status {:#04x} for auth {} integrity {} confidentiality {}",
                    resp.status, req.auth, req.integ, req.conf
                ),
            );
            return Some(Self::setup_reply(
                payload::OPEN_SESSION_RESPONSE,
                &resp.encode(),
            ));
        }
        let suite = suite.expect("checked above");
        let id = table.new_id();
        resp.bmc_session_id = id;
        resp.privilege = if req.privilege == 0 {
            max
        } else {
            req.privilege
        };
        let mut s = Session::new(
            id,
            req.console_session_id,
            Protocol::V20 {
                suite,
                k1: Vec::new(),
                k2: Vec::new(),
            },
            Stage::AwaitRakp1,
            self.peer,
            self.now,
        );
        s.max_privilege = resp.privilege;
        s.open = Some((key, resp.clone()));
        table.sessions.insert(id, s);
        self.log_setup(
            "open_session",
            Some(id),
            None,
            format!("cipher suite {}", suite.id),
        );
        Some(Self::setup_reply(
            payload::OPEN_SESSION_RESPONSE,
            &resp.encode(),
        ))
    }

    /// Refuse a RAKP1 with an RMCP+ status in RAKP2 (§13.21). The session,
    /// if there is one and it is not active, keeps the refusal so that a
    /// retransmission gets it again; an active session is left alone.
    fn refuse_rakp1(
        &mut self,
        r1: &Rakp1,
        console_id: u32,
        st: u8,
        why: String,
    ) -> Option<Vec<u8>> {
        let reply = RakpReply {
            tag: r1.tag,
            status: st,
            console_session_id: console_id,
            body: Vec::new(),
        };
        if let Some(s) = self.bmc.sessions.sessions.get_mut(&r1.bmc_session_id)
            && !matches!(s.stage, Stage::Active)
        {
            s.stage = Stage::Refused;
            s.rakp1 = Some((
                Rakp1 {
                    tag: 0,
                    ..r1.clone()
                },
                reply.clone(),
            ));
        }
        self.log_setup(
            "rakp_refused",
            Some(r1.bmc_session_id),
            Some(String::from_utf8_lossy(&r1.username).into_owned()),
            format!("status {st:#04x}: {why}"),
        );
        Some(Self::setup_reply(payload::RAKP2, &reply.encode()))
    }

    /// RAKP Message 1 (§13.20) -> RAKP Message 2 (§13.21). The same RAKP1
    /// again (same session, random number, role and name) gets the same
    /// RAKP2, with the same BMC random number; a RAKP1 with new content for
    /// a session not yet active starts the exchange over (the console gave
    /// up on the first one); for an active session it is refused and the
    /// session kept.
    fn rakp1(&mut self, body: &[u8]) -> Option<Vec<u8>> {
        let r1 = Rakp1::decode(body).ok()?;
        self.what = ReplyKind::Rakp2;
        let limits = self.bmc.limits;
        let now = self.now;
        let key = Rakp1 {
            tag: 0,
            ..r1.clone()
        };
        let Some(s) = self
            .bmc
            .sessions
            .live(r1.bmc_session_id, now, limits.timeout)
        else {
            return self.refuse_rakp1(&r1, 0, status::INVALID_SESSION_ID, "no such session".into());
        };
        if let Some((seen, reply)) = &s.rakp1
            && *seen == key
        {
            let mut reply = reply.clone();
            reply.tag = r1.tag;
            s.last_activity = now;
            let (id, user) = (s.bmc_id, Some(s.username.clone()));
            self.log_repeat(id, user, "RAKP1");
            return Some(Self::setup_reply(payload::RAKP2, &reply.encode()));
        }
        let console_id = s.console_id;
        match s.stage {
            Stage::Active => {
                return self.refuse_rakp1(
                    &r1,
                    console_id,
                    status::INVALID_SESSION_ID,
                    "session already active".into(),
                );
            }
            Stage::AwaitRakp3(_) | Stage::Refused => {
                // Undo what the earlier RAKP1 granted before judging anew.
                s.max_privilege = s.open.as_ref().map_or(0, |(_, r)| r.privilege);
                s.rakp3 = None;
                let id = s.bmc_id;
                self.log_setup(
                    "rakp_restart",
                    Some(id),
                    Some(String::from_utf8_lossy(&r1.username).into_owned()),
                    "RAKP1 with new content for a session not yet active: exchange restarted"
                        .into(),
                );
            }
            Stage::AwaitRakp1 => {}
        }
        let s = self.bmc.sessions.sessions.get(&r1.bmc_session_id)?;
        let max_open = s.max_privilege;
        let Protocol::V20 { suite, .. } = s.protocol else {
            return None;
        };
        let wanted = r1.role & 0x0F;
        if !(privilege::USER..=privilege::ADMIN).contains(&wanted) {
            return self.refuse_rakp1(
                &r1,
                console_id,
                status::INVALID_ROLE,
                format!("role {wanted}"),
            );
        }
        let st = &self.bmc.state;
        let Some((user_id, user)) = st.find_user(&r1.username) else {
            return self.refuse_rakp1(
                &r1,
                console_id,
                status::UNAUTHORIZED_NAME,
                "unknown user".into(),
            );
        };
        if !user.enabled || !user.lan.ipmi_messaging || user.lan.privilege == privilege::NO_ACCESS {
            return self.refuse_rakp1(
                &r1,
                console_id,
                status::UNAUTHORIZED_NAME,
                "user disabled or without LAN IPMI messaging".into(),
            );
        }
        let name_only = r1.role & 0x10 != 0;
        if (!name_only && user.lan.privilege != wanted) || wanted > user.lan.privilege.min(max_open)
        {
            return self.refuse_rakp1(
                &r1,
                console_id,
                status::UNAUTHORIZED_ROLE,
                format!("role {wanted} above the user's limit"),
            );
        }
        let (user, guid) = (user.clone(), st.identity.system_guid);
        let ex = RakpExchange {
            console_random: r1.console_random,
            bmc_random: rand::random(),
            role: r1.role,
            username: r1.username.clone(),
        };
        let params = RakpParams {
            console_session_id: console_id,
            bmc_session_id: r1.bmc_session_id,
            console_random: &ex.console_random,
            bmc_random: &ex.bmc_random,
            bmc_guid: &guid,
            role: ex.role,
            username: &ex.username,
        };
        let code = params.rakp2_code(suite.auth, user.key());
        let mut reply_body = ex.bmc_random.to_vec();
        reply_body.extend_from_slice(&guid);
        reply_body.extend_from_slice(&code);
        let reply = RakpReply {
            tag: r1.tag,
            status: 0,
            console_session_id: console_id,
            body: reply_body,
        };
        let s = self.bmc.sessions.sessions.get_mut(&r1.bmc_session_id)?;
        s.user_id = user_id;
        s.username = user.name_str();
        s.password = user.password;
        s.max_privilege = wanted;
        s.stage = Stage::AwaitRakp3(ex);
        s.last_activity = now;
        s.rakp1 = Some((key, reply.clone()));
        Some(Self::setup_reply(payload::RAKP2, &reply.encode()))
    }

    /// RAKP Message 3 (§13.22) -> RAKP Message 4 (§13.23). The same RAKP3
    /// again gets the same RAKP4 (status 0 and the same check value, or the
    /// same 0x0F): the session is already active, or already refused.
    fn rakp3(&mut self, body: &[u8]) -> Option<Vec<u8>> {
        let r3 = Rakp3::decode(body).ok()?;
        self.what = ReplyKind::Rakp4;
        let limits = self.bmc.limits;
        let kg = self.bmc.state.kg_set().then_some(self.bmc.state.kg);
        let guid = self.bmc.state.identity.system_guid;
        let now = self.now;
        let key = Rakp3 {
            tag: 0,
            ..r3.clone()
        };
        let s = self
            .bmc
            .sessions
            .live(r3.bmc_session_id, now, limits.timeout)?;
        if let Some((seen, reply)) = &s.rakp3
            && *seen == key
        {
            let mut reply = reply.clone();
            reply.tag = r3.tag;
            s.last_activity = now;
            let (id, user) = (s.bmc_id, Some(s.username.clone()));
            self.log_repeat(id, user, "RAKP3");
            return Some(Self::setup_reply(payload::RAKP4, &reply.encode()));
        }
        let Stage::AwaitRakp3(ex) = s.stage.clone() else {
            return None;
        };
        let Protocol::V20 { suite, .. } = s.protocol else {
            return None;
        };
        let (console_id, user) = (s.console_id, s.username.clone());
        if r3.status != 0 {
            self.bmc.sessions.sessions.remove(&r3.bmc_session_id);
            self.log_setup(
                "rakp_refused",
                Some(r3.bmc_session_id),
                Some(user),
                format!("console sent RAKP3 status {:#04x}", r3.status),
            );
            return None;
        }
        let params = RakpParams {
            console_session_id: console_id,
            bmc_session_id: s.bmc_id,
            console_random: &ex.console_random,
            bmc_random: &ex.bmc_random,
            bmc_guid: &guid,
            role: ex.role,
            username: &ex.username,
        };
        let want = params.rakp3_code(suite.auth, &s.password);
        if want.len() != r3.auth_code.len() || want != r3.auth_code {
            let reply = RakpReply {
                tag: r3.tag,
                status: status::INVALID_INTEGRITY_CHECK,
                console_session_id: console_id,
                body: Vec::new(),
            };
            s.stage = Stage::Refused;
            s.rakp3 = Some((key, reply.clone()));
            self.log_setup(
                "rakp_refused",
                Some(r3.bmc_session_id),
                Some(user),
                "RAKP3 auth code mismatch (wrong password)".into(),
            );
            return Some(Self::setup_reply(payload::RAKP4, &reply.encode()));
        }
        let sik = params.sik(suite.auth, kg.as_ref().map_or(&s.password[..], |k| &k[..]));
        let icv = params.rakp4_icv(suite.auth, &sik);
        let (k1, k2) = crypto::derive_k1_k2(suite.auth, &sik);
        s.protocol = Protocol::V20 { suite, k1, k2 };
        s.stage = Stage::Active;
        s.privilege = s.max_privilege.min(privilege::USER);
        s.last_activity = now;
        let reply = RakpReply {
            tag: r3.tag,
            status: 0,
            console_session_id: console_id,
            body: icv,
        };
        s.rakp3 = Some((key, reply.clone()));
        let id = s.bmc_id;
        self.log_setup(
            "session_activated",
            Some(id),
            Some(user),
            format!("rmcp+ cipher suite {}", suite.id),
        );
        Some(Self::setup_reply(payload::RAKP4, &reply.encode()))
    }

    fn rmcpp_ipmi(&mut self, pkt: &RmcppPacket<'_>) -> Option<Vec<u8>> {
        if pkt.session_id == 0 {
            if pkt.encrypted || pkt.authenticated {
                return None;
            }
            let req = LanRequest::decode(pkt.payload).ok()?;
            let reply = self.sessionless(&req, false);
            return Some(rmcpp::encode(
                payload::IPMI,
                0,
                0,
                &req.response(reply.cc, &reply.data),
                None,
                [0; 16],
            ));
        }
        let limits = self.bmc.limits;
        let s = self
            .bmc
            .sessions
            .live(pkt.session_id, self.now, limits.timeout)?;
        if !matches!(s.stage, Stage::Active) {
            return None;
        }
        let Protocol::V20 {
            suite,
            ref k1,
            ref k2,
        } = s.protocol
        else {
            return None;
        };
        if pkt.authenticated != (suite.integ != IntegAlg::None)
            || pkt.encrypted != (suite.conf != ConfAlg::None)
        {
            return None;
        }
        if suite.integ != IntegAlg::None {
            pkt.verify(suite.integ, k1, &s.password).ok()?;
        }
        let plain = if pkt.encrypted {
            crypto::aes_decrypt(k2, pkt.payload).ok()?
        } else {
            pkt.payload.to_vec()
        };
        let req = LanRequest::decode(&plain).ok()?;
        let (id, user) = (s.bmc_id, s.username.clone());
        let reply = self.answer_in_session(id, pkt.seq, &req, &user)?;
        let msg = req.response(reply.cc, &reply.data);
        let (console_id, seq, protocol, password) = match self.bmc.sessions.sessions.get_mut(&id) {
            Some(s) => (
                s.console_id,
                s.take_outbound(),
                s.protocol.clone(),
                s.password,
            ),
            None => {
                let (seq, s) = self.bmc.sessions.closed.take()?;
                (s.console_id, seq, s.protocol, s.password)
            }
        };
        let Protocol::V20 { suite, k1, k2 } = protocol else {
            return None;
        };
        let prot = Protection {
            integ: suite.integ,
            conf: suite.conf,
            k1: &k1,
            k2: &k2,
            password: &password,
        };
        Some(rmcpp::encode(
            payload::IPMI,
            console_id,
            seq,
            &msg,
            Some(&prot),
            rand::random(),
        ))
    }
}

/// Set Session Privilege Level (App 0x3B, IPMI 2.0 §22.18).
fn set_session_privilege(s: &mut Session, data: &[u8]) -> Reply {
    let Some(&b) = data.first() else {
        return Reply::cc(cc::REQUEST_LENGTH_INVALID);
    };
    let level = b & 0x0F;
    if level == 0 {
        return Reply::ok([s.privilege]);
    }
    if !(privilege::USER..=privilege::OEM).contains(&level) {
        return Reply::cc(0x80);
    }
    if level > s.max_privilege {
        return Reply::cc(0x81);
    }
    s.privilege = level;
    Reply::ok([level])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(rq_seq: u8, netfn: u8, cmd: u8, data: &[u8]) -> LanRequest {
        LanRequest {
            rs_addr: 0x20,
            netfn,
            rs_lun: 0,
            rq_addr: 0x81,
            rq_seq,
            rq_lun: 0,
            cmd,
            data: data.to_vec(),
        }
    }

    #[test]
    fn last_request_recognises_each_kind_of_repeat() {
        let t0 = Instant::now();
        let cycle = LastRequest {
            seq: 7,
            req: req(3, 0x00, 0x02, &[2]),
            reply: Reply::ok([]),
            at: t0,
        };
        let again = |seq, r: &LanRequest, after| cycle.repeated_by(seq, r, t0 + after);
        let soon = Duration::from_millis(300);
        assert_eq!(
            again(7, &req(3, 0, 2, &[2]), soon),
            Some(Repeat::SameSequence)
        );
        assert_eq!(again(8, &req(3, 0, 2, &[2]), soon), Some(Repeat::SameRqSeq));
        assert_eq!(
            again(8, &req(4, 0, 2, &[2]), soon),
            Some(Repeat::Renumbered)
        );
        assert_eq!(
            again(8, &req(4, 0, 2, &[2]), Duration::from_secs(6)),
            None,
            "too late to be a retry"
        );
        assert_eq!(again(8, &req(4, 0, 2, &[0]), soon), None, "other data");
        let status = LastRequest {
            req: req(3, 0x00, 0x01, &[]),
            ..cycle.clone()
        };
        assert_eq!(
            status.repeated_by(8, &req(4, 0, 1, &[]), t0 + soon),
            None,
            "a renumbered read runs again (polls must see fresh state)"
        );
    }

    #[test]
    fn replay_window_accepts_once_and_in_range() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(3));
        assert!(!w.accept(3));
        assert!(w.accept(1));
        assert!(w.accept(2));
        assert!(!w.accept(1));
        assert!(w.accept(10));
        assert!(w.accept(5));
        assert!(!w.accept(100));
        assert!(!w.accept(0));
        let mut w = ReplayWindow::starting_after(99);
        assert!(!w.accept(99));
        assert!(w.accept(100));
        assert!(!w.accept(50));
    }

    #[test]
    fn replay_window_follows_the_sequence_across_the_wrap() {
        // Clients go ..., 0xFFFFFFFE, 0xFFFFFFFF, 1, 2 (0 is never used).
        let mut w = ReplayWindow::starting_after(0xFFFF_FFFC);
        assert!(w.accept(0xFFFF_FFFE), "0xFFFFFFFD is skipped for now");
        assert!(w.accept(0xFFFF_FFFF));
        assert!(w.accept(1), "1 follows 0xFFFFFFFF");
        assert!(w.accept(2));
        assert!(!w.accept(0xFFFF_FFFF), "replayed from before the wrap");
        assert!(!w.accept(1), "replayed after the wrap");
        assert!(w.accept(0xFFFF_FFFD), "late but inside the window");
        assert!(!w.accept(0x8000_0000), "far away either way");
        let mut w = ReplayWindow::starting_after(0xFFFF_FFFF);
        assert!(w.accept(3), "two ahead across the wrap");
        assert!(w.accept(1), "then the one it skipped");
    }
}
