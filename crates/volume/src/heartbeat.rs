//! The services of the block storage service and their heartbeats (Cinder's `services` table):
//! `cinder-scheduler` (this API process, which also places volumes) and `cinder-volume` (the
//! volume manager of a backend, host `<host>@<backend>`). Each writes its row when it starts and
//! every [`REPORT_INTERVAL`]; a service is `up` while its last report is at most
//! [`SERVICE_DOWN_TIME`] old. An admin may disable a service (`PUT /v3/os-services/disable`):
//! a disabled `cinder-volume` gets no new volumes.

use crate::db::{Db, Result};
use crate::service::Volumes;
use ferrostack_store::now_rfc3339;
use sqlx::Row;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The scheduler's binary name.
pub const SCHEDULER_BINARY: &str = "cinder-scheduler";
/// The volume manager's binary name.
pub const VOLUME_BINARY: &str = "cinder-volume";
/// Seconds between two reports of a service (Cinder's `report_interval`).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(10);
/// Seconds after its last report a service is down (Cinder's `service_down_time`).
pub const SERVICE_DOWN_TIME: i64 = 60;

/// A service's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRow {
    pub host: String,
    pub binary: String,
    pub zone: String,
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: String,
    /// The last report (RFC 3339).
    pub updated_at: String,
}

impl ServiceRow {
    /// Whether the last report is at most [`SERVICE_DOWN_TIME`] seconds old at `now`.
    pub fn is_up(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        chrono::DateTime::parse_from_rfc3339(&self.updated_at)
            .map(|t| (now - t.with_timezone(&chrono::Utc)).num_seconds().abs() <= SERVICE_DOWN_TIME)
            .unwrap_or(false)
    }
}

/// Records a report of the service `binary` on `host` in `zone` (its row is created on the
/// first one, enabled).
pub async fn report(db: &Db, host: &str, binary: &str, zone: &str) -> Result<()> {
    let now = now_rfc3339();
    sqlx::query(
        "INSERT INTO vol_services (host, binary_name, zone, disabled, disabled_reason, \
         created_at, updated_at) VALUES ($1, $2, $3, 0, NULL, $4, $4) \
         ON CONFLICT (host, binary_name) DO UPDATE SET zone = excluded.zone, \
         updated_at = excluded.updated_at",
    )
    .bind(host)
    .bind(binary)
    .bind(zone)
    .bind(&now)
    .execute(db.store().pool())
    .await?;
    Ok(())
}

/// Every service, by binary then host.
pub async fn list(db: &Db) -> Result<Vec<ServiceRow>> {
    let rows = sqlx::query(
        "SELECT host, binary_name, zone, disabled, disabled_reason, created_at, updated_at \
         FROM vol_services ORDER BY binary_name, host",
    )
    .fetch_all(db.store().pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ServiceRow {
                host: r.try_get("host")?,
                binary: r.try_get("binary_name")?,
                zone: r.try_get("zone")?,
                disabled: r.try_get::<i64, _>("disabled")? != 0,
                disabled_reason: r.try_get("disabled_reason")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The service `binary` on `host`, if it ever reported.
pub async fn find(db: &Db, host: &str, binary: &str) -> Result<Option<ServiceRow>> {
    Ok(list(db)
        .await?
        .into_iter()
        .find(|s| s.host == host && s.binary == binary))
}

/// Enables or disables (with `reason`) the service `binary` on `host`; `false` when there is
/// no such service.
pub async fn set_disabled(
    db: &Db,
    host: &str,
    binary: &str,
    disabled: bool,
    reason: Option<&str>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE vol_services SET disabled = CAST($1 AS BIGINT), disabled_reason = $2 \
         WHERE host = $3 AND binary_name = $4",
    )
    .bind(i64::from(disabled))
    .bind(reason)
    .bind(host)
    .bind(binary)
    .execute(db.store().pool())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The `cinder-volume` host of this service's backend (`<host>@<backend>`).
pub fn volume_service_host(volumes: &Volumes) -> String {
    format!(
        "{}@{}",
        volumes.settings.host,
        volumes.driver.backend_name()
    )
}

/// Reports `binary` on `host` now and then every [`REPORT_INTERVAL`] while the service is
/// open (the task ends once the last reference to it is dropped).
pub(crate) async fn start_reporting(
    volumes: &Arc<Volumes>,
    host: String,
    binary: &'static str,
) -> Result<tokio::task::JoinHandle<()>> {
    let zone = volumes.settings.availability_zone.clone();
    report(&volumes.db, &host, binary, &zone).await?;
    let weak: Weak<Volumes> = Arc::downgrade(volumes);
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(REPORT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(volumes) = weak.upgrade() else {
                return;
            };
            if let Err(e) = report(&volumes.db, &host, binary, &zone).await {
                let e = anyhow::Error::from(e);
                tracing::warn!(binary, host, error = %format!("{e:#}"), "service report not saved");
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(updated_at: &str) -> ServiceRow {
        ServiceRow {
            host: "h".into(),
            binary: VOLUME_BINARY.into(),
            zone: "nova".into(),
            disabled: false,
            disabled_reason: None,
            created_at: updated_at.into(),
            updated_at: updated_at.into(),
        }
    }

    #[test]
    fn a_service_is_up_for_sixty_seconds_after_its_report() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:01:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert!(row("2026-01-01T00:00:00Z").is_up(now));
        assert!(!row("2025-12-31T23:59:59Z").is_up(now));
        assert!(!row("not a time").is_up(now));
    }
}
