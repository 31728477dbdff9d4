//! What the panel's start, stop and delete do to running operations.
//!
//! Start marks the operations running and launches one runner process each
//! in the background ([`crate::background`]), then returns: the panel call
//! never waits for a module.
//! Stop raises the operation's stop flag; its runner (on whichever host)
//! polls the flag every second and ends the module's process group.

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::process::GRACE;
use crate::config::Config;
use crate::db::operations;
use crate::db::runstate;
use crate::db::Db;

/// The first of `ids` with an attempt running now, if any.
pub fn first_running(db: &mut Db, ids: &[u64]) -> Result<Option<u64>> {
    let database = db.name()?;
    for &id in ids {
        if runstate::is_locked(db, &runstate::lock_name(&database, id))? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Launches `billmgr-ops run-operation ID` in the background.
pub fn spawn_runner(config: &Config, id: u64) -> Result<Child> {
    crate::background::start(config, &crate::background::Job::RunOperation(id))
}

/// Starts an attempt of each operation in the background; returns the
/// runners (a caller that does not wait for them may drop them).
pub fn start(config: &Config, db: &mut Db, ids: &[u64]) -> Result<Vec<Child>> {
    runstate::mark_pending(db, ids)?;
    ids.iter().map(|&id| spawn_runner(config, id)).collect()
}

/// Waits until no attempt of `ids` runs, at most `limit`; false on time-out.
fn wait_idle(db: &mut Db, ids: &[u64], limit: Duration) -> Result<bool> {
    let deadline = Instant::now() + limit;
    loop {
        if first_running(db, ids)?.is_none() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops operations: running attempts end (with their process groups), and
/// every one of them turns manual so the scheduler leaves it alone.
pub fn stop(db: &mut Db, ids: &[u64]) -> Result<()> {
    for &id in ids {
        runstate::request_stop(db, id)?;
    }
    runstate::mark_stopped(db, ids)
}

/// Deletes operations, stopping running attempts first; history stays.
pub fn delete(db: &mut Db, ids: &[u64]) -> Result<()> {
    if let Some(id) = first_running(db, ids)? {
        stop(db, ids)?;
        // The runner notices within a second and ends the group within GRACE.
        if !wait_idle(db, ids, GRACE + Duration::from_secs(5))? {
            log::warn!("operation {id}: the attempt did not end in time; deleting anyway");
        }
    }
    operations::delete(db, ids)
}
