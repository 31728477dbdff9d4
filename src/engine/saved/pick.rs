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

use super::super::archive::listing::{Chunk, TableEntry};
use super::super::archive::{sha256_hex, Copy};
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
    /// Checked compressed chunks, by their offset in the archive.
    kept: HashMap<u64, Vec<u8>>,
    kept_bytes: u64,
    read: u64,
}

impl<'c, 'a> ChunkReader<'c, 'a> {
    pub fn new(copy: &'c Copy<'a>) -> Self {
        ChunkReader {
            copy,
            kept: HashMap::new(),
            kept_bytes: 0,
            read: 0,
        }
    }

    /// Archive bytes read from the storage so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The rows of one chunk, checked: the entry's SHA-256 (on its first
    /// read), then the decompressed text's size and SHA-256.
    pub fn rows(&mut self, chunk: &Chunk) -> Result<Vec<Vec<Cell>>> {
        let entry = &chunk.entry;
        if let Some(data) = self.kept.get(&entry.offset) {
            return decode_chunk(chunk, data);
        }
        let data = self.copy.read_range(entry.offset, entry.size)?;
        self.read += entry.size;
        anyhow::ensure!(
            sha256_hex(&data) == entry.sha256,
            "chunk `{}` is corrupt",
            entry.path
        );
        let rows = decode_chunk(chunk, &data)?;
        if self.kept_bytes + entry.size <= CACHE_BYTES {
            self.kept_bytes += entry.size;
            self.kept.insert(entry.offset, data);
        }
        Ok(rows)
    }
}

/// The rows of a chunk's checked compressed data.
fn decode_chunk(chunk: &Chunk, data: &[u8]) -> Result<Vec<Vec<Cell>>> {
    let entry = &chunk.entry;
    // At most the listed size (checked against a bound when the listing
    // was read), so a forged frame cannot inflate memory.
    let text = zstd::bulk::decompress(data, chunk.text_size as usize)
        .with_context(|| format!("chunk `{}` does not decompress", entry.path))?;
    anyhow::ensure!(
        text.len() as u64 == chunk.text_size && sha256_hex(&text) == chunk.text_sha256,
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
    let at = table
        .columns
        .iter()
        .position(|c| c == column)
        .with_context(|| format!("table `{}` has no column `{column}`", table.name))?;
    let mut rows = Vec::new();
    for chunk in candidate_chunks(table, column, keys) {
        for row in reader.rows(chunk)? {
            // Rows are indexed by the listing's columns from here on.
            anyhow::ensure!(
                row.len() == table.columns.len(),
                "chunk `{}` of `{}` holds a row of {} fields, the table has {} columns",
                chunk.entry.path,
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
                rows.push(row);
            }
        }
    }
    Ok(rows)
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
    listing: &super::super::archive::Listing,
    kind: &str,
    id: i64,
) -> Result<ObjectView> {
    let k = super::objects::TABLE_KINDS
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
