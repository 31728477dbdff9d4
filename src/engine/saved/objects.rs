//! The kinds of saved objects an administrator restores one by one
//! (`backupdata`): clients, their users, services and payments, and saved
//! files. Defined here, in one place. A dump gathers the objects it holds
//! (kind, id, name, owning client) while the rows stream past and indexes
//! them in the catalog (`db::objects`), so that objects are listed across
//! copies without opening an archive; a copy found on a storage or
//! uploaded is indexed from its own tables ([`of_copy`]).

use anyhow::Result;

use super::super::format::kinds::{ObjectKind, Positions, FILE, FILES, TABLE_KINDS};

use super::super::archive::object_spill::ObjectSpill;
use super::super::archive::{self, Copy};
use super::super::format::{FileKind, Listing, SavedObject};
use super::super::tsv::Cell;
use super::pick::ChunkReader;
use crate::db::objects::IndexRow;

/// The objects `copy` holds, gathered on disk as a dump gathers them:
/// from the objects entry of a copy that has one (made between format 1's
/// objects entry and format 2), else from the copy's tables of those
/// kinds, each chunk read once, checked, and never kept. A copy of a
/// large database holds millions of objects: they are read back as a
/// stream, kind by kind ([`ObjectSpill::objects_of`]).
pub fn of_copy(copy: &Copy<'_>, listing: &Listing) -> Result<ObjectSpill> {
    let mut spill = ObjectSpill::new()?;
    if let Some(entry) = &listing.objects {
        // Already in the entry's order: one frame, never reordered.
        spill.add(
            0,
            i64::MIN,
            i64::MAX,
            &archive::objects::read_entry(copy, entry)?,
        )?;
        return Ok(spill);
    }
    let mut reader = ChunkReader::once(copy);
    for (rank, kind) in TABLE_KINDS.iter().enumerate() {
        let Some(table) = listing.tables.iter().find(|t| t.name == kind.table) else {
            continue;
        };
        let Some(at) = kind.positions(&table.columns) else {
            continue;
        };
        for chunk in &table.chunks {
            let mut found: Vec<SavedObject> = reader
                .rows(chunk)?
                .into_iter()
                .filter_map(|row| object_of(kind, at, &row))
                .collect();
            if !found.is_empty() {
                let (data, first, last) = archive::objects::frame(&mut found)?;
                spill.add(rank, first, last, &data)?;
            }
        }
    }
    spill.order()?;
    Ok(spill)
}

/// The object a row of `kind`'s table is, if its key is an integer.
fn object_of(kind: &ObjectKind, at: Positions, row: &[Cell]) -> Option<SavedObject> {
    let int = |i: usize| -> Option<i64> {
        std::str::from_utf8(row.get(i)?.as_deref()?)
            .ok()?
            .parse()
            .ok()
    };
    Some(SavedObject {
        kind: kind.kind.to_string(),
        id: int(at.id)?,
        name: row
            .get(at.name)
            .and_then(|c| c.as_deref())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default(),
        owner: at.owner.and_then(int),
    })
}

/// The catalog's index rows (`db::objects`) of a copy's objects, as the
/// spill gives them (by kind, then id). Owners are kept by id; lists
/// name them.
pub fn object_rows(saved: impl Iterator<Item = SavedObject>) -> impl Iterator<Item = IndexRow> {
    saved.map(|o| IndexRow {
        name: if o.name.is_empty() {
            format!("#{}", o.id)
        } else {
            cut_owned(o.name)
        },
        key: o.id.to_string(),
        owner: o.owner.map(|id| id.to_string()).unwrap_or_default(),
        kind: o.kind,
    })
}

/// The catalog's index rows of a copy's saved files: every directory,
/// then every file (named by its path, owned by its directory), each
/// kind in key order. They follow the objects' rows ([`object_rows`]).
pub fn file_rows(listing: &Listing) -> impl Iterator<Item = IndexRow> + '_ {
    let mut files: Vec<&str> = listing
        .files
        .iter()
        .filter(|f| f.kind == FileKind::File && f.path.len() <= 255)
        .map(|f| f.path.as_str())
        .collect();
    files.sort_unstable();
    files.dedup();
    let mut dirs: Vec<String> = files.iter().map(|f| cut(&directory_of(f))).collect();
    dirs.sort_unstable();
    dirs.dedup();
    let dirs = dirs.into_iter().map(|d| IndexRow {
        kind: FILES.to_string(),
        key: d.clone(),
        name: d,
        owner: String::new(),
    });
    let files = files.into_iter().map(|f| IndexRow {
        kind: FILE.to_string(),
        key: f.to_string(),
        name: cut(f.rsplit('/').next().unwrap_or(f)),
        owner: cut(&directory_of(f)),
    });
    dirs.chain(files)
}

/// At most 255 characters (the catalog's limit on names).
fn cut(s: &str) -> String {
    s.chars().take(255).collect()
}

/// [`cut`], keeping the string when it is short enough already.
fn cut_owned(s: String) -> String {
    if s.len() <= 255 {
        s
    } else {
        cut(&s)
    }
}

/// The directory a saved file (by its absolute path) belongs to.
pub fn directory_of(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, _)) if !dir.is_empty() => dir.to_string(),
        _ => "/".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_belongs_to_its_directory() {
        assert_eq!(
            directory_of("/usr/local/mgr5/etc/billmgr.conf"),
            "/usr/local/mgr5/etc"
        );
        assert_eq!(directory_of("/x"), "/");
    }
}
