//! Availability zones (`nova/api/openstack/compute/availability_zone.py`,
//! `nova/availability_zones.py`). A compute host is in the zone of its aggregate, else in
//! `default_availability_zone`; this process's services are in `internal`. A zone
//! is available when at least one of its services is enabled, as in Nova (whether the hosts
//! are up shows per host in the detail).

use super::services::{INTERNAL_ZONE, Service, services, strict_query};
use super::{AppState, Mv};
use axum::{Json, extract::Query};
use ferrostack_api::{ApiError, Auth};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Zones with an enabled service, and zones whose services are all disabled; each sorted.
fn zones(all: &[Service]) -> (Vec<String>, Vec<String>) {
    let available: BTreeSet<String> = all
        .iter()
        .filter(|s| !s.disabled)
        .map(|s| s.zone.clone())
        .collect();
    let unavailable: BTreeSet<String> = all
        .iter()
        .filter(|s| s.disabled && !available.contains(&s.zone))
        .map(|s| s.zone.clone())
        .collect();
    (
        available.into_iter().collect(),
        unavailable.into_iter().collect(),
    )
}

/// Query parameters are only refused from 2.102 (Nova's `index_query_v2102`).
fn check_query(mv: &Mv, query: &[(String, String)]) -> Result<(), ApiError> {
    if super::at_least(mv, 2, 102) {
        strict_query(mv, query, &[])
    } else {
        Ok(())
    }
}

/// `GET /os-availability-zone`: the zones of compute hosts (`internal` hidden), no hosts.
pub async fn index(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("os_compute_api:os-availability-zone:list", &json!({}))?;
    check_query(&mv, &query)?;
    let (available, unavailable) = zones(&services(&state.0).await?);
    let list: Vec<Value> = available
        .iter()
        .map(|z| (z, true))
        .chain(unavailable.iter().map(|z| (z, false)))
        .filter(|(z, _)| z.as_str() != INTERNAL_ZONE)
        .map(|(z, up)| json!({"zoneName": z, "zoneState": {"available": up}, "hosts": null}))
        .collect();
    Ok(Json(json!({"availabilityZoneInfo": list})))
}

/// `GET /os-availability-zone/detail` (admin): every zone, `internal` included, with the
/// enabled services of each host of the available ones.
pub async fn detail(
    auth: Auth,
    state: AppState,
    mv: Mv,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    auth.enforce("os_compute_api:os-availability-zone:detail", &json!({}))?;
    check_query(&mv, &query)?;
    let all = services(&state.0).await?;
    let (available, unavailable) = zones(&all);
    // zone → host → binary → state
    let mut hosts: BTreeMap<&str, BTreeMap<&str, Map<String, Value>>> = BTreeMap::new();
    for s in all.iter().filter(|s| !s.disabled) {
        hosts
            .entry(s.zone.as_str())
            .or_default()
            .entry(s.host.as_str())
            .or_default()
            .insert(
                s.binary.into(),
                json!({"available": s.up, "active": !s.disabled, "updated_at": s.updated_at}),
            );
    }
    let mut list: Vec<Value> = available
        .iter()
        .map(|z| {
            let zone_hosts = hosts.remove(z.as_str()).unwrap_or_default();
            json!({"zoneName": z, "zoneState": {"available": true}, "hosts": zone_hosts})
        })
        .collect();
    list.extend(
        unavailable
            .iter()
            .map(|z| json!({"zoneName": z, "zoneState": {"available": false}, "hosts": null})),
    );
    Ok(Json(json!({"availabilityZoneInfo": list})))
}
