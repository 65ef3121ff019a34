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
        try:
            # The servers first: their taps go with their domains.
            for server in lab.cloud.json("ferrostack", "server", "list", "--all-projects"):
                lab.cloud.run("ferrostack", "server", "delete", "--wait", server["ID"], check=False, timeout=180)
        finally:
            lab.cleanup()


def console(cloud, server):
    return cloud.run("ferrostack", "console", "log", "show", server).stdout.replace("\r", "")


def wait_console(cloud, server, pattern, timeout=240):
    """The first match of `pattern` (a regex) in the server's console log."""
    def found():
        return re.search(pattern, console(cloud, server), re.M)
    return wait(found, timeout, f"{pattern!r} on the console of {server}")


def write_user_data(name, user_data):
    path = f"/tmp/{name}.user-data"
    with open(path, "w") as f:
        f.write(user_data + "\n")
    return path


def boot(cloud, name, nic, user_data, *extra):
    """A demo project server on `nic` whose user data holds the test guest's requests."""
    path = write_user_data(name, user_data)
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

    a = boot(c, f"a-{suffix}", f"net-id={net['id']},v4-fixed-ip={a_ip}",
             f"ping={b_ip} ping={c_ip} post-password=c2VjcmV0LXt7c3VmZml4fX0")
    b = boot(c, f"b-{suffix}", f"net-id={net['id']},v4-fixed-ip={b_ip}", f"ping={a_ip}")
    g = boot(c, f"c-{suffix}", f"net-id={net['id']},v4-fixed-ip={c_ip}", f"ping={a_ip}",
             "--security-group", f"closed-{suffix}")
    # S pings A, then sends as another IP address, then as another MAC (the test guest's spoof
    # steps): anti-spoofing must drop both.
    s_ip, other_ip, other_mac = f"{prefix}.13", f"{prefix}.99", "fa:16:3e:00:00:99"
    s = boot(c, f"s-{suffix}", f"net-id={net['id']},v4-fixed-ip={s_ip}",
             f"ping={a_ip} spoof={other_ip},{other_mac}")
    servers = {a: a_ip, b: b_ip, g: c_ip, s: s_ip}
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
    # A posted its password to the metadata service through the proxy: the owner reads it with
    # `os-server-password`, and clearing it lets the guest post again.
    wait_console(c, a, r"^FERROSTACK-GUEST: password-posted ok$")
    token, _ = c.password_token("demo", c.demo_password, "demo")
    path = f"/compute/v2.1/servers/{a}/os-server-password"
    status, _, body = c.request("GET", path, token=token)
    assert (status, body) == (200, {"password": "c2VjcmV0LXt7c3VmZml4fX0"}), body
    status, _, _ = c.request("DELETE", path, token=token)
    assert status == 204
    assert c.request("GET", path, token=token)[2] == {"password": ""}
    # S reaches A with its own addresses only: as another IP, then as another MAC, its pings
    # fail, and they answer again each time its real address comes back.
    ping_a = f"FERROSTACK-GUEST: ping {a_ip} "
    expected = [f"ping {a_ip} ok", f"spoof ip {other_ip}", f"ping {a_ip} fail", "spoof ip restored",
                f"ping {a_ip} ok", f"spoof mac {other_mac}", f"ping {a_ip} fail", "spoof mac restored",
                f"ping {a_ip} ok"]

    def spoof_steps():
        return [line.removeprefix("FERROSTACK-GUEST: ") for line in console(c, s).splitlines()
                if line.startswith(ping_a) or line.startswith("FERROSTACK-GUEST: spoof ")]
    wait(lambda: len(spoof_steps()) >= len(expected), 180, "S's spoof steps")
    assert spoof_steps()[:len(expected)] == expected, spoof_steps()
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
    # `server add security group` puts C in the default group too: A now admits it.
    c.run("ferrostack-demo", "server", "add", "security", "group", g, "default")
    assert len(ports_of(c, g)[0]["Security Groups"]) == 2
    wait_console(c, g, rf"^FERROSTACK-GUEST: ping {re.escape(a_ip)} ok$", timeout=60)
    # ... and `server remove security group` takes it out again.
    c.run("ferrostack-demo", "server", "remove", "security", "group", g, "default")
    fail_line = f"FERROSTACK-GUEST: ping {a_ip} fail"
    wait(lambda: console(c, g).count(fail_line) == 2, 60, "C's pings to A to fail again")
    again = c.run("ferrostack-demo", "server", "remove", "security", "group", g, "default", check=False)
    assert again.returncode != 0 and "not associated" in again.stderr, again.stderr

    # Deleting the servers deletes the ports they made and their taps.
    for server in servers:
        c.run("ferrostack-demo", "server", "delete", "--wait", server, timeout=180)
        assert ports_of(c, server) == []
    leftover = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for tap in taps:
        assert f" {tap}:" not in leftover, tap


@pytest.fixture(scope="module")
def external():
    """A cloud whose `public` physical network is a bridge of this test, with an address on
    it (the host side of the external network, as `make up`'s br-ex)."""
    reason = capable()
    if reason:
        pytest.skip(reason)
    third = random.randint(1, 250)
    bridge = f"bx{random.randint(10000, 99999)}"
    lab = Lab(extra=f'bridge_mappings = {{ public = "{bridge}" }}\n'
                    f'bridge_addresses = {{ {bridge} = "172.25.{third}.1/24" }}\n')
    lab.bridges.append(bridge)
    lab.external_prefix = f"172.25.{third}"
    try:
        c = lab.cloud
        c.json("ferrostack", "image", "create", "--public", "--disk-format", "qcow2", "--container-format", "bare",
               "--file", os.path.join(GUEST_DIR, "disk.qcow2"), "net-guest")
        c.json("ferrostack", "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "net.nano")
        ext = c.json("ferrostack", "network", "create", "--external", "--provider-network-type", "flat",
                     "--provider-physical-network", "public", f"ext-{bridge}")
        lab.networks.append(ext["id"])
        c.json("ferrostack", "subnet", "create", "--network", ext["id"], "--subnet-range", f"172.25.{third}.0/24",
               "--gateway", f"172.25.{third}.1", "--allocation-pool",
               f"start=172.25.{third}.100,end=172.25.{third}.200", "--no-dhcp", f"ext-{bridge}-sub")
        lab.external_network = ext["id"]
        wait(lambda: c.json("ferrostack", "resource", "provider", "list"), 60, "the compute host to register")
        yield lab
    finally:
        c = lab.cloud
        try:
            for server in c.json("ferrostack", "server", "list", "--all-projects"):
                c.run("ferrostack", "server", "delete", "--wait", server["ID"], check=False, timeout=180)
            for fip in c.json("ferrostack", "floating", "ip", "list"):
                c.run("ferrostack", "floating", "ip", "delete", fip["ID"], check=False)
            for router in c.json("ferrostack", "router", "list"):
                lab.routers.append(router["ID"])
                for port in c.json("ferrostack", "port", "list", "--router", router["ID"]):
                    if port["Fixed IP Addresses"] and "172.25." not in str(port["Fixed IP Addresses"]):
                        c.run("ferrostack", "router", "remove", "port", router["ID"], port["ID"], check=False)
                c.run("ferrostack", "router", "delete", router["ID"], check=False)
        finally:
            lab.cleanup()


def host_ping(address):
    return subprocess.run(["busybox", "ping", "-c", "1", "-W", "1", address], capture_output=True).returncode == 0


@pytest.mark.slow
def test_routers_floating_ips_isolation_and_metadata_identity(external):
    lab = external
    c = lab.cloud
    outside = f"{lab.external_prefix}.1"
    suffix = uuidlib.uuid4().hex[:6]
    third = random.randint(1, 250)
    net = c.json("ferrostack-demo", "network", "create", f"inside-{suffix}")
    lab.networks.append(net["id"])
    c.json("ferrostack-demo", "subnet", "create", "--network", net["id"], "--subnet-range",
           f"10.217.{third}.0/24", f"inside-{suffix}-v4")
    router = c.json("ferrostack-demo", "router", "create", f"r-{suffix}")
    lab.routers.append(router["id"])
    c.run("ferrostack-demo", "router", "set", "--external-gateway", lab.external_network, router["id"])
    c.run("ferrostack-demo", "router", "add", "subnet", router["id"], f"inside-{suffix}-v4")
    # Pings (and so ICMP to the floating IP) are allowed into the demo project's default group.
    c.json("ferrostack-demo", "security", "group", "rule", "create", "--protocol", "icmp", "--ingress", "default")

    inside_ip = f"10.217.{third}.10"
    d = boot(c, f"d-{suffix}", f"net-id={net['id']},v4-fixed-ip={inside_ip}", f"ping={outside}")
    # Another project's guest on its own network: no path to D's address.
    other = c.json("ferrostack", "network", "create", f"other-{suffix}")
    lab.networks.append(other["id"])
    c.json("ferrostack", "subnet", "create", "--network", other["id"], "--subnet-range",
           f"10.218.{third}.0/24", f"other-{suffix}-v4")
    e = c.json("ferrostack", "server", "create", "--image", "net-guest", "--flavor", "net.nano",
               "--nic", f"net-id={other['id']}", "--user-data", write_user_data(f"e-{suffix}", f"ping={inside_ip}"),
               f"e-{suffix}")["id"]
    for server in (d, e):
        wait(lambda: c.json("ferrostack", "server", "show", server)["status"] in ("ACTIVE", "ERROR"),
             300, "the server to leave BUILD")
        assert c.json("ferrostack", "server", "show", server)["status"] == "ACTIVE"

    # Through the router (SNAT to its gateway address) D reaches the host side of the
    # external network.
    wait_console(c, d, rf"^FERROSTACK-GUEST: ip eth0 {re.escape(inside_ip)}/24 gw 10\.217\.{third}\.1$")
    wait_console(c, d, rf"^FERROSTACK-GUEST: metadata uuid={d} ")
    wait_console(c, d, rf"^FERROSTACK-GUEST: ping {re.escape(outside)} ok$")
    # E, in the admin project on another network, never reaches D.
    wait_console(c, e, rf"^FERROSTACK-GUEST: metadata uuid={e} ", )
    wait_console(c, e, rf"^FERROSTACK-GUEST: ping {re.escape(inside_ip)} fail$")

    # A floating IP makes D reachable from the host; removing it ends that.
    fip = c.json("ferrostack-demo", "floating", "ip", "create", lab.external_network)["floating_ip_address"]
    assert not host_ping(fip)
    c.run("ferrostack-demo", "server", "add", "floating", "ip", d, fip)
    wait(lambda: host_ping(fip), 60, f"the floating IP {fip} to answer")
    shown = c.json("ferrostack-demo", "floating", "ip", "show", fip)
    assert shown["fixed_ip_address"] == inside_ip and shown["status"] == "ACTIVE", shown
    # Neutron told compute (network-changed): the server's addresses show the floating IP, and
    # the server shows the security groups of its port.
    addresses = lambda: str(c.json("ferrostack-demo", "server", "show", d)["addresses"])
    wait(lambda: fip in addresses(), 30, f"server show to list {fip}")
    assert "default" in str(c.json("ferrostack-demo", "server", "show", d)["security_groups"])
    c.run("ferrostack-demo", "server", "remove", "floating", "ip", d, fip)
    wait(lambda: not host_ping(fip), 60, f"the floating IP {fip} to go quiet")
    wait(lambda: fip not in addresses(), 30, f"server show to drop {fip}")

    # The metadata proxy names the instance by the source address of the request on its
    # network, whatever identity headers the request carries: from the DHCP namespace (an
    # address that is no guest's) a forged X-Instance-ID gets nothing.
    forged = subprocess.run(
        ["ip", "netns", "exec", f"qdhcp-{net['id']}", "python3", "-c",
         "import urllib.request,sys\n"
         "r=urllib.request.Request('http://169.254.169.254/openstack/latest/meta_data.json',"
         f"headers={{'X-Instance-ID':'{d}','X-Tenant-ID':'x','X-Instance-ID-Signature':'00'}})\n"
         "try:\n  urllib.request.urlopen(r,timeout=5); print(200)\n"
         "except urllib.error.HTTPError as e: print(e.code)\n"],
        capture_output=True, text=True, timeout=30)
    assert forged.stdout.strip() in ("404", "403"), forged.stdout + forged.stderr


NETWORK_CRASH_POINTS = [
    ("boot", "conductor:after-ports-created"),
    ("boot", "agent:after-domain-paused"),
    ("delete", "conductor:after-ports-deleted"),
]


def restart(cloud, crash_at=None):
    """Stops the process if it runs, then starts it (armed with `crash_at` if given)."""
    if cloud.proc.poll() is None:
        cloud.proc.terminate()
        cloud.proc.wait(timeout=30)
    cloud.start({"FERROSTACK_CRASH_AT": crash_at} if crash_at else None)


@pytest.mark.slow
@pytest.mark.parametrize("operation,point", NETWORK_CRASH_POINTS)
def test_a_crash_at_each_port_step_leaves_no_port_or_guest_behind(lab, operation, point):
    c = lab.cloud
    suffix = uuidlib.uuid4().hex[:6]
    net = c.json("ferrostack-demo", "network", "create", f"crash-{suffix}")
    lab.networks.append(net["id"])
    c.json("ferrostack-demo", "subnet", "create", "--network", net["id"], "--subnet-range",
           f"10.219.{random.randint(1, 250)}.0/24", f"crash-{suffix}-v4")
    create = ["ferrostack-demo", "server", "create", "--image", "net-guest", "--flavor", "net.nano",
              "--nic", f"net-id={net['id']}", f"crash-{suffix}"]
    try:
        if operation == "boot":
            restart(c, point)
            # The process may abort before the CLI has read the server back.
            c.run(*create, check=False)
        else:
            server = c.json(*create)["id"]
            wait(lambda: c.json("ferrostack-demo", "server", "show", server)["status"] == "ACTIVE", 300,
                 "ACTIVE")
            restart(c, point)
            c.run("ferrostack-demo", "server", "delete", server, check=False)
        wait(lambda: c.proc.poll() is not None, 300, "the process to hit its crash point")
    finally:
        # Running again (unarmed) whatever happened, for the checks and the next tests.
        restart(c)
    if operation == "boot":
        found = c.json("ferrostack", "server", "list", "--all-projects", "--name", f"crash-{suffix}")
        assert len(found) == 1, found
        server = found[0]["ID"]
    if operation == "boot":
        def settled():
            shown = c.json("ferrostack", "server", "show", server)
            return shown if shown["status"] in ("ACTIVE", "ERROR") and not shown["OS-EXT-STS:task_state"] else None
        shown = wait(settled, 300, "the interrupted boot to settle")
        ports = ports_of(c, server)
        if shown["status"] == "ACTIVE":
            assert len(ports) == 1 and ports[0]["Status"] == "ACTIVE", ports
            tap = "tap" + ports[0]["ID"][:11]
            link = subprocess.run(["ip", "-o", "link", "show", "dev", tap], capture_output=True, text=True)
            assert f"master brq{net['id'][:11]}" in link.stdout, link.stdout + link.stderr
            assert shown["OS-EXT-STS:power_state"] in (1, "Running"), shown
        else:
            assert shown.get("fault", {}).get("message"), shown
            assert ports == [], ports
        c.run("ferrostack-demo", "server", "delete", "--wait", server, timeout=180)
    else:
        wait(lambda: not c.json("ferrostack", "server", "list", "--all-projects"), 240, "the delete to finish")
    # Nothing of the server is left: no port with its device id, no domain.
    assert ports_of(c, server) == []
    assert not c.domains(), c.domains()
    all_ports = c.json("ferrostack", "port", "list", "--network", net["id"], "--long")
    assert [p["Device Owner"] for p in all_ports] == ["network:dhcp"], all_ports
