//! `/v2.0/{resource}/{id}/tags` (standard-attr-tag): list, check, add, replace, create several
//! and remove tags of networks, subnets, ports, routers, floating IPs, security groups and
//! subnet pools. A tag change is a change of the resource (its revision moves).

use super::AppState;
use super::authz::{enforce, port_target, subnet_target};
use super::body::check_tag;
use crate::db::Doc;
use crate::errors;
use crate::events::Event;
use crate::model::{FloatingIp, Network, Port, Router, SecurityGroup, Subnet, SubnetPool, now};
use crate::service::Networking;
use axum::Router as AxumRouter;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ferrostack_api::{ApiError, Auth, JsonBody};
use serde_json::{Value, json};
use std::sync::Arc;

/// Most tags per resource (Neutron's `MAX_TAGS`).
const MAX_TAGS: usize = 50;

/// A resource that carries tags.
pub trait Tagged: Doc + Clone + 'static {
    /// The singular name used in policy rules and events (`network`, `security_group`...).
    const RESOURCE: &'static str;
    /// The tags.
    fn tags_mut(&mut self) -> &mut Vec<String>;
    /// Bumps the revision and update time.
    fn bump(&mut self);
    /// The revision.
    fn revision(&self) -> i64;
    /// The policy target.
    fn target(
        &self,
        net: &Networking,
    ) -> impl std::future::Future<Output = Result<Value, ApiError>> + Send;
    /// 404 for this id.
    fn not_found(id: &str) -> ApiError;
}

macro_rules! tagged {
    ($t:ty, $name:literal, $nf:path, |$s:ident, $n:ident| $target:expr) => {
        impl Tagged for $t {
            const RESOURCE: &'static str = $name;
            fn tags_mut(&mut self) -> &mut Vec<String> {
                &mut self.tags
            }
            fn bump(&mut self) {
                self.revision_number += 1;
                self.updated_at = now();
            }
            fn revision(&self) -> i64 {
                self.revision_number
            }
            async fn target(&self, net: &Networking) -> Result<Value, ApiError> {
                let $s = self;
                let $n = net;
                $target
            }
            fn not_found(id: &str) -> ApiError {
                $nf(id)
            }
        }
    };
}

tagged!(Network, "network", errors::network_not_found, |s, _n| Ok(
    s.view(&[])
));
tagged!(Router, "router", errors::router_not_found, |s, _n| Ok(
    s.view(&[])
));
tagged!(
    FloatingIp,
    "floatingip",
    errors::floatingip_not_found,
    |s, _n| Ok(s.view(None))
);
tagged!(
    SecurityGroup,
    "security_group",
    errors::security_group_not_found,
    |s, _n| Ok(s.view(Vec::new()))
);
tagged!(
    SubnetPool,
    "subnetpool",
    errors::subnetpool_not_found,
    |s, _n| Ok(s.view())
);
tagged!(Subnet, "subnet", errors::subnet_not_found, |s, n| {
    let network: Option<Network> = n.db.get(&s.network_id).await?;
    Ok(subnet_target(&s.view(), network.as_ref()))
});
tagged!(Port, "port", errors::port_not_found, |s, n| {
    let network: Option<Network> = n.db.get(&s.network_id).await?;
    Ok(port_target(&s.view(), network.as_ref()))
});

async fn load<T: Tagged>(
    net: &Networking,
    auth: &Auth,
    id: &str,
    action: &str,
) -> Result<T, ApiError> {
    let item: T = net.db.get(id).await?.ok_or_else(|| T::not_found(id))?;
    let target = item.target(net).await?;
    enforce(auth, &format!("{action}_{}:tags", T::RESOURCE), &target)?;
    Ok(item)
}

async fn change<T: Tagged>(
    net: &Networking,
    id: &str,
    edit: impl Fn(&mut Vec<String>) + Send + Sync,
) -> Result<Vec<String>, ApiError> {
    Ok(crate::db::write_tx!(net.db, |tx| (async {
        let mut item: T = tx.lock(id).await?.ok_or_else(|| T::not_found(id))?;
        let before = item.tags_mut().clone();
        edit(item.tags_mut());
        if item.tags_mut().len() > MAX_TAGS {
            return Err(
                errors::bad_request(format!("Too many tags: the maximum is {MAX_TAGS}.")).into(),
            );
        }
        if *item.tags_mut() != before {
            item.bump();
            tx.save(&item).await?;
            tx.emit(Event::new(T::RESOURCE, "updated", id, item.revision()));
        }
        Ok(item.tags_mut().clone())
    })
    .await)?)
}

fn tags_body(body: Value) -> Result<Vec<String>, ApiError> {
    let tags = body
        .get("tags")
        .and_then(Value::as_array)
        .ok_or_else(|| errors::bad_request("Invalid tags body"))?;
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let tag = t.as_str().ok_or_else(|| {
            errors::bad_request(format!(
                "Invalid input for tags. Reason: '{t}' is not a valid tag."
            ))
        })?;
        check_tag(tag)?;
        if !out.iter().any(|o| o == tag) {
            out.push(tag.to_string());
        }
    }
    Ok(out)
}

async fn index<T: Tagged>(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut item: T = load(&net, &auth, &id, "get").await?;
    Ok(axum::Json(json!({"tags": item.tags_mut().clone()})).into_response())
}

async fn show<T: Tagged>(
    State(net): AppState,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_tag(&tag)?;
    let mut item: T = load(&net, &auth, &id, "get").await?;
    match item.tags_mut().contains(&tag) {
        true => Ok(StatusCode::NO_CONTENT.into_response()),
        false => Err(tag_not_found::<T>(&id, &tag)),
    }
}

fn tag_not_found<T: Tagged>(id: &str, tag: &str) -> ApiError {
    errors::not_found(
        "TagNotFound",
        format!("Tag {tag} could not be found for {} {id}.", T::RESOURCE),
    )
}

async fn add<T: Tagged>(
    State(net): AppState,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_tag(&tag)?;
    load::<T>(&net, &auth, &id, "update").await?;
    change::<T>(&net, &id, |tags| {
        if !tags.contains(&tag) {
            tags.push(tag.clone());
        }
    })
    .await?;
    Ok(StatusCode::CREATED.into_response())
}

async fn replace<T: Tagged>(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let new = tags_body(body)?;
    load::<T>(&net, &auth, &id, "update").await?;
    let tags = change::<T>(&net, &id, |tags| *tags = new.clone()).await?;
    Ok(axum::Json(json!({ "tags": tags })).into_response())
}

async fn create_all<T: Tagged>(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let new = tags_body(body)?;
    load::<T>(&net, &auth, &id, "create").await?;
    let tags = change::<T>(&net, &id, |tags| {
        for t in &new {
            if !tags.contains(t) {
                tags.push(t.clone());
            }
        }
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(json!({ "tags": tags }))).into_response())
}

async fn clear<T: Tagged>(
    State(net): AppState,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    load::<T>(&net, &auth, &id, "delete").await?;
    change::<T>(&net, &id, |tags| tags.clear()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove<T: Tagged>(
    State(net): AppState,
    auth: Auth,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    check_tag(&tag)?;
    let mut item: T = load(&net, &auth, &id, "delete").await?;
    if !item.tags_mut().contains(&tag) {
        return Err(tag_not_found::<T>(&id, &tag));
    }
    change::<T>(&net, &id, |tags| tags.retain(|t| t != &tag)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn routes_for<T: Tagged>(
    router: AxumRouter<Arc<Networking>>,
    collection: &str,
) -> AxumRouter<Arc<Networking>> {
    router
        .route(
            &format!("/{collection}/{{id}}/tags"),
            get(index::<T>)
                .put(replace::<T>)
                .post(create_all::<T>)
                .delete(clear::<T>),
        )
        .route(
            &format!("/{collection}/{{id}}/tags/{{tag}}"),
            get(show::<T>).put(add::<T>).delete(remove::<T>),
        )
}

/// Adds the tag routes of every taggable collection.
pub fn routes(router: AxumRouter<Arc<Networking>>) -> AxumRouter<Arc<Networking>> {
    let router = routes_for::<Network>(router, "networks");
    let router = routes_for::<Subnet>(router, "subnets");
    let router = routes_for::<Port>(router, "ports");
    let router = routes_for::<Router>(router, "routers");
    let router = routes_for::<FloatingIp>(router, "floatingips");
    let router = routes_for::<SecurityGroup>(router, "security-groups");
    routes_for::<SubnetPool>(router, "subnetpools")
}
