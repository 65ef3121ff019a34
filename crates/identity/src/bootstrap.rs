//! Idempotent bootstrap, as `keystone-manage bootstrap` plus the demo project: the default
//! domain, the standard roles and their implications, the admin and service projects, the
//! admin user (project and system admin), the catalog of every Ferrostack service in the
//! region, and a `demo` project whose `demo` user holds `member`.

use crate::api::new_id;
use crate::data::Change;
use crate::model::*;
use crate::service::Identity;
use ferrostack_api::ApiError;
use serde_json::Map;

/// What bootstrap needs besides the configuration.
pub struct BootstrapInput {
    /// Password of the `admin` user (set when the user is created).
    pub admin_password: String,
    /// Password of the `demo` user (set when the user is created); `None` skips the demo project.
    pub demo_password: Option<String>,
    /// Password of the `ferrostack` service user (the one Nova's `nova` user is: `admin` and
    /// `service` in the `service` project), which compute agents use to fetch images;
    /// `None` skips it.
    pub service_password: Option<String>,
}

/// Name of the service user compute agents authenticate as.
pub const SERVICE_USER: &str = "ferrostack";

/// Service catalog entries: (type, name, path under the public URL).
pub const SERVICES: &[(&str, &str, &str)] = &[
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/networking"),
    ("block-storage", "cinder", "/volume/v3"),
    ("placement", "placement", "/placement"),
];

const ROLES: &[&str] = &["admin", "manager", "member", "reader", "service"];
const IMPLICATIONS: &[(&str, &str)] = &[
    ("admin", "manager"),
    ("manager", "member"),
    ("member", "reader"),
];

fn role(data: &crate::data::IdentityData, name: &str) -> Option<String> {
    data.role_by_name(name).map(|r| r.id.clone())
}

/// Runs bootstrap; safe to run on every start.
pub async fn bootstrap(identity: &Identity, input: &BootstrapInput) -> Result<(), ApiError> {
    let config = identity.config().clone();
    // Step 1: domain and roles (other steps need their ids).
    let changes = {
        let mut changes = Vec::new();
        let data = identity.read();
        if !data.domains.contains_key("default") {
            changes.push(Change::put(&Domain {
                id: "default".into(),
                name: "Default".into(),
                description: "The default domain".into(),
                enabled: true,
                tags: vec![],
                options: Map::new(),
                extra: Map::new(),
            }));
        }
        for name in ROLES {
            if data.role_by_name(name).is_none() {
                changes.push(Change::put(&Role {
                    id: new_id(),
                    name: name.to_string(),
                    domain_id: None,
                    description: None,
                    options: Map::new(),
                    extra: Map::new(),
                }));
            }
        }
        changes
    };
    identity.write(changes).await?;
    // Step 2: implications, projects, users, assignments, catalog.
    let mut changes = Vec::new();
    let mut new_users = Vec::new();
    {
        let data = identity.read();
        for (prior, implied) in IMPLICATIONS {
            if let (Some(p), Some(i)) = (role(&data, prior), role(&data, implied)) {
                let rule = ImpliedRole {
                    prior_role_id: p,
                    implied_role_id: i,
                };
                if !data.implied.contains_key(&rule.key()) {
                    changes.push(Change::put(&rule));
                }
            }
        }
        let project_id =
            |name: &str, changes: &mut Vec<Change>| match data.project_by_name("default", name) {
                Some(p) => p.id.clone(),
                None => {
                    let p = Project {
                        id: new_id(),
                        name: name.to_string(),
                        domain_id: "default".into(),
                        parent_id: None,
                        description: format!("Bootstrap project {name}"),
                        enabled: true,
                        tags: vec![],
                        options: Map::new(),
                        extra: Map::new(),
                    };
                    changes.push(Change::put(&p));
                    p.id
                }
            };
        let admin_project = project_id("admin", &mut changes);
        let service_project = project_id("service", &mut changes);
        let demo_project = input
            .demo_password
            .as_ref()
            .map(|_| project_id("demo", &mut changes));
        let user_id = |name: &str,
                       password: &str,
                       default_project: &str,
                       new_users: &mut Vec<(User, String)>| {
            match data.user_by_name("default", name) {
                Some(u) => u.id.clone(),
                None => {
                    let u = User {
                        id: new_id(),
                        name: name.to_string(),
                        domain_id: "default".into(),
                        enabled: true,
                        default_project_id: Some(default_project.to_string()),
                        description: None,
                        extra: Map::new(),
                        options: Map::new(),
                        password_hash: None,
                        password_created_at: None,
                        password_expires_at: None,
                        password_history: vec![],
                        failed_auth_count: 0,
                        failed_auth_at: None,
                        created_at: Some(crate::format_time(chrono::Utc::now())),
                        last_active_at: None,
                    };
                    let id = u.id.clone();
                    new_users.push((u, password.to_string()));
                    id
                }
            }
        };
        let admin = user_id(
            "admin",
            &input.admin_password,
            &admin_project,
            &mut new_users,
        );
        let admin_role = role(&data, "admin").expect("created in step 1");
        let grant = |actor: &str, target: Target, role_id: &str, changes: &mut Vec<Change>| {
            let a = Assignment {
                actor: Actor::User(actor.into()),
                target,
                role_id: role_id.into(),
                inherited: false,
            };
            if !data.assignments.contains_key(&a.key()) {
                changes.push(Change::put(&a));
            }
        };
        grant(
            &admin,
            Target::Project(admin_project.clone()),
            &admin_role,
            &mut changes,
        );
        grant(&admin, Target::System, &admin_role, &mut changes);
        if let Some(password) = &input.service_password {
            let service_user = user_id(SERVICE_USER, password, &service_project, &mut new_users);
            let service_role = role(&data, "service").expect("created in step 1");
            for role_id in [&admin_role, &service_role] {
                grant(
                    &service_user,
                    Target::Project(service_project.clone()),
                    role_id,
                    &mut changes,
                );
            }
        }
        if let (Some(demo_project), Some(password)) = (demo_project, &input.demo_password) {
            let demo = user_id("demo", password, &demo_project, &mut new_users);
            let member_role = role(&data, "member").expect("created in step 1");
            grant(
                &demo,
                Target::Project(demo_project),
                &member_role,
                &mut changes,
            );
        }
        // Catalog.
        let region = config.bootstrap.region.clone();
        if !data.regions.contains_key(&region) {
            changes.push(Change::put(&Region {
                id: region.clone(),
                description: String::new(),
                parent_region_id: None,
                extra: Map::new(),
            }));
        }
        let base = config.api.public_url.trim_end_matches('/').to_string();
        for (service_type, name, path) in SERVICES {
            let service_id = match data
                .services
                .values()
                .find(|s| s.service_type == *service_type)
            {
                Some(s) => s.id.clone(),
                None => {
                    let s = Service {
                        id: new_id(),
                        service_type: service_type.to_string(),
                        name: name.to_string(),
                        description: String::new(),
                        enabled: true,
                        extra: Map::new(),
                    };
                    changes.push(Change::put(&s));
                    s.id
                }
            };
            let url = format!("{base}{path}");
            for interface in ["public", "internal", "admin"] {
                let existing = data.endpoints.values().find(|e| {
                    e.service_id == service_id
                        && e.interface == interface
                        && e.region_id.as_deref() == Some(&region)
                });
                match existing {
                    Some(e) if e.url == url => {}
                    Some(e) => {
                        let mut e = e.clone();
                        e.url = url.clone();
                        changes.push(Change::put(&e));
                    }
                    None => changes.push(Change::put(&Endpoint {
                        id: new_id(),
                        service_id: service_id.clone(),
                        interface: interface.into(),
                        url: url.clone(),
                        region_id: Some(region.clone()),
                        enabled: true,
                        extra: Map::new(),
                    })),
                }
            }
        }
    }
    for (user, password) in new_users {
        let user = crate::api::users::set_password(identity, user, &password, false).await?;
        changes.insert(0, Change::put(&user));
    }
    identity.write(changes).await?;
    tracing::info!("identity bootstrap complete");
    Ok(())
}
