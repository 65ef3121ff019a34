//! Security groups and rules.

use super::Harness;
use serde_json::{Value, json};

fn rule(group: &Value, extra: Value) -> Value {
    let mut r =
        json!({"security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4"});
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    json!({ "security_group_rule": r })
}

#[tokio::test]
async fn default_group_appears_on_first_use_with_upstream_rules() {
    let h = Harness::open("sg-default").await;
    let list = h.get("alice", "/v2.0/security-groups").await;
    let groups = list.body["security_groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1);
    let default = &groups[0];
    assert_eq!(default["name"], "default");
    assert_eq!(default["description"], "Default security group");
    let rules = default["security_group_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 4);
    let ingress: Vec<&Value> = rules
        .iter()
        .filter(|r| r["direction"] == "ingress")
        .collect();
    assert_eq!(ingress.len(), 2);
    assert!(
        ingress
            .iter()
            .all(|r| r["remote_group_id"] == default["id"])
    );
    assert!(rules.iter().all(|r| r["belongs_to_default_sg"] == true));
    // Listing again does not make another.
    assert_eq!(
        h.get("alice", "/v2.0/security-groups").await.body["security_groups"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Bob's list is his own.
    let bob = h.get("bob", "/v2.0/security-groups").await;
    assert_ne!(bob.body["security_groups"][0]["id"], default["id"]);
    let id = default["id"].as_str().unwrap();
    let rename = h
        .call(
            "alice",
            "PUT",
            &format!("/v2.0/security-groups/{id}"),
            Some(json!({"security_group": {"name": "x"}})),
        )
        .await;
    assert_eq!(
        (rename.status, rename.kind()),
        (409, "SecurityGroupCannotUpdateDefault")
    );
    let delete = h
        .call(
            "alice",
            "DELETE",
            &format!("/v2.0/security-groups/{id}"),
            None,
        )
        .await;
    assert_eq!(
        (delete.status, delete.kind()),
        (409, "SecurityGroupCannotRemoveDefault")
    );
    let named_default = h
        .call(
            "alice",
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_group": {"name": "default"}})),
        )
        .await;
    assert_eq!(named_default.status, 409);
}

#[tokio::test]
async fn rules_are_validated_and_duplicates_refused() {
    let h = Harness::open("sg-rules").await;
    let group = h
        .create(
            "alice",
            "/v2.0/security-groups",
            "security_group",
            json!({"name": "web"}),
        )
        .await;
    let starting = group["security_group_rules"].as_array().unwrap();
    assert_eq!(starting.len(), 2);
    assert!(starting.iter().all(|r| r["direction"] == "egress"));
    let ssh = h
        .call(
            "alice",
            "POST",
            "/v2.0/security-group-rules",
            Some(rule(
                &group,
                json!({"protocol": "tcp",
            "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}),
            )),
        )
        .await;
    assert_eq!(ssh.status, 201, "{:?}", ssh.body);
    assert_eq!(ssh.body["security_group_rule"]["protocol"], "tcp");
    let dup = h
        .call(
            "alice",
            "POST",
            "/v2.0/security-group-rules",
            Some(rule(
                &group,
                json!({"protocol": "6",
            "port_range_min": 22, "port_range_max": 22}),
            )),
        )
        .await;
    assert_eq!((dup.status, dup.kind()), (409, "SecurityGroupRuleExists"));
    for (body, kind) in [
        (
            json!({"protocol": "tcp", "port_range_min": 80, "port_range_max": 22}),
            "SecurityGroupInvalidPortRange",
        ),
        (
            json!({"port_range_min": 80, "port_range_max": 80}),
            "SecurityGroupProtocolRequiredWithPorts",
        ),
        (
            json!({"protocol": "bogus"}),
            "SecurityGroupRuleInvalidProtocol",
        ),
        (
            json!({"protocol": "icmp", "port_range_min": 300}),
            "SecurityGroupInvalidIcmpValue",
        ),
        (
            json!({"remote_ip_prefix": "2001:db8::/64"}),
            "SecurityGroupRuleParameterConflict",
        ),
        (
            json!({"ethertype": "IPv5"}),
            "SecurityGroupRuleInvalidEtherType",
        ),
        (
            json!({"protocol": "tcp", "port_range_min": 70000, "port_range_max": 70000}),
            "SecurityGroupInvalidPortValue",
        ),
    ] {
        let r = h
            .call(
                "alice",
                "POST",
                "/v2.0/security-group-rules",
                Some(rule(&group, body.clone())),
            )
            .await;
        assert_eq!((r.status, r.kind()), (400, kind), "{body}: {:?}", r.body);
    }
    let icmp = h
        .call(
            "alice",
            "POST",
            "/v2.0/security-group-rules",
            Some(rule(
                &group,
                json!({"protocol": "icmp", "remote_ip_prefix": "10.0.0.5/24"}),
            )),
        )
        .await;
    assert_eq!(icmp.status, 201);
    assert_eq!(
        icmp.body["security_group_rule"]["remote_ip_prefix"],
        "10.0.0.0/24"
    );
    // A remote group that does not exist (malformed or not) is a 404, as upstream.
    for remote in ["bad_group_id", "0b0c6d3e-1111-4222-8333-944455556666"] {
        let r = h
            .call(
                "alice",
                "POST",
                "/v2.0/security-group-rules",
                Some(rule(
                    &group,
                    json!({"protocol": "tcp", "remote_group_id": remote}),
                )),
            )
            .await;
        assert_eq!(
            (r.status, r.kind()),
            (404, "SecurityGroupNotFound"),
            "{remote}"
        );
    }
    // Others can neither see nor add.
    let bobs = h
        .call(
            "bob",
            "POST",
            "/v2.0/security-group-rules",
            Some(rule(&group, json!({"protocol": "udp"}))),
        )
        .await;
    assert_eq!(bobs.status, 404);
    let rid = ssh.body["security_group_rule"]["id"].as_str().unwrap();
    assert_eq!(
        h.get("bob", &format!("/v2.0/security-group-rules/{rid}"))
            .await
            .status,
        404
    );
    assert_eq!(
        h.get("alice", &format!("/v2.0/security-group-rules/{rid}"))
            .await
            .status,
        200
    );
    let gid = group["id"].as_str().unwrap();
    let shown = h
        .get("alice", &format!("/v2.0/security-groups/{gid}"))
        .await;
    assert_eq!(
        shown.body["security_group"]["security_group_rules"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        h.call(
            "alice",
            "DELETE",
            &format!("/v2.0/security-group-rules/{rid}"),
            None
        )
        .await
        .status,
        204
    );
    assert_eq!(
        h.get("alice", &format!("/v2.0/security-group-rules/{rid}"))
            .await
            .status,
        404
    );
    let filtered = h
        .get(
            "alice",
            &format!("/v2.0/security-group-rules?security_group_id={gid}&direction=egress"),
        )
        .await;
    assert_eq!(
        filtered.body["security_group_rules"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn groups_in_use_stay() {
    let h = Harness::open("sg-in-use").await;
    let (net, _) = h.network_with_subnet("alice", "n", "10.0.0.0/24").await;
    let group = h
        .create(
            "alice",
            "/v2.0/security-groups",
            "security_group",
            json!({"name": "g"}),
        )
        .await;
    let port = h
        .create(
            "alice",
            "/v2.0/ports",
            "port",
            json!({"network_id": net["id"], "security_groups": [group["id"]]}),
        )
        .await;
    assert_eq!(port["security_groups"], json!([group["id"]]));
    let gid = group["id"].as_str().unwrap();
    let busy = h
        .call(
            "alice",
            "DELETE",
            &format!("/v2.0/security-groups/{gid}"),
            None,
        )
        .await;
    assert_eq!((busy.status, busy.kind()), (409, "SecurityGroupInUse"));
    let bobs_group = h
        .create(
            "bob",
            "/v2.0/security-groups",
            "security_group",
            json!({"name": "b"}),
        )
        .await;
    let foreign = h
        .call(
            "alice",
            "POST",
            "/v2.0/ports",
            Some(json!({"port": {"network_id": net["id"], "security_groups": [bobs_group["id"]]}})),
        )
        .await;
    assert_eq!(
        (foreign.status, foreign.kind()),
        (404, "SecurityGroupNotFound")
    );
    let pid = port["id"].as_str().unwrap();
    assert_eq!(
        h.call("alice", "DELETE", &format!("/v2.0/ports/{pid}"), None)
            .await
            .status,
        204
    );
    assert_eq!(
        h.call(
            "alice",
            "DELETE",
            &format!("/v2.0/security-groups/{gid}"),
            None
        )
        .await
        .status,
        204
    );
}

#[tokio::test]
async fn group_and_rule_quotas() {
    let h = Harness::open("sg-quota").await;
    h.call(
        "admin",
        "PUT",
        "/v2.0/quotas/p1",
        Some(json!({"quota": {"security_group": 2, "security_group_rule": 7}})),
    )
    .await;
    // The default group (4 rules) and one more (2 rules) fit; a third group does not.
    let g = h
        .create(
            "alice",
            "/v2.0/security-groups",
            "security_group",
            json!({"name": "a"}),
        )
        .await;
    let over = h
        .call(
            "alice",
            "POST",
            "/v2.0/security-groups",
            Some(json!({"security_group": {"name": "b"}})),
        )
        .await;
    assert_eq!((over.status, over.kind()), (409, "OverQuota"));
    let fits = h
        .call(
            "alice",
            "POST",
            "/v2.0/security-group-rules",
            Some(rule(&g, json!({"protocol": "tcp"}))),
        )
        .await;
    assert_eq!(fits.status, 201);
    let over = h
        .call(
            "alice",
            "POST",
            "/v2.0/security-group-rules",
            Some(rule(&g, json!({"protocol": "udp"}))),
        )
        .await;
    assert_eq!((over.status, over.kind()), (409, "OverQuota"));
}
