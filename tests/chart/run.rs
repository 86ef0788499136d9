//! The executor where no cluster can exist: deploy stops before anything
//! starts when a tool is missing; collection and teardown never fail,
//! record what they could not do, and leak no secret.

use maas_e2e::targets::chart::{ChartError, ChartPlan, ChartRun};

use crate::common::{default_options, secrets};

fn options_in(dir: &std::path::Path) -> maas_e2e::targets::chart::ChartOptions {
    let mut o = default_options();
    o.run_id = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    o.run_dir = dir.join("run");
    o
}

#[tokio::test]
async fn deploy_without_kind_or_helm_starts_nothing() {
    // A PATH without kind and helm, whatever this host has (nextest runs
    // each test in a process of its own, so the change stays here).
    let empty = tempfile::tempdir().unwrap();
    // SAFETY: no other thread of this test process reads the environment yet.
    unsafe { std::env::set_var("PATH", empty.path()) };
    assert!(maas_e2e::targets::chart::prereq::check().is_err());
    let dir = tempfile::tempdir().unwrap();
    let opts = options_in(dir.path());
    let mut run = ChartRun::new(ChartPlan::new(&opts).unwrap(), &opts);
    let err = run.deploy().await.unwrap_err();
    let ChartError::Prerequisites(missing) = &err else {
        panic!("expected missing tools, got {err}")
    };
    assert!(!missing.missing.is_empty());
    assert!(err.to_string().contains("nothing was started"), "{err}");
    assert!(
        !opts.run_dir.exists(),
        "not even the run directory was made"
    );
    assert!(run.postgres.is_none() && run.port_forwards.is_empty());
    assert!(run.teardown().await.iter().all(|p| !p.contains("panicked")));
}

#[tokio::test]
async fn collection_without_a_cluster_writes_what_it_could_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options_in(dir.path());
    let plan = ChartPlan::new(&opts).unwrap();
    let run = ChartRun::new(plan, &opts);
    let problems = run.collect().await;
    // Every file could be written: the only problems are the steps whose
    // tool is missing here (kind's log export), each saying so.
    assert!(
        !problems.iter().any(|p| p.starts_with("writing ")),
        "{problems:?}"
    );
    assert_eq!(
        problems.iter().any(|p| p.contains("kind export logs")),
        !maas_e2e::testing::have_program("kind"),
        "{problems:?}"
    );
    for p in &problems {
        assert!(p.contains("is kind installed?"), "{p}");
    }
    let collected = opts.run_dir.join("collected");
    for f in [
        "resources.txt",
        "events.txt",
        "describe.txt",
        "pods.txt",
        "helm-status.txt",
        "helm-values.yaml",
        "postgres.log",
    ] {
        let text =
            std::fs::read_to_string(collected.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!text.is_empty(), "{f} says why it is empty of evidence");
        for s in secrets().values() {
            assert!(!text.contains(s), "{f} leaks a secret");
        }
    }
    // The `{pod}` template is never run literally.
    assert!(!collected.join("logs-pod.txt").exists());
}

#[tokio::test]
async fn teardown_of_an_unstarted_run_reports_only_what_matters() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options_in(dir.path());
    let run = ChartRun::new(ChartPlan::new(&opts).unwrap(), &opts);
    let problems = run.teardown().await;
    // ip and docker find nothing to remove (ignored); `kind delete cluster`
    // is reported when kind is absent, and succeeds (nothing to delete) where present.
    for p in &problems {
        assert!(p.contains("kind"), "unexpected teardown problem: {p}");
    }
    assert_eq!(
        problems.is_empty(),
        maas_e2e::testing::have_program("kind"),
        "{problems:?}"
    );
}

#[tokio::test]
async fn collection_that_cannot_write_reports_each_file_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options_in(dir.path());
    // A file where the collection directory goes: no evidence can be written.
    std::fs::create_dir_all(&opts.run_dir).unwrap();
    std::fs::write(opts.run_dir.join("collected"), "in the way").unwrap();
    let run = ChartRun::new(ChartPlan::new(&opts).unwrap(), &opts);
    let problems = run.collect().await;
    for f in ["resources.txt", "events.txt", "pods.txt", "helm-status.txt"] {
        assert!(
            problems.iter().any(|p| p.contains(f)),
            "{f} not reported lost: {problems:?}"
        );
    }
    for p in &problems {
        for s in secrets().values() {
            assert!(!p.contains(s), "a problem leaks a secret: {p}");
        }
    }
}
