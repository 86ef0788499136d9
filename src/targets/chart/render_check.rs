//! `maas-e2e chart check`: the plan's assumptions about the chart, checked
//! against the chart as Helm renders it with the run's own values. Each
//! check is a row; a mismatch names the chart file it comes from. The same
//! check is the preflight of `run --target chart` (before anything starts).
//!
//! What the rows cover: every override key is a value of the chart or read
//! by one of its templates (none silently ignored); every object the run
//! waits on, reads or port-forwards to is rendered under that name in the
//! release namespace; every image a workload runs is one the run loads
//! (and, for a real run, present locally); node selectors and required
//! (anti-)affinity are met by the kind nodes' labels; every workload is
//! planned; secrets have the formats MAAS and the chart's scripts accept;
//! the pods' /sys/fs/cgroup mounts suit the host's cgroup version.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::image_build::{ImageBuild, planned_builds, present_locally, required_base};
use super::kind_config::kind_config_yaml;
use super::options::{ChartOptions, ClusterSource, is_region_secret};
use super::plan::{ChartPlan, Step};
use super::render::{RenderError, RenderedObject, render};
use super::values::{
    CONTROL_PLANE_LABEL, RACK_LABEL, REGION_SECRET_KEY, images_to_load, secret_set_strings,
    values_override,
};
use super::waits::{WaitTarget, deployment_waits};

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRow {
    /// The check's name (`override-keys`, `objects`, ...).
    pub check: &'static str,
    /// What was checked (`job/maas-db-init`, `pod.replicas.ingress_errors`).
    pub subject: String,
    pub ok: bool,
    /// Why it holds, or what is wrong and what would fix it.
    pub detail: String,
    /// The chart file the subject comes from (`templates/...`, `values.yaml`).
    pub file: String,
}

/// Every row, and the chart they were checked against.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub chart: PathBuf,
    pub version: String,
    pub app_version: Option<String>,
    pub rows: Vec<CheckRow>,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|r| r.ok)
    }

    pub fn mismatches(&self) -> impl Iterator<Item = &CheckRow> {
        self.rows.iter().filter(|r| !r.ok)
    }

    /// The table, then one line per mismatch with its file.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "chart check: {} (version {}{})",
            self.chart.display(),
            self.version,
            self.app_version
                .as_deref()
                .map_or(String::new(), |a| format!(", appVersion {a}"))
        );
        let w0 = self.rows.iter().map(|r| r.check.len()).max().unwrap_or(5);
        let w1 = self
            .rows
            .iter()
            .map(|r| r.subject.len())
            .max()
            .unwrap_or(7)
            .min(48);
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:<w0$}  {:<w1$}  {:<4}  {}",
                r.check,
                r.subject,
                if r.ok { "ok" } else { "FAIL" },
                r.detail
            );
        }
        let bad: Vec<&CheckRow> = self.mismatches().collect();
        if bad.is_empty() {
            let _ = writeln!(out, "all {} checks hold", self.rows.len());
        } else {
            let _ = writeln!(out, "{} mismatch(es):", bad.len());
            for r in bad {
                let _ = writeln!(
                    out,
                    "  {}: {} [{}]: {}",
                    r.file, r.subject, r.check, r.detail
                );
            }
        }
        out
    }
}

/// How strict the check is about the host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckSettings {
    /// Every image the run loads must be in the local docker (a real run).
    pub require_local_images: bool,
    /// The helm program; empty: `helm` on PATH.
    pub helm: String,
}

/// Render the chart with the run's values and check the plan against it.
pub fn check(opts: &ChartOptions, settings: CheckSettings) -> Result<CheckReport, CheckFailure> {
    let plan = ChartPlan::new(opts).map_err(|e| CheckFailure::BadInput(e.to_string()))?;
    let work = WorkDir::new()
        .map_err(|e| CheckFailure::HostNotReady(format!("a temporary directory: {e}")))?;
    let helm = if settings.helm.is_empty() {
        "helm"
    } else {
        settings.helm.as_str()
    };
    let objects = match render(helm, opts, work.path()) {
        Ok(o) => o,
        Err(e @ RenderError::Template(_)) => {
            // The chart refuses the run's values: a mismatch, not bad input.
            return Ok(CheckReport {
                chart: opts.chart_path.clone(),
                version: opts.chart_meta.version.clone(),
                app_version: opts.chart_meta.app_version.clone(),
                rows: vec![CheckRow {
                    check: "render",
                    subject: "helm template".into(),
                    ok: false,
                    detail: e.to_string(),
                    file: "templates/".into(),
                }],
            });
        }
        Err(e @ RenderError::NoHelm(_)) => return Err(CheckFailure::HostNotReady(e.to_string())),
        Err(e) => return Err(CheckFailure::BadInput(e.to_string())),
    };
    let chart_files =
        ChartFiles::read(&opts.chart_path).map_err(|e| CheckFailure::BadInput(e.to_string()))?;
    let nodes = kind_nodes(opts).map_err(CheckFailure::BadInput)?;
    let mut rows = Vec::new();
    rows.extend(override_keys(opts, &chart_files));
    rows.extend(planned_objects(opts, &plan, &objects));
    rows.extend(images(opts, &objects, &settings));
    rows.extend(scheduling(&objects, &nodes));
    rows.extend(workloads(opts, &objects));
    rows.extend(secrets(opts, &objects));
    rows.extend(cgroups(opts, &objects));
    Ok(CheckReport {
        chart: opts.chart_path.clone(),
        version: opts.chart_meta.version.clone(),
        app_version: opts.chart_meta.app_version.clone(),
        rows,
    })
}

/// A scratch directory for the chart's copy, removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> std::io::Result<WorkDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let p = std::env::temp_dir().join(format!(
            "maas-e2e-chart-check-{}-{nanos:x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p)?;
        Ok(WorkDir(p))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Why the check could not be made (as opposed to mismatches).
#[derive(Debug, thiserror::Error)]
pub enum CheckFailure {
    /// Exit 2: the chart or the options are unusable.
    #[error("{0}")]
    BadInput(String),
    /// Exit 3: helm or a temporary directory is missing.
    #[error("{0}")]
    HostNotReady(String),
}

/// values.yaml and the text of every template, for the key check.
struct ChartFiles {
    values: Value,
    /// (file relative to the chart, text).
    templates: Vec<(String, String)>,
}

impl ChartFiles {
    fn read(chart: &Path) -> Result<ChartFiles, String> {
        let text = std::fs::read_to_string(chart.join("values.yaml"))
            .map_err(|e| format!("{}: {e}", chart.join("values.yaml").display()))?;
        let values: Value = serde_norway::from_str(&text)
            .map_err(|e| format!("{}: {e}", chart.join("values.yaml").display()))?;
        let mut templates = Vec::new();
        // helm-toolkit's snippets read the parent's values too.
        let mut stack = vec![chart.join("templates")];
        for (_, rel) in super::render::file_dependencies(chart).map_err(|e| e.to_string())? {
            stack.push(chart.join(rel).join("templates"));
        }
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.filter_map(Result::ok) {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(t) = std::fs::read_to_string(&p) {
                    let rel = p.strip_prefix(chart).unwrap_or(&p).display().to_string();
                    templates.push((rel, t));
                }
            }
        }
        templates.sort();
        Ok(ChartFiles { values, templates })
    }
}

/// Leaf paths of a values tree: maps recurse; lists, scalars, null and
/// empty maps are leaves (helm replaces them whole).
fn leaf_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(child, &p, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

fn has_path(v: &Value, path: &str) -> bool {
    let mut cur = v;
    for part in path.split('.') {
        match cur.get(part) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    true
}

fn override_keys(opts: &ChartOptions, chart: &ChartFiles) -> Vec<CheckRow> {
    let mut keys = Vec::new();
    leaf_paths(&values_override(opts), "", &mut keys);
    for f in &opts.values_files {
        if let Some(v) = std::fs::read_to_string(f)
            .ok()
            .and_then(|t| serde_norway::from_str::<Value>(&t).ok())
        {
            leaf_paths(&v, "", &mut keys);
        }
    }
    keys.extend(
        secret_set_strings(opts)
            .into_iter()
            .map(|(k, _)| k.to_string()),
    );
    keys.sort();
    keys.dedup();
    let mut rows = Vec::new();
    let mut ignored = Vec::new();
    for key in &keys {
        if has_path(&chart.values, key) {
            continue;
        }
        let needle = format!("Values.{key}");
        if chart.templates.iter().any(|(_, t)| t.contains(&needle)) {
            continue;
        }
        ignored.push(key.clone());
    }
    let n = keys.len();
    if ignored.is_empty() {
        rows.push(CheckRow {
            check: "override-keys",
            subject: format!("{n} keys"),
            ok: true,
            detail: "each is in values.yaml or read by a template".into(),
            file: "values.yaml".into(),
        });
    }
    for key in ignored {
        rows.push(CheckRow {
            check: "override-keys",
            subject: key.clone(),
            ok: false,
            detail: format!(
                "the run sets it, but it is neither in values.yaml nor read as .Values.{key} by a template: helm ignores it"
            ),
            file: "values.yaml, templates/".into(),
        });
    }
    rows
}

fn find<'a>(objects: &'a [RenderedObject], kind: &str, name: &str) -> Option<&'a RenderedObject> {
    objects.iter().find(|o| o.kind == kind && o.name == name)
}

/// The namespace an object lands in: its own, or the release's.
fn in_namespace(o: &RenderedObject, ns: &str) -> Result<(), String> {
    match &o.namespace {
        Some(n) if n != ns => Err(format!(
            "rendered in namespace {n}, the run reads namespace {ns}"
        )),
        _ => Ok(()),
    }
}

fn row(
    check: &'static str,
    subject: String,
    result: Result<String, String>,
    file: &str,
) -> CheckRow {
    let (ok, detail) = match result {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    CheckRow {
        check,
        subject,
        ok,
        detail,
        file: if file.is_empty() {
            "templates/".into()
        } else {
            file.trim_start_matches("maas/").to_string()
        },
    }
}

fn replicas(o: &RenderedObject) -> i64 {
    match o.kind.as_str() {
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            o.value["spec"]["replicas"].as_i64().unwrap_or(1)
        }
        _ => 1,
    }
}

fn pod_spec(o: &RenderedObject) -> Option<&Value> {
    match o.kind.as_str() {
        "Deployment" | "StatefulSet" | "Job" | "DaemonSet" | "ReplicaSet" => {
            Some(&o.value["spec"]["template"]["spec"])
        }
        "CronJob" => Some(&o.value["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        "Pod" => Some(&o.value["spec"]),
        _ => None,
    }
}

fn pod_labels(o: &RenderedObject) -> &Value {
    match o.kind.as_str() {
        "Pod" => &o.value["metadata"]["labels"],
        _ => &o.value["spec"]["template"]["metadata"]["labels"],
    }
}

/// `helm test` pods are not installed by `helm upgrade --install`.
fn is_test_hook(o: &RenderedObject) -> bool {
    o.value["metadata"]["annotations"]["helm.sh/hook"]
        .as_str()
        .is_some_and(|h| h.split(',').any(|x| x.trim().starts_with("test")))
}

/// Workloads that start pods on install: replicas > 0, no test hooks.
fn running(objects: &[RenderedObject]) -> impl Iterator<Item = &RenderedObject> {
    objects
        .iter()
        .filter(|o| pod_spec(o).is_some() && !is_test_hook(o) && replicas(o) > 0)
}

fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers"]
        .into_iter()
        .flat_map(move |k| spec[k].as_array().into_iter().flatten())
}

fn planned_objects(
    opts: &ChartOptions,
    plan: &ChartPlan,
    objects: &[RenderedObject],
) -> Vec<CheckRow> {
    let ns = &opts.namespace;
    let mut rows = Vec::new();
    for w in deployment_waits(opts) {
        let subject = w.target.object();
        let (result, file) = match &w.target {
            WaitTarget::JobComplete { name } => match find(objects, "Job", name) {
                Some(o) => (
                    in_namespace(o, ns).map(|_| format!("Job rendered ({})", w.why)),
                    o.source.clone(),
                ),
                None => (
                    Err(format!(
                        "no Job {name} is rendered; the run waits for it to complete"
                    )),
                    String::new(),
                ),
            },
            WaitTarget::StatefulSetReady { name } => match find(objects, "StatefulSet", name) {
                Some(o) => (
                    in_namespace(o, ns).map(|_| "StatefulSet rendered".into()),
                    o.source.clone(),
                ),
                None => (
                    Err(format!("no StatefulSet {name} is rendered")),
                    String::new(),
                ),
            },
            WaitTarget::PodsReady {
                statefulset,
                replicas: want,
            } => match find(objects, "StatefulSet", statefulset) {
                Some(o) => {
                    let have = replicas(o);
                    let r = in_namespace(o, ns).and_then(|_| {
                        if have == i64::from(*want) {
                            Ok(format!(
                                "{have} replica(s), pods {statefulset}-0..{}",
                                have - 1
                            ))
                        } else {
                            Err(format!(
                                "renders {have} replica(s), the run waits for {want}"
                            ))
                        }
                    });
                    (r, o.source.clone())
                }
                None => (
                    Err(format!("no StatefulSet {statefulset} is rendered")),
                    String::new(),
                ),
            },
            WaitTarget::SecretKey { name, key } => {
                // Not rendered: a job writes it. Find the job that does.
                let creator = objects.iter().filter(|o| o.kind == "Job").find(|o| {
                    pod_spec(o)
                        .is_some_and(|s| containers(s).any(|c| env_is(c, "SECRET_NAME", name)))
                });
                match creator {
                    Some(o) => {
                        let spec = pod_spec(o).expect("a job has a pod spec");
                        let in_ns = containers(spec).any(|c| env_is(c, "SECRET_NAMESPACE", ns));
                        let r = if in_ns {
                            Ok(format!(
                                "written by job/{} (SECRET_NAME, SECRET_NAMESPACE {ns}); key {key}",
                                o.name
                            ))
                        } else {
                            Err(format!(
                                "job/{} writes it, but not in namespace {ns} (conf.maas.credentials.secret.namespace)",
                                o.name
                            ))
                        };
                        (r, o.source.clone())
                    }
                    None => (
                        Err(format!(
                            "no rendered Job writes Secret {name} (env SECRET_NAME); the run reads its key {key}"
                        )),
                        String::new(),
                    ),
                }
            }
        };
        rows.push(row("objects", subject, result, &file));
    }
    // The port-forwards, as the plan runs them: `port-forward ... OBJ :PORT`.
    for stage in &plan.stages {
        for step in &stage.steps {
            let Step::Background { cmd, .. } = step else {
                continue;
            };
            let argv = cmd.argv();
            let (Some(obj), Some(port)) = (argv.get(argv.len().wrapping_sub(2)), argv.last())
            else {
                continue;
            };
            let port: i64 = port.trim_start_matches(':').parse().unwrap_or(-1);
            let subject = format!("port-forward {obj} :{port}");
            let (result, file) = port_forward_target(objects, ns, obj, port);
            rows.push(row("objects", subject, result, &file));
        }
    }
    // The run's Service postgresql is what the chart's db secrets point at.
    for secret in ["maas-db-admin", "maas-db-user"] {
        let want = format!("postgresql.{ns}.svc.cluster.local");
        let (result, file) = match find(objects, "Secret", secret).and_then(secret_data) {
            Some((data, src)) => {
                let host = data.get("DATABASE_HOST").cloned().unwrap_or_default();
                let port = data.get("DATABASE_PORT").cloned().unwrap_or_default();
                let r = if (host == want || host == "postgresql") && port == "5432" {
                    Ok(format!(
                        "DATABASE_HOST {host}:{port}: the run's Service postgresql"
                    ))
                } else {
                    Err(format!(
                        "DATABASE_HOST {host}:{port}; the run serves Postgres as Service postgresql:5432 in {ns}"
                    ))
                };
                (r, src)
            }
            None => (
                Err(format!("no Secret {secret} is rendered (db-init reads it)")),
                String::new(),
            ),
        };
        rows.push(row("objects", format!("secret/{secret}"), result, &file));
    }
    rows
}

fn env_is(container: &Value, name: &str, value: &str) -> bool {
    container["env"].as_array().is_some_and(|env| {
        env.iter()
            .any(|e| e["name"] == name && e["value"].as_str() == Some(value))
    })
}

/// A rendered Secret's data, decoded (`data` is base64, `stringData` not).
fn secret_data(o: &RenderedObject) -> Option<(BTreeMap<String, String>, String)> {
    let s: k8s_openapi::api::core::v1::Secret = serde_json::from_value(o.value.clone()).ok()?;
    let mut out: BTreeMap<String, String> = s
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    out.extend(s.string_data.unwrap_or_default());
    Some((out, o.source.clone()))
}

fn port_forward_target(
    objects: &[RenderedObject],
    ns: &str,
    obj: &str,
    port: i64,
) -> (Result<String, String>, String) {
    if let Some(name) = obj.strip_prefix("service/") {
        let Some(o) = find(objects, "Service", name) else {
            return (Err(format!("no Service {name} is rendered")), String::new());
        };
        let ports = o.value["spec"]["ports"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let r = in_namespace(o, ns).and_then(|_| {
            ports
                .iter()
                .find(|p| p["port"].as_i64() == Some(port))
                .map(|p| format!("port {port} -> {}", p["targetPort"]))
                .ok_or_else(|| format!("Service {name} has no port {port}"))
        });
        return (r, o.source.clone());
    }
    if let Some(pod) = obj.strip_prefix("pod/") {
        // A StatefulSet's pod: NAME-ORDINAL.
        let found = pod.rsplit_once('-').and_then(|(sts, ord)| {
            let ord: i64 = ord.parse().ok()?;
            find(objects, "StatefulSet", sts).map(|o| (o, ord))
        });
        let Some((o, ord)) = found else {
            return (
                Err(format!("no StatefulSet renders pod {pod}")),
                String::new(),
            );
        };
        let spec = pod_spec(o).expect("a statefulset has a pod spec");
        let host_net = spec["hostNetwork"].as_bool() == Some(true);
        let declared = containers(spec).any(|c| {
            c["ports"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["containerPort"].as_i64() == Some(port)))
        });
        let r = in_namespace(o, ns).and_then(|_| {
            if ord >= replicas(o) {
                Err(format!("{} renders {} replica(s): no pod {pod}", o.name, replicas(o)))
            } else if declared || host_net {
                Ok(format!(
                    "pod of statefulset/{}; port {port} {}",
                    o.name,
                    if declared { "declared" } else { "on the host network" }
                ))
            } else {
                Err(format!("no container of {pod} declares port {port} and the pod is not on the host network"))
            }
        });
        return (r, o.source.clone());
    }
    (
        Err(format!(
            "the run forwards to {obj}, which the check does not know"
        )),
        String::new(),
    )
}

fn images(
    opts: &ChartOptions,
    objects: &[RenderedObject],
    settings: &CheckSettings,
) -> Vec<CheckRow> {
    let loaded: BTreeSet<String> = images_to_load(opts).into_iter().collect();
    // image -> (first workload, its template)
    let mut used: BTreeMap<String, (String, String)> = BTreeMap::new();
    for o in running(objects) {
        let spec = pod_spec(o).expect("running() has pod specs");
        for c in containers(spec) {
            if let Some(img) = c["image"].as_str() {
                used.entry(img.to_string()).or_insert_with(|| {
                    (
                        format!("{}/{}", o.kind.to_lowercase(), o.name),
                        o.source.clone(),
                    )
                });
            }
        }
    }
    let mut rows = Vec::new();
    for (image, (by, file)) in &used {
        let r = if loaded.contains(image) {
            Ok(format!("run by {by}; the run loads it into kind"))
        } else {
            Err(format!(
                "run by {by}, but the run does not load it and nodes pull nothing (set images.tags.* or build and load it)"
            ))
        };
        rows.push(row("images", image.clone(), r, file));
    }
    let builds = planned_builds(opts);
    for build in &builds {
        rows.push(image_build_row(build, settings.require_local_images));
    }
    if settings.require_local_images {
        for image in &loaded {
            if builds.iter().any(|b| &b.image == image) {
                continue; // built by the run (the images-build row)
            }
            let r = if present_locally(image) {
                Ok("present in the local docker (kind load)".into())
            } else {
                Err("not in the local docker: build or tag it before the run (docs/chart.md, Values override: images.tags)".into())
            };
            rows.push(row("images-local", image.clone(), r, "values.yaml"));
        }
    }
    rows
}

/// `--build-images`: the Dockerfile is there and (on a real run) the base
/// image it starts from is local, since nothing may be pulled.
fn image_build_row(build: &ImageBuild, require_local_base: bool) -> CheckRow {
    let dockerfile = build.dockerfile().display().to_string();
    let r = match required_base(build) {
        Err(e) => Err(e.to_string()),
        Ok(base) if require_local_base && !present_locally(&base) => Err(format!(
            "{dockerfile} starts FROM {base}, which is not in the local docker and would be pulled: load or build it, or pass --image-base IMAGE"
        )),
        Ok(base) => Ok(format!("built from {dockerfile} FROM {base}")),
    };
    row("images-build", build.image.clone(), r, &dockerfile)
}

/// The kind workers' labels: from the kind config the run uses (generated
/// or `--kind-config`); a reused cluster is labelled by the plan's kubectl
/// steps (every worker the chart's label, the racks the rack label).
/// A kind worker: a name for messages, its labels.
type KindNode = (String, BTreeMap<String, String>);

fn kind_nodes(opts: &ChartOptions) -> Result<Vec<KindNode>, String> {
    let text = match &opts.cluster {
        ClusterSource::Create { config: None } => kind_config_yaml(opts),
        ClusterSource::Create { config: Some(p) } => {
            std::fs::read_to_string(p).map_err(|e| format!("--kind-config {}: {e}", p.display()))?
        }
        ClusterSource::Reuse { .. } => {
            let racks = super::kind_config::rack_node_names(opts);
            return Ok(super::kind_config::worker_names(opts)
                .into_iter()
                .map(|n| {
                    let mut l = BTreeMap::from([(
                        CONTROL_PLANE_LABEL.0.to_string(),
                        CONTROL_PLANE_LABEL.1.to_string(),
                    )]);
                    if racks.contains(&n) {
                        l.insert(RACK_LABEL.0.into(), RACK_LABEL.1.into());
                    }
                    (n, l)
                })
                .collect());
        }
    };
    let v: Value = serde_norway::from_str(&text).map_err(|e| format!("kind config: {e}"))?;
    let mut out = Vec::new();
    for (i, n) in v["nodes"].as_array().into_iter().flatten().enumerate() {
        // kind taints its control plane: the chart's pods land on workers.
        if n["role"].as_str() != Some("worker") {
            continue;
        }
        let labels = n["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), String::from),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push((format!("worker #{i}"), labels));
    }
    Ok(out)
}

fn expression_holds(expr: &Value, labels: &BTreeMap<String, String>) -> bool {
    let key = expr["key"].as_str().unwrap_or_default();
    let values: Vec<&str> = expr["values"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let have = labels.get(key).map(String::as_str);
    match expr["operator"].as_str().unwrap_or_default() {
        "In" => have.is_some_and(|h| values.contains(&h)),
        "NotIn" => have.is_none_or(|h| !values.contains(&h)),
        "Exists" => have.is_some(),
        "DoesNotExist" => have.is_none(),
        _ => false,
    }
}

fn selector_matches(selector: &Value, labels: &Value) -> bool {
    let get = |k: &str| labels[k].as_str().map(String::from);
    let as_map: BTreeMap<String, String> = labels
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let labels_ok = selector["matchLabels"]
        .as_object()
        .is_none_or(|m| m.iter().all(|(k, v)| get(k).as_deref() == v.as_str()));
    let exprs_ok = selector["matchExpressions"]
        .as_array()
        .is_none_or(|a| a.iter().all(|e| expression_holds(e, &as_map)));
    labels_ok && exprs_ok
}

fn scheduling(objects: &[RenderedObject], nodes: &[KindNode]) -> Vec<CheckRow> {
    let mut rows = Vec::new();
    for o in running(objects) {
        let spec = pod_spec(o).expect("running() has pod specs");
        let selector: BTreeMap<String, String> = spec["nodeSelector"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let eligible: Vec<&String> = nodes
            .iter()
            .filter(|(_, labels)| selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
            .filter(|(_, labels)| {
                terms.is_empty()
                    || terms.iter().any(|t| {
                        t["matchExpressions"]
                            .as_array()
                            .is_none_or(|a| a.iter().all(|e| expression_holds(e, labels)))
                    })
            })
            .map(|(n, _)| n)
            .collect();
        // Required anti-affinity against its own pods per hostname: one pod per node.
        let own = pod_labels(o);
        let one_per_node =
            spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                .as_array()
                .is_some_and(|a| {
                    a.iter().any(|t| {
                        t["topologyKey"] == "kubernetes.io/hostname"
                            && selector_matches(&t["labelSelector"], own)
                    })
                });
        let need = if one_per_node {
            replicas(o) as usize
        } else {
            1
        };
        let sel_text = if selector.is_empty() {
            "no nodeSelector".to_string()
        } else {
            selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let r = if eligible.len() >= need {
            Ok(format!(
                "{sel_text}: {} worker(s) match{}",
                eligible.len(),
                if one_per_node {
                    format!(", {need} needed (required anti-affinity)")
                } else {
                    String::new()
                }
            ))
        } else {
            Err(format!(
                "{sel_text}{}: {} of the kind config's workers match, {need} needed; label nodes (kind config `labels:`) or change labels.* in the override",
                if terms.is_empty() {
                    ""
                } else {
                    " + required node affinity"
                },
                eligible.len()
            ))
        };
        rows.push(row(
            "scheduling",
            format!("{}/{}", o.kind.to_lowercase(), o.name),
            r,
            &o.source,
        ));
    }
    rows
}

/// The workloads a run expects to start, by (kind, name).
pub fn planned_workloads(_opts: &ChartOptions) -> BTreeSet<(String, String)> {
    // 3.6's maas-enable-tls runs only with conf.maas.tls.enabled (off by
    // default, and the override leaves it off): not planned on either pin.
    [
        ("Job", "maas-db-init"),
        ("Job", "maas-db-sync"),
        ("Job", "maas-bootstrap-admin-user"),
        ("Job", "maas-import-resources"),
        ("Job", "maas-export-api-key"),
        ("StatefulSet", "maas-region"),
        ("StatefulSet", "maas-rack"),
        ("StatefulSet", "maas-syslog"),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect()
}

fn workloads(opts: &ChartOptions, objects: &[RenderedObject]) -> Vec<CheckRow> {
    let planned = planned_workloads(opts);
    let mut rows = Vec::new();
    let mut seen = BTreeSet::new();
    for o in running(objects) {
        let key = (o.kind.clone(), o.name.clone());
        let subject = format!("{}/{}", o.kind.to_lowercase(), o.name);
        let r = if planned.contains(&key) {
            Ok(format!("planned ({} pod(s))", replicas(o)))
        } else {
            Err(format!(
                "not planned: starts {} pod(s) on install; disable it in the override (manifests.* or pod.replicas.*) or plan for it",
                replicas(o)
            ))
        };
        seen.insert(key);
        rows.push(row("workloads", subject, r, &o.source));
    }
    for (kind, name) in planned.difference(&seen) {
        rows.push(row(
            "workloads",
            format!("{}/{}", kind.to_lowercase(), name),
            Err("planned, but the render starts no such workload".into()),
            "",
        ));
    }
    rows
}

fn secrets(opts: &ChartOptions, objects: &[RenderedObject]) -> Vec<CheckRow> {
    let mut rows = Vec::new();
    if opts.chart_meta.takes_region_secret() {
        // The run's own secret: its format only, never its value.
        rows.push(row(
            "secrets",
            "region secret (the run's)".into(),
            if is_region_secret(&opts.secrets.region_secret) {
                Ok("32 lowercase hex digits: MAAS's a2b_hex reads it".into())
            } else {
                Err(format!("{REGION_SECRET_KEY} must be 32 lowercase hex digits (MAAS reads it with a2b_hex)"))
            },
            "values.yaml",
        ));
        // What the chart makes of a well-formed one: mounted unchanged.
        let rendered = objects
            .iter()
            .filter(|o| o.kind == "Secret")
            .filter_map(secret_data)
            .find(|(d, _)| d.contains_key("REGION_SECRET"));
        let (r, file) = match rendered {
            Some((d, src)) => (
                if is_region_secret(&d["REGION_SECRET"]) {
                    Ok("the chart's Secret carries it unchanged (REGION_SECRET)".into())
                } else {
                    Err("the chart's Secret REGION_SECRET is not the hex value passed".into())
                },
                src,
            ),
            None => (
                Err(format!(
                    "no rendered Secret holds REGION_SECRET from {REGION_SECRET_KEY}"
                )),
                String::new(),
            ),
        };
        rows.push(row("secrets", "region secret (rendered)".into(), r, &file));
    } else {
        rows.push(row(
            "secrets",
            "region secret".into(),
            Ok(
                "the region makes and exports its own (export-secret-key); the run passes none"
                    .into(),
            ),
            "templates/statefulset-region.yaml",
        ));
    }
    // db-init interpolates the passwords into SQL and connection strings.
    let s = &opts.secrets;
    for (what, value) in [
        (
            "endpoints.maas_db.auth.admin.password",
            &s.db_admin_password,
        ),
        ("endpoints.maas_db.auth.user.password", &s.db_user_password),
        (
            "endpoints.maas_region.auth.admin.password",
            &s.admin_password,
        ),
    ] {
        let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric());
        rows.push(row(
            "secrets",
            what.into(),
            if ok {
                Ok("letters and digits only (safe in the chart's SQL and URIs)".into())
            } else {
                Err(
                    "must be letters and digits only: the chart's scripts interpolate it unquoted"
                        .into(),
                )
            },
            "templates/bin/_db-init.sh.tpl",
        ));
    }
    rows
}

fn cgroups(opts: &ChartOptions, objects: &[RenderedObject]) -> Vec<CheckRow> {
    let mut rows = Vec::new();
    let host = if opts.host_cgroup_v2 { "v2" } else { "v1" };
    for o in running(objects) {
        let spec = pod_spec(o).expect("running() has pod specs");
        let mounts_cgroup = spec["volumes"].as_array().is_some_and(|vs| {
            vs.iter()
                .any(|v| v["hostPath"]["path"].as_str() == Some("/sys/fs/cgroup"))
        });
        if !mounts_cgroup {
            continue;
        }
        let r = if !opts.host_cgroup_v2 {
            Ok(format!(
                "mounts the host's /sys/fs/cgroup; host cgroup {host}: systemd in the pod sees v1 as it expects"
            ))
        } else if opts.chart_meta.has_cgroup_switch() {
            Err("host cgroup v2 and the pod still mounts /sys/fs/cgroup: conf.maas.cgroups.disable_cgroups_* did not take".into())
        } else {
            Err(format!(
                "mounts the host's /sys/fs/cgroup and runs systemd; this host has cgroup v2 and chart {} has no switch for it (3.6's conf.maas.cgroups came later): use a cgroup v1 host (systemd.unified_cgroup_hierarchy=0) for the nightly",
                opts.chart_meta.version
            ))
        };
        rows.push(row(
            "cgroups",
            format!("{}/{}", o.kind.to_lowercase(), o.name),
            r,
            &o.source,
        ));
    }
    if rows.is_empty() {
        rows.push(row(
            "cgroups",
            format!("host cgroup {host}"),
            Ok("no pod mounts the host's /sys/fs/cgroup".into()),
            "templates/",
        ));
    }
    rows
}
