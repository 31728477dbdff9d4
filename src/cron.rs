//! One cron tick (`billmgr-ops cron`, every minute from /etc/cron.d): the
//! heartbeat recorded, notifications swept, a due backup plan started in
//! the background (one at a time, none in maintenance mode), the
//! binary-log follower kept running (and a copy taken where its log has a
//! gap), a restore drill when one is due, then the running operations'
//! scheduler
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
    /// A restore drill was started (one was due).
    pub drill_started: bool,
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
    if !config.maintenance() && report.plan_started.is_none() && !report.gap_copy_started {
        match drill_due(config, db) {
            Ok(true) => {
                background::start(config, &Job::BackupDrill)?;
                report.drill_started = true;
            }
            Ok(false) => {}
            Err(e) => log::error!("restore drills: {e:#}"),
        }
    }
    report.operations = scheduler::tick(config, db)?;
    Ok(report)
}

/// Whether a restore drill is due: `BackupDrillDays` since the last one
/// began, a good copy to drill, and no backup or restore running.
fn drill_due(config: &Config, db: &mut Db) -> Result<bool> {
    let days: i64 = config
        .value("BackupDrillDays")
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    if days <= 0 || engine::busy(db)? {
        return Ok(false);
    }
    let has_copy = crate::db::backups::list(db)?
        .iter()
        .any(|c| c.state == crate::db::backups::CopyState::Ok);
    if !has_copy {
        return Ok(false);
    }
    let last = crate::db::drills::last(db)?;
    let now = health::server_clock(db)?;
    Ok(
        match last.and_then(|d| crate::clock::Timestamp::parse(&d.started)) {
            None => true,
            Some(started) => started.seconds_until(now) >= days * 86_400,
        },
    )
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
