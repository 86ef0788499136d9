#!/usr/bin/env bash
# The main job on a fresh Debian 12 host: set up, build, and run a scenario
# on the embedded default target (sim). Extra arguments go to `maas-e2e run`.
#   ci/main.sh                           scenarios/enlist-bios.yaml on sim
#   ci/main.sh scenarios/commission.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup-host.sh
cargo build --release --locked
if [ $# -eq 0 ]; then set -- scenarios/enlist-bios.yaml; fi
exec ./target/release/maas-e2e run "$@"
