#!/usr/bin/env bash
# The sim qualification matrix (ci/qualification/sim-matrix.yaml) on one
# runner against two partitions run side by side on this machine: wall time
# of each, and whether `qualify merge` of the two fragments renders the same
# summary table as the single runner (it must; the script exits 1 if not).
#
#   ci/bench/qualify-sim.sh [BIN] [OUT_DIR]
#
# Needs what the sim target needs (root, libvirtd, QEMU, FreeIPMI; see
# `maas-e2e doctor --target sim`). Prints a markdown table.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:-$repo/target/debug/maas-e2e}
out=${2:-$(mktemp -d /var/tmp/maas-e2e-bench-qualify.XXXXXX)}
mkdir -p "$out"
cd "$repo"
matrix=ci/qualification/sim-matrix.yaml
commit=$(git rev-parse HEAD 2>/dev/null || echo bench)

now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{print a-b}'; }
load() { cut -d' ' -f1 /proc/loadavg; }
q() { "$bin" qualify --matrix "$matrix" --target sim --seed 1 --commit "$commit" "$@"; }

load0=$(load)
t0=$(now)
rc_single=0
q --out "$out/single" --summary "$out/single.md" >"$out/single.log" 2>&1 || rc_single=$?
t1=$(now)
load1=$(load)

declare -A part_time=()
pids=()
for i in 1 2; do
  (
    s=$(now)
    rc=0
    q --partition "$i/2" --out "$out/p$i" >"$out/p$i.log" 2>&1 || rc=$?
    e=$(now)
    echo "$rc $(awk -v a="$s" -v b="$e" 'BEGIN{print b-a}')" >"$out/p$i.result"
  ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
t2=$(now)
load2=$(load)
for i in 1 2; do part_time[$i]=$(cut -d' ' -f2 "$out/p$i.result"); done

rc_merge=0
"$bin" qualify merge "$out/p1" "$out/p2" --summary "$out/merged.md" --junit "$out/merged.xml" \
  >"$out/merge.log" 2>&1 || rc_merge=$?
same=no
cmp -s "$out/single.md" "$out/merged.md" && same=yes

printf '| runner(s) | wall | exit | load before/after |\n| --- | --- | --- | --- |\n'
cells=$("$bin" qualify --matrix "$matrix" --list | grep -c '"id"')
printf '| one runner, %s cells | %.1f s | %s | %s / %s |\n' "$cells" "$(sub "$t1" "$t0")" "$rc_single" "$load0" "$load1"
printf '| two partitions side by side | %.1f s (1/2: %.1f s exit %s, 2/2: %.1f s exit %s) | merge %s | %s / %s |\n' \
  "$(sub "$t2" "$t1")" "${part_time[1]}" "$(cut -d' ' -f1 "$out/p1.result")" \
  "${part_time[2]}" "$(cut -d' ' -f1 "$out/p2.result")" "$rc_merge" "$load1" "$load2"
printf '\nmerged summary equals the single runner'"'"'s: %s (%s, %s)\n' "$same" "$out/single.md" "$out/merged.md"
[ "$same" = yes ]
