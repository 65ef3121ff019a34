//! A server create's block device mappings (`block_device_mapping_v2`, Nova's
//! `block_device.py` and `compute/api.py:_validate_bdm`): the image a server boots from, or
//! the volume it boots from, and the existing volumes it is created with.
//!
//! Supported: an image's local root disk (`image`→`local`, boot index 0), existing volumes
//! (`volume`→`volume`) and volumes made at boot (`image`, `snapshot` or `blank`→`volume`);
//! one volume may be the root disk (boot index 0). Ephemeral and swap disks and the legacy
//! `block_device_mapping` are refused with a 400 that says so.

use crate::api::services::boolean;
use crate::db::instances::Instance;
use crate::rpc::ROOT_TARGET;
use crate::service::Compute;
use crate::volumes::{self, NewVolume, VolumeApi, VolumeRecord, state};
use ferrostack_api::ApiError;
use serde_json::{Map, Value};

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message.into())
}

fn invalid_bdm(why: &str) -> ApiError {
    bad(format!("Block Device Mapping is Invalid: {why}"))
}

/// A volume requested with the server: an existing one, or one made at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedVolume {
    /// Empty for a volume made at boot.
    pub volume_id: String,
    /// The source of a volume made at boot.
    pub create: Option<NewVolume>,
    /// The root disk (boot index 0).
    pub boot: bool,
    pub delete_on_termination: bool,
    pub tag: Option<String>,
}

/// What a server boots from and the volumes it is created with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootRequest {
    /// The image of its local root disk; empty when it boots from a volume.
    pub image_ref: String,
    pub volumes: Vec<RequestedVolume>,
}

impl BootRequest {
    /// Whether the root disk is a volume.
    pub fn boots_from_volume(&self) -> bool {
        self.volumes.iter().any(|v| v.boot)
    }
}

/// The boot index of a mapping (a number or a numeric string; none or negative: not bootable).
fn boot_index(bdm: &Value) -> Result<Option<i64>, ApiError> {
    match bdm.get("boot_index") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| invalid_bdm("Boot sequence for the instance and image/block device mapping combination is not valid.")),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
            invalid_bdm("Boot sequence for the instance and image/block device mapping combination is not valid.")
        }),
        Some(_) => Err(invalid_bdm(
            "Boot sequence for the instance and image/block device mapping combination is not valid.",
        )),
    }
}

/// The volume an `image`, `snapshot` or `blank` → `volume` mapping makes (`volume_size`
/// GiB; a snapshot's size when not given).
fn new_volume(
    source: &str,
    uuid: &str,
    fields: &Map<String, Value>,
) -> Result<NewVolume, ApiError> {
    let size = match fields.get("volume_size") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_i64().unwrap_or(-1)),
        Some(Value::String(v)) => Some(v.trim().parse().unwrap_or(-1)),
        Some(_) => Some(-1),
    };
    match (source, size) {
        (_, Some(s)) if s < 1 => Err(bad(format!(
            "Invalid input for field/attribute volume_size. Value: {}.",
            fields.get("volume_size").cloned().unwrap_or(Value::Null)
        ))),
        ("image", None) => Err(invalid_bdm(
            "Images with destination_type 'volume' need to have a non-zero size specified",
        )),
        ("blank", None) => Err(invalid_bdm(
            "Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size",
        )),
        _ => Ok(NewVolume {
            size,
            image_id: (source == "image").then(|| uuid.to_string()),
            snapshot_id: (source == "snapshot").then(|| uuid.to_string()),
        }),
    }
}

/// Reads `imageRef` and `block_device_mapping_v2` of a `server` object.
pub fn boot_request(s: &Map<String, Value>) -> Result<BootRequest, ApiError> {
    let image_ref = match s.get("imageRef") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(v)) => v.clone(),
        Some(v) => {
            return Err(bad(format!(
                "Invalid input for field/attribute imageRef. Value: {v}."
            )));
        }
    };
    if s.contains_key("block_device_mapping") && s.contains_key("block_device_mapping_v2") {
        return Err(bad(
            "Using different block_device_mapping syntaxes is not allowed in the same request.",
        ));
    }
    if s.contains_key("block_device_mapping") {
        return Err(invalid_bdm(
            "the legacy block_device_mapping syntax is not supported; use block_device_mapping_v2.",
        ));
    }
    let mut boot_image = None;
    let mut volumes: Vec<RequestedVolume> = Vec::new();
    if let Some(bdms) = s.get("block_device_mapping_v2") {
        let Some(list) = bdms.as_array() else {
            return Err(bad(format!(
                "Invalid input for field/attribute block_device_mapping_v2. Value: {bdms}."
            )));
        };
        for bdm in list {
            let Some(fields) = bdm.as_object() else {
                return Err(bad(format!(
                    "Invalid input for field/attribute block_device_mapping_v2. Value: {bdm}."
                )));
            };
            let text = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or("");
            let source = text("source_type");
            let dest = match text("destination_type") {
                "" if source == "image" => "local",
                "" => "volume",
                d => d,
            };
            let index = boot_index(bdm)?;
            let uuid = text("uuid");
            match (source, dest) {
                ("image", "local") if index == Some(0) => {
                    if uuid.is_empty() {
                        return Err(invalid_bdm("Missing device UUID."));
                    }
                    boot_image = Some(uuid.to_string());
                }
                ("image", "local") => {
                    return Err(invalid_bdm("Mapping image to local is not supported."));
                }
                (source @ ("volume" | "image" | "snapshot" | "blank"), "volume") => {
                    if uuid.is_empty() && source != "blank" {
                        return Err(invalid_bdm("Missing device UUID."));
                    }
                    let create = match source {
                        "volume" => None,
                        _ => Some(new_volume(source, uuid, fields)?),
                    };
                    let delete_on_termination = match fields.get("delete_on_termination") {
                        None | Some(Value::Null) => false,
                        Some(v) => boolean(v).ok_or_else(|| {
                            bad(format!(
                                "Invalid input for field/attribute delete_on_termination. Value: {v}."
                            ))
                        })?,
                    };
                    let tag = fields.get("tag").and_then(Value::as_str).map(String::from);
                    if create.is_none() && volumes.iter().any(|v| v.volume_id == uuid) {
                        return Err(invalid_bdm(&format!(
                            "Volume {uuid} is requested more than once."
                        )));
                    }
                    volumes.push(RequestedVolume {
                        volume_id: match create {
                            None => uuid.to_string(),
                            Some(_) => String::new(),
                        },
                        create,
                        boot: index == Some(0),
                        delete_on_termination,
                        tag,
                    });
                }
                ("blank", "local") => {
                    return Err(invalid_bdm("ephemeral and swap disks are not supported."));
                }
                _ => {
                    return Err(invalid_bdm(&format!(
                        "source type '{source}' with destination type '{dest}' is not supported."
                    )));
                }
            }
        }
    }
    let boots = volumes.iter().filter(|v| v.boot).count() + usize::from(boot_image.is_some());
    if boots > 1 {
        return Err(invalid_bdm(
            "Boot sequence for the instance and image/block device mapping combination is not valid.",
        ));
    }
    let request = BootRequest {
        image_ref: match (&boot_image, image_ref.is_empty()) {
            (_, false) => image_ref,
            (Some(id), true) => id.clone(),
            (None, true) => String::new(),
        },
        volumes,
    };
    match (request.image_ref.is_empty(), request.boots_from_volume()) {
        (true, false) => Err(bad("Missing imageRef attribute")),
        // An image and a boot volume: the volume is the root disk (Nova ignores the image).
        (false, true) => Ok(BootRequest {
            image_ref: String::new(),
            ..request
        }),
        _ => Ok(request),
    }
}

/// Checks the requested volumes with the volume service (Nova's `_validate_bdm` and
/// `check_attach`): an existing one exists and is the caller's (or the caller is an admin), is
/// `available` (or an `in-use` multiattach volume), and a root one is bootable; existing
/// volumes go to one server only. Returns the records a server is created with (give each
/// server fresh ids: [`for_server`]), all `reserving`: the volumes to make are made by the API
/// once the server exists ([`make_volumes`]), and the conductor connects them all to the chosen
/// host before the build.
pub async fn volume_records(
    c: &Compute,
    project: &str,
    admin: bool,
    requested: &[RequestedVolume],
    count: i64,
) -> Result<Vec<VolumeRecord>, ApiError> {
    if requested.is_empty() {
        return Ok(Vec::new());
    }
    if count > 1 && requested.iter().any(|v| v.create.is_none()) {
        return Err(bad(
            "Cannot attach one or more volumes to multiple instances",
        ));
    }
    let service = c
        .volumes()
        .cloned()
        .ok_or_else(|| invalid_bdm("this cloud has no block storage service."))?;
    let mut data_targets = ('b'..='z').map(|l| format!("vd{l}"));
    let mut records = Vec::new();
    for want in requested {
        if want.create.is_none() {
            check_existing(service.as_ref(), want, project, admin).await?;
        }
        let target = match want.boot {
            true => ROOT_TARGET.to_string(),
            false => data_targets
                .next()
                .ok_or_else(|| invalid_bdm("too many volumes for one server."))?,
        };
        records.push(VolumeRecord {
            id: String::new(),
            volume_id: want.volume_id.clone(),
            attachment_id: None,
            target,
            tag: want.tag.clone(),
            delete_on_termination: want.delete_on_termination,
            state: state::RESERVING.into(),
            connection: None,
            request_id: String::new(),
            create: want.create.clone(),
        });
    }
    Ok(records)
}

/// An existing volume requested with a server: the caller's, attachable, bootable as its root.
async fn check_existing(
    service: &dyn VolumeApi,
    want: &RequestedVolume,
    project: &str,
    admin: bool,
) -> Result<(), ApiError> {
    let volume = service
        .volume(&want.volume_id)
        .await
        .map_err(ApiError::internal)?
        .filter(|v| admin || v.project_id == project)
        .ok_or_else(|| invalid_bdm(&format!("failed to get volume {}.", want.volume_id)))?;
    let multiattach_ok = volume.multiattach && volume.status == "in-use";
    if volume.status != "available" && !multiattach_ok {
        return Err(bad(format!(
            "Invalid volume: volume '{}' status must be 'available'. Currently in '{}'",
            volume.id, volume.status
        )));
    }
    if want.boot && !volume.bootable {
        return Err(bad(format!("Block Device {} is not bootable.", volume.id)));
    }
    Ok(())
}

/// The records of [`volume_records`] for one server: fresh mapping ids, made by `request_id`.
pub fn for_server(records: &[VolumeRecord], request_id: &str) -> Vec<VolumeRecord> {
    records
        .iter()
        .map(|r| VolumeRecord {
            id: uuid::Uuid::new_v4().to_string(),
            request_id: request_id.to_string(),
            ..r.clone()
        })
        .collect()
}

/// Makes the volumes of a just created server that are to be made at boot, as the caller
/// (`user_token`), and records their ids. A volume made but not recorded (a crash between the
/// two) is found by its tag when the server is built or deleted.
pub async fn make_volumes(c: &Compute, inst: &Instance, user_token: &str) -> anyhow::Result<()> {
    let Some(service) = c.volumes().cloned() else {
        return Ok(());
    };
    for rec in inst.data.volumes.iter().filter(|r| r.volume_id.is_empty()) {
        let Some(source) = &rec.create else {
            continue;
        };
        let volume_id = service.create_volume(user_token, &rec.id, source).await?;
        crate::crashpoint::hit("api:after-boot-volume-created");
        volumes::save_volume_id(c, &inst.uuid, &rec.id, &volume_id).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(server: Value) -> Result<BootRequest, ApiError> {
        boot_request(server.as_object().unwrap())
    }

    const IMAGE: &str = "c8a47fad-8635-4d44-8907-305a7798abac";
    const VOL: &str = "0b7e4a8c-1111-4000-8000-000000000001";
    const DATA: &str = "0b7e4a8c-2222-4000-8000-000000000002";

    #[test]
    fn an_image_boot_comes_from_image_ref_or_an_image_to_local_mapping() {
        let plain = parse(json!({"imageRef": IMAGE})).unwrap();
        assert_eq!(plain.image_ref, IMAGE);
        assert!(!plain.boots_from_volume());
        // What the CLI sends for `server create --image`.
        let cli = parse(json!({"imageRef": IMAGE, "block_device_mapping_v2": [
            {"uuid": IMAGE, "boot_index": 0, "source_type": "image",
             "destination_type": "local", "delete_on_termination": true}]}))
        .unwrap();
        assert_eq!(cli.image_ref, IMAGE);
        assert!(cli.volumes.is_empty());
        let err = parse(json!({})).unwrap_err();
        assert!(err.to_string().contains("Missing imageRef"), "{err}");
    }

    #[test]
    fn a_boot_volume_replaces_the_image_and_data_volumes_come_along() {
        // What the CLI sends for `server create --volume VOL --block-device ...`.
        let request = parse(json!({"imageRef": "", "block_device_mapping_v2": [
            {"uuid": VOL, "boot_index": "0", "source_type": "volume",
             "destination_type": "volume", "delete_on_termination": "true"},
            {"uuid": DATA, "source_type": "volume", "destination_type": "volume",
             "boot_index": -1, "tag": "data"}]}))
        .unwrap();
        assert!(request.boots_from_volume());
        assert_eq!(request.image_ref, "");
        assert_eq!(
            request.volumes,
            vec![
                RequestedVolume {
                    volume_id: VOL.into(),
                    create: None,
                    boot: true,
                    delete_on_termination: true,
                    tag: None
                },
                RequestedVolume {
                    volume_id: DATA.into(),
                    create: None,
                    boot: false,
                    delete_on_termination: false,
                    tag: Some("data".into())
                },
            ]
        );
        // A data volume alongside an image boot.
        let with_image = parse(json!({"imageRef": IMAGE, "block_device_mapping_v2": [
            {"uuid": DATA, "source_type": "volume", "destination_type": "volume"}]}))
        .unwrap();
        assert_eq!(with_image.image_ref, IMAGE);
        assert_eq!(with_image.volumes.len(), 1);
        assert!(!with_image.boots_from_volume());
    }

    #[test]
    fn volumes_made_at_boot_carry_their_source() {
        // What the CLI sends for `server create --image IMAGE --boot-from-volume 2`.
        let request = parse(json!({"imageRef": "", "block_device_mapping_v2": [
            {"uuid": IMAGE, "boot_index": 0, "source_type": "image",
             "destination_type": "volume", "volume_size": 2, "delete_on_termination": false},
            {"source_type": "blank", "destination_type": "volume", "volume_size": "1",
             "boot_index": -1, "delete_on_termination": true},
            {"uuid": DATA, "source_type": "snapshot", "destination_type": "volume"}]}))
        .unwrap();
        assert!(request.boots_from_volume());
        assert_eq!(request.image_ref, "");
        let made: Vec<_> = request
            .volumes
            .iter()
            .map(|v| v.create.clone().unwrap())
            .collect();
        assert_eq!(
            made,
            vec![
                NewVolume {
                    size: Some(2),
                    image_id: Some(IMAGE.into()),
                    snapshot_id: None
                },
                NewVolume {
                    size: Some(1),
                    image_id: None,
                    snapshot_id: None
                },
                NewVolume {
                    size: None,
                    image_id: None,
                    snapshot_id: Some(DATA.into())
                },
            ]
        );
        assert!(request.volumes.iter().all(|v| v.volume_id.is_empty()));
        assert!(request.volumes[1].delete_on_termination);
    }

    #[test]
    fn unsupported_and_contradictory_mappings_are_refused() {
        let refused = |server: Value, text: &str| {
            let err = parse(server).unwrap_err().to_string();
            assert!(err.contains(text), "{err} lacks {text}");
        };
        refused(
            json!({"block_device_mapping_v2": [{"uuid": IMAGE, "boot_index": 0,
                "source_type": "image", "destination_type": "volume"}]}),
            "need to have a non-zero size",
        );
        refused(
            json!({"imageRef": IMAGE, "block_device_mapping_v2": [{"source_type": "blank",
                "destination_type": "volume", "volume_size": 0}]}),
            "volume_size",
        );
        refused(
            json!({"imageRef": IMAGE, "block_device_mapping_v2": [{"source_type": "blank",
                "destination_type": "local", "boot_index": -1, "volume_size": 1}]}),
            "ephemeral and swap",
        );
        refused(
            json!({"block_device_mapping_v2": [
                {"uuid": VOL, "boot_index": 0, "source_type": "volume", "destination_type": "volume"},
                {"uuid": DATA, "boot_index": 0, "source_type": "volume", "destination_type": "volume"}]}),
            "Boot sequence",
        );
        refused(
            json!({"imageRef": IMAGE, "block_device_mapping_v2": [
                {"uuid": DATA, "source_type": "volume", "destination_type": "volume"},
                {"uuid": DATA, "source_type": "volume", "destination_type": "volume"}]}),
            "more than once",
        );
        refused(
            json!({"block_device_mapping_v2": [{"boot_index": 0, "source_type": "volume",
                "destination_type": "volume"}]}),
            "Missing device UUID",
        );
        refused(
            json!({"imageRef": IMAGE, "block_device_mapping": [], "block_device_mapping_v2": []}),
            "different block_device_mapping syntaxes",
        );
    }
}
