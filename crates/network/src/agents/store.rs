//! Agent rows (Neutron's `agents` table): one per host and agent type, refreshed by every
//! report; `alive` is the heartbeat's age against [`AGENT_DOWN_TIME`].

use crate::db::{Col, Db, Doc, Result, write_tx};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Seconds without a heartbeat after which an agent is dead (Neutron's `agent_down_time`).
pub const AGENT_DOWN_TIME: i64 = 75;

/// The Linux bridge agent (every host).
pub const LINUX_BRIDGE: (&str, &str) = ("Linux bridge agent", "neutron-linuxbridge-agent");
/// The agents of the network host (DHCP, routers, metadata).
pub const NETWORK_HOST_AGENTS: [(&str, &str); 3] = [
    ("DHCP agent", "neutron-dhcp-agent"),
    ("L3 agent", "neutron-l3-agent"),
    ("Metadata agent", "neutron-metadata-agent"),
];

/// One agent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentRow {
    pub id: String,
    pub agent_type: String,
    pub binary: String,
    pub host: String,
    pub topic: String,
    pub admin_state_up: bool,
    pub heartbeat_timestamp: String,
    pub started_at: String,
    pub created_at: String,
    pub description: String,
    pub configurations: Value,
}

impl Doc for AgentRow {
    const TABLE: &'static str = "net_agents";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("host", Col::Text(Some(self.host.clone()))),
            ("agent_type", Col::Text(Some(self.agent_type.clone()))),
            ("created_at", Col::Text(Some(self.created_at.clone()))),
        ]
    }
}

/// Whether a heartbeat at `heartbeat` (RFC 3339) is recent at `now`.
pub fn is_alive(heartbeat: &str, now: DateTime<Utc>) -> bool {
    DateTime::parse_from_rfc3339(heartbeat)
        .map(|t| (now - t.with_timezone(&Utc)).num_seconds() < AGENT_DOWN_TIME)
        .unwrap_or(false)
}

impl AgentRow {
    /// The API view (Neutron's agent attributes).
    pub fn view(&self, now: DateTime<Utc>) -> Value {
        json!({
            "id": self.id,
            "agent_type": self.agent_type,
            "binary": self.binary,
            "host": self.host,
            "topic": self.topic,
            "admin_state_up": self.admin_state_up,
            "alive": is_alive(&self.heartbeat_timestamp, now),
            "heartbeat_timestamp": api_time(&self.heartbeat_timestamp),
            "started_at": api_time(&self.started_at),
            "created_at": api_time(&self.created_at),
            "description": self.description,
            "configurations": self.configurations,
            "availability_zone": match self.agent_type.as_str() {
                "DHCP agent" | "L3 agent" => json!("nova"),
                _ => Value::Null,
            },
            "resources_synced": null,
        })
    }
}

/// Neutron's agent times: `2026-01-01 00:00:00`.
fn api_time(text: &str) -> String {
    DateTime::parse_from_rfc3339(text)
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| text.to_string())
}

/// Every agent row.
pub async fn list(db: &Db) -> Result<Vec<AgentRow>> {
    db.select("1 = 1", &[]).await
}

/// Records a heartbeat of `agent_type` on `host` (creating its row on the first).
pub async fn heartbeat(
    db: &Db,
    (agent_type, binary): (&str, &str),
    host: &str,
    at: &str,
    started_at: &str,
    configurations: Value,
) -> Result<AgentRow> {
    write_tx!(db, |tx| (async {
        let rows: Vec<AgentRow> = tx
            .select("host = $1 AND agent_type = $2", &[host, agent_type])
            .await?;
        match rows.into_iter().next() {
            Some(mut row) => {
                row.heartbeat_timestamp = at.to_string();
                row.started_at = started_at.to_string();
                row.configurations = configurations.clone();
                tx.save(&row).await?;
                Ok(row)
            }
            None => {
                let row = AgentRow {
                    id: crate::model::new_id(),
                    agent_type: agent_type.into(),
                    binary: binary.into(),
                    host: host.into(),
                    topic: "N/A".into(),
                    admin_state_up: true,
                    heartbeat_timestamp: at.into(),
                    started_at: started_at.into(),
                    created_at: at.into(),
                    description: String::new(),
                    configurations: configurations.clone(),
                };
                tx.insert(&row).await?;
                Ok(row)
            }
        }
    })
    .await)
}

/// Sets `admin_state_up` (and the description); `None` when there is no such agent.
pub async fn update(
    db: &Db,
    id: &str,
    admin_state_up: Option<bool>,
    description: Option<String>,
) -> Result<Option<AgentRow>> {
    write_tx!(db, |tx| (async {
        let Some(mut row) = tx.lock::<AgentRow>(id).await? else {
            return Ok(None);
        };
        if let Some(up) = admin_state_up {
            row.admin_state_up = up;
        }
        if let Some(d) = &description {
            row.description = d.clone();
        }
        tx.save(&row).await?;
        Ok(Some(row))
    })
    .await)
}

/// Deletes an agent row; whether it existed.
pub async fn delete(db: &Db, id: &str) -> Result<bool> {
    write_tx!(db, |tx| (async {
        let found = tx.get::<AgentRow>(id).await?.is_some();
        tx.delete::<AgentRow>(id).await?;
        Ok(found)
    })
    .await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_follows_the_heartbeat_age() {
        let now: DateTime<Utc> = "2026-01-01T00:02:00Z".parse().unwrap();
        assert!(is_alive("2026-01-01T00:01:30Z", now));
        assert!(!is_alive("2026-01-01T00:00:00Z", now));
        assert!(!is_alive("garbage", now));
        assert_eq!(api_time("2026-01-01T00:01:30Z"), "2026-01-01 00:01:30");
    }
}
