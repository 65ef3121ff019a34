//! User messages (Cinder's `cinder/message`): what failed in an asynchronous operation, for the
//! project that asked for it (`GET /v3/messages`, 3.3). An event is
//! `VOLUME_<resource>_<action>_<detail>`; the text shown is `<action>: <detail>`. Messages
//! expire [`MESSAGE_TTL`] after they are written (the volume manager's sweep removes them).

use crate::db::{self, Db, write_tx};
use ferrostack_store::doc::{Col, Doc};
use serde::{Deserialize, Serialize};

/// How long a message is kept (Cinder's `message_ttl`, 30 days).
pub const MESSAGE_TTL: chrono::Duration = chrono::Duration::seconds(2_592_000);

/// An action a message is about (`message_field.Action`): its id and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action(pub &'static str, pub &'static str);

/// Allocating a new volume to a backend.
pub const SCHEDULE_ALLOCATE_VOLUME: Action = Action("001", "schedule allocate volume");
/// Writing an image to a new volume.
pub const COPY_IMAGE_TO_VOLUME: Action = Action("005", "copy image to volume");

/// What went wrong (`message_field.Detail`): its id and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detail(pub &'static str, pub &'static str);

/// An error without a more precise detail.
pub const UNKNOWN_ERROR: Detail = Detail("001", "An unknown error occurred.");
/// The scheduler found no backend for the volume.
pub const NO_BACKEND_AVAILABLE: Detail =
    Detail("003", "Could not find any available weighted backend.");

/// A stored message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub project_id: String,
    /// `VOLUME_<resource type>_<action id>_<detail id>`.
    pub event_id: String,
    pub message_level: String,
    pub resource_type: Option<String>,
    pub resource_uuid: Option<String>,
    pub request_id: String,
    pub created_at: String,
    pub expires_at: String,
}

impl Message {
    /// The text users see (`defined_messages.get_message_text`): the action's and the
    /// detail's texts from the event id.
    pub fn user_message(&self) -> String {
        let mut parts = self.event_id.rsplitn(3, '_');
        let detail = parts.next().unwrap_or("");
        let action = parts.next().unwrap_or("");
        let action = ACTIONS
            .iter()
            .find(|a| a.0 == action)
            .map_or("unknown action", |a| a.1);
        let detail = DETAILS
            .iter()
            .find(|d| d.0 == detail)
            .map_or(UNKNOWN_ERROR.1, |d| d.1);
        format!("{action}: {detail}")
    }
}

const ACTIONS: &[Action] = &[SCHEDULE_ALLOCATE_VOLUME, COPY_IMAGE_TO_VOLUME];
const DETAILS: &[Detail] = &[UNKNOWN_ERROR, NO_BACKEND_AVAILABLE];

impl Doc for Message {
    const TABLE: &'static str = "vol_messages";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Col)> {
        vec![
            ("project_id", Col::text(&self.project_id)),
            ("resource_uuid", Col::Text(self.resource_uuid.clone())),
            ("expires_at", Col::text(&self.expires_at)),
            ("created_at", Col::text(&self.created_at)),
        ]
    }
}

/// Records an `ERROR` message about volume `volume_id` of `project` for the request
/// `request_id`.
pub async fn record_volume_error(
    db: &Db,
    project: &str,
    volume_id: &str,
    request_id: Option<&str>,
    action: Action,
    detail: Detail,
) -> db::Result<Message> {
    let now = chrono::Utc::now();
    let message = Message {
        id: uuid::Uuid::new_v4().to_string(),
        project_id: project.to_string(),
        event_id: format!("VOLUME_VOLUME_{}_{}", action.0, detail.0),
        message_level: "ERROR".into(),
        resource_type: Some("VOLUME".into()),
        resource_uuid: Some(volume_id.to_string()),
        request_id: request_id
            .map(str::to_string)
            .unwrap_or_else(|| format!("req-{}", uuid::Uuid::new_v4())),
        created_at: rfc3339(now),
        expires_at: rfc3339(now + MESSAGE_TTL),
    };
    write_tx!(db, |tx| tx.insert(&message).await)?;
    Ok(message)
}

/// Removes the messages expired at `now`; returns how many.
pub async fn remove_expired(db: &Db) -> db::Result<u64> {
    let now = rfc3339(chrono::Utc::now());
    write_tx!(db, |tx| {
        tx.exec("DELETE FROM vol_messages WHERE expires_at < $1", &[&now])
            .await
    })
}

/// A time as the store writes them.
fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_comes_from_the_event_id() {
        let message = Message {
            id: "m".into(),
            project_id: "p".into(),
            event_id: "VOLUME_VOLUME_001_003".into(),
            message_level: "ERROR".into(),
            resource_type: Some("VOLUME".into()),
            resource_uuid: None,
            request_id: "req-1".into(),
            created_at: String::new(),
            expires_at: String::new(),
        };
        assert_eq!(
            message.user_message(),
            "schedule allocate volume: Could not find any available weighted backend."
        );
        let unknown = Message {
            event_id: "VOLUME_VOLUME_999_999".into(),
            ..message
        };
        assert_eq!(
            unknown.user_message(),
            "unknown action: An unknown error occurred."
        );
    }
}
