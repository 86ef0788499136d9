#!/usr/bin/env bash
# Run a host set-up script's package phase, with real installs, in a fresh
# container of this project's machine kind (ci/images/fresh-host), the way a
# new machine would run the README's first command.
#
#   ci/images/fresh-host/check.sh [--script FILE] [SETUP-HOST ARGS...]
#
# FILE defaults to ci/setup-host.sh; the arguments default to
# `--packages-only`. Prints the container's output and, last,
# `fresh-host: qemu-system-x86 V qemu-utils V docker.io V|absent` when it
# succeeded.
# Exit status: the script's.
#
# apt-cache in the container writes its real output slowly, a line at a
# time: a reader that stops at its first match (grep -q) then kills it with
# SIGPIPE every time, as it did on a busy fresh machine by chance. Packages
# and package lists are cached under MAAS_E2E_APT_CACHE (default
# /var/cache/maas-e2e/fresh-host) so a second run downloads little.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ci=$(cd "$here/../.." && pwd)
base_image=${MAAS_E2E_BASE_IMAGE:-maas-e2e/debian-base:bookworm}
image=${MAAS_E2E_FRESH_HOST_IMAGE:-maas-e2e/fresh-host:bookworm}
cache=${MAAS_E2E_APT_CACHE:-/var/cache/maas-e2e/fresh-host}

script="$ci/setup-host.sh"
if [ "${1:-}" = --script ]; then script=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2; fi
[ -f "$script" ] || { echo "fresh-host: --script $script: no such file" >&2; exit 2; }
[ $# -gt 0 ] || set -- --packages-only

log() { printf 'fresh-host: %s\n' "$*" >&2; }
docker info >/dev/null 2>&1 || { echo "fresh-host: dockerd is not running; start it: ci/setup-host.sh --docker" >&2; exit 3; }
MAAS_E2E_BASE_IMAGE=$base_image bash "$ci/images/base/build.sh" >&2
if ! docker image inspect "$image" >/dev/null 2>&1; then
  log "docker build -> $image"
  docker build --network host --build-arg "BASE=$base_image" -t "$image" "$here" >&2
fi

mkdir -p "$cache/archives/partial" "$cache/lists/partial"
# The slow apt-cache: the real one's output, a line every 0.2 s.
slow=$(mktemp -d /var/tmp/maas-e2e-fresh-host.XXXXXX)
trap 'rm -rf "$slow"' EXIT
cat > "$slow/apt-cache" <<'SLOW'
#!/bin/bash
out=$(/usr/bin/apt-cache "$@") || exit
while IFS= read -r line; do printf '%s\n' "$line"; sleep 0.2; done <<<"$out"
SLOW
chmod 0755 "$slow/apt-cache"

log "$(basename "$script") $* in a fresh $image container"
docker run --rm --network host \
  -v "$script:/maas-e2e/setup-host.sh:ro" \
  -v "$slow/apt-cache:/usr/local/bin/apt-cache:ro" \
  -v "$cache/archives:/var/cache/apt/archives" \
  -v "$cache/lists:/var/lib/apt/lists" \
  "$image" bash -c '
    set -e
    bash /maas-e2e/setup-host.sh "$@"
    v() { dpkg-query -W -f="\${Version}" "$1" 2>/dev/null || echo absent; }
    qemu-system-x86_64 --version >/dev/null
    echo "fresh-host: qemu-system-x86 $(v qemu-system-x86) qemu-utils $(v qemu-utils) docker.io $(v docker.io)"
  ' setup-host "$@"
