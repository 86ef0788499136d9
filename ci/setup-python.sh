#!/usr/bin/env bash
# The tests' Python peers in one venv (default /opt/maas-e2e/venv, or
# MAAS_E2E_VENV), from ci/python-requirements.txt. Idempotent: pip runs only
# when the requirements changed since the last install.
#
#   ci/setup-python.sh        prints nothing but progress; the venv's bin/ is
#                             what tests put on PATH (MAAS_E2E_VENV/bin)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${MAAS_E2E_VENV:-/opt/maas-e2e/venv}
req="$here/python-requirements.txt"
log() { printf 'setup-python: %s\n' "$*"; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req")
want=${want%% *}
have=$(cat "$stamp" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  if grep -qv '^\s*\(#\|$\)' "$req"; then
    log "installing $(grep -v '^\s*\(#\|$\)' "$req" | tr '\n' ' ')"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  fi
  printf '%s\n' "$want" > "$stamp"
fi
log "venv ready: $venv"
