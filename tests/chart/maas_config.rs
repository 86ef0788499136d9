//! The MAAS calls after wiring (snapshot), the chart checks' judges, and
//! every chart check fetched for real against a good deployment and its
//! broken twin.

use std::collections::BTreeMap;

use maas_e2e::targets::chart::ChartPlan;
use maas_e2e::targets::chart::maas_config::{
    ChartExpectation, check_no_server_header, check_rack_interfaces,
};
use serde_json::json;

use crate::common::{default_options, two_racks_options};

#[test]
fn configure_calls_snapshot() {
    let plan = ChartPlan::new(&two_racks_options()).unwrap();
    insta::assert_yaml_snapshot!("maas_calls_two_racks", plan.maas_calls());
    insta::assert_yaml_snapshot!("chart_expectations_two_racks", plan.expectations());
}

#[test]
fn configure_calls_follow_the_pxe_network() {
    let calls = ChartPlan::new(&default_options()).unwrap().maas_calls();
    let range = calls.iter().find(|c| c.path == "ipranges/").unwrap();
    assert!(
        range
            .params
            .contains(&("start_ip".into(), "10.40.0.100".into()))
    );
    assert!(
        range
            .params
            .contains(&("subnet".into(), "{subnet_id}".into()))
    );
    let subnets = calls.iter().find(|c| c.path == "subnets/").unwrap();
    assert!(
        subnets
            .captures
            .iter()
            .all(|(_, rule)| rule.contains("cidr is 10.40.0.0/24"))
    );
    let vlan = calls
        .iter()
        .find(|c| c.path.starts_with("fabrics/"))
        .unwrap();
    assert!(vlan.params.contains(&("dhcp_on".into(), "True".into())));
    assert!(
        vlan.params
            .contains(&("primary_rack".into(), "{rack_id}".into()))
    );
    // No gateway in the default options: no subnet update.
    assert!(
        !calls
            .iter()
            .any(|c| c.params.iter().any(|(k, _)| k == "gateway_ip"))
    );
    // The last call waits for the images to reach the rack.
    assert!(
        calls
            .last()
            .unwrap()
            .until
            .as_deref()
            .unwrap()
            .contains("synced")
    );
}

fn rack(names: &[&str]) -> serde_json::Value {
    json!({ "system_id": "abc123", "interface_set": names.iter().map(|n| json!({ "name": n, "type": "physical" })).collect::<Vec<_>>() })
}

#[test]
fn rack_interfaces_judge() {
    let inc = vec!["maas-pxe".to_string()];
    let exc = vec!["cali-e2e".to_string()];
    check_rack_interfaces(&rack(&["eth0", "maas-pxe"]), &inc, &exc).unwrap();
    let err =
        check_rack_interfaces(&rack(&["eth0", "maas-pxe", "cali-e2e"]), &inc, &exc).unwrap_err();
    assert!(
        err.contains("cali-e2e") && err.contains("nic_filter"),
        "{err}"
    );
    let err = check_rack_interfaces(&rack(&["eth0"]), &inc, &exc).unwrap_err();
    assert!(err.contains("missing [\"maas-pxe\"]"), "{err}");
    assert!(check_rack_interfaces(&json!({}), &inc, &exc).is_err());
}

#[test]
fn server_header_judge() {
    check_no_server_header([
        ("Content-Type", "text/html"),
        ("X-Frame-Options", "SAMEORIGIN"),
    ])
    .unwrap();
    let err = check_no_server_header([("server", "TwistedWeb/18.9.0")]).unwrap_err();
    assert!(
        err.contains("TwistedWeb") && err.contains("secure_headers"),
        "{err}"
    );
}

/// A sim region (a reference implementation, not MAAS) on its own local
/// Postgres whose rack reports `interfaces`; dropped with its directory.
struct Region {
    region: Option<maas_e2e::targets::sim::SimRegion>,
    pg: Option<maas_e2e::targets::sim::LocalPostgres>,
    dir: std::path::PathBuf,
    port: u16,
}

impl Region {
    async fn start(interfaces: &[&str]) -> Region {
        use maas_e2e::targets::sim::{
            LocalPostgres, LocalPostgresOptions, SimRegion, SimRegionConfig,
        };
        let dir = std::path::PathBuf::from("/var/lib/maas-e2e").join(format!(
            "test-chart-checks-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pg = LocalPostgres::start(LocalPostgresOptions::new(dir.join("pg")))
            .await
            .expect("start local postgres");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut cfg = SimRegionConfig::new(pg.connection_string(), vec![listener]);
        cfg.rack_interfaces = interfaces.iter().map(|s| s.to_string()).collect();
        let region = SimRegion::start(cfg).await.expect("start sim region");
        Region {
            region: Some(region),
            pg: Some(pg),
            dir,
            port,
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        drop(self.region.take());
        if let Some(mut pg) = self.pg.take() {
            pg.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An HTTP server on 127.0.0.1 answering everything, with `server` as
/// its Server header when given.
async fn http_server(server: Option<&'static str>) -> u16 {
    let app = axum::Router::new().fallback(move || async move {
        let mut resp = axum::response::IntoResponse::into_response("{}");
        if let Some(s) = server {
            resp.headers_mut()
                .insert("server", axum::http::HeaderValue::from_static(s));
        }
        resp
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// Every chart check, fetched for real (`checks::evaluate`), passes on a
/// deployment that does what the chart promises and fails, saying why, on
/// its twin that breaks exactly that promise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_chart_check_passes_on_a_good_deployment_and_fails_on_its_broken_twin() {
    use maas_e2e::targets::chart::checks::{CheckTarget, evaluate};
    if !maas_e2e::testing::require(
        "Postgres server binaries",
        maas_e2e::targets::sim::postgres::find_bin_dir().is_ok(),
        "apt-get install postgresql (ci/setup-host.sh)",
    ) {
        return;
    }
    maas_e2e::maas::install_crypto_provider();
    let good = Region::start(&["eth0", "maas-pxe"]).await;
    let bad = Region::start(&["eth0", "maas-pxe", "cali-e2e"]).await;
    let quiet = http_server(None).await;
    let twisted = http_server(Some("TwistedWeb/18.9.0")).await;
    let target = |r: &Region, api_key: String, header_port: Option<u16>| {
        let region = r.region.as_ref().unwrap();
        let k = region.admin_key();
        let key = format!("{}:{}:{}", k.consumer_key, k.token_key, k.token_secret);
        let forwarded: BTreeMap<u16, u16> = match header_port {
            Some(p) => [(5240, p), (5249, p)].into(),
            None => [(5240, r.port), (5249, quiet)].into(),
        };
        (
            region.client().unwrap(),
            format!("http://127.0.0.1:{}/MAAS", r.port),
            if api_key.is_empty() { key } else { api_key },
            region.rack_system_id().to_string(),
            forwarded,
        )
    };
    let expectations = ChartPlan::new(&default_options()).unwrap().expectations();
    assert_eq!(expectations.len(), 4, "{expectations:?}");
    let (client, url, key, rack, fwd) = target(&good, String::new(), None);
    let good_t = CheckTarget {
        client: &client,
        maas_url: &url,
        api_key: &key,
        rack_id: Some(&rack),
        forwarded: &fwd,
    };
    let wrong_key = {
        let (_, _, key, _, _) = target(&good, String::new(), None);
        let (head, _) = key.rsplit_once(':').unwrap();
        format!("{head}:not-the-secret")
    };
    let (bclient, burl, bkey, brack, bfwd) = target(&bad, wrong_key, Some(twisted));
    let bad_t = CheckTarget {
        client: &bclient,
        maas_url: &burl,
        api_key: &bkey,
        rack_id: Some(&brack),
        forwarded: &bfwd,
    };
    for e in &expectations {
        let name = maas_e2e::targets::chart::checks::describe(e);
        evaluate(e, &good_t)
            .await
            .unwrap_or_else(|why| panic!("{name}: failed on the good deployment: {why}"));
        let why = evaluate(e, &bad_t)
            .await
            .expect_err(&format!("{name}: passed on its broken twin"));
        let says = match e {
            ChartExpectation::RackInterfaces { .. } => "cali-e2e",
            ChartExpectation::NoServerHeader { .. } => "Server: TwistedWeb/18.9.0",
            ChartExpectation::ApiKeyAuthenticates { .. } => "maas-api-key",
        };
        assert!(why.contains(says), "{name}: {why}");
    }
}

/// A configure wait that never holds (the sim rack's images are always
/// synced; the wait asks for "syncing") ends in a timeout that names the call, the
/// condition, the time allowed and the last answer. Library level: the
/// binary has no knob to shorten the 45-minute import wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configure_wait_that_never_holds_times_out_saying_what_it_saw() {
    use maas_e2e::targets::chart::configure::{ConfigureContext, ConfigureError, perform};
    use maas_e2e::targets::chart::maas_config::{ApiCall, Method};
    if !maas_e2e::testing::require(
        "Postgres server binaries",
        maas_e2e::targets::sim::postgres::find_bin_dir().is_ok(),
        "apt-get install postgresql (ci/setup-host.sh)",
    ) {
        return;
    }
    maas_e2e::maas::install_crypto_provider();
    let r = Region::start(&["eth0"]).await;
    let client = r.region.as_ref().unwrap().client().unwrap();
    let rack = r.region.as_ref().unwrap().rack_system_id().to_string();
    let wait = ApiCall {
        method: Method::Get,
        path: format!("rackcontrollers/{rack}/"),
        params: vec![("op".into(), "list_boot_images".into())],
        captures: vec![],
        until: Some("status is \"syncing\"".into()),
        why: "a wait the sim never satisfies".into(),
    };
    let ctx = ConfigureContext {
        node_bridge: "maas-pxe".into(),
        pxe_cidr: "10.40.0.0/24".into(),
        poll: std::time::Duration::from_millis(100),
        timeout: std::time::Duration::from_secs(1),
    };
    let err = perform(&client, std::slice::from_ref(&wait), &ctx)
        .await
        .unwrap_err();
    assert!(matches!(err, ConfigureError::Timeout { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("GET rackcontrollers/{rack}/"))
            && text.contains("`status is \"syncing\"` did not hold within 1s")
            && text.contains("last answer: {")
            && text.contains("synced"),
        "{text}"
    );
    // Its twin holds at once.
    let mut holds = wait;
    holds.until = Some("status is \"synced\"".into());
    perform(&client, &[holds], &ctx).await.unwrap();
}
