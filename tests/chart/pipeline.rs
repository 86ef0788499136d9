//! `maas-e2e run --target chart` end to end where kind and helm cannot
//! exist, with every stand-in NAMED AS A MOCK:
//!
//! - MOCK `kind`, `helm`, `kubectl` executables first on PATH: each records
//!   its argv to a file outside the run directory and acts minimally (the
//!   mock kind starts a node container from the locally built busybox
//!   image and writes a kubeconfig; the mock kubectl's port-forwards print
//!   kubectl's first line for a port this test chose, then sleep). The mock
//!   helm is backed by the REAL Helm engine (ci/bin/helm): `template` and
//!   `dependency` go to it, and `upgrade --install` renders its chart,
//!   --values and --set-string through it (installing nothing), so a bad
//!   override fails the run.
//! - MOCK images: the MAAS images and kubernetes-entrypoint the preflight
//!   requires locally are tags of the busybox node image under a
//!   test-only repository (`me2e-mock-ID/...`), removed after the test.
//! - a MOCK Kubernetes API server (axum) that the kubeconfig points to,
//!   answering the objects the waits read.
//! - as the MAAS behind the region port-forward: the repo's sim region
//!   (a reference implementation, not MAAS) with a local Postgres; the mock
//!   Secret maas-api-key returns its admin key. Its rack is told to report
//!   the interfaces the chart's patched rack reports on a wired node
//!   (`maas-pxe`, no `cali-e2e`), and the PXE subnet is created up front,
//!   as a real rack's registration would make it.
//! - a MOCK rack 5249 (axum) behind the rack port-forward.
//!
//! What is real: the harness binary, the pipeline, the chart (the 2.8 pin,
//! copied), its render and `chart check` preflight, the lab (namespace,
//! bridge, BMCs), the wiring into a real container, the MAAS calls, the
//! checks, collection, teardown and the state file.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use maas_e2e::cmd::Cmd;
use maas_e2e::maas::MaasClient;
use maas_e2e::plan::RunId;
use maas_e2e::scenario::TargetKind;
use maas_e2e::targets::sim::{LocalPostgres, LocalPostgresOptions, SimRegion, SimRegionConfig};
use maas_e2e::testing::{have_program, require};
use serde_json::{Value, json};

use crate::wiring::{NODE_IMAGE, build_node_image};

const SCENARIO: &str = "\
description: A chart run with BMCs and no VMs, against a mocked cluster
targets: [chart]
machines:
  - name: phantom
    vm: false
steps:
  - inject_fault: {machine: phantom, fault: no_answer}
  - clear_faults: phantom
";

/// The MOCK executables. `$MOCK_DIR/argv.log` gets one line per call:
/// the program and its arguments, tab-separated.
fn write_mocks(dir: &Path, with_kind: bool) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let record = r#"log() { p="$1"; shift; { printf '%s' "$p"; for a in "$@"; do printf '\t%s' "$a"; done; printf '\n'; } >> "$MOCK_DIR/argv.log"; }"#;
    let kind = format!(
        r#"#!/bin/sh
# MOCK kind (not kind): records argv; a "cluster" is one node container
# from the locally built busybox image, named as kind names workers.
{record}
log kind "$@"
arg() {{ want="$1"; shift; prev=""; for a in "$@"; do [ "$prev" = "$want" ] && echo "$a"; prev="$a"; done; }}
name=$(arg --name "$@")
case "$1 $2" in
  "create cluster")
    kc=$(arg --kubeconfig "$@")
    printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: mock\n  cluster:\n    server: %s\nusers:\n- name: mock\n  user: {{}}\ncontexts:\n- name: mock\n  context:\n    cluster: mock\n    user: mock\ncurrent-context: mock\n' "$MOCK_KUBE_SERVER" > "$kc"
    docker run --detach --name "$name-worker" --network none --cap-add NET_ADMIN --label maas-e2e.test=chart-mock-kind {NODE_IMAGE} sleep 100000 >/dev/null ;;
  "delete cluster") docker rm --force "$name-worker" >/dev/null 2>&1; echo "Deleting cluster \"$name\" ..." ;;
  "get clusters") docker ps --all --filter label=maas-e2e.test=chart-mock-kind --format '{{{{.Names}}}}' | sed 's/-worker$//' ;;
  "export logs") mkdir -p "$3"; echo "mock kind logs" > "$3/mock.txt" ;;
esac
exit 0
"#
    );
    let helm = format!(
        r#"#!/bin/sh
# MOCK helm (not Helm): installs nothing. `template` and the preflight's
# `dependency` go to the engine unrecorded; the rest is recorded, and
# `upgrade --install REL CHART ...` renders CHART with its --values and
# --set-string through the engine (ci/bin/helm): a bad override fails here.
{record}
case "$1" in
  template) exec "$MOCK_ENGINE_HELM" "$@" ;;
  dependency)
    case "$*" in *maas-e2e-chart-check-*) exec "$MOCK_ENGINE_HELM" "$@" ;; esac ;;
esac
log helm "$@"
case "$1" in
  status) echo "STATUS: deployed (mock)";;
  get) echo "mock: values";;
  dependency) exec "$MOCK_ENGINE_HELM" "$@" ;;
  upgrade)
    rel="$3"; chart="$4"; shift 4
    n=$#; i=0
    while [ "$i" -lt "$n" ]; do
      a="$1"; shift; i=$((i+1))
      case "$a" in
        --kubeconfig|--timeout) shift; i=$((i+1)) ;;
        *) set -- "$@" "$a" ;;
      esac
    done
    "$MOCK_ENGINE_HELM" template "$rel" "$chart" "$@" > "$MOCK_DIR/render.out" 2> "$MOCK_DIR/render.err" || {{
      cat "$MOCK_DIR/render.err" >&2; rm -f "$MOCK_DIR/render.out"; exit 1; }}
    # Only the templates rendered: the output holds the secrets.
    grep '^# Source: ' "$MOCK_DIR/render.out" > "$MOCK_DIR/rendered-sources.txt"
    rm -f "$MOCK_DIR/render.out"
    echo "Release \"$rel\" has been upgraded. (mock: rendered by the engine, nothing installed)" ;;
esac
exit 0
"#
    );
    let kubectl = format!(
        r#"#!/bin/sh
# MOCK kubectl (not kubectl): records argv; port-forwards print kubectl's
# first line for the port the test chose, then wait to be stopped.
{record}
log kubectl "$@"
case " $* " in
  *" port-forward "*" service/maas-region "*) echo "Forwarding from 127.0.0.1:$MOCK_REGION_PORT -> 5240"; exec sleep 100000 ;;
  *" port-forward "*" pod/maas-rack-0 "*) echo "Forwarding from 127.0.0.1:$MOCK_RACK_PORT -> 5249"; exec sleep 100000 ;;
  *" --stdin "*|*" --filename - "*) cat >/dev/null ;;
  *" get pods --output name "*) printf 'pod/maas-region-0\npod/maas-rack-0\n' ;;
  *" logs "*) echo "mock log line" ;;
esac
exit 0
"#
    );
    let mut tools = vec![("helm", helm), ("kubectl", kubectl)];
    if with_kind {
        tools.push(("kind", kind));
    }
    for (name, text) in tools {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// The recorded calls: argv per line.
fn recorded(mock_dir: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(mock_dir.join("argv.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect()
}

/// How the MOCK Kubernetes API answers.
#[derive(Clone)]
struct KubeScript {
    /// The Secret's token (the sim region's admin key).
    token: String,
    /// Jobs answered Failed=True.
    failed_jobs: Vec<String>,
    /// Jobs answered without conditions (still running).
    pending_jobs: Vec<String>,
    /// Paths asked, in order.
    seen: Arc<Mutex<Vec<String>>>,
}

async fn kube_job(
    State(s): State<KubeScript>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
) -> impl IntoResponse {
    s.seen.lock().unwrap().push(format!("job/{name}"));
    let cond = if s.pending_jobs.contains(&name) {
        return axum::Json(
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns}, "status": {"active": 1}}),
        );
    } else if s.failed_jobs.contains(&name) {
        json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit (mock)"})
    } else {
        json!({"type": "Complete", "status": "True"})
    };
    axum::Json(
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns}, "status": {"conditions": [cond]}}),
    )
}

async fn kube_sts(
    State(s): State<KubeScript>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
) -> impl IntoResponse {
    s.seen.lock().unwrap().push(format!("statefulset/{name}"));
    axum::Json(
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 1, "selector": {}, "serviceName": name, "template": {}}, "status": {"replicas": 1, "readyReplicas": 1}}),
    )
}

async fn kube_pod(
    State(s): State<KubeScript>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
) -> impl IntoResponse {
    s.seen.lock().unwrap().push(format!("pod/{name}"));
    axum::Json(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
    )
}

async fn kube_secret(
    State(s): State<KubeScript>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
) -> axum::response::Response {
    s.seen.lock().unwrap().push(format!("secret/{name}"));
    if name != "maas-api-key" {
        return (StatusCode::NOT_FOUND, axum::Json(json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}))).into_response();
    }
    let secret = k8s_openapi::api::core::v1::Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name),
            namespace: Some(ns),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "token".to_string(),
            k8s_openapi::ByteString(s.token.clone().into_bytes()),
        )])),
        ..Default::default()
    };
    axum::Json(serde_json::to_value(secret).unwrap()).into_response()
}

/// Serve `router` on 127.0.0.1:0; returns the port.
async fn serve(router: Router) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
    port
}

fn mock_kube_api(script: KubeScript) -> Router {
    Router::new()
        .route("/apis/batch/v1/namespaces/{ns}/jobs/{name}", get(kube_job))
        .route(
            "/apis/apps/v1/namespaces/{ns}/statefulsets/{name}",
            get(kube_sts),
        )
        .route("/api/v1/namespaces/{ns}/pods/{name}", get(kube_pod))
        .route("/api/v1/namespaces/{ns}/secrets/{name}", get(kube_secret))
        .with_state(script)
}

/// A MOCK front for the region port-forward: every request goes on to the
/// sim region unchanged, except `boot-resources/?op=is_importing`, answered
/// `true` every time (a region whose image import never ends), so the
/// configure stage's wait for the import cannot hold. Counts those answers.
async fn import_never_ends(region_port: u16, asked: Arc<Mutex<u32>>) -> u16 {
    let client = reqwest::Client::new();
    serve(Router::new().fallback(move |req: axum::extract::Request| {
        let (client, asked) = (client.clone(), asked.clone());
        async move {
            let uri = req.uri().clone();
            if uri.path().ends_with("/boot-resources/")
                && uri.query().is_some_and(|q| q.contains("op=is_importing"))
            {
                *asked.lock().unwrap() += 1;
                return ([("content-type", "application/json")], "true").into_response();
            }
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let url = format!(
                "http://127.0.0.1:{region_port}{}",
                uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
            );
            let mut fwd = client.request(parts.method, url).body(body);
            for (k, v) in parts.headers.iter().filter(|(k, _)| *k != "host") {
                fwd = fwd.header(k, v);
            }
            let resp = fwd.send().await.unwrap();
            let mut out = (resp.status(), resp.headers().clone()).into_response();
            *out.body_mut() = axum::body::Body::from(resp.bytes().await.unwrap());
            out
        }
    }))
    .await
}

/// The sim region (NOT MAAS) standing in for the chart's MAAS, with its
/// Postgres; dropped in order.
struct SimMaas {
    region: Option<SimRegion>,
    pg: Option<LocalPostgres>,
    dir: PathBuf,
    port: u16,
}

impl Drop for SimMaas {
    fn drop(&mut self) {
        drop(self.region.take());
        if let Some(mut pg) = self.pg.take() {
            pg.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start_sim_maas(pxe_cidr: &str) -> SimMaas {
    maas_e2e::maas::install_crypto_provider();
    let dir = PathBuf::from("/var/lib/maas-e2e").join(format!(
        "test-chart-pipeline-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let pg = LocalPostgres::start(LocalPostgresOptions::new(dir.join("pg")))
        .await
        .expect("start local postgres");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cfg = SimRegionConfig::new(pg.connection_string(), vec![listener]);
    // What the chart's rack (nic_filter patch) reports on a wired node.
    cfg.rack_interfaces = vec!["eth0".into(), "maas-pxe".into()];
    let region = SimRegion::start(cfg).await.expect("start sim region");
    // A real rack's registration makes the subnet of its bridge address.
    region
        .client()
        .unwrap()
        .create_subnet(pxe_cidr, None, None, None)
        .await
        .unwrap();
    SimMaas {
        region: Some(region),
        pg: Some(pg),
        dir,
        port,
    }
}

fn prerequisites() -> bool {
    crate::wiring::prerequisites()
        && require(
            "Postgres server binaries",
            maas_e2e::targets::sim::postgres::find_bin_dir().is_ok(),
            "apt-get install postgresql (ci/setup-host.sh)",
        )
        && require(
            "the node image's busybox",
            have_program("busybox"),
            "apt-get install busybox-static",
        )
        && crate::render::engine_and_pin("airship-maas-2.8")
        && crate::postgres::docker_with_image(maas_e2e::targets::chart::values::DB_INIT_IMAGE)
}

/// The MOCK images: tags of the busybox node image under a test-only
/// repository, for the preflight's "present locally"; untagged on drop.
struct MockImages {
    repo: String,
    tags: Vec<String>,
}

impl MockImages {
    fn tag() -> MockImages {
        let repo = format!(
            "me2e-mock-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        let tags: Vec<String> = [
            "maas-region-controller:2.8.7",
            "maas-rack-controller:2.8.7",
            "kubernetes-entrypoint:mock",
        ]
        .iter()
        .map(|i| format!("{repo}/{i}"))
        .collect();
        for t in &tags {
            Cmd::new("docker")
                .args(["tag", NODE_IMAGE, t])
                .run_blocking()
                .unwrap();
        }
        MockImages { repo, tags }
    }

    /// The chart flags that name them.
    fn args(&self) -> Vec<String> {
        vec![
            "--image-repo".into(),
            self.repo.clone(),
            "--dep-check-image".into(),
            self.tags[2].clone(),
        ]
    }
}

impl Drop for MockImages {
    fn drop(&mut self) {
        for t in &self.tags {
            let _ = Cmd::new("docker").args(["rmi", t]).run_blocking();
        }
    }
}

/// One run of the binary against the mocks.
struct Harness {
    tmp: tempfile::TempDir,
    mock_dir: PathBuf,
    scenario: PathBuf,
    out: PathBuf,
    sim: SimMaas,
    kube: KubeScript,
    api_key: String,
    /// How Postgres runs: in the cluster (mocked kubectl steps) unless a test says otherwise.
    postgres_args: Vec<String>,
    /// A writable copy of the 2.8 pin (deploy's `dependency update` writes into it).
    chart: PathBuf,
    images: MockImages,
    /// A Server header the MOCK rack 5249 sends (a rack image without the
    /// secure_headers patch), to see the chart check fail the run.
    rack_server_header: Option<&'static str>,
    /// Put [`import_never_ends`] between the region port-forward and the
    /// sim; it counts the is_importing answers here.
    import_never_ends: Option<Arc<Mutex<u32>>>,
}

impl Harness {
    async fn new(failed_jobs: &[&str], pending_jobs: &[&str]) -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let mock_dir = tmp.path().join("mock-bin");
        write_mocks(&mock_dir, true);
        let chart = maas_e2e::targets::chart::render::copy_chart(
            &crate::render::pin_chart("airship-maas-2.8"),
            &tmp.path().join("src"),
        )
        .unwrap();
        let images = MockImages::tag();
        let scenario = tmp.path().join("chart-no-vms.yaml");
        std::fs::write(&scenario, SCENARIO).unwrap();
        let out = tmp.path().join("runs");
        // The lab's subnet comes from the seed alone: plan it once to learn it.
        let loaded = maas_e2e::scenario::load(&scenario).unwrap();
        let probe = maas_e2e::plan::plan(
            &loaded,
            TargetKind::Chart,
            &"00000000".parse::<RunId>().unwrap(),
            1,
            &out,
        );
        let cidr = format!("{}/{}", probe.lab.subnet, probe.lab.prefix_len);
        let sim = start_sim_maas(&cidr).await;
        let k = sim.region.as_ref().unwrap().admin_key();
        let api_key = format!("{}:{}:{}", k.consumer_key, k.token_key, k.token_secret);
        let kube = KubeScript {
            token: api_key.clone(),
            failed_jobs: failed_jobs.iter().map(|s| s.to_string()).collect(),
            pending_jobs: pending_jobs.iter().map(|s| s.to_string()).collect(),
            seen: Arc::default(),
        };
        Harness {
            tmp,
            mock_dir,
            scenario,
            out,
            sim,
            kube,
            api_key,
            postgres_args: vec!["--postgres-in-cluster".into()],
            chart,
            images,
            rack_server_header: None,
            import_never_ends: None,
        }
    }

    /// `maas-e2e run --target chart` with the mocks first on PATH, to the end.
    async fn run(&self, extra: &[&str]) -> std::process::Output {
        self.spawn(extra).await.wait_with_output().await.unwrap()
    }

    /// The same, started: stdout and stderr piped.
    async fn spawn(&self, extra: &[&str]) -> tokio::process::Child {
        let kube_port = serve(mock_kube_api(self.kube.clone())).await;
        let header = self.rack_server_header;
        let rack_port = serve(Router::new().fallback(move || async move {
            let mut resp = "mock rack 5249".into_response();
            if let Some(h) = header {
                resp.headers_mut()
                    .insert("server", axum::http::HeaderValue::from_static(h));
            }
            resp
        }))
        .await;
        let region_port = match &self.import_never_ends {
            Some(asked) => import_never_ends(self.sim.port, asked.clone()).await,
            None => self.sim.port,
        };
        let chart = &self.chart;
        let path = format!(
            "{}:{}",
            self.mock_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        tokio::process::Command::new(env!("CARGO_BIN_EXE_maas-e2e"))
            .args([
                "run",
                &self.scenario.display().to_string(),
                "--target",
                "chart",
                "--out",
                &self.out.display().to_string(),
            ])
            .args([
                "--chart",
                &chart.display().to_string(),
                "--update-snapshots",
            ])
            .args(&self.postgres_args)
            .args(self.images.args())
            .args(extra)
            .env("PATH", path)
            .env("MOCK_DIR", &self.mock_dir)
            .env("MOCK_ENGINE_HELM", crate::render::engine_helm())
            .env("MOCK_KUBE_SERVER", format!("http://127.0.0.1:{kube_port}"))
            .env("MOCK_REGION_PORT", region_port.to_string())
            .env("MOCK_RACK_PORT", rack_port.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    fn run_dir(&self) -> PathBuf {
        let dirs: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(dirs.len(), 1, "{dirs:?}");
        dirs[0].clone()
    }

    /// The values of every secret the run handed to helm (recorded by the
    /// mock outside the run directory), and the API key.
    fn secrets(&self) -> Vec<String> {
        let mut out = vec![self.api_key.clone()];
        let k = self.sim.region.as_ref().unwrap().admin_key();
        out.push(k.token_secret.clone());
        for argv in recorded(&self.mock_dir) {
            for w in argv.windows(2).filter(|w| w[0] == "--set-string") {
                out.push(w[1].split_once('=').unwrap().1.to_string());
            }
        }
        out
    }
}

/// Every file under `dir`, with its text.
fn files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push((
                p.clone(),
                String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
            ));
        }
    }
    out
}

fn assert_no_secret_in(dir: &Path, secrets: &[String]) {
    assert!(
        secrets.len() >= 5,
        "the API key and the four chart secrets: {}",
        secrets.len()
    );
    for (path, text) in files(dir) {
        for s in secrets {
            assert!(
                !text.contains(s.as_str()),
                "{} holds a secret",
                path.display()
            );
        }
    }
}

/// What the plan says the run executes with kind, helm and kubectl:
/// stage commands (deploy up to the port-forwards), then collection when
/// it failed, then the chart's teardown; secret arguments by position.
fn planned_argv(
    h: &Harness,
    run_dir: &Path,
    failed: bool,
    stop_after_wait: Option<&str>,
) -> Vec<Vec<String>> {
    let (scenario, out, chart) = (&h.scenario, &h.out, &h.chart);
    use maas_e2e::targets::chart::{ChartArgs, ChartPlan, Step};
    let run_id: RunId = run_dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let loaded = maas_e2e::scenario::load(scenario).unwrap();
    let plan = maas_e2e::plan::plan(&loaded, TargetKind::Chart, &run_id, 1, out);
    let args = ChartArgs {
        chart: Some(chart.to_path_buf()),
        postgres_in_cluster: true,
        namespace: "maas".into(),
        postgres_image: "postgres:14".into(),
        rack_replicas: 1,
        image_repo: Some(h.images.repo.clone()),
        dep_check_image: Some(h.images.tags[2].clone()),
        ..Default::default()
    };
    let t = maas_e2e::run::options::TargetOptions {
        chart: args,
        ..Default::default()
    };
    let opts = maas_e2e::run::provider::chart_options(&plan, &t).unwrap();
    let cp = ChartPlan::new(&opts).unwrap();
    let mut out_argv = Vec::new();
    'stages: for stage in &cp.stages {
        for step in &stage.steps {
            match step {
                Step::Run(c) | Step::Background { cmd: c, .. } => out_argv.push(c.argv()),
                Step::Wait(w) if Some(w.target.object().as_str()) == stop_after_wait => {
                    break 'stages;
                }
                _ => {}
            }
        }
    }
    if failed {
        for step in &cp.collect {
            if let Step::Capture { cmd, .. } | Step::Run(cmd) = step
                && !cmd.display().contains("{pod}")
            {
                out_argv.push(cmd.argv());
            }
        }
    }
    for step in &cp.teardown {
        if let Step::Run(c) = step {
            out_argv.push(c.argv());
        }
    }
    out_argv.retain(|a| matches!(a[0].as_str(), "kind" | "helm" | "kubectl"));
    out_argv
}

/// Secret `--set-string` values differ per run: compare keys only.
fn mask(argv: &[Vec<String>]) -> Vec<String> {
    argv.iter()
        .map(|a| {
            let mut prev = "";
            a.iter()
                .map(|w| {
                    let shown = if prev == "--set-string" {
                        format!("{}=<secret>", w.split_once('=').map_or(w.as_str(), |x| x.0))
                    } else {
                        w.clone()
                    };
                    prev = w;
                    shown
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn state_resources(run_dir: &Path) -> Vec<Value> {
    let state: Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("state.json")).unwrap()).unwrap();
    state["resources"].as_array().cloned().unwrap_or_default()
}

fn nothing_left(run_id: &str) {
    let containers = Cmd::new("docker")
        .args(["ps", "--all", "--format", "{{.Names}}"])
        .run_blocking()
        .unwrap();
    assert!(
        !containers.contains(run_id),
        "containers left: {containers}"
    );
    let netns = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert!(
        netns.iter().all(|n| !n.contains(run_id)),
        "namespaces left: {netns:?}"
    );
    assert!(
        !Path::new("/sys/class/net")
            .join(format!("m2b{run_id}"))
            .exists(),
        "the lab bridge is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_run_without_vms_deploys_configures_checks_and_tears_down() {
    if !prerequisites() {
        return;
    }
    build_node_image().await;
    let h = Harness::new(&[], &[]).await;
    let out = h.run(&[]).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let run_dir = h.run_dir();
    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_string();
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}\njunit:\n{junit}"
    );

    // The stages, the steps and the chart's checks, passed, in JUnit.
    for name in [
        "chart: rack interface_set lists maas-pxe and leaves out cali-e2e",
        "chart: no Server header from the region (service/maas-region) on 5240",
        "chart: no Server header from the rack (pod/maas-rack-0) on 5249",
        "chart: secret maas-api-key key token authenticates (users/?op=whoami)",
        "inject_fault phantom",
        "clear_faults phantom",
    ] {
        assert!(junit.contains(name), "{name} missing from junit:\n{junit}");
    }
    assert!(!junit.contains("<failure"), "{junit}");

    // kind, helm and kubectl were called exactly as the plan says.
    let want = planned_argv(&h, &run_dir, false, None);
    assert_eq!(mask(&recorded(&h.mock_dir)), mask(&want));
    // The install's values went through the engine: the chart rendered.
    let sources = std::fs::read_to_string(h.mock_dir.join("rendered-sources.txt")).unwrap();
    for t in [
        "statefulset-rack.yaml",
        "job-db-init.yaml",
        "secret-region.yaml",
    ] {
        assert!(
            sources.contains(t),
            "{t} not rendered at install:\n{sources}"
        );
    }
    // The waits read every object of the flow from the mock API server.
    let seen = h.kube.seen.lock().unwrap().clone();
    for obj in [
        "job/maas-db-init",
        "job/maas-db-sync",
        "statefulset/maas-region",
        "secret/maas-api-key",
        "pod/maas-rack-0",
        "job/maas-import-resources",
    ] {
        assert!(seen.iter().any(|s| s == obj), "{obj} not read: {seen:?}");
    }

    // The MAAS configuration, as the sim region recorded it.
    let client: MaasClient = h.sim.region.as_ref().unwrap().client().unwrap();
    let ranges = client.ip_ranges().await.unwrap();
    assert!(
        ranges
            .iter()
            .any(|r| r.range_type == "dynamic" && r.comment == "maas-e2e"),
        "{ranges:?}"
    );
    let rack_id = h.sim.region.as_ref().unwrap().rack_system_id().to_string();
    let vlans = client
        .vlans(client.subnets().await.unwrap()[0].vlan.fabric_id)
        .await
        .unwrap();
    assert!(
        vlans
            .iter()
            .any(|v| v.dhcp_on && v.primary_rack.as_deref() == Some(rack_id.as_str())),
        "{vlans:?}"
    );

    // Teardown: nothing registered, nothing on the host; no collection asked.
    assert_eq!(state_resources(&run_dir), Vec::<Value>::new());
    nothing_left(&run_id);
    assert!(!run_dir.join("collected").exists());
    assert_no_secret_in(&run_dir, &h.secrets());
}

/// The negative twin of the run above, through the binary: the rack
/// answers with a Server header, so that chart check fails the run (exit
/// 1, the JUnit case of that check failed and only it), and teardown is
/// still complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_chart_check_fails_the_run_and_tears_down() {
    if !prerequisites() {
        return;
    }
    build_node_image().await;
    let mut h = Harness::new(&[], &[]).await;
    h.rack_server_header = Some("TwistedWeb/18.9.0");
    let out = h.run(&[]).await;
    let run_dir = h.run_dir();
    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_string();
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert_eq!(
        out.status.code(),
        Some(maas_e2e::exit::FAILED),
        "{}\n{junit}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let failed: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter(|n| n.children().any(|c| c.has_tag_name("failure")))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert!(
        failed.len() == 1
            && failed[0]
                .ends_with("chart: no Server header from the rack (pod/maas-rack-0) on 5249"),
        "{failed:?}\n{junit}"
    );
    assert!(
        junit.contains("TwistedWeb/18.9.0"),
        "the failure quotes the header"
    );
    assert_eq!(state_resources(&run_dir), Vec::<Value>::new());
    nothing_left(&run_id);
}

/// Configure never completes: the region keeps importing (the MOCK front
/// above). With `--configure-timeout 3s` the run fails in the target (exit
/// 5), the JUnit carries the wait's timeout, and teardown is complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configure_wait_that_never_holds_times_out_fails_the_run_and_tears_down() {
    if !prerequisites() {
        return;
    }
    build_node_image().await;
    let mut h = Harness::new(&[], &[]).await;
    let asked = Arc::new(Mutex::new(0));
    h.import_never_ends = Some(asked.clone());
    let out = h.run(&["--configure-timeout", "3s"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let run_dir = h.run_dir();
    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_string();
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert_eq!(
        out.status.code(),
        Some(maas_e2e::exit::TARGET_FAILED),
        "{stderr}\n{junit}"
    );
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let failures: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .map(|n| {
            format!(
                "{} {}",
                n.attribute("message").unwrap_or(""),
                n.text().unwrap_or("")
            )
        })
        .collect();
    assert!(
        failures.iter().any(|f| f.contains(
            "GET boot-resources/: `answer is false` did not hold within 3s; last answer: true"
        )),
        "{failures:#?}\n{junit}"
    );
    // It waited (more than one poll), and gave up: the later calls never ran.
    assert!(
        *asked.lock().unwrap() >= 2,
        "is_importing asked {asked:?} times"
    );
    assert_eq!(state_resources(&run_dir), Vec::<Value>::new());
    nothing_left(&run_id);
    assert_no_secret_in(&run_dir, &h.secrets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_job_fails_deploy_naming_it_then_collects_and_tears_down() {
    if !prerequisites() {
        return;
    }
    build_node_image().await;
    let h = Harness::new(&["maas-db-init"], &[]).await;
    let out = h.run(&[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A failed deploy is the target's failure (exit 5, issue 10).
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    let run_dir = h.run_dir();
    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_string();
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    let deploy = events
        .lines()
        .find(|l| l.contains(r#""stage":"deploy""#) && l.contains("stage_finished"))
        .unwrap();
    assert!(
        deploy.contains("failed")
            && deploy.contains("job/maas-db-init")
            && deploy.contains("BackoffLimitExceeded"),
        "{deploy}"
    );

    // Collection ran (mock output, redacted), then the teardown.
    for f in [
        "resources.txt",
        "events.txt",
        "describe.txt",
        "pods.txt",
        "logs-maas-rack-0.txt",
        "helm-status.txt",
        "helm-values.yaml",
        "kind-logs/mock.txt",
    ] {
        assert!(
            run_dir.join("collected").join(f).exists(),
            "collected/{f} missing"
        );
    }
    let want = planned_argv(&h, &run_dir, true, Some("job/maas-db-init"));
    // Per pod (from the mock's pods list): logs, current and previous.
    let calls = mask(&recorded(&h.mock_dir));
    let logs: Vec<&String> = calls.iter().filter(|c| c.contains(" logs pod/")).collect();
    assert_eq!(logs.len(), 4, "{logs:?}");
    let without_logs: Vec<String> = calls
        .iter()
        .filter(|c| !c.contains(" logs pod/"))
        .cloned()
        .collect();
    assert_eq!(without_logs, mask(&want));
    assert!(
        calls
            .last()
            .unwrap()
            .starts_with("kind delete cluster --name me2e-"),
        "{calls:?}"
    );

    assert_eq!(state_resources(&run_dir), Vec::<Value>::new());
    nothing_left(&run_id);
    assert_no_secret_in(&run_dir, &h.secrets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_a_wait_tears_the_cluster_down() {
    if !prerequisites() {
        return;
    }
    build_node_image().await;
    let h = Harness::new(&[], &["maas-db-sync"]).await;
    let child = h.spawn(&[]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !h
        .kube
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|s| s == "job/maas-db-sync")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never reached the db-sync wait"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run_dir = h.run_dir();
    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_string();
    let calls = mask(&recorded(&h.mock_dir));
    assert_eq!(
        calls.last().map(String::as_str),
        Some(format!("kind delete cluster --name me2e-{run_id}").as_str()),
        "{calls:?}"
    );
    assert!(
        !run_dir.join("collected").exists(),
        "an interrupted run is not collected"
    );
    assert_eq!(state_resources(&run_dir), Vec::<Value>::new());
    nothing_left(&run_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_down_removes_the_cluster_by_run_id() {
    if !prerequisites() {
        return;
    }
    build_node_image().await;
    let h = Harness::new(&[], &["maas-db-sync"]).await;
    let mut child = h.spawn(&[]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !h
        .kube
        .seen
        .lock()
        .unwrap()
        .iter()
        .any(|s| s == "job/maas-db-sync")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never reached the db-sync wait"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    child.kill().await.unwrap();
    let run_dir = h.run_dir();
    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_string();
    let kinds: Vec<String> = state_resources(&run_dir)
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect();
    for k in ["netns_name", "kind_cluster"] {
        assert!(
            kinds.iter().any(|x| x == k),
            "{k} registered before it was made: {kinds:?}"
        );
    }
    let path = format!(
        "{}:{}",
        h.mock_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_maas-e2e"))
        .args(["down", &run_id])
        .env("PATH", path)
        .env("MOCK_DIR", &h.mock_dir)
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = mask(&recorded(&h.mock_dir));
    assert!(
        calls
            .iter()
            .any(|c| *c == format!("kind delete cluster --name me2e-{run_id}")),
        "{calls:?}"
    );
    nothing_left(&run_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_postgres_joins_kinds_network_and_goes_with_the_run() {
    let image = format!("{}:{}", crate::postgres::IMAGE, crate::postgres::TAG);
    if !prerequisites() || !crate::postgres::docker_with_image(&image) {
        return;
    }
    build_node_image().await;
    // kind makes this network with its first cluster; the mock kind does not.
    let made_network = Cmd::new("docker")
        .args(["network", "inspect", "kind"])
        .run_blocking()
        .is_err();
    if made_network {
        Cmd::new("docker")
            .args([
                "network",
                "create",
                "--label",
                "maas-e2e.test=chart",
                "kind",
            ])
            .run_blocking()
            .unwrap();
    }
    struct Network(bool);
    impl Drop for Network {
        fn drop(&mut self) {
            if self.0 {
                let _ = Cmd::new("docker")
                    .args(["network", "rm", "kind"])
                    .run_blocking();
            }
        }
    }
    let _network = Network(made_network);
    let mut h = Harness::new(&[], &[]).await;
    h.postgres_args = vec!["--postgres-image".into(), image];
    let out = h.run(&[]).await;
    let run_dir = h.run_dir();
    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_string();
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{junit}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The Service + Endpoints point at the container's address on kind's network.
    let service = std::fs::read_to_string(run_dir.join("postgres-service.yaml")).unwrap();
    let ip = service
        .lines()
        .find_map(|l| l.trim().strip_prefix("- ip: "))
        .unwrap_or_else(|| panic!("{service}"));
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{service}");
    let calls = mask(&recorded(&h.mock_dir));
    let apply = format!(
        "apply --filename {}",
        run_dir.join("postgres-service.yaml").display()
    );
    assert!(calls.iter().any(|c| c.ends_with(&apply)), "{calls:?}");
    // Gone with the run (the chart's teardown removed it), nothing left.
    assert_eq!(state_resources(&run_dir), Vec::<Value>::new());
    nothing_left(&run_id);
    assert_no_secret_in(&run_dir, &h.secrets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_cluster_leaves_the_cluster_and_collect_gathers_a_passing_run() {
    if !prerequisites() {
        return;
    }
    build_node_image().await;
    let h = Harness::new(&[], &[]).await;
    let out = h.run(&["--keep-cluster", "--collect"]).await;
    let run_dir = h.run_dir();
    let run_id = run_dir.file_name().unwrap().to_str().unwrap().to_string();
    let node = format!("me2e-{run_id}-worker");
    // The kept "cluster" is this test's to remove.
    let _cleanup = scopeguard(node.clone());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = mask(&recorded(&h.mock_dir));
    assert!(
        calls.iter().all(|c| !c.starts_with("kind delete")),
        "{calls:?}"
    );
    let running = Cmd::new("docker")
        .args(["inspect", "--format", "{{.State.Running}}", &node])
        .run_blocking()
        .unwrap();
    assert_eq!(running.trim(), "true");
    // Collected on request: the cluster's evidence and MAAS's objects.
    let racks = std::fs::read_to_string(run_dir.join("collected/maas-racks.json")).unwrap();
    assert!(racks.contains("maas-pxe"), "{racks}");
    assert!(
        run_dir.join("collected/maas-events.json").exists()
            && run_dir.join("collected/resources.txt").exists()
    );
    // The run's own resources are gone; the wiring's lab side went with the lab.
    assert_eq!(state_resources(&run_dir), Vec::<Value>::new());
    assert!(!maas_e2e::lab::netns::netns_path(&format!("me2e-{run_id}-n0")).exists());
    let tag = format!("x{}", maas_e2e::targets::chart::wiring::short_tag(&run_id));
    let host_links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        host_links.iter().all(|l| !l.starts_with(&tag)),
        "the wiring's lab end outlived the lab: {host_links:?}"
    );
    let node_links = Cmd::new("docker")
        .args(["exec", &node, "busybox", "ip", "-o", "link", "show"])
        .run_blocking()
        .unwrap();
    assert!(
        !node_links.contains("maas-pxe"),
        "the node bridge outlived the lab: {node_links}"
    );
    assert_no_secret_in(&run_dir, &h.secrets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_values_file_the_chart_cannot_render_stops_the_run_before_anything_starts() {
    if !prerequisites() {
        return;
    }
    build_node_image().await;
    let h = Harness::new(&[], &[]).await;
    // conf.maas.url must be a map (the templates read .maas_url in it).
    let bad = h.tmp.path().join("bad-values.yaml");
    std::fs::write(&bad, "conf:\n  maas:\n    url: http://not-a-map\n").unwrap();
    let out = h.run(&["--values", &bad.display().to_string()]).await;
    let run_dir = h.run_dir();
    let events = std::fs::read_to_string(run_dir.join("events.jsonl")).unwrap();
    // A chart that cannot take the run's values is a target failure.
    assert_eq!(
        out.status.code(),
        Some(maas_e2e::exit::TARGET_FAILED),
        "{events}"
    );
    let lab = events
        .lines()
        .find(|l| l.contains(r#""stage":"lab""#) && l.contains("stage_finished"))
        .unwrap();
    assert!(
        lab.contains("helm template failed") && lab.contains("nothing was started"),
        "{lab}"
    );
    // Preflight: no kind, helm or kubectl call was made, nothing registered.
    assert_eq!(recorded(&h.mock_dir), Vec::<Vec<String>>::new());
    assert_eq!(state_resources(&run_dir), Vec::<Value>::new());
}

/// Removes a container when dropped.
fn scopeguard(container: String) -> impl Drop {
    struct Guard(String);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = Cmd::new("docker")
                .args(["rm", "--force", &self.0])
                .run_blocking();
        }
    }
    Guard(container)
}

#[tokio::test]
async fn without_kind_the_run_stops_before_creating_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let mock_dir = tmp.path().join("mock-bin");
    write_mocks(&mock_dir, false);
    // The host's PATH without any directory that holds a kind.
    let host_path: Vec<PathBuf> =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .filter(|d| !d.join("kind").exists())
            .collect();
    let path = std::env::join_paths(std::iter::once(mock_dir.clone()).chain(host_path)).unwrap();
    let scenario = tmp.path().join("chart-no-vms.yaml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let out_dir = tmp.path().join("runs");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_maas-e2e"))
        .args([
            "run",
            &scenario.display().to_string(),
            "--target",
            "chart",
            "--out",
            &out_dir.display().to_string(),
            "--chart",
            "/nonexistent/chart",
        ])
        .env("PATH", path)
        .env("MOCK_DIR", &mock_dir)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "host not ready: {stderr}");
    assert!(
        stderr.contains("kind") && stderr.contains("https://kind.sigs.k8s.io"),
        "{stderr}"
    );
    assert!(!out_dir.exists(), "no run directory");
    assert!(recorded(&mock_dir).is_empty(), "no mock was called");
}

#[tokio::test]
async fn without_kind_the_pipeline_fails_its_lab_stage_before_creating_anything() {
    use maas_e2e::run::pipeline::{RunOptions, execute};
    // A PATH without kind, whatever this host has (nextest runs each test in
    // a process of its own, so the change stays in this test).
    let empty = tempfile::tempdir().unwrap();
    // SAFETY: set before anything of this test reads the environment.
    unsafe { std::env::set_var("PATH", empty.path()) };
    assert!(maas_e2e::targets::chart::prereq::check().is_err());
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("chart-no-vms.yaml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let loaded = maas_e2e::scenario::load(&scenario).unwrap();
    let mut target_options = maas_e2e::run::options::TargetOptions::default();
    target_options.chart.chart = Some(tmp.path().join("chart"));
    target_options.chart.postgres_image = "postgres:14".into();
    target_options.chart.namespace = "maas".into();
    target_options.chart.rack_replicas = 1;
    let opts = RunOptions {
        target: TargetKind::Chart,
        out_dir: tmp.path().join("runs"),
        seed: 1,
        run_id: None,
        keep: false,
        update_snapshots: true,
        hold: false,
        snapshots: false,
        target_options,
    };
    let sum = execute(
        &loaded,
        &opts,
        &tokio_util::sync::CancellationToken::new(),
        Vec::new(),
    )
    .await
    .unwrap();
    assert!(!sum.passed);
    let lab = sum
        .events
        .iter()
        .find_map(|e| match e {
            maas_e2e::report::events::RunEvent::StageFinished {
                stage: maas_e2e::report::events::StageName::Lab,
                outcome,
                ..
            } => Some(format!("{outcome:?}")),
            _ => None,
        })
        .unwrap();
    assert!(
        lab.contains("Failed") && lab.contains("nothing was started") && lab.contains("install"),
        "{lab}"
    );
    assert!(
        state_resources(&sum.run_dir).is_empty(),
        "nothing was registered, so nothing was made"
    );
    assert!(!maas_e2e::lab::netns::netns_path(&format!("me2e-{}", sum.run_id)).exists());
}
