//! Full restore, staged and reversible.
//!
//! 1. The copy's tables are created in a staging database
//!    (`<db>_bmo_stage`) and its chunks loaded there in parallel with
//!    `LOAD DATA LOCAL INFILE` (one statement per table, fed chunk after
//!    chunk through ranged reads at the listing's offsets), each chunk
//!    checked against the listing before it is loaded, every table loaded
//!    with zero warnings and exactly the listed number of rows. Until here the live database is untouched, and
//!    any failure just drops the staging database.
//! 2. `edit`: the live tables are swapped for the staged ones in one atomic
//!    `RENAME TABLE`; the replaced tables go to `<db>_bmo_undo`, kept as a
//!    safety copy until the next successful backup (`undo` swaps them back).
//!    Then the copy's views, triggers, routines and events are created. If
//!    that fails, the swap is reversed.
//!    `skip`: rows missing from the live tables are added from the staged
//!    ones (`INSERT IGNORE`), all tables in one transaction.
//!
//! Nothing from the listing runs as it stands: every `CREATE` is checked
//! and rebuilt by [`super::ddl`] before the staging database is even
//! created, and runs as a prepared statement (one statement, whatever it
//! holds). The previous restore's safety copy is replaced only once the new
//! swap has succeeded.
//!
//! The plugin's own tables (`billmgrops_*`) are never in a copy and never
//! touched.

use std::collections::HashSet;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use mysql::prelude::Queryable;
use mysql::{Conn, LocalInfileHandler};

use super::archive::Copy;
use super::archive::{self, check_entry, listing::Chunk, Listing};
use super::ddl::{self, ObjectKind, Scope};
use super::verify::check_chunk;
use crate::config::DbSource;
use crate::db::{self, quote_ident, TABLE_PREFIX};

/// What happens to data that exists now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Keep existing rows; add the copy's rows that are missing.
    Skip,
    /// Make every table of the copy exactly as in the copy.
    Edit,
}

impl Behavior {
    pub fn parse(s: &str) -> Option<Behavior> {
        match s {
            "skip" => Some(Behavior::Skip),
            "edit" => Some(Behavior::Edit),
            _ => None,
        }
    }
}

/// How a restore runs.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    pub threads: usize,
    pub behavior: Behavior,
}

/// What a restore did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    pub tables: usize,
    pub rows: u64,
    /// The database holding the replaced tables (edit).
    pub undo: Option<String>,
}

/// Session settings for loading: no checks that the copy already passed,
/// ids of 0 kept, the dump's time zone.
const LOAD_SESSION: &str = "SET SESSION foreign_key_checks = 0, unique_checks = 0,
    sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'";

fn connect(source: &DbSource, timeout: Duration) -> Result<Conn> {
    let opts = mysql::OptsBuilder::from_opts(db::options(source, timeout)?)
        .read_timeout(None)
        .write_timeout(None);
    let mut c = Conn::new(opts).context("failed to open a restore connection")?;
    c.query_drop(LOAD_SESSION)?;
    Ok(c)
}

/// The staging and undo database names of `live`.
pub fn side_databases(live: &str) -> (String, String) {
    (format!("{live}_bmo_stage"), format!("{live}_bmo_undo"))
}

/// Where a swap puts the replaced tables until it has succeeded; only then
/// do they replace the previous safety copy.
pub fn next_undo_database(live: &str) -> String {
    format!("{live}_bmo_undo_next")
}

/// A copy's statements, checked and rebuilt ([`ddl`]): nothing else runs.
struct Checked {
    /// (table, CREATE TABLE) in the listing's order.
    tables: Vec<(String, String)>,
    definitions: Vec<CheckedObject>,
}

struct CheckedObject {
    kind: ObjectKind,
    name: String,
    sql_mode: String,
    create: String,
}

impl Checked {
    fn of(scope: &Scope, listing: &Listing) -> Result<Checked> {
        let tables = listing
            .tables
            .iter()
            .map(|t| Ok((t.name.clone(), ddl::table(scope, &t.create, &t.name)?)))
            .collect::<Result<_, ddl::DdlError>>()?;
        let definitions = listing
            .definitions
            .iter()
            .map(|d| {
                let kind = ObjectKind::parse(&d.kind).ok_or_else(|| {
                    ddl::DdlError::Refused(format!("unknown object kind `{}` in the copy", d.kind))
                })?;
                // A view's text is the server's own rendering (backquoted
                // names), valid under the default mode.
                let sql_mode = if kind == ObjectKind::View {
                    "NO_ENGINE_SUBSTITUTION".to_string()
                } else {
                    d.sql_mode.clone()
                };
                let create = ddl::definition(
                    scope,
                    &ddl::Object {
                        kind,
                        name: &d.name,
                        table: &d.table,
                        create: &d.create,
                        sql_mode: &sql_mode,
                        definer: None,
                    },
                )?;
                Ok(CheckedObject {
                    kind,
                    name: d.name.clone(),
                    sql_mode,
                    create,
                })
            })
            .collect::<Result<_, ddl::DdlError>>()?;
        Ok(Checked {
            tables,
            definitions,
        })
    }

    fn create_of(&self, table: &str) -> Option<&str> {
        self.tables
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, c)| c.as_str())
    }
}

/// Checks every statement of a copy as a restore into `live` would,
/// changing nothing: an upload refuses a copy its restore would refuse.
pub fn check_statements(conn: &mut Conn, live: &str, listing: &Listing) -> Result<()> {
    let scope = Scope::read(
        conn,
        live,
        &listing.database,
        listing.tables.iter().map(|t| t.name.clone()),
    )?;
    Checked::of(&scope, listing).map(|_| ())
}

/// Runs one checked statement as a prepared statement, so that the server
/// refuses anything after its end. MySQL cannot prepare some kinds of
/// `CREATE` (error 1295): those run as they are, having passed the same
/// checks.
fn run_checked(c: &mut Conn, sql: &str) -> Result<()> {
    match c.exec_drop(sql, ()) {
        Err(mysql::Error::MySqlError(e)) if e.code == 1295 => c.query_drop(sql).map_err(Into::into),
        other => other.map_err(Into::into),
    }
}

/// Drops the staging database when the restore ends, however it ends.
struct StageGuard<'a> {
    conn: &'a mut Conn,
    stage: String,
}

impl Drop for StageGuard<'_> {
    fn drop(&mut self) {
        let _ = self.conn.query_drop(format!(
            "DROP DATABASE IF EXISTS {}",
            quote_ident(&self.stage)
        ));
    }
}

/// A table to load: its columns and chunks in order.
struct TableJob {
    table: String,
    columns: String,
    chunks: Vec<Chunk>,
    rows: u64,
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
fn loader(
    mut conn: Conn,
    stage: &str,
    copy: &Copy<'_>,
    jobs: &Mutex<Vec<TableJob>>,
) -> Result<u64> {
    conn.query_drop(format!("USE {}", quote_ident(stage)))?;
    let mut rows = 0;
    loop {
        let Some(job) = jobs.lock().expect("job lock").pop() else {
            break;
        };
        if job.chunks.is_empty() {
            continue;
        }
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
            scope.spawn(|| feed(copy, &job, tx));
            conn.query_drop(format!(
                "LOAD DATA LOCAL INFILE 'table' INTO TABLE {} CHARACTER SET binary
                 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({})",
                quote_ident(&job.table),
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
        if warnings > 0 {
            let detail: Vec<(String, u32, String)> =
                conn.query("SHOW WARNINGS LIMIT 3").unwrap_or_default();
            bail!(
                "loading `{}` gave {warnings} warnings, e.g. {detail:?}",
                job.table
            );
        }
        anyhow::ensure!(
            loaded == job.rows,
            "`{}` loaded {loaded} rows, the copy holds {}",
            job.table,
            job.rows
        );
        rows += loaded;
    }
    Ok(rows)
}

/// Restores `copy` (described by `listing`) into the database `source` names.
pub fn restore(
    source: &DbSource,
    timeout: Duration,
    copy: &Copy<'_>,
    listing: &Listing,
    opts: &RestoreOptions,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<RestoreReport> {
    let _archive = listing
        .archive
        .as_ref()
        .context("the listing does not name its archive")?;
    let mut control = connect(source, timeout)?;
    let live: String = control
        .query_first::<Option<String>, _>("SELECT DATABASE()")?
        .flatten()
        .ok_or_else(|| anyhow!("the database address names no database"))?;
    let (stage, undo) = side_databases(&live);
    // Every statement of the copy is checked before anything is created.
    let scope = Scope::read(
        &mut control,
        &live,
        &listing.database,
        listing.tables.iter().map(|t| t.name.clone()),
    )?;
    let checked = Checked::of(&scope, listing)
        .context("the copy's definitions are refused; nothing was changed")?;
    let charset: Option<String> = control.exec_first(
        "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        (&live,),
    )?;
    control.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(&stage)))?;
    control.query_drop(format!(
        "CREATE DATABASE {} CHARACTER SET {}",
        quote_ident(&stage),
        charset.unwrap_or_else(|| "utf8mb4".into())
    ))?;
    let guard = StageGuard {
        conn: &mut control,
        stage: stage.clone(),
    };

    progress("stage", 0);
    guard
        .conn
        .query_drop(format!("USE {}", quote_ident(&stage)))?;
    for (name, create) in &checked.tables {
        run_checked(guard.conn, create)
            .with_context(|| format!("failed to create table `{name}` in the staging database"))?;
    }
    guard
        .conn
        .query_drop(format!("USE {}", quote_ident(&live)))?;

    // The schema entries are checked against the listing: a restore must not
    // create tables from an archive that differs from what was verified.
    for t in &listing.tables {
        let data = copy.read_range(t.schema_entry.offset, t.schema_entry.size)?;
        let entry = archive::ReadEntry {
            path: t.schema_entry.path.clone(),
            offset: t.schema_entry.offset,
            data,
        };
        check_entry(&t.schema_entry, &entry)?;
    }
    // Largest tables first: they set the length of the load.
    let mut jobs: Vec<TableJob> = listing
        .tables
        .iter()
        .map(|t| TableJob {
            table: t.name.clone(),
            columns: t
                .columns
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", "),
            chunks: t.chunks.clone(),
            rows: t.rows,
        })
        .collect();
    jobs.sort_by_key(|j| j.chunks.iter().map(|c| c.text_size).sum::<u64>());
    let jobs = Mutex::new(jobs);
    progress("load", 0);
    let threads = opts.threads.max(1);
    let results: Vec<Result<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (stage, jobs) = (&stage, &jobs);
                scope.spawn(move || loader(connect(source, timeout)?, stage, copy, jobs))
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
        loaded +=
            r.map_err(|e| e.context("the restore failed before touching the live database"))?;
    }
    progress("apply", 0);
    let undo_db = match opts.behavior {
        Behavior::Edit => {
            swap(guard.conn, &checked, &live, &stage, &undo)?;
            Some(undo)
        }
        Behavior::Skip => {
            merge(guard.conn, listing, &checked, &live, &stage)?;
            None
        }
    };
    drop(guard);
    progress("done", 100);
    Ok(RestoreReport {
        tables: listing.tables.len(),
        rows: loaded,
        undo: undo_db,
    })
}

/// Base tables of `database`, except the plugin's.
fn base_tables(c: &mut Conn, database: &str) -> Result<HashSet<String>> {
    let names: Vec<String> = c.exec(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'",
        (database,),
    )?;
    Ok(names
        .into_iter()
        .filter(|n| !n.starts_with(TABLE_PREFIX))
        .collect())
}

/// Triggers of `database` on the given tables: (name, table, sql_mode, create).
fn triggers(
    c: &mut Conn,
    database: &str,
    tables: &HashSet<String>,
) -> Result<Vec<(String, String, String, String)>> {
    let names: Vec<(String, String)> = c.exec(
        "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?",
        (database,),
    )?;
    let mut out = Vec::new();
    for (name, table) in names {
        if tables.contains(&table) {
            let row: Option<mysql::Row> = c.query_first(format!(
                "SHOW CREATE TRIGGER {}.{}",
                quote_ident(database),
                quote_ident(&name)
            ))?;
            let row = row.context("a trigger vanished")?;
            let text = |i| match row.as_ref(i) {
                Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            };
            out.push((name, table, text(1), text(2)));
        }
    }
    Ok(out)
}

/// Runs a CREATE under the sql_mode it was defined with, in `database`.
fn create_object(c: &mut Conn, database: &str, sql_mode: &str, create: &str) -> Result<()> {
    c.query_drop(format!("USE {}", quote_ident(database)))?;
    c.exec_drop("SET SESSION sql_mode = ?", (sql_mode,))?;
    let result = c.query_drop(create);
    c.query_drop("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'")?;
    result.map_err(Into::into)
}

/// edit: the atomic swap, then the copy's other objects; reversed on
/// failure. The replaced tables go to a database of their own and take
/// the previous safety copy's place only once everything succeeded.
fn swap(c: &mut Conn, checked: &Checked, live: &str, stage: &str, undo: &str) -> Result<()> {
    let next = next_undo_database(live);
    let live_tables = base_tables(c, live)?;
    let copy_tables: HashSet<String> = checked.tables.iter().map(|t| t.0.clone()).collect();
    let moved: HashSet<String> = live_tables.intersection(&copy_tables).cloned().collect();
    c.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(&next)))?;
    c.query_drop(format!("CREATE DATABASE {}", quote_ident(&next)))?;
    // What undo needs besides the tables: the live views, triggers,
    // routines and events as they are now.
    let live_objects = super::schema::objects(c, live)?;
    save_definitions(c, &next, &live_objects)?;
    // RENAME TABLE cannot move a table with triggers to another database.
    let old_triggers = triggers(c, live, &moved)?;
    for (name, ..) in &old_triggers {
        c.query_drop(format!(
            "DROP TRIGGER {}.{}",
            quote_ident(live),
            quote_ident(name)
        ))?;
    }
    let q = |db: &str, t: &str| format!("{}.{}", quote_ident(db), quote_ident(t));
    let mut renames: Vec<String> = moved
        .iter()
        .map(|t| format!("{} TO {}", q(live, t), q(&next, t)))
        .collect();
    renames.extend(
        copy_tables
            .iter()
            .map(|t| format!("{} TO {}", q(stage, t), q(live, t))),
    );
    if let Err(e) = c.query_drop(format!("RENAME TABLE {}", renames.join(", "))) {
        for (_, _, mode, create) in &old_triggers {
            let _ = create_object(c, live, mode, create);
        }
        let _ = c.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(&next)));
        return Err(
            anyhow::Error::from(e).context("the swap of tables failed; nothing was changed")
        );
    }
    let objects = create_definitions(c, checked, live);
    if let Err(e) = objects {
        // Put everything back as it was: the copy's triggers that were
        // created must go first, or the tables cannot move.
        if let Ok(new_triggers) = triggers(c, live, &copy_tables) {
            for (name, ..) in new_triggers {
                let _ = c.query_drop(format!(
                    "DROP TRIGGER {}.{}",
                    quote_ident(live),
                    quote_ident(&name)
                ));
            }
        }
        let mut back: Vec<String> = copy_tables
            .iter()
            .map(|t| format!("{} TO {}", q(live, t), q(stage, t)))
            .collect();
        back.extend(
            moved
                .iter()
                .map(|t| format!("{} TO {}", q(&next, t), q(live, t))),
        );
        let undone = c.query_drop(format!("RENAME TABLE {}", back.join(", ")));
        for (_, _, mode, create) in &old_triggers {
            let _ = create_object(c, live, mode, create);
        }
        return match undone {
            Ok(()) => {
                let _ = c.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(&next)));
                Err(e.context("the copy's views, triggers or routines failed; the swap was reversed"))
            }
            Err(u) => Err(e.context(format!(
                "the copy's objects failed AND reversing the swap failed ({u}); the old tables are in `{next}`"
            ))),
        };
    }
    // The swap stands: its replaced tables become the safety copy.
    promote_undo(c, &next, undo)?;
    c.query_drop(format!("USE {}", quote_ident(live)))?;
    log::info!(
        "restore swapped {} tables; the replaced ones are kept in `{undo}`",
        copy_tables.len()
    );
    Ok(())
}

/// Moves every table of `next` into a fresh `undo` and drops `next`. Until
/// the move, `undo` (see [`undo`]) falls back to `next`.
fn promote_undo(c: &mut Conn, next: &str, undo: &str) -> Result<()> {
    let tables: Vec<String> = c.exec(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
        (next,),
    )?;
    c.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(undo)))?;
    c.query_drop(format!("CREATE DATABASE {}", quote_ident(undo)))?;
    let q = |db: &str, t: &str| format!("{}.{}", quote_ident(db), quote_ident(t));
    let renames: Vec<String> = tables
        .iter()
        .map(|t| format!("{} TO {}", q(next, t), q(undo, t)))
        .collect();
    if !renames.is_empty() {
        c.query_drop(format!("RENAME TABLE {}", renames.join(", ")))
            .with_context(|| format!("the replaced tables stay in `{next}`"))?;
    }
    c.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(next)))?;
    Ok(())
}

/// The copy's views, triggers, routines and events, replacing live ones of
/// the same name.
fn create_definitions(c: &mut Conn, checked: &Checked, live: &str) -> Result<()> {
    for d in &checked.definitions {
        drop_object(c, live, d.kind.as_str(), &d.name)?;
    }
    // Views may depend on each other: create in passes until none is left.
    let mut pending: Vec<&CheckedObject> = checked.definitions.iter().collect();
    while !pending.is_empty() {
        let mut failed = Vec::new();
        let mut last_error = None;
        for d in pending.iter().copied() {
            if let Err(e) = create_checked(c, live, d) {
                last_error =
                    Some(e.context(format!("failed to create {} `{}`", d.kind.as_str(), d.name)));
                failed.push(d);
            }
        }
        if failed.len() == pending.len() {
            return Err(last_error.unwrap_or_else(|| anyhow!("objects could not be created")));
        }
        pending = failed;
    }
    Ok(())
}

/// Runs a checked CREATE under its sql_mode, in `database`.
fn create_checked(c: &mut Conn, database: &str, d: &CheckedObject) -> Result<()> {
    c.query_drop(format!("USE {}", quote_ident(database)))?;
    c.exec_drop("SET SESSION sql_mode = ?", (&d.sql_mode,))?;
    let result = run_checked(c, &d.create);
    c.query_drop("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'")?;
    result
}

/// skip: add the copy's missing rows, all tables in one transaction.
fn merge(
    c: &mut Conn,
    listing: &Listing,
    checked: &Checked,
    live: &str,
    stage: &str,
) -> Result<()> {
    let live_tables = base_tables(c, live)?;
    c.query_drop(format!("USE {}", quote_ident(live)))?;
    for t in &listing.tables {
        if !live_tables.contains(&t.name) {
            let create = checked
                .create_of(&t.name)
                .context("a table of the copy was not checked")?;
            run_checked(c, create)
                .with_context(|| format!("failed to create missing table `{}`", t.name))?;
        }
    }
    let mut tx = c.start_transaction(mysql::TxOpts::default())?;
    for t in &listing.tables {
        let cols = t
            .columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        tx.query_drop(format!(
            "INSERT IGNORE INTO {}.{} ({cols}) SELECT {cols} FROM {}.{}",
            quote_ident(live),
            quote_ident(&t.name),
            quote_ident(stage),
            quote_ident(&t.name)
        ))
        .with_context(|| format!("failed to add the missing rows of `{}`", t.name))?;
    }
    tx.commit()?;
    let existing: HashSet<(String, String)> = {
        let rows: Vec<(String, String)> = c.exec(
            "SELECT 'view', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?
             UNION ALL SELECT 'trigger', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
             UNION ALL SELECT LOWER(ROUTINE_TYPE), ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
             UNION ALL SELECT 'event', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
            (live, live, live, live),
        )?;
        rows.into_iter().collect()
    };
    for d in &checked.definitions {
        if !existing.contains(&(d.kind.as_str().to_string(), d.name.clone())) {
            create_checked(c, live, d)
                .with_context(|| format!("failed to create {} `{}`", d.kind.as_str(), d.name))?;
        }
    }
    c.query_drop(format!("USE {}", quote_ident(live)))?;
    Ok(())
}

/// The table in the undo database that keeps the replaced definitions.
const DEFINITIONS_TABLE: &str = "_bmo_definitions";

fn save_definitions(c: &mut Conn, undo: &str, objects: &[super::schema::Object]) -> Result<()> {
    let table = format!("{}.{}", quote_ident(undo), quote_ident(DEFINITIONS_TABLE));
    c.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {table} (kind VARCHAR(16), name VARCHAR(64), tbl VARCHAR(64), sql_mode TEXT, create_stmt LONGTEXT) DEFAULT CHARSET=utf8mb4"
    ))?;
    c.query_drop(format!("DELETE FROM {table}"))?;
    for o in objects {
        c.exec_drop(
            format!("INSERT INTO {table} VALUES (?, ?, ?, ?, ?)"),
            (o.kind, &o.name, &o.table, &o.sql_mode, &o.create),
        )?;
    }
    Ok(())
}

fn drop_object(c: &mut Conn, database: &str, kind: &str, name: &str) -> Result<()> {
    let what = match kind {
        "view" => "VIEW",
        "trigger" => "TRIGGER",
        "procedure" => "PROCEDURE",
        "function" => "FUNCTION",
        "event" => "EVENT",
        other => bail!("unknown object kind `{other}`"),
    };
    c.query_drop(format!(
        "DROP {what} IF EXISTS {}.{}",
        quote_ident(database),
        quote_ident(name)
    ))?;
    Ok(())
}

/// Swaps the tables kept by the last `edit` restore back in, with the
/// views, triggers, routines and events they had; what was live goes to the
/// undo database in their place, so an undo can itself be undone. Returns
/// how many tables were swapped.
pub fn undo(source: &DbSource, timeout: Duration) -> Result<usize> {
    let mut c = connect(source, timeout)?;
    let live: String = c
        .query_first::<Option<String>, _>("SELECT DATABASE()")?
        .flatten()
        .ok_or_else(|| anyhow!("the database address names no database"))?;
    let (_, undo) = side_databases(&live);
    let swap_db = format!("{live}_bmo_swap");
    let has = |c: &mut Conn, db: &str| -> Result<bool> {
        let found: Option<String> = c.exec_first(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (db, DEFINITIONS_TABLE),
        )?;
        Ok(found.is_some())
    };
    // A swap that died while promoting its safety copy left it in `next`.
    let next = next_undo_database(&live);
    let undo = if !has(&mut c, &undo)? && has(&mut c, &next)? {
        next
    } else {
        undo
    };
    anyhow::ensure!(
        has(&mut c, &undo)?,
        "there is no restore to undo (no `{undo}` database)"
    );
    let saved: Vec<(String, String, String, String, String)> = c.query(format!(
        "SELECT kind, name, tbl, sql_mode, create_stmt FROM {}.{}",
        quote_ident(&undo),
        quote_ident(DEFINITIONS_TABLE)
    ))?;
    let tables: HashSet<String> = base_tables(&mut c, &undo)?
        .into_iter()
        .filter(|t| t != DEFINITIONS_TABLE)
        .collect();
    let live_tables = base_tables(&mut c, &live)?;
    let current = super::schema::objects(&mut c, &live)?;
    // Triggers must go before their tables can move.
    for (name, ..) in triggers(&mut c, &live, &tables)? {
        drop_object(&mut c, &live, "trigger", &name)?;
    }
    c.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(&swap_db)))?;
    c.query_drop(format!("CREATE DATABASE {}", quote_ident(&swap_db)))?;
    let q = |db: &str, t: &str| format!("{}.{}", quote_ident(db), quote_ident(t));
    let mut renames = Vec::new();
    for t in &tables {
        if live_tables.contains(t) {
            renames.push(format!("{} TO {}", q(&live, t), q(&swap_db, t)));
            renames.push(format!("{} TO {}", q(&undo, t), q(&live, t)));
            renames.push(format!("{} TO {}", q(&swap_db, t), q(&undo, t)));
        } else {
            renames.push(format!("{} TO {}", q(&undo, t), q(&live, t)));
        }
    }
    let swapped = c.query_drop(format!("RENAME TABLE {}", renames.join(", ")));
    c.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(&swap_db)))?;
    if let Err(e) = swapped {
        for o in current.iter().filter(|o| o.kind == "trigger") {
            let _ = create_object(&mut c, &live, &o.sql_mode, &o.create);
        }
        return Err(anyhow::Error::from(e).context("undo failed; nothing was changed"));
    }
    for o in &current {
        drop_object(&mut c, &live, o.kind, &o.name)?;
    }
    let mut pending: Vec<_> = saved.iter().collect();
    while !pending.is_empty() {
        let mut failed = Vec::new();
        let mut last = None;
        for d in pending.iter().copied() {
            if let Err(e) = create_object(&mut c, &live, &d.3, &d.4) {
                last = Some(e.context(format!("failed to recreate {} `{}`", d.0, d.1)));
                failed.push(d);
            }
        }
        if failed.len() == pending.len() {
            return Err(last.unwrap_or_else(|| anyhow!("objects could not be recreated")));
        }
        pending = failed;
    }
    save_definitions(&mut c, &undo, &current)?;
    c.query_drop(format!("USE {}", quote_ident(&live)))?;
    log::warn!("undo: swapped {} tables back from `{undo}`", tables.len());
    Ok(tables.len())
}
