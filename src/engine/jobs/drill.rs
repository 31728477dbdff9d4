//! Restore drills: a copy (or, where the log is followed, the database
//! at the last second the stored log reaches) restored into staged
//! tables that are never applied, every chunk checked against the copy's
//! listing, every table loaded with exactly the rows the copy recorded,
//! every definition checked, the log replayed; how long it took and what
//! came of it kept as evidence (`billmgrops_drill`), a failure an alert.

use std::time::Instant;

use anyhow::{Context, Result};
use mysql::Conn;

use super::super::settings::Settings;
use super::pitr::{self, list_segments};
use super::restore::{restore_named, Then};
use crate::clock;
use crate::config::{Config, DbSource};
use crate::db::backups::{self, CopyState};
use crate::db::drills::{self, Outcome};
use crate::db::Db;

/// What a drill proved.
#[derive(Debug, Default)]
pub struct DrillReport {
    pub copy: String,
    /// The second restored to, UTC seconds; `None`: the copy itself.
    pub to: Option<i64>,
    pub seconds: f64,
    pub rows: u64,
    pub transactions: u64,
}

/// What a drill restores.
#[derive(Clone, Debug)]
pub enum DrillOf {
    /// A copy by name.
    Copy(String),
    /// The database at a second (UTC seconds).
    Second(i64),
    /// The last second the stored log reaches, or the newest good copy
    /// where the log is not followed.
    Newest,
}

/// Runs a drill of `what`, recording it; the live database is never
/// touched.
pub fn drill(
    config: &Config,
    source: &DbSource,
    log: &Settings,
    what: DrillOf,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<DrillReport> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    let id = drills::begin(&mut db)?;
    let started = Instant::now();
    let result = run(config, source, log, &mut db, what, progress);
    let seconds = started.elapsed().as_secs_f64();
    let (report, failure) = match &result {
        Ok(r) => (r, None),
        Err(e) => (&DrillReport::default(), Some(format!("{e:#}"))),
    };
    let to_time = report.to.map(clock::utc_datetime);
    drills::finish(
        &mut db,
        id,
        &Outcome {
            copy: &report.copy,
            to_time: to_time.as_deref(),
            seconds,
            rows: report.rows,
            transactions: report.transactions,
            failure: failure.as_deref(),
        },
    )?;
    match &failure {
        Some(f) => log::error!("restore drill failed after {seconds:.1} s: {f}"),
        None => log::info!(
            "restore drill of copy {}{}: {} rows, {} transactions replayed, {seconds:.1} s",
            report.copy,
            to_time.map(|t| format!(" to {t} UTC")).unwrap_or_default(),
            report.rows,
            report.transactions
        ),
    }
    result.map(|r| DrillReport { seconds, ..r })
}

fn run(
    config: &Config,
    source: &DbSource,
    log: &Settings,
    db: &mut Db,
    what: DrillOf,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<DrillReport> {
    let to = match what {
        DrillOf::Second(t) => Some(t),
        DrillOf::Copy(_) => None,
        DrillOf::Newest => {
            let dir = super::follow::spool_dir(config, &db.name()?);
            super::window::log_window(db, &dir)?.to
        }
    };
    if let Some(to) = to {
        let segments = list_segments(log.storage.as_ref())?;
        let point = pitr::restore_staged(config, source, db, log, &segments, to, progress);
        if let (Err(e), DrillOf::Newest) = (&point, &what) {
            if e.downcast_ref::<super::pitr::NotRecoverable>().is_some() {
                log::warn!("a drill to the end of the log is not possible ({e:#}); drilling the newest copy");
                return copy_drill(config, source, db, None, progress);
            }
        }
        let (copy, rows, replayed) = point?;
        verify_whole(config, db, &copy, progress)?;
        return Ok(DrillReport {
            copy,
            to: Some(to),
            seconds: 0.0,
            rows,
            transactions: replayed.transactions,
        });
    }
    let name = match what {
        DrillOf::Copy(name) => Some(name),
        _ => None,
    };
    copy_drill(config, source, db, name, progress)
}

/// Every byte of copy `name` checked against its listing (what a restore
/// does not read: the saved files, the archive's own hash).
fn verify_whole(
    config: &Config,
    db: &mut Db,
    name: &str,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<()> {
    let row = super::catalog::find(db, name)?;
    let settings = Settings::for_copy(config, db, &row)?;
    super::restore::verify_copy(&settings, name, progress)?;
    Ok(())
}

/// A copy verified, staged and dropped.
fn copy_drill(
    config: &Config,
    source: &DbSource,
    db: &mut Db,
    name: Option<String>,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<DrillReport> {
    let row = match name {
        Some(name) => super::catalog::find(db, &name)?,
        None => backups::list(db)?
            .into_iter()
            .find(|c| c.state == CopyState::Ok)
            .context("there is no good copy to drill")?,
    };
    verify_whole(config, db, &row.name, progress)?;
    let settings = Settings::for_copy(config, db, &row)?;
    let mut checked = |_: &mut Conn, _: &dyn Fn(&str) -> Option<String>| Ok(());
    let report = restore_named(
        config,
        source,
        &settings,
        &row.name,
        Then::Discard,
        progress,
        Some(&mut checked),
    )?;
    Ok(DrillReport {
        copy: row.name,
        to: None,
        seconds: 0.0,
        rows: report.rows,
        transactions: 0,
    })
}
