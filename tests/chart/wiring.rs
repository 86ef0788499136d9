//! The lab-to-node wiring against a real container started from a locally
//! built image (a network namespace with the node bridge inside, as in a
//! kind node), checked by a DHCP exchange across it: busybox udhcpd in the
//! container on the PXE bridge, busybox udhcpc in the lab namespace. All
//! traffic stays in the namespaces this test created.

use std::net::Ipv4Addr;
use std::path::Path;

use maas_e2e::cmd::Cmd;
use maas_e2e::targets::chart::wiring::{
    DECOY_VETH, plan_wiring, unwire_cmds, unwire_node, wire_node,
};
use maas_e2e::testing::{have_program, require, require_program, require_root};

use crate::common::default_options;

pub const NODE_IMAGE: &str = "maas-e2e/chart-node-sim:test";

pub fn prerequisites() -> bool {
    require_root()
        && require_program("ip", "iproute2")
        && require_program("busybox", "busybox-static")
        && require(
            "docker",
            have_program("docker"),
            "apt-get install docker.io (ci/setup-host.sh --docker)",
        )
        && require(
            "a running dockerd",
            Cmd::new("docker").arg("info").run_blocking().is_ok(),
            "start it: ci/setup-host.sh --docker",
        )
}

/// Build the node stand-in from tests/chart/node-image with the host's
/// static busybox.
pub async fn build_node_image() {
    let ctx = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chart/node-image/Dockerfile");
    std::fs::copy(src, ctx.path().join("Dockerfile")).unwrap();
    let busybox = maas_e2e::testing::have_program("busybox");
    assert!(busybox);
    let which = Cmd::new("sh")
        .args(["-c", "command -v busybox"])
        .run()
        .await
        .unwrap();
    std::fs::copy(which.trim(), ctx.path().join("busybox")).unwrap();
    Cmd::new("docker")
        .args([
            "build",
            "--quiet",
            "--tag",
            NODE_IMAGE,
            &ctx.path().display().to_string(),
        ])
        .run()
        .await
        .unwrap();
}

/// Removes the container, the lab namespace and the node's netns name.
struct Teardown {
    container: String,
    lab_netns: String,
    unwire: Vec<Cmd>,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        for c in &self.unwire {
            let _ = c.run_blocking();
        }
        let _ = Cmd::new("docker")
            .args(["rm", "--force", &self.container])
            .run_blocking();
        let _ = Cmd::new("ip")
            .args(["netns", "delete", &self.lab_netns])
            .run_blocking();
    }
}

fn lab(ns: &str, args: &[&str]) -> Cmd {
    Cmd::new("ip").args(["-n", ns]).args(args.iter().copied())
}

#[tokio::test]
async fn a_lab_client_gets_a_lease_from_a_dhcp_server_on_the_node_bridge() {
    if !prerequisites() {
        return;
    }
    build_node_image().await;
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let mut opts = default_options();
    opts.run_id = format!("w{id}");
    opts.wiring.lab_netns = Some(format!("me2e-w{id}-lab"));
    let mut node = plan_wiring(&opts).remove(0);
    node.node_container = format!("me2e-chart-node-{id}");
    let link = node.links[0].clone();
    let guard = Teardown {
        container: node.node_container.clone(),
        lab_netns: node.lab_netns.clone().unwrap(),
        unwire: unwire_cmds(&node),
    };

    // The lab side, as the lab stage makes it: a namespace with the PXE
    // bridge, and a "machine" port (vmc) on it.
    let lab_netns = node.lab_netns.clone().unwrap();
    Cmd::new("ip")
        .args(["netns", "add", &lab_netns])
        .run()
        .await
        .unwrap();
    for args in [
        &["link", "set", "lo", "up"][..],
        &["link", "add", &link.lab_bridge, "type", "bridge"],
        &["link", "set", &link.lab_bridge, "up"],
        &["link", "add", "vmc", "type", "veth", "peer", "name", "vmb"],
        &["link", "set", "vmb", "master", &link.lab_bridge],
        &["link", "set", "vmb", "up"],
        &["link", "set", "vmc", "up"],
    ] {
        lab(&lab_netns, args).run().await.unwrap();
    }

    // The node: no network but its own; it serves DHCP on the node bridge
    // once the wiring has put the rack's address there.
    let bridge = &link.node_bridge;
    let script = format!(
        "printf 'start 10.40.0.100\\nend 10.40.0.199\\ninterface {bridge}\\nlease_file /tmp/udhcpd.leases\\noption subnet 255.255.255.0\\n' > /tmp/udhcpd.conf; \
         busybox touch /tmp/udhcpd.leases; \
         while ! busybox ip -4 addr show dev {bridge} 2>/dev/null | busybox grep -q inet; do busybox sleep 0.2; done; \
         exec busybox udhcpd -f /tmp/udhcpd.conf"
    );
    Cmd::new("docker")
        .args([
            "run",
            "--detach",
            "--name",
            &node.node_container,
            "--network",
            "none",
            "--cap-add",
            "NET_ADMIN",
            "--cap-add",
            "NET_RAW",
        ])
        .args([
            "--label",
            "maas-e2e.test=chart",
            NODE_IMAGE,
            "sh",
            "-c",
            &script,
        ])
        .run()
        .await
        .unwrap();

    // The code under test: the same wiring the chart target runs.
    wire_node(&node).await.unwrap();

    // Inside the node: the bridge carries the rack's address; the decoy veth is there.
    let links = Cmd::new("docker")
        .args([
            "exec",
            &node.node_container,
            "busybox",
            "ip",
            "-o",
            "addr",
            "show",
        ])
        .run()
        .await
        .unwrap();
    assert!(
        links.contains(bridge.as_str()) && links.contains("10.40.0.2/24"),
        "{links}"
    );
    let all = Cmd::new("docker")
        .args([
            "exec",
            &node.node_container,
            "busybox",
            "ip",
            "-o",
            "link",
            "show",
        ])
        .run()
        .await
        .unwrap();
    assert!(all.contains(DECOY_VETH), "{all}");
    assert!(
        all.contains(&format!("master {bridge}")),
        "the node end of the veth is on the bridge: {all}"
    );

    // The DHCP exchange across lab bridge -> veth -> node bridge.
    // A closed file: an executable still open for writing cannot be run.
    let hook_dir = tempfile::tempdir().unwrap();
    let hook = hook_dir.path().join("hook");
    std::fs::write(
        &hook,
        "#!/bin/sh\n[ \"$1\" = bound ] && echo \"LEASE ip=$ip serverid=$serverid\"\nexit 0\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Cmd::new("busybox")
        .args([
            "udhcpc",
            "-f",
            "-q",
            "-n",
            "-t",
            "15",
            "-T",
            "1",
            "-i",
            "vmc",
            "-s",
            &hook.display().to_string(),
        ])
        .in_netns(&lab_netns)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .await
        .unwrap();
    let (out, err) = (out.stdout, out.stderr);
    let lease = out
        .lines()
        .find(|l| l.starts_with("LEASE "))
        .unwrap_or_else(|| panic!("no lease: {out}\n{err}"));
    let ip: Ipv4Addr = lease
        .split_whitespace()
        .find_map(|w| w.strip_prefix("ip="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (Ipv4Addr::new(10, 40, 0, 100)..=Ipv4Addr::new(10, 40, 0, 199)).contains(&ip),
        "{lease}"
    );
    assert!(
        lease.contains("serverid=10.40.0.2"),
        "the node bridge's address served it: {lease}"
    );

    // The code under test undoes it, with the node still running (so the
    // container's removal cannot be what cleaned up).
    unwire_node(&node).await;
    let all = Cmd::new("docker")
        .args([
            "exec",
            &node.node_container,
            "busybox",
            "ip",
            "-o",
            "link",
            "show",
        ])
        .run()
        .await
        .expect("the node container still runs");
    assert!(
        !all.contains(DECOY_VETH) && !all.contains(bridge.as_str()),
        "unwire left links in the node: {all}"
    );
    let lab_links = lab(&lab_netns, &["-o", "link", "show"])
        .run()
        .await
        .unwrap();
    assert!(
        !lab_links.contains(&link.lab_end),
        "unwire left the lab end of the veth: {lab_links}"
    );
    assert!(
        !maas_e2e::lab::netns::netns_path(&node.node_netns).exists(),
        "unwire left the node's netns name"
    );

    drop(guard);
    // Everything is gone again.
    assert!(
        Cmd::new("ip")
            .args(["netns", "list"])
            .run()
            .await
            .unwrap()
            .lines()
            .all(|l| !l.contains(&id))
    );
}

#[tokio::test]
async fn wiring_without_the_lab_namespace_says_so_and_touches_nothing() {
    let mut opts = default_options();
    opts.run_id = format!("n{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    opts.wiring.lab_netns = Some(format!("me2e-{}-nolab", opts.run_id));
    let node = plan_wiring(&opts).remove(0);
    let err = wire_node(&node).await.unwrap_err().to_string();
    assert!(
        err.contains(opts.wiring.lab_netns.as_deref().unwrap()) && err.contains("lab stage"),
        "{err}"
    );
    assert!(!maas_e2e::lab::netns::netns_path(&node.node_netns).exists());
}
