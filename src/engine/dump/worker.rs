//! The workers: each takes units off the shared queue, streams the rows
//! of its snapshot, cuts them into text chunks of about `chunk_bytes`,
//! compresses each and hands it to the one archive writer over a bounded
//! channel, noting what the listing indexes (keys, foreign-key ranges,
//! saved objects) as the rows pass.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};
use mysql::prelude::Queryable;
use mysql::Value;

use super::super::archive;
use super::super::format::kinds;
use super::super::format::kinds::Positions;
use super::super::format::SavedObject;
use super::super::introspect::Table;
use super::super::tsv;
use super::keys::{KeyColumn, KeyRun};
use super::snapshot::{Reader, Unit};
use super::DumpOptions;
use crate::db::quote_ident;
use crate::db::wire::{Row, Span};

/// What the workers share.
pub(super) struct Shared {
    pub tables: Vec<Table>,
    pub queue: Mutex<VecDeque<Unit>>,
    pub failed: AtomicBool,
    pub rows_done: AtomicU64,
    pub opts: DumpOptions,
    /// Per table, the columns that get a key index (`keys`).
    pub keys: Vec<Vec<KeyColumn>>,
}

/// Text per frame of a chunk, about: a frame ends at the first row end
/// past this. Small enough that one client's rows cost a few frames, large
/// enough that zstd compresses as well as it does whole chunks (measured:
/// 3 % smaller on billing rows, as zstd tunes itself to small inputs).
pub(super) const FRAME_TEXT: usize = 128 << 10;

/// The level each chunk's first frame is also compressed at, when the
/// configured one is lower; the chunk keeps it when it saves at least
/// [`RICHER_GAIN`]. Billing rows cut into 128 KiB frames come out smaller
/// at level 1 than at 3 (zstd's small-input parameters), while rows of
/// structured binary and XML (logs, a module's saved state) come out 7–10 %
/// smaller at 3 for a third more of the compressor's time (measured on the
/// binary bench shape's `itemlog`: 247.0 against 228.7 MB, 371 against
/// 248 MB/s; `item`: 17.8 against 19.1 MB). Chosen per chunk, so a table
/// whose rows change along it follows them; no reader needs to know.
const RICHER_LEVEL: i32 = 3;

/// The share of its first frame a richer level must save for a chunk to
/// keep it, in thousandths.
const RICHER_GAIN: usize = 30;

/// A compressed chunk on its way to the writer.
pub(super) struct Part {
    pub table: usize,
    pub unit: usize,
    pub part: usize,
    pub data: Vec<u8>,
    pub rows: u64,
    pub text_size: u64,
    pub first_key: Option<i64>,
    pub last_key: Option<i64>,
    /// Min and max of each integer foreign key column in the chunk.
    pub ranges: BTreeMap<String, [i64; 2]>,
    /// The objects (of `engine::saved::objects` kinds) among the chunk's
    /// rows, as a frame of the objects entry.
    pub objects: Option<ObjectsFrame>,
    /// The compressed size of each frame (empty: one frame), and the key
    /// of each frame's first row (tables with an integer key).
    pub frames: Vec<u64>,
    pub frame_keys: Vec<i64>,
    /// The key index's runs of this chunk.
    pub key_runs: Vec<KeyRun>,
}

/// One chunk's objects, compressed (`archive::objects::frame`).
pub(super) struct ObjectsFrame {
    /// The kind's place in `saved::objects::kinds`.
    pub rank: usize,
    pub first: i64,
    pub last: i64,
    pub data: Vec<u8>,
}

/// An integer cell, as the text protocol sends it.
fn int_cell(row: &Row<'_>, i: usize) -> Option<i64> {
    parse_i64(row.get(i)?)
}

/// An integer's decimal text (a sign, then digits) as `str::parse` reads
/// it, without the detour through `str`; `None` for anything else or out
/// of range.
fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        n = n.checked_mul(10)?;
        n = if negative {
            n.checked_sub(d)?
        } else {
            n.checked_add(d)?
        };
    }
    Some(n)
}

/// Runs units until the queue is empty or another worker failed; a
/// failure goes down the channel.
pub(super) fn worker(mut conn: Reader, shared: Arc<Shared>, tx: SyncSender<Result<Part>>) {
    let run = |conn: &mut Reader| -> Result<()> {
        loop {
            if shared.failed.load(Ordering::Relaxed) {
                // The connection closes with its transaction, maybe
                // mid-result.
                return Ok(());
            }
            let Some(unit) = shared.queue.lock().expect("queue lock").pop_front() else {
                break;
            };
            dump_unit(conn, &shared, &unit, &tx)?;
        }
        conn.query_drop("COMMIT")?;
        Ok(())
    };
    if let Err(e) = run(&mut conn) {
        shared.failed.store(true, Ordering::Relaxed);
        let _ = tx.send(Err(e));
    }
}

/// The `SELECT` of a unit: its columns, its key range, in key order.
fn select(table: &Table, unit: &Unit) -> String {
    let list = |columns: &[String]| {
        columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let order = if table.primary_key.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", list(&table.primary_key))
    };
    let filter = match unit.range {
        Some((lo, hi)) => {
            let key = quote_ident(&table.primary_key[0]);
            match (lo, hi) {
                (Some(lo), Some(hi)) => format!(" WHERE {key} >= {lo} AND {key} < {hi}"),
                (Some(lo), None) => format!(" WHERE {key} >= {lo}"),
                (None, Some(hi)) => format!(" WHERE {key} < {hi}"),
                (None, None) => String::new(),
            }
        }
        None => String::new(),
    };
    format!(
        "SELECT {} FROM {}{filter}{order}",
        list(&table.columns),
        quote_ident(&table.name)
    )
}

/// Where in a row the listing's index finds its values.
struct RowShape {
    /// The single integer primary key.
    key: Option<usize>,
    /// Single-column foreign keys: (column, position).
    foreign_keys: Vec<(String, usize)>,
    /// The saved-object kind kept in this table.
    object: Option<(&'static str, Positions)>,
}

impl RowShape {
    fn of(table: &Table) -> RowShape {
        let at = |c: &str| table.columns.iter().position(|x| x == c);
        RowShape {
            key: table
                .integer_key
                .then(|| at(&table.primary_key[0]))
                .flatten(),
            foreign_keys: table
                .foreign_keys
                .iter()
                .filter(|fk| fk.columns.len() == 1)
                .filter_map(|fk| at(&fk.columns[0]).map(|i| (fk.columns[0].clone(), i)))
                .collect(),
            object: kinds::of_table(&table.name)
                .and_then(|k| k.positions(&table.columns).map(|p| (k.kind, p))),
        }
    }
}

/// The chunk a worker is building: rows as text, and what the listing
/// indexes about them.
struct ChunkBuilder<'a> {
    shared: &'a Shared,
    unit: &'a Unit,
    tx: &'a SyncSender<Result<Part>>,
    shape: RowShape,
    /// Per column of the result set: copied unscanned (`tsv::is_plain`).
    plain: Vec<bool>,
    text: Vec<u8>,
    rows: u64,
    part: usize,
    first_key: Option<i64>,
    last_key: Option<i64>,
    /// Min and max so far of each of `shape.foreign_keys`.
    ranges: Vec<Option<[i64; 2]>>,
    objects: Vec<SavedObject>,
    /// Where each frame after the first starts in `text`.
    frame_starts: Vec<usize>,
    frame_keys: Vec<i64>,
    /// Per key column, `(value, frame)` of the rows so far.
    pairs: Vec<Vec<(i64, u32)>>,
    compressor: zstd::bulk::Compressor<'static>,
    /// At [`RICHER_LEVEL`], where the configured level is lower.
    richer: Option<zstd::bulk::Compressor<'static>>,
}

impl<'a> ChunkBuilder<'a> {
    fn new(
        shared: &'a Shared,
        unit: &'a Unit,
        tx: &'a SyncSender<Result<Part>>,
        plain: Vec<bool>,
    ) -> Result<Self> {
        let compressor = frame_compressor(shared.opts.compression_level)?;
        let richer = match shared.opts.compression_level < RICHER_LEVEL {
            true => Some(frame_compressor(RICHER_LEVEL)?),
            false => None,
        };
        let shape = RowShape::of(&shared.tables[unit.table]);
        Ok(ChunkBuilder {
            ranges: vec![None; shape.foreign_keys.len()],
            shared,
            unit,
            tx,
            shape,
            plain,
            text: Vec::with_capacity(shared.opts.chunk_bytes + (64 << 10)),
            rows: 0,
            part: 0,
            first_key: None,
            last_key: None,
            objects: Vec::new(),
            frame_starts: Vec::new(),
            frame_keys: Vec::new(),
            pairs: vec![Vec::new(); shared.keys[unit.table].len()],
            compressor,
            richer,
        })
    }

    fn push_row(&mut self, row: Row<'_>) {
        let frame_start = self.frame_starts.last().copied().unwrap_or(0);
        let new_frame = if self.rows == 0 {
            true
        } else if self.text.len() - frame_start >= FRAME_TEXT {
            self.frame_starts.push(self.text.len());
            true
        } else {
            false
        };
        let frame = self.frame_starts.len() as u32;
        if let Some(k) = self.shape.key {
            let key = int_cell(&row, k);
            if self.first_key.is_none() {
                self.first_key = key;
            }
            self.last_key = key;
            if new_frame {
                self.frame_keys.push(key.unwrap_or(i64::MIN));
            }
        }
        for (pairs, column) in self
            .pairs
            .iter_mut()
            .zip(&self.shared.keys[self.unit.table])
        {
            if let Some(v) = int_cell(&row, column.position) {
                if pairs.last() != Some(&(v, frame)) {
                    pairs.push((v, frame));
                }
            }
        }
        for ((_, i), range) in self.shape.foreign_keys.iter().zip(&mut self.ranges) {
            if let Some(v) = int_cell(&row, *i) {
                let r = range.get_or_insert([v, v]);
                r[0] = r[0].min(v);
                r[1] = r[1].max(v);
            }
        }
        if let Some((kind, at)) = self.shape.object {
            if let Some(id) = int_cell(&row, at.id) {
                let name = row
                    .get(at.name)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                self.objects.push(SavedObject {
                    kind: kind.to_string(),
                    id,
                    name,
                    owner: at.owner.and_then(|o| int_cell(&row, o)),
                });
            }
        }
        tsv::push_row(&mut self.text, row, &self.plain);
        self.rows += 1;
    }

    /// Adds a row, sending the chunk on when it is full; `false` when
    /// another worker failed and this one should stop.
    fn add(&mut self, row: Row<'_>) -> Result<bool> {
        self.push_row(row);
        if self.text.len() >= self.shared.opts.chunk_bytes {
            self.flush()?;
            return Ok(!self.shared.failed.load(Ordering::Relaxed));
        }
        Ok(true)
    }

    /// Compresses the rows so far and sends them as the next part.
    fn flush(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let table = &self.shared.tables[self.unit.table];
        let mut data = Vec::with_capacity(self.text.len() / 3);
        let mut frames = Vec::with_capacity(self.frame_starts.len() + 1);
        let ends = self.frame_starts.iter().copied().chain([self.text.len()]);
        let mut start = 0;
        let mut richer = false;
        let failed = || format!("failed to compress a chunk of `{}`", table.name);
        for end in ends {
            let text = &self.text[start..end];
            let frame = match (&mut self.richer, start) {
                (Some(r), 0) => {
                    let fast = self.compressor.compress(text).with_context(failed)?;
                    let rich = r.compress(text).with_context(failed)?;
                    richer = (fast.len() - rich.len().min(fast.len())) * 1000
                        >= fast.len() * RICHER_GAIN;
                    if richer {
                        rich
                    } else {
                        fast
                    }
                }
                (Some(r), _) if richer => r.compress(text).with_context(failed)?,
                _ => self.compressor.compress(text).with_context(failed)?,
            };
            frames.push(frame.len() as u64);
            data.extend_from_slice(&frame);
            start = end;
        }
        if frames.len() == 1 {
            frames.clear();
        }
        let mut key_runs = Vec::new();
        for (column, (pairs, key)) in self
            .pairs
            .iter_mut()
            .zip(&self.shared.keys[self.unit.table])
            .enumerate()
        {
            pairs.sort_unstable();
            pairs.dedup();
            let mut rest = &pairs[..];
            while let Some(&(v, _)) = rest.first() {
                let bucket = key.bucket(v);
                let n = rest.partition_point(|&(x, _)| key.bucket(x) == bucket);
                key_runs.push(KeyRun {
                    column,
                    bucket,
                    pairs: rest[..n].to_vec(),
                });
                rest = &rest[n..];
            }
            pairs.clear();
        }
        let objects = match (self.shape.object, self.objects.is_empty()) {
            (Some((kind, _)), false) => {
                let (data, first, last) =
                    archive::objects::frame_with(&mut self.objects, &mut self.compressor)?;
                self.objects.clear();
                Some(ObjectsFrame {
                    rank: kinds::kinds().position(|k| k == kind).unwrap_or(usize::MAX),
                    first,
                    last,
                    data,
                })
            }
            _ => None,
        };
        let out = Part {
            table: self.unit.table,
            unit: self.unit.index,
            part: self.part,
            text_size: self.text.len() as u64,
            data,
            rows: self.rows,
            first_key: self.first_key.take(),
            last_key: self.last_key.take(),
            ranges: self
                .shape
                .foreign_keys
                .iter()
                .zip(&mut self.ranges)
                .filter_map(|((column, _), r)| r.take().map(|r| (column.clone(), r)))
                .collect(),
            objects,
            frames,
            frame_keys: std::mem::take(&mut self.frame_keys),
            key_runs,
        };
        self.shared
            .rows_done
            .fetch_add(self.rows, Ordering::Relaxed);
        self.tx
            .send(Ok(out))
            .map_err(|_| anyhow!("the archive writer stopped"))?;
        self.text.clear();
        self.frame_starts.clear();
        self.rows = 0;
        self.part += 1;
        Ok(())
    }
}

/// A compressor for the archive's frames: each frame checks itself when
/// read alone.
fn frame_compressor(level: i32) -> Result<zstd::bulk::Compressor<'static>> {
    let mut compressor = zstd::bulk::Compressor::new(level)?;
    compressor.include_checksum(true)?;
    Ok(compressor)
}

/// Streams one unit's rows into chunks.
fn dump_unit(
    conn: &mut Reader,
    shared: &Shared,
    unit: &Unit,
    tx: &SyncSender<Result<Part>>,
) -> Result<()> {
    let table = &shared.tables[unit.table];
    let failed = || format!("failed to read table `{}`", table.name);
    match conn {
        Reader::Wire(c) => {
            let mut rows = c.query(&select(table, unit)).with_context(failed)?;
            let plain = rows
                .column_types()
                .iter()
                .map(|&t| tsv::is_plain(t))
                .collect();
            let mut chunk = ChunkBuilder::new(shared, unit, tx, plain)?;
            while let Some(row) = rows.next().with_context(failed)? {
                if !chunk.add(row)? {
                    return Ok(());
                }
            }
            chunk.flush()
        }
        Reader::Client(c) => {
            let mut result = c.query_iter(select(table, unit)).with_context(failed)?;
            let plain = result
                .columns()
                .as_ref()
                .iter()
                .map(|c| tsv::is_plain(c.column_type()))
                .collect();
            let mut chunk = ChunkBuilder::new(shared, unit, tx, plain)?;
            let (mut data, mut spans) = (Vec::new(), Vec::new());
            for row in result.by_ref() {
                let row = row.with_context(failed)?;
                // `mysql::Row::unwrap`: the row's values (it does not panic).
                if !chunk.add(client_row(row.unwrap(), &mut data, &mut spans))? {
                    return Ok(());
                }
            }
            chunk.flush()
        }
    }
}

/// A row of the client library as cells of one buffer, like the direct
/// reader's. The text protocol sends only bytes and NULL; any other value
/// is written as the server would have sent it.
fn client_row<'a>(values: Vec<Value>, data: &'a mut Vec<u8>, spans: &'a mut Vec<Span>) -> Row<'a> {
    data.clear();
    spans.clear();
    for v in values {
        let start = data.len();
        match v {
            Value::NULL => {
                spans.push(None);
                continue;
            }
            Value::Bytes(b) => data.extend_from_slice(&b),
            other => data.extend_from_slice(other.as_sql(true).trim_matches('\'').as_bytes()),
        }
        spans.push(Some((start, data.len())));
    }
    Row::new(data, spans)
}

#[cfg(test)]
mod tests {
    use super::parse_i64;

    #[test]
    fn integers_parse_as_str_parse_does_and_nothing_else() {
        for text in [
            "0",
            "-0",
            "7",
            "-42",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "00000000000000000001",
            "-00000000000000000000000000042",
            "",
            "-",
            "+1",
            "1.5",
            "12a",
            " 1",
            "1e3",
            "--1",
        ] {
            assert_eq!(parse_i64(text.as_bytes()), text.parse().ok(), "{text:?}");
        }
    }
}
