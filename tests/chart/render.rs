//! The chart target against the REAL chart and the REAL Helm engine: the
//! two pinned upstream trees in $MAAS_E2E_SUT_DIR (default ../shared/sut
//! beside the repo), rendered by ci/bin/helm (Helm v4's engine from PyPI's
//! helm-python-sdk, in $MAAS_E2E_VENV). Nothing here is mocked: `chart
//! check` runs as a binary, db-init's script runs unchanged from the
//! rendered ConfigMap with the psql of the image the override names,
//! against a real Postgres container with scram-sha-256.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use maas_e2e::cmd::Cmd;
use maas_e2e::targets::chart::ChartOptions;
use maas_e2e::targets::chart::options::{is_region_secret, region_secret_from_seed};
use maas_e2e::targets::chart::pin::ChartMeta;
use maas_e2e::targets::chart::postgres::{
    ADMIN_ROLE, MAAS_DB, MAAS_ROLE, PostgresContainerSpec, READY_LINE, connect, start_container,
};
use maas_e2e::targets::chart::render::{RenderedObject, render};
use maas_e2e::targets::chart::render_check::{CheckSettings, check};
use maas_e2e::targets::chart::values::DB_INIT_IMAGE;
use maas_e2e::testing::require;

/// The charts' directory: $MAAS_E2E_SUT_DIR, else ../shared/sut.
pub fn sut_dir() -> PathBuf {
    std::env::var_os("MAAS_E2E_SUT_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/sut"),
        PathBuf::from,
    )
}

pub fn pin_chart(pin: &str) -> PathBuf {
    sut_dir().join(pin).join("charts/maas")
}

/// ci/bin/helm, the engine-backed helm.
pub fn engine_helm() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/bin/helm")
}

/// PATH for children: ci/bin first (its `helm` is the engine).
pub fn path_with_engine() -> String {
    format!(
        "{}:{}",
        engine_helm().parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The engine installed and the pin present; under CI both must hold.
pub fn engine_and_pin(pin: &str) -> bool {
    let venv = std::env::var("MAAS_E2E_VENV").unwrap_or_else(|_| "/opt/maas-e2e/venv".into());
    let engine = Cmd::new(format!("{venv}/bin/python"))
        .args(["-c", "import helm_python"])
        .run_blocking()
        .is_ok();
    require(
        "the Helm engine (helm-python-sdk in $MAAS_E2E_VENV)",
        engine,
        "run ci/setup-python.sh",
    ) && require(
        &format!("the {pin} chart at {}", pin_chart(pin).display()),
        pin_chart(pin).join("Chart.yaml").is_file(),
        "clone the repo beside shared/ or set MAAS_E2E_SUT_DIR (README, Chart target)",
    )
}

/// The 3.6 pin renders only with helm-toolkit where its tools/helm_tk.sh
/// puts it; the shared copy may lack it (then the check must say so).
fn has_toolkit(pin: &str) -> bool {
    sut_dir()
        .join(pin)
        .join("charts/deps/helm-toolkit/Chart.yaml")
        .is_file()
}

/// A run's options for a pin, as `run --target chart` builds them.
pub fn options_for(pin: &str) -> ChartOptions {
    let chart = pin_chart(pin);
    let mut o = ChartOptions::new("render1", "/runs/render1", &chart);
    o.chart_meta = ChartMeta::read(&chart).unwrap();
    o.secrets.region_secret = region_secret_from_seed(7);
    o
}

fn check_cmd(args: &[&str], path: &str) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_maas-e2e"))
        .args(["chart", "check"])
        .args(args)
        .env("PATH", path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn engine_helm_renders_both_pins_offline_and_refuses_the_rest() {
    for pin in ["airship-maas-2.8", "airship-maas-3.6"] {
        if !engine_and_pin(pin) {
            return;
        }
        if !has_toolkit(pin) {
            eprintln!("WARNING: {pin} has no charts/deps/helm-toolkit: not rendered here");
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let chart =
            maas_e2e::targets::chart::render::copy_chart(&pin_chart(pin), tmp.path()).unwrap();
        let helm = engine_helm();
        Cmd::new(helm.display().to_string())
            .args(["dependency", "update", "--skip-refresh"])
            .arg(chart.display().to_string())
            .run_blocking()
            .unwrap();
        let text = Cmd::new(helm.display().to_string())
            .args([
                "template",
                "maas",
                &chart.display().to_string(),
                "-n",
                "maas",
            ])
            .run_blocking()
            .unwrap();
        let objs = maas_e2e::targets::chart::render::parse_stream(&text).unwrap();
        for (kind, name) in [
            ("StatefulSet", "maas-region"),
            ("StatefulSet", "maas-rack"),
            ("Job", "maas-db-init"),
            ("ConfigMap", "maas-bin"),
        ] {
            assert!(
                objs.iter().any(|o| o.kind == kind && o.name == name),
                "{pin}: {kind} {name} not rendered"
            );
        }
        assert!(objs.iter().all(|o| o.source.starts_with("maas/templates/")));
    }
    for argv in [
        &["upgrade", "--install", "maas", "x"][..],
        &["install", "maas", "x"][..],
        &["status", "maas"][..],
        &["dependency", "list", "x"][..],
    ] {
        let out = std::process::Command::new(engine_helm())
            .args(argv)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{argv:?}: {err}");
        let named = if argv[0] == "dependency" {
            format!("`helm dependency {}`", argv[1])
        } else {
            format!("`helm {}`", argv[0])
        };
        assert!(err.contains(&named), "{argv:?}: {err}");
    }
}

#[test]
fn chart_check_passes_on_the_2_8_pin() {
    let pin = "airship-maas-2.8";
    if !engine_and_pin(pin) {
        return;
    }
    let chart = pin_chart(pin).display().to_string();
    let (code, out, err) = check_cmd(&["--chart", &chart], &path_with_engine());
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("(version 0.1.2)"), "{out}");
    for row in [
        "objects        job/maas-db-init",
        "port-forward service/maas-region :80",
        "port-forward pod/maas-rack-0 :5249",
        "maas-e2e/postgres:15-bookworm",
        "region secret (rendered)",
        "cgroups",
    ] {
        assert!(out.contains(row), "{row} missing:\n{out}");
    }
    assert!(out.contains("checks hold"), "{out}");

    // Per scenario: the options its run would build (its lab, the seed).
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (s1, s2) = (
        root.join("scenarios/enlist-bios.yaml"),
        root.join("scenarios/multi-nic.yaml"),
    );
    let (code, out, err) = check_cmd(
        &[
            "--chart",
            &chart,
            &s1.display().to_string(),
            &s2.display().to_string(),
        ],
        &path_with_engine(),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.matches("# scenario ").count(), 2, "{out}");
    assert_eq!(out.matches("checks hold").count(), 2, "{out}");

    // A user's kind config whose only worker lacks the rack's label.
    let tmp = tempfile::tempdir().unwrap();
    let kind = tmp.path().join("kind.yaml");
    std::fs::write(
        &kind,
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n\
         - role: worker\n  labels:\n    ucp-control-plane: enabled\n",
    )
    .unwrap();
    let (code, out, err) = check_cmd(
        &[
            "--chart",
            &chart,
            "--kind-config",
            &kind.display().to_string(),
        ],
        &path_with_engine(),
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("templates/statefulset-rack.yaml: statefulset/maas-rack [scheduling]: maas-e2e/rack=enabled: 0 of the kind config's workers match, 1 needed"),
        "{out}"
    );
    assert_eq!(
        out.matches("[scheduling]").count(),
        1,
        "only the rack: {out}"
    );
}

#[test]
fn chart_check_on_the_3_6_pin_passes_or_names_the_missing_toolkit() {
    let pin = "airship-maas-3.6";
    if !engine_and_pin(pin) {
        return;
    }
    let chart = pin_chart(pin).display().to_string();
    let (code, out, err) = check_cmd(&["--chart", &chart], &path_with_engine());
    if has_toolkit(pin) {
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(out.contains("(version 0.2.0, appVersion 3.6.4)"), "{out}");
        assert!(
            out.contains("maas-e2e/maas-region-controller-noble:3.6.4"),
            "{out}"
        );
        // 3.6 makes its own region secret: none is passed.
        assert!(out.contains("the run passes none"), "{out}");
    } else {
        eprintln!("WARNING: {pin} lacks charts/deps/helm-toolkit; checking the error instead");
        assert_eq!(code, 2, "{out}\n{err}");
        assert!(
            err.contains("requirements.yaml: dependency helm-toolkit")
                && err.contains("tools/helm_tk.sh"),
            "{err}"
        );
    }
}

#[test]
fn chart_check_names_each_mismatch_with_its_chart_file() {
    let pin = "airship-maas-2.8";
    if !engine_and_pin(pin) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // A user's values file: turns the 404 server back on, sets a key
    // nothing reads, and schedules the rack on a label no node has.
    let extra = tmp.path().join("site.yaml");
    std::fs::write(
        &extra,
        "pod:\n  replicas:\n    ingress_errors: 1\nconf:\n  maas:\n    no_such_setting: 1\n\
         labels:\n  rack:\n    node_selector_key: site/rack\n",
    )
    .unwrap();
    let chart = pin_chart(pin).display().to_string();
    let (code, out, err) = check_cmd(
        &["--chart", &chart, "--values", &extra.display().to_string()],
        &path_with_engine(),
    );
    assert_eq!(code, 1, "{out}\n{err}");
    for want in [
        "templates/deployment-ingress-errors.yaml: deployment/maas-ingress-errors [workloads]",
        "gcr.io/google_containers/ingress-gce-404-server-with-metrics-amd64:v1.6.0 [images]",
        "conf.maas.no_such_setting [override-keys]",
        "templates/statefulset-rack.yaml: statefulset/maas-rack [scheduling]",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
}

#[test]
fn chart_check_without_helm_is_a_host_problem_and_local_images_are_named() {
    let pin = "airship-maas-2.8";
    if !engine_and_pin(pin) {
        return;
    }
    let chart = pin_chart(pin).display().to_string();
    let (code, _, err) = check_cmd(&["--chart", &chart], "/nonexistent");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("helm is not on PATH"), "{err}");

    // --local-images: each image the run loads, present or named.
    let have_docker = require(
        "a running dockerd",
        Cmd::new("docker").arg("info").run_blocking().is_ok(),
        "start it: ci/setup-host.sh --docker",
    );
    if !have_docker {
        return;
    }
    let (code, out, err) = check_cmd(&["--chart", &chart, "--local-images"], &path_with_engine());
    let opts = options_for(pin);
    let missing: Vec<String> = maas_e2e::targets::chart::values::images_to_load(&opts)
        .into_iter()
        .filter(|i| {
            Cmd::new("docker")
                .args(["image", "inspect", i])
                .run_blocking()
                .is_err()
        })
        .collect();
    assert_eq!(code, if missing.is_empty() { 0 } else { 1 }, "{out}\n{err}");
    for m in &missing {
        assert!(out.contains(&format!("{m} [images-local]")), "{m}:\n{out}");
    }
}

#[test]
fn cgroup_v2_host_fails_2_8_by_name_and_3_6_drops_the_mount() {
    for pin in ["airship-maas-2.8", "airship-maas-3.6"] {
        if !engine_and_pin(pin) {
            return;
        }
        if !has_toolkit(pin) {
            continue;
        }
        let mut opts = options_for(pin);
        opts.host_cgroup_v2 = true;
        let settings = CheckSettings {
            helm: engine_helm().display().to_string(),
            ..Default::default()
        };
        let report = check(&opts, settings).unwrap();
        let cg: Vec<_> = report
            .rows
            .iter()
            .filter(|r| r.check == "cgroups")
            .collect();
        if pin.ends_with("2.8") {
            let bad: Vec<_> = cg
                .iter()
                .filter(|r| !r.ok)
                .map(|r| r.subject.as_str())
                .collect();
            assert_eq!(
                bad,
                ["statefulset/maas-rack", "statefulset/maas-region"],
                "{}",
                report.table()
            );
            assert!(cg.iter().all(|r| r.ok || r.detail.contains("cgroup v2")));
        } else {
            assert!(report.passed(), "{}", report.table());
            assert_eq!(cg.len(), 1);
            assert!(cg[0].detail.contains("no pod mounts"), "{}", report.table());
        }
    }
}

#[test]
fn region_secret_is_what_maas_a2b_hex_reads() {
    // MAAS reads /var/lib/maas/secret with binascii.a2b_hex: the real one.
    let a2b_hex = |s: &str| {
        Cmd::new("python3")
            .args([
                "-c",
                "import binascii,sys; sys.stdout.write(binascii.a2b_hex(sys.argv[1]).hex())",
                s,
            ])
            .run_blocking()
    };
    if !require(
        "python3",
        maas_e2e::testing::have_program("python3"),
        "apt-get install python3",
    ) {
        return;
    }
    let seven = region_secret_from_seed(7);
    assert!(is_region_secret(&seven));
    assert_eq!(seven, region_secret_from_seed(7), "from the seed");
    assert_ne!(seven, region_secret_from_seed(8));
    let decoded = a2b_hex(&seven).unwrap();
    assert_eq!(decoded, seven, "16 bytes, round trip");
    assert_eq!(decoded.len() / 2, 16);
    // The old format (32 of [a-z2-9]) is what a2b_hex refuses.
    assert!(a2b_hex("abcdefghijkmnpqrstuvwxyz23456789").is_err());
    assert!(!is_region_secret("abcdefghijkmnpqrstuvwxyz23456789"));
    let random = maas_e2e::targets::chart::ChartSecrets::generate().region_secret;
    assert!(a2b_hex(&random).is_ok() && is_region_secret(&random));
}

/// Removes the test's containers and network on every exit path.
struct Docker {
    names: Vec<String>,
    network: String,
}

impl Drop for Docker {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Cmd::new("docker")
                .args(["rm", "--force", "--volumes", n])
                .run_blocking();
        }
        let _ = Cmd::new("docker")
            .args(["network", "rm", &self.network])
            .run_blocking();
    }
}

/// The env kubelet would give a container: literal values and
/// secretKeyRefs resolved against the rendered Secrets.
fn container_env(
    container: &serde_json::Value,
    objects: &[RenderedObject],
) -> Vec<(String, String)> {
    let secrets: BTreeMap<String, BTreeMap<String, String>> = objects
        .iter()
        .filter(|o| o.kind == "Secret")
        .map(|o| {
            let s: k8s_openapi::api::core::v1::Secret =
                serde_json::from_value(o.value.clone()).unwrap();
            let data = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8(v.0).unwrap()))
                .collect();
            (o.name.clone(), data)
        })
        .collect();
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match e["value"].as_str() {
                Some(v) => v.to_string(),
                None => {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    secrets[r["name"].as_str().unwrap()][r["key"].as_str().unwrap()].clone()
                }
            };
            (name, value)
        })
        .collect()
}

#[tokio::test]
async fn chart_db_init_script_runs_with_the_overridden_psql_against_scram() {
    let pin = "airship-maas-2.8";
    if !engine_and_pin(pin) || !crate::postgres::docker_with_image(DB_INIT_IMAGE) {
        return;
    }
    let opts = options_for(pin);
    let tmp = tempfile::tempdir().unwrap();
    let objects = render(&engine_helm().display().to_string(), &opts, tmp.path()).unwrap();

    // The job as rendered: its image, command, env, and the script it mounts.
    let job = objects
        .iter()
        .find(|o| o.kind == "Job" && o.name == "maas-db-init")
        .unwrap();
    let c = &job.value["spec"]["template"]["spec"]["containers"][0];
    let image = c["image"].as_str().unwrap();
    assert_eq!(image, DB_INIT_IMAGE, "the override's db_init image");
    let command: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(command[0]))
        .unwrap();
    let script = objects
        .iter()
        .find(|o| o.kind == "ConfigMap" && o.name == "maas-bin")
        .unwrap()
        .value["data"][mount["subPath"].as_str().unwrap()]
    .as_str()
    .unwrap()
    .to_string();
    let script_path = tmp.path().join("db-init.sh");
    std::fs::write(&script_path, &script).unwrap();
    std::fs::set_permissions(
        &script_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let env = container_env(c, &objects);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let host = get("DB_HOST");
    assert_eq!(host, "postgresql.maas.svc.cluster.local");

    // Postgres 15 with scram-sha-256 for host connections, on our network.
    let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    let guard = Docker {
        names: vec![
            format!("me2e-chart-dbinit-pg-{id}"),
            format!("me2e-chart-dbinit-job-{id}"),
        ],
        network: format!("me2e-chart-dbinit-{id}"),
    };
    Cmd::new("docker")
        .args([
            "network",
            "create",
            "--label",
            "maas-e2e.test=chart",
            &guard.network,
        ])
        .run_blocking()
        .unwrap();
    let (img, tag) = DB_INIT_IMAGE.rsplit_once(':').unwrap();
    let spec = PostgresContainerSpec {
        name: guard.names[0].clone(),
        image: img.into(),
        tag: tag.into(),
        network: guard.network.clone(),
        port: 5432,
        env: vec![],
        labels: vec![("maas-e2e.test".into(), "chart".into())],
        ready_line: READY_LINE.into(),
        precreate_maasdb: false,
    };
    let admin_pw = get("PGPASSWORD");
    let pg = start_container(&spec, &admin_pw, Duration::from_secs(120))
        .await
        .unwrap();
    let admin = connect("127.0.0.1", pg.host_port, ADMIN_ROLE, &admin_pw, "postgres")
        .await
        .unwrap();
    let hba: Vec<String> = admin
        .query(
            "SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        !hba.is_empty() && hba.iter().all(|m| m == "scram-sha-256"),
        "{hba:?}"
    );

    // The job, as kubelet would run it: command replaces the entrypoint,
    // the script mounted where the ConfigMap puts it, the Service name
    // resolving to the container.
    let mut run = Cmd::new("docker").args([
        "run",
        "--name",
        &guard.names[1],
        "--network",
        &guard.network,
        "--add-host",
        &format!("{host}:{}", pg.network_address),
        "--volume",
        &format!("{}:{}:ro", script_path.display(), command[0]),
        "--entrypoint",
        command[0],
    ]);
    for (k, v) in &env {
        run = run.args(["--env", &format!("{k}={v}")]);
    }
    let out = run.arg(image).run_blocking();
    let logs = Cmd::new("docker")
        .args(["logs", &guard.names[1]])
        .run_blocking()
        .unwrap_or_default();
    assert!(out.is_ok(), "db-init failed: {out:?}\n{logs}");
    let psql = Cmd::new("docker")
        .args(["run", "--rm", "--entrypoint", "psql", image, "--version"])
        .run_blocking()
        .unwrap();
    let major: u32 = psql
        .split_whitespace()
        .find_map(|w| w.split('.').next()?.parse().ok())
        .unwrap();
    assert!(major >= 10, "psql with SCRAM: {psql}");

    // What it made: database maasdb, role maas with a SCRAM password that
    // logs in over TCP (scram-sha-256) and owns nothing but is granted all.
    let user_pw = get("USER_DB_PASS");
    assert_eq!(
        (get("USER_DB_USER").as_str(), get("USER_DB_NAME").as_str()),
        (MAAS_ROLE, MAAS_DB)
    );
    let stored: String = admin
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&MAAS_ROLE],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        stored.starts_with("SCRAM-SHA-256$"),
        "password stored as SCRAM"
    );
    let maas = connect("127.0.0.1", pg.host_port, MAAS_ROLE, &user_pw, MAAS_DB)
        .await
        .unwrap();
    let db: String = maas
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(db, MAAS_DB);
    drop(guard);
}

/// Issue 12: the 3.6 pin and the sim's 3.6 profile agree on the power
/// parameters the scenarios assert. `chart check` does not expose them (they
/// come from MAAS 3.6.4's bmc_config.py in the region image and MAAS's
/// config defaults); what the chart could change is a `maas_auto_ipmi_*`
/// option or `enlist_commissioning`. Neither its files nor the harness's
/// configure calls set an ipmi option, and enlistment does not commission,
/// so the defaults the profile reports (cipher_suite_id 3, privilege_level
/// ADMIN, user maas, no K_g) hold on the pin.
#[test]
fn the_3_6_pin_leaves_maas_ipmi_defaults_the_sim_profile_reports() {
    let pin = "airship-maas-3.6";
    let chart = pin_chart(pin);
    if !require(
        &format!("the {pin} chart at {}", chart.display()),
        chart.join("Chart.yaml").is_file(),
        "clone the repo beside shared/ or set MAAS_E2E_SUT_DIR (README, Chart target)",
    ) {
        return;
    }
    let mut stack = vec![chart.clone()];
    let mut read = 0;
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(text) = std::fs::read_to_string(&p) {
            read += 1;
            assert!(
                !text.contains("maas_auto_ipmi"),
                "{} sets a maas_auto_ipmi option: the sim's 3.6 profile reports MAAS's defaults",
                p.display()
            );
        }
    }
    assert!(
        read > 10,
        "only {read} files read under {}",
        chart.display()
    );
    let values: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(chart.join("values.yaml")).unwrap())
            .unwrap();
    let mut found = None;
    let mut stack = vec![&values];
    while let Some(v) = stack.pop() {
        if let Some(o) = v.as_object() {
            if let Some(e) = o.get("enlist_commissioning") {
                found = Some(e.clone());
            }
            stack.extend(o.values());
        }
    }
    assert_eq!(
        found,
        Some(serde_json::json!(false)),
        "values.yaml enlist_commissioning"
    );
    let calls = maas_e2e::targets::chart::maas_config::configure_calls(&options_for(pin));
    assert!(!calls.is_empty());
    for c in &calls {
        assert!(
            c.params
                .iter()
                .all(|(k, v)| !k.contains("ipmi") && !v.contains("maas_auto_ipmi")),
            "{c:?}"
        );
    }
}
