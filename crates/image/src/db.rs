//! Image rows in the shared store: migrations, reads, compare-and-swap writes, listing.

use crate::model::{Image, Member, Task};
use ferrostack_store::{AnyRow, Migration, Row, Store, StoreError};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The image service's schema.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "images",
    sql: "CREATE TABLE images (
            id TEXT PRIMARY KEY, name TEXT, status TEXT NOT NULL, visibility TEXT NOT NULL,
            owner TEXT, protected BIGINT NOT NULL, os_hidden BIGINT NOT NULL,
            disk_format TEXT, container_format TEXT, size BIGINT, virtual_size BIGINT,
            checksum TEXT, os_hash_algo TEXT, os_hash_value TEXT,
            min_ram BIGINT NOT NULL, min_disk BIGINT NOT NULL,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            location TEXT, deleted BIGINT NOT NULL, generation BIGINT NOT NULL);
          CREATE INDEX images_owner ON images (owner);
          CREATE INDEX images_status ON images (status);
          CREATE TABLE image_properties (
            image_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (image_id, name));
          CREATE TABLE image_tags (
            image_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (image_id, tag));
          CREATE TABLE image_members (
            image_id TEXT NOT NULL, member TEXT NOT NULL, status TEXT NOT NULL,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
            PRIMARY KEY (image_id, member));
          CREATE INDEX image_members_member ON image_members (member);
          CREATE TABLE image_tasks (
            id TEXT PRIMARY KEY, image_id TEXT NOT NULL, status TEXT NOT NULL, owner TEXT,
            user_id TEXT NOT NULL, request_id TEXT NOT NULL, input TEXT NOT NULL,
            result TEXT, message TEXT NOT NULL, created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL);
          CREATE INDEX image_tasks_image ON image_tasks (image_id);",
}];

const IMAGE_COLUMNS: &str = "id, name, status, visibility, owner, protected, os_hidden, \
    disk_format, container_format, size, virtual_size, checksum, os_hash_algo, os_hash_value, \
    min_ram, min_disk, created_at, updated_at, location, generation";

/// A value bound to a dynamically built query.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
}

fn image_from_row(row: &AnyRow) -> Result<Image, sqlx::Error> {
    Ok(Image {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        visibility: row.try_get("visibility")?,
        owner: row.try_get("owner")?,
        protected: row.try_get::<i64, _>("protected")? != 0,
        os_hidden: row.try_get::<i64, _>("os_hidden")? != 0,
        disk_format: row.try_get("disk_format")?,
        container_format: row.try_get("container_format")?,
        size: row.try_get("size")?,
        virtual_size: row.try_get("virtual_size")?,
        checksum: row.try_get("checksum")?,
        os_hash_algo: row.try_get("os_hash_algo")?,
        os_hash_value: row.try_get("os_hash_value")?,
        min_ram: row.try_get("min_ram")?,
        min_disk: row.try_get("min_disk")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        location: row.try_get("location")?,
        generation: row.try_get("generation")?,
        properties: BTreeMap::new(),
        tags: BTreeSet::new(),
    })
}

fn placeholders(start: usize, count: usize) -> String {
    (start..start + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fills properties and tags of `images` (two queries for the whole set).
async fn attach_details(store: &Store, images: &mut [Image]) -> Result<(), StoreError> {
    if images.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = images.iter().map(|i| i.id.clone()).collect();
    let index: HashMap<String, usize> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| (id.clone(), n))
        .collect();
    for chunk in ids.chunks(500) {
        let list = placeholders(1, chunk.len());
        let sql = format!(
            "SELECT image_id, name, value FROM image_properties WHERE image_id IN ({list})"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.clone());
        }
        for row in query.fetch_all(store.pool()).await? {
            let id: String = row.try_get("image_id")?;
            images[index[&id]]
                .properties
                .insert(row.try_get("name")?, row.try_get("value")?);
        }
        let sql = format!("SELECT image_id, tag FROM image_tags WHERE image_id IN ({list})");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(id.clone());
        }
        for row in query.fetch_all(store.pool()).await? {
            let id: String = row.try_get("image_id")?;
            images[index[&id]].tags.insert(row.try_get("tag")?);
        }
    }
    Ok(())
}

/// The image `id` unless it is deleted.
pub async fn get_image(store: &Store, id: &str) -> Result<Option<Image>, StoreError> {
    let sql = format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = $1 AND deleted = 0");
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(store.pool())
        .await?
    else {
        return Ok(None);
    };
    let mut images = vec![image_from_row(&row)?];
    attach_details(store, &mut images).await?;
    Ok(images.pop())
}

/// Whether an image row (even a deleted one) has this id.
pub async fn id_taken(store: &Store, id: &str) -> Result<bool, StoreError> {
    let found: Option<String> = sqlx::query_scalar("SELECT id FROM images WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    Ok(found.is_some())
}

fn bind_image<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    image: &Image,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(image.name.clone())
        .bind(image.status.clone())
        .bind(image.visibility.clone())
        .bind(image.owner.clone())
        .bind(image.protected as i64)
        .bind(image.os_hidden as i64)
        .bind(image.disk_format.clone())
        .bind(image.container_format.clone())
        .bind(image.size)
        .bind(image.virtual_size)
        .bind(image.checksum.clone())
        .bind(image.os_hash_algo.clone())
        .bind(image.os_hash_value.clone())
        .bind(image.min_ram)
        .bind(image.min_disk)
        .bind(image.created_at.clone())
        .bind(image.updated_at.clone())
        .bind(image.location.clone())
        .bind(image.id.clone())
}

async fn write_details(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    image: &Image,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM image_properties WHERE image_id = $1")
        .bind(&image.id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM image_tags WHERE image_id = $1")
        .bind(&image.id)
        .execute(&mut **tx)
        .await?;
    for (name, value) in &image.properties {
        sqlx::query("INSERT INTO image_properties (image_id, name, value) VALUES ($1, $2, $3)")
            .bind(&image.id)
            .bind(name)
            .bind(value)
            .execute(&mut **tx)
            .await?;
    }
    for tag in &image.tags {
        sqlx::query("INSERT INTO image_tags (image_id, tag) VALUES ($1, $2)")
            .bind(&image.id)
            .bind(tag)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Inserts a new image; a taken id is a [`StoreError::Conflict`].
pub async fn insert_image(store: &Store, image: &Image) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    let sql = "INSERT INTO images (name, status, visibility, owner, protected, os_hidden, \
        disk_format, container_format, size, virtual_size, checksum, os_hash_algo, \
        os_hash_value, min_ram, min_disk, created_at, updated_at, location, id, deleted, \
        generation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
        $16, $17, $18, $19, 0, 0)";
    bind_image(sqlx::query(sql), image)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::from_write)?;
    write_details(&mut tx, image).await?;
    tx.commit().await?;
    Ok(())
}

/// Saves the whole of `image` if nobody changed it since it was read (its `generation`) and
/// its status is still `expected_status`. Returns false when another writer got there first.
/// On success `image.generation` is the stored one.
pub async fn save_image(
    store: &Store,
    image: &mut Image,
    expected_status: &str,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let sql = "UPDATE images SET name = $1, status = $2, visibility = $3, owner = $4, \
        protected = $5, os_hidden = $6, disk_format = $7, container_format = $8, size = $9, \
        virtual_size = $10, checksum = $11, os_hash_algo = $12, os_hash_value = $13, \
        min_ram = $14, min_disk = $15, created_at = $16, updated_at = $17, location = $18, \
        generation = generation + 1 \
        WHERE id = $19 AND deleted = 0 AND status = $20 AND generation = $21";
    let done = bind_image(sqlx::query(sql), image)
        .bind(expected_status)
        .bind(image.generation)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if done == 0 {
        return Ok(false);
    }
    write_details(&mut tx, image).await?;
    tx.commit().await?;
    image.generation += 1;
    Ok(true)
}

/// Saves what the data flows own — status, size, hashes, virtual size, location, disk format
/// and the `os_glance_*` import properties — if the status is still `expected_status`,
/// leaving the rest (name, tags, other properties...) as concurrent updates left it.
pub async fn save_data_state(
    store: &Store,
    image: &Image,
    expected_status: &str,
) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let done = sqlx::query(
        "UPDATE images SET status = $1, size = $2, virtual_size = $3, checksum = $4, \
         os_hash_algo = $5, os_hash_value = $6, location = $7, disk_format = $8, \
         updated_at = $9, generation = generation + 1 \
         WHERE id = $10 AND deleted = 0 AND status = $11",
    )
    .bind(image.status.clone())
    .bind(image.size)
    .bind(image.virtual_size)
    .bind(image.checksum.clone())
    .bind(image.os_hash_algo.clone())
    .bind(image.os_hash_value.clone())
    .bind(image.location.clone())
    .bind(image.disk_format.clone())
    .bind(image.updated_at.clone())
    .bind(image.id.clone())
    .bind(expected_status)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if done == 0 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM image_properties WHERE image_id = $1 AND name LIKE 'os_glance%'")
        .bind(&image.id)
        .execute(&mut *tx)
        .await?;
    for (name, value) in image
        .properties
        .iter()
        .filter(|(k, _)| k.starts_with("os_glance"))
    {
        sqlx::query("INSERT INTO image_properties (image_id, name, value) VALUES ($1, $2, $3)")
            .bind(&image.id)
            .bind(name)
            .bind(value)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Marks the image deleted (its data location kept until the data is gone) and drops its
/// members, tags and properties. Returns false if it was already deleted.
pub async fn mark_deleted(store: &Store, id: &str, now: &str) -> Result<bool, StoreError> {
    let mut tx = store.begin().await?;
    let done = sqlx::query(
        "UPDATE images SET status = 'deleted', deleted = 1, updated_at = $2 \
         WHERE id = $1 AND deleted = 0",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    for table in ["image_members", "image_tags", "image_properties"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE image_id = $1"
        )))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(done == 1)
}

/// Clears the data location of a deleted image once its data is gone.
pub async fn clear_deleted_location(store: &Store, id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE images SET location = NULL WHERE id = $1 AND deleted = 1")
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(())
}

/// Every data location still referenced, by live images and by deleted images whose data
/// removal has not finished.
pub async fn locations(store: &Store) -> Result<Vec<(String, bool, String)>, StoreError> {
    let rows = sqlx::query("SELECT id, deleted, location FROM images WHERE location IS NOT NULL")
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get::<i64, _>("deleted")? != 0,
                r.try_get("location")?,
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Live images in one of `statuses`.
pub async fn images_in_status(store: &Store, statuses: &[&str]) -> Result<Vec<Image>, StoreError> {
    let sql = format!(
        "SELECT {IMAGE_COLUMNS} FROM images WHERE deleted = 0 AND status IN ({})",
        placeholders(1, statuses.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for s in statuses {
        query = query.bind(s.to_string());
    }
    let rows = query.fetch_all(store.pool()).await?;
    let mut images = rows
        .iter()
        .map(image_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    attach_details(store, &mut images).await?;
    Ok(images)
}

/// Number of live images owned by `owner` and the bytes they hold.
pub async fn usage(store: &Store, owner: &str) -> Result<(i64, i64), StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes FROM images \
         WHERE owner = $1 AND deleted = 0 AND status NOT IN ('killed', 'pending_delete')",
    )
    .bind(owner)
    .fetch_one(store.pool())
    .await?;
    Ok((row.try_get("n")?, row.try_get("bytes")?))
}

/// Runs a listing query built by the list handler: `where_sql` over alias `i`, `order_sql`.
pub async fn list_images(
    store: &Store,
    where_sql: &str,
    order_sql: &str,
    binds: &[Bind],
    limit: u64,
) -> Result<Vec<Image>, StoreError> {
    let sql = format!(
        "SELECT {IMAGE_COLUMNS} FROM images i WHERE {where_sql} ORDER BY {order_sql} LIMIT {limit}"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for bind in binds {
        query = match bind {
            Bind::Text(s) => query.bind(s.clone()),
            Bind::Int(n) => query.bind(*n),
        };
    }
    let rows = query.fetch_all(store.pool()).await?;
    let mut images = rows
        .iter()
        .map(image_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    attach_details(store, &mut images).await?;
    Ok(images)
}

fn member_from_row(row: &AnyRow) -> Result<Member, sqlx::Error> {
    Ok(Member {
        image_id: row.try_get("image_id")?,
        member: row.try_get("member")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Members of an image.
pub async fn members(store: &Store, image_id: &str) -> Result<Vec<Member>, StoreError> {
    let rows = sqlx::query(
        "SELECT image_id, member, status, created_at, updated_at FROM image_members \
         WHERE image_id = $1 ORDER BY created_at, member",
    )
    .bind(image_id)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.iter().map(member_from_row).collect::<Result<_, _>>()?)
}

/// One member row.
pub async fn member(
    store: &Store,
    image_id: &str,
    member: &str,
) -> Result<Option<Member>, StoreError> {
    let row = sqlx::query(
        "SELECT image_id, member, status, created_at, updated_at FROM image_members \
         WHERE image_id = $1 AND member = $2",
    )
    .bind(image_id)
    .bind(member)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.as_ref().map(member_from_row).transpose()?)
}

/// Inserts a member; a duplicate is a [`StoreError::Conflict`].
pub async fn insert_member(store: &Store, m: &Member) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO image_members (image_id, member, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&m.image_id)
    .bind(&m.member)
    .bind(&m.status)
    .bind(&m.created_at)
    .bind(&m.updated_at)
    .execute(store.pool())
    .await
    .map_err(StoreError::from_write)?;
    Ok(())
}

/// Updates a member's status.
pub async fn update_member(store: &Store, m: &Member) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE image_members SET status = $3, updated_at = $4 WHERE image_id = $1 AND member = $2",
    )
    .bind(&m.image_id)
    .bind(&m.member)
    .bind(&m.status)
    .bind(&m.updated_at)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Deletes a member row.
pub async fn delete_member(store: &Store, image_id: &str, member: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM image_members WHERE image_id = $1 AND member = $2")
        .bind(image_id)
        .bind(member)
        .execute(store.pool())
        .await?;
    Ok(())
}

fn task_from_row(row: &AnyRow) -> Result<Task, sqlx::Error> {
    let json = |col: &str| -> Result<Option<Value>, sqlx::Error> {
        let text: Option<String> = row.try_get(col)?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    };
    Ok(Task {
        id: row.try_get("id")?,
        image_id: row.try_get("image_id")?,
        status: row.try_get("status")?,
        owner: row.try_get("owner")?,
        user_id: row.try_get("user_id")?,
        request_id: row.try_get("request_id")?,
        input: json("input")?.unwrap_or(Value::Null),
        result: json("result")?,
        message: row.try_get("message")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Inserts or updates a task.
pub async fn put_task(store: &Store, t: &Task) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO image_tasks (id, image_id, status, owner, user_id, request_id, input, \
         result, message, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11) ON CONFLICT (id) DO UPDATE SET status = excluded.status, \
         result = excluded.result, message = excluded.message, updated_at = excluded.updated_at",
    )
    .bind(&t.id)
    .bind(&t.image_id)
    .bind(&t.status)
    .bind(&t.owner)
    .bind(&t.user_id)
    .bind(&t.request_id)
    .bind(t.input.to_string())
    .bind(t.result.as_ref().map(|r| r.to_string()))
    .bind(&t.message)
    .bind(&t.created_at)
    .bind(&t.updated_at)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// Tasks of an image, oldest first.
pub async fn tasks(store: &Store, image_id: &str) -> Result<Vec<Task>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, image_id, status, owner, user_id, request_id, input, result, message, \
         created_at, updated_at FROM image_tasks WHERE image_id = $1 ORDER BY created_at, id",
    )
    .bind(image_id)
    .fetch_all(store.pool())
    .await?;
    Ok(rows.iter().map(task_from_row).collect::<Result<_, _>>()?)
}

/// One task.
pub async fn task(store: &Store, id: &str) -> Result<Option<Task>, StoreError> {
    let row = sqlx::query(
        "SELECT id, image_id, status, owner, user_id, request_id, input, result, message, \
         created_at, updated_at FROM image_tasks WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await?;
    Ok(row.as_ref().map(task_from_row).transpose()?)
}
