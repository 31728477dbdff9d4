//! A listing read from a storage or an upload is hostile until checked:
//! every name it gives is a name the database accepts and none is the
//! plugin's own, every count and size is bounded before anything is
//! allocated from it, every entry lies inside the archive and no two
//! overlap, every kind is one this build knows. [`Listing::from_json`]
//! runs [`Listing::check`]; [`Listing::check_within`] adds the archive's
//! real size once it is known.

use std::collections::HashSet;
use std::path::{Component, Path};

use super::kinds::{DefinitionKind, FileKind};
use super::listing::{Entry, Listing, FORMAT, VERSION};
use crate::db::TABLE_PREFIX;

/// The largest listing read (its JSON).
pub const MAX_LISTING: u64 = 64 << 20;
/// The largest archive entry of table data, schema or definitions (and a
/// chunk's text): a row is at most `max_allowed_packet`, 1 GiB.
pub const MAX_ENTRY: u64 = 1 << 30;
/// The largest saved file.
pub const MAX_FILE: u64 = 4 << 30;
/// The largest object index (compressed, and as text).
pub const MAX_OBJECTS: u64 = 1 << 30;
pub const MAX_TABLES: usize = 100_000;
pub const MAX_COLUMNS: usize = 4_096;
pub const MAX_CHUNKS: usize = 10_000_000;
pub const MAX_DEFINITIONS: usize = 100_000;
pub const MAX_FILES: usize = 1_000_000;
/// The longest saved path or link target.
pub const MAX_PATH: usize = 4_096;

/// A sql_mode as a copy may carry one: comma-separated words, nothing
/// else.
pub fn is_sql_mode(mode: &str) -> bool {
    mode.len() <= 1024
        && mode
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b',')
}

/// Why a listing was refused. Callers branch on it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the copy's listing is refused: {0}")]
pub struct BadListing(pub String);

fn bad(why: impl Into<String>) -> BadListing {
    BadListing(why.into())
}

/// Is `name` a name MariaDB accepts for a table, column or object (and
/// not one of the plugin's tables)?
pub fn check_identifier(what: &str, name: &str) -> Result<(), BadListing> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && !name.ends_with(' ')
        && !name.chars().any(|c| c == '\0' || c.is_control());
    if !ok {
        return Err(bad(format!(
            "{what} `{}` is not a valid name",
            name.escape_debug()
        )));
    }
    if name.to_lowercase().starts_with(TABLE_PREFIX) {
        return Err(bad(format!(
            "{what} `{name}` is a name of the plugin's own"
        )));
    }
    Ok(())
}

/// Is `path` an archive entry path a copy may have: relative, no `..`,
/// no empty or `.` part?
fn check_entry_path(path: &str) -> Result<(), BadListing> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && path.len() <= MAX_PATH + 16
        && !path.contains('\0')
        && !path.contains("//")
        && !path.ends_with('/')
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "entry path `{}` is not plain",
            path.escape_debug()
        )))
    }
}

/// Is `path` a saved file's path: absolute, normal, bounded?
pub fn check_file_path(path: &str) -> Result<(), BadListing> {
    let p = Path::new(path);
    let mut parts = p.components();
    let ok = path.len() <= MAX_PATH
        && !path.contains('\0')
        && !path.contains("//")
        && (path == "/" || !path.ends_with('/'))
        && parts.next() == Some(Component::RootDir)
        && parts.all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "saved path `{}` is not a plain absolute path",
            path.escape_debug()
        )))
    }
}

fn check_entry(
    entry: &Entry,
    max: u64,
    seen: &mut Vec<(u64, u64, String)>,
) -> Result<(), BadListing> {
    check_entry_path(&entry.path)?;
    if entry.size > max {
        return Err(bad(format!(
            "entry `{}` claims {} bytes, more than any entry of a copy ({max})",
            entry.path, entry.size
        )));
    }
    if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(format!("entry `{}` has no SHA-256", entry.path)));
    }
    let end = entry
        .offset
        .checked_add(entry.size)
        .ok_or_else(|| bad(format!("entry `{}` lies beyond any archive", entry.path)))?;
    seen.push((entry.offset, end, entry.path.clone()));
    Ok(())
}

impl Listing {
    /// Reads a listing, refusing formats and versions this build cannot
    /// read and anything [`Listing::check`] refuses.
    pub fn from_json(data: &[u8]) -> anyhow::Result<Listing> {
        anyhow::ensure!(
            data.len() as u64 <= MAX_LISTING,
            BadListing(format!("{} bytes of listing", data.len()))
        );
        let l: Listing = serde_json::from_slice(data)
            .map_err(|e| BadListing(format!("not valid JSON of a copy: {e}")))?;
        anyhow::ensure!(
            l.format == FORMAT,
            "not a billmgr-ops copy (format {:?})",
            l.format
        );
        anyhow::ensure!(
            (1..=VERSION).contains(&l.version),
            "copy format version {} is newer than this billmgr-ops reads ({VERSION}); upgrade billmgr-ops",
            l.version
        );
        l.check()?;
        Ok(l)
    }

    /// Checks everything the listing says that does not need the archive.
    pub fn check(&self) -> Result<(), BadListing> {
        crate::storage::check_name(&self.name)
            .map_err(|_| bad(format!("`{}` is not a copy name", self.name.escape_debug())))?;
        if self.created.len() != 19 || crate::clock::days_since_epoch(&self.created).is_none() {
            return Err(bad(format!(
                "`{}` is not a time",
                self.created.escape_debug()
            )));
        }
        if let Some(c) = &self.collation {
            let plain = |s: &str| {
                !s.is_empty()
                    && s.len() <= 64
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            };
            if !plain(&c.charset) || !plain(&c.collation) {
                return Err(bad(
                    "the database's character set or collation is not a plain name",
                ));
            }
        }
        if let Some(p) = &self.binlog {
            let plain = !p.file.is_empty()
                && p.file.len() <= 255
                && p.file
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !plain || p.server.len() > 200 {
                return Err(bad(
                    "the copy's place in the binary log is not a plain file name",
                ));
            }
        }
        if self.tables.len() > MAX_TABLES
            || self.definitions.len() > MAX_DEFINITIONS
            || self.files.len() > MAX_FILES
        {
            return Err(bad(
                "more tables, definitions or files than any database has",
            ));
        }
        let mut entries = Vec::new();
        let mut tables = HashSet::new();
        let mut chunks = 0usize;
        let mut frames = 0usize;
        for t in &self.tables {
            check_identifier("table", &t.name)?;
            if !tables.insert(t.name.to_lowercase()) {
                return Err(bad(format!("table `{}` is listed twice", t.name)));
            }
            if t.columns.is_empty() || t.columns.len() + t.generated.len() > MAX_COLUMNS {
                return Err(bad(format!(
                    "table `{}` has no or too many columns",
                    t.name
                )));
            }
            let mut columns = HashSet::new();
            for c in t.columns.iter().chain(&t.generated) {
                check_identifier("column", c)?;
                if !columns.insert(c.to_lowercase()) {
                    return Err(bad(format!("column `{c}` of `{}` is listed twice", t.name)));
                }
            }
            let known = |c: &String| columns.contains(&c.to_lowercase());
            if !t.primary_key.iter().all(known) {
                return Err(bad(format!(
                    "the key of `{}` names no column of it",
                    t.name
                )));
            }
            for fk in &t.foreign_keys {
                check_identifier("table", &fk.ref_table)?;
                for c in &fk.ref_columns {
                    check_identifier("column", c)?;
                }
                if fk.columns.is_empty()
                    || fk.columns.len() != fk.ref_columns.len()
                    || !fk.columns.iter().all(known)
                {
                    return Err(bad(format!("a foreign key of `{}` is malformed", t.name)));
                }
            }
            check_entry(&t.schema_entry, MAX_ENTRY, &mut entries)?;
            chunks += t.chunks.len();
            if chunks > MAX_CHUNKS {
                return Err(bad("more chunks than any copy has"));
            }
            let mut rows = 0u64;
            for c in &t.chunks {
                check_entry(&c.entry, MAX_ENTRY, &mut entries)?;
                // Required before version 3, optional after.
                let sha_ok = (c.text_sha256.is_empty() && self.version >= 3)
                    || (c.text_sha256.len() == 64
                        && c.text_sha256.bytes().all(|b| b.is_ascii_hexdigit()));
                // Every row ends with a newline: a chunk holds at most as
                // many rows as bytes.
                if c.text_size > MAX_ENTRY || c.rows > c.text_size || !sha_ok {
                    return Err(bad(format!(
                        "chunk `{}` has impossible sizes",
                        c.entry.path
                    )));
                }
                if let (Some(a), Some(b)) = (c.first_key, c.last_key) {
                    if a > b {
                        return Err(bad(format!(
                            "chunk `{}` has a reversed key range",
                            c.entry.path
                        )));
                    }
                }
                for (column, [lo, hi]) in &c.ranges {
                    if !known(column) || lo > hi {
                        return Err(bad(format!(
                            "chunk `{}` has a malformed range",
                            c.entry.path
                        )));
                    }
                }
                // Frames tile the entry exactly, none empty.
                frames = frames.saturating_add(c.frames.len());
                if frames > MAX_CHUNKS
                    || c.frames.contains(&0)
                    || (!c.frames.is_empty()
                        && c.frames.iter().fold(0u64, |a, &f| a.saturating_add(f)) != c.entry.size)
                    || (!c.frame_keys.is_empty() && c.frame_keys.len() != c.frames.len().max(1))
                    || c.frame_keys.windows(2).any(|w| w[0] > w[1])
                {
                    return Err(bad(format!(
                        "chunk `{}` has impossible frames",
                        c.entry.path
                    )));
                }
                rows = rows.saturating_add(c.rows);
            }
            if rows != t.rows {
                return Err(bad(format!(
                    "table `{}` lists {} rows, its chunks {rows}",
                    t.name, t.rows
                )));
            }
            for (column, blocks) in &t.keys {
                if !known(column) {
                    return Err(bad(format!(
                        "the key index of `{}` names no column of it",
                        t.name
                    )));
                }
                for b in blocks {
                    check_entry(&b.entry, MAX_ENTRY, &mut entries)?;
                    if b.first > b.last {
                        return Err(bad(format!(
                            "the key index of `{}`.`{column}` has a reversed range",
                            t.name
                        )));
                    }
                }
                chunks += blocks.len();
            }
        }
        let mut definitions = HashSet::new();
        for d in &self.definitions {
            check_identifier(d.kind.as_str(), &d.name)?;
            if d.kind == DefinitionKind::Trigger && !tables.contains(&d.table.to_lowercase()) {
                return Err(bad(format!(
                    "trigger `{}` is on no table of the copy",
                    d.name
                )));
            }
            if !definitions.insert((d.kind, d.name.to_lowercase())) {
                return Err(bad(format!("{} `{}` is listed twice", d.kind, d.name)));
            }
            if !is_sql_mode(&d.sql_mode) {
                return Err(bad(format!(
                    "`{}` is not a sql_mode",
                    d.sql_mode.escape_debug()
                )));
            }
            check_entry(&d.entry, MAX_ENTRY, &mut entries)?;
        }
        let mut paths = HashSet::new();
        for f in &self.files {
            check_file_path(&f.path)?;
            if !paths.insert(f.path.as_str()) {
                return Err(bad(format!("`{}` is listed twice", f.path)));
            }
            if f.uid > u64::from(u32::MAX)
                || f.gid > u64::from(u32::MAX)
                || f.target.len() > MAX_PATH
                || f.target.contains('\0')
            {
                return Err(bad(format!("saved `{}` is malformed", f.path)));
            }
            if f.kind == FileKind::File {
                check_entry(&f.entry, MAX_FILE, &mut entries)?;
            }
        }
        if let Some(o) = &self.objects {
            check_entry(o, MAX_OBJECTS, &mut entries)?;
        }
        // No two entries share bytes: an entry is read once.
        entries.sort();
        for pair in entries.windows(2) {
            let ((_, end, a), (start, _, b)) = (&pair[0], &pair[1]);
            if start < end {
                return Err(bad(format!("entries `{a}` and `{b}` overlap")));
            }
        }
        Ok(())
    }

    /// Checks that every entry lies inside an archive of `size` bytes.
    pub fn check_within(&self, size: u64) -> Result<(), BadListing> {
        let ends = self
            .tables
            .iter()
            .flat_map(|t| {
                std::iter::once(&t.schema_entry)
                    .chain(t.chunks.iter().map(|c| &c.entry))
                    .chain(t.keys.values().flatten().map(|b| &b.entry))
            })
            .chain(self.definitions.iter().map(|d| &d.entry))
            .chain(
                self.files
                    .iter()
                    .filter(|f| f.kind == FileKind::File)
                    .map(|f| &f.entry),
            )
            .chain(self.objects.as_ref());
        for e in ends {
            if e.offset.saturating_add(e.size) > size {
                return Err(bad(format!(
                    "entry `{}` lies beyond the archive's {size} bytes",
                    e.path
                )));
            }
        }
        Ok(())
    }
}
