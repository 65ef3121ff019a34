"""Placement with the real osc-placement plugin: resource providers, inventories, traits,
aggregates, allocations, usages and allocation candidates; members are refused."""
import json
import uuid


def test_placement_version_document_needs_no_token(cloud):
    status, _, body = cloud.request("GET", "/placement/")
    assert status == 200
    assert body["versions"][0]["max_version"] == "1.39"


def test_provider_inventory_allocation_and_candidates(cloud, unique):
    admin = "ferrostack"
    rp = cloud.json(admin, "resource", "provider", "create", f"host-{unique}")
    assert rp["generation"] == 0 and rp["root_provider_uuid"] == rp["uuid"]
    uuid_ = rp["uuid"]
    cloud.run(admin, "resource", "provider", "inventory", "set", uuid_,
              "--resource", "VCPU=4", "--resource", "VCPU:allocation_ratio=2.0",
              "--resource", "MEMORY_MB=4096", "--resource", "DISK_GB=40")
    inventory = {i["resource_class"]: i for i in cloud.json(admin, "resource", "provider", "inventory", "list", uuid_)}
    assert inventory["VCPU"]["total"] == 4 and inventory["VCPU"]["allocation_ratio"] == 2.0
    cloud.run(admin, "--os-placement-api-version", "1.6", "resource", "provider", "trait", "set", uuid_,
              "--trait", "HW_CPU_X86_AVX2", "--trait", "COMPUTE_STATUS_DISABLED")
    traits = [t["name"] for t in cloud.json(admin, "--os-placement-api-version", "1.6", "resource", "provider",
                                            "trait", "list", uuid_)]
    assert sorted(traits) == ["COMPUTE_STATUS_DISABLED", "HW_CPU_X86_AVX2"]
    agg = str(uuid.uuid4())
    cloud.run(admin, "--os-placement-api-version", "1.19", "resource", "provider", "aggregate", "set", uuid_,
              "--aggregate", agg, "--generation", str(cloud.json(admin, "resource", "provider", "show", uuid_)["generation"]))

    # Candidates honour capacity (4 x 2.0 = 8 VCPU), traits and aggregates.
    def candidates(*args):
        return cloud.json(admin, "--os-placement-api-version", "1.29", "allocation", "candidate", "list", *args)
    assert [c for c in candidates("--resource", "VCPU=8") if c["resource provider"] == uuid_]
    assert not [c for c in candidates("--resource", "VCPU=9") if c["resource provider"] == uuid_]
    assert [c for c in candidates("--resource", "VCPU=1", "--required", "HW_CPU_X86_AVX2",
                                  "--member-of", agg) if c["resource provider"] == uuid_]
    assert not [c for c in candidates("--resource", "VCPU=1", "--forbidden", "COMPUTE_STATUS_DISABLED")
                if c["resource provider"] == uuid_]

    # An allocation for a consumer, then the usage, then over-capacity refused.
    consumer = str(uuid.uuid4())
    project = cloud.json(admin, "project", "show", "demo")["id"]
    user = cloud.json(admin, "user", "show", "demo")["id"]
    cloud.run(admin, "--os-placement-api-version", "1.12", "resource", "provider", "allocation", "set", consumer,
              "--allocation", f"rp={uuid_},VCPU=6,MEMORY_MB=1024", "--project-id", project, "--user-id", user)
    usage = {u["resource_class"]: u["usage"] for u in cloud.json(admin, "resource", "provider", "usage", "show", uuid_)}
    assert usage["VCPU"] == 6 and usage["MEMORY_MB"] == 1024 and usage["DISK_GB"] == 0
    over = cloud.run(admin, "--os-placement-api-version", "1.12", "resource", "provider", "allocation", "set",
                     str(uuid.uuid4()), "--allocation", f"rp={uuid_},VCPU=3", "--project-id", project,
                     "--user-id", user, check=False)
    assert over.returncode != 0 and "409" in over.stderr
    # A provider with allocations cannot be deleted; after the consumer goes, it can.
    assert cloud.run(admin, "resource", "provider", "delete", uuid_, check=False).returncode != 0
    cloud.run(admin, "resource", "provider", "allocation", "delete", consumer)
    cloud.run(admin, "resource", "provider", "delete", uuid_)
    assert uuid_ not in [r["uuid"] for r in cloud.json(admin, "resource", "provider", "list")]


def test_members_are_refused(cloud):
    denied = cloud.run("ferrostack-demo", "resource", "provider", "list", check=False)
    assert denied.returncode != 0 and "403" in denied.stderr
