//! Taking a copy: the dump to the plan's first storage, then the further
//! storages, the plan's retention, the catalog row with its phase, percent
//! and outcome, and the object index of a good copy.

use std::io::Write;

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::super::crypt::CopyKey;
use super::super::dump::{self, Phase};
use super::super::format::names;
use super::super::policy::retention::{self, Kept, Limits};
use super::super::restore;
use super::super::saved::index;
use super::super::settings::{open_storage, BackupOptions, NoSuchObject, Settings};
use super::lock::with_job_lock;
use crate::clock;
use crate::config::{Config, DbSource};
use crate::db::backupconf::{self, PlanRow};
use crate::db::backups::{self, CopyRow, CopyState, PlaceState};
use crate::db::{Db, SideDb};
use crate::progress::Throttle;
use crate::storage::Pending;

/// A new copy's name: `billmgr-YYYYMMDD-HHMMSS` (UTC).
fn copy_name(now: i64) -> String {
    format!("billmgr-{}", clock::Timestamp::from_unix(now).compact())
}

/// Takes a copy now. Returns its catalog row.
pub fn take_copy(
    config: &Config,
    source: &DbSource,
    settings: &Settings,
    on_progress: &mut dyn FnMut(&str, u32),
) -> Result<CopyRow> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    with_job_lock(&mut db, |db| {
        take_copy_locked(config, db, source, None, settings, on_progress)
    })
}

/// Takes a copy of `dump_source` (the billing database, or an import's
/// scratch database) named `name` (default: by the time), recorded in the
/// catalog of `db`, whose job lock the caller holds.
pub fn take_copy_locked(
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
            &crate::host::runner_id(),
        )?;
        // An encrypted copy's own key is stored first, sealed with the
        // passphrase; without the listing beside it, it is no copy yet.
        let key = settings.passphrase.as_ref().map(|_| CopyKey::generate());
        backups::set_origin(
            db,
            id,
            settings.options.plan.as_ref().map(|p| p.id),
            settings.storage_id,
            key.is_some(),
        )?;
        // A plan counts as run when its copy starts: a failing plan is
        // reported in the catalog, not retried every minute.
        if let Some(plan) = &settings.options.plan {
            backupconf::mark_plan_run(db, plan.id)?;
        }
        // An unreachable storage fails here, recorded in the copy's state.
        let result = settings
            .storage
            .clean_partials()
            .and_then(|_| files_within_reach(config, &settings.options))
            .and_then(|()| check_space(db, settings))
            .and_then(|()| match (&key, &settings.passphrase) {
                (Some(key), Some(passphrase)) => {
                    let mut w = settings.storage.create(&names::key_object(&name))?;
                    w.write_all(&key.seal(passphrase)?)?;
                    w.commit()
                }
                _ => Ok(()),
            })
            .and_then(|()| {
                let mut throttle = Throttle::new();
                let mut report = |phase: Phase, percent: u32| {
                    on_progress(phase.as_str(), percent);
                    if throttle.pass(phase.as_str(), percent) {
                        if let Err(e) = backups::progress(db, id, phase.as_str(), percent) {
                            log::warn!("{e:#}");
                        }
                    }
                };
                dump::dump(
                    source,
                    config.db_connect_timeout,
                    &settings.options.dump,
                    &dump::Target {
                        name: &name,
                        created: clock::Timestamp::from_unix(now),
                        storage: settings.storage.as_ref(),
                        key: key.as_ref(),
                    },
                    &mut report,
                )
            });
        match result {
            Ok((listing, sealed)) => {
                let size = listing.archive.as_ref().map_or(0, |a| a.size);
                let log_position = listing
                    .binlog
                    .as_ref()
                    .map(|p| p.catalog_text())
                    .unwrap_or_default();
                let (tables, rows) = (listing.tables.len() as u64, listing.rows());
                backups::succeed(db, id, size, tables, rows)?;
                if !log_position.is_empty() {
                    backups::set_log_position(db, id, &log_position)?;
                }
                index::index_objects(db, id, &listing, sealed);
                if !settings.options.keep_undo && !importing {
                    drop_undo(db);
                }
                log::info!(
                    "copy {name}: {} tables, {} rows, {size} bytes",
                    listing.tables.len(),
                    listing.rows()
                );
                if let Some(plan) = &settings.options.plan {
                    replicate_copy(config, db, settings, plan, id, &name, key.is_some())?;
                    apply_retention(db, settings, plan)?;
                    prune_log(config, db);
                }
            }
            Err(e) => {
                let _ = settings.storage.remove(&names::key_object(&name));
                log::error!("copy {name} failed: {e:#}");
                backups::fail(db, id, &format!("{e:#}"))?;
                return Err(e);
            }
        }
        backups::get(db, id)?.context("the copy vanished from the catalog")
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
        objects.push(names::key_object(name));
    }
    objects.push(names::archive_object(name, encrypted));
    objects.push(names::listing_object(name, encrypted));
    for storage_id in backupconf::plan_extra_storages(db, plan.id)? {
        if Some(storage_id) == settings.storage_id {
            continue;
        }
        let mut place = backups::Place {
            storage_id,
            state: PlaceState::Running,
            reason: String::new(),
        };
        backups::set_place(db, id, &place)?;
        let sent = (|| -> Result<()> {
            let row =
                backupconf::storage(db, storage_id)?.ok_or(NoSuchObject("storage", storage_id))?;
            let to = open_storage(&config.mgrdir, &row)?;
            let pending = Pending::new(to.as_ref(), objects.clone());
            for object in &objects {
                crate::storage::replicate(settings.storage.as_ref(), to.as_ref(), object)
                    .with_context(|| format!("storage `{}`", row.name))?;
            }
            pending.keep();
            Ok(())
        })();
        match sent {
            Ok(()) => place.state = PlaceState::Ok,
            Err(e) => {
                log::error!("copy {name} was not sent to a further storage: {e:#}");
                place.state = PlaceState::Failed;
                place.reason = format!("{e:#}");
            }
        }
        backups::set_place(db, id, &place)?;
    }
    Ok(())
}

/// Deletes the plan's oldest good copies beyond its limits.
/// The log segments the copies kept no longer need go with them (on the
/// follower's storage); a failure is said in the log and waits for the
/// next copy.
fn prune_log(config: &Config, db: &mut Db) {
    let pruned = Settings::resolve(config, db, None, None)
        .and_then(|log| super::pitr::prune_segments(db, &log));
    if let Err(e) = pruned {
        log::warn!("log retention: {e:#}");
    }
}

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
        .filter(|c| c.state == CopyState::Ok && c.plan == Some(plan.id))
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
            super::catalog::delete_copy(db, settings, row, true)?;
        }
    }
    Ok(())
}

/// Refuses files outside the panel directory and `BackupFilesAllowed`
/// (a setting saved before that limit existed, or a config file's).
fn files_within_reach(config: &Config, options: &BackupOptions) -> Result<()> {
    for path in &options.dump.files {
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
    crate::db::fresh_statistics(db.conn())?;
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
///
/// They are inside the billing database ([`restore::kept`]); the side
/// databases of earlier versions are dropped only where they exist: an
/// account with privileges on the billing database alone may not even
/// name another one in `DROP DATABASE IF EXISTS`. A failure here leaves
/// the copy good: it is logged, not returned.
fn drop_undo(db: &mut Db) {
    let result = (|| -> Result<()> {
        restore::kept::drop_all(db.conn())?;
        let live = db.name()?;
        for database in [SideDb::Undo.of(&live), SideDb::UndoNext.of(&live)] {
            crate::db::drop_side_database(db.conn(), &database)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        log::warn!("failed to drop the previous restore's safety copy: {e:#}");
    }
}
