"""Interrupted image uploads: a client that goes away and a server killed mid-upload leave the
image in `queued` and no data behind (nothing partial in the store or staging area)."""
import http.client
import os
import signal
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import BINARY, Cloud

CHUNK = b"\x5a" * (1 << 20)


@pytest.fixture
def own_cloud():
    """A cloud of this test's own, so it can be killed and restarted."""
    root = tempfile.mkdtemp(prefix="ferrostack-e2e-crash-")
    c = Cloud(root)
    yield c
    if c.proc.poll() is None:
        c.stop()
    shutil.rmtree(root, ignore_errors=True)


def admin_token(cloud):
    token, _ = cloud.password_token("admin", cloud.admin_password, "admin")
    return token


def new_raw_image(cloud, token):
    status, _, body = cloud.request(
        "POST", "/image/v2/images", token,
        {"name": "crash", "disk_format": "raw", "container_format": "bare"},
    )
    assert status == 201, body
    return body["id"]


def data_files(cloud):
    """Every file under the image store and staging directories (temp files included)."""
    found = []
    for sub in ("images", "images-staging"):
        path = os.path.join(cloud.state, sub)
        if os.path.isdir(path):
            found += [os.path.join(sub, name) for name in os.listdir(path)]
    return sorted(found)


def start_upload(cloud, token, image_id, what="file", total_mib=512):
    """Streams a large upload (chunked) from a thread; returns (connection, sent-counter, thread)."""
    conn = http.client.HTTPConnection("127.0.0.1", cloud.port, timeout=60)
    sent = {"bytes": 0, "error": None}

    def body():
        for _ in range(total_mib):
            sent["bytes"] += len(CHUNK)
            yield CHUNK
            time.sleep(0.005)

    def run():
        try:
            conn.request(
                "PUT", f"/image/v2/images/{image_id}/{what}", body=body(),
                headers={"X-Auth-Token": token, "Content-Type": "application/octet-stream"},
                encode_chunked=True,
            )
            conn.getresponse().read()
        except OSError as e:
            sent["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return conn, sent, thread


def wait_until(predicate, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def show(cloud, token, image_id):
    status, _, body = cloud.request("GET", f"/image/v2/images/{image_id}", token)
    assert status == 200, body
    return body


def test_client_disconnect_mid_upload_returns_image_to_queued(own_cloud):
    cloud = own_cloud
    token = admin_token(cloud)
    image_id = new_raw_image(cloud, token)
    conn, sent, thread = start_upload(cloud, token, image_id)
    assert wait_until(lambda: sent["bytes"] >= 32 << 20)
    assert show(cloud, token, image_id)["status"] == "saving"
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    thread.join(timeout=30)
    assert wait_until(lambda: show(cloud, token, image_id)["status"] == "queued"), show(cloud, token, image_id)
    image = show(cloud, token, image_id)
    assert image["size"] is None and image["checksum"] is None
    assert wait_until(lambda: data_files(cloud) == []), data_files(cloud)
    # The image is usable again: a complete upload now succeeds.
    status, _, _ = cloud.request("PUT", f"/image/v2/images/{image_id}/file", token, None,
                                 {"Content-Type": "application/octet-stream"})
    assert status == 204
    assert show(cloud, token, image_id)["status"] == "active"


@pytest.mark.parametrize("what,busy", [("file", "saving"), ("stage", "uploading")])
def test_server_killed_mid_upload_recovers_on_restart(own_cloud, what, busy):
    cloud = own_cloud
    token = admin_token(cloud)
    image_id = new_raw_image(cloud, token)
    conn, sent, thread = start_upload(cloud, token, image_id, what)
    assert wait_until(lambda: sent["bytes"] >= 32 << 20)
    assert show(cloud, token, image_id)["status"] == busy
    assert data_files(cloud), "the upload should be writing a temp file"
    cloud.proc.send_signal(signal.SIGKILL)
    cloud.proc.wait(timeout=30)
    thread.join(timeout=30)
    conn.close()

    env = dict(os.environ, FERROSTACK_CONFIG=cloud.config)
    cloud.proc = subprocess.Popen([BINARY, "up"], stdout=cloud.log, stderr=subprocess.STDOUT, env=env)
    cloud._wait_ready()
    token = admin_token(cloud)
    image = show(cloud, token, image_id)
    assert image["status"] == "queued", image
    assert image["size"] is None
    assert data_files(cloud) == []
    with open(cloud.log_path) as log:
        assert "interrupted by a restart" in log.read()
