//! The follower as a job: one per database (a named lock held for its
//! life), its spool under the panel's `var/`, and a second thread that
//! hands sealed segments to the storage (encrypted when copies are) and
//! forgets them once stored. While the storage is down the spool grows,
//! up to its limit, and drains when the storage is back.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use super::super::binlog::follow::{self, FollowOptions};
use super::super::binlog::segment::{SegmentInfo, MAX_INFO};
use super::super::binlog::spool::{self, Spool};
use super::super::crypt::{CopyKey, Sink};
use super::super::settings::Settings;
use crate::config::{Config, DbSource};
use crate::db::lock::{LockKind, NamedLock};
use crate::db::Db;
use crate::storage::{self, Counted, Storage};

/// The follower is running elsewhere (its lock is held).
#[derive(Debug, thiserror::Error)]
#[error("the binary log of this database is already followed by another process")]
pub struct AlreadyFollowed;

/// The spool of `database`: `var/billmgr-ops/binlog/<database>` below the
/// panel's directory.
pub fn spool_dir(config: &Config, database: &str) -> PathBuf {
    config
        .mgrdir
        .join("var/billmgr-ops/binlog")
        .join(storage_safe(database))
}

fn storage_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Follows the billing database's binary log until `stop` is set.
pub fn follow_log(
    config: &Config,
    source: &DbSource,
    settings: &Settings,
    opts: &FollowOptions,
    stop: &AtomicBool,
) -> Result<()> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    let database = db.name()?;
    let Some(_lock) = NamedLock::try_take(&mut db, LockKind::Follow)? else {
        return Err(AlreadyFollowed.into());
    };
    let dir = spool_dir(config, &database);
    let mut spool = Spool::open(&dir)?;
    let key = match &settings.passphrase {
        Some(p) => {
            let key = CopyKey::generate();
            let sealed = hex::encode(key.seal(p)?);
            Some((key, sealed))
        }
        None => None,
    };
    let storage = settings.storage.as_ref();
    let stored_wake = AtomicBool::new(false);
    std::thread::scope(|scope| -> Result<()> {
        let uploader = scope.spawn(|| {
            let mut quiet = Duration::from_millis(200);
            loop {
                let done = stop.load(Ordering::Relaxed);
                match store_sealed(&dir, storage, key.as_ref()) {
                    Ok(_) => quiet = Duration::from_millis(200),
                    Err(e) => {
                        log::warn!("log segments wait in the spool: {e:#}");
                        quiet = (quiet * 2).min(Duration::from_secs(30));
                    }
                }
                if done {
                    break;
                }
                let mut slept = Duration::ZERO;
                while slept < quiet && !stop.load(Ordering::Relaxed) {
                    if stored_wake.swap(false, Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                    slept += Duration::from_millis(50);
                }
            }
        });
        let stopped = || stop.load(Ordering::Relaxed);
        let result = follow::follow(source, &mut spool, opts, &stopped, &mut |_| {
            stored_wake.store(true, Ordering::Relaxed);
            Ok(())
        });
        stop.store(true, Ordering::Relaxed);
        let _ = uploader.join();
        result
    })
}

/// Stores every sealed segment of the spool in `dir`; returns how many.
pub fn store_sealed(
    dir: &std::path::Path,
    storage: &dyn Storage,
    key: Option<&(CopyKey, String)>,
) -> Result<usize> {
    let mut count = 0;
    for (mut info, path) in spool::sealed(dir)? {
        info.key = key.map(|(_, sealed)| sealed.clone());
        store(storage, &mut info, &path, key.map(|(k, _)| k))
            .with_context(|| format!("cannot store {} on {}", info.name(), storage.describe()))?;
        spool::forget(dir, &info)?;
        count += 1;
    }
    Ok(count)
}

/// One segment to the storage: its events, then its description (so a
/// description always has its events). A segment already there with the
/// same events is not stored twice; one with other events under the same
/// name is never overwritten.
fn store(
    storage: &dyn Storage,
    info: &mut SegmentInfo,
    path: &std::path::Path,
    key: Option<&CopyKey>,
) -> Result<()> {
    let idx = format!("{}.idx", info.name());
    match storage.size(&idx) {
        Ok(size) => {
            anyhow::ensure!(size <= MAX_INFO, "{idx} on the storage is {size} bytes");
            let there = SegmentInfo::from_json(&idx, &storage.read_range(&idx, 0, size)?)?;
            anyhow::ensure!(
                there.sha256 == info.sha256,
                "{idx} is on the storage with other events: it is left as it is"
            );
            return Ok(());
        }
        Err(e) if storage::is_not_found(&e) => {}
        Err(e) => return Err(e),
    }
    let object = info.object();
    let (out, tally) = Counted::new(storage.create(&object)?);
    let mut sink = Sink::new(Box::new(out), key)?;
    let mut file = std::fs::File::open(path)?;
    std::io::copy(&mut file, &mut sink)?;
    sink.commit()?;
    storage::check_stored(storage, &object, &tally)?;
    info.stored_size = tally.written().0;
    let mut w = storage.create(&idx)?;
    w.write_all(&serde_json::to_vec_pretty(&info)?)?;
    w.commit()?;
    Ok(())
}
