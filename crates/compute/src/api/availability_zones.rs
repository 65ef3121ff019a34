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

/// The zone part of `server create`'s `availability_zone` (Nova's
/// `parse_availability_zone`): `zone`, `zone:host`, `zone::node` or `zone:host:node`.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RequestedZone {
    pub zone: Option<String>,
    pub forced_host: Option<String>,
    pub forced_node: Option<String>,
}

/// Parses `text`; more than two colons is a 400 as in Nova. Empty parts are absent.
pub(crate) fn parse_requested_zone(text: &str) -> Result<RequestedZone, ApiError> {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let parts: Vec<&str> = text.split(':').collect();
    let (zone, host, node) = match parts.as_slice() {
        [zone] => (*zone, "", ""),
        [zone, host] => (*zone, *host, ""),
        [zone, host, node] => (*zone, *host, *node),
        _ => {
            return Err(ApiError::bad_request(
                "Invalid input received: Unable to parse availability_zone",
            ));
        }
    };
    Ok(RequestedZone {
        zone: some(zone),
        forced_host: some(host),
        forced_node: some(node),
    })
}

/// The zones a server may ask for: those with an enabled service (Nova's
/// `get_availability_zones(get_only_available=True)`; `internal` included).
pub(crate) async fn available_zones(c: &crate::service::Compute) -> Result<Vec<String>, ApiError> {
    Ok(zones(&services(c).await?).0)
}

/// The zone to keep for a request that forces `host` (Nova's
/// `_validate_host_availability_zone`): the requested zone when the host is in it, else none
/// (the host's own zone decides; Nova's bug #1934770).
pub(crate) async fn zone_for_forced_host(
    c: &crate::service::Compute,
    zone: Option<String>,
    host: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let Some(zone) = zone else { return Ok(None) };
    let all = crate::db::aggregates::aggregates(&c.store)
        .await
        .map_err(crate::service::db_error)?;
    let of_host: Vec<&crate::db::aggregates::Aggregate> = match host {
        Some(h) => all
            .iter()
            .filter(|a| a.hosts.iter().any(|x| x == h))
            .collect(),
        None => Vec::new(),
    };
    let host_zone = of_host.iter().find_map(|a| a.availability_zone());
    let default = &c.config.default_availability_zone;
    let keep = host_zone == Some(zone.as_str()) || (host_zone.is_none() && &zone == default);
    if !keep {
        tracing::warn!(
            zone,
            host,
            "the forced host is not in the requested availability zone: ignoring the zone"
        );
    }
    Ok(keep.then_some(zone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_zones_parse_as_nova_parses_them() {
        let z = |zone: Option<&str>, host: Option<&str>, node: Option<&str>| RequestedZone {
            zone: zone.map(String::from),
            forced_host: host.map(String::from),
            forced_node: node.map(String::from),
        };
        let table = [
            ("az1", z(Some("az1"), None, None)),
            ("az1:h1", z(Some("az1"), Some("h1"), None)),
            ("az1::n1", z(Some("az1"), None, Some("n1"))),
            ("az1:h1:n1", z(Some("az1"), Some("h1"), Some("n1"))),
            (":h1", z(None, Some("h1"), None)),
            ("", z(None, None, None)),
        ];
        for (text, expected) in table {
            assert_eq!(parse_requested_zone(text).unwrap(), expected, "{text}");
        }
        assert!(parse_requested_zone("a:b:c:d").is_err());
    }

    /// `server create` accepts the zones with an enabled host, refuses others as Nova does,
    /// and keeps forced hosts and 2.74 destinations for admins.
    #[tokio::test]
    async fn server_create_checks_the_requested_zone() {
        use super::super::tests::{Harness, IMAGE, flavor};
        let h = Harness::open("az-create").await;
        let store = &h.compute.store;
        let now = ferrostack_store::now_rfc3339();
        for host in ["h1", "h2"] {
            let uuid = uuid::Uuid::new_v4().to_string();
            crate::db::nodes::testing::heartbeat(store, host, &uuid, 4, 4096, 40, &now)
                .await
                .unwrap();
        }
        let mut agg = crate::db::aggregates::Aggregate {
            id: 0,
            uuid: uuid::Uuid::new_v4().to_string(),
            name: "fast".into(),
            metadata: [("availability_zone".to_string(), "az1".to_string())].into(),
            hosts: vec![],
            created_at: now.clone(),
            updated_at: None,
        };
        crate::db::aggregates::insert(store, &mut agg)
            .await
            .unwrap();
        crate::db::aggregates::set_host(store, agg.id, "h1", true)
            .await
            .unwrap();
        let r = h
            .call(
                "admin",
                "POST",
                "/v2.1/flavors",
                "2.1",
                Some(flavor("m1.tiny", json!({"id": "1", "ram": 256, "disk": 1}))),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let create = |who: &'static str, mv: &'static str, extra: Value| {
            let mut server = json!({"name": "s", "imageRef": IMAGE, "flavorRef": "1",
                                    "networks": "none"});
            for (k, v) in extra.as_object().unwrap() {
                server[k] = v.clone();
            }
            let h = &h;
            async move {
                let r = h
                    .call(
                        who,
                        "POST",
                        "/v2.1/servers",
                        mv,
                        Some(json!({"server": server})),
                    )
                    .await;
                let message = r.body["badRequest"]["message"].as_str().map(String::from);
                (r.status, message.unwrap_or_default())
            }
        };
        let unavailable = "The requested availability zone is not available".to_string();
        // (caller, microversion, fields, status, message)
        let table: Vec<(&str, &str, Value, u16, String)> =
            vec![
            ("alice", "2.37", json!({"availability_zone": "az1"}), 202, String::new()),
            ("alice", "2.37", json!({"availability_zone": "nova"}), 202, String::new()),
            ("alice", "2.37", json!({"availability_zone": "nope"}), 400, unavailable.clone()),
            ("alice", "2.37", json!({"availability_zone": "az1:h1"}), 403, String::new()),
            ("admin", "2.37", json!({"availability_zone": "az1:h1"}), 202, String::new()),
            ("admin", "2.37", json!({"availability_zone": "az1::h1"}), 202, String::new()),
            (
                "admin",
                "2.37",
                json!({"availability_zone": "a:b:c:d"}),
                400,
                "Invalid input received: Unable to parse availability_zone".into(),
            ),
            ("admin", "2.74", json!({"host": "h2"}), 202, String::new()),
            (
                "admin",
                "2.74",
                json!({"host": "h9"}),
                400,
                "Compute host h9 could not be found.".into(),
            ),
            ("admin", "2.74", json!({"hypervisor_hostname": "h1"}), 202, String::new()),
            (
                "admin",
                "2.74",
                json!({"host": "h1", "availability_zone": "az1:h1"}),
                400,
                "One mechanism with host and/or hypervisor_hostname and another mechanism with \
                 zone:host:node are mutually exclusive."
                    .into(),
            ),
            ("alice", "2.74", json!({"host": "h1"}), 403, String::new()),
        ];
        for (i, (who, mv, extra, status, message)) in table.into_iter().enumerate() {
            assert_eq!(create(who, mv, extra).await, (status, message), "row {i}");
        }
        // With every host in az1 the default zone has no host left.
        crate::db::aggregates::set_host(store, agg.id, "h2", true)
            .await
            .unwrap();
        let refused = create("alice", "2.37", json!({"availability_zone": "nova"})).await;
        assert_eq!(refused, (400, unavailable));
    }
}
