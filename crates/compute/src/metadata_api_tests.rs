//! The metadata service in process: signed requests against instances written straight into a
//! fresh store (SQLite, or PostgreSQL with `FERROSTACK_TEST_DATABASE_URL`), plus the pure pieces
//! (path normalisation, EC2 listings, webob error forms) checked against Python's output.

use super::*;
use crate::db::instances::{
    FlavorCopy, Instance, InstanceData, KeyCopy, NewAction, ServerQuota, create_instances,
    mark_deleted,
};
use crate::metadata::Key;
use axum::body::to_bytes;
use axum::http::Request;
use base64::Engine;
use serde_json::json;
use tower::ServiceExt;

const SECRET: &str = "s3cret";
const PROJECT: &str = "5d1c3a5b0c7c4c6f8e0d9b1a2c3d4e5f";
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB0tnW3Pq9 me@host";

struct NoImages;

#[async_trait::async_trait]
impl crate::service::ImageCatalog for NoImages {
    async fn image(
        &self,
        _id: &str,
        _project: Option<&str>,
        _admin: bool,
    ) -> anyhow::Result<Option<crate::service::ImageInfo>> {
        Ok(None)
    }
}

async fn compute(name: &str) -> Arc<Compute> {
    let store = ferrostack_store::test_store(&format!("metadata-{name}"))
        .await
        .unwrap();
    let placement = ferrostack_placement::Placement::open(store.clone(), "http://cloud:8080")
        .await
        .unwrap();
    Compute::open(
        store,
        "http://cloud:8080",
        placement,
        ferrostack_bus::InProcessBus::new(),
        Arc::new(NoImages),
        ferrostack_config::ComputeConfig::default(),
    )
    .await
    .unwrap()
}

/// Writes a live instance of [`PROJECT`]; returns its uuid.
async fn add_instance(c: &Compute, hostname: &str, key: bool, user_data: Option<&[u8]>) -> String {
    let uuid = uuid::Uuid::new_v4().to_string();
    let now = "2026-01-02T03:04:05Z";
    let data = InstanceData {
        display_name: format!("{hostname} server"),
        hostname: hostname.into(),
        reservation_id: "r-abcdef12".into(),
        flavor: FlavorCopy {
            flavorid: "1".into(),
            name: "m1.tiny".into(),
            vcpus: 1,
            memory_mb: 512,
            root_gb: 1,
            ..Default::default()
        },
        key_name: key.then(|| "mykey".to_string()),
        keys: if key {
            vec![KeyCopy {
                name: "mykey".into(),
                key_type: "ssh".into(),
                public_key: KEY.into(),
            }]
        } else {
            Vec::new()
        },
        user_data: user_data.map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
        availability_zone: Some("nova".into()),
        metadata: [("role".to_string(), "web".to_string())].into(),
        ..Default::default()
    };
    let mut rows = [Instance {
        id: 0,
        uuid: uuid.clone(),
        project_id: PROJECT.into(),
        user_id: "u1".into(),
        host: Some("compute-1".into()),
        vm_state: crate::states::vm::ACTIVE.into(),
        task_state: None,
        power_state: 1,
        deleted: false,
        created_at: now.into(),
        updated_at: now.into(),
        launched_at: Some(now.into()),
        deleted_at: None,
        generation: 0,
        data,
    }];
    let unlimited = ServerQuota {
        instances: -1,
        cores: -1,
        ram: -1,
    };
    let action = NewAction {
        action: "create",
        request_id: "req-metadata-test",
        user_id: "u1",
        project_id: PROJECT,
        now,
    };
    create_instances(&c.store, &mut rows, unlimited, None, &action)
        .await
        .unwrap()
        .unwrap();
    uuid
}

struct Got {
    status: u16,
    content_type: String,
    body: Vec<u8>,
    headers: HeaderMap,
}

impl Got {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

async fn send(router: &Router, method: &str, path: &str, headers: &[(&str, &str)]) -> Got {
    send_body(router, method, path, headers, Vec::new()).await
}

async fn send_body(
    router: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Got {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    Got {
        status,
        content_type,
        body,
        headers,
    }
}

/// A GET as the metadata proxy sends it for `uuid`.
async fn get(router: &Router, uuid: &str, path: &str) -> Got {
    let signature = sign_instance_id(SECRET, uuid);
    send(
        router,
        "GET",
        path,
        &[
            ("x-instance-id", uuid),
            ("x-tenant-id", PROJECT),
            ("x-instance-id-signature", &signature),
            ("x-forwarded-for", "10.0.0.5"),
        ],
    )
    .await
}

fn plain_error(status: &str, explanation: &str) -> String {
    format!("{status}\n\n{explanation}\n\n   ")
}

#[test]
fn signature_is_hex_hmac_sha256_like_python() {
    // hmac.new(b"secret", b"6f1a...0001", hashlib.sha256).hexdigest()
    assert_eq!(
        sign_instance_id("secret", "6f1a0c1e-0000-4000-8000-000000000001"),
        "a5d5fac50e477068449850cc8e6cea557b96ea0ebf8aad30d71444105e71c49a"
    );
    // Nova's default secret is empty.
    assert_eq!(
        sign_instance_id("", "abc"),
        "fd7adb152c05ef80dccf50a1fa4c05d5a3ec6da95575fc312ae7c5d091836351"
    );
    // Keys of one block, and longer ones (hashed first).
    assert_eq!(
        sign_instance_id(&"k".repeat(64), "abc"),
        "ae0c0e4a2340cf50185eb46aaa8723f4769153661612e212fb0d1fa3170c6202"
    );
    assert_eq!(
        sign_instance_id(&"k".repeat(100), "abc"),
        "b58b2b694fdba0dd76da3ebe99174f728d327560f36ece224e90867972479922"
    );
}

#[test]
fn normpath_matches_posixpath() {
    for (path, want) in [
        ("/a//b/", "/a/b"),
        ("//a", "//a"),
        ("///a", "/a"),
        ("/a/./b/../c", "/a/c"),
        ("/..", "/"),
        ("/", "/"),
        ("//", "//"),
        ("/openstack//latest/", "/openstack/latest"),
        ("a/b", "a/b"),
        ("/a/..", "/"),
        ("/../x", "/x"),
        ("../a/../..", "../.."),
        ("", "."),
    ] {
        assert_eq!(normpath(path), want, "normpath({path:?})");
    }
    assert_eq!(percent_decode("/open%73tack/%zz%4"), "/openstack/%zz%4");
}

#[test]
fn ec2_md_print_follows_nova() {
    let tree = json!({
        "b": "x",
        "a": {"k": 1},
        "public-keys": {"0": {"_name": "0=mykey", "openssh-key": "ssh"}},
        "_name": "hidden",
    });
    assert_eq!(ec2_md_print(&tree), "a/\nb\npublic-keys/");
    assert_eq!(ec2_md_print(&tree["public-keys"]), "0=mykey");
    assert_eq!(ec2_md_print(&tree["public-keys"]["0"]), "openssh-key");
    assert_eq!(ec2_md_print(&json!(["default", "web"])), "default\nweb");
    assert_eq!(ec2_md_print(&json!(7)), "7");
    assert_eq!(ec2_md_print(&Value::Null), "None");
    assert_eq!(ec2_md_print(&json!({})), "");
}

#[test]
fn json_is_written_like_python() {
    // json.dumps({"b": "é\x7f😀", "a": [1, {}]}) with the keys sorted
    let value = json!({"b": "é\u{7f}😀", "a": [1, {}]});
    assert_eq!(
        String::from_utf8(python_json(&value)).unwrap(),
        r#"{"a": [1, {}], "b": "\u00e9\u007f\ud83d\ude00"}"#
    );
}

#[test]
fn errors_take_webob_forms() {
    let e = webob_error(StatusCode::NOT_FOUND, NOT_FOUND, None);
    assert_eq!(e.content_type, "text/plain; charset=UTF-8");
    assert_eq!(
        e.body,
        b"404 Not Found\n\nThe resource could not be found.\n\n   "
    );
    let e = webob_error(StatusCode::NOT_FOUND, NOT_FOUND, Some("*/*"));
    assert_eq!(e.content_type, "text/html; charset=UTF-8");
    assert_eq!(
        String::from_utf8(e.body).unwrap(),
        "<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  \
         <h1>404 Not Found</h1>\n  The resource could not be found.<br /><br />\n\n\n\n \
         </body>\n</html>"
    );
    for accept in ["application/json", "application/json, text/html;q=0.5"] {
        let e = webob_error(StatusCode::NOT_FOUND, NOT_FOUND, Some(accept));
        assert_eq!(e.content_type, "application/json");
        assert_eq!(
            String::from_utf8(e.body).unwrap(),
            r#"{"message": "The resource could not be found.<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"}"#
        );
    }
    assert_eq!(error_format(Some("text/plain")), ErrorFormat::Plain);
    assert_eq!(error_format(Some("")), ErrorFormat::Plain);
    assert_eq!(
        error_format(Some("text/*;q=0.2, application/json;q=0.1")),
        ErrorFormat::Html
    );
    assert_eq!(
        error_format(Some("*/*;q=0, application/json")),
        ErrorFormat::Json
    );
}

#[test]
fn ec2_tree_follows_the_version() {
    let md = InstanceMetadata {
        hostname: "web".into(),
        keys: vec![Key {
            name: "k".into(),
            key_type: "ssh".into(),
            data: "ssh-rsa AAAA".into(),
        }],
        ..Default::default()
    };
    let old = ec2_meta_data(&md, "1.0", Some("10.0.0.9"));
    assert_eq!(old["local-ipv4"], "10.0.0.9");
    assert_eq!(old["public-keys"]["0"]["_name"], "0=k");
    for absent in [
        "local-hostname",
        "instance-type",
        "placement",
        "instance-action",
    ] {
        assert!(old.get(absent).is_none(), "{absent} at 1.0");
    }
    let mid = ec2_meta_data(&md, "2007-12-15", None);
    assert!(mid.get("block-device-mapping").is_some() && mid.get("placement").is_none());
    assert_eq!(mid["local-ipv4"], Value::Null);
    let latest = ec2_meta_data(&md, EC2_LATEST, None);
    assert_eq!(latest["instance-action"], "none");
    assert_eq!(
        lookup(&md, "/latest/meta-data/local-ipv4", "2026-01-01", None)
            .unwrap()
            .body,
        b"None"
    );
    // Future versions are hidden from the listing but can still be asked for.
    let listing = lookup(&md, "/openstack", "2020-01-01", None).unwrap();
    assert_eq!(
        String::from_utf8(listing.body).unwrap().lines().last(),
        Some("latest")
    );
    let listing = lookup(&md, "/openstack", "2020-01-01", None).unwrap().body;
    assert!(!String::from_utf8(listing).unwrap().contains("2020-10-14"));
    assert!(
        lookup(
            &md,
            "/openstack/2025-04-04/meta_data.json",
            "2020-01-01",
            None
        )
        .is_some()
    );
}

#[tokio::test]
async fn requests_must_be_signed_by_the_proxy() {
    let c = compute("signed").await;
    let uuid = add_instance(&c, "web", false, None).await;
    let router = router(c.clone(), SECRET.into());
    let signature = sign_instance_id(SECRET, &uuid);

    // The version list needs no identification.
    let root = send(&router, "GET", "/", &[]).await;
    assert_eq!(root.status, 200);
    assert_eq!(root.content_type, "text/plain; charset=UTF-8");
    assert_eq!(
        root.text(),
        "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n2008-02-01\n\
         2008-09-01\n2009-04-04\nlatest"
    );

    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[
                ("x-tenant-id", PROJECT),
                ("x-instance-id-signature", &signature),
            ],
            "X-Instance-ID header is missing from request.",
        ),
        (
            &[("x-instance-id", &uuid), ("x-tenant-id", PROJECT)],
            "X-Instance-ID-Signature header is missing from request.",
        ),
        (
            &[
                ("x-instance-id", &uuid),
                ("x-instance-id-signature", &signature),
            ],
            "X-Tenant-ID header is missing from request.",
        ),
        (
            &[
                ("x-instance-id", &uuid),
                ("x-instance-id", &uuid),
                ("x-tenant-id", PROJECT),
                ("x-instance-id-signature", &signature),
            ],
            "Multiple X-Instance-ID headers found within request.",
        ),
        (
            &[
                ("x-instance-id", &uuid),
                ("x-tenant-id", PROJECT),
                ("x-tenant-id", "other"),
                ("x-instance-id-signature", &signature),
            ],
            "Multiple X-Tenant-ID headers found within request.",
        ),
    ];
    for (headers, message) in cases {
        let got = send(&router, "GET", "/openstack", headers).await;
        assert_eq!(got.status, 400, "{message}");
        assert_eq!(got.content_type, "text/plain; charset=UTF-8");
        assert_eq!(got.text(), plain_error("400 Bad Request", message));
    }

    let forbidden = plain_error("403 Forbidden", "Invalid proxy request signature.");
    let other_secret = sign_instance_id("other", &uuid);
    for bad in ["", "00", &other_secret, &signature.to_uppercase()] {
        let got = send(
            &router,
            "GET",
            "/openstack",
            &[
                ("x-instance-id", &uuid),
                ("x-tenant-id", PROJECT),
                ("x-instance-id-signature", bad),
            ],
        )
        .await;
        assert_eq!(got.status, 403, "signature {bad:?}");
        assert_eq!(got.text(), forbidden);
    }

    let not_found = plain_error("404 Not Found", "The resource could not be found.");
    // Another project's tenant id, correctly signed.
    let got = send(
        &router,
        "GET",
        "/openstack",
        &[
            ("x-instance-id", &uuid),
            ("x-tenant-id", "someone-else"),
            ("x-instance-id-signature", &signature),
        ],
    )
    .await;
    assert_eq!((got.status, got.text()), (404, not_found.clone()));
    // An unknown instance.
    let ghost = uuid::Uuid::new_v4().to_string();
    assert_eq!(get(&router, &ghost, "/openstack").await.status, 404);
    // The right headers work, then stop working once the server is deleted.
    assert_eq!(get(&router, &uuid, "/openstack").await.status, 200);
    assert!(
        mark_deleted(&c.store, &uuid, "2026-01-03T00:00:00Z")
            .await
            .unwrap()
    );
    let got = get(&router, &uuid, "/openstack").await;
    assert_eq!((got.status, got.text()), (404, not_found));

    // A router with another secret refuses the same headers.
    let live = add_instance(&c, "db", false, None).await;
    let strict = super::router(c.clone(), "different".into());
    assert_eq!(get(&strict, &live, "/openstack").await.status, 403);
}

#[tokio::test]
async fn openstack_tree() {
    let c = compute("openstack").await;
    let with_key = add_instance(&c, "web", true, Some(b"#!/bin/sh\necho \xff hi\n")).await;
    let bare = add_instance(&c, "db", false, None).await;
    let router = router(c.clone(), SECRET.into());

    let versions = get(&router, &with_key, "/openstack").await;
    assert_eq!(versions.status, 200);
    assert_eq!(versions.content_type, "text/plain; charset=UTF-8");
    let mut expected: Vec<&str> = OPENSTACK_VERSIONS.to_vec();
    expected.push("latest");
    assert_eq!(versions.text(), expected.join("\n"));

    let latest = get(&router, &with_key, "/openstack/latest").await;
    assert_eq!(
        latest.text(),
        "meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json"
    );
    assert_eq!(
        get(&router, &bare, "/openstack/2012-08-10/").await.text(),
        "meta_data.json"
    );
    assert_eq!(
        get(&router, &bare, "/openstack/2015-10-15").await.text(),
        "meta_data.json\npassword\nvendor_data.json\nnetwork_data.json"
    );

    let md = get(&router, &with_key, "/openstack/latest/meta_data.json").await;
    assert_eq!(md.status, 200);
    assert_eq!(md.content_type, "application/json");
    assert!(md.text().contains(&format!("\"uuid\": \"{with_key}\"")));
    let doc = md.json();
    assert_eq!(doc["uuid"], with_key.as_str());
    assert_eq!(doc["hostname"], "web.novalocal");
    assert_eq!(doc["name"], "web server");
    assert_eq!(doc["project_id"], PROJECT);
    assert_eq!(doc["launch_index"], 0);
    assert_eq!(doc["availability_zone"], "nova");
    assert_eq!(doc["meta"], json!({"role": "web"}));
    assert_eq!(doc["public_keys"], json!({"mykey": KEY}));
    assert_eq!(
        doc["keys"],
        json!([{"name": "mykey", "type": "ssh", "data": KEY}])
    );
    assert_eq!(doc["devices"], json!([]));
    assert_eq!(doc["dedicated_cpus"], json!([]));
    let seed = doc["random_seed"].as_str().unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(seed)
            .unwrap()
            .len(),
        512
    );
    let again = get(&router, &with_key, "/openstack/latest/meta_data.json").await;
    assert_ne!(
        again.json()["random_seed"],
        doc["random_seed"],
        "random_seed is drawn per request"
    );

    let folsom = get(&router, &bare, "/openstack/2012-08-10/meta_data.json")
        .await
        .json();
    assert_eq!(folsom["uuid"], bare.as_str());
    for absent in [
        "project_id",
        "random_seed",
        "devices",
        "keys",
        "public_keys",
    ] {
        assert!(folsom.get(absent).is_none(), "{absent} at 2012-08-10");
    }
    let liberty = get(&router, &bare, "/openstack/2015-10-15/meta_data.json")
        .await
        .json();
    assert_eq!(liberty["project_id"], PROJECT);
    assert!(liberty.get("devices").is_none());

    let user_data = get(&router, &with_key, "/openstack/latest/user_data").await;
    assert_eq!(user_data.status, 200);
    assert_eq!(user_data.content_type, "text/plain; charset=UTF-8");
    assert_eq!(user_data.body, b"#!/bin/sh\necho \xff hi\n");
    let none = get(&router, &bare, "/openstack/latest/user_data").await;
    assert_eq!(none.status, 404);
    assert_eq!(
        none.text(),
        plain_error("404 Not Found", "The resource could not be found.")
    );

    let vendor = get(&router, &bare, "/openstack/latest/vendor_data.json").await;
    assert_eq!(
        (vendor.status, vendor.content_type.as_str()),
        (200, "application/json")
    );
    assert_eq!(vendor.text(), "{}");
    let vendor2 = get(&router, &bare, "/openstack/2016-10-06/vendor_data2.json").await;
    assert_eq!(vendor2.content_type, "application/json");
    assert_eq!(vendor2.text(), r#"{"static": {}}"#);
    assert_eq!(
        get(&router, &bare, "/openstack/2016-06-30/vendor_data2.json")
            .await
            .status,
        404
    );
    assert_eq!(
        get(&router, &bare, "/openstack/2013-04-04/vendor_data.json")
            .await
            .status,
        404
    );

    let network = get(&router, &bare, "/openstack/latest/network_data.json").await;
    assert_eq!(network.status, 200);
    assert_eq!(network.content_type, "text/plain; charset=UTF-8");
    assert!(network.json().is_object());

    let password = get(&router, &bare, "/openstack/latest/password").await;
    assert_eq!((password.status, password.body.len()), (200, 0));
    assert_eq!(
        get(&router, &bare, "/openstack/2012-08-10/password")
            .await
            .status,
        404
    );

    for missing in [
        "/openstack/2011-01-01",
        "/openstack/2011-01-01/meta_data.json",
        "/openstack/latest/nothing",
        "/openstack/latest/meta_data.json/uuid",
        "/openstack/content",
        "/openstack/content/0000",
    ] {
        assert_eq!(get(&router, &bare, missing).await.status, 404, "{missing}");
    }
}

#[tokio::test]
async fn ec2_tree() {
    let c = compute("ec2").await;
    let with_key = add_instance(&c, "web", true, Some(b"hello")).await;
    let bare = add_instance(&c, "db", false, None).await;
    let router = router(c.clone(), SECRET.into());

    assert_eq!(
        get(&router, &with_key, "/latest").await.text(),
        "meta-data/\nuser-data"
    );
    assert_eq!(get(&router, &bare, "/latest/").await.text(), "meta-data/");
    assert_eq!(
        get(&router, &with_key, "/latest/user-data").await.body,
        b"hello"
    );
    assert_eq!(get(&router, &bare, "/latest/user-data").await.status, 404);
    assert_eq!(
        get(&router, &bare, "/ec2").await.text(),
        get(&router, &bare, "/").await.text()
    );

    let listing = get(&router, &with_key, "/latest/meta-data/").await;
    assert_eq!(listing.status, 200);
    assert_eq!(listing.content_type, "text/plain; charset=UTF-8");
    assert_eq!(
        listing.text(),
        "ami-id\nami-launch-index\nami-manifest-path\nblock-device-mapping/\nhostname\n\
         instance-action\ninstance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\nplacement/\n\
         public-hostname\npublic-ipv4\npublic-keys/\nreservation-id\nsecurity-groups"
    );
    assert!(
        !get(&router, &bare, "/latest/meta-data")
            .await
            .text()
            .contains("public-keys")
    );
    assert_eq!(
        get(&router, &with_key, "/latest/meta-data/public-keys")
            .await
            .text(),
        "0=mykey"
    );
    assert_eq!(
        get(&router, &with_key, "/latest/meta-data/public-keys/0/")
            .await
            .text(),
        "openssh-key"
    );
    let key = get(
        &router,
        &with_key,
        "/2009-04-04/meta-data/public-keys/0/openssh-key",
    )
    .await;
    assert_eq!((key.status, key.text()), (200, KEY.to_string()));
    assert_eq!(
        get(
            &router,
            &bare,
            "/latest/meta-data/public-keys/0/openssh-key"
        )
        .await
        .status,
        404
    );

    let inst = crate::db::instances::instance(&c.store, &with_key)
        .await
        .unwrap()
        .unwrap();
    for (path, want) in [
        ("instance-id", format!("i-{:08x}", inst.id)),
        ("hostname", "web.novalocal".into()),
        ("local-hostname", "web.novalocal".into()),
        ("instance-type", "m1.tiny".into()),
        ("ami-launch-index", "0".into()),
        ("reservation-id", "r-abcdef12".into()),
        ("placement/", "availability-zone".into()),
        ("placement/availability-zone", "nova".into()),
        ("block-device-mapping", "ami\nroot".into()),
        ("block-device-mapping/root", "/dev/vda".into()),
        ("instance-action", "none".into()),
        ("public-ipv4", "".into()),
        ("local-ipv4", "10.0.0.5".into()),
    ] {
        let got = get(&router, &with_key, &format!("/latest/meta-data/{path}")).await;
        assert_eq!((got.status, got.text()), (200, want), "{path}");
    }

    let old = get(&router, &with_key, "/1.0/meta-data").await.text();
    assert!(old.contains("instance-id") && !old.contains("placement/"));
    assert!(!old.contains("local-hostname"));
    assert_eq!(
        get(
            &router,
            &with_key,
            "/2008-02-01/meta-data/placement/availability-zone"
        )
        .await
        .text(),
        "nova"
    );
    for missing in [
        "/2010-01-01/meta-data",
        "/latest/meta-data/nothing",
        "/latest/meta-data/hostname/more",
        "/latest/meta-data/security-groups/default",
        "/latest/other",
        "/1.0/meta-data/placement",
    ] {
        assert_eq!(
            get(&router, &with_key, missing).await.status,
            404,
            "{missing}"
        );
    }
}

#[tokio::test]
async fn paths_are_normalised_and_methods_limited() {
    let c = compute("paths").await;
    let uuid = add_instance(&c, "web", true, None).await;
    let router = router(c.clone(), SECRET.into());

    let md = get(&router, &uuid, "/openstack/latest/meta_data.json")
        .await
        .json();
    for path in [
        "/openstack//latest/meta_data.json",
        "/openstack/latest/./meta_data.json/",
        "/openstack/2012-08-10/../latest/meta_data.json",
        "/openstack/latest/meta%5Fdata.json",
    ] {
        let got = get(&router, &uuid, path).await;
        assert_eq!(got.status, 200, "{path}");
        assert_eq!(got.json()["uuid"], md["uuid"], "{path}");
    }
    assert_eq!(
        get(&router, &uuid, "/latest/meta-data//hostname/")
            .await
            .text(),
        "web.novalocal"
    );
    assert_eq!(
        get(&router, &uuid, "/openstack/latest//").await.text(),
        get(&router, &uuid, "/openstack/latest").await.text()
    );
    // `posixpath.normpath` keeps exactly two leading slashes, which Nova then reads as the EC2
    // root.
    assert_eq!(
        get(&router, &uuid, "//openstack").await.text(),
        get(&router, &uuid, "/").await.text()
    );
    // The root needs no headers whatever its spelling.
    assert_eq!(send(&router, "GET", "/./", &[]).await.status, 200);

    // HEAD: the headers of the GET, no body.
    let full = get(&router, &uuid, "/latest/meta-data/hostname").await;
    let signature = sign_instance_id(SECRET, &uuid);
    let head = send(
        &router,
        "HEAD",
        "/latest/meta-data/hostname",
        &[
            ("x-instance-id", &uuid),
            ("x-tenant-id", PROJECT),
            ("x-instance-id-signature", &signature),
        ],
    )
    .await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.content_type, full.content_type);
    assert_eq!(
        head.headers[header::CONTENT_LENGTH],
        full.body.len().to_string().as_str()
    );

    let post = send(
        &router,
        "POST",
        "/openstack/latest/meta_data.json",
        &[
            ("x-instance-id", &uuid),
            ("x-tenant-id", PROJECT),
            ("x-instance-id-signature", &signature),
        ],
    )
    .await;
    assert_eq!(post.status, 405);
    assert_eq!(post.headers[header::ALLOW], "GET, HEAD");

    // Error bodies follow the client's Accept, as webob renders them.
    let html = send(
        &router,
        "GET",
        "/openstack",
        &[("accept", "*/*"), ("x-tenant-id", PROJECT)],
    )
    .await;
    assert_eq!(html.status, 400);
    assert_eq!(html.content_type, "text/html; charset=UTF-8");
    assert!(html.text().contains("<h1>400 Bad Request</h1>"));
    assert!(
        html.text()
            .contains("X-Instance-ID header is missing from request.")
    );
}

#[tokio::test]
async fn a_guest_stores_its_password_once() {
    let c = compute("password").await;
    let uuid = add_instance(&c, "web", false, None).await;
    let router = router(c.clone(), SECRET.into());
    let signature = sign_instance_id(SECRET, &uuid);
    let signed = [
        ("x-instance-id", uuid.as_str()),
        ("x-tenant-id", PROJECT),
        ("x-instance-id-signature", signature.as_str()),
    ];
    let post = |path: &'static str, body: &[u8]| {
        let body = body.to_vec();
        let router = router.clone();
        async move { send_body(&router, "POST", path, &signed, body).await }
    };

    // None yet; unsigned posts, too large ones and versions before 2013-04-04 store nothing.
    assert_eq!(
        get(&router, &uuid, "/openstack/latest/password").await.body,
        b""
    );
    let unsigned = send_body(
        &router,
        "POST",
        "/openstack/latest/password",
        &[],
        b"x".to_vec(),
    );
    assert_eq!(unsigned.await.status, 400);
    assert_eq!(
        post("/openstack/latest/password", &[b'a'; 257])
            .await
            .status,
        400
    );
    assert_eq!(
        post("/openstack/2012-08-10/password", b"x").await.status,
        405
    );

    let stored = post("/openstack/2013-04-04/password", b"c2VjcmV0").await;
    assert_eq!(stored.status, 200, "{}", stored.text());
    let read = get(&router, &uuid, "/openstack/latest/password").await;
    assert_eq!(read.text(), "c2VjcmV0");
    // A second password is refused until the first is cleared.
    let again = post("/openstack/latest/password", b"b3RoZXI=").await;
    assert_eq!(again.status, 409, "{}", again.text());
    let mut inst = crate::db::instances::instance(&c.store, &uuid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inst.data.password.as_deref(), Some("c2VjcmV0"));
    inst.data.password = None;
    let now = ferrostack_store::now_rfc3339();
    assert!(
        crate::db::instances::save_data(&c.store, &inst, &now)
            .await
            .unwrap()
    );
    assert_eq!(
        post("/openstack/latest/password", b"b3RoZXI=").await.status,
        200
    );
    let read = get(&router, &uuid, "/openstack/latest/password").await;
    assert_eq!(read.text(), "b3RoZXI=");
}
