//! python-libmaas 0.6.8, the official MAAS client, against a held-up sim:
//! connect (describe/), every collection, create (multipart) and
//! commission, power on/off and query through the sim's power driver
//! (real FreeIPMI) and our BMC in a namespace of the test's own, the error
//! texts, and libmaas's own `maas` command line. The Python side is
//! tests/sim/libmaas_client.py, run with the venv's python
//! (MAAS_E2E_VENV, default /opt/maas-e2e/venv; made by ci/setup-python.sh).

use std::path::PathBuf;

use maas_e2e::bmc::config::{BmcConfig, PrivilegeName, UserConfig};
use maas_e2e::bmc::{Fleet, FleetConfig};
use maas_e2e::maas::ApiKey;
use maas_e2e::testing::{require, require_program, require_root};
use serde_json::{Value, json};

use crate::common::{Sim, TestDir, fast_power, start_sim};
use crate::netns::TestNetns;

const BMC_PASS: &str = "libmaas-bmc-secret";

fn venv_python() -> PathBuf {
    let venv = std::env::var_os("MAAS_E2E_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/maas-e2e/venv"));
    venv.join("bin/python")
}

fn libmaas_available() -> bool {
    let py = venv_python();
    let ok = std::process::Command::new(&py)
        .args(["-c", "import maas.client"])
        .output()
        .is_ok_and(|o| o.status.success());
    require(
        &format!("python-libmaas in {}", py.display()),
        ok,
        "run ci/setup-python.sh (or set MAAS_E2E_VENV)",
    )
}

/// Run one phase of the Python script; its JSON output. The key travels
/// in the environment only, and never appears in a failure message.
async fn libmaas(sim: &Sim, home: &TestDir, phase: &str, extra: &[(&str, &str)]) -> Value {
    let key = sim.region().admin_key().expose();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sim/libmaas_client.py");
    let mut cmd = tokio::process::Command::new(venv_python());
    cmd.arg(script)
        .arg(phase)
        .env("MAAS_URL", sim.region().local_maas_url())
        .env("MAAS_KEY", &key)
        .env("BMC_PASS", BMC_PASS)
        .env("HOME", &home.0);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("run the venv's python");
    let node_key = extra
        .iter()
        .find(|(k, _)| *k == "NODE_KEY")
        .map(|(_, v)| *v);
    let redact = |s: &[u8]| {
        let text = String::from_utf8_lossy(s).replace(&key, "<key>");
        match node_key {
            Some(k) => text.replace(k, "<node-key>"),
            None => text,
        }
    };
    assert!(
        out.status.success(),
        "libmaas phase {phase} failed:\n{}\n{}",
        redact(&out.stdout),
        redact(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("phase {phase}: not JSON ({e}): {}", redact(&out.stdout)))
}

#[tokio::test]
async fn python_libmaas_drives_the_sim() {
    if !(libmaas_available()
        && require_root()
        && require_program("ip", "iproute2")
        && require_program("ipmipower", "freeipmi-tools")
        && require_program("ipmi-chassis-config", "freeipmi-tools"))
    {
        return;
    }
    // Our BMC on port 623 of a namespace's loopback, the user autodetect
    // would have made; the sim runs FreeIPMI inside that namespace. Not
    // 127.0.0.1: FreeIPMI's ipmi-chassis-config takes that for in-band.
    let ns = TestNetns::create();
    let transcript = TestDir::new("libmaas-bmc");
    std::fs::create_dir_all(&transcript.0).unwrap();
    let mut bmc = BmcConfig::loopback(
        "n1",
        vec![UserConfig::new(
            "maas",
            BMC_PASS,
            PrivilegeName::Administrator,
        )],
    );
    bmc.lan.address = "127.0.0.2:623".into();
    bmc.lan.netns = Some(ns.0.clone());
    bmc.lan.ip = Some("127.0.0.2".parse().unwrap());
    let fleet = Fleet::start(FleetConfig {
        transcript: Some(transcript.0.join("transcript.jsonl")),
        bmcs: vec![bmc],
    })
    .await
    .expect("start our BMC");
    let mut power = fast_power(None);
    power.netns = Some(ns.0.clone());
    let Some(sim) = start_sim("libmaas", power).await else {
        return;
    };
    let home = TestDir::new("libmaas-home");
    std::fs::create_dir_all(&home.0).unwrap();

    let seen = libmaas(&sim, &home, "connect", &[]).await;
    assert_eq!(seen["version"], "2.8.7");
    let counts = &seen["counts"];
    for (name, n) in [
        ("rack_controllers", 1),
        ("region_controllers", 1),
        ("zones", 1),
        ("resource_pools", 1),
        ("spaces", 1),
        ("tags", 0),
        ("fabrics", 1),
        ("boot_resources", 1),
        ("boot_sources", 1),
        ("users", 1),
        ("domains", 1),
    ] {
        assert_eq!(counts[name], n, "{name}: {counts}");
    }
    assert_eq!(seen["whoami"], "admin");
    assert_eq!(seen["default_fabric_vlans"], json!([0]));
    assert_eq!(
        seen["config"],
        json!({
            "maas_name": "maas-e2e-sim",
            "ntp_server": "",
            "boot_images_auto_import": true,
            "kernel_opts": null,
            "default_storage_layout": "StorageLayout.FLAT",
            "main_archive": "http://archive.ubuntu.com/ubuntu",
            "maas_name_after_set": "sim-by-libmaas",
        })
    );
    // An admin's create commissions (2.8), through a multipart body.
    assert_eq!(seen["created"]["hostname"], "libmaas-1");
    assert_eq!(seen["created"]["status_name"], "Commissioning");
    let attrs = &seen["machine_attrs"];
    // 2.8's DISPLAYED_MACHINE_FIELDS but constraints_by_type (allocated
    // machines only), and resource_uri; its 22 interface fields and resource_uri.
    assert_eq!(seen["field_count"], 71, "{seen}");
    assert_eq!(seen["interface_field_count"], 23, "{seen}");
    assert_eq!(attrs["storage"], json!(0.0));
    assert_eq!(attrs["interfaces"], json!(["eth0"]));
    assert_eq!(attrs["zone"], "default");
    let id = seen["created"]["system_id"].as_str().unwrap().to_string();
    assert_eq!(seen["power_parameters_all"], json!([id]));
    assert_eq!(seen["node"], "libmaas-1");
    assert_eq!(seen["details_status"], 200);
    let errors = &seen["errors"];
    assert_eq!(
        errors["bad_key"],
        json!([401, "Authorization Error: Invalid API key."])
    );
    assert_eq!(errors["unknown_machine"], json!([404, "Not Found"]));
    assert_eq!(
        errors["unknown_op"],
        json!([400, "Unrecognised signature: method=GET op=frobnicate"])
    );
    assert_eq!(
        errors["unknown_endpoint"],
        json!([404, "Unknown API endpoint: /MAAS/api/2.0/frobnicate/."])
    );
    assert_eq!(errors["bad_mac"][0], 400);

    // The guest's side of commissioning through libmaas's multipart
    // encoder, the result as a file part.
    let key = node_key(&sim, &id).await.expose();
    let signal = libmaas(&sim, &home, "signal", &[("NODE_KEY", &key)]).await;
    assert_eq!(signal["working"], "OK");
    assert_eq!(signal["ok"], "OK");

    let power = libmaas(&sim, &home, "power", &[("SYSTEM_ID", &id)]).await;
    assert_eq!(power["status_name"], "Ready");
    assert_eq!(
        power["cpu_count"], 2,
        "the uploaded result was applied: {power}"
    );
    assert_eq!(power["storage"], json!(8000.0));
    assert_eq!(power["before"], "ON", "{power}");
    assert_eq!(power["first_off"], "OFF", "{power}");
    assert_eq!(power["after_on"], "ON");
    assert_eq!(power["after_off"], "OFF");
    // The BMC itself saw it: off at the end, chassis control in its transcript.
    assert!(!fleet.power_state("n1").unwrap());
    let seen = std::fs::read_to_string(transcript.0.join("transcript.jsonl")).unwrap();
    assert!(seen.contains("\"ChassisControl\""), "{seen}");
    // Boot device PXE before power on, as MAAS's driver sets it.
    assert!(seen.contains("\"SetSystemBootOptions\""), "{seen}");
    assert!(
        !seen.contains(BMC_PASS),
        "the BMC password leaked into the transcript"
    );

    let cli = libmaas(&sim, &home, "cli", &[]).await;
    assert_eq!(cli["login_rc"], 0, "{cli}");
    assert_eq!(cli["list_rc"], 0, "{cli}");
    // The CLI's table as JSON: {"columns": [...], "data": [row, ...]}.
    let rows = cli["listed"]["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no table rows: {cli}"));
    assert_eq!(rows.len(), 1, "{cli}");
    assert_eq!(rows[0]["hostname"], "libmaas-1");
    assert_eq!(rows[0]["status"], "Ready");
    assert_eq!(rows[0]["power"], "off");
    fleet.shutdown().await;
}

async fn node_key(sim: &Sim, system_id: &str) -> ApiKey {
    let url = format!(
        "{}/metadata/latest/by-id/{system_id}/?op=get_preseed",
        sim.region().local_maas_url()
    );
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("OAUTH_KEY='"))
        .and_then(|v| v.strip_suffix('\''))
        .expect("OAUTH_KEY in the preseed")
        .parse()
        .unwrap()
}
