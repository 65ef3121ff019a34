"""Convergence through the whole binary: Neutron API call → network agent → packets flowing.

    converge_api.py measure URL --password-file F --host HOST --prefix P --work-dir D ...
    converge_api.py report RESULTS_DIR          (prints the docs section)

`measure` talks to a running Ferrostack (`ferrostack up` with its network agent on, compute agent
off) whose `[compute] host` is HOST. For each size N (N < 2 is measured with 2 ports: two guests
must ping each other), on a fresh VXLAN network with a /20 DHCP subnet (made as admin, not
timed, and waited for until the agent serves DHCP on it):

  T0       C client threads start creating N ports, `POST /networking/v2.0/ports` bound to HOST
           as Nova binds them (`binding:host_id`, `device_owner: compute:nova`, a fresh
           `device_id`). Right after each create returns, the port's tap device is made as
           libvirt makes it (`tap` + 11 characters of the port id): the first and the last port
           are guests (a veth pair whose other end is `eth0`, with the port's MAC, in a fresh
           namespace, where busybox udhcpc starts at once), the others tuntap devices (fed to one
           long-running `ip -batch -`, which makes each as its line arrives).
  T_api    the last create returned.
  T_active every port is `ACTIVE` in `GET /v2.0/ports?network_id=…&fields=id&fields=status`
           (polled from T_api on, 50 ms between a reply and the next request).
  T_ping   both guests hold the lease of their port's fixed IP and the first guest's
           `ping -c 1` of the second answered.

Then one more port on the converged network (a guest): API call → ACTIVE → it pings the first
guest. Then the ports and the network are deleted through the API and every tap, veth and
namespace made here is removed. Every kernel object made here is written to `--record` first,
so run.sh removes it even when this process is killed. Packets go only between the namespaces
made here (and the agent's DHCP namespace of the network made here).

The server log (`--server-log`, level info) gives where the time went: the agent's passes that
changed something (`network agent converged elapsed=… changes=…`) and the ports' status
changes (`port status … "ACTIVE"`), put on the same clock as T0.
"""

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
TITLE = "## Network convergence: Neutron API call to packets flowing (one host, through the binary)"
POLL_S = 0.05
DEADLINE_S = 600

# The guests' udhcpc event script (as crates/network-agent/tests/datapath/common.rs): configures
# eth0 from the lease and records it in $LEASE_FILE.
UDHCPC_SCRIPT = r"""#!/bin/sh
[ "$1" = bound ] || [ "$1" = renew ] || exit 0
ip addr flush dev "$interface"
ip addr add "$ip/$mask" dev "$interface"
[ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
if [ -n "$router" ]; then ip route replace default via "${router%% *}" dev "$interface"; fi
printf 'ip=%s\nmask=%s\nrouter=%s\nmtu=%s\n' "$ip" "$mask" "$router" "$mtu" > "$LEASE_FILE"
"""


def sh(command: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"`{command}` failed: {p.stdout}{p.stderr}")
    return p


class Record:
    """The kernel objects this process made, one `KIND NAME` line each, written before the
    object is made (run.sh's exit trap removes whatever is still there)."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.Lock()

    def add(self, kind: str, name: str) -> None:
        with self.lock, open(self.path, "a") as f:
            f.write(f"{kind} {name}\n")


# --- the API -------------------------------------------------------------------------------
class Api:
    def __init__(self, url: str, password: str):
        import requests  # the venv's (bench/convergence/run.sh runs this with it)

        self.requests = requests
        self.url = url.rstrip("/")
        self.password = password
        self.token = None
        self.renew()

    def renew(self) -> None:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": self.password}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        r = self.requests.post(f"{self.url}/identity/v3/auth/tokens", json=body, timeout=30)
        r.raise_for_status()
        self.token = r.headers["X-Subject-Token"]

    def session(self):
        s = self.requests.Session()
        s.headers["X-Auth-Token"] = self.token
        return s

    def call(self, session, method: str, path: str, body=None, expect=(200,)):
        r = session.request(method, f"{self.url}/networking/v2.0{path}", json=body, timeout=60)
        if r.status_code not in expect:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def list_ports(self, session, query: str) -> list:
        """Every port of a listing, following `ports_links` if the server pages."""
        ports, path = [], f"/ports?{query}"
        while path:
            body = self.call(session, "GET", path)
            ports += body["ports"]
            path = None
            for link in body.get("ports_links", []):
                if link.get("rel") == "next":
                    path = link["href"].split("/v2.0", 1)[1]
        return ports


# --- the host side -------------------------------------------------------------------------
def tap_name(port: dict) -> str:
    return "tap" + port["id"][:11]


class TapMaker:
    """One `ip -force -batch -` fed a `tuntap add` line per port as its create returns (ip runs
    each line as it reads it: no process start per tap)."""

    def __init__(self, record: Record):
        self.record = record
        self.lock = threading.Lock()
        self.names: list[str] = []
        self.proc = subprocess.Popen(["ip", "-force", "-batch", "-"], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def add(self, name: str) -> None:
        self.record.add("tap", name)
        with self.lock:
            self.names.append(name)
            self.proc.stdin.write(f"tuntap add dev {name} mode tap\n")
            self.proc.stdin.flush()

    def close(self) -> None:
        self.proc.stdin.close()
        err = self.proc.stderr.read()
        if self.proc.wait() != 0:
            raise RuntimeError(f"ip -batch (tuntap add) failed: {err}")


class Guest:
    """A "guest": a namespace whose eth0 (the port's MAC) is the peer of the port's tap, where
    busybox udhcpc asks for a lease at once (as a booting guest does)."""

    def __init__(self, ctx, port: dict, label: str):
        self.ctx, self.port = ctx, port
        self.ns = f"{ctx.prefix}{label}"
        self.tap = tap_name(port)
        self.ip = port["fixed_ips"][0]["ip_address"]
        self.lease_file = ctx.work / f"{self.ns}.lease"
        self.leased = threading.Event()
        self.lease_at = None
        self.lease_ok = False
        self.dhcp_proc = None
        ctx.record.add("netns", self.ns)
        ctx.record.add("tap", self.tap)
        sh(f"ip netns add {self.ns} && ip link add {self.tap} type veth peer name eth0 netns {self.ns}"
           f" && ip -n {self.ns} link set dev eth0 address {port['mac_address']} up"
           f" && ip -n {self.ns} link set dev lo up")
        self.made_at = time.perf_counter()

    def start_dhcp(self) -> None:
        """udhcpc in the namespace (discover every second until a lease, then exit)."""
        self.lease_file.unlink(missing_ok=True)
        env = dict(os.environ, LEASE_FILE=str(self.lease_file))
        self.dhcp_proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n",
             "-t", "600", "-T", "1", "-s", str(self.ctx.script), "-O", "mtu"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        threading.Thread(target=self._wait_lease, daemon=True).start()

    def _wait_lease(self) -> None:
        rc = self.dhcp_proc.wait()
        self.lease_at = time.perf_counter()
        try:
            lease = dict(line.split("=", 1) for line in self.lease_file.read_text().splitlines())
        except OSError:
            lease = {}
        self.lease_ok = rc == 0 and lease.get("ip") == self.ip
        if not self.lease_ok:
            print(f"guest {self.ns}: udhcpc exit {rc}, lease {lease}, expected {self.ip}",
                  file=sys.stderr)
        self.leased.set()

    def ping_until(self, ip: str, deadline: float) -> float | None:
        """Pings `ip` once at a time until it answers; the time it did. Every try is kept in
        `pings` as (sent, done, exit code)."""
        self.pings = []
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            p = subprocess.run(["ip", "netns", "exec", self.ns, "busybox", "ping", "-c", "1",
                                "-W", "1", ip], capture_output=True)
            done = time.perf_counter()
            self.pings.append((sent, done, p.returncode))
            if p.returncode == 0:
                return done
            time.sleep(0.02)
        return None

    def remove(self) -> None:
        if self.dhcp_proc and self.dhcp_proc.poll() is None:
            self.dhcp_proc.terminate()
            self.dhcp_proc.wait()
        sh(f"ip netns del {self.ns}", check=False)
        sh(f"ip link del dev {self.tap}", check=False)


def server_cpu_s(pid: int) -> float:
    """CPU seconds of the server process and its reaped children (ip, nft, … it ran)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def machine_busy(seconds: float = 1.0) -> int:
    def ticks():
        f = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        busy = int(f[0]) + int(f[1]) + int(f[2]) + int(f[7])
        return busy, busy + int(f[3]) + int(f[4])
    b0, t0 = ticks()
    time.sleep(seconds)
    b1, t1 = ticks()
    return round(100 * (b1 - b0) / max(1, t1 - t0))


def wait_quiet(limit_s: int) -> int:
    """Waits (up to limit_s) for a nearly idle machine; the last busy percentage seen."""
    busy = machine_busy()
    for _ in range(max(0, limit_s - 1)):
        if busy <= 10:
            break
        busy = machine_busy()
    return busy


# --- the server log ------------------------------------------------------------------------
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")
DURATION = re.compile(r"elapsed=([\d.]+)(ns|µs|us|ms|s)\b")
UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def log_time(line: str) -> float | None:
    m = LOG_TIME.match(line)
    if not m:
        return None
    stamp = m[1][:26]  # microseconds
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()


def agent_timeline(log: Path, offset: int, wall0: float, port_ids: set) -> tuple[dict, int]:
    """What the server log says from byte `offset` on, relative to wall-clock T0: the agent's
    passes that changed something and when the ports turned ACTIVE."""
    passes, active, failures = [], {}, 0
    with open(log, "rb") as f:
        f.seek(offset)
        data = f.read()
    for raw in data.decode(errors="replace").splitlines():
        t = log_time(raw)
        if t is None:
            continue
        if "network agent converged" in raw:
            d = DURATION.search(raw)
            changes = re.search(r"changes=(\d+)", raw)
            elapsed = float(d[1]) * UNITS[d[2]] if d else 0.0
            passes.append({"start_s": round(t - elapsed - wall0, 4), "end_s": round(t - wall0, 4),
                           "elapsed_s": round(elapsed, 4), "changes": int(changes[1]) if changes else 0})
        elif "port status" in raw and 'status="ACTIVE"' in raw:
            m = re.search(r"port=([0-9a-f-]{36})", raw)
            if m and m[1] in port_ids:
                active.setdefault(m[1], round(t - wall0, 4))
        elif "sync failed" in raw or "lagged" in raw:
            failures += 1
    times = sorted(active.values())
    return {"passes": passes, "ports_active_logged": len(times),
            "first_active_logged_s": times[0] if times else None,
            "last_active_logged_s": times[-1] if times else None,
            "sync_failures_or_lags": failures}, offset + len(data)


# --- one size ------------------------------------------------------------------------------
class Context:
    def __init__(self, args):
        self.args = args
        self.api = Api(args.url, Path(args.password_file).read_text().strip())
        self.host = args.host
        self.prefix = args.prefix
        self.work = Path(args.work_dir)
        self.record = Record(Path(args.record))
        self.script = self.work / "udhcpc.sh"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)
        self.log = Path(args.server_log)
        self.pid = args.server_pid


def port_body(ctx, network_id: str) -> dict:
    return {"port": {"network_id": network_id, "binding:host_id": ctx.host,
                     "device_owner": "compute:nova", "device_id": str(uuid.uuid4())}}


def make_network(ctx, session, label: str):
    net = ctx.api.call(session, "POST", "/networks", {"network": {
        "name": f"conv-{label}", "provider:network_type": "vxlan"}}, expect=(201,))["network"]
    third = random.randint(0, 15) * 16
    subnet = ctx.api.call(session, "POST", "/subnets", {"subnet": {
        "network_id": net["id"], "ip_version": 4, "cidr": f"10.{random.randint(100, 250)}.{third}.0/20",
        "enable_dhcp": True, "name": f"conv-{label}"}}, expect=(201,))["subnet"]
    # Not timed: the agent serves DHCP on it (its namespace, dnsmasq, the DHCP port ACTIVE).
    deadline = time.time() + 120
    while time.time() < deadline:
        dhcp = ctx.api.list_ports(session, f"network_id={net['id']}&device_owner=network:dhcp"
                                           f"&fields=id&fields=status")
        ns = sh(f"ip netns pids qdhcp-{net['id']}", check=False)
        if dhcp and all(p["status"] == "ACTIVE" for p in dhcp) and ns.returncode == 0 and ns.stdout.strip():
            return net, subnet
        time.sleep(0.2)
    raise RuntimeError(f"the agent did not serve DHCP on network {net['id']} within 120 s")


def measure_size(ctx, size: int) -> dict:
    a = ctx.args
    n = max(size, 2)
    session = ctx.api.session()
    net, subnet = make_network(ctx, session, f"{size}-{uuid.uuid4().hex[:6]}")
    guests: list[Guest] = []
    taps = TapMaker(ctx.record)
    ports: dict[int, dict] = {}
    try:
        done = threading.Event()
        time.sleep(a.settle)
        busy = wait_quiet(a.quiet_wait)
        log_offset = ctx.log.stat().st_size
        guest_index = {0: "g0", n - 1: "g1"}
        lock = threading.Lock()
        next_index = iter(range(n))
        returned: list[float] = []
        errors: list[BaseException] = []
        guest_by_index: dict[int, Guest] = {}
        sessions = [ctx.api.session() for _ in range(a.clients)]
        created = threading.Event()
        both_guests = threading.Event()
        packets = {"at": None, "error": None}
        polls: list[float] = []
        active = {"all": None}

        def client(s):
            try:
                while True:
                    with lock:
                        i = next(next_index, None)
                    if i is None:
                        return
                    port = ctx.api.call(s, "POST", "/ports", port_body(ctx, net["id"]), expect=(201,))["port"]
                    t = time.perf_counter()
                    if i in guest_index:
                        g = Guest(ctx, port, f"{guest_index[i]}-{port['id'][:8]}")
                        g.start_dhcp()
                        with lock:
                            guest_by_index[i] = g
                            guests.append(g)
                            if len(guest_by_index) == 2:
                                both_guests.set()
                    else:
                        taps.add(tap_name(port))
                    with lock:
                        ports[i] = port
                        returned.append(t)
            except BaseException as e:  # noqa: BLE001 (reported by the main thread)
                errors.append(e)

        def poller():
            # Not every port exists before the last create returned: polling starts then (a
            # listing of 1000 ports costs the server tens of ms, which would slow the creates).
            created.wait(DEADLINE_S)
            if done.is_set():
                return
            s = ctx.api.session()
            query = f"network_id={net['id']}&device_owner=compute:nova&fields=id&fields=status"
            while not done.is_set() and time.perf_counter() < t0 + DEADLINE_S:
                q0 = time.perf_counter()
                listed = ctx.api.list_ports(s, query)
                now = time.perf_counter()
                polls.append(now - q0)
                up = sum(p["status"] == "ACTIVE" for p in listed)
                if up == n and len(listed) == n:
                    active["all"] = now
                    return
                time.sleep(POLL_S)

        def pinger():
            # From T0 on, independent of the API: the first guest pings the second as soon as
            # both hold their leases.
            try:
                if not both_guests.wait(DEADLINE_S):
                    raise RuntimeError("the guests were not made")
                g0, g1 = guest_by_index[0], guest_by_index[n - 1]
                for g in (g0, g1):
                    if not g.leased.wait(DEADLINE_S) or not g.lease_ok:
                        raise RuntimeError(f"guest {g.ns} got no lease of {g.ip}")
                packets["at"] = g0.ping_until(g1.ip, time.perf_counter() + 120)
                if packets["at"] is None:
                    raise RuntimeError(f"{g0.ns} cannot ping {g1.ip}")
            except BaseException as e:  # noqa: BLE001 (reported by the main thread)
                packets["error"] = e

        cpu0 = server_cpu_s(ctx.pid)
        wall0 = time.time()
        t0 = time.perf_counter()
        poll_thread = threading.Thread(target=poller, daemon=True)
        poll_thread.start()
        ping_thread = threading.Thread(target=pinger, daemon=True)
        ping_thread.start()
        workers = [threading.Thread(target=client, args=(s,), daemon=True) for s in sessions]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if errors:
            raise errors[0]
        t_api = max(returned)
        created.set()
        taps.close()
        t_taps = time.perf_counter()
        poll_thread.join(DEADLINE_S)
        done.set()
        if active["all"] is None:
            raise RuntimeError(f"size {size}: not every port ACTIVE within {DEADLINE_S} s")
        ping_thread.join(DEADLINE_S + 120)
        if packets["error"] or packets["at"] is None:
            raise RuntimeError(f"size {size}: no packets: {packets['error']}")
        g0, g1 = guest_by_index[0], guest_by_index[n - 1]
        t_ping = packets["at"]
        cpu1 = server_cpu_s(ctx.pid)
        check_plugged(net, n + 1)  # the ports' taps and the DHCP port's veth end
        timeline, log_offset = agent_timeline(ctx.log, log_offset, wall0,
                                              {p["id"] for p in ports.values()})

        # One more port on the converged network, after the agent has settled.
        time.sleep(a.settle)
        more = one_more(ctx, session, net, g0, log_offset)

        def rel(t):
            return round(t - t0, 4)

        result = {
            "size": size, "ports": n, "clients": a.clients, "busy_before_pct": busy,
            "api_s": rel(t_api), "api_ports_per_s": round(n / (t_api - t0), 1),
            "taps_done_s": rel(t_taps),
            "all_active_s": rel(active["all"]),
            "leases_s": [rel(g0.lease_at), rel(g1.lease_at)],
            "packets_s": rel(t_ping), "agent_share_s": round(active["all"] - t_api, 4),
            "server_cpu_s": round(cpu1 - cpu0, 2),
            "polls": len(polls), "poll_median_ms": round(1000 * statistics.median(polls), 1),
            "guest_taps_s": [rel(g0.made_at), rel(g1.made_at)],
            "pings": [[rel(a), rel(b), rc] for a, b, rc in g0.pings],
            "timeline": timeline, "one_more": more,
        }
        print(f"size {size}: {n} ports, creates {result['api_s']:.2f} s "
              f"({result['api_ports_per_s']}/s), all ACTIVE {result['all_active_s']:.2f} s, "
              f"packets {result['packets_s']:.2f} s; one more: ACTIVE "
              f"{more['active_s']:.2f} s, ping {more['packets_s']:.2f} s", file=sys.stderr)
        return result
    finally:
        done.set()
        cleanup_size(ctx, session, net, ports, guests, taps)


def check_plugged(net: dict, expected: int) -> None:
    """Every tap is a port of the network's bridge."""
    bridge = "brq" + net["id"][:11]
    links = json.loads(sh(f"ip -j link show master {bridge}").stdout or "[]")
    taps = [link for link in links if link["ifname"].startswith("tap")]
    if len(taps) != expected:
        raise RuntimeError(f"{bridge} has {len(taps)} taps, expected {expected}")


def one_more(ctx, session, net: dict, peer: Guest, log_offset: int) -> dict:
    """One more guest port on the converged network: API call → ACTIVE → it pings `peer`."""
    wall0 = time.time()
    t0 = time.perf_counter()
    port = ctx.api.call(session, "POST", "/ports", port_body(ctx, net["id"]), expect=(201,))["port"]
    t_api = time.perf_counter()
    guest = Guest(ctx, port, f"g2-{port['id'][:8]}")
    try:
        guest.start_dhcp()
        t_active = None
        while time.perf_counter() < t0 + DEADLINE_S:
            q0 = time.perf_counter()
            if ctx.api.call(session, "GET", f"/ports/{port['id']}?fields=status")["port"]["status"] == "ACTIVE":
                t_active = time.perf_counter()
                break
            time.sleep(max(0.0, POLL_S - (time.perf_counter() - q0)))
        if t_active is None:
            raise RuntimeError("the extra port did not turn ACTIVE")
        if not guest.leased.wait(DEADLINE_S) or not guest.lease_ok:
            raise RuntimeError(f"the extra guest got no lease of {guest.ip}")
        t_ping = guest.ping_until(peer.ip, time.perf_counter() + 120)
        if t_ping is None:
            raise RuntimeError(f"the extra guest cannot ping {peer.ip}")
        timeline, _ = agent_timeline(ctx.log, log_offset, wall0, {port["id"]})
        return {"api_s": round(t_api - t0, 4), "active_s": round(t_active - t0, 4),
                "lease_s": round(guest.lease_at - t0, 4), "packets_s": round(t_ping - t0, 4),
                "pings": [[round(a - t0, 4), round(b - t0, 4), rc] for a, b, rc in guest.pings],
                "timeline": timeline}
    finally:
        guest.remove()
        try:
            ctx.api.call(session, "DELETE", f"/ports/{port['id']}", expect=(204, 404))
        except Exception as e:  # noqa: BLE001
            print(f"could not delete port {port['id']}: {e}", file=sys.stderr)


def cleanup_size(ctx, session, net, ports, guests, taps: TapMaker) -> None:
    """Removes what the size made: guests, taps, ports, the network; waits until the agent
    has removed the network's bridge and DHCP namespace."""
    for g in guests:
        g.remove()
    if taps.proc.poll() is None:
        try:
            taps.close()
        except Exception as e:  # noqa: BLE001
            print(e, file=sys.stderr)
    if taps.names:
        batch = "".join(f"link del dev {t}\n" for t in taps.names)
        subprocess.run(["ip", "-force", "-batch", "-"], input=batch, text=True, capture_output=True)
    ids = [p["id"] for p in ports.values()]
    # Whatever the listing still has (a create that returned after an error, say).
    try:
        listed = ctx.api.list_ports(session, f"network_id={net['id']}&device_owner=compute:nova&fields=id")
        ids = sorted(set(ids) | {p["id"] for p in listed})
    except Exception as e:  # noqa: BLE001
        print(f"listing the ports of {net['id']}: {e}", file=sys.stderr)
    lock = threading.Lock()
    queue = list(ids)

    def deleter():
        s = ctx.api.session()
        while True:
            with lock:
                if not queue:
                    return
                pid = queue.pop()
            try:
                ctx.api.call(s, "DELETE", f"/ports/{pid}", expect=(204, 404))
            except Exception as e:  # noqa: BLE001
                print(f"could not delete port {pid}: {e}", file=sys.stderr)

    threads = [threading.Thread(target=deleter) for _ in range(ctx.args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        ctx.api.call(session, "DELETE", f"/networks/{net['id']}", expect=(204, 404))
    except Exception as e:  # noqa: BLE001
        print(f"could not delete network {net['id']}: {e}", file=sys.stderr)
        return
    # The host has no port left: the agent removes the bridge, the DHCP namespace and its
    # security group tables.
    bridge = "brq" + net["id"][:11]
    table = "ferrostack_" + re.sub(r"[^A-Za-z0-9]", "_", ctx.host)
    deadline = time.time() + 120
    while time.time() < deadline:
        gone_bridge = sh(f"ip link show dev {bridge}", check=False).returncode != 0
        gone_ns = sh(f"ip netns pids qdhcp-{net['id']}", check=False).returncode != 0
        gone_table = table not in sh("nft list tables", check=False).stdout.split()
        if gone_bridge and gone_ns and gone_table:
            return
        time.sleep(0.2)
    print(f"the agent has not removed {bridge}, qdhcp-{net['id']} and {table} within 120 s",
          file=sys.stderr)


def cmd_measure(args) -> None:
    ctx = Context(args)
    sizes = [int(s) for s in args.sizes.split()]
    results = []
    for round_ in range(1, args.rounds + 1):
        for size in sizes:
            ctx.api.renew()
            r = measure_size(ctx, size)
            r["round"] = round_
            results.append(r)
            Path(args.json_out).write_text(json.dumps({"poll_s": POLL_S, "settle_s": args.settle,
                                                       "results": results}, indent=1))


# --- the report ----------------------------------------------------------------------------
def secs(x) -> str:
    if x is None:
        return "–"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def med(rows, key, sub=None):
    values = [(r[sub] if sub else r)[key] for r in rows]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def cmd_report(args) -> None:
    results = Path(args.results)
    meta = json.loads((results / "meta.json").read_text())
    bench = json.loads((results / "bench.json").read_text())
    rows = bench["results"]
    sizes = []
    for r in rows:
        if r["size"] not in sizes:
            sizes.append(r["size"])
    rounds = max(r["round"] for r in rows)
    out = [TITLE, "", (HERE / "doc_intro.md").read_text().strip(), "", "### Latest results", ""]
    agg = "" if rounds == 1 else f" Every figure is the median of {rounds} rounds."
    out.append(
        f"Run of {meta['date']} on {meta['machine']}, shared with other jobs (builds, tests). "
        f"Ferrostack `{meta['commit']}`; {bench['results'][0]['clients']} client threads; "
        f"SQLite. Load average (1/5/15 min) {meta['load_before']} before and "
        f"{meta['load_after']} after the run, which took {meta['elapsed_s'] // 60} min "
        f"{meta['elapsed_s'] % 60} s.{agg} Cleanup: {meta['cleanup']}.")
    out += ["", "| ports | API creates | T0 → all ACTIVE | T0 → packets flowing | "
                "last create → all ACTIVE | one more port: create → ACTIVE → ping |",
            "|---:|---:|---:|---:|---:|---:|"]
    for size in sizes:
        rs = [r for r in rows if r["size"] == size]
        n = rs[0]["ports"]
        label = f"{n} (size {size}: two guests)" if n != size else f"{n}"
        api, rate = med(rs, "api_s"), med(rs, "api_ports_per_s")
        out.append(
            f"| {label} | {secs(api)} ({rate:,.0f}/s) | {secs(med(rs, 'all_active_s'))} | "
            f"{secs(med(rs, 'packets_s'))} | {secs(med(rs, 'agent_share_s'))} | "
            f"{secs(med(rs, 'api_s', 'one_more'))} → {secs(med(rs, 'active_s', 'one_more'))} → "
            f"{secs(med(rs, 'packets_s', 'one_more'))} |")
    out += ["", "Where the time went, on the same clock (T0 = the first create sent): the last "
                "create's reply, the last tap made; from the server log (level info) the agent's "
                "passes that changed something (start–end, the pass's own time, changes), the "
                "first and the last of the ports' `ACTIVE` status changes; the poll that saw all "
                "`ACTIVE` (polls made, the median poll's time); the two guests' leases; the "
                "server's CPU time (process and reaped children: `ip`, `nft`, …) from T0 until "
                "both all `ACTIVE` and the ping; how busy the machine was (all cores) in the "
                "second before T0." + ("" if rounds == 1 else " Round 1."), "",
            "| ports | creates done | taps done | agent passes with changes | ports set ACTIVE | "
            "all ACTIVE seen (polls) | leases | server CPU | busy before |",
            "|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for size in sizes:
        r = next(r for r in rows if r["size"] == size)
        tl = r["timeline"]
        passes = "; ".join(f"{secs(p['start_s'])}–{secs(p['end_s'])} ({secs(p['elapsed_s'])}, "
                           f"{p['changes']})" for p in tl["passes"]) or "–"
        out.append(
            f"| {r['ports']} | {secs(r['api_s'])} | {secs(r['taps_done_s'])} | {passes} | "
            f"{secs(tl['first_active_logged_s'])}–{secs(tl['last_active_logged_s'])} | "
            f"{secs(r['all_active_s'])} ({r['polls']}, {r['poll_median_ms']:.0f} ms) | "
            f"{' / '.join(secs(x) for x in r['leases_s'])} | {r['server_cpu_s']:.2f} s | "
            f"{r['busy_before_pct']}% |")
    notes = HERE / "doc_notes.md"
    if notes.exists() and notes.read_text().strip():
        out += ["", notes.read_text().strip()]
    print("\n".join(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("url")
    m.add_argument("--password-file", required=True)
    m.add_argument("--host", required=True, help="the cloud's [compute] host")
    m.add_argument("--prefix", required=True, help="name prefix of the guest namespaces")
    m.add_argument("--work-dir", required=True)
    m.add_argument("--record", required=True, help="file listing every kernel object made")
    m.add_argument("--server-pid", type=int, required=True)
    m.add_argument("--server-log", required=True)
    m.add_argument("--sizes", default="1 100 1000")
    m.add_argument("--rounds", type=int, default=1)
    m.add_argument("--clients", type=int, default=8)
    m.add_argument("--settle", type=float, default=3.0,
                   help="seconds to let the agent settle before each timed step")
    m.add_argument("--quiet-wait", type=int, default=10)
    m.add_argument("--json-out", required=True)
    r = sub.add_parser("report")
    r.add_argument("results")
    args = p.parse_args()
    {"measure": cmd_measure, "report": cmd_report}[args.command](args)


if __name__ == "__main__":
    main()
