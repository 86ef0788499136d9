//! Integration tests of the lab (root, ip(8), libvirt, QEMU under TCG): the
//! lab network, the DHCP/TFTP/HTTP/RA servers against real clients, PXE
//! boots of a BIOS and a UEFI VM to a console marker, isolation of two
//! labs, and the sweep after SIGKILL.

#[path = "lab/bench.rs"]
mod bench;
#[path = "lab/pxe_http_soak.rs"]
mod pxe_http_soak;
#[path = "lab/pxelinux_uuid.rs"]
mod pxelinux_uuid;
#[path = "lab/reconnect.rs"]
mod reconnect;
#[path = "lab/support.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use maas_e2e::cmd::Cmd;
use maas_e2e::lab::capture::{self, Capture};
use maas_e2e::lab::dhcp::Firmware;
use maas_e2e::lab::events::LabEventKind;
use maas_e2e::lab::net::{self, Lab, NetnsTarget};
use maas_e2e::lab::vm;
use maas_e2e::testing::{require, require_program, require_root};
use support::{BootFlow, TestLab, new_run_id};

fn net_prereqs() -> bool {
    require_root()
        && require_program("ip", "iproute2")
        && require_program("busybox", "busybox-static")
}

fn vm_prereqs() -> bool {
    net_prereqs()
        && require_program("qemu-system-x86_64", "qemu-system-x86")
        && require_program("qemu-img", "qemu-utils")
        && require(
            "libvirtd answering on qemu:///system",
            vm::connect().is_ok(),
            "run ci/setup-host.sh (starts libvirtd)",
        )
        && require(
            "a Debian kernel in /boot",
            support::debian_kernel().is_some(),
            "apt-get install linux-image-amd64",
        )
        && require(
            "OVMF",
            Path::new(vm::OVMF_CODE).exists(),
            "apt-get install ovmf",
        )
}

/// Everything on this host whose name carries `run_id`.
async fn leftovers(run_id: &str) -> Vec<String> {
    let mut left = vec![];
    left.extend(
        net::list_netns()
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.contains(run_id))
            .map(|n| format!("netns {n}")),
    );
    left.extend(
        net::list_links()
            .await
            .unwrap()
            .into_iter()
            .filter(|n| n.contains(run_id))
            .map(|n| format!("link {n}")),
    );
    let rules = Cmd::new("iptables")
        .args(["-w", "-S", "FORWARD"])
        .run()
        .await
        .unwrap_or_default();
    left.extend(
        rules
            .lines()
            .filter(|l| l.contains(run_id))
            .map(|l| format!("iptables {l}")),
    );
    let conn = vm::connect().unwrap();
    for d in conn.list_all_domains(0).unwrap() {
        let name = d.name().unwrap_or_default();
        if name.contains(run_id) || vm::run_id_of(&d).is_some_and(|r| r == run_id) {
            left.push(format!("domain {name}"));
        }
    }
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            // qemu (its -name carries the domain name), tcpdump (its -w path).
            if c.contains(run_id) && !c.contains("lab-sigkill-holder") {
                left.push(format!("process {}: {c}", e.file_name().to_string_lossy()));
            }
        }
    }
    left
}

/// A client namespace on the lab bridge (the test's stand-in for a machine).
async fn client_netns(lab: &TestLab, tag: &str) -> (String, String) {
    let ns = format!("{}-c{tag}", lab.run_id);
    let iface = format!("{}-l{tag}", lab.run_id);
    if !Path::new("/run/netns").join(&ns).exists() {
        Cmd::new("ip")
            .args(["netns", "add", &ns])
            .run()
            .await
            .unwrap();
    }
    Lab::join_bridge(
        lab.bridge(),
        &format!("{}-h{tag}", lab.run_id),
        &iface,
        &NetnsTarget::Named(ns.clone()),
        &[],
    )
    .await
    .expect("join bridge");
    (ns, iface)
}

async fn udhcpc(ns: &str, iface: &str) -> Result<String, String> {
    Cmd::new("busybox")
        .args([
            "udhcpc",
            "-i",
            iface,
            "-n",
            "-q",
            "-f",
            "-t",
            "3",
            "-T",
            "1",
            "-s",
            "/bin/true",
        ])
        .in_netns(ns)
        .timeout(Duration::from_secs(20))
        .output()
        .await
        .map(|o| format!("{}{}", o.stdout, o.stderr))
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn lab_network_up_twice_down_twice() {
    if !net_prereqs() {
        return;
    }
    let run_id = new_run_id();
    let spec = support::lab_spec(&run_id);
    Lab::up(&spec).await.expect("first up");
    Lab::up(&spec).await.expect("second up is a no-op");
    let seg = &spec.segments[0];
    // Lab addresses live in the namespace only.
    let inside = Cmd::new("ip")
        .args([
            "-n",
            &spec.netns,
            "-4",
            "-o",
            "addr",
            "show",
            "dev",
            &seg.veth_lab,
        ])
        .run()
        .await
        .unwrap();
    for a in &seg.addresses {
        assert!(
            inside.contains(&a.to_string()),
            "{a} missing in netns: {inside}"
        );
    }
    let host = Cmd::new("ip")
        .args(["-o", "addr", "show"])
        .run()
        .await
        .unwrap();
    assert!(
        !host.contains(&seg.addresses[0].to_string()),
        "lab address leaked to host: {host}"
    );
    for link in [&seg.bridge, &seg.veth_host] {
        let a = Cmd::new("ip")
            .args(["-o", "addr", "show", "dev", link.as_str()])
            .run()
            .await
            .unwrap();
        assert!(a.trim().is_empty(), "host-side {link} has an address: {a}");
    }
    let master = Cmd::new("ip")
        .args(["-o", "link", "show", "dev", &seg.veth_host])
        .run()
        .await
        .unwrap();
    assert!(
        master.contains(&format!("master {}", seg.bridge)),
        "{master}"
    );
    // The bridge's only port is our veth: no uplink.
    let ports = Cmd::new("ip")
        .args(["-o", "link", "show", "master", &seg.bridge])
        .run()
        .await
        .unwrap();
    assert_eq!(ports.lines().count(), 1, "bridge ports: {ports}");
    Lab::down(&spec).await.expect("first down");
    Lab::down(&spec).await.expect("second down is a no-op");
    assert_eq!(leftovers(&run_id).await, Vec::<String>::new());
}

/// pxelinux's race: a retransmitted probe for a missing file must not be
/// answered a second time, or the late "not found" lands on the client
/// port already waiting for the next file. One client port sends the same
/// RRQ twice, then asks for a file that exists: exactly one error comes
/// back, and the existing file's first block does.
#[tokio::test(flavor = "multi_thread")]
async fn tftp_answers_a_retransmitted_request_once() {
    if !net_prereqs() {
        return;
    }
    let run_id = new_run_id();
    let lab = TestLab::with_servers(&run_id, BootFlow::IpxeScript, false, &[]).await;
    let client = maas_e2e::lab::netns::bind_udp(
        Some(&lab.spec.netns),
        std::net::SocketAddr::from((lab.server_ip, 0)),
    )
    .unwrap();
    let client = tokio::net::UdpSocket::from_std(client).unwrap();
    let server = std::net::SocketAddr::from((lab.server_ip, 69));
    let rrq = |f: &str| [&b"\0\x01"[..], f.as_bytes(), b"\0octet\0"].concat();
    client
        .send_to(&rrq("no-such-file.bin"), server)
        .await
        .unwrap();
    client
        .send_to(&rrq("no-such-file.bin"), server)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.send_to(&rrq("lpxelinux.0"), server).await.unwrap();
    let (mut errors, mut data) = (0, 0);
    let mut buf = [0u8; 2048];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline, client.recv_from(&mut buf)).await {
        match (buf[1], n) {
            (5, _) => errors += 1,
            (3, 516) if buf[3] == 1 => data += 1,
            _ => {}
        }
    }
    lab.teardown().await;
    assert_eq!(errors, 1, "the retransmitted request was answered again");
    assert!(data >= 1, "the next file's first block did not come");
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_answer_real_dhcp_tftp_http_clients_and_capture() {
    if !net_prereqs() || !require_program("tcpdump", "tcpdump") || !require_program("curl", "curl")
    {
        return;
    }
    let run_id = new_run_id();
    let lab = TestLab::with_servers(&run_id, BootFlow::IpxeScript, true, &[]).await;
    let cap = Capture::start(
        &lab.spec.netns,
        &lab.spec.segments[0].veth_lab,
        &capture::capture_path(&lab.run_dir),
    )
    .await
    .expect("capture");
    let mut rx = lab.events.subscribe();
    let (ns, iface) = client_netns(&lab, "1").await;
    let out = udhcpc(&ns, &iface).await.expect("udhcpc ran");
    let ip = lab.server_ip;
    assert!(
        out.contains(&format!("obtained from {ip}")),
        "udhcpc: {out}"
    );
    // udhcpc ran without a script: configure the leased address ourselves.
    let leased = out
        .split("lease of ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("leased address");
    assert!(
        lab.spec.segments[0]
            .subnet
            .contains(leased.parse().unwrap()),
        "{leased} outside the lab subnet"
    );
    Cmd::new("ip")
        .args([
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{leased}/24"),
            "dev",
            &iface,
        ])
        .run()
        .await
        .unwrap();
    // TFTP with the blksize option, byte for byte.
    let got = lab.run_dir.join("tftp-got");
    Cmd::new("busybox")
        .args(["tftp", "-g", "-b", "1432", "-r", "lpxelinux.0", "-l"])
        .arg(got.display().to_string())
        .arg(ip.to_string())
        .in_netns(&ns)
        .timeout(Duration::from_secs(20))
        .run()
        .await
        .expect("tftp get");
    assert_eq!(
        std::fs::read(&got).unwrap(),
        std::fs::read("/usr/lib/PXELINUX/lpxelinux.0").unwrap()
    );
    // HTTP: dynamic content and a file.
    let script = Cmd::new("curl")
        .args(["-sf", &format!("http://{ip}/boot.ipxe")])
        .in_netns(&ns)
        .run()
        .await
        .expect("curl");
    assert!(
        script.starts_with("#!ipxe") && script.contains(&lab.token),
        "{script}"
    );
    let missing = Cmd::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{ip}/nope"),
        ])
        .in_netns(&ns)
        .run()
        .await
        .unwrap();
    assert_eq!(missing, "404");
    // Every request is an event, with the client's MAC filled in.
    let mut kinds = vec![];
    while let Ok(e) = rx.try_recv() {
        kinds.push((e.kind, e.mac.is_some(), e.path.clone()));
    }
    for k in [
        LabEventKind::DhcpDiscover,
        LabEventKind::DhcpOffer,
        LabEventKind::DhcpRequest,
        LabEventKind::DhcpAck,
        LabEventKind::TftpRead,
        LabEventKind::TftpDone,
        LabEventKind::HttpGet,
    ] {
        assert!(
            kinds.iter().any(|(kk, mac, _)| *kk == k && *mac),
            "no {k:?} with a MAC in {kinds:?}"
        );
    }
    let jsonl = std::fs::read_to_string(lab.run_dir.join("network/events.jsonl")).unwrap();
    assert!(jsonl.lines().count() >= kinds.len());
    // The capture saw the DHCP exchange.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let path = cap.path.clone();
    cap.stop().await;
    assert!(path.to_string_lossy().contains("SECRET"));
    let dump = Cmd::new("tcpdump")
        .args(["-n", "-r"])
        .arg(path.display().to_string())
        .run()
        .await
        .unwrap();
    assert!(
        dump.contains(".67 > ") && dump.contains("BOOTP/DHCP"),
        "capture: {dump}"
    );
    lab.teardown().await;
    assert_eq!(leftovers(&run_id).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_labs_do_not_see_each_others_dhcp() {
    if !net_prereqs() {
        return;
    }
    let (id_a, id_b) = (new_run_id(), new_run_id());
    let a = TestLab::with_servers(&id_a, BootFlow::IpxeScript, false, &[]).await;
    let b = TestLab::with_servers(&id_b, BootFlow::IpxeScript, false, &[]).await;
    let mut rx_a = a.events.subscribe();
    let mut rx_b = b.events.subscribe();
    let (ns, iface) = client_netns(&a, "1").await;
    let out = udhcpc(&ns, &iface).await.unwrap();
    assert!(
        out.contains(&format!("obtained from {}", a.server_ip)),
        "client on lab A: {out}"
    );
    let (ns_b, iface_b) = client_netns(&b, "1").await;
    let out_b = udhcpc(&ns_b, &iface_b).await.unwrap();
    assert!(
        out_b.contains(&format!("obtained from {}", b.server_ip)),
        "client on lab B: {out_b}"
    );
    let macs = |rx: &mut tokio::sync::broadcast::Receiver<maas_e2e::lab::events::LabEvent>| {
        let mut m = std::collections::BTreeSet::new();
        while let Ok(e) = rx.try_recv() {
            if e.kind == LabEventKind::DhcpDiscover {
                m.insert(e.mac.unwrap());
            }
        }
        m
    };
    let (seen_a, seen_b) = (macs(&mut rx_a), macs(&mut rx_b));
    assert_eq!(seen_a.len(), 1, "lab A saw {seen_a:?}");
    assert_eq!(seen_b.len(), 1, "lab B saw {seen_b:?}");
    assert!(
        seen_a.is_disjoint(&seen_b),
        "a DHCP client was seen by both labs: {seen_a:?} {seen_b:?}"
    );
    a.teardown().await;
    b.teardown().await;
}

async fn pxe_boot_to_marker(firmware: Firmware, flow: BootFlow, model: vm::NicModel) {
    if !vm_prereqs() {
        return;
    }
    let run_id = new_run_id();
    let mac = "52:54:00:e2:00:01";
    let mut lab = TestLab::with_servers(&run_id, flow, true, &[mac]).await;
    let conn = vm::connect().unwrap();
    let accel = vm::detect_accel(&conn);
    eprintln!("accelerator: {accel:?}");
    let mut spec = lab.domain(
        &format!("{firmware:?}").to_lowercase(),
        firmware,
        model,
        mac,
    );
    spec.accel = accel;
    let xml = vm::define(&conn, &spec).await.expect("define");
    std::fs::write(lab.run_dir.join(format!("{}.xml", spec.name)), &xml).unwrap();
    vm::start(&conn, &spec.name).expect("start");
    let line = support::wait_for_line(
        &spec.console_log,
        support::MARKER_PREFIX,
        Duration::from_secs(420),
    )
    .await;
    let console = std::fs::read_to_string(&spec.console_log).unwrap_or_default();
    let tail: String = console
        .chars()
        .rev()
        .take(3000)
        .collect::<String>()
        .chars()
        .rev()
        .collect();
    let line = line.unwrap_or_else(|| panic!("no marker on the console; tail:\n{tail}"));
    assert!(
        line.contains(&format!("token={}", lab.token)),
        "marker without our command line: {line}"
    );
    assert!(
        !line.to_ascii_uppercase().contains("QEMU"),
        "CPU model shows QEMU: {line}"
    );
    // The guest sees none of what systemd-detect-virt (so MAAS 3.6's
    // bmc_config.py) takes for a VM: no hypervisor flag, our DMI strings,
    // our type 0 with bit 4 of its byte 0x13 clear.
    let virt = console
        .lines()
        .find(|l| l.contains("MAAS-E2E-LAB-VIRT "))
        .unwrap_or_else(|| panic!("no virt line on the console; tail:\n{tail}"));
    eprintln!("guest: {virt}");
    for want in [
        "hypervisor_flag=no",
        "sys_vendor=maas-e2e|",
        "product_name=lab machine|",
        "board_vendor=maas-e2e|",
        "bios_vendor=maas-e2e|",
    ] {
        assert!(virt.contains(want), "no `{want}` in: {virt}");
    }
    let byte: u8 = virt
        .rsplit("type0_byte_0x13=")
        .next()
        .and_then(|b| b.trim().parse().ok())
        .unwrap_or_else(|| panic!("no SMBIOS type 0 byte 0x13 read: {virt}"));
    assert_eq!(byte & 0x10, 0, "the VM bit is set: {virt}");
    assert_eq!(
        byte & 0x08 != 0,
        firmware == Firmware::Uefi,
        "UEFI bit: {virt}"
    );
    vm::wait_state(
        &conn,
        &spec.name,
        virt::domain::DomainState::Shutoff,
        Duration::from_secs(120),
    )
    .await
    .expect("powers off");
    // The boot went through our servers.
    let events = std::fs::read_to_string(lab.run_dir.join("network/events.jsonl")).unwrap();
    assert!(
        events.contains("\"DhcpAck\"") && events.contains(mac),
        "no DHCP ack for the VM"
    );
    assert!(
        events.contains("/initrd.img"),
        "initrd not fetched over HTTP"
    );
    if flow == BootFlow::PxelinuxTftp {
        assert!(
            events.contains("lpxelinux.0") && events.contains("pxelinux.cfg/"),
            "pxelinux not fetched over TFTP"
        );
    }
    vm::undefine(&conn, &spec.name).expect("undefine");
    vm::undefine(&conn, &spec.name).expect("undefine again is a no-op");
    if let Some(nv) = &spec.nvram {
        assert!(!nv.exists(), "NVRAM left behind");
    }
    lab.teardown().await;
    assert_eq!(leftovers(&run_id).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn bios_vm_pxe_boots_via_tftp_pxelinux_to_marker() {
    pxe_boot_to_marker(Firmware::Bios, BootFlow::PxelinuxTftp, vm::NicModel::E1000).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn uefi_vm_pxe_boots_via_ipxe_http_to_marker() {
    pxe_boot_to_marker(Firmware::Uefi, BootFlow::IpxeScript, vm::NicModel::Virtio).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sweep_after_sigkill_leaves_nothing() {
    if !vm_prereqs() {
        return;
    }
    let run_id = new_run_id();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lab-sigkill-holder"))
        .arg(&run_id)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = Path::new(maas_e2e::plan::VM_ROOT)
        .join(&run_id)
        .join("READY");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !ready.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready.exists(), "child never got ready");
    let before = leftovers(&run_id).await;
    assert!(
        before.iter().any(|l| l.starts_with("domain"))
            && before.iter().any(|l| l.starts_with("process")),
        "child made no VM: {before:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    assert!(
        !leftovers(&run_id).await.is_empty(),
        "the kill alone should leave the lab behind"
    );
    // What `down --all` does: sweep by run id, by listing.
    let conn = vm::connect().unwrap();
    let domains = vm::sweep(&conn, &run_id).unwrap();
    assert_eq!(domains.len(), 1, "{domains:?}");
    let swept = net::sweep(&run_id).await.unwrap();
    assert!(swept.netns.contains(&format!("{run_id}-ns")), "{swept:?}");
    assert_eq!(leftovers(&run_id).await, Vec::<String>::new());
    // tcpdump ran inside the lab namespace and went with it.
    let _ = std::fs::remove_dir_all(Path::new(maas_e2e::plan::VM_ROOT).join(&run_id));
}

#[tokio::test(flavor = "multi_thread")]
async fn join_bridge_reaches_a_namespace_by_pid() {
    // The chart target's case: a kind node is a container, known by pid.
    if !net_prereqs()
        || !require_program("unshare", "util-linux")
        || !require_program("nsenter", "util-linux")
    {
        return;
    }
    let run_id = new_run_id();
    let lab = TestLab::with_servers(&run_id, BootFlow::IpxeScript, false, &[]).await;
    let mut holder = std::process::Command::new("unshare")
        .args(["--net", "sleep", "120"])
        .spawn()
        .unwrap();
    let pid = holder.id();
    let peer = format!("{run_id}-lp");
    // unshare execs sleep once the namespace exists: wait for that.
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    for _ in 0..50 {
        if std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|ns| ns != own) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Lab::join_bridge(
        lab.bridge(),
        &format!("{run_id}-hp"),
        &peer,
        &NetnsTarget::Pid(pid),
        &[],
    )
    .await
    .expect("join by pid");
    Lab::join_bridge(
        lab.bridge(),
        &format!("{run_id}-hp"),
        &peer,
        &NetnsTarget::Pid(pid),
        &[],
    )
    .await
    .expect("join again is a no-op");
    let out = Cmd::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-n",
            "busybox",
            "udhcpc",
            "-i",
            &peer,
            "-n",
            "-q",
            "-f",
            "-t",
            "3",
            "-T",
            "1",
            "-s",
            "/bin/true",
        ])
        .timeout(Duration::from_secs(20))
        .output()
        .await
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = holder.wait();
    assert!(
        format!("{}{}", out.stdout, out.stderr)
            .contains(&format!("obtained from {}", lab.server_ip)),
        "{out:?}"
    );
    lab.teardown().await;
    assert_eq!(leftovers(&run_id).await, Vec::<String>::new());
}
