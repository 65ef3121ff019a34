//! In-process API tests: a real image service (fresh store and data directories) behind its
//! router, with callers given by fixed tokens (admin, members of two projects, a reader).

use crate::service::Images;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

/// A test's directory, removed when the last harness using it is dropped.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Harness {
    dir: Arc<TempDir>,
    config: ferrostack_config::Config,
    router: axum::Router,
    images: Arc<Images>,
}

struct Reply {
    status: u16,
    headers: axum::http::HeaderMap,
    bytes: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

impl Harness {
    async fn open(name: &str) -> Harness {
        let dir = std::env::temp_dir().join(format!(
            "ferrostack-image-{}-{name}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let config = ferrostack_config::Config::from_sources(
            &format!("state_dir = \"{}\"", dir.display()),
            Vec::new(),
        )
        .unwrap();
        let store = ferrostack_store::test_store(&format!("image-{name}"))
            .await
            .unwrap();
        Self::with(Arc::new(TempDir(dir)), config, store).await
    }

    async fn with(
        dir: Arc<TempDir>,
        config: ferrostack_config::Config,
        store: ferrostack_store::Store,
    ) -> Harness {
        let images = Images::open(&config, store).await.unwrap();
        let ctx = ferrostack_api::testing::context(
            ferrostack_api::testing::standard_callers(),
            &crate::default_rules(),
        );
        let router = crate::api::router(images.clone()).layer(axum::Extension(ctx));
        Harness {
            dir,
            config,
            router,
            images,
        }
    }

    /// Restarts the service on the same store and directories (a crash and restart).
    async fn restart(self) -> Harness {
        let store = self.images.store.clone();
        Self::with(self.dir, self.config, store).await
    }

    async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-auth-token", token);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = self
            .router
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            headers,
            bytes,
        }
    }

    async fn get(&self, token: &str, path: &str) -> Reply {
        self.call(token, "GET", path, None, Vec::new(), &[]).await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> Reply {
        self.call(
            token,
            "POST",
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
            &[],
        )
        .await
    }

    async fn patch(&self, token: &str, id: &str, ops: Value) -> Reply {
        self.call(
            token,
            "PATCH",
            &format!("/v2/images/{id}"),
            Some("application/openstack-images-v2.1-json-patch"),
            ops.to_string().into_bytes(),
            &[],
        )
        .await
    }

    async fn create(&self, token: &str, body: Value) -> String {
        let reply = self.post(token, "/v2/images", body).await;
        assert_eq!(reply.status, 201, "{:?}", reply.json());
        reply.json()["id"].as_str().unwrap().to_string()
    }

    async fn upload(&self, token: &str, id: &str, data: &[u8]) -> Reply {
        self.call(
            token,
            "PUT",
            &format!("/v2/images/{id}/file"),
            Some("application/octet-stream"),
            data.to_vec(),
            &[],
        )
        .await
    }

    fn data_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.config.image.filesystem_store_datadir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    }
}

fn raw_image() -> &'static str {
    r#"{"name": "raw", "disk_format": "raw", "container_format": "bare"}"#
}

/// A real 1 MiB qcow2 made by `qemu-img create` with `extra` options.
fn qcow2(dir: &std::path::Path, extra: &[&str]) -> Vec<u8> {
    let path = dir.join(format!("{}.qcow2", uuid::Uuid::new_v4().simple()));
    let mut args = vec!["create", "-q", "-f", "qcow2"];
    args.extend(extra);
    let path_str = path.to_string_lossy().to_string();
    args.extend([path_str.as_str(), "1M"]);
    let out = std::process::Command::new("qemu-img")
        .args(&args)
        .output()
        .expect("qemu-img (qemu-utils) is needed by the image tests");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&path).unwrap()
}

#[tokio::test]
async fn create_applies_glance_defaults_and_refuses_reserved_keys() {
    let h = Harness::open("create").await;
    let reply = h
        .post(
            "alice",
            "/v2/images",
            json!({"name": "x", "os_distro": "debian"}),
        )
        .await;
    assert_eq!(reply.status, 201);
    let body = reply.json();
    assert_eq!(body["visibility"], "shared");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["owner"], "p1");
    assert_eq!(body["os_distro"], "debian");
    assert_eq!(
        body["self"],
        format!("/v2/images/{}", body["id"].as_str().unwrap())
    );
    assert_eq!(
        reply.headers["openstack-image-import-methods"],
        "glance-direct,web-download"
    );
    assert!(
        reply.headers["location"]
            .to_str()
            .unwrap()
            .ends_with(body["id"].as_str().unwrap())
    );
    for (body, status) in [
        (json!({"status": "active"}), 403),
        (json!({"os_glance_x": "1"}), 403),
        (json!({"self": "x"}), 403),
        (json!({"disk_format": "wrong"}), 400),
        (json!({"min_ram": "x"}), 400),
        (json!({"min_ram": -1}), 400),
        (json!({"owner": "p2"}), 403),
        (json!({"visibility": "public"}), 403),
        (json!({"custom": 5}), 400),
    ] {
        let reply = h.post("alice", "/v2/images", body.clone()).await;
        assert_eq!(reply.status, status, "{body} → {:?}", reply.json());
        assert!(
            reply.json()["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // An admin may create for another project and make it public.
    let reply = h
        .post(
            "admin",
            "/v2/images",
            json!({"owner": "p2", "visibility": "public"}),
        )
        .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.json()["owner"], "p2");
    // A reader may not create.
    assert_eq!(h.post("reader", "/v2/images", json!({})).await.status, 403);
    // Duplicate id.
    let id = reply.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        h.post("admin", "/v2/images", json!({"id": id}))
            .await
            .status,
        409
    );
}

#[tokio::test]
async fn upload_and_download_round_trip_with_ranges_and_hashes() {
    let h = Harness::open("data").await;
    let id = h
        .create("alice", serde_json::from_str(raw_image()).unwrap())
        .await;
    assert_eq!(
        h.get("alice", &format!("/v2/images/{id}/file"))
            .await
            .status,
        204
    );
    let data: Vec<u8> = (0..300_000u32).map(|n| (n % 251) as u8).collect();
    assert_eq!(h.upload("alice", &id, &data).await.status, 204);
    let image = h.get("alice", &format!("/v2/images/{id}")).await.json();
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], 300_000);
    assert_eq!(image["virtual_size"], 300_000);
    assert_eq!(image["os_hash_algo"], "sha512");
    assert_eq!(image["checksum"].as_str().unwrap().len(), 32);
    assert_eq!(image["os_hash_value"].as_str().unwrap().len(), 128);
    let full = h.get("alice", &format!("/v2/images/{id}/file")).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.bytes, data);
    assert_eq!(
        full.headers["content-md5"],
        image["checksum"].as_str().unwrap()
    );
    let part = h
        .call(
            "alice",
            "GET",
            &format!("/v2/images/{id}/file"),
            None,
            Vec::new(),
            &[("range", "bytes=10-19")],
        )
        .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.bytes, data[10..20]);
    assert_eq!(part.headers["content-range"], "bytes 10-19/300000");
    for (range, status) in [
        ("bytes=0-1,5-6", 400),
        ("bytes=300000-", 416),
        ("pages=1", 416),
    ] {
        let reply = h
            .call(
                "alice",
                "GET",
                &format!("/v2/images/{id}/file"),
                None,
                Vec::new(),
                &[("range", range)],
            )
            .await;
        assert_eq!(reply.status, status, "{range}");
    }
    // A second upload is a conflict; a non-owner who cannot see it gets 404.
    assert_eq!(h.upload("alice", &id, b"x").await.status, 409);
    assert_eq!(h.upload("bob", &id, b"x").await.status, 404);
    assert_eq!(h.data_files(), vec![id.clone()]);
    // Deactivated: the owner may not download, an admin may.
    let deactivate = format!("/v2/images/{id}/actions/deactivate");
    assert_eq!(
        h.call("alice", "POST", &deactivate, None, Vec::new(), &[])
            .await
            .status,
        204
    );
    assert_eq!(
        h.get("alice", &format!("/v2/images/{id}/file"))
            .await
            .status,
        403
    );
    assert_eq!(
        h.get("admin", &format!("/v2/images/{id}/file"))
            .await
            .status,
        200
    );
    // Deleting removes the data.
    let reply = h
        .call(
            "alice",
            "DELETE",
            &format!("/v2/images/{id}"),
            None,
            Vec::new(),
            &[],
        )
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(
        h.get("alice", &format!("/v2/images/{id}")).await.status,
        404
    );
    assert!(h.data_files().is_empty());
}

#[tokio::test]
async fn unsafe_or_mismatched_data_is_refused_and_the_image_stays_queued() {
    let h = Harness::open("unsafe").await;
    let declared = json!({"name": "q", "disk_format": "qcow2", "container_format": "bare"});
    let good = h.create("alice", declared.clone()).await;
    assert_eq!(
        h.upload("alice", &good, &qcow2(&h.dir, &[])).await.status,
        204
    );
    let image = h.get("alice", &format!("/v2/images/{good}")).await.json();
    assert_eq!(image["virtual_size"], 1 << 20);

    for (data, reason) in [
        (
            qcow2(&h.dir, &["-b", "/etc/passwd", "-F", "raw"]),
            "backing file",
        ),
        (vec![7u8; 4096], "does not match stream data raw"),
    ] {
        let id = h.create("alice", declared.clone()).await;
        let reply = h.upload("alice", &id, &data).await;
        assert_eq!(reply.status, 415);
        let message = reply.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(reason), "{message}");
        let image = h.get("alice", &format!("/v2/images/{id}")).await.json();
        assert_eq!(image["status"], "queued");
        assert_eq!(image["size"], Value::Null);
    }
    assert_eq!(h.data_files(), vec![good]);
    // A container other than bare is not inspected (as in Glance).
    let ova = h
        .create(
            "alice",
            json!({"disk_format": "qcow2", "container_format": "ova"}),
        )
        .await;
    assert_eq!(h.upload("alice", &ova, b"not a qcow2").await.status, 204);
}

#[tokio::test]
async fn listing_follows_visibility_membership_filters_and_pagination() {
    let h = Harness::open("list").await;
    let shared = h
        .create("alice", json!({"name": "s", "tags": ["a", "b"], "k": "v"}))
        .await;
    let private = h
        .create("alice", json!({"name": "p", "visibility": "private"}))
        .await;
    let community = h
        .create("alice", json!({"name": "c", "visibility": "community"}))
        .await;
    let hidden = h
        .create("alice", json!({"name": "h", "os_hidden": true}))
        .await;
    let public = h
        .create("admin", json!({"name": "pub", "visibility": "public"}))
        .await;
    let names = |reply: Reply| -> Vec<String> {
        let mut v: Vec<String> = reply.json()["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(h.get("alice", "/v2/images").await),
        ["c", "p", "pub", "s"]
    );
    assert_eq!(names(h.get("bob", "/v2/images").await), ["pub"]);
    assert_eq!(
        names(h.get("bob", "/v2/images?visibility=community").await),
        ["c"]
    );
    assert_eq!(
        names(h.get("alice", "/v2/images?os_hidden=true").await),
        ["h"]
    );
    assert_eq!(
        h.get("bob", &format!("/v2/images/{private}")).await.status,
        404
    );
    assert_eq!(
        h.get("bob", &format!("/v2/images/{community}"))
            .await
            .status,
        200
    );
    let _ = (hidden, public);

    // Sharing: pending is not listed by default, accepted is.
    let members = format!("/v2/images/{shared}/members");
    assert_eq!(
        h.post("alice", &members, json!({"member": "p2"}))
            .await
            .json()["status"],
        "pending"
    );
    assert_eq!(
        h.post("alice", &members, json!({"member": "p2"}))
            .await
            .status,
        409
    );
    assert_eq!(
        names(
            h.get("bob", "/v2/images?member_status=pending&visibility=shared")
                .await
        ),
        ["s"]
    );
    assert_eq!(names(h.get("bob", "/v2/images").await), ["pub"]);
    let member_path = format!("{members}/p2");
    let accepted = br#"{"status":"accepted"}"#.to_vec();
    let accept = |token: &'static str| {
        h.call(
            token,
            "PUT",
            &member_path,
            Some("application/json"),
            accepted.clone(),
            &[],
        )
    };
    assert_eq!(
        accept("alice").await.status,
        403,
        "the owner cannot accept for the member"
    );
    assert_eq!(accept("bob").await.status, 200);
    assert_eq!(names(h.get("bob", "/v2/images").await), ["pub", "s"]);
    // Another member's row is invisible to bob, even to update.
    assert_eq!(
        h.post("alice", &members, json!({"member": "p3"}))
            .await
            .status,
        200
    );
    let other = h
        .call(
            "bob",
            "PUT",
            &format!("{members}/p3"),
            Some("application/json"),
            accepted.clone(),
            &[],
        )
        .await;
    assert_eq!(other.status, 404);
    assert_eq!(h.get("bob", &format!("{members}/p3")).await.status, 404);
    assert_eq!(
        h.get("alice", &members).await.json()["members"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    h.call(
        "alice",
        "DELETE",
        &format!("{members}/p3"),
        None,
        Vec::new(),
        &[],
    )
    .await;
    assert_eq!(
        h.get("bob", &members).await.json()["members"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        h.call(
            "bob",
            "DELETE",
            &format!("{members}/p2"),
            None,
            Vec::new(),
            &[]
        )
        .await
        .status,
        403
    );
    assert_eq!(
        h.call(
            "alice",
            "DELETE",
            &format!("{members}/p2"),
            None,
            Vec::new(),
            &[]
        )
        .await
        .status,
        204
    );
    assert_eq!(names(h.get("bob", "/v2/images").await), ["pub"]);

    // Filters.
    assert_eq!(names(h.get("alice", "/v2/images?tag=a&tag=b").await), ["s"]);
    assert_eq!(
        names(h.get("alice", "/v2/images?tag=a&tag=z").await),
        Vec::<String>::new()
    );
    assert_eq!(names(h.get("alice", "/v2/images?k=v").await), ["s"]);
    assert_eq!(
        names(
            h.get("alice", &format!("/v2/images?id=in:{shared},{private}"))
                .await
        ),
        ["p", "s"]
    );
    assert_eq!(
        names(h.get("alice", "/v2/images?id=in:").await),
        Vec::<String>::new()
    );
    assert_eq!(
        names(h.get("alice", "/v2/images?name=in:p,%22s%22").await),
        ["p", "s"]
    );
    assert_eq!(
        names(h.get("alice", "/v2/images?visibility=private").await),
        ["p"]
    );
    for bad in [
        "visibility=x",
        "sort_key=owner",
        "limit=-1",
        "member_status=x",
        "os_hidden=maybe",
        "created_at=gte:nope",
        "size_min=x",
        "changes-since=2020-01-01",
        "marker=nope",
    ] {
        assert_eq!(
            h.get("alice", &format!("/v2/images?{bad}")).await.status,
            400,
            "{bad}"
        );
    }

    // Pagination by marker walks every visible image once, in order.
    let mut seen = Vec::new();
    let mut next = Some("/v2/images?limit=1&sort=name:asc".to_string());
    while let Some(path) = next {
        let page = h.get("alice", &path).await.json();
        seen.extend(
            page["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_string()),
        );
        next = page.get("next").and_then(Value::as_str).map(str::to_string);
        assert!(seen.len() <= 5);
    }
    assert_eq!(seen, ["c", "p", "pub", "s"]);
}

#[tokio::test]
async fn patch_follows_json_patch_rules() {
    let h = Harness::open("patch").await;
    let id = h.create("alice", json!({"name": "a"})).await;
    let reply = h
        .patch(
            "alice",
            &id,
            json!([
                {"op": "replace", "path": "/name", "value": "b"},
                {"op": "add", "path": "/os_distro", "value": "debian"},
                {"op": "replace", "path": "/tags", "value": ["x"]},
                {"op": "replace", "path": "/protected", "value": true},
            ]),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let image = reply.json();
    assert_eq!(
        (
            image["name"].clone(),
            image["os_distro"].clone(),
            image["tags"].clone()
        ),
        (json!("b"), json!("debian"), json!(["x"]))
    );
    for (ops, status) in [
        (
            json!([{"op": "replace", "path": "/missing", "value": "x"}]),
            409,
        ),
        (json!([{"op": "remove", "path": "/missing"}]), 409),
        (json!([{"op": "remove", "path": "/name"}]), 403),
        (
            json!([{"op": "replace", "path": "/status", "value": "active"}]),
            403,
        ),
        (
            json!([{"op": "add", "path": "/os_glance_x", "value": "1"}]),
            403,
        ),
        (
            json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
            403,
        ),
        (
            json!([{"op": "replace", "path": "/owner", "value": "p2"}]),
            403,
        ),
        (
            json!([{"op": "replace", "path": "/min_ram", "value": "x"}]),
            400,
        ),
        (json!([{"op": "test", "path": "/name", "value": "x"}]), 400),
    ] {
        let reply = h.patch("alice", &id, ops.clone()).await;
        assert_eq!(reply.status, status, "{ops} → {:?}", reply.json());
    }
    assert_eq!(h.patch("bob", &id, json!([])).await.status, 404);
    // Draft-4 media type, as Tempest sends it.
    let reply = h
        .call(
            "alice",
            "PATCH",
            &format!("/v2/images/{id}"),
            Some("application/openstack-images-v2.0-json-patch"),
            br#"[{"replace": "/name", "value": "c"}]"#.to_vec(),
            &[],
        )
        .await;
    assert_eq!(reply.json()["name"], "c");
    let reply = h
        .call(
            "alice",
            "PATCH",
            &format!("/v2/images/{id}"),
            Some("application/json"),
            b"[]".to_vec(),
            &[],
        )
        .await;
    assert_eq!(reply.status, 415);
    assert!(
        reply.headers["accept-patch"]
            .to_str()
            .unwrap()
            .contains("v2.1-json-patch")
    );
    // Protected images cannot be deleted until unprotected.
    let path = format!("/v2/images/{id}");
    assert_eq!(
        h.call("alice", "DELETE", &path, None, Vec::new(), &[])
            .await
            .status,
        403
    );
    h.patch(
        "alice",
        &id,
        json!([{"op": "replace", "path": "/protected", "value": false}]),
    )
    .await;
    assert_eq!(
        h.call("alice", "DELETE", &path, None, Vec::new(), &[])
            .await
            .status,
        204
    );
    assert_eq!(
        h.call("alice", "DELETE", &path, None, Vec::new(), &[])
            .await
            .status,
        404
    );
    // Tags.
    let id = h.create("alice", json!({})).await;
    let tag = format!("/v2/images/{id}/tags/blue");
    assert_eq!(
        h.call("alice", "PUT", &tag, None, Vec::new(), &[])
            .await
            .status,
        204
    );
    assert_eq!(
        h.get("alice", &format!("/v2/images/{id}")).await.json()["tags"],
        json!(["blue"])
    );
    assert_eq!(
        h.call("alice", "DELETE", &tag, None, Vec::new(), &[])
            .await
            .status,
        204
    );
    assert_eq!(
        h.call("alice", "DELETE", &tag, None, Vec::new(), &[])
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn glance_direct_import_and_web_download_filtering() {
    let h = Harness::open("import").await;
    let id = h
        .create(
            "alice",
            json!({"disk_format": "qcow2", "container_format": "bare"}),
        )
        .await;
    let import = format!("/v2/images/{id}/import");
    let body = json!({"method": {"name": "glance-direct"}});
    assert_eq!(
        h.post("alice", &import, body.clone()).await.status,
        409,
        "not staged yet"
    );
    let staged = h
        .call(
            "alice",
            "PUT",
            &format!("/v2/images/{id}/stage"),
            Some("application/octet-stream"),
            qcow2(&h.dir, &[]),
            &[],
        )
        .await;
    assert_eq!(staged.status, 204);
    assert_eq!(
        h.get("alice", &format!("/v2/images/{id}")).await.json()["status"],
        "uploading"
    );
    assert_eq!(h.post("alice", &import, json!({})).await.status, 400);
    assert_eq!(
        h.post("alice", &import, json!({"method": {"name": "nope"}}))
            .await
            .status,
        400
    );
    assert_eq!(h.post("alice", &import, body).await.status, 202);
    let mut image = Value::Null;
    for _ in 0..100 {
        image = h.get("alice", &format!("/v2/images/{id}")).await.json();
        if image["status"] == "active" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(image["status"], "active");
    assert_eq!(image["virtual_size"], 1 << 20);
    assert_eq!(image["os_glance_failed_import"], "");
    let tasks = h
        .get("alice", &format!("/v2/images/{id}/tasks"))
        .await
        .json();
    assert_eq!(tasks["tasks"][0]["status"], "success");
    assert_eq!(
        tasks["tasks"][0]["input"]["import_req"]["method"]["name"],
        "glance-direct"
    );

    let id = h
        .create(
            "alice",
            json!({"disk_format": "raw", "container_format": "bare"}),
        )
        .await;
    let reply = h
        .post(
            "alice",
            &format!("/v2/images/{id}/import"),
            json!({"method": {"name": "web-download", "uri": "http://does-not.exist/x.img"}}),
        )
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("does not pass filtering")
    );
    let reply = h
        .post(
            "alice",
            &format!("/v2/images/{id}/import"),
            json!({"method": {"name": "web-download", "uri": "file:///etc/passwd"}}),
        )
        .await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn quotas_limit_image_count_and_bytes() {
    let h = Harness::open("quota").await;
    let mut config = h.config.clone();
    config.image.image_count_total = 2;
    config.image.image_size_total = 1000;
    let store = h.images.store.clone();
    let h = Harness::with(h.dir, config, store).await;
    let id = h
        .create("alice", serde_json::from_str(raw_image()).unwrap())
        .await;
    assert_eq!(h.upload("alice", &id, &[1u8; 1001]).await.status, 413);
    assert_eq!(
        h.get("alice", &format!("/v2/images/{id}")).await.json()["status"],
        "queued"
    );
    assert_eq!(h.upload("alice", &id, &[1u8; 600]).await.status, 204);
    let second = h
        .create("alice", serde_json::from_str(raw_image()).unwrap())
        .await;
    assert_eq!(h.upload("alice", &second, &[1u8; 600]).await.status, 413);
    assert_eq!(h.post("alice", "/v2/images", json!({})).await.status, 413);
    let usage = h.get("alice", "/v2/info/usage").await.json();
    assert_eq!(usage["usage"]["image_size_total"]["usage"], 600);
    assert!(h.data_files().len() == 1);
}

#[tokio::test]
async fn a_restart_rolls_back_interrupted_operations_and_removes_orphans() {
    let h = Harness::open("recover").await;
    let saving = h
        .create("alice", serde_json::from_str(raw_image()).unwrap())
        .await;
    let importing = h
        .create("alice", serde_json::from_str(raw_image()).unwrap())
        .await;
    let deleted = h
        .create("alice", serde_json::from_str(raw_image()).unwrap())
        .await;
    assert_eq!(h.upload("alice", &deleted, b"data").await.status, 204);
    // Simulate a crash: one upload in `saving` whose data reached the store but not the
    // database, an import in progress with its data staged, a delete that marked the row but
    // did not remove the data.
    let store = h.images.store.clone();
    let mut image = crate::db::get_image(&store, &saving)
        .await
        .unwrap()
        .unwrap();
    image.status = "saving".into();
    crate::db::save_image(&store, &mut image, "queued")
        .await
        .unwrap();
    let data_dir = &h.config.image.filesystem_store_datadir;
    std::fs::write(data_dir.join(&saving), b"half").unwrap();
    std::fs::write(data_dir.join(format!(".{saving}.123.tmp")), b"partial").unwrap();
    let mut image = crate::db::get_image(&store, &importing)
        .await
        .unwrap()
        .unwrap();
    image.status = "importing".into();
    image
        .properties
        .insert("os_glance_import_task".into(), "t".into());
    crate::db::save_image(&store, &mut image, "queued")
        .await
        .unwrap();
    std::fs::write(h.config.image.node_staging_dir.join(&importing), b"staged").unwrap();
    let converting = h
        .config
        .image
        .node_staging_dir
        .join(format!("{importing}.qcow2"));
    std::fs::write(&converting, b"half converted").unwrap();
    crate::db::mark_deleted(&store, &deleted, "2026-01-01T00:00:00Z")
        .await
        .unwrap();

    let h = h.restart().await;
    let show = |id: String| {
        let h = &h;
        async move { h.get("alice", &format!("/v2/images/{id}")).await.json() }
    };
    assert_eq!(show(saving.clone()).await["status"], "queued");
    let image = show(importing.clone()).await;
    assert_eq!(
        image["status"], "uploading",
        "staged data kept: the import can be retried"
    );
    assert_eq!(image["os_glance_failed_import"], "file");
    assert!(image.get("os_glance_import_task").is_none());
    assert!(h.data_files().is_empty(), "{:?}", h.data_files());
    assert!(
        !converting.exists(),
        "an interrupted conversion's output is removed"
    );
    let reply = h
        .post(
            "alice",
            &format!("/v2/images/{importing}/import"),
            json!({"method": {"name": "glance-direct"}}),
        )
        .await;
    assert_eq!(reply.status, 202);
}

#[tokio::test]
async fn discovery_schemas_and_unknown_paths() {
    let h = Harness::open("discovery").await;
    let reply = h.call("", "GET", "/", None, Vec::new(), &[]).await;
    assert_eq!(reply.status, 300);
    let versions = reply.json();
    assert!(
        versions["versions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["status"] == "CURRENT")
    );
    assert_eq!(
        h.call("", "GET", "/images", None, Vec::new(), &[])
            .await
            .status,
        300
    );
    assert_eq!(h.get("alice", "/v2/nothing").await.status, 404);
    assert_eq!(
        h.get("alice", "/v2/schemas/image").await.json()["name"],
        "image"
    );
    assert_eq!(
        h.get("alice", "/v2/schemas/members").await.json()["name"],
        "members"
    );
    assert_eq!(
        h.get("alice", "/v2/info/import").await.json()["import-methods"]["value"],
        json!(["glance-direct", "web-download"])
    );
    assert_eq!(h.get("alice", "/v2/info/stores").await.status, 404);
    assert_eq!(
        h.call("nobody", "GET", "/v2/images", None, Vec::new(), &[])
            .await
            .status,
        401
    );
    let reply = h
        .get("alice", &format!("/v2/images/{}", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["code"], "404 Not Found");
    let _ = StatusCode::OK;
}

#[tokio::test]
async fn concurrent_whole_record_writes_do_not_lose_updates() {
    let h = Harness::open("generation").await;
    let id = h.create("alice", json!({"name": "a"})).await;
    let store = h.images.store.clone();
    let mut first = crate::db::get_image(&store, &id).await.unwrap().unwrap();
    let mut second = first.clone();
    first.name = Some("first".into());
    second.name = Some("second".into());
    assert!(
        crate::db::save_image(&store, &mut first, "queued")
            .await
            .unwrap()
    );
    assert!(
        !crate::db::save_image(&store, &mut second, "queued")
            .await
            .unwrap()
    );
    // A data-flow write keeps the name a concurrent update set.
    let mut state = second.clone();
    state.status = "saving".into();
    assert!(
        crate::db::save_data_state(&store, &state, "queued")
            .await
            .unwrap()
    );
    let image = crate::db::get_image(&store, &id).await.unwrap().unwrap();
    assert_eq!(
        (image.name.as_deref(), image.status.as_str()),
        (Some("first"), "saving")
    );
}

async fn wait_for_status(h: &Harness, id: &str, wanted: &[&str]) -> Value {
    for _ in 0..200 {
        let image = h.get("alice", &format!("/v2/images/{id}")).await.json();
        if wanted.iter().any(|w| image["status"] == *w) && image["os_glance_import_task"].is_null()
        {
            return image;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("image {id} never reached {wanted:?}");
}

#[tokio::test]
async fn web_download_follows_redirects_and_fails_back_to_queued() {
    use axum::routing::get;
    let h = Harness::open("web").await;
    let mut config = h.config.clone();
    config.image.web_download_allowed_ports = Vec::new();
    let store = h.images.store.clone();
    let h = Harness::with(h.dir, config.clone(), store.clone()).await;
    // Loopback is internal: refused unless the host is allowed by name.
    let id = h
        .create("alice", serde_json::from_str(raw_image()).unwrap())
        .await;
    for uri in [
        "http://127.0.0.1:8080/x",
        "http://localhost/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
    ] {
        let body = json!({"method": {"name": "web-download", "uri": uri}});
        let reply = h
            .post("alice", &format!("/v2/images/{id}/import"), body)
            .await;
        assert_eq!(reply.status, 400, "{uri}");
    }
    config.image.web_download_allowed_hosts = vec!["127.0.0.1".into()];
    let h = Harness::with(h.dir, config, store).await;
    let data: Vec<u8> = (0..70_000u32).map(|n| (n % 13) as u8).collect();
    let served = data.clone();
    let app = axum::Router::new()
        .route("/img", get(move || async move { served.clone() }))
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [("location", "/img")]) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let id = h
        .create("alice", serde_json::from_str(raw_image()).unwrap())
        .await;
    let uri = format!("http://127.0.0.1:{port}/redirect");
    let body = json!({"method": {"name": "web-download", "uri": uri}});
    let reply = h
        .post("alice", &format!("/v2/images/{id}/import"), body)
        .await;
    assert_eq!(reply.status, 202, "{:?}", reply.json());
    let image = wait_for_status(&h, &id, &["active", "queued"]).await;
    assert_eq!(image["status"], "active");
    assert_eq!(image["size"], 70_000);
    assert_eq!(
        h.get("alice", &format!("/v2/images/{id}/file")).await.bytes,
        data
    );

    let id = h
        .create("alice", serde_json::from_str(raw_image()).unwrap())
        .await;
    let uri = format!("http://127.0.0.1:{port}/missing");
    let body = json!({"method": {"name": "web-download", "uri": uri}});
    assert_eq!(
        h.post("alice", &format!("/v2/images/{id}/import"), body)
            .await
            .status,
        202
    );
    let image = wait_for_status(&h, &id, &["queued"]).await;
    assert_eq!(image["os_glance_failed_import"], "file");
    // The task's outcome is recorded just after the image's status.
    let mut tasks = Value::Null;
    for _ in 0..200 {
        tasks = h
            .get("alice", &format!("/v2/images/{id}/tasks"))
            .await
            .json();
        if tasks["tasks"][0]["status"] != "processing" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(tasks["tasks"][0]["status"], "failure");
    assert!(
        tasks["tasks"][0]["message"]
            .as_str()
            .unwrap()
            .contains("404")
    );
}

#[tokio::test]
async fn import_converts_to_the_configured_format_after_inspection() {
    let h = Harness::open("convert").await;
    let mut config = h.config.clone();
    config.image.import_convert_to = "raw".into();
    let store = h.images.store.clone();
    let h = Harness::with(h.dir, config, store).await;
    let stage = |id: &str, data: Vec<u8>| {
        let path = format!("/v2/images/{id}/stage");
        let h = &h;
        async move {
            h.call(
                "alice",
                "PUT",
                &path,
                Some("application/octet-stream"),
                data,
                &[],
            )
            .await
            .status
        }
    };
    let import = json!({"method": {"name": "glance-direct"}});
    let id = h
        .create(
            "alice",
            json!({"disk_format": "qcow2", "container_format": "bare"}),
        )
        .await;
    assert_eq!(stage(&id, qcow2(&h.dir, &[])).await, 204);
    let path = format!("/v2/images/{id}/import");
    assert_eq!(h.post("alice", &path, import.clone()).await.status, 202);
    let image = wait_for_status(&h, &id, &["active", "queued"]).await;
    assert_eq!(image["status"], "active");
    assert_eq!(image["disk_format"], "raw");
    assert_eq!(image["virtual_size"], 1 << 20);
    let data = h.get("alice", &format!("/v2/images/{id}/file")).await.bytes;
    assert_eq!(data, vec![0u8; 1 << 20]);

    // A qcow2 with a backing file declared in a non-bare container is still refused before
    // qemu-img sees it.
    let id = h
        .create(
            "alice",
            json!({"disk_format": "qcow2", "container_format": "ova"}),
        )
        .await;
    let evil = qcow2(&h.dir, &["-b", "/etc/passwd", "-F", "raw"]);
    assert_eq!(stage(&id, evil).await, 204);
    let path = format!("/v2/images/{id}/import");
    assert_eq!(h.post("alice", &path, import).await.status, 202);
    let image = wait_for_status(&h, &id, &["active", "queued"]).await;
    assert_eq!(image["status"], "queued");
    let tasks = h
        .get("alice", &format!("/v2/images/{id}/tasks"))
        .await
        .json();
    let message = tasks["tasks"][0]["message"].as_str().unwrap();
    assert!(message.contains("backing file"), "{message}");
}
