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

mod keys;
mod snapshot;
mod worker;

use super::format::{self, names};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufWriter, Write as _};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use mysql::prelude::Queryable;

use super::archive::object_spill::ObjectSpill;
use super::archive::{ArchiveWriter, FileMeta};
use super::crypt::{CopyKey, Sink};
use super::format::{
    listing, Chunk, Compression, Definition, Encryption, FileEntry, FileKind, Listing, TableEntry,
};
use super::introspect::{self, Object, Table};
use super::saved::index::SealedBlocks;
use crate::clock::Timestamp;
use crate::config::{DbSource, RowReader};
use crate::db;
use crate::storage::{Counted, Storage, StorageWriter, Tally};
use worker::{Part, Shared};

/// How a copy is taken.
#[derive(Clone, Debug)]
pub struct DumpOptions {
    /// Worker connections.
    pub threads: usize,
    /// zstd level. 1 by default: on billing rows cut into 128 KiB frames
    /// it compresses faster than 3 and smaller too (measured on both bench
    /// shapes: 241.7 against 245.2 MB, 99.8 against 104.2 MB). Below 3, a
    /// chunk whose first frame is markedly smaller at 3 is compressed at 3
    /// (`worker::RICHER_LEVEL`: rows of binary and XML).
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
    /// How the workers read rows.
    pub reader: RowReader,
    /// A pause between two workers' snapshots (developer builds' tests).
    pub snapshot_gap: Option<std::time::Duration>,
}

/// Uncompressed size at which a chunk is cut.
pub const CHUNK_BYTES: usize = 8 << 20;
/// Rows per key range of a large table.
pub const ROWS_PER_RANGE: u64 = 250_000;

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

/// Lists the panel files under `roots` (not following symbolic links).
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
    pub created: Timestamp,
    pub storage: &'a dyn Storage,
    /// Encrypt to this key.
    pub key: Option<&'a CopyKey>,
}

/// The archive being written: tar entries through a buffer, optionally
/// age, counted and hashed on their way to the storage.
type Writer = ArchiveWriter<BufWriter<Sink>>;

/// Takes a copy onto `target`; returns the listing that was stored beside
/// the archive, and the saved objects the copy holds cut into the
/// catalog's blocks (to index them; a failure there is the index's, not
/// the copy's).
///
/// Phases: snapshot and plan, schema entries, data (the workers and the
/// one writer), then the key index, files, the listing and the commit,
/// while a second thread cuts the saved objects into blocks.
pub fn dump(
    source: &DbSource,
    connect_timeout: Duration,
    opts: &DumpOptions,
    target: &Target<'_>,
    progress: ProgressFn<'_>,
) -> Result<(Listing, Result<SealedBlocks>)> {
    progress(Phase::Snapshot, 0);
    let started = std::time::Instant::now();
    let took = |what: &str| {
        log::debug!(
            "copy {}: {what} at {} ms",
            target.name,
            started.elapsed().as_millis()
        )
    };
    let snapshot::Snapshot {
        mut control,
        workers,
        consistency,
        position,
    } = snapshot::snapshot(source, connect_timeout, opts)?;
    let first = &mut control;
    let database = db::current_database(first)?;
    let server_version: String = first
        .query_first::<String, _>("SELECT VERSION()")?
        .unwrap_or_default();
    let collation = first
        .query_first::<(String, String), _>(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()",
        )?
        .map(|(charset, collation)| format::DatabaseCollation { charset, collation });
    let tables = introspect::tables(first, &database, &opts.exclude_tables)?;
    let objects = introspect::objects(first, &database)?;
    if tables.is_empty() {
        bail!("the database `{database}` has no tables to copy");
    }
    let units = snapshot::plan(first, &tables, opts.rows_per_range)?;
    let key_columns = keys::key_columns(first, &tables)?;
    drop(control);
    log::info!(
        "copy {}: {} tables, {} units, {} workers ({}, {} reader)",
        target.name,
        tables.len(),
        units.len(),
        workers.len(),
        consistency.as_str(),
        workers[0].name()
    );

    let object = names::archive_object(target.name, target.key.is_some());
    let (mut writer, stored_bytes) = open_archive(target, &object)?;
    let (schema_entries, definitions) = write_schema(&mut writer, &tables, &objects)?;

    progress(Phase::Data, 0);
    let shared = Arc::new(Shared {
        tables,
        queue: Mutex::new(units.into()),
        failed: AtomicBool::new(false),
        rows_done: AtomicU64::new(0),
        opts: opts.clone(),
        keys: key_columns,
    });
    let (chunks, mut saved, key_runs) = write_data(&mut writer, workers, &shared, progress)
        .map_err(|e| e.context(format!("copy {} failed", target.name)))?;
    took("data written");
    // The objects in kind order (clients first), then by id, cut into the
    // catalog's blocks on a thread of its own while this one writes the
    // key index and commits. The archive does not carry them: its tables
    // of those kinds already do (`saved::objects::of_copy`).
    let ordered = saved.order();
    let name = target.name;
    let (listing, sealed) = std::thread::scope(|s| {
        let sealing = s.spawn(|| {
            ordered?;
            let sealed = SealedBlocks::of(&saved);
            log::debug!(
                "copy {name}: objects sealed at {} ms",
                started.elapsed().as_millis()
            );
            sealed
        });
        let finishing = || -> Result<Listing> {
            let (mut tables, first_frames) = table_entries(&shared.tables, schema_entries, chunks);
            let key_index =
                key_runs.write(&mut writer, &shared.tables, &shared.keys, &first_frames)?;
            for ((table, keys), columns) in tables.iter_mut().zip(key_index).zip(&shared.keys) {
                table.keys = keys;
                // A column with no values at all is indexed too: as empty.
                for c in columns {
                    table.keys.entry(c.column.clone()).or_default();
                }
            }
            took("key index written");
            progress(Phase::Files, 0);
            let files = write_files(&mut writer, &opts.files)?;
            progress(Phase::Finish, 0);
            let listing = Listing {
                format: listing::FORMAT.into(),
                version: listing::VERSION,
                name: target.name.to_string(),
                created: target.created.to_string(),
                database,
                server_version,
                consistency,
                compression: Compression::Zstd,
                encryption: if target.key.is_some() {
                    Encryption::Age
                } else {
                    Encryption::None
                },
                tables,
                definitions,
                files,
                collation,
                binlog: position,
                archive: None,
                objects: None,
            };
            finish(writer, listing, target, &object, &stored_bytes)
        };
        let listing = finishing();
        let sealed = sealing
            .join()
            .unwrap_or_else(|_| Err(anyhow!("sealing the object index panicked")));
        (listing, sealed)
    });
    let listing = listing?;
    took("stored");
    progress(Phase::Finish, 100);
    Ok((listing, sealed))
}

/// Starts the archive object on the storage.
fn open_archive(target: &Target<'_>, object: &str) -> Result<(Writer, Tally)> {
    let out = target
        .storage
        .create(object)
        .with_context(|| format!("failed to start {object} on {}", target.storage.describe()))?;
    let (out, stored_bytes) = Counted::new(out);
    let sink = Sink::new(Box::new(out), target.key)?;
    let mut writer = ArchiveWriter::new(
        BufWriter::with_capacity(1 << 20, sink),
        target.created.unix().max(0) as u64,
    );
    writer.append(
        names::FORMAT_ENTRY,
        format!("{} {}\n", listing::FORMAT, listing::VERSION).as_bytes(),
    )?;
    Ok((writer, stored_bytes))
}

/// The schema entries: every table's `CREATE`, then every view, routine,
/// trigger and event.
fn write_schema(
    writer: &mut Writer,
    tables: &[Table],
    objects: &[Object],
) -> Result<(Vec<format::Entry>, Vec<Definition>)> {
    let mut entries = Vec::with_capacity(tables.len());
    for t in tables {
        let path = format!("schema/tables/{}.sql", t.name);
        entries.push(writer.append(&path, format!("{};\n", t.create).as_bytes())?);
    }
    let mut definitions = Vec::with_capacity(objects.len());
    for o in objects {
        let path = format!("schema/{}/{}.sql", o.kind, o.name);
        let entry = writer.append(&path, format!("{};\n", o.create).as_bytes())?;
        definitions.push(Definition {
            kind: o.kind,
            name: o.name.clone(),
            table: o.table.clone(),
            create: o.create.clone(),
            sql_mode: o.sql_mode.clone(),
            entry,
        });
    }
    Ok((entries, definitions))
}

/// Chunks of one table, tagged (unit, part) for ordering.
type TableChunks = Vec<(usize, usize, Chunk)>;

/// Runs the workers and writes their chunks as they come; returns each
/// table's chunks and the saved objects seen (on disk).
fn write_data(
    writer: &mut Writer,
    workers: Vec<snapshot::Reader>,
    shared: &Arc<Shared>,
    progress: ProgressFn<'_>,
) -> Result<(Vec<TableChunks>, ObjectSpill, keys::KeySpill)> {
    let estimated_rows: u64 = shared
        .tables
        .iter()
        .map(|t| t.estimated_rows)
        .sum::<u64>()
        .max(1);
    let (tx, rx) = sync_channel::<Result<Part>>(2 * workers.len());
    let handles: Vec<_> = workers
        .into_iter()
        .map(|conn| {
            let (shared, tx) = (Arc::clone(shared), tx.clone());
            std::thread::spawn(move || worker::worker(conn, shared, tx))
        })
        .collect();
    drop(tx);
    let mut chunks: Vec<TableChunks> = vec![Vec::new(); shared.tables.len()];
    let mut saved = ObjectSpill::new()?;
    let mut key_runs = keys::KeySpill::new()?;
    let mut failure = None;
    for message in rx {
        match message {
            Ok(mut part) => {
                let spilled = match part.objects.take() {
                    Some(o) => saved.add(o.rank, o.first, o.last, &o.data),
                    None => Ok(()),
                }
                .and_then(|()| {
                    part.key_runs
                        .iter()
                        .try_for_each(|r| key_runs.add(part.table, part.unit, part.part, r))
                });
                if let Err(e) = spilled {
                    shared.failed.store(true, Ordering::Relaxed);
                    failure.get_or_insert(e);
                }
                let path = format!(
                    "data/{}/{:05}-{:04}.tsv.zst",
                    shared.tables[part.table].name, part.unit, part.part
                );
                match writer.append(&path, &part.data) {
                    Ok(entry) => chunks[part.table].push((
                        part.unit,
                        part.part,
                        Chunk {
                            entry,
                            rows: part.rows,
                            text_size: part.text_size,
                            text_sha256: String::new(),
                            first_key: part.first_key,
                            last_key: part.last_key,
                            ranges: part.ranges,
                            frames: part.frames,
                            frame_keys: part.frame_keys,
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
    match failure {
        Some(e) => Err(e),
        None => Ok((chunks, saved, key_runs)),
    }
}

/// The panel files: directories and links as entries of their own,
/// regular files with their content (read whole: `BackupFiles` names
/// configuration, not bulk data), sockets, devices and fifos left out.
fn write_files(writer: &mut Writer, roots: &[PathBuf]) -> Result<Vec<FileEntry>> {
    let mut files = Vec::new();
    for path in collect_files(roots)? {
        let meta = std::fs::symlink_metadata(&path)?;
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
            continue;
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
    Ok(files)
}

/// The number of a table's first frame of each chunk (unit, part).
type FirstFrames = HashMap<(usize, usize), u64>;

/// The listing's tables: each with its chunks in (unit, part) order; and
/// where each chunk's frames start in the table's numbering of frames.
fn table_entries(
    tables: &[Table],
    schema_entries: Vec<format::Entry>,
    chunks: Vec<TableChunks>,
) -> (Vec<TableEntry>, Vec<FirstFrames>) {
    tables
        .iter()
        .zip(schema_entries)
        .zip(chunks)
        .map(|((t, schema_entry), mut parts)| {
            parts.sort_by_key(|(u, p, _)| (*u, *p));
            let mut first_frames = FirstFrames::new();
            let mut next = 0u64;
            for (u, p, c) in &parts {
                first_frames.insert((*u, *p), next);
                next += c.frames.len().max(1) as u64;
            }
            let chunks: Vec<Chunk> = parts.into_iter().map(|(_, _, c)| c).collect();
            let entry = TableEntry {
                name: t.name.clone(),
                create: t.create.clone(),
                schema_entry,
                columns: t.columns.clone(),
                generated: t.generated.clone(),
                primary_key: t.primary_key.clone(),
                foreign_keys: t.foreign_keys.clone(),
                rows: chunks.iter().map(|c| c.rows).sum(),
                chunks,
                keys: BTreeMap::new(),
            };
            (entry, first_frames)
        })
        .unzip()
}

/// Writes the listing into the archive, commits it,
/// checks the storage holds every byte, then writes the listing beside
/// it: the copy exists from that moment.
fn finish(
    mut writer: Writer,
    mut listing: Listing,
    target: &Target<'_>,
    object: &str,
    stored_bytes: &Tally,
) -> Result<Listing> {
    writer.append(names::LISTING_ENTRY, &listing.to_json())?;
    let (buffered, size, sha256) = writer.finish()?;
    let out = buffered
        .into_inner()
        .map_err(|e| anyhow!("failed to flush the archive: {}", e.error()))?;
    out.commit()
        .with_context(|| format!("failed to store {object} on {}", target.storage.describe()))?;
    crate::storage::check_stored(target.storage, object, stored_bytes)?;
    listing.archive = Some(listing::ArchiveSummary {
        object: object.to_string(),
        size,
        sha256,
    });
    let beside: Box<dyn StorageWriter> = target
        .storage
        .create(&names::listing_object(target.name, target.key.is_some()))?;
    let mut beside = Sink::new(beside, target.key)?;
    beside.write_all(&listing.to_json())?;
    beside.commit()?;
    Ok(listing)
}
