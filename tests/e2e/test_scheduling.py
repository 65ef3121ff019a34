"""Scheduling with the real openstack CLI and real guests: availability zones from host
aggregates, Nova's refusal of a zone that does not exist, and the aggregate and capabilities
filters over flavor extra specs, the image properties filter over what the hypervisor reports.
Its own cloud (the aggregate filter enabled), so the zones it makes do not touch other modules'
servers. Two guests boot; the refusals boot none."""
import os
import platform
import shutil
import tempfile
import time

import pytest

from conftest import Cloud, wait

GUEST_DIR = os.environ.get("FERROSTACK_GUEST_IMAGE_DIR", os.path.expanduser("~/.cache/ferrostack/guest-image"))
NO_VALID_HOST = "No valid host was found"
FILTERS = ("ComputeFilter,ComputeCapabilitiesFilter,ImagePropertiesFilter,ServerGroupAntiAffinityFilter,"
           "ServerGroupAffinityFilter,AggregateInstanceExtraSpecsFilter")


@pytest.fixture(scope="module")
def cloud():
    """A cloud of this module's own with AggregateInstanceExtraSpecsFilter enabled (through the
    environment override of `[compute] enabled_filters`)."""
    root = tempfile.mkdtemp(prefix="ferrostack-e2e-sched-")
    saved = os.environ.get("FERROSTACK__COMPUTE__ENABLED_FILTERS")
    os.environ["FERROSTACK__COMPUTE__ENABLED_FILTERS"] = FILTERS
    try:
        c = Cloud(root)
    finally:
        if saved is None:
            del os.environ["FERROSTACK__COMPUTE__ENABLED_FILTERS"]
        else:
            os.environ["FERROSTACK__COMPUTE__ENABLED_FILTERS"] = saved
    yield c
    c.stop()
    if not os.environ.get("FERROSTACK_KEEP_E2E"):
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(c.instances, ignore_errors=True)


@pytest.fixture(scope="module")
def guest(cloud):
    """The test guest as a public image, a small flavor, the compute host registered."""
    path = os.path.join(GUEST_DIR, "disk.qcow2")
    if not os.path.exists(path):
        pytest.fail(f"test guest image missing: run scripts/build-guest-image.sh ({path})")
    # Every boot asks ImagePropertiesFilter for this host's architecture and QEMU guests, which
    # the host's agent reports from libvirt's capabilities.
    image = cloud.json("ferrostack", "image", "create", "--public", "--disk-format", "qcow2",
                       "--container-format", "bare", "--file", path,
                       "--property", f"hw_architecture={platform.machine()}",
                       "--property", "img_hv_type=qemu", "sched-guest")
    cloud.json("ferrostack", "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "sched.nano")
    wait(lambda: cloud.json("ferrostack", "resource", "provider", "list"), 60, "the compute host to register")
    return image["id"]


@pytest.fixture(scope="module")
def az1(cloud, guest):
    """An aggregate holding the cloud's only host, making it zone az1."""
    cloud.json("ferrostack", "aggregate", "create", "--zone", "az1", "fast")
    cloud.run("ferrostack", "aggregate", "add", "host", "fast", cloud.host)
    return "fast"


def boot(cloud, image, flavor, name, *extra, check=True):
    return cloud.run("ferrostack-demo", "server", "create", "--image", image, "--flavor", flavor,
                     *extra, "--wait", name, check=check, timeout=300)


def show(cloud, name):
    return cloud.json("ferrostack-demo", "server", "show", name)


@pytest.mark.slow
def test_a_server_asking_for_an_aggregate_zone_boots_there(cloud, guest, az1, unique):
    # Every view of the host agrees on its zone.
    zones = {z["Zone Name"]: z["Zone Status"] for z in cloud.json("ferrostack", "availability", "zone", "list", "--compute")}
    assert zones.get("az1") == "available", zones
    assert "nova" not in zones, "the only host left the default zone"
    services = cloud.json("ferrostack", "compute", "service", "list", "--service", "nova-compute")
    assert [(s["Host"], s["Zone"]) for s in services] == [(cloud.host, "az1")]
    assert cloud.json("ferrostack", "aggregate", "show", az1)["availability_zone"] == "az1"

    name = f"in-az1-{unique}"
    boot(cloud, guest, "sched.nano", name, "--availability-zone", "az1")
    server = show(cloud, name)
    assert server["status"] == "ACTIVE", server
    assert server["OS-EXT-AZ:availability_zone"] == "az1"
    admin_view = cloud.json("ferrostack", "server", "show", server["id"])
    assert admin_view["OS-EXT-SRV-ATTR:host"] == cloud.host
    cloud.run("ferrostack-demo", "server", "delete", "--wait", name, timeout=180)


def test_a_zone_that_does_not_exist_is_refused(cloud, guest, az1, unique):
    out = boot(cloud, guest, "sched.nano", f"nowhere-{unique}", "--availability-zone", "nonexistent",
               check=False)
    assert out.returncode != 0
    assert "The requested availability zone is not available" in out.stderr
    assert "400" in out.stderr
    # The default zone has no enabled host any more (its only host is in az1): refused too.
    out = boot(cloud, guest, "sched.nano", f"default-{unique}", "--availability-zone", "nova", check=False)
    assert out.returncode != 0 and "The requested availability zone is not available" in out.stderr
    # Forcing a host is for admins.
    out = boot(cloud, guest, "sched.nano", f"forced-{unique}", "--availability-zone", f"az1:{cloud.host}",
               check=False)
    assert out.returncode != 0 and "403" in out.stderr
    names = [s["Name"] for s in cloud.json("ferrostack", "server", "list", "--all-projects")]
    assert not [n for n in names if n.endswith(unique)], names


@pytest.mark.slow
def test_aggregate_extra_specs_need_matching_aggregate_metadata(cloud, guest, az1, unique):
    flavor = f"sched.ssd-{unique}"
    cloud.json("ferrostack", "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1",
               "--property", "aggregate_instance_extra_specs:ssd=true", flavor)
    first = f"ssd-early-{unique}"
    out = boot(cloud, guest, flavor, first, check=False)
    assert out.returncode != 0
    server = show(cloud, first)
    assert server["status"] == "ERROR", server
    assert NO_VALID_HOST in server["fault"]["message"]
    assert not cloud.domains(), "no guest was started"

    # The capabilities filter (on by default) reads the host's hypervisor as the hypervisors
    # API shows it: what libvirt reported, not placeholders.
    hypervisor = cloud.json("ferrostack", "hypervisor", "show", cloud.host)
    assert hypervisor["hypervisor_type"] == "QEMU"
    assert int(hypervisor["hypervisor_version"]) > 1_000_000, hypervisor
    xen = f"sched.xen-{unique}"
    cloud.json("ferrostack", "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1",
               "--property", "capabilities:hypervisor_type=s== Xen", "--property",
               "aggregate_instance_extra_specs:ssd=true", xen)

    cloud.run("ferrostack", "aggregate", "set", "--property", "ssd=true", az1)
    out = boot(cloud, guest, xen, f"xen-{unique}", check=False)
    assert out.returncode != 0
    assert NO_VALID_HOST in show(cloud, f"xen-{unique}")["fault"]["message"]

    # An image for an architecture the host does not run has no host.
    cloud.run("ferrostack", "image", "set", "--property", "hw_architecture=s390x", guest)
    out = boot(cloud, guest, flavor, f"s390x-{unique}", check=False)
    cloud.run("ferrostack", "image", "set", "--property", f"hw_architecture={platform.machine()}", guest)
    assert out.returncode != 0
    assert NO_VALID_HOST in show(cloud, f"s390x-{unique}")["fault"]["message"]
    assert not cloud.domains(), "no guest was started"

    # The real hypervisor meets requirements on its type, version and CPU.
    cloud.run("ferrostack", "flavor", "set", "--property", "capabilities:hypervisor_type=QEMU",
              "--property", "capabilities:hypervisor_version=>= 1000000",
              "--property", f"capabilities:cpu_info:arch={platform.machine()}", flavor)
    name = f"ssd-{unique}"
    boot(cloud, guest, flavor, name)
    server = show(cloud, name)
    assert server["status"] == "ACTIVE", server
    assert server["OS-EXT-AZ:availability_zone"] == "az1", "placed without asking: its host's zone"
    for n in (first, f"xen-{unique}", f"s390x-{unique}", name):
        cloud.run("ferrostack-demo", "server", "delete", "--wait", n, timeout=180)
