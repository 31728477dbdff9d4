//! The catalog's index of the objects each copy holds (`backupdata`).
//!
//! Copies of one database hold nearly the same objects, so the index is
//! kept once for all of them: a copy's objects of one kind, in key order,
//! are cut into blocks where a key's hash says so (the same keys cut the
//! same way in every copy), each block compressed and named by the SHA-256
//! of its content (`billmgrops_object_block`), and a copy refers to its
//! blocks (`billmgrops_copy_block`). A block that copies share is stored
//! once: thirty copies of an unchanged database hold one set of blocks and
//! thirty lists of a few hundred references, and a copy that differs adds
//! only the blocks around what changed. Writing a copy's index sends only
//! the blocks the catalog does not have yet.
//!
//! Lists across copies ([`objects_page`], [`copies_holding`]) read each
//! distinct block once and count, for every object, the good copies that
//! refer to the blocks holding it.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use sha2::{Digest, Sha256};

use super::Db;

/// Average objects per block: a block ends after a key whose hash is a
/// multiple of this.
const CUT_EVERY: u64 = 1024;
/// A block also ends at this many objects, or this much text.
const MAX_BLOCK_OBJECTS: usize = 8192;
const MAX_BLOCK_TEXT: usize = 1 << 20;
/// A stored block never decompresses to more than this (a bound against
/// a corrupted row, well above [`MAX_BLOCK_TEXT`] plus one row).
const MAX_STORED_TEXT: usize = 4 << 20;
/// Blocks sent to the server per statement.
const BATCH_BLOCKS: usize = 64;
const BATCH_BYTES: usize = 4 << 20;

/// One object a copy holds, as the index keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexRow {
    /// The kind (`engine::saved::objects`).
    pub kind: String,
    /// The object's key: a row's id, a directory, a file's path.
    pub key: String,
    /// Its name for people.
    pub name: String,
    /// The owning client's id, or a saved file's directory; empty if none.
    pub owner: String,
}

/// The order of keys within a kind: as integers when both are, else as
/// text. Blocks cut the same way only when rows come in this order.
pub fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}

/// FNV-1a: a stable hash of a key (the cut points must not change
/// between builds, so not std's hasher).
fn key_hash(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn push_field(out: &mut Vec<u8>, field: &str) {
    for b in field.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

fn unescape(field: &[u8]) -> String {
    let mut out = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        if b == b'\\' {
            match bytes.next() {
                Some(b't') => out.push(b'\t'),
                Some(b'n') => out.push(b'\n'),
                Some(&o) => out.push(o),
                None => {}
            }
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The rows of a block's text: (key, name, owner).
fn block_rows(text: &[u8]) -> impl Iterator<Item = (String, String, String)> + '_ {
    text.split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut fields = line.split(|&b| b == b'\t').map(unescape);
            (
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
                fields.next().unwrap_or_default(),
            )
        })
}

fn decompress(data: &[u8]) -> Result<Vec<u8>> {
    zstd::bulk::decompress(data, MAX_STORED_TEXT).context("a block of the object index is corrupt")
}

/// A block being filled, then sealed.
#[derive(Default)]
struct Block {
    kind: String,
    text: Vec<u8>,
    objects: usize,
    /// The lowest and highest key, when every key is an integer.
    range: Option<(i64, i64)>,
    numeric: bool,
    hash: String,
    data: Vec<u8>,
}

impl Block {
    fn push(&mut self, row: &IndexRow) {
        if self.objects == 0 {
            self.kind.clone_from(&row.kind);
            self.numeric = true;
        }
        match (self.numeric, row.key.parse::<i64>()) {
            (true, Ok(k)) => {
                self.range = Some(self.range.map_or((k, k), |(lo, hi)| (lo.min(k), hi.max(k))));
            }
            _ => {
                self.numeric = false;
                self.range = None;
            }
        }
        push_field(&mut self.text, &row.key);
        self.text.push(b'\t');
        push_field(&mut self.text, &row.name);
        self.text.push(b'\t');
        push_field(&mut self.text, &row.owner);
        self.text.push(b'\n');
        self.objects += 1;
    }

    fn seal(&mut self) -> Result<()> {
        let mut hasher = Sha256::new();
        hasher.update(self.kind.as_bytes());
        hasher.update([0]);
        hasher.update(&self.text);
        self.hash = hex::encode(hasher.finalize());
        self.data = zstd::bulk::compress(&self.text, 3).context("failed to compress the index")?;
        self.text = Vec::new();
        Ok(())
    }
}

/// Writes one copy's index, replacing what it had, in one transaction.
/// Rows come kind by kind, each kind in [`key_order`].
pub struct IndexWriter<'a> {
    tx: mysql::Transaction<'a>,
    backup: u64,
    open: Block,
    last_key: String,
    sealed: Vec<Block>,
    objects: usize,
}

impl<'a> IndexWriter<'a> {
    /// Starts replacing the index of copy `backup`.
    pub fn begin(db: &'a mut Db, backup: u64) -> Result<Self> {
        let mut tx = db
            .conn()
            .start_transaction(mysql::TxOpts::default())
            .context("failed to start a transaction")?;
        forget_in(&mut tx, backup)?;
        Ok(IndexWriter {
            tx,
            backup,
            open: Block::default(),
            last_key: String::new(),
            sealed: Vec::new(),
            objects: 0,
        })
    }

    /// Adds one object. A key equal to the one before (a copy that lists
    /// an object twice) is kept once.
    pub fn push(&mut self, row: &IndexRow) -> Result<()> {
        if self.open.objects > 0 {
            if self.open.kind != row.kind {
                self.cut()?;
            } else if self.last_key == row.key {
                return Ok(());
            }
        }
        self.open.push(row);
        self.last_key.clone_from(&row.key);
        self.objects += 1;
        if key_hash(&row.key).is_multiple_of(CUT_EVERY)
            || self.open.objects >= MAX_BLOCK_OBJECTS
            || self.open.text.len() >= MAX_BLOCK_TEXT
        {
            self.cut()?;
        }
        Ok(())
    }

    fn cut(&mut self) -> Result<()> {
        if self.open.objects == 0 {
            return Ok(());
        }
        let mut block = std::mem::take(&mut self.open);
        block.seal()?;
        self.sealed.push(block);
        let bytes: usize = self.sealed.iter().map(|b| b.data.len()).sum();
        if self.sealed.len() >= BATCH_BLOCKS || bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Stores the sealed blocks the catalog lacks and refers the copy to
    /// all of them.
    fn flush(&mut self) -> Result<()> {
        if self.sealed.is_empty() {
            return Ok(());
        }
        let marks = vec!["?"; self.sealed.len()].join(", ");
        let hashes: Vec<mysql::Value> =
            self.sealed.iter().map(|b| b.hash.as_str().into()).collect();
        // A shared lock: a copy deleted meanwhile cannot take these blocks
        // away before this copy refers to them.
        let present: HashSet<String> = self
            .tx
            .exec::<String, _, _>(
                format!("SELECT hash FROM billmgrops_object_block WHERE hash IN ({marks}) LOCK IN SHARE MODE"),
                hashes.clone(),
            )
            .context("failed to read the object index")?
            .into_iter()
            .collect();
        let missing: Vec<&Block> = self
            .sealed
            .iter()
            .filter(|b| !present.contains(&b.hash))
            .collect();
        if !missing.is_empty() {
            let rows = vec!["(?, ?, ?, ?, ?, ?)"; missing.len()].join(", ");
            let mut params: Vec<mysql::Value> = Vec::with_capacity(missing.len() * 6);
            for b in &missing {
                params.extend([
                    b.hash.as_str().into(),
                    b.kind.as_str().into(),
                    b.range.map(|r| r.0).into(),
                    b.range.map(|r| r.1).into(),
                    (b.objects as u64).into(),
                    b.data.as_slice().into(),
                ]);
            }
            self.tx
                .exec_drop(
                    format!("INSERT IGNORE INTO billmgrops_object_block (hash, kind, lo, hi, objects, data) VALUES {rows}"),
                    params,
                )
                .context("failed to store the object index")?;
        }
        let refs = vec!["(?, ?)"; self.sealed.len()].join(", ");
        let mut params: Vec<mysql::Value> = Vec::with_capacity(hashes.len() * 2);
        for h in hashes {
            params.extend([self.backup.into(), h]);
        }
        self.tx
            .exec_drop(
                format!("INSERT IGNORE INTO billmgrops_copy_block (backup, block) VALUES {refs}"),
                params,
            )
            .context("failed to store the object index")?;
        self.sealed.clear();
        Ok(())
    }

    /// Commits; returns how many objects were indexed.
    pub fn finish(mut self) -> Result<usize> {
        self.cut()?;
        self.flush()?;
        self.tx
            .commit()
            .context("failed to index the copy's objects")?;
        Ok(self.objects)
    }
}

/// Takes copy `backup` out of the index, and the blocks no other copy
/// refers to.
fn forget_in(tx: &mut mysql::Transaction<'_>, backup: u64) -> Result<()> {
    let blocks: Vec<String> = tx
        .exec(
            "SELECT block FROM billmgrops_copy_block WHERE backup = ?",
            (backup,),
        )
        .context("failed to read the object index")?;
    tx.exec_drop(
        "DELETE FROM billmgrops_copy_block WHERE backup = ?",
        (backup,),
    )?;
    for batch in blocks.chunks(500) {
        let marks = vec!["?"; batch.len()].join(", ");
        tx.exec_drop(
            format!(
                "DELETE b FROM billmgrops_object_block b
                 WHERE b.hash IN ({marks})
                   AND NOT EXISTS (SELECT 1 FROM billmgrops_copy_block r WHERE r.block = b.hash)"
            ),
            batch.to_vec(),
        )
        .context("failed to prune the object index")?;
    }
    Ok(())
}

/// [`forget_in`] within the caller's transaction (deleting a copy).
pub fn forget(tx: &mut mysql::Transaction<'_>, backup: u64) -> Result<()> {
    forget_in(tx, backup)
}

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
    page: &super::Page<'_>,
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

/// Moves an index of the older shape (`billmgrops_object`, one row per
/// object per copy) into blocks, copy by copy, then drops it. Run once,
/// by the migration that made the blocks.
pub fn convert_rows(db: &mut Db) -> Result<()> {
    let exists: Option<String> = db
        .conn()
        .query_first(
            "SELECT table_name FROM information_schema.tables
             WHERE table_schema = DATABASE() AND table_name = 'billmgrops_object'",
        )
        .context("failed to look for the older object index")?;
    if exists.is_none() {
        return Ok(());
    }
    let copies: Vec<u64> = db
        .conn()
        .query("SELECT DISTINCT backup FROM billmgrops_object")
        .context("failed to read the older object index")?;
    for backup in copies {
        let mut rows: Vec<IndexRow> = db
            .conn()
            .exec_map(
                "SELECT kind, object_key, name, owner, owner_id FROM billmgrops_object WHERE backup = ?",
                (backup,),
                |(kind, key, name, owner, owner_id): (String, String, String, String, Option<i64>)| {
                    IndexRow {
                        kind,
                        key,
                        name,
                        owner: owner_id.map_or(owner, |id| id.to_string()),
                    }
                },
            )
            .context("failed to read the older object index")?;
        rows.sort_by(|a, b| a.kind.cmp(&b.kind).then_with(|| key_order(&a.key, &b.key)));
        let mut writer = IndexWriter::begin(db, backup)?;
        for row in &rows {
            writer.push(row)?;
        }
        writer.finish()?;
    }
    db.conn()
        .query_drop("DROP TABLE IF EXISTS billmgrops_object")
        .context("failed to drop the older object index")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_as_numbers_then_text() {
        let mut keys = vec!["10", "/etc", "9", "-1", "/a"];
        keys.sort_by(|a, b| key_order(a, b));
        assert_eq!(keys, ["-1", "9", "10", "/a", "/etc"]);
    }

    #[test]
    fn block_text_round_trips_any_field() {
        let row = IndexRow {
            kind: "account".into(),
            key: "7".into(),
            name: "tab\there\nnew line \\ back".into(),
            owner: String::new(),
        };
        let mut block = Block::default();
        block.push(&row);
        let rows: Vec<_> = block_rows(&block.text).collect();
        assert_eq!(rows, [("7".into(), row.name.clone(), String::new())]);
        assert_eq!(block.range, Some((7, 7)));
        block.push(&IndexRow {
            key: "/x".into(),
            ..row
        });
        assert_eq!(block.range, None, "a text key: no range");
    }

    #[test]
    fn cuts_are_a_property_of_keys() {
        // About one key in CUT_EVERY ends a block, whatever came before.
        let cuts = (0..1_000_000)
            .filter(|k: &i64| key_hash(&k.to_string()).is_multiple_of(CUT_EVERY))
            .count();
        assert!((500..2000).contains(&cuts), "{cuts}");
    }
}
