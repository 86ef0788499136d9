//! The chart target's options from a plan and the command line: the one
//! place where a scenario meets `target::chart`.

use crate::plan::Plan;
use crate::run::env::TargetOptions;
use crate::targets::chart::{ChartOptions, ChartOptionsError, Ipv4Cidr, LabLink, WiringOptions};

/// The chart run for this plan. The rack, in the kind node, takes the lab's
/// rack address on a bridge inside the node (the nic_filter patch hides
/// veths); the dynamic range is the plan's.
pub fn chart_options(plan: &Plan, t: &TargetOptions) -> Result<ChartOptions, ChartOptionsError> {
    let wiring = WiringOptions {
        // The lab stage's bridges live in the host namespace (VM NICs
        // attach there); the lab namespace holds only their veth ends.
        lab_netns: None,
        links: vec![LabLink {
            lab_bridge: plan.host.bridge.clone(),
            node_bridge: "maas-pxe".into(),
            rack_address: Ipv4Cidr {
                addr: plan.lab.rack_ip,
                prefix: plan.lab.prefix_len,
            },
        }],
        dynamic_range: plan.lab.dhcp_range,
        gateway: None,
    };
    let mut opts = t.chart.to_options(
        plan.run_id.as_str(),
        plan.host.run_dir.clone(),
        false,
        plan.machines.len() as u32,
        wiring,
    )?;
    // The region secret from the seed (hex: MAAS reads it with a2b_hex).
    opts.secrets.region_secret = crate::targets::chart::options::region_secret_from_seed(plan.seed);
    Ok(opts)
}
