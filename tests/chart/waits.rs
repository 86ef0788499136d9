//! The deployment-flow waits against a MOCK Kubernetes API server
//! (tower-test): no API server can run here. The mock answers GETs by
//! path from a script of responses; the waits' logic is what is tested.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use maas_e2e::targets::chart::waits::{
    WaitError, WaitSpec, WaitTarget, deployment_waits, install_crypto_provider, wait_all, wait_for,
};
use serde_json::{Value, json};

use crate::common::default_options;

/// Path -> answers in order; the last answer repeats.
type Script = HashMap<String, Vec<(StatusCode, Value)>>;

/// A mock API server: answers each request from the script and counts
/// the requests per path.
fn mock_client(script: Script) -> (Client, Arc<Mutex<HashMap<String, usize>>>) {
    install_crypto_provider();
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let seen_task = seen.clone();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let path = req.uri().path().to_string();
            let n = {
                let mut s = seen_task.lock().unwrap();
                let e = s.entry(path.clone()).or_insert(0);
                *e += 1;
                *e - 1
            };
            let (status, body) = match script.get(&path) {
                Some(answers) => answers[n.min(answers.len() - 1)].clone(),
                None => (StatusCode::NOT_FOUND, not_found(&path)),
            };
            let resp = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap();
            send.send_response(resp);
        }
    });
    (Client::new(svc, "maas"), seen)
}

fn not_found(path: &str) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "message": format!("{path} not found"), "reason": "NotFound", "code": 404 })
}

fn job(name: &str, conditions: Value, active: i32) -> Value {
    json!({ "apiVersion": "batch/v1", "kind": "Job", "metadata": { "name": name, "namespace": "maas" },
            "status": { "conditions": conditions, "active": active } })
}

fn complete(name: &str) -> Value {
    job(name, json!([{ "type": "Complete", "status": "True" }]), 0)
}

fn sts(name: &str, replicas: i32, ready: i32) -> Value {
    json!({ "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": { "name": name, "namespace": "maas" },
            "spec": { "replicas": replicas, "selector": {}, "serviceName": name, "template": {} },
            "status": { "replicas": replicas, "readyReplicas": ready } })
}

fn pod(name: &str, ready: bool) -> Value {
    let cond = if ready {
        json!({ "type": "Ready", "status": "True" })
    } else {
        json!({ "type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status: [maas-rack]" })
    };
    json!({ "apiVersion": "v1", "kind": "Pod", "metadata": { "name": name, "namespace": "maas" },
            "status": { "phase": "Running", "conditions": [cond] } })
}

fn secret(data: Value) -> Value {
    json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "maas-api-key", "namespace": "maas" }, "data": data })
}

const JOBS: &str = "/apis/batch/v1/namespaces/maas/jobs";
const STS: &str = "/apis/apps/v1/namespaces/maas/statefulsets";
const PODS: &str = "/api/v1/namespaces/maas/pods";
const SECRETS: &str = "/api/v1/namespaces/maas/secrets";

const POLL: Duration = Duration::from_secs(5);

#[tokio::test(start_paused = true)]
async fn the_whole_flow_succeeds_as_objects_appear() {
    let mut s = Script::new();
    // db-init is first missing, then running, then complete.
    s.insert(
        format!("{JOBS}/maas-db-init"),
        vec![
            (StatusCode::NOT_FOUND, not_found("maas-db-init")),
            (StatusCode::OK, job("maas-db-init", json!([]), 1)),
            (StatusCode::OK, complete("maas-db-init")),
        ],
    );
    s.insert(
        format!("{JOBS}/maas-db-sync"),
        vec![(StatusCode::OK, complete("maas-db-sync"))],
    );
    s.insert(
        format!("{STS}/maas-region"),
        vec![
            (StatusCode::OK, sts("maas-region", 1, 0)),
            (StatusCode::OK, sts("maas-region", 1, 1)),
        ],
    );
    s.insert(
        format!("{SECRETS}/maas-api-key"),
        vec![
            (StatusCode::NOT_FOUND, not_found("maas-api-key")),
            (StatusCode::OK, secret(json!({ "token": "YTpiOmM=" }))),
        ],
    );
    s.insert(
        format!("{PODS}/maas-rack-0"),
        vec![
            (StatusCode::OK, pod("maas-rack-0", false)),
            (StatusCode::OK, pod("maas-rack-0", true)),
        ],
    );
    s.insert(
        format!("{JOBS}/maas-import-resources"),
        vec![(StatusCode::OK, complete("maas-import-resources"))],
    );
    let (client, seen) = mock_client(s);

    let states = wait_all(&client, "maas", &deployment_waits(&default_options()), POLL)
        .await
        .unwrap();
    assert_eq!(states.len(), 6);
    assert_eq!(states[0], "Complete=True");
    assert_eq!(states[2], "ready 1/1");
    assert!(states[3].starts_with("key token present"), "{}", states[3]);
    assert!(
        !states[3].contains("YTpiOmM"),
        "the secret value never shows"
    );
    assert_eq!(states[4], "pod maas-rack-0 Ready=True");
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[&format!("{JOBS}/maas-db-init")],
        3,
        "polled until complete"
    );
    assert_eq!(seen[&format!("{PODS}/maas-rack-0")], 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_fails_fast_naming_it_and_its_condition() {
    let mut s = Script::new();
    s.insert(
        format!("{JOBS}/maas-db-init"),
        vec![(StatusCode::OK, complete("maas-db-init"))],
    );
    s.insert(
        format!("{JOBS}/maas-db-sync"),
        vec![
            (StatusCode::OK, job("maas-db-sync", json!([]), 1)),
            (
                StatusCode::OK,
                job(
                    "maas-db-sync",
                    json!([{ "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                                        "message": "Job has reached the specified backoff limit" }]),
                    0,
                ),
            ),
        ],
    );
    let (client, seen) = mock_client(s);
    let err = wait_all(&client, "maas", &deployment_waits(&default_options()), POLL)
        .await
        .unwrap_err();
    match &err {
        WaitError::Failed {
            object,
            condition,
            reason,
            ..
        } => {
            assert_eq!(object, "job/maas-db-sync");
            assert_eq!(condition, "Failed=True");
            assert_eq!(reason, "BackoffLimitExceeded");
        }
        other => panic!("expected a failed job, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("job/maas-db-sync") && text.contains("backoff limit"),
        "{text}"
    );
    // Fail fast: nothing after db-sync was asked for.
    assert!(
        !seen
            .lock()
            .unwrap()
            .contains_key(&format!("{STS}/maas-region"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_names_the_stuck_object_and_its_last_condition() {
    let mut s = Script::new();
    s.insert(
        format!("{PODS}/maas-rack-0"),
        vec![(StatusCode::OK, pod("maas-rack-0", false))],
    );
    let (client, seen) = mock_client(s);
    let spec = WaitSpec {
        target: WaitTarget::PodsReady {
            statefulset: "maas-rack".into(),
            replicas: 1,
        },
        timeout: Duration::from_secs(600),
        why: "every rack registered (/tmp/maas-rack.done)",
    };
    let err = wait_for(&client, "maas", &spec, POLL).await.unwrap_err();
    let WaitError::Timeout {
        object,
        last,
        timeout,
        ..
    } = &err
    else {
        panic!("expected a timeout, got {err}")
    };
    assert_eq!(object, "pods of statefulset/maas-rack");
    assert_eq!(*timeout, Duration::from_secs(600));
    assert!(
        last.contains("maas-rack-0")
            && last.contains("Ready=False")
            && last.contains("ContainersNotReady"),
        "{last}"
    );
    assert!(err.to_string().contains("10m"), "{err}");
    // It kept polling for the whole deadline (paused clock: 600 s / 5 s + the first read).
    assert_eq!(seen.lock().unwrap()[&format!("{PODS}/maas-rack-0")], 121);
}

#[tokio::test(start_paused = true)]
async fn a_missing_secret_times_out_saying_not_found() {
    let (client, _) = mock_client(Script::new());
    let spec = WaitSpec {
        target: WaitTarget::SecretKey {
            name: "maas-api-key".into(),
            key: "token".into(),
        },
        timeout: Duration::from_secs(60),
        why: "export-api-key wrote the admin's API key",
    };
    let err = wait_for(&client, "maas", &spec, POLL).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("secret/maas-api-key key token"), "{text}");
    assert!(text.contains("last seen: not found"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_secret_without_the_token_key_is_reported_with_its_keys() {
    let mut s = Script::new();
    s.insert(
        format!("{SECRETS}/maas-api-key"),
        vec![(StatusCode::OK, secret(json!({ "other": "eA==" })))],
    );
    let (client, _) = mock_client(s);
    let spec = WaitSpec {
        target: WaitTarget::SecretKey {
            name: "maas-api-key".into(),
            key: "token".into(),
        },
        timeout: Duration::from_secs(30),
        why: "export-api-key wrote the admin's API key",
    };
    let err = wait_for(&client, "maas", &spec, POLL)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("without key token") && err.contains("keys: [other]"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn api_errors_are_retried_and_reported() {
    let mut s = Script::new();
    s.insert(format!("{STS}/maas-region"), vec![(
        StatusCode::FORBIDDEN,
        json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "statefulsets is forbidden", "reason": "Forbidden", "code": 403 }),
    )]);
    let (client, _) = mock_client(s);
    let spec = WaitSpec {
        target: WaitTarget::StatefulSetReady {
            name: "maas-region".into(),
        },
        timeout: Duration::from_secs(20),
        why: "the region answers on 5240",
    };
    let err = wait_for(&client, "maas", &spec, POLL)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("statefulset/maas-region") && err.contains("forbidden"),
        "{err}"
    );
}
