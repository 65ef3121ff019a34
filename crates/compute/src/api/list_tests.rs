//! The server list's filters, checked over rows written straight to the store: the database
//! narrows by columns (host, uuid, user, task and vm state, the statuses' vm states, the
//! changes-since/-before window) and the exact checks run in memory, so these cases pin the
//! answers at the edges where the two could differ.

use super::tests::Harness;
use crate::db::instances::{self as idb, FlavorCopy, Instance, InstanceData, NewAction};

/// A server of the admin's project: (name, user, host, vm state, task state, updated_at).
type Row = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    &'static str,
);

const ROWS: &[Row] = &[
    (
        "web-1",
        "u-admin",
        Some("h1"),
        "active",
        None,
        "2026-01-01T10:00:00.000000Z",
    ),
    (
        "web-2",
        "u-admin",
        Some("h2"),
        "active",
        Some("rebooting"),
        "2026-01-01T10:00:00.500000Z",
    ),
    (
        "db-1",
        "u-other",
        Some("h1"),
        "stopped",
        None,
        "2026-01-01T10:00:01.000000Z",
    ),
    (
        "db-2",
        "u-other",
        None,
        "error",
        None,
        "2026-01-01T10:00:02.250000Z",
    ),
    (
        "gone",
        "u-admin",
        Some("h1"),
        "active",
        None,
        "2026-01-01T10:00:03.000000Z",
    ),
];

async fn seed(h: &Harness) {
    for (name, user, host, vm_state, task_state, updated_at) in ROWS {
        let uuid = uuid::Uuid::new_v4().to_string();
        let mut rows = [Instance {
            id: 0,
            uuid: uuid.clone(),
            project_id: "p-admin".into(),
            user_id: user.to_string(),
            host: host.map(str::to_string),
            vm_state: vm_state.to_string(),
            task_state: task_state.map(str::to_string),
            power_state: 1,
            deleted: false,
            created_at: updated_at.to_string(),
            updated_at: updated_at.to_string(),
            launched_at: None,
            deleted_at: None,
            generation: 0,
            data: InstanceData {
                display_name: name.to_string(),
                flavor: FlavorCopy {
                    flavorid: "1".into(),
                    name: "f".into(),
                    vcpus: 1,
                    memory_mb: 64,
                    root_gb: 1,
                    ..Default::default()
                },
                ..Default::default()
            },
        }];
        let action = NewAction {
            action: "create",
            request_id: "req-test",
            user_id: user,
            project_id: "p-admin",
            now: updated_at,
        };
        let unlimited = idb::ServerQuota {
            instances: -1,
            cores: -1,
            ram: -1,
        };
        idb::create_instances(&h.compute.store, &mut rows, unlimited, None, &action)
            .await
            .unwrap()
            .unwrap();
        if *name == "gone" {
            assert!(
                idb::mark_deleted(&h.compute.store, &uuid, updated_at)
                    .await
                    .unwrap()
            );
        }
        // Rows keep the times of the table (the writes above may have touched updated_at).
        sqlx::query("UPDATE instances SET updated_at = $1 WHERE uuid = $2")
            .bind(*updated_at)
            .bind(&uuid)
            .execute(h.compute.store.pool())
            .await
            .unwrap();
    }
}

async fn names(h: &Harness, query: &str) -> Vec<String> {
    let r = h
        .call(
            "admin",
            "GET",
            &format!("/v2.1/servers?{query}"),
            "2.90",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{query}: {:?}", r.body);
    let mut names: Vec<String> = r.body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn filters_narrowed_in_the_database_answer_as_before() {
    let h = Harness::open("list-filters").await;
    seed(&h).await;
    // (query, the servers it lists)
    let table: &[(&str, &[&str])] = &[
        ("", &["db-1", "db-2", "web-1", "web-2"]),
        ("status=ACTIVE", &["web-1"]),
        ("status=reboot", &["web-2"]),
        ("status=SHUTOFF&status=ERROR", &["db-1", "db-2"]),
        ("status=UNKNOWN", &[]),
        ("status=DELETED", &["gone"]),
        ("status=ACTIVE&vm_state=active", &["web-1"]),
        ("status=SHUTOFF&vm_state=active", &[]),
        ("vm_state=active", &["web-1", "web-2"]),
        ("task_state=rebooting", &["web-2"]),
        ("user_id=u-other", &["db-1", "db-2"]),
        ("host=h1", &["db-1", "web-1"]),
        ("host=h1&status=SHUTOFF", &["db-1"]),
        ("name=^web", &["web-1", "web-2"]),
        // changes-since/-before include deleted rows and compare exact times, fractions too.
        (
            "changes-since=2026-01-01T10:00:00.400000Z",
            &["db-1", "db-2", "gone", "web-2"],
        ),
        ("changes-since=2026-01-01T10:00:02.25Z", &["db-2", "gone"]),
        ("changes-since=2026-01-01T10:00:02.3Z", &["gone"]),
        ("changes-before=2026-01-01T10:00:00.5Z", &["web-1", "web-2"]),
        ("changes-before=2026-01-01T10:00:00.499Z", &["web-1"]),
        (
            "changes-since=2026-01-01T10:00:00.5Z&changes-before=2026-01-01T10:00:01",
            &["db-1", "web-2"],
        ),
        (
            "changes-since=2026-01-01T10:00:01&status=SHUTOFF",
            &["db-1"],
        ),
    ];
    for (query, expected) in table {
        assert_eq!(names(&h, query).await, *expected, "{query}");
    }
}
