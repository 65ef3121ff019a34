//! Domain-specific configuration: `/v3/domains/{domain_id}/config[/{group}[/{option}]]` and the
//! defaults under `/v3/domains/config/...`.
//!
//! As Keystone's `DomainConfigManager` with the SQL backend, restricted to the whitelisted
//! options of the `identity` and `ldap` groups (`ldap.password` is accepted but sensitive: stored,
//! never shown). The configuration is only stored: no domain-specific identity driver reads it.

use super::{AppState, not_found};
use crate::data::{Change, IdentityData};
use crate::model::*;
use crate::service::Identity;
use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::get,
};
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub fn routes() -> Router<Arc<Identity>> {
    Router::new()
        .route(
            "/domains/{domain_id}/config",
            get(get_all)
                .put(create)
                .patch(update_all)
                .delete(delete_all),
        )
        .route(
            "/domains/{domain_id}/config/{group}",
            get(get_group).patch(update_group).delete(delete_group),
        )
        .route(
            "/domains/{domain_id}/config/{group}/{option}",
            get(get_option).patch(update_option).delete(delete_option),
        )
        .route("/domains/config/default", get(default_all))
        .route("/domains/config/{group}/default", get(default_group))
        .route(
            "/domains/config/{group}/{option}/default",
            get(default_option),
        )
}

/// Keystone's `whitelisted_options` (shown and stored).
const WHITELISTED: &[(&str, &[&str])] = &[
    ("identity", &["driver", "list_limit"]),
    (
        "ldap",
        &[
            "url",
            "user",
            "suffix",
            "query_scope",
            "page_size",
            "alias_dereferencing",
            "debug_level",
            "chase_referrals",
            "user_tree_dn",
            "user_filter",
            "user_objectclass",
            "user_id_attribute",
            "user_name_attribute",
            "user_mail_attribute",
            "user_description_attribute",
            "user_pass_attribute",
            "user_enabled_attribute",
            "user_enabled_invert",
            "user_enabled_mask",
            "user_enabled_default",
            "user_attribute_ignore",
            "user_default_project_id_attribute",
            "user_enabled_emulation",
            "user_enabled_emulation_dn",
            "user_enabled_emulation_use_group_config",
            "user_additional_attribute_mapping",
            "group_tree_dn",
            "group_filter",
            "group_objectclass",
            "group_id_attribute",
            "group_name_attribute",
            "group_members_are_ids",
            "group_member_attribute",
            "group_desc_attribute",
            "group_attribute_ignore",
            "group_additional_attribute_mapping",
            "tls_cacertfile",
            "tls_cacertdir",
            "use_tls",
            "tls_req_cert",
            "use_pool",
            "pool_size",
            "pool_retry_max",
            "pool_retry_delay",
            "pool_connection_timeout",
            "pool_connection_lifetime",
            "use_auth_pool",
            "auth_pool_size",
            "auth_pool_connection_lifetime",
        ],
    ),
];

/// Keystone's `sensitive_options` (stored, never shown).
const SENSITIVE: &[(&str, &[&str])] = &[("identity", &[]), ("ldap", &["password"])];

/// The option's default in Keystone's `keystone.conf` (`keystone/conf/identity.py`, `ldap.py`).
fn default_value(group: &str, option: &str) -> Value {
    match (group, option) {
        ("identity", "driver") => json!("sql"),
        ("ldap", "url") => json!("ldap://localhost"),
        ("ldap", "suffix") => json!("cn=example,cn=com"),
        ("ldap", "query_scope") => json!("one"),
        ("ldap", "alias_dereferencing") => json!("default"),
        ("ldap", "user_objectclass") => json!("inetOrgPerson"),
        ("ldap", "user_id_attribute") => json!("cn"),
        ("ldap", "user_name_attribute") => json!("sn"),
        ("ldap", "user_mail_attribute") => json!("mail"),
        ("ldap", "user_description_attribute") => json!("description"),
        ("ldap", "user_pass_attribute") => json!("userPassword"),
        ("ldap", "user_enabled_attribute") => json!("enabled"),
        ("ldap", "user_enabled_default") => json!("True"),
        ("ldap", "user_attribute_ignore") => json!(["default_project_id"]),
        ("ldap", "user_additional_attribute_mapping")
        | ("ldap", "group_attribute_ignore")
        | ("ldap", "group_additional_attribute_mapping") => json!([]),
        ("ldap", "group_objectclass") => json!("groupOfNames"),
        ("ldap", "group_id_attribute") => json!("cn"),
        ("ldap", "group_name_attribute") => json!("ou"),
        ("ldap", "group_member_attribute") => json!("member"),
        ("ldap", "group_desc_attribute") => json!("description"),
        ("ldap", "tls_req_cert") => json!("demand"),
        ("ldap", "page_size") | ("ldap", "user_enabled_mask") => json!(0),
        ("ldap", "user_enabled_invert")
        | ("ldap", "user_enabled_emulation")
        | ("ldap", "user_enabled_emulation_use_group_config")
        | ("ldap", "group_members_are_ids")
        | ("ldap", "use_tls") => json!(false),
        ("ldap", "use_pool") | ("ldap", "use_auth_pool") => json!(true),
        ("ldap", "pool_size") => json!(10),
        ("ldap", "pool_retry_max") => json!(3),
        ("ldap", "pool_retry_delay") => json!(0.1),
        ("ldap", "pool_connection_timeout") => json!(-1),
        ("ldap", "pool_connection_lifetime") => json!(600),
        ("ldap", "auth_pool_size") => json!(100),
        ("ldap", "auth_pool_connection_lifetime") => json!(60),
        _ => Value::Null,
    }
}

fn listed(table: &[(&str, &[&str])], group: &str, option: &str) -> bool {
    table
        .iter()
        .any(|(g, options)| *g == group && options.contains(&option))
}

fn whitelisted(group: &str) -> Option<&'static [&'static str]> {
    WHITELISTED
        .iter()
        .find(|(g, _)| *g == group)
        .map(|(_, o)| *o)
}

/// Keystone's `InvalidDomainConfig` (a 403).
fn invalid(reason: &str) -> ApiError {
    ApiError::forbidden(format!("Invalid domain specific configuration: {reason}."))
}

/// Keystone's `DomainConfigNotFound`.
fn config_not_found(domain_id: &str, group: Option<&str>, option: Option<&str>) -> ApiError {
    let what = match (group, option) {
        (Some(g), Some(o)) => format!("option {o} in group {g}"),
        (Some(g), None) => format!("group {g}"),
        _ => "any options".to_string(),
    };
    ApiError::not_found(format!(
        "Could not find {what} in domain configuration for domain {domain_id}."
    ))
}

/// Python truthiness of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Keystone's `_assert_valid_group_and_option`.
fn assert_valid_group_and_option(
    group: Option<&str>,
    option: Option<&str>,
) -> Result<(), ApiError> {
    let Some(group) = group else {
        return Ok(());
    };
    let known = |t: &[(&str, &[&str])]| t.iter().any(|(g, _)| *g == group);
    if !known(WHITELISTED) && !known(SENSITIVE) {
        return Err(invalid(&format!(
            "Group {group} is not supported for domain specific configurations"
        )));
    }
    if let Some(option) = option
        && !listed(WHITELISTED, group, option)
        && !listed(SENSITIVE, group, option)
    {
        return Err(invalid(&format!(
            "Option {option} in group {group} is not supported for domain specific configurations"
        )));
    }
    Ok(())
}

/// Keystone's `_assert_valid_config`: groups of options, each group and option supported.
fn assert_valid_config(config: &Value) -> Result<&Map<String, Value>, ApiError> {
    if !truthy(config) {
        return Err(invalid("No options specified"));
    }
    let Value::Object(groups) = config else {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field 'config': {config} is not of type \"object\""
        )));
    };
    for (group, options) in groups {
        let Value::Object(options) = options else {
            return Err(invalid(&format!(
                "The value of group {group} specified in the config should be a dictionary of options"
            )));
        };
        if options.is_empty() {
            return Err(invalid(&format!(
                "The value of group {group} specified in the config should be a dictionary of options"
            )));
        }
        for option in options.keys() {
            assert_valid_group_and_option(Some(group), Some(option))?;
        }
    }
    Ok(groups)
}

/// The stored options of a domain, filtered as Keystone's `list_config_options`.
fn options_of(
    data: &IdentityData,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
    sensitive: Option<bool>,
) -> Vec<DomainConfigOption> {
    let mut options: Vec<DomainConfigOption> = data
        .domain_configs
        .values()
        .filter(|o| o.domain_id == domain_id)
        .filter(|o| group.is_none_or(|g| o.group == g))
        .filter(|o| option.is_none_or(|p| o.option == p))
        .filter(|o| sensitive.is_none_or(|s| o.sensitive == s))
        .cloned()
        .collect();
    options.sort_by(|a, b| (&a.group, &a.option).cmp(&(&b.group, &b.option)));
    options
}

/// Keystone's `_list_to_config`: `{group: {option: value}}`, or `{option: value}` for a
/// request naming the option.
fn to_config<'a>(
    options: impl IntoIterator<Item = (&'a str, &'a str, Value)>,
    req_option: Option<&str>,
) -> Value {
    let mut config = Map::new();
    for (group, option, value) in options {
        if req_option.is_some() {
            config.insert(option.to_string(), value);
            continue;
        }
        config
            .entry(group.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|m| m.insert(option.to_string(), value));
    }
    Value::Object(config)
}

fn stored_config(options: &[DomainConfigOption], req_option: Option<&str>) -> Value {
    to_config(
        options
            .iter()
            .map(|o| (o.group.as_str(), o.option.as_str(), o.value.clone())),
        req_option,
    )
}

/// Keystone's `get_config`: the whitelisted options (404 when there are none).
fn get_config(
    data: &IdentityData,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<Value, ApiError> {
    assert_valid_group_and_option(group, option)?;
    let shown = options_of(data, domain_id, group, option, Some(false));
    if shown.is_empty() {
        return Err(config_not_found(domain_id, group, option));
    }
    Ok(stored_config(&shown, option))
}

fn target(domain_id: &str, group: Option<&str>, option: Option<&str>) -> Value {
    let mut t = json!({"domain_id": domain_id});
    if let Some(g) = group {
        t["group"] = json!(g);
    }
    if let Some(o) = option {
        t["option"] = json!(o);
    }
    t
}

fn require_domain(identity: &Identity, domain_id: &str) -> Result<(), ApiError> {
    match identity.read().domains.contains_key(domain_id) {
        true => Ok(()),
        false => Err(not_found("domain", domain_id)),
    }
}

// ---- GET ----

/// Keystone's `DomainConfigBase.get`: the domain's existence is checked after the policy and
/// the configuration lookup, so an unknown domain is not revealed to the unauthorized.
fn show(
    identity: &Identity,
    auth: &Auth,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let t = target(domain_id, group, option);
    let config = if group == Some("security_compliance") {
        auth.enforce("identity:get_security_compliance_domain_config", &t)?;
        security_compliance(identity, domain_id, option)?
    } else {
        auth.enforce("identity:get_domain_config", &t)?;
        get_config(&identity.read(), domain_id, group, option)?
    };
    require_domain(identity, domain_id)?;
    Ok(Json(json!({"config": config})))
}

/// Keystone's `get_security_compliance_config`: the password rules, readable by anyone, of
/// the default domain only.
fn security_compliance(
    identity: &Identity,
    domain_id: &str,
    option: Option<&str>,
) -> Result<Value, ApiError> {
    if domain_id != "default" {
        return Err(invalid(
            "Reading security compliance information for any domain other than the default domain is not allowed or supported.",
        ));
    }
    const READABLE: [&str; 2] = ["password_regex", "password_regex_description"];
    if let Some(o) = option
        && !READABLE.contains(&o)
    {
        return Err(invalid(
            "Reading security compliance values other than password_regex and password_regex_description is not allowed.",
        ));
    }
    let conf = &identity.config().identity;
    let value = |name: &str| {
        let v = match name {
            "password_regex" => &conf.password_regex,
            _ => &conf.password_regex_description,
        };
        if v.is_empty() { Value::Null } else { json!(v) }
    };
    Ok(to_config(
        READABLE
            .iter()
            .filter(|o| option.is_none_or(|want| want == **o))
            .map(|o| ("security_compliance", *o, value(o))),
        option,
    ))
}

async fn get_all(
    State(identity): AppState,
    auth: Auth,
    Path(domain_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    show(&identity, &auth, &domain_id, None, None)
}

async fn get_group(
    State(identity): AppState,
    auth: Auth,
    Path((domain_id, group)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    show(&identity, &auth, &domain_id, Some(&group), None)
}

async fn get_option(
    State(identity): AppState,
    auth: Auth,
    Path((domain_id, group, option)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    show(&identity, &auth, &domain_id, Some(&group), Some(&option))
}

// ---- PUT ----

/// `PUT /v3/domains/{domain_id}/config`: replaces the whole configuration (201 when the
/// domain had none, else 200).
async fn create(
    State(identity): AppState,
    auth: Auth,
    Path(domain_id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.enforce(
        "identity:create_domain_config",
        &target(&domain_id, None, None),
    )?;
    require_domain(&identity, &domain_id)?;
    let config = body.get("config").cloned().unwrap_or(Value::Null);
    let groups = assert_valid_config(&config)?;
    let old = options_of(&identity.read(), &domain_id, None, None, None);
    let mut new_options = Vec::new();
    for (group, options) in groups {
        for (option, value) in options.as_object().into_iter().flatten() {
            new_options.push(DomainConfigOption {
                domain_id: domain_id.clone(),
                group: group.clone(),
                option: option.clone(),
                value: value.clone(),
                sensitive: listed(SENSITIVE, group, option),
            });
        }
    }
    let rewritten: Vec<String> = new_options.iter().map(DomainConfigOption::key).collect();
    let mut changes: Vec<Change> = old
        .iter()
        .filter(|o| !rewritten.contains(&o.key()))
        .map(Change::delete)
        .collect();
    changes.extend(new_options.iter().map(Change::put));
    let had_config = !old.is_empty();
    identity.write(changes).await?;
    let shown: Vec<DomainConfigOption> = new_options.into_iter().filter(|o| !o.sensitive).collect();
    let status = match had_config {
        true => StatusCode::OK,
        false => StatusCode::CREATED,
    };
    Ok((status, Json(json!({"config": stored_config(&shown, None)}))))
}

// ---- PATCH ----

/// Keystone's `update_config`: merges options into the configuration; a request naming a group
/// (or an option) updates only that, which must exist already.
async fn update(
    identity: &Identity,
    auth: &Auth,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
    body: &Value,
) -> Result<Json<Value>, ApiError> {
    auth.enforce(
        "identity:update_domain_config",
        &target(domain_id, group, option),
    )?;
    require_domain(identity, domain_id)?;
    let config = body.get("config").cloned().unwrap_or_else(|| json!({}));
    let update = match (group, option) {
        (Some(g), Some(_)) => json!({ g: config }),
        _ => config,
    };
    let groups = assert_valid_config(&update)?;
    assert_valid_group_and_option(group, option)?;
    if let Some(group) = group {
        let only = groups.len() == 1
            && option.is_none_or(|_| {
                groups
                    .get(group)
                    .and_then(Value::as_object)
                    .is_some_and(|o| o.len() == 1)
            });
        if !only {
            return Err(invalid(&match option {
                Some(option) => format!(
                    "Trying to update option {option} in group {group}, so that, and only that, option must be specified  in the config"
                ),
                None => format!(
                    "Trying to update group {group}, so that, and only that, group must be specified in the config"
                ),
            }));
        }
        let Some(options) = groups.get(group).and_then(Value::as_object) else {
            let other = groups.keys().next().cloned().unwrap_or_default();
            return Err(invalid(&format!(
                "request to update group {group}, but config provided contains group {other} instead"
            )));
        };
        if let Some(option) = option
            && !options.contains_key(option)
        {
            let other = options.keys().next().cloned().unwrap_or_default();
            return Err(invalid(&format!(
                "Trying to update option {option} in group {group}, but config provided contains option {other} instead"
            )));
        }
        if options_of(&identity.read(), domain_id, Some(group), option, None).is_empty() {
            return Err(config_not_found(domain_id, Some(group), option));
        }
    }
    let mut changes = Vec::new();
    for (group, options) in groups {
        for (option, value) in options.as_object().into_iter().flatten() {
            changes.push(Change::put(&DomainConfigOption {
                domain_id: domain_id.to_string(),
                group: group.clone(),
                option: option.clone(),
                value: value.clone(),
                sensitive: listed(SENSITIVE, group, option),
            }));
        }
    }
    identity.write(changes).await?;
    let config = get_config(&identity.read(), domain_id, None, None)?;
    Ok(Json(json!({"config": config})))
}

async fn update_all(
    State(identity): AppState,
    auth: Auth,
    Path(domain_id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    update(&identity, &auth, &domain_id, None, None, &body).await
}

async fn update_group(
    State(identity): AppState,
    auth: Auth,
    Path((domain_id, group)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    update(&identity, &auth, &domain_id, Some(&group), None, &body).await
}

async fn update_option(
    State(identity): AppState,
    auth: Auth,
    Path((domain_id, group, option)): Path<(String, String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, ApiError> {
    update(
        &identity,
        &auth,
        &domain_id,
        Some(&group),
        Some(&option),
        &body,
    )
    .await
}

// ---- DELETE ----

/// Keystone's `delete_config`: the whole configuration, a group or an option (which must
/// exist, with a value Python finds true).
async fn delete(
    identity: &Identity,
    auth: &Auth,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<StatusCode, ApiError> {
    auth.enforce(
        "identity:delete_domain_config",
        &target(domain_id, group, option),
    )?;
    require_domain(identity, domain_id)?;
    assert_valid_group_and_option(group, option)?;
    let doomed = {
        let data = identity.read();
        if let Some(group) = group {
            let current = options_of(&data, domain_id, Some(group), None, None);
            if current.is_empty() {
                return Err(config_not_found(domain_id, Some(group), None));
            }
            if let Some(option) = option
                && !current
                    .iter()
                    .any(|o| o.option == option && truthy(&o.value))
            {
                return Err(config_not_found(domain_id, Some(group), Some(option)));
            }
        }
        options_of(&data, domain_id, group, option, None)
    };
    identity
        .write(doomed.iter().map(Change::delete).collect())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_all(
    State(identity): AppState,
    auth: Auth,
    Path(domain_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete(&identity, &auth, &domain_id, None, None).await
}

async fn delete_group(
    State(identity): AppState,
    auth: Auth,
    Path((domain_id, group)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    delete(&identity, &auth, &domain_id, Some(&group), None).await
}

async fn delete_option(
    State(identity): AppState,
    auth: Auth,
    Path((domain_id, group, option)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    delete(&identity, &auth, &domain_id, Some(&group), Some(&option)).await
}

// ---- defaults ----

/// Keystone's `get_config_default`: the defaults of the whitelisted options.
fn defaults(
    auth: &Auth,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let mut t = json!({});
    if let Some(g) = group {
        t["group"] = json!(g);
    }
    if let Some(o) = option {
        t["option"] = json!(o);
    }
    auth.enforce("identity:get_domain_config_default", &t)?;
    assert_valid_group_and_option(group, option)?;
    let mut entries: Vec<(&str, &str)> = Vec::new();
    for (g, options) in WHITELISTED {
        if group.is_some_and(|want| want != *g) {
            continue;
        }
        for o in *options {
            if option.is_none_or(|want| want == *o) {
                entries.push((g, o));
            }
        }
    }
    if let (Some(group), Some(option)) = (group, option)
        && !whitelisted(group).is_some_and(|o| o.contains(&option))
    {
        return Err(invalid(&format!(
            "Reading the default for option {option} in group {group} is not supported"
        )));
    }
    let config = to_config(
        entries
            .into_iter()
            .map(|(g, o)| (g, o, default_value(g, o))),
        option,
    );
    Ok(Json(json!({"config": config})))
}

async fn default_all(auth: Auth) -> Result<Json<Value>, ApiError> {
    defaults(&auth, None, None)
}

async fn default_group(auth: Auth, Path(group): Path<String>) -> Result<Json<Value>, ApiError> {
    defaults(&auth, Some(&group), None)
}

async fn default_option(
    auth: Auth,
    Path((group, option)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    defaults(&auth, Some(&group), Some(&option))
}

/// The deletions Keystone makes when a domain is deleted (its configuration).
pub fn changes_for_deleted_domain(data: &IdentityData, domain_id: &str) -> Vec<Change> {
    options_of(data, domain_id, None, None, None)
        .iter()
        .map(Change::delete)
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::api::harness::Harness;
    use serde_json::json;

    #[tokio::test]
    async fn defaults_follow_keystone_conf() {
        let h = Harness::open("domain-config-defaults").await;
        let admin = h.admin().await;
        let r = h
            .call("GET", "/domains/config/default", Some(&admin), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body["config"]["identity"],
            json!({"driver": "sql", "list_limit": null})
        );
        assert_eq!(r.body["config"]["ldap"].as_object().unwrap().len(), 49);
        assert_eq!(r.body["config"]["ldap"]["url"], "ldap://localhost");
        assert_eq!(r.body["config"]["ldap"]["pool_retry_delay"], json!(0.1));
        assert!(r.body["config"]["ldap"].get("password").is_none());
        let r = h
            .call("GET", "/domains/config/ldap/default", Some(&admin), None)
            .await;
        assert_eq!(
            r.body["config"]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            vec!["ldap"]
        );
        let r = h
            .call(
                "GET",
                "/domains/config/ldap/user_tree_dn/default",
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            (r.status, &r.body["config"]),
            (200, &json!({"user_tree_dn": null}))
        );
        for (path, message) in [
            (
                "/domains/config/ldap/password/default",
                "Invalid domain specific configuration: Reading the default for option password in group ldap is not supported.",
            ),
            (
                "/domains/config/ldap/color/default",
                "Invalid domain specific configuration: Option color in group ldap is not supported for domain specific configurations.",
            ),
            (
                "/domains/config/assignment/default",
                "Invalid domain specific configuration: Group assignment is not supported for domain specific configurations.",
            ),
        ] {
            let r = h.call("GET", path, Some(&admin), None).await;
            assert_eq!(
                (r.status, r.body["error"]["message"].as_str()),
                (403, Some(message)),
                "{path}"
            );
        }
        assert_eq!(
            h.call(
                "GET",
                "/domains/config/default",
                Some(&h.demo().await),
                None
            )
            .await
            .status,
            403
        );
    }

    #[tokio::test]
    async fn domain_config_crud_as_tempest_does() {
        let h = Harness::open("domain-config-crud").await;
        let admin = h.admin().await;
        let demo = h.demo().await;
        let r = h
            .call(
                "POST",
                "/domains",
                Some(&admin),
                Some(json!({"domain": {"name": "ldapland"}})),
            )
            .await;
        let did = r.body["domain"]["id"].as_str().unwrap().to_string();
        let base = format!("/domains/{did}/config");
        let custom = json!({
            "identity": {"driver": "ldap"},
            "ldap": {"url": "ldap://myldap.com:389/", "user_tree_dn": "ou=Users,dc=my_new_root,dc=org"},
        });
        let r = h.call("GET", &base, Some(&admin), None).await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (
                404,
                Some(
                    format!("Could not find any options in domain configuration for domain {did}.")
                        .as_str()
                )
            )
        );
        assert_eq!(
            h.call("PUT", &base, Some(&demo), Some(json!({"config": custom})))
                .await
                .status,
            403
        );
        let r = h
            .call("PUT", &base, Some(&admin), Some(json!({"config": {}})))
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (
                403,
                Some("Invalid domain specific configuration: No options specified.")
            )
        );
        let r = h
            .call(
                "PUT",
                &base,
                Some(&admin),
                Some(json!({"config": {"ldap": "x"}})),
            )
            .await;
        assert_eq!(r.status, 403);
        let r = h
            .call(
                "PUT",
                "/domains/nope/config",
                Some(&admin),
                Some(json!({"config": custom})),
            )
            .await;
        assert_eq!(r.status, 404);

        // With the sensitive password, which is stored but never shown.
        let mut with_password = custom.clone();
        with_password["ldap"]["password"] = json!("hunter2");
        let r = h
            .call(
                "PUT",
                &base,
                Some(&admin),
                Some(json!({"config": with_password})),
            )
            .await;
        assert_eq!((r.status, &r.body["config"]), (201, &custom));
        let r = h
            .call("PUT", &base, Some(&admin), Some(json!({"config": custom})))
            .await;
        assert_eq!((r.status, &r.body["config"]), (200, &custom));
        assert!(
            h.identity
                .read()
                .domain_configs
                .values()
                .all(|o| o.option != "password")
        );
        let r = h.call("GET", &base, Some(&admin), None).await;
        assert_eq!((r.status, &r.body["config"]), (200, &custom));
        let r = h
            .call("GET", &format!("{base}/ldap"), Some(&admin), None)
            .await;
        assert_eq!(r.body["config"], json!({"ldap": custom["ldap"]}));
        let r = h
            .call("GET", &format!("{base}/ldap/url"), Some(&admin), None)
            .await;
        assert_eq!(r.body["config"], json!({"url": "ldap://myldap.com:389/"}));
        assert_eq!(h.call("GET", &base, Some(&demo), None).await.status, 403);
        let r = h
            .call("GET", &format!("{base}/ldap/use_tls"), Some(&admin), None)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (404, Some(format!("Could not find option use_tls in group ldap in domain configuration for domain {did}.").as_str()))
        );
        let r = h
            .call("GET", "/domains/nope/config/ldap", Some(&admin), None)
            .await;
        assert_eq!(
            (r.status, r.body["error"]["message"].as_str()),
            (
                404,
                Some("Could not find group ldap in domain configuration for domain nope.")
            )
        );

        // PATCH the whole config, a group (adding an option), an option.
        let r = h
            .call(
                "PATCH",
                &base,
                Some(&admin),
                Some(json!({"config": {"ldap": {"url": "ldap://new"}}})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["config"]["ldap"]["url"], "ldap://new");
        assert_eq!(r.body["config"]["identity"]["driver"], "ldap");
        let r = h
            .call(
                "PATCH",
                &format!("{base}/identity"),
                Some(&admin),
                Some(json!({"config": {"identity": {"driver": "d2", "list_limit": 42}}})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body["config"]["identity"],
            json!({"driver": "d2", "list_limit": 42})
        );
        let r = h
            .call(
                "PATCH",
                &format!("{base}/identity/driver"),
                Some(&admin),
                Some(json!({"config": {"driver": "d3"}})),
            )
            .await;
        assert_eq!(
            (r.status, &r.body["config"]["identity"]["driver"]),
            (200, &json!("d3"))
        );
        for (path, body, status, message) in [
            (
                format!("{base}/identity"),
                json!({"config": {"ldap": {"url": "u"}}}),
                403,
                "Invalid domain specific configuration: request to update group identity, but config provided contains group ldap instead.",
            ),
            (
                format!("{base}/identity"),
                json!({"config": {"identity": {"driver": "x"}, "ldap": {"url": "u"}}}),
                403,
                "Invalid domain specific configuration: Trying to update group identity, so that, and only that, group must be specified in the config.",
            ),
            (
                format!("{base}/identity/driver"),
                json!({"config": {"list_limit": 3}}),
                403,
                "Invalid domain specific configuration: Trying to update option driver in group identity, but config provided contains option list_limit instead.",
            ),
            (
                format!("{base}/ldap/use_tls"),
                json!({"config": {"use_tls": true}}),
                404,
                "Could not find option use_tls in group ldap in domain configuration for domain {did}.",
            ),
        ] {
            let r = h.call("PATCH", &path, Some(&admin), Some(body)).await;
            assert_eq!(
                (r.status, r.body["error"]["message"].as_str().unwrap()),
                (status, message.replace("{did}", &did).as_str()),
                "{path}"
            );
        }

        // DELETE an option, a group, everything.
        assert_eq!(
            h.call(
                "DELETE",
                &format!("{base}/identity/driver"),
                Some(&admin),
                None
            )
            .await
            .status,
            204
        );
        assert_eq!(
            h.call(
                "GET",
                &format!("{base}/identity/driver"),
                Some(&admin),
                None
            )
            .await
            .status,
            404
        );
        assert_eq!(
            h.call(
                "DELETE",
                &format!("{base}/identity/driver"),
                Some(&admin),
                None
            )
            .await
            .status,
            404
        );
        assert_eq!(
            h.call("DELETE", &format!("{base}/identity"), Some(&admin), None)
                .await
                .status,
            204
        );
        let r = h
            .call("GET", &format!("{base}/identity"), Some(&admin), None)
            .await;
        assert_eq!(r.status, 404);
        assert_eq!(h.call("DELETE", &base, Some(&demo), None).await.status, 403);
        assert_eq!(
            h.call("DELETE", &base, Some(&admin), None).await.status,
            204
        );
        assert_eq!(h.call("GET", &base, Some(&admin), None).await.status, 404);
        assert!(h.identity.read().domain_configs.is_empty());
        assert_eq!(
            h.call("DELETE", &base, Some(&admin), None).await.status,
            204
        );
    }

    #[tokio::test]
    async fn security_compliance_is_readable_by_anyone_for_the_default_domain() {
        let h = Harness::open("domain-config-security").await;
        let demo = h.demo().await;
        let r = h
            .call(
                "GET",
                "/domains/default/config/security_compliance",
                Some(&demo),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body["config"],
            json!({"security_compliance": {"password_regex": null, "password_regex_description": null}})
        );
        let r = h
            .call(
                "GET",
                "/domains/default/config/security_compliance/password_regex",
                Some(&demo),
                None,
            )
            .await;
        assert_eq!(r.body["config"], json!({"password_regex": null}));
        let r = h
            .call(
                "GET",
                "/domains/default/config/security_compliance/lockout_duration",
                Some(&demo),
                None,
            )
            .await;
        assert_eq!(r.status, 403);
        let r = h
            .call(
                "GET",
                "/domains/other/config/security_compliance",
                Some(&demo),
                None,
            )
            .await;
        assert_eq!(r.status, 403);
    }
}
