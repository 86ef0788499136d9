//! The BMC in a lab network namespace, and the libvirt power backend
//! driven by ipmipower: on libvirt's in-process test:///default driver and
//! on the real libvirtd (qemu:///system, a diskless TCG domain).

use maas_e2e::bmc::config::PowerConfig;
use maas_e2e::cmd::Cmd;

use crate::common::*;

/// Deletes the namespace this test created, on every exit path.
struct NetnsGuard(String);

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = Cmd::new("ip")
            .args(["netns", "delete", &self.0])
            .run_blocking();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lan_socket_bound_inside_a_network_namespace() {
    if !maas_e2e::testing::require_root()
        || !have("ipmipower", "freeipmi-tools")
        || !have("ip", "iproute2")
    {
        return;
    }
    let ns = format!("me2e-bmc-{}-{}", std::process::id(), rand::random::<u16>());
    Cmd::new("ip")
        .args(["netns", "add", &ns])
        .run()
        .await
        .unwrap();
    let _guard = NetnsGuard(ns.clone());
    Cmd::new("ip")
        .args(["-n", &ns, "link", "set", "lo", "up"])
        .run()
        .await
        .unwrap();
    let mut b = bmc("n1");
    b.lan.netns = Some(ns.clone());
    b.lan.address = "127.0.0.1:623".into();
    let lab = Lab::start(vec![b]).await;
    // Inside the namespace, port 623 answers...
    let out = Cmd::new("ipmipower")
        .in_netns(&ns)
        .args([
            "-W",
            "opensesspriv",
            "-l",
            "OPERATOR",
            "--driver-type",
            "LAN_2_0",
            "-h",
            "127.0.0.1",
            "-u",
            OPERATOR.0,
            "-p",
        ])
        .secret_arg(OPERATOR.1)
        .args(["--on"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success() && out.stdout.contains(": ok"),
        "{out:?}"
    );
    assert!(lab.fleet.power_state("n1").unwrap());
    // ...while the host namespace's loopback has nothing of ours there.
    let host = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    host.set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    host.send_to(&maas_e2e::bmc::codec::rmcp::ping(1), "127.0.0.1:623")
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        host.recv_from(&mut buf).is_err(),
        "the BMC is not in the host namespace"
    );
    lab.fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libvirt_backend_driven_by_ipmipower() {
    if !have("ipmipower", "freeipmi-tools") {
        return;
    }
    let mut b = bmc("n1");
    // libvirt's in-process test driver: a running domain named "test".
    b.power = PowerConfig::Libvirt {
        uri: "test:///default".into(),
        domain: "test".into(),
    };
    let mut missing = bmc("n2");
    missing.power = PowerConfig::Libvirt {
        uri: "test:///default".into(),
        domain: "no-such-domain".into(),
    };
    let lab = Lab::start(vec![b, missing]).await;
    let port = lab.port("n1");
    let power = |port: u16, op: &'static str| async move {
        freeipmi(
            "ipmipower",
            port,
            OPERATOR,
            &[
                "-W",
                "opensesspriv",
                "-l",
                "OPERATOR",
                "--driver-type",
                "LAN_2_0",
                op,
            ],
        )
        .await
    };
    assert!(power(port, "--stat").await.stdout.contains(": on"));
    assert!(power(port, "--off").await.stdout.contains(": ok"));
    assert!(!lab.fleet.power_state("n1").unwrap());
    assert!(power(port, "--stat").await.stdout.contains(": off"));
    assert!(power(port, "--on").await.stdout.contains(": ok"));
    assert!(lab.fleet.power_state("n1").unwrap());
    // A backend failure is completion code 0xC0 ("node busy"), never a crash.
    let out = power(lab.port("n2"), "--stat").await;
    assert!(
        !out.stdout.contains(": on") && !out.stdout.contains(": off"),
        "{out:?}"
    );
    assert!(
        lab.transcript().contains("\"cc\":192"),
        "0xC0 in the transcript"
    );
    lab.fleet.shutdown().await;
}

/// Undefines (and stops) the libvirt domain this test defined, on every exit path.
struct DomainGuard(virt::domain::Domain);

impl Drop for DomainGuard {
    fn drop(&mut self) {
        let _ = self.0.destroy();
        let _ = self.0.undefine();
    }
}

/// The libvirt backend on the real libvirtd (qemu:///system): a diskless
/// TCG domain driven through the BMC by ipmipower, each action checked on
/// the domain itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libvirt_backend_on_real_libvirtd() {
    if !maas_e2e::testing::require_root()
        || !have("ipmipower", "freeipmi-tools")
        || !have("qemu-system-x86_64", "qemu-system-x86")
        || !maas_e2e::testing::require(
            "libvirtd answering on qemu:///system",
            maas_e2e::lab::vm::connect().is_ok(),
            "run ci/setup-host.sh (starts libvirtd)",
        )
    {
        return;
    }
    let conn = maas_e2e::lab::vm::connect().unwrap();
    let name = format!("me2e-bmcpower-{:08x}", rand::random::<u32>());
    let xml = format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>32</memory>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os><features><acpi/></features>\
         <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>"
    );
    let domain = DomainGuard(conn.define_domain_xml(&xml).unwrap());
    let mut b = bmc("n1");
    b.power = PowerConfig::Libvirt {
        uri: "qemu:///system".into(),
        domain: name.clone(),
    };
    let lab = Lab::start(vec![b]).await;
    let power = |op: &'static str| {
        let port = lab.port("n1");
        async move {
            freeipmi(
                "ipmipower",
                port,
                OPERATOR,
                &["--driver-type", "LAN_2_0", "-l", "OPERATOR", op],
            )
            .await
            .stdout
        }
    };
    let d = &domain.0;
    assert!(!d.is_active().unwrap(), "defined, not started");
    assert!(power("--stat").await.contains(": off"));
    assert!(power("--on").await.contains(": ok"));
    assert!(d.is_active().unwrap(), "--on started the domain");
    assert!(power("--stat").await.contains(": on"));
    // A fresh lookup each time: a domain handle keeps the id it was made with.
    let id_now = || conn.lookup_domain_by_name(&name).unwrap().id();
    let id = id_now().expect("a running domain has an id");
    // Reset keeps the QEMU process (same domain id); cycle replaces it.
    assert!(power("--reset").await.contains(": ok"));
    assert!(d.is_active().unwrap());
    assert_eq!(id_now(), Some(id), "reset is not a cycle");
    assert!(power("--cycle").await.contains(": ok"));
    assert!(d.is_active().unwrap(), "on again after the cycle");
    assert!(
        id_now().is_some_and(|new| new != id),
        "cycle stopped and started the domain"
    );
    assert!(power("--off").await.contains(": ok"));
    assert!(!d.is_active().unwrap(), "--off destroyed the domain");
    assert!(power("--stat").await.contains(": off"));
    // The domain goes away under the BMC: an error answer, never a crash.
    domain.0.undefine().unwrap();
    let out = power("--stat").await;
    assert!(!out.contains(": on") && !out.contains(": off"), "{out}");
    assert!(
        lab.transcript().contains("\"cc\":192"),
        "0xC0 in the transcript"
    );
    lab.fleet.shutdown().await;
}
