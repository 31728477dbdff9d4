//! What processing modules say through the panel API while they run:
//! `runningoperation.edit sok=ok elid=<op> errorxml=<document>` (the error
//! of the attempt in progress) and `runningoperation.setmanual elid=<op>`
//! (no more automatic attempts), as every vendor module does on failure
//! (reference: billmanager-code-examples.md §2.5).
//!
//! The error goes on the operation (`runningoperation.errorxml`) and on the
//! attempt in progress (its error fields, and the document itself in
//! `billmgrops_report`), so the attempt's end treats it exactly as an
//! `<error>` printed on stdout. Reported with no attempt of this plugin in
//! progress (a module run by hand, or by the panel's own scheduler), it is
//! recorded as an attempt of its own, so the history shows it.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::runstate::ModuleErrorFields;
use super::Db;

/// Records a module's error report on operation `operation`.
pub fn report_error(
    db: &mut Db,
    operation: u64,
    errorxml: &str,
    error: &ModuleErrorFields<'_>,
) -> Result<()> {
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to begin a transaction")?;
    tx.exec_drop(
        "UPDATE runningoperation SET errorxml = ? WHERE id = ?",
        (errorxml, operation),
    )
    .context("failed to record the error on the operation")?;
    let running: Option<u64> = tx
        .exec_first(
            "SELECT a.id FROM billmgrops_attempt a
             JOIN billmgrops_operation s ON s.runningoperation = a.runningoperation AND s.status = 'run'
             WHERE a.runningoperation = ? AND a.outcome = 'interrupted'
             ORDER BY a.id DESC LIMIT 1",
            (operation,),
        )
        .context("failed to find the attempt in progress")?;
    let attempt = match running {
        Some(attempt) => {
            tx.exec_drop(
                "UPDATE billmgrops_attempt SET error_type = ?, error_object = ?, error_value = ?, error_msg = ?
                 WHERE id = ?",
                (error.kind, error.object, error.value, error.message, attempt),
            )
            .context("failed to record the error on the attempt")?;
            attempt
        }
        None => {
            tx.exec_drop(
                "INSERT INTO billmgrops_attempt
                    (runningoperation, item, task, intname, createdate, command, outcome,
                     error_type, error_object, error_value, error_msg)
                 SELECT id, item, NULL, intname, NOW(), '(reported through runningoperation.edit)', 'error',
                        ?, ?, ?, ?
                 FROM runningoperation WHERE id = ?",
                (error.kind, error.object, error.value, error.message, operation),
            )
            .context("failed to record the reported error")?;
            tx.last_insert_id().context("no id for the attempt")?
        }
    };
    tx.exec_drop(
        "REPLACE INTO billmgrops_report (attempt, runningoperation, reported, errorxml)
         VALUES (?, ?, NOW(), ?)",
        (attempt, operation, errorxml),
    )
    .context("failed to keep the reported document")?;
    tx.commit().context("failed to commit the report")
}

/// The error document reported through the API during `attempt`, if any.
pub fn reported(db: &mut Db, attempt: u64) -> Result<Option<String>> {
    db.conn()
        .exec_first(
            "SELECT errorxml FROM billmgrops_report WHERE attempt = ?",
            (attempt,),
        )
        .context("failed to read the reported error")
}
