#!/usr/bin/env bash
# A 1,000-machine fleet on the sim (ci/bench/scenarios/fleet-1000.yaml):
# how long the operator's creates take, how long until MAAS's power
# monitor knows every power state, the harness process's RSS and CPU while
# the fleet is polled, and the sim's `GET machines/` latency with the fleet
# in it (fleet.json of the run).
#
#   ci/bench/fleet.sh [--bin PATH] [--out DIR] [--update-snapshots] [SCENARIO.yaml]
#
#   --bin PATH  maas-e2e binary (default target/debug/maas-e2e)
#   --out DIR   where the run goes (default: a new /var/tmp/maas-e2e-fleet.XXXXXX)
#   --update-snapshots  rewrite the scenario's golden (the fleet summary)
#
# The BMC fleet runs inside the harness process together with the sim
# region and rack, so its RSS and CPU are an upper bound for the BMCs
# alone (Postgres and the ipmipower children are other processes, not
# counted). Samples /proc/PID once a second. Prints markdown; measures,
# asserts nothing; exits with the run's exit code.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# From the repo, so the golden names its scenario by a relative path.
cd "$repo"
bin=$repo/target/debug/maas-e2e
out=
scenario=ci/bench/scenarios/fleet-1000.yaml
update=()
while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --update-snapshots) update=(--update-snapshots); shift ;;
    *) scenario=$1; shift ;;
  esac
done
[ -n "$out" ] || out=$(mktemp -d /var/tmp/maas-e2e-fleet.XXXXXX)
mkdir -p "$out"
hz=$(getconf CLK_TCK)

"$bin" run --target sim --seed 1 ${update[@]+"${update[@]}"} --out "$out/runs" "$scenario" >"$out/run.out" 2>"$out/run.log" &
pid=$!
# phase: 0 before the fleet exists, 1 while MAAS's monitor polls it
# (after create_machine, until wait_power_known), 2 afterwards.
: >"$out/samples.tsv"
while kill -0 "$pid" 2>/dev/null; do
  phase=0
  grep -q 'step 00 create_machine .*: ok' "$out/run.log" && phase=1
  grep -q 'step 01 wait_power_known .*: ok' "$out/run.log" && phase=2
  if rss=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null) &&
    ticks=$(awk '{print $14+$15}' "/proc/$pid/stat" 2>/dev/null); then
    echo "$(date +%s.%N) $phase $rss $ticks" >>"$out/samples.tsv"
  fi
  sleep 1
done
rc=0
wait "$pid" || rc=$?

run_dir=$(find "$out/runs" -mindepth 1 -maxdepth 1 -type d | head -1)
echo "| measure | value |"
echo "| --- | --- |"
awk -v hz="$hz" '
  $2==1 { if (!n) { t0=$1; c0=$4 } t1=$1; c1=$4; n++; if ($3>rss) rss=$3 }
  { if ($3>peak) peak=$3 }
  END {
    if (n>1) printf "| harness RSS while polled, peak | %.1f MB |\n| harness CPU while polled | %.1f%% of one core over %.0f s |\n", rss/1024, (c1-c0)/hz/(t1-t0)*100, t1-t0
    printf "| harness RSS, peak over the run | %.1f MB |\n", peak/1024
  }' "$out/samples.tsv"
if [ -n "$run_dir" ] && [ -f "$run_dir/fleet.json" ]; then
  python3 - "$run_dir/fleet.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
c = t["create"]
print(f"| create (POST machines/) | {c['count']} in {t['create_total_s']:.1f} s; p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms, max {c['max_ms']} ms |")
print(f"| first create to every power state known | {', '.join(f'{s:.1f} s' for s in t['until_known_s']) or 'not reached'} |")
l = t["list_machines"]
print(f"| sim GET machines/ (up to the whole fleet): request to whole body | {l['count']} calls; p50 {l['p50_ms']} ms, p90 {l['p90_ms']} ms, p99 {l['p99_ms']} ms, max {l['max_ms']} ms |")
lp = t.get("list_machines_parse")
if lp:
    print(f"| harness parse of those bodies | p50 {lp['p50_ms']} ms, p90 {lp['p90_ms']} ms, max {lp['max_ms']} ms |")
for k, p in t["power"].items():
    print(f"| power_fraction {k}: request to state seen | {p['count']} machines; p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms |")
PY
fi
tail -n 3 "$out/run.out"
echo "run exit $rc; samples, log and run directory: $out"
exit "$rc"
