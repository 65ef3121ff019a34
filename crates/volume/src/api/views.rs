//! The volume views (`cinder/api/v3/views/volumes.py` plus the `os-vol-*` extensions): the
//! summary and detail objects for the negotiated microversion and the caller's rights, and the
//! row the list filters and sorts on.

use super::{is_admin, query};
use crate::db::{Db, Result};
use crate::model::{Attachment, Volume, VolumeSource, VolumeType, attach_status};
use crate::service::Volumes;
use axum::http::Uri;
use ferrostack_api::{Auth, Version};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// `volume_extension:volume_host_attribute`
pub(crate) const HOST_ATTRIBUTE: &str = "volume_extension:volume_host_attribute";
/// `volume_extension:volume_tenant_attribute`
pub(crate) const TENANT_ATTRIBUTE: &str = "volume_extension:volume_tenant_attribute";
/// `volume_extension:volume_mig_status_attribute`
pub(crate) const MIG_ATTRIBUTE: &str = "volume_extension:volume_mig_status_attribute";
/// `volume_extension:volume_image_metadata:show`
pub(crate) const IMAGE_METADATA_SHOW: &str = "volume_extension:volume_image_metadata:show";

/// A stored RFC 3339 time as Cinder renders it: UTC, microseconds, no zone
/// (`2026-11-23T07:16:33.000000`).
pub(crate) fn timestamp(stored: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(stored) {
        Ok(t) => t
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string(),
        Err(_) => stored.trim_end_matches('Z').to_string(),
    }
}

/// What the views need to know of the request and the caller, computed once per request.
pub(crate) struct ViewCtx {
    pub(crate) mv: Version,
    pub(crate) admin: bool,
    /// Admins and services see the attachments' host names.
    service: bool,
    host_attr: bool,
    mig_attr: bool,
    tenant_attr: bool,
    image_meta: bool,
    /// Whether the `os-vol-*` extension attributes apply (show and detail lists, not the
    /// create and update answers, as in Cinder).
    pub(crate) extended: bool,
    /// `<base>/v3[/<project>]`: the request's prefix, for `self` and `next` links.
    pub(crate) prefix: String,
    /// `<base>[/<project>]`: for `bookmark` links.
    bookmark: String,
}

impl ViewCtx {
    /// The context of a request: `uri` is the original URI (it keeps a project id segment,
    /// which Cinder repeats in the links when the caller's project is in the URL).
    pub(crate) fn new(volumes: &Volumes, auth: &Auth, mv: Version, uri: &Uri) -> ViewCtx {
        let creds_target = json!({"project_id": auth.project_id(), "user_id": auth.user.id});
        let project_segment = auth
            .project_id()
            .filter(|p| uri.path().contains(&format!("/v3/{p}/")))
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        let admin = is_admin(auth);
        ViewCtx {
            mv,
            admin,
            service: admin || auth.has_role("service"),
            host_attr: auth.allows(HOST_ATTRIBUTE, &creds_target),
            mig_attr: auth.allows(MIG_ATTRIBUTE, &creds_target),
            tenant_attr: auth.allows(TENANT_ATTRIBUTE, &creds_target),
            image_meta: auth.allows(IMAGE_METADATA_SHOW, &creds_target),
            extended: true,
            prefix: format!("{}/v3{project_segment}", volumes.base_url()),
            bookmark: format!("{}{project_segment}", volumes.base_url()),
        }
    }

    /// The same context for the create and update answers (no extension attributes).
    pub(crate) fn plain(mut self) -> ViewCtx {
        self.extended = false;
        self
    }

    fn at_least(&self, minor: u16) -> bool {
        self.mv >= Version::new(3, minor)
    }

    /// `self` and `bookmark` links of `<collection>/<id>`.
    pub(crate) fn links(&self, collection: &str, id: &str) -> Value {
        json!([
            {"rel": "self", "href": format!("{}/{collection}/{id}", self.prefix)},
            {"rel": "bookmark", "href": format!("{}/{collection}/{id}", self.bookmark)},
        ])
    }
}

/// The volume types and attached attachments the views of some volumes refer to.
#[derive(Default)]
pub(crate) struct Related {
    types: HashMap<String, VolumeType>,
    attachments: HashMap<String, Vec<Attachment>>,
}

impl Related {
    /// Loads every volume type and the `attached` attachments of `volumes`.
    pub(crate) async fn load(db: &Db, volumes: &[Volume]) -> Result<Related> {
        let types: Vec<VolumeType> = db.select("1 = 1", &[]).await?;
        let attachments: Vec<Attachment> = match volumes {
            [one] => {
                db.select(
                    "volume_id = $1 AND attach_status = $2",
                    &[&one.id, attach_status::ATTACHED],
                )
                .await?
            }
            _ => {
                db.select("attach_status = $1", &[attach_status::ATTACHED])
                    .await?
            }
        };
        let mut by_volume: HashMap<String, Vec<Attachment>> = HashMap::new();
        for a in attachments {
            by_volume.entry(a.volume_id.clone()).or_default().push(a);
        }
        Ok(Related {
            types: types.into_iter().map(|t| (t.id.clone(), t)).collect(),
            attachments: by_volume,
        })
    }

    /// The volume type of `volume`, if it still exists.
    pub(crate) fn volume_type(&self, volume: &Volume) -> Option<&VolumeType> {
        self.types.get(&volume.volume_type_id)
    }

    fn attached(&self, volume: &Volume) -> &[Attachment] {
        self.attachments
            .get(&volume.id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// The status shown (Cinder hides its managing states).
fn shown_status(status: &str) -> &str {
    match status {
        "managing" => "creating",
        "error_managing" => "error",
        "error_managing_deleting" => "deleting",
        other => other,
    }
}

fn snapshot_id(volume: &Volume) -> Option<&str> {
    match &volume.source {
        VolumeSource::Snapshot { snapshot_id } => Some(snapshot_id),
        _ => None,
    }
}

fn source_volid(volume: &Volume) -> Option<&str> {
    match &volume.source {
        VolumeSource::Volume { volume_id } => Some(volume_id),
        _ => None,
    }
}

/// The user metadata plus the visible admin metadata (`readonly` once set, `attached_mode`
/// while attached), as `add_visible_admin_metadata` shows them.
fn shown_metadata(volume: &Volume, attached: &[Attachment]) -> BTreeMap<String, String> {
    let mut metadata = volume.metadata.clone();
    if let Some(readonly) = volume.readonly {
        let shown = if readonly { "True" } else { "False" };
        metadata.insert("readonly".into(), shown.into());
    }
    if let Some(a) = attached.first() {
        metadata.insert("attached_mode".into(), a.attach_mode.clone());
    }
    metadata
}

fn attachment_view(a: &Attachment, ctx: &ViewCtx) -> Value {
    json!({
        "id": a.volume_id,
        "attachment_id": a.id,
        "volume_id": a.volume_id,
        "server_id": a.instance_uuid,
        "host_name": if ctx.service { a.attached_host.clone() } else { None },
        "device": a.mountpoint,
        "attached_at": a.attach_time.as_deref().map(timestamp),
    })
}

/// A stable id of the volume service that holds `host` (`service_uuid`, 3.48).
fn service_uuid(host: &str) -> String {
    let service = host.split('#').next().unwrap_or(host);
    let hash = |seed: u64| {
        service.bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hash(0xcbf2_9ce4_8422_2325).to_be_bytes());
    bytes[8..].copy_from_slice(&hash(0x8422_2325_cbf2_9ce4).to_be_bytes());
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The summary view (`{id, name, links}`).
pub(crate) fn summary(volume: &Volume, ctx: &ViewCtx) -> Value {
    json!({
        "id": volume.id,
        "name": volume.name,
        "links": ctx.links("volumes", &volume.id),
    })
}

/// The detail view of `volume` for the request's microversion and the caller's rights.
pub(crate) fn volume(volume: &Volume, related: &Related, ctx: &ViewCtx) -> Value {
    let attached = related.attached(volume);
    let volume_type = related.volume_type(volume);
    let type_name = match (volume_type, ctx.at_least(63)) {
        (Some(t), _) => json!(t.name),
        (None, true) => Value::Null,
        (None, false) => json!(volume.volume_type_id),
    };
    let mut v = json!({
        "id": volume.id,
        "status": shown_status(&volume.status),
        "size": volume.size,
        "availability_zone": volume.availability_zone,
        "created_at": timestamp(&volume.created_at),
        "updated_at": volume.updated_at.as_deref().map(timestamp),
        "name": volume.name,
        "description": volume.description,
        "volume_type": type_name,
        "snapshot_id": snapshot_id(volume),
        "source_volid": source_volid(volume),
        "metadata": shown_metadata(volume, attached),
        "links": ctx.links("volumes", &volume.id),
        "user_id": volume.user_id,
        "bootable": if volume.bootable { "true" } else { "false" },
        "encrypted": false,
        "replication_status": "disabled",
        "consistencygroup_id": null,
        "multiattach": volume.multiattach,
        "attachments": attached.iter().map(|a| attachment_view(a, ctx)).collect::<Vec<_>>(),
    });
    if ctx.admin {
        v["migration_status"] = Value::Null;
    }
    add_microversion_fields(&mut v, volume, volume_type, ctx);
    if ctx.extended {
        add_extension_fields(&mut v, volume, ctx);
    }
    v
}

fn add_microversion_fields(
    v: &mut Value,
    volume: &Volume,
    volume_type: Option<&VolumeType>,
    ctx: &ViewCtx,
) {
    if ctx.at_least(13) {
        v["group_id"] = Value::Null;
    }
    if ctx.admin && ctx.at_least(21) {
        v["provider_id"] = Value::Null;
    }
    if ctx.at_least(48) {
        v["shared_targets"] = json!(false);
        v["service_uuid"] = json!(volume.host.as_deref().map(service_uuid));
    }
    if ctx.admin && ctx.at_least(61) {
        v["cluster_name"] = Value::Null;
    }
    if ctx.at_least(63) {
        v["volume_type_id"] = json!(volume_type.map(|t| &t.id));
    }
    if ctx.at_least(65) {
        v["consumes_quota"] = json!(volume.consumes_quota);
    }
}

fn add_extension_fields(v: &mut Value, volume: &Volume, ctx: &ViewCtx) {
    if ctx.tenant_attr {
        v["os-vol-tenant-attr:tenant_id"] = json!(volume.project_id);
    }
    if ctx.host_attr {
        v["os-vol-host-attr:host"] = json!(volume.host);
    }
    if ctx.mig_attr {
        v["os-vol-mig-status-attr:migstat"] = Value::Null;
        v["os-vol-mig-status-attr:name_id"] = Value::Null;
    }
    if ctx.image_meta && !volume.image_metadata.is_empty() {
        v["volume_image_metadata"] = json!(volume.image_metadata);
    }
}

/// A volume type as Cinder serializes the object (in the `os-volume_upload_image` answer).
pub(crate) fn volume_type_object(t: &VolumeType) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        "extra_specs": t.extra_specs,
        "qos_specs_id": t.qos_specs_id,
        "created_at": timestamp(&t.created_at),
        "updated_at": t.updated_at.as_deref().map(timestamp),
        "deleted": false,
        "deleted_at": null,
    })
}

/// The row the volume list filters and sorts on: Cinder's column names (`display_name`,
/// `use_quota`, ...), the metadata (user and visible admin) and the image metadata.
pub(crate) fn filter_row(volume: &Volume, related: &Related) -> Value {
    let volume_type = related.volume_type(volume);
    let mut type_refs = vec![json!(volume.volume_type_id)];
    if let Some(t) = volume_type {
        type_refs.push(json!(t.name));
    }
    query::row(vec![
        ("id", json!(volume.id)),
        ("project_id", json!(volume.project_id)),
        ("user_id", json!(volume.user_id)),
        ("host", json!(volume.host)),
        ("size", json!(volume.size)),
        ("availability_zone", json!(volume.availability_zone)),
        ("status", json!(volume.status)),
        ("attach_status", json!(volume.attach_status)),
        ("migration_status", Value::Null),
        ("display_name", json!(volume.name)),
        ("display_description", json!(volume.description)),
        ("bootable", json!(volume.bootable)),
        ("multiattach", json!(volume.multiattach)),
        ("volume_type_id", json!(volume.volume_type_id)),
        ("volume_type", Value::Array(type_refs)),
        ("snapshot_id", json!(snapshot_id(volume))),
        ("source_volid", json!(source_volid(volume))),
        ("consistencygroup_id", Value::Null),
        ("group_id", Value::Null),
        ("replication_status", json!("disabled")),
        ("provider_id", Value::Null),
        ("use_quota", json!(volume.consumes_quota)),
        ("shared_targets", json!(false)),
        ("created_at", json!(volume.created_at)),
        ("updated_at", json!(volume.updated_at)),
        ("launched_at", json!(volume.launched_at)),
        (
            "metadata",
            json!(shown_metadata(volume, related.attached(volume))),
        ),
        ("glance_metadata", json!(volume.image_metadata)),
    ])
}

/// The columns of [`filter_row`].
pub(crate) const COLUMNS: &[&str] = &[
    "id",
    "project_id",
    "user_id",
    "host",
    "size",
    "availability_zone",
    "status",
    "attach_status",
    "migration_status",
    "display_name",
    "display_description",
    "bootable",
    "multiattach",
    "volume_type_id",
    "volume_type",
    "snapshot_id",
    "source_volid",
    "consistencygroup_id",
    "group_id",
    "replication_status",
    "provider_id",
    "use_quota",
    "shared_targets",
    "created_at",
    "updated_at",
    "launched_at",
    "metadata",
    "glance_metadata",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rendered_as_cinder_does() {
        assert_eq!(
            timestamp("2026-11-23T07:16:33Z"),
            "2026-11-23T07:16:33.000000"
        );
        assert_eq!(
            timestamp("2026-11-23T07:16:33.123456Z"),
            "2026-11-23T07:16:33.123456"
        );
    }

    #[test]
    fn service_uuid_is_stable_per_backend() {
        let a = service_uuid("storage1@file#file");
        assert_eq!(a, service_uuid("storage1@file#other"));
        assert_ne!(a, service_uuid("storage2@file#file"));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }
}
