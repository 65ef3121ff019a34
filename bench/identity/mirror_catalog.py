"""Gives Keystone the same service catalog as Ferrostack, so token bodies are the same size.

`ferrostack up` registers every service of the cloud (identity, compute, image, network, block
storage, placement: 3 endpoints each), `keystone-manage bootstrap` only identity. Token issue
and validation return the catalog on both, so this copies Ferrostack's non-identity services
and endpoints into Keystone through its API (URLs re-pointed at Keystone's address).

Usage: python3 mirror_catalog.py FERROSTACK_API FERROSTACK_TOKEN KEYSTONE_API KEYSTONE_TOKEN
(both APIs as http://127.0.0.1:PORT/.../v3). Prints the number of services and endpoints added.
Standard library only.
"""

import json
import sys
import urllib.parse
import urllib.request


def call(method: str, url: str, token: str, body: dict | None = None) -> dict:
    host = urllib.parse.urlsplit(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to send traffic off this machine: {url}")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("X-Auth-Token", token)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if method == "GET":
        req.add_header("X-Subject-Token", token)
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read() or b"{}")


def origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def main() -> None:
    fs_api, fs_token, ks_api, ks_token = sys.argv[1:5]
    catalog = call("GET", f"{fs_api}/auth/tokens", fs_token)["token"]["catalog"]
    fs_origin, ks_origin = origin(fs_api), origin(ks_api)
    services = endpoints = 0
    for svc in catalog:
        if svc["type"] == "identity":
            continue
        sid = call("POST", f"{ks_api}/services", ks_token, {
            "service": {"type": svc["type"], "name": svc["name"], "enabled": True},
        })["service"]["id"]
        services += 1
        for ep in svc["endpoints"]:
            call("POST", f"{ks_api}/endpoints", ks_token, {
                "endpoint": {
                    "service_id": sid,
                    "interface": ep["interface"],
                    "region_id": ep.get("region_id") or ep.get("region"),
                    "url": ep["url"].replace(fs_origin, ks_origin, 1),
                    "enabled": True,
                },
            })
            endpoints += 1
    print(f"added {services} services and {endpoints} endpoints to Keystone's catalog")


if __name__ == "__main__":
    main()
