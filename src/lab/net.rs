//! The lab network of one run: a network namespace that holds every lab
//! address, and L2 bridges in the host namespace (no address, no uplink) that
//! VM NICs attach to, each joined to the namespace by a veth pair.
//!
//! Everything goes through ip(8) with a typed argv (`crate::cmd::Cmd`).
//! `up` and `down` are idempotent: each step looks before it acts. Names are
//! the caller's (the plan's); they carry the run id, so `sweep` can find
//! what a killed harness left behind by listing, not by remembering.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::cmd::{Cmd, CmdError};

/// Linux interface and namespace names are at most 15 bytes (IFNAMSIZ - 1).
pub const MAX_NAME_LEN: usize = 15;

/// An IPv4 subnet: network address and prefix length, e.g. `10.99.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ipv4Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, LabNetError> {
        if prefix > 32 {
            return Err(LabNetError::Invalid {
                field: "subnet".into(),
                problem: format!("prefix /{prefix} is longer than 32"),
            });
        }
        Ok(Ipv4Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & Self::mask_bits(prefix)),
            prefix,
        })
    }

    fn mask_bits(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        }
    }

    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(Self::mask_bits(self.prefix))
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !Self::mask_bits(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask_bits(self.prefix) == u32::from(self.addr)
    }

    /// The `n`-th address of the subnet (1 = first host address).
    pub fn host(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + n)
    }
}

impl fmt::Display for Ipv4Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Subnet {
    type Err = LabNetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |problem: &str| LabNetError::Invalid {
            field: "subnet".into(),
            problem: format!("`{s}`: {problem} (allowed: an IPv4 network like 10.99.0.0/24)"),
        };
        let (a, p) = s.split_once('/').ok_or_else(|| bad("no /prefix"))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad("not an IPv4 address"))?;
        let prefix: u8 = p.parse().map_err(|_| bad("prefix is not a number"))?;
        Ipv4Subnet::new(addr, prefix)
    }
}

impl TryFrom<String> for Ipv4Subnet {
    type Error = LabNetError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Ipv4Subnet> for String {
    fn from(s: Ipv4Subnet) -> String {
        s.to_string()
    }
}

/// One L2 segment of the lab: a bridge for VM NICs and the veth pair that
/// joins it to the lab namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentSpec {
    /// Bridge in the host namespace; VM NICs (libvirt type=bridge) attach here.
    pub bridge: String,
    /// Host end of the veth pair, enslaved to the bridge.
    pub veth_host: String,
    /// Lab end of the veth pair, inside the namespace; holds the addresses.
    pub veth_lab: String,
    pub subnet: Ipv4Subnet,
    /// Addresses configured on `veth_lab`; the first is the segment's primary
    /// (rack/region, DHCP server identifier). Extra ones: BMC LAN addresses.
    pub addresses: Vec<Ipv4Addr>,
}

/// The lab network of one run. All names are given by the caller, unique
/// per run, at most 15 bytes, and should contain the run id (for `sweep`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSpec {
    pub run_id: String,
    pub netns: String,
    pub segments: Vec<SegmentSpec>,
}

/// What a lab created, written by the caller next to the run so a later
/// `down --all` can delete exactly these even without the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LabState {
    pub run_id: String,
    pub netns: Vec<String>,
    /// Links in the host namespace (bridges and veth host ends).
    pub links: Vec<String>,
}

impl LabState {
    /// Write the state list (JSON) so `down --all` can delete exactly these
    /// resources after a crash, without the spec.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }

    pub fn read(path: &Path) -> std::io::Result<LabState> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("lab state {}: {e}", path.display()),
            )
        })
    }
}

/// Where a second namespace lives, for joining a bridge to it (a kind node
/// container: its pid; another named lab namespace: its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetnsTarget {
    Named(String),
    Pid(u32),
}

impl NetnsTarget {
    fn ip_arg(&self) -> String {
        match self {
            NetnsTarget::Named(n) => n.clone(),
            NetnsTarget::Pid(p) => p.to_string(),
        }
    }
}

#[derive(Debug, Error)]
pub enum LabNetError {
    #[error("lab spec field `{field}`: {problem}")]
    Invalid { field: String, problem: String },
    #[error("lab network {step} failed for `{object}`: {source}")]
    Ip {
        step: &'static str,
        object: String,
        #[source]
        source: CmdError,
    },
    #[error("lab network namespace `{netns}`: setting its TCP settings failed: {source}")]
    Sysctl {
        netns: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "sweep prefix `{0}` is shorter than 4 characters; it could match other runs' resources"
    )]
    PrefixTooShort(String),
}

fn ip_err<'a>(step: &'static str, object: &'a str) -> impl FnOnce(CmdError) -> LabNetError + 'a {
    move |source| LabNetError::Ip {
        step,
        object: object.to_string(),
        source,
    }
}

impl LabSpec {
    /// Check names and addresses before anything is created.
    pub fn validate(&self) -> Result<(), LabNetError> {
        let mut seen = std::collections::HashSet::new();
        let mut check_name = |field: String, name: &str| -> Result<(), LabNetError> {
            let bad = |problem: String| LabNetError::Invalid {
                field: field.clone(),
                problem,
            };
            if name.is_empty() || name.len() > MAX_NAME_LEN {
                return Err(bad(format!("`{name}` must be 1..={MAX_NAME_LEN} bytes")));
            }
            if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            {
                return Err(bad(format!(
                    "`{name}` may contain only ASCII letters, digits, - _ ."
                )));
            }
            if !seen.insert(name.to_string()) {
                return Err(bad(format!("`{name}` is used twice in this lab")));
            }
            Ok(())
        };
        check_name("netns".into(), &self.netns)?;
        if self.segments.is_empty() {
            return Err(LabNetError::Invalid {
                field: "segments".into(),
                problem: "at least one segment is needed".into(),
            });
        }
        for (i, s) in self.segments.iter().enumerate() {
            check_name(format!("segments[{i}].bridge"), &s.bridge)?;
            check_name(format!("segments[{i}].veth_host"), &s.veth_host)?;
            check_name(format!("segments[{i}].veth_lab"), &s.veth_lab)?;
            if s.addresses.is_empty() {
                return Err(LabNetError::Invalid {
                    field: format!("segments[{i}].addresses"),
                    problem: "at least the primary (rack) address is needed".into(),
                });
            }
            for a in &s.addresses {
                if !s.subnet.contains(*a) || *a == s.subnet.addr || *a == s.subnet.broadcast() {
                    return Err(LabNetError::Invalid {
                        field: format!("segments[{i}].addresses"),
                        problem: format!("{a} is not a host address of {}", s.subnet),
                    });
                }
            }
        }
        Ok(())
    }

    /// The resources this spec creates, for the caller's state list.
    pub fn state(&self) -> LabState {
        LabState {
            run_id: self.run_id.clone(),
            netns: vec![self.netns.clone()],
            links: self
                .segments
                .iter()
                .flat_map(|s| [s.bridge.clone(), s.veth_host.clone()])
                .collect(),
        }
    }
}

/// A lab network that is up. Dropping it does not tear it down: teardown is
/// the runner's job (`down`), so `--keep` can leave it for inspection.
#[derive(Debug, Clone)]
pub struct Lab {
    pub spec: LabSpec,
}

impl Lab {
    /// Create (or complete) the lab network. Safe to call again.
    pub async fn up(spec: &LabSpec) -> Result<Lab, LabNetError> {
        spec.validate()?;
        ensure_netns(&spec.netns).await?;
        // Loopback up: servers may also listen on 127.0.0.1 inside the lab.
        ip(&["-n", &spec.netns, "link", "set", "lo", "up"])
            .run()
            .await
            .map_err(ip_err("set lo up", &spec.netns))?;
        for seg in &spec.segments {
            ensure_bridge(&seg.bridge).await?;
            ensure_veth_into(
                &seg.bridge,
                &seg.veth_host,
                &seg.veth_lab,
                &NetnsTarget::Named(spec.netns.clone()),
            )
            .await?;
            for (i, a) in seg.addresses.iter().enumerate() {
                let cidr = format!("{a}/{}", seg.subnet.prefix);
                // `replace` is add-or-keep: idempotent. Extra addresses are
                // secondary, so the primary stays the source of replies.
                let mut c = ip(&[
                    "-n",
                    &spec.netns,
                    "addr",
                    "replace",
                    &cidr,
                    "dev",
                    &seg.veth_lab,
                ]);
                if i == 0 {
                    c = c.args(["broadcast", &seg.subnet.broadcast().to_string()]);
                }
                c.run()
                    .await
                    .map_err(ip_err("add address", &seg.veth_lab))?;
            }
            // A fixed link-local address without DAD: the RA sender can start
            // at once instead of waiting for the kernel's DAD.
            ip(&[
                "-n",
                &spec.netns,
                "addr",
                "replace",
                "fe80::1/64",
                "dev",
                &seg.veth_lab,
                "nodad",
            ])
            .run()
            .await
            .map_err(ip_err("add link-local address", &seg.veth_lab))?;
            ip(&["-n", &spec.netns, "link", "set", &seg.veth_lab, "up"])
                .run()
                .await
                .map_err(ip_err("set up", &seg.veth_lab))?;
        }
        Ok(Lab { spec: spec.clone() })
    }

    /// Delete what `up` created. Safe to call again, and on a half-made lab.
    pub async fn down(spec: &LabSpec) -> Result<(), LabNetError> {
        delete_state(&spec.state()).await
    }

    pub fn netns(&self) -> &str {
        &self.spec.netns
    }

    /// Join `bridge` to another namespace (a kind node: `NetnsTarget::Pid`)
    /// with a new veth pair, and configure `addresses` (CIDR strings) on the
    /// far end. The caller records `veth_host` for teardown.
    pub async fn join_bridge(
        bridge: &str,
        veth_host: &str,
        veth_peer: &str,
        target: &NetnsTarget,
        addresses: &[String],
    ) -> Result<(), LabNetError> {
        ensure_veth_into(bridge, veth_host, veth_peer, target).await?;
        let ns = target.ip_arg();
        for a in addresses {
            ip_target(target, &["addr", "replace", a, "dev", veth_peer])
                .run()
                .await
                .map_err(ip_err("add address", veth_peer))?;
        }
        ip_target(target, &["link", "set", veth_peer, "up"])
            .run()
            .await
            .map_err(ip_err("set up", &ns))?;
        Ok(())
    }
}

/// A lab on a bridge someone else owns (target external): our namespace,
/// joined to `bridge` by a veth pair whose far end holds `addresses`
/// (CIDR strings). The bridge must exist and is neither created nor
/// changed; the caller records the namespace and `veth_host` for teardown.
pub async fn join_existing_bridge(
    netns: &str,
    bridge: &str,
    veth_host: &str,
    veth_lab: &str,
    addresses: &[String],
) -> Result<(), LabNetError> {
    let out = ip(&["-j", "-d", "link", "show", "dev", bridge]).run().await;
    let kind = out
        .ok()
        .and_then(|o| serde_json::from_str::<serde_json::Value>(&o).ok())
        .and_then(|v| v[0]["linkinfo"]["info_kind"].as_str().map(str::to_string));
    match kind.as_deref() {
        Some("bridge") => {}
        Some(other) => {
            return Err(LabNetError::Invalid {
                field: "lab bridge".into(),
                problem: format!(
                    "`{bridge}` is a {other} link, not a bridge; name the bridge the MAAS rack serves"
                ),
            });
        }
        None => {
            return Err(LabNetError::Invalid {
                field: "lab bridge".into(),
                problem: format!(
                    "no bridge `{bridge}` in the host namespace (see `ip link show type bridge`); name an existing one"
                ),
            });
        }
    }
    ensure_netns(netns).await?;
    ip(&["-n", netns, "link", "set", "lo", "up"])
        .run()
        .await
        .map_err(ip_err("set lo up", netns))?;
    Lab::join_bridge(
        bridge,
        veth_host,
        veth_lab,
        &NetnsTarget::Named(netns.to_string()),
        addresses,
    )
    .await
}

/// Delete exactly the resources in a state list; missing ones are fine.
pub async fn delete_state(state: &LabState) -> Result<(), LabNetError> {
    for ns in &state.netns {
        delete_netns(ns).await?;
    }
    for link in &state.links {
        delete_link(link).await?;
    }
    Ok(())
}

/// What `sweep` found and deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    pub netns: Vec<String>,
    pub links: Vec<String>,
}

/// Find and delete every namespace and host link whose name contains
/// `run_id_prefix` (processes inside those namespaces are killed first).
pub async fn sweep(run_id_prefix: &str) -> Result<Swept, LabNetError> {
    if run_id_prefix.len() < 4 {
        return Err(LabNetError::PrefixTooShort(run_id_prefix.to_string()));
    }
    let mut swept = Swept::default();
    for ns in list_netns().await? {
        if ns.contains(run_id_prefix) {
            delete_netns(&ns).await?;
            swept.netns.push(ns);
        }
    }
    for link in list_links().await? {
        if link.contains(run_id_prefix) {
            delete_link(&link).await?;
            swept.links.push(link);
        }
    }
    for bridge in forward_rule_bridges().await {
        if bridge.contains(run_id_prefix) {
            delete_forward_rule(&bridge).await?;
        }
    }
    Ok(swept)
}

/// Names of all named network namespaces.
pub async fn list_netns() -> Result<Vec<String>, LabNetError> {
    let out = ip(&["-j", "netns", "list"])
        .run()
        .await
        .map_err(ip_err("list", "netns"))?;
    Ok(json_names(&out, "name"))
}

/// Names of all links in the host namespace.
pub async fn list_links() -> Result<Vec<String>, LabNetError> {
    let out = ip(&["-j", "link", "show"])
        .run()
        .await
        .map_err(ip_err("list", "links"))?;
    Ok(json_names(&out, "ifname"))
}

fn json_names(out: &str, key: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or(serde_json::Value::Null);
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.get(key)?.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn ip(args: &[&str]) -> Cmd {
    Cmd::new("ip").args(args.iter().copied())
}

fn ip_target(target: &NetnsTarget, args: &[&str]) -> Cmd {
    match target {
        NetnsTarget::Named(n) => ip(&["-n", n]).args(args.iter().copied()),
        // nsenter reaches a container's namespace by pid without naming it.
        NetnsTarget::Pid(p) => Cmd::new("nsenter")
            .args([
                "-t".to_string(),
                p.to_string(),
                "-n".to_string(),
                "ip".to_string(),
            ])
            .args(args.iter().copied()),
    }
}

async fn link_exists(ns: Option<&str>, name: &str) -> bool {
    let mut c = Cmd::new("ip");
    if let Some(ns) = ns {
        c = c.args(["-n", ns]);
    }
    c.args(["link", "show", "dev", name]).run().await.is_ok()
}

async fn ensure_netns(name: &str) -> Result<(), LabNetError> {
    if !Path::new("/run/netns").join(name).exists() {
        ip(&["netns", "add", name])
            .run()
            .await
            .map_err(ip_err("create netns", name))?;
    }
    set_lab_tcp(name)
}

/// The lab namespace's own TCP settings (a namespace has its own copy of
/// these; the host's are not touched): no TIME_WAIT sockets, and a closed
/// connection's FIN_WAIT2 kept as a full socket for 5 minutes.
///
/// Why: pxelinux's lwIP starts over on every boot, from port 49153 with
/// initial sequence 6509. The lab's servers close first (HTTP/1.0), so a
/// machine that PXE-boots again within a minute (enlistment, then
/// commissioning) meets the last boot's TIME_WAIT, gets its ACK, resets
/// and resends its SYN 3 s later, for each file. A real machine reboots
/// through minutes of POST and never meets it; the lab's fast reboots do.
/// With no TIME_WAIT bucket the old connection is gone once both FINs are
/// acknowledged. The FIN_WAIT2 timeout must stay above TIME_WAIT's 60 s:
/// at or below it the kernel turns a closed socket's FIN_WAIT2 into a
/// TIME_WAIT bucket too, which would now mean no socket at all, and a
/// client still reading (pxelinux's window updates) would get a reset.
pub const LAB_TCP_SYSCTLS: [(&str, &str); 2] = [
    ("net/ipv4/tcp_max_tw_buckets", "0"),
    ("net/ipv4/tcp_fin_timeout", "360"),
];

fn set_lab_tcp(netns: &str) -> Result<(), LabNetError> {
    crate::lab::netns::run_in(Some(netns), || {
        for (key, value) in LAB_TCP_SYSCTLS {
            let path = Path::new("/proc/sys").join(key);
            std::fs::write(&path, value).map_err(|e| {
                std::io::Error::new(e.kind(), format!("write {value} > {}: {e}", path.display()))
            })?;
        }
        Ok(())
    })
    .map_err(|source| LabNetError::Sysctl {
        netns: netns.to_string(),
        source,
    })
}

async fn ensure_bridge(name: &str) -> Result<(), LabNetError> {
    if !link_exists(None, name).await {
        // forward_delay 0 + no STP: a NIC's port forwards at once (PXE ROMs
        // give up before a 15 s listening/learning phase ends).
        ip(&[
            "link",
            "add",
            "name",
            name,
            "type",
            "bridge",
            "forward_delay",
            "0",
            "stp_state",
            "0",
        ])
        .run()
        .await
        .map_err(ip_err("create bridge", name))?;
    }
    ensure_forward_rule(name).await?;
    // No IPv6 link-local on the host side: the host keeps no address on the lab.
    host_no_ipv6(name).await?;
    ip(&["link", "set", "dev", name, "up"])
        .run()
        .await
        .map_err(ip_err("set up", name))?;
    Ok(())
}

/// Comment on our iptables rules, so a sweep finds them by listing.
const RULE_COMMENT: &str = "maas-e2e-lab";

/// `iptables OP FORWARD` for the rule that lets frames stay on `bridge`
/// (`-I`, `-C`, `-D`); teardown and `down` use it too.
pub fn forward_rule(op: &str, bridge: &str) -> Cmd {
    Cmd::new("iptables").args([
        "-w",
        op,
        "FORWARD",
        "-i",
        bridge,
        "-o",
        bridge,
        "-m",
        "comment",
        "--comment",
        RULE_COMMENT,
        "-j",
        "ACCEPT",
    ])
}

/// With br_netfilter loaded (Docker loads it) bridged IPv4 frames pass the
/// host's iptables FORWARD chain, whose policy Docker sets to DROP, and a
/// bridge's own `nf_call_iptables 0` cannot override the global sysctl. So
/// frames that enter and leave this bridge are accepted explicitly; the
/// rule matches only traffic that stays on the bridge (nothing is routed).
async fn ensure_forward_rule(bridge: &str) -> Result<(), LabNetError> {
    if !crate::testing::have_program("iptables") {
        return Ok(());
    }
    if forward_rule("-C", bridge).run().await.is_err() {
        forward_rule("-I", bridge)
            .run()
            .await
            .map_err(ip_err("accept bridged frames (iptables)", bridge))?;
    }
    Ok(())
}

async fn delete_forward_rule(bridge: &str) -> Result<(), LabNetError> {
    if !crate::testing::have_program("iptables") {
        return Ok(());
    }
    while forward_rule("-C", bridge).run().await.is_ok() {
        forward_rule("-D", bridge)
            .run()
            .await
            .map_err(ip_err("delete iptables rule", bridge))?;
    }
    Ok(())
}

/// Bridges named in our FORWARD rules (`iptables -S` lines with our comment).
async fn forward_rule_bridges() -> Vec<String> {
    if !crate::testing::have_program("iptables") {
        return vec![];
    }
    let out = Cmd::new("iptables")
        .args(["-w", "-S", "FORWARD"])
        .run()
        .await
        .unwrap_or_default();
    out.lines()
        .filter(|l| l.contains(RULE_COMMENT))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "-i")?;
            words.next().map(str::to_string)
        })
        .collect()
}

async fn host_no_ipv6(name: &str) -> Result<(), LabNetError> {
    let key = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
    if Path::new(&key).exists() {
        std::fs::write(&key, "1").map_err(|e| LabNetError::Ip {
            step: "disable IPv6",
            object: name.to_string(),
            source: CmdError::Spawn {
                command: format!("write 1 > {key}"),
                program: key.clone(),
                source: e,
            },
        })?;
    }
    Ok(())
}

async fn ensure_veth_into(
    bridge: &str,
    veth_host: &str,
    veth_peer: &str,
    target: &NetnsTarget,
) -> Result<(), LabNetError> {
    let host_end = link_exists(None, veth_host).await;
    let peer_in_target = match target {
        NetnsTarget::Named(n) => link_exists(Some(n), veth_peer).await,
        NetnsTarget::Pid(_) => ip_target(target, &["link", "show", "dev", veth_peer])
            .run()
            .await
            .is_ok(),
    };
    if host_end && !peer_in_target {
        // Half-made pair from an interrupted run: start over.
        delete_link(veth_host).await?;
    }
    if !(host_end && peer_in_target) {
        ip(&[
            "link", "add", "name", veth_host, "type", "veth", "peer", "name", veth_peer,
        ])
        .run()
        .await
        .map_err(ip_err("create veth", veth_host))?;
        ip(&["link", "set", "dev", veth_peer, "netns", &target.ip_arg()])
            .run()
            .await
            .map_err(ip_err("move veth into netns", veth_peer))?;
    }
    host_no_ipv6(veth_host).await?;
    ip(&["link", "set", "dev", veth_host, "master", bridge, "up"])
        .run()
        .await
        .map_err(ip_err("attach veth to bridge", veth_host))?;
    Ok(())
}

/// Kill the processes inside a namespace (ours: tcpdump, dnsmasq, ipmipower
/// started in the lab), then delete it.
async fn delete_netns(name: &str) -> Result<(), LabNetError> {
    if !Path::new("/run/netns").join(name).exists() {
        return Ok(());
    }
    if let Ok(out) = ip(&["netns", "pids", name]).run().await {
        for pid in out.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    ip(&["netns", "delete", name])
        .run()
        .await
        .map_err(ip_err("delete netns", name))?;
    Ok(())
}

async fn delete_link(name: &str) -> Result<(), LabNetError> {
    delete_forward_rule(name).await?;
    if !link_exists(None, name).await {
        return Ok(());
    }
    match ip(&["link", "delete", "dev", name]).run().await {
        Ok(_) => Ok(()),
        // Deleting one veth end deletes its peer: gone in between is fine.
        Err(_) if !link_exists(None, name).await => Ok(()),
        Err(e) => Err(ip_err("delete link", name)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LabSpec {
        LabSpec {
            run_id: "r1234".into(),
            netns: "me2e-r1234".into(),
            segments: vec![SegmentSpec {
                bridge: "me2e-r1234-br0".into(),
                veth_host: "me2e-r1234-h0".into(),
                veth_lab: "me2e-r1234-l0".into(),
                subnet: "10.99.0.0/24".parse().unwrap(),
                addresses: vec![Ipv4Addr::new(10, 99, 0, 1), Ipv4Addr::new(10, 99, 0, 201)],
            }],
        }
    }

    #[test]
    fn subnet_math() {
        let s: Ipv4Subnet = "10.99.0.7/24".parse().unwrap();
        assert_eq!(s.to_string(), "10.99.0.0/24");
        assert_eq!(s.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(s.broadcast(), Ipv4Addr::new(10, 99, 0, 255));
        assert!(s.contains(Ipv4Addr::new(10, 99, 0, 200)));
        assert!(!s.contains(Ipv4Addr::new(10, 98, 0, 200)));
        assert!("10.0.0.0".parse::<Ipv4Subnet>().is_err());
        assert!("10.0.0.0/33".parse::<Ipv4Subnet>().is_err());
    }

    #[test]
    fn validate_rejects_long_names_and_foreign_addresses() {
        assert!(spec().validate().is_ok());
        let mut s = spec();
        s.segments[0].bridge = "me2e-r1234-bridge0".into();
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("segments[0].bridge") && e.contains("15"), "{e}");
        let mut s = spec();
        s.segments[0].addresses.push(Ipv4Addr::new(192, 168, 1, 1));
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("not a host address")
        );
        let mut s = spec();
        s.segments[0].veth_lab = s.netns.clone();
        assert!(s.validate().unwrap_err().to_string().contains("used twice"));
    }

    #[test]
    fn state_round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("network/lab-state.json");
        spec().state().write(&p).unwrap();
        assert_eq!(LabState::read(&p).unwrap(), spec().state());
    }

    #[test]
    fn state_lists_every_host_link() {
        let st = spec().state();
        assert_eq!(st.netns, vec!["me2e-r1234"]);
        assert_eq!(st.links, vec!["me2e-r1234-br0", "me2e-r1234-h0"]);
    }
}
