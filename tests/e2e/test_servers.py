"""Servers with the real openstack CLI, booting real QEMU guests (TCG) through libvirt: the test
guest image (tests/guest-image) reports on its serial console what it read from its config drive,
and the test reads that back with `console log show`."""
import os
import subprocess
import time

import pytest

GUEST_DIR = os.environ.get("FERROSTACK_GUEST_IMAGE_DIR", os.path.expanduser("~/.cache/ferrostack/guest-image"))


def virsh(*args):
    return subprocess.run(["virsh", "-q", "-c", "qemu:///system", *args], capture_output=True, text=True)


def domstate(name):
    return virsh("domstate", name).stdout.strip()


def wait(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def guest(cloud):
    """The test guest uploaded as public images (whole disk, and kernel + ramdisk), a flavor,
    and the compute host registered."""
    for f in ("disk.qcow2", "vmlinuz", "initrd.img"):
        if not os.path.exists(os.path.join(GUEST_DIR, f)):
            pytest.fail(f"test guest image missing: run scripts/build-guest-image.sh ({GUEST_DIR}/{f})")
    disk = cloud.json("ferrostack", "image", "create", "--public", "--disk-format", "qcow2",
                      "--container-format", "bare", "--file", os.path.join(GUEST_DIR, "disk.qcow2"),
                      "e2e-guest")
    kernel = cloud.json("ferrostack", "image", "create", "--public", "--disk-format", "aki",
                        "--container-format", "aki", "--file", os.path.join(GUEST_DIR, "vmlinuz"),
                        "e2e-guest-kernel")
    ramdisk = cloud.json("ferrostack", "image", "create", "--public", "--disk-format", "ari",
                         "--container-format", "ari", "--file", os.path.join(GUEST_DIR, "initrd.img"),
                         "e2e-guest-ramdisk")
    ami = cloud.json("ferrostack", "image", "create", "--public", "--disk-format", "ami",
                     "--container-format", "ami", "--file", os.path.join(GUEST_DIR, "disk.qcow2"),
                     "--property", f"kernel_id={kernel['id']}", "--property", f"ramdisk_id={ramdisk['id']}",
                     "--property", "os_command_line=console=tty0 console=ttyS0",
                     "e2e-guest-kernel-boot")
    cloud.json("ferrostack", "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "e2e.nano")
    wait(lambda: cloud.json("ferrostack", "resource", "provider", "list"), 60, "the compute host to register")
    return {"disk": disk["id"], "ami": ami["id"]}


def console(cloud, server):
    return cloud.run("ferrostack-demo", "console", "log", "show", server).stdout


def instance_name(cloud, server):
    return cloud.json("ferrostack", "server", "show", server)["OS-EXT-SRV-ATTR:instance_name"]


@pytest.mark.slow
@pytest.mark.parametrize("form", ["disk", "ami"])
def test_boot_stop_start_reboot_delete(cloud, guest, unique, form):
    name = f"vm-{form}-{unique}"
    server = cloud.json("ferrostack-demo", "server", "create", "--image", guest[form], "--flavor", "e2e.nano",
                        "--config-drive", "True", "--wait", name, timeout=300)
    assert server["status"] == "ACTIVE", server
    uuid = server["id"]
    domain = instance_name(cloud, uuid)
    assert domain in cloud.domains()
    assert domstate(domain) == "running"
    # The guest read its identity from our config drive.
    log = wait(lambda: (lambda out: out if f"configdrive uuid={uuid}" in out else None)(console(cloud, uuid)),
               180, "the guest to print its config drive uuid")
    assert "FERROSTACK-GUEST: boot" in log
    tail = cloud.run("ferrostack-demo", "console", "log", "show", "--lines", "3", uuid).stdout
    assert len(tail.rstrip("\n").split("\n")) <= 3

    cloud.run("ferrostack-demo", "server", "stop", uuid)
    wait(lambda: cloud.json("ferrostack-demo", "server", "show", uuid)["status"] == "SHUTOFF", 120, "SHUTOFF")
    assert domstate(domain) == "shut off"
    cloud.run("ferrostack-demo", "server", "start", uuid)
    wait(lambda: cloud.json("ferrostack-demo", "server", "show", uuid)["status"] == "ACTIVE", 120, "ACTIVE")
    assert domstate(domain) == "running"
    cloud.run("ferrostack-demo", "server", "reboot", "--hard", "--wait", uuid, timeout=180)
    assert domstate(domain) == "running"
    actions = [a["Action"] for a in cloud.json("ferrostack-demo", "server", "event", "list", uuid)]
    assert actions == ["reboot", "start", "stop", "create"]

    # Placement holds the flavor while the server lives.
    providers = cloud.json("ferrostack", "resource", "provider", "list")
    usage = {u["resource_class"]: u["usage"] for u in
             cloud.json("ferrostack", "resource", "provider", "usage", "show", providers[0]["uuid"])}
    assert usage["MEMORY_MB"] >= 256

    cloud.run("ferrostack-demo", "server", "delete", "--wait", uuid, timeout=180)
    assert domain not in cloud.domains()
    assert not os.path.exists(os.path.join(cloud.instances, uuid))
    allocations = cloud.request("GET", f"/placement/allocations/{uuid}",
                                token=cloud.password_token("admin", cloud.admin_password, "admin")[0],
                                headers={"OpenStack-API-Version": "placement 1.28"})[2]
    assert allocations["allocations"] == {}


def test_quota_exceeded_is_403_with_novas_message(cloud, guest, unique):
    flavor = f"e2e.huge-{unique}"
    cloud.json("ferrostack", "flavor", "create", "--ram", "60000", "--disk", "1", "--vcpus", "1", flavor)
    out = cloud.run("ferrostack-demo", "server", "create", "--image", guest["disk"], "--flavor", flavor,
                    f"big-{unique}", check=False)
    assert out.returncode != 0
    assert "Quota exceeded for ram: Requested 60000, but already used 0 of 51200 ram" in out.stderr
    assert "403" in out.stderr


def test_other_projects_cannot_see_servers(cloud, guest, unique):
    name = f"private-{unique}"
    server = cloud.json("ferrostack-demo", "server", "create", "--image", guest["disk"], "--flavor", "e2e.nano",
                        name)
    try:
        listed = [s["Name"] for s in cloud.json("ferrostack", "server", "list")]
        assert name not in listed, "admin without --all-projects sees only its project"
        assert name in [s["Name"] for s in cloud.json("ferrostack", "server", "list", "--all-projects")]
    finally:
        cloud.run("ferrostack-demo", "server", "delete", "--wait", server["id"], timeout=180)
