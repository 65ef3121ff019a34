# Shared shell helpers for the scripts in this directory.
set -euo pipefail
STATE_DIR=${FERROSTACK_STATE_DIR:-/var/lib/ferrostack}
CONFIG_FILE=${FERROSTACK_CONFIG:-/etc/ferrostack/ferrostack.toml}
LOG_FILE=${FERROSTACK_LOG:-/var/log/ferrostack/ferrostack.log}
PID_FILE=$STATE_DIR/ferrostack.pid
FERROSTACK_VENV=${FERROSTACK_VENV:-/opt/ferrostack/venv}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ferrostack/target}
export CARGO_TARGET_DIR

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Debian packages the cloud and its tests need (the network agent: iproute2, nftables,
# dnsmasq-base, procps for sysctl; its tests' guests: busybox-static).
APT_PACKAGES=(python3-venv python3-pip pkg-config libssl-dev curl qemu-utils
  iproute2 nftables dnsmasq-base procps busybox-static)

ensure_apt_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}" "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if ((${#missing[@]})); then
    step "Installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_rust() {
  command -v cargo >/dev/null || die "Rust (cargo) is missing: install a toolchain >= 1.94 with rustup, then run make up again."
}

# The openstack CLI (and pytest for the e2e tests) in a virtualenv.
ensure_venv() {
  if [[ ! -x $FERROSTACK_VENV/bin/openstack || ! -x $FERROSTACK_VENV/bin/pytest ]]; then
    step "Installing the openstack CLI into $FERROSTACK_VENV (a minute or two)"
    python3 -m venv "$FERROSTACK_VENV"
    "$FERROSTACK_VENV/bin/pip" install -q --upgrade pip
    "$FERROSTACK_VENV/bin/pip" install -q python-openstackclient openstacksdk pytest
  fi
  # `openstack resource provider ...` (placement) comes from the osc-placement plugin.
  if ! "$FERROSTACK_VENV/bin/python" -c 'import osc_placement' 2>/dev/null; then
    "$FERROSTACK_VENV/bin/pip" install -q osc-placement
  fi
}

# The hypervisor packages: QEMU, libvirt (daemon, client, headers), genisoimage (config drives).
HYPERVISOR_PACKAGES=(qemu-system-x86 libvirt-daemon-system libvirt-clients libvirt-dev genisoimage)

# QEMU and libvirt (the compute driver; libvirt-dev to build it). Gotcha (shared/GUIDE.md): the machine ships a backported
# qemu-utils 10 that Debian's qemu-system-x86 7.2 (and libvirt) cannot sit beside; apt then removes
# qemu-img, or refuses ("held broken packages") when qemu-utils is named without a version. So
# qemu-utils is pinned to qemu-system-x86's version in the same transaction (a downgrade from 10),
# together with libvirt (the compute driver needs it; libvirtd is not started here).
ensure_hypervisor() {
  if command -v qemu-system-x86_64 >/dev/null && qemu-img --version >/dev/null 2>&1 &&
    dpkg -s "${HYPERVISOR_PACKAGES[@]}" >/dev/null 2>&1; then
    return
  fi
  step "Installing qemu-system-x86, qemu-utils (same version) and libvirt"
  apt-get update -qq
  local version
  version=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
  [[ -n $version && $version != "(none)" ]] || die "apt knows no qemu-system-x86 package"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --allow-downgrades \
    "${HYPERVISOR_PACKAGES[@]}" "qemu-utils=$version" >/dev/null
  qemu-img --version >/dev/null || die "qemu-img does not run after installing qemu"
  note "$(qemu-img --version | head -n 1); $(qemu-system-x86_64 --version | head -n 1)"
}

# libvirtd and virtlogd (console logs go through it) for the compute driver; these machines have
# no systemd, so the daemons are started directly when they are not running.
ensure_libvirtd() {
  local i
  pgrep -x virtlogd >/dev/null || virtlogd -d
  pgrep -x libvirtd >/dev/null || libvirtd -d
  for ((i = 0; i < 50; i++)); do
    virsh -q -c qemu:///system version >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "libvirtd did not start (see /var/log/libvirt/libvirtd.log)"
}

# noVNC's browser client for the console proxy: the @novnc/novnc npm package (core/, vendor/)
# unpacked into DIR ([compute] novncproxy_web), fetched with npm once per version (the tarball is
# kept in ~/.cache/ferrostack/npm). Never vendored in the repository. Without npm or the registry
# it warns and returns 1: the console page then says what is missing; websockets work anyway.
NOVNC_VERSION=${NOVNC_VERSION:-1.7.0}
ensure_novnc() {
  local dir=$1 cache=$HOME/.cache/ferrostack/npm tarball tmp
  [[ -f $dir/core/rfb.js && $(cat "$dir/.novnc-version" 2>/dev/null) == "$NOVNC_VERSION" ]] && return 0
  if [[ -e $dir && ! -f $dir/.novnc-version ]] && [[ -n $(ls -A "$dir" 2>/dev/null) ]]; then
    printf '\033[33mwarning:\033[0m %s exists and is not an unpacked noVNC: left as it is\n' "$dir" >&2
    return 1
  fi
  tarball=$cache/novnc-novnc-$NOVNC_VERSION.tgz
  if [[ ! -s $tarball ]]; then
    if ! command -v npm >/dev/null; then
      printf '\033[33mwarning:\033[0m npm is missing: no noVNC client for the console proxy\n' >&2
      return 1
    fi
    mkdir -p "$cache"
    if ! (cd "$cache" && npm pack --silent "@novnc/novnc@$NOVNC_VERSION" >/dev/null 2>&1) || [[ ! -s $tarball ]]; then
      printf '\033[33mwarning:\033[0m npm pack @novnc/novnc@%s failed: no noVNC client for the console proxy\n' "$NOVNC_VERSION" >&2
      return 1
    fi
  fi
  mkdir -p "$(dirname "$dir")"
  tmp=$(mktemp -d "${dir%/}.unpack-XXXXXX")
  tar -xzf "$tarball" -C "$tmp"
  echo "$NOVNC_VERSION" >"$tmp/package/.novnc-version"
  chmod -R a+rX "$tmp/package"
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
  rmdir "$tmp"
  note "noVNC $NOVNC_VERSION client in $dir"
}

# RabbitMQ, the distributed bus ([bus] kind = "amqp"; its tests read FERROSTACK_TEST_AMQP_URL).
# These machines have no systemd: the node is started detached when it is not running.
ensure_rabbitmq() {
  local i
  if ! dpkg -s rabbitmq-server >/dev/null 2>&1; then
    step "Installing RabbitMQ"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  fi
  rabbitmqctl -q status >/dev/null 2>&1 && return 0
  rabbitmq-server -detached
  for ((i = 0; i < 60; i++)); do
    rabbitmqctl -q await_startup >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "RabbitMQ did not start (see /var/log/rabbitmq/)"
}

# Waits until `url` answers 200, or fails after `timeout` seconds.
wait_ready() {
  local url=$1 timeout=${2:-60} i
  for ((i = 0; i < timeout * 5; i++)); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

# Benchmarks: starts "$@" in a process group of its own (so a cleanup can stop its children
# too), logging to $1; sets STARTED_PID (= group id) and appends it to the STARTED array.
start_group() {
  local log=$1
  shift
  setsid "$@" >"$log" 2>&1 </dev/null &
  STARTED_PID=$!
  STARTED+=("$STARTED_PID")
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Benchmarks: stops what start_group started (the STARTED array): TERM to each process group
# (with `leader`, to its leader alone), then up to SECONDS (10) for each leader to exit before
# its whole group gets KILL.
# stop_started [SECONDS] [group|leader]
stop_started() {
  local seconds=${1:-10} target=${2:-group} pgid i
  for pgid in "${STARTED[@]}"; do
    if [[ $target == leader ]]; then
      kill -TERM "$pgid" 2>/dev/null || true
    else
      kill -TERM -- "-$pgid" 2>/dev/null || true
    fi
  done
  for pgid in "${STARTED[@]}"; do
    for ((i = 0; i < seconds * 5; i++)); do
      kill -0 "$pgid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$pgid" 2>/dev/null || true
  done
}

# Benchmarks, at the end of their exit trap: keeps the temporary directory $WORK (and says so,
# with WHAT it holds) after a failure (RC is not 0) or with KEEP=1, else removes it; then exits
# with RC.
# finish_work RC WHAT
finish_work() {
  local rc=$1
  if [[ $KEEP == 1 || $rc != 0 ]]; then
    note "kept $WORK ($2)"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}

# Benchmarks: the Ferrostack binary to measure. FERROSTACK_BIN when it is set, else this tree's
# release build, built first unless BENCH_SKIP_BUILD=1 (with `dated`, a binary that is not built
# says when it was). Sets FERROSTACK_BIN and COMMIT: HEAD's short hash, "+ uncommitted changes"
# when the crates or the Cargo files differ from it, and what the binary is when not built here.
# bench_binary [dated]
bench_binary() {
  local root note=
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if [[ -n ${FERROSTACK_BIN:-} ]]; then
    note=" (FERROSTACK_BIN=$FERROSTACK_BIN, not built from this tree)"
  else
    FERROSTACK_BIN=$CARGO_TARGET_DIR/release/ferrostack
    if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
      ensure_rust
      step "Building Ferrostack (release)"
      (cd "$root" && cargo build --release -q -p ferrostack)
    elif [[ ${1:-} == dated && -x $FERROSTACK_BIN ]]; then
      note=" (BENCH_SKIP_BUILD=1: the release binary built $(date -u -r "$FERROSTACK_BIN" '+%Y-%m-%d %H:%M UTC'))"
    fi
  fi
  [[ -x $FERROSTACK_BIN ]] || die "no Ferrostack binary at $FERROSTACK_BIN"
  COMMIT=$(git -C "$root" rev-parse --short HEAD)
  if [[ -n $(git -C "$root" status --porcelain -- crates Cargo.toml Cargo.lock) ]]; then
    COMMIT="$COMMIT + uncommitted changes"
  fi
  COMMIT=$COMMIT$note
}

# Benchmarks, at their end: prints the report $HERE/report.py makes of $RESULTS (kept there as
# section.md) and, with WRITE_DOCS=1, writes it as section ID of $DOC (the note calls it NAME).
# bench_report ID NAME
bench_report() {
  step "Results"
  python3 "$HERE/report.py" "$RESULTS" | tee "$RESULTS/section.md"
  if [[ $WRITE_DOCS == 1 ]]; then
    python3 "$(dirname "${BASH_SOURCE[0]}")/../bench/doc_section.py" "$DOC" "$1" <"$RESULTS/section.md"
    note "docs/benchmarks.md: $2 section rewritten"
  fi
}
