//! `run --target chart --dry-run` for every shipped scenario that lists the
//! chart target: the whole plan, snapshot-tested (run id and seed fixed).

use std::path::Path;

use maas_e2e::plan::{self, RunId};
use maas_e2e::run::dry_run;
use maas_e2e::run::options::TargetOptions;
use maas_e2e::scenario::{self, TargetKind};

#[test]
fn chart_dry_run_per_scenario() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    let mut seen = 0;
    for path in names {
        let rel = Path::new("scenarios").join(path.file_name().unwrap());
        let loaded = scenario::parse(&rel, &std::fs::read_to_string(&path).unwrap()).unwrap();
        if !loaded.scenario.targets.contains(&TargetKind::Chart) {
            continue;
        }
        seen += 1;
        let run_id: RunId = "0c4a27e0".parse().unwrap();
        let p = plan::plan(&loaded, TargetKind::Chart, &run_id, 1, Path::new("runs"));
        let mut opts = TargetOptions::default();
        opts.chart.chart = Some("charts/maas".into());
        opts.chart.namespace = "maas".into();
        opts.chart.postgres_image = "postgres:14".into();
        opts.chart.rack_replicas = 1;
        let text = dry_run::actions(&p, &loaded.scenario, &opts).join("\n");
        assert!(
            text.contains("helm upgrade --install maas charts/maas"),
            "{text}"
        );
        assert!(!text.contains("the chart plan is invalid"), "{text}");
        for m in &p.machines {
            assert!(
                !text.contains(&m.bmc.password),
                "a BMC password in the dry run"
            );
        }
        insta::assert_snapshot!(format!("chart-dry-run-{}", loaded.scenario.name), text);
    }
    assert!(seen >= 5, "only {seen} scenarios list the chart target");
}
