#!/usr/bin/env bash
# Network convergence through the whole binary: for N ports on one host (BENCH_SIZES, default
# "1 100 1000"), the time from the first `POST /networking/v2.0/ports` to every port ACTIVE in
# the API and to two "guests" (network namespaces on veth taps) holding their DHCP leases and
# pinging each other; then one more port on the converged network. Run as
# `make bench-convergence` (root: the network agent makes bridges, namespaces, dnsmasq and
# nftables tables). bench/convergence/converge_api.py measures and writes the section; this
# script starts a private Ferrostack (`ferrostack up`, network agent on, compute agent off) on a
# free port with its own `[compute] host` (the agent owns only the kernel objects marked with
# it) and fresh state in a temporary directory, and on exit (also on failure or Ctrl-C) stops
# it, runs `ferrostack network-cleanup` with its configuration, removes every tap, veth and
# namespace the measurement made, and checks that nothing carrying the host's mark is left.
# Packets go only between namespaces made here and the agent's DHCP namespaces of this cloud.
#
# Environment: BENCH_SIZES ("1 100 1000"; N < 2 is measured with 2 ports), BENCH_ROUNDS (1;
# more: medians), BENCH_CLIENTS (8 concurrent API clients), BENCH_SETTLE (3 s for the agent to
# settle before each timed step), BENCH_QUIET_WAIT (10 s to wait for an idle machine before
# each size), BENCH_SKIP_BUILD=1 or FERROSTACK_BIN=PATH (use an existing binary),
# BENCH_WRITE_DOCS (1; 0 prints the section only), BENCH_KEEP=1 (keep the temporary directory:
# config, server log, raw results).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../../scripts/lib.sh
source "$ROOT/scripts/lib.sh"

SIZES=${BENCH_SIZES:-1 100 1000}
ROUNDS=${BENCH_ROUNDS:-1}
CLIENTS=${BENCH_CLIENTS:-8}
SETTLE=${BENCH_SETTLE:-3}
QUIET_WAIT=${BENCH_QUIET_WAIT:-10}
WRITE_DOCS=${BENCH_WRITE_DOCS:-1}
KEEP=${BENCH_KEEP:-0}
HERE=$ROOT/bench/convergence
DOC=$ROOT/docs/benchmarks.md
SECTION=network-convergence
NCPU=$(nproc)
PY=$FERROSTACK_VENV/bin/python3

[[ $(id -u) == 0 ]] || die "needs root: the network agent makes bridges, namespaces and nftables tables"

WORK=$(mktemp -d /tmp/ferrostack-bench-convergence.XXXXXX)
RESULTS=$WORK/results
RECORD=$WORK/made.txt # every tap and namespace converge_api.py made, one "KIND NAME" a line
mkdir -p "$RESULTS"
: >"$RECORD"
STARTED=()  # process-group ids of what this script started
CONFIG=""   # the cloud's configuration, once written
HOST=""     # the cloud's [compute] host: the mark of its agent's kernel objects
NS_PREFIX="" # the name prefix of the guest namespaces
TORN_DOWN=0
CLEANUP_RESULT="not checked"

# What carries this cloud's mark (or was made by the measurement) and still exists, one a line:
# devices and namespaces tagged with the agent's owner tag, its nftables tables, its DHCP
# directory and dnsmasq processes, the guest namespaces and the taps made here.
leftovers() {
  python3 - "$HOST" "$NS_PREFIX" "$RECORD" <<'EOF'
import json, os, re, subprocess, sys
host, prefix, record = sys.argv[1:]
tag = f"ferrostack-network-agent:{host}"
table = "ferrostack_" + re.sub(r"[^A-Za-z0-9]", "_", host)
dhcp_root = f"/run/ferrostack/{host}"
def out(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout
left = []
links = json.loads(out("ip", "-j", "-d", "link", "show") or "[]")
names = {link["ifname"] for link in links}
left += [f"device {link['ifname']} (tagged {tag})" for link in links if link.get("ifalias") == tag]
for line in out("ip", "netns", "list").splitlines():
    ns = line.split()[0] if line.split() else ""
    if prefix and ns.startswith(prefix):
        left.append(f"namespace {ns} (a guest of this run)")
    elif ns.startswith(("qdhcp-", "qrouter-")):
        lo = json.loads(out("ip", "-n", ns, "-j", "-d", "link", "show", "lo") or "[]")
        if any(link.get("ifalias") == tag for link in lo):
            left.append(f"namespace {ns} (tagged {tag})")
made = [line.split() for line in open(record) if line.strip()]
left += [f"tap {name} (made by this run)" for kind, name in made if kind == "tap" and name in names]
for line in out("nft", "list", "tables").splitlines():
    if line.split()[-1:] == [table]:
        left.append(f"nftables {line.strip()}")
if os.path.exists(dhcp_root):
    left.append(f"directory {dhcp_root}")
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    except OSError:
        continue
    if dhcp_root + "/" in cmdline:
        left.append(f"process {pid}: {cmdline.replace(chr(0), ' ')[:120]}")
print("\n".join(left))
EOF
}

# Stops the cloud, removes what the measurement made (processes in its namespaces first: the
# guests' DHCP clients), runs `ferrostack network-cleanup` and checks what is left; sets
# CLEANUP_RESULT. Runs once (from the main flow, else from the exit trap).
teardown() {
  local kind name pid left
  ((TORN_DOWN)) && return 0
  TORN_DOWN=1
  # TERM to the server alone (as the e2e fixtures stop it): its agent finishes the pass it is in
  # rather than losing the commands it runs; the group gets KILL only after 20 s.
  ((${#STARTED[@]})) && stop_started 20 leader
  while read -r kind name; do
    case $kind in
      netns)
        for pid in $(ip netns pids "$name" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
        ip netns del "$name" 2>/dev/null || true
        ;;
      tap) printf 'link del dev %s\n' "$name" ;;
    esac
  done <"$RECORD" | ip -force -batch - >/dev/null 2>&1 || true
  if [[ -n $CONFIG ]]; then
    FERROSTACK_CONFIG=$CONFIG "$FERROSTACK_BIN" network-cleanup >>"$WORK/network-cleanup.log" 2>&1 ||
      note "ferrostack network-cleanup failed; see $WORK/network-cleanup.log"
  fi
  [[ -n $HOST ]] || return 0
  left=$(leftovers)
  if [[ -z $left ]]; then
    CLEANUP_RESULT="nothing of the run left (no device or namespace tagged \`ferrostack-network-agent:$HOST\`, no \`ferrostack_${HOST//[^A-Za-z0-9]/_}\` table, DHCP directory or dnsmasq, no guest namespace or tap)"
    note "cleanup: nothing left"
  else
    CLEANUP_RESULT="LEFT BEHIND: $(tr '\n' ';' <<<"$left")"
    printf '\033[31mleft behind:\033[0m\n%s\n' "$left" >&2
  fi
}

cleanup() {
  local rc=$?
  teardown
  [[ $CLEANUP_RESULT == LEFT* && $rc == 0 ]] && rc=1
  finish_work "$rc" "config, server log, raw results"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- what the benchmark needs -------------------------------------------------------------
for tool in curl ip nft dnsmasq busybox sysctl; do
  command -v "$tool" >/dev/null || { ensure_apt_packages curl && break; }
done
if ! "$PY" -c 'import requests' 2>/dev/null; then
  ensure_venv
fi
bench_binary dated
if [[ -n ${FERROSTACK_BIN:-} && $COMMIT == *"not built from this tree"* ]]; then
  COMMIT="$COMMIT, built $(date -u -r "$FERROSTACK_BIN" '+%Y-%m-%d %H:%M UTC')"
fi

# --- Ferrostack ---------------------------------------------------------------------------
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
HOST=bconv-$PORT
NS_PREFIX=fsconv$PORT-
VNI=$((100000 + RANDOM * 400 + RANDOM % 400))
CONFIG=$WORK/ferrostack.toml
cat >"$CONFIG" <<EOF
state_dir = "$WORK/state"
[api]
listen = "127.0.0.1:$PORT"
public_url = "$URL"
[identity]
password_hash_rounds = 4
[log]
level = "info"
[compute]
host = "$HOST"
agent = false
metadata_listen = ""
novncproxy_listen = ""
vif_plugging_timeout = 0
[volume]
volumes_dir = "$WORK/volumes"
host = "$HOST"
[network]
agent = true
local_ip = "127.0.0.1"
vni_ranges = ["$VNI:$((VNI + 20))"]
quota_network = -1
quota_subnet = -1
quota_port = -1
EOF
step "Starting Ferrostack $COMMIT in $WORK (host $HOST)"
FERROSTACK_CONFIG=$CONFIG FERROSTACK__NETWORK__AGENT=true \
  start_group "$WORK/server.log" "$FERROSTACK_BIN" up
SERVER_PID=$STARTED_PID
wait_ready "$URL/healthz" 120 || die "Ferrostack did not start; see $WORK/server.log"
note "Ferrostack on $URL, pid $SERVER_PID"

# --- measure ------------------------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START_S=$(date +%s)
step "Measuring sizes $SIZES ($ROUNDS round(s), $CLIENTS clients)"
"$PY" "$HERE/converge_api.py" measure "$URL" --password-file "$WORK/state/admin-password" \
  --host "$HOST" --prefix "$NS_PREFIX" --work-dir "$WORK" --record "$RECORD" \
  --server-pid "$SERVER_PID" --server-log "$WORK/server.log" --sizes "$SIZES" \
  --rounds "$ROUNDS" --clients "$CLIENTS" --settle "$SETTLE" --quiet-wait "$QUIET_WAIT" \
  --json-out "$RESULTS/bench.json" ||
  die "the measurement failed (see above; log: $WORK/server.log)"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - START_S))

step "Stopping the cloud and cleaning up"
teardown

# --- report -------------------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') \
  M_MACHINE="$NCPU cores ($CPU), $MEM_GB GiB, $(. /etc/os-release && echo "$PRETTY_NAME")" \
  M_COMMIT=$COMMIT M_LOAD_BEFORE=$LOAD_BEFORE M_LOAD_AFTER=$LOAD_AFTER M_ELAPSED=$ELAPSED \
  M_CLEANUP=$CLEANUP_RESULT \
  python3 - "$RESULTS/meta.json" <<'EOF'
import json, os, sys
e = os.environ
json.dump({
    "date": e["M_DATE"], "machine": e["M_MACHINE"], "commit": e["M_COMMIT"],
    "load_before": e["M_LOAD_BEFORE"], "load_after": e["M_LOAD_AFTER"],
    "elapsed_s": int(e["M_ELAPSED"]), "cleanup": e["M_CLEANUP"],
}, open(sys.argv[1], "w"), indent=1, ensure_ascii=False)
EOF
step "Results"
"$PY" "$HERE/converge_api.py" report "$RESULTS" | tee "$RESULTS/section.md"
if [[ $WRITE_DOCS == 1 ]]; then
  python3 "$ROOT/bench/doc_section.py" "$DOC" "$SECTION" <"$RESULTS/section.md"
  note "docs/benchmarks.md: the API-to-packets convergence section rewritten"
fi
