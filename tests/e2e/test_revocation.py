"""Tokens stop working at once when what they stand on changes, and when they expire."""
import os
import tempfile
import time

from conftest import Cloud


def works(cloud, token):
    return cloud.request("GET", "/identity/v3/auth/projects", token=token)[0] == 200


def test_role_removal_and_project_disable_take_effect_at_once(cloud, unique):
    project = cloud.json("ferrostack", "project", "create", f"rv-{unique}")
    cloud.run("ferrostack", "user", "create", "--password", "pw", f"rvu-{unique}")
    cloud.run("ferrostack", "role", "add", "--project", project["id"], "--user", f"rvu-{unique}", "member")
    token, _ = cloud.password_token(f"rvu-{unique}", "pw", f"rv-{unique}")
    assert works(cloud, token)
    cloud.run("ferrostack", "role", "remove", "--project", project["id"], "--user", f"rvu-{unique}", "member")
    assert not works(cloud, token)

    cloud.run("ferrostack", "role", "add", "--project", project["id"], "--user", f"rvu-{unique}", "member")
    token, _ = cloud.password_token(f"rvu-{unique}", "pw", f"rv-{unique}")
    cloud.run("ferrostack", "project", "set", "--disable", project["id"])
    assert not works(cloud, token)
    cloud.run("ferrostack", "project", "set", "--enable", project["id"])
    assert not works(cloud, token), "disabling revoked the project's tokens for good, as Keystone"
    token, _ = cloud.password_token(f"rvu-{unique}", "pw", f"rv-{unique}")
    assert works(cloud, token)

    cloud.run("ferrostack", "user", "set", "--disable", f"rvu-{unique}")
    assert not works(cloud, token)


def test_tokens_expire():
    root = tempfile.mkdtemp(prefix="ferrostack-e2e-expiry-")
    os.environ["FERROSTACK__IDENTITY__TOKEN_EXPIRATION"] = "2"
    try:
        short = Cloud(root)
    finally:
        del os.environ["FERROSTACK__IDENTITY__TOKEN_EXPIRATION"]
    try:
        token, body = short.password_token("admin", short.admin_password, "admin")
        assert works(short, token)
        time.sleep(3.1)
        assert not works(short, token)
    finally:
        short.stop()
