//! Join lab bridges to the rack's kind node.
//!
//! The rack runs with hostNetwork, so it sees the node container's network
//! namespace. For each lab link: a veth pair whose lab end joins the lab
//! bridge (in the lab's netns) and whose node end joins a Linux bridge
//! inside the node, which carries the rack's address. The address sits on
//! a bridge because the images' nic_filter patch leaves veths (no
//! /sys/class/net/X/device) out of the rack's interface list. A veth named
//! `cali-e2e` is added too: the chart check expects the rack to leave it out.
//!
//! The node's namespace gets a name (`ip netns attach NAME PID`) so every
//! step is a plain `ip -n NAME ...`; `ip netns delete NAME` later only
//! removes that name, the container keeps its namespace.

use std::net::Ipv4Addr;

use serde::Serialize;

use crate::cmd::Cmd;

use super::kind_config::rack_node_names;
use super::options::{ChartOptions, Ipv4Cidr, LabLink};

/// The veth the chart check expects the rack to leave out.
pub const DECOY_VETH: &str = "cali-e2e";
/// Its peer, also inside the node (a veth needs two ends).
pub const DECOY_VETH_PEER: &str = "cali-e2e-p";

/// How one node joins the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeWiring {
    /// The kind node's docker container.
    pub node_container: String,
    /// The name given to its network namespace on the host.
    pub node_netns: String,
    /// Where the lab bridges are (`None`: the host namespace).
    pub lab_netns: Option<String>,
    pub links: Vec<LinkWiring>,
}

/// One veth pair between a lab bridge and a bridge in the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkWiring {
    pub lab_bridge: String,
    /// The veth end in the lab netns.
    pub lab_end: String,
    /// The veth end in the node.
    pub node_end: String,
    pub node_bridge: String,
    pub address: Ipv4Cidr,
}

/// Every node's wiring: rack `i` gets the link addresses shifted by `i`
/// (rack 0 has exactly the addresses in the options).
pub fn plan_wiring(opts: &ChartOptions) -> Vec<NodeWiring> {
    let tag = short_tag(&opts.run_id);
    rack_node_names(opts)
        .into_iter()
        .enumerate()
        .map(|(i, node)| NodeWiring {
            node_netns: crate::plan::node_netns_name(&opts.run_id, i),
            lab_netns: opts.wiring.lab_netns.clone(),
            links: opts
                .wiring
                .links
                .iter()
                .enumerate()
                .map(|(j, l)| link_wiring(l, &tag, i as u32, j as u32))
                .collect(),
            node_container: node,
        })
        .collect()
}

fn link_wiring(l: &LabLink, tag: &str, node: u32, link: u32) -> LinkWiring {
    let addr = Ipv4Addr::from(u32::from(l.rack_address.addr) + node);
    LinkWiring {
        lab_bridge: l.lab_bridge.clone(),
        // 15 characters at most: "x" + 6 + node + link + side.
        lab_end: format!("x{tag}{node}{link}l"),
        node_end: format!("x{tag}{node}{link}n"),
        node_bridge: l.node_bridge.clone(),
        address: Ipv4Cidr {
            addr,
            prefix: l.rack_address.prefix,
        },
    }
}

/// Six characters from the run id (its hash), for interface names.
pub fn short_tag(run_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(run_id.as_bytes());
    hex::encode(digest)[..6].to_string()
}

/// The host command reading a node container's pid.
pub fn node_pid_cmd(node_container: &str) -> Cmd {
    Cmd::new("docker").args(["inspect", "--format", "{{.State.Pid}}", node_container])
}

fn ip(netns: &str) -> Cmd {
    Cmd::new("ip").args(["-n", netns])
}

/// `ip` on the lab side: in its namespace, or in the host's.
fn lab_ip(lab_netns: &Option<String>) -> Cmd {
    match lab_netns {
        Some(ns) => ip(ns),
        None => Cmd::new("ip"),
    }
}

/// Whether the lab the wiring joins exists (its namespace, or in the host
/// namespace every lab bridge); `Err` names what is missing.
pub fn check_lab(w: &NodeWiring) -> Result<(), WiringError> {
    match &w.lab_netns {
        Some(ns) if !crate::lab::netns::netns_path(ns).exists() => Err(WiringError::NoLab {
            what: format!("lab network namespace {ns}"),
        }),
        Some(_) => Ok(()),
        None => match w.links.iter().find(|l| {
            !std::path::Path::new("/sys/class/net")
                .join(&l.lab_bridge)
                .exists()
        }) {
            Some(l) => Err(WiringError::NoLab {
                what: format!("lab bridge {} (host namespace)", l.lab_bridge),
            }),
            None => Ok(()),
        },
    }
}

/// The commands that wire one node, given its container's pid (from
/// `node_pid_cmd`; the dry run shows a placeholder).
pub fn wire_cmds(w: &NodeWiring, node_pid: &str) -> Vec<Cmd> {
    let mut cmds = vec![Cmd::new("ip").args(["netns", "attach", &w.node_netns, node_pid])];
    for l in &w.links {
        cmds.extend([
            lab_ip(&w.lab_netns).args([
                "link",
                "add",
                &l.lab_end,
                "type",
                "veth",
                "peer",
                "name",
                &l.node_end,
                "netns",
                &w.node_netns,
            ]),
            lab_ip(&w.lab_netns).args(["link", "set", &l.lab_end, "master", &l.lab_bridge]),
            lab_ip(&w.lab_netns).args(["link", "set", &l.lab_end, "up"]),
            ip(&w.node_netns).args(["link", "add", &l.node_bridge, "type", "bridge"]),
            ip(&w.node_netns).args(["link", "set", &l.node_end, "master", &l.node_bridge]),
            ip(&w.node_netns).args(["link", "set", &l.node_end, "up"]),
            ip(&w.node_netns).args(["addr", "add", &l.address.to_string(), "dev", &l.node_bridge]),
            ip(&w.node_netns).args(["link", "set", &l.node_bridge, "up"]),
        ]);
    }
    cmds.extend([
        ip(&w.node_netns).args([
            "link",
            "add",
            DECOY_VETH,
            "type",
            "veth",
            "peer",
            "name",
            DECOY_VETH_PEER,
        ]),
        ip(&w.node_netns).args(["link", "set", DECOY_VETH, "up"]),
        ip(&w.node_netns).args(["link", "set", DECOY_VETH_PEER, "up"]),
    ]);
    cmds
}

/// Undo `wire_cmds`, in reverse; each may fail when its object is already
/// gone (the caller ignores those failures and runs the rest).
pub fn unwire_cmds(w: &NodeWiring) -> Vec<Cmd> {
    let mut cmds = vec![ip(&w.node_netns).args(["link", "del", DECOY_VETH])];
    for l in w.links.iter().rev() {
        cmds.extend([
            // Deleting one end of a veth pair deletes both.
            lab_ip(&w.lab_netns).args(["link", "del", &l.lab_end]),
            ip(&w.node_netns).args(["link", "del", &l.node_bridge]),
        ]);
    }
    cmds.push(Cmd::new("ip").args(["netns", "delete", &w.node_netns]));
    cmds
}

/// Read a pid out of `docker inspect` output.
pub fn parse_pid(stdout: &str) -> Option<u32> {
    stdout.trim().parse().ok().filter(|p| *p > 0)
}

/// Wire one node for real: read its pid, then run every step; on a failed
/// step the steps done so far are undone before the error returns.
pub async fn wire_node(w: &NodeWiring) -> Result<(), WiringError> {
    check_lab(w)?;
    let out = node_pid_cmd(&w.node_container)
        .run()
        .await
        .map_err(|source| WiringError::Step {
            node: w.node_container.clone(),
            source,
        })?;
    let pid = parse_pid(&out).ok_or_else(|| WiringError::NotRunning {
        node: w.node_container.clone(),
        output: out.trim().to_string(),
    })?;
    for cmd in wire_cmds(w, &pid.to_string()) {
        if let Err(source) = cmd.run().await {
            unwire_node(w).await;
            return Err(WiringError::Step {
                node: w.node_container.clone(),
                source,
            });
        }
    }
    Ok(())
}

/// Undo a node's wiring, ignoring what is already gone.
pub async fn unwire_node(w: &NodeWiring) {
    for cmd in unwire_cmds(w) {
        let _ = cmd.run().await;
    }
}

/// Why wiring a node failed.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("wiring kind node {node} to the lab: {source}")]
    Step {
        node: String,
        #[source]
        source: crate::cmd::CmdError,
    },
    #[error("{what} does not exist: the lab stage makes it before the chart target wires the rack")]
    NoLab { what: String },
    #[error(
        "kind node container {node} is not running (docker inspect printed {output:?}); is the cluster up?"
    )]
    NotRunning { node: String, output: String },
}
