//! The lab a run builds sends IPv6 router advertisements on its boot
//! network (iPXE waits ~16 s for one otherwise). Seen by real tcpdump from a
//! namespace of the test's own, joined to the run's lab bridge while an `up`
//! holds it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use maas_e2e::testing::{require_program, require_root};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_maas-e2e"))
}

/// Stops the `up` and removes the test's namespace and veth on any exit.
struct Held {
    up: Child,
    netns: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.up.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.up.wait();
    }
}

#[test]
fn a_held_lab_sends_router_advertisements() {
    if !(require_root()
        && require_program("ipmipower", "freeipmi-tools")
        && require_program("tcpdump", "tcpdump"))
    {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let up = Command::new(bin())
        .args(["up", "--target", "none", "--out"])
        .arg(out.path())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/bmc-power.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut held = Held {
        up,
        netns: format!("me2e-ratest-{}", std::process::id()),
    };
    // The run's bridge, from its plan, once the lab is up.
    let deadline = Instant::now() + Duration::from_secs(90);
    let bridge = loop {
        assert!(held.up.try_wait().unwrap().is_none(), "up exited early");
        assert!(Instant::now() < deadline, "the lab did not come up in 90 s");
        let plan = std::fs::read_dir(out.path())
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_to_string(e.ok()?.path().join("plan.yaml")).ok());
        if let Some(bridge) = plan.as_deref().and_then(|p| {
            p.lines()
                .find_map(|l| l.trim().strip_prefix("bridge: "))
                .map(str::to_string)
        }) && Path::new("/sys/class/net")
            .join(&bridge)
            .join("brif")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some())
        {
            break bridge;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let ip = |args: &[&str]| {
        let s = Command::new("ip").args(args).status().unwrap();
        assert!(s.success(), "ip {args:?}");
    };
    // Not `m2?` + 8 hex digits: that is a run's link, and a `down --all` of
    // a test running beside this one would sweep it as an orphan.
    let (host_end, ns_end) = (
        format!("rat{:08x}", std::process::id()),
        format!("rau{:08x}", std::process::id()),
    );
    ip(&["netns", "add", &held.netns]);
    ip(&[
        "link", "add", &host_end, "type", "veth", "peer", "name", &ns_end,
    ]);
    ip(&["link", "set", &ns_end, "netns", &held.netns]);
    ip(&["link", "set", &host_end, "master", &bridge, "up"]);
    ip(&["-n", &held.netns, "link", "set", &ns_end, "up"]);
    // One router advertisement (ICMPv6 type 134) within 10 s: the lab sends
    // one every 2 s unasked.
    let cap = Command::new("timeout")
        .args([
            "10",
            "ip",
            "netns",
            "exec",
            &held.netns,
            "tcpdump",
            "-n",
            "-c",
            "1",
            "-i",
            &ns_end,
        ])
        .args(["icmp6 and ip6[40] == 134"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&cap.stdout);
    assert!(
        cap.status.success() && text.contains("router advertisement"),
        "no router advertisement on {bridge} within 10 s: {text}{}",
        String::from_utf8_lossy(&cap.stderr)
    );
    drop(held);
}
