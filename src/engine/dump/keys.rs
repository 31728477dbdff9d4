//! The key index of a copy (format version 2): for each foreign key that
//! per-object restore follows downward, which frames of the table hold
//! each value, so that restoring one client reads the few frames that
//! hold its rows and not every chunk whose range of clients spans it.
//!
//! Which columns: every single-column integer foreign key to a table's
//! integer key, where that table is one of the saved-object kinds' tables
//! or (transitively) points at one. Keys to lookup tables (currencies,
//! tariffs) are left out: restore only ever reads those by their own key.
//!
//! How, in bounded memory: each worker notes `(value, frame)` of every row
//! it writes, per column, and sends them sorted with its chunk, cut into
//! buckets of the value range (the referenced table's key range, cut so a
//! bucket holds about [`PAIRS_PER_BUCKET`] values). The writer appends the
//! runs to an unnamed temporary file. At the end, bucket by bucket, the
//! runs are read back, numbered across the table's frames, sorted and
//! written as blocks of at most [`PAIRS_PER_BLOCK`] values.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use super::super::format::{self, kinds, KeyBlock};
use super::super::introspect::Table;
use super::super::spill::SpillFile;
use super::Writer;
use crate::db::quote_ident;

/// Values a bucket holds, about (it is cut from the table's row estimate).
const PAIRS_PER_BUCKET: u64 = 16_384;
/// The most buckets of one column.
const MAX_BUCKETS: u64 = 1 << 16;
/// Values per block of the index.
const PAIRS_PER_BLOCK: usize = 16_384;
/// Values sorted at once: a bucket larger than this (a skewed column)
/// becomes several groups of blocks whose ranges overlap.
const MAX_SORTED: usize = 1 << 20;

/// A column of a table that gets a key index.
#[derive(Clone, Debug)]
pub struct KeyColumn {
    pub column: String,
    /// Its place in the table's columns.
    pub position: usize,
    /// The referenced table's key range, and how many buckets cut it.
    pub lo: i64,
    pub hi: i64,
    pub buckets: u32,
}

impl KeyColumn {
    /// The bucket of `value`.
    pub fn bucket(&self, value: i64) -> u32 {
        if self.buckets <= 1 || value <= self.lo {
            return 0;
        }
        if value >= self.hi {
            return self.buckets - 1;
        }
        let span = i128::from(self.hi) - i128::from(self.lo) + 1;
        let at = (i128::from(value) - i128::from(self.lo)) * i128::from(self.buckets) / span;
        at.clamp(0, i128::from(self.buckets - 1)) as u32
    }
}

/// The columns of each table (by index) that get a key index.
pub fn key_columns(conn: &mut Conn, tables: &[Table]) -> Result<Vec<Vec<KeyColumn>>> {
    let by_name: HashMap<&str, &Table> = tables.iter().map(|t| (t.name.as_str(), t)).collect();
    // A single-column foreign key to a table's own integer key.
    let to_key = |fk: &format::ForeignKey| {
        fk.columns.len() == 1
            && by_name.get(fk.ref_table.as_str()).is_some_and(|p| {
                p.integer_key && p.primary_key.len() == 1 && fk.ref_columns == p.primary_key
            })
    };
    let mut reached: BTreeSet<&str> = kinds::TABLE_KINDS
        .iter()
        .map(|k| k.table)
        .filter(|t| by_name.contains_key(t))
        .collect();
    loop {
        let before = reached.len();
        for t in tables {
            if t.foreign_keys
                .iter()
                .any(|fk| to_key(fk) && reached.contains(fk.ref_table.as_str()))
            {
                reached.insert(&t.name);
            }
        }
        if reached.len() == before {
            break;
        }
    }
    let mut ranges: HashMap<String, (i64, i64)> = HashMap::new();
    let mut out = Vec::with_capacity(tables.len());
    for t in tables {
        let mut columns: Vec<KeyColumn> = Vec::new();
        for fk in &t.foreign_keys {
            if !to_key(fk) || !reached.contains(fk.ref_table.as_str()) {
                continue;
            }
            let column = &fk.columns[0];
            let Some(position) = t.columns.iter().position(|c| c == column) else {
                continue;
            };
            if columns.iter().any(|c| &c.column == column) {
                continue;
            }
            let parent = by_name[fk.ref_table.as_str()];
            let (lo, hi) = match ranges.get(&parent.name) {
                Some(r) => *r,
                None => {
                    let key = quote_ident(&parent.primary_key[0]);
                    let r: Option<(Option<i64>, Option<i64>)> = conn
                        .query_first(format!(
                            "SELECT MIN({key}), MAX({key}) FROM {}",
                            quote_ident(&parent.name)
                        ))
                        .with_context(|| {
                            format!("failed to read the key range of `{}`", parent.name)
                        })?;
                    let r = match r {
                        Some((Some(lo), Some(hi))) => (lo, hi),
                        _ => (0, 0),
                    };
                    ranges.insert(parent.name.clone(), r);
                    r
                }
            };
            let buckets = (t.estimated_rows / PAIRS_PER_BUCKET).clamp(1, MAX_BUCKETS) as u32;
            columns.push(KeyColumn {
                column: column.clone(),
                position,
                lo,
                hi,
                buckets,
            });
        }
        out.push(columns);
    }
    Ok(out)
}

/// One chunk's `(value, frame within the chunk)` of one column, in one
/// bucket, sorted.
pub struct KeyRun {
    /// The column's place in its table's [`KeyColumn`]s.
    pub column: usize,
    pub bucket: u32,
    pub pairs: Vec<(i64, u32)>,
}

/// Where one run went.
struct Run {
    unit: usize,
    part: usize,
    offset: u64,
    size: u64,
    /// The pairs' size before compression.
    raw: usize,
}

/// The runs of a dump, by (table, column, bucket), in a temporary file.
pub struct KeySpill {
    file: SpillFile,
    runs: BTreeMap<(usize, usize, u32), Vec<Run>>,
    /// One context for every run: a context per run was a tenth of the
    /// writer thread's time.
    compressor: zstd::bulk::Compressor<'static>,
}

impl KeySpill {
    pub fn new() -> Result<Self> {
        Ok(KeySpill {
            file: SpillFile::new("keys")?,
            runs: BTreeMap::new(),
            compressor: zstd::bulk::Compressor::new(1)?,
        })
    }

    /// Keeps one run of chunk (`unit`, `part`) of `table`.
    pub fn add(&mut self, table: usize, unit: usize, part: usize, run: &KeyRun) -> Result<()> {
        let mut raw = Vec::with_capacity(run.pairs.len() * 12);
        for (value, frame) in &run.pairs {
            raw.extend_from_slice(&value.to_le_bytes());
            raw.extend_from_slice(&frame.to_le_bytes());
        }
        let data = self.compressor.compress(&raw)?;
        let offset = self.file.append(&data)?;
        self.runs
            .entry((table, run.column, run.bucket))
            .or_default()
            .push(Run {
                unit,
                part,
                offset,
                size: data.len() as u64,
                raw: raw.len(),
            });
        Ok(())
    }

    fn pairs_of(
        &self,
        run: &Run,
        decompressor: &mut zstd::bulk::Decompressor<'_>,
    ) -> Result<Vec<(i64, u32)>> {
        let data = self.file.read(run.offset, run.size)?;
        let raw = decompressor
            .decompress(&data, run.raw)
            .context("a key run does not decompress")?;
        Ok(raw
            .chunks_exact(12)
            .map(|p| {
                (
                    i64::from_le_bytes(p[..8].try_into().expect("8 bytes")),
                    u32::from_le_bytes(p[8..].try_into().expect("4 bytes")),
                )
            })
            .collect())
    }

    /// Writes every table's key index into the archive: blocks sorted by
    /// value, frames numbered across each table's chunks. `first_frame`
    /// gives, per table, the number of the first frame of chunk (unit,
    /// part).
    pub fn write(
        &self,
        writer: &mut Writer,
        tables: &[Table],
        columns: &[Vec<KeyColumn>],
        first_frame: &[HashMap<(usize, usize), u64>],
    ) -> Result<Vec<BTreeMap<String, Vec<KeyBlock>>>> {
        let mut out: Vec<BTreeMap<String, Vec<KeyBlock>>> = vec![BTreeMap::new(); tables.len()];
        let mut numbers: HashMap<(usize, usize), usize> = HashMap::new();
        let mut group: Vec<(i64, u64)> = Vec::new();
        let mut decompressor = zstd::bulk::Decompressor::new()?;
        for (&(t, c, _), list) in &self.runs {
            let column = &columns[t][c].column;
            let prefix = format!("keys/{}/{column}", tables[t].name);
            let number = numbers.entry((t, c)).or_default();
            let blocks = out[t].entry(column.clone()).or_default();
            for (i, run) in list.iter().enumerate() {
                let base = first_frame[t]
                    .get(&(run.unit, run.part))
                    .copied()
                    .context("a key run of a chunk that was not written")?;
                group.extend(
                    self.pairs_of(run, &mut decompressor)?
                        .into_iter()
                        .map(|(v, f)| (v, base + u64::from(f))),
                );
                // A bucket ends with its last run; a skewed one earlier.
                if group.len() >= MAX_SORTED || i + 1 == list.len() {
                    blocks.extend(write_blocks(writer, &prefix, &mut group, number)?);
                }
            }
        }
        Ok(out)
    }
}

/// Sorts `group` and writes it as blocks `<prefix>/<n>.tsv.zst`, `n`
/// counting on from `number`.
fn write_blocks(
    writer: &mut Writer,
    prefix: &str,
    group: &mut Vec<(i64, u64)>,
    number: &mut usize,
) -> Result<Vec<KeyBlock>> {
    group.sort_unstable();
    group.dedup();
    let mut out = Vec::new();
    for block in group.chunks(PAIRS_PER_BLOCK) {
        let mut text = Vec::with_capacity(block.len() * 10);
        // Values as the difference from the line before (the first as it
        // is): sorted, they differ little, and zstd halves the index.
        let mut previous = 0i64;
        let mut numbers = itoa::Buffer::new();
        for (i, (value, frame)) in block.iter().enumerate() {
            let shown = if i == 0 {
                *value
            } else {
                value.wrapping_sub(previous)
            };
            text.extend_from_slice(numbers.format(shown).as_bytes());
            text.push(b'\t');
            text.extend_from_slice(numbers.format(*frame).as_bytes());
            text.push(b'\n');
            previous = *value;
        }
        let path = format!("{prefix}/{:05}.tsv.zst", *number);
        *number += 1;
        // Level 1, as the data: the index is a few hundred KB either way.
        let entry = writer.append(&path, &zstd::bulk::compress(&text, 1)?)?;
        out.push(KeyBlock {
            first: block[0].0,
            last: block[block.len() - 1].0,
            entry,
        });
    }
    group.clear();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cut_the_referenced_range_evenly() {
        let c = KeyColumn {
            column: "account".into(),
            position: 1,
            lo: 1,
            hi: 100,
            buckets: 4,
        };
        let of: Vec<u32> = [-5, 1, 25, 26, 50, 51, 100, 1000]
            .iter()
            .map(|&v| c.bucket(v))
            .collect();
        assert_eq!(of, [0, 0, 0, 1, 1, 2, 3, 3]);
        let one = KeyColumn { buckets: 1, ..c };
        assert_eq!(one.bucket(77), 0);
    }
}
