#!/bin/sh
# Virtual BMC benchmark (docs/performance/bmc.md): 1,000 BMCs in one
# process, 50 concurrent RMCP+ sessions, ipmipower --stat against our BMC
# and OpenIPMI's ipmi_sim side by side. Release build; writes JSON to $1.
set -eu
out="${1:-bmc-bench.json}"
ulimit -n 8192
BMC_BENCH_JSON="$(realpath -m "$out")" exec cargo nextest run --release --test bmc \
    --run-ignored only -E 'test(bench_report)' --no-capture
