#!/usr/bin/env bash
# Prepare a Debian 12 host for maas-e2e: install what is missing and start
# the daemons that have no systemd here. Idempotent; safe to run every time.
#
#   ci/setup-host.sh            packages + daemons for the sim and none targets
#   ci/setup-host.sh --docker   also dockerd (chart target, testcontainers tests)
#   ci/setup-host.sh --packages-only [--docker]
#                               the package phase alone (no daemons), as the
#                               fresh-container test runs it
#
# No `producer | grep -q` under pipefail here: grep -q exits at its first
# match, the producer dies of SIGPIPE (141) and pipefail turns a match into
# a miss, depending on timing. Capture the output, then test it.
set -euo pipefail

want_docker=0
packages_only=0
for arg in "$@"; do
  case "$arg" in
    --docker) want_docker=1 ;;
    --packages-only) packages_only=1 ;;
    *) echo "setup-host: unknown argument $arg (allowed: --docker, --packages-only)" >&2; exit 2 ;;
  esac
done

log() { printf 'setup-host: %s\n' "$*"; }

# The machine image ships qemu-utils from bookworm-backports; qemu-system-x86
# must come from the same suite or apt refuses the pair.
backports=/etc/apt/sources.list.d/maas-e2e-backports.sources
if [ -f /etc/debian_version ] && grep -q '^12' /etc/debian_version && [ ! -f "$backports" ] \
   && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d; then
  cat > "$backports" <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  log "added bookworm-backports"
fi

packages=(
  qemu-system-x86 qemu-utils ovmf ipxe-qemu          # virtual hardware
  libvirt-daemon-system libvirt-clients libvirt-dev pkg-config
  ipmitool freeipmi-tools openipmi                   # IPMI clients + the ipmi_sim peer
  dmidecode                                          # decodes the SMBIOS type 42 we build (src/lab/smbios42.rs)
  pxelinux syslinux-common busybox-static linux-image-amd64 cpio zstd  # ephemeral image
  postgresql                                         # sim target state
  dnsmasq tcpdump iproute2 iptables procps python3 python3-venv hyperfine  # lab peers, captures, FORWARD rules
  python3-dev gcc                                    # libvirt-python (sushy-tools' driver) builds from source in the venv
)
[ "$want_docker" = 1 ] && packages+=(docker.io debootstrap)

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = 'install ok installed' ]; }

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get update -qq
  # QEMU's packages must all come from one suite. When the installed
  # qemu-utils is a backports build (this machine kind's image), the system
  # emulator comes from backports too; everything else from bookworm itself.
  qemu_utils_version=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
  if installed qemu-utils && [[ "$qemu_utils_version" == *bpo* ]] && ! installed qemu-system-x86; then
    log "qemu-utils $qemu_utils_version is from bookworm-backports: qemu-system-x86 from there too"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -t bookworm-backports qemu-system-x86 qemu-system-data qemu-system-common
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[ "$packages_only" = 1 ] && { log "packages ready"; exit 0; }

start_daemon() { # name, command...
  local name=$1; shift
  if pgrep -x "$name" >/dev/null; then return 0; fi
  log "starting $name"
  "$@"
}
mkdir -p /run/libvirt
start_daemon virtlogd virtlogd -d
start_daemon libvirtd libvirtd -d
for _ in $(seq 50); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.2; done
virsh -c qemu:///system version >/dev/null || { echo "setup-host: libvirtd does not answer" >&2; exit 3; }

# libvirt's default network puts 192.168.122.0/24 in the host's namespace:
# lab addresses live only in lab namespaces, so it goes.
if virsh -c qemu:///system net-info default >/dev/null 2>&1; then
  virsh -c qemu:///system net-destroy default >/dev/null 2>&1 || true
  virsh -c qemu:///system net-autostart default --disable >/dev/null 2>&1 || true
  log "destroyed libvirt network 'default'"
fi

if [ "$want_docker" = 1 ]; then
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd"
    (dockerd >/var/log/maas-e2e-dockerd.log 2>&1 &)
    for _ in $(seq 100); do docker info >/dev/null 2>&1 && break; sleep 0.3; done
    docker info >/dev/null || { echo "setup-host: dockerd did not start; see /var/log/maas-e2e-dockerd.log" >&2; exit 3; }
  fi
fi
log "host ready"
