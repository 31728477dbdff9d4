//! Reading only what holds given rows: the chunks of a table that can hold
//! rows whose key (or foreign key) is one of a set, found from the
//! listing's per-chunk key ranges, and those chunks read by ranged reads
//! and checked against the listing. Per-object restore is built on this:
//! one client from a multi-gigabyte copy costs the few chunks that hold its
//! rows, not the archive. A [`ChunkReader`] reads each chunk from the
//! storage once: the compressed chunks it has read are kept (up to
//! [`CACHE_BYTES`]) for the next table or key that needs them.

use std::collections::{BTreeSet, HashMap};

use anyhow::{Context, Result};

use super::super::archive::{sha256_hex, Copy};
use super::super::format::{kinds, Chunk, KeyBlock, TableEntry};
use super::super::tsv::{self, Cell};

/// The chunks of `table` that can hold rows whose `column` is one of
/// `keys`: by the chunk's key range when `column` is the integer primary
/// key, by the chunk's range of that foreign key otherwise; a chunk with
/// no range for the column may hold anything and is always picked.
pub fn candidate_chunks<'l>(
    table: &'l TableEntry,
    column: &str,
    keys: &BTreeSet<i64>,
) -> Vec<&'l Chunk> {
    if keys.is_empty() {
        return Vec::new();
    }
    let is_key = table.primary_key.len() == 1 && table.primary_key[0] == column;
    table
        .chunks
        .iter()
        .filter(|c| {
            let range = if is_key {
                c.first_key.zip(c.last_key)
            } else {
                c.ranges.get(column).map(|r| (r[0], r[1]))
            };
            match range {
                Some((lo, hi)) => keys.range(lo..=hi).next().is_some(),
                None => true,
            }
        })
        .collect()
}

/// Compressed chunks a [`ChunkReader`] keeps, at most.
pub const CACHE_BYTES: u64 = 64 << 20;

/// Reads chunks of one copy, each from the storage once (while the kept
/// chunks fit in [`CACHE_BYTES`]), and counts the bytes read.
pub struct ChunkReader<'c, 'a> {
    copy: &'c Copy<'a>,
    /// What it keeps at most: [`CACHE_BYTES`], or nothing for a reader
    /// that reads each chunk once anyway.
    cache: u64,
    /// Checked compressed chunks, by their offset in the archive.
    kept: HashMap<u64, Vec<u8>>,
    kept_bytes: u64,
    read: u64,
}

impl<'c, 'a> ChunkReader<'c, 'a> {
    pub fn new(copy: &'c Copy<'a>) -> Self {
        ChunkReader {
            copy,
            cache: CACHE_BYTES,
            kept: HashMap::new(),
            kept_bytes: 0,
            read: 0,
        }
    }

    /// A reader that keeps nothing: for reading a table through once.
    pub fn once(copy: &'c Copy<'a>) -> Self {
        ChunkReader {
            cache: 0,
            ..ChunkReader::new(copy)
        }
    }

    /// Archive bytes read from the storage so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// `size` bytes of the archive at `offset`: kept ones, or a ranged
    /// read (kept while they fit). `check` runs on a first read.
    fn fetch(
        &mut self,
        offset: u64,
        size: u64,
        check: impl FnOnce(&[u8]) -> Result<()>,
    ) -> Result<Vec<u8>> {
        if let Some(data) = self.kept.get(&offset).filter(|d| d.len() as u64 == size) {
            return Ok(data.clone());
        }
        let data = self.copy.read_range(offset, size)?;
        self.read += size;
        check(&data)?;
        if self.kept_bytes + size <= self.cache {
            self.kept_bytes += size;
            self.kept.insert(offset, data.clone());
        }
        Ok(data)
    }

    /// The rows of one chunk, checked: the entry's SHA-256 (on its first
    /// read), then the decompressed text's size and SHA-256.
    pub fn rows(&mut self, chunk: &Chunk) -> Result<Vec<Vec<Cell>>> {
        let entry = &chunk.entry;
        let data = self.fetch(entry.offset, entry.size, |data| {
            anyhow::ensure!(
                sha256_hex(data) == entry.sha256,
                "chunk `{}` is corrupt",
                entry.path
            );
            Ok(())
        })?;
        decode_chunk(chunk, &data)
    }

    /// The compressed data of `frames`, in order: kept ones from memory,
    /// the others by ranged reads [`PARALLEL_READS`] at a time. A remote
    /// storage answers each read after a round trip: one after another,
    /// the few hundred frames of one client took half a minute from S3.
    fn fetch_frames(&mut self, frames: &[FrameAt<'_>]) -> Result<Vec<Vec<u8>>> {
        let kept = |f: &FrameAt<'_>| {
            self.kept
                .get(&f.offset)
                .is_some_and(|d| d.len() as u64 == f.size)
        };
        let missing: Vec<(u64, u64)> = frames
            .iter()
            .filter(|f| !kept(f))
            .map(|f| (f.offset, f.size))
            .collect();
        let copy = self.copy;
        let per_thread = missing.len().div_ceil(PARALLEL_READS).max(1);
        let read: Vec<Result<Vec<u8>>> = std::thread::scope(|s| {
            let readers: Vec<_> = missing
                .chunks(per_thread)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|&(offset, size)| copy.read_range(offset, size))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            readers
                .into_iter()
                .flat_map(|r| {
                    r.join()
                        .unwrap_or_else(|_| vec![Err(anyhow::anyhow!("a read panicked"))])
                })
                .collect()
        });
        let mut read = missing.iter().zip(read);
        let mut out = Vec::with_capacity(frames.len());
        for f in frames {
            if let Some(data) = self
                .kept
                .get(&f.offset)
                .filter(|d| d.len() as u64 == f.size)
            {
                out.push(data.clone());
                continue;
            }
            let (&(offset, size), data) = read.next().context("a frame was not read")?;
            let data = data?;
            anyhow::ensure!(data.len() as u64 == size, "a short read at {offset}");
            self.read += size;
            if self.kept_bytes + size <= self.cache {
                self.kept_bytes += size;
                self.kept.insert(offset, data.clone());
            }
            out.push(data);
        }
        Ok(out)
    }

    /// The rows of one frame of a chunk (format version 2) from its
    /// compressed `data`, checked by the frame's own content checksum,
    /// which zstd verifies.
    fn frame_rows(frame: FrameAt<'_>, data: &[u8]) -> Result<Vec<Vec<Cell>>> {
        let text = zstd::bulk::decompress(data, frame.chunk.text_size as usize)
            .with_context(|| format!("a frame of chunk `{}` is corrupt", frame.chunk.entry.path))?;
        anyhow::ensure!(
            text.last().is_none_or(|&b| b == b'\n'),
            "a frame of chunk `{}` ends inside a row",
            frame.chunk.entry.path
        );
        Ok(tsv::parse_rows(&text))
    }

    /// The `(value, frame)` lines of a block of a key index, checked.
    fn key_block(&mut self, block: &KeyBlock) -> Result<Vec<(i64, u64)>> {
        let entry = &block.entry;
        let data = self.fetch(entry.offset, entry.size, |data| {
            anyhow::ensure!(
                sha256_hex(data) == entry.sha256,
                "key index entry `{}` is corrupt",
                entry.path
            );
            Ok(())
        })?;
        let text = zstd::bulk::decompress(&data, MAX_KEY_BLOCK)
            .with_context(|| format!("key index entry `{}` is corrupt", entry.path))?;
        // The first value as it is, each next as the difference.
        let mut value = 0i64;
        let mut out = Vec::new();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let Some((v, f)) = std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.split_once('\t'))
                .and_then(|(v, f)| Some((v.parse::<i64>().ok()?, f.parse::<u64>().ok()?)))
            else {
                continue;
            };
            value = if i == 0 { v } else { value.wrapping_add(v) };
            out.push((value, f));
        }
        Ok(out)
    }
}

/// Ranged reads a [`ChunkReader`] has in flight at once, at most.
const PARALLEL_READS: usize = 8;
/// Compressed frames read ahead of parsing, at most (bytes).
const AHEAD_BYTES: u64 = 8 << 20;

/// `frames` cut into runs of at most `bytes` (a frame larger than that
/// is a run of its own).
fn batches<'f, 'l>(frames: &'f [FrameAt<'l>], bytes: u64) -> Vec<&'f [FrameAt<'l>]> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, f) in frames.iter().enumerate() {
        if i > start && size + f.size > bytes {
            out.push(&frames[start..i]);
            (start, size) = (i, 0);
        }
        size += f.size;
    }
    if start < frames.len() {
        out.push(&frames[start..]);
    }
    out
}

/// The text of a key index block, at most (16,384 lines of two numbers).
const MAX_KEY_BLOCK: usize = 1 << 20;

/// One frame of a table's chunks, located in the archive.
#[derive(Clone, Copy)]
struct FrameAt<'l> {
    chunk: &'l Chunk,
    offset: u64,
    size: u64,
}

/// Every frame of `table`, numbered across its chunks in order (a chunk
/// of one frame counts one).
fn frames_of(table: &TableEntry) -> Vec<FrameAt<'_>> {
    let mut out = Vec::new();
    for chunk in &table.chunks {
        if chunk.frames.is_empty() {
            out.push(FrameAt {
                chunk,
                offset: chunk.entry.offset,
                size: chunk.entry.size,
            });
            continue;
        }
        let mut offset = chunk.entry.offset;
        for &size in &chunk.frames {
            out.push(FrameAt {
                chunk,
                offset,
                size,
            });
            offset += size;
        }
    }
    out
}

/// The frames of `table` that can hold rows whose `column` is one of
/// `keys`, when the copy says (format version 2): by each frame's first
/// key for the table's integer key, by the key index for a foreign key.
/// `None` when the copy does not say (then whole chunks are read).
fn frames_holding<'l>(
    reader: &mut ChunkReader<'_, '_>,
    table: &'l TableEntry,
    column: &str,
    keys: &BTreeSet<i64>,
) -> Result<Option<Vec<FrameAt<'l>>>> {
    let all = frames_of(table);
    let is_key = table.primary_key.len() == 1 && table.primary_key[0] == column;
    if is_key && table.chunks.iter().all(|c| !c.frame_keys.is_empty()) {
        let mut out = Vec::new();
        let mut n = 0;
        for c in &table.chunks {
            let count = c.frames.len().max(1);
            if let (Some(lo), Some(hi)) = (c.first_key, c.last_key) {
                for i in 0..count {
                    let from = c.frame_keys[i].max(lo);
                    let hit = match c.frame_keys.get(i + 1) {
                        Some(&next) => keys.range(from..next).next().is_some(),
                        None => from <= hi && keys.range(from..=hi).next().is_some(),
                    };
                    if hit {
                        out.push(all[n + i]);
                    }
                }
            }
            n += count;
        }
        return Ok(Some(out));
    }
    let Some(blocks) = table.keys.get(column) else {
        return Ok(None);
    };
    let mut numbers = BTreeSet::new();
    for block in blocks
        .iter()
        .filter(|b| keys.range(b.first..=b.last).next().is_some())
    {
        for (value, frame) in reader.key_block(block)? {
            if keys.contains(&value) {
                numbers.insert(frame);
            }
        }
    }
    numbers
        .into_iter()
        .map(|n| {
            usize::try_from(n)
                .ok()
                .and_then(|n| all.get(n).copied())
                .with_context(|| {
                    format!(
                        "the key index of `{}` names frame {n}, which the table does not have",
                        table.name
                    )
                })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// The rows of a chunk's checked compressed data.
fn decode_chunk(chunk: &Chunk, data: &[u8]) -> Result<Vec<Vec<Cell>>> {
    let entry = &chunk.entry;
    // At most the listed size (checked against a bound when the listing
    // was read), so a forged frame cannot inflate memory.
    let text = zstd::bulk::decompress(data, chunk.text_size as usize)
        .with_context(|| format!("chunk `{}` does not decompress", entry.path))?;
    anyhow::ensure!(
        text.len() as u64 == chunk.text_size
            && (chunk.text_sha256.is_empty() || sha256_hex(&text) == chunk.text_sha256),
        "chunk `{}` decompresses to other text than was saved",
        entry.path
    );
    Ok(tsv::parse_rows(&text))
}

/// The rows of `table` whose `column` is one of `keys`, reading only the
/// candidate chunks.
pub fn rows_where(
    reader: &mut ChunkReader<'_, '_>,
    table: &TableEntry,
    column: &str,
    keys: &BTreeSet<i64>,
) -> Result<Vec<Vec<Cell>>> {
    let mut rows = Vec::new();
    each_row_where(reader, table, column, keys, &mut |row| {
        rows.push(row);
        Ok(())
    })?;
    Ok(rows)
}

/// Where restoring objects reads saved rows: a copy's chunks
/// ([`ChunkReader`]), or a restore's staged tables
/// ([`super::staged_rows::StagedRows`]).
pub trait RowSource {
    /// Each row of `table` whose `column` holds one of `keys`, indexed
    /// by the listing's columns.
    fn each_row_where(
        &mut self,
        table: &TableEntry,
        column: &str,
        keys: &BTreeSet<i64>,
        each: &mut dyn FnMut(Vec<Cell>) -> Result<()>,
    ) -> Result<()>;

    /// Bytes read from a storage so far.
    fn bytes_read(&self) -> u64;
}

impl RowSource for ChunkReader<'_, '_> {
    fn each_row_where(
        &mut self,
        table: &TableEntry,
        column: &str,
        keys: &BTreeSet<i64>,
        each: &mut dyn FnMut(Vec<Cell>) -> Result<()>,
    ) -> Result<()> {
        each_row_where(self, table, column, keys, each)
    }

    fn bytes_read(&self) -> u64 {
        self.read
    }
}

/// [`rows_where`], handing each row to `each` as its frame or chunk is
/// read, so that no more than one piece is in memory at a time.
pub fn each_row_where(
    reader: &mut ChunkReader<'_, '_>,
    table: &TableEntry,
    column: &str,
    keys: &BTreeSet<i64>,
    each: &mut dyn FnMut(Vec<Cell>) -> Result<()>,
) -> Result<()> {
    let at = table
        .columns
        .iter()
        .position(|c| c == column)
        .with_context(|| format!("table `{}` has no column `{column}`", table.name))?;
    // Each piece (a frame, or a whole chunk) is parsed, filtered and let
    // go before the next is read.
    let mut keep = |piece: Vec<Vec<Cell>>| -> Result<()> {
        for row in piece {
            // Rows are indexed by the listing's columns from here on.
            anyhow::ensure!(
                row.len() == table.columns.len(),
                "a chunk of `{}` holds a row of {} fields, the table has {} columns",
                table.name,
                row.len(),
                table.columns.len()
            );
            let key = row
                .get(at)
                .and_then(|c| c.as_deref())
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|s| s.parse::<i64>().ok());
            if key.is_some_and(|k| keys.contains(&k)) {
                each(row)?;
            }
        }
        Ok(())
    };
    let before = reader.bytes_read();
    let how = match frames_holding(reader, table, column, keys)? {
        Some(frames) => {
            let n = frames.len();
            // A batch of frames is read at once, then parsed one by one.
            for batch in batches(&frames, AHEAD_BYTES) {
                let data = reader.fetch_frames(batch)?;
                for (frame, data) in batch.iter().zip(data) {
                    keep(ChunkReader::frame_rows(*frame, &data)?)?;
                }
            }
            format!("{n} frames")
        }
        None => {
            let chunks = candidate_chunks(table, column, keys);
            let n = chunks.len();
            for chunk in chunks {
                keep(reader.rows(chunk)?)?;
            }
            format!("{n} chunks")
        }
    };
    log::debug!(
        "{}.{column}: {} keys, {how}, {} bytes read",
        table.name,
        keys.len(),
        reader.bytes_read() - before
    );
    Ok(())
}

/// One saved object and the rows that point at it, as a copy holds them.
#[derive(Debug, serde::Serialize)]
pub struct ObjectView {
    pub kind: String,
    pub id: i64,
    /// Table name, then each row as column -> value (NULL as null, bytes
    /// as UTF-8 with invalid sequences replaced).
    pub tables: Vec<(String, Vec<serde_json::Map<String, serde_json::Value>>)>,
    /// Archive bytes read, and the archive's size.
    pub bytes_read: u64,
    pub archive_size: u64,
}

/// The object `kind`/`id` in a copy: its own row, and the rows of every
/// table with a foreign key to its table that point at it; reading only
/// the chunks that can hold them.
pub fn show_object(
    copy: &Copy<'_>,
    listing: &super::super::format::Listing,
    kind: &str,
    id: i64,
) -> Result<ObjectView> {
    let k = kinds::TABLE_KINDS
        .iter()
        .find(|k| k.kind == kind)
        .with_context(|| format!("`{kind}` is not a kind of saved object"))?;
    let table = |name: &str| listing.tables.iter().find(|t| t.name == name);
    let own = table(k.table).with_context(|| format!("the copy has no table `{}`", k.table))?;
    let keys: BTreeSet<i64> = [id].into();
    let mut view = ObjectView {
        kind: kind.to_string(),
        id,
        tables: Vec::new(),
        bytes_read: 0,
        archive_size: listing.archive.as_ref().map_or(0, |a| a.size),
    };
    let as_json = |t: &TableEntry, rows: Vec<Vec<Cell>>| {
        rows.into_iter()
            .map(|row| {
                t.columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| {
                        let v = match v {
                            None => serde_json::Value::Null,
                            Some(b) => String::from_utf8_lossy(&b).into_owned().into(),
                        };
                        (c.clone(), v)
                    })
                    .collect()
            })
            .collect::<Vec<_>>()
    };
    let mut reader = ChunkReader::new(copy);
    let rows = rows_where(&mut reader, own, k.id, &keys)?;
    anyhow::ensure!(!rows.is_empty(), "the copy does not hold {kind} {id}");
    view.tables.push((own.name.clone(), as_json(own, rows)));
    for t in &listing.tables {
        for fk in t.foreign_keys.iter().filter(|fk| {
            fk.ref_table == own.name && fk.columns.len() == 1 && fk.ref_columns == [k.id]
        }) {
            let rows = rows_where(&mut reader, t, &fk.columns[0], &keys)?;
            if !rows.is_empty() {
                view.tables.push((t.name.clone(), as_json(t, rows)));
            }
        }
    }
    view.bytes_read = reader.bytes_read();
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_in_runs_of_bounded_size() {
        let c = Chunk::default();
        let frames: Vec<FrameAt<'_>> = [3, 4, 2, 9, 1]
            .iter()
            .map(|&size| FrameAt {
                chunk: &c,
                offset: 0,
                size,
            })
            .collect();
        let sizes = |runs: Vec<&[FrameAt<'_>]>| -> Vec<Vec<u64>> {
            runs.iter()
                .map(|r| r.iter().map(|f| f.size).collect())
                .collect()
        };
        assert_eq!(
            sizes(batches(&frames, 7)),
            [vec![3, 4], vec![2], vec![9], vec![1]]
        );
        assert_eq!(sizes(batches(&frames, 100)), [vec![3, 4, 2, 9, 1]]);
        assert!(batches(&[], 7).is_empty());
    }

    fn chunk(first: i64, last: i64, account: Option<[i64; 2]>) -> Chunk {
        let mut c = Chunk {
            first_key: Some(first),
            last_key: Some(last),
            ..Chunk::default()
        };
        if let Some(r) = account {
            c.ranges.insert("account".into(), r);
        }
        c
    }

    #[test]
    fn only_chunks_whose_ranges_can_hold_the_keys_are_picked() {
        let table = TableEntry {
            name: "item".into(),
            columns: vec!["id".into(), "account".into()],
            primary_key: vec!["id".into()],
            chunks: vec![
                chunk(1, 100, Some([1, 10])),
                chunk(101, 200, Some([10, 20])),
                chunk(201, 300, None),
            ],
            ..TableEntry::default()
        };
        let keys = |k: &[i64]| k.iter().copied().collect::<BTreeSet<i64>>();
        let firsts = |cs: Vec<&Chunk>| cs.iter().map(|c| c.first_key.unwrap()).collect::<Vec<_>>();
        assert_eq!(firsts(candidate_chunks(&table, "id", &keys(&[150]))), [101]);
        assert_eq!(
            firsts(candidate_chunks(&table, "id", &keys(&[5, 250]))),
            [1, 201]
        );
        assert_eq!(
            firsts(candidate_chunks(&table, "id", &keys(&[999]))),
            Vec::<i64>::new()
        );
        // By foreign key; a chunk without a range for it is always read.
        assert_eq!(
            firsts(candidate_chunks(&table, "account", &keys(&[15]))),
            [101, 201]
        );
        assert_eq!(
            firsts(candidate_chunks(&table, "account", &keys(&[10]))),
            [1, 101, 201]
        );
        assert!(candidate_chunks(&table, "account", &keys(&[])).is_empty());
    }
}
