#!/usr/bin/env bash
# End-to-end tests: the real openstack CLI against a freshly started Ferrostack.
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
ensure_venv
ensure_libvirtd
cargo build -p ferrostack --quiet
export FERROSTACK_BIN=$CARGO_TARGET_DIR/debug/ferrostack
export OPENSTACK_CLI=$FERROSTACK_VENV/bin/openstack
exec "$FERROSTACK_VENV/bin/pytest" -q -p no:cacheprovider tests/e2e "$@"
