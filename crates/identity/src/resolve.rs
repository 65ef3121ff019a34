//! Derived facts over the identity data: group membership, project ancestry, effective role
//! assignments (groups, inheritance and implied roles expanded) and lookups by name.

use crate::data::IdentityData;
use crate::model::*;
use std::collections::{HashSet, VecDeque};

/// An assignment as `GET /v3/role_assignments?effective` reports it: the user it reaches and,
/// when it came through a group, that group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Effective {
    pub actor: Actor,
    pub target: Target,
    pub role_id: String,
    pub inherited: bool,
    /// The group it came through (effective listings name the user, not the group).
    pub via_group: Option<String>,
    /// The role it was implied by.
    pub prior_role: Option<String>,
}

impl IdentityData {
    /// Ids of the groups `user_id` belongs to.
    pub fn groups_of(&self, user_id: &str) -> Vec<String> {
        self.memberships
            .values()
            .filter(|m| m.user_id == user_id)
            .map(|m| m.group_id.clone())
            .collect()
    }

    /// Ids of the members of `group_id`.
    pub fn members_of(&self, group_id: &str) -> Vec<String> {
        self.memberships
            .values()
            .filter(|m| m.group_id == group_id)
            .map(|m| m.user_id.clone())
            .collect()
    }

    /// The ancestors of a project, nearest first (cycle-safe).
    pub fn ancestors(&self, project_id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut current = self
            .projects
            .get(project_id)
            .and_then(|p| p.parent_id.clone());
        while let Some(id) = current {
            if out.contains(&id) {
                break;
            }
            current = self.projects.get(&id).and_then(|p| p.parent_id.clone());
            out.push(id);
        }
        out
    }

    /// The descendants of a project (any depth).
    pub fn descendants(&self, project_id: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut queue = VecDeque::from([project_id.to_string()]);
        while let Some(id) = queue.pop_front() {
            for p in self.projects.values() {
                if p.parent_id.as_deref() == Some(&id) && !out.contains(&p.id) {
                    out.push(p.id.clone());
                    queue.push_back(p.id.clone());
                }
            }
        }
        out
    }

    /// Role ids implied by `role_id`, transitively, excluding itself.
    pub fn implied_by(&self, role_id: &str) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        let mut queue = VecDeque::from([role_id.to_string()]);
        while let Some(id) = queue.pop_front() {
            for rule in self.implied.values().filter(|r| r.prior_role_id == id) {
                if rule.implied_role_id != role_id && !seen.contains(&rule.implied_role_id) {
                    seen.push(rule.implied_role_id.clone());
                    queue.push_back(rule.implied_role_id.clone());
                }
            }
        }
        seen
    }

    /// Effective role ids (implied roles included) of a user on a target:
    /// direct and group assignments, inherited ones from the domain and ancestor projects.
    pub fn roles_for(&self, user_id: &str, target: &Target) -> Vec<String> {
        let mut actors = vec![Actor::User(user_id.to_string())];
        actors.extend(self.groups_of(user_id).into_iter().map(Actor::Group));
        let inherited_from: Vec<Target> = match target {
            Target::Project(pid) => {
                let mut t: Vec<Target> = self
                    .ancestors(pid)
                    .into_iter()
                    .map(Target::Project)
                    .collect();
                if let Some(p) = self.projects.get(pid) {
                    t.push(Target::Domain(p.domain_id.clone()));
                }
                t
            }
            _ => Vec::new(),
        };
        let mut roles: Vec<String> = Vec::new();
        for a in self.assignments.values() {
            if !actors.contains(&a.actor) {
                continue;
            }
            let applies = (!a.inherited && &a.target == target)
                || (a.inherited && inherited_from.contains(&a.target));
            if applies && !roles.contains(&a.role_id) {
                roles.push(a.role_id.clone());
            }
        }
        self.expand_implied(roles)
    }

    /// `roles` plus everything they imply, without duplicates, in a stable order.
    pub fn expand_implied(&self, roles: Vec<String>) -> Vec<String> {
        let mut out = roles.clone();
        for r in &roles {
            for implied in self.implied_by(r) {
                if !out.contains(&implied) {
                    out.push(implied);
                }
            }
        }
        out.retain(|id| self.roles.contains_key(id));
        out
    }

    /// Every assignment, expanded as `effective` listings show them: group assignments become one
    /// per member, inherited ones one per project below the target, implied roles added.
    pub fn effective_assignments(&self) -> Vec<Effective> {
        let mut out: Vec<Effective> = Vec::new();
        let mut seen: HashSet<(Actor, Target, String)> = HashSet::new();
        let mut push = |out: &mut Vec<Effective>, e: Effective| {
            if seen.insert((e.actor.clone(), e.target.clone(), e.role_id.clone())) {
                out.push(e);
            }
        };
        for a in self.assignments.values() {
            let users: Vec<(String, Option<String>)> = match &a.actor {
                Actor::User(u) => vec![(u.clone(), None)],
                Actor::Group(g) => self
                    .members_of(g)
                    .into_iter()
                    .map(|u| (u, Some(g.clone())))
                    .collect(),
            };
            let targets: Vec<Target> = match (&a.target, a.inherited) {
                (t, false) => vec![t.clone()],
                (Target::Project(p), true) => self
                    .descendants(p)
                    .into_iter()
                    .map(Target::Project)
                    .collect(),
                (Target::Domain(d), true) => self
                    .projects
                    .values()
                    .filter(|p| &p.domain_id == d)
                    .map(|p| Target::Project(p.id.clone()))
                    .collect(),
                (Target::System, true) => Vec::new(),
            };
            for (user, group) in &users {
                for target in &targets {
                    let mut roles = vec![(a.role_id.clone(), None)];
                    roles.extend(
                        self.implied_by(&a.role_id)
                            .into_iter()
                            .map(|r| (r, Some(a.role_id.clone()))),
                    );
                    for (role_id, prior) in roles {
                        push(
                            &mut out,
                            Effective {
                                actor: Actor::User(user.clone()),
                                target: target.clone(),
                                role_id,
                                inherited: a.inherited,
                                via_group: group.clone(),
                                prior_role: prior,
                            },
                        );
                    }
                }
            }
        }
        out
    }

    /// Finds a domain by name (case-sensitive, as Keystone with its default collation).
    pub fn domain_by_name(&self, name: &str) -> Option<&Domain> {
        self.domains.values().find(|d| d.name == name)
    }

    /// Finds a user by name within a domain.
    pub fn user_by_name(&self, domain_id: &str, name: &str) -> Option<&User> {
        self.users
            .values()
            .find(|u| u.domain_id == domain_id && u.name == name)
    }

    /// Finds a project by name within a domain.
    pub fn project_by_name(&self, domain_id: &str, name: &str) -> Option<&Project> {
        self.projects
            .values()
            .find(|p| p.domain_id == domain_id && p.name == name)
    }

    /// Finds a global role by name.
    pub fn role_by_name(&self, name: &str) -> Option<&Role> {
        self.roles
            .values()
            .find(|r| r.name == name && r.domain_id.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn role(id: &str) -> Role {
        Role {
            id: id.into(),
            name: id.into(),
            domain_id: None,
            description: None,
            options: Map::new(),
            extra: Map::new(),
        }
    }

    fn project(id: &str, parent: Option<&str>) -> Project {
        Project {
            id: id.into(),
            name: id.into(),
            domain_id: "d".into(),
            parent_id: parent.map(String::from),
            description: String::new(),
            enabled: true,
            tags: vec![],
            options: Map::new(),
            extra: Map::new(),
        }
    }

    fn data() -> IdentityData {
        let mut d = IdentityData::default();
        for r in ["admin", "member", "reader", "other"] {
            d.roles.insert(r.into(), role(r));
        }
        for (p, i) in [("admin", "member"), ("member", "reader")] {
            let rule = ImpliedRole {
                prior_role_id: p.into(),
                implied_role_id: i.into(),
            };
            d.implied.insert(rule.key(), rule);
        }
        d.projects.insert("top".into(), project("top", None));
        d.projects
            .insert("child".into(), project("child", Some("top")));
        let m = Membership {
            group_id: "g".into(),
            user_id: "u".into(),
        };
        d.memberships.insert(m.key(), m);
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

    #[test]
    fn implied_roles_expand_transitively() {
        let mut d = data();
        grant(
            &mut d,
            Actor::User("u".into()),
            Target::Project("top".into()),
            "admin",
            false,
        );
        let roles = d.roles_for("u", &Target::Project("top".into()));
        assert_eq!(roles, vec!["admin", "member", "reader"]);
        assert!(
            d.roles_for("u", &Target::Project("child".into()))
                .is_empty()
        );
    }

    #[test]
    fn group_and_inherited_assignments_reach_the_user() {
        let mut d = data();
        grant(
            &mut d,
            Actor::Group("g".into()),
            Target::Project("top".into()),
            "other",
            true,
        );
        grant(
            &mut d,
            Actor::Group("g".into()),
            Target::Domain("d".into()),
            "reader",
            true,
        );
        let child_roles = d.roles_for("u", &Target::Project("child".into()));
        assert!(
            child_roles.contains(&"other".to_string())
                && child_roles.contains(&"reader".to_string())
        );
        // Inherited-to-projects does not apply to the project it sits on.
        assert_eq!(
            d.roles_for("u", &Target::Project("top".into())),
            vec!["reader".to_string()]
        );
        let eff = d.effective_assignments();
        assert!(eff.iter().any(|e| e.actor == Actor::User("u".into())
            && e.target == Target::Project("child".into())
            && e.role_id == "other"
            && e.via_group.as_deref() == Some("g")));
    }
}
