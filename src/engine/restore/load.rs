//! Loading a copy's tables into the staging database in parallel: one
//! `LOAD DATA LOCAL INFILE` per table, fed chunk after chunk through ranged
//! reads at the listing's offsets, each chunk checked before it is loaded,
//! each table loaded with zero warnings and exactly its listed rows. Where
//! the server has `local_infile` off (MySQL's default), the same text goes
//! in by multi-row `INSERT`s in one transaction per table ([`super::insert`]).

use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use mysql::prelude::Queryable;
use mysql::{Conn, LocalInfileHandler};

use super::super::archive::{self, check_entry, Copy};
use super::super::format::{Chunk, Listing};
use super::super::verify::check_chunk;
use super::insert::{Inserts, Literal};
use crate::config::DbSource;
use crate::db::quote_ident;

/// A table to load: its columns and chunks in order.
struct TableJob {
    /// The copy's name for it.
    table: String,
    /// The staged table it loads into.
    target: String,
    names: Vec<String>,
    columns: String,
    chunks: Vec<Chunk>,
    rows: u64,
}

/// Loads every table of `listing` into its staged table (`target` names
/// it) with `threads` connections (opened by `connect`); returns the rows
/// loaded.
pub(super) fn load_tables(
    source: &DbSource,
    timeout: Duration,
    copy: &Copy<'_>,
    listing: &Listing,
    target: &dyn Fn(&str) -> Option<String>,
    threads: usize,
) -> Result<u64> {
    // Largest tables first: they set the length of the load (the workers
    // pop from the end).
    let mut jobs: Vec<TableJob> = listing
        .tables
        .iter()
        .map(|t| {
            Ok(TableJob {
                table: t.name.clone(),
                target: target(&t.name)
                    .with_context(|| format!("table `{}` was not staged", t.name))?,
                names: t.columns.clone(),
                columns: t
                    .columns
                    .iter()
                    .map(|c| quote_ident(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                chunks: t.chunks.clone(),
                rows: t.rows,
            })
        })
        .collect::<Result<_>>()?;
    jobs.sort_by_key(|j| j.chunks.iter().map(|c| c.text_size).sum::<u64>());
    let jobs = Mutex::new(jobs);
    let results: Vec<Result<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let jobs = &jobs;
                scope.spawn(move || loader(super::connect(source, timeout)?, copy, jobs))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a loader panicked")))
            })
            .collect()
    });
    let mut loaded = 0;
    for r in results {
        loaded += r?;
    }
    Ok(loaded)
}

/// Reads, checks and decompresses one table's chunks into `tx`, in order.
fn feed(copy: &Copy<'_>, job: &TableJob, tx: SyncSender<Result<Vec<u8>, String>>) {
    for chunk in &job.chunks {
        let text = copy
            .read_range(chunk.entry.offset, chunk.entry.size)
            .and_then(|data| {
                let entry = archive::ReadEntry {
                    path: chunk.entry.path.clone(),
                    offset: chunk.entry.offset,
                    data,
                };
                check_entry(&chunk.entry, &entry)?;
                check_chunk(&job.table, chunk, &entry.data)
            });
        let failed = text.is_err();
        if tx.send(text.map_err(|e| format!("{e:#}"))).is_err() || failed {
            return;
        }
    }
}

/// Loads whole tables, one `LOAD DATA` statement per table fed chunk after
/// chunk: InnoDB takes its fast bulk path only for the first insert into an
/// empty table, so a table must not be loaded piecemeal. A feeder thread
/// fetches each chunk by a ranged read at its listed offset, checks it,
/// decompresses and checks it again while the server ingests the previous
/// one; memory holds a few chunks per loader.
fn loader(mut conn: Conn, copy: &Copy<'_>, jobs: &Mutex<Vec<TableJob>>) -> Result<u64> {
    let local_infile: Option<i64> = conn
        .query_first("SELECT @@GLOBAL.local_infile")
        .context("failed to ask the server whether it takes LOAD DATA LOCAL")?;
    let by_insert = local_infile == Some(0);
    let mut rows = 0;
    loop {
        let Some(job) = jobs.lock().expect("job lock").pop() else {
            break;
        };
        if job.chunks.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        rows += if by_insert {
            insert_table(&mut conn, copy, &job)?
        } else {
            load_table(&mut conn, copy, &job)?
        };
        log::debug!(
            "loaded `{}`: {} rows in {:.2} s",
            job.table,
            job.rows,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(rows)
}

/// Loads one table by `INSERT`s in one transaction; checks its warnings
/// and row count as [`load_table`] does.
fn insert_table(conn: &mut Conn, copy: &Copy<'_>, job: &TableJob) -> Result<u64> {
    let types: Vec<(String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (&job.target,),
        )
        .with_context(|| format!("failed to read the columns of `{}`", job.table))?;
    let literals = job
        .names
        .iter()
        .map(|name| {
            types
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| Literal::of(t))
                .with_context(|| format!("`{}` has no column `{name}`", job.table))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut inserts = Inserts::new(&quote_ident(&job.target), &job.columns, literals);
    let (tx, rx) = sync_channel::<Result<Vec<u8>, String>>(2);
    let mut loaded = 0u64;
    conn.query_drop("START TRANSACTION")?;
    let result = std::thread::scope(|scope| -> Result<()> {
        scope.spawn(|| feed(copy, job, tx));
        let mut send = |statement: &str| -> Result<()> {
            conn.query_drop(statement)?;
            loaded += conn.affected_rows();
            // Checked statement by statement: the server shows only the
            // last one's warnings.
            let warnings = conn.warnings();
            no_warnings(conn, &job.table, warnings)
        };
        // Every chunk is taken from the feeder, also after a failure, so
        // it never waits on a full channel.
        let mut outcome = Ok(());
        for text in rx {
            if outcome.is_err() {
                continue;
            }
            outcome = match text {
                Ok(text) => inserts.add_chunk(&text, &mut send),
                Err(msg) => Err(anyhow!(msg)),
            };
        }
        outcome?;
        inserts.flush(&mut send)
    });
    if let Err(e) = result {
        let _ = conn.query_drop("ROLLBACK");
        return Err(e).with_context(|| format!("failed to load `{}`", job.table));
    }
    conn.query_drop("COMMIT")
        .with_context(|| format!("failed to load `{}`", job.table))?;
    loaded_as_listed(job, loaded)
}

/// Loads one table; checks its warnings and row count.
fn load_table(conn: &mut Conn, copy: &Copy<'_>, job: &TableJob) -> Result<u64> {
    let (tx, rx) = sync_channel::<Result<Vec<u8>, String>>(2);
    let rx = Arc::new(Mutex::new(rx));
    let from_feeder = Arc::clone(&rx);
    let failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let failed = Arc::clone(&failure);
    conn.set_local_infile_handler(Some(LocalInfileHandler::new(move |_, out| {
        let rx = from_feeder.lock().expect("feed lock");
        while let Ok(text) = rx.recv() {
            match text {
                Ok(text) => std::io::Write::write_all(out, &text)?,
                Err(msg) => {
                    *failed.lock().expect("failure lock") = Some(msg.clone());
                    return Err(std::io::Error::other(msg));
                }
            }
        }
        Ok(())
    })));
    let result = std::thread::scope(|scope| {
        scope.spawn(|| feed(copy, job, tx));
        conn.query_drop(format!(
            "LOAD DATA LOCAL INFILE 'table' INTO TABLE {} CHARACTER SET binary
             FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({})",
            quote_ident(&job.target),
            job.columns
        ))
        .inspect_err(|_| {
            // Unblock the feeder if the server stopped reading.
            drop(rx.lock().map(|r| while r.try_recv().is_ok() {}));
        })
    });
    conn.set_local_infile_handler(None);
    if let Some(msg) = failure.lock().expect("failure lock").take() {
        bail!("failed to load `{}`: {msg}", job.table);
    }
    result.with_context(|| format!("failed to load `{}`", job.table))?;
    let (loaded, warnings) = (conn.affected_rows(), conn.warnings());
    no_warnings(conn, &job.table, warnings)?;
    loaded_as_listed(job, loaded)
}

/// A statement that loaded `table` gave no warning; the first few are
/// shown when it did.
fn no_warnings(conn: &mut Conn, table: &str, warnings: u16) -> Result<()> {
    if warnings > 0 {
        let detail: Vec<(String, u32, String)> =
            conn.query("SHOW WARNINGS LIMIT 3").unwrap_or_default();
        bail!("loading `{table}` gave {warnings} warnings, e.g. {detail:?}");
    }
    Ok(())
}

/// A table is loaded with exactly the rows its listing holds.
fn loaded_as_listed(job: &TableJob, loaded: u64) -> Result<u64> {
    anyhow::ensure!(
        loaded == job.rows,
        "`{}` loaded {loaded} rows, the copy holds {}",
        job.table,
        job.rows
    );
    Ok(loaded)
}
