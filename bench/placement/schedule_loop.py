"""The scheduler's pattern against a placement service: every candidates request follows a write.

Nova's scheduler asks `GET /allocation_candidates` and then claims one of them with
`PUT /allocations/{consumer}`; under a stream of boots, every candidates request therefore comes
right after a write, which is when a cached answer is stale. This script repeats that pair N
times (sequentially, as one scheduler does) and reports the latency of each half separately, plus
the latency of the same candidates request when nothing was written in between (the cached case).
It removes its claims at the end.

Usage: python3 schedule_loop.py BASE_URL TOKEN [N]
  BASE_URL  the placement endpoint (http://127.0.0.1:PORT/placement, or the upstream root)
  TOKEN     sent as X-Auth-Token (a Keystone token for Ferrostack, `admin` for noauth2)
Prints one JSON line. Standard library only; uses the data set of seed.py.
"""

import json
import statistics
import sys
import time
import uuid

from seed import PROJECT, USER, Client

QUERY = "resources=VCPU:1,MEMORY_MB:512,DISK_GB:10&limit=1000"


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(seconds):
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main():
    base, token = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    c = Client(base, token)
    after_write, claims, cached, consumers = [], [], [], []
    for _ in range(n):
        t, answer = timed(lambda: c.call("GET", f"/allocation_candidates?{QUERY}"))
        after_write.append(t)
        request = answer["allocation_requests"][0]
        consumer = str(uuid.uuid4())
        body = {
            "allocations": request["allocations"],
            "project_id": PROJECT,
            "user_id": USER,
            "consumer_generation": None,
            "consumer_type": "INSTANCE",
        }
        t, _ = timed(lambda: c.call("PUT", f"/allocations/{consumer}", body, ok=(204,)))
        claims.append(t)
        consumers.append(consumer)
    # The first request after the last claim still pays for it; the ones after it do not.
    c.call("GET", f"/allocation_candidates?{QUERY}")
    for _ in range(n):
        t, _ = timed(lambda: c.call("GET", f"/allocation_candidates?{QUERY}"))
        cached.append(t)
    for consumer in consumers:
        c.call("DELETE", f"/allocations/{consumer}", ok=(204,))
    print(json.dumps({
        "iterations": n,
        "candidates_after_a_claim": summary(after_write),
        "claim": summary(claims),
        "candidates_cached": summary(cached),
        "boots_per_second_one_scheduler": round(n / (sum(after_write) + sum(claims)), 1),
    }))


if __name__ == "__main__":
    main()
