#!/usr/bin/env bash
# Do the goldens hold run after run? Runs each sim scenario N times with the
# release binary and reports, per scenario, how many runs passed and every
# distinct snapshot difference seen (with how often), plus runs that failed
# for another reason (a step or a check).
#
#   ci/bench/goldens.sh [-n N] [--bin PATH] [--out DIR] [--profile P] [--load]
#                       [--load-jobs J] [--load-secs S] [SCENARIO.yaml ...]
#
#   -n N           runs per scenario (default 10)
#   --bin PATH     maas-e2e binary (default target/release/maas-e2e, built
#                  with `cargo build --release` when missing)
#   --out DIR      where run directories and diffs go (default: a new
#                  /var/tmp/maas-e2e-goldens.XXXXXX)
#   --profile P    the sim's MAAS profile (2.8 default, 3.6): runs with
#                  `--sim-profile P` against NAME.sim-P.snap (2.8: NAME.sim.snap)
#   --load         run a CPU load beside the scenarios (answers come late
#                  under load, which is when flakes show): J busy workers
#                  (default: one per core), each ended by `timeout` after S
#                  seconds (default 3600) or when this script exits
#   SCENARIO.yaml  default: every scenarios/*.yaml whose targets include sim
#                  (under --profile 3.6: those with a 3.6 golden)
#
# Each run works on a copy of the scenario and its golden in its own
# directory, so a mismatch leaves its .snap.new there and scenarios/ is
# never touched. Scenarios run one at a time (the guests share the cores).
# Prints markdown; measures, asserts nothing; exits 0 unless it could not
# run at all.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

n=10
bin=$repo/target/release/maas-e2e
out=
load=false
profile=2.8
load_jobs=$(nproc)
load_secs=3600
scenarios=()
while [ $# -gt 0 ]; do
  case $1 in
    -n) n=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --load) load=true; shift ;;
    --load-jobs) load_jobs=$2; shift 2 ;;
    --load-secs) load_secs=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) echo "goldens.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) scenarios+=("$1"); shift ;;
  esac
done
case $n in ''|*[!0-9]*|0) echo "goldens.sh: -n wants a positive number, got '$n'" >&2; exit 2 ;; esac
case $profile in
  2.8) snap_kind=sim; profile_args=() ;;
  3.6) snap_kind=sim-3.6; profile_args=(--sim-profile 3.6) ;;
  *) echo "goldens.sh: --profile wants 2.8 or 3.6, got '$profile'" >&2; exit 2 ;;
esac

if [ ${#scenarios[@]} -eq 0 ]; then
  for f in "$repo"/scenarios/*.yaml; do
    # `targets: [sim, chart, external]`: the scenario runs on sim.
    # Under 3.6, only the scenarios that have a 3.6 golden.
    if grep -Eq '^targets:.*\bsim\b' "$f" \
      && { [ "$profile" = 2.8 ] || [ -f "${f%.yaml}.$snap_kind.snap" ]; }; then
      scenarios+=("$f")
    fi
  done
fi
[ ${#scenarios[@]} -gt 0 ] || { echo "goldens.sh: no sim scenario found" >&2; exit 2; }

if [ ! -x "$bin" ]; then
  if [ "$bin" = "$repo/target/release/maas-e2e" ]; then
    echo "goldens.sh: building the release binary (cargo build --release)" >&2
    (cd "$repo" && cargo build --release --bin maas-e2e)
  else
    echo "goldens.sh: $bin is not an executable (is it built?)" >&2
    exit 2
  fi
fi
command -v jq >/dev/null || { echo "goldens.sh: needs jq (apt-get install jq)" >&2; exit 2; }

[ -n "$out" ] || out=$(mktemp -d /var/tmp/maas-e2e-goldens.XXXXXX)
mkdir -p "$out"

# The load: busy workers we started, each bounded by timeout(1); stopped by
# pid when this script ends, whichever comes first.
load_pids=()
stop_load() {
  for p in "${load_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${load_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  load_pids=()
}
trap stop_load EXIT
if $load; then
  for _ in $(seq "$load_jobs"); do
    timeout --kill-after=5 "$load_secs" sh -c 'while :; do :; done' &
    load_pids+=($!)
  done
  echo "goldens.sh: load: $load_jobs busy workers for at most ${load_secs}s" >&2
fi

# The body of an insta snapshot file: everything after the second `---`.
snap_body() { awk 'n>=2 {print; next} /^---$/ {n++}' "$1"; }

summary=$out/summary.md
{
  echo "goldens: $n runs per scenario, profile $profile, binary $bin, load $($load && echo "$load_jobs workers" || echo none), $(date -u +%FT%TZ), $(nproc) cores, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| scenario | passed | snapshot differs | other failure | no golden | median run |"
  echo "| --- | --- | --- | --- | --- | --- |"
} > "$summary"
details=$out/details.md
: > "$details"

for scenario in "${scenarios[@]}"; do
  name=$(basename "$scenario" .yaml)
  golden=$(dirname "$scenario")/$name.$snap_kind.snap
  passed=0 differs=0 other=0 nogolden=0
  times=()
  mkdir -p "$out/$name/diffs"
  declare -A diff_count=()
  declare -A diff_runs=()
  other_notes=()
  for i in $(seq "$n"); do
    work=$out/$name/run-$i
    mkdir -p "$work"
    cp "$scenario" "$work/"
    [ -f "$golden" ] && cp "$golden" "$work/"
    start=$(date +%s.%N)
    rc=0
    "$bin" run --target sim "${profile_args[@]}" --seed 1 --out "$work/runs" "$work/$name.yaml" >"$work/run.log" 2>&1 || rc=$?
    times+=("$(echo "$(date +%s.%N) - $start" | bc -l)")
    if [ "$rc" -eq 0 ]; then
      passed=$((passed + 1))
      echo "$name run $i/$n: passed" >&2
      continue
    fi
    run_dir=$(ls -d "$work"/runs/*/ 2>/dev/null | head -1 || true)
    events=${run_dir:+$run_dir/events.jsonl}
    failed_units=
    if [ -n "$events" ] && [ -f "$events" ]; then
      failed_units=$(jq -r 'select(.event=="step_finished" or .event=="check_finished" or .event=="stage_finished")
        | select(.outcome.outcome=="failed") | (.name // .stage)' "$events" | paste -sd, -)
    fi
    if [ ! -f "$golden" ]; then
      nogolden=$((nogolden + 1))
    elif [ -f "$work/$name.$snap_kind.snap.new" ]; then
      differs=$((differs + 1))
      d=$(diff -u --label golden --label "this run" <(snap_body "$work/$name.$snap_kind.snap") <(snap_body "$work/$name.$snap_kind.snap.new") || true)
      key=$(printf '%s' "$d" | sha256sum | cut -c1-12)
      if [ -z "${diff_count[$key]:-}" ]; then
        diff_count[$key]=0
        diff_runs[$key]=
        printf '%s\n' "$d" > "$out/$name/diffs/$key.diff"
      fi
      diff_count[$key]=$((diff_count[$key] + 1))
      diff_runs[$key]="${diff_runs[$key]:+${diff_runs[$key]}, }$i"
    fi
    if [ -n "$failed_units" ] || [ ! -f "$work/$name.$snap_kind.snap.new" ]; then
      other=$((other + 1))
      other_notes+=("run $i (exit $rc): failed: ${failed_units:-see $work/run.log}")
    fi
    echo "$name run $i/$n: exit $rc${failed_units:+ (failed: $failed_units)}" >&2
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.0f s", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
  echo "| $name | $passed/$n | $differs | $other | $nogolden | $median |" >> "$summary"
  {
    echo "## $name"
    echo
    if [ ${#diff_count[@]} -eq 0 ]; then
      echo "No snapshot difference seen."
    else
      echo "${#diff_count[@]} distinct snapshot difference(s):"
      for key in "${!diff_count[@]}"; do
        echo
        echo "### seen in ${diff_count[$key]} of $n runs (runs ${diff_runs[$key]}; $out/$name/diffs/$key.diff)"
        echo
        echo '```diff'
        cat "$out/$name/diffs/$key.diff"
        echo '```'
      done
    fi
    for note in "${other_notes[@]}"; do echo "- $note"; done
    echo
  } >> "$details"
  unset diff_count diff_runs
done

stop_load
cat "$summary"
echo
cat "$details"
echo "run directories, summary.md and details.md: $out" >&2
