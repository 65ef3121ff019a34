#!/usr/bin/env bash
# Placement benchmark: `GET /allocation_candidates` over 1000 resource providers, Ferrostack and
# the real openstack-placement (from PyPI) side by side on this machine, same data, same load,
# same run. Reports requests/s, p50/p99 latency and server CPU per request at a few
# concurrencies, checks that both give equivalent answers, and writes the placement section of
# docs/benchmarks.md. Run as `make bench-placement`. Every process it starts is stopped on exit;
# all traffic goes to 127.0.0.1.
#
# Environment: BENCH_PROVIDERS (1000), BENCH_CONCURRENCY ("1 4 16": wrk connections),
# BENCH_DURATION (15s), BENCH_WARMUP (3s), BENCH_PLACEMENT_WORKERS (uWSGI processes for the
# upstream service; default nproc, the same as Ferrostack's tokio worker threads),
# BENCH_QUIET_WAIT (10 s to wait for an idle machine before a run), BENCH_SKIP_BUILD=1 or
# FERROSTACK_BIN=PATH (use an existing binary), BENCH_WRITE_DOCS (1; 0 leaves the docs alone),
# BENCH_KEEP=1 (keep the temporary directory: configs, logs, raw results), PLACEMENT_VENV
# (~/.cache/ferrostack/bench/placement-venv), PLACEMENT_PIP_SPEC (openstack-placement).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
source "$ROOT/scripts/lib.sh"

PROVIDERS=${BENCH_PROVIDERS:-1000}
CONCURRENCY=${BENCH_CONCURRENCY:-1 4 16}
DURATION=${BENCH_DURATION:-15s}
WARMUP=${BENCH_WARMUP:-3s}
NCPU=$(nproc)
WORKERS=${BENCH_PLACEMENT_WORKERS:-$NCPU}
QUIET_WAIT=${BENCH_QUIET_WAIT:-10}
WRITE_DOCS=${BENCH_WRITE_DOCS:-1}
KEEP=${BENCH_KEEP:-0}
PLACEMENT_VENV=${PLACEMENT_VENV:-$HOME/.cache/ferrostack/bench/placement-venv}
PLACEMENT_PIP_SPEC=${PLACEMENT_PIP_SPEC:-openstack-placement}
CLK_TCK=$(getconf CLK_TCK)
HERE=$ROOT/bench/placement
DOC=$ROOT/docs/benchmarks.md
WRK_TIMEOUT=120s

# The measured queries (name=query string), and one more that is only checked for equivalence.
BASE_QUERY='resources=VCPU:1,MEMORY_MB:512,DISK_GB:10'
SCHEDULE_ITERATIONS=${BENCH_SCHEDULE_ITERATIONS:-100}
QUERIES=("plain=$BASE_QUERY" "avx2_limit50=$BASE_QUERY&required=HW_CPU_X86_AVX2&limit=50")
AGG0=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import seed; print(seed.AGGREGATES[0])' "$HERE")
CHECK_ONLY=("gpu_member_of=$BASE_QUERY&required=CUSTOM_BENCH_GPU&member_of=in:$AGG0")

WORK=$(mktemp -d /tmp/ferrostack-bench-placement.XXXXXX)
RESULTS=$WORK/results
mkdir -p "$RESULTS"
STARTED=() # process-group ids of the servers this script started
WRK_PID=

cleanup() {
  local rc=$?
  if [[ -n $WRK_PID ]]; then kill "$WRK_PID" 2>/dev/null || true; fi
  stop_started 10 leader
  finish_work "$rc" "configs, logs, raw results"
}
trap cleanup EXIT
trap 'exit 130' INT TERM



# A process and its descendants, one pid a line.
tree_pids() {
  local queue=("$1") p
  while ((${#queue[@]})); do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    echo "$p"
    # shellcheck disable=SC2207
    queue+=($(pgrep -P "$p" || true))
  done
}

# CPU ticks (user + system) spent so far by a process tree.
tree_ticks() {
  local p t=0 v
  for p in $(tree_pids "$1"); do
    v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }' || true)
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

# Sum over a process tree of a /proc/PID/status field in kB (VmRSS, VmHWM).
tree_status_kb() {
  local p n=0 v
  for p in $(tree_pids "$1"); do
    v=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null || true)
    n=$((n + ${v:-0}))
  done
  echo "$n"
}

# CPU ticks the whole machine has spent: user + nice + system + steal.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $9 }' /proc/stat; }

# CPU ticks of this shell's finished children, from the output of `times` in file $1.
children_ticks() {
  awk -v hz="$CLK_TCK" 'NR == 2 {
    n = 0
    for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
    printf "%d", n * hz
  }' "$1"
}

# Percent of the machine's CPU busy over one second.
cpu_busy() {
  local a
  a=$(machine_ticks)
  sleep 1
  echo $((($(machine_ticks) - a) * 100 / (CLK_TCK * NCPU)))
}

# Waits (up to $QUIET_WAIT seconds) until the machine is nearly idle before a measurement.
wait_quiet() {
  local busy=0 i
  for ((i = 0; i < QUIET_WAIT; i++)); do
    busy=$(cpu_busy)
    ((busy <= 10)) && return 0
  done
  note "the machine is ${busy}% busy with other work; measuring anyway"
}

# One measured wrk run after a warm-up with the same parameters; records the server's CPU
# ticks, wrk's own CPU and the CPU that other work on the machine took during the run.
# run_wrk SYSTEM QUERY_NAME PATH_AND_QUERY CONNECTIONS URL TOKEN PID
run_wrk() {
  local system=$1 name=$2 path=$3 conns=$4 url=$5 token=$6 pid=$7
  local threads=$((conns < 2 ? conns : 2)) out m0 s0 t0 m1 s1 t1 wrk_ticks foreign
  out=$RESULTS/$system.$name.c$conns
  wait_quiet
  export BENCH_PATH=$path BENCH_TOKEN=$token
  BENCH_JSON=$WORK/warmup.json wrk -t"$threads" -c"$conns" -d"$WARMUP" --timeout "$WRK_TIMEOUT" \
    -s "$HERE/candidates.lua" "$url" >/dev/null 2>"$WORK/run.err" &
  WRK_PID=$!
  wait "$WRK_PID" || die "wrk failed: $(cat "$WORK/run.err")"
  m0=$(machine_ticks) s0=$(tree_ticks "$pid") t0=$(date +%s%N)
  times >"$WORK/times.before"
  BENCH_JSON=$out.json wrk -t"$threads" -c"$conns" -d"$DURATION" --timeout "$WRK_TIMEOUT" \
    --latency -s "$HERE/candidates.lua" "$url" >"$out.wrk.txt" 2>"$WORK/run.err" &
  WRK_PID=$!
  wait "$WRK_PID" || die "wrk failed: $(cat "$WORK/run.err")"
  WRK_PID=
  times >"$WORK/times.after"
  m1=$(machine_ticks) s1=$(tree_ticks "$pid") t1=$(date +%s%N)
  wrk_ticks=$(($(children_ticks "$WORK/times.after") - $(children_ticks "$WORK/times.before")))
  foreign=$(((m1 - m0 - (s1 - s0) - wrk_ticks) * 100 * 1000000000 / ((t1 - t0) * CLK_TCK * NCPU)))
  ((foreign < 0)) && foreign=0
  printf '{"foreign_pct":%d,"server_ticks":%d,"wrk_ticks":%d,"wall_ns":%d,"clk_tck":%d,"cpus":%d}\n' \
    "$foreign" $((s1 - s0)) "$wrk_ticks" $((t1 - t0)) "$CLK_TCK" "$NCPU" >"$out.cpu.json"
  python3 - "$out.json" "$system" "$name" "$conns" "$foreign" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
err = sum(r["errors"].values())
print(f"    {sys.argv[2]:<10} {sys.argv[3]:<13} c={sys.argv[4]:<3} {r['rps']:>9.1f} req/s  "
      f"p50 {r['p50_ms']:>9.2f} ms  p99 {r['p99_ms']:>9.2f} ms  errors {err}  "
      f"other work {sys.argv[5]}% of the CPU")
EOF
}

# --- what the benchmark needs -------------------------------------------------------------
command -v wrk >/dev/null || ensure_apt_packages wrk
command -v curl >/dev/null || ensure_apt_packages curl

if [[ ! -x $PLACEMENT_VENV/bin/placement-manage || ! -x $PLACEMENT_VENV/bin/uwsgi ]]; then
  step "Installing openstack-placement and uWSGI into $PLACEMENT_VENV (a few minutes the first time)"
  ensure_apt_packages gcc python3-dev
  python3 -m venv "$PLACEMENT_VENV"
  "$PLACEMENT_VENV/bin/pip" install -q --upgrade pip
  "$PLACEMENT_VENV/bin/pip" install -q "$PLACEMENT_PIP_SPEC" uwsgi
fi
PLACEMENT_VERSION=$("$PLACEMENT_VENV/bin/pip" show openstack-placement 2>/dev/null | awk '/^Version:/ { print $2 }')
UWSGI_VERSION=$("$PLACEMENT_VENV/bin/uwsgi" --version)

bench_binary

# --- Ferrostack ---------------------------------------------------------------------------
step "Starting Ferrostack $COMMIT in $WORK/ferrostack"
FPORT=$(free_port)
FDIR=$WORK/ferrostack
FURL=http://127.0.0.1:$FPORT
mkdir -p "$FDIR"
cat >"$FDIR/ferrostack.toml" <<EOF
state_dir = "$FDIR/state"
[api]
listen = "127.0.0.1:$FPORT"
public_url = "$FURL"
[identity]
password_hash_rounds = 4
[log]
level = "warn"
[compute]
agent = false
metadata_listen = ""
EOF
FERROSTACK_CONFIG=$FDIR/ferrostack.toml start_group "$FDIR/server.log" "$FERROSTACK_BIN" up
FPID=$STARTED_PID
wait_ready "$FURL/healthz" 120 || die "Ferrostack did not start; see $FDIR/server.log"
FPASSWORD=$(<"$FDIR/state/admin-password")
FTOKEN=$(curl -fsS -D - -o /dev/null -H 'Content-Type: application/json' \
  -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"$FPASSWORD\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}" \
  "$FURL/identity/v3/auth/tokens" | awk 'tolower($1) == "x-subject-token:" { sub(/\r$/, "", $2); print $2 }')
[[ -n $FTOKEN ]] || die "no admin token from $FURL/identity/v3/auth/tokens"
FAPI=$FURL/placement
note "Ferrostack on $FURL, pid $FPID"

# --- openstack-placement ------------------------------------------------------------------
step "Setting up openstack-placement $PLACEMENT_VERSION in $WORK/upstream"
UPORT=$(free_port)
UDIR=$WORK/upstream
UAPI=http://127.0.0.1:$UPORT
UTOKEN="admin" # noauth2: the token is "user[:project]"; user "admin" gets the admin role
mkdir -p "$UDIR"
# sqlite_synchronous = false only spares the seeding an fsync per write (reads do not sync).
cat >"$UDIR/placement.conf" <<EOF
[DEFAULT]
log_file = $UDIR/placement.log
[api]
auth_strategy = noauth2
[placement_database]
connection = sqlite:///$UDIR/placement.sqlite
sqlite_synchronous = false
EOF
"$PLACEMENT_VENV/bin/placement-manage" --config-file "$UDIR/placement.conf" db sync \
  >"$UDIR/manage.log" 2>&1 || die "placement-manage db sync failed; see $UDIR/manage.log"
UPSTREAM_SERVER="uWSGI $UWSGI_VERSION, $WORKERS processes × 1 thread"
cat >"$UDIR/uwsgi.ini" <<EOF
[uwsgi]
module = placement.wsgi.api:application
virtualenv = $PLACEMENT_VENV
env = OS_PLACEMENT_CONFIG_DIR=$UDIR
http-socket = 127.0.0.1:$UPORT
master = true
processes = $WORKERS
threads = 1
enable-threads = true
lazy-apps = true
thunder-lock = true
buffer-size = 65535
add-header = Connection: close
die-on-term = true
disable-logging = true
EOF
start_group "$UDIR/server.log" "$PLACEMENT_VENV/bin/uwsgi" --ini "$UDIR/uwsgi.ini"
UPID=$STARTED_PID
wait_ready "$UAPI/" 120 || die "openstack-placement did not start; see $UDIR/server.log"
note "openstack-placement ($UPSTREAM_SERVER) on $UAPI, pid $UPID"

# --- the same data in both ----------------------------------------------------------------
step "Creating $PROVIDERS providers with inventories, traits, aggregates and 5 consumers each"
python3 "$HERE/seed.py" "$FAPI" "$FTOKEN" "$PROVIDERS" | tee "$RESULTS/seed.ferrostack.json" |
  sed 's/^/    ferrostack: /'
python3 "$HERE/seed.py" "$UAPI" "$UTOKEN" "$PROVIDERS" | tee "$RESULTS/seed.upstream.json" |
  sed 's/^/    upstream:   /'

step "Checking that both give equivalent answers"
python3 "$HERE/compare.py" "$RESULTS/compare.json" "${QUERIES[@]}" "${CHECK_ONLY[@]}" -- \
  "$FAPI" "$FTOKEN" "$UAPI" "$UTOKEN" || die "the answers differ (see above)"

# --- measure ------------------------------------------------------------------------------
for q in "${QUERIES[@]}"; do
  name=${q%%=*} query=${q#*=}
  step "Measuring GET /allocation_candidates?$query"
  for c in $CONCURRENCY; do
    run_wrk ferrostack "$name" "/placement/allocation_candidates?$query" "$c" "$FURL" "$FTOKEN" "$FPID"
    run_wrk upstream "$name" "/allocation_candidates?$query" "$c" "$UAPI" "$UTOKEN" "$UPID"
  done
done
# The scheduler's own pattern: each candidates request right after a claim (a write), which
# is when Ferrostack's cached snapshot is stale. Sequential, one scheduler; claims removed after.
step "Scheduling loop: candidates right after a claim, $SCHEDULE_ITERATIONS times"
python3 "$HERE/schedule_loop.py" "$FAPI" "$FTOKEN" "$SCHEDULE_ITERATIONS" |
  tee "$RESULTS/schedule.ferrostack.json" | sed 's/^/    ferrostack: /'
python3 "$HERE/schedule_loop.py" "$UAPI" "$UTOKEN" "$SCHEDULE_ITERATIONS" |
  tee "$RESULTS/schedule.upstream.json" | sed 's/^/    upstream:   /'
# Memory now, before the cross-check below adds its data.
printf '{"ferrostack":{"rss_kb":%d,"hwm_kb":%d},"upstream":{"rss_kb":%d,"hwm_kb":%d}}\n' \
  "$(tree_status_kb "$FPID" VmRSS)" "$(tree_status_kb "$FPID" VmHWM)" \
  "$(tree_status_kb "$UPID" VmRSS)" "$(tree_status_kb "$UPID" VmHWM)" >"$RESULTS/memory.json"

# The benchmark's data is flat; nested trees, sharing providers, granular groups and older
# microversions are checked on a small second data set added to both after the measurements.
step "Cross-checking nested trees, sharing providers and granular groups"
python3 "$HERE/crosscheck.py" "$FAPI" "$FTOKEN" "$UAPI" "$UTOKEN" | tee "$RESULTS/crosscheck.txt" ||
  note "the cross-check found differences (see above; reported in the results)"

kill -0 "$FPID" 2>/dev/null || die "Ferrostack stopped during the run; see $FDIR/server.log"
kill -0 "$UPID" 2>/dev/null || die "openstack-placement stopped during the run; see $UDIR/server.log"

# --- report -------------------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') \
  M_MACHINE="$NCPU cores ($CPU), $MEM_GB GiB, $(. /etc/os-release && echo "$PRETTY_NAME")" \
  M_NCPU=$NCPU M_COMMIT=$COMMIT M_PLACEMENT=$PLACEMENT_VERSION M_SERVER=$UPSTREAM_SERVER \
  M_WORKERS=$WORKERS M_PROVIDERS=$PROVIDERS M_CONC=$CONCURRENCY M_DURATION=$DURATION \
  M_WARMUP=$WARMUP M_WRK="$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')" \
  M_QUERIES="$(printf '%s\n' "${QUERIES[@]}")" \
  python3 - "$RESULTS/meta.json" <<'EOF'
import json, os, sys
e = os.environ
json.dump({
    "date": e["M_DATE"], "machine": e["M_MACHINE"], "ncpu": int(e["M_NCPU"]),
    "ferrostack_commit": e["M_COMMIT"], "placement_version": e["M_PLACEMENT"],
    "upstream_server": e["M_SERVER"], "workers": int(e["M_WORKERS"]),
    "providers": int(e["M_PROVIDERS"]), "concurrency": [int(c) for c in e["M_CONC"].split()],
    "duration": e["M_DURATION"], "warmup": e["M_WARMUP"], "wrk": e["M_WRK"],
    "queries": [q.split("=", 1) for q in e["M_QUERIES"].splitlines()],
}, open(sys.argv[1], "w"), indent=1, ensure_ascii=False)
EOF
bench_report placement placement
