#!/usr/bin/env bash
# Builds the tiny test guest that Ferrostack's compute/network/volume end-to-end tests boot, from
# Debian packages only (no internet): a Debian kernel (package downloaded with `apt-get download`,
# unpacked with `dpkg-deb -x`, never installed) and a busybox-static initramfs whose /init is
# tests/guest-image/init. Outputs, in OUT_DIR (default ~/.cache/ferrostack/guest-image):
#   vmlinuz, initrd.img   kernel + ramdisk (Glance kernel_id/ramdisk_id images, qemu -kernel/-initrd)
#   disk.qcow2            whole-disk image: MBR + syslinux + FAT partition with the same two files
#   manifest.txt          kernel package/version/release and the disk image's kernel command line
# Outputs whose inputs did not change are reused. The guest's console contract is documented in
# tests/guest-image/README.md.
#
# Usage: scripts/build-guest-image.sh [--selftest] [OUT_DIR]
#   --selftest  also boot both forms under qemu (TCG) and check the console markers.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

REPO_DIR=$(cd "$(dirname "$0")/.." && pwd)
GUEST_SRC=$REPO_DIR/tests/guest-image
SELF=$REPO_DIR/scripts/build-guest-image.sh

# Tools the build needs (Debian packages).
BUILD_PACKAGES=(fdisk dosfstools mtools syslinux syslinux-common busybox-static cpio kmod)

# Kernel modules (and, computed from the package, their dependencies) loaded by /init, in order.
GUEST_MODULES=(
  virtio_pci virtio_net virtio_blk  # virtio transport, NIC, disks (vdX)
  virtio_scsi sd_mod                # virtio-scsi disks (sdX)
  sr_mod ata_piix ahci              # IDE/SATA CD-ROM: Nova's config drive (sr0)
  isofs vfat nls_cp437 nls_ascii nls_utf8 # config drive file systems (iso9660, vfat)
)
# Command line of the whole-disk image (syslinux). The last console= is /dev/console.
DISK_CMDLINE="console=tty0 console=ttyS0,115200n8"
DISK_MB=64 # virtual size of disk.qcow2; the FAT partition fills it from 1 MiB on
SYSLINUX_MBR=/usr/lib/syslinux/mbr/mbr.bin
BUSYBOX=/bin/busybox
SYSTEM_PYTHON=/usr/bin/python3 # for the self-test's metadata responder (not a venv/pyenv shim)

usage() {
  awk 'NR > 1 && /^#/ && !/shellcheck/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$SELF"
  exit "${1:-0}"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
human_size() { du -h --apparent-size "$1" | cut -f1; }

# --- packages -----------------------------------------------------------------------------------

ensure_build_tools() {
  ensure_apt_packages "${BUILD_PACKAGES[@]}"
  if [[ ! -x $BUSYBOX ]] || ! "$BUSYBOX" --list | grep -x udhcpc >/dev/null; then
    die "$BUSYBOX is not busybox-static"
  fi
  qemu-img --version >/dev/null 2>&1 || ensure_hypervisor
}

# --- kernel package -----------------------------------------------------------------------------

# Sets KERNEL_PKG and KERNEL_DEB: the Debian kernel that linux-image-amd64 points at (or
# $FERROSTACK_GUEST_KERNEL_PKG), downloaded once into OUT_DIR/src. Offline, a cached .deb is used.
fetch_kernel_deb() {
  local src=$OUT_DIR/src version cached
  mkdir -p "$src"
  KERNEL_PKG=${FERROSTACK_GUEST_KERNEL_PKG:-}
  if [[ -z $KERNEL_PKG ]]; then
    KERNEL_PKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
      awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  fi
  if [[ -z $KERNEL_PKG ]]; then
    apt-get update -qq || true
    KERNEL_PKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
      awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  fi
  if [[ -n $KERNEL_PKG ]]; then
    version=$(apt-cache policy "$KERNEL_PKG" | awk '/Candidate:/ {print $2}')
    KERNEL_DEB=$src/${KERNEL_PKG}_${version}_amd64.deb
    if [[ ! -s $KERNEL_DEB ]]; then
      step "Downloading $KERNEL_PKG $version"
      # As root, apt warns that it downloads "unsandboxed": harmless, filtered out.
      (cd "$src" && apt-get download -qq "$KERNEL_PKG=$version") 2>&1 | grep -v unsandboxed >&2 || true
      [[ -s $KERNEL_DEB ]] || die "apt-get download $KERNEL_PKG=$version did not give $KERNEL_DEB"
    fi
    # Keep only the kernel in use.
    find "$src" -name 'linux-image-*.deb' ! -path "$KERNEL_DEB" -delete
  else
    cached=$(find "$src" -name 'linux-image-*.deb' | sort | tail -n 1)
    [[ -n $cached ]] || die "no linux-image-amd64 in apt's lists and no cached kernel in $src"
    KERNEL_DEB=$cached
    KERNEL_PKG=$(dpkg-deb -f "$KERNEL_DEB" Package)
    note "apt has no kernel package list; using the cached $KERNEL_DEB"
  fi
  KERNEL_DEB_SHA=$(sha "$KERNEL_DEB")
}

# Unpacks the kernel package once per run into WORK/kernel and sets KVER (e.g. 6.1.0-56-amd64).
unpack_kernel() {
  [[ -d $WORK/kernel ]] && return
  step "Unpacking $(basename "$KERNEL_DEB")"
  dpkg-deb -x "$KERNEL_DEB" "$WORK/kernel"
  KVER=$(ls "$WORK/kernel/lib/modules")
  [[ -f $WORK/kernel/boot/vmlinuz-$KVER ]] || die "no /boot/vmlinuz-$KVER in $KERNEL_DEB"
  depmod -b "$WORK/kernel" "$KVER"
}

# --- outputs ------------------------------------------------------------------------------------

# Each output has a sidecar OUTPUT.inputs with the digest of what it was built from.
up_to_date() { [[ -s $1 && -f $1.inputs && $(cat "$1.inputs") == "$2" ]]; }
mark_built() { echo "$2" >"$1.inputs"; }
digest() { printf '%s\n' "$@" | sha256sum | cut -d' ' -f1; }

build_vmlinuz() {
  local out=$OUT_DIR/vmlinuz inputs
  inputs=$(digest "deb=$KERNEL_DEB_SHA")
  if up_to_date "$out" "$inputs"; then note "vmlinuz is up to date"; return; fi
  unpack_kernel
  step "vmlinuz ($KVER)"
  cp "$WORK/kernel/boot/vmlinuz-$KVER" "$out.tmp"
  mv "$out.tmp" "$out"
  mark_built "$out" "$inputs"
}

# Module files (relative to lib/modules/KVER) for GUEST_MODULES with their dependencies, in load
# order, each once. Accelerated x86 crypto variants (softdeps of sd_mod) are left out: TCG's CPU
# lacks their instructions, the generic versions are there.
module_load_order() {
  local mod line
  for mod in "${GUEST_MODULES[@]}"; do
    modprobe -d "$WORK/kernel" -S "$KVER" --show-depends "$mod" ||
      die "module $mod is not in $KERNEL_PKG"
  done | while read -r line; do
    [[ $line == insmod\ * ]] || continue
    line=${line#insmod }
    line=${line%% *}
    echo "${line#"$WORK/kernel/lib/modules/$KVER/"}"
  done | grep -v '^kernel/arch/x86/crypto/' | awk '!seen[$0]++'
}

build_initrd() {
  local out=$OUT_DIR/initrd.img inputs stage ko applet
  inputs=$(digest "deb=$KERNEL_DEB_SHA" "busybox=$(sha "$BUSYBOX")" "init=$(sha "$GUEST_SRC/init")" \
    "udhcpc=$(sha "$GUEST_SRC/udhcpc.script")" "recipe=$(sha "$SELF")")
  if up_to_date "$out" "$inputs"; then note "initrd.img is up to date"; return; fi
  unpack_kernel
  step "initrd.img (busybox-static, /init, ${#GUEST_MODULES[@]} modules + dependencies)"
  stage=$WORK/initramfs
  rm -rf "$stage"
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,mnt,root}

  # busybox and a link for each applet (bin/sh, sbin/udhcpc, usr/bin/wget, ...).
  cp "$BUSYBOX" "$stage/bin/busybox"
  while read -r applet; do
    [[ $applet == bin/busybox || -e $stage/$applet ]] || ln -s /bin/busybox "$stage/$applet"
  done < <("$BUSYBOX" --list-full)

  install -m 0755 "$GUEST_SRC/init" "$stage/init"
  install -m 0755 "$GUEST_SRC/udhcpc.script" "$stage/etc/udhcpc.script"
  # The kernel opens /dev/console before /init runs (devtmpfs is mounted only by /init).
  mknod -m 0600 "$stage/dev/console" c 5 1
  mknod -m 0666 "$stage/dev/null" c 1 3

  # Modules, their load order for /init, and depmod's files so that `modprobe` works too.
  mkdir -p "$stage/lib/modules/$KVER"
  module_load_order >"$stage/lib/modules/load-order"
  while read -r ko; do
    install -D -m 0644 "$WORK/kernel/lib/modules/$KVER/$ko" "$stage/lib/modules/$KVER/$ko"
  done <"$stage/lib/modules/load-order"
  cp "$WORK/kernel/lib/modules/$KVER"/modules.{builtin,builtin.modinfo,order} "$stage/lib/modules/$KVER/"
  depmod -b "$stage" "$KVER"
  note "modules: $(sed 's:.*/::; s/\.ko$//' "$stage/lib/modules/load-order" | tr '\n' ' ')"

  # A reproducible newc cpio (fixed owner and times), gzip without a name or time stamp.
  find "$stage" -exec touch -h -d @0 {} +
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
    cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9 -n >"$out.tmp"
  mv "$out.tmp" "$out"
  mark_built "$out" "$inputs"
}

# Whole-disk image built without mounting anything: the FAT partition is a separate file
# (mkfs.vfat, mcopy, syslinux --install), then written into a raw disk partitioned with sfdisk,
# syslinux's MBR in front, converted to qcow2.
build_disk() {
  local out=$OUT_DIR/disk.qcow2 inputs part raw part_mb=$((DISK_MB - 1))
  inputs=$(digest "vmlinuz=$(sha "$OUT_DIR/vmlinuz")" "initrd=$(sha "$OUT_DIR/initrd.img")" \
    "mbr=$(sha "$SYSLINUX_MBR")" "syslinux=$(sha "$(command -v syslinux)")" "recipe=$(sha "$SELF")")
  if up_to_date "$out" "$inputs"; then note "disk.qcow2 is up to date"; return; fi
  step "disk.qcow2 (MBR + syslinux + FAT16, $DISK_MB MiB virtual)"
  part=$WORK/part.img
  raw=$WORK/disk.raw
  rm -f "$part" "$raw"

  # Fixed volume id and time stamps (mkfs --invariant, SOURCE_DATE_EPOCH for mtools, which
  # syslinux --install uses too): the same inputs give the same disk.qcow2.
  export SOURCE_DATE_EPOCH=946684800 # 2000-01-01, FAT cannot store 1970
  truncate -s "${part_mb}M" "$part"
  mkfs.vfat --invariant -F 16 -n FERROSTACK -i 46455252 "$part" >/dev/null
  cat >"$WORK/syslinux.cfg" <<EOF
DEFAULT ferrostack
PROMPT 0
TIMEOUT 0
LABEL ferrostack
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND $DISK_CMDLINE
EOF
  MTOOLS_SKIP_CHECK=1 mcopy -i "$part" "$OUT_DIR/vmlinuz" "$OUT_DIR/initrd.img" "$WORK/syslinux.cfg" ::/
  syslinux --install "$part"

  truncate -s "${DISK_MB}M" "$raw"
  sfdisk --quiet "$raw" <<EOF
label: dos
label-id: 0x46455252
start=2048, type=e, bootable
EOF
  dd if="$part" of="$raw" bs=1M seek=1 conv=notrunc,sparse status=none
  dd if="$SYSLINUX_MBR" of="$raw" bs=440 count=1 conv=notrunc status=none
  qemu-img convert -f raw -O qcow2 "$raw" "$out.tmp"
  mv "$out.tmp" "$out"
  mark_built "$out" "$inputs"
}

write_manifest() {
  local kver
  kver=${KVER:-$(sed -n 's/^kernel_release=//p' "$OUT_DIR/manifest.txt" 2>/dev/null)}
  [[ -n $kver ]] || { unpack_kernel && kver=$KVER; }
  cat >"$OUT_DIR/manifest.txt.tmp" <<EOF
kernel_package=$KERNEL_PKG
kernel_deb=$(basename "$KERNEL_DEB")
kernel_release=$kver
disk_cmdline=$DISK_CMDLINE
EOF
  mv "$OUT_DIR/manifest.txt.tmp" "$OUT_DIR/manifest.txt"
}

build_all() {
  ensure_build_tools
  mkdir -p "$OUT_DIR"
  fetch_kernel_deb
  build_vmlinuz
  build_initrd
  build_disk
  write_manifest
  local f
  for f in vmlinuz initrd.img disk.qcow2; do
    printf '%-11s %s (%s)\n' "$f" "$OUT_DIR/$f" "$(human_size "$OUT_DIR/$f")"
  done
}

# --- self-test ----------------------------------------------------------------------------------

QEMU_PIDS=()
stop_qemus() {
  local pid
  for pid in "${QEMU_PIDS[@]}"; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  QEMU_PIDS=()
  return 0
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_for LOG REGEX TIMEOUT_S: waits until the console log has, after its first SINCE lines, a
# line matching REGEX (grep -E); prints the seconds since BOOT_START_MS.
SINCE=0
wait_for() {
  local log=$1 regex=$2 deadline=$(($(now_ms) + $3 * 1000))
  # The serial console ends lines with \r\n. (grep without -q reads all its input: with
  # pipefail, an early exit would fail the pipeline through tr's SIGPIPE.)
  while ! { tail -n +$((SINCE + 1)) "$log" | tr -d '\r'; } 2>/dev/null | grep -E "$regex" >/dev/null; do
    # Give up at the deadline, or at once when the qemu is gone (crashed, or stopped after a
    # failed boot check).
    if (($(now_ms) > deadline)) || ((${#QEMU_PIDS[@]} == 0)) || ! kill -0 "${QEMU_PIDS[-1]}" 2>/dev/null; then
      return 1
    fi
    sleep 0.2
  done
  printf '%d.%01d' $((($(now_ms) - BOOT_START_MS) / 1000)) $(((($(now_ms) - BOOT_START_MS) % 1000) / 100))
}

# expect NAME LOG REGEX TIMEOUT_S: wait_for, reported as one line of the results. A failed
# "*.boot" check stops the qemu, so that the checks after it fail at once.
expect() {
  local t
  if t=$(wait_for "$2" "$3" "$4"); then
    note "ok   $1 ($t s)"
    TIMES[$1]=$t
  else
    note "FAIL $1: no line matching '$3' within $4 s (console: $2)"
    FAILURES=$((FAILURES + 1))
    [[ $1 != *.boot ]] || stop_qemus
  fi
}

# hmp SOCKET COMMAND...: runs human monitor commands on a running qemu.
hmp() {
  "$SYSTEM_PYTHON" - "$@" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(2)
for cmd in sys.argv[2:]:
    s.sendall(cmd.encode() + b"\n")
    time.sleep(0.5)
try:
    s.recv(65536)
except OSError:
    pass
s.close()
EOF
}

# start_qemu NAME ARGS...: boots qemu (TCG, 256 MiB, no KVM) with two user-mode NICs, the serial
# console going to SELFTEST_DIR/NAME.console.log. restrict=on: slirp forwards nothing to the
# outside, only its own DHCP and the guestfwd rule reach anything.
#   n0: slirp's default 10.0.2.0/24, the guest gets 10.0.2.15
#   n1: 169.254.0.0/16, the guest gets 169.254.2.15; 169.254.169.254:80 is forwarded to
#       fake-metadata.py (one process per connection)
# In restricted mode slirp's DHCP offers no router (and no DNS), so the ip lines say "gw none".
start_qemu() {
  local name=$1
  shift
  local log=$SELFTEST_DIR/$name.console.log
  local responder="$SYSTEM_PYTHON $GUEST_SRC/fake-metadata.py $SELFTEST_DIR/metadata"
  [[ $responder != *,* ]] || die "paths with commas cannot go in a qemu -netdev option: $responder"
  rm -f "$log" "$SELFTEST_DIR/$name.monitor"
  BOOT_START_MS=$(now_ms)
  SINCE=0
  qemu-system-x86_64 -machine accel=tcg -nographic -m 256 -no-reboot \
    -serial "file:$log" -monitor "unix:$SELFTEST_DIR/$name.monitor,server,nowait" \
    -netdev user,id=n0,restrict=on,ipv6=off -device virtio-net-pci,netdev=n0 \
    -netdev "user,id=n1,restrict=on,ipv6=off,net=169.254.0.0/16,guestfwd=tcp:169.254.169.254:80-cmd:$responder" \
    -device virtio-net-pci,netdev=n1 \
    "$@" </dev/null >"$SELFTEST_DIR/$name.qemu.log" 2>&1 &
  QEMU_PIDS+=($!)
  note "qemu pid $! ($name), console: $log"
}

selftest() {
  ensure_hypervisor
  command -v "$SYSTEM_PYTHON" >/dev/null || die "$SYSTEM_PYTHON is needed for the metadata responder"
  SELFTEST_DIR=$OUT_DIR/selftest
  rm -rf "$SELFTEST_DIR"
  mkdir -p "$SELFTEST_DIR/metadata"
  FAILURES=0
  declare -gA TIMES=()
  local uuid=4f1e9e31-6a7b-4b5e-9c1a-5e1f0c7a2b10 token k_log d_log
  token=st$RANDOM$RANDOM
  local tcg_boot=120

  # Metadata as Nova serves it: "keys" (nested, with its own "name") before the top-level name.
  cat >"$SELFTEST_DIR/metadata/meta_data.json" <<EOF
{"random_seed": "c2VsZnRlc3Q=", "uuid": "$uuid", "availability_zone": "nova", "keys": [{"name": "key-1", "type": "ssh", "data": "ssh-ed25519 AAAA"}], "hostname": "selftest-vm", "launch_index": 0, "devices": [], "meta": {"name": "not-this-one"}, "project_id": "p1", "name": "selftest vm"}
EOF
  printf 'hello from user_data write-mark=vda:%s\nsecond line\n' "ud-$token" >"$SELFTEST_DIR/metadata/user_data"
  # Volumes: two blank ones, one to hot-plug that already carries a mark written on the host.
  truncate -s 16M "$SELFTEST_DIR/vol1.raw" "$SELFTEST_DIR/vol2.raw"
  truncate -s 8M "$SELFTEST_DIR/hot.raw"
  printf 'FERROSTACK-MARK:host-%s\n' "$token" | dd of="$SELFTEST_DIR/hot.raw" conv=notrunc status=none
  # A config drive as Nova builds it (iso9660, label config-2), with another uuid.
  mkdir -p "$SELFTEST_DIR/configdrive/openstack/latest"
  sed "s/$uuid/cd-$uuid/" "$SELFTEST_DIR/metadata/meta_data.json" \
    >"$SELFTEST_DIR/configdrive/openstack/latest/meta_data.json"
  genisoimage -quiet -J -r -V config-2 -o "$SELFTEST_DIR/configdrive.iso" "$SELFTEST_DIR/configdrive"

  step "Self-test 1/2: kernel + initrd (-kernel/-initrd), two blank volumes, then a hot-plug"
  k_log=$SELFTEST_DIR/kernel.console.log
  start_qemu kernel -kernel "$OUT_DIR/vmlinuz" -initrd "$OUT_DIR/initrd.img" \
    -append "console=ttyS0 write-mark=vdb:cl-$token" \
    -drive "file=$SELFTEST_DIR/vol1.raw,if=virtio,format=raw" \
    -drive "file=$SELFTEST_DIR/vol2.raw,if=virtio,format=raw"
  expect kernel.boot "$k_log" '^FERROSTACK-GUEST: boot' "$tcg_boot"
  expect kernel.modules "$k_log" '^FERROSTACK-GUEST: modules loaded=[0-9]+ failed=$' 30
  expect kernel.ip "$k_log" '^FERROSTACK-GUEST: ip eth0 10\.0\.2\.15/24 gw none$' 60
  expect kernel.ip2 "$k_log" '^FERROSTACK-GUEST: ip eth1 169\.254\.2\.15/16 gw none$' 60
  expect kernel.metadata "$k_log" "^FERROSTACK-GUEST: metadata uuid=$uuid name=selftest vm hostname=selftest-vm\$" 90
  expect kernel.metadata_json "$k_log" '^FERROSTACK-GUEST: metadata-json-end' 5
  expect kernel.user_data "$k_log" '^FERROSTACK-GUEST: user_data hello from user_data write-mark=' 20
  expect kernel.configdrive_none "$k_log" '^FERROSTACK-GUEST: configdrive none$' 30
  expect kernel.disks "$k_log" '^FERROSTACK-GUEST: disks vda:32768 vdb:32768$' 10
  expect kernel.write_mark_cmdline "$k_log" "^FERROSTACK-GUEST: wrote-mark vdb cl-$token\$" 20
  expect kernel.write_mark_user_data "$k_log" "^FERROSTACK-GUEST: wrote-mark vda ud-$token\$" 20
  SINCE=$(wc -l <"$k_log") # from here on, only lines printed after the hot-plug count
  hmp "$SELFTEST_DIR/kernel.monitor" \
    "drive_add 0 if=none,id=hot0,format=raw,file=$SELFTEST_DIR/hot.raw" \
    "device_add virtio-blk-pci,drive=hot0,id=hotdev0"
  expect kernel.hotplug "$k_log" '^FERROSTACK-GUEST: disks vda:32768 vdb:32768 vdc:16384$' 30
  expect kernel.hotplug_mark "$k_log" "^FERROSTACK-GUEST: mark vdc FERROSTACK-MARK:host-$token\$" 10
  SINCE=$(wc -l <"$k_log")
  hmp "$SELFTEST_DIR/kernel.monitor" "device_del hotdev0" \
    "netdev_add user,id=n2,restrict=on,ipv6=off,net=10.0.3.0/24" \
    "device_add virtio-net-pci,netdev=n2,id=hotnic0"
  expect kernel.unplug "$k_log" '^FERROSTACK-GUEST: disks vda:32768 vdb:32768$' 30
  expect kernel.hotplug_nic "$k_log" '^FERROSTACK-GUEST: ip eth2 10\.0\.3\.15/24 gw none$' 30
  stop_qemus
  # The marks reached the volume files (the guest flushed them before saying so).
  [[ $(head -c 100 "$SELFTEST_DIR/vol1.raw" | head -n 1) == "FERROSTACK-MARK:ud-$token" ]] ||
    { note "FAIL vol1.raw does not hold the user_data mark"; FAILURES=$((FAILURES + 1)); }

  step "Self-test 2/2: whole disk (-drive if=virtio, qcow2 overlay), vol1 as vdb, config drive CD-ROM"
  d_log=$SELFTEST_DIR/disk.console.log
  qemu-img create -q -f qcow2 -F qcow2 -b "$OUT_DIR/disk.qcow2" "$SELFTEST_DIR/root.qcow2"
  start_qemu disk -drive "file=$SELFTEST_DIR/root.qcow2,if=virtio,format=qcow2" \
    -drive "file=$SELFTEST_DIR/vol1.raw,if=virtio,format=raw" \
    -drive "file=$SELFTEST_DIR/configdrive.iso,media=cdrom,if=ide"
  expect disk.boot "$d_log" '^FERROSTACK-GUEST: boot' "$tcg_boot"
  expect disk.ip "$d_log" '^FERROSTACK-GUEST: ip eth0 10\.0\.2\.15/24 gw none$' 60
  expect disk.metadata "$d_log" "^FERROSTACK-GUEST: metadata uuid=$uuid name=selftest vm hostname=selftest-vm\$" 90
  expect disk.configdrive "$d_log" "^FERROSTACK-GUEST: configdrive uuid=cd-$uuid dev=sr0\$" 30
  expect disk.mark_persisted "$d_log" "^FERROSTACK-GUEST: mark vdb FERROSTACK-MARK:ud-$token\$" 20
  expect disk.disks "$d_log" '^FERROSTACK-GUEST: disks vda:131072 vdb:32768$' 10
  # The same user_data asks for a mark on vda, here the partitioned boot disk: refused.
  expect disk.write_mark_refused "$d_log" '^FERROSTACK-GUEST: write-mark-refused vda partitioned$' 20
  stop_qemus

  step "Self-test results (seconds from qemu start, TCG)"
  note "kernel+initrd: boot ${TIMES[kernel.boot]:-?}  ip ${TIMES[kernel.ip]:-?}  metadata ${TIMES[kernel.metadata]:-?}"
  note "whole disk:    boot ${TIMES[disk.boot]:-?}  ip ${TIMES[disk.ip]:-?}  metadata ${TIMES[disk.metadata]:-?}"
  note "metadata requests served: $(wc -l <"$SELFTEST_DIR/metadata/requests.log" 2>/dev/null || echo 0)"
  ((FAILURES == 0)) || die "$FAILURES self-test check(s) failed; logs in $SELFTEST_DIR"
  note "all checks passed; logs in $SELFTEST_DIR"
}

# --- main ---------------------------------------------------------------------------------------

main() {
  local run_selftest=0
  OUT_DIR=
  while (($#)); do
    case $1 in
      --selftest) run_selftest=1 ;;
      -h | --help) usage 0 ;;
      -*) usage 2 ;;
      *) [[ -z $OUT_DIR ]] || usage 2; OUT_DIR=$1 ;;
    esac
    shift
  done
  OUT_DIR=${OUT_DIR:-$HOME/.cache/ferrostack/guest-image}
  mkdir -p "$OUT_DIR"
  OUT_DIR=$(cd "$OUT_DIR" && pwd)

  # One build at a time per OUT_DIR (parallel test workers may all ask for the image).
  exec 9>"$OUT_DIR/.lock"
  flock 9
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferrostack-guest-image.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT

  build_all
  if ((run_selftest)); then
    trap 'stop_qemus; rm -rf "$WORK"' EXIT
    selftest
  fi
}

main "$@"
