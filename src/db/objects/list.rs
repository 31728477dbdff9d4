//! What `backupdata` lists across copies: the distinct blocks of a kind
//! (never one per copy), and for every object the good copies that refer
//! to the blocks holding it.

use std::collections::{BinaryHeap, HashMap, HashSet};

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

/// What the first pass keeps of one object: how many good copies hold
/// it, the newest of them, and whether its row has been handed on. Eight
/// bytes, so that a kind of millions of objects costs tens of MiB, not a
/// copy of every name.
#[derive(Clone, Copy, Default)]
struct Seen {
    versions: u32,
    /// The newest copy holding it (its place in [`good_copies`]).
    newest: u32,
}

/// [`Seen`] by key: integer keys (rows' ids) apart from text ones (files),
/// so that the common case holds no string.
#[derive(Default)]
struct SeenKeys {
    ints: HashMap<i64, Seen>,
    texts: HashMap<Box<str>, Seen>,
}

/// A key as an integer when it is one written the one way (`7`, not
/// `07` or `+7`), so that two spellings never meet as one object.
fn int_key(key: &str) -> Option<i64> {
    let digits = key.strip_prefix('-').unwrap_or(key);
    let canonical = match digits.as_bytes() {
        [b'0'] => !key.starts_with('-'),
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    canonical.then(|| key.parse().ok()).flatten()
}

impl SeenKeys {
    fn get_mut(&mut self, key: &str) -> Option<&mut Seen> {
        match int_key(key) {
            Some(n) => self.ints.get_mut(&n),
            None => self.texts.get_mut(key),
        }
    }

    fn entry(&mut self, key: &str) -> &mut Seen {
        match int_key(key) {
            Some(n) => self.ints.entry(n).or_default(),
            None => self.texts.entry(key.into()).or_default(),
        }
    }
}

/// One object across the good copies, as its newest copy has it.
struct Newest {
    key: String,
    name: String,
    owner: String,
    versions: u64,
    /// The newest copy holding it (its place in [`good_copies`]).
    newest: usize,
}

/// Hands on every object of `kind` in good copies once, as its newest
/// copy has it. Two passes over the kind's distinct blocks: the first
/// counts, per key, the copies holding it and the newest; the second
/// hands on each object's row from the block that newest copy refers to.
/// Memory grows with the number of objects by a few bytes each, not by
/// their names.
fn each_newest(
    db: &mut Db,
    kind: &str,
    copies: &[(u64, String, String)],
    mut each: impl FnMut(Newest) -> Result<()>,
) -> Result<()> {
    let blocks = block_copies(db, kind, copies)?;
    let hashes: Vec<&String> = blocks.keys().collect();
    let newest_of = |hash: &str| blocks[hash].iter().copied().max().unwrap_or(0) as u32;
    let mut seen = SeenKeys::default();
    read_blocks(db, &hashes, |hash, text| {
        let (holders, newest) = (blocks[hash].len() as u32, newest_of(hash));
        for (key, _, _) in block_rows(text) {
            let s = seen.entry(&key);
            s.newest = if s.versions == 0 {
                newest
            } else {
                s.newest.max(newest)
            };
            s.versions = s.versions.saturating_add(holders);
        }
        Ok(())
    })?;
    read_blocks(db, &hashes, |hash, text| {
        let newest = newest_of(hash);
        for (key, name, owner) in block_rows(text) {
            let Some(s) = seen.get_mut(&key) else {
                continue;
            };
            // Handed on once, from the newest copy's block; `versions` 0
            // marks it done (a block listing a key twice is not trusted
            // to count twice).
            if s.versions == 0 || s.newest != newest {
                continue;
            }
            let versions = u64::from(std::mem::take(&mut s.versions));
            each(Newest {
                key,
                name,
                owner,
                versions,
                newest: newest as usize,
            })?;
        }
        Ok(())
    })
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
    let mut owner_names: HashMap<String, String> = HashMap::new();
    if let Some(k) = owners {
        each_newest(db, k, &copies, |o| {
            owner_names.insert(o.key, o.name);
            Ok(())
        })?;
    }
    let needle = search.to_lowercase();
    // Sort keys (case folded as the server's general collations do for
    // names), ties broken by key.
    let key_of = |r: &ObjectRow| -> (SortValue, KeyOrder) {
        let value = match sort {
            "owner" => SortValue::Text(r.owner.to_lowercase()),
            "versions" => SortValue::Number(r.versions),
            "latest" => SortValue::Text(r.latest.clone()),
            _ => SortValue::Text(r.name.to_lowercase()),
        };
        (value, KeyOrder(r.key.clone()))
    };
    // Only the rows up to the page's end are kept, in a heap whose top is
    // the last of them in the list's order.
    let keep = page.offset.saturating_add(page.limit);
    let mut heap: BinaryHeap<Ranked> = BinaryHeap::new();
    let mut total = 0u64;
    each_newest(db, kind, &copies, |o| {
        let row = ObjectRow {
            owner: match owners {
                Some(_) if !o.owner.is_empty() => owner_names
                    .get(&o.owner)
                    .cloned()
                    .unwrap_or_else(|| format!("#{}", o.owner)),
                _ => o.owner,
            },
            key: o.key,
            name: o.name,
            versions: o.versions,
            latest: copies
                .get(o.newest)
                .map(|c| c.1.clone())
                .unwrap_or_default(),
        };
        let wanted = owner.is_none_or(|w| row.owner == w)
            && (needle.is_empty()
                || contains_folded(&row.name, &needle)
                || contains_folded(&row.owner, &needle));
        if !wanted {
            return Ok(());
        }
        total += 1;
        let ranked = Ranked {
            order: key_of(&row),
            descending: page.descending,
            row,
        };
        if (heap.len() as u64) < keep {
            heap.push(ranked);
        } else if heap.peek().is_some_and(|last| ranked < *last) {
            heap.pop();
            heap.push(ranked);
        }
        Ok(())
    })?;
    let rows = heap
        .into_sorted_vec()
        .into_iter()
        .skip(page.offset as usize)
        .map(|r| r.row)
        .collect();
    Ok((rows, total))
}

/// A row with its place in the list's order (ascending or not).
struct Ranked {
    order: (SortValue, KeyOrder),
    descending: bool,
    row: ObjectRow,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let ascending = self.order.cmp(&other.order);
        if self.descending {
            ascending.reverse()
        } else {
            ascending
        }
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Ranked {}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_keys_are_only_those_written_one_way() {
        for (key, want) in [
            ("0", Some(0)),
            ("7", Some(7)),
            ("-12", Some(-12)),
            ("9223372036854775807", Some(i64::MAX)),
            ("07", None),
            ("+7", None),
            ("-0", None),
            ("-", None),
            ("", None),
            ("9223372036854775808", None),
            ("/var/www", None),
            ("1e3", None),
        ] {
            assert_eq!(int_key(key), want, "{key:?}");
        }
    }

    #[test]
    fn a_key_is_found_however_it_is_kept() {
        let mut seen = SeenKeys::default();
        seen.entry("42").versions = 3;
        seen.entry("042").versions = 5;
        assert_eq!(seen.get_mut("42").map(|s| s.versions), Some(3));
        assert_eq!(seen.get_mut("042").map(|s| s.versions), Some(5));
        assert!(seen.get_mut("43").is_none());
        assert_eq!((seen.ints.len(), seen.texts.len()), (1, 1));
    }

    #[test]
    fn ranked_rows_order_both_ways() {
        let row = |name: &str, key: &str, descending| Ranked {
            order: (SortValue::Text(name.into()), KeyOrder(key.into())),
            descending,
            row: ObjectRow {
                key: key.into(),
                name: name.into(),
                owner: String::new(),
                versions: 1,
                latest: String::new(),
            },
        };
        assert!(row("a", "2", false) < row("b", "1", false));
        assert!(row("a", "2", true) > row("b", "1", true));
        // Ties on the value go by key, as integers.
        assert!(row("a", "9", false) < row("a", "10", false));
    }
}
