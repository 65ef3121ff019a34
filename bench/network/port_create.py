#!/usr/bin/env python3
"""Port create (with IP allocation) and port delete: throughput and latency of a Neutron API.

    port_create.py ENDPOINT (--token TOKEN | --noauth) [--clients C] [--ports M] [--label L]

ENDPOINT is where `ENDPOINT/v2.0/ports` is: `http://HOST:PORT/networking` for Ferrostack,
`http://HOST:PORT` for neutron-server. With --noauth no token is sent: neutron-server's noauth
pipeline then acts as an admin of the project `fake_project_id` (its `NoauthFakeProjectId`
middleware; an `X-Project-Id` header would switch that off and leave the request without a
project, which Neutron refuses).

What it does, with the standard library only:

1. creates one network and one IPv4 /16 subnet on it (65,534 addresses: the pool never runs low);
2. warms up: a few ports created and deleted one at a time (not measured);
3. create phase: C clients (threads, each with its own HTTP/1.1 connection, reopened when the
   server closes it) start together and each creates M ports (`POST /v2.0/ports` with only
   `network_id`: the server picks the MAC and the fixed IP from the subnet). Every answer must
   be 201 with one fixed IP in the subnet; at the end the C×M addresses (and MACs) must be
   distinct, and the server must list exactly those C×M ports on the network;
4. delete phase: the same C clients delete their own ports (`DELETE /v2.0/ports/{id}`, 204);
   then none of them may be listed, and the addresses must be free again: a sample of them is
   asked for explicitly (`fixed_ips: [{subnet_id, ip_address}]`), which fails (409) for an
   address still allocated;
5. removes the probe ports, the subnet and the network.

Latency is per request, from sending it to having read the whole answer (a new connection's
set-up included). Throughput is requests done over the phase's wall time (first request sent to
last answer read). Percentiles are nearest-rank over every request of the phase.

Prints a table (stderr) and one JSON line (stdout, also to --json-out). Exits 1 if any check
failed (the JSON says which, under "problems").
"""
import argparse
import http.client
import ipaddress
import json
import os
import random
import sys
import threading
import time
import urllib.parse
import uuid


class Client:
    """One HTTP/1.1 connection to the API (reopened when the server closes it)."""

    def __init__(self, endpoint, headers, timeout):
        url = urllib.parse.urlsplit(endpoint)
        self.host, self.port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
        self.https = url.scheme == "https"
        self.prefix = url.path.rstrip("/")
        self.headers = dict(headers)
        self.timeout = timeout
        self.conn = None

    def _connect(self):
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        self.conn = cls(self.host, self.port, timeout=self.timeout)

    def call(self, method, path, body=None):
        """(status, parsed JSON or None, seconds); one retry on a connection the server dropped
        between requests (a keep-alive race), which is then timed from the retry."""
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.conn is None:
                self._connect()
            start = time.perf_counter()
            try:
                self.conn.request(method, self.prefix + path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            elapsed = time.perf_counter() - start
            if resp.will_close:
                self.conn.close()
                self.conn = None
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = {"_raw": raw[:300].decode(errors="replace")}
            return resp.status, parsed, elapsed
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()


def tree_cpu_seconds(pid):
    """CPU time (user + system) spent so far by process `pid` and its descendants (Linux /proc),
    or None without a pid."""
    if not pid:
        return None
    children, stats = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = int(fields[11]) + int(fields[12])  # utime + stime
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, queue = 0, [pid]
    while queue:
        p = queue.pop()
        total += stats.get(p, 0)
        queue.extend(children.get(p, []))
    return total / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    k = max(1, -(-len(sorted_values) * p // 100))  # ceil(n * p / 100), at least 1
    return sorted_values[int(k) - 1]


def summarize(latencies, wall, errors, cpu, client_cpu):
    lat = sorted(latencies)
    ms = lambda v: None if v is None else round(v * 1000, 2)  # noqa: E731
    return {
        "client_cpu_s": round(client_cpu, 3),
        "server_cpu_s": None if cpu is None else round(cpu, 3),
        "server_cpu_ms_per_request": None if cpu is None or not lat else ms(cpu / len(lat)),
        "requests": len(lat),
        "errors": errors,
        "seconds": round(wall, 3),
        "per_s": round(len(lat) / wall, 1) if wall > 0 else None,
        "mean_ms": ms(sum(lat) / len(lat)) if lat else None,
        "p50_ms": ms(percentile(lat, 50)),
        "p90_ms": ms(percentile(lat, 90)),
        "p99_ms": ms(percentile(lat, 99)),
        "max_ms": ms(lat[-1]) if lat else None,
    }


def run_phase(clients, work, server_pid=None):
    """Runs work(i, client, record) on every client at once; returns (latencies, wall, errors,
    CPU seconds the server's processes spent meanwhile or None, CPU seconds of this client).

    `record(seconds, ok, detail)` collects one request's outcome."""
    lock = threading.Lock()
    latencies, errors, failures = [], [], []
    barrier = threading.Barrier(len(clients) + 1)

    def record(seconds, ok, detail=None):
        with lock:
            latencies.append(seconds)
            if not ok:
                errors.append(detail)

    def body(i, client):
        barrier.wait()
        try:
            work(i, client, record)
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            with lock:
                failures.append(f"client {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=body, args=(i, c)) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    cpu0, own0 = tree_cpu_seconds(server_pid), time.process_time()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    cpu1, own1 = tree_cpu_seconds(server_pid), time.process_time()
    return (latencies, wall, errors + failures, None if cpu0 is None else cpu1 - cpu0,
            own1 - own0)


def list_ports(api, network_id):
    """Every port on the network (following Neutron's pagination links if the server pages)."""
    ports, path = [], f"/v2.0/ports?network_id={network_id}&fields=id&fields=fixed_ips"
    while path:
        status, body, _ = api.call("GET", path)
        if status != 200:
            raise RuntimeError(f"GET ports: {status} {body}")
        ports.extend(body["ports"])
        path = None
        for link in body.get("ports_links", []):
            if link.get("rel") == "next":
                nxt = urllib.parse.urlsplit(link["href"])
                path = nxt.path[len(api.prefix):] + "?" + nxt.query
    return ports


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("endpoint", help="URL under which /v2.0/ports is")
    auth = ap.add_mutually_exclusive_group(required=True)
    auth.add_argument("--token", help="X-Auth-Token for every request")
    auth.add_argument("--noauth", action="store_true", help="send no token (noauth server)")
    ap.add_argument("--clients", "-c", type=int, default=8, help="concurrent clients (8)")
    ap.add_argument("--ports", "-m", type=int, default=125, help="ports per client (125)")
    ap.add_argument("--warmup", type=int, default=10, help="ports created+deleted first (10)")
    ap.add_argument("--probe", type=int, default=50,
                    help="deleted addresses asked for again to check they were freed (50)")
    ap.add_argument("--cidr", default="10.64.0.0/16")
    ap.add_argument("--label", default="", help="name of the system, copied into the JSON")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per request (300)")
    ap.add_argument("--json-out", help="also write the JSON line to this file")
    ap.add_argument("--server-pid", type=int,
                    help="the server's (top) process on this machine: report its CPU time")
    args = ap.parse_args()

    headers = {"Accept": "application/json"}
    if args.token:
        headers["X-Auth-Token"] = args.token
    new_client = lambda: Client(args.endpoint, headers, args.timeout)  # noqa: E731
    api = new_client()
    problems = []
    total = args.clients * args.ports
    tag = uuid.uuid4().hex[:8]

    def must(status, body, expected, what):
        if status != expected:
            raise SystemExit(f"{what}: HTTP {status} (expected {expected}): {json.dumps(body)[:500]}")
        return body

    # 1. the network and its subnet
    net = must(*api.call("POST", "/v2.0/networks", {"network": {"name": f"bench-ports-{tag}"}})[:2],
               201, "create network")["network"]
    subnet = must(*api.call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "ip_version": 4, "cidr": args.cidr,
        "name": f"bench-ports-{tag}"}})[:2], 201, "create subnet")["subnet"]
    cidr = ipaddress.ip_network(subnet["cidr"])
    created_ports = []

    try:
        # 2. warm-up (connections, caches, the server's first-request work)
        for _ in range(args.warmup):
            status, body, _ = api.call("POST", "/v2.0/ports", {"port": {"network_id": net["id"]}})
            port = must(status, body, 201, "warm-up port create")["port"]
            must(*api.call("DELETE", f"/v2.0/ports/{port['id']}")[:2], 204, "warm-up port delete")

        # 3. create
        clients = [new_client() for _ in range(args.clients)]
        owned = [[] for _ in clients]  # (id, ip, mac) per client

        def create(i, client, record):
            for _ in range(args.ports):
                status, body, secs = client.call(
                    "POST", "/v2.0/ports", {"port": {"network_id": net["id"]}})
                port = (body or {}).get("port") if status == 201 else None
                ips = [f["ip_address"] for f in (port or {}).get("fixed_ips", [])
                       if f.get("subnet_id") == subnet["id"]]
                ok = port is not None and len(ips) == 1 and ipaddress.ip_address(ips[0]) in cidr
                if port is not None:
                    owned[i].append((port["id"], ips[0] if ips else None, port.get("mac_address")))
                record(secs, ok, None if ok else f"POST {status}: {json.dumps(body)[:300]}")

        lat_c, wall_c, err_c, cpu_c, own_c = run_phase(clients, create, args.server_pid)
        created_ports = [p for ps in owned for p in ps]
        addresses = [ip for _, ip, _ in created_ports if ip]
        macs = [mac for _, _, mac in created_ports]
        if err_c:
            problems.append(f"create: {len(err_c)} failed requests, first: {err_c[0]}")
        if len(created_ports) != total:
            problems.append(f"create: {len(created_ports)} ports made, expected {total}")
        if len(set(addresses)) != len(addresses) or len(addresses) != total:
            problems.append(f"create: {len(set(addresses))} distinct addresses among "
                            f"{len(addresses)} (expected {total})")
        if len(set(macs)) != len(macs):
            problems.append(f"create: {len(set(macs))} distinct MACs among {len(macs)}")
        listed = list_ports(api, net["id"])
        listed_ids = {p["id"] for p in listed}
        ours = {p for p, _, _ in created_ports}
        if not ours <= listed_ids:
            problems.append(f"create: {len(ours - listed_ids)} created ports not listed")
        if len(listed_ids & ours) != total:
            problems.append(f"create: the server lists {len(listed_ids & ours)} of our ports, "
                            f"expected {total}")

        # 4. delete (each client its own ports)
        def delete(i, client, record):
            for pid, _, _ in owned[i]:
                status, body, secs = client.call("DELETE", f"/v2.0/ports/{pid}")
                ok = status == 204
                record(secs, ok, None if ok else f"DELETE {status}: {json.dumps(body)[:300]}")

        lat_d, wall_d, err_d, cpu_d, own_d = run_phase(clients, delete, args.server_pid)
        for c in clients:
            c.close()
        if err_d:
            problems.append(f"delete: {len(err_d)} failed requests, first: {err_d[0]}")
        left = {p["id"] for p in list_ports(api, net["id"])} & ours
        if left:
            problems.append(f"delete: {len(left)} deleted ports still listed")
        else:
            created_ports = []

        # The freed addresses can be allocated again (asked for by address).
        sample = random.Random(0).sample(addresses, min(args.probe, len(addresses)))
        probed, probe_ids = 0, []
        for ip in sample:
            status, body, _ = api.call("POST", "/v2.0/ports", {"port": {
                "network_id": net["id"],
                "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": ip}]}})
            if status == 201:
                probed += 1
                probe_ids.append(body["port"]["id"])
            else:
                problems.append(f"delete: address {ip} not free again: HTTP {status} "
                                f"{json.dumps(body)[:200]}")
                break
        for pid in probe_ids:
            api.call("DELETE", f"/v2.0/ports/{pid}")
    finally:
        for pid, _, _ in created_ports:  # only after a failure
            api.call("DELETE", f"/v2.0/ports/{pid}")
        api.call("DELETE", f"/v2.0/subnets/{subnet['id']}")
        api.call("DELETE", f"/v2.0/networks/{net['id']}")
        api.close()

    result = {
        "label": args.label, "endpoint": args.endpoint, "clients": args.clients,
        "ports_per_client": args.ports, "ports": total, "warmup": args.warmup,
        "create": summarize(lat_c, wall_c, len(err_c), cpu_c, own_c),
        "delete": summarize(lat_d, wall_d, len(err_d), cpu_d, own_d),
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "distinct_addresses": len(set(addresses)), "freed_addresses_checked": probed,
        "ok": not problems, "problems": problems,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(f"{args.label or args.endpoint}: {args.clients} client(s) x {args.ports} ports "
          f"= {total} ports on one /{cidr.prefixlen} subnet", file=sys.stderr)
    print(f"  {'phase':<7} {'ports/s':>9} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} "
          f"{'max ms':>9} {'errors':>7} {'seconds':>8} {'CPU ms/port':>11}", file=sys.stderr)
    for phase in ("create", "delete"):
        s = result[phase]
        print(f"  {phase:<7} {s['per_s']:>9} {s['p50_ms']:>9} {s['p90_ms']:>9} {s['p99_ms']:>9} "
              f"{s['max_ms']:>9} {s['errors']:>7} {s['seconds']:>8} "
              f"{s['server_cpu_ms_per_request'] if s['server_cpu_s'] is not None else '-':>11}",
              file=sys.stderr)
    print(f"  {len(set(addresses))} distinct addresses; {probed} freed addresses allocated "
          f"again; {'all checks passed' if not problems else 'PROBLEMS: ' + '; '.join(problems)}",
          file=sys.stderr)
    line = json.dumps(result)
    print(line)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(line + "\n")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
