#!/usr/bin/env bash
# After the test run: green must mean tested. Fails when
#   - a variable that turns checks into writers is set (UPDATE_EXPECTED,
#     MAAS_E2E_WRITE_KIND, INSTA_UPDATE, INSTA_FORCE_PASS);
#   - the tests nextest skips are not exactly ci/benchmarks.txt;
#   - any test printed a skip (`SKIP:` from src/testing.rs `require`),
#     read from the JUnit report, which keeps every test's output.
#
#   ci/check-no-skips.sh writers          before the run
#   ci/check-no-skips.sh after JUNIT      after it
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { printf 'check-no-skips: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
  writers)
    for v in UPDATE_EXPECTED MAAS_E2E_WRITE_KIND INSTA_UPDATE INSTA_FORCE_PASS; do
      [ -z "${!v+set}" ] || fail "$v is set (${!v}): it turns checks into writers; unset it for a test run"
    done
    ;;
  after)
    junit=${2:?usage: check-no-skips.sh after JUNIT}
    [ -s "$junit" ] || fail "$junit is missing or empty: the run wrote no JUnit report"
    listed=$(cargo nextest list --profile ci --run-ignored only --message-format oneline 2>/dev/null \
      | sed -e 's/^maas-e2e:://' -e 's/^maas-e2e /lib /' | LC_ALL=C sort)
    allowed=$(grep -v '^\s*\(#\|$\)' ci/benchmarks.txt | LC_ALL=C sort)
    if [ "$listed" != "$allowed" ]; then
      fail "the skipped tests are not the named benchmarks (ci/benchmarks.txt):
$(diff <(printf '%s\n' "$allowed") <(printf '%s\n' "$listed") || true)"
    fi
    skips=$(grep -c 'SKIP: ' "$junit" || true)
    [ "$skips" = 0 ] || fail "$skips test(s) printed a skip in $junit:
$(grep -o -m 20 'SKIP: [^<]*' "$junit")"
    echo "check-no-skips: skipped = the $(printf '%s\n' "$allowed" | grep -c .) named benchmarks; no test printed a skip"
    ;;
  *) echo "usage: check-no-skips.sh writers | after JUNIT" >&2; exit 2 ;;
esac
