#!/usr/bin/env bash
# Where does `ci/test.sh`'s time go? Reads nextest's JUnit (default: the ci
# profile's, target/nextest/ci/junit.xml) and prints, per test binary, the
# number of tests, the sum of their times and the slowest test, slowest
# binary first, as markdown. Tests of one binary run in parallel, so the
# sums add up to more than the wall time; the run's wall time is the
# JUnit's own `time`.
#
#   ci/bench/test-times.sh [JUNIT.xml]
set -euo pipefail
junit=${1:-target/nextest/ci/junit.xml}
[ -f "$junit" ] || { echo "test-times: no JUnit at $junit (run ci/test.sh first)" >&2; exit 2; }
python3 - "$junit" <<'PY'
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

root = ET.parse(sys.argv[1]).getroot()
per_binary = defaultdict(list)
for case in root.iter("testcase"):
    binary = case.get("classname", "?").split("::", 1)[-1]
    per_binary[binary].append((float(case.get("time", "0")), case.get("name", "?")))

total = sum(t for cases in per_binary.values() for t, _ in cases)
print(f"run: {root.get('tests')} tests, wall {float(root.get('time', 0)):.0f} s, "
      f"sum of test times {total:.0f} s, started {root.get('timestamp')}")
print()
print("| binary | tests | sum of times | share | slowest test |")
print("| --- | ---: | ---: | ---: | --- |")
for binary, cases in sorted(per_binary.items(), key=lambda kv: -sum(t for t, _ in kv[1])):
    spent = sum(t for t, _ in cases)
    slow_t, slow_name = max(cases)
    print(f"| {binary} | {len(cases)} | {spent:.0f} s | {100 * spent / total:.0f} % "
          f"| {slow_name} ({slow_t:.0f} s) |")
PY
