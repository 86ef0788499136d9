#!/usr/bin/env bash
# enlist-bios and enlist-uefi with two builds, alternating A and B so both
# see the same machine load: the run's total (run_finished), its stages and
# waits, and the harness's own CPU (user+sys of the maas-e2e process and
# its children: Postgres, the tools; not the guests).
#
#   ci/bench/enlist-ab.sh BIN_A BIN_B OUT_DIR [ROUNDS]
#
# Prints a markdown table; measures, asserts nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ $# -ge 3 ] || { sed -n '2,9p' "$0"; exit 2; }
a=$1 b=$2 out=$3 rounds=${4:-1}
for bin in "$a" "$b"; do
  [ -x "$bin" ] || { echo "enlist-ab.sh: $bin is not an executable" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "enlist-ab.sh: needs jq" >&2; exit 2; }
mkdir -p "$out/scenarios"
cp "$repo/scenarios/enlist-bios.yaml" "$repo/scenarios/enlist-uefi.yaml" "$out/scenarios/"
printf '| scenario | build | round | load at start | lab | deploy | to New | wait_power off | total | harness CPU |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
for r in $(seq "$rounds"); do
  for s in enlist-bios enlist-uefi; do
    for side in A B; do
      if [ "$side" = A ]; then bin=$a; else bin=$b; fi
      d="$out/$side-$s-$r"
      mkdir -p "$d"
      load=$(cut -d' ' -f1 /proc/loadavg)
      /usr/bin/time -f '%U %S' -o "$d/cpu" "$bin" run --target sim --seed 1 --out "$d" \
        "$out/scenarios/$s.yaml" > "$d/run.log" 2>&1 || true
      dirs=("$d"/*/)
      ev="${dirs[0]}events.jsonl"
      secs() {
        jq -r --arg k "$1" 'select(.event=="stage_finished" or .event=="step_finished")
          | select((.stage // .name) | startswith($k))
          | .duration.secs + .duration.nanos/1e9' "$ev" | head -1 | xargs printf '%.1f'
      }
      total=$(jq -r 'select(.event=="run_finished") | .duration.secs + .duration.nanos/1e9' "$ev")
      read -r u sy < <(tail -1 "$d/cpu")
      printf '| %s | %s | %s | %s | %s s | %s s | %s s | %s s | %.1f s | %.2f s |\n' \
        "$s" "$side" "$r" "$load" "$(secs lab)" "$(secs deploy)" "$(secs 'wait_status node New')" \
        "$(secs 'wait_power node Off')" "$total" "$(echo "$u + $sy" | bc -l)"
    done
  done
done
echo "run directories: $out" >&2
