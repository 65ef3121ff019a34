//! In-process API tests: the volume router over a fresh store (SQLite, or PostgreSQL when
//! `FERROSTACK_TEST_DATABASE_URL` is set) behind the root's request-id/policy guard, with the
//! real `file` backend in a temporary directory and the real volume manager on an in-process
//! bus; the image service is an in-memory one (images with data written by the test). Callers
//! are fixed tokens: `admin`, `alice` (member of p1), `bob` (member of p2), `reader` (reader
//! of p1).

use crate::images::{ImageApi, ImageRecord};
use crate::service::Volumes;
pub(crate) use ferrostack_api::testing::ids;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An image service in memory: records plus data files.
#[derive(Default)]
pub(crate) struct MemoryImages {
    pub(crate) images: Mutex<BTreeMap<String, (ImageRecord, Option<PathBuf>)>>,
}

impl MemoryImages {
    /// Adds an active image whose data is the file `data` (inspected by the manager).
    pub(crate) fn add(&self, id: &str, disk_format: &str, data: &Path, min_disk: i64) {
        let size = std::fs::metadata(data).map(|m| m.len() as i64).ok();
        let record = ImageRecord {
            id: id.into(),
            name: Some(format!("image-{id}")),
            status: "active".into(),
            disk_format: Some(disk_format.into()),
            container_format: Some("bare".into()),
            size,
            virtual_size: None,
            min_disk,
            min_ram: 0,
            properties: BTreeMap::from([("os_distro".to_string(), "ferrostack".to_string())]),
        };
        self.images
            .lock()
            .unwrap()
            .insert(id.into(), (record, Some(data.to_path_buf())));
    }
}

#[async_trait::async_trait]
impl ImageApi for MemoryImages {
    async fn show(
        &self,
        id: &str,
        _project: Option<&str>,
        _admin: bool,
    ) -> anyhow::Result<Option<ImageRecord>> {
        Ok(self.images.lock().unwrap().get(id).map(|(r, _)| r.clone()))
    }

    async fn download(&self, id: &str, dest: &Path) -> anyhow::Result<()> {
        let src = self
            .images
            .lock()
            .unwrap()
            .get(id)
            .and_then(|(_, p)| p.clone());
        let src = src.ok_or_else(|| anyhow::anyhow!("image {id} has no data"))?;
        tokio::fs::copy(src, dest).await?;
        Ok(())
    }

    async fn create(
        &self,
        _project: &str,
        name: &str,
        disk_format: &str,
        container_format: &str,
        _visibility: &str,
        _protected: bool,
    ) -> anyhow::Result<ImageRecord> {
        let record = ImageRecord {
            id: uuid::Uuid::new_v4().to_string(),
            name: Some(name.into()),
            status: "queued".into(),
            disk_format: Some(disk_format.into()),
            container_format: Some(container_format.into()),
            size: None,
            virtual_size: None,
            min_disk: 0,
            min_ram: 0,
            properties: BTreeMap::new(),
        };
        self.images
            .lock()
            .unwrap()
            .insert(record.id.clone(), (record.clone(), None));
        Ok(record)
    }

    async fn upload(&self, id: &str, src: &Path) -> anyhow::Result<()> {
        let keep = src.with_extension("uploaded");
        tokio::fs::copy(src, &keep).await?;
        let mut images = self.images.lock().unwrap();
        let entry = images
            .get_mut(id)
            .ok_or_else(|| anyhow::anyhow!("image {id} not found"))?;
        entry.0.status = "active".into();
        entry.0.size = std::fs::metadata(&keep).map(|m| m.len() as i64).ok();
        entry.1 = Some(keep);
        Ok(())
    }

    async fn delete(&self, id: &str) -> anyhow::Result<()> {
        self.images.lock().unwrap().remove(id);
        Ok(())
    }
}

pub(crate) struct Harness {
    pub(crate) router: axum::Router,
    pub(crate) volumes: Arc<Volumes>,
    pub(crate) images: Arc<MemoryImages>,
    pub(crate) dir: PathBuf,
    _manager: Option<crate::manager::ManagerHandle>,
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Harness {
    /// A service with the default configuration and its manager running.
    pub(crate) async fn open(name: &str) -> Harness {
        Self::with_config(name, ferrostack_config::VolumeConfig::default(), true).await
    }

    /// A service with `config` (its `volumes_dir` replaced by a fresh directory); the manager
    /// runs when `manager` is true.
    pub(crate) async fn with_config(
        name: &str,
        mut config: ferrostack_config::VolumeConfig,
        manager: bool,
    ) -> Harness {
        let store = ferrostack_store::test_store(&format!("volume-{name}"))
            .await
            .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "ferrostack-volume-test-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        config.volumes_dir = dir.join("volumes");
        config.host = "storage1".into();
        let bus = ferrostack_bus::InProcessBus::new();
        let driver = Arc::new(
            crate::file_driver::FileDriver::new(
                config.volumes_dir.clone(),
                &config.volume_format,
                config.capacity_gb,
            )
            .unwrap(),
        );
        let images = Arc::new(MemoryImages::default());
        let volumes = Volumes::open(
            store,
            "http://cloud:8080",
            bus,
            &config,
            driver,
            images.clone(),
        )
        .await
        .unwrap();
        let router = ferrostack_api::testing::serve(
            crate::api::router(volumes.clone()),
            &crate::default_rules(),
        );
        let manager = match manager {
            true => Some(crate::manager::start(volumes.clone()).await.unwrap()),
            false => None,
        };
        Harness {
            router,
            volumes,
            images,
            dir,
            _manager: manager,
        }
    }

    /// Sends a request with `OpenStack-API-Version: volume <version>` unless `version` is empty.
    pub(crate) async fn call_at(
        &self,
        version: &str,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = ferrostack_api::testing::request(method, path, token);
        if !version.is_empty() {
            req = req.header("openstack-api-version", format!("volume {version}"));
        }
        let (status, body) = ferrostack_api::testing::send(&self.router, req, body).await;
        Reply { status, body }
    }

    /// Sends a request at the newest microversion.
    pub(crate) async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        self.call_at("latest", token, method, path, body).await
    }

    pub(crate) async fn get(&self, token: &str, path: &str) -> Reply {
        self.call(token, "GET", path, None).await
    }

    /// Polls `path` until `{key: {status}}` is `status` (or one of the error statuses, which
    /// fails the test); returns the object.
    pub(crate) async fn wait_status(
        &self,
        token: &str,
        path: &str,
        key: &str,
        status: &str,
    ) -> Value {
        for _ in 0..600 {
            let reply = self.get(token, path).await;
            let current = reply.body[key]["status"].as_str().unwrap_or("").to_string();
            if current == status {
                return reply.body[key].clone();
            }
            if current.starts_with("error") && !status.starts_with("error") {
                panic!("{path} went to {current}: {:?}", reply.body);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{path} never reached {status}");
    }

    /// Polls `path` until it answers 404.
    pub(crate) async fn wait_gone(&self, token: &str, path: &str) {
        for _ in 0..600 {
            if self.get(token, path).await.status == 404 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{path} was never deleted");
    }

    /// `POST /v3/volumes` with `{"volume": body}` as `token`.
    pub(crate) async fn create_volume(&self, token: &str, body: Value) -> Reply {
        self.call(
            token,
            "POST",
            "/v3/volumes",
            Some(json!({ "volume": body })),
        )
        .await
    }

    /// The aliases `GET /v3/extensions` lists to `token`.
    pub(crate) async fn extension_aliases(&self, token: &str) -> Vec<String> {
        let extensions = self.get(token, "/v3/extensions").await;
        assert_eq!(extensions.status, 200);
        extensions.body["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["alias"].as_str().unwrap().to_string())
            .collect()
    }

    /// `POST /v3/snapshots` with `{"snapshot": body}` as `token`.
    pub(crate) async fn create_snapshot(&self, token: &str, body: Value) -> Reply {
        self.call(
            token,
            "POST",
            "/v3/snapshots",
            Some(json!({ "snapshot": body })),
        )
        .await
    }

    /// Creates a volume (`{"volume": body}`) as `token` and waits until it is available.
    pub(crate) async fn available_volume(&self, token: &str, body: Value) -> Value {
        let reply = self.create_volume(token, body).await;
        assert_eq!(reply.status, 202, "create volume: {:?}", reply.body);
        let id = reply.body["volume"]["id"].as_str().unwrap().to_string();
        self.wait_status(token, &format!("/v3/volumes/{id}"), "volume", "available")
            .await
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

mod manager;
mod misc;
mod qos;
mod quotas;
mod scheduling;
mod services;
mod snapshots;
mod types;
mod volumes;
