"""Servers on Neutron networks, end to end with the real CLI, real QEMU guests and real packets:
`server create --nic` makes and binds ports, the guest starts paused until the network agent
has wired its tap (network-vif-plugged), gets its address from our dnsmasq, reads its own
metadata through the DHCP namespace's proxy at 169.254.169.254, and pings other guests (the test
guest pings each `ping=<ip>` of its user data and prints the result on its console). Security
groups filter that traffic; deleting the servers deletes the ports they created. Packets go only
between guests and namespaces this test created."""
import os
import random
import re
import subprocess
import time
import uuid as uuidlib

import pytest

from conftest import wait
from test_network_agent import Lab, capable

GUEST_DIR = os.environ.get("FERROSTACK_GUEST_IMAGE_DIR", os.path.expanduser("~/.cache/ferrostack/guest-image"))


@pytest.fixture(scope="module")
def lab():
    reason = capable()
    if reason:
        pytest.skip(reason)
    if not os.path.exists(os.path.join(GUEST_DIR, "disk.qcow2")):
        pytest.fail(f"test guest image missing: run scripts/build-guest-image.sh ({GUEST_DIR})")
    lab = Lab()
    try:
        c = lab.cloud
        c.json("ferrostack", "image", "create", "--public", "--disk-format", "qcow2", "--container-format", "bare",
               "--file", os.path.join(GUEST_DIR, "disk.qcow2"), "net-guest")
        c.json("ferrostack", "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "net.nano")
        wait(lambda: c.json("ferrostack", "resource", "provider", "list"), 60, "the compute host to register")
        yield lab
    finally:
        # The servers first: their taps go with their domains.
        for server in lab.cloud.json("ferrostack", "server", "list", "--all-projects"):
            lab.cloud.run("ferrostack", "server", "delete", "--wait", server["ID"], check=False, timeout=180)
        lab.cleanup()


def console(cloud, server):
    return cloud.run("ferrostack-demo", "console", "log", "show", server).stdout.replace("\r", "")


def wait_console(cloud, server, pattern, timeout=240):
    """The first match of `pattern` (a regex) in the server's console log."""
    def found():
        return re.search(pattern, console(cloud, server), re.M)
    return wait(found, timeout, f"{pattern!r} on the console of {server}")


def boot(cloud, name, nic, user_data, *extra):
    path = f"/tmp/{name}.user-data"
    with open(path, "w") as f:
        f.write(user_data + "\n")
    server = cloud.json("ferrostack-demo", "server", "create", "--image", "net-guest", "--flavor", "net.nano",
                        "--nic", nic, "--user-data", path, *extra, name)
    os.unlink(path)
    return server["id"]


def ports_of(cloud, server):
    return cloud.json("ferrostack", "port", "list", "--device-id", server, "--long")


@pytest.mark.slow
def test_guests_get_dhcp_metadata_and_ping_each_other_within_their_security_groups(lab):
    c = lab.cloud
    third = random.randint(1, 250)
    prefix = f"10.213.{third}"
    suffix = uuidlib.uuid4().hex[:6]
    net = c.json("ferrostack-demo", "network", "create", f"tenant-{suffix}")
    lab.networks.append(net["id"])
    c.json("ferrostack-demo", "subnet", "create", "--network", net["id"], "--subnet-range", f"{prefix}.0/24",
           f"tenant-{suffix}-v4")
    a_ip, b_ip, c_ip = f"{prefix}.10", f"{prefix}.11", f"{prefix}.12"
    # A security group without any ingress rule: the default group's members may not ping C.
    c.json("ferrostack-demo", "security", "group", "create", f"closed-{suffix}")

    a = boot(c, f"a-{suffix}", f"net-id={net['id']},v4-fixed-ip={a_ip}", f"ping={b_ip} ping={c_ip}")
    b = boot(c, f"b-{suffix}", f"net-id={net['id']},v4-fixed-ip={b_ip}", f"ping={a_ip}")
    g = boot(c, f"c-{suffix}", f"net-id={net['id']},v4-fixed-ip={c_ip}", f"ping={a_ip}",
             "--security-group", f"closed-{suffix}")
    servers = {a: a_ip, b: b_ip, g: c_ip}
    taps = []

    for server, ip in servers.items():
        wait(lambda: c.json("ferrostack-demo", "server", "show", server)["status"] in ("ACTIVE", "ERROR"),
             300, "the server to leave BUILD")
        shown = c.json("ferrostack-demo", "server", "show", server)
        assert shown["status"] == "ACTIVE", shown
        assert ip in str(shown["addresses"]), shown["addresses"]
        ports = ports_of(c, server)
        assert len(ports) == 1 and ports[0]["Status"] == "ACTIVE", ports
        # The domain was created with the port's tap, plugged into the network's bridge.
        tap = "tap" + ports[0]["ID"][:11]
        taps.append(tap)
        link = subprocess.run(["ip", "-o", "link", "show", "dev", tap], capture_output=True, text=True)
        assert f"master brq{net['id'][:11]}" in link.stdout, link.stdout + link.stderr

    for server, ip in servers.items():
        # Our dnsmasq gave the guest its fixed address, with the subnet's gateway.
        wait_console(c, server, rf"^FERROSTACK-GUEST: ip eth0 {re.escape(ip)}/24 gw {re.escape(prefix)}\.1$")
        # The metadata proxy of the DHCP namespace told the guest who it is.
        wait_console(c, server, rf"^FERROSTACK-GUEST: metadata uuid={server} ")
    # A and B (both in the default group, which admits its members) reach each other.
    wait_console(c, a, rf"^FERROSTACK-GUEST: ping {re.escape(b_ip)} ok$")
    wait_console(c, b, rf"^FERROSTACK-GUEST: ping {re.escape(a_ip)} ok$")
    # C is up (it got its lease and metadata above) but in neither direction reachable: A's
    # default group admits only its own members, C's group admits nothing.
    wait_console(c, g, rf"^FERROSTACK-GUEST: ping {re.escape(a_ip)} fail$")
    assert f"ping {c_ip} ok" not in console(c, a)
    time.sleep(6)
    assert f"ping {c_ip} ok" not in console(c, a)
    # An ICMP rule opens C to pings.
    c.json("ferrostack-demo", "security", "group", "rule", "create", "--protocol", "icmp", "--ingress",
           f"closed-{suffix}")
    wait_console(c, a, rf"^FERROSTACK-GUEST: ping {re.escape(c_ip)} ok$", timeout=60)

    # Deleting the servers deletes the ports they made and their taps.
    for server in servers:
        c.run("ferrostack-demo", "server", "delete", "--wait", server, timeout=180)
        assert ports_of(c, server) == []
    leftover = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for tap in taps:
        assert f" {tap}:" not in leftover, tap
