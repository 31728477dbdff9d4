//! Restore drills' evidence (`billmgrops_drill`): which copy, to which
//! second, how long, how many rows and transactions, the outcome.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use serde::Serialize;

use super::{cell_text, Db};

/// One drill as `status` shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Drill {
    pub id: u64,
    /// UTC, `YYYY-MM-DD HH:MM:SS`.
    pub started: String,
    pub copy: String,
    /// The second restored to; empty: the copy itself.
    pub to_time: String,
    pub seconds: Option<f64>,
    pub rows: u64,
    pub transactions: u64,
    /// running, ok or failed.
    pub state: String,
    pub reason: String,
}

/// Records a drill begun now; returns its id.
pub fn begin(db: &mut Db) -> Result<u64> {
    db.conn()
        .query_drop("INSERT INTO billmgrops_drill (started) VALUES (UTC_TIMESTAMP())")
        .context("failed to record the drill")?;
    Ok(db.conn().last_insert_id())
}

/// What a drill ended with.
pub struct Outcome<'a> {
    pub copy: &'a str,
    /// UTC, `YYYY-MM-DD HH:MM:SS`.
    pub to_time: Option<&'a str>,
    pub seconds: f64,
    pub rows: u64,
    pub transactions: u64,
    /// `None`: it passed.
    pub failure: Option<&'a str>,
}

pub fn finish(db: &mut Db, id: u64, o: &Outcome<'_>) -> Result<()> {
    let state = if o.failure.is_some() { "failed" } else { "ok" };
    db.conn()
        .exec_drop(
            "UPDATE billmgrops_drill SET finished = UTC_TIMESTAMP(), copy = ?, to_time = ?, seconds = ?,
                rows_count = ?, transactions = ?, state = ?, reason = ?
             WHERE id = ?",
            (o.copy, o.to_time, o.seconds, o.rows, o.transactions, state, o.failure, id),
        )
        .context("failed to record the drill's outcome")
}

/// Read from `billmgrops_drill d`.
const COLUMNS: &str = "d.id, d.started, d.copy, d.to_time, d.seconds, d.rows_count, d.transactions, CAST(d.state AS CHAR), d.reason";

fn drill(r: &mysql::Row) -> Drill {
    Drill {
        id: cell_text(r, 0).parse().unwrap_or(0),
        started: cell_text(r, 1),
        copy: cell_text(r, 2),
        to_time: cell_text(r, 3),
        seconds: cell_text(r, 4).parse().ok(),
        rows: cell_text(r, 5).parse().unwrap_or(0),
        transactions: cell_text(r, 6).parse().unwrap_or(0),
        state: cell_text(r, 7),
        reason: cell_text(r, 8),
    }
}

/// The newest drill, if any.
pub fn last(db: &mut Db) -> Result<Option<Drill>> {
    let row: Option<mysql::Row> = db
        .conn()
        .query_first(format!(
            "SELECT {COLUMNS} FROM billmgrops_drill d ORDER BY d.id DESC LIMIT 1"
        ))
        .context("failed to read the last drill")?;
    Ok(row.as_ref().map(drill))
}

/// Failed drills nobody was told of (`notice` keys `drill:<id>`).
pub fn unnotified_failures(db: &mut Db) -> Result<Vec<Drill>> {
    let rows: Vec<mysql::Row> = db
        .conn()
        .query(format!(
            "SELECT {COLUMNS} FROM billmgrops_drill d
             LEFT JOIN billmgrops_notice n ON n.event = CONCAT('drill:', d.id)
             WHERE d.state = 'failed' AND n.event IS NULL ORDER BY d.id"
        ))
        .context("failed to read failed drills")?;
    Ok(rows.iter().map(drill).collect())
}
