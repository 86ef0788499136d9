//! Retransmissions with the real clients (issue 18): a reply fault carries
//! out a request and then drops (or delays past the client's retransmission
//! timeout) its one answer: Open Session Response, RAKP2, RAKP4, Activate
//! Session (1.5), or a Chassis Control answer inside a session. The client
//! retransmits; it must succeed, the transcript must show the repeat
//! answered from the BMC's cache, and the in-memory power backend must have
//! cycled exactly once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use maas_e2e::bmc::Fault;
use maas_e2e::bmc::client::ClientSession;
use maas_e2e::bmc::codec::setup::{
    OpenSessionRequest, OpenSessionResponse as OpenResponse, Rakp1, RakpReply,
};
use maas_e2e::bmc::codec::{rmcp, rmcpp};
use maas_e2e::bmc::config::{PowerConfig, SessionType};
use maas_e2e::bmc::fault::ReplyKind;
use maas_e2e::bmc::power::PowerOp;
use maas_e2e::cmd::CmdOutput;

use crate::common::*;

const CHASSIS_CONTROL: ReplyKind = ReplyKind::InSession {
    netfn: 0x00,
    cmd: 0x02,
};

/// Longer than both clients' retransmission timeouts as run here
/// (ipmipower --retransmission-timeout=300, ipmitool -N 1).
const LATE: Duration = Duration::from_millis(1600);

/// One powered-on BMC (a cycle needs the machine on).
async fn lab(v15_only: bool) -> Lab {
    let mut b = bmc("n1");
    b.power = PowerConfig::Memory {
        on: true,
        powers_off_after: None,
    };
    if v15_only {
        b.session_types = vec![SessionType::Ipmi15];
    }
    Lab::start(vec![b]).await
}

fn actions(lab: &Lab) -> Vec<PowerOp> {
    lab.fleet
        .bmc("n1")
        .unwrap()
        .power_actions()
        .expect("in-memory power keeps its actions")
}

/// Transcript lines of one event.
fn events(lab: &Lab, event: &str) -> Vec<String> {
    let needle = format!("\"event\":\"{event}\"");
    lab.transcript()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(String::from)
        .collect()
}

/// What the transcript must show of the client's second try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// The repeated message was answered from the BMC's cache.
    Cache,
    /// The client started over with the same Open Session while its first
    /// session was already active (RAKP4 lost; ipmitool repeats no set-up
    /// message): the unused session was retired, none is left behind.
    Retired,
}

/// The checks every run shares: the client succeeded, the fault fired,
/// the transcript shows the second try handled, one cycle happened.
fn check(lab: &Lab, what: &str, ok: bool, out: &CmdOutput, seen: Seen) {
    let transcript = lab.transcript();
    for l in events(lab, "retransmission") {
        eprintln!("{what}: {l}");
    }
    assert!(ok, "{what}: client failed: {out:?}\n{transcript}");
    assert_eq!(
        events(lab, "reply_fault").len(),
        1,
        "{what}: the fault took one answer\n{transcript}"
    );
    assert_eq!(
        actions(lab),
        [PowerOp::Cycle],
        "{what}: the machine must cycle exactly once\n{transcript}"
    );
    // One session set up for the client, unless it started over.
    let set_up = events(lab, "open_session").len()
        + events(lab, "session_activated")
            .iter()
            .filter(|l| l.contains("ipmi 1.5"))
            .count();
    let want = if seen == Seen::Retired { 2 } else { 1 };
    assert_eq!(
        set_up, want,
        "{what}: sessions set up for one client\n{transcript}"
    );
    match seen {
        Seen::Cache => assert!(
            events(lab, "retransmission")
                .iter()
                .any(|l| l.contains("answered from cache")),
            "{what}: no retransmission answered from the cache\n{transcript}"
        ),
        Seen::Retired => {
            assert_eq!(
                events(lab, "session_retired").len(),
                1,
                "{what}: the unused session was not retired\n{transcript}"
            );
            assert_eq!(
                lab.fleet.bmc("n1").unwrap().active_sessions(),
                0,
                "{what}: a session was left behind\n{transcript}"
            );
        }
    }
    assert!(
        !transcript.contains(OPERATOR.1) && !transcript.contains(ADMIN.1),
        "{what}: a password reached the transcript"
    );
}

/// The repeat was recognised the way this client retransmits.
fn repeat_was(lab: &Lab, what: &str, how: &str) {
    assert!(
        events(lab, "retransmission")
            .iter()
            .any(|l| l.contains(how)),
        "{what}: repeat not recognised as {how:?}\n{}",
        lab.transcript()
    );
}

/// MAAS's power command line with a short retransmission timeout.
async fn ipmipower(port: u16, driver: &str, extra: &[&str]) -> CmdOutput {
    let mut args = vec![
        "-W",
        "opensesspriv",
        "-l",
        "OPERATOR",
        "--driver-type",
        driver,
        "--retransmission-timeout=300",
        "--session-timeout=15000",
    ];
    args.extend_from_slice(extra);
    freeipmi("ipmipower", port, OPERATOR, &args).await
}

fn says_ok(out: &CmdOutput) -> bool {
    out.status.success() && out.stdout.trim().ends_with(": ok")
}

async fn ipmipower_cycle_through(driver: &str, v15_only: bool, kind: ReplyKind, delay: bool) {
    let lab = lab(v15_only).await;
    let fault = if delay {
        Fault::DelayReply {
            reply: kind,
            delay: LATE,
        }
    } else {
        Fault::DropReply(kind)
    };
    lab.fleet.set_fault("n1", fault).unwrap();
    let out = ipmipower(lab.port("n1"), driver, &["--cycle"]).await;
    let what = format!("ipmipower {driver} {kind:?} delay={delay}");
    check(&lab, &what, says_ok(&out), &out, Seen::Cache);
    if kind == CHASSIS_CONTROL {
        // ipmipower renumbers rqSeq and the session sequence number.
        repeat_was(&lab, &what, "renumbered");
    }
    if delay {
        // The late answer still goes out; wait for it so it is logged.
        tokio::time::sleep(LATE).await;
    }
    lab.fleet.shutdown().await;
}

async fn ipmitool_cycle_through(iface: &str, v15_only: bool, kind: ReplyKind, delay: bool) {
    let lab = lab(v15_only).await;
    let fault = if delay {
        Fault::DelayReply {
            reply: kind,
            delay: LATE,
        }
    } else {
        Fault::DropReply(kind)
    };
    lab.fleet.set_fault("n1", fault).unwrap();
    let suite = (iface == "lanplus").then_some(17);
    let out = ipmitool(
        lab.port("n1"),
        iface,
        suite,
        OPERATOR,
        &["-L", "OPERATOR", "power", "cycle"],
    )
    .await;
    let what = format!("ipmitool -I {iface} {kind:?} delay={delay}");
    let ok = out.status.success() && out.stdout.contains("Chassis Power Control: Cycle");
    let seen = if kind == ReplyKind::Rakp4 {
        Seen::Retired
    } else {
        Seen::Cache
    };
    check(&lab, &what, ok, &out, seen);
    if kind == CHASSIS_CONTROL {
        // ipmitool keeps rqSeq and takes a new session sequence number.
        repeat_was(&lab, &what, "same rqSeq");
    }
    if delay {
        tokio::time::sleep(LATE).await;
    }
    lab.fleet.shutdown().await;
}

/// One test per (client, answer, lost or late): each can fail on its own.
macro_rules! retransmit_test {
    ($name:ident, $tool:literal, $run:ident, $driver:literal, $v15:literal, $kind:expr, $late:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            if !have(
                $tool,
                if $tool == "ipmitool" {
                    "ipmitool"
                } else {
                    "freeipmi-tools"
                },
            ) {
                return;
            }
            $run($driver, $v15, $kind, $late).await;
        }
    };
}

use ReplyKind::{ActivateSession, OpenSessionResponse, Rakp2, Rakp4};

retransmit_test!(
    ipmipower_lan20_lost_open_session_response,
    "ipmipower",
    ipmipower_cycle_through,
    "LAN_2_0",
    false,
    OpenSessionResponse,
    false
);
retransmit_test!(
    ipmipower_lan20_lost_rakp2,
    "ipmipower",
    ipmipower_cycle_through,
    "LAN_2_0",
    false,
    Rakp2,
    false
);
retransmit_test!(
    ipmipower_lan20_lost_rakp4,
    "ipmipower",
    ipmipower_cycle_through,
    "LAN_2_0",
    false,
    Rakp4,
    false
);
retransmit_test!(
    ipmipower_lan20_late_open_session_response,
    "ipmipower",
    ipmipower_cycle_through,
    "LAN_2_0",
    false,
    OpenSessionResponse,
    true
);
retransmit_test!(
    ipmipower_lan20_late_rakp2,
    "ipmipower",
    ipmipower_cycle_through,
    "LAN_2_0",
    false,
    Rakp2,
    true
);
retransmit_test!(
    ipmipower_lan20_late_rakp4,
    "ipmipower",
    ipmipower_cycle_through,
    "LAN_2_0",
    false,
    Rakp4,
    true
);
retransmit_test!(
    ipmipower_lan20_lost_power_cycle_answer,
    "ipmipower",
    ipmipower_cycle_through,
    "LAN_2_0",
    false,
    CHASSIS_CONTROL,
    false
);
retransmit_test!(
    ipmipower_lan20_late_power_cycle_answer,
    "ipmipower",
    ipmipower_cycle_through,
    "LAN_2_0",
    false,
    CHASSIS_CONTROL,
    true
);
retransmit_test!(
    ipmipower_lan15_lost_activate_session,
    "ipmipower",
    ipmipower_cycle_through,
    "LAN",
    true,
    ActivateSession,
    false
);
retransmit_test!(
    ipmipower_lan15_lost_power_cycle_answer,
    "ipmipower",
    ipmipower_cycle_through,
    "LAN",
    true,
    CHASSIS_CONTROL,
    false
);
retransmit_test!(
    ipmipower_lan15_late_power_cycle_answer,
    "ipmipower",
    ipmipower_cycle_through,
    "LAN",
    true,
    CHASSIS_CONTROL,
    true
);
retransmit_test!(
    ipmitool_lanplus_lost_open_session_response,
    "ipmitool",
    ipmitool_cycle_through,
    "lanplus",
    false,
    OpenSessionResponse,
    false
);
retransmit_test!(
    ipmitool_lanplus_lost_rakp2,
    "ipmitool",
    ipmitool_cycle_through,
    "lanplus",
    false,
    Rakp2,
    false
);
retransmit_test!(
    ipmitool_lanplus_lost_rakp4,
    "ipmitool",
    ipmitool_cycle_through,
    "lanplus",
    false,
    Rakp4,
    false
);
retransmit_test!(
    ipmitool_lanplus_lost_power_cycle_answer,
    "ipmitool",
    ipmitool_cycle_through,
    "lanplus",
    false,
    CHASSIS_CONTROL,
    false
);
retransmit_test!(
    ipmitool_lanplus_late_power_cycle_answer,
    "ipmitool",
    ipmitool_cycle_through,
    "lanplus",
    false,
    CHASSIS_CONTROL,
    true
);
retransmit_test!(
    ipmitool_lan15_lost_power_cycle_answer,
    "ipmitool",
    ipmitool_cycle_through,
    "lan",
    true,
    CHASSIS_CONTROL,
    false
);

/// The same datagram twice (same session sequence number): the second is
/// answered with the first's reply and the machine cycles once; an older
/// datagram replayed after a newer request is still dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_datagram_again_is_answered_not_run() {
    let lab = lab(false).await;
    let a = lab.fleet.lan_addr("n1").unwrap();
    let mut s = ClientSession::open(a, OPERATOR.0, OPERATOR.1, 17, 3)
        .await
        .unwrap();
    assert_eq!(s.request(0x00, 0x02, &[2]).await.unwrap().cc, 0);
    let cycle = s.last_sent.clone();
    let again = s.send_raw(&cycle).await.unwrap().expect("repeat answered");
    assert_eq!((again.cmd, again.cc), (0x02, 0));
    assert_eq!(actions(&lab), [PowerOp::Cycle], "{}", lab.transcript());
    assert_eq!(events(&lab, "retransmission").len(), 1);
    assert_eq!(s.request(0x00, 0x01, &[]).await.unwrap().cc, 0);
    s.wait = Duration::from_millis(300);
    assert!(
        s.send_raw(&cycle).await.unwrap().is_none(),
        "an older datagram after a newer request is a replay, not a retry"
    );
    assert_eq!(actions(&lab), [PowerOp::Cycle]);
    lab.fleet.shutdown().await;
}

/// The set-up answer inside one RMCP+ datagram from the BMC.
fn setup_payload(d: &[u8]) -> Vec<u8> {
    match rmcp::decode(d).unwrap() {
        rmcp::Rmcp::Ipmi(b) => rmcpp::RmcppPacket::decode(b).unwrap().payload.to_vec(),
        other => panic!("not an IPMI datagram: {other:?}"),
    }
}

/// Straight into the datagram handler: a repeated Open Session and RAKP1
/// (new message tag, as ipmipower sends them) get the same session and the
/// same BMC random number with the new tag echoed; a RAKP1 with a new
/// console random number restarts the exchange (a new BMC random number);
/// from another console port the same Open Session is a new session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_set_up_messages_get_the_same_answers() {
    let lab = lab(false).await;
    let bmc = lab.fleet.bmc("n1").unwrap().clone();
    let peer: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    let now = Instant::now();
    let open = |tag| OpenSessionRequest {
        tag,
        privilege: 3,
        console_session_id: 0xA0A2_A3A4,
        auth: 3,
        integ: 4,
        conf: 1,
    };
    let send_open = |tag, peer| {
        let d = rmcpp::encode(0x10, 0, 0, &open(tag).encode(), None, [0; 16]);
        OpenResponse::decode(&setup_payload(&bmc.handle_lan(peer, &d, now).unwrap())).unwrap()
    };
    let first = send_open(1, peer);
    assert_eq!(first.status, 0);
    let again = send_open(2, peer);
    assert_eq!(again.tag, 2, "the repeat's tag is echoed");
    assert_eq!(
        again.bmc_session_id, first.bmc_session_id,
        "same session for a repeated Open Session"
    );
    let other = send_open(1, "127.0.0.1:40002".parse().unwrap());
    assert_ne!(
        other.bmc_session_id, first.bmc_session_id,
        "another console's Open Session is its own session"
    );
    let rakp1 = |tag, random| {
        let r = Rakp1 {
            tag,
            bmc_session_id: first.bmc_session_id,
            console_random: [random; 16],
            role: 0x13,
            username: OPERATOR.0.as_bytes().to_vec(),
        };
        let d = rmcpp::encode(0x12, 0, 0, &r.encode(), None, [0; 16]);
        RakpReply::decode(&setup_payload(&bmc.handle_lan(peer, &d, now).unwrap())).unwrap()
    };
    let r2 = rakp1(3, 7);
    assert_eq!(r2.status, 0);
    let r2_again = rakp1(4, 7);
    assert_eq!(r2_again.tag, 4);
    assert_eq!(
        r2_again.body, r2.body,
        "same BMC random number and auth code for a repeated RAKP1"
    );
    let restarted = rakp1(5, 9);
    assert_eq!(restarted.status, 0, "a new RAKP1 restarts, not refused");
    assert_ne!(
        restarted.body[..16],
        r2.body[..16],
        "a restarted exchange has a new BMC random number"
    );
    let t = lab.transcript();
    assert_eq!(events(&lab, "retransmission").len(), 2, "{t}");
    assert_eq!(events(&lab, "rakp_restart").len(), 1, "{t}");
    assert_eq!(events(&lab, "open_session").len(), 2, "{t}");
    lab.fleet.shutdown().await;
}
