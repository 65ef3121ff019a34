"""The network agent of the all-in-one with the real CLI: a port bound to the cloud's host gets
its bridge, the network its DHCP namespace with dnsmasq; the port turns ACTIVE once its tap
exists; the agents are listed alive; deletes remove the kernel objects; a restart leaves the
data plane running and reconciles it. Every kernel object the cloud made is removed at the end,
even on failure. No packets are sent."""
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import BINARY, Cloud
from test_distributed import broker  # noqa: F401 (the fixture)


def sh(*args, check=True):
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def link_exists(name):
    return sh("ip", "link", "show", "dev", name, check=False).returncode == 0


def netns_exists(name):
    return name in sh("ip", "netns", "list").stdout.split()


def dnsmasq_running(lab, network_id):
    """Whether the dnsmasq of the network's pid file runs."""
    pid_file = os.path.join(lab.dhcp_root, network_id, "pid")
    try:
        pid = int(open(pid_file).read().strip())
        return open(f"/proc/{pid}/comm").read().strip() == "dnsmasq"
    except (OSError, ValueError):
        return False


def wait_for(what, predicate, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def capable():
    if os.geteuid() != 0:
        return "needs root (bridges, namespaces, nftables)"
    for tool in ("ip", "nft", "dnsmasq"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


class Lab:
    """The cloud under test and what it created on the host, for the cleanup."""

    def __init__(self, extra=""):
        self.root = tempfile.mkdtemp(prefix="ferrostack-e2e-netagent-")
        vni = random.randint(100000, 16000000)
        self.cloud = Cloud(
            self.root,
            network_agent=True,
            extra_config=(
                f'[network]\nlocal_ip = "127.0.0.1"\nvni_ranges = ["{vni}:{vni + 20}"]\n'
                "resync_interval = 5\nreport_interval = 2\n" + extra
            ),
        )
        self.host = self.cloud.host
        # Outside the private state dir: dnsmasq re-reads its files as `nobody`.
        self.dhcp_root = f"/run/ferrostack/{self.host}/dhcp"
        self.tag = f"ferrostack-network-agent:{self.host}"
        self.networks = []
        self.taps = []
        self.bridges = []
        self.routers = []

    def owned_links(self):
        links = json.loads(sh("ip", "-j", "-d", "link", "show").stdout or "[]")
        return [link["ifname"] for link in links if link.get("ifalias") == self.tag]

    def cleanup(self):
        try:
            self.cloud.stop()
        except Exception:
            pass
        env = dict(os.environ, FERROSTACK_CONFIG=self.cloud.config)
        subprocess.run([BINARY, "network-cleanup"], env=env, capture_output=True, timeout=60)
        for tap in self.taps:
            sh("ip", "link", "del", tap, check=False)
        dhcp = self.dhcp_root
        for network in self.networks:
            pid_file = os.path.join(dhcp, network, "pid")
            try:
                os.kill(int(open(pid_file).read().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
            sh("ip", "netns", "del", f"qdhcp-{network}", check=False)
        for ns in sh("ip", "netns", "list").stdout.split():
            if ns.startswith("qrouter-") and ns[len("qrouter-"):] in self.routers:
                sh("ip", "netns", "del", ns, check=False)
        for name in self.owned_links():
            sh("ip", "link", "del", name, check=False)
        for bridge in self.bridges:
            sh("ip", "link", "del", bridge, check=False)
        table = "ferrostack_" + "".join(c if c.isalnum() else "_" for c in self.host)
        for family in ("bridge", "inet"):
            sh("nft", "delete", "table", family, table, check=False)
        shutil.rmtree(os.path.dirname(self.dhcp_root), ignore_errors=True)
        if not os.environ.get("FERROSTACK_KEEP_E2E"):
            shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.cloud.instances, ignore_errors=True)


@pytest.fixture
def lab():
    reason = capable()
    if reason:
        pytest.skip(reason)
    lab = Lab()
    yield lab
    lab.cleanup()


def make_network(lab, name, cidr):
    c = lab.cloud
    net = c.json("ferrostack", "network", "create", name)
    lab.networks.append(net["id"])
    c.json("ferrostack", "subnet", "create", "--network", name, "--subnet-range", cidr, f"{name}-sub")
    return net


def test_agent_wires_ports_reports_them_active_and_reconciles(lab):
    c = lab.cloud
    suffix = uuid.uuid4().hex[:6]
    third = random.randint(1, 250)
    net = make_network(lab, f"agent-{suffix}", f"10.213.{third}.0/24")
    bridge = "brq" + net["id"][:11]
    server_id = str(uuid.uuid4())
    port = c.json("ferrostack", "port", "create", "--network", net["id"], "--host", lab.host,
                  "--device-owner", "compute:nova", "--device", server_id, f"p-{suffix}")
    assert port["binding_host_id"] == lab.host
    assert port["binding_vif_type"] == "bridge"
    tap = "tap" + port["id"][:11]

    wait_for("the network's bridge", lambda: link_exists(bridge))
    wait_for("the DHCP namespace", lambda: netns_exists(f"qdhcp-{net['id']}"))
    wait_for("dnsmasq", lambda: dnsmasq_running(lab, net["id"]))
    dhcp_ports = c.json("ferrostack", "port", "list", "--network", net["id"],
                        "--device-owner", "network:dhcp")
    assert len(dhcp_ports) == 1
    assert c.json("ferrostack", "port", "show", port["id"])["status"] == "DOWN", "no tap yet"

    sh("ip", "tuntap", "add", tap, "mode", "tap")
    lab.taps.append(tap)
    wait_for("the port ACTIVE",
             lambda: c.json("ferrostack", "port", "show", port["id"])["status"] == "ACTIVE")
    master = json.loads(sh("ip", "-j", "link", "show", "dev", tap).stdout)[0].get("master")
    assert master == bridge

    agents = c.json("ferrostack", "network", "agent", "list", "--host", lab.host)
    types = {a["Agent Type"]: a for a in agents}
    for kind in ("Linux bridge agent", "DHCP agent", "L3 agent", "Metadata agent"):
        assert kind in types, agents
        assert types[kind]["Alive"] in (True, ":-)"), types[kind]
        assert types[kind]["State"] in (True, "UP"), types[kind]
    # Members do not see agents (admin only).
    denied = c.run("ferrostack-demo", "network", "agent", "list", check=False)
    assert denied.returncode != 0

    # Deletes remove the kernel objects (the tap is the hypervisor's; it stays ours to remove).
    c.run("ferrostack", "port", "delete", port["id"])
    c.run("ferrostack", "network", "delete", net["id"])
    wait_for("the bridge gone", lambda: not link_exists(bridge))
    wait_for("the DHCP namespace gone", lambda: not netns_exists(f"qdhcp-{net['id']}"))
    wait_for("dnsmasq gone", lambda: not dnsmasq_running(lab, net["id"]))

    # A restart leaves the data plane in place and reconciles what changed meanwhile.
    kept = make_network(lab, f"kept-{suffix}", f"10.214.{third}.0/24")
    kept_bridge = "brq" + kept["id"][:11]
    wait_for("the kept network's DHCP namespace", lambda: netns_exists(f"qdhcp-{kept['id']}"))
    wait_for("the kept network's bridge", lambda: link_exists(kept_bridge))
    c.stop()
    assert link_exists(kept_bridge), "stopping the cloud leaves the data plane"
    assert netns_exists(f"qdhcp-{kept['id']}")
    sh("ip", "link", "del", kept_bridge)
    c.log = open(c.log_path, "a")
    c.start()
    wait_for("the bridge recreated after the restart", lambda: link_exists(kept_bridge))
    c.run("ferrostack", "network", "delete", kept["id"])
    wait_for("the kept network's objects gone",
             lambda: not link_exists(kept_bridge) and not netns_exists(f"qdhcp-{kept['id']}"))

    # `ferrostack network-cleanup` removes what the stopped agent left.
    last = make_network(lab, f"last-{suffix}", f"10.215.{third}.0/24")
    wait_for("the last network's DHCP namespace", lambda: netns_exists(f"qdhcp-{last['id']}"))
    c.stop()
    env = dict(os.environ, FERROSTACK_CONFIG=c.config)
    subprocess.run([BINARY, "network-cleanup"], env=env, check=True, capture_output=True, timeout=60)
    assert not netns_exists(f"qdhcp-{last['id']}")
    assert not link_exists("brq" + last["id"][:11])
    assert lab.owned_links() == []
    c.log = open(c.log_path, "a")
    c.start()


SEED = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "seed-networks.sh")


def test_seeded_networks_get_a_router_on_the_external_bridge():
    reason = capable()
    if reason:
        pytest.skip(reason)
    if "172.24.4." in sh("ip", "-4", "-o", "addr").stdout:
        pytest.skip("172.24.4.0/24 is in use on this host (a `make up` cloud)")
    bridge = f"bx{random.randint(10000, 99999)}"
    lab = Lab(extra=f'bridge_mappings = {{ public = "{bridge}" }}\n'
                    f'bridge_addresses = {{ {bridge} = "172.24.4.1/24" }}\n')
    lab.bridges.append(bridge)
    try:
        c = lab.cloud
        env = dict(os.environ, OS_CLIENT_CONFIG_FILE=c.clouds_yaml,
                   PATH=os.path.dirname(os.environ.get("OPENSTACK_CLI", "openstack")) + ":" + os.environ["PATH"])
        for _ in range(2):  # idempotent
            subprocess.run([SEED, "ferrostack"], env=env, check=True, capture_output=True, timeout=300)
        assert link_exists(bridge), "the cloud creates the mapped bridge"
        assert "172.24.4.1/24" in sh("ip", "-4", "-o", "addr", "show", "dev", bridge).stdout
        private = c.json("ferrostack", "network", "show", "private")
        public = c.json("ferrostack", "network", "show", "public")
        lab.networks += [private["id"], public["id"]]
        assert public["router:external"] is True and public["provider:network_type"] == "flat"
        assert private["provider:network_type"] == "vxlan"
        router = c.json("ferrostack", "router", "show", "router1")
        lab.routers.append(router["id"])
        assert len(c.json("ferrostack", "router", "list")) == 1
        gateway_ip = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
        ns = f"qrouter-{router['id']}"
        wait_for("the router namespace", lambda: netns_exists(ns))

        def router_addresses():
            return sh("ip", "netns", "exec", ns, "ip", "-4", "-o", "addr").stdout

        wait_for("the router's interface and gateway addresses",
                 lambda: "10.0.0.1/24" in router_addresses() and f"{gateway_ip}/24" in router_addresses())
        wait_for("the private network's DHCP", lambda: netns_exists(f"qdhcp-{private['id']}"))
        master = json.loads(sh("ip", "-j", "link", "show", "master", bridge).stdout or "[]")
        assert master, "the router's gateway is plugged into the external bridge"
        agents = c.json("ferrostack", "network", "agent", "list", "--agent-type", "l3")
        assert [a["Host"] for a in agents] == [lab.host]
    finally:
        c.run("ferrostack", "router", "remove", "subnet", "router1", "private-subnet", check=False)
        c.run("ferrostack", "router", "delete", "router1", check=False)
        lab.cleanup()


def test_network_agent_alone_over_amqp(tmp_path, broker):
    """`ferrostack network-agent` on a host of its own: no database, only the bus."""
    reason = capable()
    if reason:
        pytest.skip(reason)
    bus_url, _, _ = broker
    bus = f'[bus]\nkind = "amqp"\nurl = "{bus_url}"\n'
    vni = random.randint(100000, 16000000)
    root = tempfile.mkdtemp(prefix="ferrostack-e2e-netagent-alone-")
    controller = Cloud(root, command="api", compute_config="agent = false\n",
                       extra_config=bus + f'[network]\nvni_ranges = ["{vni}:{vni + 20}"]\n')
    host = f"e2e-net-{uuid.uuid4().hex[:6]}"
    config = tmp_path / "agent.toml"
    config.write_text(
        f'state_dir = "{tmp_path}/state"\n[compute]\nhost = "{host}"\nmetadata_listen = ""\n'
        f'[network]\nlocal_ip = "127.0.0.1"\nreport_interval = 2\n' + bus)
    env = dict(os.environ, FERROSTACK_CONFIG=str(config))
    log = open(tmp_path / "agent.log", "w")
    agent = subprocess.Popen([BINARY, "network-agent"], stdout=log, stderr=subprocess.STDOUT, env=env)
    tap = None
    try:
        c = controller
        net = c.json("ferrostack", "network", "create", f"alone-{host}")
        c.json("ferrostack", "subnet", "create", "--network", net["id"], "--subnet-range",
               f"10.216.{random.randint(1, 250)}.0/24", f"alone-{host}-sub")
        port = c.json("ferrostack", "port", "create", "--network", net["id"], "--host", host, f"p-{host}")
        bridge = "brq" + net["id"][:11]
        wait_for("the bridge on the agent's host", lambda: link_exists(bridge))
        tap = "tap" + port["id"][:11]
        sh("ip", "tuntap", "add", tap, "mode", "tap")
        wait_for("the port ACTIVE",
                 lambda: c.json("ferrostack", "port", "show", port["id"])["status"] == "ACTIVE")
        agents = c.json("ferrostack", "network", "agent", "list", "--host", host)
        assert [a["Agent Type"] for a in agents] == ["Linux bridge agent"], agents
        assert agents[0]["Alive"] in (True, ":-)")
        assert not netns_exists(f"qdhcp-{net['id']}"), "DHCP runs on the network host"
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        log.close()
        subprocess.run([BINARY, "network-cleanup"], env=env, capture_output=True, timeout=60)
        if tap:
            sh("ip", "link", "del", tap, check=False)
        controller.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(controller.instances, ignore_errors=True)
