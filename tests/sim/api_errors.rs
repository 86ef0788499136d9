//! The sim region's API error paths on 127.0.0.1 with a real Postgres and
//! a real HTTP client: an unknown op, commissioning a machine without a
//! power type, aborting with nothing to abort (and an unknown machine), and
//! a query whose database has gone away. Each answers with MAAS's status
//! and text, changes nothing, and leaves the region answering.

use maas_e2e::maas::{CommissionOptions, EnlistRequest, EventQuery, MaasError, NodeStatus};

use crate::common::{fast_power, start_sim};

fn status(e: &MaasError) -> Option<u16> {
    e.status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_error_paths_answer_with_maas_status_and_text_and_change_nothing() {
    let Some(mut sim) = start_sim("api-errors", fast_power(None)).await else {
        return;
    };
    let c = sim.client.clone();

    // An op no handler has: 400 with MAAS's "Unrecognised signature".
    let e = c
        .get_raw("machines/", &[("op", "frobnicate")])
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(400), "{e}");
    assert!(
        e.to_string()
            .contains("Unrecognised signature: method=GET op=frobnicate"),
        "{e}"
    );
    let e = c
        .send_raw(
            reqwest::Method::POST,
            "machines/",
            &[("op", "frobnicate")],
            vec![],
        )
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(400), "{e}");
    assert!(e.to_string().contains("method=POST op=frobnicate"), "{e}");

    // A machine enlisted without a power type cannot be commissioned.
    let m = c
        .enlist(&EnlistRequest {
            hostname: "no-power".into(),
            architecture: "amd64".into(),
            subarchitecture: Some("generic".into()),
            power_type: String::new(),
            power_parameters: serde_json::json!({}),
            mac_addresses: vec!["52:54:00:e2:a0:01".into()],
        })
        .await
        .unwrap();
    let e = c
        .commission(&m.system_id, &CommissionOptions::default())
        .await
        .unwrap_err();
    assert_eq!(status(&e), Some(503), "{e}");
    assert!(e.to_string().contains("no power type is set"), "{e}");
    let after = c.machine(&m.system_id).await.unwrap();
    assert_eq!(after.status, NodeStatus::NEW, "still New: {after:?}");

    // Abort with no operation running: 409 naming the status; unknown machine: 404.
    let e = c.abort(&m.system_id).await.unwrap_err();
    assert_eq!(status(&e), Some(409), "{e}");
    assert!(e.to_string().contains("has no action to abort"), "{e}");
    assert_eq!(
        c.machine(&m.system_id).await.unwrap().status,
        NodeStatus::NEW
    );
    let e = c.abort("nosuch").await.unwrap_err();
    assert_eq!(status(&e), Some(404), "{e}");

    // The database goes away: a query is a 500 that says so, not a hang or
    // a crash, and the region still answers what needs no database.
    c.events(&EventQuery::default())
        .await
        .expect("events before");
    sim.pg.as_mut().unwrap().stop();
    let e = c.events(&EventQuery::default()).await.unwrap_err();
    assert_eq!(status(&e), Some(500), "{e}");
    // Anonymous version/ needs no database: the region is still up.
    let version = reqwest::get(c.api_url("version/")).await.unwrap();
    assert_eq!(version.status(), 200, "the region still answers");
}
