"""Servers with the real openstack CLI, booting real QEMU guests (TCG) through libvirt: the test
guest image (tests/guest-image) reports on its serial console what it read from its config drive,
and the test reads that back with `console log show`."""
import os
import re
import subprocess
import time

import pytest

from conftest import wait

GUEST_DIR = os.environ.get("FERROSTACK_GUEST_IMAGE_DIR", os.path.expanduser("~/.cache/ferrostack/guest-image"))


def virsh(*args):
    return subprocess.run(["virsh", "-q", "-c", "qemu:///system", *args], capture_output=True, text=True)


def domstate(name):
    return virsh("domstate", name).stdout.strip()


@pytest.fixture(scope="module")
def guest(cloud, tmp_path_factory):
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
    # An AMI is a raw disk (the agent refuses content that does not match the disk format).
    raw = tmp_path_factory.mktemp("ami") / "disk.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", os.path.join(GUEST_DIR, "disk.qcow2"), str(raw)],
                   check=True)
    ami = cloud.json("ferrostack", "image", "create", "--public", "--disk-format", "ami",
                     "--container-format", "ami", "--file", str(raw),
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
    assert re.search(r"Quota exceeded for ram: Requested 60000, but already used \d+ of 51200 ram", out.stderr)
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


def test_metadata_service_answers_signed_requests_only(cloud, guest, unique):
    """The metadata service behind 169.254.169.254 (reached through the network metadata proxy,
    which signs the instance id with the shared secret)."""
    import hashlib
    import hmac
    import json
    import urllib.error
    import urllib.request

    server = cloud.json("ferrostack-demo", "server", "create", "--image", guest["disk"], "--flavor", "e2e.nano",
                        "--property", "role=web", f"md-{unique}")
    try:
        shown = cloud.json("ferrostack-demo", "server", "show", server["id"])
        project = shown["project_id"]
        secret = open(os.path.join(cloud.state, "metadata-proxy-secret")).read().strip()

        def get(path, instance=server["id"], tenant=project, signature=None):
            sig = signature or hmac.new(secret.encode(), instance.encode(), hashlib.sha256).hexdigest()
            req = urllib.request.Request(f"http://127.0.0.1:{cloud.metadata_port}{path}", headers={
                "X-Instance-ID": instance, "X-Tenant-ID": tenant, "X-Instance-ID-Signature": sig})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()

        status, body = get("/openstack/latest/meta_data.json")
        assert status == 200, body
        meta = json.loads(body)
        assert meta["uuid"] == server["id"] and meta["meta"] == {"role": "web"}
        assert meta["hostname"] == f"md-{unique}.novalocal"
        assert get("/openstack/latest/meta_data.json", signature="0" * 64)[0] == 403
        assert get("/openstack/latest/meta_data.json", tenant="someone-else")[0] == 404
        assert get("/latest/meta-data/instance-id")[1].startswith("i-")
    finally:
        cloud.run("ferrostack-demo", "server", "delete", "--wait", server["id"], timeout=180)


def test_anti_affinity_beyond_hosts_is_error_with_fault(cloud, guest, unique):
    """One compute host: the second member of an anti-affinity group has nowhere to go."""
    group = cloud.json("ferrostack-demo", "server", "group", "create", "--policy", "anti-affinity", f"aa-{unique}")
    first = cloud.json("ferrostack-demo", "server", "create", "--image", guest["disk"], "--flavor", "e2e.nano",
                       "--hint", f"group={group['id']}", f"aa1-{unique}")
    second = None
    try:
        # The first member holds the host once it is scheduled.
        wait(lambda: cloud.json("ferrostack", "server", "show", first["id"])["OS-EXT-SRV-ATTR:host"], 60,
             "the first member to be scheduled")
        second = cloud.json("ferrostack-demo", "server", "create", "--image", guest["disk"], "--flavor",
                            "e2e.nano", "--hint", f"group={group['id']}", f"aa2-{unique}")
        shown = wait(lambda: (lambda s: s if s["status"] != "BUILD" else None)(
            cloud.json("ferrostack-demo", "server", "show", second["id"])), 60, "the second member to settle")
        assert shown["status"] == "ERROR"
        assert "No valid host was found" in shown["fault"]["message"]
    finally:
        for s in (first, second):
            if s:
                cloud.run("ferrostack-demo", "server", "delete", "--wait", s["id"], timeout=180)
        cloud.run("ferrostack-demo", "server", "group", "delete", group["id"])
