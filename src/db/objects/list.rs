//! What `backupdata` lists across copies: each distinct block read once,
//! and for every object the good copies that refer to the blocks holding
//! it.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::{block_rows, decompress, key_order, BATCH_BLOCKS};
use crate::db::Db;
use crate::db::Page;

/// One object as `backupdata.names` lists it: across every good copy, by
/// its name and owner in the newest of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRow {
    pub key: String,
    pub name: String,
    pub owner: String,
    /// How many good copies hold it.
    pub versions: u64,
    /// The newest of them.
    pub latest: String,
}

/// Sort keys of the objects list.
pub const OBJECT_SORTS: &[(&str, &str)] = &[
    ("name", "name"),
    ("owner", "owner"),
    ("versions", "versions"),
    ("latest", "latest"),
];

/// The good copies, oldest first: (id, created, name).
fn good_copies(db: &mut Db) -> Result<Vec<(u64, String, String)>> {
    db.conn()
        .query(
            "SELECT id, DATE_FORMAT(created, '%Y-%m-%d %H:%i:%s'), name FROM billmgrops_backup
             WHERE state = 'ok' ORDER BY created, id",
        )
        .context("failed to read the catalog")
}

/// The blocks of `kind` (all, or those named) each with the good copies
/// referring to it, by their place in [`good_copies`].
fn block_copies(
    db: &mut Db,
    kind: &str,
    copies: &[(u64, String, String)],
) -> Result<HashMap<String, Vec<usize>>> {
    let rank: HashMap<u64, usize> = copies.iter().enumerate().map(|(i, c)| (c.0, i)).collect();
    let refs: Vec<(String, u64)> = db
        .conn()
        .exec(
            "SELECT r.block, r.backup FROM billmgrops_copy_block r
             JOIN billmgrops_object_block o ON o.hash = r.block
             WHERE o.kind = ?",
            (kind,),
        )
        .context("failed to read the object index")?;
    let mut out: HashMap<String, Vec<usize>> = HashMap::new();
    for (block, backup) in refs {
        if let Some(&r) = rank.get(&backup) {
            out.entry(block).or_default().push(r);
        }
    }
    Ok(out)
}

/// Reads the named blocks, a batch at a time, handing each one's text on.
fn read_blocks(
    db: &mut Db,
    hashes: &[&String],
    mut each: impl FnMut(&str, &[u8]) -> Result<()>,
) -> Result<()> {
    for batch in hashes.chunks(BATCH_BLOCKS) {
        let marks = vec!["?"; batch.len()].join(", ");
        let params: Vec<mysql::Value> = batch.iter().map(|h| h.as_str().into()).collect();
        let rows: Vec<(String, Vec<u8>)> = db
            .conn()
            .exec(
                format!("SELECT hash, data FROM billmgrops_object_block WHERE hash IN ({marks})"),
                params,
            )
            .context("failed to read the object index")?;
        for (hash, data) in rows {
            each(&hash, &decompress(&data)?)?;
        }
    }
    Ok(())
}

/// An object across copies while a list is gathered.
struct Gathered {
    name: String,
    owner: String,
    versions: u64,
    /// The newest copy holding it (its place in [`good_copies`]).
    newest: usize,
}

/// Every object of `kind` in good copies, by key.
fn gather(
    db: &mut Db,
    kind: &str,
    copies: &[(u64, String, String)],
) -> Result<HashMap<String, Gathered>> {
    let blocks = block_copies(db, kind, copies)?;
    let hashes: Vec<&String> = blocks.keys().collect();
    let mut out: HashMap<String, Gathered> = HashMap::new();
    read_blocks(db, &hashes, |hash, text| {
        let holders = &blocks[hash];
        let newest = holders.iter().copied().max().unwrap_or(0);
        for (key, name, owner) in block_rows(text) {
            let g = out.entry(key).or_insert_with(|| Gathered {
                name: String::new(),
                owner: String::new(),
                versions: 0,
                newest: 0,
            });
            if g.versions == 0 || newest >= g.newest {
                g.name = name;
                g.owner = owner;
                g.newest = newest;
            }
            g.versions += holders.len() as u64;
        }
        Ok(())
    })?;
    Ok(out)
}

/// A value a list is sorted by.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum SortValue {
    Text(String),
    Number(u64),
}

/// A key, ordered by [`key_order`].
#[derive(PartialEq, Eq)]
struct KeyOrder(String);

impl Ord for KeyOrder {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        key_order(&self.0, &other.0)
    }
}

impl PartialOrd for KeyOrder {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A page of the objects of `kind` in good copies, and the total.
/// `owners`: the kind whose names the owner column refers to (clients),
/// shown by name; otherwise the owner is shown as stored (a directory).
/// `search` keeps those whose name or owner contains it (any case);
/// `owner`, those of that owner.
pub fn objects_page(
    db: &mut Db,
    kind: &str,
    owners: Option<&str>,
    search: &str,
    owner: Option<&str>,
    page: &Page<'_>,
) -> Result<(Vec<ObjectRow>, u64)> {
    let sort = match page.sort {
        None => "name",
        Some(key) => OBJECT_SORTS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(k, _)| *k)
            .with_context(|| format!("`{key}` is not a sort key of this list"))?,
    };
    let copies = good_copies(db)?;
    let objects = gather(db, kind, &copies)?;
    let owner_names: HashMap<String, String> = match owners {
        Some(k) if !objects.is_empty() => gather(db, k, &copies)?
            .into_iter()
            .map(|(key, g)| (key, g.name))
            .collect(),
        _ => HashMap::new(),
    };
    let needle = search.to_lowercase();
    let mut rows: Vec<ObjectRow> = objects
        .into_iter()
        .map(|(key, g)| ObjectRow {
            owner: match owners {
                Some(_) if !g.owner.is_empty() => owner_names
                    .get(&g.owner)
                    .cloned()
                    .unwrap_or_else(|| format!("#{}", g.owner)),
                _ => g.owner,
            },
            key,
            name: g.name,
            versions: g.versions,
            latest: copies
                .get(g.newest)
                .map(|c| c.1.clone())
                .unwrap_or_default(),
        })
        .filter(|r| owner.is_none_or(|o| r.owner == o))
        .filter(|r| {
            needle.is_empty()
                || contains_folded(&r.name, &needle)
                || contains_folded(&r.owner, &needle)
        })
        .collect();
    let total = rows.len() as u64;
    // Sort keys computed once per row (case folded as the server's
    // general collations do for names), ties broken by key.
    let key_of = |r: &ObjectRow| -> (SortValue, KeyOrder) {
        let value = match sort {
            "owner" => SortValue::Text(r.owner.to_lowercase()),
            "versions" => SortValue::Number(r.versions),
            "latest" => SortValue::Text(r.latest.clone()),
            _ => SortValue::Text(r.name.to_lowercase()),
        };
        (value, KeyOrder(r.key.clone()))
    };
    if page.descending {
        rows.sort_by_cached_key(|r| std::cmp::Reverse(key_of(r)));
    } else {
        rows.sort_by_cached_key(key_of);
    }
    let rows = rows
        .into_iter()
        .skip(page.offset as usize)
        .take(page.limit as usize)
        .collect();
    Ok((rows, total))
}

/// Does `text` contain `needle` (already lower case), in any case?
fn contains_folded(text: &str, needle: &str) -> bool {
    if text.is_ascii() && needle.is_ascii() {
        let (t, n) = (text.as_bytes(), needle.as_bytes());
        n.len() <= t.len()
            && t.windows(n.len().max(1))
                .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
    } else {
        text.to_lowercase().contains(needle)
    }
}

/// The good copies that hold every one of `keys` of `kind`: (id, created,
/// name), newest first.
pub fn copies_holding(
    db: &mut Db,
    kind: &str,
    keys: &[String],
) -> Result<Vec<(u64, String, String)>> {
    let wanted: HashSet<&str> = keys.iter().map(String::as_str).collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let numbers: Vec<i64> = wanted.iter().filter_map(|k| k.parse().ok()).collect();
    let all_numeric = numbers.len() == wanted.len();
    let ranges: Vec<(String, Option<i64>, Option<i64>)> = db
        .conn()
        .exec(
            "SELECT hash, lo, hi FROM billmgrops_object_block WHERE kind = ?",
            (kind,),
        )
        .context("failed to read the object index")?;
    // A block whose keys are all integers is read only when a wanted
    // key falls within its range.
    let candidates: HashSet<String> = ranges
        .into_iter()
        .filter(|(_, lo, hi)| match (lo, hi) {
            (Some(lo), Some(hi)) if all_numeric => numbers.iter().any(|k| lo <= k && k <= hi),
            _ => true,
        })
        .map(|(h, _, _)| h)
        .collect();
    let copies = good_copies(db)?;
    let blocks: HashMap<String, Vec<usize>> = block_copies(db, kind, &copies)?
        .into_iter()
        .filter(|(h, _)| candidates.contains(h))
        .collect();
    let hashes: Vec<&String> = blocks.keys().collect();
    let mut held: Vec<HashSet<String>> = vec![HashSet::new(); copies.len()];
    read_blocks(db, &hashes, |hash, text| {
        for (key, _, _) in block_rows(text) {
            if wanted.contains(key.as_str()) {
                for &c in &blocks[hash] {
                    held[c].insert(key.clone());
                }
            }
        }
        Ok(())
    })?;
    Ok(copies
        .into_iter()
        .zip(held)
        .filter(|(_, h)| h.len() == wanted.len())
        .map(|(c, _)| c)
        .rev()
        .collect())
}

/// How large the index is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexSize {
    /// Distinct blocks stored, and their compressed bytes.
    pub blocks: u64,
    pub bytes: u64,
    /// References from copies to blocks.
    pub references: u64,
}

/// [`IndexSize`] now.
pub fn size(db: &mut Db) -> Result<IndexSize> {
    let (blocks, bytes): (u64, u64) = db
        .conn()
        .query_first("SELECT COUNT(*), CAST(COALESCE(SUM(LENGTH(data)), 0) AS UNSIGNED) FROM billmgrops_object_block")
        .context("failed to measure the object index")?
        .unwrap_or((0, 0));
    let references: u64 = db
        .conn()
        .query_first("SELECT COUNT(*) FROM billmgrops_copy_block")
        .context("failed to measure the object index")?
        .unwrap_or(0);
    Ok(IndexSize {
        blocks,
        bytes,
        references,
    })
}
