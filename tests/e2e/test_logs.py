"""No password, token or secret reaches the log, even at debug level."""


def test_secrets_never_reach_the_log(cloud, unique):
    secrets = [cloud.admin_password, cloud.demo_password]
    token, _ = cloud.password_token("admin", cloud.admin_password, "admin")
    secrets.append(token)
    cloud.run("ferrostack", "user", "create", "--password", f"first-{unique}", f"logu-{unique}")
    cloud.run("ferrostack", "role", "add", "--project", "demo", "--user", f"logu-{unique}", "member")
    cloud.add_cloud(f"logu-{unique}", f"logu-{unique}", f"first-{unique}", "demo")
    cloud.run(f"logu-{unique}", "user", "password", "set", "--original-password", f"first-{unique}",
              "--password", f"second-{unique}")
    secrets += [f"first-{unique}", f"second-{unique}"]
    cred = cloud.json("ferrostack", "application", "credential", "create", f"logac-{unique}")
    secrets.append(cred["Secret"])
    # A failed login with a wrong password must not log the attempt's password either.
    status, _, _ = cloud.request("POST", "/identity/v3/auth/tokens", body={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"},
                                                       "password": f"wrong-{unique}"}}}}})
    assert status == 401
    secrets.append(f"wrong-{unique}")
    cloud.log.flush()
    text = open(cloud.log_path).read()
    assert "request_id=req-" in text, "the log must carry request ids"
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"{len(leaked)} secret(s) found in {cloud.log_path}"
