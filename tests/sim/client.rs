//! The MAAS client against MAAS 2.8 JSON fixtures (fixtures/maas/, documented
//! shapes) served by a local axum server that checks the OAuth header.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maas_e2e::maas::*;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/maas")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_fixture_parses_into_the_typed_models() {
    let m: Machine = serde_json::from_str(&fixture("machine_new.json")).unwrap();
    assert_eq!(
        (m.status, m.status_name.as_str(), m.power_type.as_str()),
        (NodeStatus::NEW, "New", "ipmi")
    );
    assert_eq!(m.boot_interface.unwrap().mac_address, "52:54:00:4e:01:01");
    let m: Machine = serde_json::from_str(&fixture("machine_commissioning.json")).unwrap();
    assert_eq!(m.status, NodeStatus::COMMISSIONING);
    let m: Machine = serde_json::from_str(&fixture("machine_ready.json")).unwrap();
    assert_eq!(
        (m.status, m.cpu_count, m.memory, m.interface_set.len()),
        (NodeStatus::READY, 2, 2048, 2)
    );
    assert_eq!(m.physicalblockdevice_set[0].size, 10737418240);
    assert_eq!(m.interface_set[0].vlan.as_ref().unwrap().fabric, "fabric-0");
    let ms: Vec<Machine> = serde_json::from_str(&fixture("machines.json")).unwrap();
    assert_eq!(ms.len(), 2);
    let v: Version = serde_json::from_str(&fixture("version.json")).unwrap();
    assert!(v.version.starts_with("2.8"));
    let e: EventsPage = serde_json::from_str(&fixture("events_query.json")).unwrap();
    assert_eq!(e.events[2].event_type, "Node changed status");
    assert_eq!(e.events[2].description, "From 'New' to 'Commissioning'");
    let r: Vec<ScriptSet> = serde_json::from_str(&fixture("results_commissioning.json")).unwrap();
    assert_eq!(r[0].results.len(), 3);
    assert_eq!(r[0].results[1].name, "40-maas-01-network-interfaces");
    let racks: Vec<RackController> =
        serde_json::from_str(&fixture("rackcontrollers.json")).unwrap();
    assert_eq!(racks[0].node_type_name, "Rack controller");
    let f: Vec<Fabric> = serde_json::from_str(&fixture("fabrics.json")).unwrap();
    assert_eq!(f[0].vlans[0].vid, 0);
    let s: Vec<Subnet> = serde_json::from_str(&fixture("subnets.json")).unwrap();
    assert_eq!(s[0].cidr, "10.9.0.0/24");
    let ranges: Vec<IpRange> = serde_json::from_str(&fixture("ipranges.json")).unwrap();
    assert_eq!(ranges[0].range_type, "dynamic");
    let b: Vec<BootResource> = serde_json::from_str(&fixture("boot_resources.json")).unwrap();
    assert_eq!(b[0].resource_type, "Synced");
    let importing: bool = serde_json::from_str(&fixture("is_importing.json")).unwrap();
    assert!(!importing);
    let p: PowerStateReply = serde_json::from_str(&fixture("query_power_state.json")).unwrap();
    assert_eq!(p.state, PowerState::Off);
}

/// What the fixture server answers next for one path (a script), and what it saw.
#[derive(Default)]
struct Fake {
    key: Option<ApiKey>,
    /// path+query -> queued answers (the last one repeats).
    answers: Vec<(String, VecDeque<(u16, String)>)>,
    hits: Vec<String>,
}

type Shared = Arc<Mutex<Fake>>;

async fn serve_fake(State(fake): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let mut f = fake.lock().unwrap();
    let target = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    f.hits.push(target.clone());
    let anonymous = target.contains("version/") || target.contains("op=is_registered");
    if !anonymous {
        let ok = headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            .and_then(|h| OAuthParams::parse(h).ok())
            .is_some_and(|p| f.key.as_ref().is_some_and(|k| p.verify(k).is_ok()));
        if !ok {
            return (StatusCode::UNAUTHORIZED, "Authorization Error").into_response();
        }
    }
    let key = target.split("?").next().unwrap().to_string();
    let found = f
        .answers
        .iter_mut()
        .find(|(prefix, _)| target.starts_with(prefix.as_str()) || key == *prefix);
    match found {
        Some((_, queue)) => {
            let (status, body) = if queue.len() > 1 {
                queue.pop_front().unwrap()
            } else {
                queue.front().cloned().unwrap()
            };
            (
                StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body,
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no fixture").into_response(),
    }
}

async fn start_fake(fake: Fake) -> (String, Shared) {
    maas_e2e::maas::install_crypto_provider();
    let shared = Arc::new(Mutex::new(fake));
    let app = Router::new()
        .fallback(serve_fake)
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/MAAS"), shared)
}

fn key() -> ApiKey {
    "fixtureck:fixturetk:fixturesecret".parse().unwrap()
}

fn answers(list: &[(&str, &[(u16, &str)])]) -> Vec<(String, VecDeque<(u16, String)>)> {
    list.iter()
        .map(|(p, a)| {
            (
                p.to_string(),
                a.iter().map(|(s, b)| (*s, b.to_string())).collect(),
            )
        })
        .collect()
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
    }
}

#[tokio::test]
async fn client_reads_every_fixture_endpoint_with_oauth() {
    let files = [
        ("/MAAS/api/2.0/version/", "version.json"),
        (
            "/MAAS/api/2.0/machines/?op=is_registered",
            "is_importing.json",
        ),
        (
            "/MAAS/api/2.0/machines/4y3h7r/?op=power_parameters",
            "power_parameters.json",
        ),
        (
            "/MAAS/api/2.0/machines/4y3h7r/?op=query_power_state",
            "query_power_state.json",
        ),
        ("/MAAS/api/2.0/machines/4y3h7r/", "machine_new.json"),
        ("/MAAS/api/2.0/machines/", "machines.json"),
        ("/MAAS/api/2.0/events/", "events_query.json"),
        (
            "/MAAS/api/2.0/nodes/8kbxpq/results/",
            "results_commissioning.json",
        ),
        ("/MAAS/api/2.0/rackcontrollers/", "rackcontrollers.json"),
        ("/MAAS/api/2.0/fabrics/", "fabrics.json"),
        ("/MAAS/api/2.0/subnets/", "subnets.json"),
        ("/MAAS/api/2.0/ipranges/", "ipranges.json"),
        (
            "/MAAS/api/2.0/boot-resources/?op=is_importing",
            "is_importing.json",
        ),
        (
            "/MAAS/api/2.0/maas/?op=get_config",
            "get_config_maas_name.json",
        ),
    ];
    let fake = Fake {
        key: Some(key()),
        answers: files
            .iter()
            .map(|(p, f)| (p.to_string(), VecDeque::from([(200, fixture(f))])))
            .collect(),
        hits: Vec::new(),
    };
    let (url, shared) = start_fake(fake).await;
    let c = MaasClient::new(&url, Some(key()))
        .unwrap()
        .with_retry(fast());
    assert_eq!(c.version().await.unwrap().version, "2.8.7");
    assert!(!c.is_registered("52:54:00:4e:01:01").await.unwrap());
    assert_eq!(c.machines().await.unwrap().len(), 2);
    assert_eq!(c.machine("4y3h7r").await.unwrap().hostname, "famous-cat");
    assert_eq!(
        c.power_parameters("4y3h7r").await.unwrap()["power_user"],
        "maas"
    );
    assert_eq!(
        c.query_power_state("4y3h7r").await.unwrap(),
        PowerState::Off
    );
    let ev = c
        .events(&EventQuery {
            system_id: Some("4y3h7r".into()),
            level: Some("DEBUG".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ev.count, 6);
    assert_eq!(
        c.commissioning_results("8kbxpq").await.unwrap()[0].status_name,
        "Passed"
    );
    assert_eq!(c.rack_controllers().await.unwrap()[0].system_id, "7xtf67");
    assert_eq!(c.fabrics().await.unwrap()[0].name, "fabric-0");
    assert_eq!(
        c.subnets().await.unwrap()[0].vlan.primary_rack.as_deref(),
        Some("7xtf67")
    );
    assert_eq!(c.ip_ranges().await.unwrap()[0].start_ip, "10.9.0.100");
    assert!(!c.boot_resources_is_importing().await.unwrap());
    assert_eq!(c.get_config("maas_name").await.unwrap(), "maas-region");
    let hits = shared.lock().unwrap().hits.clone();
    assert!(
        hits.iter()
            .any(|h| h.contains("events/?op=query&id=4y3h7r&level=DEBUG")),
        "{hits:?}"
    );
    assert!(
        hits.iter()
            .any(|h| h.contains("results/?type=commissioning&include_output=1")),
        "{hits:?}"
    );

    // The same calls with a wrong secret get 401 and are not retried.
    let mut wrong = key();
    wrong.token_secret = "not-it".into();
    let before = shared.lock().unwrap().hits.len();
    let bad = MaasClient::new(&url, Some(wrong))
        .unwrap()
        .with_retry(fast());
    let e = bad.machines().await.unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    assert_eq!(
        shared.lock().unwrap().hits.len(),
        before + 1,
        "a 4xx must not be retried"
    );
}

#[tokio::test]
async fn server_errors_are_retried_client_errors_are_not() {
    let fake = Fake {
        key: Some(key()),
        answers: answers(&[
            (
                "/MAAS/api/2.0/machines/",
                &[(503, "busy"), (502, "gateway"), (200, "[]")],
            ),
            ("/MAAS/api/2.0/fabrics/", &[(400, "{\"name\": [\"bad\"]}")]),
            ("/MAAS/api/2.0/subnets/", &[(500, "boom")]),
        ]),
        hits: Vec::new(),
    };
    let (url, shared) = start_fake(fake).await;
    let c = MaasClient::new(&url, Some(key()))
        .unwrap()
        .with_retry(fast());
    assert!(c.machines().await.unwrap().is_empty());
    let count = |p: &str| {
        shared
            .lock()
            .unwrap()
            .hits
            .iter()
            .filter(|h| h.starts_with(p))
            .count()
    };
    assert_eq!(count("/MAAS/api/2.0/machines/"), 3);

    let e = c.fabrics().await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert_eq!(count("/MAAS/api/2.0/fabrics/"), 1);

    let e = c.subnets().await.unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(count("/MAAS/api/2.0/subnets/"), 4, "attempts in total: {e}");
    assert!(e.to_string().contains("after 4 attempt(s)"), "{e}");
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported() {
    // A port nothing listens on: bind, note, release.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = MaasClient::new(&format!("http://127.0.0.1:{port}/MAAS"), None)
        .unwrap()
        .with_retry(fast());
    let e = c.version().await.unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, MaasError::Connect { attempts: 4, .. }),
        "{text}"
    );
    assert!(text.contains("is MAAS running"), "{text}");
}

#[tokio::test]
async fn waiter_records_transitions_and_events() {
    let machine = |status: i32| {
        let mut m: serde_json::Value = serde_json::from_str(&fixture("machine_new.json")).unwrap();
        m["status"] = status.into();
        m["status_name"] = NodeStatus(status).name().into();
        m.to_string()
    };
    let (new, comm, ready) = (machine(0), machine(1), machine(4));
    let fake = Fake {
        key: Some(key()),
        answers: answers(&[
            (
                "/MAAS/api/2.0/events/",
                &[(200, &fixture("events_query.json"))],
            ),
            (
                "/MAAS/api/2.0/machines/4y3h7r/",
                &[
                    (200, &new),
                    (200, &comm),
                    (503, "flaky"),
                    (200, &comm),
                    (200, &ready),
                ],
            ),
        ]),
        hits: Vec::new(),
    };
    let (url, _) = start_fake(fake).await;
    let c = MaasClient::new(&url, Some(key()))
        .unwrap()
        .with_retry(RetryPolicy {
            attempts: 1,
            ..fast()
        })
        .with_poll_interval(Duration::from_millis(10));
    let t = c
        .wait_for_status("4y3h7r", NodeStatus::READY, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        t.statuses(),
        vec![
            NodeStatus::NEW,
            NodeStatus::COMMISSIONING,
            NodeStatus::READY
        ]
    );
    let events = t.events();
    assert_eq!(
        events.first().map(String::as_str),
        Some("PXE Request"),
        "oldest first: {events:?}"
    );
    assert!(
        events.contains(&"Node changed status: From 'New' to 'Commissioning'".to_string()),
        "{events:?}"
    );
    assert_eq!(
        events.len(),
        6,
        "each event once although polled repeatedly: {events:?}"
    );
}

#[tokio::test]
async fn waiter_timeout_says_what_was_last_seen() {
    let fake = Fake {
        key: Some(key()),
        answers: answers(&[
            (
                "/MAAS/api/2.0/events/",
                &[(200, &fixture("events_query.json"))],
            ),
            (
                "/MAAS/api/2.0/machines/4y3h7r/",
                &[(200, &fixture("machine_commissioning.json"))],
            ),
        ]),
        hits: Vec::new(),
    };
    let (url, _) = start_fake(fake).await;
    let c = MaasClient::new(&url, Some(key()))
        .unwrap()
        .with_poll_interval(Duration::from_millis(20));
    let e = c
        .wait_for_status("4y3h7r", NodeStatus::READY, Duration::from_millis(300))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, WaitError::Timeout { .. }), "{text}");
    assert!(text.contains("did not reach Ready (4)"), "{text}");
    assert!(
        text.contains("status Commissioning (1) (power on)"),
        "{text}"
    );
    assert!(text.contains("last event \"Node powered on\""), "{text}");
}
