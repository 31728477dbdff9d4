//! `billmgr-ops backup follow`, `backup restore --to`, `backup
//! restore-object-at` and `backup drill`: the binary-log follower, the
//! restores to a second and the restore drills, thin glue to
//! `engine::jobs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;

use super::open_db;
use crate::clock::Timestamp;
use crate::config::{Config, DbSource};
use crate::engine::{self, Behavior, DrillOf, FollowOptions, Settings, Wanted};
use crate::progress::Progress;

#[derive(Args, Debug)]
pub struct FollowArgs {
    /// Seal a segment for the storage once it is this many seconds old
    /// (default: BinlogSegmentSeconds of the config file, 60).
    #[arg(long)]
    pub segment_seconds: Option<u64>,
    /// Seal a segment once it holds this many MiB.
    #[arg(long, default_value_t = 64)]
    pub segment_mib: u64,
    /// MiB the spool may hold while the storage is down.
    #[arg(long, default_value_t = 4096)]
    pub spool_mib: u64,
    /// This follower's server id on the database server (unique among
    /// its replicas).
    #[arg(long, default_value_t = 0x6f70_0001)]
    pub replica_id: u32,
    /// Stop after this many seconds (default: run until killed; a kill,
    /// even -9, loses nothing).
    #[arg(long)]
    pub stop_after: Option<u64>,
}

/// Follows the billing database's binary log to the default storage.
pub fn follow(config: &Config, source: &DbSource, args: &FollowArgs) -> Result<()> {
    let settings = Settings::resolve(config, &mut open_db(config)?, None, None)?;
    let segment_seconds = args.segment_seconds.unwrap_or_else(|| {
        config
            .value("BinlogSegmentSeconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(60)
    });
    let opts = FollowOptions {
        replica_id: args.replica_id,
        segment_age: Duration::from_secs(segment_seconds.max(1)),
        segment_bytes: args.segment_mib.max(1) << 20,
        spool_limit: args.spool_mib.max(16) << 20,
        ..FollowOptions::default()
    };
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        if let Some(secs) = args.stop_after {
            let stop = &stop;
            scope.spawn(move || {
                let until = Instant::now() + Duration::from_secs(secs);
                while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                stop.store(true, Ordering::Relaxed);
            });
        }
        let result = engine::follow_log(config, source, &settings, &opts, &stop);
        stop.store(true, Ordering::Relaxed);
        result
    })
}

/// A second as the CLI takes it: `YYYY-MM-DD HH:MM:SS`, UTC.
fn second(text: &str) -> Result<Timestamp> {
    Timestamp::parse(text)
        .filter(|_| text.len() == 19)
        .ok_or_else(|| anyhow::anyhow!("a second is YYYY-MM-DD HH:MM:SS (UTC), not `{text}`"))
}

/// Restores the billing database as it was at `to` (UTC).
pub fn restore_to(config: &Config, source: &DbSource, to: &str, how: Behavior) -> Result<()> {
    let at = second(to)?;
    let log = Settings::resolve(config, &mut open_db(config)?, None, None)?;
    let mut bar = Progress::new("restore");
    let result = engine::restore_to_time(config, source, &log, at.unix(), how, &mut |p, n| {
        bar.update(p, n)
    });
    bar.finish();
    let r = result?;
    eprintln!(
        "restored the database as at {to} UTC: copy {} ({} tables, {} rows), then {} transactions ({} rows) from {} log segments",
        r.copy, r.restore.tables, r.restore.rows, r.replayed.transactions, r.replayed.rows, r.segments
    );
    if !r.replayed.skipped_tables.is_empty() {
        eprintln!(
            "not in the copy, so not replayed: {}",
            r.replayed
                .skipped_tables
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if let Some(undo) = r.restore.undo {
        eprintln!(
            "the replaced tables are kept as `{undo}` until the next successful backup (`backup undo` brings them back)"
        );
    }
    Ok(())
}

/// Restores single objects as they were at `to` (UTC).
pub fn restore_objects_at(
    config: &Config,
    source: &DbSource,
    to: &str,
    kind: &str,
    ids: &[i64],
    behavior: Behavior,
) -> Result<()> {
    let at = second(to)?;
    let log = Settings::resolve(config, &mut open_db(config)?, None, None)?;
    let mut bar = Progress::new("restore-object");
    let wanted = Wanted {
        kind,
        ids,
        behavior,
    };
    let result =
        engine::restore_objects_at(config, source, &log, at.unix(), wanted, &mut |p, n| {
            bar.update(p, n)
        });
    bar.finish();
    let (point, objects) = result?;
    for (table, n) in &objects.rows {
        eprintln!("{table}: {n} rows");
    }
    eprintln!(
        "{kind} {ids:?} as at {to} UTC: copy {}, then {} transactions from {} log segments; nothing else was changed",
        point.copy, point.replayed.transactions, point.segments
    );
    Ok(())
}

/// A restore drill; exit status 1 when it fails.
pub fn drill(
    config: &Config,
    source: &DbSource,
    copy: Option<String>,
    to: Option<String>,
) -> Result<()> {
    let what = match (copy, to) {
        (Some(copy), _) => DrillOf::Copy(copy),
        (None, Some(to)) => DrillOf::Second(second(&to)?.unix()),
        (None, None) => DrillOf::Newest,
    };
    let log = Settings::resolve(config, &mut open_db(config)?, None, None)?;
    let mut bar = Progress::new("drill");
    let result = engine::drill(config, source, &log, what, &mut |p, n| bar.update(p, n));
    bar.finish();
    let r = result?;
    eprintln!(
        "drill passed: copy {}{} restored in {:.1} s ({} rows, {} transactions replayed); the live database was not touched",
        r.copy,
        r.to
            .map(|t| format!(" to {} UTC", crate::clock::utc_datetime(t)))
            .unwrap_or_default(),
        r.seconds,
        r.rows,
        r.transactions
    );
    Ok(())
}
