//! Volume types as the other resources use them: the default type (created on first start,
//! as Cinder's `__DEFAULT__`), and finding a type by id or name as the caller may use it.

use crate::db::Result;
use crate::model::VolumeType;
use crate::service::Volumes;
use ferrostack_store::doc;
use sqlx::AnyConnection;

/// Creates the configured default volume type unless a type of that name exists.
pub async fn ensure_default_type(volumes: &Volumes) -> anyhow::Result<()> {
    let name = volumes.settings.default_volume_type.clone();
    crate::db::write_tx!(volumes.db, |tx| {
        async {
            let existing: Vec<VolumeType> = tx.select("name = $1", &[&name]).await?;
            if existing.is_empty() {
                tx.insert(&VolumeType {
                    id: uuid::Uuid::new_v4().to_string(),
                    name: name.clone(),
                    description: Some("Default Volume Type".into()),
                    is_public: true,
                    extra_specs: Default::default(),
                    qos_specs_id: None,
                    projects: Vec::new(),
                    created_at: ferrostack_store::now_rfc3339(),
                    updated_at: None,
                })
                .await?;
            }
            Ok::<(), crate::db::Error>(())
        }
        .await
    })?;
    Ok(())
}

/// Whether volumes of `volume_type` may be attached to several servers at once (its
/// `multiattach` extra spec is `<is> True`).
pub fn is_multiattach(volume_type: &VolumeType) -> bool {
    volume_type
        .extra_specs
        .get("multiattach")
        .map(String::as_str)
        == Some("<is> True")
}

/// Whether `project` may use `volume_type` (public, listed in its access, or admin).
pub fn usable_by(volume_type: &VolumeType, project: Option<&str>, admin: bool) -> bool {
    admin
        || volume_type.is_public
        || project.is_some_and(|p| volume_type.projects.iter().any(|q| q == p))
}

/// The type named `id_or_name` (an id first, then a name) that the caller may use.
pub async fn find(
    conn: &mut AnyConnection,
    id_or_name: &str,
    project: Option<&str>,
    admin: bool,
) -> Result<Option<VolumeType>> {
    let mut found: Option<VolumeType> = doc::get(&mut *conn, id_or_name).await?;
    if found.is_none() {
        found = doc::select(&mut *conn, "name = $1", &[id_or_name])
            .await?
            .into_iter()
            .next();
    }
    Ok(found.filter(|t| usable_by(t, project, admin)))
}

/// The default volume type (the configured name; created at start-up).
pub async fn default_type(conn: &mut AnyConnection, volumes: &Volumes) -> Result<VolumeType> {
    let name = &volumes.settings.default_volume_type;
    doc::select::<VolumeType>(conn, "name = $1", &[name])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| crate::errors::volume_type_not_found(name).into())
}

/// The default volume type of `project`: the one set for it with the `default-types` API
/// (3.62) when that type still exists, else the configured default (Cinder's
/// `get_default_volume_type(context)`).
pub async fn default_type_for(
    conn: &mut AnyConnection,
    volumes: &Volumes,
    project: &str,
) -> Result<VolumeType> {
    let set = doc::strings(
        &mut *conn,
        "SELECT volume_type_id FROM vol_default_types WHERE project_id = $1",
        &[project],
    )
    .await?;
    if let Some(id) = set.first()
        && let Some(found) = doc::get::<VolumeType>(&mut *conn, id).await?
    {
        return Ok(found);
    }
    default_type(conn, volumes).await
}
