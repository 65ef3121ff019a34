"""Every identity route, called by a plain project member on resources it does not own, is
refused (401/403/404) or rejected as malformed (400) — never served, never a 500. The member's
own, legitimately reachable routes are checked to work, so the refusals are not an artefact."""
import pytest

READ, WRITE = "read", "write"


@pytest.fixture(scope="module")
def world(cloud):
    """Resources owned by the admin, and a demo token."""
    admin, _ = cloud.password_token("admin", cloud.admin_password, "admin")
    demo, body = cloud.password_token("demo", cloud.demo_password, "demo")

    def make(path, key, payload):
        status, _, out = cloud.request("POST", "/identity/v3" + path, token=admin, body={key: payload})
        assert status == 201, (path, status, out)
        return out[key]["id"]

    w = {"demo_token": demo, "demo_user": body["token"]["user"]["id"],
         "demo_project": body["token"]["project"]["id"]}
    w["domain"] = make("/domains", "domain", {"name": "authz-domain"})
    w["project"] = make("/projects", "project", {"name": "authz-project"})
    w["user"] = make("/users", "user", {"name": "authz-user", "password": "pw"})
    w["group"] = make("/groups", "group", {"name": "authz-group"})
    w["role"] = make("/roles", "role", {"name": "authz-role"})
    w["service"] = make("/services", "service", {"type": "authz", "name": "authz"})
    w["endpoint"] = make("/endpoints", "endpoint", {"service_id": w["service"], "interface": "public",
                                                   "url": "http://127.0.0.1:1/authz"})
    w["policy"] = make("/policies", "policy", {"blob": "{}", "type": "application/json"})
    w["credential"] = make("/credentials", "credential", {"user_id": cloud_admin_id(cloud, admin),
                                                          "type": "cert", "blob": "secret-blob"})
    w["endpoint_group"] = make("/OS-EP-FILTER/endpoint_groups", "endpoint_group",
                               {"name": "authz-eg", "filters": {"interface": "public"}})
    w["consumer"] = make("/OS-OAUTH1/consumers", "consumer", {"description": "authz"})
    w["admin_user"] = cloud_admin_id(cloud, admin)
    status, _, out = cloud.request("POST", f"/identity/v3/users/{w['admin_user']}/application_credentials",
                                   token=admin, body={"application_credential": {"name": "authz-ac"}})
    assert status == 201, out
    w["app_cred"] = out["application_credential"]["id"]
    return w


def cloud_admin_id(cloud, admin):
    return cloud.request("GET", "/identity/v3/users?name=admin", token=admin)[2]["users"][0]["id"]


# (method, path, body): paths use {names} from the `world` fixture.
ROUTES = [
    ("GET", "/domains/{domain}", None), ("PATCH", "/domains/{domain}", {"domain": {"name": "x"}}),
    ("DELETE", "/domains/{domain}", None), ("POST", "/domains", {"domain": {"name": "m-dom"}}),
    ("GET", "/domains/{domain}/config", None), ("PUT", "/domains/{domain}/config", {"config": {"identity": {"driver": "sql"}}}),
    ("DELETE", "/domains/{domain}/config", None), ("GET", "/domains/config/default", None),
    ("GET", "/projects", None), ("GET", "/projects/{project}", None),
    ("PATCH", "/projects/{project}", {"project": {"name": "x"}}), ("DELETE", "/projects/{project}", None),
    ("POST", "/projects", {"project": {"name": "m-proj"}}),
    ("GET", "/projects/{project}/tags", None), ("PUT", "/projects/{project}/tags/t", None),
    ("PUT", "/projects/{project}/tags", {"tags": ["a"]}), ("DELETE", "/projects/{project}/tags", None),
    ("GET", "/users", None), ("GET", "/users/{user}", None), ("PATCH", "/users/{user}", {"user": {"name": "x"}}),
    ("DELETE", "/users/{user}", None), ("POST", "/users", {"user": {"name": "m-user"}}),
    ("GET", "/users/{user}/projects", None), ("GET", "/users/{user}/groups", None),
    ("GET", "/users/{admin_user}/application_credentials", None),
    ("GET", "/users/{admin_user}/application_credentials/{app_cred}", None),
    ("DELETE", "/users/{admin_user}/application_credentials/{app_cred}", None),
    ("POST", "/users/{admin_user}/application_credentials", {"application_credential": {"name": "m-ac"}}),
    ("GET", "/groups", None), ("GET", "/groups/{group}", None), ("PATCH", "/groups/{group}", {"group": {"name": "x"}}),
    ("DELETE", "/groups/{group}", None), ("POST", "/groups", {"group": {"name": "m-group"}}),
    ("GET", "/groups/{group}/users", None), ("PUT", "/groups/{group}/users/{demo_user}", None),
    ("DELETE", "/groups/{group}/users/{user}", None),
    ("GET", "/roles", None), ("GET", "/roles/{role}", None), ("PATCH", "/roles/{role}", {"role": {"name": "x"}}),
    ("DELETE", "/roles/{role}", None), ("POST", "/roles", {"role": {"name": "m-role"}}),
    ("GET", "/roles/{role}/implies", None), ("GET", "/role_inferences", None),
    ("PUT", "/projects/{demo_project}/users/{demo_user}/roles/{role}", None),
    ("PUT", "/projects/{project}/users/{demo_user}/roles/{role}", None),
    ("GET", "/projects/{project}/users/{user}/roles", None),
    ("PUT", "/domains/{domain}/groups/{group}/roles/{role}", None),
    ("PUT", "/system/users/{demo_user}/roles/{role}", None), ("GET", "/system/users/{user}/roles", None),
    ("PUT", "/OS-INHERIT/domains/{domain}/users/{demo_user}/roles/{role}/inherited_to_projects", None),
    ("GET", "/role_assignments", None), ("GET", "/role_assignments?scope.project.id={project}", None),
    ("POST", "/regions", {"region": {"id": "m-region"}}), ("DELETE", "/regions/RegionOne", None),
    ("GET", "/services", None), ("GET", "/services/{service}", None), ("DELETE", "/services/{service}", None),
    ("POST", "/services", {"service": {"type": "m"}}),
    ("GET", "/endpoints", None), ("GET", "/endpoints/{endpoint}", None), ("DELETE", "/endpoints/{endpoint}", None),
    ("GET", "/policies", None), ("GET", "/policies/{policy}", None), ("DELETE", "/policies/{policy}", None),
    ("GET", "/credentials/{credential}", None), ("DELETE", "/credentials/{credential}", None),
    ("GET", "/OS-EP-FILTER/endpoint_groups", None), ("GET", "/OS-EP-FILTER/endpoint_groups/{endpoint_group}", None),
    ("PUT", "/OS-EP-FILTER/endpoint_groups/{endpoint_group}/projects/{demo_project}", None),
    ("PUT", "/OS-EP-FILTER/projects/{demo_project}/endpoints/{endpoint}", None),
    ("GET", "/OS-OAUTH1/consumers", None), ("GET", "/OS-OAUTH1/consumers/{consumer}", None),
    ("DELETE", "/OS-OAUTH1/consumers/{consumer}", None),
]


@pytest.mark.parametrize("method,path,body", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_member_is_refused(cloud, world, method, path, body):
    status, _, out = cloud.request(method, "/identity/v3" + path.format(**world), token=world["demo_token"], body=body)
    assert status in (400, 403, 404), (status, out)
    if status == 400:
        # Only a malformed-body answer may come before the policy decision.
        assert body is not None, (status, out)


def test_member_can_use_its_own_routes(cloud, world):
    token = world["demo_token"]
    for path in ("/auth/projects", "/auth/catalog", "/users/{demo_user}", "/users/{demo_user}/projects",
                 "/users/{demo_user}/groups", "/projects/{demo_project}", "/regions"):
        status, _, out = cloud.request("GET", "/identity/v3" + path.format(**world), token=token)
        assert status == 200, (path, status, out)
