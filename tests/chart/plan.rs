//! The plan: values override, kind config and whole dry-run snapshots, and
//! the properties the chart needs from them.

use maas_e2e::targets::chart::options::ClusterSource;
use maas_e2e::targets::chart::plan::files;
use maas_e2e::targets::chart::values::{values_override, values_override_yaml};
use maas_e2e::targets::chart::{ChartPlan, kind_config};

use crate::common::{default_options, reuse_options, secrets, two_racks_options};

#[test]
fn values_override_snapshot_default() {
    insta::assert_snapshot!("values_default", values_override_yaml(&default_options()));
}

#[test]
fn values_override_snapshot_two_racks() {
    insta::assert_snapshot!(
        "values_two_racks",
        values_override_yaml(&two_racks_options())
    );
}

#[test]
fn kind_config_snapshots() {
    insta::assert_snapshot!(
        "kind_config_default",
        kind_config::kind_config_yaml(&default_options())
    );
    insta::assert_snapshot!(
        "kind_config_two_racks",
        kind_config::kind_config_yaml(&two_racks_options())
    );
}

#[test]
fn dry_run_snapshots() {
    for (name, opts) in [
        ("plan_default", default_options()),
        ("plan_two_racks", two_racks_options()),
        ("plan_reuse", reuse_options()),
    ] {
        let plan = ChartPlan::new(&opts).unwrap();
        insta::assert_snapshot!(name, plan.render());
    }
}

#[test]
fn no_secret_reaches_the_dry_run() {
    for opts in [default_options(), two_racks_options(), reuse_options()] {
        let text = ChartPlan::new(&opts).unwrap().render();
        for s in secrets().values() {
            assert!(!text.contains(s), "secret {s:?} in the plan");
        }
        assert!(
            text.contains("--set-string <redacted>"),
            "helm gets its secrets as redacted args"
        );
    }
}

#[test]
fn values_follow_the_options() {
    let d = values_override(&default_options());
    assert_eq!(d["pod"]["replicas"]["rack"], 1);
    assert_eq!(d["pod"]["replicas"]["region"], 1);
    assert_eq!(d["storage"]["rackd"]["pvc"]["class_name"], "standard");
    assert_eq!(
        d["conf"]["maas"]["url"]["maas_url"],
        "http://maas-region.maas.svc.cluster.local/MAAS"
    );
    assert_eq!(
        d["conf"]["maas"]["credentials"]["secret"]["namespace"],
        "maas"
    );
    assert_eq!(d["conf"]["cache"]["enabled"], false);
    assert!(d["pod"]["mandatory_access_control"]["type"].is_null());
    // Pinned, locally built MAAS images and db-init's psql 15 by default;
    // the 404 server (gcr.io, on the rack's node) never starts.
    assert_eq!(
        d["images"]["tags"]["maas_region"],
        "maas-e2e/maas-region-controller:2.8.7"
    );
    assert_eq!(
        d["images"]["tags"]["db_init"],
        "maas-e2e/postgres:15-bookworm"
    );
    assert_eq!(d["pod"]["replicas"]["ingress_errors"], 0);
    for m in ["maas_ingress", "configmap_ingress", "ingress_region"] {
        assert_eq!(d["manifests"][m], false, "{m}");
    }
    // No dependency list still names the disabled ingress.
    let deps = serde_json::to_string(&d["dependencies"]).unwrap();
    assert!(!deps.contains("maas_ingress"), "{deps}");
    assert!(deps.contains("maas-export-api-key"));

    let r = values_override(&reuse_options());
    assert_eq!(
        r["conf"]["maas"]["url"]["maas_url"],
        "http://maas-region.ucp.svc.cluster.local/MAAS"
    );
    assert_eq!(
        r["conf"]["maas"]["credentials"]["secret"]["namespace"],
        "ucp"
    );

    let t = values_override(&two_racks_options());
    assert_eq!(t["pod"]["replicas"]["rack"], 2);
    assert_eq!(t["conf"]["cache"]["enabled"], true);
    assert!(
        t["pod"].get("mandatory_access_control").is_none(),
        "AppArmor host keeps the chart's profiles"
    );
    assert_eq!(
        t["images"]["tags"]["maas_rack"],
        "localhost:5000/airshipit/maas-rack-controller:2.8.7"
    );
    assert_eq!(
        t["images"]["tags"]["maas_cache"],
        "localhost:5000/airshipit/sstream-cache:2.8.7"
    );
}

#[test]
fn kind_workers_match_the_rack_anti_affinity() {
    let o = two_racks_options();
    let cfg = kind_config::kind_config_yaml(&o);
    assert_eq!(cfg.matches("- role: worker").count(), 3);
    assert_eq!(
        cfg.matches("maas-e2e/rack: enabled").count(),
        2,
        "one labelled worker per rack"
    );
    assert_eq!(cfg.matches("ucp-control-plane: enabled").count(), 3);
    assert_eq!(
        kind_config::rack_node_names(&o),
        vec!["me2e-qual-uefi-worker", "me2e-qual-uefi-worker2"]
    );

    let mut bad = default_options();
    bad.rack_replicas = 2;
    let err = ChartPlan::new(&bad).unwrap_err();
    assert_eq!(err.field, "workers");
    assert!(err.allowed.contains("anti-affinity"), "{err}");
}

#[test]
fn the_checked_in_kind_configs_are_what_the_harness_generates() {
    // kind/cluster.yaml and kind/cluster-2-racks.yaml are these options'
    // generated configs under the cluster name `maas-e2e`.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kind");
    for (file, racks, workers) in [("cluster.yaml", 1, 1), ("cluster-2-racks.yaml", 2, 2)] {
        let mut o = default_options();
        o.cluster = ClusterSource::Reuse {
            name: "maas-e2e".into(),
        };
        o.run_id = "checked-in".into();
        o.rack_replicas = racks;
        o.workers = workers;
        let generated =
            kind_config::kind_config_yaml(&o).replace("for run checked-in", "(checked in: kind/)");
        if std::env::var_os("MAAS_E2E_WRITE_KIND").is_some() {
            std::fs::write(root.join(file), &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(root.join(file)).unwrap();
        assert_eq!(
            on_disk, generated,
            "kind/{file} differs from the generated config"
        );
    }
}

#[test]
fn bad_options_name_the_field() {
    type Mutation = Box<dyn Fn(&mut maas_e2e::targets::chart::ChartOptions)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("run_id", Box::new(|o| o.run_id = "Has Spaces".into())),
        ("namespace", Box::new(|o| o.namespace = "UPPER".into())),
        ("rack_replicas", Box::new(|o| o.rack_replicas = 0)),
        (
            "wiring.dynamic_range",
            Box::new(|o| o.wiring.dynamic_range.1 = "10.99.0.5".parse().unwrap()),
        ),
        ("wiring.dynamic_range", Box::new(|o| o.machines = 500)),
        (
            "wiring.links[].node_bridge",
            Box::new(|o| o.wiring.links[0].node_bridge = "cali-pxe".into()),
        ),
        ("wiring.links", Box::new(|o| o.wiring.links.clear())),
        (
            "secrets.region_secret",
            Box::new(|o| o.secrets.region_secret = "abcdefghijkmnpqrstuvwxyz23456789".into()),
        ),
    ];
    for (field, mutate) in cases {
        let mut o = default_options();
        mutate(&mut o);
        let err = ChartPlan::new(&o).unwrap_err();
        assert_eq!(err.field, field, "{err}");
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[test]
fn postgres_precreation_follows_the_major_version() {
    let p14 = ChartPlan::new(&default_options()).unwrap();
    assert!(!p14.postgres.as_ref().unwrap().precreate_maasdb);
    assert!(!p14.render().contains("pre-create"));
    let p15 = ChartPlan::new(&two_racks_options()).unwrap();
    assert!(p15.postgres.as_ref().unwrap().precreate_maasdb);
    assert!(p15.render().contains("pre-create"));
    let service = p15.file(files::POSTGRES_SERVICE).unwrap();
    assert!(
        service.contains("kind: Endpoints")
            && service.contains("name: postgresql")
            && service.contains("port: 5432")
    );
}

#[test]
fn reuse_never_deletes_the_cluster() {
    let text = ChartPlan::new(&reuse_options()).unwrap().render();
    assert!(!text.contains("kind delete cluster"));
    assert!(!text.contains("kind create cluster"));
    assert!(text.contains("kind export kubeconfig --name maas-dev"));
    let created = ChartPlan::new(&default_options()).unwrap().render();
    assert!(created.contains("kind delete cluster --name me2e-nightly1"));
}

#[test]
fn kind_postgres_settings_match_the_code() {
    use maas_e2e::targets::chart::postgres::{ADMIN_ROLE, MAAS_DB, MAAS_ROLE, PORT, SERVICE_NAME};
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/kind/postgres.yaml"))
        .unwrap();
    let v: serde_json::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(v["listen"]["port"], PORT);
    assert_eq!(v["service"]["name"], SERVICE_NAME);
    assert_eq!(v["admin"]["user"], ADMIN_ROLE);
    assert_eq!(v["user"]["name"], MAAS_ROLE);
    assert_eq!(v["user"]["database"], MAAS_DB);
    let defaults = maas_e2e::targets::chart::PostgresOptions::default();
    assert_eq!(v["images"]["default"], defaults.reference());
}

#[test]
fn dry_run_is_the_rendered_plan() {
    let o = default_options();
    assert_eq!(
        maas_e2e::targets::chart::dry_run(&o).unwrap(),
        ChartPlan::new(&o).unwrap().render()
    );
    let mut bad = default_options();
    bad.namespace = String::new();
    assert!(
        maas_e2e::targets::chart::dry_run(&bad)
            .unwrap_err()
            .to_string()
            .contains("namespace")
    );
}
