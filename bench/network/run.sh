#!/usr/bin/env bash
# Networking benchmark: port create (with IP allocation) and port delete, Ferrostack and the real
# neutron-server (from PyPI) side by side on this machine, same requests, same run. Reports
# ports/s, p50/p90/p99 latency and server CPU per port for C concurrent clients × M ports
# (bench/network/port_create.py), median of BENCH_ROUNDS rounds, and writes the networking
# section of docs/benchmarks.md. Run as `make bench-network`. Every process it starts is
# stopped on exit, every database it creates is dropped; all traffic goes to 127.0.0.1.
#
# Systems: Ferrostack on SQLite and on PostgreSQL (API only: [compute] and [network] agents off,
# as port create does not wait for agents in Neutron either); neutron-server (ML2, noauth,
# PostgreSQL: Neutron's migrations do not support SQLite) served by uWSGI with 1 process and
# with `nproc` processes (Neutron's default api_workers). Without PostgreSQL only Ferrostack on
# SQLite runs, and the section compares with upstream's published figure alone.
#
# Environment: BENCH_SHAPES ("8x125 1x200": CLIENTSxPORTS each), BENCH_ROUNDS (3),
# BENCH_BACKENDS ("sqlite postgres": Ferrostack's), BENCH_NEUTRON_WORKERS ("1 nproc"; empty:
# no neutron-server), BENCH_PG_URL (postgres://ferrostack:ferrostack@127.0.0.1:5432/postgres:
# a server where the user may create databases), BENCH_QUIET_WAIT (10 s to wait for an idle
# machine before each run), BENCH_SKIP_BUILD=1 or FERROSTACK_BIN=PATH (use an existing binary),
# BENCH_WRITE_DOCS (1; 0 leaves the docs alone), BENCH_KEEP=1 (keep the temporary directory:
# configs, logs, raw results), NEUTRON_VENV (~/.cache/ferrostack/bench/neutron-venv),
# NEUTRON_PIP_SPEC (neutron; e.g. neutron==29.0.0).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../../scripts/lib.sh
source "$ROOT/scripts/lib.sh"

NCPU=$(nproc)
SHAPES=${BENCH_SHAPES:-8x125 1x200}
ROUNDS=${BENCH_ROUNDS:-3}
BACKENDS=${BENCH_BACKENDS:-sqlite postgres}
NEUTRON_WORKERS=${BENCH_NEUTRON_WORKERS-1 $NCPU}
PG_URL=${BENCH_PG_URL:-postgres://ferrostack:ferrostack@127.0.0.1:5432/postgres}
QUIET_WAIT=${BENCH_QUIET_WAIT:-10}
WRITE_DOCS=${BENCH_WRITE_DOCS:-1}
KEEP=${BENCH_KEEP:-0}
NEUTRON_VENV=${NEUTRON_VENV:-$HOME/.cache/ferrostack/bench/neutron-venv}
NEUTRON_PIP_SPEC=${NEUTRON_PIP_SPEC:-neutron}
CLK_TCK=$(getconf CLK_TCK)
HERE=$ROOT/bench/network
DOC=$ROOT/docs/benchmarks.md

WORK=$(mktemp -d /tmp/ferrostack-bench-network.XXXXXX)
RESULTS=$WORK/results
mkdir -p "$RESULTS"
STARTED=()   # process-group ids of the servers this script started
DATABASES=() # PostgreSQL databases this script created
SYSTEMS=()   # name|endpoint|auth|pid of every system to measure

cleanup() {
  local rc=$? db
  stop_started 10
  for db in "${DATABASES[@]}"; do
    psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 ||
      note "could not drop database $db"
  done
  finish_work "$rc" "configs, logs, raw results"
}
trap cleanup EXIT
trap 'exit 130' INT TERM



# A fresh, empty PostgreSQL database on $PG_URL's server; prints its URL.
fresh_database() {
  local name
  name=fsbench_net_$1_$(date +%s)_$RANDOM
  psql "$PG_URL" -qc "CREATE DATABASE $name" >/dev/null || die "could not create database $name on $PG_URL"
  DATABASES+=("$name")
  FRESH_DB_URL=${PG_URL%/*}/$name
}

# CPU ticks the whole machine has spent: user + nice + system + steal.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $9 }' /proc/stat; }

# Percent of the machine's CPU busy over one second.
cpu_busy() {
  local a
  a=$(machine_ticks)
  sleep 1
  echo $((($(machine_ticks) - a) * 100 / (CLK_TCK * NCPU)))
}

# Waits (up to $QUIET_WAIT seconds) until the machine is nearly idle before a measurement; sets
# LAST_BUSY to the last percentage seen.
wait_quiet() {
  local i
  LAST_BUSY=0
  for ((i = 0; i < QUIET_WAIT; i++)); do
    LAST_BUSY=$(cpu_busy)
    ((LAST_BUSY <= 10)) && return 0
  done
  note "the machine is ${LAST_BUSY}% busy with other work; measuring anyway"
}

# --- what the benchmark needs -------------------------------------------------------------
command -v curl >/dev/null || ensure_apt_packages curl
HAVE_PG=0
if [[ -n $BACKENDS$NEUTRON_WORKERS ]] && command -v psql >/dev/null &&
  psql "$PG_URL" -qc 'SELECT 1' >/dev/null 2>&1; then
  HAVE_PG=1
  PG_VERSION=$(psql "$PG_URL" -Atc 'SHOW server_version' | awk '{ print $1 }')
else
  note "no PostgreSQL at $PG_URL: Ferrostack on SQLite only, no neutron-server"
  NEUTRON_WORKERS=
fi

NEUTRON_VERSION=
if [[ -n $NEUTRON_WORKERS ]]; then
  if [[ ! -x $NEUTRON_VENV/bin/uwsgi ]] ||
    ! "$NEUTRON_VENV/bin/python" -c 'import neutron, psycopg2' 2>/dev/null; then
    step "Installing neutron, uWSGI and psycopg2 into $NEUTRON_VENV (several minutes the first time)"
    ensure_apt_packages gcc python3-dev
    python3 -m venv "$NEUTRON_VENV"
    "$NEUTRON_VENV/bin/pip" install -q --upgrade pip
    "$NEUTRON_VENV/bin/pip" install -q "$NEUTRON_PIP_SPEC" uwsgi psycopg2-binary
  fi
  NEUTRON_VERSION=$("$NEUTRON_VENV/bin/pip" show neutron 2>/dev/null | awk '/^Version:/ { print $2 }')
  UWSGI_VERSION=$("$NEUTRON_VENV/bin/uwsgi" --version)
  NEUTRON_PASTE=$NEUTRON_VENV/etc/neutron/api-paste.ini
  [[ -f $NEUTRON_PASTE ]] || die "no $NEUTRON_PASTE in the neutron package"
fi

bench_binary

# --- Ferrostack ---------------------------------------------------------------------------
# start_ferrostack BACKEND: the all-in-one with its API only, on a fresh state dir.
start_ferrostack() {
  local backend=$1 port dir url password token
  port=$(free_port)
  dir=$WORK/ferrostack-$backend
  url=http://127.0.0.1:$port
  mkdir -p "$dir"
  cat >"$dir/ferrostack.toml" <<EOF
state_dir = "$dir/state"
[api]
listen = "127.0.0.1:$port"
public_url = "$url"
[identity]
password_hash_rounds = 4
[log]
level = "warn"
[compute]
agent = false
metadata_listen = ""
novncproxy_listen = ""
[network]
agent = false
quota_network = -1
quota_subnet = -1
quota_port = -1
EOF
  if [[ $backend == postgres ]]; then
    fresh_database ferrostack
    printf '[database]\nurl = "%s"\n' "$FRESH_DB_URL" >>"$dir/ferrostack.toml"
  fi
  step "Starting Ferrostack $COMMIT ($backend) in $dir"
  FERROSTACK_CONFIG=$dir/ferrostack.toml start_group "$dir/server.log" "$FERROSTACK_BIN" up
  wait_ready "$url/healthz" 120 || die "Ferrostack did not start; see $dir/server.log"
  password=$(<"$dir/state/admin-password")
  token=$(curl -fsS -D - -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"},\"password\":\"$password\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"id\":\"default\"}}}}}" \
    "$url/identity/v3/auth/tokens" | awk 'tolower($1) == "x-subject-token:" { sub(/\r$/, "", $2); print $2 }')
  [[ -n $token ]] || die "no admin token from $url/identity/v3/auth/tokens"
  SYSTEMS+=("ferrostack-$backend|$url/networking|--token $token|$STARTED_PID")
  note "Ferrostack ($backend) on $url, pid $STARTED_PID"
}

# --- neutron-server -----------------------------------------------------------------------
# start_neutron WORKERS: neutron's API under uWSGI with WORKERS processes of one thread, on a
# fresh PostgreSQL database migrated with neutron-db-manage.
start_neutron() {
  local workers=$1 port dir url
  port=$(free_port)
  dir=$WORK/neutron-w$workers
  url=http://127.0.0.1:$port
  mkdir -p "$dir/state" "$dir/lock"
  fresh_database neutron
  # noauth: every request is an admin of the project fake_project_id. fake:// RPC: no agent
  # listens anyway (with no DHCP agent nothing is cast on port create). ML2 with no mechanism
  # driver: ports stay DOWN and unbound, as they are until a host binds them.
  cat >"$dir/neutron.conf" <<EOF
[DEFAULT]
core_plugin = ml2
service_plugins =
auth_strategy = noauth
api_paste_config = $NEUTRON_PASTE
transport_url = fake://
api_workers = $workers
rpc_workers = 0
rpc_state_report_workers = 0
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
state_path = $dir/state
log_file = $dir/neutron.log
debug = false
[database]
connection = ${FRESH_DB_URL/postgres:/postgresql+psycopg2:}
[ml2]
type_drivers = flat,vxlan
project_network_types = vxlan
mechanism_drivers =
extension_drivers = port_security
[ml2_type_vxlan]
vni_ranges = 1:1000
[quotas]
quota_network = -1
quota_subnet = -1
quota_port = -1
[oslo_concurrency]
lock_path = $dir/lock
EOF
  step "Setting up neutron-server $NEUTRON_VERSION (uWSGI, $workers × 1 thread) in $dir"
  "$NEUTRON_VENV/bin/python" "$HERE/neutron_db_manage.py" --config-file "$dir/neutron.conf" \
    upgrade heads >"$dir/manage.log" 2>&1 || die "neutron-db-manage upgrade heads failed; see $dir/manage.log"
  cat >"$dir/uwsgi.ini" <<EOF
[uwsgi]
module = neutron.wsgi.api:application
virtualenv = $NEUTRON_VENV
env = OS_NEUTRON_CONFIG_DIR=$dir
env = OS_NEUTRON_CONFIG_FILES=neutron.conf
http-socket = 127.0.0.1:$port
master = true
processes = $workers
threads = 1
enable-threads = true
lazy-apps = true
thunder-lock = true
buffer-size = 65535
add-header = Connection: close
die-on-term = true
disable-logging = true
EOF
  start_group "$dir/server.log" "$NEUTRON_VENV/bin/uwsgi" --ini "$dir/uwsgi.ini"
  wait_ready "$url/v2.0/networks" 120 || die "neutron-server did not start; see $dir/server.log and $dir/neutron.log"
  SYSTEMS+=("neutron-w$workers|$url|--noauth|$STARTED_PID")
  note "neutron-server ($workers × 1 thread) on $url, pid $STARTED_PID"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for backend in $BACKENDS; do
  [[ $backend == postgres && $HAVE_PG != 1 ]] && continue
  start_ferrostack "$backend"
done
for w in $NEUTRON_WORKERS; do
  start_neutron "$w"
done

# --- measure ------------------------------------------------------------------------------
# Round after round, every shape on every system in turn, so slow drifts in the machine's other
# load touch all systems alike.
for ((round = 1; round <= ROUNDS; round++)); do
  for shape in $SHAPES; do
    c=${shape%x*} m=${shape#*x}
    step "Round $round of $ROUNDS: $c client(s) × $m ports"
    for s in "${SYSTEMS[@]}"; do
      IFS="|" read -r name endpoint auth pid <<<"$s"
      kill -0 "$pid" 2>/dev/null || die "$name stopped; see $WORK/$name/"
      wait_quiet
      out=$RESULTS/$name.${c}x$m.r$round
      echo "$LAST_BUSY" >"$out.busy"
      # shellcheck disable=SC2086
      python3 "$HERE/port_create.py" "$endpoint" $auth -c "$c" -m "$m" --label "$name" \
        --server-pid "$pid" --json-out "$out.json" >/dev/null 2>"$out.txt" ||
        { cat "$out.txt"; die "$name: the run failed its checks (see above)"; }
      sed 's/^/    /' "$out.txt"
    done
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -------------------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') \
  M_MACHINE="$NCPU cores ($CPU), $MEM_GB GiB, $(. /etc/os-release && echo "$PRETTY_NAME")" \
  M_NCPU=$NCPU M_COMMIT=$COMMIT M_NEUTRON=$NEUTRON_VERSION M_UWSGI=${UWSGI_VERSION:-} \
  M_PG=${PG_VERSION:-} M_ROUNDS=$ROUNDS M_SHAPES=$SHAPES \
  M_LOAD_BEFORE=$LOAD_BEFORE M_LOAD_AFTER=$LOAD_AFTER \
  python3 - "$RESULTS/meta.json" <<'EOF'
import json, os, sys
e = os.environ
json.dump({
    "date": e["M_DATE"], "machine": e["M_MACHINE"], "ncpu": int(e["M_NCPU"]),
    "ferrostack_commit": e["M_COMMIT"], "neutron_version": e["M_NEUTRON"],
    "uwsgi_version": e["M_UWSGI"], "postgresql_version": e["M_PG"],
    "rounds": int(e["M_ROUNDS"]), "shapes": e["M_SHAPES"].split(),
    "load_before": e["M_LOAD_BEFORE"], "load_after": e["M_LOAD_AFTER"],
}, open(sys.argv[1], "w"), indent=1, ensure_ascii=False)
EOF
bench_report network-ports networking
