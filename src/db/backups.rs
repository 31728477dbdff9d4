//! The catalog of backup copies (`billmgrops_backup`): one row per copy,
//! with its state while it is taken and its outcome after.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::{cell_text, Db};

/// Where a copy, a restore from it, or one further place of it stands.
/// Stored as its name (`running`, `ok`, `failed`); converted here, at the
/// db boundary, and nowhere else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    #[default]
    Running,
    Ok,
    Failed,
}

/// The state of a copy.
pub type CopyState = JobState;
/// The state of a further place of a copy.
pub type PlaceState = JobState;
/// The state of the last restore from a copy.
pub type RestoreState = JobState;

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Ok => "ok",
            JobState::Failed => "failed",
        }
    }

    /// The stored name; `None` for anything else (an empty column).
    pub fn parse(s: &str) -> Option<JobState> {
        match s {
            "running" => Some(JobState::Running),
            "ok" => Some(JobState::Ok),
            "failed" => Some(JobState::Failed),
            _ => None,
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One copy in the catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyRow {
    pub id: u64,
    pub name: String,
    pub storage: String,
    pub state: CopyState,
    pub phase: String,
    pub percent: u32,
    pub reason: String,
    pub created: String,
    pub size: u64,
    pub rows: u64,
    pub encrypted: bool,
    pub plan: Option<u64>,
    pub storage_id: Option<u64>,
    /// The last restore from this copy, if any.
    pub restore_state: Option<RestoreState>,
    pub restore_phase: String,
    pub restore_percent: u32,
    pub restore_reason: String,
}

const COLUMNS: &str = "id, name, storage, state, phase, percent, reason, created, size, rows_count, encrypted, plan, storage_id, restore_state, restore_phase, restore_percent, restore_reason";

fn row(r: &mysql::Row) -> CopyRow {
    let num = |i| cell_text(r, i).parse::<u64>().unwrap_or(0);
    CopyRow {
        id: num(0),
        name: cell_text(r, 1),
        storage: cell_text(r, 2),
        // An unknown stored state reads as failed: never as good.
        state: JobState::parse(&cell_text(r, 3)).unwrap_or(JobState::Failed),
        phase: cell_text(r, 4),
        percent: num(5) as u32,
        reason: cell_text(r, 6),
        created: cell_text(r, 7),
        size: num(8),
        rows: num(9),
        encrypted: num(10) != 0,
        plan: cell_text(r, 11).parse().ok(),
        storage_id: cell_text(r, 12).parse().ok(),
        restore_state: JobState::parse(&cell_text(r, 13)),
        restore_phase: cell_text(r, 14),
        restore_percent: num(15) as u32,
        restore_reason: cell_text(r, 16),
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

/// Which plan and storage a copy belongs to.
pub fn set_origin(
    db: &mut Db,
    id: u64,
    plan: Option<u64>,
    storage: Option<u64>,
    encrypted: bool,
) -> Result<()> {
    db.conn()
        .exec_drop(
            "UPDATE billmgrops_backup SET plan = ?, storage_id = ?, encrypted = ? WHERE id = ?",
            (plan, storage, encrypted, id),
        )
        .context("failed to record the copy's plan")
}

/// Records the state of a restore from copy `id`.
pub fn restore_progress(
    db: &mut Db,
    id: u64,
    state: RestoreState,
    phase: &str,
    percent: u32,
    reason: &str,
) -> Result<()> {
    db.conn()
        .exec_drop(
            "UPDATE billmgrops_backup SET restore_state = ?, restore_phase = ?, restore_percent = ?, restore_reason = NULLIF(?, '')
             WHERE id = ?",
            (state.as_str(), phase, percent, reason, id),
        )
        .context("failed to record the restore's progress")
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
    let settled = db.conn().affected_rows();
    db.conn()
        .query_drop(
            "UPDATE billmgrops_backup SET restore_state = 'failed',
                restore_reason = 'interrupted: the restoring process ended before it finished'
             WHERE restore_state = 'running'",
        )
        .context("failed to settle abandoned restores")?;
    Ok(settled)
}

/// Registers a copy found on a storage (rescan), unless known.
pub fn register(db: &mut Db, c: &Found<'_>) -> Result<bool> {
    db.conn()
        .exec_drop(
            "INSERT IGNORE INTO billmgrops_backup
                (name, storage, storage_id, state, created, finished, size, tables, rows_count, percent, encrypted)
             VALUES (?, ?, ?, 'ok', ?, ?, ?, ?, ?, 100, ?)",
            (c.name, c.storage, c.storage_id, c.created, c.created, c.size, c.tables, c.rows, c.encrypted),
        )
        .context("failed to register the copy")?;
    if db.conn().affected_rows() == 0 {
        return Ok(false);
    }
    if !c.log_position.is_empty() {
        let id = db.conn().last_insert_id();
        set_log_position(db, id, &c.log_position)?;
    }
    Ok(true)
}

/// A copy found on a storage by a rescan.
pub struct Found<'a> {
    pub name: &'a str,
    pub storage: &'a str,
    pub storage_id: Option<u64>,
    pub created: &'a str,
    pub size: u64,
    pub tables: u64,
    pub rows: u64,
    pub encrypted: bool,
    /// `server|file|position` in the binary log; empty when not known.
    pub log_position: String,
}

/// Records a copy's place in the binary log (`server|file|position`).
pub fn set_log_position(db: &mut Db, id: u64, position: &str) -> Result<()> {
    db.conn()
        .exec_drop(
            "REPLACE INTO billmgrops_copy_log (backup, position) VALUES (?, ?)",
            (id, position),
        )
        .context("failed to record the copy's place in the binary log")
}

/// Every copy's place in the binary log, by copy id.
pub fn log_positions(db: &mut Db) -> Result<std::collections::HashMap<u64, String>> {
    let rows: Vec<(u64, String)> = db
        .conn()
        .query("SELECT backup, position FROM billmgrops_copy_log")
        .context("failed to read the copies' places in the binary log")?;
    Ok(rows.into_iter().collect())
}

pub fn delete(db: &mut Db, id: u64) -> Result<()> {
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to start a transaction")?;
    tx.exec_drop("DELETE FROM billmgrops_copy_log WHERE backup = ?", (id,))?;
    tx.exec_drop("DELETE FROM billmgrops_copy_place WHERE backup = ?", (id,))?;
    super::objects::forget(&mut tx, id)?;
    tx.exec_drop("DELETE FROM billmgrops_backup WHERE id = ?", (id,))?;
    tx.commit()
        .with_context(|| format!("failed to delete copy {id} from the catalog"))
}

/// A further storage a copy was sent to, and how that went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub storage_id: u64,
    pub state: PlaceState,
    pub reason: String,
}

/// Records (or updates) a further place of copy `backup`.
pub fn set_place(db: &mut Db, backup: u64, place: &Place) -> Result<()> {
    db.conn()
        .exec_drop(
            "REPLACE INTO billmgrops_copy_place (backup, storage_id, state, reason) VALUES (?, ?, ?, ?)",
            (backup, place.storage_id, place.state.as_str(), &place.reason),
        )
        .context("failed to record where the copy went")
}

/// The further places of copy `backup`.
pub fn places(db: &mut Db, backup: u64) -> Result<Vec<Place>> {
    let rows: Vec<(u64, String, Option<String>)> = db
        .conn()
        .exec(
            "SELECT storage_id, CAST(state AS CHAR), reason FROM billmgrops_copy_place WHERE backup = ? ORDER BY storage_id",
            (backup,),
        )
        .context("failed to read where the copy went")?;
    Ok(rows
        .into_iter()
        .map(|(storage_id, state, reason)| Place {
            storage_id,
            state: JobState::parse(&state).unwrap_or(JobState::Failed),
            reason: reason.unwrap_or_default(),
        })
        .collect())
}

/// [`places`] of many copies in one query (a list of up to 10,000 rows
/// must not cost a query per row).
pub fn places_of(
    db: &mut Db,
    backups: &[u64],
) -> Result<std::collections::HashMap<u64, Vec<Place>>> {
    let mut out: std::collections::HashMap<u64, Vec<Place>> = std::collections::HashMap::new();
    for ids in backups.chunks(1000) {
        let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let rows: Vec<(u64, u64, String, Option<String>)> = db
            .conn()
            .query(format!(
                "SELECT backup, storage_id, CAST(state AS CHAR), reason FROM billmgrops_copy_place
                 WHERE backup IN ({list}) ORDER BY backup, storage_id"
            ))
            .context("failed to read where the copies went")?;
        for (backup, storage_id, state, reason) in rows {
            out.entry(backup).or_default().push(Place {
                storage_id,
                state: JobState::parse(&state).unwrap_or(JobState::Failed),
                reason: reason.unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// Sort keys of the copies list and their SQL.
pub const COPY_SORTS: &[(&str, &str)] = &[
    ("id", "id"),
    ("date", "created"),
    ("size", "size"),
    ("storage", "storage"),
    ("state", "CAST(state AS CHAR)"),
];

/// A page of the catalog, newest first by default, and the total.
pub fn page(db: &mut Db, page: &super::Page<'_>) -> Result<(Vec<CopyRow>, u64)> {
    let total: u64 = db
        .conn()
        .query_first("SELECT COUNT(*) FROM billmgrops_backup")?
        .unwrap_or(0);
    let mut page = *page;
    if page.sort.is_none() {
        page.descending = !page.descending;
    }
    let rows: Vec<mysql::Row> = db
        .conn()
        .query(format!(
            "SELECT {COLUMNS} FROM billmgrops_backup {}",
            page.clause(COPY_SORTS, "created", "id")?
        ))
        .context("failed to list backup copies")?;
    Ok((rows.iter().map(row).collect(), total))
}
