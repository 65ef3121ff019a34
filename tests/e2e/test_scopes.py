"""Token scopes (project, domain, system, unscoped), nocatalog, HEAD validation, policy overrides."""
import os
import tempfile

from conftest import Cloud


def issue(cloud, scope, user="admin", password=None):
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password or cloud.admin_password}}}}}
    if scope is not None:
        body["auth"]["scope"] = scope
    return cloud.request("POST", "/identity/v3/auth/tokens", body=body)


def test_system_scope_token(cloud):
    status, headers, body = issue(cloud, {"system": {"all": True}})
    assert status == 201, body
    token = body["token"]
    assert token["system"] == {"all": True} and "project" not in token
    assert "admin" in {r["name"] for r in token["roles"]}
    assert {e["type"] for e in token["catalog"]} >= {"identity", "compute"}
    # The CLI's system-scoped admin can read the whole deployment.
    system = headers["X-Subject-Token"]
    assert cloud.request("GET", "/identity/v3/users", token=system)[0] == 200
    # demo has no system role.
    status, _, _ = issue(cloud, {"system": {"all": True}}, "demo", cloud.demo_password)
    assert status == 401


def test_domain_scope_token(cloud, unique):
    admin, _ = cloud.password_token("admin", cloud.admin_password, "admin")
    status, _, body = cloud.request("POST", "/identity/v3/domains", token=admin,
                                    body={"domain": {"name": f"dom-{unique}"}})
    assert status == 201
    domain = body["domain"]["id"]
    status, _, body = cloud.request("POST", "/identity/v3/users", token=admin, body={"user": {
        "name": f"da-{unique}", "domain_id": domain, "password": "pw"}})
    user = body["user"]["id"]
    roles = cloud.request("GET", "/identity/v3/roles?name=reader", token=admin)[2]["roles"]
    status, _, _ = cloud.request("PUT", f"/identity/v3/domains/{domain}/users/{user}/roles/{roles[0]['id']}", token=admin)
    assert status == 204
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": user, "password": "pw"}}},
                     "scope": {"domain": {"id": domain}}}}
    status, headers, body = cloud.request("POST", "/identity/v3/auth/tokens", body=body)
    assert status == 201, body
    assert body["token"]["domain"]["id"] == domain and [r["name"] for r in body["token"]["roles"]] == ["reader"]
    # A domain reader lists the users of its own domain only.
    token = headers["X-Subject-Token"]
    status, _, body = cloud.request("GET", f"/identity/v3/users?domain_id={domain}", token=token)
    assert status == 200 and [u["name"] for u in body["users"]] == [f"da-{unique}"]
    assert cloud.request("GET", "/identity/v3/users?domain_id=default", token=token)[0] == 403


def test_unscoped_token_and_nocatalog(cloud):
    status, headers, body = issue(cloud, "unscoped")
    assert status == 201
    assert "roles" not in body["token"] and "catalog" not in body["token"] and "project" not in body["token"]
    unscoped = headers["X-Subject-Token"]
    # Rescope the unscoped token to a project with the token method.
    status, headers, body = cloud.request("POST", "/identity/v3/auth/tokens?nocatalog", body={"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    assert status == 201, body
    token = body["token"]
    assert token["methods"] == ["password", "token"] or set(token["methods"]) == {"password", "token"}
    assert "catalog" not in token and token["project"]["name"] == "admin"
    assert len(token["audit_ids"]) == 2


def test_head_and_get_validation(cloud):
    admin, _ = cloud.password_token("admin", cloud.admin_password, "admin")
    demo, _ = cloud.password_token("demo", cloud.demo_password, "demo")
    assert cloud.request("HEAD", "/identity/v3/auth/tokens", token=admin, headers={"X-Subject-Token": demo})[0] == 200
    status, headers, body = cloud.request("GET", "/identity/v3/auth/tokens?nocatalog", token=admin,
                                          headers={"X-Subject-Token": demo})
    assert status == 200 and headers["X-Subject-Token"] == demo
    assert body["token"]["user"]["name"] == "demo" and "catalog" not in body["token"]
    # A user may validate its own token but not someone else's.
    assert cloud.request("GET", "/identity/v3/auth/tokens", token=demo, headers={"X-Subject-Token": demo})[0] == 200
    assert cloud.request("GET", "/identity/v3/auth/tokens", token=demo, headers={"X-Subject-Token": admin})[0] == 403
    assert cloud.request("GET", "/identity/v3/auth/tokens", token=admin,
                         headers={"X-Subject-Token": "garbage"})[0] == 404


def test_policy_yaml_overrides_defaults():
    root = tempfile.mkdtemp(prefix="ferrostack-e2e-policy-")
    os.makedirs(os.path.join(root, "state"), exist_ok=True)
    with open(os.path.join(root, "state", "policy.yaml"), "w") as f:
        f.write('"identity:create_project": "rule:admin_required or role:member"\n'
                '"identity:list_regions": "!"\n')
    other = Cloud(root)
    try:
        demo, _ = other.password_token("demo", other.demo_password, "demo")
        status, _, body = other.request("POST", "/identity/v3/projects", token=demo, body={"project": {"name": "by-demo"}})
        assert status == 201, body
        admin, _ = other.password_token("admin", other.admin_password, "admin")
        assert other.request("GET", "/identity/v3/regions", token=admin)[0] == 403
    finally:
        other.stop()
