"""Fills a placement service with the benchmark's data set, through its HTTP API only.

The same requests, in the same order, go to Ferrostack and to the real openstack-placement, so
both end up with the same providers (same uuids), inventories, traits, aggregates, consumers and
allocations. Everything is derived from the provider's index, no randomness:

  providers    N (default 1000) root providers `bench-cn-NNNN`, uuid5 of the name
  inventories  VCPU 16 (allocation_ratio 4.0), MEMORY_MB 32768 (reserved 512), DISK_GB 500
  traits       HW_CPU_X86_AVX2 on every even provider, CUSTOM_BENCH_GPU on every tenth
  aggregates   4 aggregates, provider i in aggregate i % 4
  allocations  5 consumers per provider (VCPU 1-4, MEMORY_MB 1024-4096, DISK_GB 10-40);
               every 20th provider (i % 20 == 7) has its memory used up, every 25th
               (i % 25 == 3) its disk, so that those do not fit the benchmark's request

Usage: python3 seed.py BASE_URL TOKEN [N] [--check]
  BASE_URL  the placement endpoint (http://127.0.0.1:PORT/placement, or the upstream root)
  TOKEN     sent as X-Auth-Token (a Keystone token for Ferrostack, `admin` for noauth2)
  --check   only report what is there (providers, allocations) and exit
Prints one JSON line: counts and the seconds it took. Standard library only.
"""

import http.client
import json
import sys
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor

MICROVERSION = "placement 1.39"
NAMESPACE = uuid.UUID("6f0e6c1e-5a8d-4b64-9f52-3c1f5d0b9a10")
PROJECT = "0c1d1f2b9a7e4c6d8e5f4a3b2c1d0e9f"
USER = "9f8e7d6c5b4a4f3e8d2c1b0a9f8e7d6c"
CUSTOM_TRAIT = "CUSTOM_BENCH_GPU"
AGGREGATES = [str(uuid.uuid5(NAMESPACE, f"bench-aggregate-{i}")) for i in range(4)]
CONSUMERS_PER_PROVIDER = 5
ALLOCATION_BATCH = 20  # providers' consumers per POST /allocations


def provider_name(i: int) -> str:
    return f"bench-cn-{i:04d}"


def provider_uuid(i: int) -> str:
    return str(uuid.uuid5(NAMESPACE, provider_name(i)))


def inventories() -> dict:
    return {
        "VCPU": {"total": 16, "allocation_ratio": 4.0},
        "MEMORY_MB": {"total": 32768, "reserved": 512},
        "DISK_GB": {"total": 500},
    }


def traits(i: int) -> list:
    out = []
    if i % 2 == 0:
        out.append("HW_CPU_X86_AVX2")
    if i % 10 == 0:
        out.append(CUSTOM_TRAIT)
    return out


def consumers(i: int) -> list:
    """(consumer uuid, resources) for provider i."""
    out = []
    for k in range(CONSUMERS_PER_PROVIDER):
        res = {
            "VCPU": 1 + (i + k) % 4,
            "MEMORY_MB": (1024, 2048, 4096)[(i + k) % 3],
            "DISK_GB": (10, 20, 40)[(i * 7 + k) % 3],
        }
        if i % 20 == 7:  # 5 × 6400 = 32000 of 32256: 256 MB left, less than 512
            res["MEMORY_MB"] = 6400
        if i % 25 == 3:  # 5 × 100 = all 500 GB
            res["DISK_GB"] = 100
        out.append((str(uuid.uuid5(NAMESPACE, f"bench-consumer-{i:04d}-{k}")), res))
    return out


class Client:
    def __init__(self, base: str, token: str):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.prefix = u.path.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body=None, ok=(200, 201, 204)):
        headers = {
            "X-Auth-Token": self.token,
            "OpenStack-API-Version": MICROVERSION,
            "Accept": "application/json",
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(5):
            conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                conn.request(method, self.prefix + path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            finally:
                conn.close()
            # SQLite under the upstream service can report a locked database; a retry helps.
            if resp.status >= 500 and attempt < 4:
                time.sleep(0.2 * (attempt + 1))
                continue
            break
        if resp.status not in ok:
            raise SystemExit(f"{method} {path} -> {resp.status}: {raw[:500]!r}")
        return json.loads(raw) if raw else None


def seed_provider(c: Client, i: int) -> None:
    u = provider_uuid(i)
    rp = c.call("POST", "/resource_providers", {"name": provider_name(i), "uuid": u})
    gen = rp["generation"]
    r = c.call("PUT", f"/resource_providers/{u}/inventories",
               {"resource_provider_generation": gen, "inventories": inventories()})
    gen = r["resource_provider_generation"]
    if traits(i):
        r = c.call("PUT", f"/resource_providers/{u}/traits",
                   {"resource_provider_generation": gen, "traits": traits(i)})
        gen = r["resource_provider_generation"]
    c.call("PUT", f"/resource_providers/{u}/aggregates",
           {"resource_provider_generation": gen, "aggregates": [AGGREGATES[i % 4]]})


def seed_allocations(c: Client, first: int, last: int) -> None:
    body = {}
    for i in range(first, last):
        for consumer, res in consumers(i):
            body[consumer] = {
                "allocations": {provider_uuid(i): {"resources": res}},
                "project_id": PROJECT,
                "user_id": USER,
                "consumer_generation": None,
                "consumer_type": "INSTANCE",
            }
    c.call("POST", "/allocations", body)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    base, token = args[0], args[1]
    n = int(args[2]) if len(args) > 2 else 1000
    workers = 1
    for a in sys.argv[1:]:
        if a.startswith("--workers="):
            workers = int(a.split("=", 1)[1])
    c = Client(base, token)
    if "--check" in sys.argv:
        rps = c.call("GET", "/resource_providers")["resource_providers"]
        print(json.dumps({"providers": len(rps)}))
        return
    t0 = time.monotonic()
    c.call("PUT", f"/traits/{CUSTOM_TRAIT}", ok=(201, 204))
    # Providers may be created concurrently (each provider's own requests stay in order);
    # allocations are written in batches afterwards.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda i: seed_provider(c, i), range(n)))
    t1 = time.monotonic()
    batches = [(s, min(s + ALLOCATION_BATCH, n)) for s in range(0, n, ALLOCATION_BATCH)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda b: seed_allocations(c, *b), batches))
    t2 = time.monotonic()
    full = sum(1 for i in range(n) if i % 20 == 7 or i % 25 == 3)
    print(json.dumps({
        "providers": n,
        "consumers": n * CONSUMERS_PER_PROVIDER,
        "providers_without_room": full,
        "providers_seconds": round(t1 - t0, 2),
        "allocations_seconds": round(t2 - t1, 2),
    }))


if __name__ == "__main__":
    main()
