//! `--build-images`: the MAAS images built from the chart checkout's own
//! images/ Dockerfiles with the real docker, before anything else exists.
//! Nothing is pulled: the base image a Dockerfile starts FROM must be in
//! the local docker, and `chart check --local-images` names it when not.

use maas_e2e::cmd::Cmd;
use maas_e2e::targets::chart::ChartPlan;
use maas_e2e::targets::chart::image_build::{planned_builds, present_locally};
use maas_e2e::targets::chart::plan::Step;
use maas_e2e::testing::require;

use super::render::{engine_and_pin, options_for, path_with_engine, pin_chart, sut_dir};

/// The project's base image (ci/images/base/build.sh): the only base that
/// exists here without a registry.
const LOCAL_BASE: &str = "maas-e2e/debian-base:bookworm";

fn docker_running() -> bool {
    require(
        "a running dockerd",
        Cmd::new("docker").arg("info").run_blocking().is_ok(),
        "start it: ci/setup-host.sh --docker",
    )
}

#[test]
fn each_pin_builds_every_maas_image_once_from_a_directory_the_checkout_has() {
    for pin in ["airship-maas-2.8", "airship-maas-3.6"] {
        if !engine_and_pin(pin) {
            return;
        }
        let mut opts = options_for(pin);
        opts.cache = true;
        assert!(
            planned_builds(&opts).is_empty(),
            "{pin}: built without --build-images"
        );
        opts.build_images = true;
        let builds = planned_builds(&opts);
        // region, rack, cache: several images.tags keys share the region image
        assert_eq!(builds.len(), 3, "{pin}: {builds:#?}");
        for b in &builds {
            assert!(
                b.dockerfile().is_file(),
                "{pin}: {} is not in the checkout",
                b.dockerfile().display()
            );
        }
        let plan = ChartPlan::new(&opts).unwrap();
        let stage = plan.stage("images");
        assert_eq!(stage.len(), 3, "{pin}");
        assert_eq!(
            plan.stages[1].name, "images",
            "{pin}: images are built before the cluster"
        );
    }
}

#[test]
fn a_base_image_that_would_be_pulled_is_named_before_anything_starts() {
    let pin = "airship-maas-2.8";
    if !engine_and_pin(pin) || !docker_running() {
        return;
    }
    let checkout = sut_dir().join(pin);
    let chart = pin_chart(pin);
    let missing = "maas-e2e/no-such-base:never";
    assert!(!present_locally(missing));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_maas-e2e"))
        .args([
            "chart",
            "check",
            "--local-images",
            "--build-images",
            "--image-base",
            missing,
            "--chart",
        ])
        .arg(&chart)
        .env("PATH", path_with_engine())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for image in ["maas-region-controller", "maas-rack-controller"] {
        let dockerfile = checkout.join("images").join(image).join("Dockerfile");
        let line = stdout
            .lines()
            .find(|l| l.contains("[images-build]") && l.contains(image))
            .unwrap_or_else(|| panic!("no images-build row for {image}:\n{stdout}"));
        assert!(line.contains(missing), "{line}");
        assert!(line.contains(&dockerfile.display().to_string()), "{line}");
    }
    // With the base local, the same rows hold (the images themselves are
    // built by the run, so they are not required locally).
    if !require(
        &format!("the base image {LOCAL_BASE}"),
        present_locally(LOCAL_BASE),
        "run ci/images/base/build.sh",
    ) {
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_maas-e2e"))
        .args([
            "chart",
            "check",
            "--local-images",
            "--build-images",
            "--image-base",
            LOCAL_BASE,
            "--chart",
        ])
        .arg(&chart)
        .env("PATH", path_with_engine())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.lines().any(|l| l.contains("[images-build]")),
        "a build row failed:\n{stdout}"
    );
    assert!(
        !stdout
            .lines()
            .any(|l| l.contains("maas-region-controller") && l.contains("[images-local]")),
        "{stdout}"
    );
}

#[test]
fn the_planned_builds_run_with_the_real_docker_and_tag_what_kind_loads() {
    if !docker_running()
        || !require(
            &format!("the base image {LOCAL_BASE}"),
            present_locally(LOCAL_BASE),
            "run ci/images/base/build.sh",
        )
    {
        return;
    }
    // A checkout whose images/ hold small Dockerfiles of our own, shaped
    // like the chart's (ARG FROM, FROM ${FROM}): the real ones install
    // MAAS from Launchpad, which no test here may reach.
    let checkout = tempfile::tempdir().unwrap();
    for image in ["maas-region-controller", "maas-rack-controller"] {
        let dir = checkout.path().join("images").join(image);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("Dockerfile"),
            format!("ARG FROM=maas-e2e/no-such-base:never\nFROM ${{FROM}}\nLABEL org.maas-e2e.built-from={image}\n"),
        )
        .unwrap();
    }
    let mut opts = options_for("airship-maas-2.8");
    opts.chart_path = checkout.path().join("charts/maas");
    opts.image_repo = Some("maas-e2e-test-build".into());
    opts.image_tag = Some(format!("t{}", std::process::id()));
    opts.build_images = true;
    opts.image_base = Some(LOCAL_BASE.into());
    let plan = ChartPlan::new(&opts).unwrap();
    let images: Vec<String> = planned_builds(&opts).into_iter().map(|b| b.image).collect();
    let cleanup = || {
        for i in &images {
            let _ = Cmd::new("docker")
                .args(["image", "rm", "--force", i])
                .run_blocking();
        }
    };
    let result = std::panic::catch_unwind(|| {
        for step in plan.stage("images") {
            let Step::Run(cmd) = step else {
                panic!("images stage: {step:?}")
            };
            cmd.run_blocking().unwrap_or_else(|e| panic!("{e}"));
        }
        for (image, dir) in images
            .iter()
            .zip(["maas-region-controller", "maas-rack-controller"])
        {
            let label = Cmd::new("docker")
                .args([
                    "image",
                    "inspect",
                    "--format",
                    "{{index .Config.Labels \"org.maas-e2e.built-from\"}}",
                    image,
                ])
                .run_blocking()
                .unwrap();
            assert_eq!(label.trim(), dir, "{image} was not built from images/{dir}");
            // every image the run loads includes what it built
            assert!(maas_e2e::targets::chart::values::images_to_load(&opts).contains(image));
        }
    });
    cleanup();
    result.unwrap();
}
