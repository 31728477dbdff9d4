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
//! Lists across copies ([`objects_page`], [`copies_holding`]) read the
//! distinct blocks, never a block per copy, and count, for every object,
//! the good copies that refer to the blocks holding it. A page of objects
//! reads them twice (counts, then the newest rows) and keeps only the rows
//! up to the page's end, so its memory is a few bytes per object.
//!
//! - `write`: a copy's index, written (and forgotten) in one transaction;
//! - `list`: what `backupdata` shows across copies.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

mod list;
mod write;

pub use list::{copies_holding, objects_page, size, IndexSize, OBJECT_SORTS};
pub use write::{convert_rows, forget, IndexWriter};

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

/// A block being filled.
#[derive(Default)]
struct Block {
    kind: String,
    text: Vec<u8>,
    objects: usize,
    /// The lowest and highest key, when every key is an integer.
    range: Option<(i64, i64)>,
    numeric: bool,
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

    /// Names the block by its content and compresses it.
    fn seal(self, compressor: &mut zstd::bulk::Compressor<'_>) -> Result<Sealed> {
        let mut hasher = Sha256::new();
        hasher.update(self.kind.as_bytes());
        hasher.update([0]);
        hasher.update(&self.text);
        Ok(Sealed {
            hash: hex::encode(hasher.finalize()),
            // Level 1: sealing is on a dump's critical path, and the name
            // is of the text, so blocks stored at level 3 stay shared.
            data: compressor
                .compress(&self.text)
                .context("failed to compress the index")?,
            kind: self.kind,
            range: self.range,
            objects: self.objects,
        })
    }
}

/// A block ready for the catalog: named by the SHA-256 of its kind and
/// text, the text compressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub hash: String,
    pub kind: String,
    /// The lowest and highest key, when every key is an integer.
    pub range: Option<(i64, i64)>,
    pub objects: usize,
    pub data: Vec<u8>,
}

/// Cuts a copy's index rows into sealed blocks: the half of writing an
/// index that needs no database, so a dump does it while it finishes the
/// archive. Rows come kind by kind, each kind in [`key_order`]; a key
/// equal to the one before (a copy that lists an object twice) is kept
/// once.
#[derive(Default)]
pub struct Cutter {
    open: Block,
    last_key: String,
    objects: usize,
    /// Level 1 (see `Block::seal`), made at the first cut and kept: a
    /// context per block was a twentieth of sealing.
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl Cutter {
    /// Adds one row; the blocks it closes go to `out`.
    pub fn push(&mut self, row: &IndexRow, out: &mut Vec<Sealed>) -> Result<()> {
        if self.open.objects > 0 {
            if self.open.kind != row.kind {
                self.cut(out)?;
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
            self.cut(out)?;
        }
        Ok(())
    }

    /// Closes the open block, if it holds anything.
    pub fn cut(&mut self, out: &mut Vec<Sealed>) -> Result<()> {
        if self.open.objects > 0 {
            let compressor = match &mut self.compressor {
                Some(c) => c,
                None => self.compressor.insert(zstd::bulk::Compressor::new(1)?),
            };
            out.push(std::mem::take(&mut self.open).seal(compressor)?);
        }
        Ok(())
    }

    /// The objects pushed, each kept once.
    pub fn objects(&self) -> usize {
        self.objects
    }
}

/// Writes one copy's index, replacing what it had, in one transaction.
/// Rows come kind by kind, each kind in [`key_order`].
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
