#!/usr/bin/env bash
# Image data benchmark: upload and download throughput of Ferrostack's image API and of the real
# Glance, side by side on this machine, against `dd` to and from the same disk in the same run.
# Run as `make bench-image` or `scripts/bench-image.sh [SIZE_MIB]`.
#
# One test file of SIZE_MIB MiB (default 2048; random data from /dev/urandom, made once and kept
# in the workspace) is, in each of BENCH_IMAGE_ROUNDS rounds (default 3; medians reported):
#   dd         written with `dd bs=1M conv=fsync`, read back with `dd of=/dev/null bs=1M`
#   Ferrostack uploaded with `PUT /image/v2/images/{id}/file` (curl -T, streamed), downloaded
#              with `GET .../file` to /dev/null; a private `ferrostack up` (own state dir, port)
#   Glance     the same through a real glance-api: single file store, sqlite, no keystone
#              (paste flavor unset: the unauthenticated-context pipeline), no image cache,
#              one uWSGI worker (Glance >= 2025.2 has no standalone server any more)
# Page caches are dropped before every measured step when this runs as root (recorded), so
# reads come from the disk for all three. Ferrostack fsyncs an upload before answering, Glance
# does not: "upload" is the time to the 204, "durable" adds a `sync` of the store's filesystem
# afterwards (the comparable figure to dd's conv=fsync). Peak RSS is VmHWM of the server's
# processes (summed over uWSGI's master and worker). If Glance cannot be installed or started the
# report says so and the other numbers are still given.
#
# Environment: FERROSTACK_BIN (default: `cargo build --release -p ferrostack`, then
# $CARGO_TARGET_DIR/release/ferrostack), BENCH_IMAGE_MIB (file size, also the first argument),
# BENCH_IMAGE_ROUNDS (3), BENCH_IMAGE_WORKSPACE (default ~/.cache/ferrostack/bench-image: the
# test file, both servers' state and stores, logs, runs.csv, results.md), GLANCE_VENV (default
# ~/.cache/ferrostack/glance-venv; `pip install glance uwsgi` when missing), GLANCE_PIP_SPEC
# (default glance), BENCH_SKIP_GLANCE=1, BENCH_QUIET_WAIT (seconds to wait for the machine to
# be idle before each step, default 15), BENCH_KEEP=1 (keep the servers' state and logs).
# Output: a Markdown table on stdout and in <workspace>/results.md; raw runs in runs.csv.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
source "$ROOT/scripts/lib.sh"

SIZE_MIB=${1:-${BENCH_IMAGE_MIB:-2048}}
ROUNDS=${BENCH_IMAGE_ROUNDS:-3}
WORKSPACE=${BENCH_IMAGE_WORKSPACE:-$HOME/.cache/ferrostack/bench-image}
GLANCE_VENV=${GLANCE_VENV:-$HOME/.cache/ferrostack/glance-venv}
GLANCE_PIP_SPEC=${GLANCE_PIP_SPEC:-glance}
QUIET_WAIT=${BENCH_QUIET_WAIT:-15}
KEEP=${BENCH_KEEP:-0}
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
[[ $SIZE_MIB =~ ^[0-9]+$ && $SIZE_MIB -gt 0 ]] || die "size must be a number of MiB, not '$SIZE_MIB'"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -gt 0 ]] || die "BENCH_IMAGE_ROUNDS must be a positive number"

mkdir -p "$WORKSPACE"
WORKSPACE=$(cd "$WORKSPACE" && pwd)
SRC=$WORKSPACE/source-${SIZE_MIB}MiB.bin
RUNS=$WORKSPACE/runs.csv
META=$WORKSPACE/meta.json
FDIR=$WORKSPACE/ferrostack
GDIR=$WORKSPACE/glance
DD_DST=$WORKSPACE/dd-target.bin
STARTED=() # process-group ids of the servers this script started

cleanup() {
  local rc=$? pgid i
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
  rm -f "$DD_DST"
  if [[ $KEEP != 1 && $rc == 0 ]]; then
    rm -rf "$FDIR/state" "$GDIR/images" "$GDIR/staging" "$GDIR/glance.sqlite"
  else
    note "kept the servers' state and logs in $FDIR and $GDIR"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# How a server this script started ended: "exited with status N" or "killed by signal N".
exit_reason() {
  local rc=0
  wait "$1" 2>/dev/null || rc=$?
  if ((rc > 128)); then echo "killed by signal $((rc - 128))"; else echo "exited with status $rc"; fi
}


now_ns() { date +%s%N; }

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

# Sum over a process tree of a /proc/PID/status field in kB (VmHWM, VmRSS).
tree_status_kb() {
  local p n=0 v
  for p in $(tree_pids "$1"); do
    v=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$p/status" 2>/dev/null || true)
    n=$((n + ${v:-0}))
  done
  echo "$n"
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

machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $9 }' /proc/stat; }

# Percent of the machine's CPU busy over one second.
cpu_busy() {
  local a
  a=$(machine_ticks)
  sleep 1
  echo $((($(machine_ticks) - a) * 100 / (CLK_TCK * NCPU)))
}

# Waits (up to $QUIET_WAIT seconds) for the machine to be nearly idle; prints the last busy %.
wait_quiet() {
  local busy=0 i
  for ((i = 0; i < QUIET_WAIT; i++)); do
    busy=$(cpu_busy)
    ((busy <= 10)) && break
  done
  echo "$busy"
}

DROPPED=no
drop_caches() {
  sync
  if [[ $(id -u) == 0 ]] && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; then
    DROPPED=yes
  else
    DROPPED=no
  fi
}

# One line of runs.csv: round,system,op,bytes,seconds,sync_seconds,server_cpu_s,busy_pct,caches_dropped,status
# (status quoted for CSV: it may hold a server's error text)
record() {
  local status=${9//\"/\'}
  echo "$1,$2,$3,$4,$5,$6,$7,$8,$DROPPED,\"${status//$'\n'/ }\"" >>"$RUNS"
}

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / 1e6 / s : 0) }'; }

# --- preparation --------------------------------------------------------------------------
command -v curl >/dev/null || ensure_apt_packages curl
: >"$RUNS"
echo "round,system,op,bytes,seconds,sync_seconds,server_cpu_s,busy_pct,caches_dropped,status" >"$RUNS"
BYTES=$((SIZE_MIB * 1048576))

need_kb=$((SIZE_MIB * 1024 * 3 + 1048576))
[[ -f $SRC ]] || need_kb=$((need_kb + SIZE_MIB * 1024))
avail_kb=$(df -Pk "$WORKSPACE" | awk 'NR == 2 { print $4 }')
((avail_kb > need_kb)) || die "$WORKSPACE has $((avail_kb / 1024)) MiB free; this needs about $((need_kb / 1024)) MiB"

if [[ ! -f $SRC || $(stat -c %s "$SRC") != "$BYTES" ]]; then
  step "Writing the ${SIZE_MIB} MiB test file $SRC (random data, once)"
  dd if=/dev/urandom of="$SRC.part" bs=1M count="$SIZE_MIB" iflag=fullblock status=none
  mv "$SRC.part" "$SRC"
  rm -f "$SRC.md5"
fi
if [[ ! -s $SRC.md5 ]]; then
  md5sum "$SRC" | awk '{ print $1 }' >"$SRC.md5"
fi
SRC_MD5=$(<"$SRC.md5")

if [[ -z ${FERROSTACK_BIN:-} ]]; then
  ensure_rust
  step "Building Ferrostack (release)"
  (cd "$ROOT" && cargo build --release -q -p ferrostack)
  FERROSTACK_BIN=$CARGO_TARGET_DIR/release/ferrostack
fi
[[ -x $FERROSTACK_BIN ]] || die "FERROSTACK_BIN=$FERROSTACK_BIN is not an executable"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null) ]]; then
  COMMIT="$COMMIT + uncommitted changes"
fi

# --- Ferrostack ---------------------------------------------------------------------------
FERRO_STATUS=ok FPID="" FURL="" FTOKEN=""
step "Starting Ferrostack ($FERROSTACK_BIN)"
rm -rf "$FDIR"
mkdir -p "$FDIR"
FPORT=$(free_port)
FURL=http://127.0.0.1:$FPORT
cat >"$FDIR/ferrostack.toml" <<EOF
state_dir = "$FDIR/state"
[api]
listen = "127.0.0.1:$FPORT"
public_url = "$FURL"
[identity]
password_hash_rounds = 4
[log]
level = "info"
EOF
FERROSTACK_CONFIG=$FDIR/ferrostack.toml start_group "$FDIR/server.log" "$FERROSTACK_BIN" up
FPID=$STARTED_PID
if ! wait_ready "$FURL/healthz" 120; then
  FERRO_STATUS="not measured: Ferrostack did not start (log: $FDIR/server.log)"
  tail -n 20 "$FDIR/server.log" >&2 || true
else
  code=$(curl -s -o /dev/null -w '%{http_code}' "$FURL/image")
  if [[ $code != 300 ]]; then
    FERRO_STATUS="not measured: this binary has no image API (GET /image answered $code, not 300)"
  else
    password=$(<"$FDIR/state/admin-password")
    FTOKEN=$(curl -fsS -D - -o /dev/null -H 'Content-Type: application/json' \
      -d "{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"},\"password\":\"$password\"}}},\"scope\":{\"project\":{\"name\":\"admin\",\"domain\":{\"name\":\"Default\"}}}}}" \
      "$FURL/identity/v3/auth/tokens" | awk 'tolower($1) == "x-subject-token:" { sub(/\r$/, "", $2); print $2 }')
    [[ -n $FTOKEN ]] || FERRO_STATUS="not measured: no admin token from $FURL/identity/v3/auth/tokens"
  fi
fi
FERRO_IDLE_RSS=$(tree_status_kb "$FPID" VmRSS)
note "Ferrostack on $FURL, pid $FPID: $FERRO_STATUS"

# --- Glance -------------------------------------------------------------------------------
GLANCE_STATUS=ok GPID="" GURL="" GLANCE_VERSION="" GLANCE_IDLE_RSS=0
setup_glance() {
  if [[ ! -x $GLANCE_VENV/bin/glance-manage || ! -x $GLANCE_VENV/bin/uwsgi ]]; then
    step "Installing Glance and uWSGI into $GLANCE_VENV (a few minutes the first time)"
    ensure_apt_packages gcc python3-dev
    {
      python3 -m venv "$GLANCE_VENV" &&
        "$GLANCE_VENV/bin/pip" install -q --upgrade pip &&
        "$GLANCE_VENV/bin/pip" install -q "$GLANCE_PIP_SPEC" uwsgi
    } >"$WORKSPACE/glance-install.log" 2>&1 || {
      GLANCE_STATUS="not measured: \`pip install $GLANCE_PIP_SPEC uwsgi\` failed (log: $WORKSPACE/glance-install.log)"
      return
    }
  fi
  GLANCE_VERSION=$("$GLANCE_VENV/bin/pip" show glance 2>/dev/null | awk '/^Version:/ { print $2 }')
  local paste=$GLANCE_VENV/etc/glance/glance-api-paste.ini
  [[ -f $paste ]] || paste=$(find "$GLANCE_VENV" -name glance-api-paste.ini -print -quit)
  if [[ ! -f $paste ]]; then
    GLANCE_STATUS="not measured: no glance-api-paste.ini in $GLANCE_VENV"
    return
  fi
  step "Setting up Glance $GLANCE_VERSION in $GDIR"
  rm -rf "$GDIR"
  mkdir -p "$GDIR/images" "$GDIR/staging"
  cp "$paste" "$GDIR/glance-api-paste.ini"
  local port
  port=$(free_port)
  GURL=http://127.0.0.1:$port
  # Without keystone every request runs as an anonymous admin context (no roles, no project),
  # which the secure-RBAC defaults refuse: open the rules the benchmark uses.
  cat >"$GDIR/policy.yaml" <<'EOF'
"default": ""
"context_is_admin": ""
"add_image": ""
"get_image": ""
"get_images": ""
"modify_image": ""
"upload_image": ""
"download_image": ""
"delete_image": ""
EOF
  cat >"$GDIR/glance-api.conf" <<EOF
[DEFAULT]
log_file = $GDIR/glance-api.log
workers = 1
enabled_import_methods = [glance-direct,web-download]
node_staging_uri = file://$GDIR/staging
# no image_cache_dir: the image cache is off
[database]
connection = sqlite:///$GDIR/glance.sqlite
[paste_deploy]
# unset flavor: the "default" pipeline, unauthenticated-context instead of keystone authtoken
flavor =
config_file = $GDIR/glance-api-paste.ini
[glance_store]
stores = file
default_store = file
filesystem_store_datadir = $GDIR/images
[oslo_policy]
policy_file = $GDIR/policy.yaml
EOF
  if ! "$GLANCE_VENV/bin/glance-manage" --config-file "$GDIR/glance-api.conf" db_sync >"$GDIR/manage.log" 2>&1; then
    GLANCE_STATUS="not measured: glance-manage db_sync failed (log: $GDIR/manage.log)"
    return
  fi
  # As devstack serves glance-api under uWSGI (chunked input, raw body), one process, one thread.
  cat >"$GDIR/uwsgi.ini" <<EOF
[uwsgi]
module = glance.wsgi.api:application
virtualenv = $GLANCE_VENV
env = OS_GLANCE_CONFIG_DIR=$GDIR
http-socket = 127.0.0.1:$port
master = true
processes = 1
threads = 1
enable-threads = true
lazy-apps = true
http-chunked-input = true
http-raw-body = true
http-auto-chunked = true
http-keepalive = false
buffer-size = 65535
die-on-term = true
disable-logging = true
EOF
  start_group "$GDIR/server.log" "$GLANCE_VENV/bin/uwsgi" --ini "$GDIR/uwsgi.ini"
  GPID=$STARTED_PID
  local i code=000
  for ((i = 0; i < 300; i++)); do
    kill -0 "$GPID" 2>/dev/null || break
    code=$(curl -s -o /dev/null -w '%{http_code}' "$GURL/" || true)
    [[ $code == 300 ]] && break
    sleep 0.2
  done
  if [[ $code != 300 ]]; then
    GLANCE_STATUS="not measured: glance-api did not start (logs: $GDIR/server.log, $GDIR/glance-api.log)"
    tail -n 20 "$GDIR/server.log" >&2 || true
    return
  fi
  GLANCE_IDLE_RSS=$(tree_status_kb "$GPID" VmRSS)
  note "Glance $GLANCE_VERSION on $GURL (uWSGI, pid $GPID)"
}
if [[ ${BENCH_SKIP_GLANCE:-0} == 1 ]]; then
  GLANCE_STATUS="not measured: BENCH_SKIP_GLANCE=1"
else
  setup_glance
fi
[[ $GLANCE_STATUS == ok ]] || note "Glance $GLANCE_STATUS"

# Both servers' stores, the test file and dd's target on one filesystem?
SAME_FS=yes
for d in "$FDIR" "$GDIR"; do
  [[ -d $d ]] || continue
  [[ $(stat -c %d "$d") == $(stat -c %d "$SRC") ]] || SAME_FS="no ($d is on another filesystem)"
done

# --- measurements -------------------------------------------------------------------------
measure_dd() {  # ROUND
  local busy t0 t1
  busy=$(wait_quiet)
  drop_caches
  t0=$(now_ns)
  dd if="$SRC" of="$DD_DST" bs=1M conv=fsync status=none || die "dd write failed"
  t1=$(now_ns)
  record "$1" dd write "$BYTES" "$(secs "$t0" "$t1")" 0 "" "$busy" ok
  note "round $1 dd write: $(mbps "$BYTES" "$(secs "$t0" "$t1")") MB/s"
  busy=$(wait_quiet)
  drop_caches
  t0=$(now_ns)
  dd if="$DD_DST" of=/dev/null bs=1M status=none || die "dd read failed"
  t1=$(now_ns)
  record "$1" dd read "$BYTES" "$(secs "$t0" "$t1")" 0 "" "$busy" ok
  note "round $1 dd read: $(mbps "$BYTES" "$(secs "$t0" "$t1")") MB/s"
  rm -f "$DD_DST"
}

# Create, upload, check, download, delete one image. measure_api ROUND SYSTEM IMAGE_API PID
# STORE_DIR TOKEN (IMAGE_API is the URL that /v2/images hangs off; TOKEN may be empty).
measure_api() {
  local round=$1 system=$2 api=$3 pid=$4 store=$5 token=$6 busy t0 t1 t2 c0 c1 out id code
  local auth=()
  [[ -n $token ]] && auth=(-H "X-Auth-Token: $token")
  out=$WORKSPACE/$system.response
  : >"$out"
  code=$(curl -sS -o "$out" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' \
    -d '{"name":"bench","disk_format":"raw","container_format":"bare"}' "$api/v2/images" 2>"$out.err" || true)
  if [[ $code != 201 ]]; then
    record "$round" "$system" upload "$BYTES" 0 0 0 0 "create answered $code: $(cat "$out.err" "$out" | head -c 200 | tr ',\n' '; ')"
    note "round $round $system: POST /v2/images answered $code: $(cat "$out.err" "$out" | head -c 300)"
    return 1
  fi
  id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$out")

  busy=$(wait_quiet)
  drop_caches
  c0=$(tree_ticks "$pid")
  : >"$out"
  t0=$(now_ns)
  code=$(curl -sS -o "$out" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/octet-stream' \
    -H 'Expect:' -T "$SRC" "$api/v2/images/$id/file" 2>"$out.err" || true)
  t1=$(now_ns)
  c1=$(tree_ticks "$pid")
  sync -f "$store"
  t2=$(now_ns)
  if [[ $code != 204 ]]; then
    record "$round" "$system" upload "$BYTES" "$(secs "$t0" "$t1")" 0 0 "$busy" "upload answered $code: $(cat "$out.err" "$out" | head -c 200 | tr ',\n' '; ')"
    note "round $round $system: PUT file answered $code: $(cat "$out.err" "$out" | head -c 300)"
    curl -sS -o /dev/null "${auth[@]}" -X DELETE "$api/v2/images/$id" || true
    return 1
  fi
  # The image must be active with the right size and md5, or the numbers mean nothing.
  curl -sS -o "$out" "${auth[@]}" "$api/v2/images/$id" || true
  local check
  check=$(python3 -c '
import json, sys
i = json.load(open(sys.argv[1]))
bad = [f"{k}={i.get(k)!r}" for k, v in (("status", "active"), ("size", int(sys.argv[2])), ("checksum", sys.argv[3])) if i.get(k) != v]
print("; ".join(bad) or "ok")' "$out" "$BYTES" "$SRC_MD5" 2>&1 || echo "unreadable image body")
  record "$round" "$system" upload "$BYTES" "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" \
    "$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')" "$busy" \
    "$([[ $check == ok ]] && echo ok || echo "after upload: $check")"
  note "round $round $system upload: $(mbps "$BYTES" "$(secs "$t0" "$t1")") MB/s, durable $(mbps "$BYTES" "$(secs "$t0" "$t2")") MB/s ($check)"

  busy=$(wait_quiet)
  drop_caches
  c0=$(tree_ticks "$pid")
  t0=$(now_ns)
  code=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' "${auth[@]}" "$api/v2/images/$id/file" || true)
  t1=$(now_ns)
  c1=$(tree_ticks "$pid")
  local status=ok
  [[ $code == "200 $BYTES" ]] || status="download answered ${code% *}, ${code#* } bytes"
  record "$round" "$system" download "$BYTES" "$(secs "$t0" "$t1")" 0 \
    "$(awk -v t=$((c1 - c0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')" "$busy" "$status"
  if [[ $status == ok ]]; then
    note "round $round $system download: $(mbps "$BYTES" "$(secs "$t0" "$t1")") MB/s"
  else
    note "round $round $system download: $status"
  fi
  curl -sS -o /dev/null "${auth[@]}" -X DELETE "$api/v2/images/$id" || true
}

FERRO_HWM=0 GLANCE_HWM=0
for ((round = 1; round <= ROUNDS; round++)); do
  step "Round $round of $ROUNDS (${SIZE_MIB} MiB)"
  measure_dd "$round"
  if [[ $FERRO_STATUS == ok ]]; then
    measure_api "$round" ferrostack "$FURL/image" "$FPID" "$FDIR" "$FTOKEN" || true
    kill -0 "$FPID" 2>/dev/null || { FERRO_STATUS="stopped during the run: $(exit_reason "$FPID") (log: $FDIR/server.log)"; note "Ferrostack $FERRO_STATUS"; }
    hwm=$(tree_status_kb "$FPID" VmHWM)
    ((hwm > FERRO_HWM)) && FERRO_HWM=$hwm
  fi
  if [[ $GLANCE_STATUS == ok ]]; then
    measure_api "$round" glance "$GURL" "$GPID" "$GDIR" "" || true
    kill -0 "$GPID" 2>/dev/null || { GLANCE_STATUS="stopped during the run: $(exit_reason "$GPID") (log: $GDIR/server.log)"; note "Glance $GLANCE_STATUS"; }
    hwm=$(tree_status_kb "$GPID" VmHWM)
    ((hwm > GLANCE_HWM)) && GLANCE_HWM=$hwm
  fi
done

# --- report -------------------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
DEVICE=$(df -P "$WORKSPACE" | awk 'NR == 2 { print $1 }')
FSTYPE=$(findmnt -no FSTYPE -T "$WORKSPACE" 2>/dev/null || stat -f -c %T "$WORKSPACE")
UWSGI_VERSION=unknown
if [[ -x $GLANCE_VENV/bin/uwsgi ]]; then UWSGI_VERSION=$("$GLANCE_VENV/bin/uwsgi" --version); fi
M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') \
  M_MACHINE="$NCPU cores ($CPU), $MEM_GB GiB, $(. /etc/os-release && echo "$PRETTY_NAME")" \
  M_DISK="$DEVICE ($FSTYPE), workspace $WORKSPACE" M_SAME_FS=$SAME_FS \
  M_SIZE=$SIZE_MIB M_ROUNDS=$ROUNDS M_COMMIT=$COMMIT M_BIN=$FERROSTACK_BIN \
  M_F_STATUS=$FERRO_STATUS M_F_HWM=$FERRO_HWM M_F_IDLE=${FERRO_IDLE_RSS:-0} \
  M_G_VERSION=$GLANCE_VERSION M_G_STATUS=$GLANCE_STATUS M_G_HWM=$GLANCE_HWM \
  M_G_IDLE=${GLANCE_IDLE_RSS:-0} M_G_SERVER="uWSGI $UWSGI_VERSION, 1 process × 1 thread" \
  python3 - "$META" <<'EOF'
import json, os, sys
e = os.environ
json.dump({
    "date": e["M_DATE"], "machine": e["M_MACHINE"], "disk": e["M_DISK"],
    "same_filesystem": e["M_SAME_FS"], "size_mib": int(e["M_SIZE"]), "rounds": int(e["M_ROUNDS"]),
    "ferrostack": {"commit": e["M_COMMIT"], "binary": e["M_BIN"], "status": e["M_F_STATUS"],
                   "hwm_kb": int(e["M_F_HWM"]), "idle_rss_kb": int(e["M_F_IDLE"])},
    "glance": {"version": e["M_G_VERSION"], "status": e["M_G_STATUS"], "server": e["M_G_SERVER"],
               "hwm_kb": int(e["M_G_HWM"]), "idle_rss_kb": int(e["M_G_IDLE"])},
}, open(sys.argv[1], "w"), indent=1, ensure_ascii=False)
EOF
step "Results"
python3 "$ROOT/bench/image/report.py" "$RUNS" "$META" | tee "$WORKSPACE/results.md"
note "written to $WORKSPACE/results.md (raw runs: $RUNS)"
{
  echo "## Images: Ferrostack vs Glance vs dd"
  echo
  cat "$ROOT/bench/image/doc_intro.md"
  echo
  sed '1s/^## /### /' "$WORKSPACE/results.md"
} | python3 "$ROOT/bench/doc_section.py" "$ROOT/docs/benchmarks.md" image
note "docs/benchmarks.md: image section rewritten"
