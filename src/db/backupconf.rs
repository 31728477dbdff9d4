//! Backup configuration kept in the database: storages
//! (`billmgrops_storage`), plans (`billmgrops_plan`) and module settings
//! (`billmgrops_setting`, name/value; they override the config file).

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::{cell_text, Db};
use crate::storage::params::{Kind, Params};

/// A change the configuration refuses. Callers branch on it: the panel
/// names the field, the CLI prints it.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("a storage named `{0}` exists already")]
    StorageNameTaken(String),
    #[error("a plan named `{0}` exists already")]
    PlanNameTaken(String),
    #[error("storage `{storage}` is the storage of plans {}", plans.join(", "))]
    StorageInUse { storage: String, plans: Vec<String> },
}

/// Refuses names a new storage or plan may not take.
pub fn check_new_names(db: &mut Db, storage: Option<&str>, plan: Option<&str>) -> Result<()> {
    if let Some(name) = storage {
        let taken: Option<u64> = db
            .conn()
            .exec_first("SELECT id FROM billmgrops_storage WHERE name = ?", (name,))
            .context("failed to read the storages")?;
        if taken.is_some() {
            return Err(Refused::StorageNameTaken(name.to_string()).into());
        }
    }
    if let Some(name) = plan {
        let taken: Option<u64> = db
            .conn()
            .exec_first("SELECT id FROM billmgrops_plan WHERE name = ?", (name,))
            .context("failed to read the plans")?;
        if taken.is_some() {
            return Err(Refused::PlanNameTaken(name.to_string()).into());
        }
    }
    Ok(())
}

/// A configured storage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageRow {
    pub id: u64,
    pub name: String,
    pub kind: String,
    /// For local: the directory; for remote kinds: where it points, for
    /// lists and messages (never a secret).
    pub location: String,
    /// All the fields of the storage.
    pub params: Params,
    /// The storage's secret, sealed (see `crypt::seal_secret`).
    pub sealed_secret: Option<String>,
}

/// A backup plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanRow {
    pub id: u64,
    pub name: String,
    pub storage: u64,
    /// daily, weekly or off.
    pub schedule: String,
    /// `HH:MM`, server time.
    pub at_time: String,
    /// Weekly: days as `1,3,5` (1 = Monday).
    pub days: String,
    pub keep_count: Option<u64>,
    pub keep_size_mib: Option<u64>,
    pub exclude_tables: String,
    pub files: String,
    pub last_run: String,
}

pub fn storages(db: &mut Db) -> Result<Vec<StorageRow>> {
    let rows: Vec<mysql::Row> = db
        .conn()
        .query(
            "SELECT s.id, s.name, s.kind, s.location, a.params, a.secret
             FROM billmgrops_storage s LEFT JOIN billmgrops_storage_access a ON a.storage = s.id
             ORDER BY s.id",
        )
        .context("failed to list storages")?;
    rows.iter()
        .map(|r| {
            let kind = cell_text(r, 2);
            let location = cell_text(r, 3);
            let params = match r.get::<Option<String>, _>(4).flatten() {
                Some(json) => serde_json::from_str(&json).with_context(|| {
                    format!("storage {} has unreadable fields", cell_text(r, 1))
                })?,
                // A local storage made before remote kinds existed.
                None => Params {
                    kind: Kind::parse(&kind).unwrap_or_default(),
                    path: location.clone(),
                    ..Params::default()
                },
            };
            Ok(StorageRow {
                id: cell_text(r, 0).parse().unwrap_or(0),
                name: cell_text(r, 1),
                kind,
                location,
                params,
                sealed_secret: r.get::<Option<String>, _>(5).flatten(),
            })
        })
        .collect()
}

pub fn storage(db: &mut Db, id: u64) -> Result<Option<StorageRow>> {
    Ok(storages(db)?.into_iter().find(|s| s.id == id))
}

/// Adds a storage; `sealed_secret` is already sealed. One transaction.
pub fn add_storage(
    db: &mut Db,
    name: &str,
    params: &Params,
    sealed_secret: Option<&str>,
) -> Result<u64> {
    check_new_names(db, Some(name), None)?;
    let location = match params.kind {
        Kind::Local => params.path.clone(),
        _ => params.describe(),
    };
    let json = serde_json::to_string(params)?;
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to start a transaction")?;
    tx.exec_drop(
        "INSERT INTO billmgrops_storage (name, kind, location) VALUES (?, ?, ?)",
        (name, params.kind.as_str(), &location),
    )
    .with_context(|| format!("failed to add storage `{name}`"))?;
    let id = tx.last_insert_id().context("no storage id")?;
    tx.exec_drop(
        "INSERT INTO billmgrops_storage_access (storage, params, secret) VALUES (?, ?, ?)",
        (id, &json, sealed_secret),
    )
    .with_context(|| format!("failed to add storage `{name}`"))?;
    tx.commit().context("failed to commit the storage")?;
    Ok(id)
}

/// Removes a storage that no plan uses; the copies on it stay there.
pub fn remove_storage(db: &mut Db, id: u64) -> Result<()> {
    let plans: Vec<String> = db
        .conn()
        .exec(
            "SELECT name FROM billmgrops_plan WHERE storage = ? ORDER BY name",
            (id,),
        )
        .context("failed to read the plans")?;
    if !plans.is_empty() {
        let storage: Option<String> = db
            .conn()
            .exec_first("SELECT name FROM billmgrops_storage WHERE id = ?", (id,))?;
        return Err(Refused::StorageInUse {
            storage: storage.unwrap_or_else(|| id.to_string()),
            plans,
        }
        .into());
    }
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to start a transaction")?;
    for sql in [
        "DELETE FROM billmgrops_storage_access WHERE storage = ?",
        "DELETE FROM billmgrops_plan_storage WHERE storage = ?",
        "DELETE FROM billmgrops_storage WHERE id = ?",
    ] {
        tx.exec_drop(sql, (id,))
            .context("failed to remove the storage")?;
    }
    tx.commit().context("failed to remove the storage")
}

/// The storages besides its first that a plan sends copies to.
pub fn plan_extra_storages(db: &mut Db, plan: u64) -> Result<Vec<u64>> {
    db.conn()
        .exec(
            "SELECT storage FROM billmgrops_plan_storage WHERE plan = ? ORDER BY storage",
            (plan,),
        )
        .context("failed to read the plan's storages")
}

pub fn set_plan_extra_storages(db: &mut Db, plan: u64, storages: &[u64]) -> Result<()> {
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to start a transaction")?;
    tx.exec_drop(
        "DELETE FROM billmgrops_plan_storage WHERE plan = ?",
        (plan,),
    )?;
    for s in storages {
        tx.exec_drop(
            "INSERT IGNORE INTO billmgrops_plan_storage (plan, storage) VALUES (?, ?)",
            (plan, s),
        )?;
    }
    tx.commit().context("failed to save the plan's storages")
}

const PLAN_COLUMNS: &str = "id, name, storage, schedule, at_time, days, keep_count, keep_size_mib, exclude_tables, files, last_run";

fn plan_row(r: &mysql::Row) -> PlanRow {
    let opt = |i| cell_text(r, i).parse::<u64>().ok();
    PlanRow {
        id: opt(0).unwrap_or(0),
        name: cell_text(r, 1),
        storage: opt(2).unwrap_or(0),
        schedule: cell_text(r, 3),
        at_time: cell_text(r, 4),
        days: cell_text(r, 5),
        keep_count: opt(6),
        keep_size_mib: opt(7),
        exclude_tables: cell_text(r, 8),
        files: cell_text(r, 9),
        last_run: cell_text(r, 10),
    }
}

pub fn plans(db: &mut Db) -> Result<Vec<PlanRow>> {
    let rows: Vec<mysql::Row> = db
        .conn()
        .query(format!(
            "SELECT {PLAN_COLUMNS} FROM billmgrops_plan ORDER BY id"
        ))
        .context("failed to list plans")?;
    Ok(rows.iter().map(plan_row).collect())
}

pub fn plan(db: &mut Db, id: u64) -> Result<Option<PlanRow>> {
    Ok(plans(db)?.into_iter().find(|p| p.id == id))
}

pub fn add_plan(db: &mut Db, p: &PlanRow) -> Result<u64> {
    check_new_names(db, None, Some(&p.name))?;
    db.conn()
        .exec_drop(
            "INSERT INTO billmgrops_plan (name, storage, schedule, at_time, days, keep_count, keep_size_mib, exclude_tables, files)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (&p.name, p.storage, &p.schedule, &p.at_time, &p.days, p.keep_count, p.keep_size_mib, &p.exclude_tables, &p.files),
        )
        .with_context(|| format!("failed to add plan `{}`", p.name))?;
    Ok(db.conn().last_insert_id())
}

pub fn mark_plan_run(db: &mut Db, id: u64) -> Result<()> {
    db.conn()
        .exec_drop(
            "UPDATE billmgrops_plan SET last_run = NOW() WHERE id = ?",
            (id,),
        )
        .context("failed to record the plan's run")
}

/// A module setting, if set.
pub fn setting(db: &mut Db, name: &str) -> Result<Option<String>> {
    db.conn()
        .exec_first(
            "SELECT value FROM billmgrops_setting WHERE name = ?",
            (name,),
        )
        .with_context(|| format!("failed to read setting {name}"))
}

pub fn set_setting(db: &mut Db, name: &str, value: &str) -> Result<()> {
    db.conn()
        .exec_drop(
            "REPLACE INTO billmgrops_setting (name, value) VALUES (?, ?)",
            (name, value),
        )
        .with_context(|| format!("failed to save setting {name}"))
}

pub fn delete_setting(db: &mut Db, name: &str) -> Result<()> {
    db.conn()
        .exec_drop("DELETE FROM billmgrops_setting WHERE name = ?", (name,))
        .with_context(|| format!("failed to delete setting {name}"))
}

/// Forgets the backup settings and the catalog (dropsettings); the copies on
/// the storages stay, and a rescan finds them again.
pub fn drop_all(db: &mut Db) -> Result<()> {
    for table in [
        "billmgrops_setting",
        "billmgrops_plan_storage",
        "billmgrops_storage_access",
        "billmgrops_copy_place",
        "billmgrops_copy_log",
        "billmgrops_drill",
        "billmgrops_download",
        "billmgrops_copy_block",
        "billmgrops_object_block",
        "billmgrops_plan",
        "billmgrops_storage",
        "billmgrops_backup",
    ] {
        db.conn()
            .query_drop(format!("DELETE FROM {table}"))
            .with_context(|| format!("failed to empty {table}"))?;
    }
    Ok(())
}
