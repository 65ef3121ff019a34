//! The noVNC console proxy (nova-novncproxy) on its own listener: serves the browser client
//! (Ferrostack's console page and the `@novnc/novnc` files under `core/` and `vendor/`) and
//! relays websockets to guests' VNC servers.
//!
//! A websocket on `/websockify` or `/` is relayed only after the token it carries (query
//! `token`, a `path` query holding `?token=`, or the `token`/`path` cookie, as
//! nova-novncproxy reads them) is valid — known, unexpired, its instance not deleted — and
//! the instance's host confirms that the token's address and port are still the guest's VNC
//! server. A browser's `Origin` must name this host with the console URL's scheme. A refusal is
//! an empty 403 (502 when the VNC server does not answer) that closes the connection; the
//! token is never logged. Binary frames go to the VNC server as they are, and what it sends
//! comes back one binary frame per read.

use crate::consoles;
use crate::service::Compute;
use axum::{
    Router,
    body::Bytes,
    extract::{
        Request, State,
        ws::{Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use futures_util::{SinkExt, StreamExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The console page: noVNC's RFB client on the websocket path of the console URL.
const PAGE: &str = include_str!("novnc_lite.html");

/// How long connecting to a guest's VNC server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often expired console tokens are removed.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct Proxy {
    compute: Arc<Compute>,
    /// Where the `@novnc/novnc` package is unpacked (`core/rfb.js` inside).
    web: Arc<PathBuf>,
}

/// The proxy's routes; `web` holds the noVNC client files.
pub fn router(compute: Arc<Compute>, web: PathBuf) -> Router {
    Router::new()
        .route("/", get(websocket_or_nothing))
        .route("/websockify", get(websocket_or_nothing))
        .route("/vnc_lite.html", get(page))
        .route("/vnc.html", get(page))
        .route("/vnc_auto.html", get(page))
        .fallback(asset)
        .with_state(Proxy {
            compute,
            web: Arc::new(web),
        })
}

/// Serves the proxy on `listener` until the task is dropped, removing expired console tokens
/// every minute meanwhile.
pub async fn run(listener: tokio::net::TcpListener, compute: Arc<Compute>, web: PathBuf) {
    if !client_present(&web) {
        tracing::warn!(
            web = %web.display(),
            "the noVNC client files are missing (core/rfb.js): the console page says so; \
             websockets are relayed all the same"
        );
    }
    let purge = {
        let compute = compute.clone();
        async move {
            let mut ticks = tokio::time::interval(PURGE_INTERVAL);
            loop {
                ticks.tick().await;
                match consoles::purge(&compute).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(removed = n, "expired console tokens removed"),
                    Err(e) => tracing::warn!("removing expired console tokens: {e}"),
                }
            }
        }
    };
    let app = router(compute, web);
    tokio::select! {
        result = axum::serve(listener, app) => {
            if let Err(e) = result {
                tracing::error!(error = %e, "the noVNC console proxy stopped");
            }
        }
        _ = purge => {}
    }
}

fn client_present(web: &Path) -> bool {
    web.join("core").join("rfb.js").is_file()
}

/// A refusal: an empty answer that closes the connection (no websocket, no data).
fn refuse(status: StatusCode) -> Response {
    (
        status,
        [(header::CONNECTION, HeaderValue::from_static("close"))],
    )
        .into_response()
}

/// `GET /` and `GET /websockify`: a websocket to relay, or nothing to see.
async fn websocket_or_nothing(
    State(proxy): State<Proxy>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return (StatusCode::NOT_FOUND, "No such file\n").into_response();
    };
    let Some(token) = token_of(&uri, &headers) else {
        tracing::info!("console connection refused: no token");
        return refuse(StatusCode::FORBIDDEN);
    };
    let base = consoles::base_url(&proxy.compute);
    if let Err(reason) = check_origin(&headers, &base) {
        tracing::info!(%reason, "console connection refused");
        return refuse(StatusCode::FORBIDDEN);
    }
    let auth = match consoles::validate(&proxy.compute, &token).await {
        Ok(Some(auth)) => auth,
        Ok(None) => {
            tracing::info!("console connection refused: invalid or expired token");
            return refuse(StatusCode::FORBIDDEN);
        }
        Err(e) => {
            tracing::error!("console token check: {e}");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let uuid = auth.instance_uuid.clone();
    if !consoles::still_current(&proxy.compute, &auth).await {
        tracing::info!(%uuid, "console connection refused: the token's VNC server is not the guest's now");
        return refuse(StatusCode::FORBIDDEN);
    }
    let Ok(port) = u16::try_from(auth.port) else {
        return refuse(StatusCode::FORBIDDEN);
    };
    let target = (auth.host.clone(), port);
    let vnc = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::warn!(%uuid, host = %target.0, port, "connecting to the VNC server: {e}");
            return refuse(StatusCode::BAD_GATEWAY);
        }
        Err(_) => {
            tracing::warn!(%uuid, host = %target.0, port, "connecting to the VNC server timed out");
            return refuse(StatusCode::BAD_GATEWAY);
        }
    };
    tracing::info!(%uuid, host = %target.0, port, "console connected");
    upgrade
        .protocols(["binary"])
        .on_upgrade(move |socket| relay(socket, vnc, uuid))
}

/// Copies binary frames to the VNC server and its bytes back as binary frames until either
/// side closes.
async fn relay(socket: WebSocket, vnc: TcpStream, uuid: String) {
    let started = Instant::now();
    let (mut to_client, mut from_client) = socket.split();
    let (mut from_vnc, mut to_vnc) = vnc.into_split();
    let (mut sent, mut received) = (0u64, 0u64);
    let upstream = async {
        while let Some(Ok(message)) = from_client.next().await {
            match message {
                Message::Binary(data) => {
                    if to_vnc.write_all(&data).await.is_err() {
                        break;
                    }
                    sent += data.len() as u64;
                }
                Message::Close(_) => break,
                // Pings are answered by the websocket layer; text frames (websockify's old
                // base64 mode) are not part of the binary protocol.
                _ => {}
            }
        }
        let _ = to_vnc.shutdown().await;
    };
    let downstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from_vnc.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let frame = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
                    if to_client.send(frame).await.is_err() {
                        break;
                    }
                    received += n as u64;
                }
            }
        }
        let _ = to_client.send(Message::Close(None)).await;
    };
    // Whichever side ends first ends the session.
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
    tracing::info!(
        %uuid,
        seconds = started.elapsed().as_secs(),
        client_bytes = sent,
        server_bytes = received,
        "console closed"
    );
}

/// The console token of a websocket request, where nova-novncproxy looks: the `token` query
/// parameter, a `path` query parameter holding `?token=...` (noVNC 1.1+ URLs), then the
/// `token` cookie (older noVNC) or a `path` cookie.
pub fn token_of(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    let query = uri.query().unwrap_or_default();
    if let Some(token) = token_in_pairs(query) {
        return Some(token);
    }
    for cookie_header in headers.get_all(header::COOKIE) {
        let Ok(text) = cookie_header.to_str() else {
            continue;
        };
        for cookie in text.split(';') {
            if let Some(token) = token_in_pairs(cookie.trim()) {
                return Some(token);
            }
        }
    }
    None
}

/// `token=...`, or `path=...` whose own query holds `token=...`, in URL-encoded pairs.
fn token_in_pairs(encoded: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(encoded.as_bytes())
        .into_owned()
        .collect();
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    if let Some(token) = value("token") {
        return Some(token);
    }
    let path = value("path")?;
    let inner = path.split_once('?').map_or(path.as_str(), |(_, q)| q);
    form_urlencoded::parse(inner.as_bytes())
        .find(|(k, v)| k == "token" && !v.is_empty())
        .map(|(_, v)| v.into_owned())
}

/// nova-novncproxy's origin check: a browser's `Origin` must name the host the request was
/// sent to, with the console URL's scheme (or the one `X-Forwarded-Proto` says a TLS proxy in
/// front received). No `Origin` is a non-browser client: fine.
pub fn check_origin(headers: &HeaderMap, base_url: &str) -> Result<(), &'static str> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().map_err(|_| "Origin header not valid")?;
    let (scheme, rest) = origin.split_once("://").ok_or("Origin header not valid")?;
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(scheme);
    let origin_host = host_of(rest);
    let expected_host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(host_of)
        .unwrap_or_default();
    if scheme.is_empty() || origin_host.is_empty() {
        return Err("Origin header not valid");
    }
    if !origin_host.eq_ignore_ascii_case(expected_host) {
        return Err("Origin header does not match this host");
    }
    let expected_scheme = base_url.split_once("://").map_or("http", |(s, _)| s);
    let allowed = match expected_scheme {
        "ws" => ["ws", "http"],
        "wss" => ["wss", "https"],
        other => [other, other],
    };
    if !allowed.contains(&scheme) {
        return Err("Origin header protocol does not match this host");
    }
    Ok(())
}

/// The host name of `host[:port][/...]` (brackets kept for IPv6).
fn host_of(authority: &str) -> &str {
    let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    }
}

/// The console page, or — without the noVNC client files — a page saying what is missing.
async fn page(State(proxy): State<Proxy>) -> Response {
    if client_present(&proxy.web) {
        return Html(PAGE).into_response();
    }
    let missing = proxy.web.join("core").join("rfb.js");
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Console unavailable</title></head><body>\n\
         <h1>The noVNC client is not installed</h1>\n\
         <p>This console proxy serves the noVNC browser client from <code>{dir}</code>, but \
         <code>{missing}</code> is missing. Unpack the <code>@novnc/novnc</code> npm package \
         there (<code>make up</code> does it: <code>ensure_novnc</code> in \
         <code>scripts/lib.sh</code>), or point <code>[compute] novncproxy_web</code> at a \
         copy. The websocket at <code>/websockify</code> works without it.</p>\n\
         </body></html>\n",
        dir = html_escape(&proxy.web.display().to_string()),
        missing = html_escape(&missing.display().to_string()),
    );
    (StatusCode::SERVICE_UNAVAILABLE, Html(body)).into_response()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A file of the noVNC client (`/core/rfb.js`, `/vendor/pako/...`).
async fn asset(State(proxy): State<Proxy>, request: Request) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let Some((file, content_type)) = asset_path(&proxy.web, request.uri().path()) else {
        return (StatusCode::NOT_FOUND, "No such file\n").into_response();
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "No such file\n").into_response(),
    }
}

/// The file under `web` that `path` names, and its content type: only plain names (no `..`,
/// no hidden files) with the extensions a browser client uses.
fn asset_path(web: &Path, path: &str) -> Option<(PathBuf, &'static str)> {
    let mut file = web.to_path_buf();
    let mut segments = 0;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let plain = !segment.starts_with('.')
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !plain {
            return None;
        }
        file.push(segment);
        segments += 1;
    }
    if segments == 0 {
        return None;
    }
    let content_type = match file.extension()?.to_str()? {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "mp3" => "audio/mpeg",
        "oga" => "audio/ogg",
        _ => return None,
    };
    Some((file, content_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_token_is_read_where_nova_novncproxy_reads_it() {
        let none = HeaderMap::new();
        let uri = |u: &str| u.parse::<Uri>().unwrap();
        assert_eq!(token_of(&uri("/?token=abc"), &none).as_deref(), Some("abc"));
        assert_eq!(
            token_of(&uri("/websockify?path=%3Ftoken%3Dxyz"), &none).as_deref(),
            Some("xyz")
        );
        // Tempest: the URL's query as the cookie, the path's query in the request line.
        let cookie = headers(&[("cookie", "path=%3Ftoken%3Dfromcookie")]);
        assert_eq!(
            token_of(&uri("/websockify"), &cookie).as_deref(),
            Some("fromcookie")
        );
        assert_eq!(
            token_of(&uri("/?token=query"), &cookie).as_deref(),
            Some("query")
        );
        let cookies = headers(&[("cookie", "a=1; token=t2"), ("cookie", "b=2")]);
        assert_eq!(
            token_of(&uri("/websockify"), &cookies).as_deref(),
            Some("t2")
        );
        assert_eq!(token_of(&uri("/websockify?token="), &none), None);
        assert_eq!(token_of(&uri("/websockify"), &none), None);
    }

    #[test]
    fn a_browser_origin_must_be_this_host_with_the_console_scheme() {
        let base = "http://cloud:6080/vnc_lite.html";
        assert_eq!(
            check_origin(&headers(&[("host", "cloud:6080")]), base),
            Ok(())
        );
        let same = headers(&[("host", "cloud:6080"), ("origin", "http://cloud:6080")]);
        assert_eq!(check_origin(&same, base), Ok(()));
        let other = headers(&[("host", "cloud:6080"), ("origin", "http://evil.example")]);
        assert!(check_origin(&other, base).is_err());
        let scheme = headers(&[("host", "cloud:6080"), ("origin", "https://cloud:6080")]);
        assert!(check_origin(&scheme, base).is_err());
        let behind_tls = headers(&[
            ("host", "cloud"),
            ("origin", "http://cloud"),
            ("x-forwarded-proto", "https"),
        ]);
        assert!(check_origin(&behind_tls, "https://cloud/vnc_lite.html").is_ok());
        assert!(check_origin(&headers(&[("origin", "null")]), base).is_err());
        let v6 = headers(&[("host", "[::1]:6080"), ("origin", "http://[::1]:6080")]);
        assert_eq!(check_origin(&v6, "http://[::1]:6080/"), Ok(()));
    }

    #[test]
    fn assets_are_plain_files_of_the_client_directory() {
        let web = Path::new("/srv/novnc");
        assert_eq!(
            asset_path(web, "/core/rfb.js"),
            Some((
                PathBuf::from("/srv/novnc/core/rfb.js"),
                "text/javascript; charset=utf-8"
            ))
        );
        assert_eq!(
            asset_path(web, "/vendor/pako/lib/zlib/inflate.js").map(|(p, _)| p),
            Some(PathBuf::from("/srv/novnc/vendor/pako/lib/zlib/inflate.js"))
        );
        for bad in [
            "/core/../../etc/passwd.js",
            "/.hidden.js",
            "/core/rfb.sh",
            "/",
            "/core/%2e%2e/x.js",
            "/core/rfb",
        ] {
            assert_eq!(asset_path(web, bad), None, "{bad}");
        }
    }
}
