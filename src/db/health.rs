//! Queries behind `billmgr-ops status` and the notifications: the cron
//! heartbeat, running operations by state, failing and manual operations,
//! and the notice ledger (`billmgrops_notice`) that makes every notice
//! at most once.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use serde::Serialize;

use super::{cell_text, Db};
use crate::clock::Timestamp;
use crate::operation::{Manual, State};

const CRON_TICK: &str = "cron.last_tick";

/// The database server's clock. Schedules use it, so every host agrees.
pub fn server_clock(db: &mut Db) -> Result<Timestamp> {
    let now: String = db
        .conn()
        .query_first("SELECT DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s')")?
        .context("the database server did not tell the time")?;
    Timestamp::parse(&now).with_context(|| format!("the database server's time `{now}`"))
}

/// Notes that a cron tick ran now.
pub fn record_cron_tick(db: &mut Db) -> Result<()> {
    db.conn()
        .exec_drop(
            "REPLACE INTO billmgrops_setting (name, value)
             VALUES (?, DATE_FORMAT(NOW(), '%Y-%m-%d %H:%i:%s'))",
            (CRON_TICK,),
        )
        .context("failed to record the cron tick")
}

/// The last cron tick and how many seconds ago it was.
pub fn last_cron_tick(db: &mut Db) -> Result<Option<(String, i64)>> {
    db.conn()
        .exec_first(
            "SELECT value, TIMESTAMPDIFF(SECOND, value, NOW()) FROM billmgrops_setting WHERE name = ?",
            (CRON_TICK,),
        )
        .context("failed to read the last cron tick")
}

/// The state an operation is in, as status reports it.
fn state_sql() -> String {
    format!(
        "CASE WHEN s.status = '{run}' THEN 'running'
         WHEN ro.manual = '{on}' THEN 'manual'
         WHEN s.status = '{error}' THEN 'failing'
         WHEN s.status = '{stopped}' THEN 'stopped'
         ELSE 'waiting' END",
        run = State::Run.as_str(),
        on = Manual::On.as_str(),
        error = State::Error.as_str(),
        stopped = State::Stopped.as_str(),
    )
}

/// How many operations are in each state (running, waiting, failing,
/// manual, stopped).
pub fn operations_by_state(db: &mut Db) -> Result<Vec<(String, u64)>> {
    db.conn()
        .query(format!(
            "SELECT {state} AS state, COUNT(*) FROM runningoperation ro
             LEFT JOIN billmgrops_operation s ON s.runningoperation = ro.id
             GROUP BY state ORDER BY state",
            state = state_sql()
        ))
        .context("failed to count running operations")
}

/// An operation that needs attention.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TroubledOperation {
    pub id: u64,
    /// open, suspend, ...
    pub operation: String,
    pub item: u64,
    pub item_name: String,
    pub client: String,
    pub created: String,
    pub attempts: u64,
    /// failing (retried automatically) or manual.
    pub state: String,
    /// When it turned manual after its last failure, if it did.
    pub manual_since: String,
    /// The last attempt's error message.
    pub last_error: String,
}

impl TroubledOperation {
    /// `open of service 6 site6.example.ru, client Olga Ivanova`.
    pub fn what(&self) -> String {
        let mut what = format!(
            "{} of service {} {}",
            self.operation, self.item, self.item_name
        );
        if !self.client.is_empty() {
            what.push_str(&format!(", client {}", self.client));
        }
        what
    }

    /// `: <the last error>`, or nothing when none was recorded.
    pub fn error_suffix(&self) -> String {
        if self.last_error.is_empty() {
            String::new()
        } else {
            format!(": {}", self.last_error)
        }
    }
}

fn troubled(where_order: &str, db: &mut Db) -> Result<Vec<TroubledOperation>> {
    let rows: Vec<mysql::Row> = db
        .conn()
        .query(format!(
            "SELECT ro.id, ro.intname, ro.item, COALESCE(i.name, ''), COALESCE(a.name, ''),
                    DATE_FORMAT(ro.cdate, '%Y-%m-%d %H:%i:%s'), ro.trycount, {state},
                    COALESCE(DATE_FORMAT(m.since, '%Y-%m-%d %H:%i:%s'), ''),
                    COALESCE((SELECT at.error_msg FROM billmgrops_attempt at
                              WHERE at.runningoperation = ro.id ORDER BY at.id DESC LIMIT 1), '')
             FROM runningoperation ro
             LEFT JOIN billmgrops_operation s ON s.runningoperation = ro.id
             LEFT JOIN billmgrops_manual m ON m.runningoperation = ro.id
             LEFT JOIN item i ON i.id = ro.item
             LEFT JOIN account a ON a.id = i.account
             {where_order}",
            state = state_sql()
        ))
        .context("failed to read troubled operations")?;
    Ok(rows
        .iter()
        .map(|r| {
            let num = |i| cell_text(r, i).parse().unwrap_or(0);
            TroubledOperation {
                id: num(0),
                operation: cell_text(r, 1),
                item: num(2),
                item_name: cell_text(r, 3),
                client: cell_text(r, 4),
                created: cell_text(r, 5),
                attempts: num(6),
                state: cell_text(r, 7),
                manual_since: cell_text(r, 8),
                last_error: cell_text(r, 9),
            }
        })
        .collect())
}

/// The oldest operation that failed and is not done: retried or manual.
pub fn oldest_failing(db: &mut Db) -> Result<Option<TroubledOperation>> {
    Ok(troubled(
        &format!(
            "WHERE (s.status = '{error}' OR ro.manual = '{on}') AND ro.trycount > 0
             ORDER BY ro.cdate, ro.id LIMIT 1",
            error = State::Error.as_str(),
            on = Manual::On.as_str()
        ),
        db,
    )?
    .into_iter()
    .next())
}

/// Operations that turned manual after failing, in the last `hours`.
pub fn turned_manual_within(db: &mut Db, hours: u32) -> Result<Vec<TroubledOperation>> {
    troubled(
        &format!(
            "WHERE ro.manual = '{on}' AND m.since >= NOW() - INTERVAL {hours} HOUR
             ORDER BY m.since DESC, ro.id LIMIT 1000",
            on = Manual::On.as_str()
        ),
        db,
    )
}

/// Operations that turned manual and were not notified yet, with the
/// event key of each.
pub fn unnotified_manual(db: &mut Db) -> Result<Vec<(String, TroubledOperation)>> {
    let ops = troubled(
        &format!(
            "WHERE ro.manual = '{on}' AND m.since IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM billmgrops_notice n WHERE n.event =
                   CONCAT('manual:', ro.id, ':', DATE_FORMAT(m.since, '%Y%m%d%H%i%s')))
             ORDER BY m.since, ro.id LIMIT 1000",
            on = Manual::On.as_str()
        ),
        db,
    )?;
    Ok(ops
        .into_iter()
        .map(|op| {
            let stamp: String = op
                .manual_since
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            (format!("manual:{}:{stamp}", op.id), op)
        })
        .collect())
}

/// Ids of failed copies not notified yet.
pub fn unnotified_failed_copies(db: &mut Db) -> Result<Vec<u64>> {
    db.conn()
        .query(
            "SELECT b.id FROM billmgrops_backup b
             WHERE b.state = 'failed' AND NOT EXISTS
                 (SELECT 1 FROM billmgrops_notice n WHERE n.event = CONCAT('backup:', b.id))
             ORDER BY b.id LIMIT 1000",
        )
        .context("failed to find failed copies")
}

/// Claims an event for notifying: `true` for exactly one caller, ever.
pub fn claim_notice(db: &mut Db, event: &str) -> Result<bool> {
    db.conn()
        .exec_drop(
            "INSERT IGNORE INTO billmgrops_notice (event, created, state) VALUES (?, NOW(), 'logged')",
            (event,),
        )
        .with_context(|| format!("failed to record notice {event}"))?;
    Ok(db.conn().affected_rows() == 1)
}

/// Records how sending the notices went (sent or failed, and why).
pub fn settle_notices(db: &mut Db, events: &[String], state: &str, detail: &str) -> Result<()> {
    for event in events {
        db.conn()
            .exec_drop(
                "UPDATE billmgrops_notice SET state = ?, detail = ? WHERE event = ?",
                (state, detail, event),
            )
            .context("failed to record how a notice went")?;
    }
    Ok(())
}
