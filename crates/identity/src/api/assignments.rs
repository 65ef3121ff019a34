//! `GET /v3/role_assignments`: the role assignments, as made (direct) or as they take effect
//! (`effective`: groups expanded to their members, inherited assignments to the projects below,
//! implied roles added), following Keystone's `list_role_assignments`.

use super::{AppState, Pairs, not_found, query_value};
use crate::data::IdentityData;
use crate::model::*;
use crate::service::Identity;
use axum::{
    Json, Router,
    extract::{Query, RawQuery, State},
    routing::get,
};
use ferrostack_api::{ApiError, Auth};
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub fn routes() -> Router<Arc<Identity>> {
    Router::new().route("/role_assignments", get(list))
}

/// Query parameters Keystone passes to policy as `filter_attr.<name>`.
const FILTERS: &[&str] = &[
    "group.id",
    "role.id",
    "scope.domain.id",
    "scope.project.id",
    "scope.OS-INHERIT:inherited_to",
    "user.id",
    "scope.system",
];

/// The listing's parameters, read as Keystone reads them.
#[derive(Debug, Default, Clone)]
struct Filters {
    user_id: Option<String>,
    group_id: Option<String>,
    role_id: Option<String>,
    project_id: Option<String>,
    domain_id: Option<String>,
    /// `scope.system=all` (any other value is no filter).
    system: bool,
    /// `scope.system` given at all (for the combination checks).
    system_given: bool,
    /// `scope.OS-INHERIT:inherited_to`: `Some(true)` for `projects`, `Some(false)` for any
    /// other value, `None` when absent (both kinds listed).
    inherited: Option<bool>,
    effective: bool,
    include_names: bool,
    include_subtree: bool,
}

/// Keystone's `query_filter_is_true`: present and not `0` (a bare `?effective` is true).
fn flag(pairs: &[(String, String)], name: &str) -> bool {
    query_value(pairs, name).is_some_and(|v| v != "0")
}

impl Filters {
    fn parse(pairs: &[(String, String)]) -> Filters {
        let value = |name: &str| {
            query_value(pairs, name)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        let system = value("scope.system");
        Filters {
            user_id: value("user.id"),
            group_id: value("group.id"),
            role_id: value("role.id"),
            project_id: value("scope.project.id"),
            domain_id: value("scope.domain.id"),
            system: system.as_deref() == Some("all"),
            system_given: system.is_some(),
            inherited: query_value(pairs, "scope.OS-INHERIT:inherited_to").map(|v| v == "projects"),
            effective: flag(pairs, "effective"),
            include_names: flag(pairs, "include_names"),
            include_subtree: flag(pairs, "include_subtree"),
        }
    }

    /// Keystone's refusals of contradictory or pointless combinations (400).
    fn check(&self) -> Result<(), ApiError> {
        let refuse = |m: &'static str| Err(ApiError::bad_request(m));
        if self.domain_id.is_some() && self.project_id.is_some() {
            return refuse("Specify a domain or project, not both");
        }
        if self.domain_id.is_some() && self.system_given {
            return refuse("Specify system or domain, not both");
        }
        if self.project_id.is_some() && self.system_given {
            return refuse("Specify system or project, not both");
        }
        if self.user_id.is_some() && self.group_id.is_some() {
            return refuse("Specify a user or group, not both");
        }
        if self.effective {
            if self.group_id.is_some() {
                return refuse(
                    "Combining effective and group filter will always result in an empty list.",
                );
            }
            if self.inherited == Some(true) && self.domain_id.is_some() {
                return refuse(
                    "Combining effective, domain and inherited filters will always result in an empty list.",
                );
            }
        }
        Ok(())
    }
}

/// One listed assignment before rendering (Keystone's driver ref with its `indirect` part).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    actor: Actor,
    target: Target,
    role_id: String,
    /// An OS-INHERIT grant as made (direct listings only).
    inherited: bool,
    /// Effective: the group the user holds it through.
    via_group: Option<String>,
    /// Effective: the domain or project the inherited grant was made on.
    inherited_from: Option<Target>,
    /// Effective: the role that implied this one.
    prior_role: Option<String>,
}

impl From<&Assignment> for Listed {
    fn from(a: &Assignment) -> Listed {
        Listed {
            actor: a.actor.clone(),
            target: a.target.clone(),
            role_id: a.role_id.clone(),
            inherited: a.inherited,
            via_group: None,
            inherited_from: None,
            prior_role: None,
        }
    }
}

/// Stored assignments in a stable order.
fn stored(data: &IdentityData) -> Vec<&Assignment> {
    let mut all: Vec<&Assignment> = data.assignments.values().collect();
    all.sort_by_key(|a| a.key());
    all
}

/// Whose assignments a driver query returns.
enum Actors<'a> {
    Any,
    User(&'a str),
    Groups(&'a [String]),
}

impl Actors<'_> {
    fn matches(&self, actor: &Actor) -> bool {
        match (self, actor) {
            (Actors::Any, _) => true,
            (Actors::User(u), Actor::User(a)) => u == a,
            (Actors::Groups(gs), Actor::Group(a)) => gs.contains(a),
            _ => false,
        }
    }
}

/// Where a driver query looks: projects, a domain, or any project or domain (never the system).
enum Targets<'a> {
    Any,
    Projects(&'a [String]),
    Domain(&'a str),
}

impl Targets<'_> {
    fn matches(&self, target: &Target) -> bool {
        match (self, target) {
            (_, Target::System) => false,
            (Targets::Any, _) => true,
            (Targets::Projects(ps), Target::Project(p)) => ps.contains(p),
            (Targets::Domain(d), Target::Domain(t)) => d == t,
            _ => false,
        }
    }
}

/// Keystone's assignment driver `list_role_assignments` over project and domain assignments.
fn query(
    data: &IdentityData,
    role_id: Option<&str>,
    actors: &Actors,
    targets: &Targets,
    inherited: Option<bool>,
) -> Vec<Listed> {
    stored(data)
        .into_iter()
        .filter(|a| role_id.is_none_or(|r| a.role_id == r))
        .filter(|a| actors.matches(&a.actor) && targets.matches(&a.target))
        .filter(|a| inherited.is_none_or(|i| a.inherited == i))
        .map(Listed::from)
        .collect()
}

/// The projects of interest: the filtered project and, with `include_subtree`, those below it.
fn projects_of_interest(project_id: &str, subtree: &[String]) -> Vec<String> {
    let mut ids = subtree.to_vec();
    ids.push(project_id.to_string());
    ids
}

/// Direct assignments as made (Keystone's `_list_direct_role_assignments`).
fn direct(data: &IdentityData, f: &Filters, subtree: &[String]) -> Vec<Listed> {
    let project_ids = f
        .project_id
        .as_deref()
        .map(|p| projects_of_interest(p, subtree));
    let actors = match (&f.group_id, &f.user_id) {
        (Some(g), _) => Actors::Groups(std::slice::from_ref(g)),
        (None, Some(u)) => Actors::User(u),
        (None, None) => Actors::Any,
    };
    let mut out = Vec::new();
    if !f.system {
        let targets = match (&project_ids, &f.domain_id) {
            (Some(ps), _) => Targets::Projects(ps),
            (None, Some(d)) => Targets::Domain(d),
            (None, None) => Targets::Any,
        };
        out = query(data, f.role_id.as_deref(), &actors, &targets, f.inherited);
    }
    // System assignments come with any listing not restricted to a project or domain (the
    // inherited filter does not apply to them, as in Keystone).
    if f.system || (f.project_id.is_none() && f.domain_id.is_none()) {
        out.extend(
            stored(data)
                .into_iter()
                .filter(|a| a.target == Target::System && !a.inherited)
                .filter(|a| actors.matches(&a.actor))
                .filter(|a| f.role_id.as_deref().is_none_or(|r| a.role_id == r))
                .map(Listed::from),
        );
    }
    out
}

/// Keystone's `list_role_assignments_for_actor`: the assignments (role not filtered) that can
/// affect the actor on the target, inherited ones included where they could apply.
fn for_actor(
    data: &IdentityData,
    actors: &Actors,
    project_id: Option<&str>,
    subtree: &[String],
    domain_id: Option<&str>,
    inherited: Option<bool>,
) -> Vec<Listed> {
    let project_ids = project_id.map(|p| projects_of_interest(p, subtree));
    let mut out = Vec::new();
    if inherited != Some(true) {
        let targets = match (&project_ids, domain_id) {
            (Some(ps), _) => Targets::Projects(ps),
            (None, Some(d)) => Targets::Domain(d),
            (None, None) => Targets::Any,
        };
        out.extend(query(data, None, actors, &targets, Some(false)));
    }
    if inherited != Some(false) {
        match (project_id, &project_ids) {
            (Some(p), Some(ids)) => {
                // Only the project's domain and its ancestors (and, for a subtree, the projects
                // in it) can pass assignments down to the projects of interest.
                if let Some(project) = data.projects.get(p) {
                    out.extend(query(
                        data,
                        None,
                        actors,
                        &Targets::Domain(&project.domain_id),
                        Some(true),
                    ));
                }
                let mut sources = data.ancestors(p);
                if !subtree.is_empty() {
                    sources.extend(ids.iter().cloned());
                }
                if !sources.is_empty() {
                    out.extend(query(
                        data,
                        None,
                        actors,
                        &Targets::Projects(&sources),
                        Some(true),
                    ));
                }
            }
            _ => out.extend(query(data, None, actors, &Targets::Any, Some(true))),
        }
    }
    out
}

/// Keystone's `_expand_indirect_assignment`: a group assignment becomes one per member (or only
/// the filtered user), an inherited one one per project it reaches.
fn expand(
    data: &IdentityData,
    r: Listed,
    user_id: Option<&str>,
    project_id: Option<&str>,
    subtree: &[String],
) -> Vec<Listed> {
    let members = |g: &str| -> Vec<String> {
        match user_id {
            Some(u) => vec![u.to_string()],
            None => {
                let mut m = data.members_of(g);
                m.sort();
                m
            }
        }
    };
    if r.inherited {
        let mut project_ids: Vec<String> = match (project_id, &r.target) {
            (Some(p), source) => {
                let mut ids = vec![p.to_string()];
                if !subtree.is_empty() {
                    ids.extend(subtree.iter().cloned());
                    // An assignment made inside the subtree reaches only the projects below it.
                    if let Target::Project(s) = source
                        && ids.contains(s)
                    {
                        ids = data.descendants(s);
                    }
                }
                ids
            }
            (None, Target::Domain(d)) => data
                .projects
                .values()
                .filter(|p| &p.domain_id == d)
                .map(|p| p.id.clone())
                .collect(),
            (None, Target::Project(s)) => data.descendants(s),
            (None, Target::System) => Vec::new(),
        };
        if project_id.is_none() {
            project_ids.sort();
        }
        let users: Vec<(String, Option<String>)> = match &r.actor {
            Actor::User(u) => vec![(u.clone(), None)],
            Actor::Group(g) => members(g)
                .into_iter()
                .map(|u| (u, Some(g.clone())))
                .collect(),
        };
        let mut out = Vec::new();
        for (user, group) in users {
            for pid in &project_ids {
                out.push(Listed {
                    actor: Actor::User(user.clone()),
                    target: Target::Project(pid.clone()),
                    role_id: r.role_id.clone(),
                    inherited: false,
                    via_group: group.clone(),
                    inherited_from: Some(r.target.clone()),
                    prior_role: None,
                });
            }
        }
        return out;
    }
    match &r.actor {
        Actor::Group(g) => members(g)
            .into_iter()
            .map(|u| Listed {
                actor: Actor::User(u),
                via_group: Some(g.clone()),
                ..r.clone()
            })
            .collect(),
        Actor::User(_) => vec![r],
    }
}

/// Keystone's `add_implied_roles`: each assignment is followed by one per role it implies
/// (transitively), each naming the role that implied it; cycles are not followed twice.
fn add_implied(data: &IdentityData, refs: Vec<Listed>) -> Vec<Listed> {
    let mut results = refs.clone();
    let mut to_check = refs;
    let mut checked: Vec<Listed> = Vec::new();
    while let Some(next) = to_check.pop() {
        checked.push(next.clone());
        let mut implied: Vec<&String> = data
            .implied
            .values()
            .filter(|rule| rule.prior_role_id == next.role_id)
            .map(|rule| &rule.implied_role_id)
            .collect();
        implied.sort();
        for role_id in implied {
            let r = Listed {
                role_id: role_id.clone(),
                prior_role: Some(next.role_id.clone()),
                ..next.clone()
            };
            if checked.contains(&r) {
                continue;
            }
            results.push(r.clone());
            to_check.push(r);
        }
    }
    results
}

/// Effective assignments (Keystone's `_list_effective_role_assignments`); never system ones.
fn effective(data: &IdentityData, f: &Filters, subtree: &[String]) -> Vec<Listed> {
    if f.group_id.is_some() || (f.domain_id.is_some() && f.inherited == Some(true)) {
        return Vec::new();
    }
    // Domains do not inherit: a domain filter means direct domain assignments only.
    let inherited = if f.domain_id.is_some() {
        Some(false)
    } else {
        f.inherited
    };
    let user = f.user_id.as_deref();
    let (project, domain) = (f.project_id.as_deref(), f.domain_id.as_deref());
    let actors = user.map_or(Actors::Any, Actors::User);
    let mut refs = for_actor(data, &actors, project, subtree, domain, inherited);
    if let Some(u) = user {
        let mut groups = data.groups_of(u);
        groups.sort();
        if !groups.is_empty() {
            refs.extend(for_actor(
                data,
                &Actors::Groups(&groups),
                project,
                subtree,
                domain,
                inherited,
            ));
        }
    }
    let expanded: Vec<Listed> = refs
        .into_iter()
        .flat_map(|r| expand(data, r, user, project, subtree))
        .collect();
    add_implied(data, expanded)
        .into_iter()
        // Domain-specific roles only serve to imply others; they are not effective themselves.
        .filter(|r| {
            data.roles
                .get(&r.role_id)
                .is_none_or(|role| role.domain_id.is_none())
        })
        .filter(|r| f.role_id.as_deref().is_none_or(|id| r.role_id == id))
        .collect()
}

/// The assignments the filters select.
fn select(data: &IdentityData, f: &Filters) -> Vec<Listed> {
    let subtree = match (&f.project_id, f.include_subtree) {
        (Some(p), true) => data.descendants(p),
        _ => Vec::new(),
    };
    if f.effective {
        effective(data, f, &subtree)
    } else {
        direct(data, f, &subtree)
    }
}

/// Whether an assignment concerns `domain_id` (a domain-scoped caller sees only those).
fn in_domain(data: &IdentityData, r: &Listed, domain_id: &str) -> bool {
    match &r.target {
        Target::Domain(d) => d == domain_id,
        Target::Project(p) => data
            .projects
            .get(p)
            .is_some_and(|p| p.domain_id == domain_id),
        Target::System => false,
    }
}

fn domain_name(data: &IdentityData, id: &str) -> String {
    data.domains
        .get(id)
        .map(|d| d.name.clone())
        .unwrap_or_default()
}

/// `{"id", "name", "domain": {"id", "name"}}` of an entity in a domain (empty when it is gone).
fn named(data: &IdentityData, id: &str, found: Option<(&str, &str)>) -> Value {
    let (name, domain_id) = found.unwrap_or(("", ""));
    json!({"id": id, "name": name, "domain": {"id": domain_id, "name": domain_name(data, domain_id)}})
}

/// Keystone's `_format_entity`: the assignment's actor, scope and role, and links to the grant
/// that gave rise to it (and, for effective ones, to the membership and the prior role).
fn render(base: &str, data: &IdentityData, r: &Listed, names: bool) -> Value {
    let url = |path: &str| format!("{base}/v3{path}");
    let mut entity = Map::new();
    let mut links = Map::new();
    let mut scope = Map::new();
    let mut inherited = r.inherited;
    let mut link = match &r.target {
        Target::Project(p) => {
            let project = data
                .projects
                .get(p)
                .map(|x| (x.name.as_str(), x.domain_id.as_str()));
            scope.insert(
                "project".into(),
                if names {
                    named(data, p, project)
                } else {
                    json!({"id": p})
                },
            );
            match &r.inherited_from {
                Some(Target::Domain(d)) => {
                    inherited = true;
                    format!("/domains/{d}")
                }
                Some(Target::Project(s)) => {
                    inherited = true;
                    format!("/projects/{s}")
                }
                _ => format!("/projects/{p}"),
            }
        }
        Target::Domain(d) => {
            let domain = if names {
                json!({"id": d, "name": domain_name(data, d)})
            } else {
                json!({"id": d})
            };
            scope.insert("domain".into(), domain);
            format!("/domains/{d}")
        }
        Target::System => {
            scope.insert("system".into(), json!({"all": true}));
            "/system".to_string()
        }
    };
    match &r.actor {
        Actor::User(u) => {
            let user = data
                .users
                .get(u)
                .map(|x| (x.name.as_str(), x.domain_id.as_str()));
            entity.insert(
                "user".into(),
                if names {
                    named(data, u, user)
                } else {
                    json!({"id": u})
                },
            );
            match &r.via_group {
                Some(g) => {
                    links.insert(
                        "membership".into(),
                        json!(url(&format!("/groups/{g}/users/{u}"))),
                    );
                    link.push_str(&format!("/groups/{g}"));
                }
                None => link.push_str(&format!("/users/{u}")),
            }
        }
        Actor::Group(g) => {
            let group = data
                .groups
                .get(g)
                .map(|x| (x.name.as_str(), x.domain_id.as_str()));
            entity.insert(
                "group".into(),
                if names {
                    named(data, g, group)
                } else {
                    json!({"id": g})
                },
            );
            link.push_str(&format!("/groups/{g}"));
        }
    }
    let mut role = json!({"id": r.role_id});
    if names {
        let found = data.roles.get(&r.role_id);
        role["name"] = json!(found.map(|x| x.name.as_str()).unwrap_or_default());
        if let Some(d) = found.and_then(|x| x.domain_id.as_deref()) {
            role["domain"] = json!({"id": d, "name": domain_name(data, d)});
        }
    }
    entity.insert("role".into(), role);
    match &r.prior_role {
        Some(prior) => {
            link.push_str(&format!("/roles/{prior}"));
            // Keystone's own (inverted) form of this link.
            links.insert(
                "prior_role".into(),
                json!(url(&format!("/prior_role/{}/implies/{prior}", r.role_id))),
            );
        }
        None => link.push_str(&format!("/roles/{}", r.role_id)),
    }
    if inherited {
        scope.insert("OS-INHERIT:inherited_to".into(), json!("projects"));
        link = format!("/OS-INHERIT{link}/inherited_to_projects");
    }
    links.insert("assignment".into(), json!(url(&link)));
    entity.insert("scope".into(), Value::Object(scope));
    entity.insert("links".into(), Value::Object(links));
    Value::Object(entity)
}

async fn list(
    State(identity): AppState,
    auth: Auth,
    Query(query): Pairs,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let f = Filters::parse(&query);
    let mut policy = Map::new();
    for name in FILTERS {
        if let Some(v) = query_value(&query, name) {
            policy.insert(format!("filter_attr.{name}"), json!(v));
        }
    }
    // A domain-scoped caller is checked against (and later restricted to) its own domain.
    let scoped_domain = if f.include_subtree {
        None
    } else {
        auth.domain.as_ref().map(|d| d.id.clone())
    };
    if f.include_subtree {
        let target = match &f.project_id {
            Some(pid) => match identity.read().projects.get(pid) {
                Some(p) => {
                    json!({"project": {"id": p.id, "name": p.name, "domain_id": p.domain_id}, "domain_id": p.domain_id})
                }
                None => json!({"project": {"id": pid}}),
            },
            None => json!({}),
        };
        policy.insert("target".into(), target);
        auth.enforce(
            "identity:list_role_assignments_for_tree",
            &Value::Object(policy),
        )?;
        let Some(pid) = &f.project_id else {
            return Err(ApiError::bad_request(
                "scope.project.id must be specified if include_subtree is also specified",
            ));
        };
        if !identity.read().projects.contains_key(pid) {
            return Err(not_found("project", pid));
        }
    } else {
        if let Some(d) = &scoped_domain {
            policy.insert("target".into(), json!({"domain_id": d}));
        }
        auth.enforce("identity:list_role_assignments", &Value::Object(policy))?;
    }
    f.check()?;
    let data = identity.read();
    if f.effective
        && f.inherited != Some(false)
        && let Some(pid) = &f.project_id
        && !data.projects.contains_key(pid)
    {
        return Err(not_found("project", pid));
    }
    let base = identity.base_url();
    let body: Vec<Value> = select(&data, &f)
        .iter()
        .filter(|r| {
            scoped_domain
                .as_deref()
                .is_none_or(|d| in_domain(&data, r, d))
        })
        .map(|r| render(&base, &data, r, f.include_names))
        .collect();
    let query_string = raw
        .filter(|q| !q.is_empty())
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    Ok(Json(json!({
        "role_assignments": body,
        "links": {"self": format!("{base}/v3/role_assignments{query_string}"), "previous": null, "next": null},
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://h/identity";

    fn pairs(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.to_string(), String::new()),
            })
            .collect()
    }

    fn role(id: &str, domain: Option<&str>) -> Role {
        Role {
            id: id.into(),
            name: format!("{id}-name"),
            domain_id: domain.map(String::from),
            description: None,
            options: Map::new(),
            extra: Map::new(),
        }
    }

    fn project(id: &str, parent: Option<&str>) -> Project {
        Project {
            id: id.into(),
            name: format!("{id}-name"),
            domain_id: "d".into(),
            parent_id: parent.map(String::from),
            description: String::new(),
            enabled: true,
            tags: vec![],
            options: Map::new(),
            extra: Map::new(),
        }
    }

    fn user(id: &str) -> User {
        User {
            id: id.into(),
            name: format!("{id}-name"),
            domain_id: "d".into(),
            enabled: true,
            default_project_id: None,
            description: None,
            extra: Map::new(),
            options: Map::new(),
            password_hash: None,
            password_created_at: None,
            password_expires_at: None,
            password_history: vec![],
            failed_auth_count: 0,
            failed_auth_at: None,
            created_at: None,
            last_active_at: None,
        }
    }

    /// Domain `d` (projects top > child > grand, and other), users u and v in group g, roles
    /// admin > member > reader, `other`, and `drole` (specific to d) implying reader.
    fn data() -> IdentityData {
        let mut d = IdentityData::default();
        d.domains.insert(
            "d".into(),
            Domain {
                id: "d".into(),
                name: "Dom".into(),
                description: String::new(),
                enabled: true,
                tags: vec![],
                options: Map::new(),
                extra: Map::new(),
            },
        );
        for (id, parent) in [
            ("top", None),
            ("child", Some("top")),
            ("grand", Some("child")),
            ("other", None),
        ] {
            d.projects.insert(id.into(), project(id, parent));
        }
        for id in ["u", "v"] {
            d.users.insert(id.into(), user(id));
            let m = Membership {
                group_id: "g".into(),
                user_id: id.into(),
            };
            d.memberships.insert(m.key(), m);
        }
        d.groups.insert(
            "g".into(),
            Group {
                id: "g".into(),
                name: "g-name".into(),
                domain_id: "d".into(),
                description: String::new(),
                extra: Map::new(),
            },
        );
        for r in ["admin", "member", "reader", "other"] {
            d.roles.insert(r.into(), role(r, None));
        }
        d.roles.insert("drole".into(), role("drole", Some("d")));
        for (p, i) in [
            ("admin", "member"),
            ("member", "reader"),
            ("drole", "reader"),
        ] {
            let rule = ImpliedRole {
                prior_role_id: p.into(),
                implied_role_id: i.into(),
            };
            d.implied.insert(rule.key(), rule);
        }
        d
    }

    fn grant(d: &mut IdentityData, actor: Actor, target: Target, role: &str, inherited: bool) {
        let a = Assignment {
            actor,
            target,
            role_id: role.into(),
            inherited,
        };
        d.assignments.insert(a.key(), a);
    }

    fn user_actor(id: &str) -> Actor {
        Actor::User(id.into())
    }

    fn group_actor(id: &str) -> Actor {
        Actor::Group(id.into())
    }

    fn on(project: &str) -> Target {
        Target::Project(project.into())
    }

    /// Rendered listing for a query.
    fn listing(d: &IdentityData, query: &str) -> Vec<Value> {
        let f = Filters::parse(&pairs(query));
        f.check().unwrap();
        select(d, &f)
            .iter()
            .map(|r| render(BASE, d, r, f.include_names))
            .collect()
    }

    /// (actor id, scope id, role id) of each listed assignment, sorted.
    fn summary(d: &IdentityData, query: &str) -> Vec<(String, String, String)> {
        let mut out: Vec<(String, String, String)> = listing(d, query)
            .iter()
            .map(|a| {
                let actor = a.get("user").or_else(|| a.get("group")).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let scope = &a["scope"];
                let target = scope
                    .get("project")
                    .or_else(|| scope.get("domain"))
                    .map(|t| t["id"].as_str().unwrap().to_string())
                    .unwrap_or_else(|| "system".into());
                (actor, target, a["role"]["id"].as_str().unwrap().to_string())
            })
            .collect();
        out.sort();
        out
    }

    fn s(a: &str, t: &str, r: &str) -> (String, String, String) {
        (a.into(), t.into(), r.into())
    }

    fn direct_data() -> IdentityData {
        let mut d = data();
        grant(&mut d, user_actor("u"), on("top"), "member", false);
        grant(
            &mut d,
            group_actor("g"),
            Target::Domain("d".into()),
            "reader",
            true,
        );
        grant(&mut d, user_actor("u"), Target::System, "admin", false);
        grant(&mut d, group_actor("g"), on("child"), "other", false);
        d
    }

    #[test]
    fn direct_listings_filter_as_keystone() {
        let d = direct_data();
        assert_eq!(
            summary(&d, ""),
            vec![
                s("g", "child", "other"),
                s("g", "d", "reader"),
                s("u", "system", "admin"),
                s("u", "top", "member")
            ]
        );
        assert_eq!(
            summary(&d, "scope.project.id=top"),
            vec![s("u", "top", "member")]
        );
        assert_eq!(
            summary(&d, "scope.domain.id=d"),
            vec![s("g", "d", "reader")]
        );
        assert_eq!(
            summary(&d, "scope.system=all"),
            vec![s("u", "system", "admin")]
        );
        assert_eq!(
            summary(&d, "user.id=u"),
            vec![s("u", "system", "admin"), s("u", "top", "member")]
        );
        assert_eq!(
            summary(&d, "group.id=g"),
            vec![s("g", "child", "other"), s("g", "d", "reader")]
        );
        // Direct listings do not expand implied roles.
        assert_eq!(summary(&d, "role.id=reader"), vec![s("g", "d", "reader")]);
        // System grants are never inherited, yet Keystone lists them with this filter.
        assert_eq!(
            summary(&d, "scope.OS-INHERIT:inherited_to=projects"),
            vec![s("g", "d", "reader"), s("u", "system", "admin")]
        );
        assert_eq!(
            summary(&d, "scope.project.id=top&include_subtree=true"),
            vec![s("g", "child", "other"), s("u", "top", "member")]
        );
        assert_eq!(
            summary(&d, "scope.project.id=child&include_subtree=0"),
            vec![s("g", "child", "other")]
        );
    }

    #[test]
    fn direct_entities_render_as_keystone() {
        let d = direct_data();
        let all = listing(&d, "");
        let find = |role: &str| {
            all.iter()
                .find(|a| a["role"]["id"] == role)
                .unwrap()
                .clone()
        };
        assert_eq!(
            find("reader"),
            json!({
                "group": {"id": "g"}, "role": {"id": "reader"},
                "scope": {"domain": {"id": "d"}, "OS-INHERIT:inherited_to": "projects"},
                "links": {"assignment": "http://h/identity/v3/OS-INHERIT/domains/d/groups/g/roles/reader/inherited_to_projects"}
            })
        );
        assert_eq!(
            find("admin"),
            json!({
                "user": {"id": "u"}, "role": {"id": "admin"}, "scope": {"system": {"all": true}},
                "links": {"assignment": "http://h/identity/v3/system/users/u/roles/admin"}
            })
        );
        assert_eq!(
            find("member")["links"]["assignment"],
            "http://h/identity/v3/projects/top/users/u/roles/member"
        );
    }

    #[test]
    fn names_are_included_on_request() {
        let mut d = direct_data();
        grant(&mut d, user_actor("gone"), on("top"), "drole", false);
        let all = listing(&d, "include_names=True");
        let find = |role: &str| {
            all.iter()
                .find(|a| a["role"]["id"] == role)
                .unwrap()
                .clone()
        };
        let member = find("member");
        assert_eq!(
            member["user"],
            json!({"id": "u", "name": "u-name", "domain": {"id": "d", "name": "Dom"}})
        );
        assert_eq!(
            member["scope"]["project"],
            json!({"id": "top", "name": "top-name", "domain": {"id": "d", "name": "Dom"}})
        );
        assert_eq!(
            member["role"],
            json!({"id": "member", "name": "member-name"})
        );
        let reader = find("reader");
        assert_eq!(
            reader["group"],
            json!({"id": "g", "name": "g-name", "domain": {"id": "d", "name": "Dom"}})
        );
        assert_eq!(reader["scope"]["domain"], json!({"id": "d", "name": "Dom"}));
        assert_eq!(find("admin")["scope"], json!({"system": {"all": true}}));
        let orphan = find("drole");
        assert_eq!(
            orphan["user"],
            json!({"id": "gone", "name": "", "domain": {"id": "", "name": ""}})
        );
        assert_eq!(
            orphan["role"],
            json!({"id": "drole", "name": "drole-name", "domain": {"id": "d", "name": "Dom"}})
        );
    }

    fn effective_data() -> IdentityData {
        let mut d = data();
        grant(&mut d, group_actor("g"), on("top"), "member", false);
        grant(
            &mut d,
            group_actor("g"),
            Target::Domain("d".into()),
            "other",
            true,
        );
        grant(&mut d, user_actor("u"), Target::System, "admin", false);
        grant(&mut d, user_actor("v"), on("child"), "drole", false);
        d
    }

    #[test]
    fn effective_expands_groups_inheritance_and_implied_roles() {
        let d = effective_data();
        let mut expected = vec![s("u", "top", "member"), s("u", "top", "reader")];
        for p in ["top", "child", "grand", "other"] {
            expected.push(s("u", p, "other"));
        }
        expected.sort();
        // No system assignments, no group entities; implied roles added.
        assert_eq!(summary(&d, "effective&user.id=u"), expected);
        let all = summary(&d, "effective");
        assert!(all.contains(&s("v", "grand", "other")) && all.contains(&s("v", "top", "reader")));
        // drole is domain-specific: only what it implies shows.
        assert!(all.contains(&s("v", "child", "reader")) && !all.iter().any(|x| x.2 == "drole"));
        assert!(!all.iter().any(|x| x.1 == "system"));
        // The role filter applies after implied roles are added.
        assert_eq!(
            summary(&d, "effective=true&user.id=u&role.id=reader"),
            vec![s("u", "top", "reader")]
        );
        assert_eq!(
            summary(&d, "effective&scope.project.id=child"),
            vec![
                s("u", "child", "other"),
                s("v", "child", "other"),
                s("v", "child", "reader")
            ]
        );
        assert!(
            summary(&d, "effective&scope.domain.id=d").is_empty(),
            "domains inherit nothing and hold no grant"
        );
    }

    #[test]
    fn effective_entities_link_to_their_source() {
        let d = effective_data();
        let all = listing(&d, "effective&user.id=u&scope.project.id=top");
        let find = |role: &str| {
            all.iter()
                .find(|a| a["role"]["id"] == role)
                .unwrap()
                .clone()
        };
        assert_eq!(
            find("other"),
            json!({
                "user": {"id": "u"}, "role": {"id": "other"},
                "scope": {"project": {"id": "top"}, "OS-INHERIT:inherited_to": "projects"},
                "links": {
                    "assignment": "http://h/identity/v3/OS-INHERIT/domains/d/groups/g/roles/other/inherited_to_projects",
                    "membership": "http://h/identity/v3/groups/g/users/u"
                }
            })
        );
        assert_eq!(
            find("reader"),
            json!({
                "user": {"id": "u"}, "role": {"id": "reader"}, "scope": {"project": {"id": "top"}},
                "links": {
                    "assignment": "http://h/identity/v3/projects/top/groups/g/roles/member",
                    "membership": "http://h/identity/v3/groups/g/users/u",
                    "prior_role": "http://h/identity/v3/prior_role/reader/implies/member"
                }
            })
        );
        assert_eq!(
            find("member")["links"]["assignment"],
            "http://h/identity/v3/projects/top/groups/g/roles/member"
        );
    }

    #[test]
    fn project_inheritance_reaches_only_the_projects_below() {
        let mut d = data();
        grant(&mut d, user_actor("u"), on("top"), "other", true);
        grant(&mut d, user_actor("u"), on("child"), "reader", true);
        assert!(summary(&d, "effective&scope.project.id=top").is_empty());
        assert_eq!(
            summary(&d, "effective&scope.project.id=child"),
            vec![s("u", "child", "other")]
        );
        assert_eq!(
            summary(&d, "effective&scope.project.id=top&include_subtree"),
            vec![
                s("u", "child", "other"),
                s("u", "grand", "other"),
                s("u", "grand", "reader")
            ]
        );
        assert_eq!(
            summary(&d, "effective"),
            vec![
                s("u", "child", "other"),
                s("u", "grand", "other"),
                s("u", "grand", "reader")
            ]
        );
        let grand = listing(&d, "effective&scope.project.id=grand&role.id=reader");
        assert_eq!(
            grand[0]["links"]["assignment"],
            "http://h/identity/v3/OS-INHERIT/projects/child/users/u/roles/reader/inherited_to_projects"
        );
        // The inherited filter selects the grants that pass down.
        assert_eq!(
            summary(
                &d,
                "effective&scope.project.id=grand&scope.OS-INHERIT:inherited_to=projects"
            )
            .len(),
            2
        );
        assert!(
            summary(
                &d,
                "effective&scope.project.id=grand&scope.OS-INHERIT:inherited_to=none"
            )
            .is_empty()
        );
    }

    #[test]
    fn implied_cycles_in_stored_data_terminate() {
        let mut d = data();
        let rule = ImpliedRole {
            prior_role_id: "reader".into(),
            implied_role_id: "admin".into(),
        };
        d.implied.insert(rule.key(), rule);
        grant(&mut d, user_actor("u"), on("top"), "admin", false);
        let all = summary(&d, "effective&user.id=u");
        assert!(all.len() >= 3 && all.len() < 10, "{all:?}");
    }

    #[test]
    fn contradictory_filters_are_refused() {
        let refused = |q: &str| {
            Filters::parse(&pairs(q))
                .check()
                .unwrap_err()
                .message
                .to_string()
        };
        assert_eq!(
            refused("scope.domain.id=d&scope.project.id=p"),
            "Specify a domain or project, not both"
        );
        assert_eq!(
            refused("scope.domain.id=d&scope.system=all"),
            "Specify system or domain, not both"
        );
        assert_eq!(
            refused("scope.project.id=p&scope.system=x"),
            "Specify system or project, not both"
        );
        assert_eq!(
            refused("user.id=u&group.id=g"),
            "Specify a user or group, not both"
        );
        assert_eq!(
            refused("effective&group.id=g"),
            "Combining effective and group filter will always result in an empty list."
        );
        assert_eq!(
            refused("effective=1&scope.domain.id=d&scope.OS-INHERIT:inherited_to=projects"),
            "Combining effective, domain and inherited filters will always result in an empty list."
        );
        assert!(
            Filters::parse(&pairs("effective=0&group.id=g"))
                .check()
                .is_ok(),
            "effective=0 is false"
        );
        let f = Filters::parse(&pairs("effective&include_names=False&scope.system=x"));
        assert!(f.effective && f.include_names && !f.system && f.system_given);
    }
}
