//! Networks and their segments: VNIs and VLANs handed out from the configured ranges (one
//! network per segment, guarded by `net_segments`' primary key), flat networks one per
//! physical network; deletes that take the network's DHCP ports and subnets with them.

use super::{Result, Tx};
use crate::errors;
use crate::events::Event;
use crate::model::{Network, OWNER_DHCP, Port, Segment, Subnet};
use crate::service::Settings;
use std::collections::HashSet;

/// The segment a create asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentRequest {
    /// A tenant network: the first free segment of the tenant network types.
    Tenant,
    /// Provider attributes given (admin only): the type, and the physical network and
    /// segmentation id where given.
    Provider {
        network_type: String,
        physical_network: Option<String>,
        segmentation_id: Option<i64>,
    },
}

fn no_tenant_network() -> crate::db::Error {
    crate::db::Error::Api(
        ferrostack_api::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "Unable to create the network. No tenant network is available for allocation.",
        )
        .with_kind("NoNetworkAvailable"),
    )
}

async fn taken(tx: &mut Tx, network_type: &str, physnet: &str) -> Result<HashSet<i64>> {
    let rows: Vec<i64> = sqlx::query_scalar(
        "SELECT segmentation_id FROM net_segments WHERE network_type = $1 AND physical_network = $2",
    )
    .bind(network_type)
    .bind(physnet)
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().collect())
}

fn first_free(ranges: &[(i64, i64)], taken: &HashSet<i64>) -> Option<i64> {
    ranges
        .iter()
        .flat_map(|(a, b)| *a..=*b)
        .find(|id| !taken.contains(id))
}

/// Checks a provider request against the settings (before any transaction).
pub fn validate_provider(settings: &Settings, request: &SegmentRequest) -> Result<()> {
    let SegmentRequest::Provider {
        network_type,
        physical_network,
        segmentation_id,
    } = request
    else {
        return Ok(());
    };
    let known_physnet = |p: &Option<String>, kind: &str| -> Result<()> {
        match p {
            None => Err(errors::invalid_input(format!(
                "physical_network required for {kind} provider network"
            ))
            .into()),
            Some(p) if !settings.physical_networks.contains_key(p) => Err(errors::invalid_input(
                format!("physical_network '{p}' unknown for {kind} provider network"),
            )
            .into()),
            Some(_) => Ok(()),
        }
    };
    match network_type.as_str() {
        "flat" => {
            known_physnet(physical_network, "flat")?;
            if segmentation_id.is_some() {
                return Err(errors::invalid_input(
                    "segmentation_id specified for flat provider network",
                )
                .into());
            }
        }
        "vlan" => {
            known_physnet(physical_network, "VLAN")?;
            if let Some(id) = segmentation_id
                && !(1..=4094).contains(id)
            {
                return Err(
                    errors::invalid_input("segmentation_id out of range (1 through 4094)").into(),
                );
            }
        }
        "vxlan" => {
            if physical_network.is_some() {
                return Err(errors::invalid_input(
                    "provider:physical_network specified for VXLAN network",
                )
                .into());
            }
            if let Some(id) = segmentation_id
                && !(1..(1 << 24)).contains(id)
            {
                return Err(errors::invalid_input(format!(
                    "segmentation_id out of range (1 through {})",
                    (1 << 24) - 1
                ))
                .into());
            }
        }
        other => {
            return Err(errors::invalid_input(format!(
                "network_type value '{other}' not supported"
            ))
            .into());
        }
    }
    Ok(())
}

async fn allocate_segment(
    tx: &mut Tx,
    settings: &Settings,
    request: &SegmentRequest,
) -> Result<Segment> {
    tx.lock_name("segments").await?;
    match request {
        SegmentRequest::Tenant => {
            for network_type in &settings.tenant_network_types {
                if network_type == "vxlan" {
                    let used = taken(tx, "vxlan", "").await?;
                    if let Some(vni) = first_free(&settings.vni_ranges, &used) {
                        return Ok(Segment {
                            network_type: "vxlan".into(),
                            physical_network: None,
                            segmentation_id: Some(vni),
                        });
                    }
                } else {
                    for (physnet, ranges) in &settings.vlan_ranges {
                        let used = taken(tx, "vlan", physnet).await?;
                        if let Some(vlan) = first_free(ranges, &used) {
                            return Ok(Segment {
                                network_type: "vlan".into(),
                                physical_network: Some(physnet.clone()),
                                segmentation_id: Some(vlan),
                            });
                        }
                    }
                }
            }
            Err(no_tenant_network())
        }
        SegmentRequest::Provider {
            network_type,
            physical_network,
            segmentation_id,
        } => {
            let physnet = physical_network.clone().unwrap_or_default();
            let used = taken(tx, network_type, &physnet).await?;
            let id = match (network_type.as_str(), segmentation_id) {
                ("flat", _) => {
                    if !used.is_empty() {
                        return Err(errors::conflict(
                            "FlatNetworkInUse",
                            format!(
                                "Unable to create the flat network. Physical network {physnet} is in use."
                            ),
                        )
                        .into());
                    }
                    None
                }
                ("vlan", Some(id)) if used.contains(id) => {
                    return Err(errors::conflict(
                        "VlanIdInUse",
                        format!(
                            "Unable to create the network. The VLAN {id} on physical network {physnet} is in use."
                        ),
                    )
                    .into());
                }
                ("vxlan", Some(id)) if used.contains(id) => {
                    return Err(errors::conflict(
                        "TunnelIdInUse",
                        format!("Unable to create the network. The tunnel ID {id} is in use."),
                    )
                    .into());
                }
                (_, Some(id)) => Some(*id),
                ("vlan", None) => Some(
                    settings
                        .vlan_ranges
                        .get(&physnet)
                        .and_then(|r| first_free(r, &used))
                        .ok_or_else(no_tenant_network)?,
                ),
                (_, None) => {
                    Some(first_free(&settings.vni_ranges, &used).ok_or_else(no_tenant_network)?)
                }
            };
            Ok(Segment {
                network_type: network_type.clone(),
                physical_network: physical_network.clone(),
                segmentation_id: id,
            })
        }
    }
}

/// Creates a network: quota, segment, MTU (the segment type's maximum unless asked for;
/// larger is refused), row, event.
pub async fn create(
    tx: &mut Tx,
    settings: &Settings,
    mut network: Network,
    segment: &SegmentRequest,
    requested_mtu: Option<i64>,
) -> Result<Network> {
    super::quotas::check(tx, settings, &network.project_id, "network", 1).await?;
    network.segment = allocate_segment(tx, settings, segment).await?;
    let max = settings.max_mtu(&network.segment.network_type);
    network.mtu = match requested_mtu {
        None | Some(0) => max,
        Some(mtu) if mtu > max => {
            return Err(errors::invalid_input(format!(
                "Requested MTU is too big, maximum is {max}"
            ))
            .into());
        }
        Some(mtu) => mtu,
    };
    sqlx::query(
        "INSERT INTO net_segments (network_type, physical_network, segmentation_id, network_id) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&network.segment.network_type)
    .bind(network.segment.physical_network.clone().unwrap_or_default())
    .bind(network.segment.segmentation_id.unwrap_or(0))
    .bind(&network.id)
    .execute(tx.conn())
    .await?;
    tx.insert(&network).await?;
    tx.emit(Event::new(
        "network",
        "created",
        &network.id,
        network.revision_number,
    ));
    Ok(network)
}

/// The changes an update asks for (attributes left `None` stay).
#[derive(Debug, Clone, Default)]
pub struct NetworkUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub admin_state_up: Option<bool>,
    pub shared: Option<bool>,
    pub external: Option<bool>,
    pub port_security_enabled: Option<bool>,
    pub mtu: Option<i64>,
}

/// Applies an update under the network's lock. `expected_revision` is the `If-Match`
/// constraint.
pub async fn update(
    tx: &mut Tx,
    settings: &Settings,
    id: &str,
    change: &NetworkUpdate,
    expected_revision: Option<i64>,
) -> Result<Network> {
    let mut network: Network = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::network_not_found(id))?;
    check_revision(expected_revision, network.revision_number)?;
    if change.shared == Some(false) && network.shared {
        let others = tx
            .count(
                "SELECT COUNT(*) FROM net_ports WHERE network_id = $1 AND project_id <> $2 \
                 AND device_owner NOT LIKE 'network:%'",
                &[id, &network.project_id],
            )
            .await?;
        if others > 0 {
            return Err(errors::conflict(
                "InvalidSharedSetting",
                format!(
                    "Unable to reconfigure sharing settings for network {id}. Multiple projects are using it."
                ),
            )
            .into());
        }
    }
    if change.external == Some(false) && network.external {
        let gateways = tx
            .count(
                "SELECT COUNT(*) FROM net_ports WHERE network_id = $1 \
                 AND device_owner IN ('network:router_gateway', 'network:floatingip')",
                &[id],
            )
            .await?;
        if gateways > 0 {
            return Err(errors::conflict(
                "ExternalNetworkInUse",
                format!(
                    "External network {id} cannot be updated to be made non-external, since it has existing gateway ports."
                ),
            )
            .into());
        }
    }
    if let Some(mtu) = change.mtu {
        let max = settings.max_mtu(&network.segment.network_type);
        if mtu > max {
            return Err(errors::invalid_input(format!(
                "Requested MTU is too big, maximum is {max}"
            ))
            .into());
        }
    }
    let before = network.clone();
    macro_rules! apply {
        ($($field:ident),*) => {$(
            if let Some(v) = &change.$field {
                network.$field = v.clone();
            }
        )*};
    }
    apply!(
        name,
        description,
        admin_state_up,
        shared,
        external,
        port_security_enabled,
        mtu
    );
    if network != before {
        touch_network(tx, &mut network).await?;
    }
    Ok(network)
}

/// Bumps the revision and the update time, saves the row and records an event.
pub async fn touch_network(tx: &mut Tx, network: &mut Network) -> Result<()> {
    network.revision_number += 1;
    network.updated_at = crate::model::now();
    tx.save(network).await?;
    tx.emit(Event::new(
        "network",
        "updated",
        &network.id,
        network.revision_number,
    ));
    Ok(())
}

/// 412 when an `If-Match` revision does not match.
pub fn check_revision(expected: Option<i64>, current: i64) -> Result<()> {
    match expected {
        Some(wanted) if wanted != current => Err(errors::revision_mismatch(wanted, current).into()),
        _ => Ok(()),
    }
}

/// Deletes a network with its DHCP ports and its subnets (and, for an external network, its
/// unassociated floating IPs); any other port is a 409 `NetworkInUse`.
pub async fn delete(tx: &mut Tx, id: &str, expected_revision: Option<i64>) -> Result<Network> {
    let network: Network = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::network_not_found(id))?;
    check_revision(expected_revision, network.revision_number)?;
    if network.external {
        // Neutron's external-net delete takes the floating IPs nobody uses with it.
        let unused: Vec<crate::model::FloatingIp> = tx
            .select("floating_network_id = $1 AND fixed_port_id IS NULL", &[id])
            .await?;
        for fip in unused {
            super::floatingips::delete(tx, &fip.id, None).await?;
        }
    }
    let ports: Vec<Port> = tx.select("network_id = $1", &[id]).await?;
    if ports.iter().any(|p| p.device_owner != OWNER_DHCP) {
        return Err(errors::conflict(
            "NetworkInUse",
            format!(
                "Unable to complete operation on network {id}. There are one or more ports still in use on the network."
            ),
        )
        .into());
    }
    for port in &ports {
        super::ports::delete_rows(tx, port).await?;
    }
    let subnets: Vec<Subnet> = tx.select("network_id = $1", &[id]).await?;
    for subnet in &subnets {
        tx.delete::<Subnet>(&subnet.id).await?;
        tx.emit(Event::new("subnet", "deleted", &subnet.id, subnet.revision_number).on_network(id));
    }
    tx.exec("DELETE FROM net_segments WHERE network_id = $1", &[id])
        .await?;
    tx.delete::<Network>(id).await?;
    tx.emit(Event::new(
        "network",
        "deleted",
        id,
        network.revision_number,
    ));
    Ok(network)
}

/// The subnet ids of every network, oldest first.
pub async fn subnet_ids(
    conn: &mut sqlx::AnyConnection,
) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT network_id, id FROM net_subnets ORDER BY created_at, id")
            .fetch_all(conn)
            .await?;
    let mut map: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (network, subnet) in rows {
        map.entry(network).or_default().push(subnet);
    }
    Ok(map)
}
