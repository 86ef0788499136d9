#!/usr/bin/env bash
# Nightly pipeline for the chart target: set up the host (Docker, libvirt,
# kind, helm, kubectl), fetch the chart, run the scenario suite against MAAS
# deployed by the chart on kind, and publish junit.xml plus every run
# directory. Optionally run the release-qualification matrix too (both chart
# pins: 2.8 at MAAS_E2E_CHART_REF, 3.6 at MAAS_E2E_CHART_REF_36), or one
# partition of it on this runner (`--partition I/N`, which implies
# --qualification-only); `maas-e2e qualify merge` joins the partitions.
#
# Any CI can call it; ci/workflows/nightly.yml is one example.
#
#   ci/nightly.sh [--out DIR] [--chart PATH] [--chart-36 PATH] [--qualification]
#                 [--qualification-only] [--partition I/N] [--keep-cluster]
#
# Environment (all optional):
#   MAAS_E2E_CHART_REPO   chart repository to clone when --chart is not given
#                         (default https://github.com/airshipit/maas)
#   MAAS_E2E_CHART_REF    commit to check out (default 2d5b698: MAAS 2.8.7)
#   MAAS_E2E_CHART_REF_36 commit of the 3.6 pin (default 53233a5: MAAS 3.6.4),
#                         checked out for the qualification matrix only
#   MAAS_E2E_IMAGE_REPO / MAAS_E2E_IMAGE_TAG   MAAS image overrides
#   MAAS_E2E_POSTGRES     postgres image:tag (default postgres:14 when a
#                         registry is reachable; else the local Debian build)
#   KIND_VERSION HELM_VERSION KUBECTL_VERSION   tool versions to install when missing
#
# Exit status: that of the scenario run (see README.md exit codes); the
# artifacts are written whatever it is.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
out="$root/nightly-out"
chart=""
chart36=""
qualification=0
suite=1
partition=()
keep=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --chart) chart=$2; shift 2 ;;
    --chart-36) chart36=$2; shift 2 ;;
    --qualification) qualification=1; shift ;;
    --qualification-only) qualification=1; suite=0; shift ;;
    --partition) partition=(--partition "$2"); qualification=1; suite=0; shift 2 ;;
    --keep-cluster) keep=(--keep-cluster); shift ;;
    *) echo "nightly: unknown argument $1 (allowed: --out DIR, --chart PATH, --chart-36 PATH, --qualification, --qualification-only, --partition I/N, --keep-cluster)" >&2; exit 2 ;;
  esac
done

KIND_VERSION=${KIND_VERSION:-v0.27.0}
HELM_VERSION=${HELM_VERSION:-v3.17.3}
KUBECTL_VERSION=${KUBECTL_VERSION:-v1.33.1}
chart_repo=${MAAS_E2E_CHART_REPO:-https://github.com/airshipit/maas}
chart_ref=${MAAS_E2E_CHART_REF:-2d5b698}
chart_ref_36=${MAAS_E2E_CHART_REF_36:-53233a5}

log() { printf 'nightly: %s\n' "$*"; }
mkdir -p "$out/runs"

# 1. Host: packages, libvirtd, dockerd.
"$here/setup-host.sh" --docker

# 2. kind, helm, kubectl: release binaries where missing (a CI host with the
#    internet; this project's own machines have none and never get here).
install_bin() { # name url
  local name=$1 url=$2 tmp
  tmp=$(mktemp)
  log "installing $name from $url"
  curl -fsSL --retry 3 -o "$tmp" "$url"
  install -m 0755 "$tmp" "/usr/local/bin/$name"
  rm -f "$tmp"
}
command -v kind >/dev/null || install_bin kind "https://kind.sigs.k8s.io/dl/$KIND_VERSION/kind-linux-amd64"
command -v kubectl >/dev/null || install_bin kubectl "https://dl.k8s.io/release/$KUBECTL_VERSION/bin/linux/amd64/kubectl"
if ! command -v helm >/dev/null; then
  tmp=$(mktemp -d)
  curl -fsSL --retry 3 "https://get.helm.sh/helm-$HELM_VERSION-linux-amd64.tar.gz" | tar -xz -C "$tmp"
  install -m 0755 "$tmp/linux-amd64/helm" /usr/local/bin/helm
  rm -rf "$tmp"
fi
kind version && helm version --short && kubectl version --client=true

# 3. The chart: a checkout at the pinned commit, helm-toolkit in charts/deps.
checkout_chart() { # ref dir: prints the chart directory
  local ref=$1 src=$2
  if [ ! -d "$src/.git" ]; then
    git clone --quiet "$chart_repo" "$src"
  fi
  git -C "$src" checkout --quiet "$ref"
  if [ ! -d "$src/charts/deps/helm-toolkit" ]; then
    (cd "$src" && bash tools/helm_tk.sh) >&2
  fi
  echo "$src/charts/maas"
}
[ -n "$chart" ] || chart=$(checkout_chart "$chart_ref" "$out/chart-src")
log "chart: $chart ($(git -C "$chart" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout'))"
if [ "$qualification" = 1 ] && [ -z "$chart36" ]; then
  chart36=$(checkout_chart "$chart_ref_36" "$out/chart-src-3.6")
fi

# 4. Postgres: the chart's GRANT model wants <= 14; where no registry
#    answers, build the Debian 15 image (the harness then pre-creates maasdb).
postgres=${MAAS_E2E_POSTGRES:-}
if [ -z "$postgres" ]; then
  if docker pull --quiet postgres:14 >/dev/null 2>&1; then
    postgres=postgres:14
  else
    "$here/images/postgres/build.sh"
    postgres=maas-e2e/postgres:15-bookworm
  fi
fi
log "postgres: $postgres"

# 5. Build the harness and run the suite.
cargo build --locked --release
bin="$root/target/release/maas-e2e"
args=(run --target chart --chart "$chart" --postgres-image "$postgres"
      --out "$out/runs" --junit "$out/junit.xml" "${keep[@]}")
[ -n "${MAAS_E2E_IMAGE_REPO:-}" ] && args+=(--image-repo "$MAAS_E2E_IMAGE_REPO")
[ -n "${MAAS_E2E_IMAGE_TAG:-}" ] && args+=(--image-tag "$MAAS_E2E_IMAGE_TAG")

status=0
if [ "$suite" = 1 ]; then
  log "scenario suite: $bin ${args[*]} $root/scenarios"
  "$bin" "${args[@]}" "$root/scenarios" || status=$?
fi

if [ "$qualification" = 1 ]; then
  log "release qualification: ci/qualification/matrix.yaml ${partition[*]}"
  qstatus=0
  # The matrix names its base scenario relative to the checkout. Besides
  # the summary, the runner leaves qualify-fragment-I-of-N.json and
  # qualify-junit-I-of-N.xml in $out/qualification for `qualify merge`.
  (cd "$root" && "$bin" qualify --matrix ci/qualification/matrix.yaml --target chart \
    --pin-chart "2.8=$chart" --pin-chart "3.6=$chart36" "${partition[@]}" \
    --commit "$(git -C "$root" rev-parse HEAD)" \
    --postgres-image "$postgres" --out "$out/qualification" --junit "$out/qualification-junit.xml" \
    --summary "$out/qualification-summary.md") || qstatus=$?
  [ "$status" = 0 ] && status=$qstatus
fi

# 6. Publish: junit.xml and run directories stay in $out; a tarball for
#    CIs that upload single files.
tar -C "$out" --exclude='*.SECRET.*' --exclude=kubeconfig -czf "$out/runs.tar.gz" runs $( [ -d "$out/qualification" ] && echo qualification )
log "artifacts in $out (junit.xml, runs/, runs.tar.gz); exit $status"
exit "$status"
