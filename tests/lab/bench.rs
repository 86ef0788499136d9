//! The lab boot benchmark (ignored test; run by ci/bench/lab.sh): time from
//! power-on to the console marker for one VM and for 4 VMs at once, with
//! this project's servers (with and without router advertisements) and
//! with dnsmasq + `python3 -m http.server` as the baseline, side by side
//! in one run. Writes a JSON and a markdown table to $LAB_BENCH_OUT.
//!
//! Where the time goes (our servers only; their events have ms times):
//! firmware = power-on -> first DHCPDISCOVER, dhcp = DISCOVER -> ACK,
//! ipv6_wait = ACK -> GET of the iPXE script, fetch = script -> initrd GET,
//! initrd transfer = initrd GET -> last body byte handed to the socket,
//! kernel = that -> marker.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use maas_e2e::cmd::Cmd;
use maas_e2e::lab::dhcp::Firmware;
use maas_e2e::lab::events::{LabEvent, LabEventKind};
use maas_e2e::lab::vm;
use serde::Serialize;

use crate::support::{self, BootFlow, TestLab, new_run_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
enum Servers {
    Ours { ra: bool },
    Baseline,
}

#[derive(Debug, Clone, Serialize)]
struct VmTiming {
    total_s: f64,
    firmware_s: Option<f64>,
    dhcp_s: Option<f64>,
    ipv6_wait_s: Option<f64>,
    fetch_s: Option<f64>,
    initrd_transfer_s: Option<f64>,
    kernel_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct CaseResult {
    case: String,
    firmware: Firmware,
    servers: Servers,
    vms: usize,
    round: usize,
    /// Power-on of the first VM to the last VM's marker.
    wall_s: f64,
    per_vm: Vec<VmTiming>,
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

fn secs(a: u128, b: u128) -> Option<f64> {
    (b >= a).then(|| (b - a) as f64 / 1000.0)
}

async fn baseline_servers(lab: &mut TestLab, http_root: &std::path::Path) {
    let seg = lab.spec.segments[0].clone();
    let ip = lab.server_ip;
    let range = format!(
        "{},{},{},10m",
        seg.subnet.host(100),
        seg.subnet.host(199),
        seg.subnet.netmask()
    );
    let dnsmasq = Cmd::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--port=0",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
        ])
        .arg(format!("--interface={}", seg.veth_lab))
        .arg(format!("--dhcp-range={range}"))
        .arg("--dhcp-userclass=set:ipxe,iPXE")
        .arg(format!("--dhcp-boot=tag:ipxe,http://{ip}/boot.ipxe"))
        .arg(format!(
            "--dhcp-leasefile={}",
            lab.run_dir.join("dnsmasq.leases").display()
        ))
        .arg("--pid-file=")
        .in_netns(&lab.spec.netns);
    let python = Cmd::new("python3")
        .args([
            "-m",
            "http.server",
            "80",
            "--bind",
            &ip.to_string(),
            "--directory",
        ])
        .arg(http_root.display().to_string())
        .in_netns(&lab.spec.netns);
    for c in [dnsmasq, python] {
        let mut t = c.to_tokio();
        t.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        lab.hold(Box::new(t.spawn().expect("start baseline server")));
    }
    // Wait until the HTTP server answers inside the lab.
    for _ in 0..50 {
        let ok = Cmd::new("curl")
            .args(["-sf", "-o", "/dev/null", &format!("http://{ip}/boot.ipxe")])
            .in_netns(&lab.spec.netns)
            .run()
            .await
            .is_ok();
        if ok {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("baseline http.server did not come up");
}

async fn run_case(
    name: &str,
    firmware: Firmware,
    servers: Servers,
    vms: usize,
    round: usize,
    padding_mib: usize,
) -> CaseResult {
    let run_id = new_run_id();
    let macs: Vec<String> = (0..vms)
        .map(|i| format!("52:54:00:be:{:02x}:{:02x}", round, i + 1))
        .collect();
    let mac_refs: Vec<&str> = macs.iter().map(String::as_str).collect();
    let mut lab = match servers {
        Servers::Ours { ra } => {
            TestLab::with_servers_padded(&run_id, BootFlow::IpxeScript, ra, &mac_refs, padding_mib)
                .await
        }
        Servers::Baseline => {
            let mut lab = TestLab::network(&run_id).await;
            lab.padding_mib = padding_mib;
            let (root, _) = lab.prepare_http_root();
            baseline_servers(&mut lab, &root).await;
            lab
        }
    };
    let mut rx = lab.events.subscribe();
    let conn = vm::connect().unwrap();
    let accel = vm::detect_accel(&conn);
    let mut specs = vec![];
    for (i, mac) in macs.iter().enumerate() {
        let mut s = lab.domain(&format!("b{i}"), firmware, vm::NicModel::Virtio, mac);
        s.accel = accel;
        vm::define(&conn, &s).await.unwrap();
        specs.push(s);
    }
    let t0 = now_ms();
    let start = Instant::now();
    for s in &specs {
        vm::start(&conn, &s.name).unwrap();
    }
    let mut marker_ms: Vec<Option<u128>> = vec![None; vms];
    let deadline = start + Duration::from_secs(600);
    while marker_ms.iter().any(Option::is_none) && Instant::now() < deadline {
        for (i, s) in specs.iter().enumerate() {
            if marker_ms[i].is_none() {
                let text = std::fs::read(&s.console_log).unwrap_or_default();
                if String::from_utf8_lossy(&text).contains(support::MARKER_PREFIX) {
                    marker_ms[i] = Some(now_ms());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall_s = start.elapsed().as_secs_f64();
    let mut events: Vec<LabEvent> = vec![];
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let per_vm = specs
        .iter()
        .zip(&macs)
        .zip(&marker_ms)
        .map(|((_, mac), marker)| {
            let marker = marker.unwrap_or_else(|| panic!("{name}: a VM never printed the marker"));
            let first = |k: LabEventKind, path: Option<&str>| {
                events
                    .iter()
                    .find(|e| {
                        e.kind == k
                            && e.mac.as_deref() == Some(mac.as_str())
                            && path
                                .is_none_or(|p| e.path.as_deref().is_some_and(|ep| ep.contains(p)))
                    })
                    .map(|e| e.time_ms)
            };
            let disc = first(LabEventKind::DhcpDiscover, None);
            let ack = first(LabEventKind::DhcpAck, None);
            let script = first(LabEventKind::HttpGet, Some("boot.ipxe"));
            let initrd = first(LabEventKind::HttpGet, Some("initrd.img"));
            let initrd_done = first(LabEventKind::HttpDone, Some("initrd.img"));
            VmTiming {
                total_s: secs(t0, marker).unwrap(),
                firmware_s: disc.and_then(|d| secs(t0, d)),
                dhcp_s: disc.zip(ack).and_then(|(d, a)| secs(d, a)),
                ipv6_wait_s: ack.zip(script).and_then(|(a, s)| secs(a, s)),
                fetch_s: script.zip(initrd).and_then(|(s, i)| secs(s, i)),
                initrd_transfer_s: initrd.zip(initrd_done).and_then(|(i, d)| secs(i, d)),
                kernel_s: initrd_done.and_then(|d| secs(d, marker)),
            }
        })
        .collect();
    for s in &specs {
        vm::undefine(&conn, &s.name).unwrap();
    }
    lab.teardown().await;
    CaseResult {
        case: name.into(),
        firmware,
        servers,
        vms,
        round,
        wall_s,
        per_vm,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn fmt_opt(v: Vec<Option<f64>>) -> String {
    let vals: Vec<f64> = v.into_iter().flatten().collect();
    if vals.is_empty() {
        "-".into()
    } else {
        format!("{:.1}", median(vals))
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run ci/bench/lab.sh"]
async fn bench_pxe_boot_to_marker() {
    let rounds: usize = std::env::var("LAB_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let padding: usize = std::env::var("LAB_BENCH_INITRD_PAD_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(14);
    let out = PathBuf::from(
        std::env::var("LAB_BENCH_OUT").unwrap_or_else(|_| "/var/lib/maas-e2e/bench-lab".into()),
    );
    std::fs::create_dir_all(&out).unwrap();
    let cases: Vec<(&str, Firmware, Servers, usize)> = vec![
        ("bios-1-ours", Firmware::Bios, Servers::Ours { ra: true }, 1),
        (
            "bios-1-ours-noRA",
            Firmware::Bios,
            Servers::Ours { ra: false },
            1,
        ),
        ("bios-1-baseline", Firmware::Bios, Servers::Baseline, 1),
        ("uefi-1-ours", Firmware::Uefi, Servers::Ours { ra: true }, 1),
        ("uefi-1-baseline", Firmware::Uefi, Servers::Baseline, 1),
        ("bios-4-ours", Firmware::Bios, Servers::Ours { ra: true }, 4),
        ("bios-4-baseline", Firmware::Bios, Servers::Baseline, 4),
    ];
    // LAB_BENCH_CASES=bios-1-ours,uefi-1-ours runs a subset.
    let only: Option<Vec<String>> = std::env::var("LAB_BENCH_CASES")
        .ok()
        .map(|v| v.split(',').map(str::to_string).collect());
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|c| only.as_ref().is_none_or(|o| o.iter().any(|n| n == c.0)))
        .collect();
    let mut results = vec![];
    // Rounds interleave the cases, so load from other users of the
    // machine spreads over all of them alike.
    for round in 0..rounds {
        for (name, fw, servers, vms) in &cases {
            let r = run_case(name, *fw, *servers, *vms, round, padding).await;
            eprintln!(
                "{name} round {round}: wall {:.1}s {:?}",
                r.wall_s,
                r.per_vm.iter().map(|v| v.total_s).collect::<Vec<_>>()
            );
            results.push(r);
            std::fs::write(
                out.join("results.json"),
                serde_json::to_string_pretty(&results).unwrap(),
            )
            .unwrap();
        }
    }
    let mut md = String::from(
        "| case | runs | median wall s (power-on to last marker) | firmware | DHCP | IPv6 wait | script + kernel fetch | initrd transfer | kernel to marker |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for (name, ..) in &cases {
        let rs: Vec<&CaseResult> = results.iter().filter(|r| r.case == *name).collect();
        let vm_all = |f: fn(&VmTiming) -> Option<f64>| {
            fmt_opt(rs.iter().flat_map(|r| r.per_vm.iter().map(f)).collect())
        };
        md.push_str(&format!(
            "| {name} | {} | {:.1} | {} | {} | {} | {} | {} | {} |\n",
            rs.len(),
            median(rs.iter().map(|r| r.wall_s).collect()),
            vm_all(|v| v.firmware_s),
            vm_all(|v| v.dhcp_s),
            vm_all(|v| v.ipv6_wait_s),
            vm_all(|v| v.fetch_s),
            vm_all(|v| v.initrd_transfer_s),
            vm_all(|v| v.kernel_s),
        ));
    }
    std::fs::write(out.join("results.md"), &md).unwrap();
    eprintln!("{md}");
}
