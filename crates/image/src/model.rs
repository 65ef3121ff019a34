//! The image record, its members and import tasks, and their JSON renderings.

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// Image statuses (Glance's `valid_state_targets` keys).
pub mod status {
    pub const QUEUED: &str = "queued";
    pub const SAVING: &str = "saving";
    pub const UPLOADING: &str = "uploading";
    pub const IMPORTING: &str = "importing";
    pub const ACTIVE: &str = "active";
    pub const KILLED: &str = "killed";
    pub const DEACTIVATED: &str = "deactivated";
    pub const PENDING_DELETE: &str = "pending_delete";
    pub const DELETED: &str = "deleted";
}

/// Whether Glance allows the status transition `from` → `to`.
pub fn transition_allowed(from: &str, to: &str) -> bool {
    use status::*;
    let targets: &[&str] = match from {
        QUEUED => &[SAVING, UPLOADING, IMPORTING, ACTIVE, DELETED],
        SAVING => &[ACTIVE, KILLED, DELETED, QUEUED],
        UPLOADING => &[IMPORTING, QUEUED, DELETED],
        IMPORTING => &[ACTIVE, DELETED, QUEUED],
        ACTIVE => &[PENDING_DELETE, DELETED, DEACTIVATED],
        KILLED => &[DELETED],
        PENDING_DELETE => &[DELETED, ACTIVE],
        DEACTIVATED => &[ACTIVE, DELETED],
        _ => &[],
    };
    targets.contains(&to)
}

/// Extra properties the API never shows.
pub const HIDDEN_PROPERTIES: [&str; 2] = ["os_glance_stage_host", "os_glance_hash_op_host"];
/// The import lock property.
pub const IMPORT_TASK_PROPERTY: &str = "os_glance_import_task";
/// Stores an import is writing to.
pub const IMPORTING_TO_PROPERTY: &str = "os_glance_importing_to_stores";
/// Stores an import failed on.
pub const FAILED_IMPORT_PROPERTY: &str = "os_glance_failed_import";

/// One image (a row of `images` with its properties and tags).
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    pub visibility: String,
    pub owner: Option<String>,
    pub protected: bool,
    pub os_hidden: bool,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub size: Option<i64>,
    pub virtual_size: Option<i64>,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub min_ram: i64,
    pub min_disk: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Where the store holds the data (not shown: `show_image_direct_url` is off).
    pub location: Option<String>,
    /// Bumped by every write; whole-record saves compare it (no lost updates).
    pub generation: i64,
    /// Extra (custom) properties, all strings.
    pub properties: BTreeMap<String, String>,
    pub tags: BTreeSet<String>,
}

impl Image {
    /// A new `queued` image owned by `owner`, with Glance's create defaults.
    pub fn new(id: String, owner: Option<String>, now: &str) -> Image {
        Image {
            id,
            name: None,
            status: status::QUEUED.into(),
            visibility: "shared".into(),
            owner,
            protected: false,
            os_hidden: false,
            disk_format: None,
            container_format: None,
            size: None,
            virtual_size: None,
            checksum: None,
            os_hash_algo: None,
            os_hash_value: None,
            min_ram: 0,
            min_disk: 0,
            created_at: now.into(),
            updated_at: now.into(),
            location: None,
            generation: 0,
            properties: BTreeMap::new(),
            tags: BTreeSet::new(),
        }
    }

    /// Returns the image to `queued` without data (Glance's `_restore`).
    pub fn reset_to_queued(&mut self) {
        self.status = status::QUEUED.into();
        self.size = None;
        self.virtual_size = None;
        self.checksum = None;
        self.os_hash_algo = None;
        self.os_hash_value = None;
        self.location = None;
    }

    /// Glance's check before data is saved: both formats must be set.
    pub fn formats_missing(&self) -> Option<&'static str> {
        match (self.disk_format.is_none(), self.container_format.is_none()) {
            (true, true) => {
                Some("Properties disk_format, container_format must be set prior to saving data.")
            }
            (true, false) => Some("Property disk_format must be set prior to saving data."),
            (false, true) => Some("Property container_format must be set prior to saving data."),
            (false, false) => None,
        }
    }

    /// The value of a core attribute as JSON (None for extra properties).
    pub fn core_value(&self, key: &str) -> Option<Value> {
        Some(match key {
            "id" => json!(self.id),
            "name" => json!(self.name),
            "status" => json!(self.status),
            "visibility" => json!(self.visibility),
            "owner" => json!(self.owner),
            "protected" => json!(self.protected),
            "os_hidden" => json!(self.os_hidden),
            "disk_format" => json!(self.disk_format),
            "container_format" => json!(self.container_format),
            "size" => json!(self.size),
            "virtual_size" => json!(self.virtual_size),
            "checksum" => json!(self.checksum),
            "os_hash_algo" => json!(self.os_hash_algo),
            "os_hash_value" => json!(self.os_hash_value),
            "min_ram" => json!(self.min_ram),
            "min_disk" => json!(self.min_disk),
            "created_at" => json!(self.created_at),
            "updated_at" => json!(self.updated_at),
            "tags" => json!(self.tags),
            _ => return None,
        })
    }

    /// The image body as Glance serializes it (links relative, without the `/image` prefix).
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        for (key, value) in &self.properties {
            if !HIDDEN_PROPERTIES.contains(&key.as_str()) {
                body.insert(key.clone(), json!(value));
            }
        }
        for key in CORE_KEYS {
            body.insert(key.to_string(), self.core_value(key).unwrap_or(Value::Null));
        }
        body.insert("self".into(), json!(format!("/v2/images/{}", self.id)));
        body.insert("file".into(), json!(format!("/v2/images/{}/file", self.id)));
        body.insert("schema".into(), json!("/v2/schemas/image"));
        Value::Object(body)
    }
}

/// Core attributes always present in the image body.
pub const CORE_KEYS: [&str; 19] = [
    "id",
    "name",
    "status",
    "visibility",
    "owner",
    "protected",
    "os_hidden",
    "disk_format",
    "container_format",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "min_ram",
    "min_disk",
    "created_at",
    "updated_at",
    "tags",
];

/// Attributes a client may never set.
pub const READ_ONLY_KEYS: [&str; 14] = [
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "size",
    "virtual_size",
    "direct_url",
    "self",
    "file",
    "schema",
    "id",
    "os_hash_algo",
    "os_hash_value",
    "stores",
];

/// Whether `key` is reserved (never settable as an extra property).
pub fn is_reserved(key: &str) -> bool {
    matches!(key, "location" | "deleted" | "deleted_at") || key.starts_with("os_glance")
}

/// A project's membership of a shared image.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub image_id: String,
    pub member: String,
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
}

impl Member {
    /// The member body.
    pub fn to_json(&self) -> Value {
        json!({
            "member_id": self.member,
            "image_id": self.image_id,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "schema": "/v2/schemas/member",
        })
    }
}

/// An `api_image_import` task.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: String,
    pub image_id: String,
    pub status: String,
    pub owner: Option<String>,
    pub user_id: String,
    pub request_id: String,
    pub input: Value,
    pub result: Option<Value>,
    pub message: String,
    pub created_at: String,
    pub updated_at: String,
}

impl Task {
    /// The task body of `GET /v2/images/{id}/tasks`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": "api_image_import",
            "status": self.status,
            "owner": self.owner,
            "image_id": self.image_id,
            "user_id": self.user_id,
            "request_id": self.request_id,
            "input": self.input,
            "result": self.result,
            "message": self.message,
            "expires_at": null,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "deleted": false,
            "deleted_at": null,
        })
    }
}

/// Now, as Glance renders timestamps (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_follow_glance() {
        assert!(transition_allowed("queued", "saving"));
        assert!(transition_allowed("saving", "queued"));
        assert!(!transition_allowed("active", "saving"));
        assert!(!transition_allowed("killed", "active"));
        assert!(transition_allowed("deactivated", "active"));
        assert!(!transition_allowed("deleted", "queued"));
    }

    #[test]
    fn body_has_core_keys_links_and_visible_extras() {
        let mut image = Image::new("i1".into(), Some("p".into()), "2026-01-01T00:00:00Z");
        image.properties.insert("os_distro".into(), "debian".into());
        image
            .properties
            .insert("os_glance_stage_host".into(), "h".into());
        let body = image.to_json();
        assert_eq!(body["visibility"], "shared");
        assert_eq!(body["size"], Value::Null);
        assert_eq!(body["tags"], json!([]));
        assert_eq!(body["os_distro"], "debian");
        assert!(body.get("os_glance_stage_host").is_none());
        assert_eq!(body["file"], "/v2/images/i1/file");
        assert_eq!(body.as_object().unwrap().len(), 23);
    }

    #[test]
    fn formats_must_be_set_before_data() {
        let mut image = Image::new("i".into(), None, "t");
        assert!(
            image
                .formats_missing()
                .unwrap()
                .contains("disk_format, container_format")
        );
        image.disk_format = Some("raw".into());
        assert_eq!(
            image.formats_missing(),
            Some("Property container_format must be set prior to saving data.")
        );
        image.container_format = Some("bare".into());
        assert_eq!(image.formats_missing(), None);
    }
}
