//! The instance metadata documents Nova serves on 169.254.169.254 and writes to config drives
//! (`nova/api/metadata/base.py`): `meta_data.json` per OpenStack version, `network_data.json`,
//! vendor data and the EC2 `meta-data` tree. One builder feeds both the metadata service and
//! the config drive, so they never disagree.

use base64::Engine;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// OpenStack metadata versions, oldest first (`latest` is served as the newest).
pub const OPENSTACK_VERSIONS: [&str; 10] = [
    "2012-08-10",
    "2013-04-04",
    "2013-10-17",
    "2015-10-15",
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
    "2020-10-14",
    "2025-04-04",
];

/// The EC2 metadata version `latest` stands for.
pub const EC2_LATEST: &str = "2009-04-04";

/// An SSH key of the server (copied at boot).
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub key_type: String,
    pub data: String,
}

/// What the documents are made from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstanceMetadata {
    pub uuid: String,
    /// Nova's integer instance id (EC2 `i-%08x`).
    pub internal_id: u64,
    pub name: String,
    pub hostname: String,
    pub project_id: String,
    pub availability_zone: String,
    pub launch_index: u32,
    pub reservation_id: String,
    pub flavor_name: String,
    pub meta: BTreeMap<String, String>,
    pub keys: Vec<Key>,
    pub user_data: Option<Vec<u8>>,
    pub fixed_ipv4: Option<String>,
    pub floating_ipv4: Option<String>,
    pub security_groups: Vec<String>,
    /// `network_data.json` (`{}` without NICs).
    pub network_data: Value,
    /// Base64 of 512 random bytes (`random_seed`).
    pub random_seed: String,
    /// The password the guest posted (`openstack/<v>/password`), empty if none.
    pub password: String,
}

/// Whether `version` (or `latest`) is at least `since`.
fn at_least(version: &str, since: &str) -> bool {
    version == "latest" || version >= since
}

/// 512 random bytes, base64, for `random_seed`.
pub fn random_seed() -> String {
    let mut bytes = [0u8; 512];
    openssl::rand::rand_bytes(&mut bytes).expect("the system random generator works");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl InstanceMetadata {
    /// `openstack/<version>/meta_data.json`.
    pub fn meta_data(&self, version: &str) -> Value {
        let mut m = Map::new();
        m.insert("uuid".into(), json!(self.uuid));
        if !self.meta.is_empty() {
            m.insert("meta".into(), json!(self.meta));
        }
        if !self.keys.is_empty() {
            let public: BTreeMap<&str, &str> = self
                .keys
                .iter()
                .map(|k| (k.name.as_str(), k.data.as_str()))
                .collect();
            m.insert("public_keys".into(), json!(public));
            let keys: Vec<Value> = self
                .keys
                .iter()
                .map(|k| json!({"name": k.name, "type": k.key_type, "data": k.data}))
                .collect();
            m.insert("keys".into(), json!(keys));
        }
        m.insert(
            "hostname".into(),
            json!(format!("{}.novalocal", self.hostname)),
        );
        m.insert("name".into(), json!(self.name));
        m.insert("launch_index".into(), json!(self.launch_index));
        m.insert("availability_zone".into(), json!(self.availability_zone));
        if at_least(version, "2013-04-04") {
            m.insert("random_seed".into(), json!(self.random_seed));
        }
        if at_least(version, "2015-10-15") {
            m.insert("project_id".into(), json!(self.project_id));
        }
        if at_least(version, "2016-06-30") {
            m.insert("devices".into(), json!([]));
        }
        if at_least(version, "2020-10-14") {
            m.insert("dedicated_cpus".into(), json!([]));
        }
        Value::Object(m)
    }

    /// `vendor_data.json`.
    pub fn vendor_data(&self) -> Value {
        json!({})
    }

    /// `vendor_data2.json`.
    pub fn vendor_data2(&self) -> Value {
        json!({"static": {}})
    }

    /// The EC2 `meta-data` tree.
    pub fn ec2_meta_data(&self) -> Value {
        let mut m = Map::new();
        m.insert("ami-id".into(), json!("ami-00000001"));
        m.insert("ami-launch-index".into(), json!(self.launch_index));
        m.insert("ami-manifest-path".into(), json!("FIXME"));
        m.insert(
            "block-device-mapping".into(),
            json!({"ami": "vda", "root": "/dev/vda"}),
        );
        let hostname = format!("{}.novalocal", self.hostname);
        m.insert("hostname".into(), json!(hostname));
        m.insert("instance-action".into(), json!("none"));
        m.insert(
            "instance-id".into(),
            json!(format!("i-{:08x}", self.internal_id)),
        );
        m.insert("instance-type".into(), json!(self.flavor_name));
        m.insert("local-hostname".into(), json!(hostname));
        m.insert("local-ipv4".into(), json!(self.fixed_ipv4));
        m.insert(
            "placement".into(),
            json!({"availability-zone": self.availability_zone}),
        );
        m.insert("public-hostname".into(), json!(hostname));
        m.insert(
            "public-ipv4".into(),
            json!(self.floating_ipv4.clone().unwrap_or_default()),
        );
        if let Some(key) = self.keys.first() {
            m.insert(
                "public-keys".into(),
                json!({"0": {"openssh-key": key.data}}),
            );
        }
        m.insert("reservation-id".into(), json!(self.reservation_id));
        m.insert("security-groups".into(), json!(self.security_groups));
        Value::Object(m)
    }

    /// Every file of a config drive: `(path inside the drive, content)`.
    pub fn config_drive_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        let json = |v: Value| serde_json::to_vec(&v).unwrap_or_default();
        for ec2 in [EC2_LATEST, "latest"] {
            files.push((
                format!("ec2/{ec2}/meta-data.json"),
                json(self.ec2_meta_data()),
            ));
            if let Some(data) = &self.user_data {
                files.push((format!("ec2/{ec2}/user-data"), data.clone()));
            }
        }
        for version in OPENSTACK_VERSIONS.iter().copied().chain(["latest"]) {
            let dir = format!("openstack/{version}");
            files.push((
                format!("{dir}/meta_data.json"),
                json(self.meta_data(version)),
            ));
            if let Some(data) = &self.user_data {
                files.push((format!("{dir}/user_data"), data.clone()));
            }
            if at_least(version, "2013-10-17") {
                files.push((format!("{dir}/vendor_data.json"), json(self.vendor_data())));
            }
            if at_least(version, "2015-10-15") {
                files.push((
                    format!("{dir}/network_data.json"),
                    json(self.network_data.clone()),
                ));
            }
            if at_least(version, "2016-10-06") {
                files.push((
                    format!("{dir}/vendor_data2.json"),
                    json(self.vendor_data2()),
                ));
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance() -> InstanceMetadata {
        InstanceMetadata {
            uuid: "u-1".into(),
            internal_id: 42,
            name: "web".into(),
            hostname: "web".into(),
            project_id: "p1".into(),
            availability_zone: "nova".into(),
            keys: vec![Key {
                name: "k".into(),
                key_type: "ssh".into(),
                data: "ssh-rsa AAAA".into(),
            }],
            user_data: Some(b"#!/bin/sh\necho hi\n".to_vec()),
            network_data: json!({}),
            random_seed: random_seed(),
            ..Default::default()
        }
    }

    #[test]
    fn meta_data_fields_follow_the_version() {
        let i = instance();
        let old = i.meta_data("2012-08-10");
        assert_eq!(old["uuid"], "u-1");
        assert_eq!(old["hostname"], "web.novalocal");
        assert_eq!(old["public_keys"]["k"], "ssh-rsa AAAA");
        assert!(old.get("random_seed").is_none() && old.get("project_id").is_none());
        assert!(
            old.get("meta").is_none(),
            "meta only when the server has metadata"
        );
        let latest = i.meta_data("latest");
        assert_eq!(latest["project_id"], "p1");
        assert_eq!(latest["devices"], json!([]));
        assert_eq!(latest["random_seed"].as_str().unwrap().len(), 684);
        assert_eq!(i.ec2_meta_data()["instance-id"], "i-0000002a");
    }

    #[test]
    fn config_drive_has_every_version_directory() {
        let files = instance().config_drive_files();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"openstack/latest/meta_data.json"));
        assert!(names.contains(&"openstack/2012-08-10/user_data"));
        assert!(!names.contains(&"openstack/2012-08-10/vendor_data.json"));
        assert!(names.contains(&"openstack/2016-10-06/vendor_data2.json"));
        assert!(names.contains(&"ec2/2009-04-04/meta-data.json"));
        assert_eq!(
            names
                .iter()
                .filter(|n| n.ends_with("meta_data.json"))
                .count(),
            11
        );
    }
}
