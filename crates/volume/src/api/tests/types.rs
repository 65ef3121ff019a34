//! Volume types: CRUD (admins), the views per caller, extra specs, private types and their
//! project access, deletion rules, and project default types (3.62).

use super::{Harness, ids};
use serde_json::{Value, json};

/// A query value, percent-encoded.
fn enc(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Creates a type as admin; returns its view.
async fn create_type(h: &Harness, body: Value) -> Value {
    let reply = h
        .call(
            "admin",
            "POST",
            "/v3/types",
            Some(json!({ "volume_type": body })),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["volume_type"].clone()
}

#[tokio::test]
async fn types_crud_views_and_extra_specs() {
    let h = Harness::open("types-crud").await;
    let gold = create_type(
        &h,
        json!({"name": "gold", "description": "fast",
               "extra_specs": {"volume_backend_name": "file", "multiattach": "<is> True"}}),
    )
    .await;
    assert_eq!(gold["os-volume-type-access:is_public"], true);
    assert_eq!(gold["is_public"], true);
    assert_eq!(gold["extra_specs"]["volume_backend_name"], "file");
    let id = gold["id"].as_str().unwrap().to_string();
    let path = format!("/v3/types/{id}");

    let duplicate = h
        .call(
            "admin",
            "POST",
            "/v3/types",
            Some(json!({"volume_type": {"name": "gold"}})),
        )
        .await;
    assert_eq!(duplicate.status, 409);
    assert_eq!(
        duplicate.body["conflictingRequest"]["message"],
        "Volume Type gold already exists."
    );
    let blank = h
        .call(
            "admin",
            "POST",
            "/v3/types",
            Some(json!({"volume_type": {"name": "  "}})),
        )
        .await;
    assert_eq!(blank.status, 400);
    let by_member = h
        .call(
            "alice",
            "POST",
            "/v3/types",
            Some(json!({"volume_type": {"name": "x"}})),
        )
        .await;
    assert_eq!(by_member.status, 403);

    // What each caller sees.
    let member = h.get("alice", &path).await;
    assert_eq!(member.status, 200);
    assert_eq!(
        member.body["volume_type"]["extra_specs"],
        json!({"multiattach": "<is> True"})
    );
    assert!(member.body["volume_type"].get("qos_specs_id").is_none());
    assert_eq!(
        member.body["volume_type"]["os-volume-type-access:is_public"],
        true
    );
    let admin = h.get("admin", &path).await;
    assert_eq!(
        admin.body["volume_type"]["extra_specs"]["volume_backend_name"],
        "file"
    );
    assert!(admin.body["volume_type"]["qos_specs_id"].is_null());
    let reader = h.get("reader", "/v3/types").await;
    assert_eq!(reader.status, 200);
    assert!(
        reader.body["volume_types"][0]
            .get("os-volume-type-access:is_public")
            .is_none()
    );
    let default = h.get("alice", "/v3/types/default").await;
    assert_eq!(default.body["volume_type"]["name"], "__DEFAULT__");
    assert_eq!(
        h.get("alice", &format!("/v3/types/{}", uuid::Uuid::new_v4()))
            .await
            .status,
        404
    );
    let names = h.get("alice", "/v3/types?sort=name:asc").await;
    let listed: Vec<&str> = names.body["volume_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec!["__DEFAULT__", "gold"]);
    let by_spec = h
        .get(
            "alice",
            &format!(
                "/v3/types?extra_specs={}",
                enc("{'multiattach':'<is> True'}")
            ),
        )
        .await;
    assert_eq!(ids(&by_spec.body, "volume_types"), vec![id.clone()]);
    let sensitive = h
        .get(
            "alice",
            &format!(
                "/v3/types?extra_specs={}",
                enc("{'volume_backend_name':'file'}")
            ),
        )
        .await;
    assert!(ids(&sensitive.body, "volume_types").is_empty());
    assert_eq!(h.get("alice", "/v3/types?name=gold").await.status, 400);

    // Update.
    let renamed = h
        .call(
            "admin",
            "PUT",
            &path,
            Some(json!({"volume_type": {"name": "platinum"}})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:?}", renamed.body);
    assert_eq!(renamed.body["volume_type"]["name"], "platinum");
    assert_eq!(renamed.body["volume_type"]["description"], "fast");
    let taken = h
        .call(
            "admin",
            "PUT",
            &path,
            Some(json!({"volume_type": {"name": "__DEFAULT__"}})),
        )
        .await;
    assert_eq!(taken.status, 409);
    let nothing = h
        .call("admin", "PUT", &path, Some(json!({"volume_type": {}})))
        .await;
    assert_eq!(nothing.status, 400);
    let empty = h
        .call(
            "admin",
            "PUT",
            &path,
            Some(json!({"volume_type": {"name": " "}})),
        )
        .await;
    assert_eq!(empty.status, 400);

    // Extra specs.
    let specs = format!("{path}/extra_specs");
    let added = h
        .call(
            "admin",
            "POST",
            &specs,
            Some(json!({"extra_specs": {"k1": "v1"}})),
        )
        .await;
    assert_eq!(
        (added.status, &added.body),
        (200, &json!({"extra_specs": {"k1": "v1"}}))
    );
    let all = h.get("admin", &specs).await;
    assert_eq!(all.body["extra_specs"]["k1"], "v1");
    assert_eq!(
        h.get("alice", &specs).await.body,
        json!({"extra_specs": {"multiattach": "<is> True"}})
    );
    assert_eq!(
        h.get("admin", &format!("{specs}/k1")).await.body,
        json!({"k1": "v1"})
    );
    assert_eq!(h.get("alice", &format!("{specs}/k1")).await.status, 404);
    let put = h
        .call(
            "admin",
            "PUT",
            &format!("{specs}/k1"),
            Some(json!({"k1": "v2"})),
        )
        .await;
    assert_eq!((put.status, &put.body), (200, &json!({"k1": "v2"})));
    let mismatch = h
        .call(
            "admin",
            "PUT",
            &format!("{specs}/k1"),
            Some(json!({"k2": "v2"})),
        )
        .await;
    assert_eq!(mismatch.status, 400);
    let spaced = h
        .call(
            "admin",
            "POST",
            &specs,
            Some(json!({"extra_specs": {"a b": "v"}})),
        )
        .await;
    assert_eq!(spaced.status, 400);
    let cacheable = h
        .call(
            "admin",
            "POST",
            &specs,
            Some(json!({"extra_specs": {"cacheable": "<is> True"}})),
        )
        .await;
    assert_eq!(cacheable.status, 400);
    let member_write = h
        .call(
            "alice",
            "POST",
            &specs,
            Some(json!({"extra_specs": {"k": "v"}})),
        )
        .await;
    assert_eq!(member_write.status, 403);
    assert_eq!(
        h.call("admin", "DELETE", &format!("{specs}/k1"), None)
            .await
            .status,
        202
    );
    assert_eq!(
        h.call("admin", "DELETE", &format!("{specs}/k1"), None)
            .await
            .status,
        404
    );

    // In use: no spec changes and no deletion until the volume is gone.
    let volume = h
        .available_volume("alice", json!({"size": 1, "volume_type": "platinum"}))
        .await;
    let in_use = h
        .call(
            "admin",
            "POST",
            &specs,
            Some(json!({"extra_specs": {"k": "v"}})),
        )
        .await;
    assert_eq!(in_use.status, 400);
    assert_eq!(
        in_use.body["badRequest"]["message"],
        "Volume Type is currently in use."
    );
    let refused = h.call("admin", "DELETE", &path, None).await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body["badRequest"]["message"],
        "Target volume type is still in use."
    );
    let volume_path = format!("/v3/volumes/{}", volume["id"].as_str().unwrap());
    assert_eq!(
        h.call("alice", "DELETE", &volume_path, None).await.status,
        202
    );
    h.wait_gone("alice", &volume_path).await;
    assert_eq!(h.call("alice", "DELETE", &path, None).await.status, 403);
    assert_eq!(h.call("admin", "DELETE", &path, None).await.status, 202);
    assert_eq!(h.get("admin", &path).await.status, 404);

    let default_id = default.body["volume_type"]["id"].as_str().unwrap();
    let default_delete = h
        .call("admin", "DELETE", &format!("/v3/types/{default_id}"), None)
        .await;
    assert_eq!(default_delete.status, 400);
}

#[tokio::test]
async fn private_types_and_project_access() {
    let h = Harness::open("types-access").await;
    let secret = create_type(
        &h,
        json!({"name": "secret", "os-volume-type-access:is_public": false}),
    )
    .await;
    assert_eq!(secret["is_public"], false);
    let id = secret["id"].as_str().unwrap().to_string();
    let path = format!("/v3/types/{id}");
    let access = format!("{path}/os-volume-type-access");
    let action = format!("{path}/action");

    assert!(!ids(&h.get("alice", "/v3/types").await.body, "volume_types").contains(&id));
    assert_eq!(h.get("alice", &path).await.status, 404);
    assert_eq!(
        h.get("admin", &access).await.body,
        json!({"volume_type_access": []})
    );
    assert_eq!(h.get("alice", &access).await.status, 403);

    let add = Some(json!({"addProjectAccess": {"project": "p1"}}));
    assert_eq!(
        h.call("alice", "POST", &action, add.clone()).await.status,
        403
    );
    assert_eq!(
        h.call("admin", "POST", &action, add.clone()).await.status,
        202
    );
    let again = h.call("admin", "POST", &action, add).await;
    assert_eq!(again.status, 409);
    assert_eq!(
        h.get("admin", &access).await.body,
        json!({"volume_type_access": [{"volume_type_id": id, "project_id": "p1"}]})
    );
    assert!(ids(&h.get("alice", "/v3/types").await.body, "volume_types").contains(&id));
    assert_eq!(h.get("alice", &path).await.status, 200);
    assert_eq!(h.get("bob", &path).await.status, 404);
    assert!(!ids(&h.get("bob", "/v3/types").await.body, "volume_types").contains(&id));

    // Admin listing: public (and shared) by default, all with is_public=None, private only
    // with is_public=false.
    assert!(!ids(&h.get("admin", "/v3/types").await.body, "volume_types").contains(&id));
    assert!(
        ids(
            &h.get("admin", "/v3/types?is_public=None").await.body,
            "volume_types"
        )
        .contains(&id)
    );
    let private = h.get("admin", "/v3/types?is_public=false").await;
    assert_eq!(ids(&private.body, "volume_types"), vec![id.clone()]);
    assert_eq!(
        h.get("admin", "/v3/types?is_public=maybe").await.status,
        400
    );

    let remove = Some(json!({"removeProjectAccess": {"project": "p1"}}));
    assert_eq!(
        h.call("admin", "POST", &action, remove.clone())
            .await
            .status,
        202
    );
    assert_eq!(h.call("admin", "POST", &action, remove).await.status, 404);
    assert_eq!(h.get("alice", &path).await.status, 404);
    let bad = h
        .call("admin", "POST", &action, Some(json!({"nope": {}})))
        .await;
    assert_eq!(bad.status, 400);

    // Public types have no access list.
    let default = h.get("admin", "/v3/types/default").await;
    let public = format!(
        "/v3/types/{}",
        default.body["volume_type"]["id"].as_str().unwrap()
    );
    assert_eq!(
        h.get("admin", &format!("{public}/os-volume-type-access"))
            .await
            .status,
        404
    );
    let on_public = h
        .call(
            "admin",
            "POST",
            &format!("{public}/action"),
            Some(json!({"addProjectAccess": {"project": "p1"}})),
        )
        .await;
    assert_eq!(on_public.status, 400);
}

#[tokio::test]
async fn project_default_types() {
    let h = Harness::open("types-defaults").await;
    let gold = create_type(&h, json!({"name": "gold"})).await;
    let gold_id = gold["id"].as_str().unwrap().to_string();
    let body = Some(json!({"default_type": {"volume_type": "gold"}}));
    let old = h
        .call_at("3.61", "admin", "PUT", "/v3/default-types/p1", body.clone())
        .await;
    assert_eq!(old.status, 404);
    assert_eq!(
        h.call("alice", "PUT", "/v3/default-types/p1", body.clone())
            .await
            .status,
        403
    );
    let set = h.call("admin", "PUT", "/v3/default-types/p1", body).await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(
        set.body,
        json!({"default_type": {"project_id": "p1", "volume_type_id": gold_id}})
    );
    let unknown = h
        .call(
            "admin",
            "PUT",
            "/v3/default-types/p1",
            Some(json!({"default_type": {"volume_type": "nope"}})),
        )
        .await;
    assert_eq!(unknown.status, 400);

    assert_eq!(
        h.get("alice", "/v3/types/default").await.body["volume_type"]["name"],
        "gold"
    );
    assert_eq!(
        h.get("bob", "/v3/types/default").await.body["volume_type"]["name"],
        "__DEFAULT__"
    );
    assert_eq!(
        h.get("admin", "/v3/default-types/p1").await.body["default_type"]["volume_type_id"],
        gold_id
    );
    assert_eq!(h.get("admin", "/v3/default-types/p2").await.status, 404);
    assert_eq!(h.get("alice", "/v3/default-types").await.status, 403);
    let all = h.get("admin", "/v3/default-types").await;
    assert_eq!(all.body["default_types"].as_array().unwrap().len(), 1);

    let refused = h
        .call("admin", "DELETE", &format!("/v3/types/{gold_id}"), None)
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        h.call("admin", "DELETE", "/v3/default-types/p1", None)
            .await
            .status,
        204
    );
    assert_eq!(
        h.get("alice", "/v3/types/default").await.body["volume_type"]["name"],
        "__DEFAULT__"
    );
    assert_eq!(
        h.call("admin", "DELETE", &format!("/v3/types/{gold_id}"), None)
            .await
            .status,
        202
    );
}
