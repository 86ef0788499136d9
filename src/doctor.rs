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

/// QEMU's Debian packages that must share one version (one suite).
const QEMU_PACKAGES: &[&str] = &[
    "qemu-system-x86",
    "qemu-system-common",
    "qemu-system-data",
    "qemu-utils",
    "qemu-block-extra",
];

/// Where dpkg keeps its database; `MAAS_E2E_DPKG_ADMINDIR` points doctor at
/// another one (as `dpkg --admindir` does).
fn dpkg_status_path() -> std::path::PathBuf {
    std::env::var_os("MAAS_E2E_DPKG_ADMINDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/var/lib/dpkg".into())
        .join("status")
}

/// Installed packages and their versions from dpkg's status database text.
pub fn installed_versions(status: &str) -> Vec<(String, String)> {
    status
        .split("\n\n")
        .filter_map(|paragraph| {
            let field = |name: &str| {
                paragraph
                    .lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .map(str::trim)
            };
            let installed = field("Status")?.ends_with(" installed");
            installed
                .then(|| Some((field("Package")?.to_string(), field("Version")?.to_string())))?
        })
        .collect()
}

/// The Debian suite a version string comes from, as far as it shows.
fn suite_of(version: &str) -> &'static str {
    if version.contains("~bpo12") {
        "bookworm-backports"
    } else if version.contains("deb13") || version.contains("deb14") {
        "a newer Debian release"
    } else {
        "bookworm"
    }
}

/// QEMU installed from more than one suite (bookworm's qemu-system-x86 beside
/// a backports qemu-utils) is what apt refuses to complete, or a QEMU whose
/// parts disagree. Names the packages and the command that puts them in one.
pub fn qemu_suite_check(installed: &[(String, String)]) -> Check {
    let qemu: Vec<&(String, String)> = installed
        .iter()
        .filter(|(p, _)| QEMU_PACKAGES.contains(&p.as_str()))
        .collect();
    let mut versions: Vec<&str> = qemu.iter().map(|(_, v)| v.as_str()).collect();
    versions.sort_unstable();
    versions.dedup();
    let listed = qemu
        .iter()
        .map(|(p, v)| format!("{p} {v} ({})", suite_of(v)))
        .collect::<Vec<_>>()
        .join(", ");
    let names = qemu
        .iter()
        .map(|(p, _)| p.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let mixed = versions.len() > 1;
    let fix = if !mixed {
        String::new()
    } else if versions.iter().any(|v| v.contains("~bpo12")) {
        format!("apt-get install -y -t bookworm-backports {names}")
    } else {
        format!("apt-get install -y {names}")
    };
    Check {
        name: "QEMU packages from one suite",
        needed_by: VMS,
        ok: !mixed,
        detail: if qemu.is_empty() {
            "no QEMU package installed".into()
        } else if mixed {
            format!("mixed: {listed}")
        } else {
            listed
        },
        fix,
    }
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
    // Only a dpkg host can be judged; elsewhere the check says so.
    let status_path = dpkg_status_path();
    match std::fs::read_to_string(&status_path) {
        Ok(status) => out.push(qemu_suite_check(&installed_versions(&status))),
        Err(e) => out.push(Check {
            name: "QEMU packages from one suite",
            needed_by: VMS,
            ok: true,
            detail: format!(
                "not checked: {}: {e} (not a Debian host?)",
                status_path.display()
            ),
            fix: String::new(),
        }),
    }
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
        let name = format!("{}-doctor-{}", crate::plan::NAME_PREFIX, std::process::id());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pkgs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect()
    }

    const BPO: &str = "1:10.0.2+ds-2+deb13u1~bpo12+1";
    const BOOKWORM: &str = "1:7.2+dfsg-7+deb12u16";

    #[test]
    fn qemu_from_one_suite_is_fine() {
        let c = qemu_suite_check(&pkgs(&[
            ("qemu-utils", BPO),
            ("qemu-system-x86", BPO),
            ("bash", "5.2"),
        ]));
        assert!(c.ok, "{c:?}");
        assert!(c.detail.contains("bookworm-backports"), "{c:?}");
    }

    #[test]
    fn bookworm_system_beside_backports_utils_is_named_with_the_fix() {
        let c = qemu_suite_check(&pkgs(&[("qemu-system-x86", BOOKWORM), ("qemu-utils", BPO)]));
        assert!(!c.ok);
        assert_eq!(
            c.detail,
            format!(
                "mixed: qemu-system-x86 {BOOKWORM} (bookworm), qemu-utils {BPO} (bookworm-backports)"
            )
        );
        assert_eq!(
            c.fix,
            "apt-get install -y -t bookworm-backports qemu-system-x86 qemu-utils"
        );
    }

    #[test]
    fn two_bookworm_point_releases_are_mixed_too() {
        let c = qemu_suite_check(&pkgs(&[
            ("qemu-system-x86", BOOKWORM),
            ("qemu-utils", "1:7.2+dfsg-7+deb12u12"),
        ]));
        assert!(!c.ok);
        assert_eq!(c.fix, "apt-get install -y qemu-system-x86 qemu-utils");
    }

    #[test]
    fn dpkg_status_lists_only_installed_packages() {
        let status = "Package: qemu-utils\nStatus: install ok installed\nVersion: 1:10\n\n\
                      Package: qemu-system-x86\nStatus: deinstall ok config-files\nVersion: 1:7.2\n\n\
                      Package: ovmf\nStatus: install ok installed\nArchitecture: all\nVersion: 2022\n";
        assert_eq!(
            installed_versions(status),
            pkgs(&[("qemu-utils", "1:10"), ("ovmf", "2022")])
        );
    }
}
