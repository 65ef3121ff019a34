#!/usr/bin/env bash
# Seeds a fresh cloud for users (idempotent): the test guest as public images (whole-disk
# qcow2, and its kernel + ramdisk form) and the flavors m1.nano, m1.tiny and m1.small.
# Usage: scripts/seed.sh CLOUD GUEST_IMAGE_DIR  (CLOUD names an admin entry of clouds.yaml)
source "$(dirname "$0")/lib.sh"
CLOUD=$1
GUEST=$2
os() { openstack --os-cloud "$CLOUD" "$@"; }
have_image() { os image show -f value -c id "$1" >/dev/null 2>&1; }
image_id() { os image show -f value -c id "$1"; }

step "Seeding images and flavors"
if ! have_image ferrostack-guest; then
  os image create --public --disk-format qcow2 --container-format bare \
    --file "$GUEST/disk.qcow2" ferrostack-guest >/dev/null
  note "image ferrostack-guest (whole disk, qcow2)"
fi
if ! have_image ferrostack-guest-kernel; then
  os image create --public --disk-format aki --container-format aki \
    --file "$GUEST/vmlinuz" ferrostack-guest-kernel >/dev/null
fi
if ! have_image ferrostack-guest-ramdisk; then
  os image create --public --disk-format ari --container-format ari \
    --file "$GUEST/initrd.img" ferrostack-guest-ramdisk >/dev/null
fi
if ! have_image ferrostack-guest-kernel-boot; then
  # An AMI is a raw disk image.
  raw=$(mktemp --suffix=.raw)
  qemu-img convert -O raw "$GUEST/disk.qcow2" "$raw"
  os image create --public --disk-format ami --container-format ami \
    --file "$raw" \
    --property kernel_id="$(image_id ferrostack-guest-kernel)" \
    --property ramdisk_id="$(image_id ferrostack-guest-ramdisk)" \
    --property os_command_line="console=tty0 console=ttyS0" \
    ferrostack-guest-kernel-boot >/dev/null
  rm -f "$raw"
  note "image ferrostack-guest-kernel-boot (kernel + ramdisk)"
fi
# name ram(MiB) disk(GiB) vcpus, as devstack and Nova's classic flavors.
for flavor in "m1.nano 128 1 1" "m1.tiny 512 1 1" "m1.small 2048 20 1"; do
  read -r name ram disk vcpus <<<"$flavor"
  if ! os flavor show "$name" >/dev/null 2>&1; then
    os flavor create --ram "$ram" --disk "$disk" --vcpus "$vcpus" "$name" >/dev/null
    note "flavor $name ($ram MiB, $disk GiB, $vcpus vCPU)"
  fi
done

scripts_dir=$(dirname "$0")
"$scripts_dir/seed-networks.sh" "$CLOUD"
