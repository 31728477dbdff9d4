//! Restore to a second: the newest good copy taken before it whose place
//! in the binary log is known, staged as any restore is, the log's
//! segments from that place replayed into the staged tables up to the
//! second, then applied (swapped in, with undo) as any restore is.

use std::io::Read;

use anyhow::{Context, Result};
use mysql::Conn;

use super::super::binlog::replay::{Replay, Replayed};
use super::super::binlog::segment::{self, ChainBreak, Position, SegmentInfo, MAX_INFO, PREFIX};
use super::super::crypt::CopyKey;
use super::super::format::{Listing, LogPosition};
use super::super::restore::{AfterLoad, Behavior, RestoreReport};
use super::super::saved::object_restore::{self, ObjectReport, Wanted};
use super::super::saved::staged_rows::StagedRows;
use super::super::settings::Settings;
use super::restore::{open_copy, restore_named, Then};
use crate::clock;
use crate::config::{Config, DbSource};
use crate::db::backups::{self, CopyRow, CopyState};
use crate::db::Db;
use crate::storage::Storage;

/// What a restore to a second did.
#[derive(Debug)]
pub struct PointReport {
    /// The copy it started from.
    pub copy: String,
    pub restore: RestoreReport,
    pub replayed: Replayed,
    pub segments: usize,
}

/// No copy and log reach the second asked for. Callers branch on it.
#[derive(Debug, thiserror::Error)]
#[error("nothing held reaches {to} UTC: {why}")]
pub struct NotRecoverable {
    pub to: String,
    pub why: String,
}

/// The log segments on `storage` (their descriptions, checked; one that
/// is not valid is left out and said in the log).
pub fn list_segments(storage: &dyn Storage) -> Result<Vec<SegmentInfo>> {
    let mut found = Vec::new();
    for object in storage.list()? {
        if !object.name.starts_with(PREFIX) || !object.name.ends_with(".idx") {
            continue;
        }
        if object.size > MAX_INFO {
            log::warn!(
                "`{}` is too large for a log segment's description",
                object.name
            );
            continue;
        }
        let bytes = storage.read_range(&object.name, 0, object.size)?;
        match SegmentInfo::from_json(&object.name, &bytes) {
            Ok(info) => found.push(info),
            Err(e) => log::warn!("{e}"),
        }
    }
    Ok(found)
}

/// A segment's events, decrypted.
fn open_segment<'a>(settings: &'a Settings, info: &SegmentInfo) -> Result<Box<dyn Read + 'a>> {
    let input = settings.storage.open(&info.object())?;
    Ok(match &info.key {
        None => input,
        Some(sealed) => {
            let passphrase = settings
                .passphrase
                .as_ref()
                .context("the log is encrypted: set the passphrase in the backup settings")?;
            let key = CopyKey::open(&hex::decode(sealed)?, passphrase)?;
            Box::new(key.decrypt(input)?)
        }
    })
}

/// The copy a restore to a second starts from, and the log after it.
struct Start {
    copy: CopyRow,
    settings: Settings,
    listing: Listing,
    from: Position,
    chain: Vec<SegmentInfo>,
}

impl Start {
    /// Stages this copy, runs `hook` on the staged tables, then `then`.
    fn restore(
        &self,
        config: &Config,
        source: &DbSource,
        then: Then,
        progress: &mut dyn FnMut(&str, u32),
        hook: &mut AfterLoad<'_>,
    ) -> Result<RestoreReport> {
        let (settings, name) = (&self.settings, &self.copy.name);
        restore_named(config, source, settings, name, then, progress, Some(hook))
    }
}

/// The newest good copy taken at or before `to` whose place in the log is
/// known and from which the stored log reaches `to` without a break.
fn start(config: &Config, db: &mut Db, segments: &[SegmentInfo], to: i64) -> Result<Start> {
    let mut why_not = Vec::new();
    for row in backups::list(db)?
        .into_iter()
        .filter(|c| c.state == CopyState::Ok)
    {
        let taken = clock::Timestamp::parse(&row.created).map(|t| t.unix());
        if taken.is_none_or(|t| t > to) {
            continue;
        }
        let settings = Settings::for_copy(config, db, &row)?;
        let listing = open_copy(&settings, &row.name)?.listing()?;
        let Some(at) = listing.binlog.clone() else {
            why_not.push(format!(
                "copy {} does not know its place in the binary log",
                row.name
            ));
            continue;
        };
        let from = Position {
            file: at.file.clone(),
            pos: at.pos,
        };
        let ours: Vec<SegmentInfo> = segments
            .iter()
            .filter(|s| s.server == at.server)
            .cloned()
            .collect();
        match segment::chain(&ours, &from, to) {
            Ok(chain) => {
                let chain = chain.into_iter().cloned().collect();
                return Ok(Start {
                    copy: row,
                    settings,
                    listing,
                    from,
                    chain,
                });
            }
            Err(ChainBreak::NotHeld(p)) => {
                why_not.push(format!("the log from copy {} ({p}) is not held", row.name));
            }
            Err(ChainBreak::EndsAt { next, time }) => why_not.push(format!(
                "the log from copy {} is held whole to {} UTC only (up to {next})",
                row.name,
                clock::utc_datetime(time - 1)
            )),
        }
    }
    if why_not.is_empty() {
        why_not.push("no good copy was taken before it".into());
    }
    Err(NotRecoverable {
        to: clock::utc_datetime(to),
        why: why_not.join("; "),
    }
    .into())
}

/// Replays `chain` from `from` to `to` into the staged tables.
fn replay(
    conn: &mut Conn,
    database: &str,
    staged_of: &dyn Fn(&str) -> Option<String>,
    log: &Settings,
    start: &Start,
    to: i64,
) -> Result<Replayed> {
    let mut r = Replay::new(conn, database, staged_of, start.from.clone(), to)?;
    for info in &start.chain {
        if r.is_done() {
            break;
        }
        let input = open_segment(log, info)
            .with_context(|| format!("cannot read log segment {}", info.name()))?;
        r.segment(info, input)?;
    }
    r.finish()
}

/// Restores the billing database as it was at `to` (UTC seconds): the
/// log is read from `log` (the follower's storage).
pub fn restore_to_time(
    config: &Config,
    source: &DbSource,
    log: &Settings,
    to: i64,
    behavior: Behavior,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<PointReport> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    let database = db.name()?;
    let segments = list_segments(log.storage.as_ref())?;
    let start = start(config, &mut db, &segments, to)?;
    let mut replayed = None;
    let mut hook = |conn: &mut Conn, staged_of: &dyn Fn(&str) -> Option<String>| -> Result<()> {
        replayed = Some(replay(conn, &database, staged_of, log, &start, to)?);
        Ok(())
    };
    let restore = start.restore(config, source, Then::Apply(behavior), progress, &mut hook)?;
    Ok(PointReport {
        copy: start.copy.name.clone(),
        restore,
        replayed: replayed.unwrap_or_default(),
        segments: start.chain.len(),
    })
}

/// Stages the database as it was at `to` (UTC seconds) and drops it again
/// (a drill): the copy it started from, the rows loaded, the log replayed.
pub fn restore_staged(
    config: &Config,
    source: &DbSource,
    db: &mut Db,
    log: &Settings,
    segments: &[SegmentInfo],
    to: i64,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<(String, u64, Replayed)> {
    let database = db.name()?;
    let start = start(config, db, segments, to)?;
    let mut replayed = None;
    let mut hook = |conn: &mut Conn, staged_of: &dyn Fn(&str) -> Option<String>| -> Result<()> {
        replayed = Some(replay(conn, &database, staged_of, log, &start, to)?);
        Ok(())
    };
    let restore = start.restore(config, source, Then::Discard, progress, &mut hook)?;
    let replayed = replayed.context("the log was not replayed")?;
    Ok((start.copy.name.clone(), restore.rows, replayed))
}

/// Restores single objects as they were at `to` (UTC seconds), with what
/// depends on them and what they need: the newest copy before it staged,
/// the log replayed into the staged tables, the objects read from there
/// as from a copy, then the staged tables dropped (the rest of the live
/// database is not touched).
pub fn restore_objects_at(
    config: &Config,
    source: &DbSource,
    log: &Settings,
    to: i64,
    wanted: Wanted<'_>,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<(PointReport, ObjectReport)> {
    let mut db = Db::open(source, config.db_connect_timeout)?;
    let database = db.name()?;
    let segments = list_segments(log.storage.as_ref())?;
    let mut start = start(config, &mut db, &segments, to)?;
    // Declared relations count as foreign keys, as from a copy.
    for r in &start.settings.options.relations {
        if let Some(t) = start.listing.tables.iter_mut().find(|t| t.name == r.table) {
            t.foreign_keys.push(r.key.clone());
        }
    }
    let (mut replayed, mut objects) = (None, None);
    let mut hook = |conn: &mut Conn, staged_of: &dyn Fn(&str) -> Option<String>| -> Result<()> {
        replayed = Some(replay(conn, &database, staged_of, log, &start, to)?);
        let mut rows = StagedRows::new(conn, staged_of)?;
        let timeout = config.db_connect_timeout;
        let report = object_restore::restore_objects_from(
            source,
            timeout,
            &mut rows,
            &start.listing,
            wanted,
            &mut |_, _| {},
        )?;
        objects = Some(report);
        Ok(())
    };
    let restore = start.restore(config, source, Then::Discard, progress, &mut hook)?;
    let name = &start.copy.name;
    let objects = objects.context("the objects were not restored")?;
    let Wanted {
        kind,
        ids,
        behavior,
    } = wanted;
    log::info!(
        "{kind} {ids:?} restored as at {} UTC ({behavior:?}) from copy {name} and the binary log: {:?}",
        clock::utc_datetime(to),
        objects.rows
    );
    Ok((
        PointReport {
            copy: start.copy.name.clone(),
            restore,
            replayed: replayed.unwrap_or_default(),
            segments: start.chain.len(),
        },
        objects,
    ))
}

/// Deletes the log segments no kept copy needs: those of this server that
/// end at or before the oldest good copy's place in the log, and those of
/// another server older than that copy. Nothing goes while no copy knows
/// its place. Returns how many segments were deleted.
pub fn prune_segments(db: &mut Db, log: &Settings) -> Result<usize> {
    let positions = backups::log_positions(db)?;
    let oldest = backups::list(db)?
        .into_iter()
        .filter(|c| c.state == CopyState::Ok)
        .filter_map(|c| {
            let at = positions
                .get(&c.id)
                .and_then(|p| LogPosition::from_catalog(p))?;
            let taken = clock::Timestamp::parse(&c.created)?.unix();
            Some((taken, at))
        })
        .min_by_key(|(taken, _)| *taken);
    let Some((taken, at)) = oldest else {
        return Ok(0);
    };
    let from = Position {
        file: at.file.clone(),
        pos: at.pos,
    };
    let storage = log.storage.as_ref();
    let mut deleted = 0;
    for s in list_segments(storage)? {
        let unneeded = if s.server == at.server {
            s.next.at_or_before(&from) == Some(true)
        } else {
            s.last_time < taken
        };
        if unneeded {
            // The events first: a description never names what is gone
            // without saying so to a reader that finds it.
            storage.remove(&s.object())?;
            storage.remove(&format!("{}.idx", s.name()))?;
            deleted += 1;
        }
    }
    if deleted > 0 {
        log::info!("log retention: {deleted} segment(s) before the oldest kept copy deleted");
    }
    Ok(deleted)
}
