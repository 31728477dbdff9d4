//! Full restore, staged and reversible.
//!
//! 1. The copy's tables are staged beside the live ones, inside the
//!    billing database (`billmgrops_stage_<i>`, [`stage`]: the panel's own
//!    account may create tables there and nowhere else), and its chunks
//!    loaded there in parallel with
//!    `LOAD DATA LOCAL INFILE` (one statement per table, fed chunk after
//!    chunk through ranged reads at the listing's offsets), each chunk
//!    checked against the listing before it is loaded, every table loaded
//!    with zero warnings and exactly the listed number of rows, with
//!    InnoDB's statistics recalculation paused and the statistics computed
//!    once at the end (`stats.rs`). Until here the live database is
//!    untouched, and any failure just drops the staged tables.
//! 2. `edit`: the live tables are swapped for the staged ones in one atomic
//!    `RENAME TABLE`; the replaced tables are kept as a safety copy
//!    (`billmgrops_kept_<generation>_<slot>`, [`kept`]) until the next
//!    successful backup (`undo` swaps them back). Then the copy's foreign
//!    keys ([`keys`]), views, triggers, routines and events are created. If
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
//!
//! `stage.rs` names and creates the staged tables, `load.rs` fills them,
//! `stats.rs` keeps statistics out of its way, `definitions.rs` checks and
//! runs the copy's statements, `swap.rs` applies the result and undoes it,
//! with `keys.rs` and `kept.rs`; `legacy.rs` undoes a restore an earlier
//! version kept in a database of its own.

mod definitions;
mod insert;
pub(crate) mod kept;
mod keys;
mod legacy;
mod load;
mod stage;
mod stats;
mod swap;

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use super::archive::{self, check_entry, Copy};
use super::ddl::Scope;
use super::format::Listing;
use crate::config::DbSource;
use crate::db::{self, TABLE_PREFIX};
use definitions::Checked;
use stage::Staging;
pub use swap::undo;

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
    /// Stage (and run `after_load`) only: the staged tables are dropped,
    /// the live ones never touched (restoring one object as it was at a
    /// second reads them).
    pub stage_only: bool,
}

/// What a restore did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    pub tables: usize,
    pub rows: u64,
    /// The names the replaced tables are kept under (edit).
    pub undo: Option<String>,
}

/// A restore connection: no checks that the copy already passed, ids of 0
/// kept, the dump's time zone, no query time-out.
fn connect(source: &DbSource, timeout: Duration) -> Result<Conn> {
    db::bulk_conn(
        source,
        timeout,
        &format!(
            "SET SESSION foreign_key_checks = 0, unique_checks = 0, sql_mode = '{}', time_zone = '+00:00'",
            definitions::LOAD_SQL_MODE
        ),
    )
}

/// Checks every statement of a copy as a restore into `live` would,
/// changing nothing: an upload refuses a copy its restore would refuse.
pub fn check_statements(conn: &mut Conn, live: &str, listing: &Listing) -> Result<()> {
    check(conn, live, listing).map(|_| ())
}

fn check(conn: &mut Conn, live: &str, listing: &Listing) -> Result<Checked> {
    let scope = Scope::read(
        conn,
        live,
        &listing.database,
        listing.tables.iter().map(|t| t.name.clone()),
    )?;
    Checked::of(&scope, listing)
}

/// What runs on the staged tables once they are loaded and before they
/// are applied (a replay of the binary log): the connection, and the
/// staged table that stands for each of the copy's tables.
pub type AfterLoad<'a> = dyn FnMut(&mut Conn, &dyn Fn(&str) -> Option<String>) -> Result<()> + 'a;

/// Restores `copy` (described by `listing`) into the database `source`
/// names; `after_load` runs on the staged tables before they are applied.
pub fn restore(
    source: &DbSource,
    timeout: Duration,
    copy: &Copy<'_>,
    listing: &Listing,
    opts: &RestoreOptions,
    progress: &mut dyn FnMut(&str, u32),
    after_load: Option<&mut AfterLoad<'_>>,
) -> Result<RestoreReport> {
    listing
        .archive
        .as_ref()
        .context("the listing does not name its archive")?;
    let mut control = connect(source, timeout)?;
    let live = db::current_database(&mut control)?;
    // Every statement of the copy is checked before anything is created.
    let checked = check(&mut control, &live, listing)
        .context("the copy's definitions are refused; nothing was changed")?;
    let staging = Staging::of(&checked)?;
    // What a killed restore left goes first (the caller holds the job lock).
    kept::settle(&mut control)?;
    let guard = stage::create(&mut control, &staging)?;
    progress("stage", 0);
    check_schema_entries(copy, listing)?;
    progress("load", 0);
    let paused = stats::pause(guard.conn, kept::STAGE_PREFIX)?;
    let target = |name: &str| staging.staged_of(name);
    let loaded = load::load_tables(source, timeout, copy, listing, &target, opts.threads)
        .context("the restore failed before touching the live database")?;
    stats::resume(guard.conn, paused)
        .context("the restore failed before touching the live database")?;
    if let Some(after_load) = after_load {
        progress("replay", 0);
        after_load(guard.conn, &target)
            .context("the restore failed before touching the live database")?;
    }
    if opts.stage_only {
        drop(guard);
        progress("done", 100);
        return Ok(RestoreReport {
            tables: listing.tables.len(),
            rows: loaded,
            undo: None,
        });
    }
    progress("apply", 0);
    let undo = match opts.behavior {
        Behavior::Edit => Some(swap::swap(guard.conn, &checked, &staging, &live)?),
        Behavior::Skip => {
            swap::merge(guard.conn, listing, &checked, &staging, &live)?;
            None
        }
    };
    drop(guard);
    progress("done", 100);
    Ok(RestoreReport {
        tables: listing.tables.len(),
        rows: loaded,
        undo,
    })
}

/// The schema entries are checked against the listing: a restore must not
/// create tables from an archive that differs from what was verified.
fn check_schema_entries(copy: &Copy<'_>, listing: &Listing) -> Result<()> {
    for t in &listing.tables {
        let data = copy.read_range(t.schema_entry.offset, t.schema_entry.size)?;
        let entry = archive::ReadEntry {
            path: t.schema_entry.path.clone(),
            offset: t.schema_entry.offset,
            data,
        };
        check_entry(&t.schema_entry, &entry)?;
    }
    Ok(())
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
