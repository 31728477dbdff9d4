//! Queries over running operations (`runningoperation` joined with the
//! service, its client, type and processing module) and their attempt
//! history (`billmgrops_attempt`).

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::{cell_text, Db, Page};

/// One row of the running operations list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationRow {
    pub id: String,
    /// The operation type (open, suspend, ...).
    pub intname: String,
    pub item: String,
    pub item_name: String,
    pub itemtype: String,
    pub client: String,
    pub cdate: String,
    pub trycount: String,
    pub processingmodule: String,
    pub task: String,
    /// wait, run, error or stopped.
    pub status: String,
}

/// Sort keys of the operations list and their SQL.
pub const OPERATION_SORTS: &[(&str, &str)] = &[
    ("id", "ro.id"),
    ("desc", "ro.intname, i.name"),
    ("item", "ro.item"),
    ("itemtype", "it.intname"),
    ("client", "a.name"),
    ("cdate", "ro.cdate"),
    ("trycount", "ro.trycount"),
    ("processingmodule", "pm.name"),
    ("task", "ro.task"),
    ("status", "status"),
];

const OPERATION_FROM: &str = "
    FROM runningoperation ro
    LEFT JOIN item i ON i.id = ro.item
    LEFT JOIN pricelist p ON p.id = i.pricelist
    LEFT JOIN itemtype it ON it.id = p.itemtype
    LEFT JOIN account a ON a.id = i.account
    LEFT JOIN processingmodule pm ON pm.id = COALESCE(ro.processingmodule, i.processingmodule)
    LEFT JOIN billmgrops_operation s ON s.runningoperation = ro.id";

/// A page of running operations and the total count.
pub fn list(db: &mut Db, page: &Page<'_>) -> Result<(Vec<OperationRow>, u64)> {
    let total: u64 = db
        .conn()
        .query_first("SELECT COUNT(*) FROM runningoperation")
        .context("failed to count running operations")?
        .unwrap_or(0);
    let sql = format!(
        "SELECT ro.id, ro.intname, ro.item, i.name, it.intname, a.name,
                ro.cdate, ro.trycount, pm.name, ro.task,
                COALESCE(s.status, 'wait') AS status
         {OPERATION_FROM} {}",
        page.clause(OPERATION_SORTS, "ro.id", "ro.id")?
    );
    let rows: Vec<mysql::Row> = db
        .conn()
        .query(sql)
        .context("failed to list running operations")?;
    let rows = rows
        .iter()
        .map(|r| OperationRow {
            id: cell_text(r, 0),
            intname: cell_text(r, 1),
            item: cell_text(r, 2),
            item_name: cell_text(r, 3),
            itemtype: cell_text(r, 4),
            client: cell_text(r, 5),
            cdate: cell_text(r, 6),
            trycount: cell_text(r, 7),
            processingmodule: cell_text(r, 8),
            task: cell_text(r, 9),
            status: cell_text(r, 10),
        })
        .collect();
    Ok((rows, total))
}

/// Does running operation `id` exist?
pub fn exists(db: &mut Db, id: u64) -> Result<bool> {
    let found: Option<u64> = db
        .conn()
        .exec_first("SELECT id FROM runningoperation WHERE id = ?", (id,))
        .with_context(|| format!("failed to look up running operation {id}"))?;
    Ok(found.is_some())
}

/// One row of an operation's attempt history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRow {
    pub id: String,
    pub createdate: String,
    pub item: String,
    pub task: String,
}

/// Sort keys of the attempt history and their SQL.
pub const ATTEMPT_SORTS: &[(&str, &str)] = &[
    ("id", "id"),
    ("createdate", "createdate"),
    ("item", "item"),
    ("task", "task"),
];

/// A page of the attempts of operation `operation`, newest first by
/// default, and the total count.
pub fn history(db: &mut Db, operation: u64, page: &Page<'_>) -> Result<(Vec<AttemptRow>, u64)> {
    let total: u64 = db
        .conn()
        .exec_first(
            "SELECT COUNT(*) FROM billmgrops_attempt WHERE runningoperation = ?",
            (operation,),
        )
        .context("failed to count attempts")?
        .unwrap_or(0);
    // Newest first unless the user sorts: the default key sorts descending.
    let mut page = *page;
    if page.sort.is_none() {
        page.descending = !page.descending;
    }
    let sql = format!(
        "SELECT id, createdate, item, task FROM billmgrops_attempt
         WHERE runningoperation = ? {}",
        page.clause(ATTEMPT_SORTS, "id", "id")?
    );
    let rows: Vec<mysql::Row> = db
        .conn()
        .exec(sql, (operation,))
        .with_context(|| format!("failed to list the attempts of operation {operation}"))?;
    let rows = rows
        .iter()
        .map(|r| AttemptRow {
            id: cell_text(r, 0),
            createdate: cell_text(r, 1),
            item: cell_text(r, 2),
            task: cell_text(r, 3),
        })
        .collect();
    Ok((rows, total))
}
