//! Backup jobs as the CLI and the panel run them: one backup or restore at
//! a time per database (a server-side named lock, so it holds across
//! processes and hosts), the catalog kept up to date with phase and
//! percent, and every outcome recorded with its reason.

use std::fmt;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::archive::{self, Copy};
use super::crypt::{self, CopyKey};
use super::dump::{self, DumpOptions, Phase};
use super::restore::{self, Behavior, RestoreOptions, RestoreReport};
use super::retention::{self, Kept, Limits};
use super::schedule::Schedule;
use super::verify::{self, VerifyReport};
use crate::clock;
use crate::config::{Config, DbSource};
use crate::db::backupconf::{self, PlanRow, StorageRow};
use crate::db::backups::{self, CopyRow};
use crate::db::{quote_ident, runstate, Db};
use crate::storage::local::LocalStorage;
use crate::storage::params::Kind;
use crate::storage::Storage;
use age::secrecy::ExposeSecret;
use age::secrecy::SecretString;

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

/// Everything a job needs to know: where copies go and how they are taken.
pub struct Settings {
    /// The panel's directory (relative storage paths, the sealing key).
    pub mgrdir: PathBuf,
    pub storage: Box<dyn Storage>,
    /// The storage's id in `billmgrops_storage`; `None` for the default
    /// directory of the config file.
    pub storage_id: Option<u64>,
    pub storage_name: String,
    pub plan: Option<PlanRow>,
    pub dump: DumpOptions,
    pub restore_threads: usize,
    /// Declared relations (BackupRelations) for per-object restore.
    pub relations: Vec<(String, String, String, String)>,
    /// Copies are encrypted with it when set.
    pub passphrase: Option<SecretString>,
    /// Keep the replaced tables of the last restore after later backups
    /// (default: drop them at the next successful backup).
    pub keep_undo: bool,
}

/// A configured storage, opened.
pub fn open_storage(config: &Config, row: &StorageRow) -> Result<Box<dyn Storage>> {
    open_storage_in(&config.mgrdir, row)
}

/// [`open_storage`] for the panel in `mgrdir`.
fn open_storage_in(mgrdir: &std::path::Path, row: &StorageRow) -> Result<Box<dyn Storage>> {
    if row.params.kind == Kind::Local {
        let path = &row.params.path;
        let dir = if path.starts_with('/') {
            PathBuf::from(path)
        } else {
            mgrdir.join(path)
        };
        return Ok(Box::new(LocalStorage::new(dir)));
    }
    let secret = match &row.sealed_secret {
        Some(sealed) => Some(
            crypt::open_secret(mgrdir, sealed)
                .with_context(|| format!("cannot unseal the secret of storage `{}`", row.name))?,
        ),
        None => None,
    };
    crate::storage::remote::open(&row.params, secret.as_ref().map(|s| s.expose_secret()))
        .with_context(|| format!("storage `{}`", row.name))
}

fn absolute(config: &Config, path: &str) -> PathBuf {
    if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        config.mgrdir.join(path)
    }
}

impl Settings {
    /// From the config file alone: the default storage, default options.
    pub fn from_config(config: &Config) -> Settings {
        Settings::build(config, &|key| config.value(key).map(str::to_string))
    }

    fn build(config: &Config, get: &dyn Fn(&str) -> Option<String>) -> Settings {
        let dir = get("BackupDir").unwrap_or_else(|| "var/billmgr-ops/backup".into());
        let dir = absolute(config, &dir);
        let number = |key: &str, default: u64| {
            get(key)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(default)
        };
        let list = |key: &str, default: &str| -> Vec<String> {
            get(key)
                .unwrap_or_else(|| default.into())
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        let files = list("BackupFiles", "etc")
            .iter()
            .map(|p| absolute(config, p))
            .collect();
        let threads = number("BackupThreads", 2).clamp(1, 32) as usize;
        Settings {
            mgrdir: config.mgrdir.clone(),
            storage_name: "default".into(),
            storage_id: None,
            storage: Box::new(LocalStorage::new(dir)),
            plan: None,
            dump: DumpOptions {
                threads,
                compression_level: number("BackupCompression", 3).clamp(1, 19) as i32,
                exclude_tables: list("BackupExcludeTables", ""),
                files,
                lock_timeout: number("BackupLockTimeout", 5),
                ..DumpOptions::default()
            },
            restore_threads: threads,
            relations: get("BackupRelations")
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|r| {
                    let parsed = r.split_once('=').and_then(|(child, parent)| {
                        let (t, c) = child.split_once('.')?;
                        let (pt, pc) = parent.split_once('.')?;
                        Some((t.to_string(), c.to_string(), pt.to_string(), pc.to_string()))
                    });
                    if parsed.is_none() {
                        log::warn!("BackupRelations: `{r}` is not table.column=table.column");
                    }
                    parsed
                })
                .collect(),
            passphrase: config.backup_passphrase.clone().map(SecretString::from),
            keep_undo: false,
        }
    }

    /// The config file, overridden by the module settings saved in the
    /// database, then by a plan (its storage, tables and files) or a storage.
    pub fn resolve(
        config: &Config,
        db: &mut Db,
        plan: Option<u64>,
        storage: Option<u64>,
    ) -> Result<Settings> {
        let mut saved = std::collections::HashMap::new();
        for key in SETTING_KEYS {
            if let Some(v) = backupconf::setting(db, key)? {
                saved.insert(*key, v);
            }
        }
        let mut settings = Settings::build(config, &|key| {
            saved
                .get(key)
                .cloned()
                .or_else(|| config.value(key).map(str::to_string))
        });
        let plan = match plan {
            Some(id) => Some(backupconf::plan(db, id)?.ok_or(NoSuchObject("plan", id))?),
            None => None,
        };
        let default_storage = saved
            .get("BackupDefaultStorage")
            .and_then(|v| v.parse::<u64>().ok());
        let storage = storage
            .or(plan.as_ref().map(|p| p.storage))
            .or(default_storage);
        if let Some(id) = storage {
            let row = backupconf::storage(db, id)?.ok_or(NoSuchObject("storage", id))?;
            settings.storage = open_storage(config, &row)?;
            settings.storage_id = Some(row.id);
            settings.storage_name = row.name;
        }
        if let Some(p) = &plan {
            if !p.exclude_tables.trim().is_empty() {
                settings.dump.exclude_tables = p
                    .exclude_tables
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
            }
            if !p.files.trim().is_empty() {
                settings.dump.files = p
                    .files
                    .split_whitespace()
                    .map(|f| absolute(config, f))
                    .collect();
            }
        }
        settings.plan = plan;
        settings.keep_undo = saved.get("BackupKeepUndo").is_some_and(|v| v == "on");
        if settings.passphrase.is_none() {
            if let Some(sealed) = backupconf::setting(db, "BackupPassphrase")? {
                settings.passphrase = Some(crypt::open_secret(&config.mgrdir, &sealed)?);
            }
        }
        Ok(settings)
    }

    /// The settings to reach an existing copy (its storage).
    pub fn for_copy(config: &Config, db: &mut Db, row: &CopyRow) -> Result<Settings> {
        Settings::resolve(config, db, None, row.storage_id)
    }
}

/// Module settings that can be saved in the database (billmgr.backup.settings).
pub const SETTING_KEYS: &[&str] = &[
    "BackupDir",
    "BackupThreads",
    "BackupCompression",
    "BackupFiles",
    "BackupExcludeTables",
    "BackupLockTimeout",
    "BackupDefaultStorage",
    "BackupKeepUndo",
];

/// A plan or storage id that does not exist. Callers branch on it.
#[derive(Debug)]
pub struct NoSuchObject(pub &'static str, pub u64);

impl fmt::Display for NoSuchObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no {} {}", self.0, self.1)
    }
}

impl std::error::Error for NoSuchObject {}

fn lock_name(db: &mut Db) -> Result<String> {
    let name = format!("billmgrops.backup.{}", db.name()?);
    Ok(name.chars().take(64).collect())
}

/// Runs `work` holding the backup lock.
/// Runs `work` holding the one-job-at-a-time lock ([`Busy`] otherwise).
pub(crate) fn with_job_lock<T>(db: &mut Db, work: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
    locked(db, work)
}

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
pub fn take_copy(
    config: &Config,
    source: &DbSource,
    settings: &Settings,
    on_progress: &mut dyn FnMut(&str, u32),
) -> Result<CopyRow> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    locked(&mut db, |db| {
        take_copy_locked(config, db, source, None, settings, on_progress)
    })
}

/// Takes a copy of `dump_source` (the billing database, or an import's
/// scratch database) named `name` (default: by the time), recorded in the
/// catalog of `db`, whose job lock the caller holds.
pub(crate) fn take_copy_locked(
    config: &Config,
    db: &mut Db,
    dump_source: &DbSource,
    name: Option<&str>,
    settings: &Settings,
    on_progress: &mut dyn FnMut(&str, u32),
) -> Result<CopyRow> {
    {
        let source = dump_source;
        // An import is not a backup of the live data: it keeps the safety
        // copy of the last restore.
        let importing = name.is_some();
        let abandoned = backups::fail_abandoned(db)?;
        if abandoned > 0 {
            log::warn!("{abandoned} copies were left unfinished by a process that died");
        }
        let now = clock::now_unix();
        let name = match name {
            Some(name) => name.to_string(),
            None => {
                let mut name = copy_name(now);
                let mut n = 1;
                while backups::by_name(db, &name)?.is_some() {
                    n += 1;
                    name = format!("{}-{n}", copy_name(now));
                }
                name
            }
        };
        let created = clock::utc_datetime(now);
        let id = backups::start(
            db,
            &name,
            &settings.storage_name,
            &created,
            &crate::runner::runner_id(),
        )?;
        // An encrypted copy's own key is stored first, sealed with the
        // passphrase; without the listing beside it, it is no copy yet.
        let key = settings.passphrase.as_ref().map(|_| CopyKey::generate());
        backups::set_origin(
            db,
            id,
            settings.plan.as_ref().map(|p| p.id),
            settings.storage_id,
            key.is_some(),
        )?;
        // A plan counts as run when its copy starts: a failing plan is
        // reported in the catalog, not retried every minute.
        if let Some(plan) = &settings.plan {
            backupconf::mark_plan_run(db, plan.id)?;
        }
        // An unreachable storage fails here, recorded in the copy's state.
        let result = settings
            .storage
            .clean_partials()
            .and_then(|_| files_within_reach(config, settings))
            .and_then(|()| check_space(db, settings))
            .and_then(|()| match (&key, &settings.passphrase) {
                (Some(key), Some(passphrase)) => {
                    let mut w = settings.storage.create(&crypt::key_object(&name))?;
                    w.write_all(&key.seal(passphrase)?)?;
                    w.commit()
                }
                _ => Ok(()),
            })
            .and_then(|()| {
                let mut last = (Instant::now(), Phase::Snapshot);
                let mut report = |phase: Phase, percent: u32| {
                    on_progress(&format!("{phase:?}").to_lowercase(), percent);
                    // Every change of phase, and the percent at most once a second.
                    if phase != last.1
                        || last.0.elapsed() >= Duration::from_secs(1)
                        || percent == 100
                    {
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
                    &dump::Target {
                        name: &name,
                        created: (&created, now as u64),
                        storage: settings.storage.as_ref(),
                        key: key.as_ref(),
                    },
                    &mut report,
                )
            });
        match result {
            Ok(listing) => {
                let size = listing.archive.as_ref().map_or(0, |a| a.size);
                backups::succeed(db, id, size, listing.tables.len() as u64, listing.rows())?;
                index_objects(db, id, &listing);
                if !settings.keep_undo && !importing {
                    drop_undo(db)?;
                }
                log::info!(
                    "copy {name}: {} tables, {} rows, {size} bytes",
                    listing.tables.len(),
                    listing.rows()
                );
                if let Some(plan) = &settings.plan {
                    replicate_copy(config, db, settings, plan, id, &name, key.is_some())?;
                    apply_retention(db, settings, plan)?;
                }
            }
            Err(e) => {
                let _ = settings.storage.remove(&crypt::key_object(&name));
                log::error!("copy {name} failed: {e:#}");
                backups::fail(db, id, &format!("{e:#}"))?;
                return Err(e);
            }
        }
        backups::get(db, id)?.context("the copy vanished from the catalog")
    }
}

/// Indexes a good copy's objects for `backupdata`; a failure there costs
/// the copy nothing (it is logged, and a rescan indexes again).
pub(crate) fn index_objects(db: &mut Db, id: u64, listing: &archive::Listing) {
    match backups::index_objects(db, id, listing) {
        Ok(n) => log::debug!("copy {id}: {n} objects indexed"),
        Err(e) => log::warn!("copy {id}: its objects were not indexed: {e:#}"),
    }
}

/// Sends a copy stored on the plan's first storage to its further
/// storages: streamed from the first, checked like any write, the listing
/// last. A storage that fails is recorded with its reason; the copy stays
/// good on the others.
fn replicate_copy(
    config: &Config,
    db: &mut Db,
    settings: &Settings,
    plan: &PlanRow,
    id: u64,
    name: &str,
    encrypted: bool,
) -> Result<()> {
    let mut objects = Vec::new();
    if encrypted {
        objects.push(crypt::key_object(name));
    }
    objects.push(archive::archive_object(name, encrypted));
    objects.push(archive::listing_object(name, encrypted));
    for storage_id in backupconf::plan_extra_storages(db, plan.id)? {
        if Some(storage_id) == settings.storage_id {
            continue;
        }
        let mut place = backups::Place {
            storage_id,
            state: "running".into(),
            reason: String::new(),
        };
        backups::set_place(db, id, &place)?;
        let sent = (|| -> Result<()> {
            let row =
                backupconf::storage(db, storage_id)?.ok_or(NoSuchObject("storage", storage_id))?;
            let to = open_storage(config, &row)?;
            let done: Result<()> = objects.iter().try_for_each(|object| {
                crate::storage::replicate(settings.storage.as_ref(), to.as_ref(), object)
                    .map(|_| ())
            });
            if done.is_err() {
                for object in &objects {
                    let _ = to.remove(object);
                }
            }
            done.with_context(|| format!("storage `{}`", row.name))
        })();
        match sent {
            Ok(()) => place.state = "ok".into(),
            Err(e) => {
                log::error!("copy {name} was not sent to a further storage: {e:#}");
                place.state = "failed".into();
                place.reason = format!("{e:#}");
            }
        }
        backups::set_place(db, id, &place)?;
    }
    Ok(())
}

/// Deletes the plan's oldest good copies beyond its limits.
fn apply_retention(db: &mut Db, settings: &Settings, plan: &PlanRow) -> Result<()> {
    let limits = Limits {
        keep_count: plan.keep_count,
        keep_bytes: plan.keep_size_mib.map(|m| m.saturating_mul(1 << 20)),
    };
    if limits == Limits::default() {
        return Ok(());
    }
    let copies: Vec<CopyRow> = backups::list(db)?
        .into_iter()
        .filter(|c| c.state == "ok" && c.plan == Some(plan.id))
        .collect();
    let kept: Vec<Kept> = copies
        .iter()
        .map(|c| Kept {
            id: c.id,
            created: c.created.clone(),
            size: c.size,
        })
        .collect();
    for id in retention::to_delete(&kept, limits) {
        if let Some(row) = copies.iter().find(|c| c.id == id) {
            log::info!(
                "retention of plan `{}`: deleting copy {}",
                plan.name,
                row.name
            );
            delete_copy(db, settings, row, true)?;
        }
    }
    Ok(())
}

/// Refuses files outside the panel directory and `BackupFilesAllowed`
/// (a setting saved before that limit existed, or a config file's).
fn files_within_reach(config: &Config, settings: &Settings) -> Result<()> {
    for path in &settings.dump.files {
        anyhow::ensure!(
            config.file_root_of(path).is_some(),
            "`{}` is outside the directories whose files may be copied (the panel directory and BackupFilesAllowed in billmgr-ops.conf)",
            path.display()
        );
    }
    Ok(())
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
    let live = db.name()?;
    let (_, undo) = restore::side_databases(&live);
    for database in [undo, restore::next_undo_database(&live)] {
        db.conn()
            .query_drop(format!(
                "DROP DATABASE IF EXISTS {}",
                quote_ident(&database)
            ))
            .context("failed to drop the previous restore's safety copy")?;
    }
    Ok(())
}

/// Opens copy `name` on the settings' storage: an encrypted copy needs the
/// passphrase (module settings or BILLMGR_OPS_PASSPHRASE) to open its key.
pub fn open_copy<'a>(settings: &'a Settings, name: &str) -> Result<Copy<'a>> {
    let storage = settings.storage.as_ref();
    let key = match storage.size(&crypt::key_object(name)) {
        Err(_) => None,
        Ok(_) => {
            let passphrase = settings.passphrase.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "copy `{name}` is encrypted: set the passphrase in the backup settings or in BILLMGR_OPS_PASSPHRASE"
                )
            })?;
            let mut sealed = Vec::new();
            // A key file is a few hundred bytes; a forged one is not read
            // past 64 KiB.
            storage
                .open(&crypt::key_object(name))?
                .take(64 << 10)
                .read_to_end(&mut sealed)?;
            Some(
                CopyKey::open(&sealed, passphrase)
                    .with_context(|| format!("cannot open copy `{name}`"))?,
            )
        }
    };
    Ok(Copy {
        storage,
        name: name.to_string(),
        key,
    })
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
pub fn verify_copy(
    settings: &Settings,
    name: &str,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<VerifyReport> {
    let copy = open_copy(settings, name)?;
    let listing = copy.listing()?;
    verify::verify_with_progress(&copy, &listing, progress)
        .with_context(|| format!("copy `{name}` is damaged"))
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
    locked(&mut db, |db| {
        backups::fail_abandoned(db)?;
        // The copy's catalog row shows the restore's phase and outcome.
        let id = backups::by_name(db, name)?.map(|r| r.id);
        let mark = |db: &mut Db, state: &str, phase: &str, percent: u32, reason: &str| {
            if let Some(id) = id {
                if let Err(e) = backups::restore_progress(db, id, state, phase, percent, reason) {
                    log::warn!("{e:#}");
                }
            }
        };
        mark(db, "running", "stage", 0, "");
        let mut last = (Instant::now(), String::new());
        let mut report = |phase: &str, percent: u32| {
            progress(phase, percent);
            if phase != last.1 || last.0.elapsed() >= Duration::from_secs(1) {
                last = (Instant::now(), phase.to_string());
                mark(db, "running", phase, percent, "");
            }
        };
        let result = open_copy(settings, name).and_then(|copy| {
            let listing = copy.listing()?;
            restore::restore(
                source,
                config.db_connect_timeout,
                &copy,
                &listing,
                &RestoreOptions {
                    threads: settings.restore_threads,
                    behavior,
                },
                &mut report,
            )
        });
        match result {
            Ok(report) => {
                mark(db, "ok", "", 100, "");
                Ok(report)
            }
            Err(e) => {
                let e = e.context(format!("restore of copy `{name}` failed"));
                log::error!("{e:#}");
                mark(db, "failed", "", 0, &format!("{e:#}"));
                Err(e)
            }
        }
    })
}

/// Undoes the last `edit` restore (see [`restore::undo`]).
pub fn undo_restore(config: &Config, source: &DbSource) -> Result<usize> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    locked(&mut db, |_| {
        restore::undo(source, config.db_connect_timeout)
    })
}

/// Restores single objects of a copy (see `object_restore`), as a job:
/// one at a time with backups and full restores.
#[allow(clippy::too_many_arguments)]
pub fn restore_objects(
    config: &Config,
    source: &DbSource,
    settings: &Settings,
    name: &str,
    kind: &str,
    ids: &[i64],
    behavior: Behavior,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<super::object_restore::ObjectReport> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    locked(&mut db, |_| {
        let copy = open_copy(settings, name)?;
        let mut listing = copy.listing()?;
        // Declared relations count as foreign keys (their chunks carry no
        // ranges, so all of that table's chunks are read).
        for (child, column, parent, parent_column) in &settings.relations {
            if let Some(t) = listing.tables.iter_mut().find(|t| &t.name == child) {
                t.foreign_keys.push(super::archive::listing::ForeignKey {
                    columns: vec![column.clone()],
                    ref_table: parent.clone(),
                    ref_columns: vec![parent_column.clone()],
                });
            }
        }
        let report = super::object_restore::restore_objects(
            source,
            config.db_connect_timeout,
            &copy,
            &listing,
            kind,
            ids,
            behavior,
            progress,
        )?;
        log::info!(
            "{kind} {ids:?} restored from copy {name} ({behavior:?}): {:?}, {} of {} archive bytes read",
            report.rows,
            report.bytes_read,
            report.archive_size
        );
        Ok(report)
    })
}

/// Restores saved files of a copy (see `file_restore`), as a job.
pub fn restore_files(
    config: &Config,
    source: &DbSource,
    settings: &Settings,
    name: &str,
    paths: &[String],
    behavior: Behavior,
) -> Result<super::file_restore::FilesReport> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    locked(&mut db, |_| {
        let copy = open_copy(settings, name)?;
        let listing = copy.listing()?;
        let report = super::file_restore::restore_files(
            &copy,
            &listing,
            &config.file_roots,
            paths,
            behavior,
        )?;
        log::info!(
            "files restored from copy {name} ({behavior:?}): written {:?}, kept {:?}",
            report.written,
            report.kept
        );
        Ok(report)
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
        let objects = [
            archive::listing_object(&row.name, false),
            archive::listing_object(&row.name, true),
            archive::archive_object(&row.name, false),
            archive::archive_object(&row.name, true),
            crypt::key_object(&row.name),
        ];
        for object in &objects {
            settings.storage.remove(object)?;
        }
        // A failed place was cleaned when it failed.
        for place in backups::places(db, row.id)?
            .into_iter()
            .filter(|p| p.state != "failed")
        {
            // A storage removed since keeps what it has.
            let Some(storage) = backupconf::storage(db, place.storage_id)? else {
                continue;
            };
            let to = open_storage_in(&settings.mgrdir, &storage)?;
            for object in &objects {
                to.remove(object)?;
            }
        }
    }
    backups::delete(db, row.id)
}

/// Rebuilds the catalog from the listings on the storage; returns how many
/// copies were added. `progress` hears phase `read` with the percent of
/// the storage's listings read.
pub fn rescan(
    db: &mut Db,
    settings: &Settings,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<usize> {
    let mut added = 0;
    let objects = settings.storage.list()?;
    let listings = objects
        .iter()
        .filter(|o| o.name.ends_with(".json") || o.name.ends_with(".json.age"))
        .count();
    let mut read = 0;
    progress("read", 0);
    for object in objects {
        let Some(name) = object
            .name
            .strip_suffix(".json")
            .or_else(|| object.name.strip_suffix(".json.age"))
        else {
            continue;
        };
        let found = open_copy(settings, name).and_then(|c| {
            let mut l = c.listing()?;
            archive::read_objects(&c, &mut l)?;
            Ok((l, c.key.is_some()))
        });
        match found {
            Ok((l, encrypted)) => {
                let found = backups::Found {
                    name,
                    storage: &settings.storage_name,
                    storage_id: settings.storage_id,
                    created: &l.created,
                    size: l.archive.as_ref().map_or(0, |a| a.size),
                    tables: l.tables.len() as u64,
                    rows: l.rows(),
                    encrypted,
                };
                if backups::register(db, &found)? {
                    added += 1;
                    if let Some(row) = backups::by_name(db, name)? {
                        index_objects(db, row.id, &l);
                    }
                }
            }
            Err(e) => log::warn!("`{}` is not a readable copy: {e:#}", object.name),
        }
        read += 1;
        progress("read", (read * 100 / listings.max(1)) as u32);
    }
    Ok(added)
}

/// Is a backup or restore running now?
pub fn busy(db: &mut Db) -> Result<bool> {
    let lock = lock_name(db)?;
    runstate::is_locked(db, &lock)
}

/// The plans due now, by the database server's clock.
pub fn due_plans(db: &mut Db) -> Result<Vec<u64>> {
    let (now, weekday) = crate::db::health::server_clock(db)?;
    Ok(backupconf::plans(db)?
        .into_iter()
        .filter(|p| {
            Schedule::from_plan(&p.schedule, &p.at_time, &p.days).is_some_and(|s| {
                s.is_due(
                    Some(p.last_run.as_str()).filter(|l| !l.is_empty()),
                    &now,
                    weekday,
                )
            })
        })
        .map(|p| p.id)
        .collect())
}
