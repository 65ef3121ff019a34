"""Checks that Ferrostack and the real placement give equivalent allocation candidates.

Usage: python3 compare.py OUT_JSON NAME=QUERY... -- FERRO_BASE FERRO_TOKEN UPSTREAM_BASE UPSTREAM_TOKEN

For every named query (the part after `?`), fetches `GET /allocation_candidates?QUERY` from both
at microversion 1.39 and compares:
  - the number of allocation requests and of provider summaries;
  - without `limit`: the allocation requests as a set (amounts per provider and class, and the
    mappings) and the provider summaries (capacity and used per class, traits as a set, parent
    and root) must be identical;
  - with `limit`: each answer must be a subset of the same system's answer without the limit,
    and the two unlimited answers must be identical; which candidates each picks is reported
    (placement does not promise an order: both pick a valid subset).
Writes a JSON summary to OUT_JSON and prints one line per query; exits 1 on any difference.
Standard library only.
"""

import http.client
import json
import sys
import time
import urllib.parse

MICROVERSION = "placement 1.39"


def fetch(base: str, token: str, query: str, microversion: str = MICROVERSION) -> tuple[dict, float, int]:
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=300)
    t0 = time.monotonic()
    conn.request("GET", u.path.rstrip("/") + "/allocation_candidates?" + query, headers={
        "X-Auth-Token": token, "OpenStack-API-Version": microversion, "Accept": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    elapsed = time.monotonic() - t0
    conn.close()
    if resp.status != 200:
        raise SystemExit(f"{base}: GET /allocation_candidates?{query} -> {resp.status}: {raw[:300]!r}")
    return json.loads(raw), elapsed, len(raw)


def norm_requests(body: dict) -> set:
    out = set()
    for ar in body["allocation_requests"]:
        a = ar["allocations"]
        # A list of {"resource_provider": {"uuid"}, "resources"} before 1.12, an object after.
        pairs = [(x["resource_provider"]["uuid"], x["resources"]) for x in a] if isinstance(a, list) \
            else [(rp, x["resources"]) for rp, x in a.items()]
        allocs = tuple(sorted((rp, rc, n) for rp, res in pairs for rc, n in res.items()))
        mappings = tuple(sorted((k, tuple(sorted(v))) for k, v in ar.get("mappings", {}).items()))
        out.add((allocs, mappings))
    return out


def norm_summaries(body: dict) -> dict:
    out = {}
    for rp, s in body["provider_summaries"].items():
        out[rp] = (
            tuple(sorted((rc, r["capacity"], r["used"]) for rc, r in s["resources"].items())),
            tuple(sorted(s.get("traits", []))),
            s.get("parent_provider_uuid"),
            s.get("root_provider_uuid"),
        )
    return out


def providers_of(reqs: set) -> set:
    return {rp for allocs, _ in reqs for rp, _, _ in allocs}


def unlimited(query: str) -> str:
    pairs = [(k, v) for k, v in urllib.parse.parse_qsl(query) if k != "limit"]
    return urllib.parse.urlencode(pairs, safe=":,")


def main() -> None:
    sep = sys.argv.index("--")
    out_path, named = sys.argv[1], sys.argv[2:sep]
    fbase, ftoken, ubase, utoken = sys.argv[sep + 1:sep + 5]
    results, ok = {}, True
    for item in named:
        name, query = item.split("=", 1)
        f, f_s, f_bytes = fetch(fbase, ftoken, query)
        u, u_s, u_bytes = fetch(ubase, utoken, query)
        fr, ur = norm_requests(f), norm_requests(u)
        fs, us = norm_summaries(f), norm_summaries(u)
        r = {
            "query": query,
            "ferrostack": {"allocation_requests": len(f["allocation_requests"]),
                           "provider_summaries": len(f["provider_summaries"]),
                           "bytes": f_bytes, "seconds": round(f_s, 4)},
            "upstream": {"allocation_requests": len(u["allocation_requests"]),
                         "provider_summaries": len(u["provider_summaries"]),
                         "bytes": u_bytes, "seconds": round(u_s, 4)},
        }
        problems = []
        if len(fr) != len(f["allocation_requests"]) or len(ur) != len(u["allocation_requests"]):
            problems.append("duplicate allocation requests")
        if "limit" in urllib.parse.parse_qs(query):
            full_q = unlimited(query)
            ff, _, _ = fetch(fbase, ftoken, full_q)
            uf, _, _ = fetch(ubase, utoken, full_q)
            ffr, ufr = norm_requests(ff), norm_requests(uf)
            if ffr != ufr:
                problems.append(f"the unlimited answers differ ({len(ffr)} vs {len(ufr)} requests)")
            if len(fr) != len(ur):
                problems.append(f"{len(fr)} vs {len(ur)} allocation requests")
            if not fr <= ffr or not ur <= ufr:
                problems.append("a limited answer is not part of the unlimited one")
            for label, reqs, summ, full in (("ferrostack", fr, fs, ff), ("upstream", ur, us, uf)):
                if set(summ) != providers_of(reqs):
                    problems.append(f"{label}: provider summaries are not the providers of its requests")
                full_s = norm_summaries(full)
                if any(full_s.get(rp) != s for rp, s in summ.items()):
                    problems.append(f"{label}: summaries differ from its unlimited answer")
            r["unlimited_allocation_requests"] = len(ffr)
            r["same_choice"] = fr == ur
            r["common_choices"] = len(fr & ur)
            verdict = "equivalent (same count, both valid subsets of identical unlimited answers)"
        else:
            if fr != ur:
                problems.append(
                    f"allocation requests differ: {len(fr - ur)} only in Ferrostack, {len(ur - fr)} only upstream")
            if fs != us:
                only = set(fs) ^ set(us)
                diff = [rp for rp in set(fs) & set(us) if fs[rp] != us[rp]]
                problems.append(f"provider summaries differ: {len(only)} providers in one only, "
                                f"{len(diff)} with different contents"
                                + (f" (e.g. {diff[0]}: {fs[diff[0]]} vs {us[diff[0]]})" if diff else ""))
            verdict = "identical"
        r["problems"] = problems
        r["equivalent"] = not problems
        ok = ok and not problems
        results[name] = r
        print(f"    {name}: Ferrostack {r['ferrostack']['allocation_requests']} requests / "
              f"{r['ferrostack']['provider_summaries']} summaries, upstream "
              f"{r['upstream']['allocation_requests']} / {r['upstream']['provider_summaries']}: "
              + (verdict if not problems else "DIFFERENT: " + "; ".join(problems)))
    with open(out_path, "w") as fh:
        json.dump(results, fh, indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
