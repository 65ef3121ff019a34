#!/usr/bin/env bash
# Real-guest boot latency (issue 4): from the API accepting `POST /servers` to the libvirt domain
# running, with libvirt's own "defined → started" step (QEMU starting) reported apart. Run as
# `make bench-boot` or `scripts/bench-boot.sh [BOOTS]` (default 10 boots after a first one that
# fetches the image). A private release-build Ferrostack boots the test guest one server at a
# time; see bench/boot/boot_latency.py.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/scripts/lib.sh"
cd "$ROOT"
ensure_venv
ensure_libvirtd
scripts/build-guest-image.sh >/dev/null
cargo build --release -p ferrostack --quiet
export FERROSTACK_BIN=$CARGO_TARGET_DIR/release/ferrostack
export OPENSTACK_CLI=$FERROSTACK_VENV/bin/openstack
# The e2e harness logs at debug level; a benchmark runs at the default level.
export FERROSTACK__LOG__LEVEL=info
exec "$FERROSTACK_VENV/bin/python" bench/boot/boot_latency.py "${1:-10}"
