//! `maas-e2e bmc fleet` is a real process of real BMCs: 20 of them, each on
//! its own loopback address, polled by `maas-e2e bmc poll` (FreeIPMI's
//! ipmipower with MAAS 2.8's argv), one powered on through ipmitool, and
//! only that one reads on afterwards; SIGTERM stops the process cleanly.
//! With `--redfish`, a share of them also serve Redfish over HTTPS on their
//! own address: sushy and curl power two on, and IPMI sees exactly those.
//! (The figures of the same pair are ci/bench/bmc-fleet.sh's, not a test's.)

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_maas-e2e");
const COUNT: usize = 20;

/// Kill the fleet by its pid if the test fails before it stops it.
struct FleetChild(Child);

impl Drop for FleetChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_file(path: &Path, child: &mut Child, within: Duration) {
    let deadline = Instant::now() + within;
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "bmc fleet exited with {status} before writing {}",
                path.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "bmc fleet did not write {} within {within:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every BMC's last outcome after one `bmc poll --mode full --rounds 1`.
fn poll_all(dir: &Path) -> BTreeMap<String, String> {
    poll_n(dir, COUNT)
}

fn poll_n(dir: &Path, count: usize) -> BTreeMap<String, String> {
    let json = dir.join("poll.json");
    let out = Command::new(BIN)
        .args(["bmc", "poll", "--mode", "full", "--rounds", "1", "--states"])
        .arg("--addresses")
        .arg(dir.join("addresses"))
        .arg("--password-file")
        .arg(dir.join("pw"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "bmc poll: {out:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["queries"], count, "{report}");
    assert_eq!(report["bmcs_queried"], count, "{report}");
    serde_json::from_value(report["states"].clone()).unwrap()
}

#[test]
fn fleet_process_answers_ipmipower_per_bmc_and_stops_on_sigterm() {
    if !maas_e2e::testing::require_program("ipmipower", "freeipmi-tools")
        || !maas_e2e::testing::require_program("ipmitool", "ipmitool")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "fleetpw1\n").unwrap();
    let addresses = dir.path().join("addresses");
    // Port 0: a free port per BMC, so a parallel run of this test on the
    // same addresses cannot collide.
    let child = Command::new(BIN)
        .args([
            "bmc",
            "fleet",
            "--count",
            "20",
            "--first-address",
            "127.101.0.1",
        ])
        .args(["--port", "0", "--for", "120s", "--password-file"])
        .arg(&pw)
        .arg("--addresses-out")
        .arg(&addresses)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut fleet = FleetChild(child);
    wait_for_file(&addresses, &mut fleet.0, Duration::from_secs(30));

    let listed: Vec<(String, std::net::SocketAddr)> = std::fs::read_to_string(&addresses)
        .unwrap()
        .lines()
        .map(|l| {
            let (name, addr) = l.split_once(' ').unwrap();
            (name.to_string(), addr.parse().unwrap())
        })
        .collect();
    assert_eq!(listed.len(), COUNT);
    for (i, (name, addr)) in listed.iter().enumerate() {
        assert_eq!(name, &format!("bmc{:05}", i + 1));
        assert_eq!(
            addr.ip().to_string(),
            format!("127.101.0.{}", i + 1),
            "{name}"
        );
    }

    let before = poll_all(dir.path());
    assert_eq!(before.len(), COUNT);
    assert!(before.values().all(|s| s == "off"), "{before:?}");

    let (_, seventh) = &listed[6];
    let out = Command::new("ipmitool")
        .args(["-I", "lanplus", "-H", &seventh.ip().to_string()])
        .args(["-p", &seventh.port().to_string(), "-U", "maas", "-f"])
        .arg(&pw)
        .args(["chassis", "power", "on"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ipmitool power on: {out:?}");

    let after = poll_all(dir.path());
    let on: Vec<&String> = after
        .iter()
        .filter(|(_, s)| *s == "on")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(on, ["bmc00007"], "{after:?}");
    assert_eq!(after.values().filter(|s| *s == "off").count(), COUNT - 1);

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(fleet.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = fleet.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "bmc fleet ignored SIGTERM for 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(fleet.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "bmc fleet: {status}; {stderr}");
    assert!(stderr.contains("stopped (SIGTERM)"), "{stderr}");
    assert!(
        !stderr.contains("fleetpw1"),
        "the password leaked: {stderr}"
    );
}

fn venv_bin(program: &str) -> std::path::PathBuf {
    std::env::var_os("MAAS_E2E_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/opt/maas-e2e/venv".into())
        .join("bin")
        .join(program)
}

#[test]
fn fleet_process_serves_redfish_on_a_share_and_ipmi_sees_its_power() {
    let python = venv_bin("python");
    if !maas_e2e::testing::require_program("ipmipower", "freeipmi-tools")
        || !maas_e2e::testing::require_program("curl", "curl")
        || !maas_e2e::testing::require(
            &format!("{} with sushy (Python peer)", python.display()),
            python.exists(),
            "run bash ci/setup-python.sh (or set MAAS_E2E_VENV)",
        )
    {
        return;
    }
    const N: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "fleetpw2\n").unwrap();
    let (addresses, redfish, cert) = (
        dir.path().join("addresses"),
        dir.path().join("redfish"),
        dir.path().join("cert.pem"),
    );
    // Free ports for IPMI and Redfish: parallel runs cannot collide.
    let child = Command::new(BIN)
        .args([
            "bmc",
            "fleet",
            "--count",
            "8",
            "--first-address",
            "127.101.2.1",
        ])
        .args(["--port", "0", "--redfish", "0.5", "--redfish-port", "0"])
        .args(["--for", "120s", "--password-file"])
        .arg(&pw)
        .arg("--addresses-out")
        .arg(&addresses)
        .arg("--redfish-out")
        .arg(&redfish)
        .arg("--cert-out")
        .arg(&cert)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut fleet = FleetChild(child);
    wait_for_file(&addresses, &mut fleet.0, Duration::from_secs(30));
    // Half of them, spread evenly, each on its own address.
    let urls: BTreeMap<String, String> = std::fs::read_to_string(&redfish)
        .unwrap()
        .lines()
        .map(|l| {
            let (n, u) = l.split_once(' ').unwrap();
            (n.to_string(), u.to_string())
        })
        .collect();
    let names: Vec<&str> = urls.keys().map(String::as_str).collect();
    assert_eq!(names, ["bmc00002", "bmc00004", "bmc00006", "bmc00008"]);
    for (n, u) in &urls {
        let k: usize = n[3..].parse().unwrap();
        assert!(
            u.starts_with(&format!("https://127.101.2.{k}:")),
            "{n}: {u}"
        );
    }
    let pem = std::fs::read_to_string(&cert).unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE") && !pem.contains("PRIVATE KEY"));
    assert!(poll_n(dir.path(), N).values().all(|s| s == "off"));

    // sushy (session auth, certificate verified) powers bmc00002 on.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bmc/redfish_sushy.py");
    let out = Command::new(&python)
        .args([script, "pxe_once_and_on"])
        .env("RF_URL", &urls["bmc00002"])
        .env("RF_USER", "maas")
        .env("RF_PASS", "fleetpw2")
        .env("RF_CA", &cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "sushy: {out:?}");
    let seen: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(seen["after"]["power_state"], "PowerState.ON", "{seen}");
    // curl (Basic auth) resets bmc00006 on.
    let url6 = format!(
        "{}/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
        urls["bmc00006"]
    );
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(&cert)
        .args([
            "-u",
            "maas:fleetpw2",
            "-H",
            "Content-Type: application/json",
        ])
        .args(["-d", r#"{"ResetType": "On"}"#, &url6])
        .output()
        .unwrap();
    assert!(out.status.success(), "curl reset: {out:?}");
    // Through IPMI: exactly those two are on.
    let after = poll_n(dir.path(), N);
    let on: Vec<&str> = after
        .iter()
        .filter(|(_, s)| *s == "on")
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(on, ["bmc00002", "bmc00006"], "{after:?}");
    // Wrong password: refused over Redfish too.
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&cert)
        .args([
            "-u",
            "maas:wrong",
            &format!("{}/redfish/v1/Systems/1", urls["bmc00004"]),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401", "{out:?}");
}
