//! The catalog of copies: finding one, deleting one (and its objects on
//! every storage that holds it), rebuilding the catalog from a storage's
//! listings, and the plans that are due.

use anyhow::Result;

use super::super::format::{names, Listing};
use super::super::policy::schedule::Schedule;
use super::super::saved::index::{index_objects, SealedBlocks};
use super::super::settings::{open_storage, Settings};
use super::restore::open_copy;
use crate::clock::Timestamp;
use crate::db::backupconf;
use crate::db::backups::{self, CopyRow, PlaceState};
use crate::db::Db;

/// The copy named does not exist. Callers branch on it.
#[derive(Debug, thiserror::Error)]
#[error("no copy `{0}`")]
pub struct NoSuchCopy(pub String);

/// Finds a copy by catalog id or name.
pub fn find(db: &mut Db, copy: &str) -> Result<CopyRow> {
    let row = match copy.parse::<u64>() {
        Ok(id) => backups::get(db, id)?,
        Err(_) => backups::by_name(db, copy)?,
    };
    row.ok_or_else(|| NoSuchCopy(copy.to_string()).into())
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
            names::listing_object(&row.name, false),
            names::listing_object(&row.name, true),
            names::archive_object(&row.name, false),
            names::archive_object(&row.name, true),
            names::key_object(&row.name),
        ];
        for object in &objects {
            settings.storage.remove(object)?;
        }
        // A failed place was cleaned when it failed.
        for place in backups::places(db, row.id)?
            .into_iter()
            .filter(|p| p.state != PlaceState::Failed)
        {
            // A storage removed since keeps what it has.
            let Some(storage) = backupconf::storage(db, place.storage_id)? else {
                continue;
            };
            let to = open_storage(&settings.options.mgrdir, &storage)?;
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
            let l = c.listing()?;
            let saved = super::super::saved::objects::of_copy(&c, &l)?;
            Ok((l, saved, c.key.is_some()))
        });
        match found {
            Ok((l, saved, encrypted)) => {
                let found = found_copy(name, settings, &l, encrypted);
                if backups::register(db, &found)? {
                    added += 1;
                    if let Some(row) = backups::by_name(db, name)? {
                        index_objects(db, row.id, &l, SealedBlocks::of(&saved));
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

/// The plans due now, by the database server's clock.
pub fn due_plans(db: &mut Db) -> Result<Vec<u64>> {
    let now = crate::db::health::server_clock(db)?;
    Ok(backupconf::plans(db)?
        .into_iter()
        .filter(|p| {
            Schedule::from_plan(&p.schedule, &p.at_time, &p.days)
                .is_some_and(|s| s.is_due(Timestamp::parse(&p.last_run), now))
        })
        .map(|p| p.id)
        .collect())
}

/// The catalog row of a copy found on (or brought to) the settings'
/// storage, from its listing: rescan and upload register copies alike.
pub(crate) fn found_copy<'a>(
    name: &'a str,
    settings: &'a Settings,
    listing: &'a Listing,
    encrypted: bool,
) -> backups::Found<'a> {
    backups::Found {
        name,
        storage: &settings.storage_name,
        storage_id: settings.storage_id,
        created: &listing.created,
        size: listing.archive.as_ref().map_or(0, |a| a.size),
        tables: listing.tables.len() as u64,
        rows: listing.rows(),
        encrypted,
        log_position: listing
            .binlog
            .as_ref()
            .map(|p| p.catalog_text())
            .unwrap_or_default(),
    }
}
