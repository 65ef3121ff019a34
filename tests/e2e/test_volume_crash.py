"""Crashes at each step of a volume attach, a volume detach and a volume delete (the process
aborts at a named crash point, as a `kill -9` there would). After a restart the volume is either
`in-use`, listed on the server and in its libvirt domain, or `available`, on neither; never stuck
in `reserved`/`attaching`/`detaching`. A volume deleted across a crash leaves no file."""
import os
import subprocess

import pytest

from conftest import cloud_with_guest, restart, wait, wait_crashed

ATTACH_POINTS = [
    "api:after-volume-recorded",
    "conductor:after-volume-reserved",
    "agent:after-volume-plugged",
    "conductor:after-volume-completed",
]
DETACH_POINTS = [
    "agent:after-volume-unplugged",
    "conductor:after-volume-released",
]


@pytest.fixture(scope="module")
def crash_cloud():
    c = cloud_with_guest("ferrostack-e2e-volcrash-", "volcrash-guest", "volcrash.nano")
    wait(lambda: c.json("ferrostack", "resource", "provider", "list"), 60, "the compute host to register")
    server = c.json("ferrostack-demo", "server", "create", "--image", "volcrash-guest", "--flavor",
                    "volcrash.nano", "--wait", "volcrash-vm", timeout=300)
    assert server["status"] == "ACTIVE", server
    c.server = server["id"]
    c.domain = c.json("ferrostack", "server", "show", c.server)["OS-EXT-SRV-ATTR:instance_name"]
    yield c
    if c.proc.poll() is None:
        c.run("ferrostack-demo", "server", "delete", "--wait", c.server, check=False, timeout=180)
        c.stop()
    c.remove_files()


def domain_targets(cloud):
    out = subprocess.run(["virsh", "-q", "-c", "qemu:///system", "domblklist", cloud.domain],
                         capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def outcome(cloud, volume):
    """`attached` or `detached` once the volume, the server and the domain agree; None before."""
    status = cloud.json("ferrostack-demo", "volume", "show", volume)["status"]
    listed = [a["Volume ID"] for a in cloud.json("ferrostack-demo", "server", "volume", "list", cloud.server)]
    plugged = "vdb" in domain_targets(cloud)
    if status == "in-use" and listed == [volume] and plugged:
        return "attached"
    if status == "available" and listed == [] and not plugged:
        return "detached"
    return None


def settle(cloud, volume):
    return wait(lambda: outcome(cloud, volume), 240, f"volume {volume} to settle attached or detached")


def new_volume(cloud, name):
    volume = cloud.json("ferrostack-demo", "volume", "create", "--size", "1", name)["id"]
    wait(lambda: cloud.json("ferrostack-demo", "volume", "show", volume)["status"] == "available", 60,
         f"volume {name}")
    return volume


def crash_during(cloud, point, *command):
    """Runs the CLI `command` (as the demo user) on a process armed with `point`, waits for the
    crash and restarts the process."""
    restart(cloud, point)
    cloud.run("ferrostack-demo", *command, check=False)
    wait_crashed(cloud)
    restart(cloud)


def detach_and_delete(cloud, volume):
    if outcome(cloud, volume) == "attached":
        cloud.run("ferrostack-demo", "server", "remove", "volume", cloud.server, volume)
        wait(lambda: outcome(cloud, volume) == "detached", 120, "detached")
    cloud.run("ferrostack-demo", "volume", "delete", volume)


@pytest.mark.slow
@pytest.mark.parametrize("point", ATTACH_POINTS)
def test_crash_during_attach(crash_cloud, point):
    cloud = crash_cloud
    volume = new_volume(cloud, f"att-{point.replace(':', '-')}")
    crash_during(cloud, point, "server", "add", "volume", cloud.server, volume)
    assert settle(cloud, volume) in ("attached", "detached")
    detach_and_delete(cloud, volume)


@pytest.mark.slow
@pytest.mark.parametrize("point", DETACH_POINTS)
def test_crash_during_detach(crash_cloud, point):
    cloud = crash_cloud
    volume = new_volume(cloud, f"det-{point.replace(':', '-')}")
    cloud.run("ferrostack-demo", "server", "add", "volume", cloud.server, volume)
    wait(lambda: outcome(cloud, volume) == "attached", 120, "attached")
    crash_during(cloud, point, "server", "remove", "volume", cloud.server, volume)
    assert settle(cloud, volume) in ("attached", "detached")
    detach_and_delete(cloud, volume)


@pytest.mark.slow
def test_crash_during_delete_leaves_no_file(crash_cloud):
    cloud = crash_cloud
    volume = new_volume(cloud, "del-crash")
    path = os.path.join(cloud.volumes, f"volume-{volume}")
    assert os.path.exists(path)
    crash_during(cloud, "volume:after-data-deleted", "volume", "delete", volume)
    wait(lambda: cloud.run("ferrostack-demo", "volume", "show", volume, check=False).returncode != 0, 120,
         "the volume deleted after the restart")
    assert not os.path.exists(path)

