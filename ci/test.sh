#!/usr/bin/env bash
# The project's tests, on a fresh Debian 12 host: installs what is missing,
# starts libvirtd/virtlogd/dockerd, builds, runs every test (CI=true: a
# missing prerequisite fails, never skips). Exit status: the tests'.
set -euo pipefail
cd "$(dirname "$0")/.."
# A full disk fails tests in odd places (a VM's "No space left on device"
# mid-run); say so before anything starts. The debug build takes ~8 GiB,
# the runs' disks, Postgres and images ~2 GiB more.
need_gib=12
for dir in . /var/lib; do
  free_gib=$(df --output=avail -BG "$dir" | tail -n 1 | tr -dc '0-9')
  if (( free_gib < need_gib )); then
    echo "ci/test.sh: only ${free_gib} GiB free on the filesystem of $dir; the build and the runs need about ${need_gib} GiB." >&2
    echo "  Free some (old target/ directories; maas-e2e down --all for leftover runs) and run again." >&2
    exit 1
  fi
done
bash ci/setup-host.sh --docker
# The chart tests' Postgres image, from Debian packages (nothing can be pulled).
bash ci/images/postgres/build.sh
# Python peers (the Helm engine, python-libmaas, ...) in one venv.
bash ci/setup-python.sh
export MAAS_E2E_VENV="${MAAS_E2E_VENV:-/opt/maas-e2e/venv}"
# Forced, not inherited: with CI=True or CI=0 from a caller every `require`
# would skip instead of failing.
export CI=true
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
bash ci/check-no-skips.sh writers
# The tree stays formatted and lint-clean; both fail fast, before the tests.
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
status=0
cargo nextest run --profile ci --no-fail-fast "$@" || status=$?
# Green must mean tested: only the named benchmarks skipped, no test printed a skip.
bash ci/check-no-skips.sh after target/nextest/ci/junit.xml || status=1
exit "$status"
