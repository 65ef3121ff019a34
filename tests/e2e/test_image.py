"""Image service (Glance v2) through the real openstack CLI, plus raw HTTP where the CLI cannot.

Behaviour is specified in docs/design/image-service.md. Images are created by the admin
(`ferrostack`, project `admin`) or by the demo user (`ferrostack-demo`, member of project `demo`);
every test uses unique names and deletes what it created.
"""
import hashlib
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

ADMIN = "ferrostack"
DEMO = "ferrostack-demo"
MiB = 1024 * 1024
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
TRANSIENT = ("saving", "uploading", "importing")


# ---------------------------------------------------------------------------------------------
# helpers


def http(cloud, method, path, token=None, data=None, headers=None, timeout=60):
    """A raw request under the cloud's URL; returns (status, headers, raw body bytes)."""
    req = urllib.request.Request(cloud.url + path, data=data, method=method)
    if token:
        req.add_header("X-Auth-Token", token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def as_json(raw):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def get_image(cloud, token, image_id):
    status, _, raw = http(cloud, "GET", f"/image/v2/images/{image_id}", token)
    assert status == 200, (status, raw[:500])
    return json.loads(raw)


def upload(cloud, token, image_id, data):
    return http(cloud, "PUT", f"/image/v2/images/{image_id}/file", token, data=data,
                headers={"Content-Type": "application/octet-stream", "Accept": "application/json"})


def wait_settled(cloud, token, image_id, timeout=120):
    """Polls GET /v2/images/{id} until the image leaves saving/uploading/importing."""
    deadline = time.time() + timeout
    while True:
        image = get_image(cloud, token, image_id)
        if image["status"] not in TRANSIENT or time.time() > deadline:
            return image
        time.sleep(0.5)


def prop(image, key):
    """A key of `image show -f json` output: top level, or flattened under `properties`."""
    if key in image:
        return image[key]
    return (image.get("properties") or {}).get(key)


def md5_of(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def sha512_of(path):
    h = hashlib.sha512()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def qemu_img(*args):
    proc = subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def qemu_info(path, fmt=None):
    args = ["info", "--output", "json"] + (["-f", fmt] if fmt else []) + [path]
    return json.loads(qemu_img(*args))


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def names(rows):
    return {r["Name"] for r in rows}


def cli_failed(proc, *patterns):
    """The CLI exited non-zero and its stderr matches every regex in `patterns` (case-insensitive)."""
    if proc.returncode == 0:
        return False
    return all(re.search(p, proc.stderr, re.I) for p in patterns)


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def admin_token(cloud):
    return cloud.password_token("admin", cloud.admin_password, "admin")[0]


@pytest.fixture(scope="module")
def demo_token(cloud):
    return cloud.password_token("demo", cloud.demo_password, "demo")[0]


@pytest.fixture(scope="module")
def admin_project(cloud):
    return cloud.json(ADMIN, "project", "show", "admin")["id"]


@pytest.fixture(scope="module")
def demo_project(cloud):
    return cloud.json(ADMIN, "project", "show", "demo")["id"]


@pytest.fixture
def images(cloud, admin_token):
    """Creates images through the CLI and deletes them (unprotecting first) at teardown."""
    created = []

    class Images:
        def create(self, cloud_name, name, *args, timeout=120):
            image = cloud.json(cloud_name, "image", "create", *args, name, timeout=timeout, tty_stdin=True)
            created.append(image["id"])
            return image

        def track(self, image_id):
            created.append(image_id)

    yield Images()
    for image_id in created:
        http(cloud, "PATCH", f"/image/v2/images/{image_id}", admin_token,
             data=json.dumps([{"op": "replace", "path": "/protected", "value": False}]).encode(),
             headers={"Content-Type": PATCH_TYPE})
        http(cloud, "DELETE", f"/image/v2/images/{image_id}", admin_token)


@pytest.fixture
def qcow2_files(tmp_path):
    """An empty 64 MiB qcow2 (`qemu-img create`) and one converted from 3 MiB of raw data."""
    created = str(tmp_path / "created.qcow2")
    qemu_img("create", "-f", "qcow2", created, "64M")
    raw = tmp_path / "source.raw"
    with open(raw, "wb") as f:
        f.write(os.urandom(3 * MiB))
        f.write(b"\0" * MiB)  # a zero tail that qcow2 does not allocate
        f.write(b"end" * 1000)
    converted = str(tmp_path / "converted.qcow2")
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), converted)
    return {"created": created, "converted": converted, "source_raw": str(raw)}


# ---------------------------------------------------------------------------------------------
# discovery and errors (raw HTTP)


def test_version_discovery_is_300_without_token(cloud):
    status, headers, raw = http(cloud, "GET", "/image")
    assert status == 300, raw[:300]
    assert headers["Content-Type"].startswith("application/json")
    versions = json.loads(raw)["versions"]
    assert versions, "no versions listed"
    for v in versions:
        assert re.fullmatch(r"v2\.\d+", v["id"]), v
        assert v["status"] in ("CURRENT", "SUPPORTED"), v
        assert v["links"][0]["rel"] == "self"
        assert v["links"][0]["href"].rstrip("/") == cloud.url + "/image/v2", v
    assert [v["status"] for v in versions].count("CURRENT") == 1
    assert "v2.0" in {v["id"] for v in versions}
    status, _, raw2 = http(cloud, "GET", "/image/versions")
    assert status == 200 and json.loads(raw2)["versions"] == versions


def test_catalog_lists_image_endpoint(cloud):
    shown = cloud.json(ADMIN, "catalog", "show", "image")
    assert cloud.url + "/image" in str(shown["endpoints"])


def test_unknown_image_is_404_with_json_message(cloud, admin_token):
    image_id = str(uuid.uuid4())
    # No Accept header: Ferrostack answers JSON regardless (spec §11).
    status, headers, raw = http(cloud, "GET", f"/image/v2/images/{image_id}", admin_token)
    assert status == 404, raw[:300]
    assert headers["Content-Type"].startswith("application/json")
    body = json.loads(raw)
    assert image_id in body["message"], body
    assert body["code"] == "404 Not Found" and body["title"] == "Not Found", body
    # Through the CLI the same lookup fails.
    proc = cloud.run(ADMIN, "image", "show", image_id, check=False)
    assert proc.returncode != 0 and image_id in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------------------------
# upload / show / save


def test_create_raw_show_and_save_are_byte_identical(cloud, images, tmp_path, unique, admin_project):
    data = os.urandom(3 * MiB + 12345)
    src = write_file(tmp_path / "disk.raw", data)
    name = f"raw-{unique}"
    created = images.create(ADMIN, name, "--file", src, "--disk-format", "raw",
                            "--container-format", "bare", "--property", f"fs_note=n-{unique}",
                            "--tag", f"t-{unique}")
    assert created["status"] == "active", created
    assert created["name"] == name
    shown = cloud.json(ADMIN, "image", "show", name)
    assert shown["id"] == created["id"]
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["virtual_size"] == len(data)  # raw: virtual size is the byte size
    assert shown["disk_format"] == "raw" and shown["container_format"] == "bare"
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert prop(shown, "os_hash_algo") == "sha512"
    assert prop(shown, "os_hash_value") == hashlib.sha512(data).hexdigest()
    assert shown["visibility"] == "shared"  # Glance's default since Pike
    assert shown["owner"] == admin_project
    assert shown["protected"] is False
    assert prop(shown, "fs_note") == f"n-{unique}"
    assert f"t-{unique}" in shown["tags"]
    out = str(tmp_path / "saved.raw")
    cloud.run(ADMIN, "image", "save", "--file", out, created["id"])
    saved = open(out, "rb").read()
    assert len(saved) == len(data) and saved == data
    assert hashlib.md5(saved).hexdigest() == shown["checksum"]
    assert hashlib.sha512(saved).hexdigest() == prop(shown, "os_hash_value")


def test_download_headers_range_and_content_md5(cloud, images, tmp_path, unique, admin_token):
    data = bytes(range(256)) * 4096 + os.urandom(1000)  # 1 MiB + 1000 bytes
    src = write_file(tmp_path / "r.raw", data)
    image = images.create(ADMIN, f"range-{unique}", "--file", src, "--disk-format", "raw",
                          "--container-format", "bare")
    path = f"/image/v2/images/{image['id']}/file"
    md5 = hashlib.md5(data).hexdigest()
    size = len(data)

    status, headers, body = http(cloud, "GET", path, admin_token)
    assert status == 200 and body == data
    assert headers["Content-Type"] == "application/octet-stream"
    assert int(headers["Content-Length"]) == size
    assert headers["Content-MD5"] == md5

    status, headers, body = http(cloud, "GET", path, admin_token, headers={"Range": "bytes=100-1123"})
    assert status == 206, (status, body[:200])
    assert headers["Content-Range"] == f"bytes 100-1123/{size}"
    assert int(headers["Content-Length"]) == 1024
    assert body == data[100:1124]
    assert headers["Content-MD5"] == md5  # still the whole image's md5

    status, headers, body = http(cloud, "GET", path, admin_token, headers={"Range": "bytes=-10"})
    assert status == 206 and body == data[-10:]
    assert headers["Content-Range"] == f"bytes {size - 10}-{size - 1}/{size}"

    status, headers, body = http(cloud, "GET", path, admin_token, headers={"Range": f"bytes={size - 5}-"})
    assert status == 206 and body == data[-5:]
    assert headers["Content-Range"] == f"bytes {size - 5}-{size - 1}/{size}"

    status, _, body = http(cloud, "GET", path, admin_token, headers={"Range": f"bytes={size}-"})
    assert status == 416, (status, body[:200])
    status, _, body = http(cloud, "GET", path, admin_token, headers={"Range": "bytes=0-1,5-6"})
    assert status == 400 and "multiple ranges" in json.loads(body)["message"], body[:300]


def test_queued_image_download_is_204(cloud, images, unique, admin_token):
    image = images.create(ADMIN, f"empty-{unique}", "--disk-format", "raw", "--container-format", "bare")
    assert image["status"] == "queued"
    assert image.get("size") is None
    status, _, body = http(cloud, "GET", f"/image/v2/images/{image['id']}/file", admin_token)
    assert status == 204 and body == b""


@pytest.mark.parametrize("kind", ["created", "converted"])
def test_qcow2_virtual_size_matches_qemu_img(cloud, images, tmp_path, unique, qcow2_files, kind):
    path = qcow2_files[kind]
    info = qemu_info(path)
    assert info["format"] == "qcow2"
    expected_virtual = info["virtual-size"]
    assert expected_virtual != os.path.getsize(path)  # otherwise the test could not tell them apart
    image = images.create(ADMIN, f"q-{kind}-{unique}", "--file", path, "--disk-format", "qcow2",
                          "--container-format", "bare")
    shown = cloud.json(ADMIN, "image", "show", image["id"])
    assert shown["status"] == "active", shown
    assert shown["disk_format"] == "qcow2"
    assert shown["size"] == os.path.getsize(path)
    assert shown["virtual_size"] == expected_virtual
    assert shown["checksum"] == md5_of(path)
    assert prop(shown, "os_hash_value") == sha512_of(path)
    out = str(tmp_path / f"{kind}.out")
    cloud.run(ADMIN, "image", "save", "--file", out, image["id"])
    assert open(out, "rb").read() == open(path, "rb").read()


def test_import_glance_direct_becomes_active(cloud, images, tmp_path, unique, qcow2_files, admin_token):
    status, _, raw = http(cloud, "GET", "/image/v2/info/import", admin_token)
    assert status == 200 and "glance-direct" in json.loads(raw)["import-methods"]["value"]
    path = qcow2_files["converted"]
    image = images.create(ADMIN, f"imp-{unique}", "--import", "--file", path, "--disk-format", "qcow2",
                          "--container-format", "bare")
    settled = wait_settled(cloud, admin_token, image["id"])
    assert settled["status"] == "active", settled
    shown = cloud.json(ADMIN, "image", "show", image["id"])
    assert shown["status"] == "active"
    assert shown["size"] == os.path.getsize(path)
    assert shown["virtual_size"] == qemu_info(path)["virtual-size"]
    assert shown["checksum"] == md5_of(path)
    assert prop(shown, "os_hash_algo") == "sha512"
    assert prop(shown, "os_hash_value") == sha512_of(path)
    assert not prop(shown, "os_glance_failed_import")
    out = str(tmp_path / "imported.out")
    cloud.run(ADMIN, "image", "save", "--file", out, image["id"])
    assert md5_of(out) == md5_of(path)


# ---------------------------------------------------------------------------------------------
# listing


def test_list_filters_visibility_property_and_tag(cloud, images, unique, admin_token, demo_token):
    tag = f"lt-{unique}"
    made = {}
    for vis in ("public", "private", "shared", "community"):
        args = [f"--{vis}", "--disk-format", "raw", "--container-format", "bare", "--tag", tag]
        if vis in ("private", "community"):
            args += ["--property", f"fs_flavor=f-{unique}"]
        if vis == "public":
            args += ["--tag", f"{tag}-extra"]
        made[vis] = images.create(ADMIN, f"{vis}-{unique}", *args)
        assert made[vis]["visibility"] == vis

    def listed(cloud_name, *args):
        return names(cloud.json(cloud_name, "image", "list", "--tag", tag, *args))

    # The owner (admin) sees all four; each visibility filter keeps exactly its image.
    assert listed(ADMIN) == {f"{v}-{unique}" for v in made}
    for vis in made:
        assert listed(ADMIN, f"--{vis}") == {f"{vis}-{unique}"}, vis
    # --property (client side) and the server-side extra-property filter agree.
    assert listed(ADMIN, "--property", f"fs_flavor=f-{unique}") == {f"private-{unique}", f"community-{unique}"}
    status, _, raw = http(cloud, "GET", f"/image/v2/images?tag={tag}&fs_flavor=f-{unique}", admin_token)
    assert status == 200
    assert {i["name"] for i in json.loads(raw)["images"]} == {f"private-{unique}", f"community-{unique}"}
    # Several tags: all must match.
    assert listed(ADMIN, "--tag", f"{tag}-extra") == {f"public-{unique}"}
    assert listed(ADMIN, "--tag", f"nope-{unique}") == set()

    # Another project sees the public image; community only when asked for; never private/shared.
    assert listed(DEMO) == {f"public-{unique}"}
    assert listed(DEMO, "--public") == {f"public-{unique}"}
    assert listed(DEMO, "--community") == {f"community-{unique}"}
    assert listed(DEMO, "--private") == set()
    assert listed(DEMO, "--shared") == set()
    status, _, raw = http(cloud, "GET", f"/image/v2/images?tag={tag}&visibility=all", demo_token)
    assert status == 200
    assert {i["name"] for i in json.loads(raw)["images"]} == {f"public-{unique}", f"community-{unique}"}


# ---------------------------------------------------------------------------------------------
# image set / delete


def test_set_property_tag_protected_and_delete(cloud, images, tmp_path, unique, admin_token):
    src = write_file(tmp_path / "p.raw", os.urandom(64 * 1024))
    name = f"prot-{unique}"
    image = images.create(ADMIN, name, "--file", src, "--disk-format", "raw", "--container-format", "bare",
                          "--tag", "first")
    cloud.run(ADMIN, "image", "set", "--property", f"fs_color=blue-{unique}", "--tag", "second",
              "--protected", image["id"])
    shown = cloud.json(ADMIN, "image", "show", image["id"])
    assert prop(shown, "fs_color") == f"blue-{unique}"
    assert set(shown["tags"]) == {"first", "second"}
    assert shown["protected"] is True
    status, _, raw = http(cloud, "GET", f"/image/v2/images/{image['id']}", admin_token)
    assert json.loads(raw)["fs_color"] == f"blue-{unique}"  # extra properties are top-level keys

    cloud.run(ADMIN, "image", "unset", "--property", "fs_color", image["id"])
    assert prop(cloud.json(ADMIN, "image", "show", image["id"]), "fs_color") is None

    # Protected: deleting is refused with 403 and a message, the image stays.
    proc = cloud.run(ADMIN, "image", "delete", image["id"], check=False)
    assert cli_failed(proc, "403", "protected"), proc.stderr
    status, _, raw = http(cloud, "DELETE", f"/image/v2/images/{image['id']}", admin_token)
    assert status == 403 and "protected" in json.loads(raw)["message"], raw[:300]
    assert cloud.json(ADMIN, "image", "show", image["id"])["status"] == "active"

    cloud.run(ADMIN, "image", "set", "--unprotected", image["id"])
    assert cloud.json(ADMIN, "image", "show", image["id"])["protected"] is False
    cloud.run(ADMIN, "image", "delete", image["id"])
    assert cloud.run(ADMIN, "image", "show", image["id"], check=False).returncode != 0
    status, _, raw = http(cloud, "GET", f"/image/v2/images/{image['id']}", admin_token)
    assert status == 404, raw[:300]
    assert name not in names(cloud.json(ADMIN, "image", "list", "--name", name))


def test_deactivate_blocks_download_until_activate(cloud, images, tmp_path, unique, demo_token):
    data = os.urandom(100 * 1024)
    src = write_file(tmp_path / "d.raw", data)
    # Owned by the demo project: a non-admin owner may deactivate, and may not download while deactivated.
    image = images.create(DEMO, f"deact-{unique}", "--file", src, "--disk-format", "raw",
                          "--container-format", "bare")
    assert image["status"] == "active"
    cloud.run(DEMO, "image", "set", "--deactivate", image["id"])
    assert cloud.json(DEMO, "image", "show", image["id"])["status"] == "deactivated"
    out = str(tmp_path / "d.out")
    # (openstacksdk does not check the download's status: it fails on the checksum of the error body.)
    proc = cloud.run(DEMO, "image", "save", "--file", out, image["id"], check=False)
    assert proc.returncode != 0, proc.stderr
    status, _, raw = http(cloud, "GET", f"/image/v2/images/{image['id']}/file", demo_token)
    assert status == 403 and "deactivated" in json.loads(raw)["message"], raw[:300]

    cloud.run(DEMO, "image", "set", "--activate", image["id"])
    assert cloud.json(DEMO, "image", "show", image["id"])["status"] == "active"
    cloud.run(DEMO, "image", "save", "--file", out, image["id"])
    assert open(out, "rb").read() == data


# ---------------------------------------------------------------------------------------------
# sharing and isolation between projects


def test_share_with_demo_project_after_accept(cloud, images, tmp_path, unique, demo_project):
    data = os.urandom(200 * 1024)
    src = write_file(tmp_path / "s.raw", data)
    name = f"shared-{unique}"
    image = images.create(ADMIN, name, "--shared", "--file", src, "--disk-format", "raw",
                          "--container-format", "bare", "--property", f"fs_owner_note=x-{unique}")
    member = cloud.json(ADMIN, "image", "add", "project", image["id"], demo_project)
    assert member["status"] == "pending" and member["member_id"] == demo_project, member
    # Not listed for the other project before it accepts (only with --member-status pending).
    assert name not in names(cloud.json(DEMO, "image", "list"))
    assert name in names(cloud.json(DEMO, "image", "list", "--member-status", "pending"))

    cloud.run(DEMO, "image", "set", "--accept", image["id"])
    rows = cloud.json(ADMIN, "image", "member", "list", image["id"])
    assert [(r["Member ID"], r["Status"]) for r in rows] == [(demo_project, "accepted")]
    assert name in names(cloud.json(DEMO, "image", "list"))
    assert name in names(cloud.json(DEMO, "image", "list", "--shared"))
    out = str(tmp_path / "s.out")
    cloud.run(DEMO, "image", "save", "--file", out, image["id"])
    assert open(out, "rb").read() == data

    # A member may neither modify nor delete the image.
    proc = cloud.run(DEMO, "image", "set", "--property", f"fs_hijack=y-{unique}", image["id"], check=False)
    assert cli_failed(proc, "403"), proc.stderr
    proc = cloud.run(DEMO, "image", "set", "--name", f"renamed-{unique}", image["id"], check=False)
    assert cli_failed(proc, "403"), proc.stderr
    proc = cloud.run(DEMO, "image", "delete", image["id"], check=False)
    assert cli_failed(proc, "403"), proc.stderr
    shown = cloud.json(ADMIN, "image", "show", image["id"])
    assert shown["status"] == "active" and shown["name"] == name
    assert prop(shown, "fs_hijack") is None and prop(shown, "fs_owner_note") == f"x-{unique}"


def test_private_image_is_invisible_to_another_project(cloud, images, tmp_path, unique, demo_token):
    src = write_file(tmp_path / "priv.raw", os.urandom(4096))
    name = f"private-{unique}"
    image = images.create(ADMIN, name, "--private", "--file", src, "--disk-format", "raw",
                          "--container-format", "bare")
    assert image["visibility"] == "private"
    assert cloud.run(DEMO, "image", "show", image["id"], check=False).returncode != 0
    assert cloud.run(DEMO, "image", "show", name, check=False).returncode != 0
    status, _, raw = http(cloud, "GET", f"/image/v2/images/{image['id']}", demo_token)
    assert status == 404, raw[:300]
    status, _, _ = http(cloud, "GET", f"/image/v2/images/{image['id']}/file", demo_token)
    assert status == 404
    assert name not in names(cloud.json(DEMO, "image", "list", "--private"))
    assert cloud.run(DEMO, "image", "delete", image["id"], check=False).returncode != 0
    assert cloud.run(DEMO, "image", "set", "--property", "fs_x=y", image["id"], check=False).returncode != 0
    shown = cloud.json(ADMIN, "image", "show", image["id"])
    assert shown["status"] == "active" and prop(shown, "fs_x") is None


def test_non_admin_cannot_publicize(cloud, images, unique):
    image = images.create(DEMO, f"mine-{unique}", "--disk-format", "raw", "--container-format", "bare")
    assert image["visibility"] == "shared"
    proc = cloud.run(DEMO, "image", "set", "--public", image["id"], check=False)
    assert cli_failed(proc, "403"), proc.stderr
    assert cloud.json(DEMO, "image", "show", image["id"])["visibility"] == "shared"
    proc = cloud.run(DEMO, "image", "create", "--public", "--disk-format", "raw", f"pub-{unique}", check=False,
                     tty_stdin=True)
    assert cli_failed(proc, "403"), proc.stderr
    assert names(cloud.json(ADMIN, "image", "list", "--name", f"pub-{unique}")) == set()
    # Community (and back to private) is allowed for the owning project's member.
    cloud.run(DEMO, "image", "set", "--community", image["id"])
    assert cloud.json(DEMO, "image", "show", image["id"])["visibility"] == "community"
    cloud.run(DEMO, "image", "set", "--private", image["id"])
    assert cloud.json(DEMO, "image", "show", image["id"])["visibility"] == "private"


# ---------------------------------------------------------------------------------------------
# attack images


VMDK_FLAT = """# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="{create_type}"

# Extent description
RW 2048 FLAT "/etc/passwd" 0

# The Disk Data Base
ddb.virtualHWVersion = "4"
ddb.geometry.cylinders = "2"
ddb.geometry.heads = "16"
ddb.geometry.sectors = "63"
ddb.adapterType = "ide"
"""

# kind -> (declared disk_format, regex the refusal must match)
ATTACKS = {
    "qcow2-backing-file": ("qcow2", r"backing"),
    "qcow2-data-file": ("qcow2", r"data.?file"),
    "vmdk-monolithicFlat": ("vmdk", r"extent|createType|monolithicFlat"),
    "vmdk-twoGbMaxExtentFlat": ("vmdk", r"extent|createType|twoGbMaxExtentFlat"),
    "raw-declared-qcow2": ("qcow2", r"does not match|mismatch|content is raw|stream data raw"),
}


def make_attack(kind, tmp_path):
    """Writes the attack file and checks with qemu-img that it really reaches outside itself."""
    path = str(tmp_path / f"{kind}.img")
    if kind == "qcow2-backing-file":
        qemu_img("create", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", path)
        assert qemu_info(path)["backing-filename"] == "/etc/passwd"
    elif kind == "qcow2-data-file":
        qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path}/x.raw", path, "1M")
        assert qemu_info(path)["format-specific"]["data"]["data-file"] == f"{tmp_path}/x.raw"
    elif kind.startswith("vmdk-"):
        write_file(path, VMDK_FLAT.format(create_type=kind.split("-", 1)[1]).encode())
        info = qemu_info(path)
        assert info["format"] == "vmdk"  # qemu probes the text descriptor as vmdk...
        assert info["format-specific"]["data"]["extents"][0]["filename"] == "/etc/passwd"  # ...and reads the host file
    elif kind == "raw-declared-qcow2":
        write_file(path, os.urandom(256 * 1024))
        assert qemu_info(path)["format"] == "raw"
    return path


def make_good(disk_format, tmp_path):
    path = str(tmp_path / f"good.{disk_format}")
    qemu_img("create", "-f", disk_format, path, "1M")
    return path


def assert_import_task_failed(cloud, token, image_id, reason):
    """The image's import task (GET /v2/images/{id}/tasks) failed and its message says why."""
    status, _, raw = http(cloud, "GET", f"/image/v2/images/{image_id}/tasks", token)
    assert status == 200, (status, raw[:300])
    tasks = json.loads(raw)["tasks"]
    assert [t["type"] for t in tasks] == ["api_image_import"], tasks
    assert tasks[0]["status"] == "failure", tasks
    assert re.search(reason, tasks[0]["message"] or "", re.I), tasks


def assert_queued_without_data(cloud, token, image_id):
    image = get_image(cloud, token, image_id)
    assert image["status"] == "queued", image
    assert image["size"] is None and image["virtual_size"] is None, image
    assert image["checksum"] is None and image["os_hash_value"] is None, image
    status, _, body = http(cloud, "GET", f"/image/v2/images/{image_id}/file", token)
    assert status == 204 and body == b"", (status, body[:100])
    return image


@pytest.mark.parametrize("kind", list(ATTACKS))
def test_attack_image_upload_is_refused(cloud, images, tmp_path, unique, admin_token, kind):
    disk_format, reason = ATTACKS[kind]
    evil = make_attack(kind, tmp_path)
    name = f"evil-{kind}-{unique}"

    # 1. `image create --file`: the CLI fails and says why. (openstacksdk deletes the failed image.)
    proc = cloud.run(ADMIN, "image", "create", "--file", evil, "--disk-format", disk_format,
                     "--container-format", "bare", name, check=False)
    assert proc.returncode != 0, f"attack image {kind} was accepted:\n{proc.stdout}"
    assert re.search(reason, proc.stderr, re.I), proc.stderr
    assert re.search(r"\b4\d\d\b", proc.stderr), proc.stderr
    for row in cloud.json(ADMIN, "image", "list", "--name", name):
        images.track(row["ID"])
        assert row["Status"] != "active", row

    # 2. The same data PUT to an existing queued image: 415 with the reason, image back to queued.
    image = images.create(ADMIN, f"{name}-2", "--disk-format", disk_format, "--container-format", "bare")
    assert image["status"] == "queued"
    status, headers, raw = upload(cloud, admin_token, image["id"], open(evil, "rb").read())
    assert status == 415, (status, raw[:300])
    message = json.loads(raw)["message"]
    assert re.search(reason, message, re.I), message
    assert_queued_without_data(cloud, admin_token, image["id"])

    # 3. Restored for real: a well-formed image of the declared format uploads afterwards.
    good = make_good(disk_format, tmp_path)
    status, _, raw = upload(cloud, admin_token, image["id"], open(good, "rb").read())
    assert status == 204, (status, raw[:300])
    after = get_image(cloud, admin_token, image["id"])
    assert after["status"] == "active" and after["size"] == os.path.getsize(good)
    assert after["virtual_size"] == qemu_info(good)["virtual-size"]


def test_attack_image_create_import_is_refused(cloud, images, tmp_path, unique, admin_token):
    evil = make_attack("qcow2-backing-file", tmp_path)
    name = f"evil-import-{unique}"
    proc = cloud.run(ADMIN, "image", "create", "--import", "--file", evil, "--disk-format", "qcow2",
                     "--container-format", "bare", name, "-f", "json", check=False)
    if proc.returncode != 0:
        # Refused synchronously (at stage or import): a 4xx that says why.
        assert re.search(r"\b4\d\d\b", proc.stderr) and re.search("backing", proc.stderr, re.I), proc.stderr
        for row in cloud.json(ADMIN, "image", "list", "--name", name):
            images.track(row["ID"])
            assert row["Status"] != "active", row
        return
    image = json.loads(proc.stdout)
    images.track(image["id"])
    settled = wait_settled(cloud, admin_token, image["id"])
    assert settled["status"] == "queued", settled
    assert settled.get("os_glance_failed_import"), settled
    assert_queued_without_data(cloud, admin_token, image["id"])
    assert_import_task_failed(cloud, admin_token, image["id"], "backing")


def test_attack_image_stage_and_import_is_refused(cloud, images, tmp_path, unique, admin_token):
    evil = make_attack("vmdk-monolithicFlat", tmp_path)
    image = images.create(ADMIN, f"evil-stage-{unique}", "--disk-format", "vmdk", "--container-format", "bare")
    proc = cloud.run(ADMIN, "image", "stage", "--file", evil, image["id"], check=False)
    if proc.returncode != 0:
        # Inspected while staging: a 4xx naming the reason, and nothing kept.
        assert re.search(r"\b4\d\d\b", proc.stderr), proc.stderr
        assert re.search(ATTACKS["vmdk-monolithicFlat"][1], proc.stderr, re.I), proc.stderr
        assert_queued_without_data(cloud, admin_token, image["id"])
        return
    assert get_image(cloud, admin_token, image["id"])["status"] == "uploading"
    # --disallow-failure: the CLI otherwise sends all_stores_must_succeed=false, a 400 in single-store mode.
    proc = cloud.run(ADMIN, "image", "import", "--method", "glance-direct", "--disallow-failure",
                     image["id"], check=False)
    if proc.returncode != 0:
        assert re.search(r"\b4\d\d\b", proc.stderr), proc.stderr
    settled = wait_settled(cloud, admin_token, image["id"])
    assert settled["status"] == "queued", settled
    if proc.returncode == 0:
        assert settled.get("os_glance_failed_import"), settled
        assert_import_task_failed(cloud, admin_token, image["id"], ATTACKS["vmdk-monolithicFlat"][1])
    assert_queued_without_data(cloud, admin_token, image["id"])


# ---------------------------------------------------------------------------------------------
# 2 GiB through a server that must stay small


def vm_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class RssSampler:
    """Samples a process's VmRSS every `interval` seconds in a background thread."""

    def __init__(self, pid, interval=0.05):
        self.pid, self.interval, self.samples = pid, interval, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append(vm_rss(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.mark.slow
def test_two_gib_upload_and_download_keep_server_memory_small(cloud, images, tmp_path, unique):
    # The process hosts every service, so its idle size grows as services land; what a streamed
    # 2 GiB transfer may add on top of it is the budget that matters.
    idle_limit = 150 * MiB
    growth_limit = 64 * MiB
    size = 2048 * MiB
    src, out = tmp_path / "big.raw", tmp_path / "big.out"
    md5, sha512 = hashlib.md5(), hashlib.sha512()
    block = bytearray(os.urandom(MiB))
    try:
        with open(src, "wb") as f:
            for i in range(size // MiB):
                block[:8] = i.to_bytes(8, "big")  # every MiB differs: misplaced chunks change the hashes
                md5.update(block)
                sha512.update(block)
                f.write(block)
        assert os.path.getsize(src) == size
        pid = cloud.proc.pid
        idle = vm_rss(pid)
        assert idle < idle_limit, f"server at {idle / MiB:.1f} MiB before the upload"
        limit = idle + growth_limit

        with RssSampler(pid) as up:
            image = images.create(ADMIN, f"big-{unique}", "--file", str(src), "--disk-format", "raw",
                                  "--container-format", "bare", timeout=900)
        assert image["status"] == "active", image
        assert len(up.samples) > 10
        assert max(up.samples) < limit, f"upload: server VmRSS peaked at {max(up.samples) / MiB:.1f} MiB"
        shown = cloud.json(ADMIN, "image", "show", image["id"])
        assert shown["size"] == size
        assert shown["checksum"] == md5.hexdigest()
        assert prop(shown, "os_hash_value") == sha512.hexdigest()

        with RssSampler(pid) as down:
            cloud.run(ADMIN, "image", "save", "--chunk-size", str(MiB), "--file", str(out), image["id"],
                      timeout=900)
        assert len(down.samples) > 10
        assert max(down.samples) < limit, f"download: server VmRSS peaked at {max(down.samples) / MiB:.1f} MiB"
        print(f"server VmRSS idle {idle / MiB:.1f} MiB, peak: upload {max(up.samples) / MiB:.1f} MiB ({len(up.samples)} samples), "
              f"download {max(down.samples) / MiB:.1f} MiB ({len(down.samples)} samples)")
        assert os.path.getsize(out) == size
        assert md5_of(out) == md5.hexdigest()
    finally:
        for p in (src, out):
            if os.path.exists(p):
                os.unlink(p)
