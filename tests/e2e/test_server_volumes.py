"""Volumes in real guests with the real openstack CLI: `server add volume` hot-plugs the volume's
file into the running QEMU guest as a virtio disk, and the test guest (tests/guest-image) reports
on its serial console the disks it sees, writes a marker to the new disk when its user data asks
(`write-mark=vdb:<token>`), and reports the marker of a disk that already has one. So data
written in one guest is read back in another after detach and re-attach."""
import os
import re

import pytest

from conftest import wait

GUEST_DIR = os.environ.get("FERROSTACK_GUEST_IMAGE_DIR", os.path.expanduser("~/.cache/ferrostack/guest-image"))

GIB_SECTORS = (1 << 30) // 512


@pytest.fixture(scope="module")
def guest(cloud):
    """The test guest (whole disk) as a public image, and a flavor."""
    path = os.path.join(GUEST_DIR, "disk.qcow2")
    if not os.path.exists(path):
        pytest.fail(f"test guest image missing: run scripts/build-guest-image.sh ({path})")
    image = cloud.json("ferrostack", "image", "create", "--public", "--disk-format", "qcow2",
                       "--container-format", "bare", "--file", path, "vol-guest")
    cloud.json("ferrostack", "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "vol.nano")
    wait(lambda: cloud.json("ferrostack", "resource", "provider", "list"), 60, "the compute host to register")
    return image["id"]


def console(cloud, server):
    return cloud.run("ferrostack", "console", "log", "show", server).stdout.replace("\r", "")


def wait_console(cloud, server, pattern, timeout=240):
    """The last match of `pattern` (a regex) in the server's console log."""
    def found():
        matches = list(re.finditer(pattern, console(cloud, server), re.M))
        return matches[-1] if matches else None
    return wait(found, timeout, f"{pattern!r} on the console of {server}")


def boot(cloud, name, image, user_data):
    path = f"/tmp/{name}.user-data"
    with open(path, "w") as f:
        f.write(user_data + "\n")
    try:
        server = cloud.json("ferrostack-demo", "server", "create", "--image", image, "--flavor", "vol.nano",
                            "--config-drive", "True", "--user-data", path, "--wait", name, timeout=300)
    finally:
        os.unlink(path)
    assert server["status"] == "ACTIVE", server
    return server["id"]


def volume_status(cloud, volume):
    return cloud.json("ferrostack-demo", "volume", "show", volume)["status"]


def wait_volume(cloud, volume, status, timeout=120):
    wait(lambda: volume_status(cloud, volume) == status, timeout, f"volume {volume} {status}")


def disks_line(cloud, server):
    return wait_console(cloud, server, r"^FERROSTACK-GUEST: disks (.*)$").group(1).split()


@pytest.mark.slow
def test_attach_write_detach_reattach_elsewhere(cloud, guest, unique):
    token = f"tok{unique}"
    a = boot(cloud, f"vola-{unique}", guest, f"write-mark=vdb:{token}")
    b = boot(cloud, f"volb-{unique}", guest, "nothing-to-do")
    wait_console(cloud, a, r"^FERROSTACK-GUEST: disks vda:\d+$")
    volume = cloud.json("ferrostack-demo", "volume", "create", "--size", "1", f"data-{unique}")["id"]
    wait_volume(cloud, volume, "available")

    cloud.run("ferrostack-demo", "server", "add", "volume", a, volume)
    wait_volume(cloud, volume, "in-use")
    attachments = cloud.json("ferrostack-demo", "server", "volume", "list", a)
    assert [x["Volume ID"] for x in attachments] == [volume]
    assert attachments[0]["Device"] == "/dev/vdb"
    # The guest sees a new 1 GiB disk and writes its marker on it.
    wait_console(cloud, a, rf"^FERROSTACK-GUEST: disks vda:\d+ vdb:{GIB_SECTORS}$")
    wait_console(cloud, a, rf"^FERROSTACK-GUEST: wrote-mark vdb {token}$")
    shown = cloud.json("ferrostack-demo", "volume", "show", volume)
    assert shown["attachments"][0]["server_id"] == a
    assert volume in str(cloud.json("ferrostack-demo", "server", "show", a)["volumes_attached"])

    # Attached volumes are not deleted.
    assert cloud.run("ferrostack-demo", "volume", "delete", volume, check=False).returncode != 0

    cloud.run("ferrostack-demo", "server", "remove", "volume", a, volume)
    wait_volume(cloud, volume, "available")
    wait_console(cloud, a, r"^FERROSTACK-GUEST: disks vda:\d+$")
    assert cloud.json("ferrostack-demo", "server", "volume", "list", a) == []

    # The data survived: another guest finds the marker on the same volume.
    cloud.run("ferrostack-demo", "server", "add", "volume", b, volume)
    wait_volume(cloud, volume, "in-use")
    wait_console(cloud, b, rf"^FERROSTACK-GUEST: mark vdb FERROSTACK-MARK:{token}$")

    # Deleting the server gives the volume back (not deleted: delete_on_termination is off).
    cloud.run("ferrostack-demo", "server", "delete", "--wait", b, timeout=180)
    wait_volume(cloud, volume, "available")
    cloud.run("ferrostack-demo", "server", "delete", "--wait", a, timeout=180)
    cloud.run("ferrostack-demo", "volume", "delete", volume)


@pytest.mark.slow
def test_attach_refusals_and_isolation(cloud, guest, unique):
    server = boot(cloud, f"volr-{unique}", guest, "nothing-to-do")
    # A volume of the admin project is not the demo member's to attach.
    foreign = cloud.json("ferrostack", "volume", "create", "--size", "1", f"foreign-{unique}")["id"]
    wait(lambda: cloud.json("ferrostack", "volume", "show", foreign)["status"] == "available", 60, "foreign")
    refused = cloud.run("ferrostack-demo", "server", "add", "volume", server, foreign, check=False)
    assert refused.returncode != 0
    assert cloud.json("ferrostack", "volume", "show", foreign)["status"] == "available"
    # A volume that is in use cannot be attached again.
    volume = cloud.json("ferrostack-demo", "volume", "create", "--size", "1", f"twice-{unique}")["id"]
    wait_volume(cloud, volume, "available")
    cloud.run("ferrostack-demo", "server", "add", "volume", server, volume)
    wait_volume(cloud, volume, "in-use")
    again = cloud.run("ferrostack-demo", "server", "add", "volume", server, volume, check=False)
    assert again.returncode != 0
    # delete_on_termination (2.79): deleting the server deletes the volume.
    token, _ = cloud.password_token("demo", cloud.demo_password, "demo")
    other = cloud.json("ferrostack-demo", "volume", "create", "--size", "1", f"dot-{unique}")["id"]
    wait_volume(cloud, other, "available")
    status, _, body = cloud.request(
        "POST", f"/compute/v2.1/servers/{server}/os-volume_attachments", token=token,
        headers={"OpenStack-API-Version": "compute 2.89"},
        body={"volumeAttachment": {"volumeId": other, "delete_on_termination": True}})
    assert status == 200, body
    assert body["volumeAttachment"]["device"] == "/dev/vdc"
    assert body["volumeAttachment"]["delete_on_termination"] is True
    assert body["volumeAttachment"]["attachment_id"] and "id" not in body["volumeAttachment"]
    wait_volume(cloud, other, "in-use")
    cloud.run("ferrostack-demo", "server", "delete", "--wait", server, timeout=180)
    wait_volume(cloud, volume, "available")
    wait(lambda: cloud.run("ferrostack-demo", "volume", "show", other, check=False).returncode != 0,
         120, "the delete_on_termination volume deleted")
    cloud.run("ferrostack-demo", "volume", "delete", volume)
    cloud.run("ferrostack", "volume", "delete", foreign)


@pytest.mark.slow
def test_boot_from_volume_with_a_data_volume(cloud, guest, unique):
    """`server create --volume`: the guest's root disk is the volume's file (2 GiB here, the
    flavor's disk is 1 GiB), a data volume given with `--block-device` comes along as vdb, the
    volumes are in use while the server lives, and deleting the server gives the boot volume back
    and deletes the data volume marked delete_on_termination."""
    root = cloud.json("ferrostack-demo", "volume", "create", "--image", "vol-guest", "--size", "2",
                      f"root-{unique}", timeout=180)["id"]
    data = cloud.json("ferrostack-demo", "volume", "create", "--size", "1", f"bfv-data-{unique}")["id"]
    wait_volume(cloud, root, "available", timeout=180)
    wait_volume(cloud, data, "available")
    assert cloud.json("ferrostack-demo", "volume", "show", root)["bootable"] in (True, "true")
    # A volume that is not bootable is no root disk.
    refused = cloud.run("ferrostack-demo", "server", "create", "--volume", data, "--flavor", "vol.nano",
                        f"bfv-bad-{unique}", check=False)
    assert refused.returncode != 0 and "not bootable" in refused.stderr, refused.stderr

    token = f"bfv{unique}"
    path = f"/tmp/bfv-{unique}.user-data"
    with open(path, "w") as f:
        f.write(f"write-mark=vdb:{token}\n")
    try:
        server = cloud.json(
            "ferrostack-demo", "server", "create", "--volume", root, "--flavor", "vol.nano",
            "--block-device",
            f"uuid={data},source_type=volume,destination_type=volume,delete_on_termination=true",
            "--config-drive", "True", "--user-data", path, "--wait", f"bfv-{unique}", timeout=300)
    finally:
        os.unlink(path)
    assert server["status"] == "ACTIVE", server
    uuid = server["id"]
    shown = cloud.json("ferrostack-demo", "server", "show", uuid)
    assert "booted from volume" in str(shown["image"]), shown["image"]
    # The root disk is the 2 GiB volume, the data volume is vdb and gets the mark.
    wait_console(cloud, uuid, rf"^FERROSTACK-GUEST: disks vda:{2 * GIB_SECTORS} vdb:{GIB_SECTORS}$")
    wait_console(cloud, uuid, rf"^FERROSTACK-GUEST: wrote-mark vdb {token}$")
    attachments = {x["Volume ID"]: x["Device"]
                   for x in cloud.json("ferrostack-demo", "server", "volume", "list", uuid)}
    assert attachments == {root: "/dev/vda", data: "/dev/vdb"}
    for volume in (root, data):
        assert volume_status(cloud, volume) == "in-use"
    # The root volume stays: detaching it is refused.
    refused = cloud.run("ferrostack-demo", "server", "remove", "volume", uuid, root, check=False)
    assert refused.returncode != 0
    assert volume_status(cloud, root) == "in-use"

    cloud.run("ferrostack-demo", "server", "delete", "--wait", uuid, timeout=180)
    wait_volume(cloud, root, "available")
    wait(lambda: cloud.run("ferrostack-demo", "volume", "show", data, check=False).returncode != 0,
         120, "the delete_on_termination data volume deleted")
    cloud.run("ferrostack-demo", "volume", "delete", root)


@pytest.mark.slow
def test_boot_from_a_volume_made_from_an_image(cloud, guest, unique):
    """`server create --image I --boot-from-volume 2`: the volume is made from the image at boot,
    in the caller's project, and is the guest's 2 GiB root disk."""
    server = cloud.json("ferrostack-demo", "server", "create", "--image", "vol-guest", "--boot-from-volume", "2",
                        "--flavor", "vol.nano", "--wait", f"bfvi-{unique}", timeout=400)
    assert server["status"] == "ACTIVE", server
    uuid = server["id"]
    attachments = cloud.json("ferrostack-demo", "server", "volume", "list", uuid)
    assert [a["Device"] for a in attachments] == ["/dev/vda"], attachments
    volume = attachments[0]["Volume ID"]
    shown = cloud.json("ferrostack-demo", "volume", "show", volume)
    assert (shown["status"], shown["size"]) == ("in-use", 2), shown
    assert shown["bootable"] in (True, "true")
    wait_console(cloud, uuid, rf"^FERROSTACK-GUEST: disks vda:{2 * GIB_SECTORS}$")
    # An image→volume mapping needs a size; a missing image is refused before anything is made.
    token, _ = cloud.password_token("demo", cloud.demo_password, "demo")
    flavor = cloud.json("ferrostack", "flavor", "show", "vol.nano")["id"]
    status, _, body = cloud.request("POST", "/compute/v2.1/servers", token=token, body={"server": {
        "name": "nosize", "flavorRef": flavor, "imageRef": "",
        "block_device_mapping_v2": [{"uuid": guest, "boot_index": 0, "source_type": "image",
                                     "destination_type": "volume"}]}})
    assert status == 400 and "non-zero size" in str(body), body
    cloud.run("ferrostack-demo", "server", "delete", "--wait", uuid, timeout=180)
    gone = cloud.run("ferrostack-demo", "volume", "show", volume, check=False).returncode != 0
    if not gone:
        wait_volume(cloud, volume, "available")
        cloud.run("ferrostack-demo", "volume", "delete", volume)


@pytest.mark.slow
def test_extend_an_attached_volume(cloud, guest, unique):
    """`volume set --size` on an in-use volume (3.42): the file grows under the running guest,
    Nova's `volume-extended` event reaches the guest's host, and the guest sees the new size."""
    server = boot(cloud, f"volx-{unique}", guest, "nothing-to-do")
    volume = cloud.json("ferrostack-demo", "volume", "create", "--size", "1", f"grow-{unique}")["id"]
    wait_volume(cloud, volume, "available")
    cloud.run("ferrostack-demo", "server", "add", "volume", server, volume)
    wait_volume(cloud, volume, "in-use")
    wait_console(cloud, server, rf"^FERROSTACK-GUEST: disks vda:\d+ vdb:{GIB_SECTORS}$")
    # Before 3.42 an attached volume is not extended.
    refused = cloud.run("ferrostack-demo", "--os-volume-api-version", "3.41", "volume", "set", "--size", "2",
                        volume, check=False)
    assert refused.returncode != 0
    cloud.run("ferrostack-demo", "--os-volume-api-version", "3.42", "volume", "set", "--size", "2", volume)
    wait(lambda: cloud.json("ferrostack-demo", "volume", "show", volume)["size"] == 2, 60, "the volume extended")
    wait_volume(cloud, volume, "in-use")
    wait_console(cloud, server, rf"^FERROSTACK-GUEST: disks vda:\d+ vdb:{2 * GIB_SECTORS}$")
    cloud.run("ferrostack-demo", "server", "delete", "--wait", server, timeout=180)
    wait_volume(cloud, volume, "available")
    cloud.run("ferrostack-demo", "volume", "delete", volume)


@pytest.mark.slow
def test_upload_a_volume_to_an_image_and_boot_from_it(cloud, guest, unique):
    """A volume made from the guest image and uploaded to Glance (`image create --volume`, as
    qcow2) is a bootable image: a server booted from it reads its identity from the config
    drive."""
    vol = cloud.json("ferrostack-demo", "volume", "create", "--image", "vol-guest", "--size", "1",
                     f"upload-{unique}")
    wait_volume(cloud, vol["id"], "available")
    name = f"uploaded-{unique}"
    cloud.run("ferrostack-demo", "image", "create", "--volume", vol["id"], "--disk-format", "qcow2", name)
    image = wait(lambda: next((i for i in cloud.json("ferrostack-demo", "image", "list", "--long")
                               if i["Name"] == name and i["Status"] == "active"), None),
                 180, "the uploaded image to be active")
    shown = cloud.json("ferrostack-demo", "image", "show", image["ID"])
    assert shown["disk_format"] == "qcow2", shown
    wait_volume(cloud, vol["id"], "available")
    server = boot(cloud, f"fromupload-{unique}", image["ID"], "hello")
    wait_console(cloud, server, rf"^FERROSTACK-GUEST: configdrive uuid={server} ")
    cloud.run("ferrostack-demo", "server", "delete", "--wait", server, timeout=180)
    cloud.run("ferrostack-demo", "image", "delete", image["ID"])
    cloud.run("ferrostack-demo", "volume", "delete", vol["id"])
