//! Glance v2 JSON schemas (`GET /v2/schemas/{image,images,member,members}`) and the validator
//! for image create and PATCH values.
//!
//! Mirrors upstream `glance/api/v2/images.py` (`get_base_properties`, `get_schema`,
//! `get_collection_schema`), `glance/api/v2/image_members.py`, `glance/schema.py` (the image
//! schemas are served `raw()`, the member ones `minimal()`) and the custom properties of
//! `etc/schema-image.json`, which upstream merges in marked `"is_base": false`.

use serde_json::{Map, Value, json};

/// Upstream's uuid pattern (image `id`, `kernel_id`, `ramdisk_id`, member `image_id`).
const UUID_PATTERN: &str =
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$";

/// `[null] + configured formats`, as the `disk_format` / `container_format` enums.
fn nullable_enum(values: &[&str]) -> Value {
    std::iter::once(Value::Null)
        .chain(values.iter().map(|v| json!(v)))
        .collect()
}

/// The map inside a `json!({...})` object.
fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("not a JSON object"),
    }
}

/// `get_base_properties()` merged with the custom properties of `etc/schema-image.json`.
fn image_properties(disk_formats: &[&str], container_formats: &[&str]) -> Map<String, Value> {
    // Two `json!` calls: one this large would exceed the macro recursion limit.
    let mut properties = object(json!({
        "id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
        "name": {"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255},
        "status": {
            "type": "string", "readOnly": true, "description": "Status of the image",
            "enum": ["queued", "saving", "active", "killed", "deleted", "uploading", "importing",
                     "pending_delete", "deactivated"],
        },
        "visibility": {
            "type": "string", "description": "Scope of image accessibility",
            "enum": ["community", "public", "private", "shared"],
        },
        "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
        "os_hidden": {
            "type": "boolean",
            "description": "If true, image will not appear in default image list response.",
        },
        "checksum": {
            "type": ["null", "string"], "readOnly": true, "description": "md5 hash of image contents.",
            "maxLength": 32,
        },
        "os_hash_algo": {
            "type": ["null", "string"], "readOnly": true,
            "description": "Algorithm to calculate the os_hash_value", "maxLength": 64,
        },
        "os_hash_value": {
            "type": ["null", "string"], "readOnly": true,
            "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo",
            "maxLength": 128,
        },
        "owner": {"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255},
        "size": {"type": ["null", "integer"], "readOnly": true, "description": "Size of image file in bytes"},
        "virtual_size": {
            "type": ["null", "integer"], "readOnly": true, "description": "Virtual size of image in bytes",
        },
    }));
    properties.extend(object(json!({
        "container_format": {
            "type": ["null", "string"], "description": "Format of the container",
            "enum": nullable_enum(container_formats),
        },
        "disk_format": {
            "type": ["null", "string"], "description": "Format of the disk",
            "enum": nullable_enum(disk_formats),
        },
        "created_at": {"type": "string", "readOnly": true, "description": "Date and time of image registration"},
        "updated_at": {
            "type": "string", "readOnly": true, "description": "Date and time of the last image modification",
        },
        "tags": {
            "type": "array", "description": "List of strings related to the image",
            "items": {"type": "string", "maxLength": 255},
        },
        "direct_url": {
            "type": "string", "readOnly": true,
            "description": "URL to access the image file kept in external store",
        },
        "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
        "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
        "self": {"type": "string", "readOnly": true, "description": "An image self url"},
        "file": {"type": "string", "readOnly": true, "description": "An image file url"},
        "stores": {
            "type": "string", "readOnly": true,
            "description": "Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers.",
        },
        "schema": {"type": "string", "readOnly": true, "description": "An image schema url"},
        "locations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "metadata": {"type": "object"},
                    "validation_data": {
                        "description": "Values to be used to populate the corresponding image properties. If the image status is not 'queued', values must exactly match those already contained in the image properties.",
                        "type": "object",
                        "writeOnly": true,
                        "additionalProperties": false,
                        "properties": {
                            "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                            "os_hash_algo": {"type": "string", "maxLength": 64},
                            "os_hash_value": {"type": "string", "maxLength": 128},
                        },
                        "required": ["os_hash_algo", "os_hash_value"],
                    },
                },
                "required": ["url", "metadata"],
            },
            "description": "A set of URLs to access the image file kept in external store",
        },
    })));
    let custom = object(json!({
        "kernel_id": {
            "type": ["null", "string"], "pattern": UUID_PATTERN,
            "description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.",
        },
        "ramdisk_id": {
            "type": ["null", "string"], "pattern": UUID_PATTERN,
            "description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.",
        },
        "instance_uuid": {
            "type": "string",
            "description": "Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)",
        },
        "architecture": {
            "description": "Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
            "type": "string",
        },
        "os_distro": {
            "description": "Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
            "type": "string",
        },
        "os_version": {"description": "Operating system version as specified by the distributor.", "type": "string"},
        "description": {"description": "A human-readable string describing this image.", "type": "string"},
        "cinder_encryption_key_id": {
            "description": "Identifier in the OpenStack Key Management Service for the encryption key for the Block Storage Service to use when mounting a volume created from this image",
            "type": "string",
        },
        "cinder_encryption_key_deletion_policy": {
            "description": "States the condition under which the Image Service will delete the object associated with the 'cinder_encryption_key_id' image property.  If this property is missing, the Image Service will take no action",
            "type": "string",
            "enum": ["on_image_deletion", "do_not_delete"],
        },
    }));
    for (key, mut value) in custom {
        value["is_base"] = Value::Bool(false);
        properties.insert(key, value);
    }
    properties
}

/// `GET /v2/schemas/image`: the permissive image schema, `raw()` (extra properties are strings).
pub fn image_schema(disk_formats: &[&str], container_formats: &[&str]) -> Value {
    json!({
        "name": "image",
        "properties": image_properties(disk_formats, container_formats),
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

/// `GET /v2/schemas/images`: the image collection schema, `raw()` (items are [`image_schema`]).
pub fn images_schema(disk_formats: &[&str], container_formats: &[&str]) -> Value {
    json!({
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema(disk_formats, container_formats)},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    })
}

/// `GET /v2/schemas/member`: the member schema, `minimal()` (no `additionalProperties`, no links).
pub fn member_schema() -> Value {
    json!({
        "name": "member",
        "properties": {
            "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
            "image_id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
            "created_at": {"type": "string", "description": "Date and time of image member creation"},
            "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
            "status": {
                "type": "string",
                "description": "The status of this image member",
                "enum": ["pending", "accepted", "rejected"],
            },
            "schema": {"readOnly": true, "type": "string"},
        },
    })
}

/// `GET /v2/schemas/members`: the member collection schema, `minimal()` (items are
/// [`member_schema`]).
pub fn members_schema() -> Value {
    json!({
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    })
}

/// Validates image create bodies and PATCH values the way Glance does: against the image
/// schema's `properties` (read-only ones included; callers reject read-only keys separately)
/// with `additionalProperties: {"type": "string"}`.
#[derive(Clone, Debug)]
pub struct ImageValidator {
    validator: jsonschema::Validator,
}

impl ImageValidator {
    /// Compiles the validator for the configured disk and container formats.
    pub fn new(disk_formats: &[&str], container_formats: &[&str]) -> Self {
        let schema = json!({
            "properties": image_properties(disk_formats, container_formats),
            "additionalProperties": {"type": "string"},
        });
        let validator =
            jsonschema::validator_for(&schema).expect("the image schema is a valid JSON schema");
        Self { validator }
    }

    /// Validates a whole create body. `Err` carries Glance's message:
    /// `Provided object does not match schema 'image': <first error>`.
    pub fn validate(&self, body: &Value) -> Result<(), String> {
        match self.validator.iter_errors(body).next() {
            Some(error) => Err(format!(
                "Provided object does not match schema 'image': {error}"
            )),
            None => Ok(()),
        }
    }

    /// Validates one PATCH value as the object `{key: value}`, with [`Self::validate`]'s errors.
    pub fn validate_property(&self, key: &str, value: &Value) -> Result<(), String> {
        self.validate(&json!({ key: value }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISK: &[&str] = &[
        "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
    ];
    const CONTAINER: &[&str] = &[
        "ami",
        "ari",
        "aki",
        "bare",
        "ovf",
        "ova",
        "docker",
        "compressed",
    ];
    const UUID: &str = "0b0f3f4c-1e5a-4b3d-9a4e-0123456789AB";

    fn validator() -> ImageValidator {
        ImageValidator::new(DISK, CONTAINER)
    }

    #[test]
    fn schema_names() {
        assert_eq!(image_schema(DISK, CONTAINER)["name"], "image");
        assert_eq!(images_schema(DISK, CONTAINER)["name"], "images");
        assert_eq!(member_schema()["name"], "member");
        assert_eq!(members_schema()["name"], "members");
    }

    #[test]
    fn schema_shapes() {
        let image = image_schema(DISK, CONTAINER);
        let props = image["properties"].as_object().unwrap();
        assert_eq!(props.len(), 34);
        assert!(props.values().all(|p| p["description"].is_string()));
        assert_eq!(image["additionalProperties"], json!({"type": "string"}));
        assert_eq!(
            image["links"][1],
            json!({"rel": "enclosure", "href": "{file}"})
        );
        assert_eq!(props["disk_format"]["enum"][0], Value::Null);
        assert_eq!(props["disk_format"]["enum"][8], "qcow2");
        assert_eq!(props["container_format"]["enum"][4], "bare");
        assert_eq!(props["status"]["readOnly"], true);
        assert_eq!(props["ramdisk_id"]["is_base"], false);
        assert!(props["name"].get("is_base").is_none());
        let images = images_schema(DISK, CONTAINER);
        assert_eq!(images["properties"]["images"]["items"], image);
        assert_eq!(images["links"][1], json!({"rel": "next", "href": "{next}"}));
        let member = member_schema();
        assert!(member.get("additionalProperties").is_none() && member.get("links").is_none());
        assert_eq!(member["properties"]["image_id"]["pattern"], UUID_PATTERN);
        assert_eq!(members_schema()["properties"]["members"]["items"], member);
    }

    #[test]
    fn valid_bodies_pass() {
        let v = validator();
        v.validate(&json!({})).unwrap();
        v.validate(&json!({"name": null, "disk_format": null, "container_format": null}))
            .unwrap();
        v.validate(&json!({
            "name": "cirros", "disk_format": "qcow2", "container_format": "bare",
            "visibility": "shared", "protected": true, "os_hidden": false, "min_ram": 512,
            "min_disk": 1, "tags": ["a", "b"], "ramdisk_id": UUID, "kernel_id": null,
            "id": UUID, "hw_disk_bus": "virtio",
        }))
        .unwrap();
        v.validate_property("os_distro", &json!("ubuntu")).unwrap();
    }

    #[test]
    fn invalid_bodies_fail() {
        let v = validator();
        for body in [
            json!({"extra": 5}),
            json!({"min_ram": "x"}),
            json!({"visibility": "foo"}),
            json!({"ramdisk_id": "not-a-uuid"}),
            json!({"id": "not-a-uuid"}),
            json!({"tags": "a"}),
            json!({"tags": [1]}),
            json!({"tags": ["x".repeat(256)]}),
            json!({"name": "x".repeat(256)}),
            json!({"protected": "yes"}),
            json!({"os_hidden": 1}),
            json!({"disk_format": "wrong"}),
            json!({"container_format": "qcow2"}),
            json!({"cinder_encryption_key_deletion_policy": "never"}),
        ] {
            assert!(v.validate(&body).is_err(), "{body} should fail");
        }
        let error = v.validate_property("os_distro", &json!(5)).unwrap_err();
        assert!(
            error.starts_with("Provided object does not match schema 'image': "),
            "{error}"
        );
        assert!(v.validate_property("min_ram", &json!("x")).is_err());
    }
}
