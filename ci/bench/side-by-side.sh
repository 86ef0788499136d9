#!/usr/bin/env bash
# Two builds of maas-e2e side by side in one run: ci/bench/sim-chain.sh (1, 3
# and 6 machines to Ready, harness CPU against the guests') with build A,
# then build B, ROUNDS times, alternating so both see the same machine load.
#
#   ci/bench/side-by-side.sh BIN_A BIN_B [ROUNDS] [OUT_DIR]
#
# Build A is usually main before a change and B after it, e.g.
#   git worktree add /var/tmp/before COMMIT && (cd /var/tmp/before && cargo build --release)
# Prints one markdown table per build and round; measures, asserts nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 2 ] || { sed -n '2,10p' "$0"; exit 2; }
a=$1 b=$2 rounds=${3:-1}
out=${4:-$(mktemp -d /var/tmp/maas-e2e-side-by-side.XXXXXX)}
for bin in "$a" "$b"; do
  [ -x "$bin" ] || { echo "side-by-side.sh: $bin is not an executable" >&2; exit 2; }
done
case $rounds in ''|*[!0-9]*|0) echo "side-by-side.sh: ROUNDS wants a positive number, got '$rounds'" >&2; exit 2 ;; esac
for round in $(seq "$rounds"); do
  for side in A B; do
    if [ "$side" = A ]; then bin=$a; else bin=$b; fi
    echo
    echo "### build $side ($bin), round $round, $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    bash "$here/sim-chain.sh" "$bin" "$out/$side-$round"
  done
done
echo "run directories: $out" >&2
