#!/usr/bin/env bash
# The project's Debian bookworm base image, from Debian's mirror by
# debootstrap (no registry is reachable, so nothing is pulled): built once
# and kept. Every other image of ci/images starts FROM it.
#
#   ci/images/base/build.sh          builds maas-e2e/debian-base:bookworm if absent
#   MAAS_E2E_BASE_IMAGE=name:tag     another tag
#
# Needs: docker (dockerd running), debootstrap (installed here if missing).
set -euo pipefail

base_image=${MAAS_E2E_BASE_IMAGE:-maas-e2e/debian-base:bookworm}
mirror=${MAAS_E2E_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { printf 'base-image: %s\n' "$*"; }
need() { command -v "$1" >/dev/null || { echo "base-image: $1 is missing; install it: apt-get install $2" >&2; exit 3; }; }
need docker docker.io
docker info >/dev/null 2>&1 || { echo "base-image: dockerd is not running; start it: ci/setup-host.sh --docker" >&2; exit 3; }

if docker image inspect "$base_image" >/dev/null 2>&1; then
  exit 0
fi
if ! command -v debootstrap >/dev/null && [ "$(id -u)" = 0 ]; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
fi
need debootstrap debootstrap
rootfs=$(mktemp -d /var/tmp/maas-e2e-rootfs.XXXXXX)
trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT
log "debootstrap bookworm (minbase) into $rootfs"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
  || { cat "$rootfs.log" >&2; exit 1; }
# A smaller image and no cached package lists from the build host.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
log "docker import -> $base_image"
tar -C "$rootfs" -c . | docker import - "$base_image" >/dev/null
log "built $base_image"
