#!/usr/bin/env bash
# Lab boot benchmark: power-on to console marker, one VM and 4 VMs at once,
# this project's DHCP/TFTP/HTTP/RA servers vs dnsmasq + python http.server,
# side by side in one run. Needs root, libvirtd, QEMU (ci/setup-host.sh).
#
#   ci/bench/lab.sh [ROUNDS]     results in $LAB_BENCH_OUT (default
#                                /var/lib/maas-e2e/bench-lab): results.json, results.md
set -euo pipefail
cd "$(dirname "$0")/../.."
export LAB_BENCH_ROUNDS="${1:-${LAB_BENCH_ROUNDS:-3}}"
export LAB_BENCH_OUT="${LAB_BENCH_OUT:-/var/lib/maas-e2e/bench-lab}"
# The initrd is padded with incompressible data to the size of a real
# ephemeral image (~15 MB), as in the baseline measurement of DESIGN.md.
export LAB_BENCH_INITRD_PAD_MIB="${LAB_BENCH_INITRD_PAD_MIB:-14}"
echo "lab bench: $(nproc) cores, $(date -u +%FT%TZ), rounds=$LAB_BENCH_ROUNDS" >&2
cargo nextest run --test lab --run-ignored only -E 'test(bench_pxe_boot_to_marker)' --no-capture
cat "$LAB_BENCH_OUT/results.md"
