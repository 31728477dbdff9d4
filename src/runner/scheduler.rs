//! One scheduler tick (`billmgr-ops cron`, meant for every minute): settle
//! what vanished runners left behind, then start what is due, within the
//! concurrency bound. Nothing starts while `<mgrdir>/etc/billmgr.DoNothing`
//! exists (BILLmanager's maintenance mode).

use anyhow::{Context, Result};

use super::backoff::retry_delay;
use super::control;
use crate::config::Config;
use crate::db::runstate;
use crate::db::Db;

/// A runner that has not taken its lock this long after being marked is
/// taken for dead (it normally takes it within milliseconds).
const START_GRACE_SECS: u64 = 60;

/// What a tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Maintenance mode was on: nothing was started.
    pub paused: bool,
    /// Another tick was running: this one did nothing.
    pub overlapped: bool,
    /// Operations whose runner had vanished, now settled as failed.
    pub interrupted: Vec<u64>,
    /// Operations started by this tick.
    pub started: Vec<u64>,
    /// Attempts running when the tick ended.
    pub running: usize,
}

/// Runs one tick.
pub fn tick(config: &Config, db: &mut Db) -> Result<TickReport> {
    let mut report = TickReport::default();
    if config.maintenance() {
        log::info!("maintenance mode (etc/billmgr.DoNothing): no operation is started");
        report.paused = true;
        return Ok(report);
    }
    let tick_lock = format!("billmgrops.cron.{}", db.name()?);
    let tick_lock: String = tick_lock.chars().take(64).collect();
    if !runstate::try_lock(db, &tick_lock)? {
        log::info!("another scheduler tick is running");
        report.overlapped = true;
        return Ok(report);
    }
    let result = tick_locked(config, db, &mut report);
    runstate::release(db, &tick_lock);
    result.map(|()| report)
}

fn tick_locked(config: &Config, db: &mut Db, report: &mut TickReport) -> Result<()> {
    runstate::drop_orphans(db)?;
    let database = db.name()?;
    let mut running = 0usize;
    for (id, age) in runstate::marked_running(db)? {
        if runstate::is_locked(db, &runstate::lock_name(&database, id))? {
            running += 1;
        } else if age >= START_GRACE_SECS {
            let tries = crate::db::operations::get(db, id)?.map_or(1, |o| o.trycount.max(1));
            let delay = retry_delay(
                tries,
                config.runner.retry_delay,
                config.runner.retry_delay_max,
            );
            runstate::mark_interrupted(db, id, delay.as_secs())?;
            log::warn!(
                "operation {id}: its runner vanished; retry in {}s",
                delay.as_secs()
            );
            report.interrupted.push(id);
        } else {
            running += 1; // just marked; its runner is on the way
        }
    }
    let free = (config.runner.concurrency as usize).saturating_sub(running);
    if !config.runs_modules() {
        // Companion mode: BILLmanager's own scheduler runs the operations.
        report.running = running;
        return Ok(());
    }
    if free > 0 {
        let due = runstate::due(db, free as u32)?;
        if !due.is_empty() {
            control::start(config, db, &due).context("failed to start due operations")?;
            log::info!("started operations {due:?}");
        }
        report.started = due;
    }
    report.running = running + report.started.len();
    Ok(())
}
