"""Identity (Keystone v3) through the real openstack CLI."""
import pytest

ADMIN = "ferrostack"
DEMO = "ferrostack-demo"


def test_version_discovery(cloud):
    status, _, body = cloud.request("GET", "/identity")
    assert status == 300
    assert body["versions"]["values"][0]["id"].startswith("v3")
    status, headers, body = cloud.request("GET", "/identity/v3/")
    assert status == 200 and body["version"]["status"] == "stable"
    assert headers["x-openstack-request-id"].startswith("req-")


def test_token_issue(cloud):
    token = cloud.json(ADMIN, "token", "issue")
    assert token["id"] and token["user_id"] and token["project_id"]
    project = cloud.json(ADMIN, "project", "show", "admin")
    assert token["project_id"] == project["id"]


def test_catalog_lists_every_service(cloud):
    types = {entry["Type"] for entry in cloud.json(ADMIN, "catalog", "list")}
    assert {"identity", "compute", "image", "network", "block-storage", "placement"} <= types
    identity = cloud.json(ADMIN, "catalog", "show", "identity")
    assert cloud.url + "/identity" in str(identity["endpoints"])


def test_project_lifecycle(cloud, unique):
    name = f"proj-{unique}"
    created = cloud.json(ADMIN, "project", "create", "--domain", "default", "--description", "first", name)
    assert created["name"] == name and created["enabled"] is True
    assert name in [p["Name"] for p in cloud.json(ADMIN, "project", "list")]
    cloud.run(ADMIN, "project", "set", "--description", "second", "--disable", name)
    shown = cloud.json(ADMIN, "project", "show", name)
    assert shown["description"] == "second" and shown["enabled"] is False
    child = cloud.json(ADMIN, "project", "create", "--parent", name, f"child-{unique}")
    assert child["parent_id"] == created["id"]
    # A project with children cannot be deleted.
    assert cloud.run(ADMIN, "project", "delete", name, check=False).returncode != 0
    cloud.run(ADMIN, "project", "delete", child["id"])
    cloud.run(ADMIN, "project", "delete", name)
    assert cloud.run(ADMIN, "project", "show", name, check=False).returncode != 0


def test_duplicate_project_is_conflict(cloud, unique):
    cloud.run(ADMIN, "project", "create", f"dup-{unique}")
    proc = cloud.run(ADMIN, "project", "create", f"dup-{unique}", check=False)
    assert proc.returncode != 0 and "409" in proc.stderr


def test_user_and_group_lifecycle(cloud, unique):
    user = cloud.json(ADMIN, "user", "create", "--domain", "default", "--password", "pw-1", "--email", "a@example.org", f"user-{unique}")
    assert user["name"] == f"user-{unique}" and "password" not in user
    group = cloud.json(ADMIN, "group", "create", "--domain", "default", f"group-{unique}")
    cloud.run(ADMIN, "group", "add", "user", group["id"], user["id"])
    assert f"{user['id']} in group" in cloud.run(ADMIN, "group", "contains", "user", group["id"], user["id"]).stdout
    members = cloud.json(ADMIN, "user", "list", "--group", group["id"])
    assert [m["ID"] for m in members] == [user["id"]]
    cloud.run(ADMIN, "user", "set", "--email", "b@example.org", user["id"])
    assert cloud.json(ADMIN, "user", "show", user["id"])["email"] == "b@example.org"
    cloud.run(ADMIN, "group", "remove", "user", group["id"], user["id"])
    assert "not in group" in cloud.run(ADMIN, "group", "contains", "user", group["id"], user["id"], check=False).stderr
    cloud.run(ADMIN, "group", "delete", group["id"])
    cloud.run(ADMIN, "user", "delete", user["id"])
    assert cloud.run(ADMIN, "user", "show", user["id"], check=False).returncode != 0


def test_roles_and_assignments(cloud, unique):
    role = cloud.json(ADMIN, "role", "create", f"role-{unique}")
    assert role["name"] == f"role-{unique}"
    assert role["name"] in [r["Name"] for r in cloud.json(ADMIN, "role", "list")]
    project = cloud.json(ADMIN, "project", "create", f"rp-{unique}")
    user = cloud.json(ADMIN, "user", "create", "--password", "pw", f"ru-{unique}")
    cloud.run(ADMIN, "role", "add", "--project", project["id"], "--user", user["id"], role["name"])
    rows = cloud.json(ADMIN, "role", "assignment", "list", "--names", "--project", project["id"])
    assert [(r["Role"], r["User"], r["Project"]) for r in rows] == [
        (role["name"], f"ru-{unique}@Default", f"rp-{unique}@Default")
    ]
    cloud.run(ADMIN, "role", "remove", "--project", project["id"], "--user", user["id"], role["name"])
    assert cloud.json(ADMIN, "role", "assignment", "list", "--project", project["id"]) == []
    cloud.run(ADMIN, "role", "delete", role["id"])


def test_implied_roles_reach_the_token(cloud, unique):
    project = cloud.json(ADMIN, "project", "create", f"ip-{unique}")
    cloud.run(ADMIN, "user", "create", "--password", "pw", f"iu-{unique}")
    cloud.run(ADMIN, "role", "add", "--project", project["id"], "--user", f"iu-{unique}", "member")
    _, body = cloud.password_token(f"iu-{unique}", "pw", f"ip-{unique}")
    assert {"member", "reader"} <= {r["name"] for r in body["token"]["roles"]}


def test_application_credential_authenticates(cloud, unique):
    created = cloud.json(ADMIN, "application", "credential", "create", "--role", "reader", f"ac-{unique}")
    cred = {"id": created["ID"], "secret": created["Secret"]}
    assert cred["secret"] and [r["name"] for r in created["Roles"]] == ["reader"]
    shown = cloud.json(ADMIN, "application", "credential", "show", cred["id"])
    assert not shown.get("Secret")
    cloud.add_raw_cloud(f"ac-{unique}", {
        "auth_type": "v3applicationcredential",
        "auth": {"auth_url": cloud.url + "/identity", "application_credential_id": cred["id"],
                 "application_credential_secret": cred["secret"]},
        "region_name": "RegionOne",
    })
    token = cloud.json(f"ac-{unique}", "token", "issue")
    assert token["project_id"] == cloud.json(ADMIN, "project", "show", "admin")["id"]
    # The credential delegates only `reader`: writes are refused.
    proc = cloud.run(f"ac-{unique}", "project", "create", f"acp-{unique}", check=False)
    assert proc.returncode != 0 and "403" in proc.stderr, proc.stderr
    cloud.run(ADMIN, "application", "credential", "delete", cred["id"])
    assert cloud.run(f"ac-{unique}", "token", "issue", check=False).returncode != 0


def test_revoked_token_is_rejected(cloud):
    token, _ = cloud.password_token("demo", cloud.demo_password, "demo")
    assert cloud.request("GET", "/identity/v3/auth/projects", token=token)[0] == 200
    cloud.run(ADMIN, "token", "revoke", token)
    status, _, body = cloud.request("GET", "/identity/v3/auth/projects", token=token)
    assert status == 401, body
    assert body["error"]["code"] == 401


def test_member_cannot_create_users(cloud, unique):
    proc = cloud.run(DEMO, "user", "create", f"nope-{unique}", check=False)
    assert proc.returncode != 0 and "403" in proc.stderr, proc.stderr
    assert cloud.run(ADMIN, "user", "show", f"nope-{unique}", check=False).returncode != 0


def test_reader_cannot_write(cloud, unique):
    project = cloud.json(ADMIN, "project", "create", f"readp-{unique}")
    cloud.run(ADMIN, "user", "create", "--password", "pw", f"reader-{unique}")
    cloud.run(ADMIN, "role", "add", "--project", project["id"], "--user", f"reader-{unique}", "reader")
    cloud.add_cloud(f"reader-{unique}", f"reader-{unique}", "pw", f"readp-{unique}")
    shown = cloud.json(f"reader-{unique}", "project", "show", project["id"])
    assert shown["id"] == project["id"]
    for args in (["project", "set", "--description", "x", project["id"]], ["project", "create", f"r2-{unique}"],
                 ["role", "create", f"r3-{unique}"]):
        proc = cloud.run(f"reader-{unique}", *args, check=False)
        assert proc.returncode != 0 and "403" in proc.stderr, (args, proc.stderr)


def test_project_isolation(cloud, unique):
    other = cloud.json(ADMIN, "project", "create", f"other-{unique}")
    assert cloud.run(DEMO, "project", "show", other["id"], check=False).returncode != 0
    token, _ = cloud.password_token("demo", cloud.demo_password, "demo")
    status, _, body = cloud.request("GET", f"/identity/v3/projects/{other['id']}", token=token)
    assert status == 403, body
    mine = cloud.json(DEMO, "project", "list", "--my-projects")
    assert [p["Name"] for p in mine] == ["demo"]
    # GET /v3/projects is refused to a member; the CLI then falls back to the user's own projects.
    assert [p["Name"] for p in cloud.json(DEMO, "project", "list")] == ["demo"]
    assert cloud.request("GET", "/identity/v3/projects", token=token)[0] == 403


def test_password_change_revokes_old_tokens(cloud, unique):
    cloud.run(ADMIN, "user", "create", "--password", "old-pw", f"pc-{unique}")
    cloud.run(ADMIN, "role", "add", "--project", "demo", "--user", f"pc-{unique}", "member")
    old_token, _ = cloud.password_token(f"pc-{unique}", "old-pw", "demo")
    cloud.add_cloud(f"pc-{unique}", f"pc-{unique}", "old-pw", "demo")
    cloud.run(f"pc-{unique}", "user", "password", "set", "--original-password", "old-pw", "--password", "new-pw")
    assert cloud.request("GET", "/identity/v3/auth/projects", token=old_token)[0] == 401
    token, _ = cloud.password_token(f"pc-{unique}", "new-pw", "demo")
    assert cloud.request("GET", "/identity/v3/auth/projects", token=token)[0] == 200


def test_errors_have_keystone_shape_and_request_ids(cloud):
    status, headers, body = cloud.request("GET", "/identity/v3/users")
    assert status == 401 and body["error"]["title"] == "Unauthorized"
    assert headers["x-openstack-request-id"].startswith("req-")
    token, _ = cloud.password_token("admin", cloud.admin_password, "admin")
    status, _, body = cloud.request("POST", "/identity/v3/projects", token=token, body={"project": {"name": 5}})
    assert status == 400 and "project/name" in body["error"]["message"]
    status, _, body = cloud.request("GET", "/identity/v3/projects/nope", token=token)
    assert status == 404 and body["error"]["message"] == "Could not find project: nope."


@pytest.mark.parametrize("path", ["/identity/v3/projects", "/identity/v3/users", "/identity/v3/roles",
                                  "/identity/v3/groups", "/identity/v3/domains", "/identity/v3/role_assignments",
                                  "/identity/v3/regions", "/identity/v3/services", "/identity/v3/endpoints",
                                  "/identity/v3/auth/catalog", "/identity/v3/auth/projects"])
def test_every_collection_needs_a_token(cloud, path):
    status, _, _ = cloud.request("GET", path)
    assert status == 401
