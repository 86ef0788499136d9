#!/usr/bin/env bash
# The project's tests, on a fresh Debian 12 host: installs what is missing,
# starts libvirtd/virtlogd/dockerd, builds, runs every test (CI=true: a
# missing prerequisite fails, never skips). Exit status: the tests'.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup-host.sh --docker
# The chart tests' Postgres image, from Debian packages (nothing can be pulled).
bash ci/images/postgres/build.sh
export CI="${CI:-true}"
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
cargo nextest run --profile ci --no-fail-fast "$@"
