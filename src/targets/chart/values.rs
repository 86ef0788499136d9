//! The values override the harness hands `helm upgrade --install`: what an
//! operator changes to run the 2.8 chart on kind (docs/chart.md, "Values").
//!
//! Secrets are not in this file: the helm command carries them as
//! `--set-string` secret arguments, so the file can sit in the run directory.

use serde_json::{Value, json};

use super::options::ChartOptions;
use super::pin::ChartPin;

/// Label every kind worker carries: the chart's default node selector for
/// region, jobs, syslog and tests.
pub const CONTROL_PLANE_LABEL: (&str, &str) = ("ucp-control-plane", "enabled");
/// Label only the rack's workers carry, so the harness knows before
/// install which node containers to wire to the lab.
pub const RACK_LABEL: (&str, &str) = ("maas-e2e/rack", "enabled");
/// kind's default StorageClass (local-path-provisioner).
pub const STORAGE_CLASS: &str = "standard";

/// `images.tags` keys of the MAAS images, and the image each names, per
/// pin (3.6 publishes only -noble names; its TLS job uses the region image).
fn maas_images(pin: ChartPin) -> &'static [(&'static str, &'static str)] {
    match pin {
        ChartPin::Maas28 => &[
            ("db_sync", "maas-region-controller"),
            ("maas_region", "maas-region-controller"),
            ("bootstrap", "maas-region-controller"),
            ("export_api_key", "maas-region-controller"),
            ("maas_syslog", "maas-region-controller"),
            ("maas_rack", "maas-rack-controller"),
            ("maas_cache", "sstream-cache"),
        ],
        ChartPin::Maas36 => &[
            ("db_sync", "maas-region-controller-noble"),
            ("maas_region", "maas-region-controller-noble"),
            ("bootstrap", "maas-region-controller-noble"),
            ("export_api_key", "maas-region-controller-noble"),
            ("maas_syslog", "maas-region-controller-noble"),
            ("enable_tls", "maas-region-controller-noble"),
            ("maas_rack", "maas-rack-controller-noble"),
            ("maas_cache", "sstream-cache-focal"),
        ],
    }
}

/// Repository of the MAAS images by default: built locally from the chart
/// checkout's images/ (`docker build -t maas-e2e/NAME:TAG images/NAME`) and
/// loaded into kind; nothing is pulled.
pub const DEFAULT_IMAGE_REPO: &str = "maas-e2e";

/// db-init's psql: the chart's own (postgres:9.5 at the 2.8 pin) has no
/// SCRAM; this Debian-built image has psql 15 and is loaded like the rest.
pub const DB_INIT_IMAGE: &str = "maas-e2e/postgres:15-bookworm";

/// The region's in-cluster URL: Service maas-region, port 80 -> 5240.
pub fn maas_url(namespace: &str) -> String {
    format!("http://maas-region.{namespace}.svc.cluster.local/MAAS")
}

/// `images.tags.*` -> image reference: the MAAS images pinned to the
/// chart's MAAS version (or --image-repo/--image-tag), db-init's psql.
pub fn image_overrides(opts: &ChartOptions) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = maas_images_used(opts)
        .map(|(key, image)| (key, maas_image_reference(opts, image)))
        .collect();
    out.push(("db_init", DB_INIT_IMAGE.to_string()));
    if let Some(dep) = &opts.dep_check_image {
        out.push(("dep_check", dep.clone()));
    }
    out
}

/// The MAAS images the run uses: (`images.tags` key, image name, which is
/// also its directory under the checkout's images/).
fn maas_images_used(opts: &ChartOptions) -> impl Iterator<Item = (&'static str, &'static str)> {
    maas_images(opts.chart_meta.pin)
        .iter()
        .filter(|(key, _)| opts.cache || *key != "maas_cache")
        .copied()
}

/// `REPO/NAME:TAG` of one MAAS image.
fn maas_image_reference(opts: &ChartOptions, image: &str) -> String {
    let repo = opts.image_repo.as_deref().unwrap_or(DEFAULT_IMAGE_REPO);
    let tag = opts
        .image_tag
        .clone()
        .unwrap_or_else(|| opts.chart_meta.maas_version().to_string());
    format!("{repo}/{image}:{tag}")
}

/// The MAAS images the run uses as (image name, `REPO/NAME:TAG`): what
/// `--build-images` builds from images/NAME.
pub fn maas_image_overrides(opts: &ChartOptions) -> Vec<(&'static str, String)> {
    maas_images_used(opts)
        .map(|(_, image)| (image, maas_image_reference(opts, image)))
        .collect()
}

/// Every image the planned workloads run, in a stable order: the
/// overrides and the chart's own init container (kubernetes-entrypoint,
/// `dep_check`). The run loads each into kind; `chart check` compares this
/// list with the render.
pub fn images_to_load(opts: &ChartOptions) -> Vec<String> {
    let mut out: Vec<String> = image_overrides(opts).into_iter().map(|(_, i)| i).collect();
    if opts.dep_check_image.is_none()
        && let Some(dep) = opts.chart_meta.image_tags.get("dep_check")
    {
        out.push(dep.clone());
    }
    out.sort();
    out.dedup();
    out
}

fn selector(key: &str, value: &str) -> Value {
    json!({ "node_selector_key": key, "node_selector_value": value })
}

/// `dependencies.static` as the chart has it at 2d5b698, less every
/// `maas_ingress` entry (the ingress is disabled). Helm replaces lists
/// whole, so each list is restated.
fn dependencies_without_ingress() -> Value {
    let region = json!({ "service": "maas_region", "endpoint": "internal" });
    let db = json!({ "service": "maas_db", "endpoint": "internal" });
    json!({
        "rack_controller": { "services": [region], "jobs": ["maas-export-api-key"] },
        "region_controller": { "jobs": ["maas-db-sync"], "services": [db] },
        "db_init": { "services": [db] },
        "db_sync": { "jobs": ["maas-db-init"] },
        "bootstrap_admin_user": { "jobs": ["maas-db-sync"], "services": [region, db] },
        "import_resources": { "jobs": ["maas-bootstrap-admin-user"], "services": [region, db] },
        "export_api_key": { "jobs": ["maas-bootstrap-admin-user"], "services": [region, db] },
    })
}

/// The override as a JSON value (keys sorted when written).
pub fn values_override(opts: &ChartOptions) -> Value {
    let (cp_key, cp_value) = CONTROL_PLANE_LABEL;
    let (rack_key, rack_value) = RACK_LABEL;
    let mut values = json!({
        "labels": {
            "rack": selector(rack_key, rack_value),
            "region": selector(cp_key, cp_value),
            "ingress": selector(cp_key, cp_value),
            "syslog": selector(cp_key, cp_value),
            "test": selector(cp_key, cp_value),
        },
        "pod": {
            // Required anti-affinity: one rack per labelled node. The region
            // runs once: two regions would race the first db upgrade.
            // ingress_errors: read by its template though values.yaml lacks
            // it; 0 keeps the gcr.io 404 server off the rack's node.
            "replicas": { "rack": opts.rack_replicas, "region": 1, "syslog": 1, "ingress_errors": 0 },
        },
        "storage": {
            "rackd": { "pvc": { "class_name": STORAGE_CLASS } },
            "syslog": { "pvc": { "class_name": STORAGE_CLASS } },
        },
        "conf": {
            "cache": { "enabled": opts.cache },
            "maas": {
                "url": { "maas_url": maas_url(&opts.namespace) },
                "credentials": { "secret": { "namespace": opts.namespace, "name": "maas-api-key" } },
            },
        },
        "manifests": {
            "maas_ingress": false,
            "configmap_ingress": false,
            "ingress_region": false,
        },
        "dependencies": { "static": dependencies_without_ingress() },
    });
    if !opts.apparmor {
        // helm-toolkit writes no AppArmor annotation when the type is null.
        values["pod"]["mandatory_access_control"] = json!({ "type": null });
    }
    if opts.chart_meta.has_cgroup_switch() && opts.host_cgroup_v2 {
        // The 3.6 chart's own switch for cgroup v2 hosts (values.yaml).
        values["conf"]["maas"]["cgroups"] =
            json!({ "disable_cgroups_region": true, "disable_cgroups_rack": true });
    }
    let tags: serde_json::Map<String, Value> = image_overrides(opts)
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect();
    values["images"] = json!({ "tags": tags });
    values
}

/// The override as YAML, with a header saying where it came from.
pub fn values_override_yaml(opts: &ChartOptions) -> String {
    let body =
        serde_norway::to_string(&values_override(opts)).expect("JSON values serialise as YAML");
    format!(
        "# Generated by maas-e2e for run {run}: overrides for the MaaS chart on kind.\n\
         # Secrets (db passwords, region secret, admin password) are passed to helm\n\
         # as --set-string arguments, not written here.\n{body}",
        run = opts.run_id
    )
}

/// `--set-string` pairs carrying the run's secrets (key, value). The 3.6
/// chart has no region secret value: its region makes and exports one.
pub fn secret_set_strings(opts: &ChartOptions) -> Vec<(&'static str, String)> {
    let s = &opts.secrets;
    let mut out = vec![
        (
            "endpoints.maas_db.auth.admin.password",
            s.db_admin_password.clone(),
        ),
        (
            "endpoints.maas_db.auth.user.password",
            s.db_user_password.clone(),
        ),
        (
            "endpoints.maas_region.auth.admin.password",
            s.admin_password.clone(),
        ),
    ];
    if opts.chart_meta.takes_region_secret() {
        out.insert(2, (REGION_SECRET_KEY, s.region_secret.clone()));
    }
    out
}

/// Where the 2.8 chart takes the region secret from.
pub const REGION_SECRET_KEY: &str = "secrets.maas_region.value";
