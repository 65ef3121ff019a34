#!/usr/bin/env bash
# Identity benchmark: the real Keystone and Ferrostack side by side on this machine, same load.
# Reports token validate / re-scope issue / password issue throughput and p50/p99 latency, and
# resident memory, as ratios; writes docs/benchmarks.md. Run as `make bench-identity`.
# Every process it starts is stopped on exit; all traffic goes to 127.0.0.1.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"

THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
DURATION=${BENCH_DURATION:-15s}
WARMUP=${BENCH_WARMUP:-3s}
PASSWORD_CONNECTIONS=${BENCH_PASSWORD_CONNECTIONS:-4}
PASSWORD_DURATION=${BENCH_PASSWORD_DURATION:-15s}
ROUNDS=${BENCH_ROUNDS:-12} # Keystone's default bcrypt cost
KEYSTONE_WORKERS=${BENCH_KEYSTONE_WORKERS:-2}
WRITE_DOCS=${BENCH_WRITE_DOCS:-1}
KEEP=${BENCH_KEEP:-0}
QUIET_WAIT=${BENCH_QUIET_WAIT:-120} # seconds to wait for other work on the machine to stop
KEYSTONE_VENV=${KEYSTONE_VENV:-$HOME/.cache/ferrostack/keystone-venv}
KEYSTONE_PIP_SPEC=${KEYSTONE_PIP_SPEC:-keystone}
LUA_DIR=$ROOT/bench/identity
DOC=$ROOT/docs/benchmarks.md
# Keystone's server-side bcrypt at cost 12 is ~0.25 s a request; wrk's default 2 s would count
# queued requests as failures.
WRK_TIMEOUT=30s

WORK=$(mktemp -d /tmp/ferrostack-bench.XXXXXX)
RESULTS=$WORK/results
mkdir -p "$RESULTS/keystone" "$RESULTS/ferrostack"
STARTED=() # process-group ids of the servers this script started

cleanup() {
  local rc=$? pgid i
  for pgid in "${STARTED[@]}"; do
    kill -TERM -- "-$pgid" 2>/dev/null || true
  done
  for pgid in "${STARTED[@]}"; do
    for ((i = 0; i < 50; i++)); do
      kill -0 -- "-$pgid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
  done
  if [[ $KEEP == 1 || $rc != 0 ]]; then
    note "kept $WORK (configs, logs, raw results)"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts "$@" in a process group of its own (so cleanup stops its children too); logs to $1.
# Prints the pid (= process-group id).
start_group() {
  local log=$1
  shift
  setsid "$@" >"$log" 2>&1 </dev/null &
  echo $!
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Issues a token; prints its id. issue_token URL BODY
issue_token() {
  curl -fsS -D - -o /dev/null -H 'Content-Type: application/json' -d "$2" "$1/auth/tokens" |
    awk 'tolower($1) == "x-subject-token:" { sub(/\r$/, "", $2); print $2 }'
}

password_body() {
  printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"%s"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}' "$1"
}

# Memory of a process and its descendants, as JSON: rss_kb, hwm_kb, pss_kb, processes.
memory_json() {
  local pids=("$1") queue=("$1") p c rss=0 hwm=0 pss=0
  while ((${#queue[@]})); do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    for c in $(pgrep -P "$p" || true); do
      pids+=("$c")
      queue+=("$c")
    done
  done
  for p in "${pids[@]}"; do
    rss=$((rss + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status")))
    hwm=$((hwm + $(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status")))
    pss=$((pss + $(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup")))
  done
  printf '{"rss_kb":%d,"hwm_kb":%d,"pss_kb":%d,"processes":%d,"pids":"%s"}\n' \
    "$rss" "$hwm" "$pss" "${#pids[@]}" "${pids[*]}"
}

# CPU use of the whole machine over one second, in percent (other sessions' builds skew numbers).
cpu_busy() {
  local a b
  a=($(head -1 /proc/stat))
  sleep 1
  b=($(head -1 /proc/stat))
  local idle=$((b[4] + b[5] - a[4] - a[5])) total=0 i
  for ((i = 1; i < ${#a[@]}; i++)); do total=$((total + b[i] - a[i])); done
  echo $((100 * (total - idle) / (total ? total : 1)))
}

# Waits (up to $QUIET_WAIT seconds) until the machine is nearly idle before a measurement;
# prints the busy percentage it settled for.
wait_quiet() {
  local busy i
  for ((i = 0; i < QUIET_WAIT; i += 1)); do
    busy=$(cpu_busy)
    ((busy <= 10)) && break
  done
  ((busy <= 10)) || note "warning: the machine is ${busy}% busy with other work; numbers will be low" >&2
  echo "$busy"
}

# One measured wrk run after a warm-up with the same parameters.
# run_wrk SYSTEM OP CONNECTIONS DURATION URL
run_wrk() {
  local system=$1 op=$2 conns=$3 duration=$4 url=$5 script out
  case $op in
  validate) script=validate.lua ;;
  rescope) script=issue_rescope.lua ;;
  password) script=issue_password.lua ;;
  esac
  out=$RESULTS/$system/$op.json
  echo "$(wait_quiet)" >"$RESULTS/$system/$op.background"
  BENCH_JSON=$WORK/warmup.json wrk -t"$THREADS" -c"$conns" -d"$WARMUP" --timeout "$WRK_TIMEOUT" \
    -s "$LUA_DIR/$script" "$url" >/dev/null
  BENCH_JSON=$out wrk -t"$THREADS" -c"$conns" -d"$duration" --timeout "$WRK_TIMEOUT" --latency \
    -s "$LUA_DIR/$script" "$url" >"$RESULTS/$system/$op.wrk.txt"
  python3 "$LUA_DIR/report.py" --line "$out" "$system" "$op"
}

# Measures one system whose identity v3 API is at $2 and whose server process is $3.
bench_system() {
  local system=$1 api=$2 pid=$3 password=$4 admin subject
  step "Measuring $system"
  admin=$(issue_token "$api" "$(password_body "$password")")
  subject=$(issue_token "$api" "$(password_body "$password")")
  [[ -n $admin && -n $subject ]] || die "$system: could not issue the tokens the load needs"
  export BENCH_LUA_DIR=$LUA_DIR ADMIN_TOKEN=$admin SUBJECT_TOKEN=$subject ADMIN_PASSWORD=$password
  run_wrk "$system" validate "$CONNECTIONS" "$DURATION" "$api/auth/tokens"
  run_wrk "$system" rescope "$CONNECTIONS" "$DURATION" "$api/auth/tokens"
  run_wrk "$system" password "$PASSWORD_CONNECTIONS" "$PASSWORD_DURATION" "$api/auth/tokens"
  memory_json "$pid" >"$RESULTS/$system/memory.json"
  note "memory: $(cat "$RESULTS/$system/memory.json")"
}

# --- what the benchmark needs -------------------------------------------------------------
ensure_rust
command -v wrk >/dev/null || ensure_apt_packages wrk
ensure_apt_packages gcc python3-dev

if [[ ! -x $KEYSTONE_VENV/bin/keystone-manage ]] ||
  [[ ! -x $KEYSTONE_VENV/bin/uwsgi && ! -x $KEYSTONE_VENV/bin/gunicorn ]]; then
  step "Installing Keystone into $KEYSTONE_VENV (a few minutes the first time)"
  python3 -m venv "$KEYSTONE_VENV"
  "$KEYSTONE_VENV/bin/pip" install -q --upgrade pip
  "$KEYSTONE_VENV/bin/pip" install -q "$KEYSTONE_PIP_SPEC"
  if ! "$KEYSTONE_VENV/bin/pip" install -q uwsgi; then
    note "uWSGI did not build; serving Keystone with gunicorn instead"
    "$KEYSTONE_VENV/bin/pip" install -q gunicorn
  fi
fi
KEYSTONE_VERSION=$("$KEYSTONE_VENV/bin/pip" show keystone 2>/dev/null | awk '/^Version:/ { print $2 }')

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  step "Building Ferrostack (release)"
  (cd "$ROOT" && cargo build --release -q -p ferrostack)
fi
FERROSTACK_BIN=$CARGO_TARGET_DIR/release/ferrostack
[[ -x $FERROSTACK_BIN ]] || die "no Ferrostack binary at $FERROSTACK_BIN"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
if [[ -n $(git -C "$ROOT" status --porcelain -- crates Cargo.toml Cargo.lock) ]]; then
  COMMIT="$COMMIT + uncommitted changes"
fi

# --- Keystone -----------------------------------------------------------------------------
step "Setting up Keystone $KEYSTONE_VERSION in $WORK/keystone"
KPORT=$(free_port)
KDIR=$WORK/keystone
KEYSTONE_PASSWORD=bench-$RANDOM$RANDOM
mkdir -p "$KDIR"
cat >"$KDIR/keystone.conf" <<EOF
[DEFAULT]
log_file = $KDIR/keystone.log
[database]
connection = sqlite:///$KDIR/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = $KDIR/fernet-keys
[fernet_receipts]
key_repository = $KDIR/fernet-receipts
[identity]
password_hash_algorithm = bcrypt
password_hash_rounds = $ROUNDS
EOF
kmanage() { "$KEYSTONE_VENV/bin/keystone-manage" --config-file "$KDIR/keystone.conf" "$@" >>"$KDIR/manage.log" 2>&1; }
kmanage db_sync
kmanage fernet_setup --keystone-user root --keystone-group root # tokens and receipts
kmanage bootstrap --bootstrap-password "$KEYSTONE_PASSWORD" \
  --bootstrap-admin-url "http://127.0.0.1:$KPORT/v3" \
  --bootstrap-internal-url "http://127.0.0.1:$KPORT/v3" \
  --bootstrap-public-url "http://127.0.0.1:$KPORT/v3" \
  --bootstrap-region-id RegionOne
if [[ -x $KEYSTONE_VENV/bin/uwsgi ]]; then
  KEYSTONE_SERVER="uWSGI $("$KEYSTONE_VENV/bin/uwsgi" --version), $KEYSTONE_WORKERS processes × 1 thread"
  cat >"$KDIR/uwsgi.ini" <<EOF
[uwsgi]
module = keystone.wsgi.api:application
virtualenv = $KEYSTONE_VENV
env = OS_KEYSTONE_CONFIG_FILES=$KDIR/keystone.conf
http-socket = 127.0.0.1:$KPORT
master = true
processes = $KEYSTONE_WORKERS
threads = 1
enable-threads = true
lazy-apps = true
thunder-lock = true
buffer-size = 65535
add-header = Connection: close
die-on-term = true
disable-logging = true
EOF
  KPID=$(start_group "$KDIR/server.log" "$KEYSTONE_VENV/bin/uwsgi" --ini "$KDIR/uwsgi.ini")
else
  KEYSTONE_SERVER="gunicorn $("$KEYSTONE_VENV/bin/gunicorn" --version | awk '{print $NF}'), $KEYSTONE_WORKERS sync workers"
  KPID=$(OS_KEYSTONE_CONFIG_FILES=$KDIR/keystone.conf start_group "$KDIR/server.log" \
    "$KEYSTONE_VENV/bin/gunicorn" -w "$KEYSTONE_WORKERS" -b "127.0.0.1:$KPORT" \
    keystone.wsgi.api:application)
fi
STARTED+=("$KPID")
wait_ready "http://127.0.0.1:$KPORT/v3" 120 || die "Keystone did not start; see $KDIR/server.log"
note "Keystone ($KEYSTONE_SERVER) on 127.0.0.1:$KPORT, pid $KPID"

# --- Ferrostack ---------------------------------------------------------------------------
step "Starting Ferrostack $COMMIT in $WORK/ferrostack"
FPORT=$(free_port)
FDIR=$WORK/ferrostack
mkdir -p "$FDIR"
cat >"$FDIR/ferrostack.toml" <<EOF
state_dir = "$FDIR/state"
[api]
listen = "127.0.0.1:$FPORT"
public_url = "http://127.0.0.1:$FPORT"
[identity]
password_hash_rounds = $ROUNDS
[log]
level = "warn"
EOF
FPID=$(FERROSTACK_CONFIG=$FDIR/ferrostack.toml start_group "$FDIR/server.log" "$FERROSTACK_BIN" up)
STARTED+=("$FPID")
wait_ready "http://127.0.0.1:$FPORT/healthz" 120 || die "Ferrostack did not start; see $FDIR/server.log"
FERROSTACK_PASSWORD=$(<"$FDIR/state/admin-password")
note "Ferrostack on 127.0.0.1:$FPORT, pid $FPID"

# --- measure ------------------------------------------------------------------------------
step "bcrypt ceiling at cost $ROUNDS"
"$KEYSTONE_VENV/bin/python" "$LUA_DIR/bcrypt_bound.py" "$ROUNDS" "$(nproc)" >"$RESULTS/bcrypt.json"
note "$(cat "$RESULTS/bcrypt.json")"

bench_system ferrostack "http://127.0.0.1:$FPORT/identity/v3" "$FPID" "$FERROSTACK_PASSWORD"
bench_system keystone "http://127.0.0.1:$KPORT/v3" "$KPID" "$KEYSTONE_PASSWORD"

# --- report -------------------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
python3 - "$RESULTS/meta.json" <<EOF
import json, sys
json.dump({
    "date": "$(date -u +%Y-%m-%d)",
    "machine": "$(nproc) cores ($CPU), $MEM_GB GiB, $(. /etc/os-release && echo "$PRETTY_NAME")",
    "keystone_version": "$KEYSTONE_VERSION",
    "keystone_server": "$KEYSTONE_SERVER",
    "ferrostack_commit": "$COMMIT",
    "rounds": $ROUNDS,
    "wrk": {"version": "$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')", "threads": $THREADS,
            "connections": $CONNECTIONS, "duration": "$DURATION", "warmup": "$WARMUP",
            "password_connections": $PASSWORD_CONNECTIONS,
            "password_duration": "$PASSWORD_DURATION"},
}, open(sys.argv[1], "w"), indent=1)
EOF
step "Results"
if [[ $WRITE_DOCS == 1 ]]; then
  python3 "$LUA_DIR/report.py" "$RESULTS" --doc "$DOC"
else
  python3 "$LUA_DIR/report.py" "$RESULTS"
fi
