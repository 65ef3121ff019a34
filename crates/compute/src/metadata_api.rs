//! The Nova metadata service that guests read on 169.254.169.254 (`nova/api/metadata/handler.py`,
//! `base.py`; design §10): the OpenStack tree under `/openstack`, the EC2 tree everywhere else.
//! It answers only requests that the per-network metadata proxy signed, Neutron style
//! (`X-Instance-ID`, `X-Tenant-ID`, `X-Instance-ID-Signature`). The documents come from
//! [`crate::metadata`], the same builder the config drive uses, so the two never disagree.
//!
//! Responses are what Nova sends. Paths are normalised with Python's `posixpath.normpath`, and the
//! content types and error bodies are webob's: `<status>\n\n<explanation>\n\n   ` as `text/plain`,
//! or the HTML or JSON form when the client's `Accept` prefers one of those. There is no cache:
//! each request reads the instance row, so `random_seed` is new every time, as in Nova.
//!
//! The router answers every path, so give it its own listener (Nova uses port 8775) or `nest` it;
//! do not `merge` it into another router.

use crate::metadata::{EC2_LATEST, InstanceMetadata, OPENSTACK_VERSIONS};
use crate::service::Compute;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use std::io::{self, Write};
use std::sync::Arc;

/// EC2 metadata versions, oldest first; `latest` stands for the last one ([`EC2_LATEST`]).
pub const EC2_VERSIONS: [&str; 9] = [
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    EC2_LATEST,
];

/// OpenStack versions that add files (`base.py`: GRIZZLY, HAVANA, NEWTON_TWO).
const GRIZZLY: &str = "2013-04-04";
const HAVANA: &str = "2013-10-17";
const LIBERTY: &str = "2015-10-15";
const NEWTON_TWO: &str = "2016-10-06";

/// Content types as webob renders them (it adds a charset to `text/*` only).
const TEXT_PLAIN: &str = "text/plain; charset=UTF-8";
const TEXT_HTML: &str = "text/html; charset=UTF-8";
const APPLICATION_JSON: &str = "application/json";

const UNKNOWN_ERROR: &str = "An unknown error has occurred. Please try your request again.";
const NOT_FOUND: &str = "The resource could not be found.";
const BAD_SIGNATURE: &str = "Invalid proxy request signature.";

#[derive(Clone)]
struct MetadataState {
    compute: Arc<Compute>,
    secret: Arc<str>,
}

/// The metadata service: GET and HEAD on every path of design §10.2, and POST of the guest's
/// password (`/openstack/<v>/password`, from 2013-04-04), for requests signed with
/// `shared_secret` (Nova's `[neutron] metadata_proxy_shared_secret`). Other methods get 405.
pub fn router(compute: Arc<Compute>, shared_secret: String) -> Router {
    Router::new().fallback(serve).with_state(MetadataState {
        compute,
        secret: shared_secret.into(),
    })
}

/// `X-Instance-ID-Signature` for `instance_id`: lowercase hex HMAC-SHA256 keyed with the shared
/// secret, computed as the metadata proxy (the network agent) computes it.
pub use ferrostack_network_agent::metadata::sign_instance_id;

/// A response before it becomes HTTP: status, content type, body.
#[derive(Debug, Clone, PartialEq)]
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: StatusCode::OK,
            content_type,
            body: body.into(),
        }
    }

    fn text(body: impl Into<Vec<u8>>) -> Reply {
        Reply::ok(TEXT_PLAIN, body)
    }

    fn json(value: &Value) -> Reply {
        Reply::ok(APPLICATION_JSON, python_json(value))
    }
}

async fn serve(
    State(state): State<MetadataState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let accept = accept.as_deref();
    let head = method == Method::HEAD;
    if method == Method::POST && is_password_path(&percent_decode(uri.path())) {
        return into_response(store_password(&state, &headers, accept, &body).await, false);
    }
    if method != Method::GET && !head {
        let explanation = format!("The method {method} is not allowed for this resource.");
        let mut response = into_response(
            webob_error(StatusCode::METHOD_NOT_ALLOWED, &explanation, accept),
            false,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    into_response(answer(&state, &uri, &headers, accept).await, head)
}

/// The most a guest may store as its password (Nova's `password.MAX_SIZE`).
const MAX_PASSWORD: usize = 256;

/// Whether `path` is `/openstack/<version>/password` at a version that has it.
fn is_password_path(path: &str) -> bool {
    let path = normpath(path);
    let tokens: Vec<&str> = path.split('/').skip(1).collect();
    match tokens.as_slice() {
        ["openstack", version, "password"] => {
            *version == "latest" || OPENSTACK_VERSIONS.contains(version) && *version >= GRIZZLY
        }
        _ => false,
    }
}

/// `password.handle_password` for POST: the guest stores its (encrypted) password once; a
/// second one is a conflict until the password is cleared through the compute API.
async fn store_password(
    state: &MetadataState,
    headers: &HeaderMap,
    accept: Option<&str>,
    body: &[u8],
) -> Reply {
    let md = match identify(state, headers, accept).await {
        Ok(md) => md,
        Err(reply) => return reply,
    };
    let conflict = || {
        webob_error(
            StatusCode::CONFLICT,
            "There was a conflict when trying to complete your request.",
            accept,
        )
    };
    if !md.password.is_empty() {
        return conflict();
    }
    if body.len() > MAX_PASSWORD {
        return webob_error(StatusCode::BAD_REQUEST, "Request is too large.", accept);
    }
    let Ok(password) = std::str::from_utf8(body) else {
        return webob_error(StatusCode::BAD_REQUEST, "The password is not text.", accept);
    };
    let store = &state.compute.store;
    for _ in 0..10 {
        let inst = match crate::db::instances::instance(store, &md.uuid).await {
            Ok(Some(inst)) if !inst.deleted => inst,
            Ok(_) => return webob_error(StatusCode::NOT_FOUND, NOT_FOUND, accept),
            Err(e) => {
                tracing::error!(error = %e, "storing a guest password");
                return webob_error(StatusCode::INTERNAL_SERVER_ERROR, UNKNOWN_ERROR, accept);
            }
        };
        if inst.data.password.as_deref().is_some_and(|p| !p.is_empty()) {
            return conflict();
        }
        let mut inst = inst;
        inst.data.password = Some(password.to_string());
        let now = ferrostack_store::now_rfc3339();
        match crate::db::instances::save_data(store, &inst, &now).await {
            Ok(true) => {
                tracing::info!(server = %md.uuid, "guest password stored");
                return Reply::ok(TEXT_HTML, Vec::new());
            }
            Ok(false) => continue,
            Err(e) => {
                tracing::error!(error = %e, "storing a guest password");
                return webob_error(StatusCode::INTERNAL_SERVER_ERROR, UNKNOWN_ERROR, accept);
            }
        }
    }
    webob_error(StatusCode::INTERNAL_SERVER_ERROR, UNKNOWN_ERROR, accept)
}

/// `MetadataRequestHandler.__call__`: the version list at `/` for anyone, everything else for
/// signed requests only.
async fn answer(
    state: &MetadataState,
    uri: &Uri,
    headers: &HeaderMap,
    accept: Option<&str>,
) -> Reply {
    let path = percent_decode(uri.path());
    if normpath(&path) == "/" {
        return Reply::text(listing(EC2_VERSIONS.iter().copied()));
    }
    let md = match identify(state, headers, accept).await {
        Ok(md) => md,
        Err(reply) => return reply,
    };
    let address = joined(headers, "x-forwarded-for");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    lookup(&md, &path, &today, address.as_deref())
        .unwrap_or_else(|| webob_error(StatusCode::NOT_FOUND, NOT_FOUND, accept))
}

fn into_response(reply: Reply, head: bool) -> Response {
    let length = reply.body.len();
    let mut response = Response::new(if head {
        Body::empty()
    } else {
        Body::from(reply.body)
    });
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(reply.content_type),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// Every value of header `name` (lossily decoded).
fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// Header `name` as a WSGI server hands it over: repeated values joined with commas.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let all = values(headers, name);
    (!all.is_empty()).then(|| all.join(","))
}

/// `_handle_instance_id_request`: the signed headers, then the instance, which must be live and
/// belong to the tenant the proxy names.
async fn identify(
    state: &MetadataState,
    headers: &HeaderMap,
    accept: Option<&str>,
) -> Result<InstanceMetadata, Reply> {
    let ids = values(headers, "x-instance-id");
    let tenants = values(headers, "x-tenant-id");
    let signature = joined(headers, "x-instance-id-signature");
    let problem = if ids.is_empty() {
        Some("X-Instance-ID header is missing from request.")
    } else if signature.is_none() {
        Some("X-Instance-ID-Signature header is missing from request.")
    } else if tenants.is_empty() {
        Some("X-Tenant-ID header is missing from request.")
    } else if ids.len() > 1 {
        Some("Multiple X-Instance-ID headers found within request.")
    } else if tenants.len() > 1 {
        Some("Multiple X-Tenant-ID headers found within request.")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(webob_error(StatusCode::BAD_REQUEST, problem, accept));
    }
    let (id, tenant) = (&ids[0], &tenants[0]);
    let signature = signature.unwrap_or_default();
    let forwarded = joined(headers, "x-forwarded-for").unwrap_or_default();
    let expected = sign_instance_id(&state.secret, id);
    let valid = signature.len() == expected.len()
        && !signature.is_empty()
        && openssl::memcmp::eq(expected.as_bytes(), signature.as_bytes());
    if !valid {
        tracing::warn!(
            instance_id = %id,
            signature = %signature,
            requester = %forwarded,
            "X-Instance-ID-Signature does not match the expected signature"
        );
        return Err(webob_error(StatusCode::FORBIDDEN, BAD_SIGNATURE, accept));
    }
    let not_found = || webob_error(StatusCode::NOT_FOUND, NOT_FOUND, accept);
    match crate::db::instances::instance(&state.compute.store, id).await {
        Err(e) => {
            tracing::error!(instance_id = %id, error = %e, "failed to get metadata for instance");
            Err(webob_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                UNKNOWN_ERROR,
                accept,
            ))
        }
        Ok(Some(inst)) if !inst.deleted => {
            if &inst.project_id == tenant {
                Ok(crate::guest::instance_metadata(&inst))
            } else {
                tracing::warn!(
                    tenant_id = %tenant,
                    instance_id = %id,
                    "tenant does not match the tenant of the instance"
                );
                Err(not_found())
            }
        }
        Ok(_) => {
            tracing::error!(instance_id = %id, "failed to get metadata for instance: no such instance");
            Err(not_found())
        }
    }
}

/// `InstanceMetadata.lookup`: the document at `path` (already percent-decoded) for the instance
/// `md`, with `address` (`X-Forwarded-For`) standing in for a missing fixed IP; `None` is a 404.
/// `today` (`YYYY-MM-DD`) hides future OpenStack versions from the listing.
fn lookup(md: &InstanceMetadata, path: &str, today: &str, address: Option<&str>) -> Option<Reply> {
    let path = if path.starts_with('/') {
        normpath(path)
    } else {
        normpath(&format!("/{path}"))
    };
    // Like Nova, a path that keeps two leading slashes (`//x`) has an empty first token and so
    // reads as the EC2 root.
    let mut tokens: Vec<&str> = path.split('/').skip(1).collect();
    if tokens
        .first()
        .is_some_and(|t| *t != "ec2" && *t != "openstack")
    {
        if tokens[0].is_empty() {
            tokens = vec!["ec2"];
        } else {
            tokens.insert(0, "ec2");
        }
    }
    match tokens.as_slice() {
        ["openstack"] => Some(Reply::text(listing(
            OPENSTACK_VERSIONS.iter().copied().filter(|v| *v <= today),
        ))),
        ["openstack", rest @ ..] => openstack_item(md, rest),
        [_, rest @ ..] if !rest.is_empty() => ec2_item(md, rest, address),
        _ => Some(Reply::text(listing(EC2_VERSIONS.iter().copied()))),
    }
}

/// Versions one per line, then `latest`.
fn listing<'a>(versions: impl Iterator<Item = &'a str>) -> String {
    versions.chain(["latest"]).collect::<Vec<_>>().join("\n")
}

/// `get_openstack_item` and `RouteConfiguration.handle_path`.
fn openstack_item(md: &InstanceMetadata, tokens: &[&str]) -> Option<Reply> {
    // `openstack/content/<nnnn>`: injected files, of which Ferrostack has none.
    if tokens[0] == "content" {
        return None;
    }
    let version = match tokens[0] {
        "latest" => OPENSTACK_VERSIONS[OPENSTACK_VERSIONS.len() - 1],
        v => *OPENSTACK_VERSIONS.iter().find(|known| **known == v)?,
    };
    let path = if tokens.len() == 1 {
        "version".to_string()
    } else {
        tokens[1..].join("/")
    };
    match path.as_str() {
        "version" => {
            let mut files = vec!["meta_data.json"];
            if md.user_data.is_some() {
                files.push("user_data");
            }
            for (since, file) in [
                (GRIZZLY, "password"),
                (HAVANA, "vendor_data.json"),
                (LIBERTY, "network_data.json"),
                (NEWTON_TWO, "vendor_data2.json"),
            ] {
                if version >= since {
                    files.push(file);
                }
            }
            Some(Reply::text(files.join("\n")))
        }
        "meta_data.json" => Some(Reply::json(&md.meta_data(version))),
        "user_data" => md.user_data.clone().map(Reply::text),
        // Served at every version, though listed only from 2015-10-15 (as in Nova).
        "network_data.json" => {
            let empty = Value::Object(Default::default());
            let data = if md.network_data.is_null() {
                &empty
            } else {
                &md.network_data
            };
            Some(Reply::text(python_json(data)))
        }
        // The stored password, or nothing, with webob's default content type (as Nova).
        "password" => (version >= GRIZZLY).then(|| Reply::ok(TEXT_HTML, md.password.clone())),
        "vendor_data.json" => (version >= HAVANA).then(|| Reply::json(&md.vendor_data())),
        "vendor_data2.json" => (version >= NEWTON_TWO).then(|| Reply::json(&md.vendor_data2())),
        _ => None,
    }
}

/// `get_ec2_item`: `tokens` starts with the EC2 version.
fn ec2_item(md: &InstanceMetadata, tokens: &[&str], address: Option<&str>) -> Option<Reply> {
    let version = match tokens[0] {
        "latest" => EC2_LATEST,
        v => *EC2_VERSIONS.iter().find(|known| **known == v)?,
    };
    match &tokens[1..] {
        [] => {
            let mut keys = vec!["meta-data/"];
            if md.user_data.is_some() {
                keys.push("user-data");
            }
            Some(Reply::text(keys.join("\n")))
        }
        ["user-data"] => md.user_data.clone().map(Reply::text),
        ["meta-data", rest @ ..] => {
            let tree = ec2_meta_data(md, version, address);
            let mut node = &tree;
            for token in rest {
                node = node.as_object()?.get(*token)?;
            }
            Some(Reply::text(ec2_md_print(node)))
        }
        _ => None,
    }
}

/// `get_ec2_metadata(version)["meta-data"]`: the tree of [`InstanceMetadata::ec2_meta_data`]
/// with what `version` predates removed, the key's `0=<name>` listing entry (`_name`), and the
/// requester's address as `local-ipv4` when the server has no fixed IP.
fn ec2_meta_data(md: &InstanceMetadata, version: &str, address: Option<&str>) -> Value {
    let mut tree = md.ec2_meta_data();
    let Some(map) = tree.as_object_mut() else {
        return tree;
    };
    if let (Some(key), Some(Value::Object(zero))) = (
        md.keys.first(),
        map.get_mut("public-keys").and_then(|k| k.get_mut("0")),
    ) {
        zero.insert("_name".into(), Value::from(format!("0={}", key.name)));
    }
    if md.fixed_ipv4.is_none() {
        map.insert(
            "local-ipv4".into(),
            address.map_or(Value::Null, Value::from),
        );
    }
    let index = |v: &str| EC2_VERSIONS.iter().position(|known| *known == v);
    for (key, since) in [
        ("local-hostname", "2007-01-19"),
        ("public-hostname", "2007-01-19"),
        ("public-ipv4", "2007-01-19"),
        ("instance-type", "2007-08-29"),
        ("block-device-mapping", "2007-12-15"),
        ("kernel-id", "2007-12-15"),
        ("ramdisk-id", "2007-12-15"),
        ("placement", "2008-02-01"),
        ("instance-action", "2008-09-01"),
    ] {
        if index(version) < index(since) {
            map.remove(key);
        }
    }
    tree
}

/// `ec2_md_print`: a dict lists its sorted keys one per line (sub-dicts as `key/`, or their
/// `_name`), a list its items one per line, a scalar prints as Python's `str`.
fn ec2_md_print(data: &Value) -> String {
    match data {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().filter(|k| *k != "_name").collect();
            keys.sort();
            keys.iter()
                .map(|k| match &map[k.as_str()] {
                    Value::Object(sub) => match sub.get("_name") {
                        Some(name) => python_str(name),
                        None => format!("{k}/"),
                    },
                    _ => k.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        }
        Value::Array(items) => items.iter().map(python_str).collect::<Vec<_>>().join("\n"),
        scalar => python_str(scalar),
    }
}

/// Python's `str()` of a JSON value.
fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        other => String::from_utf8_lossy(&python_json(other)).into_owned(),
    }
}

/// Python's `posixpath.normpath`: `.`, `..` and repeated or trailing slashes resolved; exactly two
/// leading slashes are kept (POSIX leaves their meaning to the implementation).
fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let initial_slashes = if path.starts_with("//") && !path.starts_with("///") {
        2
    } else if path.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if initial_slashes == 0 && (parts.is_empty() || parts.last() == Some(&"..")) => {
                parts.push(part)
            }
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let joined = format!("{}{}", "/".repeat(initial_slashes), parts.join("/"));
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

/// `%XX` sequences decoded, as a WSGI server hands `PATH_INFO` over (invalid UTF-8 is replaced).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// JSON as Python's `json.dumps` writes it: `", "` and `": "` separators, non-ASCII escaped.
fn python_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    if value.serialize(&mut serializer).is_err() {
        return serde_json::to_vec(value).unwrap_or_default();
    }
    out
}

struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// How webob renders an error for a client's `Accept`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ErrorFormat {
    Plain,
    Html,
    Json,
}

/// webob's choice between its `text/html` and `application/json` offers: the higher quality
/// wins, HTML on a tie; plain text when the client accepts neither or sends no `Accept`.
fn error_format(accept: Option<&str>) -> ErrorFormat {
    let Some(accept) = accept else {
        return ErrorFormat::Plain;
    };
    let ranges: Vec<(String, f32)> = accept
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let range = parts.next()?.trim().to_ascii_lowercase();
            if range.is_empty() {
                return None;
            }
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").map(str::to_string))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            Some((range, q))
        })
        .collect();
    let quality = |offer: &str| {
        let (kind, _) = offer.split_once('/').unwrap_or((offer, ""));
        let wildcard = format!("{kind}/*");
        ranges
            .iter()
            .filter_map(|(range, q)| {
                let specificity = if range == offer {
                    3
                } else if *range == wildcard {
                    2
                } else if range == "*/*" {
                    1
                } else {
                    return None;
                };
                Some((specificity, *q))
            })
            .max_by_key(|(specificity, _)| *specificity)
            .map_or(0.0, |(_, q)| q)
    };
    let (html, json) = (quality("text/html"), quality("application/json"));
    if html > 0.0 && html >= json {
        ErrorFormat::Html
    } else if json > 0.0 {
        ErrorFormat::Json
    } else {
        ErrorFormat::Plain
    }
}

/// A `webob.exc` error with `explanation`, in the form the client's `Accept` asks for.
fn webob_error(status: StatusCode, explanation: &str, accept: Option<&str>) -> Reply {
    let status_line = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let (content_type, body) = match error_format(accept) {
        ErrorFormat::Plain => (
            TEXT_PLAIN,
            format!("{status_line}\n\n{explanation}\n\n   ").into_bytes(),
        ),
        ErrorFormat::Html => {
            let escaped = html_escape(explanation);
            (
                TEXT_HTML,
                format!(
                    "<html>\n <head>\n  <title>{status_line}</title>\n </head>\n <body>\n  \
                     <h1>{status_line}</h1>\n  {escaped}<br /><br />\n\n\n\n </body>\n</html>"
                )
                .into_bytes(),
            )
        }
        ErrorFormat::Json => {
            let field = |s: &str| python_json(&Value::from(s));
            let mut body = b"{\"message\": ".to_vec();
            body.extend(field(&format!("{explanation}<br /><br />\n\n\n")));
            body.extend(b", \"code\": ");
            body.extend(field(&status_line));
            body.extend(b", \"title\": ");
            body.extend(field(status.canonical_reason().unwrap_or("")));
            body.push(b'}');
            (APPLICATION_JSON, body)
        }
    };
    Reply {
        status,
        content_type,
        body,
    }
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

#[cfg(test)]
#[path = "metadata_api_tests.rs"]
mod tests;
