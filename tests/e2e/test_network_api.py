"""Networking API (Neutron v2.0 at /networking) with the real openstack CLI: networks, subnets,
ports, routers, floating IPs and security groups as a member and as an admin, isolation between
projects, and quotas."""
import pytest


def names(rows, key="Name"):
    return [r[key] for r in rows]


@pytest.fixture(scope="module")
def other_project(cloud):
    """A second project with a member user, as the cloud `net-other`."""
    suffix = "netiso"
    project = f"proj-{suffix}"
    user = f"user-{suffix}"
    password = "secret-" + suffix
    cloud.run("ferrostack", "project", "create", "--domain", "default", project)
    cloud.run("ferrostack", "user", "create", "--domain", "default", "--password", password, user)
    cloud.run("ferrostack", "role", "add", "--project", project, "--user", user, "member")
    cloud.add_cloud("net-other", user, password, project)
    return project


def test_discovery_and_extensions(cloud):
    status, _, body = cloud.request("GET", "/networking/")
    assert status == 200
    assert body["versions"][0]["id"] == "v2.0"
    aliases = names(cloud.json("ferrostack-demo", "extension", "list", "--network"), "Alias")
    for alias in ("security-group", "router", "external-net", "provider", "binding", "quotas",
                  "allowed-address-pairs", "port-security", "standard-attr-tag", "extraroute"):
        assert alias in aliases, alias
    # The error body is Neutron's.
    token, _ = cloud.password_token("demo", cloud.demo_password, "demo")
    status, _, body = cloud.request("GET", "/networking/v2.0/networks/nope", token=token)
    assert status == 404 and body["NeutronError"]["type"] == "NetworkNotFound"


def test_member_network_subnet_port_lifecycle(cloud, unique):
    net = cloud.json("ferrostack-demo", "network", "create", f"net-{unique}")
    assert net["status"] == "ACTIVE" and net["mtu"] == 1450
    # Provider attributes are the admin's business.
    assert net["provider:network_type"] is None and net["provider:segmentation_id"] is None
    admin_view = cloud.json("ferrostack", "network", "show", net["id"])
    assert admin_view["provider:network_type"] == "vxlan"
    assert isinstance(admin_view["provider:segmentation_id"], int)
    subnet = cloud.json("ferrostack-demo", "subnet", "create", "--network", f"net-{unique}",
                        "--subnet-range", "10.20.0.0/24", "--dns-nameserver", "10.20.0.53",
                        f"sub-{unique}")
    assert subnet["gateway_ip"] == "10.20.0.1"
    assert subnet["allocation_pools"] == [{"start": "10.20.0.2", "end": "10.20.0.254"}]
    assert subnet["dns_nameservers"] == ["10.20.0.53"]
    port = cloud.json("ferrostack-demo", "port", "create", "--network", f"net-{unique}", f"port-{unique}")
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.20.0.2"}]
    assert port["mac_address"].startswith("fa:16:3e:")
    assert len(port["security_group_ids"]) == 1, "the default group"
    fixed = cloud.json("ferrostack-demo", "port", "create", "--network", f"net-{unique}",
                       "--fixed-ip", f"subnet=sub-{unique},ip-address=10.20.0.77", f"fixed-{unique}")
    assert fixed["fixed_ips"][0]["ip_address"] == "10.20.0.77"
    taken = cloud.run("ferrostack-demo", "port", "create", "--network", f"net-{unique}",
                      "--fixed-ip", f"subnet=sub-{unique},ip-address=10.20.0.77", f"dup-{unique}", check=False)
    assert taken.returncode != 0 and "already allocated" in taken.stderr
    listed = cloud.json("ferrostack-demo", "port", "list", "--network", f"net-{unique}")
    assert sorted(names(listed)) == sorted([f"port-{unique}", f"fixed-{unique}"])
    # Change the address; the old one goes back to the pool.
    cloud.run("ferrostack-demo", "port", "set", "--no-fixed-ip", "--fixed-ip",
              f"subnet=sub-{unique},ip-address=10.20.0.88", f"fixed-{unique}")
    shown = cloud.json("ferrostack-demo", "port", "show", f"fixed-{unique}")
    assert [f["ip_address"] for f in shown["fixed_ips"]] == ["10.20.0.88"]
    again = cloud.json("ferrostack-demo", "port", "create", "--network", f"net-{unique}",
                       "--fixed-ip", f"subnet=sub-{unique},ip-address=10.20.0.77", f"again-{unique}")
    assert again["fixed_ips"][0]["ip_address"] == "10.20.0.77"
    # The network cannot go while ports are on it.
    busy = cloud.run("ferrostack-demo", "network", "delete", f"net-{unique}", check=False)
    assert busy.returncode != 0
    cloud.run("ferrostack-demo", "port", "delete", f"port-{unique}", f"fixed-{unique}", f"again-{unique}")
    cloud.run("ferrostack-demo", "subnet", "set", "--name", f"renamed-{unique}", f"sub-{unique}")
    cloud.run("ferrostack-demo", "network", "set", "--tag", "blue", f"net-{unique}")
    tagged = cloud.json("ferrostack-demo", "network", "list", "--tags", "blue")
    assert f"net-{unique}" in names(tagged)
    cloud.run("ferrostack-demo", "network", "delete", f"net-{unique}")
    assert f"net-{unique}" not in names(cloud.json("ferrostack-demo", "network", "list"))
    gone = cloud.run("ferrostack-demo", "subnet", "show", subnet["id"], check=False)
    assert gone.returncode != 0


def test_routers_and_floating_ips(cloud, unique):
    # The admin makes an external network; members see it and use it.
    public = cloud.json("ferrostack", "network", "create", "--external", f"ext-{unique}")
    assert public["router:external"] is True
    cloud.json("ferrostack", "subnet", "create", "--network", f"ext-{unique}", "--no-dhcp",
               "--subnet-range", "172.30.0.0/24", f"ext-sub-{unique}")
    member_denied = cloud.run("ferrostack-demo", "network", "create", "--external", f"x-{unique}", check=False)
    assert member_denied.returncode != 0 and "403" in member_denied.stderr
    cloud.json("ferrostack-demo", "network", "create", f"int-{unique}")
    cloud.json("ferrostack-demo", "subnet", "create", "--network", f"int-{unique}",
               "--subnet-range", "10.30.0.0/24", f"int-sub-{unique}")
    port = cloud.json("ferrostack-demo", "port", "create", "--network", f"int-{unique}", f"vm-{unique}")
    router = cloud.json("ferrostack-demo", "router", "create", f"r-{unique}")
    assert router["status"] == "ACTIVE"
    cloud.run("ferrostack-demo", "router", "set", "--external-gateway", f"ext-{unique}", f"r-{unique}")
    cloud.run("ferrostack-demo", "router", "add", "subnet", f"r-{unique}", f"int-sub-{unique}")
    shown = cloud.json("ferrostack-demo", "router", "show", f"r-{unique}")
    gw = shown["external_gateway_info"]
    assert gw["network_id"] == public["id"] and gw["enable_snat"] is True
    assert gw["external_fixed_ips"][0]["ip_address"].startswith("172.30.0.")
    assert [i["ip_address"] for i in shown["interfaces_info"]] == ["10.30.0.1"]
    cloud.run("ferrostack-demo", "router", "set", "--route", "destination=192.168.50.0/24,gateway=10.30.0.9",
              f"r-{unique}")
    assert cloud.json("ferrostack-demo", "router", "show", f"r-{unique}")["routes"] == [
        {"destination": "192.168.50.0/24", "nexthop": "10.30.0.9"}]
    cloud.run("ferrostack-demo", "router", "unset", "--route", "destination=192.168.50.0/24,gateway=10.30.0.9",
              f"r-{unique}")
    fip = cloud.json("ferrostack-demo", "floating", "ip", "create", f"ext-{unique}")
    assert fip["floating_ip_address"].startswith("172.30.0.")
    cloud.run("ferrostack-demo", "floating", "ip", "set", "--port", f"vm-{unique}", fip["id"])
    associated = cloud.json("ferrostack-demo", "floating", "ip", "show", fip["id"])
    assert associated["port_id"] == port["id"]
    assert associated["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    assert associated["router_id"] == router["id"]
    # The interface is needed while the floating IP uses it.
    blocked = cloud.run("ferrostack-demo", "router", "remove", "subnet", f"r-{unique}", f"int-sub-{unique}",
                        check=False)
    assert blocked.returncode != 0
    cloud.run("ferrostack-demo", "floating", "ip", "unset", "--port", fip["id"])
    assert cloud.json("ferrostack-demo", "floating", "ip", "show", fip["id"])["port_id"] is None
    cloud.run("ferrostack-demo", "floating", "ip", "delete", fip["id"])
    cloud.run("ferrostack-demo", "router", "remove", "subnet", f"r-{unique}", f"int-sub-{unique}")
    cloud.run("ferrostack-demo", "router", "unset", "--external-gateway", f"r-{unique}")
    cloud.run("ferrostack-demo", "router", "delete", f"r-{unique}")
    cloud.run("ferrostack-demo", "port", "delete", f"vm-{unique}")
    cloud.run("ferrostack-demo", "network", "delete", f"int-{unique}")
    cloud.run("ferrostack", "network", "delete", f"ext-{unique}")


def test_security_groups_and_rules(cloud, unique):
    groups = cloud.json("ferrostack-demo", "security", "group", "list")
    assert "default" in names(groups)
    default_rules = cloud.json("ferrostack-demo", "security", "group", "rule", "list", "default")
    assert len(default_rules) == 4
    cloud.json("ferrostack-demo", "security", "group", "create", f"web-{unique}")
    rule = cloud.json("ferrostack-demo", "security", "group", "rule", "create", "--protocol", "tcp",
                      "--dst-port", "80:81", "--remote-ip", "10.0.0.0/8", f"web-{unique}")
    assert rule["port_range_min"] == 80 and rule["port_range_max"] == 81
    dup = cloud.run("ferrostack-demo", "security", "group", "rule", "create", "--protocol", "tcp",
                    "--dst-port", "80:81", "--remote-ip", "10.0.0.0/8", f"web-{unique}", check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr
    bad = cloud.run("ferrostack-demo", "security", "group", "rule", "create", "--protocol", "tcp",
                    "--dst-port", "90:80", f"web-{unique}", check=False)
    assert bad.returncode != 0
    icmp = cloud.json("ferrostack-demo", "security", "group", "rule", "create", "--protocol", "icmp",
                      f"web-{unique}")
    assert icmp["protocol"] == "icmp"
    rules = cloud.json("ferrostack-demo", "security", "group", "rule", "list", f"web-{unique}")
    assert len(rules) == 4, "two egress rules, tcp and icmp"
    cloud.run("ferrostack-demo", "security", "group", "rule", "delete", icmp["id"])
    no_default_delete = cloud.run("ferrostack-demo", "security", "group", "delete", "default", check=False)
    assert no_default_delete.returncode != 0
    cloud.run("ferrostack-demo", "security", "group", "delete", f"web-{unique}")


def test_projects_are_isolated(cloud, unique, other_project):
    cloud.json("ferrostack-demo", "network", "create", f"mine-{unique}")
    assert f"mine-{unique}" not in names(cloud.json("net-other", "network", "list"))
    hidden = cloud.run("net-other", "network", "show", f"mine-{unique}", check=False)
    assert hidden.returncode != 0 and "No Network found" in hidden.stderr
    denied = cloud.run("net-other", "network", "delete", f"mine-{unique}", check=False)
    assert denied.returncode != 0
    # The admin sees every project's networks and may share one.
    assert f"mine-{unique}" in names(cloud.json("ferrostack", "network", "list"))
    cloud.run("ferrostack", "network", "set", "--share", f"mine-{unique}")
    assert f"mine-{unique}" in names(cloud.json("net-other", "network", "list"))
    rename = cloud.run("net-other", "network", "set", "--name", "stolen", f"mine-{unique}", check=False)
    assert rename.returncode != 0 and "403" in rename.stderr
    cloud.run("ferrostack", "network", "set", "--no-share", f"mine-{unique}")
    assert f"mine-{unique}" not in names(cloud.json("net-other", "network", "list"))
    cloud.run("ferrostack-demo", "network", "delete", f"mine-{unique}")


def test_quotas(cloud, unique, other_project):
    cloud.run("ferrostack", "quota", "set", "--networks", "2", "--ports", "3", other_project)
    shown = {r["Resource"]: r["Limit"] for r in cloud.json("ferrostack", "quota", "show", "--network", other_project)}
    assert shown["networks"] == 2 and shown["ports"] == 3
    existing = len(cloud.json("net-other", "network", "list", "--project", other_project))
    for i in range(2 - existing):
        cloud.json("net-other", "network", "create", f"q{i}-{unique}")
    over = cloud.run("net-other", "network", "create", f"over-{unique}", check=False)
    assert over.returncode != 0 and "Quota exceeded" in over.stderr
    # Lowering a limit below what is used is refused unless forced.
    below = cloud.run("ferrostack", "quota", "set", "--networks", "1", other_project, check=False)
    assert below.returncode != 0
    for i in range(2 - existing):
        cloud.run("net-other", "network", "delete", f"q{i}-{unique}")
    cloud.run("ferrostack", "quota", "set", "--networks", "100", "--ports", "500", other_project)
