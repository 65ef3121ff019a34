//! Host aggregates: named groups of compute hosts with metadata (an `availability_zone` key
//! makes the aggregate an availability zone).

use super::json_error;
use ferrostack_store::{Migration, Row, Store, StoreError};
use std::collections::{BTreeMap, HashMap};

/// The aggregates' tables.
pub const AGGREGATES_MIGRATION: Migration = Migration {
    version: 5,
    name: "host aggregates",
    sql: "CREATE TABLE compute_aggregates (
            id BIGINT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, name TEXT NOT NULL UNIQUE,
            metadata TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT);
          CREATE TABLE compute_aggregate_hosts (
            aggregate_id BIGINT NOT NULL, host TEXT NOT NULL, PRIMARY KEY (aggregate_id, host));",
};

/// One aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub metadata: BTreeMap<String, String>,
    pub hosts: Vec<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

impl Aggregate {
    /// The availability zone the aggregate defines, if any.
    pub fn availability_zone(&self) -> Option<&str> {
        self.metadata.get("availability_zone").map(String::as_str)
    }
}

/// Every aggregate with its hosts, by id.
pub async fn aggregates(store: &Store) -> Result<Vec<Aggregate>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, uuid, name, metadata, created_at, updated_at FROM compute_aggregates ORDER BY id",
    )
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let metadata: String = r.try_get("metadata")?;
        out.push(Aggregate {
            id: r.try_get("id")?,
            uuid: r.try_get("uuid")?,
            name: r.try_get("name")?,
            metadata: serde_json::from_str(&metadata).map_err(json_error)?,
            hosts: Vec::new(),
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        });
    }
    let position: HashMap<i64, usize> = out.iter().enumerate().map(|(i, a)| (a.id, i)).collect();
    for r in sqlx::query("SELECT aggregate_id, host FROM compute_aggregate_hosts ORDER BY host")
        .fetch_all(store.pool())
        .await?
    {
        let id: i64 = r.try_get("aggregate_id")?;
        if let Some(&i) = position.get(&id) {
            out[i].hosts.push(r.try_get("host")?);
        }
    }
    Ok(out)
}

/// Inserts an aggregate (id assigned); a taken name is a [`StoreError::Conflict`].
pub async fn insert(store: &Store, a: &mut Aggregate) -> Result<(), StoreError> {
    let metadata = serde_json::to_string(&a.metadata).map_err(json_error)?;
    for _ in 0..5 {
        let result = sqlx::query_scalar::<_, i64>(
            "INSERT INTO compute_aggregates (id, uuid, name, metadata, created_at, updated_at) \
             SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4, NULL FROM compute_aggregates \
             RETURNING id",
        )
        .bind(&a.uuid)
        .bind(&a.name)
        .bind(&metadata)
        .bind(&a.created_at)
        .fetch_one(store.pool())
        .await
        .map_err(StoreError::from_write);
        match result {
            Ok(id) => {
                a.id = id;
                return Ok(());
            }
            // Two creates picked the same id: try again (a taken name stays a conflict).
            Err(StoreError::Conflict(m)) if m.contains("id") || m.contains("PRIMARY") => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict("aggregate id".into()))
}

/// Saves name and metadata.
pub async fn update(store: &Store, a: &Aggregate, now: &str) -> Result<(), StoreError> {
    let metadata = serde_json::to_string(&a.metadata).map_err(json_error)?;
    sqlx::query(
        "UPDATE compute_aggregates SET name = $2, metadata = $3, updated_at = $4 WHERE id = $1",
    )
    .bind(a.id)
    .bind(&a.name)
    .bind(metadata)
    .bind(now)
    .execute(store.pool())
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

/// Deletes an aggregate (it must have no hosts).
pub async fn delete(store: &Store, id: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM compute_aggregates WHERE id = $1")
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Adds or removes a host; false when nothing changed.
pub async fn set_host(
    store: &Store,
    id: i64,
    host: &str,
    member: bool,
) -> Result<bool, StoreError> {
    let sql = if member {
        "INSERT INTO compute_aggregate_hosts (aggregate_id, host) VALUES ($1, $2) \
         ON CONFLICT (aggregate_id, host) DO NOTHING"
    } else {
        "DELETE FROM compute_aggregate_hosts WHERE aggregate_id = $1 AND host = $2"
    };
    let done = sqlx::query(sql)
        .bind(id)
        .bind(host)
        .execute(store.pool())
        .await?
        .rows_affected();
    Ok(done == 1)
}

/// The availability zone of `host`: the first aggregate AZ it belongs to, else `default`.
pub fn host_zone(all: &[Aggregate], host: &str, default: &str) -> String {
    zone_of(
        all.iter().filter(|a| a.hosts.iter().any(|h| h == host)),
        default,
    )
    .to_string()
}

/// The zone of a host in `aggregates` (its aggregates, by id): the first `availability_zone`
/// among them, else `default` (Nova's `get_host_availability_zone`; the API keeps a host from
/// being in two zones).
pub fn zone_of<'a>(
    aggregates: impl IntoIterator<Item = &'a Aggregate>,
    default: &'a str,
) -> &'a str {
    aggregates
        .into_iter()
        .find_map(Aggregate::availability_zone)
        .unwrap_or(default)
}

/// The aggregates of each host, by id.
pub fn by_host(all: &[Aggregate]) -> HashMap<&str, Vec<&Aggregate>> {
    let mut hosts: HashMap<&str, Vec<&Aggregate>> = HashMap::new();
    for a in all {
        for h in &a.hosts {
            hosts.entry(h.as_str()).or_default().push(a);
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aggregate(id: i64, zone: Option<&str>, hosts: &[&str]) -> Aggregate {
        Aggregate {
            id,
            uuid: format!("u{id}"),
            name: format!("agg{id}"),
            metadata: zone
                .map(|z| ("availability_zone".to_string(), z.to_string()))
                .into_iter()
                .chain([("ssd".to_string(), "true".to_string())])
                .collect(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            created_at: String::new(),
            updated_at: None,
        }
    }

    #[test]
    fn a_host_is_in_its_aggregate_zone_else_the_default() {
        let all = vec![
            aggregate(1, None, &["a", "b"]),
            aggregate(2, Some("az1"), &["b", "c"]),
            aggregate(3, Some("az2"), &["d"]),
            aggregate(4, None, &["d"]),
            aggregate(5, Some("empty"), &[]),
        ];
        // (host, zone)
        let table = [
            ("a", "nova"),
            ("b", "az1"),
            ("c", "az1"),
            ("d", "az2"),
            ("unknown", "nova"),
        ];
        let by_host = by_host(&all);
        for (host, zone) in table {
            assert_eq!(host_zone(&all, host, "nova"), zone, "{host}");
            let of_host = by_host.get(host).cloned().unwrap_or_default();
            assert_eq!(zone_of(of_host, "nova"), zone, "{host}");
        }
        assert_eq!(
            by_host["d"].iter().map(|a| a.id).collect::<Vec<_>>(),
            [3, 4]
        );
        assert!(!by_host.contains_key("empty"));
    }
}
