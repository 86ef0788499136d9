#!/usr/bin/env bash
# The BMC fleet alone (issue 13): N of our BMCs in their own process
# (`maas-e2e bmc fleet`, no VM, no sim), each on its own 127.100.x.y:623,
# polled by a real peer, FreeIPMI's `ipmipower --stat` with MAAS 2.8's argv
# (`maas-e2e bmc poll`, its own process), at MAAS's cadence (10 machines a
# 15 s tick, 5 at a time) and at full speed (a bounded pool, to find the
# ceiling). Measures the BMC process's start-up time, RSS (VmHWM), PSS and
# CPU (utime+stime over each window, % of one core), and checks a sample of
# BMCs with ipmitool. With --redfish SHARE, that share of the BMCs also
# serves Redfish over HTTPS (`bmc fleet --redfish`), the IPMI phases poll
# the whole mix, and a Redfish phase asks every Redfish BMC for its
# System (curl, Basic auth, certificate verified, 5 at a time, rounds
# until the window ends) while the BMC process's CPU is sampled.
# Optionally virtualbmc side by side at sizes N1,N2...
# (libvirt domains defined, never started; `vbmc add` on 127.102.x.y:623):
# PSS summed over vbmcd and its per-BMC processes, and the same poller.
#
#   ci/bench/bmc-fleet.sh [--bin PATH] [--out DIR] [--count N]
#       [--maas-window DUR] [--full-window DUR] [--concurrency K]
#       [--vbmc N1,N2,...] [--redfish SHARE] [--redfish-window S]
#
#   --count N         our fleet's size (default 1000; up to 20000)
#   --maas-window     length of the MAAS-cadence phase (default 90s; 0 skips)
#   --full-window     length of the full-speed phase (default 60s; 0 skips)
#   --concurrency K   ipmipower runs at once in the full-speed phase (default 8)
#   --vbmc LIST       also compare with virtualbmc at these sizes (e.g. 50,200)
#   --redfish SHARE   share of our BMCs that also serve Redfish (default 0)
#   --redfish-window S  seconds of the Redfish phase (default 60)
#
# Everything it starts is stopped by pid, every domain it defined is
# undefined by name and the password file removed, on every exit path
# (trap). Prints markdown; measures, asserts nothing. Needs root (port
# 623), ipmipower, ipmitool; --vbmc needs virsh and the venv's vbmc
# (ci/setup-python.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=$repo/target/debug/maas-e2e
out=
count=1000
maas_window=90s
full_window=60s
concurrency=8
vbmc_sizes=
redfish=0
redfish_window=60
while [ $# -gt 0 ]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --maas-window) maas_window=$2; shift 2 ;;
    --full-window) full_window=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --vbmc) vbmc_sizes=$2; shift 2 ;;
    --redfish) redfish=$2; shift 2 ;;
    --redfish-window) redfish_window=$2; shift 2 ;;
    *) echo "bmc-fleet.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || out=$(mktemp -d /var/tmp/maas-e2e-bmc-fleet.XXXXXX)
mkdir -p "$out"
hz=$(getconf CLK_TCK)
venv=${MAAS_E2E_VENV:-/opt/maas-e2e/venv}
pw="$out/password"
# A password made per run, never printed (only its file is passed on).
(umask 077; head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 16 >"$pw"; echo >>"$pw")
# curl reads the Redfish credentials from here, not its command line.
netrc="$out/netrc"
(umask 077; echo "default login maas password $(head -n1 "$pw")" >"$netrc")

fleet_pid=
vbmcd_pid=
domains=()
cleanup() {
  [ -n "$fleet_pid" ] && kill -TERM "$fleet_pid" 2>/dev/null && wait "$fleet_pid" 2>/dev/null || true
  if [ -n "$vbmcd_pid" ]; then
    local kids
    kids=$(ps -o pid= --ppid "$vbmcd_pid" 2>/dev/null || true)
    kill -TERM "$vbmcd_pid" 2>/dev/null || true
    wait "$vbmcd_pid" 2>/dev/null || true
    for k in $kids; do kill -TERM "$k" 2>/dev/null || true; done
    rm -f "$out/vbmc/vbmcd.pid"
  fi
  for d in ${domains[@]+"${domains[@]}"}; do
    virsh -q -c qemu:///system undefine "$d" >/dev/null 2>&1 || true
  done
  fleet_pid= vbmcd_pid= domains=()
}
# The run's password file goes with the run; its reports stay.
trap 'cleanup; rm -f "$pw" "$netrc"' EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
ticks() { awk '{s+=$14+$15} END{print s+0}' "$@" 2>/dev/null || echo 0; }
status_kib() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status"; }
pss_kib() { # PIDS...: PSS summed
  local s=0 p v
  for p in "$@"; do
    v=$(awk '$1=="Pss:"{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    s=$((s + ${v:-0}))
  done
  echo "$s"
}
mb() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
wait_file() { # FILE PID SECONDS
  local deadline=$(($(date +%s) + $3))
  while [ ! -s "$1" ]; do
    kill -0 "$2" 2>/dev/null || { echo "bmc-fleet.sh: process $2 exited before writing $1" >&2; return 1; }
    [ "$(date +%s)" -lt "$deadline" ] || { echo "bmc-fleet.sh: $1 not written within $3 s" >&2; return 1; }
    sleep 0.05
  done
}

# start_ours N DIR: our fleet of N on 127.100.0.1..; sets fleet_pid and
# startup (launch to every BMC bound and listed). Not in $(...): the fleet
# would hold the substitution's pipe open.
start_ours() {
  local n=$1 dir=$2 t0
  mkdir -p "$dir"
  t0=$(now)
  local rf=()
  if [ "$redfish" != 0 ]; then
    rf=(--redfish "$redfish" --redfish-out "$dir/redfish" --cert-out "$dir/cert.pem")
  fi
  "$bin" bmc fleet --count "$n" --first-address 127.100.0.1 --port 623 ${rf[@]+"${rf[@]}"} \
    --password-file "$pw" --addresses-out "$dir/addresses" --for 30m >/dev/null 2>"$dir/fleet.log" &
  fleet_pid=$!
  wait_file "$dir/addresses" "$fleet_pid" 300
  startup=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')
}

stop_ours() {
  kill -TERM "$fleet_pid"
  wait "$fleet_pid" || true
  fleet_pid=
}

# poll_phase NAME PIDFILE-LIST ARGS...: run `bmc poll ARGS` while sampling
# the CPU of the given pids; prints "cpu_percent elapsed_s".
poll_phase() {
  local json=$1; shift
  local pids=$1; shift
  local stats=() p c0 c1 t0 t1
  for p in $pids; do stats+=("/proc/$p/stat"); done
  c0=$(ticks "${stats[@]}"); t0=$(now)
  "$bin" bmc poll --password-file "$pw" --json "$json" "$@" >/dev/null
  c1=$(ticks "${stats[@]}"); t1=$(now)
  awk -v c="$((c1 - c0))" -v hz="$hz" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f %.1f", c/hz/(b-a)*100, b-a}'
}

report_line() { # LABEL JSON CPU-AND-ELAPSED
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
label, path, cpu = sys.argv[1], sys.argv[2], sys.argv[3].split()
r = json.load(open(path))
outcomes = ", ".join(f"{k} {v}" for k, v in r["outcomes"].items())
print(f"| {label} | {r['queries']} queries of {r['bmcs_queried']} BMCs in {r['elapsed_s']:.0f} s "
      f"({r['queries_per_s']}/s, {r['concurrency']} at once): {outcomes} | "
      f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms | {cpu[0]} % of one core |")
PY
}

# redfish_phase DIR SECONDS: GET Systems/1 of every Redfish BMC, 5 at a
# time, rounds until SECONDS have passed; prints a table row.
redfish_phase() {
  local dir=$1 secs=$2 c0 c1 t0 t1 end
  : >"$dir/redfish-codes"
  c0=$(ticks "/proc/$fleet_pid/stat"); t0=$(now)
  end=$(($(date +%s) + secs))
  while [ "$(date +%s)" -lt "$end" ]; do
    awk '{print $2 "/redfish/v1/Systems/1"}' "$dir/redfish" |
      xargs -P 5 -n 1 curl -s -o /dev/null -w '%{http_code} %{time_total}\n' \
        --cacert "$dir/cert.pem" --netrc-file "$netrc" >>"$dir/redfish-codes" || true
  done
  c1=$(ticks "/proc/$fleet_pid/stat"); t1=$(now)
  # mawk has no asort: the times sorted first, then one pass.
  sort -k2,2g "$dir/redfish-codes" |
    awk -v c="$((c1 - c0))" -v hz="$hz" -v a="$t0" -v b="$t1" -v n="$(wc -l <"$dir/redfish")" '
    { codes[$1]++; t[NR]=$2*1000 } END {
      q=NR; out=""
      for (k in codes) out=out (out=="" ? "" : ", ") k " x" codes[k]
      i50=int(q*0.5); if (i50<1) i50=1; i99=int(q*0.99); if (i99<1) i99=1
      printf "| Redfish GET Systems/1 (curl, TLS each, 5 at a time), %d s | %d GETs of %d BMCs (%.1f/s): HTTP %s | p50 %.0f ms, p99 %.0f ms | %.2f %% of one core |\n",
        b-a, q, n, q/(b-a), out, t[i50], t[i99], c/hz/(b-a)*100
    }'
}

ipmitool_sample() { # ADDRESSES-FILE HOW-MANY: "ok/asked"
  local ok=0 n=0 ip
  for ip in $(awk '{split($2,a,":"); print a[1]}' "$1" | shuf -n "$2" --random-source=<(yes)); do
    n=$((n + 1))
    if ipmitool -I lanplus -H "$ip" -U maas -f "$pw" chassis power status 2>/dev/null | grep -q 'Chassis Power is off'; then
      ok=$((ok + 1))
    fi
  done
  echo "$ok/$n"
}

echo "## ours: $count BMCs in one process, Redfish share $redfish ($(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| measure | value | | CPU of the BMC process |"
echo "| --- | --- | --- | --- |"
dir="$out/ours-$count"
start_ours "$count" "$dir"
sleep 1
echo "| start-up (launch to every BMC bound and listed) | $startup s ($(grep -o 'in [0-9]* ms' "$dir/fleet.log") in-process) | | |"
echo "| idle: RSS / PSS | $(mb "$(status_kib "$fleet_pid" VmRSS)") MB / $(mb "$(pss_kib "$fleet_pid")") MB | | |"
if [ "$maas_window" != 0 ]; then
  r=$(poll_phase "$dir/maas.json" "$fleet_pid" --addresses "$dir/addresses" --mode maas --duration "$maas_window")
  report_line "MAAS cadence, $maas_window" "$dir/maas.json" "$r"
fi
if [ "$full_window" != 0 ]; then
  r=$(poll_phase "$dir/full.json" "$fleet_pid" --addresses "$dir/addresses" --mode full \
    --duration "$full_window" --concurrency "$concurrency")
  report_line "full speed, $full_window" "$dir/full.json" "$r"
fi
if [ "$redfish" != 0 ] && [ "$redfish_window" != 0 ]; then
  redfish_phase "$dir" "$redfish_window"
fi
echo "| ipmitool \`chassis power status\` on a sample | $(ipmitool_sample "$dir/addresses" 10) answered off | | |"
echo "| RSS peak (VmHWM) / PSS after polling | $(mb "$(status_kib "$fleet_pid" VmHWM)") MB / $(mb "$(pss_kib "$fleet_pid")") MB | | |"
stop_ours

[ -n "$vbmc_sizes" ] || exit 0
export VIRTUALBMC_CONFIG="$out/vbmc/virtualbmc.conf"
mkdir -p "$out/vbmc/cfg"
cat >"$VIRTUALBMC_CONFIG" <<EOF
[default]
config_dir = $out/vbmc/cfg
pid_file = $out/vbmc/vbmcd.pid
server_port = $((50000 + $$ % 10000))
[log]
logfile = $out/vbmc/vbmcd.log
EOF
prefix="maase2e-vbmc-$$"
echo
echo "## side by side with virtualbmc $("$venv/bin/pip" show virtualbmc 2>/dev/null | awk '/^Version/{print $2}') (same poller: full speed, every BMC twice, 5 at a time)"
echo
echo "| N | peer | start-up | PSS total | PSS per BMC | ipmipower --stat p50 / p99 | outcomes | CPU while polled |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
side_row() { # N PEER STARTUP PSS JSON CPU
  python3 - "$@" <<'PY'
import json, sys
n, peer, startup, pss, path, cpu = sys.argv[1:7]
r = json.load(open(path))
n, pss = int(n), int(pss)
outcomes = ", ".join(f"{k} {v}" for k, v in r["outcomes"].items())
print(f"| {n} | {peer} | {startup} s | {pss/1024:.1f} MB | {pss/n:.0f} KB | {r['p50_ms']} / {r['p99_ms']} ms | {outcomes} | {cpu.split()[0]} % |")
PY
}
IFS=, read -r -a sizes <<<"$vbmc_sizes"
for n in "${sizes[@]}"; do
  dir="$out/side-$n"
  start_ours "$n" "$dir/ours"
  r=$(poll_phase "$dir/ours/poll.json" "$fleet_pid" --addresses "$dir/ours/addresses" --mode full --rounds 2 --concurrency 5 --duration 10m)
  side_row "$n" "ours (one process)" "$startup" "$(pss_kib "$fleet_pid")" "$dir/ours/poll.json" "$r"
  stop_ours

  mkdir -p "$dir/vbmc"
  : >"$dir/vbmc/addresses"
  for i in $(seq 1 "$n"); do
    name="$prefix-$n-$i"
    virsh -q -c qemu:///system define /dev/stdin >/dev/null <<EOF
<domain type='qemu'><name>$name</name><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices/></domain>
EOF
    domains+=("$name")
    echo "$name 127.102.$((i / 250)).$((i % 250 + 1)):623" >>"$dir/vbmc/addresses"
  done
  # A vbmcd per size, so its processes are this size's only.
  "$venv/bin/vbmcd" --foreground >"$dir/vbmc/vbmcd.out" 2>&1 &
  vbmcd_pid=$!
  wait_file "$out/vbmc/vbmcd.pid" "$vbmcd_pid" 60
  t0=$(now)
  # vbmc add is a Python CLI per BMC (about 0.8 s each here): 4 at a time.
  awk '{split($2,a,":"); print $1, a[1]}' "$dir/vbmc/addresses" |
    xargs -P 4 -n 2 sh -c "\"$venv/bin/vbmc\" add \"\$0\" --username maas --password \"\$(cat '$pw')\" --address \"\$1\" --port 623 --libvirt-uri qemu:///system >/dev/null"
  awk '{print $1}' "$dir/vbmc/addresses" | xargs -n 50 "$venv/bin/vbmc" start >/dev/null
  deadline=$(($(date +%s) + 120 + n))
  until [ "$(ss -Hnul src 127.102.0.0/16 | grep -c ':623 ')" -ge "$n" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "bmc-fleet.sh: virtualbmc did not listen on $n addresses in time" >&2; exit 1; }
    sleep 0.2
  done
  startup=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')
  pids="$vbmcd_pid $(ps -o pid= --ppid "$vbmcd_pid" | tr '\n' ' ')"
  r=$(poll_phase "$dir/vbmc/poll.json" "$pids" --addresses "$dir/vbmc/addresses" --mode full --rounds 2 --concurrency 5 --duration 10m)
  # shellcheck disable=SC2086
  side_row "$n" "virtualbmc (vbmcd + $(($(echo $pids | wc -w) - 1)) processes)" "$startup (vbmc add + start)" "$(pss_kib $pids)" "$dir/vbmc/poll.json" "$r"
  awk '{print $1}' "$dir/vbmc/addresses" | xargs -n 50 "$venv/bin/vbmc" delete >/dev/null
  cleanup
done
echo
echo "runs, poll reports and logs: $out"
