//! Taking a copy: one consistent snapshot of the whole database, dumped by
//! several connections at once, written as one archive.
//!
//! # Consistency
//!
//! A control connection blocks commits for a moment (MariaDB: `BACKUP STAGE
//! BLOCK_COMMIT`; MySQL: `FLUSH TABLES WITH READ LOCK`, waiting at most
//! `lock_wait_timeout` seconds), every worker starts `START TRANSACTION WITH
//! CONSISTENT SNAPSHOT`, and the lock is released at once: with no commit in
//! between, all workers see the same point in time. Without the RELOAD
//! privilege (or if the lock cannot be had in time) one worker dumps alone
//! in its own snapshot, still consistent, just not parallel.
//!
//! # Parallelism and memory
//!
//! Tables with a single integer primary key are split into key ranges;
//! workers take ranges (largest tables first), stream rows, cut them into
//! text chunks of about `chunk_bytes`, compress each with zstd and hand it
//! over a bounded channel to the one thread that writes the archive. Memory
//! is bounded by the channel (two chunks per worker) plus one chunk being
//! built per worker, whatever the database's size.
//!
//! # Failure
//!
//! The archive is written through a storage writer that makes it visible
//! only on commit, and the listing beside it is written after that: a
//! copy interrupted at any point leaves nothing that looks like a copy.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use super::archive::listing::{
    self, Chunk, Definition, FileEntry, FileKind, Listing, SavedObject, TableEntry,
};
use super::archive::{self, ArchiveWriter, FileMeta};
use super::crypt::{CopyKey, Sink};
use super::objects;
use super::schema::{self, Table};
use super::tsv;
use crate::config::DbSource;
use crate::db::{self, quote_ident};
use crate::storage::Storage;

/// How a copy is taken.
#[derive(Clone, Debug)]
pub struct DumpOptions {
    /// Worker connections.
    pub threads: usize,
    /// zstd level.
    pub compression_level: i32,
    /// Uncompressed size at which a chunk is cut.
    pub chunk_bytes: usize,
    /// Rows per key range of a large table.
    pub rows_per_range: u64,
    /// Tables not to copy.
    pub exclude_tables: Vec<String>,
    /// Files and directories of the panel to copy.
    pub files: Vec<PathBuf>,
    /// Seconds to wait for the global read lock.
    pub lock_timeout: u64,
}

impl Default for DumpOptions {
    fn default() -> Self {
        DumpOptions {
            threads: 2,
            compression_level: 3,
            chunk_bytes: 8 << 20,
            rows_per_range: 250_000,
            exclude_tables: Vec::new(),
            files: Vec::new(),
            lock_timeout: 5,
        }
    }
}

/// Where the dump is, for progress reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Snapshot,
    Data,
    Files,
    Finish,
}

impl Phase {
    /// The name shown and recorded in the catalog.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Snapshot => "snapshot",
            Phase::Data => "data",
            Phase::Files => "files",
            Phase::Finish => "finish",
        }
    }
}

/// One unit of work: a table, or a key range of one.
#[derive(Clone, Debug)]
struct Unit {
    table: usize,
    index: usize,
    range: Option<(Option<i64>, Option<i64>)>,
    weight: u64,
}

/// A compressed chunk on its way to the writer.
struct Part {
    table: usize,
    unit: usize,
    part: usize,
    data: Vec<u8>,
    rows: u64,
    text_size: u64,
    text_sha256: String,
    first_key: Option<i64>,
    last_key: Option<i64>,
    /// Min and max of each integer foreign key column in the chunk.
    ranges: BTreeMap<String, [i64; 2]>,
    /// The objects (of `engine::objects` kinds) among the chunk's rows.
    objects: Vec<SavedObject>,
}

/// An integer cell, as the text protocol sends it.
fn int_cell(v: &mysql::Value) -> Option<i64> {
    match v {
        mysql::Value::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        mysql::Value::Int(i) => Some(*i),
        mysql::Value::UInt(u) => i64::try_from(*u).ok(),
        _ => None,
    }
}

/// Opens a dump connection: raw bytes out, UTC times, no query time-out.
fn connect(source: &DbSource, timeout: Duration) -> Result<Conn> {
    let opts = mysql::OptsBuilder::from_opts(db::options(source, timeout)?)
        .read_timeout(None)
        .write_timeout(None);
    let mut conn = Conn::new(opts).context("failed to open a dump connection")?;
    conn.query_drop(
        "SET SESSION character_set_results = binary, time_zone = '+00:00',
             net_write_timeout = 3600, net_read_timeout = 3600, wait_timeout = 28800",
    )
    .context("failed to prepare a dump connection")?;
    Ok(conn)
}

/// Starts the workers' snapshot: shared under a brief global read lock
/// when possible, else one worker alone. Returns the consistency mode.
fn snapshot(
    source: &DbSource,
    timeout: Duration,
    threads: usize,
    lock_timeout: u64,
) -> Result<(Vec<Conn>, &'static str)> {
    let begin = |c: &mut Conn| -> Result<()> {
        c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")?;
        c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")?;
        Ok(())
    };
    if threads > 1 {
        let mut control = connect(source, timeout)?;
        control.query_drop(format!(
            "SET SESSION lock_wait_timeout = {}",
            lock_timeout.max(1)
        ))?;
        // MariaDB's BACKUP STAGE BLOCK_COMMIT holds back only commits, so it
        // neither waits for open transactions nor stalls their statements;
        // FLUSH TABLES WITH READ LOCK (MySQL) can deadlock against a
        // transaction in progress until lock_wait_timeout ends it.
        let (lock, unlock) = match control.query_drop("BACKUP STAGE START") {
            Ok(()) => ("BACKUP STAGE BLOCK_COMMIT", "BACKUP STAGE END"),
            Err(e) => {
                log::info!("no BACKUP STAGE ({e}); using FLUSH TABLES WITH READ LOCK");
                ("FLUSH TABLES WITH READ LOCK", "UNLOCK TABLES")
            }
        };
        match control.query_drop(lock) {
            Ok(()) => {
                let workers: Result<Vec<Conn>> = (0..threads)
                    .map(|_| {
                        let mut c = connect(source, timeout)?;
                        begin(&mut c)?;
                        Ok(c)
                    })
                    .collect();
                let unlocked = control.query_drop(unlock);
                let workers = workers?;
                unlocked.context("failed to release the snapshot lock")?;
                return Ok((workers, "shared-snapshot"));
            }
            Err(e) => {
                let _ = control.query_drop(unlock);
                log::warn!("no shared snapshot ({lock}: {e}); dumping with one connection in its own snapshot")
            }
        }
    }
    let mut c = connect(source, timeout)?;
    begin(&mut c)?;
    Ok((vec![c], "single-connection"))
}

/// Splits tables into units, largest first. Ranges of one table cover
/// every key: the first is open below, the last open above.
fn plan(conn: &mut Conn, tables: &[Table], rows_per_range: u64) -> Result<Vec<Unit>> {
    let mut units = Vec::new();
    for (t, table) in tables.iter().enumerate() {
        let weight = table.data_length.max(1);
        let ranges = table.estimated_rows.div_ceil(rows_per_range.max(1));
        if table.integer_key && ranges >= 2 {
            let key = quote_ident(&table.primary_key[0]);
            let bounds: Option<(Option<i64>, Option<i64>)> = conn
                .query_first(format!(
                    "SELECT MIN({key}), MAX({key}) FROM {}",
                    quote_ident(&table.name)
                ))
                .with_context(|| format!("failed to read the key range of `{}`", table.name))?;
            if let Some((Some(lo), Some(hi))) = bounds {
                let span = i128::from(hi) - i128::from(lo) + 1;
                let width = (span / i128::from(ranges)).max(1);
                let cuts: Vec<i64> = (1..ranges)
                    .map(|i| i128::from(lo) + width * i128::from(i))
                    .take_while(|&c| c <= i128::from(hi))
                    .map(|c| c as i64)
                    .collect();
                for index in 0..=cuts.len() {
                    let start = index.checked_sub(1).map(|i| cuts[i]);
                    let end = cuts.get(index).copied();
                    let weight = weight / (cuts.len() as u64 + 1);
                    units.push(Unit {
                        table: t,
                        index,
                        range: Some((start, end)),
                        weight,
                    });
                }
                continue;
            }
        }
        units.push(Unit {
            table: t,
            index: 0,
            range: None,
            weight,
        });
    }
    units.sort_by_key(|u| std::cmp::Reverse(u.weight));
    Ok(units)
}

/// What the workers share.
struct Shared {
    tables: Vec<Table>,
    queue: Mutex<VecDeque<Unit>>,
    failed: AtomicBool,
    rows_done: AtomicU64,
    opts: DumpOptions,
}

fn worker(mut conn: Conn, shared: Arc<Shared>, tx: SyncSender<Result<Part>>) {
    let run = |conn: &mut Conn| -> Result<()> {
        loop {
            if shared.failed.load(Ordering::Relaxed) {
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

fn dump_unit(
    conn: &mut Conn,
    shared: &Shared,
    unit: &Unit,
    tx: &SyncSender<Result<Part>>,
) -> Result<()> {
    let table = &shared.tables[unit.table];
    let columns = table
        .columns
        .iter()
        .map(|c| quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let key_pos = if table.integer_key {
        table
            .columns
            .iter()
            .position(|c| *c == table.primary_key[0])
    } else {
        None
    };
    let order = if table.primary_key.is_empty() {
        String::new()
    } else {
        format!(
            " ORDER BY {}",
            table
                .primary_key
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        )
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
    let sql = format!(
        "SELECT {columns} FROM {}{filter}{order}",
        quote_ident(&table.name)
    );
    // What the listing indexes besides the data: single-column foreign
    // keys (their ranges per chunk) and, for the object kinds, each row's
    // id, name and owner.
    let fk_columns: Vec<(String, usize)> = table
        .foreign_keys
        .iter()
        .filter(|fk| fk.columns.len() == 1)
        .filter_map(|fk| {
            let c = &fk.columns[0];
            table
                .columns
                .iter()
                .position(|x| x == c)
                .map(|i| (c.clone(), i))
        })
        .collect();
    let kind = objects::of_table(&table.name)
        .and_then(|k| k.positions(&table.columns).map(|p| (k.kind, p)));
    let mut ranges: BTreeMap<String, [i64; 2]> = BTreeMap::new();
    let mut saved: Vec<SavedObject> = Vec::new();
    let mut result = conn
        .query_iter(&sql)
        .with_context(|| format!("failed to read table `{}`", table.name))?;
    let limit = shared.opts.chunk_bytes;
    let mut text = Vec::with_capacity(limit + (64 << 10));
    let (mut rows, mut part) = (0u64, 0usize);
    let (mut first, mut last) = (None, None);
    let emit = |text: &mut Vec<u8>,
                rows: &mut u64,
                part: &mut usize,
                first: &mut Option<i64>,
                last: &mut Option<i64>,
                ranges: &mut BTreeMap<String, [i64; 2]>,
                saved: &mut Vec<SavedObject>|
     -> Result<()> {
        let data = zstd::bulk::compress(text, shared.opts.compression_level)
            .with_context(|| format!("failed to compress a chunk of `{}`", table.name))?;
        let out = Part {
            table: unit.table,
            unit: unit.index,
            part: *part,
            text_size: text.len() as u64,
            text_sha256: archive::sha256_hex(text),
            data,
            rows: *rows,
            first_key: first.take(),
            last_key: last.take(),
            ranges: std::mem::take(ranges),
            objects: std::mem::take(saved),
        };
        shared.rows_done.fetch_add(*rows, Ordering::Relaxed);
        tx.send(Ok(out))
            .map_err(|_| anyhow!("the archive writer stopped"))?;
        text.clear();
        *rows = 0;
        *part += 1;
        Ok(())
    };
    for row in result.by_ref() {
        let row = row.with_context(|| format!("failed to read a row of `{}`", table.name))?;
        let values = row.unwrap();
        if let Some(k) = key_pos {
            if let mysql::Value::Bytes(b) = &values[k] {
                let key = std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok());
                if first.is_none() {
                    first = key;
                }
                last = key;
            }
        }
        for (column, i) in &fk_columns {
            if let Some(v) = int_cell(&values[*i]) {
                let r = ranges.entry(column.clone()).or_insert([v, v]);
                r[0] = r[0].min(v);
                r[1] = r[1].max(v);
            }
        }
        if let Some((kind, at)) = kind {
            if let Some(id) = int_cell(&values[at.id]) {
                let name = match &values[at.name] {
                    mysql::Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                    _ => String::new(),
                };
                let owner = at.owner.and_then(|o| int_cell(&values[o]));
                saved.push(SavedObject {
                    kind: kind.to_string(),
                    id,
                    name,
                    owner,
                });
            }
        }
        tsv::push_row(&mut text, &values);
        rows += 1;
        if text.len() >= limit {
            emit(
                &mut text,
                &mut rows,
                &mut part,
                &mut first,
                &mut last,
                &mut ranges,
                &mut saved,
            )?;
            if shared.failed.load(Ordering::Relaxed) {
                return Ok(());
            }
        }
    }
    if rows > 0 {
        emit(
            &mut text,
            &mut rows,
            &mut part,
            &mut first,
            &mut last,
            &mut ranges,
            &mut saved,
        )?;
    }
    Ok(())
}

/// Reads the panel files under `roots` (not following symbolic links).
fn collect_files(roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn walk(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let meta = std::fs::symlink_metadata(path)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        out.push(path.to_path_buf());
        if meta.is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("failed to list `{}`", path.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<_>>()?;
            children.sort();
            for child in children {
                walk(&child, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for root in roots {
        if root.exists() {
            walk(root, &mut out)?;
        } else {
            log::warn!("`{}` does not exist; not copied", root.display());
        }
    }
    Ok(out)
}

/// Progress: phase and percent.
pub type ProgressFn<'a> = &'a mut dyn FnMut(Phase, u32);

/// Where a new copy goes and what it is called.
pub struct Target<'a> {
    pub name: &'a str,
    /// UTC `YYYY-MM-DD HH:MM:SS`, and the same as seconds since the epoch.
    pub created: (&'a str, u64),
    pub storage: &'a dyn Storage,
    /// Encrypt to this key.
    pub key: Option<&'a CopyKey>,
}

/// Takes a copy onto `target`; returns the listing that was stored beside
/// the archive.
pub fn dump(
    source: &DbSource,
    connect_timeout: Duration,
    opts: &DumpOptions,
    target: &Target<'_>,
    progress: ProgressFn<'_>,
) -> Result<Listing> {
    let Target {
        name,
        created,
        storage,
        key,
    } = *target;
    progress(Phase::Snapshot, 0);
    let (mut workers, consistency) = snapshot(
        source,
        connect_timeout,
        opts.threads.max(1),
        opts.lock_timeout,
    )?;
    let first = &mut workers[0];
    let database: String = first
        .query_first::<Option<String>, _>("SELECT DATABASE()")?
        .flatten()
        .ok_or_else(|| anyhow!("the database address names no database"))?;
    let server_version: String = first
        .query_first::<String, _>("SELECT VERSION()")?
        .unwrap_or_default();
    let tables = schema::tables(first, &database, &opts.exclude_tables)?;
    let objects = schema::objects(first, &database)?;
    if tables.is_empty() {
        bail!("the database `{database}` has no tables to copy");
    }
    let units = plan(first, &tables, opts.rows_per_range)?;
    let estimated_rows: u64 = tables.iter().map(|t| t.estimated_rows).sum::<u64>().max(1);
    log::info!(
        "copy {name}: {} tables, {} units, {} workers ({consistency})",
        tables.len(),
        units.len(),
        workers.len()
    );

    let object = archive::archive_object(name, key.is_some());
    let out = storage
        .create(&object)
        .with_context(|| format!("failed to start {object} on {}", storage.describe()))?;
    let (out, stored_bytes) = crate::storage::Counted::new(out);
    let out: Box<dyn crate::storage::StorageWriter> = Box::new(out);
    let sink = match key {
        None => Sink::Plain(out),
        Some(key) => Sink::Age(key.encrypt(out)?),
    };
    let mut writer =
        ArchiveWriter::new(std::io::BufWriter::with_capacity(1 << 20, sink), created.1);
    writer.append(
        archive::FORMAT_ENTRY,
        format!("{} {}\n", listing::FORMAT, listing::VERSION).as_bytes(),
    )?;
    let mut entries = Vec::new();
    for t in &tables {
        let path = format!("schema/tables/{}.sql", t.name);
        entries.push(writer.append(&path, format!("{};\n", t.create).as_bytes())?);
    }
    let mut definitions = Vec::new();
    for o in &objects {
        let path = format!("schema/{}/{}.sql", o.kind, o.name);
        let entry = writer.append(&path, format!("{};\n", o.create).as_bytes())?;
        definitions.push(Definition {
            kind: o.kind.to_string(),
            name: o.name.clone(),
            table: o.table.clone(),
            create: o.create.clone(),
            sql_mode: o.sql_mode.clone(),
            entry,
        });
    }

    progress(Phase::Data, 0);
    let shared = Arc::new(Shared {
        tables: tables.clone(),
        queue: Mutex::new(units.into()),
        failed: AtomicBool::new(false),
        rows_done: AtomicU64::new(0),
        opts: opts.clone(),
    });
    let (tx, rx) = sync_channel::<Result<Part>>(2 * workers.len());
    let handles: Vec<_> = workers
        .into_iter()
        .map(|conn| {
            let (shared, tx) = (Arc::clone(&shared), tx.clone());
            std::thread::spawn(move || worker(conn, shared, tx))
        })
        .collect();
    drop(tx);
    let mut chunks: Vec<Vec<(usize, usize, Chunk)>> = vec![Vec::new(); tables.len()];
    let mut saved: Vec<SavedObject> = Vec::new();
    let mut failure = None;
    for message in rx {
        match message {
            Ok(mut part) => {
                saved.append(&mut part.objects);
                let path = format!(
                    "data/{}/{:05}-{:04}.tsv.zst",
                    tables[part.table].name, part.unit, part.part
                );
                match writer.append(&path, &part.data) {
                    Ok(entry) => chunks[part.table].push((
                        part.unit,
                        part.part,
                        Chunk {
                            entry,
                            rows: part.rows,
                            text_size: part.text_size,
                            text_sha256: part.text_sha256,
                            first_key: part.first_key,
                            last_key: part.last_key,
                            ranges: part.ranges,
                        },
                    )),
                    Err(e) => {
                        shared.failed.store(true, Ordering::Relaxed);
                        failure.get_or_insert(e);
                    }
                }
                let done = shared.rows_done.load(Ordering::Relaxed);
                progress(Phase::Data, (done * 100 / estimated_rows).min(99) as u32);
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    for h in handles {
        if h.join().is_err() {
            failure.get_or_insert(anyhow!("a dump worker panicked"));
        }
    }
    if let Some(e) = failure {
        return Err(e.context(format!("copy {name} failed")));
    }

    progress(Phase::Files, 0);
    let mut files = Vec::new();
    for path in collect_files(&opts.files)? {
        let meta = std::fs::symlink_metadata(&path)?;
        use std::os::unix::fs::MetadataExt;
        let fm = FileMeta {
            mode: meta.mode(),
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime: meta.mtime().max(0) as u64,
        };
        let entry_path = format!("files{}", path.display());
        let (kind, target, entry) = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)?.to_string_lossy().into_owned();
            let e = writer.append_special(&entry_path, Some(&target), &fm)?;
            (FileKind::Symlink, target, e)
        } else if meta.is_dir() {
            (
                FileKind::Dir,
                String::new(),
                writer.append_special(&entry_path, None, &fm)?,
            )
        } else if meta.is_file() {
            let data = std::fs::read(&path)
                .with_context(|| format!("failed to read `{}`", path.display()))?;
            (
                FileKind::File,
                String::new(),
                writer.append_file(&entry_path, &data, &fm)?,
            )
        } else {
            continue; // sockets, devices, fifos
        };
        files.push(FileEntry {
            path: path.to_string_lossy().into_owned(),
            kind,
            mode: fm.mode & 0o7777,
            uid: fm.uid,
            gid: fm.gid,
            mtime: fm.mtime,
            target,
            entry,
        });
    }

    progress(Phase::Finish, 0);
    // Objects in kind order (clients first), then by id.
    let rank = |k: &str| objects::kinds().position(|x| x == k).unwrap_or(usize::MAX);
    saved.sort_by_key(|o| (rank(&o.kind), o.id));
    let mut listing = Listing {
        format: listing::FORMAT.into(),
        version: listing::VERSION,
        name: name.to_string(),
        created: created.0.to_string(),
        database,
        server_version,
        consistency: consistency.into(),
        compression: "zstd".into(),
        encryption: if key.is_some() {
            "age".into()
        } else {
            String::new()
        },
        tables: tables
            .iter()
            .zip(entries)
            .zip(chunks)
            .map(|((t, schema_entry), mut parts)| {
                parts.sort_by_key(|(u, p, _)| (*u, *p));
                let chunks: Vec<Chunk> = parts.into_iter().map(|(_, _, c)| c).collect();
                TableEntry {
                    name: t.name.clone(),
                    create: t.create.clone(),
                    schema_entry,
                    columns: t.columns.clone(),
                    generated: t.generated.clone(),
                    primary_key: t.primary_key.clone(),
                    foreign_keys: t.foreign_keys.clone(),
                    rows: chunks.iter().map(|c| c.rows).sum(),
                    chunks,
                }
            })
            .collect(),
        definitions,
        files,
        archive: None,
        objects: None,
        saved: Vec::new(),
    };
    listing.objects = Some(writer.append(
        archive::OBJECTS_ENTRY,
        &archive::objects_entry_data(&saved)?,
    )?);
    listing.saved = saved;
    writer.append(archive::LISTING_ENTRY, &listing.to_json())?;
    let (buffered, size, sha256) = writer.finish()?;
    let out = buffered
        .into_inner()
        .map_err(|e| anyhow!("failed to flush the archive: {}", e.error()))?;
    out.commit()
        .with_context(|| format!("failed to store {object} on {}", storage.describe()))?;
    // The storage must hold every byte before the copy counts.
    crate::storage::check_stored(storage, &object, &stored_bytes)?;
    // The listing beside the archive marks the copy complete: written last.
    listing.archive = Some(listing::ArchiveSummary {
        object,
        size,
        sha256,
    });
    let beside = storage.create(&archive::listing_object(name, key.is_some()))?;
    let mut beside = match key {
        None => Sink::Plain(beside),
        Some(key) => Sink::Age(key.encrypt(beside)?),
    };
    beside.write_all(&listing.to_json())?;
    beside.commit()?;
    progress(Phase::Finish, 100);
    Ok(listing)
}

use std::io::Write as _;
