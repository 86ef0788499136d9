#!/usr/bin/env bash
# Build the Postgres image the chart target and its tests use, from Debian
# packages only: no registry is reachable, so nothing is pulled.
#
#   1. the project's Debian bookworm base image (ci/images/base/build.sh:
#      debootstrap, then `docker import`), built once and kept;
#   2. this directory's Dockerfile on top: postgresql-15 from Debian, an
#      entrypoint that initialises the cluster and listens on 5432.
#
#   ci/images/postgres/build.sh            builds maas-e2e/postgres:15-bookworm
#   MAAS_E2E_PG_IMAGE=name:tag build.sh   another tag
#
# Needs: docker (dockerd running), debootstrap (apt-get install debootstrap).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
base_image=${MAAS_E2E_BASE_IMAGE:-maas-e2e/debian-base:bookworm}
pg_image=${MAAS_E2E_PG_IMAGE:-maas-e2e/postgres:15-bookworm}

log() { printf 'postgres-image: %s\n' "$*"; }
need() { command -v "$1" >/dev/null || { echo "postgres-image: $1 is missing; install it: apt-get install $2" >&2; exit 3; }; }
need docker docker.io
docker info >/dev/null 2>&1 || { echo "postgres-image: dockerd is not running; start it: ci/setup-host.sh --docker" >&2; exit 3; }

MAAS_E2E_BASE_IMAGE=$base_image bash "$here/../base/build.sh"

log "docker build -> $pg_image (FROM $base_image)"
# --network host: apt inside the build reaches Debian's mirror the way the host does.
docker build --network host --build-arg "BASE=$base_image" -t "$pg_image" "$here" >&2
log "built $pg_image"
