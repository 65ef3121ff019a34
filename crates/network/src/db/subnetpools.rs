//! Subnet pools: prefixes (compacted), prefix-length bounds, one default pool per IP version,
//! and deletes that refuse while subnets were allocated from the pool.

use super::{Result, Tx};
use crate::errors;
use crate::events::Event;
use crate::model::{SubnetPool, now};
use crate::service::Settings;
use ipnet::IpNet;

/// The default minimum prefix length of a pool (Neutron's `SubnetPoolHelper`).
pub fn default_min_prefixlen(ip_version: u8) -> u8 {
    if ip_version == 4 { 8 } else { 64 }
}

/// The longest prefix of the family.
pub fn max_len(ip_version: u8) -> u8 {
    if ip_version == 4 { 32 } else { 128 }
}

/// Checks a pool's prefixes and bounds, compacting the prefixes (Neutron's
/// `SubnetPoolReader`).
pub fn normalise(pool: &mut SubnetPool) -> std::result::Result<(), ferrostack_api::ApiError> {
    if pool.prefixes.is_empty() {
        return Err(errors::bad(
            "EmptySubnetPoolPrefixList",
            "Empty subnet pool prefix list.",
        ));
    }
    let mut nets = Vec::new();
    for prefix in &pool.prefixes {
        let net: IpNet = match crate::ipam::parse_cidr(prefix) {
            Ok(n) => n,
            Err(_) => {
                return Err(errors::bad(
                    "HTTPBadRequest",
                    format!(
                        "Invalid input for prefixes. Reason: '{prefix}' is not a valid IP subnet."
                    ),
                ));
            }
        };
        nets.push(net);
    }
    let v6 = nets[0].network().is_ipv6();
    if nets.iter().any(|n| n.network().is_ipv6() != v6) {
        return Err(errors::bad(
            "PrefixVersionMismatch",
            "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
        ));
    }
    pool.ip_version = if v6 { 6 } else { 4 };
    pool.prefixes = IpNet::aggregate(&nets)
        .into_iter()
        .map(|n| n.to_string())
        .collect();
    let bounds = |kind: &str, len: u8, base_kind: &str, base: u8| {
        errors::bad(
            "IllegalSubnetPoolPrefixBounds",
            format!("Illegal prefix bounds: {kind}={len}, {base_kind}={base}."),
        )
    };
    if pool.max_prefixlen > max_len(pool.ip_version) {
        return Err(bounds(
            "max_prefixlen",
            pool.max_prefixlen,
            "base_prefixlen",
            max_len(pool.ip_version),
        ));
    }
    if pool.min_prefixlen > pool.max_prefixlen {
        return Err(bounds(
            "min_prefixlen",
            pool.min_prefixlen,
            "max_prefixlen",
            pool.max_prefixlen,
        ));
    }
    if pool.default_prefixlen < pool.min_prefixlen {
        return Err(bounds(
            "default_prefixlen",
            pool.default_prefixlen,
            "min_prefixlen",
            pool.min_prefixlen,
        ));
    }
    if pool.default_prefixlen > pool.max_prefixlen {
        return Err(bounds(
            "default_prefixlen",
            pool.default_prefixlen,
            "max_prefixlen",
            pool.max_prefixlen,
        ));
    }
    Ok(())
}

async fn check_single_default(tx: &mut Tx, pool: &SubnetPool) -> Result<()> {
    if !pool.is_default {
        return Ok(());
    }
    tx.lock_name("default-subnetpool").await?;
    let others: Vec<SubnetPool> = tx
        .select(
            "is_default = 1 AND ip_version = $1 AND id <> $2",
            &[&pool.ip_version.to_string(), &pool.id],
        )
        .await?;
    if let Some(other) = others.first() {
        return Err(errors::invalid_input(format!(
            "A default subnetpool for this IP family has already been set. Only one default may exist per IP family (pool {})",
            other.id
        ))
        .into());
    }
    Ok(())
}

/// Creates a (normalised) pool.
pub async fn create(tx: &mut Tx, settings: &Settings, pool: &SubnetPool) -> Result<()> {
    super::quotas::check(tx, settings, &pool.project_id, "subnetpool", 1).await?;
    check_single_default(tx, pool).await?;
    tx.insert(pool).await?;
    tx.emit(Event::new(
        "subnetpool",
        "created",
        &pool.id,
        pool.revision_number,
    ));
    Ok(())
}

/// Saves an updated pool: prefixes may only grow.
pub async fn update(
    tx: &mut Tx,
    id: &str,
    apply: &(dyn Fn(&mut SubnetPool) + Send + Sync),
    expected_revision: Option<i64>,
) -> Result<SubnetPool> {
    let mut pool: SubnetPool = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::subnetpool_not_found(id))?;
    super::networks::check_revision(expected_revision, pool.revision_number)?;
    let before = pool.clone();
    apply(&mut pool);
    normalise(&mut pool)?;
    let new: Vec<IpNet> = pool
        .prefixes
        .iter()
        .filter_map(|p| p.parse().ok())
        .collect();
    for old in before
        .prefixes
        .iter()
        .filter_map(|p| p.parse::<IpNet>().ok())
    {
        if !new.iter().any(|n| n.contains(&old)) {
            return Err(errors::bad(
                "IllegalSubnetPoolPrefixUpdate",
                format!(
                    "Illegal update to prefixes: Existing prefix {old} is not in the new prefixes."
                ),
            )
            .into());
        }
    }
    if pool.is_default && !before.is_default {
        check_single_default(tx, &pool).await?;
    }
    if pool != before {
        pool.revision_number += 1;
        pool.updated_at = now();
        tx.save(&pool).await?;
        tx.emit(Event::new(
            "subnetpool",
            "updated",
            id,
            pool.revision_number,
        ));
    }
    Ok(pool)
}

/// Deletes a pool no subnet was allocated from.
pub async fn delete(tx: &mut Tx, id: &str, expected_revision: Option<i64>) -> Result<SubnetPool> {
    let pool: SubnetPool = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::subnetpool_not_found(id))?;
    super::networks::check_revision(expected_revision, pool.revision_number)?;
    let used = tx
        .count(
            "SELECT COUNT(*) FROM net_subnets WHERE subnetpool_id = $1",
            &[id],
        )
        .await?;
    if used > 0 {
        return Err(errors::conflict(
            "SubnetPoolInUse",
            format!(
                "Unable to complete operation on subnet pool {id}. Subnets are still allocated."
            ),
        )
        .into());
    }
    tx.delete::<SubnetPool>(id).await?;
    tx.emit(Event::new(
        "subnetpool",
        "deleted",
        id,
        pool.revision_number,
    ));
    Ok(pool)
}
