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
use crate::db::lock::{self, LockKind};
use crate::db::operations;
use crate::db::runstate::{self, Marker};
use crate::db::Db;

/// The first of `ids` with an attempt running now, if any.
pub fn first_running(db: &mut Db, ids: &[u64]) -> Result<Option<u64>> {
    for &id in ids {
        if lock::is_held(db, LockKind::Operation(id))? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Launches `billmgr-ops run-operation ID --claim TOKEN` in the background.
fn spawn_runner(config: &Config, id: u64, claim: String) -> Result<Child> {
    crate::background::start(config, &crate::background::Job::RunOperation { id, claim })
}

/// Starts an attempt of each operation in the background, but for those
/// whose runner is already on its way; returns the runners started, each
/// with its operation (a caller that does not wait for them may drop them).
pub fn start(config: &Config, db: &mut Db, ids: &[u64], by: Marker) -> Result<Vec<(u64, Child)>> {
    runstate::mark_pending(db, ids, by)?
        .into_iter()
        .map(|(id, claim)| Ok((id, spawn_runner(config, id, claim)?)))
        .collect()
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
