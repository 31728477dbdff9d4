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
use super::super::restore::{Behavior, RestoreReport};
use super::super::settings::Settings;
use super::restore::{open_copy, restore_named};
use crate::clock;
use crate::config::{Config, DbSource};
use crate::db::backups::{self, CopyState};
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
    let copies = backups::list(&mut db)?;
    let segments = list_segments(log.storage.as_ref())?;
    let mut why_not = Vec::new();
    for row in copies.iter().filter(|c| c.state == CopyState::Ok) {
        let taken = clock::Timestamp::parse(&row.created).map(|t| t.unix());
        if taken.is_none_or(|t| t > to) {
            continue;
        }
        let settings = Settings::for_copy(config, &mut db, row)?;
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
        let chain = match segment::chain(&ours, &from, to) {
            Ok(chain) => chain,
            Err(ChainBreak::NotHeld(p)) => {
                why_not.push(format!("the log from copy {} ({p}) is not held", row.name));
                continue;
            }
            Err(ChainBreak::EndsAt { next, time }) => {
                why_not.push(format!(
                    "the log from copy {} is held to {} UTC only (up to {next})",
                    row.name,
                    clock::utc_datetime(time)
                ));
                continue;
            }
        };
        let mut replayed = None;
        let mut replay =
            |conn: &mut Conn, staged_of: &dyn Fn(&str) -> Option<String>| -> Result<()> {
                let mut r = Replay::new(conn, &database, staged_of, from.clone(), to)?;
                for info in &chain {
                    if r.is_done() {
                        break;
                    }
                    let input = open_segment(log, info)
                        .with_context(|| format!("cannot read log segment {}", info.name()))?;
                    r.segment(info, input)?;
                }
                replayed = Some(r.finish()?);
                Ok(())
            };
        let restore = restore_named(
            config,
            source,
            &settings,
            &row.name,
            behavior,
            progress,
            Some(&mut replay),
        )?;
        return Ok(PointReport {
            copy: row.name.clone(),
            restore,
            replayed: replayed.unwrap_or_default(),
            segments: chain.len(),
        });
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
