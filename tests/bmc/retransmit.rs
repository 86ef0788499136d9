//! Retransmissions with the real clients (issue 18): a reply fault carries
//! out a request and then drops (or delays past the client's retransmission
//! timeout) its one answer: Open Session Response, RAKP2, RAKP4, Activate
//! Session (1.5), or a Chassis Control answer inside a session. The client
//! retransmits; it must succeed, the transcript must show the repeat
//! answered from the BMC's cache, and the in-memory power backend must have
//! cycled exactly once.

use std::time::Duration;

use maas_e2e::bmc::Fault;
use maas_e2e::bmc::client::ClientSession;
use maas_e2e::bmc::config::{PowerConfig, SessionType};
use maas_e2e::bmc::fault::ReplyKind;
use maas_e2e::bmc::power::PowerOp;
use maas_e2e::cmd::CmdOutput;

use crate::common::*;

const CHASSIS_CONTROL: ReplyKind = ReplyKind::InSession {
    netfn: 0x00,
    cmd: 0x02,
};

/// The answers a fault takes, each in its own run.
const HANDSHAKE_20: [ReplyKind; 3] = [
    ReplyKind::OpenSessionResponse,
    ReplyKind::Rakp2,
    ReplyKind::Rakp4,
];

/// Longer than both clients' retransmission timeouts as run here
/// (ipmipower --retransmission-timeout=300, ipmitool -N 1).
const LATE: Duration = Duration::from_millis(1600);

/// One powered-on BMC (a cycle needs the machine on).
async fn lab(v15_only: bool) -> Lab {
    let mut b = bmc("n1");
    b.power = PowerConfig::Memory { on: true };
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
    assert!(ok, "{what}: client failed: {out:?}\n{transcript}");
    assert_eq!(
        events(lab, "reply_fault").len(),
        1,
        "{what}: the fault took one answer\n{transcript}"
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
    assert_eq!(
        actions(lab),
        [PowerOp::Cycle],
        "{what}: the machine must cycle exactly once\n{transcript}"
    );
    assert!(
        !transcript.contains(OPERATOR.1) && !transcript.contains(ADMIN.1),
        "{what}: a password reached the transcript"
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
    if delay {
        // The late answer still goes out; wait for it so it is logged.
        tokio::time::sleep(LATE).await;
    }
    lab.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmipower_lan20_survives_each_lost_handshake_answer() {
    if !have("ipmipower", "freeipmi-tools") {
        return;
    }
    for kind in HANDSHAKE_20 {
        ipmipower_cycle_through("LAN_2_0", false, kind, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmipower_lan20_survives_each_late_handshake_answer() {
    if !have("ipmipower", "freeipmi-tools") {
        return;
    }
    for kind in HANDSHAKE_20 {
        ipmipower_cycle_through("LAN_2_0", false, kind, true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmipower_lan20_lost_and_late_power_cycle_answer_cycles_once() {
    if !have("ipmipower", "freeipmi-tools") {
        return;
    }
    ipmipower_cycle_through("LAN_2_0", false, CHASSIS_CONTROL, false).await;
    ipmipower_cycle_through("LAN_2_0", false, CHASSIS_CONTROL, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmipower_lan15_lost_activate_session_and_power_cycle_answers() {
    if !have("ipmipower", "freeipmi-tools") {
        return;
    }
    ipmipower_cycle_through("LAN", true, ReplyKind::ActivateSession, false).await;
    ipmipower_cycle_through("LAN", true, CHASSIS_CONTROL, false).await;
    ipmipower_cycle_through("LAN", true, CHASSIS_CONTROL, true).await;
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
    if delay {
        tokio::time::sleep(LATE).await;
    }
    lab.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmitool_lanplus_survives_each_lost_handshake_answer() {
    if !have("ipmitool", "ipmitool") {
        return;
    }
    for kind in HANDSHAKE_20 {
        ipmitool_cycle_through("lanplus", false, kind, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmitool_lanplus_lost_and_late_power_cycle_answer_cycles_once() {
    if !have("ipmitool", "ipmitool") {
        return;
    }
    ipmitool_cycle_through("lanplus", false, CHASSIS_CONTROL, false).await;
    ipmitool_cycle_through("lanplus", false, CHASSIS_CONTROL, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipmitool_lan15_lost_power_cycle_answer_cycles_once() {
    if !have("ipmitool", "ipmitool") {
        return;
    }
    ipmitool_cycle_through("lan", true, CHASSIS_CONTROL, false).await;
}

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
