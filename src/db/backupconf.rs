//! Backup configuration kept in the database: storages
//! (`billmgrops_storage`), plans (`billmgrops_plan`) and module settings
//! (`billmgrops_setting`, name/value; they override the config file).

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::{cell_text, Db};

/// A configured storage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StorageRow {
    pub id: u64,
    pub name: String,
    /// local (remote kinds come later).
    pub kind: String,
    /// For local: the directory.
    pub location: String,
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
        .query("SELECT id, name, kind, location FROM billmgrops_storage ORDER BY id")
        .context("failed to list storages")?;
    Ok(rows
        .iter()
        .map(|r| StorageRow {
            id: cell_text(r, 0).parse().unwrap_or(0),
            name: cell_text(r, 1),
            kind: cell_text(r, 2),
            location: cell_text(r, 3),
        })
        .collect())
}

pub fn storage(db: &mut Db, id: u64) -> Result<Option<StorageRow>> {
    Ok(storages(db)?.into_iter().find(|s| s.id == id))
}

pub fn add_storage(db: &mut Db, name: &str, kind: &str, location: &str) -> Result<u64> {
    db.conn()
        .exec_drop(
            "INSERT INTO billmgrops_storage (name, kind, location) VALUES (?, ?, ?)",
            (name, kind, location),
        )
        .with_context(|| format!("failed to add storage `{name}`"))?;
    Ok(db.conn().last_insert_id())
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
