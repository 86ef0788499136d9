#!/usr/bin/env bash
# Time from `run` start to all machines Ready on the sim target, for 1, 3
# and 6 machines, split by stage and step, with the CPU the harness (and
# the sim region, rack, Postgres: all inside the maas-e2e process or its
# children) used against the CPU the QEMU guests used.
#
#   ci/bench/sim-chain.sh [BIN] [OUT_DIR]
#
# Runs one scenario at a time (the guests share the host's cores). Prints
# markdown tables; measures, asserts nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${1:-$repo/target/debug/maas-e2e}
out=${2:-$(mktemp -d /var/tmp/maas-e2e-bench.XXXXXX)}
mkdir -p "$out"

# utime+stime (clock ticks) of this run's QEMU processes, sampled until told
# to stop: the guests are libvirt's children, not ours, so `time` cannot see
# them. Only domains named after the run's id (the directory the run makes
# under PARENT) count, so other VMs on a shared machine do not.
sample_qemu() {
  local file=$1 parent=$2 id=""
  declare -A last=()
  while [ ! -e "$file.stop" ]; do
    if [ -z "$id" ]; then
      for d in "$parent"/*/; do [ -d "$d" ] && id=$(basename "$d"); done
    fi
    [ -n "$id" ] || { sleep 0.2; continue; }
    for p in $(pgrep -f "qemu-system-x86_64.*guest=[^,]*$id" || true); do
      t=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || true)
      [ -n "$t" ] && last[$p]=$t
    done
    sleep 1
  done
  local sum=0
  for p in "${!last[@]}"; do sum=$((sum + last[$p])); done
  echo "$sum" > "$file"
}

tick=$(getconf CLK_TCK)
printf '| machines | scenario | lab | deploy | power_on | to New | commission | to Ready | power off | total | harness CPU | guests CPU | harness/guests |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
for spec in "1 $repo/scenarios/enlist-commission.yaml" "3 $repo/scenarios/commission.yaml" "6 $here/scenarios/commission-6.yaml"; do
  set -- $spec
  n=$1 scenario=$2
  rundir_parent="$out/m$n"
  mkdir -p "$rundir_parent"
  qfile="$out/qemu-ticks-$n"
  rm -f "$qfile" "$qfile.stop"
  sample_qemu "$qfile" "$rundir_parent" &
  sampler=$!
  # A copy of the scenario: no golden beside it, so the run reports "no
  # snapshot" and exits 1 while every step and check still runs; the goldens
  # in scenarios/ are neither compared nor touched.
  mkdir -p "$out/scenarios"
  cp "$scenario" "$out/scenarios/"
  /usr/bin/time -f '%U %S' -o "$out/harness-cpu-$n" \
    "$bin" run --target sim --seed 1 --out "$rundir_parent" "$out/scenarios/$(basename "$scenario")" >"$out/run-$n.log" 2>&1 || true
  touch "$qfile.stop"; wait "$sampler"; rm -f "$qfile.stop"
  # No `ls | head` under pipefail: head may close the pipe first.
  dirs=("$rundir_parent"/*/)
  run_dir=${dirs[0]}
  durations=$(jq -r 'select(.event=="stage_finished" or .event=="step_finished")
      | "\(.stage // .name)\t\(.duration.secs + .duration.nanos/1e9)"' "$run_dir/events.jsonl")
  get() { printf '%s\n' "$durations" | awk -F'\t' -v k="$1" 'index($1,k)==1 {printf "%.1f", $2; exit}'; }
  getlast() { printf '%s\n' "$durations" | awk -F'\t' -v k="$1" 'index($1,k)==1 {v=$2} END {if (v != "") printf "%.1f", v}'; }
  failed=$(jq -r 'select(.event=="step_finished" or .event=="check_finished") | select(.outcome.outcome!="passed") | .name' "$run_dir/events.jsonl")
  [ -z "$failed" ] || echo "run with $n machines: not passed: $failed (see $out/run-$n.log)" >&2
  total=$(jq -r 'select(.event=="run_finished") | .duration.secs + .duration.nanos/1e9' "$run_dir/events.jsonl")
  # GNU time writes "Command exited with non-zero status N" first when it did.
  read -r hu hs < <(tail -1 "$out/harness-cpu-$n")
  harness=$(echo "$hu + $hs" | bc -l)
  guests=$(echo "$(cat "$qfile") / $tick" | bc -l)
  ratio=$(echo "100 * $harness / $guests" | bc -l)
  printf '| %s | %s | %s s | %s s | %s s | %s s | %s s | %s s | %s s | %.1f s | %.1f s | %.1f s | %.1f %% |\n' \
    "$n" "$(basename "$scenario" .yaml)" "$(get lab)" "$(get deploy)" "$(get power_on)" "$(get 'wait_status all New' || true)$(get 'wait_status node New' || true)" \
    "$(get commission)" "$(get 'wait_status all Ready' || true)$(get 'wait_status node Ready' || true)" "$(getlast 'wait_power all Off')$(getlast 'wait_power node Off')" \
    "$total" "$harness" "$guests" "$ratio"
done
echo "run directories: $out" >&2
