//! What else goes when an entity is deleted: one place for every dependent row, so each delete
//! handler commits the entity and its dependents in one transaction and nothing is left dangling.

use crate::api::{credentials, domain_config, endpoint_filter};
use crate::data::{Change, IdentityData};
use crate::model::*;

/// Deletions of the grants `actor` holds.
fn grants_of(data: &IdentityData, actor: Actor) -> Vec<Change> {
    data.assignments
        .values()
        .filter(|a| a.actor == actor)
        .map(Change::delete)
        .collect()
}

/// Dependents of a user: grants, memberships, application credentials, credentials.
pub fn user(data: &IdentityData, user_id: &str) -> Vec<Change> {
    let mut changes = grants_of(data, Actor::User(user_id.to_string()));
    changes.extend(
        data.memberships
            .values()
            .filter(|m| m.user_id == user_id)
            .map(Change::delete),
    );
    changes.extend(
        data.app_creds
            .values()
            .filter(|c| c.user_id == user_id)
            .map(Change::delete),
    );
    changes.extend(credentials::changes_for_deleted_user(data, user_id));
    changes
}

/// Dependents of a group: its grants and memberships.
pub fn group(data: &IdentityData, group_id: &str) -> Vec<Change> {
    let mut changes = grants_of(data, Actor::Group(group_id.to_string()));
    changes.extend(
        data.memberships
            .values()
            .filter(|m| m.group_id == group_id)
            .map(Change::delete),
    );
    changes
}

/// Dependents of a project: grants on it, application credentials and credentials bound to it,
/// endpoint-filter associations.
pub fn project(data: &IdentityData, project_id: &str) -> Vec<Change> {
    let target = Target::Project(project_id.to_string());
    let mut changes: Vec<Change> = data
        .assignments
        .values()
        .filter(|a| a.target == target)
        .map(Change::delete)
        .collect();
    changes.extend(
        data.app_creds
            .values()
            .filter(|c| c.project_id == project_id)
            .map(Change::delete),
    );
    changes.extend(credentials::changes_for_deleted_project(data, project_id));
    changes.extend(endpoint_filter::changes_for_deleted_project(
        data, project_id,
    ));
    changes
}

/// Dependents of an endpoint: endpoint-filter associations.
pub fn endpoint(data: &IdentityData, endpoint_id: &str) -> Vec<Change> {
    endpoint_filter::changes_for_deleted_endpoint(data, endpoint_id)
}

/// Dependents of a service: its endpoints and theirs.
pub fn service(data: &IdentityData, service_id: &str) -> Vec<Change> {
    let mut changes = Vec::new();
    for e in data
        .endpoints
        .values()
        .filter(|e| e.service_id == service_id)
    {
        changes.push(Change::delete(e));
        changes.extend(endpoint(data, &e.id));
    }
    changes
}

/// Everything inside a domain: its projects, users, groups, domain roles, grants on it and its
/// configuration, each with their own dependents.
pub fn domain(data: &IdentityData, domain_id: &str) -> Vec<Change> {
    let target = Target::Domain(domain_id.to_string());
    let mut changes: Vec<Change> = data
        .assignments
        .values()
        .filter(|a| a.target == target)
        .map(Change::delete)
        .collect();
    for p in data.projects.values().filter(|p| p.domain_id == domain_id) {
        changes.push(Change::delete(p));
        changes.extend(project(data, &p.id));
    }
    for u in data.users.values().filter(|u| u.domain_id == domain_id) {
        changes.push(Change::delete(u));
        changes.extend(user(data, &u.id));
    }
    for g in data.groups.values().filter(|g| g.domain_id == domain_id) {
        changes.push(Change::delete(g));
        changes.extend(group(data, &g.id));
    }
    for r in data
        .roles
        .values()
        .filter(|r| r.domain_id.as_deref() == Some(domain_id))
    {
        changes.push(Change::delete(r));
        changes.extend(
            data.assignments
                .values()
                .filter(|a| a.role_id == r.id)
                .map(Change::delete),
        );
        changes.extend(
            data.implied
                .values()
                .filter(|i| i.prior_role_id == r.id || i.implied_role_id == r.id)
                .map(Change::delete),
        );
    }
    changes.extend(domain_config::changes_for_deleted_domain(data, domain_id));
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn data_with_one_of_everything(domain_id: &str) -> IdentityData {
        let mut d = IdentityData::default();
        let project = Project {
            id: format!("p-{domain_id}"),
            name: "p".into(),
            domain_id: domain_id.into(),
            parent_id: None,
            description: String::new(),
            enabled: true,
            tags: vec![],
            options: Map::new(),
            extra: Map::new(),
        };
        let user: User = serde_json::from_value(serde_json::json!({
            "id": format!("u-{domain_id}"), "name": "u", "domain_id": domain_id, "enabled": true,
            "default_project_id": null,
        }))
        .unwrap();
        let group = Group {
            id: format!("g-{domain_id}"),
            name: "g".into(),
            domain_id: domain_id.into(),
            description: String::new(),
            extra: Map::new(),
        };
        let membership = Membership {
            group_id: group.id.clone(),
            user_id: user.id.clone(),
        };
        let grants = [
            Assignment {
                actor: Actor::User(user.id.clone()),
                target: Target::Project(project.id.clone()),
                role_id: "r".into(),
                inherited: false,
            },
            Assignment {
                actor: Actor::Group(group.id.clone()),
                target: Target::Domain(domain_id.into()),
                role_id: "r".into(),
                inherited: true,
            },
        ];
        let cred = AppCred {
            id: format!("ac-{domain_id}"),
            name: "ac".into(),
            description: None,
            user_id: user.id.clone(),
            project_id: project.id.clone(),
            secret_hash: String::new(),
            expires_at: None,
            unrestricted: false,
            role_ids: vec!["r".into()],
        };
        d.projects.insert(project.id.clone(), project);
        d.users.insert(user.id.clone(), user);
        d.groups.insert(group.id.clone(), group);
        d.memberships.insert(membership.key(), membership);
        for g in grants {
            d.assignments.insert(g.key(), g);
        }
        d.app_creds.insert(cred.id.clone(), cred);
        d
    }

    #[test]
    fn deleting_a_domain_leaves_nothing_of_it_behind() {
        let mut data = data_with_one_of_everything("a");
        let other = data_with_one_of_everything("b");
        for (k, v) in other.projects.clone() {
            data.projects.insert(k, v);
        }
        for (k, v) in other.users.clone() {
            data.users.insert(k, v);
        }
        for (k, v) in other.assignments.clone() {
            data.assignments.insert(k, v);
        }
        let changes = domain(&data, "a");
        data.apply_changes(&changes);
        assert!(data.projects.keys().all(|k| k.ends_with("-b")));
        assert!(data.users.keys().all(|k| k.ends_with("-b")));
        assert!(data.groups.is_empty() && data.memberships.is_empty() && data.app_creds.is_empty());
        assert_eq!(data.assignments.len(), other.assignments.len());
    }
}
