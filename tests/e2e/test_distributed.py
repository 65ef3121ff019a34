"""Distributed mode: a controller (`ferrostack api`, bus `amqp`, no agent) and a compute agent in
a process of its own (`ferrostack compute-agent`, whose config has no [database] section) that
reaches the controller only through RabbitMQ and the public APIs. A real guest boots on the
agent's host; the agent is killed (-9) and its host turns down, then it comes back and the
server is deleted. Then the agent alone aborts at each of its crash points of a boot and of a
delete (the controller keeps running, as it would with the agent on another host); after the
agent restarts, every server is ACTIVE, ERROR with a fault, or gone, and nothing is leaked.

Needs rabbitmq-server (started here when it is not running); skipped, with that reason, when it
is not installed. Each run gets its own RabbitMQ vhost and user."""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import BINARY, Cloud, wait

GUEST_DIR = os.environ.get("FERROSTACK_GUEST_IMAGE_DIR", os.path.expanduser("~/.cache/ferrostack/guest-image"))
# A host whose heartbeat is older than this is down (the agent beats every 2 s).
SERVICE_DOWN_TIME = 6

pytestmark = pytest.mark.skipif(
    shutil.which("rabbitmq-server") is None and not os.path.exists("/usr/sbin/rabbitmq-server"),
    reason="rabbitmq-server is not installed (apt-get install rabbitmq-server)",
)


def rabbitmqctl(*args, check=True):
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, check=check)


def ensure_rabbitmq():
    """Starts the local RabbitMQ node if it is not running (there is no systemd here)."""
    if rabbitmqctl("status", check=False).returncode == 0:
        return
    subprocess.run(["rabbitmq-server", "-detached"], check=True)
    deadline = time.time() + 60
    while rabbitmqctl("await_startup", check=False).returncode != 0:
        assert time.time() < deadline, "RabbitMQ did not start (see /var/log/rabbitmq/)"
        time.sleep(1)


@pytest.fixture(scope="module")
def broker():
    """A vhost and a user of their own on the local RabbitMQ; yields (url, password, vhost)."""
    ensure_rabbitmq()
    suffix = uuid.uuid4().hex[:10]
    vhost, user, password = f"fse2e-{suffix}", f"fse2e-{suffix}", f"bus-pw-{uuid.uuid4().hex}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("add_user", user, password)
    rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    yield f"amqp://{user}:{password}@127.0.0.1:5672/{vhost}", password, vhost
    rabbitmqctl("delete_vhost", vhost, check=False)
    rabbitmqctl("delete_user", user, check=False)


class AgentHost:
    """`ferrostack compute-agent` on its own config, state and instances directory."""

    def __init__(self, root, controller, bus_url):
        self.host = f"e2e-agent-{controller.port}"
        self.state = os.path.join(root, "agent-state")
        os.makedirs(self.state)
        # QEMU runs as its own user: the instances directory must be reachable by it.
        self.instances = tempfile.mkdtemp(prefix="ferrostack-e2e-agent-instances-")
        os.chmod(self.instances, 0o755)
        self.config = os.path.join(root, "agent.toml")
        with open(self.config, "w") as f:
            f.write(
                f'state_dir = "{self.state}"\n'
                f'[api]\npublic_url = "{controller.url}"\n'
                f'[log]\nlevel = "debug"\n'
                f'[bus]\nkind = "amqp"\nurl = "{bus_url}"\n'
                f'[compute]\nhost = "{self.host}"\ninstances_path = "{self.instances}"\n'
                f'report_interval = 2\nshutdown_timeout = 20\n'
                # The controller wrote it on first start; a real host gets it from the operator.
                f'service_password_file = "{os.path.join(controller.state, "service-password")}"\n'
            )
        assert "[database]" not in open(self.config).read()
        self.log_path = os.path.join(root, "agent.log")
        self.log = open(self.log_path, "a")
        self.proc = None

    def start(self, extra_env=None):
        env = dict(os.environ, FERROSTACK_CONFIG=self.config, **(extra_env or {}))
        self.proc = subprocess.Popen([BINARY, "compute-agent"], stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def distributed(broker):
    bus_url, _, _ = broker
    root = tempfile.mkdtemp(prefix="ferrostack-e2e-distributed-")
    controller = Cloud(
        root,
        command="api",
        compute_config=f"agent = false\nservice_down_time = {SERVICE_DOWN_TIME}\n",
        extra_config=f'[bus]\nkind = "amqp"\nurl = "{bus_url}"\n',
    )
    agent = AgentHost(root, controller, bus_url)
    agent.start()
    yield controller, agent
    agent.stop()
    controller.stop()
    if not os.environ.get("FERROSTACK_KEEP_E2E"):
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(controller.instances, ignore_errors=True)
        shutil.rmtree(agent.instances, ignore_errors=True)


def host_state(cloud, host):
    """The hypervisor's state ("up"/"down") as `openstack hypervisor list` shows it, or None."""
    for h in cloud.json("ferrostack", "hypervisor", "list"):
        if h["Hypervisor Hostname"] == host:
            return h["State"]
    return None


def close_connections(vhost):
    """Drops, from the broker's side, every connection to `vhost`; returns how many."""
    listing = rabbitmqctl("list_connections", "pid", "vhost").stdout.splitlines()
    pids = [line.split()[0] for line in listing if line.split()[1:] == [vhost]]
    for pid in pids:
        rabbitmqctl("close_connection", pid, "e2e: connection dropped")
    return len(pids)


def consumers(vhost, queue):
    for line in rabbitmqctl("list_queues", "-p", vhost, "name", "consumers").stdout.splitlines():
        name, count = line.split()
        if name == queue:
            return int(count)
    return 0


def virsh_domains():
    out = subprocess.run(["virsh", "-q", "-c", "qemu:///system", "list", "--name"], capture_output=True, text=True)
    return out.stdout.split()


def test_compute_agent_refuses_the_in_process_bus(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text(f'state_dir = "{tmp_path}/state"\n[compute]\nservice_password = "x"\n')
    out = subprocess.run([BINARY, "compute-agent"], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, FERROSTACK_CONFIG=str(config)))
    assert out.returncode != 0
    assert 'set [bus] kind = "amqp"' in out.stderr, out.stderr


@pytest.mark.slow
def test_boot_on_a_separate_agent_host_through_rabbitmq(distributed, broker):
    controller, agent = distributed
    for f in ("disk.qcow2",):
        if not os.path.exists(os.path.join(GUEST_DIR, f)):
            pytest.fail(f"test guest image missing: run scripts/build-guest-image.sh ({GUEST_DIR}/{f})")
    wait(lambda: host_state(controller, agent.host) == "up", 90, "the agent's host to report up")
    # The controller runs no agent of its own: the agent's host is the only one.
    assert [h["Hypervisor Hostname"] for h in controller.json("ferrostack", "hypervisor", "list")] == [agent.host]

    image = controller.json("ferrostack", "image", "create", "--public", "--disk-format", "qcow2",
                            "--container-format", "bare", "--file", os.path.join(GUEST_DIR, "disk.qcow2"),
                            "dist-guest")
    controller.json("ferrostack", "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "dist.nano")
    server = controller.json("ferrostack-demo", "server", "create", "--image", image["id"], "--flavor", "dist.nano",
                             "--config-drive", "True", "--wait", "dist-vm", timeout=300)
    assert server["status"] == "ACTIVE", server
    uuid_ = server["id"]
    shown = controller.json("ferrostack", "server", "show", uuid_)
    assert shown["OS-EXT-SRV-ATTR:host"] == agent.host
    domain = shown["OS-EXT-SRV-ATTR:instance_name"]
    assert domain in virsh_domains()
    assert os.path.isdir(os.path.join(agent.instances, uuid_))
    # The console log travels agent -> RabbitMQ -> controller (an RPC call).
    wait(lambda: f"configdrive uuid={uuid_}" in controller.run("ferrostack-demo", "console", "log", "show",
                                                                 uuid_).stdout,
         180, "the guest to print its config drive uuid")

    # The agent dies: its heartbeats stop and, after service_down_time, its host is down.
    agent.kill()
    killed_at = time.time()
    wait(lambda: host_state(controller, agent.host) == "down", SERVICE_DOWN_TIME + 30, "the host to turn down")
    assert time.time() - killed_at >= SERVICE_DOWN_TIME - 3
    # The guest itself lives on (QEMU is not the agent's child).
    assert domain in virsh_domains()

    agent.start()
    wait(lambda: host_state(controller, agent.host) == "up", 90, "the host to come back up")
    assert controller.json("ferrostack", "server", "show", uuid_)["status"] == "ACTIVE"

    # The broker drops both processes' connections: they reconnect and their consumers attach
    # again by themselves (the delete below travels controller -> agent over the bus).
    _, _, vhost = broker
    assert close_connections(vhost) == 2
    agent_queue = f"compute.agent.{agent.host}"
    wait(lambda: consumers(vhost, agent_queue) == 1 and consumers(vhost, "compute.conductor") == 1, 30,
         "both consumers to attach again")
    assert agent.proc.poll() is None and controller.proc.poll() is None
    controller.run("ferrostack-demo", "server", "delete", "--wait", uuid_, timeout=180)
    assert domain not in virsh_domains()
    assert domain not in controller.domains()
    assert not os.path.exists(os.path.join(agent.instances, uuid_))

    # The agent never opened a database, and no log holds the broker's password.
    assert not os.path.exists(os.path.join(agent.state, "ferrostack.db"))
    _, bus_password, _ = broker
    for log in (agent.log_path, controller.log_path):
        agent.log.flush()
        assert bus_password not in open(log).read(), f"the broker password is in {log}"
    service_password = open(os.path.join(controller.state, "service-password")).read().strip()
    assert service_password not in open(agent.log_path).read()


RAM = 256
AGENT_BOOT_POINTS = ["agent:after-spawning", "agent:after-image-cached", "agent:after-domain-started"]


@pytest.fixture(scope="module")
def guest_assets(distributed):
    controller, _ = distributed
    if not controller.run("ferrostack", "image", "show", "dist-guest", check=False).returncode == 0:
        controller.json("ferrostack", "image", "create", "--public", "--disk-format", "qcow2",
                        "--container-format", "bare", "--file", os.path.join(GUEST_DIR, "disk.qcow2"),
                        "dist-guest")
    if not controller.run("ferrostack", "flavor", "show", "dist.nano", check=False).returncode == 0:
        controller.json("ferrostack", "flavor", "create", "--ram", str(RAM), "--disk", "1", "--vcpus", "1",
                        "dist.nano")


def restart_agent(agent, crash_at=None):
    """Stops the agent if it runs, then starts it (armed with `crash_at` if given)."""
    if agent.proc and agent.proc.poll() is None:
        agent.proc.terminate()
        agent.proc.wait(timeout=30)
    agent.start({"FERROSTACK_CRASH_AT": crash_at} if crash_at else None)


def all_servers(cloud):
    return cloud.json("ferrostack", "server", "list", "--all-projects", "--long")


def settled_invariants(controller, agent):
    """Waits until no server is mid-operation, then checks: ERROR has a fault, Placement usage is
    the live servers' flavors, and the agent host's domains and directories are the live ones."""
    def check():
        found = all_servers(controller)
        if all(s["Status"] in ("ACTIVE", "ERROR") and not s.get("Task State") for s in found):
            return found or [None]
        return None
    live = [s for s in wait(check, 240, "every server to settle") if s]
    details = [controller.json("ferrostack", "server", "show", s["ID"]) for s in live]
    for d in details:
        if d["status"] == "ERROR":
            assert d.get("fault", {}).get("message"), f"ERROR without a fault: {d}"
    used = 0
    for p in controller.json("ferrostack", "resource", "provider", "list"):
        for u in controller.json("ferrostack", "resource", "provider", "usage", "show", p["uuid"]):
            if u["resource_class"] == "MEMORY_MB":
                used += u["usage"]
    active = [d for d in details if d["status"] == "ACTIVE"]
    assert used == RAM * len(active), (used, details)
    assert set(controller.domains()) == {d["OS-EXT-SRV-ATTR:instance_name"] for d in active}
    dirs = {n for n in os.listdir(agent.instances) if len(n) == 36}
    assert dirs == {d["id"] for d in active}, (dirs, details)
    return details


@pytest.mark.slow
@pytest.mark.parametrize("point", AGENT_BOOT_POINTS)
def test_agent_crash_during_boot(distributed, guest_assets, point):
    controller, agent = distributed
    restart_agent(agent, point)
    wait(lambda: host_state(controller, agent.host) == "up", 90, "the agent's host to report up")
    controller.run("ferrostack-demo", "server", "create", "--image", "dist-guest", "--flavor", "dist.nano",
                   f"dboot-{point.replace(':', '-')}", check=False)
    wait(lambda: agent.proc.poll() is not None, 120, "the agent to hit its crash point")
    assert agent.proc.returncode != 0
    assert controller.proc.poll() is None, "only the agent crashed"
    restart_agent(agent)
    details = settled_invariants(controller, agent)
    assert len(details) == 1 and details[0]["status"] in ("ACTIVE", "ERROR"), details
    for d in details:
        controller.run("ferrostack", "server", "delete", "--wait", d["id"], timeout=180)
    settled_invariants(controller, agent)


@pytest.mark.slow
def test_agent_crash_during_delete(distributed, guest_assets):
    controller, agent = distributed
    restart_agent(agent, "agent:after-domain-destroyed")
    wait(lambda: host_state(controller, agent.host) == "up", 90, "the agent's host to report up")
    server = controller.json("ferrostack-demo", "server", "create", "--image", "dist-guest", "--flavor",
                             "dist.nano", "--wait", "ddel", timeout=300)
    assert server["status"] == "ACTIVE", server
    controller.run("ferrostack-demo", "server", "delete", server["id"], check=False)
    wait(lambda: agent.proc.poll() is not None, 120, "the agent to hit its crash point")
    assert controller.proc.poll() is None, "only the agent crashed"
    restart_agent(agent)
    wait(lambda: not all_servers(controller), 240, "the interrupted delete to finish")
    settled_invariants(controller, agent)
