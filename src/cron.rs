//! One cron tick (`billmgr-ops cron`, every minute from /etc/cron.d): the
//! heartbeat recorded, notifications swept, a due backup plan started in
//! the background (one at a time, none in maintenance mode), the
//! binary-log follower kept running (and a copy taken where its log has a
//! gap), then the running operations' scheduler
//! ([`crate::runner::scheduler`]).

use anyhow::Result;

use crate::background::{self, Job};
use crate::config::Config;
use crate::db::lock::{self, LockKind};
use crate::db::{account, health, Db};
use crate::engine;
use crate::health::log::Follow;
use crate::health::notify;
use crate::runner::scheduler::{self, TickReport};

/// What one tick did.
#[derive(Debug, Default)]
pub struct CronReport {
    /// The backup plan started, if one was due.
    pub plan_started: Option<u64>,
    /// The binary-log follower was started (it was not running).
    pub follower_started: bool,
    /// A copy was started to close a gap in the binary log.
    pub gap_copy_started: bool,
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
    if !config.maintenance() {
        match keep_following(config, db, &mut report) {
            Ok(()) => {}
            Err(e) => log::error!("binary-log follower: {e:#}"),
        }
    }
    report.operations = scheduler::tick(config, db)?;
    Ok(report)
}

/// Starts the binary-log follower where it is wanted and not running, and
/// a copy where the log has a gap no copy has closed (restores to a second
/// cannot cross it).
fn keep_following(config: &Config, db: &mut Db, report: &mut CronReport) -> Result<()> {
    let wanted = match Follow::of(config) {
        Follow::Off => false,
        Follow::On => true,
        Follow::Auto => account::log_prerequisites(db)?.ready(),
    };
    if !wanted {
        return Ok(());
    }
    if !lock::is_held(db, LockKind::Follow)? {
        background::start(config, &Job::BackupFollow)?;
        report.follower_started = true;
    }
    let spool = engine::spool_dir(config, &db.name()?);
    let window = engine::log_window(db, &spool)?;
    if !window.gaps.is_empty() && report.plan_started.is_none() && !engine::busy(db)? {
        log::warn!("the binary log has a gap: taking a full copy to close it");
        background::start(
            config,
            &Job::BackupCreate {
                plan: None,
                storage: None,
            },
        )?;
        report.gap_copy_started = true;
    }
    Ok(())
}
