//! Security groups and their rules: each project's `default` group (made on first use, once,
//! under a per-project lock) with upstream's default rules, the egress rules every new group
//! starts with, duplicate detection under the group's lock, and deletes that refuse while ports
//! use the group.

use super::{Db, Result, Tx};
use crate::errors;
use crate::events::Event;
use crate::model::{SecurityGroup, SecurityGroupRule, new_id, now};
use crate::service::Settings;

/// The description of default groups.
pub const DEFAULT_DESCRIPTION: &str = "Default security group";

fn template_rule(
    group: &SecurityGroup,
    direction: &str,
    ethertype: &str,
    remote_self: bool,
) -> SecurityGroupRule {
    let ts = now();
    SecurityGroupRule {
        id: new_id(),
        project_id: group.project_id.clone(),
        security_group_id: group.id.clone(),
        direction: direction.into(),
        ethertype: ethertype.into(),
        protocol: None,
        port_range_min: None,
        port_range_max: None,
        remote_ip_prefix: None,
        remote_group_id: remote_self.then(|| group.id.clone()),
        description: String::new(),
        created_at: ts.clone(),
        updated_at: ts,
        revision_number: 1,
    }
}

/// The rules a new group starts with (Neutron's default security group rule templates):
/// egress anywhere for IPv4 and IPv6; the default group also admits ingress from its own
/// members.
pub fn starting_rules(group: &SecurityGroup, default: bool) -> Vec<SecurityGroupRule> {
    let mut rules = Vec::new();
    for ethertype in ["IPv4", "IPv6"] {
        if default {
            rules.push(template_rule(group, "ingress", ethertype, true));
        }
        rules.push(template_rule(group, "egress", ethertype, false));
    }
    rules
}

async fn insert_group(tx: &mut Tx, group: &SecurityGroup, default: bool) -> Result<()> {
    tx.insert(group).await?;
    for rule in starting_rules(group, default) {
        tx.insert(&rule).await?;
        tx.emit(Event::new(
            "security_group_rule",
            "created",
            &rule.id,
            rule.revision_number,
        ));
    }
    tx.emit(Event::new(
        "security_group",
        "created",
        &group.id,
        group.revision_number,
    ));
    Ok(())
}

/// The id of the project's default group, if it has one.
pub async fn default_id(conn: &mut sqlx::AnyConnection, project: &str) -> Result<Option<String>> {
    Ok(super::strings(
        conn,
        "SELECT security_group_id FROM net_default_security_groups WHERE project_id = $1",
        &[project],
    )
    .await?
    .into_iter()
    .next())
}

/// The project's default group, made now if it has none (exactly one, whatever the
/// concurrency: the check and the insert run under the project's lock).
pub async fn ensure_default(db: &Db, project: &str) -> Result<String> {
    if project.is_empty() {
        return Ok(String::new());
    }
    if let Some(id) = default_id(&mut *db.conn().await?, project).await? {
        return Ok(id);
    }
    crate::db::write_tx!(db, |tx| {
        (async {
        tx.lock_name(&format!("default-sg:{project}")).await?;
        if let Some(id) = default_id(tx.conn(), project).await? {
            return Ok(id);
        }
        let ts = now();
        let group = SecurityGroup {
            id: new_id(),
            project_id: project.to_string(),
            name: "default".into(),
            description: DEFAULT_DESCRIPTION.into(),
            stateful: true,
            tags: Vec::new(),
            created_at: ts.clone(),
            updated_at: ts,
            revision_number: 1,
        };
        insert_group(tx, &group, true).await?;
        tx.exec(
            "INSERT INTO net_default_security_groups (project_id, security_group_id) VALUES ($1, $2)",
            &[project, &group.id],
        )
        .await?;
        Ok(group.id)
    }).await
    })
}

/// Whether `id` is some project's default group.
pub async fn is_default(conn: &mut sqlx::AnyConnection, id: &str) -> Result<bool> {
    Ok(super::count(
        conn,
        "SELECT COUNT(*) FROM net_default_security_groups WHERE security_group_id = $1",
        &[id],
    )
    .await?
        > 0)
}

/// Creates a group with its two egress rules (within the group and rule quotas).
pub async fn create(tx: &mut Tx, settings: &Settings, group: &SecurityGroup) -> Result<()> {
    super::quotas::check(tx, settings, &group.project_id, "security_group", 1).await?;
    super::quotas::check(tx, settings, &group.project_id, "security_group_rule", 2).await?;
    insert_group(tx, group, false).await
}

/// The changes an update asks for.
#[derive(Debug, Clone, Default)]
pub struct GroupUpdate {
    pub name: Option<String>,
    pub description: Option<String>,
    pub stateful: Option<bool>,
}

/// Updates a group; the default group keeps its name (409 `SecurityGroupCannotUpdateDefault`),
/// and a group in use keeps its statefulness.
pub async fn update(
    tx: &mut Tx,
    id: &str,
    change: &GroupUpdate,
    expected_revision: Option<i64>,
) -> Result<SecurityGroup> {
    let mut group: SecurityGroup = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::security_group_not_found(id))?;
    super::networks::check_revision(expected_revision, group.revision_number)?;
    if change.name.is_some() && is_default(tx.conn(), id).await? {
        return Err(errors::conflict(
            "SecurityGroupCannotUpdateDefault",
            "Updating default security group not allowed.",
        )
        .into());
    }
    if let Some(stateful) = change.stateful
        && stateful != group.stateful
        && in_use(tx, id).await?
    {
        return Err(
            errors::conflict("SecurityGroupInUse", format!("Security Group {id} in use.")).into(),
        );
    }
    let before = group.clone();
    if let Some(v) = &change.name {
        group.name = v.clone();
    }
    if let Some(v) = &change.description {
        group.description = v.clone();
    }
    if let Some(v) = change.stateful {
        group.stateful = v;
    }
    if group != before {
        touch_group(tx, &mut group).await?;
    }
    Ok(group)
}

/// Bumps the revision and update time, saves and records an event.
pub async fn touch_group(tx: &mut Tx, group: &mut SecurityGroup) -> Result<()> {
    group.revision_number += 1;
    group.updated_at = now();
    tx.save(group).await?;
    tx.emit(Event::new(
        "security_group",
        "updated",
        &group.id,
        group.revision_number,
    ));
    Ok(())
}

async fn in_use(tx: &mut Tx, id: &str) -> Result<bool> {
    Ok(tx
        .count(
            "SELECT COUNT(*) FROM net_port_security_groups WHERE security_group_id = $1",
            &[id],
        )
        .await?
        > 0)
}

/// Deletes a group with its rules (and the rules of other groups naming it as remote group).
/// Refused while ports use it, and for a default group unless `admin`.
pub async fn delete(
    tx: &mut Tx,
    id: &str,
    admin: bool,
    expected_revision: Option<i64>,
) -> Result<SecurityGroup> {
    let group: SecurityGroup = tx
        .lock(id)
        .await?
        .ok_or_else(|| errors::security_group_not_found(id))?;
    super::networks::check_revision(expected_revision, group.revision_number)?;
    if in_use(tx, id).await? {
        return Err(
            errors::conflict("SecurityGroupInUse", format!("Security Group {id} in use.")).into(),
        );
    }
    if is_default(tx.conn(), id).await? {
        if !admin {
            return Err(errors::conflict(
                "SecurityGroupCannotRemoveDefault",
                "Insufficient rights for removing default security group.",
            )
            .into());
        }
        tx.exec(
            "DELETE FROM net_default_security_groups WHERE security_group_id = $1",
            &[id],
        )
        .await?;
    }
    let rules: Vec<SecurityGroupRule> = tx
        .select("security_group_id = $1 OR remote_group_id = $1", &[id])
        .await?;
    for rule in &rules {
        tx.delete::<SecurityGroupRule>(&rule.id).await?;
        tx.emit(Event::new(
            "security_group_rule",
            "deleted",
            &rule.id,
            rule.revision_number,
        ));
    }
    tx.delete::<SecurityGroup>(id).await?;
    tx.emit(Event::new(
        "security_group",
        "deleted",
        id,
        group.revision_number,
    ));
    Ok(group)
}

/// Adds a validated rule under its group's lock: the group (and remote group) must exist, the
/// rule quota must allow it, and an equal rule must not exist (409 `SecurityGroupRuleExists`).
pub async fn create_rule(
    tx: &mut Tx,
    settings: &Settings,
    rule: &SecurityGroupRule,
) -> Result<SecurityGroupRule> {
    super::quotas::check(tx, settings, &rule.project_id, "security_group_rule", 1).await?;
    let mut group: SecurityGroup = tx
        .lock(&rule.security_group_id)
        .await?
        .ok_or_else(|| errors::security_group_not_found(&rule.security_group_id))?;
    if let Some(remote) = &rule.remote_group_id
        && remote != &group.id
        && tx.lock_shared::<SecurityGroup>(remote).await?.is_none()
    {
        return Err(errors::security_group_not_found(remote).into());
    }
    let key = crate::sg_rules::key(rule);
    let existing: Vec<SecurityGroupRule> =
        tx.select("security_group_id = $1", &[&group.id]).await?;
    if let Some(same) = existing.iter().find(|r| crate::sg_rules::key(r) == key) {
        return Err(errors::conflict(
            "SecurityGroupRuleExists",
            format!(
                "Security group rule already exists. Rule id is {}.",
                same.id
            ),
        )
        .into());
    }
    tx.insert(rule).await?;
    tx.emit(Event::new(
        "security_group_rule",
        "created",
        &rule.id,
        rule.revision_number,
    ));
    touch_group(tx, &mut group).await?;
    Ok(rule.clone())
}

/// Deletes a rule (its group's revision moves).
pub async fn delete_rule(tx: &mut Tx, id: &str) -> Result<SecurityGroupRule> {
    let rule: SecurityGroupRule = tx
        .get(id)
        .await?
        .ok_or_else(|| errors::security_group_rule_not_found(id))?;
    let group: Option<SecurityGroup> = tx.lock(&rule.security_group_id).await?;
    tx.delete::<SecurityGroupRule>(id).await?;
    tx.emit(Event::new(
        "security_group_rule",
        "deleted",
        id,
        rule.revision_number,
    ));
    if let Some(mut group) = group {
        touch_group(tx, &mut group).await?;
    }
    Ok(rule)
}
