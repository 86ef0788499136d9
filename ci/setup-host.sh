#!/usr/bin/env bash
# Prepare a Debian 12 host for maas-e2e: install what is missing and start
# the daemons that have no systemd here. Idempotent; safe to run every time.
#
#   ci/setup-host.sh            packages + daemons for the sim and none targets
#   ci/setup-host.sh --docker   also dockerd (chart target, testcontainers tests)
set -euo pipefail

want_docker=0
for arg in "$@"; do
  case "$arg" in
    --docker) want_docker=1 ;;
    *) echo "setup-host: unknown argument $arg (allowed: --docker)" >&2; exit 2 ;;
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
  pxelinux syslinux-common busybox-static linux-image-amd64 cpio zstd  # ephemeral image
  postgresql                                         # sim target state
  dnsmasq tcpdump iproute2 procps python3 hyperfine  # lab baseline peers, captures
)
[ "$want_docker" = 1 ] && packages+=(docker.io debootstrap)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get update -qq
  # qemu-system-x86 alone from backports (to match the image's qemu-utils);
  # everything else from bookworm itself.
  if apt-cache policy qemu-system-x86 | grep -q bookworm-backports; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -t bookworm-backports qemu-system-x86 qemu-system-data qemu-system-common
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

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
