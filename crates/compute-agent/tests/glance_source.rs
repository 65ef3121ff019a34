//! `GlanceImageSource` and `PasswordTokenSource` against a small stand-in for Keystone and
//! Glance: tokens are cached until five minutes before they expire, a 401 from the image service
//! makes the agent authenticate again once, and the data is checked against `Content-MD5`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ferrostack_compute_agent::{
    GlanceImageSource, ImageNotFound, ImageSource, PasswordTokenSource, TokenSource,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const DATA: &[u8] = b"the image bytes\n";

#[derive(Default)]
struct Stand {
    auths: AtomicUsize,
    downloads: AtomicUsize,
    valid: Mutex<HashSet<String>>,
    /// Minutes until issued tokens expire.
    lifetime_minutes: AtomicUsize,
    /// Refuse every token (a broken identity/image pairing).
    refuse_all: std::sync::atomic::AtomicBool,
}

async fn issue(State(stand): State<Arc<Stand>>, body: Bytes) -> Response {
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let user = &body["auth"]["identity"]["password"]["user"];
    let scope = &body["auth"]["scope"]["project"];
    if user["password"] != "secret"
        || user["name"] != "nova"
        || user["domain"]["name"] != "Default"
        || scope["name"] != "service"
        || scope["domain"]["name"] != "Default"
    {
        return (StatusCode::UNAUTHORIZED, "{\"error\": {\"code\": 401}}").into_response();
    }
    let n = stand.auths.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("token-{n}");
    stand.valid.lock().unwrap().insert(token.clone());
    let minutes = stand.lifetime_minutes.load(Ordering::SeqCst) as i64;
    let expires = chrono::Utc::now() + chrono::TimeDelta::minutes(minutes);
    let body = serde_json::json!({"token": {
        "expires_at": expires.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "methods": ["password"],
    }});
    (
        StatusCode::CREATED,
        [("x-subject-token", token)],
        serde_json::to_string(&body).unwrap(),
    )
        .into_response()
}

async fn file(
    State(stand): State<Arc<Stand>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get("x-auth-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if stand.refuse_all.load(Ordering::SeqCst) || !stand.valid.lock().unwrap().contains(token) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    stand.downloads.fetch_add(1, Ordering::SeqCst);
    let md5 = openssl::hash::hash(openssl::hash::MessageDigest::md5(), DATA).unwrap();
    let hex: String = md5.iter().map(|b| format!("{b:02x}")).collect();
    match id.as_str() {
        "good" => ([("content-md5", hex)], DATA).into_response(),
        "no-checksum" => DATA.into_response(),
        "corrupt" => ([("content-md5", hex)], &b"other bytes"[..]).into_response(),
        "queued" => StatusCode::NO_CONTENT.into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn serve() -> (Arc<Stand>, String) {
    let stand = Arc::new(Stand::default());
    stand.lifetime_minutes.store(60, Ordering::SeqCst);
    let app = Router::new()
        .route("/identity/v3/auth/tokens", post(issue))
        .route("/image/v2/images/{id}/file", get(file))
        .with_state(stand.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (stand, base)
}

fn tokens(base: &str, password: &str) -> Arc<PasswordTokenSource> {
    Arc::new(PasswordTokenSource::new(
        &format!("{base}/identity/"),
        "nova",
        password,
        "service",
        "Default",
        "Default",
    ))
}

fn temp_file(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("agent-glance-{tag}-{}", uuid::Uuid::new_v4()))
}

#[tokio::test]
async fn a_token_is_reused_until_the_image_service_refuses_it() {
    let (stand, base) = serve().await;
    let glance = GlanceImageSource::new(&format!("{base}/image"), tokens(&base, "secret"));
    let dest = temp_file("cached");
    glance.fetch("good", &dest).await.unwrap();
    glance.fetch("no-checksum", &dest).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), DATA);
    assert_eq!(stand.auths.load(Ordering::SeqCst), 1, "one authentication");
    // Revoked (or expired early): the download is refused once, then authenticated again.
    stand.valid.lock().unwrap().clear();
    glance.fetch("good", &dest).await.unwrap();
    assert_eq!(stand.auths.load(Ordering::SeqCst), 2);
    assert_eq!(stand.downloads.load(Ordering::SeqCst), 3);
    // A service that refuses every token: one new authentication, then the error.
    stand.refuse_all.store(true, Ordering::SeqCst);
    let e = glance.fetch("good", &dest).await.unwrap_err();
    assert!(e.to_string().contains("401"), "{e:#}");
    assert_eq!(stand.auths.load(Ordering::SeqCst), 3);
    let _ = std::fs::remove_file(&dest);
}

#[tokio::test]
async fn a_token_close_to_its_expiry_is_renewed() {
    let (stand, base) = serve().await;
    let source = tokens(&base, "secret");
    stand.lifetime_minutes.store(4, Ordering::SeqCst);
    let first = source.token().await.unwrap();
    let second = source.token().await.unwrap();
    assert_ne!(
        first, second,
        "a token expiring within 5 minutes is not reused"
    );
    stand.lifetime_minutes.store(6, Ordering::SeqCst);
    let third = source.token().await.unwrap();
    assert_eq!(source.token().await.unwrap(), third);
    assert_eq!(stand.auths.load(Ordering::SeqCst), 3);
    // Concurrent callers share one authentication.
    source.invalidate(&third).await;
    let (a, b) = tokio::join!(source.token(), source.token());
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(stand.auths.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn bad_credentials_missing_images_and_corrupt_data_are_errors() {
    let (_stand, base) = serve().await;
    let e = tokens(&base, "wrong").token().await.unwrap_err();
    assert!(e.to_string().contains("credentials"), "{e:#}");
    let glance = GlanceImageSource::new(&format!("{base}/image"), tokens(&base, "secret"));
    let dest = temp_file("errors");
    for missing in ["nope", "queued"] {
        let e = glance.fetch(missing, &dest).await.unwrap_err();
        assert!(
            e.downcast_ref::<ImageNotFound>().is_some(),
            "{missing}: {e:#}"
        );
    }
    let e = glance.fetch("corrupt", &dest).await.unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e:#}");
    assert!(e.downcast_ref::<ImageNotFound>().is_none());
    let _ = std::fs::remove_file(&dest);
}
