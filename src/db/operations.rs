//! Queries over running operations (`runningoperation` joined with the
//! service, its client, type and processing module) and their attempt
//! history (`billmgrops_attempt`).

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::filter::OperationFilter;
use super::{cell_take, cell_text, Db, Page};
use crate::operation::{Manual, State};

/// Operation types: the processing module commands an operation can carry.
pub const OPERATION_TYPES: &[&str] = &[
    "open",
    "suspend",
    "resume",
    "close",
    "setparam",
    "prolong",
    "reopen",
    "sync_item",
];

/// The runner states, as stored and as the list shows them.
pub const STATUSES: &[&str] = &[
    State::Wait.as_str(),
    State::Run.as_str(),
    State::Error.as_str(),
    State::Stopped.as_str(),
];

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
    pub status: State,
    pub manual: Manual,
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
    ("task", "task_id"),
    ("status", "status"),
    ("manual", "CAST(ro.manual AS CHAR)"),
];

const OPERATION_FROM: &str = "
    FROM runningoperation ro
    LEFT JOIN item i ON i.id = ro.item
    LEFT JOIN pricelist p ON p.id = i.pricelist
    LEFT JOIN itemtype it ON it.id = p.itemtype
    LEFT JOIN account a ON a.id = i.account
    LEFT JOIN processingmodule pm ON pm.id = COALESCE(ro.processingmodule, i.processingmodule)
    LEFT JOIN billmgrops_operation s ON s.runningoperation = ro.id";

/// A page of the running operations that pass `filter`, and their count.
pub fn list(
    db: &mut Db,
    filter: &OperationFilter,
    page: &Page<'_>,
) -> Result<(Vec<OperationRow>, u64)> {
    let (condition, values) = filter.where_clause();
    let total: u64 = if condition.is_empty() {
        db.conn()
            .query_first("SELECT COUNT(*) FROM runningoperation")
    } else {
        db.conn().exec_first(
            format!("SELECT COUNT(*) {OPERATION_FROM}{condition}"),
            values.clone(),
        )
    }
    .context("failed to count running operations")?
    .unwrap_or(0);
    let sql = format!(
        "SELECT ro.id, ro.intname, ro.item, i.name, it.intname, a.name,
                ro.cdate, ro.trycount, pm.name, {TASK_OF} AS task_id,
                COALESCE(s.status, '{wait}') AS status, ro.manual
         {OPERATION_FROM}{condition} {order}",
        wait = State::Wait.as_str(),
        order = page.clause(OPERATION_SORTS, "ro.id", "ro.id")?
    );
    // Rows are moved out of the result as it streams (a list can be
    // 10,000 rows the panel pages itself); without parameters it goes by
    // the text protocol, as the mariadb client would.
    let to_row = |r: mysql::Result<mysql::Row>| -> Result<OperationRow> {
        let mut r = r.context("failed to list running operations")?;
        let mut next = (0..).map(|i| cell_take(&mut r, i));
        let mut field = || next.next().unwrap_or_default();
        Ok(OperationRow {
            id: field(),
            intname: field(),
            item: field(),
            item_name: field(),
            itemtype: field(),
            client: field(),
            cdate: field(),
            trycount: field(),
            processingmodule: field(),
            task: field(),
            status: State::parse(&field()).unwrap_or(State::Wait),
            manual: Manual::parse(&field()),
        })
    };
    let context = "failed to list running operations";
    let rows: Result<Vec<OperationRow>> = if values.is_empty() {
        db.conn()
            .query_iter(sql)
            .context(context)?
            .map(to_row)
            .collect()
    } else {
        db.conn()
            .exec_iter(sql, values)
            .context(context)?
            .map(to_row)
            .collect()
    };
    let rows = rows?;
    Ok((rows, total))
}

/// Does running operation `id` exist?
pub fn exists(db: &mut Db, id: u64) -> Result<bool> {
    Ok(first_missing(db, &[id])?.is_none())
}

/// The first of `ids` that is not a running operation, if any.
pub fn first_missing(db: &mut Db, ids: &[u64]) -> Result<Option<u64>> {
    let mut found = std::collections::HashSet::new();
    for chunk in ids.chunks(1000) {
        let marks = vec!["?"; chunk.len()].join(",");
        let rows: Vec<u64> = db
            .conn()
            .exec(
                format!("SELECT id FROM runningoperation WHERE id IN ({marks})"),
                chunk.to_vec(),
            )
            .context("failed to look up running operations")?;
        found.extend(rows);
    }
    Ok(ids.iter().copied().find(|id| !found.contains(id)))
}

/// Everything about one operation that the runner and the forms need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub id: u64,
    pub item: u64,
    pub intname: String,
    /// The processing module's id and executable name, if it has one.
    pub module: Option<(u64, String)>,
    pub trycount: u32,
    pub manual: Manual,
    pub cdate: String,
    pub task: Option<u64>,
    pub status: State,
    pub comment: String,
    pub account: Option<u64>,
}

/// Operation `id`, if it exists.
pub fn get(db: &mut Db, id: u64) -> Result<Option<Operation>> {
    let row: Option<mysql::Row> = db
        .conn()
        .exec_first(
            format!("SELECT ro.id, ro.item, ro.intname, pm.id, pm.module, ro.trycount, ro.manual,
                    ro.cdate, {TASK_OF}, s.status, s.comment, i.account
             FROM runningoperation ro
             LEFT JOIN item i ON i.id = ro.item
             LEFT JOIN processingmodule pm ON pm.id = COALESCE(ro.processingmodule, i.processingmodule)
             LEFT JOIN billmgrops_operation s ON s.runningoperation = ro.id
             WHERE ro.id = ?"),
            (id,),
        )
        .with_context(|| format!("failed to read running operation {id}"))?;
    Ok(row.map(|r| {
        let num = |i| cell_text(&r, i).parse::<u64>().ok();
        Operation {
            id,
            item: num(1).unwrap_or(0),
            intname: cell_text(&r, 2),
            module: num(3).map(|m| (m, cell_text(&r, 4))),
            trycount: num(5).unwrap_or(0) as u32,
            manual: Manual::parse(&cell_text(&r, 6)),
            cdate: cell_text(&r, 7),
            task: num(8),
            status: State::parse(&cell_text(&r, 9)).unwrap_or(State::Wait),
            comment: cell_text(&r, 10),
            account: num(11),
        }
    }))
}

/// Does service `item` exist?
pub fn item_exists(db: &mut Db, item: u64) -> Result<bool> {
    let found: Option<u64> = db
        .conn()
        .exec_first("SELECT id FROM item WHERE id = ?", (item,))
        .with_context(|| format!("failed to look up service {item}"))?;
    Ok(found.is_some())
}

/// Does client `account` exist?
pub fn account_exists(db: &mut Db, account: u64) -> Result<bool> {
    let found: Option<u64> = db
        .conn()
        .exec_first("SELECT id FROM account WHERE id = ?", (account,))
        .with_context(|| format!("failed to look up client {account}"))?;
    Ok(found.is_some())
}

/// The editable fields of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationFields {
    pub intname: String,
    pub item: u64,
    pub trycount: u32,
    pub manual: Manual,
    pub comment: String,
}

/// Creates an operation for an existing service; returns its id.
pub fn create(db: &mut Db, f: &OperationFields) -> Result<u64> {
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to begin a transaction")?;
    tx.exec_drop(
        "INSERT INTO runningoperation (item, intname, processingmodule, trycount, manual, cdate)
         SELECT id, ?, processingmodule, ?, ?, NOW() FROM item WHERE id = ?",
        (&f.intname, f.trycount, f.manual.as_str(), f.item),
    )
    .context("failed to create the running operation")?;
    let id = tx.last_insert_id().context("no id for the new operation")?;
    tx.exec_drop(
        "INSERT INTO billmgrops_operation (runningoperation, status, comment) VALUES (?, ?, ?)",
        (id, State::Wait.as_str(), &f.comment),
    )
    .context("failed to create the operation state")?;
    tx.commit().context("failed to commit the new operation")?;
    Ok(id)
}

/// Saves the editable fields. Turning `manual` off releases a stopped
/// operation back to the scheduler.
pub fn update(db: &mut Db, id: u64, f: &OperationFields) -> Result<()> {
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to begin a transaction")?;
    tx.exec_drop(
        "UPDATE runningoperation SET intname = ?, item = ?, trycount = ?, manual = ? WHERE id = ?",
        (&f.intname, f.item, f.trycount, f.manual.as_str(), id),
    )
    .with_context(|| format!("failed to update running operation {id}"))?;
    tx.exec_drop(
        "INSERT INTO billmgrops_operation (runningoperation, status, comment) VALUES (?, ?, ?)
         ON DUPLICATE KEY UPDATE comment = VALUES(comment),
            next_try = IF(? AND status = ?, NULL, next_try),
            status = IF(? AND status = ?, VALUES(status), status)",
        (
            id,
            State::Wait.as_str(),
            &f.comment,
            !f.manual.is_on(),
            State::Stopped.as_str(),
            !f.manual.is_on(),
            State::Stopped.as_str(),
        ),
    )
    .with_context(|| format!("failed to update the state of operation {id}"))?;
    tx.commit().context("failed to commit the operation")?;
    Ok(())
}

/// Switches an operation back to automatic processing (`manual=off`).
pub fn set_automatic(db: &mut Db, id: u64) -> Result<()> {
    db.conn()
        .exec_drop(
            "UPDATE runningoperation SET manual = ? WHERE id = ?",
            (Manual::Off.as_str(), id),
        )
        .with_context(|| format!("failed to make operation {id} automatic"))?;
    db.conn()
        .exec_drop(
            "UPDATE billmgrops_operation SET next_try = IF(status = ?, NULL, next_try),
                status = IF(status = ?, ?, status)
             WHERE runningoperation = ?",
            (
                State::Stopped.as_str(),
                State::Stopped.as_str(),
                State::Wait.as_str(),
                id,
            ),
        )
        .with_context(|| format!("failed to update the state of operation {id}"))
}

/// Sets the staff comment of an operation.
pub fn set_comment(db: &mut Db, id: u64, comment: &str) -> Result<()> {
    db.conn()
        .exec_drop(
            "INSERT INTO billmgrops_operation (runningoperation, status, comment) VALUES (?, ?, ?)
             ON DUPLICATE KEY UPDATE comment = VALUES(comment)",
            (id, State::Wait.as_str(), comment),
        )
        .with_context(|| format!("failed to set the comment of operation {id}"))
}

/// Removes operations and their runner state; their history stays.
pub fn delete(db: &mut Db, ids: &[u64]) -> Result<()> {
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to begin a transaction")?;
    for id in ids {
        tx.exec_drop("DELETE FROM runningoperation WHERE id = ?", (id,))
            .with_context(|| format!("failed to delete running operation {id}"))?;
        tx.exec_drop(
            "DELETE FROM billmgrops_operation WHERE runningoperation = ?",
            (id,),
        )
        .with_context(|| format!("failed to delete the state of operation {id}"))?;
        tx.exec_drop(
            "DELETE FROM billmgrops_mark WHERE runningoperation = ?",
            (id,),
        )
        .with_context(|| format!("failed to delete the state of operation {id}"))?;
    }
    tx.commit().context("failed to commit the deletion")?;
    Ok(())
}

/// The staff task of an operation, if it has one: the one the operation
/// names, else the newest naming the operation (vendor code finds tasks by
/// `task.runningoperation`). Tasks are made by the panel
/// (`runner::tasks`), never written here.
pub fn task_of(db: &mut Db, id: u64) -> Result<Option<u64>> {
    let task: Option<Option<u64>> = db
        .conn()
        .exec_first(
            format!("SELECT {TASK_OF} FROM runningoperation ro WHERE ro.id = ?"),
            (id,),
        )
        .with_context(|| format!("failed to look up the task of operation {id}"))?;
    Ok(task.flatten())
}

/// An operation's task as SQL over `ro` (see [`task_of`]).
const TASK_OF: &str =
    "COALESCE(ro.task, (SELECT MAX(t.id) FROM task t WHERE t.runningoperation = ro.id))";

/// A processing module's parameter (from `processingparam`).
pub fn module_param(db: &mut Db, module: u64, name: &str) -> Result<Option<String>> {
    let v: Option<Option<String>> = db
        .conn()
        .exec_first(
            "SELECT value FROM processingparam WHERE processingmodule = ? AND intname = ?",
            (module, name),
        )
        .with_context(|| format!("failed to read parameter {name} of module {module}"))?;
    Ok(v.flatten().filter(|s| !s.is_empty()))
}

/// The login name of the first enabled user of an account.
pub fn account_user(db: &mut Db, account: u64) -> Result<Option<String>> {
    db.conn()
        .exec_first(
            "SELECT name FROM user WHERE account = ? AND enabled = 'on' ORDER BY id LIMIT 1",
            (account,),
        )
        .with_context(|| format!("failed to find a user of client {account}"))
}

/// Choices for the filter form: (id, name) of item types and modules.
pub fn choices(db: &mut Db, table: &str) -> Result<Vec<(String, String)>> {
    let sql = match table {
        "itemtype" => "SELECT id, name FROM itemtype ORDER BY orderpriority, id",
        "processingmodule" => "SELECT id, name FROM processingmodule ORDER BY name, id",
        other => anyhow::bail!("no choices for `{other}`"),
    };
    let rows: Vec<mysql::Row> = db
        .conn()
        .query(sql)
        .with_context(|| format!("failed to list {table}"))?;
    Ok(rows
        .iter()
        .map(|r| (cell_text(r, 0), cell_text(r, 1)))
        .collect())
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

/// One attempt, in full.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttemptDetail {
    pub id: u64,
    pub runningoperation: u64,
    pub createdate: String,
    pub duration_ms: String,
    pub command: String,
    pub exit_status: String,
    pub outcome: String,
    pub error_type: String,
    pub error_object: String,
    pub error_value: String,
    pub error_msg: String,
    pub stdout: String,
    pub stderr: String,
}

/// Attempt `id`, if it exists.
pub fn attempt(db: &mut Db, id: u64) -> Result<Option<AttemptDetail>> {
    let row: Option<mysql::Row> = db
        .conn()
        .exec_first(
            "SELECT runningoperation, createdate, duration_ms, command, exit_status, outcome,
                    error_type, error_object, error_value, error_msg, stdout, stderr
             FROM billmgrops_attempt WHERE id = ?",
            (id,),
        )
        .with_context(|| format!("failed to read attempt {id}"))?;
    Ok(row.map(|r| AttemptDetail {
        id,
        runningoperation: cell_text(&r, 0).parse().unwrap_or(0),
        createdate: cell_text(&r, 1),
        duration_ms: cell_text(&r, 2),
        command: cell_text(&r, 3),
        exit_status: cell_text(&r, 4),
        outcome: cell_text(&r, 5),
        error_type: cell_text(&r, 6),
        error_object: cell_text(&r, 7),
        error_value: cell_text(&r, 8),
        error_msg: cell_text(&r, 9),
        stdout: cell_text(&r, 10),
        stderr: cell_text(&r, 11),
    }))
}
