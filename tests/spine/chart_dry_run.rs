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
    // The real 2.8 pin (the plan reads its Chart.yaml): $MAAS_E2E_SUT_DIR,
    // else ../shared/sut beside the repo.
    let sut = std::env::var_os("MAAS_E2E_SUT_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/sut"),
        std::path::PathBuf::from,
    );
    let chart = sut.join("airship-maas-2.8/charts/maas");
    if !maas_e2e::testing::require(
        "the 2.8 chart pin",
        chart.join("Chart.yaml").is_file(),
        "clone the repo beside shared/ or set MAAS_E2E_SUT_DIR (README)",
    ) {
        return;
    }
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(&chart.display().to_string()), "charts/maas");
    // The chart check's table depends on the host (helm on PATH, cgroups):
    // tests/chart/render.rs checks it; here it must only be there.
    settings.add_filter(r"(?m)^# \[check\] .*\n", "");
    let _bound = settings.bind_to_scope();
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
        opts.chart.chart = Some(chart.clone());
        opts.chart.namespace = "maas".into();
        opts.chart.postgres_image = "postgres:14".into();
        opts.chart.rack_replicas = 1;
        let text = dry_run::actions(&p, &loaded.scenario, &opts).join("\n");
        assert!(
            text.contains(&format!("helm upgrade --install maas {}", chart.display())),
            "{text}"
        );
        assert!(
            text.contains("# [check] "),
            "the chart check's preflight: {text}"
        );
        assert!(
            !text.contains(&format!(
                "ip -n {} addr add {}",
                p.host.netns, p.lab.rack_ip
            )),
            "the rack's address is on the node's bridge, not in the lab: {text}"
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

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}
