"""Compute API with the real openstack CLI: flavors (admin-managed, private access, extra
specs) and keypairs (generated and imported, per user)."""
import os
import subprocess


def test_compute_version_discovery(cloud):
    status, headers, body = cloud.request("GET", "/compute/")
    assert status == 200
    assert [v["id"] for v in body["versions"]] == ["v2.0", "v2.1"]
    assert body["versions"][1]["version"] == "2.96"


def test_flavor_lifecycle_with_the_cli(cloud, unique):
    name = f"m1.e2e-{unique}"
    flavor = cloud.json("ferrostack", "flavor", "create", "--ram", "512", "--disk", "1", "--vcpus", "1",
                        "--property", "hw:cpu_policy=shared", name)
    assert flavor["name"] == name and flavor["ram"] == 512 and flavor["vcpus"] == 1
    listed = cloud.json("ferrostack", "flavor", "list")
    assert name in [f["Name"] for f in listed]
    shown = cloud.json("ferrostack", "flavor", "show", name)
    assert shown["id"] == flavor["id"]
    assert shown["properties"] == {"hw:cpu_policy": "shared"}
    # The demo user sees public flavors but may not create or delete them.
    assert name in [f["Name"] for f in cloud.json("ferrostack-demo", "flavor", "list")]
    denied = cloud.run("ferrostack-demo", "flavor", "create", "--ram", "1", "--disk", "0", "--vcpus", "1",
                       f"x-{unique}", check=False)
    assert denied.returncode != 0 and "403" in denied.stderr
    denied = cloud.run("ferrostack-demo", "flavor", "delete", name, check=False)
    assert denied.returncode != 0
    cloud.run("ferrostack", "flavor", "delete", name)
    assert name not in [f["Name"] for f in cloud.json("ferrostack", "flavor", "list")]


def test_private_flavor_access(cloud, unique):
    name = f"private-{unique}"
    cloud.json("ferrostack", "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "--private", name)
    assert name not in [f["Name"] for f in cloud.json("ferrostack-demo", "flavor", "list")]
    cloud.run("ferrostack", "flavor", "set", "--project", "demo", name)
    assert name in [f["Name"] for f in cloud.json("ferrostack-demo", "flavor", "list")]
    cloud.run("ferrostack", "flavor", "unset", "--project", "demo", name)
    assert name not in [f["Name"] for f in cloud.json("ferrostack-demo", "flavor", "list")]
    cloud.run("ferrostack", "flavor", "delete", name)


def test_keypairs_generated_and_imported_per_user(cloud, unique, tmp_path):
    generated = cloud.run("ferrostack-demo", "keypair", "create", f"gen-{unique}").stdout
    assert generated.startswith("-----BEGIN RSA PRIVATE KEY-----") or "PRIVATE KEY" in generated
    private = tmp_path / "id"
    private.write_text(generated)
    private.chmod(0o600)
    public = subprocess.run(["ssh-keygen", "-y", "-f", str(private)], capture_output=True, text=True)
    if public.returncode == 0:
        imported_file = tmp_path / "id.pub"
        imported_file.write_text(public.stdout)
        imported = cloud.json("ferrostack-demo", "keypair", "create", "--public-key", str(imported_file),
                              f"imp-{unique}")
        shown = cloud.json("ferrostack-demo", "keypair", "show", f"gen-{unique}")
        assert imported["fingerprint"] == shown["fingerprint"], "the same key has the same fingerprint"
    names = [k["Name"] for k in cloud.json("ferrostack-demo", "keypair", "list")]
    assert f"gen-{unique}" in names
    # Keypairs are per user: admin does not see demo's.
    assert f"gen-{unique}" not in [k["Name"] for k in cloud.json("ferrostack", "keypair", "list")]
    bad = tmp_path / "bad.pub"
    bad.write_text("ssh-rsa AAAAnotakey user@host\n")
    refused = cloud.run("ferrostack-demo", "keypair", "create", "--public-key", str(bad), f"bad-{unique}", check=False)
    assert refused.returncode != 0 and "400" in refused.stderr
    cloud.run("ferrostack-demo", "keypair", "delete", f"gen-{unique}")
    assert f"gen-{unique}" not in [k["Name"] for k in cloud.json("ferrostack-demo", "keypair", "list")]


def test_server_groups_with_the_cli(cloud, unique):
    name = f"group-{unique}"
    group = cloud.json("ferrostack-demo", "server", "group", "create", "--policy", "anti-affinity", name)
    assert group["name"] == name and group["policy"] == "anti-affinity" and group["members"] == []
    assert name in [g["Name"] for g in cloud.json("ferrostack-demo", "server", "group", "list")]
    assert cloud.json("ferrostack-demo", "server", "group", "show", group["id"])["id"] == group["id"]
    # Another project does not see it; admin sees it with --all-projects.
    assert name not in [g["Name"] for g in cloud.json("ferrostack", "server", "group", "list")]
    assert name in [g["Name"] for g in cloud.json("ferrostack", "server", "group", "list", "--all-projects")]
    refused = cloud.run("ferrostack-demo", "server", "group", "create", "--policy", "affinity",
                        "--rule", "max_server_per_host=2", f"bad-{unique}", check=False)
    assert refused.returncode != 0 and "anti-affinity" in refused.stderr
    cloud.run("ferrostack-demo", "server", "group", "delete", group["id"])
    assert name not in [g["Name"] for g in cloud.json("ferrostack-demo", "server", "group", "list")]
