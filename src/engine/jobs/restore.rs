//! Reading copies back: opening one (its key, when encrypted), verifying
//! it, restoring it whole, undoing the last restore, and restoring single
//! objects and files, each as a job under the job lock.

use std::io::Read;

use anyhow::{Context, Result};

use super::super::archive::Copy;
use super::super::crypt::CopyKey;
use super::super::format::names;
use super::super::restore::{self, AfterLoad, Behavior, RestoreOptions, RestoreReport};
use super::super::saved::object_restore::Wanted;
use super::super::settings::Settings;
use super::super::verify::{self, VerifyReport};
use super::lock::with_job_lock;
use crate::config::{Config, DbSource};
use crate::db::backups::{self, RestoreState};
use crate::db::Db;
use crate::progress::Throttle;

/// Opens copy `name` on the settings' storage: an encrypted copy needs the
/// passphrase (module settings or BILLMGR_OPS_PASSPHRASE) to open its key.
pub fn open_copy<'a>(settings: &'a Settings, name: &str) -> Result<Copy<'a>> {
    let storage = settings.storage.as_ref();
    // No key object: a plain copy. Any other answer (a storage that cannot
    // be reached) is that, not "not encrypted".
    let key = match storage.size(&names::key_object(name)) {
        Err(e) if crate::storage::is_not_found(&e) => None,
        Err(e) => return Err(e.context(format!("cannot tell whether copy `{name}` is encrypted"))),
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
                .open(&names::key_object(name))?
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
    let then = Then::Apply(behavior);
    restore_named(config, source, settings, name, then, progress, None)
}

/// What a restore does with its staged tables.
#[derive(Clone, Copy, Debug)]
pub(super) enum Then {
    /// Swapped in (`edit`) or merged (`skip`).
    Apply(Behavior),
    /// Dropped once `after_load` has read them.
    Discard,
}

/// Restores a copy into the live database, `after_load` run on its staged
/// tables before they are applied.
pub(super) fn restore_named(
    config: &Config,
    source: &DbSource,
    settings: &Settings,
    name: &str,
    then: Then,
    progress: &mut dyn FnMut(&str, u32),
    after_load: Option<&mut AfterLoad<'_>>,
) -> Result<RestoreReport> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    with_job_lock(&mut db, |db| {
        backups::fail_abandoned(db)?;
        // The copy's catalog row shows the restore's phase and outcome.
        let id = backups::by_name(db, name)?.map(|r| r.id);
        let mark = |db: &mut Db, state: RestoreState, phase: &str, percent: u32, reason: &str| {
            if let Some(id) = id {
                if let Err(e) = backups::restore_progress(db, id, state, phase, percent, reason) {
                    log::warn!("{e:#}");
                }
            }
        };
        mark(db, RestoreState::Running, "stage", 0, "");
        let mut throttle = Throttle::new();
        let mut report = |phase: &str, percent: u32| {
            progress(phase, percent);
            if throttle.pass(phase, percent) {
                mark(db, RestoreState::Running, phase, percent, "");
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
                    threads: settings.options.restore_threads,
                    behavior: match then {
                        Then::Apply(b) => b,
                        Then::Discard => Behavior::Skip,
                    },
                    stage_only: matches!(then, Then::Discard),
                },
                &mut report,
                after_load,
            )
        });
        match result {
            Ok(report) => {
                mark(db, RestoreState::Ok, "", 100, "");
                Ok(report)
            }
            Err(e) => {
                let e = e.context(format!("restore of copy `{name}` failed"));
                log::error!("{e:#}");
                mark(db, RestoreState::Failed, "", 0, &format!("{e:#}"));
                Err(e)
            }
        }
    })
}

/// Undoes the last `edit` restore (see [`restore::undo`]).
pub fn undo_restore(config: &Config, source: &DbSource) -> Result<usize> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    with_job_lock(&mut db, |_| {
        restore::undo(source, config.db_connect_timeout)
    })
}

/// Restores single objects of a copy (see `object_restore`), as a job:
/// one at a time with backups and full restores.
pub fn restore_objects(
    config: &Config,
    source: &DbSource,
    settings: &Settings,
    name: &str,
    wanted: Wanted<'_>,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<super::super::saved::object_restore::ObjectReport> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    with_job_lock(&mut db, |_| {
        let copy = open_copy(settings, name)?;
        let mut listing = copy.listing()?;
        // Declared relations count as foreign keys (their chunks carry no
        // ranges, so all of that table's chunks are read).
        for r in &settings.options.relations {
            if let Some(t) = listing.tables.iter_mut().find(|t| t.name == r.table) {
                t.foreign_keys.push(r.key.clone());
            }
        }
        let report = super::super::saved::object_restore::restore_objects(
            source,
            config.db_connect_timeout,
            &copy,
            &listing,
            wanted,
            progress,
        )?;
        let Wanted {
            kind,
            ids,
            behavior,
        } = wanted;
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
) -> Result<super::super::saved::file_restore::FilesReport> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    with_job_lock(&mut db, |_| {
        let copy = open_copy(settings, name)?;
        let listing = copy.listing()?;
        let report = super::super::saved::file_restore::restore_files(
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
