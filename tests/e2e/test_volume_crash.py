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


BOOT_POINTS = [
    "conductor:after-volume-reserved",
    "conductor:after-boot-volume-connected",
]


@pytest.mark.slow
@pytest.mark.parametrize("point", BOOT_POINTS)
def test_crash_during_boot_from_volume(crash_cloud, point):
    """A crash while a server's boot volume is being connected: after the restart the server
    boots from it (`ACTIVE`, the volume `in-use` on /dev/vda), and deleting the server gives the
    volume back `available`."""
    cloud = crash_cloud
    name = f"bfv-{point.replace(':', '-')}"
    volume = cloud.json("ferrostack-demo", "volume", "create", "--image", "volcrash-guest", "--size", "1",
                        name, timeout=180)["id"]
    wait(lambda: cloud.json("ferrostack-demo", "volume", "show", volume)["status"] == "available", 180,
         f"volume {name}")
    crash_during(cloud, point, "server", "create", "--volume", volume, "--flavor", "volcrash.nano", name)
    servers = wait(lambda: cloud.json("ferrostack-demo", "server", "list", "--name", name), 60, "the server")
    server = servers[0]["ID"]
    wait(lambda: cloud.json("ferrostack-demo", "server", "show", server)["status"] == "ACTIVE", 300,
         f"server {name} active")
    assert cloud.json("ferrostack-demo", "volume", "show", volume)["status"] == "in-use"
    listed = [(a["Volume ID"], a["Device"])
              for a in cloud.json("ferrostack-demo", "server", "volume", "list", server)]
    assert listed == [(volume, "/dev/vda")]
    attachments = cloud.json("ferrostack-demo", "volume", "show", volume)["attachments"]
    assert [a["server_id"] for a in attachments] == [server]
    cloud.run("ferrostack-demo", "server", "delete", "--wait", server, timeout=180)
    wait(lambda: cloud.json("ferrostack-demo", "volume", "show", volume)["status"] == "available", 120,
         "the boot volume given back")
    cloud.run("ferrostack-demo", "volume", "delete", volume)


def volume_ids(cloud):
    return {v["ID"] for v in cloud.json("ferrostack-demo", "volume", "list")}


def crash_booting_from_new_volume(cloud, point, name):
    """`server create --boot-from-volume` on a process armed with `point`; the server's id
    once the process runs again."""
    crash_during(cloud, point, "server", "create", "--image", "volcrash-guest", "--boot-from-volume", "1",
                 "--flavor", "volcrash.nano", name)
    servers = wait(lambda: cloud.json("ferrostack-demo", "server", "list", "--name", name), 60, "the server")
    return servers[0]["ID"]


@pytest.mark.slow
def test_crash_before_a_boot_volume_is_made_errors_the_server(crash_cloud):
    """A crash between recording a server and making its boot volume: after the restart the
    server is in ERROR with a fault (its volume was never made), and nothing is left over."""
    cloud = crash_cloud
    name = "bfv-never-made"
    before = volume_ids(cloud)
    server = crash_booting_from_new_volume(cloud, "api:after-server-recorded", name)
    wait(lambda: cloud.json("ferrostack-demo", "server", "show", server)["status"] == "ERROR", 120,
         "the server errored")
    assert "never created" in str(cloud.json("ferrostack-demo", "server", "show", server).get("fault"))
    assert volume_ids(cloud) == before
    cloud.run("ferrostack-demo", "server", "delete", "--wait", server, timeout=180)


@pytest.mark.slow
def test_crash_after_a_boot_volume_is_made_adopts_it(crash_cloud):
    """A crash right after the boot volume was made, before its id was recorded: after the
    restart the build finds the volume by its tag and the server boots from it."""
    cloud = crash_cloud
    name = "bfv-adopted"
    before = volume_ids(cloud)
    server = crash_booting_from_new_volume(cloud, "api:after-boot-volume-created", name)
    wait(lambda: cloud.json("ferrostack-demo", "server", "show", server)["status"] == "ACTIVE", 300,
         "the server active")
    made = volume_ids(cloud) - before
    assert len(made) == 1, made
    listed = [(a["Volume ID"], a["Device"]) for a in cloud.json("ferrostack-demo", "server", "volume", "list", server)]
    assert listed == [(made.pop(), "/dev/vda")]
    cloud.run("ferrostack-demo", "server", "delete", "--wait", server, timeout=180)
    for volume in volume_ids(cloud) - before:
        wait(lambda: cloud.json("ferrostack-demo", "volume", "show", volume)["status"] == "available", 120,
             "the boot volume given back")
        cloud.run("ferrostack-demo", "volume", "delete", volume)
