//! Rendering of token bodies (issue and validation responses) straight to bytes.
//!
//! This is the hot path of validation: typed structs serialize without building a JSON tree, and
//! the catalog, the largest part, is rendered once per change of the identity data and spliced in
//! as raw JSON.

use crate::model::{Endpoint, Service};
use crate::service::Identity;
use ferrostack_api::{AuthContext, NamedRef};
use serde::Serialize;
use serde_json::value::RawValue;

#[derive(Serialize)]
struct Body<'a> {
    token: Token<'a>,
}

#[derive(Serialize)]
struct Token<'a> {
    methods: &'a [String],
    user: User<'a>,
    audit_ids: &'a [String],
    expires_at: &'a str,
    issued_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    project: Option<Scoped<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_domain: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain: Option<&'a NamedRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<System>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_credential: Option<AppCred<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    roles: Option<&'a [NamedRef]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    catalog: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct User<'a> {
    domain: &'a NamedRef,
    id: &'a str,
    name: &'a str,
    password_expires_at: Option<&'a str>,
}

#[derive(Serialize)]
struct Scoped<'a> {
    domain: &'a NamedRef,
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct System {
    all: bool,
}

#[derive(Serialize)]
struct AppCred<'a> {
    id: &'a str,
    name: &'a str,
    restricted: bool,
}

/// `{"token": {...}}` as Keystone renders it for issue and validation.
pub fn render(identity: &Identity, ctx: &AuthContext, with_catalog: bool) -> Vec<u8> {
    let scoped = ctx.project.is_some() || ctx.domain.is_some() || ctx.system_scope.is_some();
    let catalog = match scoped && with_catalog {
        true => Some(identity.catalog_json()),
        false => None,
    };
    let project = match (&ctx.project, &ctx.project_domain) {
        (Some(p), Some(d)) => Some(Scoped {
            domain: d,
            id: &p.id,
            name: &p.name,
        }),
        _ => None,
    };
    let body = Body {
        token: Token {
            methods: &ctx.methods,
            user: User {
                domain: &ctx.user_domain,
                id: &ctx.user.id,
                name: &ctx.user.name,
                password_expires_at: ctx.password_expires_at.as_deref(),
            },
            audit_ids: &ctx.audit_ids,
            expires_at: &ctx.expires_at,
            issued_at: &ctx.issued_at,
            is_domain: project.as_ref().map(|_| false),
            project,
            domain: ctx.domain.as_ref(),
            system: ctx.system_scope.as_ref().map(|_| System { all: true }),
            application_credential: ctx.application_credential.as_ref().map(
                |(id, name, restricted)| AppCred {
                    id,
                    name,
                    restricted: *restricted,
                },
            ),
            roles: scoped.then_some(ctx.roles.as_slice()),
            catalog: catalog.as_deref(),
        },
    };
    serde_json::to_vec(&body).expect("token bodies serialize")
}

#[derive(Serialize)]
struct CatalogEntry<'a> {
    endpoints: Vec<CatalogEndpoint<'a>>,
    id: &'a str,
    #[serde(rename = "type")]
    service_type: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct CatalogEndpoint<'a> {
    id: &'a str,
    interface: &'a str,
    region_id: Option<&'a str>,
    url: &'a str,
    region: Option<&'a str>,
}

/// The catalog as JSON: enabled services (by type) with their enabled endpoints (by interface).
pub fn render_catalog(data: &crate::data::IdentityData) -> Box<RawValue> {
    let mut services: Vec<&Service> = data.services.values().filter(|s| s.enabled).collect();
    services.sort_by(|a, b| a.service_type.cmp(&b.service_type).then(a.id.cmp(&b.id)));
    let entries: Vec<CatalogEntry> = services
        .into_iter()
        .map(|s| {
            let mut endpoints: Vec<&Endpoint> = data
                .endpoints
                .values()
                .filter(|e| e.enabled && e.service_id == s.id)
                .collect();
            endpoints.sort_by(|a, b| a.interface.cmp(&b.interface).then(a.id.cmp(&b.id)));
            CatalogEntry {
                endpoints: endpoints
                    .into_iter()
                    .map(|e| CatalogEndpoint {
                        id: &e.id,
                        interface: &e.interface,
                        region_id: e.region_id.as_deref(),
                        url: &e.url,
                        region: e.region_id.as_deref(),
                    })
                    .collect(),
                id: &s.id,
                service_type: &s.service_type,
                name: &s.name,
            }
        })
        .collect();
    serde_json::value::to_raw_value(&entries).expect("catalogs serialize")
}
