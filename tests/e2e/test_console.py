"""noVNC consoles end to end: a real guest (QEMU TCG under libvirt), `openstack console url show`,
the console proxy's page and noVNC files, and a websocket through the proxy to QEMU's VNC server
(the RFB handshake up to ServerInit, as Tempest's test_novnc does it). Bad tokens and the tokens of
a deleted server are refused.

The module runs a cloud of its own, whose console proxy listens on a free port (the default
0.0.0.0:6080 may belong to another cloud on this machine), with noVNC's client fetched by
scripts/lib.sh's ensure_novnc into the cache."""
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import Cloud, free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUEST_DIR = os.environ.get("FERROSTACK_GUEST_IMAGE_DIR", os.path.expanduser("~/.cache/ferrostack/guest-image"))
NOVNC_DIR = os.path.expanduser("~/.cache/ferrostack/novnc")


def ensure_novnc():
    """The @novnc/novnc client in the cache, through the same helper `make up` uses."""
    proc = subprocess.run(["bash", "-c", f'source "{REPO}/scripts/lib.sh" && ensure_novnc "$1"', "_", NOVNC_DIR],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.isfile(os.path.join(NOVNC_DIR, "core", "rfb.js")):
        pytest.fail(f"could not fetch the noVNC client (npm pack @novnc/novnc):\n{proc.stdout}{proc.stderr}")


@pytest.fixture(scope="module")
def console_cloud():
    ensure_novnc()
    proxy_port = free_port()
    overrides = {
        "FERROSTACK__COMPUTE__NOVNCPROXY_LISTEN": f"127.0.0.1:{proxy_port}",
        "FERROSTACK__COMPUTE__NOVNCPROXY_WEB": NOVNC_DIR,
    }
    saved = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    root = tempfile.mkdtemp(prefix="ferrostack-e2e-console-")
    try:
        cloud = Cloud(root)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    cloud.proxy_port = proxy_port
    yield cloud
    cloud.stop()
    if not os.environ.get("FERROSTACK_KEEP_E2E"):
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cloud.instances, ignore_errors=True)


@pytest.fixture(scope="module")
def server(console_cloud):
    """An ACTIVE server of the demo project booted from the test guest's whole-disk image."""
    cloud = console_cloud
    disk = os.path.join(GUEST_DIR, "disk.qcow2")
    if not os.path.exists(disk):
        pytest.fail(f"test guest image missing: run scripts/build-guest-image.sh ({disk})")
    image = cloud.json("ferrostack", "image", "create", "--public", "--disk-format", "qcow2",
                       "--container-format", "bare", "--file", disk, "console-guest")
    cloud.json("ferrostack", "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "console.nano")
    deadline = time.time() + 60
    while not cloud.json("ferrostack", "resource", "provider", "list"):
        assert time.time() < deadline, "the compute host did not register"
        time.sleep(1)
    created = cloud.json("ferrostack-demo", "server", "create", "--image", image["id"], "--flavor", "console.nano",
                         "--wait", "vm-console", timeout=300)
    assert created["status"] == "ACTIVE", created
    return created["id"]


class WebSocket:
    """A websocket client as Tempest's (tempest/common/compute.py): the upgrade request by hand,
    binary frames, masked from the client."""

    def __init__(self, port, path, headers=()):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
                   "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n")
        request += "".join(f"{h}\r\n" for h in headers) + "\r\n"
        self.sock.sendall(request.encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, self.pending = data.partition(b"\r\n\r\n")
        self.payload = b""
        self.response = head.decode(errors="replace")

    def _recv(self, n):
        while len(self.pending) < n:
            chunk = self.sock.recv(4096)
            if not chunk:
                return None
            self.pending += chunk
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def frame(self):
        """The next frame's payload; None when the connection closed."""
        header = self._recv(2)
        if header is None:
            return None
        length = header[1] & 0x7F
        assert not header[1] & 0x80, "the server masked a frame"
        if length == 126:
            length = struct.unpack(">H", self._recv(2))[0]
        elif length == 127:
            length = struct.unpack(">Q", self._recv(8))[0]
        payload = self._recv(length)
        if header[0] & 0x0F == 0x8:  # close
            return None
        return payload

    def read(self, n):
        """The next n bytes of binary payload, whatever the frames they came in."""
        while len(self.payload) < n:
            frame = self.frame()
            assert frame is not None, f"the connection closed after {self.payload!r}"
            self.payload += frame
        out, self.payload = self.payload[:n], self.payload[n:]
        return out

    def send(self, data):
        mask = b"\x07\x02\x01\x09"
        frame = bytes([0x82, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(frame)

    def closed_silently(self):
        try:
            return not self.pending and self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def console_url(cloud, server):
    console = cloud.json("ferrostack-demo", "console", "url", "show", "--novnc", server)
    assert console["type"] == "novnc", console
    assert console["protocol"] == "vnc", console
    return console["url"]


def websocket_path(url):
    """The request path noVNC opens: the URL's `path` parameter (`?token=...`)."""
    path = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["path"][0]
    return "/" + path.lstrip("/")


def token_of(url):
    path = websocket_path(url)
    return urllib.parse.parse_qs(urllib.parse.urlparse(path).query)["token"][0]


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode(errors="replace")


def rfb_handshake(ws):
    """Tempest's validate_rfb_negotiation: version, security None, ClientInit, ServerInit.
    Returns the desktop name."""
    version = ws.read(12)
    assert version == b"RFB 003.008\n", version
    ws.send(version)
    count = ws.read(1)[0]
    types = ws.read(count)
    assert 1 in types, f"security type None offered: {types!r}"
    ws.send(b"\x01")
    assert ws.read(4) == b"\x00\x00\x00\x00", "security handshake accepted"
    ws.send(b"\x01")  # ClientInit: shared desktop
    init = ws.read(24)
    name_length = struct.unpack(">L", init[20:24])[0]
    width, height = struct.unpack(">HH", init[:4])
    assert width > 0 and height > 0, init
    return ws.read(name_length).decode()


@pytest.mark.slow
def test_novnc_console_through_the_proxy(console_cloud, server):
    cloud = console_cloud
    url = console_url(cloud, server)
    assert url.startswith(f"http://127.0.0.1:{cloud.proxy_port}/vnc_lite.html?path=%3Ftoken%3D"), url

    # The console page and the noVNC client it loads.
    status, content_type, page = get(url)
    assert status == 200 and content_type.startswith("text/html"), (status, page)
    for needle in ("<html", "</html>", "noVNC", "<script"):
        assert needle in page, needle
    status, content_type, js = get(f"http://127.0.0.1:{cloud.proxy_port}/core/rfb.js")
    assert status == 200 and "javascript" in content_type and "export default class RFB" in js

    # The admin API says what the token connects to: the guest's VNC server on this host.
    token = token_of(url)
    admin, _ = cloud.password_token("admin", cloud.admin_password, "admin")
    status, _, body = cloud.request("GET", f"/compute/v2.1/os-console-auth-tokens/{token}", admin,
                                    headers={"OpenStack-API-Version": "compute 2.31"})
    assert status == 200, body
    assert body["console"]["instance_uuid"] == server
    assert body["console"]["host"] == "127.0.0.1"
    vnc_port = body["console"]["port"]
    assert vnc_port >= 5900, body

    # noVNC's websocket: the RFB greeting of QEMU's VNC server, then the whole handshake.
    ws = WebSocket(cloud.proxy_port, websocket_path(url))
    try:
        assert ws.response.startswith("HTTP/1.1 101 Switching Protocols"), ws.response
        assert "upgrade: websocket" in ws.response.lower()
        name = rfb_handshake(ws)
        assert name.startswith("QEMU"), name
    finally:
        ws.close()

    # Tempest's form: /websockify with the URL's query as a cookie.
    query = urllib.parse.urlparse(url).query
    ws = WebSocket(cloud.proxy_port, "/websockify", [f"Cookie: {query}"])
    try:
        assert ws.response.startswith("HTTP/1.1 101"), ws.response
        assert ws.read(12) == b"RFB 003.008\n"
    finally:
        ws.close()

    # A bad token is refused: no websocket, no data.
    ws = WebSocket(cloud.proxy_port, f"/?token=bad{token}")
    try:
        assert ws.response.startswith("HTTP/1.1 403"), ws.response
        assert ws.closed_silently()
    finally:
        ws.close()

    # Deleting the server ends the token.
    cloud.run("ferrostack-demo", "server", "delete", "--wait", server, timeout=180)
    ws = WebSocket(cloud.proxy_port, websocket_path(url))
    try:
        assert ws.response.startswith("HTTP/1.1 403"), ws.response
        assert ws.closed_silently()
    finally:
        ws.close()
    status, _, _ = cloud.request("GET", f"/compute/v2.1/os-console-auth-tokens/{token}", admin,
                                 headers={"OpenStack-API-Version": "compute 2.31"})
    assert status == 404
