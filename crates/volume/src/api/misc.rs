//! The small APIs: availability zones (`contrib/availability_zones.py`), the scheduler's pools
//! (`contrib/scheduler_stats.py`) and the extension list (`api/extensions.py`). The services
//! are [`super::services`]'.

use super::snapshots::{bool_param, reject_invalid_filters};
use super::{AppState, Mv, at_least, authorize, ok, query_map};
use crate::errors;
use crate::model::VolumeType;
use crate::scheduler;
use crate::service::Volumes;
use axum::{
    Router,
    extract::{RawQuery, State},
    response::Response,
    routing::get,
};
use ferrostack_api::{ApiError, Auth, Public};
use serde_json::{Value, json};
use std::sync::Arc;

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Volumes>> {
    Router::new()
        .route("/os-availability-zone", get(availability_zones))
        .route("/scheduler-stats/get_pools", get(pools))
        .route("/extensions", get(extensions))
}

/// `GET /v3/os-availability-zone`: the backend's zone (any authenticated caller).
async fn availability_zones(_: Public, State(v): AppState, _auth: Auth) -> Response {
    ok(
        "availabilityZoneInfo",
        json!([{
            "zoneName": v.settings.availability_zone,
            "zoneState": {"available": true},
        }]),
    )
}

/// `GET /v3/scheduler-stats/get_pools[?detail=true]` (admins): the backend's one pool;
/// filters `name` (3.28) and `volume_type` (3.35: the pools whose capabilities satisfy the
/// type's extra specs, see [`crate::scheduler`]).
async fn pools(
    State(v): AppState,
    auth: Auth,
    mv: Mv,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    authorize(&auth, "scheduler_extension:scheduler_stats:get_pools")?;
    let mut filters = query_map(raw.as_deref());
    let detail = bool_param("detail", filters.remove("detail").as_deref())?;
    if at_least(&mv, 28) {
        reject_invalid_filters(&mut filters, &["name", "volume_type"])?;
    } else {
        filters.clear();
    }
    if !at_least(&mv, 35) {
        filters.remove("volume_type");
    }
    let name = v.volume_host();
    let caps = match detail || filters.contains_key("volume_type") {
        true => scheduler::pool_capabilities(&v)
            .await
            .map_err(ApiError::internal)?,
        false => Default::default(),
    };
    let mut serves = filters.get("name").is_none_or(|n| *n == name);
    if let Some(wanted) = filters.get("volume_type") {
        let mut conn = v.db.conn().await?;
        let volume_type: VolumeType = crate::types::find(&mut conn, wanted, None, true)
            .await?
            .ok_or_else(|| errors::volume_type_not_found(wanted))?;
        serves &= scheduler::unsatisfied(&volume_type.extra_specs, &caps).is_none();
    }
    if !serves {
        return Ok(ok("pools", json!([])));
    }
    let pool = match detail {
        false => json!({"name": name}),
        true => json!({"name": name, "capabilities": caps}),
    };
    Ok(ok("pools", json!([pool])))
}

/// The extensions whose behaviour this service has: `(alias, name, description, updated)`.
const EXTENSIONS: &[(&str, &str, &str, &str)] = &[
    (
        "os-admin-actions",
        "AdminActions",
        "Enable admin actions.",
        "2012-08-25T00:00:00+00:00",
    ),
    (
        "os-availability-zone",
        "AvailabilityZones",
        "Describe Availability Zones.",
        "2013-06-27T00:00:00+00:00",
    ),
    (
        "capabilities",
        "Capabilities",
        "Capabilities support.",
        "2015-08-31T00:00:00+00:00",
    ),
    (
        "os-hosts",
        "Hosts",
        "Admin-only host administration.",
        "2011-06-29T00:00:00+00:00",
    ),
    (
        "os-extended-services",
        "ExtendedServices",
        "Extended services support.",
        "2014-01-10T00:00:00-00:00",
    ),
    (
        "os-extended-snapshot-attributes",
        "ExtendedSnapshotAttributes",
        "Extended SnapshotAttributes support.",
        "2012-06-19T00:00:00+00:00",
    ),
    (
        "qos-specs",
        "Qos_specs_manage",
        "QoS specs support.",
        "2013-08-02T00:00:00+00:00",
    ),
    (
        "os-quota-class-sets",
        "QuotaClasses",
        "Quota classes management support.",
        "2012-03-12T00:00:00+00:00",
    ),
    (
        "os-quota-sets",
        "Quotas",
        "Quota management support.",
        "2011-08-08T00:00:00+00:00",
    ),
    (
        "scheduler-stats",
        "Scheduler_stats",
        "Scheduler stats support.",
        "2014-09-07T00:00:00+00:00",
    ),
    (
        "os-services",
        "Services",
        "Services support.",
        "2012-10-28T00:00:00-00:00",
    ),
    (
        "os-snapshot-actions",
        "SnapshotActions",
        "Enable snapshot manager actions.",
        "2013-07-16T00:00:00+00:00",
    ),
    (
        "os-types-extra-specs",
        "TypesExtraSpecs",
        "Type extra specs support.",
        "2011-08-24T00:00:00+00:00",
    ),
    (
        "os-types-manage",
        "TypesManage",
        "Types manage support.",
        "2011-08-24T00:00:00+00:00",
    ),
    (
        "os-used-limits",
        "UsedLimits",
        "Provide data on limited resources that are being used.",
        "2013-10-03T00:00:00+00:00",
    ),
    (
        "os-volume-actions",
        "VolumeActions",
        "Enable volume actions.",
        "2012-05-31T00:00:00+00:00",
    ),
    (
        "os-vol-host-attr",
        "VolumeHostAttribute",
        "Expose host as an attribute of a volume.",
        "2011-11-03T00:00:00+00:00",
    ),
    (
        "os-vol-image-meta",
        "VolumeImageMetadata",
        "Show image metadata associated with the volume.",
        "2012-12-07T00:00:00+00:00",
    ),
    (
        "os-vol-mig-status-attr",
        "VolumeMigStatusAttribute",
        "Expose migration_status as an attribute of a volume.",
        "2013-08-08T00:00:00+00:00",
    ),
    (
        "os-vol-tenant-attr",
        "VolumeTenantAttribute",
        "Expose the internal project_id as an attribute of a volume.",
        "2011-11-03T00:00:00+00:00",
    ),
    (
        "os-volume-type-access",
        "VolumeTypeAccess",
        "Volume type access support.",
        "2014-06-26T00:00:00Z",
    ),
];

/// `GET /v3/extensions` (any authenticated caller).
async fn extensions(_: Public, _auth: Auth) -> Response {
    let items: Vec<Value> = EXTENSIONS
        .iter()
        .map(|(alias, name, description, updated)| {
            json!({
                "alias": alias, "name": name, "description": description,
                "updated": updated, "links": [],
            })
        })
        .collect();
    ok("extensions", Value::Array(items))
}
