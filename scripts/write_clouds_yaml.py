"""Writes (merges) the `ferrostack` and `ferrostack-demo` clouds into a clouds.yaml."""
import os
import sys

import yaml

path, auth_url, admin_password, demo_password = sys.argv[1:5]
data = {}
if os.path.exists(path):
    with open(path) as f:
        data = yaml.safe_load(f) or {}
clouds = data.setdefault("clouds", {})


def cloud(user, password, project):
    return {
        "auth": {
            "auth_url": auth_url,
            "username": user,
            "password": password,
            "project_name": project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": "RegionOne",
        "interface": "public",
        "identity_api_version": 3,
    }


clouds["ferrostack"] = cloud("admin", admin_password, "admin")
clouds["ferrostack-demo"] = cloud("demo", demo_password, "demo")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    yaml.safe_dump(data, f, default_flow_style=False)
print(f"    wrote {path} (clouds: ferrostack, ferrostack-demo)")
