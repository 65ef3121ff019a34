"""The theoretical ceiling of password token issue: one bcrypt verify per request.

Times bcrypt.checkpw at the benchmark's cost (the pyca/bcrypt package Keystone itself uses)
and prints JSON: the median seconds per verify and the resulting issues/s on `cores` cores.
Usage: python bcrypt_bound.py ROUNDS CORES
"""

import json
import statistics
import sys
import time

import bcrypt


def main() -> None:
    rounds, cores = int(sys.argv[1]), int(sys.argv[2])
    hashed = bcrypt.hashpw(b"bench-password", bcrypt.gensalt(rounds))
    bcrypt.checkpw(b"bench-password", hashed)  # warm up
    # Enough samples for a stable median, bounded to a few seconds even at high costs.
    samples, budget, start = [], 4.0, time.perf_counter()
    while len(samples) < 20 and (len(samples) < 3 or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        assert bcrypt.checkpw(b"bench-password", hashed)
        samples.append(time.perf_counter() - t0)
    verify_s = statistics.median(samples)
    print(json.dumps({
        "rounds": rounds,
        "cores": cores,
        "samples": len(samples),
        "verify_ms": verify_s * 1e3,
        "max_issue_per_s": cores / verify_s,
        "bcrypt_version": bcrypt.__version__,
    }))


if __name__ == "__main__":
    main()
