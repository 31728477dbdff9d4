//! The kinds of saved objects an administrator restores one by one
//! (`backupdata`): clients, their users, services and payments, and saved
//! files. Defined here, in one place. A dump gathers the objects it holds
//! (kind, id, name, owning client) while the rows stream past and indexes
//! them in the catalog (`db::objects`), so that objects are listed across
//! copies without opening an archive; a copy found on a storage or
//! uploaded is indexed from its own tables ([`of_copy`]).

use anyhow::Result;

use super::super::archive::listing::{FileKind, Listing, SavedObject};
use super::super::archive::object_spill::ObjectSpill;
use super::super::archive::{self, Copy};
use super::super::tsv::Cell;
use super::pick::ChunkReader;
use crate::db::objects::IndexRow;

/// A kind of object kept in one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectKind {
    /// The kind's name in `backupdata` (`type`), and in the listing.
    pub kind: &'static str,
    pub table: &'static str,
    /// The integer key column.
    pub id: &'static str,
    /// The column that names an object for people.
    pub name: &'static str,
    /// The column holding the owning client (`account.id`), if any.
    pub owner: Option<&'static str>,
}

/// The table kinds, top-level first.
pub const TABLE_KINDS: &[ObjectKind] = &[
    ObjectKind {
        kind: "account",
        table: "account",
        id: "id",
        name: "name",
        owner: None,
    },
    ObjectKind {
        kind: "user",
        table: "user",
        id: "id",
        name: "name",
        owner: Some("account"),
    },
    ObjectKind {
        kind: "item",
        table: "item",
        id: "id",
        name: "name",
        owner: Some("account"),
    },
    ObjectKind {
        kind: "payment",
        table: "payment",
        id: "id",
        name: "number",
        owner: Some("account"),
    },
];

/// The saved files, by directory.
pub const FILES: &str = "files";
/// One saved file (listed within its directory, `backupdata.files`).
pub const FILE: &str = "file";

/// Every kind, in the order `backupdata` lists them.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    TABLE_KINDS
        .iter()
        .map(|k| k.kind)
        .chain(std::iter::once(FILES))
}

/// The kind kept in `table`, if any.
pub fn of_table(table: &str) -> Option<&'static ObjectKind> {
    TABLE_KINDS.iter().find(|k| k.table == table)
}

/// Where a kind's columns are in a table's column list.
#[derive(Clone, Copy, Debug)]
pub struct Positions {
    pub id: usize,
    pub name: usize,
    pub owner: Option<usize>,
}

impl ObjectKind {
    /// The positions of this kind's columns in `columns`, when all exist.
    pub fn positions(&self, columns: &[String]) -> Option<Positions> {
        let at = |c: &str| columns.iter().position(|x| x == c);
        Some(Positions {
            id: at(self.id)?,
            name: at(self.name)?,
            owner: match self.owner {
                Some(o) => Some(at(o)?),
                None => None,
            },
        })
    }
}

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
    fn kinds_are_defined_once() {
        let all: Vec<&str> = kinds().collect();
        assert_eq!(all, ["account", "user", "item", "payment", "files"]);
        assert_eq!(of_table("item").map(|k| k.name), Some("name"));
        assert!(of_table("itemparam").is_none());
        let columns: Vec<String> = ["id", "account", "number"].map(String::from).into();
        let p = of_table("payment").unwrap().positions(&columns).unwrap();
        assert_eq!((p.id, p.name, p.owner), (0, 2, Some(1)));
        assert!(of_table("account").unwrap().positions(&columns).is_none());
        assert_eq!(
            directory_of("/usr/local/mgr5/etc/billmgr.conf"),
            "/usr/local/mgr5/etc"
        );
        assert_eq!(directory_of("/x"), "/");
    }
}
