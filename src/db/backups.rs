//! The catalog of backup copies (`billmgrops_backup`): one row per copy,
//! with its state while it is taken and its outcome after.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::{cell_text, Db};

/// One copy in the catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyRow {
    pub id: u64,
    pub name: String,
    pub storage: String,
    /// running, ok or failed.
    pub state: String,
    pub phase: String,
    pub percent: u32,
    pub reason: String,
    pub created: String,
    pub size: u64,
    pub rows: u64,
    pub encrypted: bool,
}

const COLUMNS: &str =
    "id, name, storage, state, phase, percent, reason, created, size, rows_count, encrypted";

fn row(r: &mysql::Row) -> CopyRow {
    let num = |i| cell_text(r, i).parse::<u64>().unwrap_or(0);
    CopyRow {
        id: num(0),
        name: cell_text(r, 1),
        storage: cell_text(r, 2),
        state: cell_text(r, 3),
        phase: cell_text(r, 4),
        percent: num(5) as u32,
        reason: cell_text(r, 6),
        created: cell_text(r, 7),
        size: num(8),
        rows: num(9),
        encrypted: num(10) != 0,
    }
}

/// Every copy, newest first.
pub fn list(db: &mut Db) -> Result<Vec<CopyRow>> {
    let rows: Vec<mysql::Row> = db
        .conn()
        .query(format!(
            "SELECT {COLUMNS} FROM billmgrops_backup ORDER BY created DESC, id DESC"
        ))
        .context("failed to list backup copies")?;
    Ok(rows.iter().map(row).collect())
}

pub fn get(db: &mut Db, id: u64) -> Result<Option<CopyRow>> {
    let r: Option<mysql::Row> = db
        .conn()
        .exec_first(
            format!("SELECT {COLUMNS} FROM billmgrops_backup WHERE id = ?"),
            (id,),
        )
        .with_context(|| format!("failed to read copy {id}"))?;
    Ok(r.as_ref().map(row))
}

pub fn by_name(db: &mut Db, name: &str) -> Result<Option<CopyRow>> {
    let r: Option<mysql::Row> = db
        .conn()
        .exec_first(
            format!("SELECT {COLUMNS} FROM billmgrops_backup WHERE name = ?"),
            (name,),
        )
        .with_context(|| format!("failed to read copy {name}"))?;
    Ok(r.as_ref().map(row))
}

/// Registers a copy being taken; returns its id.
pub fn start(db: &mut Db, name: &str, storage: &str, created: &str, runner: &str) -> Result<u64> {
    db.conn()
        .exec_drop(
            "INSERT INTO billmgrops_backup (name, storage, state, phase, created, runner)
             VALUES (?, ?, 'running', 'snapshot', ?, ?)",
            (name, storage, created, runner),
        )
        .context("failed to register the copy")?;
    Ok(db.conn().last_insert_id())
}

pub fn progress(db: &mut Db, id: u64, phase: &str, percent: u32) -> Result<()> {
    db.conn()
        .exec_drop(
            "UPDATE billmgrops_backup SET phase = ?, percent = ? WHERE id = ?",
            (phase, percent, id),
        )
        .context("failed to record progress")
}

pub fn succeed(db: &mut Db, id: u64, size: u64, tables: u64, rows: u64) -> Result<()> {
    db.conn()
        .exec_drop(
            "UPDATE billmgrops_backup SET state = 'ok', phase = NULL, percent = 100, reason = NULL,
                finished = NOW(), size = ?, tables = ?, rows_count = ?, runner = NULL
             WHERE id = ?",
            (size, tables, rows, id),
        )
        .context("failed to record the copy as done")
}

pub fn fail(db: &mut Db, id: u64, reason: &str) -> Result<()> {
    db.conn()
        .exec_drop(
            "UPDATE billmgrops_backup SET state = 'failed', finished = NOW(), reason = ?, runner = NULL
             WHERE id = ?",
            (reason, id),
        )
        .context("failed to record the copy as failed")
}

/// Marks copies left `running` by a process that died as failed.
pub fn fail_abandoned(db: &mut Db) -> Result<u64> {
    db.conn()
        .query_drop(
            "UPDATE billmgrops_backup SET state = 'failed', finished = NOW(), runner = NULL,
                reason = 'interrupted: the process taking the copy ended before it finished'
             WHERE state = 'running'",
        )
        .context("failed to settle abandoned copies")?;
    Ok(db.conn().affected_rows())
}

/// Registers a copy found on a storage (rescan), unless known.
pub fn register(
    db: &mut Db,
    name: &str,
    storage: &str,
    created: &str,
    size: u64,
    tables: u64,
    rows: u64,
) -> Result<bool> {
    db.conn()
        .exec_drop(
            "INSERT IGNORE INTO billmgrops_backup (name, storage, state, created, finished, size, tables, rows_count, percent)
             VALUES (?, ?, 'ok', ?, ?, ?, ?, ?, 100)",
            (name, storage, created, created, size, tables, rows),
        )
        .context("failed to register the copy")?;
    Ok(db.conn().affected_rows() > 0)
}

pub fn delete(db: &mut Db, id: u64) -> Result<()> {
    db.conn()
        .exec_drop("DELETE FROM billmgrops_backup WHERE id = ?", (id,))
        .with_context(|| format!("failed to delete copy {id} from the catalog"))
}
