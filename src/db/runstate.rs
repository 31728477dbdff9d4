//! The runner's state of running operations (`billmgrops_operation`) and
//! the attempt records (`billmgrops_attempt`).
//!
//! An attempt is written when it begins, as `interrupted`, and completed
//! when it ends; so a runner killed mid-attempt still leaves its attempt in
//! the history, and `trycount` always counts attempts begun. "Only one
//! attempt at a time" is a server-side named lock per operation
//! (`db::lock`, `LockKind::Operation`), held by the runner's connection: it is released by the
//! server if the runner dies, and it works across hosts sharing a database.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::Db;
use crate::operation::{
    after_attempt, AttemptFacts, AttemptOutcome, Change, Manual, Settled, State,
};

/// Who marks operations to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// The scheduler tick on this connection: once the tick is gone, a
    /// mark no runner took is put back at once.
    Tick,
    /// The panel's Start: the call returns at once, so an untaken mark is
    /// given the scheduler's start-up grace.
    Panel,
}

/// Marks operations as about to run, so the list shows them running at
/// once; returns the operations marked, each with the token its runner
/// must show to begin (the runner confirms within a moment, or the
/// scheduler puts the mark back). One already marked, whose runner is on
/// its way (two Starts at once, a Start beside a tick), is left to that
/// runner and not returned.
pub fn mark_pending(db: &mut Db, ids: &[u64], by: Marker) -> Result<Vec<(u64, String)>> {
    let mut marked = Vec::with_capacity(ids.len());
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to begin a transaction")?;
    for &id in ids {
        let token = crate::fsutil::random_hex(8).context("cannot make a runner's token")?;
        tx.exec_drop(
            "INSERT IGNORE INTO billmgrops_mark (runningoperation, token, tick)
             VALUES (?, ?, IF(?, CONNECTION_ID(), NULL))",
            (id, &token, by == Marker::Tick),
        )
        .with_context(|| format!("failed to mark operation {id} as starting"))?;
        if tx.affected_rows() == 0 {
            continue;
        }
        tx.exec_drop(
            "INSERT INTO billmgrops_operation (runningoperation, status, started, next_try)
             VALUES (?, ?, NOW(), NULL)
             ON DUPLICATE KEY UPDATE status = VALUES(status), started = NOW(), next_try = NULL,
                runner = NULL, pgid = NULL, stop_requested = 0",
            (id, State::Run.as_str()),
        )
        .with_context(|| format!("failed to mark operation {id} as starting"))?;
        marked.push((id, token));
    }
    tx.commit()
        .context("failed to commit the marks of starting operations")?;
    Ok(marked)
}

/// The server's id of this connection (what [`Marked::tick`] holds).
pub fn connection_id(db: &mut Db) -> Result<u64> {
    db.conn()
        .query_first::<u64, _>("SELECT CONNECTION_ID()")
        .context("failed to read the connection id")?
        .context("no connection id")
}

/// What an attempt is begun with.
pub struct AttemptStart<'a> {
    pub operation: u64,
    pub item: u64,
    pub task: Option<u64>,
    pub intname: &'a str,
    pub command: &'a str,
    /// `host:pid` of the runner.
    pub runner: &'a str,
    /// The token of the mark this runner was started for; `None` for an
    /// attempt run by hand (`billmgr-ops run-operation ID`).
    pub claim: Option<&'a str>,
}

/// Records the start of an attempt; returns the attempt id, or `None` when
/// the runner's mark is no longer there (the scheduler put it back, or
/// another runner took the operation since): nothing is written then.
pub fn begin(db: &mut Db, a: &AttemptStart<'_>) -> Result<Option<u64>> {
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to begin a transaction")?;
    let mark: Option<String> = tx
        .exec_first(
            "SELECT token FROM billmgrops_mark WHERE runningoperation = ? FOR UPDATE",
            (a.operation,),
        )
        .context("failed to read the operation's mark")?;
    if let Some(claim) = a.claim {
        if mark.as_deref() != Some(claim) {
            return Ok(None); // the transaction rolls back on drop
        }
    }
    tx.exec_drop(
        "DELETE FROM billmgrops_mark WHERE runningoperation = ?",
        (a.operation,),
    )
    .context("failed to take the operation's mark")?;
    tx.exec_drop(
        "INSERT INTO billmgrops_attempt (runningoperation, item, task, intname, createdate, command, outcome)
         VALUES (?, ?, ?, ?, NOW(), ?, 'interrupted')",
        (a.operation, a.item, a.task, a.intname, a.command),
    )
    .context("failed to record the attempt")?;
    let attempt = tx.last_insert_id().context("no id for the attempt")?;
    tx.exec_drop(
        "INSERT INTO billmgrops_operation (runningoperation, status, started, runner)
         VALUES (?, ?, NOW(), ?)
         ON DUPLICATE KEY UPDATE status = VALUES(status), started = NOW(), runner = VALUES(runner),
            pgid = NULL, next_try = NULL",
        (a.operation, State::Run.as_str(), a.runner),
    )
    .context("failed to mark the operation running")?;
    tx.exec_drop(
        "UPDATE runningoperation SET trycount = trycount + 1 WHERE id = ?",
        (a.operation,),
    )
    .context("failed to count the attempt")?;
    tx.commit().context("failed to commit the attempt start")?;
    Ok(Some(attempt))
}

pub fn set_pgid(db: &mut Db, operation: u64, pgid: u32) -> Result<()> {
    db.conn()
        .exec_drop(
            "UPDATE billmgrops_operation SET pgid = ? WHERE runningoperation = ?",
            (pgid, operation),
        )
        .context("failed to record the process group")
}

/// Has someone asked to stop this operation (or deleted it)?
pub fn stop_requested(db: &mut Db, operation: u64) -> Result<bool> {
    let flag: Option<i64> = db
        .conn()
        .exec_first(
            "SELECT stop_requested FROM billmgrops_operation WHERE runningoperation = ?",
            (operation,),
        )
        .context("failed to read the stop flag")?;
    Ok(flag.is_none_or(|f| f != 0))
}

/// Asks the runner of `operation` to stop; returns its `host:pid` runner
/// and process group, when recorded.
pub fn request_stop(db: &mut Db, operation: u64) -> Result<(Option<String>, Option<u32>)> {
    db.conn()
        .exec_drop(
            "UPDATE billmgrops_operation SET stop_requested = 1 WHERE runningoperation = ?",
            (operation,),
        )
        .context("failed to request the stop")?;
    let row: Option<(Option<String>, Option<u32>)> = db
        .conn()
        .exec_first(
            "SELECT runner, pgid FROM billmgrops_operation WHERE runningoperation = ?",
            (operation,),
        )
        .context("failed to read the runner")?;
    Ok(row.unwrap_or((None, None)))
}

/// Switches operations to manual and marks them stopped.
pub fn mark_stopped(db: &mut Db, ids: &[u64]) -> Result<()> {
    make_manual(db, ids, true)
}

/// Switches operations to manual: no more automatic attempts. `stopped`
/// (an administrator's stop) also marks them stopped; otherwise (a
/// module's `runningoperation.setmanual`) an attempt in progress finishes,
/// and the time is kept for `status` and the notices.
pub fn make_manual(db: &mut Db, ids: &[u64], stopped: bool) -> Result<()> {
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to begin a transaction")?;
    for id in ids {
        tx.exec_drop(
            "UPDATE runningoperation SET manual = ? WHERE id = ?",
            (Manual::On.as_str(), id),
        )
        .with_context(|| format!("failed to make operation {id} manual"))?;
        if stopped {
            tx.exec_drop(
                "INSERT INTO billmgrops_operation (runningoperation, status) VALUES (?, ?)
                 ON DUPLICATE KEY UPDATE status = VALUES(status), next_try = NULL",
                (id, State::Stopped.as_str()),
            )
        } else {
            tx.exec_drop(
                "UPDATE billmgrops_operation SET next_try = NULL WHERE runningoperation = ?",
                (id,),
            )
        }
        .with_context(|| format!("failed to settle the state of operation {id}"))?;
        if stopped {
            // A runner on its way finds no mark and does nothing.
            tx.exec_drop(
                "DELETE FROM billmgrops_mark WHERE runningoperation = ?",
                (id,),
            )
            .with_context(|| format!("failed to settle the state of operation {id}"))?;
        }
        if !stopped {
            tx.exec_drop(
                "REPLACE INTO billmgrops_manual (runningoperation, since) VALUES (?, NOW())",
                (id,),
            )
            .with_context(|| format!("failed to record when operation {id} turned manual"))?;
        }
    }
    tx.commit().context("failed to commit the manual switch")
}

/// How an attempt ended, as recorded.
pub struct AttemptEnd<'a> {
    pub attempt: u64,
    pub operation: u64,
    pub duration_ms: u64,
    pub exit_status: &'a str,
    pub outcome: AttemptOutcome,
    pub error: Option<ModuleErrorFields<'a>>,
    pub stdout: &'a str,
    pub stderr: &'a str,
    /// The document stored in `runningoperation.errorxml` on failure.
    pub errorxml: &'a str,
    /// Seconds until the next automatic try (failures only).
    pub retry_in: u64,
    /// The attempt count at which the operation turns manual.
    pub max_attempts: u32,
    /// The switch when the attempt began (an administrator may start a
    /// manual operation): only a switch during the attempt is the
    /// module's doing.
    pub manual_before: Manual,
}

/// The module's reported error, split.
pub struct ModuleErrorFields<'a> {
    pub kind: &'a str,
    pub object: &'a str,
    pub value: &'a str,
    pub message: &'a str,
}

/// Completes the attempt record and settles the operation, in one
/// transaction: the facts are read under a row lock, the decision is
/// [`after_attempt`]'s, and this only writes it.
pub fn finish(db: &mut Db, e: &AttemptEnd<'_>) -> Result<Settled> {
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to begin a transaction")?;
    let (kind, object, value, message) = match &e.error {
        Some(m) => (Some(m.kind), Some(m.object), Some(m.value), Some(m.message)),
        None => (None, None, None, None),
    };
    tx.exec_drop(
        "UPDATE billmgrops_attempt SET duration_ms = ?, exit_status = ?, outcome = ?,
            error_type = ?, error_object = ?, error_value = ?, error_msg = ?, stdout = ?, stderr = ?
         WHERE id = ?",
        (
            e.duration_ms,
            e.exit_status,
            e.outcome.as_str(),
            kind,
            object,
            value,
            message,
            e.stdout,
            e.stderr,
            e.attempt,
        ),
    )
    .context("failed to complete the attempt record")?;
    let row: Option<(u32, String)> = tx
        .exec_first(
            "SELECT trycount, manual FROM runningoperation WHERE id = ? FOR UPDATE",
            (e.operation,),
        )
        .context("failed to read the attempt count")?;
    let (tries, manual) = row.unwrap_or((0, String::new()));
    let decision = after_attempt(&AttemptFacts {
        outcome: e.outcome,
        tries,
        manual_now: Manual::parse(&manual),
        manual_before: e.manual_before,
        max_attempts: e.max_attempts,
        retry_in: e.retry_in,
    });
    match decision.change {
        Change::Remove => {
            tx.exec_drop("DELETE FROM runningoperation WHERE id = ?", (e.operation,))
                .context("failed to remove the finished operation")?;
            for table in ["billmgrops_operation", "billmgrops_manual"] {
                tx.exec_drop(
                    format!("DELETE FROM {table} WHERE runningoperation = ?"),
                    (e.operation,),
                )
                .context("failed to remove the finished operation's state")?;
            }
        }
        Change::Keep {
            state,
            turn_manual,
            retry_in,
            note_manual_since,
        } => {
            tx.exec_drop(
                "UPDATE runningoperation SET errorxml = ?, manual = IF(?, ?, manual) WHERE id = ?",
                (e.errorxml, turn_manual, Manual::On.as_str(), e.operation),
            )
            .context("failed to record the error")?;
            tx.exec_drop(
                "UPDATE billmgrops_operation SET status = ?, runner = NULL, pgid = NULL,
                    stop_requested = 0,
                    next_try = IF(? IS NULL, NULL, NOW() + INTERVAL ? SECOND)
                 WHERE runningoperation = ?",
                (state.as_str(), retry_in, retry_in, e.operation),
            )
            .context("failed to schedule the retry")?;
            if note_manual_since {
                tx.exec_drop(
                    "REPLACE INTO billmgrops_manual (runningoperation, since) VALUES (?, NOW())",
                    (e.operation,),
                )
                .context("failed to record when the operation turned manual")?;
            }
        }
    }
    tx.commit().context("failed to commit the attempt")?;
    Ok(decision.settled)
}

/// An operation marked running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marked {
    pub id: u64,
    /// Seconds since it was marked (or its attempt began).
    pub age: u64,
    /// Its processing module, if it has one.
    pub module: Option<u64>,
    /// A runner took it (began an attempt); false while it is only marked.
    pub taken: bool,
    /// The connection of the scheduler tick that marked it, if a tick did.
    pub tick: Option<u64>,
}

/// Operations marked running.
pub fn marked_running(db: &mut Db) -> Result<Vec<Marked>> {
    type Row = (u64, u64, Option<u64>, bool, Option<u64>);
    let rows: Vec<Row> = db
        .conn()
        .exec(
            "SELECT s.runningoperation,
                    GREATEST(0, TIMESTAMPDIFF(SECOND, COALESCE(s.started, s.updated), NOW())),
                    COALESCE(ro.processingmodule, i.processingmodule),
                    s.runner IS NOT NULL,
                    m.tick
             FROM billmgrops_operation s
             LEFT JOIN billmgrops_mark m ON m.runningoperation = s.runningoperation
             LEFT JOIN runningoperation ro ON ro.id = s.runningoperation
             LEFT JOIN item i ON i.id = ro.item
             WHERE s.status = ?",
            (State::Run.as_str(),),
        )
        .context("failed to list running operations")?;
    Ok(rows
        .into_iter()
        .map(|(id, age, module, taken, tick)| Marked {
            id,
            age,
            module,
            taken,
            tick,
        })
        .collect())
}

/// Settles an operation whose runner vanished: error, retried after `retry_in`.
pub fn mark_interrupted(db: &mut Db, operation: u64, retry_in: u64) -> Result<()> {
    db.conn()
        .exec_drop(
            "UPDATE billmgrops_operation SET status = ?, runner = NULL, pgid = NULL,
                stop_requested = 0, next_try = NOW() + INTERVAL ? SECOND
             WHERE runningoperation = ? AND status = ?",
            (
                State::Error.as_str(),
                retry_in,
                operation,
                State::Run.as_str(),
            ),
        )
        .context("failed to settle an interrupted operation")
}

/// Puts back an operation that was marked but never taken by a runner (a
/// scheduler killed between the two): due again, no attempt counted.
/// The mark goes with it, so a runner that arrives later finds no mark and
/// does nothing ([`begin`] takes the mark's row lock first, as this does).
/// Returns whether it was put back (false: a runner took it meanwhile).
pub fn mark_not_started(db: &mut Db, operation: u64) -> Result<bool> {
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to begin a transaction")?;
    tx.exec_drop(
        "DELETE FROM billmgrops_mark WHERE runningoperation = ?",
        (operation,),
    )
    .context("failed to put back an operation that never started")?;
    tx.exec_drop(
        "UPDATE billmgrops_operation SET status = ?, started = NULL, next_try = NULL
         WHERE runningoperation = ? AND status = ? AND runner IS NULL",
        (State::Wait.as_str(), operation, State::Run.as_str()),
    )
    .context("failed to put back an operation that never started")?;
    let put_back = tx.affected_rows() > 0;
    tx.commit()
        .context("failed to put back an operation that never started")?;
    Ok(put_back)
}

/// The condition of an operation due for an attempt (over
/// `runningoperation ro` joined to its state `s`), with [`due_params`]:
/// automatic, waiting or failed, and its next try (if any) come.
const DUE: &str = "ro.manual = ?
    AND COALESCE(s.status, ?) IN (?, ?)
    AND (s.next_try IS NULL OR s.next_try <= NOW())";

fn due_params() -> Vec<mysql::Value> {
    vec![
        Manual::Off.as_str().into(),
        State::Wait.as_str().into(),
        State::Wait.as_str().into(),
        State::Error.as_str().into(),
    ]
}

/// Operations due for an attempt, at most `limit`, each with its
/// processing module: by `priorities` (command, rank; lower first, a
/// command not named after all), then oldest first.
pub fn due(db: &mut Db, limit: u32, priorities: &[(&str, u32)]) -> Result<Vec<(u64, Option<u64>)>> {
    let rank = if priorities.is_empty() {
        "0".to_string()
    } else {
        format!(
            "CASE ro.intname {} ELSE {} END",
            "WHEN ? THEN ? ".repeat(priorities.len()),
            priorities.iter().map(|p| p.1).max().unwrap_or(0) + 1
        )
    };
    let mut params: Vec<mysql::Value> = Vec::with_capacity(priorities.len() * 2 + 4);
    params.extend(due_params());
    for (command, rank) in priorities {
        params.push((*command).into());
        params.push((*rank).into());
    }
    params.push(limit.into());
    db.conn()
        .exec(
            format!(
                "SELECT ro.id, COALESCE(ro.processingmodule, i.processingmodule)
                 FROM runningoperation ro
                 LEFT JOIN item i ON i.id = ro.item
                 LEFT JOIN billmgrops_operation s ON s.runningoperation = ro.id
                 WHERE {DUE}
                 ORDER BY {rank}, ro.cdate, ro.id
                 LIMIT ?"
            ),
            params,
        )
        .context("failed to select due operations")
}

/// How many operations are due now, and the mean length (seconds) of the
/// last 200 attempts that ended, if any did.
pub fn backlog(db: &mut Db) -> Result<(u64, Option<f64>)> {
    let due: u64 = db
        .conn()
        .exec_first(
            format!(
                "SELECT COUNT(*) FROM runningoperation ro
                 LEFT JOIN billmgrops_operation s ON s.runningoperation = ro.id
                 WHERE {DUE}"
            ),
            due_params(),
        )
        .context("failed to count due operations")?
        .unwrap_or(0);
    let mean: Option<Option<f64>> = db
        .conn()
        .query_first(
            "SELECT AVG(d) / 1000 FROM (SELECT duration_ms AS d FROM billmgrops_attempt
               WHERE duration_ms IS NOT NULL ORDER BY id DESC LIMIT 200) recent",
        )
        .context("failed to measure recent attempts")?;
    Ok((due, mean.flatten()))
}

/// Removes runner state whose operation is gone (BILLmanager removes an
/// operation when a module reports success through the panel).
pub fn drop_orphans(db: &mut Db) -> Result<()> {
    db.conn()
        .exec_drop(
            "DELETE s FROM billmgrops_operation s
             LEFT JOIN runningoperation ro ON ro.id = s.runningoperation
             WHERE ro.id IS NULL AND s.status <> ?",
            (State::Run.as_str(),),
        )
        .context("failed to remove orphaned operation state")?;
    db.conn()
        .exec_drop(
            "DELETE m FROM billmgrops_mark m
             LEFT JOIN billmgrops_operation s ON s.runningoperation = m.runningoperation
             WHERE s.runningoperation IS NULL OR s.status <> ?",
            (State::Run.as_str(),),
        )
        .context("failed to remove orphaned marks")
}
