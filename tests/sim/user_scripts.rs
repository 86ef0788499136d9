//! Scripts a user uploads (POST scripts/, 2.8 api/scripts.py): the sim
//! checks them as 2.8's form does, puts every commissioning one into the
//! next commissioning set, names them in the node's preseed and serves
//! each to the node's key; a failed one ends in Failed commissioning;
//! scripts/NAME reads and deletes one.

use std::time::Duration;

use maas_e2e::maas::*;
use maas_e2e::targets::sim::b64::encode as base64_encode;
use serde_json::json;

use crate::common::{TestBmc, fast_power, have_freeipmi, start_sim};

const SCRIPT: &str = "#!/bin/sh\necho 'no such part' >&2\nexit 1\n";

fn preseed_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("{key}='"))
            .and_then(|v| v.strip_suffix('\''))
            .map(str::to_string)
    })
}

#[tokio::test]
async fn an_uploaded_commissioning_script_is_served_to_the_node_and_its_failure_fails_commissioning()
 {
    if !have_freeipmi() {
        return;
    }
    let bmc = TestBmc::start().await;
    let Some(sim) = start_sim("userscripts", fast_power(None)).await else {
        return;
    };
    let base = sim.region().local_maas_url();

    // 2.8's form rules answer 400 with the field.
    for (name, script) in [
        ("none", SCRIPT),
        ("42", SCRIPT),
        ("two words", SCRIPT),
        ("ok", ""),
    ] {
        let e = sim
            .client
            .create_script(name, "commissioning", script)
            .await
            .unwrap_err();
        assert_eq!(e.status(), Some(400), "{name:?}: {e}");
    }
    let s = sim
        .client
        .create_script("99-fails", "commissioning", SCRIPT)
        .await
        .unwrap();
    assert_eq!(
        (s["name"].as_str(), s["type"].as_i64()),
        (Some("99-fails"), Some(0))
    );
    let again = sim
        .client
        .create_script("99-fails", "commissioning", SCRIPT)
        .await;
    assert!(
        again.unwrap_err().to_string().contains("already exists"),
        "a taken name is refused"
    );
    let anon = MaasClient::new(&base, None).unwrap();
    assert_eq!(
        anon.create_script("x", "commissioning", SCRIPT)
            .await
            .unwrap_err()
            .status(),
        Some(401)
    );

    let m = anon
        .enlist(&EnlistRequest {
            hostname: "scripted".into(),
            architecture: "amd64".into(),
            subarchitecture: Some("generic".into()),
            power_type: "ipmi".into(),
            power_parameters: bmc.power_parameters(),
            mac_addresses: vec!["52:54:00:5c:00:01".into()],
        })
        .await
        .unwrap();
    let id = m.system_id;
    let preseed_url = format!("{base}/metadata/latest/by-id/{id}/?op=get_preseed");
    let preseed = reqwest::get(&preseed_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        preseed_value(&preseed, "MAAS_MODE").as_deref(),
        Some("poweroff")
    );
    assert_eq!(preseed_value(&preseed, "COMMISSIONING_USER_SCRIPTS"), None);
    let key: ApiKey = preseed_value(&preseed, "OAUTH_KEY")
        .unwrap()
        .parse()
        .unwrap();

    sim.client
        .commission(&id, &CommissionOptions::default())
        .await
        .unwrap();
    let preseed = reqwest::get(&preseed_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        preseed_value(&preseed, "MAAS_MODE").as_deref(),
        Some("commission")
    );
    assert_eq!(
        preseed_value(&preseed, "COMMISSIONING_USER_SCRIPTS").as_deref(),
        Some("99-fails")
    );
    let sets = sim.client.commissioning_results(&id).await.unwrap();
    assert!(
        sets[0].results.iter().any(|r| r.name == "99-fails"),
        "{:?}",
        sets[0].results
    );

    // The node fetches it with its key; nobody else does.
    let http = reqwest::Client::new();
    let url = |n: &str| format!("{base}/metadata/2012-03-01/maas-scripts/{n}");
    let got = http
        .get(url("99-fails"))
        .header("Authorization", key.authorization_header())
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.text().await.unwrap(), SCRIPT);
    let unknown = http
        .get(url("00-nope"))
        .header("Authorization", key.authorization_header())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        http.get(url("99-fails")).send().await.unwrap().status(),
        401
    );

    // Its failed result, then the guest's FAILED: Failed commissioning.
    let signal = |form: Vec<(&'static str, String)>| {
        http.post(format!("{base}/metadata/2012-03-01/?op=signal"))
            .header("Authorization", key.authorization_header())
            .form(&form)
            .send()
    };
    let r = signal(vec![
        ("status", "WORKING".into()),
        ("script_name", "99-fails".into()),
        ("exit_status", "1".into()),
        ("output_b64", base64_encode(b"no such part\n")),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = signal(vec![
        ("status", "FAILED".into()),
        ("error", "1 commissioning scripts failed to run".into()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let e = sim
        .client
        .wait_for_status(&id, NodeStatus::READY, Duration::from_secs(20))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("1 commissioning scripts failed to run"),
        "{e}"
    );
    let sets = sim.client.commissioning_results(&id).await.unwrap();
    let r = sets[0]
        .results
        .iter()
        .find(|r| r.name == "99-fails")
        .unwrap();
    assert_eq!(r.status_name, "Failed");
    let listed = sim
        .client
        .get_raw("scripts/", &[("type", "commissioning")])
        .await
        .unwrap();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed, json!([s]));

    // One script at scripts/NAME (no trailing slash, as 2.8), then gone.
    let one = sim.client.get_raw("scripts/99-fails", &[]).await.unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&one).unwrap(), s);
    sim.client.delete_script("99-fails").await.unwrap();
    assert_eq!(
        sim.client
            .delete_script("99-fails")
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
}
