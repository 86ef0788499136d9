//! The chart target's options from a plan and the command line: the one
//! place where a scenario meets `target::chart`.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::plan::Plan;
use crate::run::env::TargetOptions;
use crate::target::chart::{ChartOptions, ClusterSource, Ipv4Cidr, LabLink};

/// Where `--chart` points when it is not given (a checkout beside the repo).
pub const DEFAULT_CHART: &str = "../maas/charts/maas";

/// The chart run for this plan. The rack, in the kind node, takes the lab's
/// rack address on a bridge inside the node; the dynamic range is the plan's.
pub fn chart_options(plan: &Plan, t: &TargetOptions) -> ChartOptions {
    let mut o = ChartOptions::new(plan.run_id.as_str(), plan.host.run_dir.clone(), t.chart.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CHART)));
    o.values_files = t.values.iter().cloned().collect();
    o.image_repo = t.image_repo.clone();
    o.image_tag = t.image_tag.clone();
    o.cluster = match &t.reuse_cluster {
        Some(name) => ClusterSource::Reuse { name: name.clone() },
        None => ClusterSource::Create { config: t.kind_config.clone() },
    };
    o.keep_cluster = t.keep_cluster;
    o.machines = plan.machines.len() as u32;
    o.wiring.lab_netns = plan.host.netns.clone();
    o.wiring.links = vec![LabLink {
        lab_bridge: plan.host.bridge.clone(),
        node_bridge: "maas-pxe".into(),
        rack_address: Ipv4Cidr { addr: plan.lab.rack_ip, prefix: plan.lab.prefix_len },
    }];
    o.wiring.dynamic_range = plan.lab.dynamic_range_pair();
    o.wiring.gateway = None::<Ipv4Addr>;
    o
}
