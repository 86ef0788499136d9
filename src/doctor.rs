//! `doctor`: every host prerequisite the targets need, and for each missing
//! one the exact package to install or command to start.

use std::path::Path;

use crate::cmd::Cmd;
use crate::scenario::TargetKind;
use crate::testing::have_program;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    /// Targets that need it.
    pub needed_by: &'static [TargetKind],
    pub ok: bool,
    pub detail: String,
    /// What to run to fix it.
    pub fix: String,
}

const LAB: &[TargetKind] = &[
    TargetKind::None,
    TargetKind::Sim,
    TargetKind::Chart,
    TargetKind::External,
];
const SIM: &[TargetKind] = &[TargetKind::Sim];
const VMS: &[TargetKind] = &[TargetKind::Sim, TargetKind::Chart, TargetKind::External];
const CHART: &[TargetKind] = &[TargetKind::Chart];

fn program(
    name: &'static str,
    bin: &str,
    package: &str,
    needed_by: &'static [TargetKind],
) -> Check {
    let ok = have_program(bin);
    Check {
        name,
        needed_by,
        ok,
        detail: if ok {
            format!("{bin} found")
        } else {
            format!("{bin} not on PATH")
        },
        fix: format!("apt-get install -y {package}   (or: ci/setup-host.sh)"),
    }
}

/// The newest Debian kernel in /boot whose modules include ipmi_si: the
/// guest's kernel, not the host's running one.
pub fn guest_kernel() -> Option<(String, bool)> {
    let mut kernels: Vec<String> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("vmlinuz-").map(String::from))
        })
        .collect();
    kernels.sort();
    let release = kernels.pop()?;
    let has_ipmi = ["ipmi_si.ko", "ipmi_si.ko.xz", "ipmi_si.ko.zst"]
        .iter()
        .any(|f| {
            Path::new(&format!(
                "/lib/modules/{release}/kernel/drivers/char/ipmi/{f}"
            ))
            .exists()
        });
    Some((release, has_ipmi))
}

pub fn checks() -> Vec<Check> {
    let mut out = vec![
        program(
            "qemu-system-x86_64",
            "qemu-system-x86_64",
            "qemu-system-x86",
            VMS,
        ),
        program("qemu-img", "qemu-img", "qemu-utils", VMS),
        program("ipmitool", "ipmitool", "ipmitool", LAB),
        program(
            "FreeIPMI (ipmipower, ipmi-config)",
            "ipmipower",
            "freeipmi-tools",
            LAB,
        ),
        program("iproute2", "ip", "iproute2", LAB),
        program(
            "busybox-static (ephemeral image)",
            "busybox",
            "busybox-static",
            VMS,
        ),
        program("cpio", "cpio", "cpio", VMS),
    ];
    let ovmf = Path::new("/usr/share/OVMF/OVMF_CODE_4M.fd").exists()
        || Path::new("/usr/share/OVMF/OVMF_CODE.fd").exists();
    out.push(Check {
        name: "OVMF (UEFI firmware)",
        needed_by: VMS,
        ok: ovmf,
        detail: if ovmf {
            "found in /usr/share/OVMF".into()
        } else {
            "no OVMF_CODE*.fd in /usr/share/OVMF".into()
        },
        fix: "apt-get install -y ovmf".into(),
    });
    let ipxe = Path::new("/usr/lib/ipxe/qemu").exists();
    out.push(Check {
        name: "iPXE NIC ROMs",
        needed_by: VMS,
        ok: ipxe,
        detail: if ipxe {
            "found in /usr/lib/ipxe/qemu".into()
        } else {
            "/usr/lib/ipxe/qemu missing".into()
        },
        fix: "apt-get install -y ipxe-qemu".into(),
    });
    let pxelinux = Path::new("/usr/lib/PXELINUX/lpxelinux.0").exists();
    out.push(Check {
        name: "pxelinux (BIOS PXE loader)",
        needed_by: SIM,
        ok: pxelinux,
        detail: if pxelinux {
            "lpxelinux.0 found".into()
        } else {
            "/usr/lib/PXELINUX/lpxelinux.0 missing".into()
        },
        fix: "apt-get install -y pxelinux syslinux-common".into(),
    });

    let libvirtd = have_program("virsh")
        && Cmd::new("virsh")
            .args(["-c", "qemu:///system", "version"])
            .run_blocking()
            .is_ok();
    out.push(Check {
        name: "libvirtd reachable (qemu:///system)",
        needed_by: VMS,
        ok: libvirtd,
        detail: if libvirtd {
            "virsh version answered".into()
        } else {
            "virsh -c qemu:///system cannot connect".into()
        },
        fix: "apt-get install -y libvirt-daemon-system libvirt-clients && libvirtd -d".into(),
    });
    let virtlogd = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok).any(|e| {
                std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == "virtlogd")
            })
        })
        .unwrap_or(false);
    out.push(Check {
        name: "virtlogd running",
        needed_by: VMS,
        ok: virtlogd,
        detail: if virtlogd {
            "running".into()
        } else {
            "not running (libvirt cannot log consoles)".into()
        },
        fix: "virtlogd -d".into(),
    });

    let pg = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
        d.filter_map(Result::ok)
            .map(|e| e.path().join("bin/postgres"))
            .find(|p| p.exists())
    });
    out.push(Check {
        name: "Postgres server binaries",
        needed_by: SIM,
        ok: pg.is_some(),
        detail: pg
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "no /usr/lib/postgresql/*/bin/postgres".into()),
        fix: "apt-get install -y postgresql".into(),
    });

    match guest_kernel() {
        Some((release, true)) => out.push(Check {
            name: "guest kernel with ipmi_si",
            needed_by: VMS,
            ok: true,
            detail: format!("/boot/vmlinuz-{release}"),
            fix: String::new(),
        }),
        Some((release, false)) => out.push(Check {
            name: "guest kernel with ipmi_si",
            needed_by: VMS,
            ok: false,
            detail: format!("/boot/vmlinuz-{release} has no ipmi_si module (a cloud kernel?)"),
            fix: "apt-get install -y linux-image-amd64".into(),
        }),
        None => out.push(Check {
            name: "guest kernel with ipmi_si",
            needed_by: VMS,
            ok: false,
            detail: "no /boot/vmlinuz-*".into(),
            fix: "apt-get install -y linux-image-amd64".into(),
        }),
    }

    let root = nix::unistd::Uid::effective().is_root();
    let netns = root && have_program("ip") && {
        let name = format!("me2e-doctor-{}", std::process::id());
        let ok = Cmd::new("ip")
            .args(["netns", "add", &name])
            .run_blocking()
            .is_ok();
        let _ = Cmd::new("ip").args(["netns", "del", &name]).run_blocking();
        ok
    };
    out.push(Check {
        name: "permission to create network namespaces",
        needed_by: LAB,
        ok: netns,
        detail: if netns {
            "ip netns add works".into()
        } else if root {
            "ip netns add failed".into()
        } else {
            "not root".into()
        },
        fix: "run maas-e2e as root (network namespaces, bridges, libvirt system domains)".into(),
    });

    for (name, bin, fix) in [
        (
            "docker",
            "docker",
            "apt-get install -y docker.io && dockerd &",
        ),
        (
            "kind",
            "kind",
            "install kind from https://kind.sigs.k8s.io (a release binary)",
        ),
        (
            "helm",
            "helm",
            "install helm 3 from https://helm.sh (a release binary)",
        ),
        (
            "kubectl",
            "kubectl",
            "install kubectl matching the kind node version",
        ),
    ] {
        let mut c = program(name, bin, bin, CHART);
        c.fix = fix.into();
        out.push(c);
    }
    let docker_up = have_program("docker") && Cmd::new("docker").arg("info").run_blocking().is_ok();
    out.push(Check {
        name: "dockerd running",
        needed_by: CHART,
        ok: docker_up,
        detail: if docker_up {
            "docker info answered".into()
        } else {
            "docker info failed".into()
        },
        fix: "dockerd >/var/log/dockerd.log 2>&1 &   (or: ci/setup-host.sh --docker)".into(),
    });
    out
}

/// The doctor's report; `true` when everything `target` needs is there.
pub fn report(checks: &[Check], target: Option<TargetKind>) -> (String, bool) {
    let mut ready = true;
    let mut lines = Vec::new();
    for c in checks {
        let relevant = target.is_none_or(|t| c.needed_by.contains(&t));
        if !relevant {
            continue;
        }
        let targets = c
            .needed_by
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        if c.ok {
            lines.push(format!("ok       {:<42} {}", c.name, c.detail));
        } else {
            if target.is_some() || !c.needed_by.iter().all(|t| *t == TargetKind::Chart) {
                ready = false;
            }
            lines.push(format!(
                "MISSING  {:<42} {} (needed by: {targets})\n         fix: {}",
                c.name, c.detail, c.fix
            ));
        }
    }
    (lines.join("\n"), ready)
}
