//! The sim region end to end on 127.0.0.1 with a real Postgres: enlistment
//! with real HTTP clients, OAuth, commissioning signals, power through the
//! (fake) FreeIPMI, the rack's boot decisions and events, the external target.

use std::time::Duration;

use maas_e2e::maas::*;
use maas_e2e::targets::external::{External, ExternalError};
use maas_e2e::targets::sim::b64::encode as base64_encode;
use maas_e2e::targets::sim::{BootPurpose, Firmware};
use maas_e2e::testing::require_program;
use serde_json::json;

use crate::common::{
    Sim, TestBmc, fast_power, have_freeipmi, start_sim, start_sim_monitoring, start_sim_with,
};

const BMC_PASS: &str = "pw-region-test";

fn enlist_request(hostname: &str, macs: &[&str]) -> EnlistRequest {
    EnlistRequest {
        hostname: hostname.into(),
        architecture: "amd64".into(),
        subarchitecture: Some("generic".into()),
        power_type: "ipmi".into(),
        // A TEST-NET address per machine (2.8 takes a second enlistment
        // with a known BMC address for the same machine); tests that drive
        // power use `on_bmc`.
        power_parameters: json!({"power_address": format!("192.0.2.{}",
                u8::from_str_radix(macs[0].rsplit(':').next().unwrap(), 16).unwrap()),
            "power_user": "maas", "power_pass": BMC_PASS,
            "power_driver": "LAN_2_0", "power_boot_type": "auto"}),
        mac_addresses: macs.iter().map(|m| m.to_string()).collect(),
    }
}

/// `req` with the power parameters of our BMC `bmc` (real FreeIPMI runs).
fn on_bmc(mut req: EnlistRequest, bmc: &TestBmc) -> EnlistRequest {
    req.power_parameters = bmc.power_parameters();
    req
}

/// Enlist a machine anonymously, as the ephemeral image does, with the
/// power parameters of our BMC `bmc`; its system id.
async fn enlist_on(sim: &Sim, hostname: &str, macs: &[&str], bmc: &TestBmc) -> String {
    MaasClient::new(&sim.region().local_maas_url(), None)
        .unwrap()
        .enlist(&on_bmc(enlist_request(hostname, macs), bmc))
        .await
        .unwrap()
        .system_id
}

/// application/x-www-form-urlencoded encoding, as the guest's shell does it.
fn urlencode(s: &str) -> String {
    maas_e2e::maas::oauth::percent_encode(s)
}

/// POST a form with busybox wget, the way the ephemeral environment does.
async fn busybox_post(url: &str, form: &[(&str, &str)], auth: Option<&str>) -> (bool, String) {
    let data: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
    let mut cmd = maas_e2e::cmd::Cmd::new("busybox").args(["wget", "-q", "-O", "-"]);
    if let Some(a) = auth {
        cmd = cmd.arg("--header").arg(format!("Authorization: {a}"));
    }
    let out = cmd
        .arg("--post-data")
        .arg(data.join("&"))
        .arg(url)
        .timeout(Duration::from_secs(20))
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        format!("{}{}", out.stdout, out.stderr),
    )
}

async fn busybox_get(url: &str) -> String {
    maas_e2e::cmd::Cmd::new("busybox")
        .args(["wget", "-q", "-O", "-", url])
        .timeout(Duration::from_secs(20))
        .run()
        .await
        .unwrap()
}

/// Parse the preseed's KEY='value' lines.
fn preseed_value(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|v| v.trim_matches('\'').to_string())
        .unwrap_or_else(|| panic!("{key} not in preseed:\n{text}"))
}

/// What the guest sends: one signal through reqwest with the node key.
async fn signal(sim: &Sim, node_key: &ApiKey, form: &[(&str, &str)]) -> reqwest::Response {
    let url = format!(
        "{}/metadata/2012-03-01/?op=signal",
        sim.region().local_maas_url()
    );
    reqwest::Client::new()
        .post(url)
        .header("Authorization", node_key.authorization_header())
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn enlist_with_reqwest_and_busybox_wget() {
    if !require_program("busybox", "busybox-static") {
        return;
    }
    let Some(sim) = start_sim("enlist", fast_power(None)).await else {
        return;
    };
    let anon = MaasClient::new(&sim.region().local_maas_url(), None).unwrap();
    assert!(!anon.is_registered("52:54:00:e1:00:01").await.unwrap());
    let m = anon
        .enlist(&enlist_request("node-a", &["52:54:00:e1:00:01"]))
        .await
        .unwrap();
    assert_eq!(
        (m.status, m.status_name.as_str(), m.power_type.as_str()),
        (NodeStatus::NEW, "New", "ipmi")
    );
    assert_eq!(m.architecture, "amd64/generic");
    assert_eq!(
        m.boot_interface.as_ref().unwrap().mac_address,
        "52:54:00:e1:00:01"
    );
    // 2.8: anonymous is_registered leaves New (and Commissioning, Retired)
    // machines out, so a repeated enlistment runs; a user sees it.
    assert!(!anon.is_registered("52:54:00:E1:00:01").await.unwrap());
    assert!(sim.client.is_registered("52:54:00:E1:00:01").await.unwrap());

    // The guest's form through busybox wget: repeated mac_addresses, JSON power_parameters.
    let base = sim.region().local_maas_url();
    let is_reg = busybox_get(&format!(
        "{base}/api/2.0/machines/?op=is_registered&mac_address=52:54:00:e1:00:02"
    ))
    .await;
    assert_eq!(is_reg.trim(), "false");
    let params = json!({"power_address": "10.9.0.12", "power_user": "maas", "power_pass": "x y'z&=", "power_driver": "LAN_2_0"}).to_string();
    let (ok, body) = busybox_post(
        &format!("{base}/api/2.0/machines/"),
        &[
            ("hostname", "node-b"),
            ("architecture", "amd64"),
            ("subarchitecture", "generic"),
            ("power_type", "ipmi"),
            ("power_parameters", &params),
            ("mac_addresses", "52:54:00:e1:00:02"),
            ("mac_addresses", "52:54:00:e1:00:03"),
        ],
        None,
    )
    .await;
    assert!(ok, "{body}");
    let b: Machine = serde_json::from_str(&body).unwrap();
    assert_eq!(b.interface_set.len(), 2);
    let p = sim.client.power_parameters(&b.system_id).await.unwrap();
    assert_eq!(
        p["power_pass"], "x y'z&=",
        "the JSON string survived form encoding"
    );
    assert_eq!(p["power_user"], "maas");

    // Enlisted twice: the repeat (same MAC, another BMC address and
    // password) updates the New machine it matches (2.8
    // AnonMachinesHandler.create), no second machine.
    let mut again = enlist_request("node-b-again", &["52:54:00:e1:00:02"]);
    again.power_parameters = json!({"power_address": "10.9.0.99", "power_user": "maas",
        "power_pass": "second-pass", "power_driver": "LAN_2_0"});
    let repeat = anon.enlist(&again).await.unwrap();
    assert_eq!(repeat.system_id, b.system_id);
    let p = sim.client.power_parameters(&b.system_id).await.unwrap();
    assert_eq!(
        (p["power_address"].as_str(), p["power_pass"].as_str()),
        (Some("10.9.0.99"), Some("second-pass"))
    );
    // And by BMC address first: node-a's BMC with a new MAC is node-a.
    let mut a_again = enlist_request("node-a-again", &["52:54:00:e1:00:09"]);
    a_again.power_parameters = enlist_request("node-a", &["52:54:00:e1:00:01"]).power_parameters;
    let by_bmc = anon.enlist(&a_again).await.unwrap();
    assert_eq!(by_bmc.system_id, m.system_id);

    // A user's create with a MAC already in use: 400 with MAAS's field
    // error, not retried.
    let e = sim
        .client
        .enlist(&enlist_request("node-c", &["52:54:00:e1:00:02"]))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    assert!(
        e.to_string().contains("mac_addresses") && e.to_string().contains("after 1 attempt"),
        "{e}"
    );

    let all = sim.client.machines().await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.hostname.as_str()).collect::<Vec<_>>(),
        vec!["node-a", "node-b"]
    );
}

#[tokio::test]
async fn oauth_is_checked_and_no_server_header() {
    let Some(sim) = start_sim("oauth", fast_power(None)).await else {
        return;
    };
    let url = sim.region().local_maas_url();
    let mut wrong = sim.region().admin_key().clone();
    wrong.token_secret.push('x');
    let e = MaasClient::new(&url, Some(wrong))
        .unwrap()
        .machines()
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    let unknown: ApiKey = "a:b:c".parse().unwrap();
    assert_eq!(
        MaasClient::new(&url, Some(unknown))
            .unwrap()
            .machines()
            .await
            .unwrap_err()
            .status(),
        Some(401)
    );
    assert_eq!(
        MaasClient::new(&url, None)
            .unwrap()
            .machines()
            .await
            .unwrap_err()
            .status(),
        Some(401)
    );
    assert!(sim.client.machines().await.unwrap().is_empty());
    // version/ is anonymous; no Server header anywhere (secure_headers).
    for path in ["version/", "machines/"] {
        let r = reqwest::get(format!("{url}/api/2.0/{path}")).await.unwrap();
        assert!(
            r.headers().get("server").is_none(),
            "{path}: {:?}",
            r.headers()
        );
    }
    let v = MaasClient::new(&url, None)
        .unwrap()
        .version()
        .await
        .unwrap();
    assert!(v.subversion.contains("not MAAS"), "{v:?}");
}

#[tokio::test]
async fn commission_new_to_ready_with_events_results_and_power() {
    if !require_program("busybox", "busybox-static") {
        return;
    }
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    let Some(sim) = start_sim("commission", fast_power(None)).await else {
        return;
    };
    let rack = sim.region().rack();
    let boot_http = "http://127.0.0.1:5248/boot";
    let mac0 = "52:54:00:c0:00:01";
    let mac1 = "52:54:00:c0:00:02";

    // Unknown MAC: enlist boot; the PXE/TFTP events join the machine when it enlists.
    rack.record_pxe_request(mac0, Firmware::Bios, "lpxelinux.0")
        .await
        .unwrap();
    let b = rack
        .boot_config(mac0, Firmware::Bios, boot_http)
        .await
        .unwrap();
    assert_eq!(b.purpose, BootPurpose::Enlist);
    assert!(
        b.cmdline
            .as_deref()
            .unwrap()
            .contains("BOOTIF=01-52-54-00-c0-00-01"),
        "{b:?}"
    );
    rack.record_tftp_request(mac0, "lpxelinux.0").await.unwrap();
    let enlist_url = b
        .cmdline
        .unwrap()
        .split("cloud-config-url=")
        .nth(1)
        .unwrap()
        .to_string();
    let enlist_preseed = busybox_get(&enlist_url).await;
    assert_eq!(preseed_value(&enlist_preseed, "MAAS_MODE"), "enlist");
    assert_eq!(
        preseed_value(&enlist_preseed, "IPMI_RETRY_BASE_SECONDS"),
        "1"
    );

    let m = MaasClient::new(&preseed_value(&enlist_preseed, "MAAS_URL"), None)
        .unwrap()
        .enlist(&on_bmc(enlist_request("", &[mac0, mac1]), &bmc))
        .await
        .unwrap();
    assert!(
        !m.hostname.is_empty(),
        "a hostname is generated when none is given"
    );
    let id = m.system_id.clone();
    // A New machine PXE-booting again: 2.8 boots it into the commissioning
    // environment with its own preseed, whose user data only powers it off
    // (rpc/boot.py get_final_boot_purpose, metadataserver/api.py
    // UserDataHandler.read): it does not enlist twice.
    let off = rack
        .boot_config(mac0, Firmware::Bios, boot_http)
        .await
        .unwrap();
    assert_eq!(off.purpose, BootPurpose::Poweroff);
    let preseed = busybox_get(
        off.cmdline
            .unwrap()
            .split("cloud-config-url=")
            .nth(1)
            .unwrap(),
    )
    .await;
    assert_eq!(preseed_value(&preseed, "MAAS_MODE"), "poweroff");

    // Commission: status Commissioning, power on through FreeIPMI.
    let c = sim
        .client
        .commission(&id, &CommissionOptions::default())
        .await
        .unwrap();
    assert_eq!(c.status, NodeStatus::COMMISSIONING);
    let b = rack
        .boot_config(mac0, Firmware::Uefi, boot_http)
        .await
        .unwrap();
    assert_eq!(b.purpose, BootPurpose::Commission);
    let preseed = busybox_get(
        b.cmdline
            .unwrap()
            .split("cloud-config-url=")
            .nth(1)
            .unwrap(),
    )
    .await;
    assert_eq!(preseed_value(&preseed, "MAAS_MODE"), "commission");
    assert_eq!(preseed_value(&preseed, "SYSTEM_ID"), id);
    assert_eq!(preseed_value(&preseed, "HOSTNAME"), m.hostname);
    assert_eq!(
        preseed_value(&preseed, "METADATA_URL"),
        format!("{}/metadata", sim.region().maas_url())
    );
    let node_key: ApiKey = preseed_value(&preseed, "OAUTH_KEY").parse().unwrap();
    assert_ne!(&node_key, sim.region().admin_key());

    // The guest's signals: WORKING with power parameters, results, OK.
    let power =
        json!({"power_address": bmc.address(), "power_user": "maas", "power_pass": "rotated-pw",
        "power_driver": "LAN_2_0", "power_boot_type": "efi"})
        .to_string();
    let r = signal(
        &sim,
        &node_key,
        &[
            ("op", "signal"),
            ("status", "WORKING"),
            ("error", "Gathering information"),
            ("power_type", "ipmi"),
            ("power_parameters", &power),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        sim.client.power_parameters(&id).await.unwrap()["power_pass"],
        "rotated-pw"
    );
    let ifaces = json!({"interfaces": [{"name": "ens3", "mac": mac0, "boot": false}, {"name": "ens4", "mac": mac1, "boot": true}]});
    let hw = json!({"cpu_count": 2, "cpu_model": "Haswell-noTSX", "memory_mib": 2048, "disks": [{"name": "vda", "size_bytes": 8589934592u64}]});
    for (name, out) in [
        ("00-maas-00-support-info", "support info\n".to_string()),
        ("40-maas-01-network-interfaces", ifaces.to_string()),
        ("50-maas-01-commissioning", hw.to_string()),
    ] {
        let b64 = base64_encode(out.as_bytes());
        // One of them through busybox wget, exactly as the guest script sends it.
        if name.starts_with("40") {
            let (ok, body) = busybox_post(
                &format!("{}/metadata/2012-03-01/", sim.region().local_maas_url()),
                &[
                    ("op", "signal"),
                    ("status", "WORKING"),
                    ("script_name", name),
                    ("exit_status", "0"),
                    ("output_b64", &b64),
                ],
                Some(&node_key.authorization_header()),
            )
            .await;
            assert!(ok && body.contains("OK"), "{body}");
        } else {
            let r = signal(
                &sim,
                &node_key,
                &[
                    ("op", "signal"),
                    ("status", "WORKING"),
                    ("script_name", name),
                    ("exit_status", "0"),
                    ("output_b64", &b64),
                ],
            )
            .await;
            assert_eq!(r.status(), 200, "{name}");
        }
    }
    // Power on finished before OK (the machine would not run otherwise).
    for _ in 0..200 {
        if sim.client.machine(&id).await.unwrap().power_state == PowerState::On {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let r = signal(&sim, &node_key, &[("op", "signal"), ("status", "OK")]).await;
    assert_eq!(r.status(), 200);

    let t = sim
        .client
        .wait_for_status(&id, NodeStatus::READY, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(t.statuses().last(), Some(&NodeStatus::READY));
    let ready = sim.client.machine(&id).await.unwrap();
    assert_eq!(
        (ready.cpu_count, ready.memory, ready.power_state),
        (2, 2048, PowerState::On)
    );
    assert_eq!(
        ready
            .boot_interface
            .as_ref()
            .map(|i| (i.name.as_str(), i.mac_address.as_str())),
        Some(("ens4", mac1))
    );
    assert_eq!(ready.interface_set.len(), 2);
    assert_eq!(ready.physicalblockdevice_set[0].name, "vda");
    assert_eq!(ready.commissioning_status_name, "Passed");

    // Events tell the story in MAAS's words, oldest first.
    let page = sim
        .client
        .events(&EventQuery {
            system_id: Some(id.clone()),
            level: Some("DEBUG".into()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut seen: Vec<String> = page
        .events
        .iter()
        .rev()
        .map(|e| format!("{}|{}", e.event_type, e.description))
        .collect();
    seen.dedup();
    let pos = |needle: &str| {
        seen.iter()
            .position(|s| s.starts_with(needle))
            .unwrap_or_else(|| panic!("{needle} not in {seen:#?}"))
    };
    assert!(pos("PXE Request") < pos("TFTP Request|lpxelinux.0"));
    assert!(pos("Node changed status|From 'New' to 'Commissioning'") < pos("Powering on"));
    assert!(pos("Powering on") < pos("Node powered on"));
    assert!(pos("Performing PXE boot") < pos("Gathering information"));
    assert!(
        pos(
            "Script result|40-maas-01-network-interfaces changed status from 'Running' to 'Passed'"
        ) > 0
    );
    assert!(pos("Node changed status|From 'Commissioning' to 'Ready'") > pos("Script result"));

    // Results: the three scripts passed, outputs base64 as MAAS sends them.
    let sets = sim.client.commissioning_results(&id).await.unwrap();
    let names: Vec<(&str, &str)> = sets[0]
        .results
        .iter()
        .map(|r| (r.name.as_str(), r.status_name.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("00-maas-00-support-info", "Passed"),
            ("40-maas-01-network-interfaces", "Passed"),
            ("50-maas-01-commissioning", "Passed")
        ]
    );
    assert_eq!(
        sets[0].results[0].output.as_deref(),
        Some(base64_encode(b"support info\n").as_str())
    );

    // The rack ran FreeIPMI as MAAS does: boot device PXE, then power on,
    // then a query, against our BMC.
    let lan = bmc.lan_commands();
    let boot = lan.iter().position(|c| c == "set_system_boot_options");
    let on = lan.iter().position(|c| c == "chassis_control");
    assert!(boot.is_some() && boot < on, "{lan:#?}");
    assert!(bmc.is_on());
    // A Ready machine PXE-booting again is told to power off.
    assert_eq!(
        rack.boot_config(mac1, Firmware::Bios, boot_http)
            .await
            .unwrap()
            .purpose,
        BootPurpose::Poweroff
    );
    // The node key cannot use the admin API.
    let e = MaasClient::new(&sim.region().local_maas_url(), Some(node_key))
        .unwrap()
        .machines()
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403));
}

#[tokio::test]
async fn failed_signal_and_failed_script_end_in_failed_commissioning() {
    if !have_freeipmi() {
        return;
    }
    let (bmc_a, bmc_b) = (TestBmc::start().await, TestBmc::start().await);
    let Some(sim) = start_sim("failed", fast_power(None)).await else {
        return;
    };
    let a = enlist_on(&sim, "fail-a", &["52:54:00:fa:00:01"], &bmc_a).await;
    let b = enlist_on(&sim, "fail-b", &["52:54:00:fa:00:02"], &bmc_b).await;
    let key_a = sim_node_key(&sim, &a).await;
    let key_b = sim_node_key(&sim, &b).await;

    // A signal from a New machine is answered and ignored, as 2.8 does.
    let r = signal(&sim, &key_a, &[("op", "signal"), ("status", "WORKING")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        sim.client.machine(&a).await.unwrap().status,
        NodeStatus::NEW
    );

    // a: the environment signals FAILED.
    sim.client
        .commission(&a, &CommissionOptions::default())
        .await
        .unwrap();
    let r = signal(
        &sim,
        &key_a,
        &[
            ("op", "signal"),
            ("status", "FAILED"),
            ("error", "50-maas-01-commissioning: lsblk not found"),
        ],
    )
    .await;
    let status = r.status();
    assert_eq!(status, 200, "{}", r.text().await.unwrap());
    let e = sim
        .client
        .wait_for_status(&a, NodeStatus::READY, Duration::from_secs(20))
        .await
        .unwrap_err();
    match &e {
        WaitError::Failed { reached, .. } => assert_eq!(*reached, NodeStatus::FAILED_COMMISSIONING),
        other => panic!("expected Failed, got {other}"),
    }
    assert!(e.to_string().contains("lsblk not found"), "{e}");
    let sets = sim.client.commissioning_results(&a).await.unwrap();
    assert!(
        sets[0].results.iter().all(|r| r.status_name == "Aborted"),
        "{:?}",
        sets[0].results
    );

    // b: a script exits 1, then OK: MAAS still fails commissioning.
    sim.client
        .commission(&b, &CommissionOptions::default())
        .await
        .unwrap();
    let out = base64_encode(b"lshw: crashed\n");
    signal(
        &sim,
        &key_b,
        &[
            ("op", "signal"),
            ("status", "WORKING"),
            ("script_name", "00-maas-00-support-info"),
            ("exit_status", "1"),
            ("output_b64", &out),
        ],
    )
    .await;
    // Output that does not parse fails its script too.
    let junk = base64_encode(b"not json");
    signal(
        &sim,
        &key_b,
        &[
            ("op", "signal"),
            ("status", "WORKING"),
            ("script_name", "50-maas-01-commissioning"),
            ("exit_status", "0"),
            ("output_b64", &junk),
        ],
    )
    .await;
    signal(&sim, &key_b, &[("op", "signal"), ("status", "OK")]).await;
    let m = sim.client.machine(&b).await.unwrap();
    assert_eq!(m.status, NodeStatus::FAILED_COMMISSIONING);
    // 2.8 keeps the signal's `error` (none with this OK); the failed
    // scripts are in the results.
    assert_eq!(m.status_message.as_deref(), None);
    // A failed machine can be commissioned again.
    assert_eq!(
        sim.client
            .commission(&b, &CommissionOptions::default())
            .await
            .unwrap()
            .status,
        NodeStatus::COMMISSIONING
    );
    // Commissioning a machine that is already commissioning is a conflict.
    assert_eq!(
        sim.client
            .commission(&b, &CommissionOptions::default())
            .await
            .unwrap_err()
            .status(),
        Some(409)
    );
}

async fn sim_node_key(sim: &Sim, system_id: &str) -> ApiKey {
    let url = format!(
        "{}/metadata/latest/by-id/{system_id}/?op=get_preseed",
        sim.region().local_maas_url()
    );
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    preseed_value(&text, "OAUTH_KEY").parse().unwrap()
}

#[tokio::test]
async fn bmc_error_on_power_on_is_retried_then_fails_commissioning_with_maas_text() {
    // Real FreeIPMI against our BMC, which fails every session's first
    // datagram: ipmipower prints "BMC error".
    if !crate::common::have_freeipmi() {
        return;
    }
    let bmc = crate::common::TestBmc::start().await;
    bmc.set_fault(maas_e2e::bmc::fault::Fault::FailCommand {
        netfn: 0x06,
        cmd: 0x38,
        on: maas_e2e::bmc::fault::Where::Lan,
        times: 1000,
        cc: 0xFF,
    });
    let Some(sim) = start_sim("bmcerr", fast_power(None)).await else {
        return;
    };
    let id = enlist_on(&sim, "bmc-err", &["52:54:00:be:00:01"], &bmc).await;
    sim.client
        .commission(&id, &CommissionOptions::default())
        .await
        .unwrap();
    // rpc/power.py power_change_failure: MarkNodeFailed, then the event.
    let t = sim
        .client
        .wait_for_status(
            &id,
            NodeStatus::FAILED_COMMISSIONING,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(t.statuses().last(), Some(&NodeStatus::FAILED_COMMISSIONING));
    let text = "Power on for the node failed: Could not contact node's BMC: Device not responding correctly while performing power action.  MAAS performed several retries.  Please wait and try again.";
    let m = sim.client.machine(&id).await.unwrap();
    assert_eq!(m.status_message.as_deref(), Some(text));
    let page = sim
        .client
        .events(&EventQuery {
            system_id: Some(id.clone()),
            level: Some("DEBUG".into()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    let shown: Vec<String> = page
        .events
        .iter()
        .rev()
        .map(|e| format!("{} - {}", e.event_type, e.description))
        .collect();
    let tail: Vec<&str> = shown
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            format!("Marking node failed - {text}").as_str(),
            "Node changed status - From 'Commissioning' to 'Failed commissioning'",
            format!("Failed to power on node - {text}").as_str(),
        ],
        "{shown:#?}"
    );
    assert!(!shown.iter().any(|e| e.contains("retrying")), "{shown:#?}");
    // Eight attempts of the patch's schedule, each refused by the BMC.
    let refused = bmc
        .lan_commands()
        .iter()
        .filter(|c| *c == "get_channel_auth_capabilities -> 0xff")
        .count();
    assert!(refused >= 8, "{:?}", bmc.lan_commands());
}

#[tokio::test]
async fn query_power_state_and_power_off() {
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    let Some(sim) = start_sim("query", fast_power(None)).await else {
        return;
    };
    let id = enlist_on(&sim, "q", &["52:54:00:9e:00:01"], &bmc).await;
    assert_eq!(
        sim.client.query_power_state(&id).await.unwrap(),
        PowerState::Off
    );
    sim.client.power_on(&id).await.unwrap();
    for _ in 0..200 {
        if sim.client.machine(&id).await.unwrap().power_state == PowerState::On {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        sim.client.query_power_state(&id).await.unwrap(),
        PowerState::On
    );
    sim.client.power_off(&id).await.unwrap();
    for _ in 0..200 {
        if sim.client.machine(&id).await.unwrap().power_state == PowerState::Off {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        sim.client.query_power_state(&id).await.unwrap(),
        PowerState::Off
    );
    assert!(!bmc.is_on(), "the BMC's machine is off");
}

#[tokio::test]
async fn waiter_timeout_names_the_last_status_and_event() {
    let Some(sim) = start_sim("waiter", fast_power(None)).await else {
        return;
    };
    let rack = sim.region().rack();
    rack.record_pxe_request("52:54:00:0a:00:01", Firmware::Uefi, "bootx64.efi")
        .await
        .unwrap();
    let anon = MaasClient::new(&sim.region().local_maas_url(), None).unwrap();
    let id = anon
        .enlist(&enlist_request("waits", &["52:54:00:0a:00:01"]))
        .await
        .unwrap()
        .system_id;
    let e = sim
        .client
        .wait_for_status(&id, NodeStatus::READY, Duration::from_millis(400))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, WaitError::Timeout { .. }), "{text}");
    assert!(
        text.contains(&format!("machine {id} did not reach Ready (4)")),
        "{text}"
    );
    assert!(text.contains("status New (0) (power unknown)"), "{text}");
    assert!(
        text.contains("last event \"PXE Request\" \"uefi firmware, boot file bootx64.efi\""),
        "{text}"
    );
}

#[tokio::test]
async fn network_objects_config_and_racks() {
    let Some(sim) = start_sim("net", fast_power(None)).await else {
        return;
    };
    let c = &sim.client;
    let racks = c.rack_controllers().await.unwrap();
    assert_eq!(racks.len(), 1);
    assert_eq!(racks[0].system_id, sim.region().rack_system_id());
    let fabrics = c.fabrics().await.unwrap();
    assert_eq!(
        (fabrics[0].name.as_str(), fabrics[0].vlans[0].vid),
        ("fabric-0", 0)
    );
    let subnet = c
        .create_subnet("10.77.0.0/24", None, None, Some("10.77.0.1"))
        .await
        .unwrap();
    assert_eq!(subnet.vlan.fabric, "fabric-0");
    assert_eq!(
        c.create_subnet("10.77.0.0/24", None, None, None)
            .await
            .unwrap_err()
            .status(),
        Some(400)
    );
    let range = c
        .create_ip_range("dynamic", "10.77.0.100", "10.77.0.150", "e2e")
        .await
        .unwrap();
    assert_eq!(range.subnet.cidr, "10.77.0.0/24");
    assert_eq!(
        c.create_ip_range("dynamic", "10.78.0.1", "10.78.0.2", "")
            .await
            .unwrap_err()
            .status(),
        Some(400)
    );
    // DHCP needs a primary rack, as MAAS says.
    assert_eq!(
        c.update_vlan(fabrics[0].id, 0, true, None)
            .await
            .unwrap_err()
            .status(),
        Some(400)
    );
    let rack = sim.region().rack();
    assert!(
        rack.dhcp_config().await.unwrap().is_empty(),
        "no DHCP before dhcp_on"
    );
    let v = c
        .update_vlan(fabrics[0].id, 0, true, Some(&racks[0].system_id))
        .await
        .unwrap();
    assert!(v.dhcp_on);
    c.create_ip_range("reserved", "10.77.0.1", "10.77.0.9", "infra")
        .await
        .unwrap();
    let dhcp = rack.dhcp_config().await.unwrap();
    assert_eq!(dhcp.len(), 1);
    assert_eq!(
        (dhcp[0].cidr.as_str(), dhcp[0].gateway_ip.as_deref()),
        ("10.77.0.0/24", Some("10.77.0.1"))
    );
    assert_eq!(
        dhcp[0].dynamic_ranges,
        vec![("10.77.0.100".to_string(), "10.77.0.150".to_string())]
    );
    assert_eq!(
        dhcp[0].reserved_ranges,
        vec![("10.77.0.1".to_string(), "10.77.0.9".to_string())]
    );
    assert_eq!(
        c.subnets().await.unwrap()[0].vlan.primary_rack.as_deref(),
        Some(racks[0].system_id.as_str())
    );
    assert_eq!(c.ip_ranges().await.unwrap().len(), 2);
    assert_eq!(
        c.get_config("enlist_commissioning").await.unwrap(),
        json!(false)
    );
    c.set_config("maas_name", "e2e-region").await.unwrap();
    assert_eq!(
        c.get_config("maas_name").await.unwrap(),
        json!("e2e-region")
    );
    assert_eq!(
        c.get_config("no_such_setting").await.unwrap_err().status(),
        Some(400)
    );
    assert!(!c.boot_resources_is_importing().await.unwrap());
    assert_eq!(c.machine("nope00").await.unwrap_err().status(), Some(404));
}

#[tokio::test]
async fn external_target_checks_a_running_sim() {
    let Some(sim) = start_sim("external", fast_power(None)).await else {
        return;
    };
    let url = sim.region().local_maas_url();
    let key = sim.region().admin_key().expose();
    let ext = External::from_args(Some(&url), Some(&key)).unwrap();
    let v = ext.check().await.unwrap();
    assert_eq!(v.version, "2.8.7");
    assert!(!format!("{ext:?}").contains(&sim.region().admin_key().token_secret));

    let wrong = External::from_args(Some(&url), Some("aaa:bbb:ccc")).unwrap();
    let e = wrong.check().await.unwrap_err();
    assert!(matches!(e, ExternalError::KeyRefused { .. }), "{e}");
    assert!(e.to_string().contains("refused the API key"), "{e}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nothing =
        External::from_args(Some(&format!("http://127.0.0.1:{port}/MAAS")), Some(&key)).unwrap();
    let e = nothing.check().await.unwrap_err();
    assert!(matches!(e, ExternalError::NotMaas { .. }), "{e}");
}

#[tokio::test]
async fn periodic_power_queries_follow_the_bmc() {
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    let Some(sim) = start_sim_with(
        "periodic",
        fast_power(None),
        Some(Duration::from_millis(50)),
        None,
    )
    .await
    else {
        return;
    };
    let id = enlist_on(&sim, "periodic", &["52:54:00:9f:00:01"], &bmc).await;
    // The BMC's state changes behind MAAS's back (the guest powered itself on).
    for want in [PowerState::Off, PowerState::On, PowerState::Off] {
        // Someone else's ipmipower (not the region's) switches the machine.
        let switch = if want == PowerState::On {
            "--on"
        } else {
            "--off"
        };
        maas_e2e::cmd::Cmd::new("ipmipower")
            .args([
                "-W",
                "opensesspriv",
                "--driver-type",
                "LAN_2_0",
                "-h",
                &bmc.address(),
                "-u",
                "maas",
                "-p",
            ])
            .secret_arg(crate::common::BMC_PASS)
            .arg(switch)
            .timeout(Duration::from_secs(30))
            .run()
            .await
            .unwrap();
        let mut seen = PowerState::Unknown;
        for _ in 0..200 {
            seen = sim.client.machine(&id).await.unwrap().power_state;
            if seen == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(seen, want);
    }
    let queries = bmc
        .lan_commands()
        .iter()
        .filter(|c| *c == "get_chassis_status")
        .count();
    assert!(queries >= 3, "{:?}", bmc.lan_commands());
}

#[tokio::test]
async fn a_silent_machine_fails_commissioning_after_the_heartbeat_timeout() {
    if !have_freeipmi() {
        return;
    }
    let (bmc, bmc2) = (TestBmc::start().await, TestBmc::start().await);
    let Some(sim) = start_sim_with(
        "heartbeat",
        fast_power(None),
        None,
        Some(Duration::from_millis(800)),
    )
    .await
    else {
        return;
    };
    let quiet = enlist_on(&sim, "quiet", &["52:54:00:4b:00:01"], &bmc).await;
    let chatty = enlist_on(&sim, "chatty", &["52:54:00:4b:00:02"], &bmc2).await;
    let chatty_key = sim_node_key(&sim, &chatty).await;
    sim.client
        .commission(&quiet, &CommissionOptions::default())
        .await
        .unwrap();
    sim.client
        .commission(&chatty, &CommissionOptions::default())
        .await
        .unwrap();
    // The chatty one keeps signalling WORKING; the quiet one never does.
    let keep_alive = async {
        for _ in 0..12 {
            signal(
                &sim,
                &chatty_key,
                &[("op", "signal"), ("status", "WORKING")],
            )
            .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let wait = sim.client.wait_for_status(
        &quiet,
        NodeStatus::FAILED_COMMISSIONING,
        Duration::from_secs(20),
    );
    let (_, t) = tokio::join!(keep_alive, wait);
    assert_eq!(
        t.unwrap().statuses().last(),
        Some(&NodeStatus::FAILED_COMMISSIONING)
    );
    let m = sim.client.machine(&quiet).await.unwrap();
    assert!(
        m.status_message
            .as_deref()
            .unwrap_or("")
            .starts_with("Node operation 'Commissioning' timed out after"),
        "{m:?}"
    );
    assert_eq!(
        sim.client.machine(&chatty).await.unwrap().status,
        NodeStatus::COMMISSIONING
    );
}

/// Every key path in `v` (objects recursed, array elements merged).
fn key_paths(v: &serde_json::Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                let p = format!("{prefix}.{k}");
                out.insert(p.clone());
                key_paths(child, &p, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                key_paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn sim_json_uses_only_maas_field_names() {
    // The sim's answers may have fewer fields than MAAS 2.8's documented
    // shapes (fixtures/maas/), never other names.
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    let Some(sim) = start_sim("shapes", fast_power(None)).await else {
        return;
    };
    let c = &sim.client;
    let id = enlist_on(
        &sim,
        "shape",
        &["52:54:00:5a:00:01", "52:54:00:5a:00:02"],
        &bmc,
    )
    .await;
    let racks = c.rack_controllers().await.unwrap();
    c.create_subnet("10.66.0.0/24", None, None, None)
        .await
        .unwrap();
    c.create_ip_range("dynamic", "10.66.0.10", "10.66.0.20", "x")
        .await
        .unwrap();
    // fabric-0 has id 0, as in MAAS.
    assert_eq!(c.fabrics().await.unwrap()[0].id, 0);
    c.update_vlan(0, 0, true, Some(&racks[0].system_id))
        .await
        .unwrap();
    c.commission(&id, &CommissionOptions::default())
        .await
        .unwrap();
    let key = sim_node_key(&sim, &id).await;
    let hw = base64_encode(
        json!({"cpu_count": 1, "memory_mib": 512, "disks": [{"name": "vda", "size_bytes": 1000}]})
            .to_string()
            .as_bytes(),
    );
    signal(
        &sim,
        &key,
        &[
            ("op", "signal"),
            ("status", "WORKING"),
            ("script_name", "50-maas-01-commissioning"),
            ("exit_status", "0"),
            ("output_b64", &hw),
        ],
    )
    .await;

    let cases = [
        (format!("machines/{id}/"), vec![], "machine_ready.json"),
        ("machines/".to_string(), vec![], "machines.json"),
        (
            "events/".to_string(),
            vec![("op", "query"), ("level", "DEBUG")],
            "events_query.json",
        ),
        (
            format!("nodes/{id}/results/"),
            vec![("type", "commissioning"), ("include_output", "1")],
            "results_commissioning.json",
        ),
        (
            "rackcontrollers/".to_string(),
            vec![],
            "rackcontrollers.json",
        ),
        ("fabrics/".to_string(), vec![], "fabrics.json"),
        ("subnets/".to_string(), vec![], "subnets.json"),
        ("ipranges/".to_string(), vec![], "ipranges.json"),
        ("version/".to_string(), vec![], "version.json"),
        ("boot-resources/".to_string(), vec![], "boot_resources.json"),
    ];
    for (path, query, fixture) in cases {
        let body = c.get_raw(&path, &query).await.unwrap();
        let sim_json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let doc: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("fixtures/maas")
                    .join(fixture),
            )
            .unwrap(),
        )
        .unwrap();
        let (mut ours, mut theirs) = (Default::default(), Default::default());
        key_paths(&sim_json, "", &mut ours);
        key_paths(&doc, "", &mut theirs);
        let extra: Vec<&String> = ours.difference(&theirs).collect();
        assert!(
            extra.is_empty(),
            "{path}: fields MAAS 2.8 does not have: {extra:?}"
        );
        assert!(!ours.is_empty(), "{path}: empty answer");
    }
}

/// Events of a machine, oldest first, as `TYPE - DESCRIPTION`.
async fn event_lines(sim: &Sim, id: &str) -> Vec<String> {
    let page = sim
        .client
        .events(&EventQuery {
            system_id: Some(id.to_string()),
            level: Some("DEBUG".into()),
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    page.events
        .iter()
        .rev()
        .map(|e| format!("{} - {}", e.event_type, e.description))
        .collect()
}

#[tokio::test]
async fn testing_phase_runs_after_commissioning_and_can_fail() {
    if !have_freeipmi() {
        return;
    }
    let (bmc_a, bmc_b) = (TestBmc::start().await, TestBmc::start().await);
    let Some(sim) = start_sim("testing", fast_power(None)).await else {
        return;
    };
    let mut ids = Vec::new();
    for (name, mac, bmc) in [
        ("test-ok", "52:54:00:7e:00:01", &bmc_a),
        ("test-bad", "52:54:00:7e:00:02", &bmc_b),
    ] {
        let id = enlist_on(&sim, name, &[mac], bmc).await;
        sim.client
            .commission(&id, &CommissionOptions::default())
            .await
            .unwrap();
        ids.push(id);
    }
    for (id, test_exit, end) in [
        (&ids[0], "0", NodeStatus::READY),
        (&ids[1], "1", NodeStatus::FAILED_TESTING),
    ] {
        let key = sim_node_key(&sim, id).await;
        let out = base64_encode(b"ok\n");
        let ok = |name: &'static str| {
            vec![
                ("op", "signal"),
                ("status", "WORKING"),
                ("script_name", name),
                ("exit_status", "0"),
                ("output_b64", ""),
            ]
        };
        for name in [
            "00-maas-00-support-info",
            "40-maas-01-network-interfaces",
            "50-maas-01-commissioning",
        ] {
            let mut form = ok(name);
            let body = match name {
                "40-maas-01-network-interfaces" => base64_encode(
                    json!({"interfaces": [{"name": "eth0", "mac": if id == &ids[0] { "52:54:00:7e:00:01" } else { "52:54:00:7e:00:02" }, "boot": true}]})
                        .to_string()
                        .as_bytes(),
                ),
                "50-maas-01-commissioning" => base64_encode(
                    br#"{"cpu_count":1,"memory_mib":1024,"disks":[]}"#,
                ),
                _ => out.clone(),
            };
            form[4] = ("output_b64", &body);
            assert_eq!(signal(&sim, &key, &form).await.status(), 200);
        }
        // maas_run_remote_scripts asks for Testing, runs the tests, then OK
        // (or FAILED "N test scripts failed to run").
        assert_eq!(
            signal(&sim, &key, &[("op", "signal"), ("status", "TESTING")])
                .await
                .status(),
            200
        );
        assert_eq!(
            sim.client.machine(id).await.unwrap().status,
            NodeStatus::TESTING
        );
        let result = [
            ("op", "signal"),
            ("status", "WORKING"),
            ("script_name", "smartctl-validate"),
            ("exit_status", test_exit),
            ("output_b64", out.as_str()),
        ];
        assert_eq!(signal(&sim, &key, &result).await.status(), 200);
        let last = if test_exit == "0" {
            vec![
                ("op", "signal"),
                ("status", "OK"),
                ("error", "All scripts successfully ran"),
            ]
        } else {
            vec![
                ("op", "signal"),
                ("status", "FAILED"),
                ("error", "1 test scripts failed to run"),
            ]
        };
        assert_eq!(signal(&sim, &key, &last).await.status(), 200);
        let m = sim.client.machine(id).await.unwrap();
        assert_eq!(m.status, end);
        let tests: Vec<ScriptSet> = serde_json::from_str(
            &sim.client
                .get_raw(&format!("nodes/{id}/results/"), &[("type", "testing")])
                .await
                .unwrap(),
        )
        .unwrap();
        let r = &tests.last().unwrap().results[0];
        assert_eq!(r.name, "smartctl-validate");
        assert_eq!(
            r.status_name,
            if test_exit == "0" { "Passed" } else { "Failed" }
        );
        assert_eq!(m.testing_status_name, r.status_name);
        let events = event_lines(&sim, id).await;
        let tail: Vec<&str> = events
            .iter()
            .rev()
            .take(4)
            .rev()
            .map(String::as_str)
            .collect();
        if end == NodeStatus::READY {
            assert_eq!(
                tail,
                [
                    "Node changed status - From 'Commissioning' to 'Testing'",
                    "Script result - smartctl-validate changed status from 'Running' to 'Passed'",
                    "Ready - ",
                    "Node changed status - From 'Testing' to 'Ready'",
                ],
                "{events:#?}"
            );
        } else {
            assert_eq!(
                m.status_message.as_deref(),
                Some("1 test scripts failed to run")
            );
            assert_eq!(
                tail,
                [
                    "Node changed status - From 'Commissioning' to 'Testing'",
                    "Script result - smartctl-validate changed status from 'Running' to 'Failed'",
                    "Failed testing - ",
                    "Node changed status - From 'Testing' to 'Failed testing'",
                ],
                "{events:#?}"
            );
        }
        // A signal in Ready or Failed testing is answered and ignored.
        let again = signal(&sim, &key, &[("op", "signal"), ("status", "FAILED")]).await;
        assert_eq!(again.status(), 200);
        assert_eq!(sim.client.machine(id).await.unwrap().status, end);
    }
}

#[tokio::test]
async fn commissioning_a_machine_that_is_on_power_cycles_it() {
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    let Some(sim) = start_sim("cycle", fast_power(None)).await else {
        return;
    };
    let id = enlist_on(&sim, "cycle", &["52:54:00:c1:00:01"], &bmc).await;
    sim.client.power_on(&id).await.unwrap();
    for _ in 0..200 {
        if sim.client.machine(&id).await.unwrap().power_state == PowerState::On {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(bmc.is_on());
    let before = bmc.lan_commands().len();
    sim.client
        .commission(&id, &CommissionOptions::default())
        .await
        .unwrap();
    let mut events = Vec::new();
    for _ in 0..400 {
        events = event_lines(&sim, &id).await;
        if events.iter().any(|e| e.starts_with("Node powered on"))
            && events
                .iter()
                .filter(|e| e.starts_with("Node powered on"))
                .count()
                == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        events.iter().any(|e| e == "Power cycling - "),
        "{events:#?}"
    );
    // 2.8 PowerDriver.cycle: a query, off (it is on), then on; each change
    // followed by a query.
    let lan: Vec<String> = bmc.lan_commands()[before..]
        .iter()
        .filter(|c| {
            matches!(
                c.as_str(),
                "get_chassis_status" | "chassis_control" | "set_system_boot_options"
            )
        })
        .cloned()
        .collect();
    let first_control = lan.iter().position(|c| c == "chassis_control").unwrap();
    assert!(
        lan[..first_control]
            .iter()
            .any(|c| c == "get_chassis_status"),
        "query first: {lan:?}"
    );
    assert_eq!(
        lan.iter().filter(|c| *c == "chassis_control").count(),
        2,
        "off, then on: {lan:?}"
    );
    assert!(bmc.is_on());
}

#[tokio::test]
async fn a_power_change_is_given_up_after_the_change_timeout() {
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    bmc.set_fault(maas_e2e::bmc::fault::Fault::NoAnswer);
    // MAAS: 5 minutes (CHANGE_POWER_STATE_TIMEOUT); here 1 s.
    let mut power = fast_power(None);
    power.change_timeout = Duration::from_secs(1);
    let Some(sim) = start_sim("capped", power).await else {
        return;
    };
    let id = enlist_on(&sim, "capped", &["52:54:00:ca:00:01"], &bmc).await;
    sim.client
        .commission(&id, &CommissionOptions::default())
        .await
        .unwrap();
    sim.client
        .wait_for_status(
            &id,
            NodeStatus::FAILED_COMMISSIONING,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let events = event_lines(&sim, &id).await;
    assert!(
        events
            .iter()
            .any(|e| e == "Marking node failed - Timed out"),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e == "Failed to power on node - Timed out"),
        "{events:#?}"
    );
}

#[tokio::test]
async fn the_power_monitor_queries_only_machines_never_or_long_ago_queried() {
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    // MAAS: a 15 s tick, 5 minutes; here 50 ms and 2 s.
    let Some(sim) = start_sim_monitoring(
        "monitor",
        fast_power(None),
        Some(Duration::from_millis(50)),
        Duration::from_secs(2),
        None,
    )
    .await
    else {
        return;
    };
    let id = enlist_on(&sim, "monitor", &["52:54:00:3d:00:01"], &bmc).await;
    let queries = || {
        bmc.lan_commands()
            .iter()
            .filter(|c| *c == "get_chassis_status")
            .count()
    };
    // Never queried: the next tick queries it.
    for _ in 0..200 {
        if sim.client.machine(&id).await.unwrap().power_state == PowerState::Off {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        sim.client.machine(&id).await.unwrap().power_state,
        PowerState::Off
    );
    let first = queries();
    assert!(first >= 1);
    // Queried just now: a second of ticks (20 of them) leaves it alone.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(queries(), first, "{:?}", bmc.lan_commands());
    // Older than `stale`: queried again.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    assert!(queries() > first, "{:?}", bmc.lan_commands());
}

/// The sim's own client hears the region's changes: a waiter's nap ends
/// when a machine enlists or changes status, not at its next poll (the
/// harness's waits on the sim target look at once).
#[tokio::test]
async fn the_sims_client_wakes_its_waiters_when_a_machine_enlists_or_changes_status() {
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    let Some(sim) = start_sim("wakes", fast_power(None)).await else {
        return;
    };
    // Naps of an hour: only the change signal can end them before the guard.
    let hour = Duration::from_secs(3600);
    let guard = Duration::from_secs(60);
    let client = sim.region().client().unwrap();

    let mut napper = client.napper();
    let nap = tokio::spawn(async move { napper.nap(hour).await });
    let id = enlist_on(&sim, "wakes", &["52:54:00:0b:00:01"], &bmc).await;
    tokio::time::timeout(guard, nap)
        .await
        .expect("the enlistment ended the nap")
        .unwrap();

    let mut napper = client.napper();
    let nap = tokio::spawn(async move { napper.nap(hour).await });
    client
        .commission(&id, &CommissionOptions::default())
        .await
        .unwrap();
    tokio::time::timeout(guard, nap)
        .await
        .expect("New -> Commissioning ended the nap")
        .unwrap();
    let m = client.machine(&id).await.unwrap();
    assert_ne!(m.status, NodeStatus::NEW, "the status did change");
}
