//! Compute nodes: one row per agent host, refreshed by its heartbeats (Nova's `services` and
//! `compute_nodes` in one).

use crate::rpc::HostCapabilities;
use ferrostack_store::{AnyRow, Migration, Row, Store, StoreError};

/// The hypervisor facts heartbeats carry (`rpc::HostCapabilities`), NULL until a host
/// reported them.
pub const CAPABILITIES_MIGRATION: Migration = Migration {
    version: 8,
    name: "compute nodes: the hypervisor's type, version, CPU and supported instances",
    sql: "ALTER TABLE compute_nodes ADD COLUMN hypervisor_type TEXT;
          ALTER TABLE compute_nodes ADD COLUMN hypervisor_version BIGINT;
          ALTER TABLE compute_nodes ADD COLUMN libvirt_version BIGINT;
          ALTER TABLE compute_nodes ADD COLUMN reported_hostname TEXT;
          ALTER TABLE compute_nodes ADD COLUMN cpu_info TEXT;
          ALTER TABLE compute_nodes ADD COLUMN supported_instances TEXT;",
};

/// A compute host as its heartbeats describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub host: String,
    /// Its resource provider's uuid in Placement.
    pub node_uuid: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    pub heartbeat_at: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    pub created_at: String,
    pub updated_at: String,
    /// What the host's driver reported; `None` until its first heartbeat that carried them.
    pub capabilities: Option<HostCapabilities>,
}

impl Node {
    /// The node's name (one node per host, named after it).
    pub fn hypervisor_hostname(&self) -> &str {
        &self.host
    }

    /// Nova's `hypervisor_type` as the host reported it.
    pub fn hypervisor_type(&self) -> Option<&str> {
        self.capabilities
            .as_ref()
            .map(|c| c.hypervisor_type.as_str())
    }

    /// The hypervisor's version as the host reported it (Nova's integer encoding).
    pub fn hypervisor_version(&self) -> Option<i64> {
        self.capabilities.as_ref().map(|c| c.hypervisor_version)
    }

    /// The CPU description (Nova's `cpu_info` JSON text) as the host reported it.
    pub fn cpu_info(&self) -> Option<&str> {
        self.capabilities.as_ref().map(|c| c.cpu_info.as_str())
    }

    /// Whether the host's last heartbeat is older than `down_after` (Nova's
    /// `service_down_time`) or it is forced down.
    pub fn is_down(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        down_after: chrono::Duration,
    ) -> bool {
        if self.forced_down {
            return true;
        }
        match chrono::DateTime::parse_from_rfc3339(&self.heartbeat_at) {
            Ok(t) => now.signed_duration_since(t.with_timezone(&chrono::Utc)) > down_after,
            Err(_) => true,
        }
    }
}

/// One heartbeat's report.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    pub node_uuid: &'a str,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub disk_gb: i64,
    /// `None` (an older agent) keeps what the row has.
    pub capabilities: Option<&'a HostCapabilities>,
}

/// The capability columns' values (all NULL for `None`, which the UPDATE's COALESCE keeps).
struct CapabilityColumns {
    hypervisor_type: Option<String>,
    hypervisor_version: Option<i64>,
    libvirt_version: Option<i64>,
    hostname: Option<String>,
    cpu_info: Option<String>,
    supported_instances: Option<String>,
}

impl CapabilityColumns {
    fn of(caps: Option<&HostCapabilities>) -> Result<Self, StoreError> {
        Ok(CapabilityColumns {
            hypervisor_type: caps.map(|c| c.hypervisor_type.clone()),
            hypervisor_version: caps.map(|c| c.hypervisor_version),
            libvirt_version: caps.map(|c| c.libvirt_version),
            hostname: caps.map(|c| c.hostname.clone()),
            cpu_info: caps.map(|c| c.cpu_info.clone()),
            supported_instances: caps
                .map(|c| serde_json::to_string(&c.supported_instances))
                .transpose()
                .map_err(super::json_error)?,
        })
    }

    fn bind<'q>(
        &'q self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        q.bind(self.hypervisor_type.as_deref())
            .bind(self.hypervisor_version)
            .bind(self.libvirt_version)
            .bind(self.hostname.as_deref())
            .bind(self.cpu_info.as_deref())
            .bind(self.supported_instances.as_deref())
    }
}

/// Records a heartbeat (creating the row on the first one). True when the row was created.
pub async fn heartbeat(
    store: &Store,
    host: &str,
    report: Report<'_>,
    now: &str,
) -> Result<bool, StoreError> {
    let caps = CapabilityColumns::of(report.capabilities)?;
    let _turn = super::write_turn(store).await;
    let update = sqlx::query(
        "UPDATE compute_nodes SET node_uuid = $2, vcpus = $3, memory_mb = $4, disk_gb = $5, \
         heartbeat_at = $6, updated_at = $6, \
         hypervisor_type = COALESCE($7, hypervisor_type), \
         hypervisor_version = COALESCE($8, hypervisor_version), \
         libvirt_version = COALESCE($9, libvirt_version), \
         reported_hostname = COALESCE($10, reported_hostname), \
         cpu_info = COALESCE($11, cpu_info), \
         supported_instances = COALESCE($12, supported_instances) WHERE host = $1",
    )
    .bind(host)
    .bind(report.node_uuid)
    .bind(report.vcpus)
    .bind(report.memory_mb)
    .bind(report.disk_gb)
    .bind(now);
    let updated = caps
        .bind(update)
        .execute(store.pool())
        .await?
        .rows_affected();
    if updated == 1 {
        return Ok(false);
    }
    let insert = sqlx::query(
        "INSERT INTO compute_nodes (host, node_uuid, vcpus, memory_mb, disk_gb, heartbeat_at, \
         disabled, disabled_reason, forced_down, created_at, updated_at, hypervisor_type, \
         hypervisor_version, libvirt_version, reported_hostname, cpu_info, supported_instances) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, NULL, 0, $6, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (host) DO NOTHING",
    )
    .bind(host)
    .bind(report.node_uuid)
    .bind(report.vcpus)
    .bind(report.memory_mb)
    .bind(report.disk_gb)
    .bind(now);
    let inserted = caps
        .bind(insert)
        .execute(store.pool())
        .await
        .map_err(StoreError::from_write)?
        .rows_affected();
    Ok(inserted == 1)
}

const COLUMNS: &str = "host, node_uuid, vcpus, memory_mb, disk_gb, heartbeat_at, disabled, \
    disabled_reason, forced_down, created_at, updated_at, hypervisor_type, hypervisor_version, \
    libvirt_version, reported_hostname, cpu_info, supported_instances";

/// The reported capabilities of a row (`None` until the host reported its hypervisor type).
fn capabilities_of(r: &AnyRow) -> Result<Option<HostCapabilities>, StoreError> {
    let Some(hypervisor_type) = r.try_get::<Option<String>, _>("hypervisor_type")? else {
        return Ok(None);
    };
    let supported: Option<String> = r.try_get("supported_instances")?;
    Ok(Some(HostCapabilities {
        hypervisor_type,
        hypervisor_version: r
            .try_get::<Option<i64>, _>("hypervisor_version")?
            .unwrap_or(0),
        libvirt_version: r.try_get::<Option<i64>, _>("libvirt_version")?.unwrap_or(0),
        hostname: r
            .try_get::<Option<String>, _>("reported_hostname")?
            .unwrap_or_default(),
        cpu_info: r
            .try_get::<Option<String>, _>("cpu_info")?
            .unwrap_or_else(|| "{}".into()),
        supported_instances: supported
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(super::json_error)?
            .unwrap_or_default(),
    }))
}

fn from_row(r: &AnyRow) -> Result<Node, StoreError> {
    Ok(Node {
        host: r.try_get("host")?,
        node_uuid: r.try_get("node_uuid")?,
        vcpus: r.try_get("vcpus")?,
        memory_mb: r.try_get("memory_mb")?,
        disk_gb: r.try_get("disk_gb")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        disabled_reason: r.try_get("disabled_reason")?,
        forced_down: r.try_get::<i64, _>("forced_down")? != 0,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        capabilities: capabilities_of(r)?,
    })
}

/// Every compute node.
pub async fn nodes(store: &Store) -> Result<Vec<Node>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM compute_nodes ORDER BY host");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(store.pool())
        .await?;
    rows.iter().map(from_row).collect()
}

/// The compute nodes of `hosts` (those that exist).
pub async fn nodes_of(store: &Store, hosts: &[&str]) -> Result<Vec<Node>, StoreError> {
    let mut out = Vec::new();
    for chunk in hosts.chunks(500) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM compute_nodes WHERE host IN ({})",
            marks.join(", ")
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for h in chunk {
            q = q.bind(*h);
        }
        for row in q.fetch_all(store.pool()).await? {
            out.push(from_row(&row)?);
        }
    }
    Ok(out)
}

/// The compute node of `host`.
pub async fn node(store: &Store, host: &str) -> Result<Option<Node>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM compute_nodes WHERE host = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(host)
        .fetch_optional(store.pool())
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Hosts as a QEMU agent on an x86_64 host reports them, for tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// What the libvirt driver reports on an x86_64 host with QEMU 7.2.22 and libvirt 9.0.
    pub fn qemu() -> HostCapabilities {
        HostCapabilities {
            hypervisor_type: "QEMU".into(),
            hypervisor_version: 7_002_022,
            libvirt_version: 9_000_000,
            hostname: "hv".into(),
            cpu_info: r#"{"arch":"x86_64","model":"kvm64","vendor":"AMD","topology":{"cells":1,"sockets":1,"cores":2,"threads":1},"features":["avx","sse4.2"]}"#.into(),
            supported_instances: ["qemu", "kvm"]
                .into_iter()
                .map(|t| ("x86_64".into(), t.into(), "hvm".into()))
                .collect(),
        }
    }

    /// A heartbeat of `host` with [`qemu`]'s capabilities.
    pub async fn heartbeat(
        store: &Store,
        host: &str,
        node_uuid: &str,
        vcpus: i64,
        memory_mb: i64,
        disk_gb: i64,
        now: &str,
    ) -> Result<bool, StoreError> {
        let caps = qemu();
        let report = Report {
            node_uuid,
            vcpus,
            memory_mb,
            disk_gb,
            capabilities: Some(&caps),
        };
        super::heartbeat(store, host, report, now).await
    }
}
