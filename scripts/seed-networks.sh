#!/usr/bin/env bash
# Seeds the networks of a fresh cloud (idempotent; part of scripts/seed.sh).
# Usage: scripts/seed-networks.sh CLOUD  (CLOUD names an admin entry of clouds.yaml)
source "$(dirname "$0")/lib.sh"
CLOUD=$1
os() { openstack --os-cloud "$CLOUD" "$@"; }
# Networks, as devstack makes them: `public`, a flat external network on the host bridge the
# cloud creates ([network] bridge_mappings public = "br-ex", the host side 172.24.4.1 is its
# gateway), and the demo project's `private` VXLAN network behind `router1`.
step "Seeding networks"
have() { os "$1" show -f value -c id "$2" >/dev/null 2>&1; }
if ! have network public; then
  os network create --external --share --provider-network-type flat \
    --provider-physical-network public public >/dev/null
  note "network public (flat, external)"
fi
if ! have subnet public-subnet; then
  os subnet create --network public --subnet-range 172.24.4.0/24 --gateway 172.24.4.1 \
    --allocation-pool start=172.24.4.10,end=172.24.4.254 --no-dhcp public-subnet >/dev/null
  note "subnet public-subnet 172.24.4.0/24"
fi
if ! have network private; then
  os network create --project demo private >/dev/null
  note "network private (vxlan, project demo)"
fi
if ! have subnet private-subnet; then
  os subnet create --project demo --network private --subnet-range 10.0.0.0/24 \
    --dns-nameserver 10.0.0.1 private-subnet >/dev/null
  note "subnet private-subnet 10.0.0.0/24"
fi
if ! have router router1; then
  os router create --project demo router1 >/dev/null
  note "router router1"
fi
if [[ -z $(os router show router1 -f json -c external_gateway_info | grep -o '"network_id"') ]]; then
  os router set --external-gateway public router1
fi
if [[ -z $(os port list --router router1 --network private -f value -c ID) ]]; then
  os router add subnet router1 private-subnet
fi
