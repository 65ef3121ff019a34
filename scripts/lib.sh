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

# Debian packages the cloud and its tests need.
APT_PACKAGES=(python3-venv python3-pip pkg-config libssl-dev curl qemu-utils)

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

# Waits until `url` answers 200, or fails after `timeout` seconds.
wait_ready() {
  local url=$1 timeout=${2:-60} i
  for ((i = 0; i < timeout * 5; i++)); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}
