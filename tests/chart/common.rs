//! Option sets shared by the chart tests (fixed secrets: they are redacted
//! anyway, but fixed values keep the plans comparable).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use maas_e2e::targets::chart::{
    ChartOptions, ChartSecrets, ClusterSource, LabLink, PostgresMode, PostgresOptions,
};

pub fn secrets() -> ChartSecrets {
    ChartSecrets {
        db_admin_password: "fixture-db-admin-pw".into(),
        db_user_password: "fixture-db-user-pw".into(),
        region_secret: "0123456789abcdef0123456789abcdef".into(),
        admin_password: "fixture-admin-pw".into(),
    }
}

/// The defaults: one rack, container Postgres 14, no cache.
pub fn default_options() -> ChartOptions {
    let mut o = ChartOptions::new("nightly1", "/runs/nightly1", "/src/maas/charts/maas");
    o.secrets = secrets();
    o
}

/// Two racks on three workers, cache on, local images loaded, Postgres
/// 15 from Debian, AppArmor on, a BMC network besides PXE, a gateway.
pub fn two_racks_options() -> ChartOptions {
    let mut o = ChartOptions::new("qual-uefi", "/runs/qual-uefi", "/src/maas/charts/maas");
    o.secrets = secrets();
    o.rack_replicas = 2;
    o.workers = 3;
    o.cache = true;
    o.image_repo = Some("localhost:5000/airshipit".into());
    o.image_tag = Some("2.8.7".into());
    o.load_images = true;
    o.apparmor = true;
    o.postgres = PostgresOptions {
        mode: PostgresMode::Container,
        image: "maas-e2e/postgres".into(),
        tag: "15-bookworm".into(),
    };
    o.values_files = vec![PathBuf::from("/etc/maas-e2e/site-values.yaml")];
    o.wiring.links.push(LabLink {
        lab_bridge: "br-bmc".into(),
        node_bridge: "maas-bmc".into(),
        rack_address: "10.41.0.2/24".parse().unwrap(),
    });
    o.wiring.gateway = Some(Ipv4Addr::new(10, 40, 0, 1));
    o.machines = 4;
    o
}

/// A reused cluster, Postgres in the cluster, kept afterwards.
pub fn reuse_options() -> ChartOptions {
    let mut o = ChartOptions::new("dev7", "/runs/dev7", "/home/dev/maas/charts/maas");
    o.secrets = secrets();
    o.cluster = ClusterSource::Reuse {
        name: "maas-dev".into(),
    };
    o.keep_cluster = true;
    o.namespace = "ucp".into();
    o.postgres = PostgresOptions {
        mode: PostgresMode::InCluster,
        image: "postgres".into(),
        tag: "16".into(),
    };
    o
}
