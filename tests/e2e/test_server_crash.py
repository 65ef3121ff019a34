"""Crashes at each step of a server boot and of a server delete (the process aborts at a named
crash point, as a `kill -9` there would). After a restart every server ends ACTIVE, ERROR with a
fault, or deleted; no libvirt domain or instance directory is left without a live server; and
Placement's usage equals the sum of the live servers' flavors."""
import os
import subprocess
import time

import pytest

from conftest import cloud_with_guest, restart, wait, wait_crashed

RAM = 256

BOOT_POINTS = [
    "conductor:after-claim",
    "conductor:after-host-set",
    "agent:after-spawning",
    "agent:after-image-cached",
    "agent:after-domain-started",
]
DELETE_POINTS = [
    "api:after-deleting",
    "agent:after-domain-destroyed",
    "conductor:after-release",
]


@pytest.fixture(scope="module")
def crash_cloud():
    c = cloud_with_guest("ferrostack-e2e-crash-", "crash-guest", "crash.nano", RAM)
    yield c
    if c.proc.poll() is None:
        c.stop()
    c.remove_files()


def servers(cloud):
    return cloud.json("ferrostack", "server", "list", "--all-projects", "--long")


def settled(cloud):
    """The servers once none is mid-operation."""
    def check():
        found = servers(cloud)
        if all(s["Status"] in ("ACTIVE", "ERROR") and not s.get("Task State") for s in found):
            return found or [None]
        return None
    found = wait(check, 240, "every server to settle")
    return [s for s in found if s]


def check_invariants(cloud):
    live = settled(cloud)
    details = [cloud.json("ferrostack", "server", "show", s["ID"]) for s in live]
    for d in details:
        if d["status"] == "ERROR":
            assert d.get("fault", {}).get("message"), f"ERROR without a fault: {d}"
    # Placement usage = the live servers' flavors (an errored server holds nothing).
    providers = cloud.json("ferrostack", "resource", "provider", "list")
    used = 0
    for p in providers:
        for u in cloud.json("ferrostack", "resource", "provider", "usage", "show", p["uuid"]):
            if u["resource_class"] == "MEMORY_MB":
                used += u["usage"]
    assert used == RAM * sum(1 for d in details if d["status"] == "ACTIVE"), (used, details)
    # Every guest and instance directory belongs to a live, built server.
    built = {d["id"] for d in details if d["status"] == "ACTIVE"}
    names = {d["OS-EXT-SRV-ATTR:instance_name"] for d in details if d["status"] == "ACTIVE"}
    assert set(cloud.domains()) == names, (cloud.domains(), names)
    dirs = {n for n in os.listdir(cloud.instances) if len(n) == 36}
    assert dirs == built, (dirs, built)
    return details


def delete_all(cloud):
    for s in servers(cloud):
        cloud.run("ferrostack", "server", "delete", "--wait", s["ID"], timeout=180)


@pytest.mark.slow
@pytest.mark.parametrize("point", BOOT_POINTS)
def test_crash_during_boot(crash_cloud, point):
    cloud = crash_cloud
    restart(cloud, point)
    wait(lambda: cloud.json("ferrostack", "resource", "provider", "list"), 60, "the compute host")
    cloud.run("ferrostack-demo", "server", "create", "--image", "crash-guest", "--flavor", "crash.nano",
              f"boot-{point.replace(':', '-')}", check=False)
    wait_crashed(cloud)
    restart(cloud)
    details = check_invariants(cloud)
    assert len(details) == 1
    assert details[0]["status"] in ("ACTIVE", "ERROR")
    delete_all(cloud)
    check_invariants(cloud)


@pytest.mark.slow
@pytest.mark.parametrize("point", DELETE_POINTS)
def test_crash_during_delete(crash_cloud, point):
    cloud = crash_cloud
    restart(cloud, point)
    wait(lambda: cloud.json("ferrostack", "resource", "provider", "list"), 60, "the compute host")
    server = cloud.json("ferrostack-demo", "server", "create", "--image", "crash-guest", "--flavor", "crash.nano",
                        "--wait", f"del-{point.replace(':', '-')}", timeout=300)
    assert server["status"] == "ACTIVE"
    cloud.run("ferrostack-demo", "server", "delete", server["id"], check=False)
    wait_crashed(cloud)
    restart(cloud)
    wait(lambda: not servers(cloud), 240, "the interrupted delete to finish")
    check_invariants(cloud)
