"""Block storage (Cinder v3 at /volume) with the real openstack CLI: volumes blank, from an
image, from a snapshot and from another volume; show/set/extend/delete; snapshots; volume types;
upload to an image; attachments through the API; quotas; isolation between projects. The data
is checked on disk (the `file` backend's files) and through the images made from volumes."""
import os
import subprocess

import pytest

from conftest import wait

GIB = 1 << 30


def status_of(cloud, cloud_name, kind, ident):
    return cloud.json(cloud_name, kind, "show", ident)["status"]


def wait_status(cloud, cloud_name, kind, ident, status, timeout=120):
    def reached():
        current = status_of(cloud, cloud_name, kind, ident)
        assert "error" not in current or "error" in status, f"{kind} {ident} went to {current}"
        return current == status

    wait(reached, timeout, f"{kind} {ident} {status}")


def wait_gone(cloud, cloud_name, kind, ident, timeout=120):
    wait(lambda: cloud.run(cloud_name, kind, "show", ident, check=False).returncode != 0,
         timeout, f"{kind} {ident} deleted")


def volume_file(cloud, volume_id):
    return os.path.join(cloud.volumes, f"volume-{volume_id}")


def virtual_size(path):
    out = subprocess.run(["qemu-img", "info", "-f", "raw", "--output=json", path],
                         capture_output=True, text=True, check=True).stdout
    import json
    return json.loads(out)["virtual-size"]


@pytest.fixture(scope="module")
def other_member(cloud):
    """A member of another project, as the cloud `vol-other`."""
    project, user, password = "proj-voliso", "user-voliso", "secret-voliso"
    cloud.run("ferrostack", "project", "create", "--domain", "default", project)
    cloud.run("ferrostack", "user", "create", "--domain", "default", "--password", password, user)
    cloud.run("ferrostack", "role", "add", "--project", project, "--user", user, "member")
    cloud.add_cloud("vol-other", user, password, project)
    return project


@pytest.fixture(scope="module")
def marked_image(cloud, tmp_path_factory):
    """A public raw image of 3 MiB whose first bytes are a marker."""
    path = tmp_path_factory.mktemp("volimg") / "marked.raw"
    with open(path, "wb") as f:
        f.write(b"FERROSTACK-VOLUME-MARK" + bytes(3 * (1 << 20) - 22))
    image = cloud.json("ferrostack", "image", "create", "--public", "--disk-format", "raw",
                       "--container-format", "bare", "--file", str(path), "vol-marked")
    yield image
    cloud.run("ferrostack", "image", "delete", image["id"], check=False)


def test_version_discovery(cloud):
    status, _, body = cloud.request("GET", "/volume/")
    assert status == 300
    status, _, body = cloud.request("GET", "/volume/v3/")
    assert status == 200
    version = body["versions"][0]
    assert version["id"] == "v3.0" and version["min_version"] == "3.0"
    assert tuple(int(p) for p in version["version"].split(".")) >= (3, 60)


def test_blank_volume_lifecycle(cloud, unique):
    vol = cloud.json("ferrostack-demo", "volume", "create", "--size", "1",
                     "--description", "first", "--property", "tier=gold", f"vol-{unique}")
    assert vol["status"] == "creating" and vol["size"] == 1
    wait_status(cloud, "ferrostack-demo", "volume", vol["id"], "available")
    shown = cloud.json("ferrostack-demo", "volume", "show", f"vol-{unique}")
    assert str(shown["bootable"]).lower() == "false" and shown["properties"] == {"tier": "gold"}
    assert shown["type"] == "__DEFAULT__"
    assert virtual_size(volume_file(cloud, vol["id"])) == GIB
    listed = cloud.json("ferrostack-demo", "volume", "list")
    assert vol["id"] in [v["ID"] for v in listed]
    cloud.run("ferrostack-demo", "volume", "set", "--name", f"renamed-{unique}",
              "--property", "zone=b", vol["id"])
    cloud.run("ferrostack-demo", "volume", "unset", "--property", "tier", vol["id"])
    shown = cloud.json("ferrostack-demo", "volume", "show", vol["id"])
    assert shown["name"] == f"renamed-{unique}" and shown["properties"] == {"zone": "b"}
    # Extend: the file grows.
    cloud.run("ferrostack-demo", "volume", "set", "--size", "2", vol["id"])
    wait(lambda: cloud.json("ferrostack-demo", "volume", "show", vol["id"])["size"] == 2, 60, "extended")
    wait_status(cloud, "ferrostack-demo", "volume", vol["id"], "available")
    assert virtual_size(volume_file(cloud, vol["id"])) == 2 * GIB
    cloud.run("ferrostack-demo", "volume", "delete", vol["id"])
    wait_gone(cloud, "ferrostack-demo", "volume", vol["id"])
    assert not os.path.exists(volume_file(cloud, vol["id"]))


def test_volume_from_image_snapshot_and_clone_and_upload(cloud, unique, marked_image):
    vol = cloud.json("ferrostack-demo", "volume", "create", "--size", "1", "--image",
                     marked_image["id"], f"img-{unique}")
    wait_status(cloud, "ferrostack-demo", "volume", vol["id"], "available")
    shown = cloud.json("ferrostack-demo", "volume", "show", vol["id"])
    assert str(shown["bootable"]).lower() == "true"
    assert shown["volume_image_metadata"]["image_id"] == marked_image["id"]
    with open(volume_file(cloud, vol["id"]), "rb") as f:
        assert f.read(22) == b"FERROSTACK-VOLUME-MARK"

    snap = cloud.json("ferrostack-demo", "volume", "snapshot", "create", "--volume", vol["id"],
                      f"snap-{unique}")
    wait_status(cloud, "ferrostack-demo", "volume snapshot", snap["id"], "available")
    from_snap = cloud.json("ferrostack-demo", "volume", "create", "--snapshot", snap["id"],
                           "--size", "2", f"fromsnap-{unique}")
    clone = cloud.json("ferrostack-demo", "volume", "create", "--source", vol["id"],
                       f"clone-{unique}")
    for made in (from_snap, clone):
        wait_status(cloud, "ferrostack-demo", "volume", made["id"], "available")
        with open(volume_file(cloud, made["id"]), "rb") as f:
            assert f.read(22) == b"FERROSTACK-VOLUME-MARK"
    assert virtual_size(volume_file(cloud, from_snap["id"])) == 2 * GIB

    # A volume with snapshots is not deleted (without cascade).
    refused = cloud.run("ferrostack-demo", "volume", "delete", vol["id"], check=False)
    assert refused.returncode != 0

    # Upload to an image: the image holds the volume's data.
    cloud.run("ferrostack-demo", "image", "create", "--volume", clone["id"], "--disk-format", "raw",
              f"fromvol-{unique}")
    image = wait(lambda: next((i for i in cloud.json("ferrostack-demo", "image", "list", "--long")
                               if i["Name"] == f"fromvol-{unique}" and i["Status"] == "active"), None),
                 120, "uploaded image active")
    assert image["Size"] == GIB
    wait_status(cloud, "ferrostack-demo", "volume", clone["id"], "available")

    cloud.run("ferrostack-demo", "image", "delete", image["ID"])
    cloud.run("ferrostack-demo", "volume", "snapshot", "delete", snap["id"])
    wait_gone(cloud, "ferrostack-demo", "volume snapshot", snap["id"])
    for made in (vol, from_snap, clone):
        cloud.run("ferrostack-demo", "volume", "delete", made["id"])
    for made in (vol, from_snap, clone):
        wait_gone(cloud, "ferrostack-demo", "volume", made["id"])
        assert not os.path.exists(volume_file(cloud, made["id"]))


def test_attachment_flow_through_the_api(cloud, unique):
    vol = cloud.json("ferrostack-demo", "volume", "create", "--size", "1", f"att-{unique}")
    wait_status(cloud, "ferrostack-demo", "volume", vol["id"], "available")
    token, _ = cloud.password_token("demo", cloud.demo_password, "demo")
    headers = {"OpenStack-API-Version": "volume 3.44"}
    status, _, body = cloud.request("POST", "/volume/v3/attachments", token=token, headers=headers, body={
        "attachment": {"volume_uuid": vol["id"], "instance_uuid": "11111111-2222-3333-4444-555555555555"}})
    assert status == 200, body
    attachment = body["attachment"]
    assert attachment["status"] == "reserved"
    assert status_of(cloud, "ferrostack-demo", "volume", vol["id"]) == "reserved"
    status, _, body = cloud.request("PUT", f"/volume/v3/attachments/{attachment['id']}", token=token,
                                    headers=headers, body={"attachment": {"connector": {"host": "h1"}}})
    assert status == 200, body
    info = body["attachment"]["connection_info"]
    assert info["driver_volume_type"] == "file"
    assert info["data"]["device_path"] == volume_file(cloud, vol["id"])
    status, _, _ = cloud.request("POST", f"/volume/v3/attachments/{attachment['id']}/action",
                                 token=token, headers=headers, body={"os-complete": None})
    assert status == 204
    shown = cloud.json("ferrostack-demo", "volume", "show", vol["id"])
    assert shown["status"] == "in-use"
    assert shown["attachments"][0]["attachment_id"] == attachment["id"]
    assert cloud.run("ferrostack-demo", "volume", "delete", vol["id"], check=False).returncode != 0
    status, _, body = cloud.request("DELETE", f"/volume/v3/attachments/{attachment['id']}",
                                    token=token, headers=headers)
    assert status == 200 and body["attachments"] == []
    assert status_of(cloud, "ferrostack-demo", "volume", vol["id"]) == "available"
    cloud.run("ferrostack-demo", "volume", "delete", vol["id"])
    wait_gone(cloud, "ferrostack-demo", "volume", vol["id"])


def test_types_quotas_and_isolation(cloud, unique, other_member):
    vtype = cloud.json("ferrostack", "volume", "type", "create", "--property", "tier=fast",
                       f"fast-{unique}")
    vol = cloud.json("vol-other", "volume", "create", "--size", "1", "--type", f"fast-{unique}",
                     f"typed-{unique}")
    wait_status(cloud, "vol-other", "volume", vol["id"], "available")
    assert cloud.json("vol-other", "volume", "show", vol["id"])["type"] == f"fast-{unique}"
    # Another project neither sees it nor can use it.
    assert cloud.run("ferrostack-demo", "volume", "show", vol["id"], check=False).returncode != 0
    assert vol["id"] not in [v["ID"] for v in cloud.json("ferrostack-demo", "volume", "list")]
    token, _ = cloud.password_token("demo", cloud.demo_password, "demo")
    status, _, body = cloud.request("GET", f"/volume/v3/volumes/{vol['id']}", token=token)
    assert status == 404 and "itemNotFound" in body
    # The admin sees it with --all-projects.
    everything = cloud.json("ferrostack", "volume", "list", "--all-projects")
    assert vol["id"] in [v["ID"] for v in everything]

    # Quota: one more volume than allowed is refused with Cinder's 413.
    cloud.run("ferrostack", "quota", "set", "--volumes", "1", other_member)
    refused = cloud.run("vol-other", "volume", "create", "--size", "1", f"over-{unique}", check=False)
    assert refused.returncode != 0
    assert "VolumeLimitExceeded" in refused.stderr or "413" in refused.stderr, refused.stderr
    rows = cloud.json("ferrostack", "quota", "show", "--volume", other_member)
    limits = {r["Resource"]: r["Limit"] for r in rows} if isinstance(rows, list) else rows
    assert limits["volumes"] == 1, rows

    cloud.run("vol-other", "volume", "delete", vol["id"])
    wait_gone(cloud, "vol-other", "volume", vol["id"])
    # The type is free again and can go.
    cloud.run("ferrostack", "volume", "type", "delete", vtype["id"])
