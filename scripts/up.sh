#!/usr/bin/env bash
# make up: install what is missing, build, initialise, start the all-in-one cloud in the
# background, wait until it is ready and write ~/.config/openstack/clouds.yaml.
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."

[[ $(id -u) == 0 ]] || die "make up sets up system services: run it as root."
ensure_apt_packages
ensure_hypervisor
ensure_rust
ensure_venv
step "Test guest image and hypervisor (QEMU, libvirt)"
GUEST_DIR=${FERROSTACK_GUEST_IMAGE_DIR:-$HOME/.cache/ferrostack/guest-image}
scripts/build-guest-image.sh "$GUEST_DIR" >/dev/null
ensure_libvirtd

step "Building ferrostack (release)"
cargo build --release -p ferrostack --quiet
BIN=$CARGO_TARGET_DIR/release/ferrostack
install -m 0755 "$BIN" /usr/local/bin/ferrostack
ln -sf "$FERROSTACK_VENV/bin/openstack" /usr/local/bin/openstack

if [[ -f $PID_FILE ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
  step "Ferrostack is already running (pid $(cat "$PID_FILE")); restarting it with the new build"
  scripts/down.sh
fi

step "Initialising $STATE_DIR"
mkdir -p "$STATE_DIR" "$(dirname "$CONFIG_FILE")" "$(dirname "$LOG_FILE")"
chmod 0700 "$STATE_DIR"
if [[ ! -f $CONFIG_FILE ]]; then
  cat >"$CONFIG_FILE" <<TOML
# Ferrostack configuration. Every key is optional; \`ferrostack config show\` prints the
# effective values with their defaults.
state_dir = "$STATE_DIR"

[api]
listen = "0.0.0.0:8080"
public_url = "http://127.0.0.1:8080"

[network]
# The external network "public" lives on br-ex, which the cloud creates with the gateway
# address; external_nat masquerades its traffic out of the host's uplink (guests reach the
# internet through router1). FERROSTACK_EXTERNAL_NAT=false at the first \`make up\` leaves it off.
bridge_mappings = { public = "br-ex" }
bridge_addresses = { br-ex = "172.24.4.1/24" }
external_nat = ${FERROSTACK_EXTERNAL_NAT:-true}
TOML
  note "wrote $CONFIG_FILE"
fi
export FERROSTACK_CONFIG=$CONFIG_FILE
ferrostack identity fernet-setup >/dev/null
# The console proxy's browser client ([compute] novncproxy_web, default <state_dir>/novnc).
ensure_novnc "$STATE_DIR/novnc" || note "the console page will say what is missing"

step "Starting ferrostack (log: $LOG_FILE)"
nohup ferrostack up >>"$LOG_FILE" 2>&1 &
echo $! >"$PID_FILE"
PUBLIC_URL=$(ferrostack config show | sed -n 's/^public_url = "\(.*\)"/\1/p')
if ! wait_ready "$PUBLIC_URL/healthz" 60; then
  tail -n 30 "$LOG_FILE" >&2
  die "ferrostack did not become ready; see $LOG_FILE"
fi
note "ready at $PUBLIC_URL"

step "Writing ~/.config/openstack/clouds.yaml"
mkdir -p ~/.config/openstack
"$FERROSTACK_VENV/bin/python" scripts/write_clouds_yaml.py ~/.config/openstack/clouds.yaml "$PUBLIC_URL/identity" \
  "$(cat "$STATE_DIR/admin-password")" "$(cat "$STATE_DIR/demo-password")"

OS_CLIENT_CONFIG_FILE=~/.config/openstack/clouds.yaml scripts/seed.sh ferrostack "$GUEST_DIR"

cat <<MSG

Ferrostack is running.
  openstack --os-cloud ferrostack token issue          # admin
  openstack --os-cloud ferrostack-demo project list --my-projects   # demo, a member of project demo
  openstack --os-cloud ferrostack catalog list
  openstack --os-cloud ferrostack-demo server create --image ferrostack-guest --flavor m1.nano --wait vm1
  openstack --os-cloud ferrostack-demo console log show vm1
  openstack --os-cloud ferrostack-demo console url show vm1     # noVNC in a browser
  export OS_CLOUD=ferrostack                             # to drop --os-cloud
Logs: $LOG_FILE    Config: $CONFIG_FILE    Stop: make down
MSG
