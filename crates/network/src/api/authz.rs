//! Neutron's policy enforcement: the targets (a resource's view plus the owner of its network or
//! security group and the fields that stand in for Neutron's `field:` checks), attributes hidden
//! from callers the `get_<resource>:<attribute>` rules refuse, attribute rules on create and
//! update, and 404 rather than 403 for resources the caller may not see.

use crate::errors;
use crate::model::Network;
use crate::policies::{NETWORK_RULES, is_registered};
use ferrostack_api::{ApiError, Auth};
use serde_json::{Map, Value};

/// Enforces `action`; a refusal is Neutron's 403 `PolicyNotAuthorized`.
pub fn enforce(auth: &Auth, action: &str, target: &Value) -> Result<(), ApiError> {
    auth.enforce(action, target)
        .map_err(|e| match e.status.as_u16() {
            403 => errors::policy_denied(&format!("rule:{action}")),
            _ => e,
        })
}

/// Enforces `action` on a resource the caller asked for by id: when refused, a caller who may
/// not even see it (`get_action`) gets `not_found` instead of a 403.
pub fn enforce_visible(
    auth: &Auth,
    action: &str,
    get_action: &str,
    target: &Value,
    not_found: impl FnOnce() -> ApiError,
) -> Result<(), ApiError> {
    if auth.allows(action, target) {
        return Ok(());
    }
    match auth.allows(get_action, target) {
        true => Err(errors::policy_denied(&format!("rule:{action}"))),
        false => Err(not_found()),
    }
}

/// Removes from `view` the attributes whose `get_<resource>:<attr>` rule refuses the caller.
pub fn strip(auth: &Auth, resource: &str, view: &mut Value, target: &Value) {
    let prefix = format!("get_{resource}:");
    let Some(map) = view.as_object_mut() else {
        return;
    };
    for rule in NETWORK_RULES {
        let Some(attr) = rule.name.strip_prefix(&prefix) else {
            continue;
        };
        if attr == "tags" || !map.contains_key(attr) {
            continue;
        }
        if !auth.allows(rule.name, target) {
            map.remove(attr);
        }
    }
}

/// Enforces the attribute rules (`create_port:mac_address`, `create_port:fixed_ips:ip_address`,
/// ...) of the attributes a request sets. On create, an attribute set to its default counts as
/// not set (Neutron's `_is_attribute_explicitly_set`).
pub fn enforce_attributes(
    auth: &Auth,
    action: &str,
    request: &Map<String, Value>,
    defaults: &[(&str, Value)],
    target: &Value,
    create: bool,
) -> Result<(), ApiError> {
    for (key, value) in request {
        if create && defaults.iter().any(|(k, d)| k == key && d == value) {
            continue;
        }
        let rule = format!("{action}:{key}");
        if is_registered(&rule) {
            enforce(auth, &rule, target)?;
        }
        let mut sub_keys: Vec<&String> = Vec::new();
        match value {
            Value::Object(m) => sub_keys.extend(m.keys()),
            Value::Array(items) => {
                for item in items {
                    if let Some(m) = item.as_object() {
                        sub_keys.extend(m.keys());
                    }
                }
            }
            _ => {}
        }
        sub_keys.sort_unstable();
        sub_keys.dedup();
        for sub in sub_keys {
            let rule = format!("{action}:{key}:{sub}");
            if is_registered(&rule) {
                enforce(auth, &rule, target)?;
            }
        }
    }
    Ok(())
}

/// Adds `extra` entries to a target object.
pub fn with(mut target: Value, extra: &[(&str, Value)]) -> Value {
    if let Some(map) = target.as_object_mut() {
        for (k, v) in extra {
            map.insert(k.to_string(), v.clone());
        }
    }
    target
}

/// The network fields the targets of subnets and ports carry (`network:project_id` for
/// `rule:network_owner`, `shared` and `router:external` for Neutron's `field:` rules).
pub fn network_fields(network: Option<&Network>) -> Vec<(&'static str, Value)> {
    match network {
        Some(n) => vec![
            ("network:project_id", Value::String(n.project_id.clone())),
            ("network:tenant_id", Value::String(n.project_id.clone())),
            ("shared", Value::Bool(n.shared)),
            ("router:external", Value::Bool(n.external)),
        ],
        None => Vec::new(),
    }
}

/// A port's policy target: its view, its network's fields and its device owner's prefix.
pub fn port_target(view: &Value, network: Option<&Network>) -> Value {
    let prefix = view
        .get("device_owner")
        .and_then(Value::as_str)
        .and_then(|o| o.split_once(':'))
        .map(|(p, _)| p.to_string());
    let mut extra = network_fields(network);
    if let Some(p) = prefix {
        extra.push(("device_owner_prefix", Value::String(p)));
    }
    with(view.clone(), &extra)
}

/// A subnet's policy target.
pub fn subnet_target(view: &Value, network: Option<&Network>) -> Value {
    with(view.clone(), &network_fields(network))
}

/// A security group rule's policy target (`security_group:project_id` for `rule:sg_owner`).
pub fn rule_target(view: &Value, group_project: &str) -> Value {
    with(
        view.clone(),
        &[(
            "security_group:project_id",
            Value::String(group_project.to_string()),
        )],
    )
}
