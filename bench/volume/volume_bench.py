"""Block storage benchmark client: volume create/delete, volume from an image, snapshots, and
attach/detach to a running guest, against one Ferrostack (its Cinder v3 API at /volume/v3, Nova
at /compute/v2.1, Glance at /image/v2), with every result checked.

Phases (each can be skipped; all times are wall-clock seconds as this client sees them):

  blank     C clients (threads, one HTTP/1.1 connection each) each create M blank 1 GiB volumes,
            one after the other: POST /volume/v3/volumes (its 202 latency), then GET until
            `available` (request → available; polls after 2, 5, 10, 20, 40 ms, then every
            --poll seconds). The server's own view,
            `updated_at - created_at` of the available volume, is recorded too (no polling in
            it). Then each client deletes its volumes the same way (DELETE → 202, GET until
            404). Checks: every volume reached `available`, its file `volume-<id>` exists with
            1 GiB virtual size, the list shows all of them; afterwards none is listed and every
            file is gone.
  image     the raw image file (--image-file, 1 GiB) is uploaded once; then, round after round:
            `volume create --image` (POST with imageRef → available; the volume's bytes are
            checked against the image's md5), `qemu-img convert -f raw -O raw` of the same file
            on the same disk followed by fsync (the copy Ferrostack's file backend runs; the
            floor), and the image downloaded with curl, fsynced, then converted the same way
            (the steps Ferrostack runs, by hand, without its md5, inspection and bookkeeping).
            Page caches are dropped before every measured step when --drop-caches is given
            (root).
  snapshot  snapshots of a 1 GiB volume made from that image: POST /volume/v3/snapshots →
            available (the snapshot file's bytes checked), then DELETE → 404 (file gone).
  attach    one guest (the test guest image, tests/guest-image) is booted; a blank volume is
            attached (POST /servers/{id}/os-volume_attachments → volume `in-use`, and → the
            guest's serial console lists the new disk: its `FERROSTACK-GUEST: disks` line, which
            the guest prints within 2 s of a change) and detached (DELETE → `available`, → the
            guest's list without it), N times. When the volume turns `in-use` the domain must
            hold its file (`virsh domblklist`), when it turns `available` it must not.

Prints one JSON document (stdout, and --json-out). Exits 1 if any check failed ("problems").
Standard library only (plus curl and qemu-img as subprocesses).
"""
import argparse
import hashlib
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "network"))
from port_create import Client, percentile, tree_cpu_seconds  # noqa: E402

GIB = 1 << 30
GIB_SECTORS = GIB // 512


class Failed(Exception):
    """A check failed: the phase stops and the run is reported as failed."""


def expect(status, body, expected, what):
    if status not in (expected if isinstance(expected, tuple) else (expected,)):
        raise Failed(f"{what}: HTTP {status} (expected {expected}): {json.dumps(body)[:400]}")
    return body


def stats(values):
    """Median, p90, p99 (nearest rank), min, max and mean of seconds, in milliseconds."""
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    ms = lambda x: round(x * 1000, 2)  # noqa: E731
    return {"n": len(v), "p50_ms": ms(percentile(v, 50)), "p90_ms": ms(percentile(v, 90)),
            "p99_ms": ms(percentile(v, 99)), "min_ms": ms(v[0]), "max_ms": ms(v[-1]),
            "mean_ms": ms(sum(v) / len(v)), "median_ms": ms(statistics.median(v)),
            "all_ms": [ms(x) for x in values if x is not None]}


def parse_ts(text):
    """Cinder's timestamps (`2026-11-23T07:16:33.123456`, UTC) as seconds since the epoch."""
    if not text:
        return None
    text = text.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()


def server_seconds(record):
    """`updated_at - created_at` of a volume or snapshot record."""
    a, b = parse_ts(record.get("created_at")), parse_ts(record.get("updated_at"))
    return None if a is None or b is None else b - a


def poll_delays(cap):
    """Pauses between status polls: 2, 5, 10, 20, 40 ms, then every `cap` seconds, so that a
    fast transition is seen within a few ms and a slow one costs one GET per `cap`."""
    for d in (0.002, 0.005, 0.01, 0.02, 0.04):
        yield min(d, cap)
    while True:
        yield cap


def md5_of(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Bench:
    def __init__(self, args):
        self.args = args
        self.base = args.url.rstrip("/")
        self.problems = []
        self.tag = uuid.uuid4().hex[:6]
        self.token = self.authenticate()
        self.headers = {"Accept": "application/json", "X-Auth-Token": self.token}
        self.api = self.client()
        self.cleanup = []  # (method, path) to call on the way out, newest first

    # --- plumbing -------------------------------------------------------------------------
    def authenticate(self):
        password = open(self.args.password_file).read().strip()
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        url = urllib.parse.urlsplit(self.base)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        conn.request("POST", url.path + "/identity/v3/auth/tokens", body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        token = resp.getheader("X-Subject-Token")
        conn.close()
        if resp.status != 201 or not token:
            raise SystemExit(f"no token from {self.base}/identity/v3/auth/tokens: {resp.status}")
        return token

    def client(self):
        return Client(self.base, self.headers, self.args.timeout)

    def drop_caches(self):
        """Writes dirty pages out and empties the page cache (root only); True when done."""
        os.sync()
        if not self.args.drop_caches:
            return False
        try:
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
            return True
        except OSError:
            return False

    def wait_for(self, api, kind, oid, wanted, start, what, timeout=None):
        """Polls GET /{kind}s/{oid} (kind: volume or snapshot) every --poll s until its status is
        `wanted` (or 404 when wanted is None); returns (seconds since `start`, the last record)."""
        timeout = timeout or self.args.wait_timeout
        deadline = time.perf_counter() + timeout
        delays = poll_delays(self.args.poll)
        while True:
            status, body, _ = api.call("GET", f"/volume/v3/{kind}s/{oid}")
            now = time.perf_counter()
            if wanted is None and status == 404:
                return now - start, None
            if status != 200:
                raise Failed(f"{what}: GET {kind} {oid}: HTTP {status} {json.dumps(body)[:300]}")
            record = body[kind]
            if record["status"] == wanted:
                return now - start, record
            if "error" in record["status"]:
                raise Failed(f"{what}: {kind} {oid} went to {record['status']}")
            if now > deadline:
                raise Failed(f"{what}: {kind} {oid} still {record['status']} after {timeout} s")
            time.sleep(next(delays))

    def wait_volume(self, api, vid, wanted, start, what, timeout=None):
        return self.wait_for(api, "volume", vid, wanted, start, what, timeout)

    def wait_snapshot(self, sid, wanted, start, what):
        return self.wait_for(self.api, "snapshot", sid, wanted, start, what)

    def volume_file(self, vid):
        return os.path.join(self.args.volumes_dir, f"volume-{vid}")

    def list_volume_ids(self):
        ids, path = {}, "/volume/v3/volumes/detail?limit=1000"
        while path:
            status, body, _ = self.api.call("GET", path)
            expect(status, body, 200, "list volumes")
            for v in body["volumes"]:
                ids[v["id"]] = v["status"]
            path = None
            for link in body.get("volumes_links", []):
                if link.get("rel") == "next":
                    nxt = urllib.parse.urlsplit(link["href"])
                    path = "/volume" + nxt.path.split("/volume", 1)[1] + "?" + nxt.query
        return ids

    def delete_volume(self, vid, what):
        status, body, secs = self.api.call("DELETE", f"/volume/v3/volumes/{vid}")
        expect(status, body, 202, f"{what}: delete volume")
        self.wait_volume(self.api, vid, None, time.perf_counter(), what)

    def upload_image(self, path, name, disk_format):
        """Creates a public image and uploads the file; returns (id, seconds of the upload)."""
        status, body, _ = self.api.call("POST", "/image/v2/images", {
            "name": name, "disk_format": disk_format, "container_format": "bare",
            "visibility": "public"})
        image = expect(status, body, 201, f"create image {name}")
        self.cleanup.insert(0, ("DELETE", f"/image/v2/images/{image['id']}"))
        url = urllib.parse.urlsplit(self.base)
        size = os.path.getsize(path)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600, blocksize=1 << 20)
        start = time.perf_counter()
        with open(path, "rb") as f:
            conn.request("PUT", f"{url.path}/image/v2/images/{image['id']}/file", body=f,
                         headers={"X-Auth-Token": self.token, "Content-Length": str(size),
                                  "Content-Type": "application/octet-stream"})
            resp = conn.getresponse()
            raw = resp.read()
        secs = time.perf_counter() - start
        conn.close()
        if resp.status != 204:
            raise Failed(f"upload {name}: HTTP {resp.status} {raw[:300]!r}")
        status, body, _ = self.api.call("GET", f"/image/v2/images/{image['id']}")
        if status != 200 or body.get("status") != "active" or body.get("size") != size:
            raise Failed(f"image {name} not active with {size} bytes: {json.dumps(body)[:300]}")
        return image["id"], secs

    def log_breakdown(self, vid, image_id, converting_since=None):
        """From the server's INFO lines: when the manager took the volume's Create task, when
        the image's download ended (`image downloaded`) and when the volume was created; None
        without --server-log or when a line is missing. With `converting_since` (when the
        volume's temporary file appeared: qemu-img convert started), the time after the
        download is split into inspection and convert + fsync."""
        if not self.args.server_log:
            return None
        marks = {}
        with open(self.args.server_log, errors="replace") as f:
            for line in f:
                if "op" not in marks and f'volume operation volume="{vid}" task=Create' in line:
                    marks["op"] = line
                elif "op" in marks and "dl" not in marks and \
                        f'image downloaded image="{image_id}"' in line:
                    marks["dl"] = line
                elif "op" in marks and f"volume created volume={vid}" in line:
                    marks["done"] = line
                    break
        if len(marks) != 3:
            return None
        t = {k: datetime.strptime(v.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
             .replace(tzinfo=timezone.utc).timestamp() for k, v in marks.items()}
        out = {"download_s": t["dl"] - t["op"], "inspect_convert_s": t["done"] - t["dl"],
               "manager_s": t["done"] - t["op"]}
        if converting_since is not None and t["dl"] <= converting_since <= t["done"]:
            out["inspect_s"] = converting_since - t["dl"]
            out["convert_s"] = t["done"] - converting_since
        return out

    def agent_steps(self, vid):
        """From the server's INFO lines, the compute agent's part of each attach and detach of
        volume `vid`, in order: `attaching a volume` → `volume attached` (libvirt attach-device,
        live and persistent) and `detaching a volume` → `volume detached` (until the live
        domain no longer has the disk: the guest released it). Empty without --server-log."""
        if not self.args.server_log:
            return [], []
        marks = {"attaching a volume": [], "volume attached": [],
                 "detaching a volume": [], "volume detached": []}
        with open(self.args.server_log, errors="replace") as f:
            for line in f:
                if f"volume={vid}" not in line:
                    continue
                for text, seen in marks.items():
                    if f"INFO {text} " in line:
                        seen.append(datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
                                    .replace(tzinfo=timezone.utc).timestamp())
        plug = [b - a for a, b in zip(marks["attaching a volume"], marks["volume attached"])]
        unplug = [b - a for a, b in zip(marks["detaching a volume"], marks["volume detached"])]
        return plug, unplug

    def phase(self, name, fn):
        print(f"--- {name}", file=sys.stderr, flush=True)
        try:
            return fn()
        except Failed as e:
            self.problems.append(f"{name}: {e}")
            print(f"    FAILED: {e}", file=sys.stderr, flush=True)
            return {"failed": str(e)}

    # --- 1. blank volumes -------------------------------------------------------------------
    def blank(self, clients, per_client):
        total = clients * per_client
        for i in range(2):  # warm-up: connections, the manager's first volume
            status, body, _ = self.api.call("POST", "/volume/v3/volumes", {
                "volume": {"size": 1, "name": f"bench-warm-{self.tag}-{i}"}})
            vid = expect(status, body, 202, "warm-up create")["volume"]["id"]
            self.wait_volume(self.api, vid, "available", time.perf_counter(), "warm-up")
            self.delete_volume(vid, "warm-up")

        conns = [self.client() for _ in range(clients)]
        owned = [[] for _ in range(clients)]
        lock = threading.Lock()
        rec = {k: [] for k in ("post", "available", "server", "delete", "gone")}
        errors = []

        def run(work):
            barrier = threading.Barrier(clients + 1)

            def body(i):
                barrier.wait()
                try:
                    work(i, conns[i])
                except Exception as e:  # noqa: BLE001 - reported
                    with lock:
                        errors.append(f"client {i}: {type(e).__name__}: {e}")

            threads = [threading.Thread(target=body, args=(i,)) for i in range(clients)]
            for t in threads:
                t.start()
            cpu0 = tree_cpu_seconds(self.args.server_pid)
            barrier.wait()
            start = time.perf_counter()
            for t in threads:
                t.join()
            wall = time.perf_counter() - start
            cpu1 = tree_cpu_seconds(self.args.server_pid)
            return wall, (None if cpu0 is None else cpu1 - cpu0)

        def create(i, api):
            for k in range(per_client):
                start = time.perf_counter()
                status, body, secs = api.call("POST", "/volume/v3/volumes", {
                    "volume": {"size": 1, "name": f"bench-blank-{self.tag}-{i}-{k}"}})
                vid = expect(status, body, 202, "create")["volume"]["id"]
                owned[i].append(vid)
                took, vol = self.wait_volume(api, vid, "available", start, "create")
                with lock:
                    rec["post"].append(secs)
                    rec["available"].append(took)
                    rec["server"].append(server_seconds(vol))

        def delete(i, api):
            for vid in owned[i]:
                start = time.perf_counter()
                status, body, secs = api.call("DELETE", f"/volume/v3/volumes/{vid}")
                expect(status, body, 202, "delete")
                took, _ = self.wait_volume(api, vid, None, start, "delete")
                with lock:
                    rec["delete"].append(secs)
                    rec["gone"].append(took)

        wall_c, cpu_c = run(create)
        made = [v for vs in owned for v in vs]
        problems = [f"create: {e}" for e in errors]
        sizes, allocated = [], []
        for vid in made:
            try:
                st = os.stat(self.volume_file(vid))
                sizes.append(st.st_size)
                allocated.append(st.st_blocks * 512)
            except FileNotFoundError:
                problems.append(f"create: no file for volume {vid}")
        if len(made) != total or len(rec["available"]) != total:
            problems.append(f"create: {len(rec['available'])} of {total} volumes available")
        if any(s != GIB for s in sizes):
            problems.append(f"create: file sizes {sorted(set(sizes))}, expected {GIB}")
        listed = self.list_volume_ids()
        not_listed = [v for v in made if listed.get(v) != "available"]
        if not_listed:
            problems.append(f"create: {len(not_listed)} volumes not listed as available")
        errors.clear()
        wall_d, cpu_d = run(delete)
        problems += [f"delete: {e}" for e in errors]
        for c in conns:
            c.close()
        listed = self.list_volume_ids()
        left = [v for v in made if v in listed]
        files_left = [v for v in made if os.path.exists(self.volume_file(v))]
        if left:
            problems.append(f"delete: {len(left)} volumes still listed")
        if files_left:
            problems.append(f"delete: {len(files_left)} volume files still on disk")
        if len(rec["gone"]) != len(made):
            problems.append(f"delete: {len(rec['gone'])} of {len(made)} volumes gone")
        self.problems += [f"blank {clients}x{per_client}: {p}" for p in problems]
        result = {
            "clients": clients, "per_client": per_client, "volumes": total,
            "create_seconds": round(wall_c, 3), "create_per_s": round(total / wall_c, 2),
            "delete_seconds": round(wall_d, 3), "delete_per_s": round(len(made) / wall_d, 2),
            "server_cpu_ms_per_create": None if cpu_c is None else round(cpu_c / total * 1000, 2),
            "server_cpu_ms_per_delete": None if cpu_d is None else round(cpu_d / total * 1000, 2),
            "post_202": stats(rec["post"]), "to_available": stats(rec["available"]),
            "server_created_to_available": stats(rec["server"]),
            "delete_202": stats(rec["delete"]), "to_gone": stats(rec["gone"]),
            "file_size": sorted(set(sizes)), "max_allocated_bytes": max(allocated or [0]),
            "problems": problems,
        }
        for key in ("post_202", "to_available", "delete_202", "to_gone"):
            s = result[key]
            if s:
                s.pop("all_ms")
        s = result["server_created_to_available"]
        if s:
            s.pop("all_ms")
        a, p = result["to_available"] or {}, result["post_202"] or {}
        print(f"    {clients}x{per_client}: {result['create_per_s']} volumes/s created, "
              f"202 p50 {p.get('p50_ms')} ms, → available p50 {a.get('p50_ms')} p90 "
              f"{a.get('p90_ms')} p99 {a.get('p99_ms')} ms; deleted {result['delete_per_s']}/s; "
              f"{'ok' if not problems else problems}", file=sys.stderr, flush=True)
        return result

    # --- 2. volume from an image, and the limit -------------------------------------------
    def image(self):
        args = self.args
        size = os.path.getsize(args.image_file)
        if size != GIB:
            raise Failed(f"{args.image_file} is {size} bytes, not 1 GiB")
        image_md5 = md5_of(args.image_file)
        image_id, upload_s = self.upload_image(args.image_file, f"bench-vol-{self.tag}", "raw")
        self.image_md5, self.image_id = image_md5, image_id
        print(f"    image {image_id} uploaded in {upload_s:.2f} s", file=sys.stderr, flush=True)
        scratch = os.path.join(args.work_dir, "scratch")
        os.makedirs(scratch, exist_ok=True)
        rows, kept = [], None
        for r in range(1, args.image_rounds + 1):
            # Ferrostack: volume create --image
            dropped = self.drop_caches()
            start = time.perf_counter()
            status, body, post_s = self.api.call("POST", "/volume/v3/volumes", {"volume": {
                "size": 1, "imageRef": image_id, "name": f"bench-fromimage-{self.tag}-{r}"}})
            vid = expect(status, body, 202, "create from image")["volume"]["id"]
            self.cleanup.insert(0, ("DELETE", f"/volume/v3/volumes/{vid}"))
            tmp_file = os.path.join(args.volumes_dir, f"tmp-volume-{vid}")
            seen = {}
            watching = threading.Event()

            def watch_tmp():  # when the file backend starts writing the volume (qemu-img)
                while not watching.is_set():
                    if os.path.exists(tmp_file):
                        seen["t"] = time.time()
                        return
                    time.sleep(0.005)

            watcher = threading.Thread(target=watch_tmp, daemon=True)
            watcher.start()
            try:
                took, vol = self.wait_volume(self.api, vid, "available", start,
                                             "create from image", timeout=600)
            finally:
                watching.set()
                watcher.join()
            path = self.volume_file(vid)
            got = md5_of(path) if os.path.exists(path) else None
            if got != image_md5 or os.path.getsize(path) != GIB:
                raise Failed(f"volume {vid} from the image: md5 {got}, expected {image_md5}")
            if str(vol.get("bootable")).lower() != "true":
                raise Failed(f"volume {vid} from the image is not bootable")
            rows.append({"round": r, "system": "ferrostack", "seconds": took, "post_s": post_s,
                         "server_s": server_seconds(vol), "caches_dropped": dropped,
                         "log": self.log_breakdown(vid, image_id, seen.get("t"))})
            if r < args.image_rounds:
                self.delete_volume(vid, "delete volume from image")
                self.cleanup.pop(0)
            else:
                kept = vid

            # The floor: qemu-img convert of the same file on the same disk, then fsync.
            dst = os.path.join(scratch, "converted.raw")
            dropped = self.drop_caches()
            start = time.perf_counter()
            subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "raw",
                            args.image_file, dst], check=True)
            fsync_path(dst)
            fsync_path(scratch)
            took = time.perf_counter() - start
            if r == 1 and md5_of(dst) != image_md5:
                raise Failed("qemu-img convert's output differs from the image")
            os.sync()
            t_unlink = time.perf_counter()
            os.unlink(dst)  # what deleting a 1 GiB volume or snapshot costs the file system
            unlink_s = time.perf_counter() - t_unlink
            rows.append({"round": r, "system": "qemu-img", "seconds": took,
                         "unlink_s": unlink_s, "caches_dropped": dropped})

            # Download (curl, from the same image API) + convert + fsync.
            dl = os.path.join(scratch, "download.raw")
            dropped = self.drop_caches()
            start = time.perf_counter()
            subprocess.run(["curl", "-fsS", "-o", dl, "-H", f"X-Auth-Token: {self.token}",
                            f"{self.base}/image/v2/images/{image_id}/file"], check=True)
            mid = time.perf_counter()
            fsync_path(dl)  # as Ferrostack's download is made durable before it is used
            synced = time.perf_counter()
            subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "raw", dl, dst],
                           check=True)
            fsync_path(dst)
            fsync_path(scratch)
            took = time.perf_counter() - start
            if r == 1 and md5_of(dst) != image_md5:
                raise Failed("download + convert output differs from the image")
            os.unlink(dl)
            os.unlink(dst)
            rows.append({"round": r, "system": "download+qemu-img", "seconds": took,
                         "download_s": mid - start, "download_fsync_s": synced - mid,
                         "convert_s": took - (synced - start), "caches_dropped": dropped})
            print("    round {}: ".format(r) + ", ".join(
                f"{x['system']} {x['seconds']:.2f} s" for x in rows[-3:]),
                file=sys.stderr, flush=True)
        med = {s: statistics.median(x["seconds"] for x in rows if x["system"] == s)
               for s in ("ferrostack", "qemu-img", "download+qemu-img")}
        self.from_image_volume = kept
        return {"image_bytes": size, "image_md5": image_md5, "upload_seconds": round(upload_s, 3),
                "rounds": rows, "median_seconds": med,
                "ferrostack_post_202": stats([x["post_s"] for x in rows if "post_s" in x]),
                "ferrostack_server_s": statistics.median(
                    x["server_s"] for x in rows if x.get("server_s") is not None),
                "unlink_median_s": statistics.median(
                    x["unlink_s"] for x in rows if "unlink_s" in x),
                "download_median_s": statistics.median(
                    x["download_s"] for x in rows if "download_s" in x),
                "download_fsync_median_s": statistics.median(
                    x["download_fsync_s"] for x in rows if "download_fsync_s" in x),
                "download_convert_median_s": statistics.median(
                    x["convert_s"] for x in rows if "download_fsync_s" in x),
                "ferrostack_log_median_s": {k: statistics.median(
                    x["log"][k] for x in rows if x.get("log") and k in x["log"]) for k in (
                    "download_s", "inspect_convert_s", "manager_s", "inspect_s", "convert_s")
                    if any(x.get("log") and k in x["log"] for x in rows)}
                if any(x.get("log") for x in rows) else None,
                "ratio_to_qemu_img": med["ferrostack"] / med["qemu-img"],
                "ratio_to_download_qemu_img": med["ferrostack"] / med["download+qemu-img"]}

    # --- 3. snapshots -----------------------------------------------------------------------
    def snapshots(self):
        vid = getattr(self, "from_image_volume", None)
        expected_md5 = getattr(self, "image_md5", None)
        if not vid:
            raise Failed("no volume from the image to snapshot (the image phase failed or was skipped)")
        rows = []
        for r in range(1, self.args.snapshot_rounds + 1):
            dropped = self.drop_caches()
            start = time.perf_counter()
            status, body, post_s = self.api.call("POST", "/volume/v3/snapshots", {"snapshot": {
                "volume_id": vid, "name": f"bench-snap-{self.tag}-{r}"}})
            sid = expect(status, body, 202, "create snapshot")["snapshot"]["id"]
            self.cleanup.insert(0, ("DELETE", f"/volume/v3/snapshots/{sid}"))
            took, snap = self.wait_snapshot(sid, "available", start, "create snapshot")
            path = os.path.join(self.args.volumes_dir, f"snapshot-{sid}")
            if not os.path.exists(path) or os.path.getsize(path) != GIB:
                raise Failed(f"snapshot {sid}: no 1 GiB file {path}")
            if md5_of(path) != expected_md5:
                raise Failed(f"snapshot {sid}: its bytes differ from the volume's")
            start = time.perf_counter()
            status, body, del_s = self.api.call("DELETE", f"/volume/v3/snapshots/{sid}")
            expect(status, body, 202, "delete snapshot")
            gone, _ = self.wait_snapshot(sid, None, start, "delete snapshot")
            self.cleanup.pop(0)
            if os.path.exists(path):
                raise Failed(f"snapshot {sid}: file still there after the delete")
            rows.append({"round": r, "post_s": post_s, "seconds": took,
                         "server_s": server_seconds(snap), "delete_202_s": del_s,
                         "gone_s": gone, "caches_dropped": dropped})
            print(f"    snapshot {r}: available in {took:.2f} s, gone in {gone * 1000:.0f} ms",
                  file=sys.stderr, flush=True)
        self.delete_volume(vid, "delete the snapshotted volume")
        self.cleanup = [c for c in self.cleanup if c[1] != f"/volume/v3/volumes/{vid}"]
        if os.path.exists(self.volume_file(vid)):
            raise Failed(f"volume {vid}: file still there after the delete")
        return {"rounds": rows, "to_available": stats([x["seconds"] for x in rows]),
                "server": stats([x["server_s"] for x in rows]),
                "post_202": stats([x["post_s"] for x in rows]),
                "delete_202": stats([x["delete_202_s"] for x in rows]),
                "to_gone": stats([x["gone_s"] for x in rows])}

    # --- 4. attach / detach -------------------------------------------------------------------
    def console_disks(self, sid):
        """The `FERROSTACK-GUEST: disks ...` lines of the server's console, in order."""
        status, body, _ = self.api.call("POST", f"/compute/v2.1/servers/{sid}/action",
                                        {"os-getConsoleOutput": {}})
        expect(status, body, 200, "console output")
        text = body["output"].replace("\r", "")
        return re.findall(r"^FERROSTACK-GUEST: disks(.*)$", text, re.M)

    def attach(self):
        args = self.args
        image_id, _ = self.upload_image(args.guest_image, f"bench-guest-{self.tag}", "qcow2")
        status, body, _ = self.api.call("POST", "/compute/v2.1/flavors", {"flavor": {
            "name": f"bench.vol.{self.tag}", "ram": 128, "vcpus": 1, "disk": 1}})
        flavor = expect(status, body, 200, "create flavor")["flavor"]["id"]
        self.cleanup.insert(0, ("DELETE", f"/compute/v2.1/flavors/{flavor}"))
        deadline = time.time() + 120
        while True:
            status, body, _ = self.api.call("GET", "/placement/resource_providers")
            if status == 200 and body["resource_providers"]:
                break
            if time.time() > deadline:
                raise Failed("the compute host did not register in placement")
            time.sleep(0.5)
        boot_start = time.perf_counter()
        status, body, _ = self.api.call("POST", "/compute/v2.1/servers", {"server": {
            "name": f"bench-vol-{self.tag}", "imageRef": image_id, "flavorRef": flavor,
            "config_drive": True}})
        sid = expect(status, body, 202, "create server")["server"]["id"]
        self.cleanup.insert(0, ("DELETE", f"/compute/v2.1/servers/{sid}"))
        deadline = time.time() + 300
        while True:
            status, body, _ = self.api.call("GET", f"/compute/v2.1/servers/{sid}")
            expect(status, body, 200, "show server")
            if body["server"]["status"] == "ACTIVE":
                break
            if body["server"]["status"] == "ERROR" or time.time() > deadline:
                raise Failed(f"server {sid}: {body['server']['status']} "
                             f"{json.dumps(body['server'].get('fault'))[:300]}")
            time.sleep(0.5)
        active_s = time.perf_counter() - boot_start
        deadline = time.time() + 300
        while not self.console_disks(sid):
            if time.time() > deadline:
                raise Failed(f"server {sid}: no FERROSTACK-GUEST disks line on the console")
            time.sleep(0.5)
        guest_s = time.perf_counter() - boot_start
        print(f"    guest {sid}: ACTIVE after {active_s:.1f} s, its first disks line after "
              f"{guest_s:.1f} s", file=sys.stderr, flush=True)

        status, body, _ = self.api.call("POST", "/volume/v3/volumes", {"volume": {
            "size": 1, "name": f"bench-attach-{self.tag}"}})
        vid = expect(status, body, 202, "create volume to attach")["volume"]["id"]
        self.cleanup.insert(1, ("DELETE", f"/volume/v3/volumes/{vid}"))  # after the server
        self.wait_volume(self.api, vid, "available", time.perf_counter(), "volume to attach")
        vdb = f"vdb:{GIB_SECTORS}"
        rows = []
        status, body, _ = self.api.call("GET", f"/compute/v2.1/servers/{sid}")
        domain = expect(status, body, 200, "show server")["server"]["OS-EXT-SRV-ATTR:instance_name"]

        def domain_disks():
            out = subprocess.run(["virsh", "-q", "-c", "qemu:///system", "domblklist", domain],
                                 capture_output=True, text=True, check=True).stdout
            return [line.split(None, 1)[1].strip() for line in out.splitlines()
                    if len(line.split(None, 1)) == 2]

        def watch(start, wanted_volume, guest_has_vdb, seen_lines):
            """Polls the volume (poll_delays) and the console (every --console-poll s) at once
            until both changed; returns (seconds to the volume status, seconds to the guest's
            new disks line, how many disks lines the console then holds)."""
            t_vol = t_guest = None
            seen, last_console = seen_lines, 0.0
            deadline = time.perf_counter() + args.wait_timeout
            delays = poll_delays(args.poll)
            while t_vol is None or t_guest is None:
                if t_vol is None:
                    status, body, _ = self.api.call("GET", f"/volume/v3/volumes/{vid}")
                    expect(status, body, 200, "show attached volume")
                    st = body["volume"]["status"]
                    if st == wanted_volume:
                        t_vol = time.perf_counter() - start
                        # At that moment the domain holds the volume's file exactly when the
                        # volume is in use (libvirt's view, not the API's).
                        plugged = self.volume_file(vid) in domain_disks()
                        if plugged != (wanted_volume == "in-use"):
                            raise Failed(f"volume {vid} is {st} but the domain "
                                         f"{'still holds' if plugged else 'does not hold'} "
                                         f"its file: {domain_disks()}")
                    elif "error" in st:
                        raise Failed(f"volume {vid} went to {st}")
                if t_guest is None and time.perf_counter() - last_console >= args.console_poll:
                    last_console = time.perf_counter()
                    lines = self.console_disks(sid)
                    new = lines[seen_lines:]
                    if new and (vdb in new[-1].split()) == guest_has_vdb:
                        t_guest = time.perf_counter() - start
                        seen = len(lines)
                if time.perf_counter() > deadline:
                    raise Failed(f"attach/detach: volume {'' if t_vol else 'not '}"
                                 f"{wanted_volume}, guest {'' if t_guest else 'not '}updated "
                                 f"after {args.wait_timeout} s")
                if t_vol is None or t_guest is None:
                    time.sleep(next(delays) if t_vol is None else 0.01)
            return t_vol, t_guest, seen

        seen = len(self.console_disks(sid))
        for r in range(1, args.attach_rounds + 1):
            start = time.perf_counter()
            status, body, post_s = self.api.call(
                "POST", f"/compute/v2.1/servers/{sid}/os-volume_attachments",
                {"volumeAttachment": {"volumeId": vid}})
            att = expect(status, body, 200, "attach")["volumeAttachment"]
            if att.get("device") != "/dev/vdb":
                raise Failed(f"attach: device {att.get('device')}, expected /dev/vdb")
            in_use, guest_in, seen = watch(start, "in-use", True, seen)
            status, body, _ = self.api.call("GET", f"/compute/v2.1/servers/{sid}/os-volume_attachments")
            listed = [a["volumeId"] for a in expect(status, body, 200, "list attachments")["volumeAttachments"]]
            if listed != [vid]:
                raise Failed(f"attach: the server lists {listed}")
            start = time.perf_counter()
            status, body, del_s = self.api.call(
                "DELETE", f"/compute/v2.1/servers/{sid}/os-volume_attachments/{vid}")
            expect(status, body, 202, "detach")
            available, guest_out, seen = watch(start, "available", False, seen)
            rows.append({"round": r, "attach_post_s": post_s, "in_use_s": in_use,
                         "guest_sees_s": guest_in, "detach_delete_s": del_s,
                         "available_s": available, "guest_gone_s": guest_out})
            print(f"    cycle {r}: in-use {in_use * 1000:.0f} ms (guest {guest_in:.2f} s), "
                  f"available {available * 1000:.0f} ms (guest {guest_out:.2f} s)",
                  file=sys.stderr, flush=True)
        status, body, _ = self.api.call("DELETE", f"/compute/v2.1/servers/{sid}")
        expect(status, body, 204, "delete server")
        deadline = time.time() + 180
        while self.api.call("GET", f"/compute/v2.1/servers/{sid}")[0] != 404:
            if time.time() > deadline:
                raise Failed(f"server {sid} not deleted after 180 s")
            time.sleep(0.5)
        self.cleanup = [c for c in self.cleanup if c[1] != f"/compute/v2.1/servers/{sid}"]
        plug, unplug = self.agent_steps(vid)
        self.delete_volume(vid, "delete the attached volume")
        self.cleanup = [c for c in self.cleanup if c[1] != f"/volume/v3/volumes/{vid}"]
        return {"server_active_s": active_s, "guest_up_s": guest_s, "rounds": rows,
                "agent_plug": stats(plug) if len(plug) == len(rows) else None,
                "agent_unplug": stats(unplug) if len(unplug) == len(rows) else None,
                **{k: stats([x[k] for x in rows]) for k in (
                    "attach_post_s", "in_use_s", "guest_sees_s", "detach_delete_s",
                    "available_s", "guest_gone_s")}}

    def close(self):
        for method, path in self.cleanup:  # the images; the rest only after a failure
            try:
                self.api.call(method, path)
            except Exception:  # noqa: BLE001 - best effort
                pass
        self.api.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="Ferrostack's base URL (http://127.0.0.1:PORT)")
    ap.add_argument("--password-file", required=True, help="the admin password (state/admin-password)")
    ap.add_argument("--volumes-dir", required=True, help="[volume] volumes_dir")
    ap.add_argument("--work-dir", required=True, help="scratch space on the same filesystem")
    ap.add_argument("--image-file", help="the 1 GiB raw image (phase image)")
    ap.add_argument("--guest-image", help="the test guest's disk.qcow2 (phase attach)")
    ap.add_argument("--shapes", default="1x100 8x25", help="CLIENTSxVOLUMES of the blank phase")
    ap.add_argument("--image-rounds", type=int, default=5)
    ap.add_argument("--snapshot-rounds", type=int, default=5)
    ap.add_argument("--attach-rounds", type=int, default=10)
    ap.add_argument("--phases", default="blank image snapshot attach")
    ap.add_argument("--poll", type=float, default=0.05,
                    help="longest pause between status polls (after 2, 5, 10, 20, 40 ms)")
    ap.add_argument("--console-poll", type=float, default=0.2,
                    help="seconds between console reads while waiting for the guest")
    ap.add_argument("--server-log", help="the server's log: split a volume from an image into "
                    "download and inspect+convert by its INFO lines")
    ap.add_argument("--wait-timeout", type=float, default=180)
    ap.add_argument("--timeout", type=float, default=300, help="seconds per request")
    ap.add_argument("--drop-caches", action="store_true", help="drop page caches before data steps")
    ap.add_argument("--server-pid", type=int, help="the server's process: report its CPU time")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    phases = args.phases.split()

    bench = Bench(args)
    result = {"poll_s": args.poll, "drop_caches": args.drop_caches}
    try:
        if "blank" in phases:
            result["blank"] = []
            for shape in args.shapes.split():
                c, m = (int(x) for x in shape.split("x"))
                result["blank"].append(bench.phase(f"blank {shape}", lambda: bench.blank(c, m)))
        if "image" in phases:
            result["image"] = bench.phase("volume from a 1 GiB image", bench.image)
        if "snapshot" in phases:
            result["snapshot"] = bench.phase("snapshots", bench.snapshots)
        if "attach" in phases:
            result["attach"] = bench.phase("attach/detach", bench.attach)
    finally:
        bench.close()
    result["problems"] = bench.problems
    result["ok"] = not bench.problems
    result["loadavg"] = open("/proc/loadavg").read().split()[:3]
    line = json.dumps(result, indent=1)
    print(line)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(line + "\n")
    print("all checks passed" if result["ok"] else "PROBLEMS:\n  " + "\n  ".join(bench.problems),
          file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
