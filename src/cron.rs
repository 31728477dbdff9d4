//! One cron tick (`billmgr-ops cron`, every minute from /etc/cron.d): the
//! heartbeat recorded, notifications swept, a due backup plan started in
//! the background (one at a time, none in maintenance mode), then the
//! running operations' scheduler ([`crate::runner::scheduler`]).

use anyhow::Result;

use crate::background::{self, Job};
use crate::config::Config;
use crate::db::{health, Db};
use crate::engine;
use crate::health::notify;
use crate::runner::scheduler::{self, TickReport};

/// What one tick did.
#[derive(Debug, Default)]
pub struct CronReport {
    /// The backup plan started, if one was due.
    pub plan_started: Option<u64>,
    /// The operations' scheduler.
    pub operations: TickReport,
}

/// Runs one tick.
pub fn tick(config: &Config, db: &mut Db) -> Result<CronReport> {
    health::record_cron_tick(db)?;
    if let Err(e) = notify::sweep(config, db) {
        log::error!("notifications: {e:#}");
    }
    let mut report = CronReport::default();
    // Backup plans first: a due plan starts in the background.
    if !config.maintenance() && !engine::busy(db)? {
        if let Some(&plan) = engine::due_plans(db)?.first() {
            background::start(
                config,
                &Job::BackupCreate {
                    plan: Some(plan),
                    storage: None,
                },
            )?;
            report.plan_started = Some(plan);
        }
    }
    report.operations = scheduler::tick(config, db)?;
    Ok(report)
}
