//! Shared fixture for the lab tests: a lab network with its DHCP, TFTP,
//! HTTP and RA servers, named from a fresh run id, swept on drop (panics
//! included) so no test leaves a namespace, link or domain behind.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use maas_e2e::lab::dhcp::{self, BootPolicy, StaticLease};
use maas_e2e::lab::events::EventLog;
use maas_e2e::lab::http::{self, HttpReply};
use maas_e2e::lab::net::{Ipv4Subnet, Lab, LabSpec, SegmentSpec};
use maas_e2e::lab::servers::{
    DhcpSettings, HttpSettings, SegmentServersConfig, start_segment_servers,
};
use maas_e2e::lab::{tftp, vm};

/// The line the test image's /init prints; the token comes from the kernel
/// command line, so the marker proves our boot script reached the kernel.
pub const MARKER_PREFIX: &str = "MAAS-E2E-LAB-INIT-OK";

/// /init of the test image: a line with what systemd-detect-virt looks at
/// (the CPUID hypervisor flag, the DMI strings, the SMBIOS type 0 "virtual
/// machine" byte), then the marker with the command line's token and the
/// CPU model name (must not say QEMU), then power off.
const TEST_INIT: &str = r#"#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sysfs /sys
for w in $(cat /proc/cmdline); do
  case "$w" in e2e_token=*) token="${w#e2e_token=}" ;; esac
done
flag=no
grep '^flags' /proc/cpuinfo | grep -qw hypervisor && flag=yes
dmi() { cat /sys/class/dmi/id/$1 2>/dev/null || echo none; }
raw=/sys/firmware/dmi/entries/0-0/raw
byte=$(od -An -tu1 -j19 -N1 $raw 2>/dev/null | tr -d ' ')
echo "MAAS-E2E-LAB-VIRT hypervisor_flag=$flag sys_vendor=$(dmi sys_vendor)|product_name=$(dmi product_name)|board_vendor=$(dmi board_vendor)|bios_vendor=$(dmi bios_vendor)|type0_byte_0x13=${byte:-none}" > /dev/console
model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)
echo "MAAS-E2E-LAB-INIT-OK token=$token cpu=$model" > /dev/console
"#;

/// How /init ends by default: the VM powers off.
pub const INIT_POWEROFF: &str = "poweroff -f";

/// Kernel + initramfs from the project's image builder (src/image): the
/// marker image with the test's /init, ended by `init_end` (a command).
/// `padding_mib` adds an incompressible file so the initrd is as large as a
/// real ephemeral image (benchmarks).
pub fn test_image(padding_mib: usize, init_end: &str) -> maas_e2e::image::Image {
    let mut spec = maas_e2e::image::ImageSpec::marker("unused");
    spec.init = format!("{TEST_INIT}{init_end}\n");
    if padding_mib > 0 {
        let mut pad = vec![0u8; padding_mib << 20];
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for b in pad.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        spec.files
            .push(maas_e2e::image::ExtraFile::new("/padding", 0o644, pad));
    }
    maas_e2e::image::build(&spec, &maas_e2e::image::default_cache_dir()).expect("image build")
}

/// A fresh run id: "me2e" + 6 hex digits (names built from it stay <= 15 bytes).
pub fn new_run_id() -> String {
    let n: u32 = rand::random();
    format!("me2e{:06x}", n & 0xff_ffff)
}

/// Distinct /24 per run so two labs never share a subnet by accident.
pub fn subnet_for(run_id: &str) -> Ipv4Subnet {
    let n = u32::from_str_radix(&run_id[4..], 16).unwrap_or(0);
    Ipv4Subnet::new(
        Ipv4Addr::new(10, 200 + (n % 50) as u8, ((n >> 8) % 250) as u8, 0),
        24,
    )
    .unwrap()
}

pub fn lab_spec(run_id: &str) -> LabSpec {
    let subnet = subnet_for(run_id);
    LabSpec {
        run_id: run_id.into(),
        netns: format!("{run_id}-ns"),
        segments: vec![SegmentSpec {
            bridge: format!("{run_id}-br0"),
            veth_host: format!("{run_id}-h0"),
            veth_lab: format!("{run_id}-l0"),
            subnet,
            addresses: vec![subnet.host(1), subnet.host(250)],
        }],
    }
}

pub const KERNEL_GLOB_DIR: &str = "/boot";

/// Debian's kernel (the newest /boot/vmlinuz-*-amd64).
pub fn debian_kernel() -> Option<PathBuf> {
    let mut k: Vec<PathBuf> = std::fs::read_dir(KERNEL_GLOB_DIR)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-") && n.ends_with("-amd64"))
        })
        .collect();
    k.sort();
    k.pop()
}

/// Which way the VM is told to boot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BootFlow {
    /// iPXE gets lpxelinux.0 over TFTP; pxelinux reads its config over
    /// TFTP and fetches kernel + initrd over HTTP (MAAS's BIOS path).
    PxelinuxTftp,
    /// iPXE gets an iPXE script over HTTP (MAAS's UEFI path here).
    IpxeScript,
}

pub struct TestLab {
    pub run_id: String,
    pub spec: LabSpec,
    pub run_dir: PathBuf,
    pub events: EventLog,
    pub server_ip: Ipv4Addr,
    pub token: String,
    /// Extra initrd size for benchmarks (MiB).
    pub padding_mib: usize,
    /// The last command of the image's /init (default: power off).
    pub init_end: String,
    /// Lines put before the pxelinux config (`SERIAL 0 115200`: pxelinux's
    /// own messages, a failure included, on the serial console).
    pub pxelinux_head: String,
    /// Words added to the kernel command line.
    pub cmdline_extra: String,
    /// The HTTP server's `pacing` (bytes per second).
    pub http_pacing: Option<u32>,
    /// The HTTP server's `congestion` (default: the namespace's).
    pub http_congestion: Option<String>,
    servers: Vec<Box<dyn std::any::Any + Send>>,
    domains: Vec<String>,
}

impl TestLab {
    /// Lab network only (no servers).
    pub async fn network(run_id: &str) -> TestLab {
        let spec = lab_spec(run_id);
        Lab::up(&spec).await.expect("lab up");
        let run_dir = vm::run_dir(run_id).unwrap();
        let events = EventLog::new(Some(&run_dir.join("network/events.jsonl"))).unwrap();
        let server_ip = spec.segments[0].addresses[0];
        TestLab {
            run_id: run_id.into(),
            spec,
            run_dir,
            events,
            server_ip,
            token: format!("tok{}", &run_id[4..]),
            padding_mib: 0,
            init_end: INIT_POWEROFF.into(),
            pxelinux_head: String::new(),
            cmdline_extra: String::new(),
            http_pacing: None,
            http_congestion: None,
            servers: vec![],
            domains: vec![],
        }
    }

    /// Lab network plus DHCP, TFTP, HTTP and (optionally) RA, serving a
    /// kernel and the marker initramfs.
    pub async fn with_servers(
        run_id: &str,
        flow: BootFlow,
        ra_on: bool,
        static_macs: &[&str],
    ) -> TestLab {
        TestLab::with_servers_padded(run_id, flow, ra_on, static_macs, 0).await
    }

    pub async fn with_servers_padded(
        run_id: &str,
        flow: BootFlow,
        ra_on: bool,
        static_macs: &[&str],
        padding_mib: usize,
    ) -> TestLab {
        let mut lab = TestLab::network(run_id).await;
        lab.padding_mib = padding_mib;
        lab.start_servers(flow, ra_on, static_macs).await;
        lab
    }

    /// Fill RUN_DIR/http with vmlinuz, initrd.img and boot.ipxe (the
    /// baseline's python http.server serves the same directory).
    pub fn prepare_http_root(&self) -> (PathBuf, String) {
        let ip = self.server_ip;
        let http_root = self.run_dir.join("http");
        std::fs::create_dir_all(&http_root).unwrap();
        let image = test_image(self.padding_mib, &self.init_end);
        std::fs::copy(&image.kernel, http_root.join("vmlinuz")).unwrap();
        std::fs::copy(&image.initrd, http_root.join("initrd.img")).unwrap();
        let ipxe_script = format!(
            "#!ipxe\nkernel http://{ip}/vmlinuz initrd=initrd.img {}\ninitrd http://{ip}/initrd.img\nboot\n",
            self.cmdline()
        );
        std::fs::write(http_root.join("boot.ipxe"), &ipxe_script).unwrap();
        (http_root, ipxe_script)
    }

    pub fn cmdline(&self) -> String {
        format!(
            "console=ttyS0 quiet loglevel=3 panic=-1 e2e_token={} {}",
            self.token, self.cmdline_extra
        )
        .trim_end()
        .to_string()
    }

    pub async fn start_servers(&mut self, flow: BootFlow, ra_on: bool, static_macs: &[&str]) {
        let seg = self.spec.segments[0].clone();
        let ns = self.spec.netns.clone();
        let ip = self.server_ip;
        let (http_root, ipxe_script) = self.prepare_http_root();
        let cmdline = self.cmdline();
        let pxelinux_cfg = format!(
            "{}DEFAULT e2e\nPROMPT 0\nTIMEOUT 0\nLABEL e2e\n  KERNEL http://{ip}/vmlinuz\n  INITRD http://{ip}/initrd.img\n  APPEND {cmdline}\n",
            self.pxelinux_head
        );
        let boot = match flow {
            BootFlow::PxelinuxTftp => dhcp::BootTarget {
                pxe: Some("lpxelinux.0".into()),
                ipxe: Some("lpxelinux.0".into()),
            },
            BootFlow::IpxeScript => dhcp::BootTarget {
                pxe: None,
                ipxe: Some(format!("http://{ip}/boot.ipxe?mac={{mac}}")),
            },
        };
        let dhcp = DhcpSettings {
            router: None,
            dns: vec![],
            lease_secs: 600,
            static_leases: static_macs
                .iter()
                .enumerate()
                .map(|(i, m)| StaticLease {
                    mac: m.to_string(),
                    ip: seg.subnet.host(10 + i as u32),
                    hostname: Some(format!("node{i}")),
                })
                .collect(),
            pool: Some((seg.subnet.host(100), seg.subnet.host(199))),
            boot: BootPolicy {
                bios: boot.clone(),
                uefi: boot,
            },
        };
        // TFTP: pxelinux files from the syslinux packages, configs from a callback.
        let cfg_text = pxelinux_cfg.clone();
        let callback: tftp::TftpCallback = Arc::new(move |path: &str, _client| {
            let path = path.trim_start_matches('/');
            match path {
                "lpxelinux.0" => std::fs::read("/usr/lib/PXELINUX/lpxelinux.0").ok(),
                p if p.starts_with("pxelinux.cfg/") => Some(cfg_text.clone().into_bytes()),
                p if p.ends_with(".c32") => std::fs::read(
                    Path::new("/usr/lib/syslinux/modules/bios").join(p.rsplit('/').next()?),
                )
                .ok(),
                _ => None,
            }
        });
        let script = ipxe_script.clone();
        let handler: http::HttpHandler = Arc::new(move |req| {
            let script = script.clone();
            Box::pin(async move { (req.path == "/boot.ipxe").then(|| HttpReply::text(script)) })
        });
        let cfg = SegmentServersConfig {
            name: ns.clone(),
            dhcp: Some(dhcp),
            tftp: Some(tftp::TftpSource::Callback(callback)),
            http: Some(HttpSettings {
                port: 80,
                root: Some(http_root),
                handler: Some(handler),
                pacing: self.http_pacing,
                congestion: self.http_congestion.clone(),
            }),
            router_advertisements: ra_on,
        };
        let servers = start_segment_servers(&ns, &seg, cfg, self.events.clone())
            .await
            .expect("lab servers");
        self.servers.push(Box::new(servers));
    }

    /// Keep something alive (a baseline server process) until teardown.
    pub fn hold(&mut self, thing: Box<dyn std::any::Any + Send>) {
        self.servers.push(thing);
    }

    pub fn bridge(&self) -> &str {
        &self.spec.segments[0].bridge
    }

    /// A VM spec on this lab's bridge, files in the run directory.
    pub fn domain(
        &mut self,
        tag: &str,
        firmware: dhcp::Firmware,
        model: vm::NicModel,
        mac: &str,
    ) -> vm::DomainSpec {
        let name = format!("{}-{tag}", self.run_id);
        self.domains.push(name.clone());
        vm::DomainSpec {
            name: name.clone(),
            uuid: uuid::Uuid::new_v4().to_string(),
            run_id: self.run_id.clone(),
            memory_mib: 512,
            vcpus: 1,
            firmware,
            cpu_model: vm::DEFAULT_CPU_MODEL.into(),
            nics: vec![vm::NicSpec {
                model,
                mac: mac.into(),
                bridge: self.bridge().into(),
            }],
            disks: vec![vm::DiskSpec {
                path: self.run_dir.join(format!("{tag}-disk0.qcow2")),
                size_gib: 1,
            }],
            console_log: self.run_dir.join(format!("{tag}-console.log")),
            nvram: (firmware == dhcp::Firmware::Uefi)
                .then(|| self.run_dir.join(format!("{tag}_VARS.fd"))),
            bmc_socket: None,
            accel: vm::Accel::Tcg,
            identity: vm::MachineIdentity::lab(&self.run_dir, tag, firmware),
        }
    }

    pub async fn teardown(mut self) {
        self.servers.clear();
        sweep_blocking(&self.run_id);
        // MAAS_E2E_KEEP_RUN_DIR=1 keeps the artifacts (events, consoles,
        // XML) for a look after the run; the network and domains still go.
        if std::env::var("MAAS_E2E_KEEP_RUN_DIR").is_ok_and(|v| v == "1") {
            eprintln!("kept {}", self.run_dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
        self.run_id.clear();
    }
}

/// Remove everything carrying `run_id`: domains, then links and netns.
pub fn sweep_blocking(run_id: &str) {
    let run_id = run_id.to_string();
    // A fresh runtime on a fresh thread: Drop may run inside a runtime.
    std::thread::spawn(move || {
        if let Ok(conn) = vm::connect() {
            let _ = vm::sweep(&conn, &run_id);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = rt.block_on(maas_e2e::lab::net::sweep(&run_id));
    })
    .join()
    .ok();
}

impl Drop for TestLab {
    fn drop(&mut self) {
        self.servers.clear();
        if !self.run_id.is_empty() {
            sweep_blocking(&self.run_id);
        }
    }
}

/// Wait until `file` contains a line starting with `prefix`; returns it.
pub async fn wait_for_line(file: &Path, prefix: &str, timeout: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read(file) {
            let text = String::from_utf8_lossy(&text);
            if let Some(l) = text.lines().find(|l| l.trim_start().starts_with(prefix)) {
                return Some(l.trim().to_string());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
