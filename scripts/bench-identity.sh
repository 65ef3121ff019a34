#!/usr/bin/env bash
# Identity benchmark: the real Keystone and Ferrostack side by side on this machine, same load.
# Reports token validate / re-scope issue / password issue throughput and p50/p99 latency, and
# resident memory, as ratios; writes docs/benchmarks.md. Run as `make bench-identity`.
# Every process it starts is stopped on exit; all traffic goes to 127.0.0.1.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
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
QUIET_WAIT=${BENCH_QUIET_WAIT:-20} # seconds to wait for other work on the machine to calm down
# Disturbed runs are repeated only while the whole script is younger than this (seconds), so
# that it ends within 10 minutes.
DEADLINE=${BENCH_DEADLINE:-360}
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
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
WRK_PID=   # the wrk run in progress

cleanup() {
  local rc=$? pgid i
  if [[ -n $WRK_PID ]]; then kill "$WRK_PID" 2>/dev/null || true; fi
  # The group leader first (uWSGI's master stops its workers; Ferrostack drains), then
  # whatever is left of each group.
  for pgid in "${STARTED[@]}"; do
    kill -TERM "$pgid" 2>/dev/null || true
  done
  for pgid in "${STARTED[@]}"; do
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pgid" 2>/dev/null || break
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

# Memory of a process and its descendants, as JSON: rss_kb, hwm_kb, pss_kb, processes.
memory_json() {
  local pids p rss=0 hwm=0 pss=0
  mapfile -t pids < <(tree_pids "$1")
  for p in "${pids[@]}"; do
    rss=$((rss + $(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status")))
    hwm=$((hwm + $(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status")))
    pss=$((pss + $(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup")))
  done
  printf '{"rss_kb":%d,"hwm_kb":%d,"pss_kb":%d,"processes":%d,"pids":"%s"}\n' \
    "$rss" "$hwm" "$pss" "${#pids[@]}" "${pids[*]}"
}

# CPU ticks (user + system) spent so far by a process and its descendants.
tree_ticks() {
  local p t=0
  for p in $(tree_pids "$1"); do
    # Fields 14 and 15 of /proc/PID/stat, counted after the ")" closing the command name.
    t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
  done
  echo "$t"
}

# CPU ticks the whole machine has spent so far: user + nice + system, and steal (time the
# hypervisor gave this machine's CPUs to someone else).
machine_ticks() {
  awk '/^cpu / { print $2 + $3 + $4 + $9 }' /proc/stat
}

# CPU ticks of this shell's finished children, from the output of `times` in file $1.
children_ticks() {
  awk -v hz="$CLK_TCK" 'NR == 2 {
    n = 0
    for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
    printf "%d", n * hz
  }' "$1"
}

# Percent of the machine's CPU busy over one second (other sessions' builds skew numbers).
cpu_busy() {
  local a
  a=$(machine_ticks)
  sleep 1
  echo $((($(machine_ticks) - a) * 100 / (CLK_TCK * NCPU)))
}

# Waits (up to $QUIET_WAIT seconds) until the machine is nearly idle before a measurement.
wait_quiet() {
  local busy i
  for ((i = 0; i < QUIET_WAIT; i++)); do
    busy=$(cpu_busy)
    ((busy <= 10)) && return 0
  done
  note "the machine is ${busy}% busy with other work; measuring anyway"
}

# One measured wrk run, after a warm-up with the same parameters. Counts the CPU that neither
# the server nor wrk used during the run (other work on the machine) and, while the time budget
# allows, repeats a run that other work disturbed by more than 15 % of the machine, keeping the
# least disturbed. run_wrk SYSTEM OP CONNECTIONS DURATION URL PID
run_wrk() {
  local system=$1 op=$2 conns=$3 duration=$4 url=$5 pid=$6 script out attempt m0 s0 t0 m1 s1 t1
  local wrk_ticks foreign best=101
  case $op in
  validate) script=validate.lua ;;
  rescope) script=issue_rescope.lua ;;
  password) script=issue_password.lua ;;
  esac
  out=$RESULTS/$system/$op.json
  for ((attempt = 1; attempt <= 2; attempt++)); do
    wait_quiet
    BENCH_JSON=$WORK/warmup.json wrk -t"$THREADS" -c"$conns" -d"$WARMUP" --timeout "$WRK_TIMEOUT" \
      -s "$LUA_DIR/$script" "$url" >/dev/null 2>"$WORK/run.err" &
    WRK_PID=$!
    wait "$WRK_PID" || die "wrk failed: $(cat "$WORK/run.err")"
    m0=$(machine_ticks) s0=$(tree_ticks "$pid") t0=$(date +%s%N)
    # In the background with `wait`, so that Ctrl-C or TERM stops the script at once; `times`
    # (children's CPU, run in this shell) before and after gives wrk's own CPU time.
    times >"$WORK/times.before"
    BENCH_JSON=$WORK/run.json wrk -t"$THREADS" -c"$conns" -d"$duration" --timeout "$WRK_TIMEOUT" \
      --latency -s "$LUA_DIR/$script" "$url" >"$WORK/run.wrk.txt" 2>"$WORK/run.err" &
    WRK_PID=$!
    wait "$WRK_PID" || die "wrk failed: $(cat "$WORK/run.err")"
    WRK_PID=
    times >"$WORK/times.after"
    wrk_ticks=$(children_ticks "$WORK/times.after")
    wrk_ticks=$((wrk_ticks - $(children_ticks "$WORK/times.before")))
    m1=$(machine_ticks) s1=$(tree_ticks "$pid") t1=$(date +%s%N)
    foreign=$(((m1 - m0 - (s1 - s0) - wrk_ticks) * 100 * 1000000000 / ((t1 - t0) * CLK_TCK * NCPU)))
    ((foreign < 0)) && foreign=0
    python3 "$LUA_DIR/report.py" --line "$WORK/run.json" "$system" "$op" |
      sed "s/\$/; other work: ${foreign}% of the CPU/"
    if ((foreign < best)); then
      best=$foreign
      mv "$WORK/run.json" "$out"
      mv "$WORK/run.wrk.txt" "$RESULTS/$system/$op.wrk.txt"
      printf '{"foreign_pct":%d,"server_ticks":%d,"wrk_ticks":%d,"wall_ns":%d,"clk_tck":%d,"cpus":%d}\n' \
        "$foreign" $((s1 - s0)) "$wrk_ticks" $((t1 - t0)) "$CLK_TCK" "$NCPU" >"$RESULTS/$system/$op.cpu.json"
    fi
    ((best <= 15 || attempt == 2 || SECONDS > DEADLINE)) && break
    note "other work took ${foreign}% of the CPU during that run: once more"
  done
}

# Measures one system whose identity v3 API is at $2 and whose server process is $3.
bench_system() {
  local system=$1 api=$2 pid=$3 password=$4 admin subject
  step "Measuring $system"
  admin=$(issue_token "$api" "$(password_body "$password")")
  subject=$(issue_token "$api" "$(password_body "$password")")
  [[ -n $admin && -n $subject ]] || die "$system: could not issue the tokens the load needs"
  export BENCH_LUA_DIR=$LUA_DIR ADMIN_TOKEN=$admin SUBJECT_TOKEN=$subject ADMIN_PASSWORD=$password
  curl -fsS -o /dev/null -w '%{size_download}' -H "X-Auth-Token: $admin" \
    -H "X-Subject-Token: $subject" "$api/auth/tokens" >"$RESULTS/$system/validate.bytes"
  run_wrk "$system" validate "$CONNECTIONS" "$DURATION" "$api/auth/tokens" "$pid"
  run_wrk "$system" rescope "$CONNECTIONS" "$DURATION" "$api/auth/tokens" "$pid"
  run_wrk "$system" password "$PASSWORD_CONNECTIONS" "$PASSWORD_DURATION" "$api/auth/tokens" "$pid"
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

# The same catalog on both, so that both return token bodies of the same size.
step "Copying Ferrostack's service catalog into Keystone"
FAPI=http://127.0.0.1:$FPORT/identity/v3
KAPI=http://127.0.0.1:$KPORT/v3
python3 "$LUA_DIR/mirror_catalog.py" \
  "$FAPI" "$(issue_token "$FAPI" "$(password_body "$FERROSTACK_PASSWORD")")" \
  "$KAPI" "$(issue_token "$KAPI" "$(password_body "$KEYSTONE_PASSWORD")")" | sed 's/^/    /'

# --- measure ------------------------------------------------------------------------------
step "bcrypt ceiling at cost $ROUNDS"
"$KEYSTONE_VENV/bin/python" "$LUA_DIR/bcrypt_bound.py" "$ROUNDS" "$(nproc)" >"$RESULTS/bcrypt.json"
note "$(cat "$RESULTS/bcrypt.json")"

bench_system ferrostack "$FAPI" "$FPID" "$FERROSTACK_PASSWORD"
bench_system keystone "$KAPI" "$KPID" "$KEYSTONE_PASSWORD"

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
