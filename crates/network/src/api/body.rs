//! Request bodies as Neutron's attribute maps check them: the resource key, unknown and
//! read-only attributes, project ownership, and the converters/validators of each attribute
//! type, with upstream's messages (`Invalid input for X. Reason: ...`).

use crate::errors;
use crate::ipam;
use ferrostack_api::{ApiError, Auth};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// One attribute of a resource: whether POST and PUT may set it.
pub struct Attr {
    pub name: &'static str,
    pub post: bool,
    pub put: bool,
}

/// Shorthand for attribute tables.
pub const fn attr(name: &'static str, post: bool, put: bool) -> Attr {
    Attr { name, post, put }
}

fn invalid(attr: &str, reason: impl std::fmt::Display) -> ApiError {
    errors::bad_request(format!("Invalid input for {attr}. Reason: {reason}."))
}

/// The objects of a create: `{resource: {...}}` or the bulk form `{collection: [...]}`.
pub fn create_items(
    body: Value,
    resource: &str,
    collection: &str,
) -> Result<(Vec<Map<String, Value>>, bool), ApiError> {
    let Value::Object(mut top) = body else {
        return Err(errors::bad_request("Body contains invalid data"));
    };
    if let Some(items) = top.remove(collection) {
        let Value::Array(items) = items else {
            return Err(errors::bad_request("Body contains invalid data"));
        };
        if items.is_empty() {
            return Err(errors::bad_request("Resources required"));
        }
        let mut out = Vec::new();
        for item in items {
            let item = match item {
                Value::Object(mut m) if m.contains_key(resource) => {
                    m.remove(resource).unwrap_or_default()
                }
                other => other,
            };
            match item {
                Value::Object(m) => out.push(m),
                _ => {
                    return Err(errors::bad_request(format!(
                        "Object '{resource}' contains invalid data"
                    )));
                }
            }
        }
        return Ok((out, true));
    }
    Ok((vec![resource_object(Value::Object(top), resource)?], false))
}

/// The object under the resource key of a body.
pub fn resource_object(body: Value, resource: &str) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(mut top) = body else {
        return Err(errors::bad_request("Body contains invalid data"));
    };
    match top.remove(resource) {
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(errors::bad_request(format!(
            "Object '{resource}' contains invalid data"
        ))),
        None => Err(errors::bad_request(format!(
            "Unable to find '{resource}' in request body"
        ))),
    }
}

/// Refuses unknown attributes, and those the operation may not set.
pub fn check_attributes(
    map: &Map<String, Value>,
    attrs: &[Attr],
    create: bool,
) -> Result<(), ApiError> {
    let unknown: Vec<&str> = map
        .keys()
        .filter(|k| !attrs.iter().any(|a| a.name == k.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(errors::bad_request(format!(
            "Unrecognized attribute(s) '{}'",
            unknown.join(", ")
        )));
    }
    for a in attrs {
        if !map.contains_key(a.name) {
            continue;
        }
        if create && !a.post {
            return Err(errors::bad_request(format!(
                "Attribute '{}' not allowed in POST",
                a.name
            )));
        }
        if !create && !a.put {
            return Err(errors::bad_request(format!(
                "Cannot update read-only attribute {}",
                a.name
            )));
        }
    }
    Ok(())
}

/// Whether the caller is an admin (Neutron's `context.is_admin`).
pub fn is_admin(auth: &Auth) -> bool {
    auth.allows("context_is_admin", &serde_json::json!({}))
}

/// The owner of a new resource: `project_id`/`tenant_id` from the body (only admins may name
/// another project) or the caller's project.
pub fn owner(auth: &Auth, map: &mut Map<String, Value>) -> Result<String, ApiError> {
    let project = map.remove("project_id");
    let tenant = map.remove("tenant_id");
    let given = match (project, tenant) {
        (Some(p), Some(t)) if p != t => {
            return Err(errors::bad_request(
                "'project_id' and 'tenant_id' do not match",
            ));
        }
        (Some(p), _) | (None, Some(p)) => Some(p),
        (None, None) => None,
    };
    let caller = auth.project_id().unwrap_or_default().to_string();
    match given {
        None => {
            if caller.is_empty() {
                return Err(errors::bad_request(
                    "Running without keystone AuthN requires that project_id is specified",
                ));
            }
            Ok(caller)
        }
        Some(Value::String(p)) => {
            if p.len() > 255 {
                return Err(invalid(
                    "project_id",
                    format!("'{p}' exceeds maximum length of 255"),
                ));
            }
            if p != caller && !is_admin(auth) {
                return Err(errors::bad_request(
                    "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
                ));
            }
            Ok(p)
        }
        Some(other) => Err(invalid(
            "project_id",
            format!("'{other}' is not a valid string"),
        )),
    }
}

/// A boolean attribute (`true`, `"True"`, `"1"`, `0`... as `convert_to_boolean`).
pub fn boolean(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    let Some(v) = map.get(key) else {
        return Ok(None);
    };
    let b = match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) if n.as_i64() == Some(1) => Some(true),
        Value::Number(n) if n.as_i64() == Some(0) => Some(false),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    b.map(Some)
        .ok_or_else(|| invalid(key, format!("'{}' cannot be converted to boolean", show(v))))
}

/// Python's rendering of a value in messages.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// A string attribute of at most `max` characters (`null` refused).
pub fn string(map: &Map<String, Value>, key: &str, max: usize) -> Result<Option<String>, ApiError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(s)) => Err(invalid(
            key,
            format!("'{s}' exceeds maximum length of {max}"),
        )),
        Some(other) => Err(invalid(
            key,
            format!("'{}' is not a valid string", show(other)),
        )),
    }
}

/// A UUID attribute.
pub fn uuid(map: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => uuid_value(v, key).map(Some),
    }
}

/// A UUID value.
pub fn uuid_value(v: &Value, key: &str) -> Result<String, ApiError> {
    match v.as_str() {
        Some(s) if uuid::Uuid::parse_str(s).is_ok() => Ok(s.to_string()),
        _ => Err(invalid(key, format!("'{}' is not a valid UUID", show(v)))),
    }
}

/// A UUID or `null` attribute: `Some(None)` for an explicit `null`.
pub fn uuid_or_null(
    map: &Map<String, Value>,
    key: &str,
) -> Result<Option<Option<String>>, ApiError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => uuid_value(v, key).map(|s| Some(Some(s))),
    }
}

/// An integer attribute (`convert_to_int`).
pub fn int(map: &Map<String, Value>, key: &str) -> Result<Option<i64>, ApiError> {
    match map.get(key) {
        None => Ok(None),
        Some(v) => int_value(v, key).map(Some),
    }
}

/// An integer value, from a number or its text.
pub fn int_value(v: &Value, key: &str) -> Result<i64, ApiError> {
    match v {
        Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| invalid(key, format!("'{s}' is not an integer"))),
        other => Err(invalid(key, format!("'{}' is not an integer", show(other)))),
    }
}

/// An IP address attribute (`null` allowed: `Some(None)`).
pub fn ip_or_null(map: &Map<String, Value>, key: &str) -> Result<Option<Option<IpAddr>>, ApiError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => match ipam::parse_ip(s) {
            Some(ip) if !s.contains('/') => Ok(Some(Some(ip))),
            _ => Err(invalid(key, format!("'{s}' is not a valid IP address"))),
        },
        Some(other) => Err(invalid(
            key,
            format!("'{}' is not a valid IP address", show(other)),
        )),
    }
}

/// A list of strings attribute (`null` as an empty list).
pub fn string_list(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, ApiError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Vec::new())),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(key, format!("'{}' is not a valid string", show(i))))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(invalid(key, format!("'{}' is not a list", show(other)))),
    }
}

/// A dictionary attribute (`null` as empty).
pub fn object(map: &Map<String, Value>, key: &str) -> Result<Option<Map<String, Value>>, ApiError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Map::new())),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(other) => Err(invalid(
            key,
            format!("'{}' is not a dictionary", show(other)),
        )),
    }
}

/// Neutron's `type:name_string` (`name`, `description` and the like).
pub fn name(map: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    string(map, key, 255)
}

/// The `If-Match: revision_number=N` constraint of an update or delete.
pub fn if_match(headers: &axum::http::HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    let mut found = None;
    for tag in text.split(',') {
        let tag = tag.trim().trim_matches('"');
        if let Some(n) = tag.strip_prefix("revision_number=") {
            if found.is_some() {
                return Err(errors::bad(
                    "BadRequest",
                    "Bad if-match request: Multiple revision_number etags are not supported.",
                ));
            }
            found = Some(n.parse().map_err(|_| {
                errors::bad(
                    "BadRequest",
                    "Bad if-match request: Revision number etag must be in the format of revision_number=<int>.",
                )
            })?);
        }
    }
    Ok(found)
}

/// Tags of a create (`tags`), each a string of at most 255 characters.
pub fn tags(map: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let tags = string_list(map, "tags")?.unwrap_or_default();
    for t in &tags {
        check_tag(t)?;
    }
    let mut unique = Vec::new();
    for t in tags {
        if !unique.contains(&t) {
            unique.push(t);
        }
    }
    Ok(unique)
}

/// A tag: at most 255 characters, no commas (Neutron's tag validator).
pub fn check_tag(tag: &str) -> Result<(), ApiError> {
    if tag.is_empty() || tag.chars().count() > 255 || tag.contains(',') {
        return Err(errors::bad_request(format!(
            "Invalid input for tags. Reason: '{tag}' is not a valid tag."
        )));
    }
    Ok(())
}
