#!/usr/bin/env bash
# Block storage benchmark: blank volume create/delete (volumes/s, p50/p90/p99), a volume from a
# 1 GiB image against `qemu-img convert` of the same file on the same disk, snapshot create and
# delete, and volume attach/detach to a running guest. Run as `make bench-volume`. A private
# release-build Ferrostack (`ferrostack up`: API, volume manager with the file backend, compute
# agent on libvirt/QEMU TCG; no network agent) runs on a free port, on fresh state in a
# temporary directory; bench/volume/volume_bench.py measures and checks every result;
# bench/volume/report.py writes the block storage section of docs/benchmarks.md. Everything it
# starts is stopped on exit (also on failure or Ctrl-C), its guests destroyed, its files removed.
#
# Environment: BENCH_SHAPES ("1x100 8x25": CLIENTSxVOLUMES of blank volumes), BENCH_IMAGE_ROUNDS
# (5), BENCH_SNAPSHOT_ROUNDS (5), BENCH_ATTACH_ROUNDS (10), BENCH_PHASES ("blank image snapshot
# attach"), BENCH_POLL (0.05 s between status polls), BENCH_SKIP_BUILD=1 or FERROSTACK_BIN=PATH
# (use an existing binary), BENCH_WRITE_DOCS (1; 0 leaves the docs alone), BENCH_KEEP=1 (keep
# the temporary directory: config, log, raw results), FERROSTACK_GUEST_IMAGE_DIR
# (~/.cache/ferrostack/guest-image).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../../scripts/lib.sh
source "$ROOT/scripts/lib.sh"

SHAPES=${BENCH_SHAPES:-1x100 8x25}
IMAGE_ROUNDS=${BENCH_IMAGE_ROUNDS:-5}
SNAPSHOT_ROUNDS=${BENCH_SNAPSHOT_ROUNDS:-5}
ATTACH_ROUNDS=${BENCH_ATTACH_ROUNDS:-10}
PHASES=${BENCH_PHASES:-blank image snapshot attach}
POLL=${BENCH_POLL:-0.05}
WRITE_DOCS=${BENCH_WRITE_DOCS:-1}
KEEP=${BENCH_KEEP:-0}
GUEST_DIR=${FERROSTACK_GUEST_IMAGE_DIR:-$HOME/.cache/ferrostack/guest-image}
HERE=$ROOT/bench/volume
DOC=$ROOT/docs/benchmarks.md
NCPU=$(nproc)

WORK=$(mktemp -d /tmp/ferrostack-bench-volume.XXXXXX)
# QEMU runs as its own user and opens the instances' and the volumes' files under here.
chmod 755 "$WORK"
RESULTS=$WORK/results
mkdir -p "$RESULTS"
STARTED=() # process-group ids of what this script started
PREFIX=""  # libvirt domain name prefix of this cloud's guests

cleanup() {
  local rc=$? name
  stop_started 20
  # Guests a failure left behind: only this cloud's, by their name prefix.
  if [[ -n $PREFIX ]]; then
    for name in $(virsh -q -c qemu:///system list --all --name 2>/dev/null | grep "^$PREFIX" || true); do
      virsh -q -c qemu:///system destroy "$name" >/dev/null 2>&1 || true
      virsh -q -c qemu:///system undefine "$name" >/dev/null 2>&1 || true
    done
  fi
  # The volumes and images (GiBs) go in any case; config, log and results stay when kept.
  rm -rf "$WORK/volumes" "$WORK/scratch" "$WORK/image.raw" "$WORK/state/images" 2>/dev/null || true
  finish_work "$rc" "config, log, raw results"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- what the benchmark needs -------------------------------------------------------------
command -v curl >/dev/null || ensure_apt_packages curl
ensure_hypervisor
ensure_libvirtd
"$ROOT/scripts/build-guest-image.sh" >/dev/null
GUEST=$GUEST_DIR/disk.qcow2
[[ -f $GUEST ]] || die "no test guest image at $GUEST (scripts/build-guest-image.sh)"

bench_binary dated

need_kb=$((6 * 1048576))
avail_kb=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
((avail_kb > need_kb)) || die "$WORK has $((avail_kb / 1024)) MiB free; this needs about 6 GiB"

# --- the 1 GiB image ----------------------------------------------------------------------
# The test guest's disk (64 MiB: MBR, syslinux, a FAT file system with kernel and initramfs;
# 11 MiB of data) as raw, grown to 1 GiB, and every byte from the end of its data (rounded up
# to a MiB) to 1 GiB filled with random data: a disk that is mostly data, no holes, so neither
# qemu-img nor the file system can skip zeros.
IMAGE=$WORK/image.raw
if [[ " $PHASES " == *" image "* || " $PHASES " == *" snapshot "* ]]; then
  step "Making the 1 GiB image $IMAGE"
  qemu-img convert -q -f qcow2 -O raw "$GUEST" "$IMAGE"
  DATA_END=$(qemu-img map --output=json -f raw "$IMAGE" | python3 -c '
import json, sys
print(max(e["start"] + e["length"] for e in json.load(sys.stdin) if e["data"]))')
  DATA_MIB=$(((DATA_END + 1048575) / 1048576))
  dd if=/dev/urandom of="$IMAGE" bs=1M seek="$DATA_MIB" count=$((1024 - DATA_MIB)) \
    iflag=fullblock conv=notrunc status=none
  [[ $(stat -c %s "$IMAGE") == 1073741824 ]] || die "$IMAGE is not 1 GiB"
  ZERO_MIB=$(python3 - "$IMAGE" <<'EOF'
import sys
zero, n = bytes(1 << 20), 0
with open(sys.argv[1], "rb") as f:
    while block := f.read(1 << 20):
        n += block == zero
print(n)
EOF
)
  note "guest data in the first $DATA_MIB MiB, random data after; $ZERO_MIB of 1024 MiB blocks all zero"
fi

# --- Ferrostack ---------------------------------------------------------------------------
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
PREFIX=bvol$PORT-
mkdir -p "$WORK/instances" "$WORK/volumes"
chmod 755 "$WORK/instances" "$WORK/volumes"
cat >"$WORK/ferrostack.toml" <<EOF
state_dir = "$WORK/state"
[api]
listen = "127.0.0.1:$PORT"
public_url = "$URL"
[identity]
password_hash_rounds = 4
[log]
level = "info"
[compute]
host = "bench-volume-$PORT"
instance_name_template = "bvol$PORT-%08x"
instances_path = "$WORK/instances"
metadata_listen = "127.0.0.1:$(free_port)"
novncproxy_listen = "127.0.0.1:$(free_port)"
vif_plugging_timeout = 0
[network]
agent = false
[volume]
volumes_dir = "$WORK/volumes"
host = "bench-volume-$PORT"
quota_volumes = -1
quota_snapshots = -1
quota_gigabytes = -1
EOF
step "Starting Ferrostack $COMMIT in $WORK"
FERROSTACK_CONFIG=$WORK/ferrostack.toml FERROSTACK__NETWORK__AGENT=false \
  start_group "$WORK/server.log" "$FERROSTACK_BIN" up
SERVER_PID=$STARTED_PID
wait_ready "$URL/healthz" 120 || die "Ferrostack did not start; see $WORK/server.log"
note "Ferrostack on $URL, pid $SERVER_PID"

# --- measure ------------------------------------------------------------------------------
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START_S=$(date +%s)
DROP=()
[[ $(id -u) == 0 ]] && DROP=(--drop-caches)
step "Measuring: $PHASES"
python3 "$HERE/volume_bench.py" "$URL" --password-file "$WORK/state/admin-password" \
  --volumes-dir "$WORK/volumes" --work-dir "$WORK" --image-file "$IMAGE" --guest-image "$GUEST" \
  --shapes "$SHAPES" --image-rounds "$IMAGE_ROUNDS" --snapshot-rounds "$SNAPSHOT_ROUNDS" \
  --attach-rounds "$ATTACH_ROUNDS" --phases "$PHASES" --poll "$POLL" "${DROP[@]}" \
  --server-pid "$SERVER_PID" --server-log "$WORK/server.log" --json-out "$RESULTS/bench.json" >/dev/null ||
  die "the benchmark failed its checks (see above; log: $WORK/server.log)"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - START_S))

# --- report -------------------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
DISK=$(df -P "$WORK" | awk 'NR == 2 { print $1 }')
FSTYPE=$(df -PT "$WORK" | awk 'NR == 2 { print $2 }')
M_DATE=$(date -u '+%Y-%m-%d %H:%M UTC') \
  M_MACHINE="$NCPU cores ($CPU), $MEM_GB GiB, $(. /etc/os-release && echo "$PRETTY_NAME")" \
  M_DISK="$DISK ($FSTYPE)" M_COMMIT=$COMMIT M_QEMU="$(qemu-img --version | head -n 1)" \
  M_LOAD_BEFORE=$LOAD_BEFORE M_LOAD_AFTER=$LOAD_AFTER M_ELAPSED=$ELAPSED \
  M_DATA_MIB=${DATA_MIB:-} M_ZERO_MIB=${ZERO_MIB:-} \
  python3 - "$RESULTS/meta.json" <<'EOF'
import json, os, sys
e = os.environ
json.dump({
    "date": e["M_DATE"], "machine": e["M_MACHINE"], "disk": e["M_DISK"],
    "ferrostack_commit": e["M_COMMIT"], "qemu_img": e["M_QEMU"],
    "load_before": e["M_LOAD_BEFORE"], "load_after": e["M_LOAD_AFTER"],
    "elapsed_s": int(e["M_ELAPSED"]), "image_guest_mib": e["M_DATA_MIB"],
    "image_zero_mib": e["M_ZERO_MIB"],
}, open(sys.argv[1], "w"), indent=1, ensure_ascii=False)
EOF
bench_report volume "block storage"
