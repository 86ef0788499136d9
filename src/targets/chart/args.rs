//! The `run --target chart` flags, as a clap `Args` group the CLI flattens,
//! and their mapping onto `ChartOptions`.

use std::path::PathBuf;

use clap::Args;

use super::options::{
    ChartOptions, ChartOptionsError, ClusterSource, PostgresMode, PostgresOptions, WiringOptions,
};
use super::pin::ChartMeta;

/// Flags of the chart target.
#[derive(Debug, Clone, Default, Args)]
pub struct ChartArgs {
    /// A checkout of the MaaS chart (charts/maas, helm-toolkit in charts/deps).
    #[arg(long, value_name = "PATH")]
    pub chart: Option<PathBuf>,
    /// Extra values files, applied after the generated override (repeatable).
    #[arg(long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Repository of the MAAS images, e.g. quay.io/airshipit.
    #[arg(long, value_name = "REPO")]
    pub image_repo: Option<String>,
    /// Tag of the MAAS images.
    #[arg(long, value_name = "TAG")]
    pub image_tag: Option<String>,
    /// kubernetes-entrypoint image for every pod's init container
    /// (`images.tags.dep_check`), e.g. one built locally; default: the chart's.
    #[arg(long, value_name = "IMAGE:TAG")]
    pub dep_check_image: Option<String>,
    /// Kept for old command lines: every image of the render is now loaded
    /// into kind (`kind load docker-image`), nothing is pulled.
    #[arg(long, hide = true)]
    pub load_images: bool,
    /// Build the MAAS images (region, rack, cache) from the chart
    /// checkout's images/ Dockerfiles with `docker build` before loading them.
    #[arg(long)]
    pub build_images: bool,
    /// Base image for those builds (`--build-arg FROM=IMAGE`); it must be
    /// in the local docker (nothing is pulled). Default: each Dockerfile's own.
    #[arg(long, value_name = "IMAGE:TAG", requires = "build_images")]
    pub image_base: Option<String>,
    /// Use this kind config instead of the generated one.
    #[arg(long, value_name = "FILE", conflicts_with = "reuse_cluster")]
    pub kind_config: Option<PathBuf>,
    /// Leave the cluster and Postgres running after the run.
    #[arg(long)]
    pub keep_cluster: bool,
    /// Deploy into an existing kind cluster (never deleted).
    #[arg(long, value_name = "NAME")]
    pub reuse_cluster: Option<String>,
    /// Release namespace (also the API key secret's namespace).
    #[arg(long, value_name = "NS", default_value = "maas")]
    pub namespace: String,
    /// Postgres image with an explicit tag.
    #[arg(long, value_name = "IMAGE:TAG", default_value = "postgres:14")]
    pub postgres_image: String,
    /// Run Postgres inside the cluster instead of as a container on kind's network.
    #[arg(long)]
    pub postgres_in_cluster: bool,
    /// Rack replicas (one labelled worker each).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub rack_replicas: u32,
    /// Workers in the generated kind config (default: one per rack).
    #[arg(long, value_name = "N")]
    pub workers: Option<u32>,
    /// How long each wait of the MAAS configuration after deploy may take
    /// (the region's import, the rack's boot images), e.g. 30s; default 45m.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub configure_timeout: Option<std::time::Duration>,
    /// Collect the cluster's evidence (pods, logs, events, MAAS objects)
    /// into RUN_DIR/collected even when the run passes (always on failure).
    #[arg(long)]
    pub collect: bool,
}

impl ChartArgs {
    /// Options for one run; the scenario fills `cache`, `machines` and the
    /// lab's `wiring` (its netns, bridges and addresses).
    pub fn to_options(
        &self,
        run_id: &str,
        run_dir: PathBuf,
        cache: bool,
        machines: u32,
        wiring: WiringOptions,
    ) -> Result<ChartOptions, ChartOptionsError> {
        let chart = self.chart.clone().ok_or(ChartOptionsError {
            field: "chart",
            value: String::new(),
            allowed: "--chart PATH: a checkout of the MaaS chart (charts/maas with helm-toolkit in charts/deps)".into(),
        })?;
        let meta = ChartMeta::read(&chart)?;
        let mut o = ChartOptions::new(run_id, run_dir, chart);
        o.chart_meta = meta;
        o.host_cgroup_v2 = host_cgroup_v2();
        o.values_files = self.values.clone();
        o.image_repo = self.image_repo.clone();
        o.image_tag = self.image_tag.clone();
        o.dep_check_image = self.dep_check_image.clone();
        o.load_images = true;
        o.build_images = self.build_images;
        o.image_base = self.image_base.clone();
        o.cluster = match &self.reuse_cluster {
            Some(name) => ClusterSource::Reuse { name: name.clone() },
            None => ClusterSource::Create {
                config: self.kind_config.clone(),
            },
        };
        o.keep_cluster = self.keep_cluster;
        o.namespace = self.namespace.clone();
        let mode = if self.postgres_in_cluster {
            PostgresMode::InCluster
        } else {
            PostgresMode::Container
        };
        o.postgres = PostgresOptions::from_reference(mode, &self.postgres_image)?;
        o.rack_replicas = self.rack_replicas;
        o.workers = self.workers.unwrap_or(self.rack_replicas);
        o.apparmor = host_has_apparmor();
        o.cache = cache;
        o.machines = machines;
        o.wiring = wiring;
        if let Some(t) = self.configure_timeout {
            o.timeouts.configure = t;
        }
        o.validate()?;
        Ok(o)
    }
}

/// Whether /sys/fs/cgroup is the unified (v2) hierarchy: it has
/// cgroup.controllers at its root, which v1's tmpfs of controllers lacks.
pub fn host_cgroup_v2() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// Whether the kernel has AppArmor enabled (else the chart's AppArmor
/// annotations would keep its pods from starting).
pub fn host_has_apparmor() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        chart: ChartArgs,
    }

    fn wiring() -> WiringOptions {
        ChartOptions::new("x", "/r", "/c").wiring
    }

    /// A chart directory with just what the options read.
    fn chart(version: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("Chart.yaml"),
            format!("apiVersion: v1\nname: maas\nversion: {version}\n"),
        )
        .unwrap();
        std::fs::write(
            d.path().join("values.yaml"),
            "images:\n  tags:\n    dep_check: e/kubernetes-entrypoint:v1\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn flags_map_onto_options() {
        let dir = chart("0.2.0");
        let cli = Cli::try_parse_from([
            "t",
            "--chart",
            dir.path().to_str().unwrap(),
            "--values",
            "a.yaml",
            "--values",
            "b.yaml",
            "--image-tag",
            "2.8.7",
            "--reuse-cluster",
            "dev",
            "--keep-cluster",
            "--postgres-image",
            "maas-e2e/postgres:15-bookworm",
            "--rack-replicas",
            "2",
            "--configure-timeout",
            "3s",
        ])
        .unwrap();
        let o = cli
            .chart
            .to_options("r1", "/runs/r1".into(), true, 3, wiring())
            .unwrap();
        assert_eq!(
            o.values_files,
            [PathBuf::from("a.yaml"), PathBuf::from("b.yaml")]
        );
        assert_eq!(o.cluster, ClusterSource::Reuse { name: "dev".into() });
        assert!(o.keep_cluster && o.cache);
        assert_eq!(o.postgres.tag, "15-bookworm");
        assert_eq!((o.rack_replicas, o.workers), (2, 2));
        assert_eq!(o.timeouts.configure, std::time::Duration::from_secs(3));
        assert_eq!(
            o.chart_meta.pin,
            crate::targets::chart::pin::ChartPin::Maas36
        );
        assert_eq!(
            o.chart_meta.image_tags["dep_check"],
            "e/kubernetes-entrypoint:v1"
        );
    }

    #[test]
    fn missing_chart_and_bad_postgres_are_named() {
        let cli = Cli::try_parse_from(["t"]).unwrap();
        assert_eq!(
            cli.chart
                .to_options("r1", "/r".into(), false, 1, wiring())
                .unwrap_err()
                .field,
            "chart"
        );
        let dir = chart("0.1.2");
        let c = dir.path().to_str().unwrap();
        let cli = Cli::try_parse_from(["t", "--chart", c, "--postgres-image", "postgres"]).unwrap();
        assert_eq!(
            cli.chart
                .to_options("r1", "/r".into(), false, 1, wiring())
                .unwrap_err()
                .field,
            "postgres_image"
        );
        assert!(
            Cli::try_parse_from(["t", "--kind-config", "k.yaml", "--reuse-cluster", "x"]).is_err()
        );
        // A timeout that is not a duration, or is zero: named.
        let Err(e) = Cli::try_parse_from(["t", "--configure-timeout", "soon"]) else {
            panic!("a duration is required")
        };
        assert!(e.to_string().contains("--configure-timeout"), "{e}");
        let cli = Cli::try_parse_from(["t", "--chart", c, "--configure-timeout", "0s"]).unwrap();
        assert_eq!(
            cli.chart
                .to_options("r1", "/r".into(), false, 1, wiring())
                .unwrap_err()
                .field,
            "configure_timeout"
        );
        // Not a chart, or a version that is neither pin: named, with the file.
        for (dir, want) in [
            (tempfile::tempdir().unwrap(), "Chart.yaml"),
            (chart("0.0.1"), "0.1.x"),
        ] {
            let c = dir.path().to_str().unwrap();
            let e = Cli::try_parse_from(["t", "--chart", c])
                .unwrap()
                .chart
                .to_options("r1", "/r".into(), false, 1, wiring())
                .unwrap_err();
            assert_eq!(e.field, "chart");
            assert!(e.to_string().contains(want), "{e}");
        }
    }
}
