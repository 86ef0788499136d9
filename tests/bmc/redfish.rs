//! Redfish on the same BMC state as IPMI, against peers nobody here wrote:
//! sushy (OpenStack's client), DMTF's redfish-service-validator and
//! redfish-protocol-validator, redfishtool, and ipmitool on the IPMI side
//! of the same BMC. All on loopback, with the run's self-signed certificate.

use std::path::PathBuf;
use std::time::Duration;

use maas_e2e::bmc::config::{BmcConfig, RedfishEndpoint};
use maas_e2e::bmc::state::boot_device_name;
use maas_e2e::bmc::{Fault, Where};
use maas_e2e::cmd::{Cmd, CmdOutput};
use serde_json::{Value, json};

use crate::common::*;

fn redfish_bmc(name: &str) -> BmcConfig {
    let mut b = bmc(name);
    b.redfish = Some(RedfishEndpoint {
        address: "127.0.0.1:0".into(),
    });
    b
}

fn venv_bin(program: &str) -> PathBuf {
    std::env::var_os("MAAS_E2E_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/maas-e2e/venv"))
        .join("bin")
        .join(program)
}

fn have_venv(program: &str) -> bool {
    let p = venv_bin(program);
    maas_e2e::testing::require(
        &format!("{} (Python peer)", p.display()),
        p.exists(),
        "run bash ci/setup-python.sh (or set MAAS_E2E_VENV)",
    )
}

struct Rf {
    lab: Lab,
    url: String,
    ca: PathBuf,
    http: reqwest::Client,
}

impl Rf {
    async fn start() -> Rf {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let lab = Lab::start(vec![redfish_bmc("n1")]).await;
        let addr = lab.fleet.redfish_addr("n1").expect("redfish is on");
        let pem = lab.fleet.redfish_cert_pem().expect("a run certificate");
        let ca = lab.dir.path().join("redfish-ca.pem");
        std::fs::write(&ca, pem).unwrap();
        // The client verifies our certificate: it names 127.0.0.1.
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Rf {
            url: format!("https://{addr}"),
            lab,
            ca,
            http,
        }
    }

    fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        who: (&str, &str),
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .basic_auth(who.0, Some(who.1))
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .req(reqwest::Method::GET, path, ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    async fn reset(&self, who: (&str, &str), reset_type: &str) -> (u16, Value) {
        let r = self
            .req(
                reqwest::Method::POST,
                "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
                who,
            )
            .json(&json!({ "ResetType": reset_type }))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn patch_boot(&self, boot: Value, if_match: Option<&str>) -> (u16, Value) {
        let mut rb = self
            .req(reqwest::Method::PATCH, "/redfish/v1/Systems/1", ADMIN)
            .json(&json!({ "Boot": boot }));
        if let Some(tag) = if_match {
            rb = rb.header("If-Match", tag);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    fn on(&self) -> bool {
        self.lab.fleet.power_state("n1").unwrap()
    }

    fn boot_flags(&self) -> [u8; 5] {
        self.lab.fleet.bmc("n1").unwrap().state().boot.flags
    }

    fn port(&self) -> u16 {
        self.lab.port("n1")
    }
}

/// Run a peer. Python's requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE
/// override even `verify=False`, so both name the run's certificate: every
/// connection of every peer verifies it.
async fn run_peer(cmd: Cmd, ca: &std::path::Path) -> CmdOutput {
    let ca = ca.to_string_lossy();
    run(cmd
        .env("REQUESTS_CA_BUNDLE", ca.clone())
        .env("CURL_CA_BUNDLE", ca))
    .await
}

fn walk_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else if p.extension().is_some_and(|x| x == "log") {
            out.push(p);
        }
    }
    out
}

async fn run(cmd: Cmd) -> CmdOutput {
    let cmd = cmd.timeout(Duration::from_secs(300));
    let out = cmd.output().await.unwrap();
    eprintln!(
        "$ {}\nexit {:?}\n{}{}",
        cmd.display(),
        out.status.code(),
        out.stdout,
        out.stderr
    );
    out
}

async fn sushy(rf: &Rf, phase: &str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bmc/redfish_sushy.py");
    let out = run_peer(
        Cmd::new(venv_bin("python").to_string_lossy())
            .args([script, phase])
            .env("RF_URL", &rf.url)
            .env("RF_USER", ADMIN.0)
            .env("RF_PASS", ADMIN.1)
            .env("RF_CA", rf.ca.to_string_lossy()),
        &rf.ca,
    )
    .await;
    assert!(out.status.success(), "sushy {phase}: {out:?}");
    serde_json::from_str(out.stdout.lines().last().unwrap_or("")).unwrap()
}

#[tokio::test]
async fn redfish_sushy_drives_power_and_boot() {
    if !have_venv("python") {
        return;
    }
    let rf = Rf::start().await;
    assert!(!rf.on());
    let v = sushy(&rf, "pxe_once_and_on").await;
    assert_eq!(v["before"]["power_state"], "PowerState.OFF", "{v}");
    assert_eq!(v["after"]["power_state"], "PowerState.ON", "{v}");
    assert_eq!(v["after"]["boot_target"], "BootSource.PXE", "{v}");
    assert_eq!(
        v["after"]["boot_enabled"], "BootSourceOverrideEnabled.ONCE",
        "{v}"
    );
    assert_eq!(v["manager_type"], "ManagerType.BMC", "{v}");
    assert_eq!(
        v["after"]["allowed_resets"].as_array().unwrap().len(),
        6,
        "{v}"
    );
    // The machine and the IPMI state, not sushy's view, decide.
    assert!(rf.on());
    let f = rf.boot_flags();
    assert_eq!(boot_device_name(&f), "pxe");
    assert_eq!(f[0] & 0xC0, 0x80, "valid, once: {f:x?}");

    let v = sushy(&rf, "hdd_continuous_uefi").await;
    assert_eq!(
        v["after"]["boot_mode"], "BootSourceOverrideMode.UEFI",
        "{v}"
    );
    let f = rf.boot_flags();
    assert_eq!(boot_device_name(&f), "disk");
    assert_eq!(f[0] & 0xE0, 0xE0, "valid, persistent, EFI: {f:x?}");

    let v = sushy(&rf, "restart_then_off").await;
    assert_eq!(v["after"]["power_state"], "PowerState.OFF", "{v}");
    assert!(!rf.on());
    let ops = rf.lab.fleet.bmc("n1").unwrap().power_actions().unwrap();
    use maas_e2e::bmc::power::PowerOp;
    assert_eq!(ops, [PowerOp::On, PowerOp::Reset, PowerOp::Off]);

    let v = sushy(&rf, "off_when_off").await;
    assert_eq!(v["error"]["status"], 409, "{v}");
    assert_eq!(
        v["error"]["code"], "Base.1.9.ChassisPowerStateOnRequired",
        "{v}"
    );
    // Both protocols' lines in one transcript: HTTP and the IPMI commands
    // the Redfish requests ran.
    let t = rf.lab.transcript();
    assert!(t.contains("\"channel\":\"redfish\",\"peer\""), "{t}");
    assert!(t.contains("\"name\":\"ChassisControl\""), "{t}");
    assert!(!t.contains(ADMIN.1), "no password in the transcript");
}

#[tokio::test]
async fn redfish_and_ipmitool_see_one_state() {
    if !have("ipmitool", "ipmitool") {
        return;
    }
    let rf = Rf::start().await;
    let port = rf.port();
    let it = |args: &'static [&'static str]| ipmitool(port, "lanplus", Some(17), ADMIN, args);

    // Power on through Redfish; ipmitool (RMCP+) sees it on.
    assert_eq!(rf.reset(ADMIN, "On").await.0, 204);
    let out = it(&["power", "status"]).await;
    assert!(out.stdout.contains("Chassis Power is on"), "{out:?}");
    // Off through IPMI; Redfish sees it off.
    assert!(it(&["power", "off"]).await.status.success());
    assert_eq!(rf.get("/redfish/v1/Systems/1").await["PowerState"], "Off");
    assert_eq!(rf.get("/redfish/v1/Chassis/1").await["PowerState"], "Off");

    // Boot override through IPMI, seen in Redfish.
    let out = it(&["chassis", "bootdev", "pxe"]).await;
    assert!(out.status.success(), "{out:?}");
    let boot = rf.get("/redfish/v1/Systems/1").await["Boot"].clone();
    assert_eq!(boot["BootSourceOverrideTarget"], "Pxe", "{boot}");
    assert_eq!(boot["BootSourceOverrideEnabled"], "Once", "{boot}");
    assert_eq!(boot["BootSourceOverrideMode"], "Legacy", "{boot}");

    // And the reverse: Redfish PATCH, read by ipmitool.
    let (status, body) = rf
        .patch_boot(
            json!({"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideMode": "UEFI"}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let out = it(&["chassis", "bootparam", "get", "5"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stdout.contains("Options apply to all future boots"),
        "{out:?}"
    );
    assert!(out.stdout.contains("BIOS EFI boot"), "{out:?}");
    assert!(out.stdout.contains("CD/DVD"), "{out:?}");

    // An IPMI user added over the LAN logs in over Redfish.
    assert!(
        it(&["user", "set", "name", "5", "late"])
            .await
            .status
            .success()
    );
    assert!(
        it(&["user", "set", "password", "5", "latepass1"])
            .await
            .status
            .success()
    );
    assert!(it(&["user", "priv", "5", "4", "1"]).await.status.success());
    assert!(it(&["user", "enable", "5"]).await.status.success());
    let r = rf
        .req(
            reqwest::Method::GET,
            "/redfish/v1/Systems/1",
            ("late", "latepass1"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let t = rf.lab.transcript();
    assert!(t.contains("\"channel\":\"lan\""), "{t}");
    assert!(t.contains("\"channel\":\"redfish\""), "{t}");
}

#[tokio::test]
async fn redfish_refusals_etags_sessions_and_privileges() {
    let rf = Rf::start().await;
    // No credentials: 401 with a challenge; the service root is open.
    let r = rf
        .http
        .get(format!("{}/redfish/v1/Systems/1", rf.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = rf
        .http
        .get(format!("{}/redfish/v1/", rf.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = rf
        .req(
            reqwest::Method::GET,
            "/redfish/v1/Systems/1",
            (ADMIN.0, "wrong"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A reset type that does not exist, and ones the state does not allow.
    let (s, body) = rf.reset(ADMIN, "Bogus").await;
    assert_eq!(s, 400);
    let info = &body["error"]["@Message.ExtendedInfo"][0];
    assert_eq!(
        info["MessageId"], "Base.1.9.ActionParameterValueNotInList",
        "{body}"
    );
    assert_eq!(info["MessageArgs"][0], "Bogus", "{body}");
    for t in [
        "ForceOff",
        "GracefulShutdown",
        "ForceRestart",
        "PowerCycle",
        "Nmi",
    ] {
        let (s, body) = rf.reset(ADMIN, t).await;
        assert_eq!(s, 409, "{t} while off: {body}");
        assert_eq!(
            body["error"]["@Message.ExtendedInfo"][0]["MessageId"],
            "Base.1.9.ChassisPowerStateOnRequired"
        );
    }
    assert_eq!(rf.reset(ADMIN, "On").await.0, 204);
    let (s, body) = rf.reset(ADMIN, "On").await;
    assert_eq!(s, 409, "{body}");
    for t in ["Nmi", "GracefulShutdown", "On"] {
        assert_eq!(rf.reset(ADMIN, t).await.0, 204, "{t}");
    }
    use maas_e2e::bmc::power::PowerOp;
    let ops = rf.lab.fleet.bmc("n1").unwrap().power_actions().unwrap();
    assert_eq!(ops, [PowerOp::On, PowerOp::Nmi, PowerOp::Soft, PowerOp::On]);

    // ETags: a stale one is refused with 412 and changes nothing.
    let sys = rf.get("/redfish/v1/Systems/1").await;
    let etag = sys["@odata.etag"].as_str().unwrap().to_string();
    let (s, _) = rf
        .patch_boot(
            json!({"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}),
            Some(&etag),
        )
        .await;
    assert_eq!(s, 200);
    let (s, body) = rf
        .patch_boot(json!({"BootSourceOverrideTarget": "Hdd"}), Some(&etag))
        .await;
    assert_eq!(s, 412, "{body}");
    assert_eq!(boot_device_name(&rf.boot_flags()), "pxe");
    let (s, body) = rf
        .patch_boot(json!({"BootSourceOverrideTarget": "Tape"}), None)
        .await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(
        body["error"]["@Message.ExtendedInfo"][0]["MessageId"],
        "Base.1.9.PropertyValueNotInList"
    );

    // A USER-level account reads but may not act.
    let r = rf
        .req(reqwest::Method::GET, "/redfish/v1/Systems/1", USER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(rf.reset(USER, "ForceOff").await.0, 403);
    assert!(rf.on());

    // Sessions: log in, use the token, log out; the token is dead after.
    let r = rf
        .http
        .post(format!("{}/redfish/v1/SessionService/Sessions", rf.url))
        .json(&json!({"UserName": OPERATOR.0, "Password": OPERATOR.1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.headers()["x-auth-token"].to_str().unwrap().to_string();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let with_token = |m: reqwest::Method, p: &str| {
        rf.http
            .request(m, format!("{}{p}", rf.url))
            .header("X-Auth-Token", &token)
    };
    let r = with_token(reqwest::Method::GET, "/redfish/v1/Systems/1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = with_token(reqwest::Method::DELETE, &location)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = with_token(reqwest::Method::GET, "/redfish/v1/Systems/1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let t = rf.lab.transcript();
    assert!(!t.contains(&token), "no token in the transcript");

    // Unsupported method: 405 with Allow.
    let r = rf
        .req(reqwest::Method::DELETE, "/redfish/v1/Systems/1", ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers()["allow"].to_str().unwrap().contains("PATCH"));
}

#[tokio::test]
async fn redfish_fault_switches_apply() {
    let rf = Rf::start().await;
    let fleet = &rf.lab.fleet;
    // A command fault on Chassis Control covers the Redfish reset too.
    fleet
        .set_fault(
            "n1",
            Fault::FailCommand {
                netfn: 0x00,
                cmd: 0x02,
                on: Where::Redfish,
                times: 1,
                cc: 0xC0,
            },
        )
        .unwrap();
    let (s, body) = rf.reset(ADMIN, "On").await;
    assert_eq!(s, 503, "{body}");
    assert!(!rf.on());
    assert_eq!(rf.reset(ADMIN, "On").await.0, 204);
    assert!(rf.on());

    // A BMC that acknowledges power-on without doing it.
    rf.reset(ADMIN, "ForceOff").await;
    fleet
        .set_fault("n1", Fault::AckPowerOnWithoutDoing)
        .unwrap();
    assert_eq!(rf.reset(ADMIN, "On").await.0, 204);
    assert!(!rf.on(), "acknowledged, not done");
    fleet.clear_faults("n1").unwrap();

    // A silent BMC answers no Redfish request either.
    fleet.set_fault("n1", Fault::NoAnswer).unwrap();
    let r = rf
        .req(reqwest::Method::GET, "/redfish/v1/Systems/1", ADMIN)
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
    fleet.clear_faults("n1").unwrap();
    assert_eq!(rf.get("/redfish/v1/Systems/1").await["PowerState"], "Off");
}

#[tokio::test]
async fn redfish_service_validator_finds_no_errors() {
    if !have_venv("rf_service_validator") {
        return;
    }
    let rf = Rf::start().await;
    let logs = rf.lab.dir.path().join("rsv-logs");
    let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bmc/redfish-schemas");
    let out = run_peer(
        Cmd::new(venv_bin("rf_service_validator").to_string_lossy())
            .args(["--rhost", &rf.url, "--user", ADMIN.0, "--password"])
            .secret_arg(ADMIN.1)
            .args([
                "--authtype",
                "Session",
                "--skipschema",
                "--schema_directory",
                schemas,
                "--logdir",
                &logs.to_string_lossy(),
                "--config",
                "/nonexistent/config.ini",
            ]),
        &rf.ca,
    )
    .await;
    let text = format!("{}{}", out.stdout, out.stderr);
    // The summary table: | PASS | WARN | FAIL | NOT TESTED |.
    let values = text
        .lines()
        .skip_while(|l| !l.contains("NOT TESTED"))
        .nth(2)
        .unwrap_or_default()
        .to_string();
    let counts: Vec<u64> = values
        .split('|')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    // On failure, the debug log's lines that say why.
    let why: String = walk_files(&logs)
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| {
            t.lines()
                .filter(|l| l.contains(" - ERROR - ") || l.contains("FAIL"))
                .map(|l| format!("{l}\n"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(counts.len(), 4, "summary not found: {text}{why}");
    assert!(counts[0] > 20, "too few checks passed: {values}");
    assert_eq!(counts[2], 0, "failures: {text}{why}");
    assert!(out.status.success(), "{text}");
}

#[tokio::test]
async fn redfish_protocol_validator_finds_no_failures() {
    if !have_venv("rf_protocol_validator") {
        return;
    }
    let rf = Rf::start().await;
    let reports = rf.lab.dir.path().join("rpv");
    std::fs::create_dir_all(&reports).unwrap();
    let out = run_peer(
        Cmd::new(venv_bin("rf_protocol_validator").to_string_lossy())
            .args(["--rhost", &rf.url, "--user", ADMIN.0, "--password"])
            .secret_arg(ADMIN.1)
            .args([
                "--ca-bundle",
                &rf.ca.to_string_lossy(),
                "--report-dir",
                &reports.to_string_lossy(),
                "--report-type",
                "tsv",
                "--config",
                "/nonexistent/config.ini",
            ]),
        &rf.ca,
    )
    .await;
    let summary = out
        .stdout
        .lines()
        .find(|l| l.starts_with("Summary - "))
        .unwrap_or_default()
        .to_string();
    let count = |what: &str| -> u64 {
        summary
            .split(", ")
            .find_map(|p| {
                p.trim_start_matches("Summary - ")
                    .strip_prefix(&format!("{what}: "))
            })
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(u64::MAX)
    };
    let failures: Vec<String> = std::fs::read_dir(&reports)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .flat_map(|t| {
            t.lines()
                .filter(|l| l.contains("\tFAIL\t"))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        count("PASS") > 20 && count("PASS") != u64::MAX,
        "{summary}\n{out:?}"
    );
    assert_eq!(count("FAIL"), 0, "{summary}\n{}", failures.join("\n"));
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test]
async fn redfishtool_reads_and_resets() {
    if !have_venv("redfishtool") {
        return;
    }
    let rf = Rf::start().await;
    let host = rf.url.trim_start_matches("https://").to_string();
    let tool = |args: Vec<String>| {
        Cmd::new(venv_bin("redfishtool").to_string_lossy())
            .args(["-r", &host, "-u", ADMIN.0, "-p"])
            .secret_arg(ADMIN.1)
            .args(["-S", "Always"])
            .args(args)
    };
    let out = run_peer(
        tool(vec!["Systems".into(), "-I".into(), "1".into()]),
        &rf.ca,
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["PowerState"], "Off");
    let out = run_peer(
        tool(vec![
            "Systems".into(),
            "-I".into(),
            "1".into(),
            "reset".into(),
            "On".into(),
        ]),
        &rf.ca,
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    assert!(rf.on());
    let out = run_peer(
        tool(vec![
            "Managers".into(),
            "-I".into(),
            "1".into(),
            "EthernetInterfaces".into(),
        ]),
        &rf.ca,
    )
    .await;
    assert!(
        out.status.success() && out.stdout.contains("EthernetInterfaces/1"),
        "{out:?}"
    );
}

/// The sim's redfish power driver (MAAS 2.8's redfish.py behaviour) against
/// our BMC: the requests in order, the machine's state, the boot override.
#[tokio::test]
async fn sim_redfish_driver_follows_maas_sequence() {
    use maas_e2e::targets::sim::power::{PowerAction, PowerDriverConfig};
    use maas_e2e::targets::sim::power_redfish::{RedfishParams, RedfishPowerDriver};
    let rf = Rf::start().await;
    let driver = RedfishPowerDriver::new(PowerDriverConfig {
        netns: None,
        wait_time: vec![1, 1],
        wait_unit: Duration::from_millis(50),
        command_timeout: Duration::from_secs(10),
        path_prepend: None,
        ..PowerDriverConfig::default()
    });
    let params = RedfishParams::from_json(&json!({
        // No scheme: the driver adds https:// as MAAS does.
        "power_address": rf.url.trim_start_matches("https://"),
        "power_user": ADMIN.0,
        "power_pass": ADMIN.1,
    }))
    .unwrap();
    let http_lines = |lab: &Lab| -> Vec<String> {
        lab.transcript()
            .lines()
            .filter(|l| l.contains("\"event\":\"http\""))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| v["detail"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    driver
        .perform("abc123", &params, PowerAction::On, |_, e, _| {
            panic!("retry: {e}")
        })
        .await
        .unwrap();
    assert!(rf.on());
    let f = rf.boot_flags();
    assert_eq!((boot_device_name(&f), f[0] & 0xC0), ("pxe", 0x80));
    let lines = http_lines(&rf.lab);
    assert_eq!(
        lines[..4],
        [
            "GET /redfish/v1/Systems 200",
            "GET /redfish/v1/Systems/1 200",
            "PATCH /redfish/v1/Systems/1 200",
            "POST /redfish/v1/Systems/1/Actions/ComputerSystem.Reset 204",
        ],
        "{lines:#?}"
    );
    // On again: the driver forces it off first, then PXE once and on.
    let before = lines.len();
    driver
        .perform("abc123", &params, PowerAction::On, |_, e, _| {
            panic!("retry: {e}")
        })
        .await
        .unwrap();
    let ops = rf.lab.fleet.bmc("n1").unwrap().power_actions().unwrap();
    use maas_e2e::bmc::power::PowerOp;
    assert_eq!(ops, [PowerOp::On, PowerOp::Off, PowerOp::On]);
    assert!(http_lines(&rf.lab).len() > before);
    driver
        .perform("abc123", &params, PowerAction::Off, |_, e, _| {
            panic!("retry: {e}")
        })
        .await
        .unwrap();
    assert!(!rf.on());
    assert_eq!(
        driver.query(&params).await.unwrap(),
        maas_e2e::maas::types::PowerState::Off
    );
    // A wrong password: MAAS's error text, after its retries.
    let bad = RedfishParams {
        power_pass: "wrong".into(),
        ..params.clone()
    };
    let mut retries = 0;
    let e = driver
        .perform("abc123", &bad, PowerAction::On, |_, _, _| retries += 1)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "Redfish request failed with response status code: 401."
    );
    // One failed attempt per wait (wait_time [1, 1]), as every driver's.
    assert_eq!(retries, 2);
    assert!(!rf.on());
}

/// A libvirt domain of our own on qemu:///system, destroyed and undefined
/// on every way out (Drop).
struct BenchDomain {
    dom: virt::domain::Domain,
    uuid: String,
}

impl BenchDomain {
    fn define(name: &str) -> BenchDomain {
        let conn = virt::connect::Connect::open(Some("qemu:///system")).unwrap();
        let uuid = uuid::Uuid::new_v4().to_string();
        // No disk, no NIC: the domain only has to run.
        let xml = format!(
            "<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid>\
             <memory unit='MiB'>64</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64'>hvm</type></os><features><acpi/></features><devices/></domain>"
        );
        let dom = conn.define_domain_xml(&xml).unwrap();
        BenchDomain { dom, uuid }
    }

    fn running(&self) -> bool {
        self.dom.is_active().unwrap_or(false)
    }
}

impl Drop for BenchDomain {
    fn drop(&mut self) {
        let _ = self.dom.destroy();
        let _ = self.dom.undefine();
    }
}

/// Proportional set size of a process, KiB.
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start `maas-e2e bmc serve` on `config`; (child, Redfish URLs by BMC).
async fn serve_fleet(config: &std::path::Path, n: usize) -> (tokio::process::Child, Vec<String>) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_maas-e2e"))
        .args(["bmc", "serve", "--config"])
        .arg(config)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut urls = Vec::new();
    while urls.len() < n {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("bmc serve prints its addresses")
            .unwrap()
            .expect("bmc serve exited early");
        if let Some((_, url)) = line.split_once(" Redfish ") {
            urls.push(url.trim().to_string());
        }
    }
    (child, urls)
}

fn p50_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

async fn get_p50(http: &reqwest::Client, url: &str, who: Option<(&str, &str)>) -> f64 {
    let mut samples = Vec::new();
    for i in 0..220 {
        let mut rb = http.get(url);
        if let Some((u, p)) = who {
            rb = rb.basic_auth(u, Some(p));
        }
        let t = std::time::Instant::now();
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let _ = r.bytes().await.unwrap();
        if i >= 20 {
            samples.push(t.elapsed());
        }
    }
    p50_ms(samples)
}

/// Reset(On) until libvirt reports the domain running, 5 times after one
/// untimed warm-up (QEMU's first start reads its files cold); the median.
async fn reset_to_running(
    http: &reqwest::Client,
    system_url: &str,
    who: Option<(&str, &str)>,
    dom: &BenchDomain,
) -> f64 {
    let mut samples = Vec::new();
    for i in 0..6 {
        let _ = dom.dom.destroy();
        assert!(!dom.running());
        let mut rb = http
            .post(format!("{system_url}/Actions/ComputerSystem.Reset"))
            .json(&json!({"ResetType": "On"}));
        if let Some((u, p)) = who {
            rb = rb.basic_auth(u, Some(p));
        }
        let t = std::time::Instant::now();
        let r = rb.send().await.unwrap();
        assert!(
            r.status().is_success(),
            "{}",
            r.text().await.unwrap_or_default()
        );
        while !dom.running() {
            assert!(t.elapsed() < Duration::from_secs(60), "domain never ran");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if i > 0 {
            samples.push(t.elapsed());
        }
    }
    let _ = dom.dom.destroy();
    p50_ms(samples)
}

/// Our BMC and sushy-tools (libvirt driver) side by side on one libvirt
/// domain: memory, `GET Systems/1` p50, Reset-to-domain-running. Numbers in
/// docs/performance.md; REDFISH_BENCH_JSON names a file for the JSON.
#[tokio::test]
#[ignore]
async fn bench_redfish_vs_sushy_tools() {
    if !(have_venv("sushy-emulator")
        && maas_e2e::testing::require_root()
        && maas_e2e::testing::require(
            "libvirtd (qemu:///system)",
            std::path::Path::new("/run/libvirt/libvirt-sock").exists(),
            "run ci/setup-host.sh and start libvirtd",
        ))
    {
        return;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let dom = BenchDomain::define(&format!("me2e-rfbench-{}", std::process::id()));
    let http = reqwest::Client::builder()
        // Both sides serve self-signed certificates made for this bench.
        .danger_accept_invalid_certs(true)
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();

    // Ours: one BMC on the domain, then a fleet of 100 for memory.
    let one = dir.path().join("one.yaml");
    std::fs::write(
        &one,
        format!(
            "bmcs:\n - name: n1\n   lan: {{address: '127.0.0.1:0'}}\n   users: [{{name: admin, password: adminpw1}}]\n   power: {{kind: libvirt, uri: 'qemu:///system', domain: {}}}\n   redfish: {{address: '127.0.0.1:0'}}\n",
            dom.dom.name().unwrap()
        ),
    )
    .unwrap();
    let (ours, urls) = serve_fleet(&one, 1).await;
    let ours_url = format!("{}/redfish/v1/Systems/1", urls[0]);
    let who = Some(("admin", "adminpw1"));
    let ours_get = get_p50(&http, &ours_url, who).await;
    let ours_reset = reset_to_running(&http, &ours_url, who, &dom).await;
    let ours_pss_1 = pss_kib(ours.id().unwrap());
    drop(ours);

    let many = dir.path().join("many.yaml");
    let mut yaml = String::from("bmcs:\n");
    for i in 0..100 {
        yaml.push_str(&format!(
            " - name: m{i}\n   lan: {{address: '127.0.0.1:0'}}\n   users: [{{name: admin, password: adminpw1}}]\n   redfish: {{address: '127.0.0.1:0'}}\n"
        ));
    }
    std::fs::write(&many, yaml).unwrap();
    let (fleet, urls) = serve_fleet(&many, 100).await;
    for u in &urls {
        let r = http
            .get(format!("{u}/redfish/v1/Systems/1"))
            .basic_auth("admin", Some("adminpw1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let ours_pss_100 = pss_kib(fleet.id().unwrap());
    drop(fleet);

    // sushy-tools: its libvirt driver, only our domain allowed, HTTPS with a
    // throwaway certificate for this bench.
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (crt, key) = (dir.path().join("sushy.crt"), dir.path().join("sushy.key"));
    std::fs::write(&crt, cert.cert.pem()).unwrap();
    std::fs::write(&key, cert.signing_key.serialize_pem()).unwrap();
    let conf = dir.path().join("sushy.conf");
    std::fs::write(
        &conf,
        format!("SUSHY_EMULATOR_ALLOWED_INSTANCES = ['{}']\n", dom.uuid),
    )
    .unwrap();
    let port = free_port();
    let sushy = tokio::process::Command::new(venv_bin("sushy-emulator"))
        .args(["--interface", "127.0.0.1", "--port", &port.to_string()])
        .args(["--libvirt-uri", "qemu:///system", "--config"])
        .arg(&conf)
        .arg("--ssl-certificate")
        .arg(&crt)
        .arg("--ssl-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let t = std::time::Instant::now();
    let systems: Value = loop {
        if let Ok(r) = http.get(format!("{base}/redfish/v1/Systems")).send().await
            && r.status() == 200
        {
            break r.json().await.unwrap();
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "sushy-emulator did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let member = systems["Members"][0]["@odata.id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(member.contains(&dom.uuid), "{systems}");
    let sushy_url = format!("{base}{member}");
    let sushy_get = get_p50(&http, &sushy_url, None).await;
    let sushy_reset = reset_to_running(&http, &sushy_url, None, &dom).await;
    let sushy_pss = pss_kib(sushy.id().unwrap());
    drop(sushy);

    let report = json!({
        "ours": {
            "pss_kib_1_bmc": ours_pss_1,
            "pss_kib_100_bmcs": ours_pss_100,
            "kib_per_added_bmc": (ours_pss_100.saturating_sub(ours_pss_1)) as f64 / 99.0,
            "get_system_p50_ms": ours_get,
            "reset_on_to_running_ms": ours_reset,
        },
        "sushy_tools": {
            "pss_kib_1_system": sushy_pss,
            "get_system_p50_ms": sushy_get,
            "reset_on_to_running_ms": sushy_reset,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    if let Ok(p) = std::env::var("REDFISH_BENCH_JSON") {
        std::fs::write(p, report.to_string()).unwrap();
    }
    assert!(ours_pss_1 > 0 && sushy_pss > 0, "{report}");
}
