//! Backup jobs as the CLI and the panel run them: one backup or restore at
//! a time per database (a server-side named lock, so it holds across
//! processes and hosts), the catalog kept up to date with phase and
//! percent, and every outcome recorded with its reason.

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::archive::{self, Listing};
use super::dump::{self, DumpOptions, Phase};
use super::restore::{self, Behavior, RestoreOptions, RestoreReport};
use super::verify::{self, VerifyReport};
use crate::clock;
use crate::config::{Config, DbSource};
use crate::db::backups::{self, CopyRow};
use crate::db::{quote_ident, runstate, Db};
use crate::storage::local::LocalStorage;
use crate::storage::Storage;

/// Another backup or restore holds the lock. Callers branch on it.
#[derive(Debug)]
pub struct Busy;

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "another backup or restore is running")
    }
}

impl std::error::Error for Busy {}

/// The copy named does not exist. Callers branch on it.
#[derive(Debug)]
pub struct NoSuchCopy(pub String);

impl fmt::Display for NoSuchCopy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no copy `{}`", self.0)
    }
}

impl std::error::Error for NoSuchCopy {}

/// Backup settings from the configuration.
pub struct Settings {
    pub storage: LocalStorage,
    pub storage_name: String,
    pub dump: DumpOptions,
    pub restore_threads: usize,
}

impl Settings {
    pub fn from_config(config: &Config) -> Settings {
        let dir = config
            .value("BackupDir")
            .unwrap_or("var/billmgr-ops/backup");
        let dir = if dir.starts_with('/') {
            PathBuf::from(dir)
        } else {
            config.mgrdir.join(dir)
        };
        let number = |key: &str, default: u64| {
            config
                .value(key)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        let list = |key: &str, default: &str| -> Vec<String> {
            config
                .value(key)
                .unwrap_or(default)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        let files = list("BackupFiles", "etc")
            .into_iter()
            .map(|p| {
                if p.starts_with('/') {
                    PathBuf::from(p)
                } else {
                    config.mgrdir.join(p)
                }
            })
            .collect();
        let threads = number("BackupThreads", 2).clamp(1, 32) as usize;
        Settings {
            storage_name: format!("local:{}", dir.display()),
            storage: LocalStorage::new(dir),
            dump: DumpOptions {
                threads,
                compression_level: number("BackupCompression", 3).clamp(1, 19) as i32,
                exclude_tables: list("BackupExcludeTables", ""),
                files,
                lock_timeout: number("BackupLockTimeout", 5),
                ..DumpOptions::default()
            },
            restore_threads: threads,
        }
    }
}

fn lock_name(db: &mut Db) -> Result<String> {
    let name = format!("billmgrops.backup.{}", db.name()?);
    Ok(name.chars().take(64).collect())
}

/// Runs `work` holding the backup lock.
fn locked<T>(db: &mut Db, work: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
    let lock = lock_name(db)?;
    if !runstate::try_lock(db, &lock)? {
        return Err(Busy.into());
    }
    let result = work(db);
    runstate::release(db, &lock);
    result
}

/// A new copy's name: `billmgr-YYYYMMDD-HHMMSS` (UTC).
fn copy_name(now: i64) -> String {
    let t = clock::utc_datetime(now);
    format!(
        "billmgr-{}-{}",
        t[..10].replace('-', ""),
        t[11..].replace(':', "")
    )
}

/// Takes a copy now. Returns its catalog row.
pub fn take_copy(config: &Config, source: &DbSource, settings: &Settings) -> Result<CopyRow> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    locked(&mut db, |db| {
        let abandoned = backups::fail_abandoned(db)?;
        if abandoned > 0 {
            log::warn!("{abandoned} copies were left unfinished by a process that died");
        }
        settings.storage.clean_partials()?;
        let now = clock::now_unix();
        let mut name = copy_name(now);
        let mut n = 1;
        while backups::by_name(db, &name)?.is_some() {
            n += 1;
            name = format!("{}-{n}", copy_name(now));
        }
        let created = clock::utc_datetime(now);
        let id = backups::start(
            db,
            &name,
            &settings.storage_name,
            &created,
            &crate::runner::runner_id(),
        )?;
        let result = check_space(db, settings).and_then(|()| {
            let mut last = (Instant::now(), Phase::Snapshot);
            let mut report = |phase: Phase, percent: u32| {
                // Every change of phase, and the percent at most once a second.
                if phase != last.1 || last.0.elapsed() >= Duration::from_secs(1) || percent == 100 {
                    last = (Instant::now(), phase);
                    let phase = format!("{phase:?}").to_lowercase();
                    if let Err(e) = backups::progress(db, id, &phase, percent) {
                        log::warn!("{e:#}");
                    }
                }
            };
            dump::dump(
                source,
                config.db_connect_timeout,
                &settings.dump,
                &name,
                (&created, now as u64),
                &settings.storage,
                &mut report,
            )
        });
        match result {
            Ok(listing) => {
                let size = listing.archive.as_ref().map_or(0, |a| a.size);
                backups::succeed(db, id, size, listing.tables.len() as u64, listing.rows())?;
                drop_undo(db)?;
                log::info!(
                    "copy {name}: {} tables, {} rows, {size} bytes",
                    listing.tables.len(),
                    listing.rows()
                );
            }
            Err(e) => {
                log::error!("copy {name} failed: {e:#}");
                backups::fail(db, id, &format!("{e:#}"))?;
                return Err(e);
            }
        }
        backups::get(db, id)?.context("the copy vanished from the catalog")
    })
}

/// Refuses to start when the storage cannot hold the copy: the database's
/// size divided by 3 is a safe guess of a compressed copy (billing data
/// compresses about 3.7 times).
fn check_space(db: &mut Db, settings: &Settings) -> Result<()> {
    let database = db.name()?;
    let bytes: Option<u64> = db.conn().exec_first(
        "SELECT CAST(COALESCE(SUM(DATA_LENGTH), 0) AS UNSIGNED) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
        (&database,),
    )?;
    let needed = bytes.unwrap_or(0) / 3;
    if let Some(free) = settings.storage.free_space()? {
        anyhow::ensure!(
            free > needed,
            "not enough space on {}: {free} bytes free, a copy needs about {needed}",
            settings.storage.describe()
        );
    }
    Ok(())
}

/// The replaced tables of the last restore are kept until a backup succeeds.
fn drop_undo(db: &mut Db) -> Result<()> {
    let (_, undo) = restore::side_databases(&db.name()?);
    db.conn()
        .query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(&undo)))
        .context("failed to drop the previous restore's safety copy")
}

/// The listing of copy `name` from the storage.
pub fn read_listing(storage: &dyn Storage, name: &str) -> Result<Listing> {
    let mut data = Vec::new();
    storage
        .open(&archive::listing_object(name))
        .with_context(|| format!("no listing of copy `{name}` on {}", storage.describe()))?
        .read_to_end(&mut data)?;
    Listing::from_json(&data)
}

/// Finds a copy by catalog id or name.
pub fn find(db: &mut Db, copy: &str) -> Result<CopyRow> {
    let row = match copy.parse::<u64>() {
        Ok(id) => backups::get(db, id)?,
        Err(_) => backups::by_name(db, copy)?,
    };
    row.ok_or_else(|| NoSuchCopy(copy.to_string()).into())
}

/// Verifies a copy on its storage.
pub fn verify_copy(settings: &Settings, name: &str) -> Result<VerifyReport> {
    let listing = read_listing(&settings.storage, name)?;
    verify::verify(&settings.storage, &listing).with_context(|| format!("copy `{name}` is damaged"))
}

/// Restores a copy into the live database.
pub fn restore_copy(
    config: &Config,
    source: &DbSource,
    settings: &Settings,
    name: &str,
    behavior: Behavior,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<RestoreReport> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    locked(&mut db, |_| {
        let listing = read_listing(&settings.storage, name)?;
        restore::restore(
            source,
            config.db_connect_timeout,
            &settings.storage,
            &listing,
            &RestoreOptions {
                threads: settings.restore_threads,
                behavior,
            },
            progress,
        )
        .with_context(|| format!("restore of copy `{name}` failed"))
    })
}

/// Deletes a copy from the catalog and, when asked, from its storage.
pub fn delete_copy(
    db: &mut Db,
    settings: &Settings,
    row: &CopyRow,
    clean_storage: bool,
) -> Result<()> {
    if clean_storage {
        settings
            .storage
            .remove(&archive::archive_object(&row.name))?;
        settings
            .storage
            .remove(&archive::listing_object(&row.name))?;
    }
    backups::delete(db, row.id)
}

/// Rebuilds the catalog from the listings on the storage; returns how many
/// copies were added.
pub fn rescan(db: &mut Db, settings: &Settings) -> Result<usize> {
    let mut added = 0;
    for object in settings.storage.list()? {
        let Some(name) = object.name.strip_suffix(".json") else {
            continue;
        };
        match read_listing(&settings.storage, name) {
            Ok(l) => {
                let size = l.archive.as_ref().map_or(0, |a| a.size);
                if backups::register(
                    db,
                    name,
                    &settings.storage_name,
                    &l.created,
                    size,
                    l.tables.len() as u64,
                    l.rows(),
                )? {
                    added += 1;
                }
            }
            Err(e) => log::warn!("`{}` is not a listing of a copy: {e:#}", object.name),
        }
    }
    Ok(added)
}
