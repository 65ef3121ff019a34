#!/usr/bin/env bash
# Tempest API tests against Ferrostack: `scripts/tempest.sh identity` (make tempest-identity),
# `scripts/tempest.sh image` (make tempest-image), `scripts/tempest.sh compute` (make tempest-compute),
# `scripts/tempest.sh network` (make tempest-network), `scripts/tempest.sh volume`
# (make tempest-volume).
#
# Usage: scripts/tempest.sh [options] SERVICE
#        (SERVICE: identity, image, compute, network, volume)
#   --start            start a private Ferrostack (temp state dir, free port) and stop it at the
#                      end, as tests/e2e do; implied when FERROSTACK_BIN is set. Without it the
#                      cloud started by `make up` is used (FERROSTACK_CONFIG, default
#                      /etc/ferrostack/ferrostack.toml).
#   --strict           exit 1 when a test fails (default: failures are reported, exit 0)
#   --serial           run the tests one at a time (default: --concurrency 2, falling back to
#                      --serial when the concurrent run produces no results)
#   --concurrency N    workers for the concurrent run (default 2)
#   --regex RE         test selection (default '^tempest\.api\.<service>')
#   --exclude-regex RE tests to leave out (in addition to the out-of-scope tests listed at
#                      IMAGE_EXCLUDE_LIST / COMPUTE_EXCLUDE_LIST / NETWORK_EXCLUDE_LIST /
#                      VOLUME_EXCLUDE_LIST below)
#   --retry-failed     rerun the failing tests serially afterwards, to tell concurrency flakes
#                      from real failures (the summary is of the rerun's merged view)
#
# Environment: FERROSTACK_VENV (default /opt/ferrostack/venv; tempest is pip-installed into it
# when missing), FERROSTACK_BIN (binary for --start; default: build the debug binary),
# TEMPEST_WORKSPACE (default ~/.cache/ferrostack/tempest-SERVICE), TEMPEST_API_EXTENSIONS
# (identity extensions to advertise, default OS-INHERIT), TEMPEST_SECURITY_COMPLIANCE (0/1;
# --start only: start the cloud with devstack's security compliance settings, default 1),
# TEMPEST_HTTP_IMAGE (image: the URL web-download imports fetch; default a small qcow2 this
# script serves on localhost, which a --start cloud is configured to accept),
# TEMPEST_IMAGE_ENFORCE_SCOPE (image: [enforce_scope] glance, i.e. reads go through a
# reader-role user as in devstack; default true), FERROSTACK_GUEST_IMAGE_DIR (compute: the test
# guest, built by scripts/build-guest-image.sh; default ~/.cache/ferrostack/guest-image),
# TEMPEST_SCHEDULER_FILTERS (compute, --start: the cloud's [compute] enabled_filters; default
# devstack's list plus AggregateInstanceExtraSpecsFilter; tempest.conf's
# scheduler_enabled_filters is always the cloud's list), TEMPEST_CONF_EXTRA (a file appended
# to the generated tempest.conf, whose values then win: for experiments, e.g.
# `[auth] create_isolated_networks = false` to run compute without per-project networks;
# results of such runs are not the documented ones).
#
# Compute: the guest image is uploaded twice (image_ref, image_ref_alt) and two 256 MiB / 1 GiB
# flavors are created (flavor_ref, flavor_ref_alt), once per cloud (found by name afterwards).
# A --start cloud runs its own compute agent on the local libvirtd with its own host name and
# guest names (tempest<port>-%08x), raised quotas, and its leftover guests are removed at the end.
#
# Volume: a small raw image (1 MiB, public, `tempest-volume-image`) is uploaded once per cloud
# for the volume-from-image tests ([compute] image_ref). A --start cloud keeps its volumes in its
# own directory (removed at the end) and runs no compute or network agent.
#
# Output in the workspace: etc/tempest.conf, tempest.log (every request/response),
# run.log, results.subunit, results.csv, failing.txt, summary.txt, ferrostack.log (--start).
source "$(dirname "$0")/lib.sh"
REPO=$(cd "$(dirname "$0")/.." && pwd)

START=0 STRICT=0 SERIAL=0 RETRY=0 CONCURRENCY=2 REGEX="" EXCLUDE="" SERVICE=""
[[ -n ${FERROSTACK_BIN:-} ]] && START=1
while (($#)); do
  case $1 in
    --start) START=1 ;;
    --strict) STRICT=1 ;;
    --serial) SERIAL=1 ;;
    --retry-failed) RETRY=1 ;;
    --concurrency) CONCURRENCY=$2; shift ;;
    --concurrency=*) CONCURRENCY=${1#*=} ;;
    --regex) REGEX=$2; shift ;;
    --regex=*) REGEX=${1#*=} ;;
    --exclude-regex) EXCLUDE=$2; shift ;;
    --exclude-regex=*) EXCLUDE=${1#*=} ;;
    -h | --help) sed -n '2,/^source/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [[ -z $SERVICE ]] || die "one service at a time"; SERVICE=$1 ;;
  esac
  shift
done
SERVICE=${SERVICE:-identity}
case $SERVICE in
  identity) ;;
  image)
    # Tests of features Ferrostack's image service leaves out (docs/design/image-service.md)
    # that no tempest.conf option skips. Everything else out of scope is skipped by the
    # [image]/[image-feature-enabled] options written below:
    #   image cache (admin.test_image_caching)   image_caching_enabled = false
    #   locations / http store                   manage_locations = false, http_store_enabled = false
    #   multi-store, copy-image, store weights   the tests skip themselves: /v2/info/stores is 404
    #                                            in single-store mode; store_weight_enabled = false
    #   glance-download, remote workers          not in /v2/info/import; no alternate_image_endpoint
    #   format manifest (test_images_formats)    images_manifest_file unset
    #   volume-image dependency                  volume-feature-enabled defaults
    IMAGE_EXCLUDE_LIST=(
      # metadefs (/v2/metadefs/*): out of scope, and Tempest has no switch for them
      'tempest\.api\.image\.v2\.(admin\.)?test_images_metadefs'
      # the tasks API (POST/GET /v2/tasks, admin.test_image_task): out of scope; its only skip
      # condition is an empty http_image, which the web-download import test needs
      'tempest\.api\.image\.v2\.admin\.test_image_task'
    )
    IMAGE_EXCLUDE=$(IFS='|'; echo "${IMAGE_EXCLUDE_LIST[*]}")
    EXCLUDE=${EXCLUDE:+$EXCLUDE|}$IMAGE_EXCLUDE
    ;;
  compute)
    # Tests of features Ferrostack's compute service does not implement yet
    # (docs/design/compute-service.md §13) that no tempest.conf option skips. The rest is skipped
    # by [compute-feature-enabled] and [service_available] below (neutron on, with a network
    # per test project; cinder off: the volume classes skip themselves).
    COMPUTE_EXCLUDE_LIST=(
      # os-extensions (deprecated; not served)
      'tempest\.api\.compute\.test_extensions'
      # the compute /images proxy (≤2.35) and createImage snapshots
      'tempest\.api\.compute\.images\.'
      # os-hosts (≤2.42), usage audit logs, simple tenant usage, migrations,
      # server diagnostics, external events, quota classes: routes not served
      'tempest\.api\.compute\.admin\.test_hosts'
      'tempest\.api\.compute\.admin\.test_instance_usage_audit_log'
      'tempest\.api\.compute\.admin\.test_simple_tenant_usage'
      'tempest\.api\.compute\.admin\.test_migrations'
      'tempest\.api\.compute\.admin\.test_server_diagnostics'
      'tempest\.api\.compute\.admin\.test_server_external_events'
      'tempest\.api\.compute\.admin\.test_quotas\.QuotaClasses'
      # os-networks (the ≤2.35 network proxy; ComputeNetworksTest runs exactly when Neutron is
      # off, as a nova-network test; test_tenant_networks skips itself without Neutron)
      'tempest\.api\.compute\.(admin\.)?test_networks'
      # rebuild (not implemented): the tests whose PUT/show parts pass, then rebuild
      'tempest\.api\.compute\.admin\.test_servers\.ServersAdmin275Test\.test_rebuild_update_server_275'
      'tempest\.api\.compute\.servers\.test_server_actions\.ServerActionsTestJSON\.test_rebuild_server\b'
      'tempest\.api\.compute\.servers\.test_server_actions\.ServerActionsTestOtherA\.test_rebuild_server_in_stop_state'
      'tempest\.api\.compute\.servers\.test_servers\.ServerShowV247Test\.test_update_rebuild_list_server'
      'tempest\.api\.compute\.servers\.test_servers\.ServersListShow296Test\.test_list_show_update_rebuild_server_296'
      'tempest\.api\.compute\.servers\.test_servers_microversions\.ServerShowV25[47]Test\.test_rebuild_server'
      'tempest\.api\.compute\.admin\.test_servers\.ServersAdminTestJSON\.test_rebuild_server_in_error_state'
      'tempest\.api\.compute\.servers\.test_disk_config\.ServerDiskConfigTestJSON\.test_rebuild_server_with_(auto|manual)_disk_config'
      # Nova's proxies to Neutron (≤2.35: os-security-groups, os-security-group-rules,
      # os-floating-ips, os-tenant-networks) are not served; the floating IP classes make their
      # floating IPs through the proxy. Servers use Neutron's API for these.
      'tempest\.api\.compute\.(admin\.)?security_groups\.'
      'tempest\.api\.compute\.admin\.test_security_groups\.'
      'tempest\.api\.compute\.floating_ips\.'
      'tempest\.api\.compute\.test_tenant_networks'
      # Neutron's auto-allocated topology (`networks: auto` with no network) is not offered.
      'tempest\.api\.compute\.admin\.test_auto_allocate_network'
      # injectNetworkInfo (admin action): not served.
      'tempest\.api\.compute\.admin\.test_servers\.ServersAdminTestJSON\.test_inject_network_info'
    )
    COMPUTE_EXCLUDE=$(IFS='|'; echo "${COMPUTE_EXCLUDE_LIST[*]}")
    EXCLUDE=${EXCLUDE:+$EXCLUDE|}$COMPUTE_EXCLUDE
    ;;
  network)
    # API tests only: [network-feature-enabled] api_extensions lists exactly the extensions
    # crates/network serves, so tests of the others (agents, DHCP/L3 agent scheduling, metering,
    # DVR, port forwarding, service providers, QoS...) skip themselves. Left out here: tests whose
    # classes need a feature no option turns off.
    NETWORK_EXCLUDE_LIST=(
      # GET /v2.0/agents (the data plane agents come with the agents task)
      'tempest\.api\.network\.test_agent_management_negative'
      # /v2.0/service-providers is not served
      'tempest\.api\.network\.test_service_providers'
    )
    NETWORK_EXCLUDE=$(IFS='|'; echo "${NETWORK_EXCLUDE_LIST[*]}")
    EXCLUDE=${EXCLUDE:+$EXCLUDE|}$NETWORK_EXCLUDE
    ;;
  volume)
    # The features Ferrostack's volume service does not offer are skipped by the
    # [volume-feature-enabled] options and [service_available] nova = false written below
    # (backups, manage/unmanage, multi-backend, replication, attach to servers); the tests left
    # out here are those no option skips.
    VOLUME_EXCLUDE_LIST=(
      # groups, group types, group specs and group snapshots (/v3/groups, /v3/group_types,
      # /v3/group_snapshots): not offered, and Tempest has no switch for them
      'tempest\.api\.volume\.admin\.test_group(s|_types|_type_specs|_snapshots)\.'
      # volume transfers (/v3/os-volume-transfer, /v3/volume-transfers): not offered
      'tempest\.api\.volume\.test_volume_transfers\.'
      'tempest\.api\.volume\.admin\.test_volume_quotas\.VolumeQuotasAdminTestJSON\.test_quota_usage_after_volume_transfer'
      # volume encryption types (/v3/types/{id}/encryption): no encryption
      'tempest\.api\.volume\.admin\.test_volume_types\.VolumeTypesTest\.test_volume_type_encryption_create_get_update_delete'
      # freeze/thaw (replication): PUT /v3/os-services/freeze|thaw are not served
      'tempest\.api\.volume\.admin\.test_volume_services_negative\.VolumeServicesNegativeTest\.test_(freeze|thaw)_host_with_invalid_host'
    )
    VOLUME_EXCLUDE=$(IFS='|'; echo "${VOLUME_EXCLUDE_LIST[*]}")
    EXCLUDE=${EXCLUDE:+$EXCLUDE|}$VOLUME_EXCLUDE
    ;;
  *) die "no Tempest setup for '$SERVICE' yet (identity, image, compute, network and volume are built)" ;;
esac
REGEX=${REGEX:-"^tempest\.api\.$SERVICE"}
WORKSPACE=${TEMPEST_WORKSPACE:-$HOME/.cache/ferrostack/tempest-$SERVICE}
PY=$FERROSTACK_VENV/bin/python
TEMPEST=$FERROSTACK_VENV/bin/tempest
STESTR=$FERROSTACK_VENV/bin/stestr

# --- Tempest ------------------------------------------------------------------------------
if [[ ! -x $TEMPEST || ! -x $STESTR ]]; then
  ensure_apt_packages
  [[ -x $FERROSTACK_VENV/bin/pip ]] || python3 -m venv "$FERROSTACK_VENV"
  step "Installing tempest into $FERROSTACK_VENV"
  "$FERROSTACK_VENV/bin/pip" install -q tempest
fi
note "$("$TEMPEST" --version 2>/dev/null | head -n1)"

# Reads keys from `ferrostack config show` (TOML) as shell assignments.
read_config() {  # BIN
  FERROSTACK_CONFIG=$CONFIG_FILE "$1" config show | "$PY" -c '
import sys, tomllib, shlex
c = tomllib.loads(sys.stdin.read()); i = c.get("identity", {})
for k, v in {"PUBLIC_URL": c["api"]["public_url"].rstrip("/"), "CLOUD_STATE_DIR": c["state_dir"],
             "REGION": c.get("bootstrap", {}).get("region", "RegionOne"),
             "LOCKOUT_ATTEMPTS": i.get("lockout_failure_attempts", 0),
             "LOCKOUT_DURATION": i.get("lockout_duration", 0),
             "UNIQUE_LAST": i.get("unique_last_password_count", 0),
             "MIN_AGE": i.get("minimum_password_age", 0),
             "PASSWORD_REGEX": i.get("password_regex", ""),
             "SCHEDULER_FILTERS": (lambda f: f if isinstance(f, str) else ",".join(f))(
                 c.get("compute", {}).get("enabled_filters", []))}.items():
    print(f"{k}={shlex.quote(str(v))}")'
}

# --- The cloud ----------------------------------------------------------------------------
# The filters a --start cloud runs (devstack's NOVA_FILTERS, plus the aggregate extra specs
# filter Ferrostack implements).
TEMPEST_SCHEDULER_FILTERS=${TEMPEST_SCHEDULER_FILTERS:-AvailabilityZoneFilter,ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,SameHostFilter,DifferentHostFilter,AggregateInstanceExtraSpecsFilter}
CLOUD_PID="" RUN_ROOT="" HTTP_PID="" INSTANCES_DIR="" VOLUMES_DIR="" GUEST_PREFIX=""
# The guests a --start cloud left behind (only its own: named by its instance_name_template).
remove_guests() {
  [[ -n $GUEST_PREFIX ]] || return 0
  local d
  for d in $(virsh -q -c qemu:///system list --all --name 2>/dev/null | grep "^$GUEST_PREFIX" || true); do
    virsh -q -c qemu:///system destroy "$d" >/dev/null 2>&1 || true
    virsh -q -c qemu:///system undefine --nvram "$d" >/dev/null 2>&1 ||
      virsh -q -c qemu:///system undefine "$d" >/dev/null 2>&1 || true
  done
}
stop_cloud() {
  if [[ -n $HTTP_PID ]] && kill -0 "$HTTP_PID" 2>/dev/null; then
    kill -TERM "$HTTP_PID" 2>/dev/null || true
    wait "$HTTP_PID" 2>/dev/null || true
  fi
  HTTP_PID=""
  if [[ -n $CLOUD_PID ]] && kill -0 "$CLOUD_PID" 2>/dev/null; then
    kill -TERM "$CLOUD_PID"
    for _ in $(seq 1 150); do kill -0 "$CLOUD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$CLOUD_PID" 2>/dev/null && kill -KILL "$CLOUD_PID"
    wait "$CLOUD_PID" 2>/dev/null || true
  fi
  CLOUD_PID=""
  if [[ -n $RUN_ROOT && $SERVICE == network && -f ${CONFIG_FILE:-} && -n ${FERROSTACK_BIN:-} ]]; then
    # Only a --start cloud's (never make up's): the bridges, namespaces, dnsmasq and nftables
    # tables its network agent made.
    FERROSTACK_CONFIG=$CONFIG_FILE "$FERROSTACK_BIN" network-cleanup >>"$RUN_ROOT/ferrostack.log" 2>&1 ||
      echo "network-cleanup failed: see $WORKSPACE/ferrostack.log" >&2
  fi
  if [[ -n $RUN_ROOT && -d $RUN_ROOT ]]; then
    [[ -f $RUN_ROOT/ferrostack.log ]] && cp "$RUN_ROOT/ferrostack.log" "$WORKSPACE/ferrostack.log" 2>/dev/null
    rm -rf "$RUN_ROOT"
  fi
  remove_guests
  [[ -n $INSTANCES_DIR && -d $INSTANCES_DIR ]] && rm -rf "$INSTANCES_DIR"
  INSTANCES_DIR=""
  [[ -n $VOLUMES_DIR && -d $VOLUMES_DIR ]] && rm -rf "$VOLUMES_DIR"
  VOLUMES_DIR=""
}
trap stop_cloud EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORKSPACE"
if ((START)); then
  if [[ -z ${FERROSTACK_BIN:-} ]]; then
    ensure_rust
    step "Building ferrostack (debug)"
    (cd "$REPO" && cargo build -p ferrostack --quiet)
    FERROSTACK_BIN=$CARGO_TARGET_DIR/debug/ferrostack
  fi
  [[ -x $FERROSTACK_BIN ]] || die "FERROSTACK_BIN=$FERROSTACK_BIN is not an executable"
  RUN_ROOT=$(mktemp -d /tmp/ferrostack-tempest-XXXXXX)
  free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  PORT=$(free_port)
  CONFIG_FILE=$RUN_ROOT/ferrostack.toml
  if [[ $SERVICE == compute ]]; then
    ensure_libvirtd
    # QEMU runs as its own user: the instances directory is outside the private state dir.
    INSTANCES_DIR=$(mktemp -d /tmp/ferrostack-tempest-instances-XXXXXX)
    chmod 0755 "$INSTANCES_DIR"
    GUEST_PREFIX=tempest$PORT-
    NOVNC_DIR=$HOME/.cache/ferrostack/novnc
    ensure_novnc "$NOVNC_DIR" || true
  fi
  if [[ $SERVICE == volume ]]; then
    # The file backend's volumes, outside the private state dir (QEMU opens them as its own
    # user on a cloud with compute; kept the same here).
    VOLUMES_DIR=$(mktemp -d /tmp/ferrostack-tempest-volumes-XXXXXX)
    chmod 0755 "$VOLUMES_DIR"
  fi
  {
    printf 'state_dir = "%s"\n[api]\nlisten = "127.0.0.1:%s"\npublic_url = "http://127.0.0.1:%s"\n' \
      "$RUN_ROOT/state" "$PORT" "$PORT"
    printf '[identity]\npassword_hash_rounds = 4\n'
    if [[ ${TEMPEST_SECURITY_COMPLIANCE:-1} == 1 ]]; then
      # devstack's defaults when KEYSTONE_SECURITY_COMPLIANCE_ENABLED=True
      printf 'lockout_failure_attempts = 2\nlockout_duration = 10\nunique_last_password_count = 2\n'
    fi
    if [[ $SERVICE == image ]]; then
      # web-download from the local HTTP server below (any port; Glance's default is 80/443;
      # loopback only when allowed by name).
      printf '[image]\nweb_download_allowed_ports = []\nweb_download_allowed_hosts = ["localhost"]\n'
    fi
    if [[ $SERVICE == network ]]; then
      # API tests only: no compute agent, and no listener that another cloud may hold. Its own
      # host name: the network agent owns (and on stop removes) only the devices it tagged.
      printf '[compute]\nhost = "tempest-%s"\nagent = false\nmetadata_listen = ""\nnovncproxy_listen = ""\n' "$PORT"
    fi
    if [[ $SERVICE == volume ]]; then
      # API tests only: the volume manager on its own directory, no compute or network agent,
      # no listener that another cloud may hold. Quotas: Cinder's defaults (each test class has
      # its own project; the quota tests set their own limits).
      printf '[compute]\nhost = "tempest-%s"\nagent = false\nmetadata_listen = ""\nnovncproxy_listen = ""\n' "$PORT"
      printf '[network]\nagent = false\n'
      printf '[volume]\nvolumes_dir = "%s"\n' "$VOLUMES_DIR"
    fi
    if [[ $SERVICE == compute ]]; then
      # Its own host and guest names (other clouds may share this libvirtd), fast heartbeats,
      # and quotas no parallel worker reaches (each test class has its own project; the quota
      # tests set their own limits).
      printf '[compute]\nhost = "tempest-%s"\ninstance_name_template = "%s%%08x"\n' "$PORT" "$GUEST_PREFIX"
      printf 'instances_path = "%s"\nmetadata_listen = "127.0.0.1:%s"\n' "$INSTANCES_DIR" "$(free_port)"
      printf 'report_interval = 2\nshutdown_timeout = 20\n'
      # Its own console proxy port, and noVNC's client from the cache (test_novnc fetches the page).
      printf 'novncproxy_listen = "127.0.0.1:%s"\nnovncproxy_web = "%s"\n' "$(free_port)" "$NOVNC_DIR"
      printf 'quota_instances = 100\nquota_cores = 200\nquota_ram = 512000\n'
      # devstack's scheduler filters plus the aggregate extra specs one; tempest.conf's
      # scheduler_enabled_filters is read back from the cloud's config below.
      printf 'enabled_filters = "%s"\n' "$TEMPEST_SCHEDULER_FILTERS"
    fi
  } >"$CONFIG_FILE"
  step "Starting a private ferrostack on 127.0.0.1:$PORT ($FERROSTACK_BIN)"
  # Its own process group, so that Ctrl-C reaches this script's trap and not the server first.
  FERROSTACK_CONFIG=$CONFIG_FILE setsid "$FERROSTACK_BIN" up >"$RUN_ROOT/ferrostack.log" 2>&1 &
  CLOUD_PID=$!
  eval "$(read_config "$FERROSTACK_BIN")"
  for _ in $(seq 1 300); do
    kill -0 "$CLOUD_PID" 2>/dev/null || { tail -n 30 "$RUN_ROOT/ferrostack.log" >&2; die "ferrostack exited"; }
    curl -fsS -o /dev/null "$PUBLIC_URL/healthz" 2>/dev/null && break
    sleep 0.2
  done
  wait_ready "$PUBLIC_URL/healthz" 1 || { tail -n 30 "$RUN_ROOT/ferrostack.log" >&2; die "ferrostack did not become ready"; }
else
  BIN=$(command -v ferrostack || true)
  [[ -n $BIN ]] || die "ferrostack is not installed: run make up first, or use --start / FERROSTACK_BIN"
  eval "$(read_config "$BIN")"
  wait_ready "$PUBLIC_URL/healthz" 2 ||
    die "no cloud answers at $PUBLIC_URL (config $CONFIG_FILE): run make up first, or use --start"
fi
[[ -r $CLOUD_STATE_DIR/admin-password ]] || die "cannot read $CLOUD_STATE_DIR/admin-password"
ADMIN_PASSWORD=$(<"$CLOUD_STATE_DIR/admin-password")
note "cloud at $PUBLIC_URL (state $CLOUD_STATE_DIR)"

# --- Workspace and tempest.conf -----------------------------------------------------------
if [[ ! -f $WORKSPACE/.stestr.conf ]]; then
  step "Creating the Tempest workspace $WORKSPACE"
  # Not registered in ~/.tempest/workspace.yaml (names there are global); the script cds into it.
  wsfile=$(mktemp)
  if [[ -z $(ls -A "$WORKSPACE") ]]; then
    (cd /tmp && "$TEMPEST" init --workspace-path "$wsfile" "$WORKSPACE" >/dev/null)
  else  # `tempest init` wants an empty directory: build it aside, then move it in
    tmpws=$(mktemp -d -u /tmp/tempest-ws-XXXXXX)
    (cd /tmp && "$TEMPEST" init --workspace-path "$wsfile" "$tmpws" >/dev/null)
    cp -a "$tmpws/." "$WORKSPACE/" && rm -rf "$tmpws"
    sed -i "s#$tmpws#$WORKSPACE#g" "$WORKSPACE/.stestr.conf"
  fi
  rm -f "$wsfile"
fi
mkdir -p "$WORKSPACE/etc"

# Image: web-download imports (ImportImagesTest.test_image_web_download_import) fetch
# [image] http_qcow2_image. Instead of the Internet, a valid 256 KiB qcow2 (64 MiB virtual,
# empty) served from the workspace by python's http.server on localhost.
HTTP_IMAGE=${TEMPEST_HTTP_IMAGE:-}
if [[ $SERVICE == image && -z $HTTP_IMAGE ]]; then
  mkdir -p "$WORKSPACE/http"
  "$PY" - "$WORKSPACE/http/tempest.qcow2" <<'PYEOF'
import struct, sys
C, size = 1 << 16, 64 << 20  # 64 KiB clusters; virtual size
# qcow2 v2: header | refcount table | refcount block | L1 table (all zero: nothing allocated)
hdr = struct.pack(">IIQIIQIIQQIIQ", 0x514649FB, 2, 0, 0, 16, size, 0,
                  -(-size // (C * (C // 8))), 3 * C, 1 * C, 1, 0, 0)
img = bytearray(4 * C)
img[: len(hdr)] = hdr
img[C : C + 8] = struct.pack(">Q", 2 * C)
for i in range(4):
    img[2 * C + 2 * i : 2 * C + 2 * i + 2] = struct.pack(">H", 1)
open(sys.argv[1], "wb").write(img)
PYEOF
  HTTP_PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$PY" -m http.server --bind 127.0.0.1 --directory "$WORKSPACE/http" "$HTTP_PORT" \
    >"$WORKSPACE/http.log" 2>&1 </dev/null &
  HTTP_PID=$!
  wait_ready "http://127.0.0.1:$HTTP_PORT/tempest.qcow2" 10 || die "the local image server did not start ($WORKSPACE/http.log)"
  HTTP_IMAGE=http://localhost:$HTTP_PORT/tempest.qcow2
  note "web-download source $HTTP_IMAGE"
  ((START)) || note "(the cloud must allow it: [image] web_download_allowed_ports = [] and web_download_allowed_hosts = [\"localhost\"])"
fi

# Compute: the test guest as two public images and two small flavors (found by name when a
# previous run on this cloud created them).
if [[ $SERVICE == compute ]]; then
  GUEST_DIR=${FERROSTACK_GUEST_IMAGE_DIR:-$HOME/.cache/ferrostack/guest-image}
  step "Test guest image ($GUEST_DIR)"
  "$REPO/scripts/build-guest-image.sh" "$GUEST_DIR" >/dev/null
  step "Images and flavors for Tempest"
  eval "$(OS_PASSWORD=$ADMIN_PASSWORD "$PY" - "$PUBLIC_URL/identity" "$REGION" "$GUEST_DIR/disk.qcow2" <<'PYEOF'
import os, sys, shlex, openstack
auth_url, region, disk = sys.argv[1:4]
conn = openstack.connect(auth_url=auth_url, username="admin", password=os.environ["OS_PASSWORD"],
                         project_name="admin", user_domain_id="default",
                         project_domain_id="default", region_name=region,
                         identity_api_version="3")
out = {}
for var, name in (("IMAGE_REF", "tempest-guest"), ("IMAGE_REF_ALT", "tempest-guest-alt")):
    image = next(iter(conn.image.images(name=name)), None)
    if image is None or image.status != "active":
        if image is not None:
            conn.image.delete_image(image)
        image = conn.image.create_image(name=name, filename=disk, disk_format="qcow2",
                                        container_format="bare", visibility="public",
                                        wait=True)
    out[var] = image.id
# name, ram (MiB), disk (GiB), vcpus: the guest boots in 256 MiB; disk >= 1 (disk 0 forbids
# non-admin image boots)
for var, (name, ram, disk_gb, vcpus) in (("FLAVOR_REF", ("tempest.nano", 256, 1, 1)),
                                         ("FLAVOR_REF_ALT", ("tempest.nano-alt", 256, 2, 1))):
    flavor = next((f for f in conn.compute.flavors(is_public=None) if f.name == name), None)
    if flavor is None:
        flavor = conn.compute.create_flavor(name=name, ram=ram, disk=disk_gb, vcpus=vcpus,
                                            is_public=True)
    out[var] = flavor.id
for k, v in out.items():
    print(f"{k}={shlex.quote(v)}")
PYEOF
  )"
  note "images $IMAGE_REF, $IMAGE_REF_ALT; flavors $FLAVOR_REF, $FLAVOR_REF_ALT"
fi

# Volume: a small raw image for the volume-from-image tests (found by name when a previous run
# on this cloud uploaded it), and what the cloud's block storage API says about itself: its
# newest microversion, its pool's protocol and vendor, its extensions.
if [[ $SERVICE == volume ]]; then
  step "Image and block storage facts for Tempest"
  eval "$(OS_PASSWORD=$ADMIN_PASSWORD "$PY" - "$PUBLIC_URL" "$REGION" "$WORKSPACE/tempest-volume.raw" <<'PYEOF'
import os, sys, shlex, openstack
public_url, region, disk = sys.argv[1:4]
conn = openstack.connect(auth_url=public_url + "/identity", username="admin",
                         password=os.environ["OS_PASSWORD"], project_name="admin",
                         user_domain_id="default", project_domain_id="default",
                         region_name=region, identity_api_version="3")
name = "tempest-volume-image"
image = next(iter(conn.image.images(name=name)), None)
if image is None or image.status != "active":
    if image is not None:
        conn.image.delete_image(image)
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    image = conn.image.create_image(name=name, filename=disk, disk_format="raw",
                                    container_format="bare", visibility="public", wait=True)
    os.unlink(disk)
base = public_url + "/volume/v3"
get = lambda path, **kw: conn.session.get(base + path, endpoint_filter=None, **kw).json()
version = get("/", authenticated=False)["versions"][0]
pool = get("/scheduler-stats/get_pools?detail=true")["pools"][0]["capabilities"]
extensions = [e["alias"] for e in get("/extensions")["extensions"]]
out = {"IMAGE_REF": image.id, "VOLUME_MIN_MV": version["min_version"],
       "VOLUME_MAX_MV": version["version"], "STORAGE_PROTOCOL": pool["storage_protocol"],
       "VENDOR_NAME": pool["vendor_name"], "VOLUME_BACKEND": pool["volume_backend_name"],
       "VOLUME_EXTENSIONS": ",".join(extensions)}
for k, v in out.items():
    print(f"{k}={shlex.quote(v)}")
PYEOF
  )"
  note "image $IMAGE_REF; microversions $VOLUME_MIN_MV-$VOLUME_MAX_MV; pool $STORAGE_PROTOCOL/$VENDOR_NAME"
fi

SECURITY_COMPLIANCE=false
((LOCKOUT_ATTEMPTS > 0 || UNIQUE_LAST > 0 || MIN_AGE > 0)) && SECURITY_COMPLIANCE=true
cat >"$WORKSPACE/etc/tempest.conf" <<CONF
# Written by scripts/tempest.sh for $PUBLIC_URL; rewritten on every run.
[DEFAULT]
debug = true
log_file = tempest.log
log_dir = $WORKSPACE

[oslo_concurrency]
lock_path = $WORKSPACE/tempest_lock

[auth]
admin_username = admin
admin_password = $ADMIN_PASSWORD
admin_project_name = admin
admin_domain_name = Default
use_dynamic_credentials = true
# Compute: each test project gets its own network, subnet and router, as in devstack.
create_isolated_networks = $([[ $SERVICE == compute ]] && echo true || echo false)

[identity]
uri_v3 = $PUBLIC_URL/identity/v3
auth_version = v3
region = $REGION
v3_endpoint_type = public
admin_role = admin
default_domain_id = default
user_lockout_failure_attempts = $LOCKOUT_ATTEMPTS
user_lockout_duration = $LOCKOUT_DURATION
user_unique_last_password_count = $UNIQUE_LAST
user_minimum_password_age = $MIN_AGE

[identity-feature-enabled]
# Options this Tempest does not know (federation, oauth1, ...) are ignored by oslo.config;
# they are kept so the file says what Ferrostack offers.
api_v2 = false
api_v3 = true
api_extensions = ${TEMPEST_API_EXTENSIONS:-OS-INHERIT}
trust = false
federation = false
oauth1 = false
external_idp = false
application_credentials = true
access_rules = false
project_tags = true
security_compliance = $SECURITY_COMPLIANCE
immutable_user_source = false
domain_specific_drivers = false

[service_available]
nova = $([[ $SERVICE == compute ]] && echo true || echo false)
glance = $([[ $SERVICE == image || $SERVICE == compute || $SERVICE == volume ]] && echo true || echo false)
neutron = $([[ $SERVICE == network || $SERVICE == volume || $SERVICE == compute ]] && echo true || echo false)
cinder = $([[ $SERVICE == volume ]] && echo true || echo false)
swift = false
heat = false
horizon = false
placement = false

[validation]
run_validation = false
CONF
if [[ $SERVICE == image ]]; then
  # docs/design/image-service.md §13. Test users: dynamic credentials get the `member` role
  # ([auth] tempest_roles stays empty, so the reader user of enforce_scope has only `reader`).
  cat >>"$WORKSPACE/etc/tempest.conf" <<CONF

[enforce_scope]
glance = ${TEMPEST_IMAGE_ENFORCE_SCOPE:-true}

[image]
catalog_type = image
endpoint_type = public
# Glance's default formats less vhdx and ploop. The first container format is used for most
# images; ListUserImagesTest uploads random bytes as the first container format with the first
# six disk formats (qcow2 raw ami ari aki vhd), so it must be one that is not format-inspected
# (only bare is, design §12): ami.
disk_formats = qcow2,raw,ami,ari,aki,vhd,vmdk,vdi,iso
container_formats = ami,bare,ari,aki,ovf,ova
http_image = $HTTP_IMAGE
http_qcow2_image = $HTTP_IMAGE
hashing_algorithm = sha512
# Images are small here; do not wait Tempest's default 300 s for an import that failed.
build_timeout = 60
build_interval = 1
image_caching_enabled = false

[image-feature-enabled]
# api_v1 is gone from this Tempest (ignored); kept so the file says what Ferrostack offers.
api_v1 = false
api_v2 = true
import_image = true
os_glance_reserved = true
image_conversion = false
# false: ListUserImagesTest (random bytes declared as qcow2/vhd/... in an ami container) runs
# instead of being skipped; Ferrostack only inspects bare containers.
image_format_enforcement = false
do_secure_hash = true
manage_locations = false
http_store_enabled = false
store_weight_enabled = false
CONF
fi
if [[ $SERVICE == compute ]]; then
  # docs/design/compute-service.md §13. Servers go on the test project's own network (no
  # fixed_network_name: the one network of the project is used); [validation] is off, so
  # Tempest's SSHABLE waits become ACTIVE waits.
  cat >>"$WORKSPACE/etc/tempest.conf" <<CONF

[enforce_scope]
nova = true

[network]
project_network_cidr = 10.100.0.0/16
project_network_mask_bits = 28

[compute]
catalog_type = compute
endpoint_type = public
image_ref = $IMAGE_REF
image_ref_alt = $IMAGE_REF_ALT
flavor_ref = $FLAVOR_REF
flavor_ref_alt = $FLAVOR_REF_ALT
min_microversion = 2.1
max_microversion = 2.96
# QEMU/TCG guests: ACTIVE in 5-20 s, slower when both workers boot at once.
build_timeout = 300
build_interval = 1

[compute-feature-enabled]
# What Ferrostack's compute service implements (crates/compute/src/api).
console_output = true
config_drive = true
disk_config = true
enable_instance_password = true
metadata_service = false
change_password = false
resize = false
pause = false
suspend = false
shelve = false
shelve_migrate = false
cold_migration = false
live_migration = false
live_migrate_back_and_forth = false
block_migration_for_live_migration = false
rescue = false
stable_rescue = false
snapshot = false
interface_attach = false
personality = false
attach_encrypted_volume = false
swap_volume = false
volume_backed_live_migration = false
volume_multiattach = false
# noVNC consoles through the console proxy (test_novnc; its class also needs
# create_default_network, so it skips itself while neutron is false).
vnc_console = true
spice_console = false
serial_console = false
ide_bus = false
unified_limits = false
hostname_fqdn_sanitization = false
# The cloud's [compute] enabled_filters, so Tempest skips what the scheduler does not do.
scheduler_enabled_filters = $SCHEDULER_FILTERS

[image-feature-enabled]
api_v2 = true
CONF
fi
if [[ $SERVICE == network ]]; then
  # The external network floating IP tests use (devstack's `public`: flat on the `public`
  # physical network, 172.24.4.0/24), found by name when a previous run on this cloud made it.
  step "External network for Tempest"
  PUBLIC_NETWORK_ID=$(OS_PASSWORD=$ADMIN_PASSWORD "$PY" - "$PUBLIC_URL/identity" "$REGION" <<'PYEOF'
import os, sys, openstack
auth_url, region = sys.argv[1:3]
conn = openstack.connect(auth_url=auth_url, username="admin", password=os.environ["OS_PASSWORD"],
                         project_name="admin", user_domain_id="default",
                         project_domain_id="default", region_name=region,
                         identity_api_version="3")
net = conn.network.find_network("public")
if net is None:
    net = conn.network.create_network(name="public", is_router_external=True,
                                      provider_network_type="flat",
                                      provider_physical_network="public")
    conn.network.create_subnet(network_id=net.id, name="public-subnet", ip_version=4,
                               cidr="172.24.4.0/24", enable_dhcp=False)
print(net.id)
PYEOF
  )
  note "public network $PUBLIC_NETWORK_ID"
  NETWORK_EXTENSIONS=$(curl -fsS -H "X-Auth-Token: $(OS_PASSWORD=$ADMIN_PASSWORD "$PY" -c '
import os, sys, openstack
c = openstack.connect(auth_url=sys.argv[1] + "/identity", username="admin", password=os.environ["OS_PASSWORD"],
                      project_name="admin", user_domain_id="default", project_domain_id="default",
                      region_name=sys.argv[2], identity_api_version="3")
print(c.auth_token)' "$PUBLIC_URL" "$REGION")" "$PUBLIC_URL/networking/v2.0/extensions" |
    "$PY" -c 'import json, sys; print(",".join(e["alias"] for e in json.load(sys.stdin)["extensions"]))')
  cat >>"$WORKSPACE/etc/tempest.conf" <<CONF

[enforce_scope]
neutron = true

[network]
catalog_type = network
endpoint_type = public
project_network_cidr = 10.100.0.0/16
project_network_mask_bits = 28
project_network_v6_cidr = 2001:db8::/48
project_network_v6_mask_bits = 64
public_network_id = $PUBLIC_NETWORK_ID
floating_network_name = public
build_timeout = 60
build_interval = 1

[network-feature-enabled]
# Exactly what GET /v2.0/extensions lists.
api_extensions = $NETWORK_EXTENSIONS
ipv6 = true
ipv6_subnet_attributes = true
port_security = true
floating_ips = true
CONF
fi
if [[ $SERVICE == volume ]]; then
  # What Ferrostack's block storage service offers (crates/volume): one `file` backend, no
  # backups, no manage/unmanage, no replication; nova is off, so the tests that attach volumes
  # to servers skip themselves. neutron is on (the cloud serves the networking API; no network is
  # created: create_isolated_networks is false), so the classes with create_default_network
  # (VolumesActionsTest, VolumesSnapshotTestJSON) run their API-only tests.
  cat >>"$WORKSPACE/etc/tempest.conf" <<CONF

[enforce_scope]
cinder = true

[volume]
catalog_type = block-storage
endpoint_type = public
min_microversion = $VOLUME_MIN_MV
max_microversion = $VOLUME_MAX_MV
volume_size = 1
volume_size_extend = 1
build_timeout = 120
build_interval = 1
# As the backend's pool reports them (GET /v3/scheduler-stats/get_pools?detail=true).
storage_protocol = $STORAGE_PROTOCOL
vendor_name = $VENDOR_NAME
# Formats of upload-to-image (os-volume_upload_image): raw and qcow2.
disk_format = raw,qcow2
# The one backend's volume_backend_name (multi-backend tests skip: multi_backend = false).
backend_names = $VOLUME_BACKEND

[volume-feature-enabled]
multi_backend = false
backup = false
snapshot = true
clone = true
manage_snapshot = false
manage_volume = false
replication = false
# Exactly what GET /v3/extensions lists.
api_extensions = $VOLUME_EXTENSIONS
extend_attached_volume = false
extend_attached_encrypted_volume = false
extend_volume_with_snapshot = true
enable_volume_image_dep_tests = true
# Not options of this Tempest (ignored by oslo.config); kept so the file says what Ferrostack
# offers: no revert to snapshot, no active-active clusters.
volume_revert = false
cluster_active_active = false

[compute]
# The volume-from-image tests' image.
image_ref = $IMAGE_REF

[image-feature-enabled]
api_v2 = true
CONF
fi
if [[ -n ${TEMPEST_CONF_EXTRA:-} ]]; then
  [[ -r $TEMPEST_CONF_EXTRA ]] || die "TEMPEST_CONF_EXTRA=$TEMPEST_CONF_EXTRA is not readable"
  { printf '\n# From TEMPEST_CONF_EXTRA=%s (later values win)\n' "$TEMPEST_CONF_EXTRA"; cat "$TEMPEST_CONF_EXTRA"; } \
    >>"$WORKSPACE/etc/tempest.conf"
  note "tempest.conf extended with $TEMPEST_CONF_EXTRA"
fi
chmod 0600 "$WORKSPACE/etc/tempest.conf"

# --- Run ----------------------------------------------------------------------------------
cd "$WORKSPACE"
rm -f tempest.log run.log results*.subunit results.csv failing*.txt summary.txt
run_args=(--regex "$REGEX")
[[ -n $EXCLUDE ]] && run_args+=(--exclude-regex "$EXCLUDE")

next_run() { cat .stestr/next-stream 2>/dev/null || echo 0; }
results_count() {  # tests recorded by a run that started as run number $1 (0 when there is none)
  (($(next_run) > $1)) || { echo 0; return; }
  "$STESTR" last --subunit 2>/dev/null | "$FERROSTACK_VENV/bin/subunit-ls" 2>/dev/null | wc -l
}

# Tempest's own output (with every traceback) goes to run.log; the terminal gets one line a test.
tempest_run() {
  local rc
  set +e
  "$TEMPEST" run "$@" 2>&1 | tee -a run.log |
    grep --line-buffered -E '^\{[0-9]+\} |^Ran: |^ - (Passed|Failed|Skipped)'
  rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

run_rc=0 first=$(next_run)
if ((SERIAL)); then
  step "tempest run --regex '$REGEX' --serial"
  tempest_run "${run_args[@]}" --serial || run_rc=$?
else
  step "tempest run --regex '$REGEX' --concurrency $CONCURRENCY"
  tempest_run "${run_args[@]}" --concurrency "$CONCURRENCY" || run_rc=$?
  if [[ $(results_count "$first") == 0 ]]; then
    step "The concurrent run recorded no results (exit $run_rc); retrying with --serial"
    run_rc=0
    tempest_run "${run_args[@]}" --serial || run_rc=$?
  fi
fi
cloud_alive() {
  if [[ -n $RUN_ROOT ]]; then kill -0 "$CLOUD_PID" 2>/dev/null; else wait_ready "$PUBLIC_URL/healthz" 2; fi
}
if ! cloud_alive; then
  printf '\033[31mwarning:\033[0m the cloud at %s went away during the run; failures with\n' "$PUBLIC_URL" >&2
  printf '    "Connection refused" come from that, not from the API (log: %s).\n' \
    "${RUN_ROOT:+$WORKSPACE/ferrostack.log}${RUN_ROOT:-$LOG_FILE}" >&2
  [[ -n $RUN_ROOT ]] && tail -n 3 "$RUN_ROOT/ferrostack.log" >&2
fi
[[ $(results_count "$first") != 0 ]] || { tail -n 20 run.log >&2; die "tempest recorded no results (exit $run_rc); see $WORKSPACE/run.log"; }
"$STESTR" last --subunit >results.subunit 2>/dev/null || true
"$PY" "$REPO/tempest/summarize.py" results.subunit --failing failing.txt >/dev/null

streams=(results.subunit)
if ((RETRY)) && [[ -s failing.txt ]] && cloud_alive; then
  step "Rerunning the $(wc -l <failing.txt) failing tests (or classes) serially"
  sed 's/[].()[]/\\&/g; s/^/^/' failing.txt >failing-regex.txt
  tempest_run --serial --include-list failing-regex.txt || true
  "$STESTR" last --subunit >results-rerun.subunit 2>/dev/null || true
  streams+=(results-rerun.subunit)  # its results replace the first run's
fi

echo
"$PY" "$REPO/tempest/summarize.py" "${streams[@]}" --log tempest.log --csv results.csv --failing failing.txt |
  tee summary.txt
echo
note "workspace $WORKSPACE: summary.txt, results.csv, results.subunit, failing.txt,"
note "run.log (tempest output, tracebacks), tempest.log (requests and responses)${RUN_ROOT:+, ferrostack.log}"
note "rerun one test: cd $WORKSPACE && $TEMPEST run --serial --regex 'TEST_ID'"

if ((STRICT)) && [[ -s failing.txt ]]; then
  exit 1
fi
exit 0
