//! The tables an `edit` restore replaced, kept inside the billing database
//! for `undo`: the panel's own account (`ALL` on its database and nothing
//! else) can make and drop nothing outside it.
//!
//! Each swap is a generation. Its replaced tables are renamed to
//! `billmgrops_kept_<generation>_<slot>`, and `billmgrops_kept` lists, for
//! the generation, those tables under their live names, their foreign keys
//! (a kept table gives them up: InnoDB names a foreign key once per
//! database, and the restored table takes the name) and the views,
//! triggers, routines and events that were live. A generation is
//! `pending` until its swap has succeeded, then `undo`; the newest `undo`
//! generation is the safety copy, older ones are dropped.
//!
//! A process killed mid-swap leaves a pending generation: [`settle`] makes
//! it the safety copy when its tables were already moved (they are the
//! only copy of what was live), and forgets it otherwise.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use super::super::ddl::ForeignKey;
use super::super::format::DefinitionKind;
use super::super::introspect::Object;
use crate::db::quote_ident;

/// The list of kept things.
const LIST: &str = "billmgrops_kept";
/// The prefix of kept tables.
const TABLE_PREFIX: &str = "billmgrops_kept_";
/// The prefix of a restore's staged tables.
pub(super) const STAGE_PREFIX: &str = "billmgrops_stage_";

/// Where a generation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Its swap has not finished.
    Pending,
    /// The safety copy.
    Undo,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Undo => "undo",
        }
    }
}

/// A kept table: its live name and the name it is kept under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct KeptTable {
    pub name: String,
    pub kept: String,
}

/// What a generation keeps.
#[derive(Debug, Default)]
pub(super) struct Generation {
    pub tables: Vec<KeptTable>,
    /// (live table, foreign key) of the kept tables.
    pub foreign_keys: Vec<(String, ForeignKey)>,
    pub objects: Vec<Object>,
}

/// The name a table of `generation` is kept under.
pub(super) fn table_name(generation: u64, slot: usize) -> String {
    format!("{TABLE_PREFIX}{generation}_{slot}")
}

/// `LIKE` pattern of a prefix, its `_` escaped.
fn like(prefix: &str) -> String {
    format!("{}%", prefix.replace('_', "\\_"))
}

/// Tables of the live database whose names start with `prefix`.
pub(super) fn tables_like(c: &mut Conn, prefix: &str) -> Result<Vec<String>> {
    Ok(c.exec(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ?",
        (like(prefix),),
    )?)
}

/// Drops `tables` of the live database, foreign keys unchecked (a kept
/// table may still be named by one).
pub(super) fn drop_tables(c: &mut Conn, tables: &[String]) -> Result<()> {
    if tables.is_empty() {
        return Ok(());
    }
    c.query_drop(
        "SET @bmo_fk_checks = @@SESSION.foreign_key_checks, SESSION foreign_key_checks = 0",
    )?;
    let dropped = tables.chunks(64).try_for_each(|chunk| {
        let names: Vec<String> = chunk.iter().map(|t| quote_ident(t)).collect();
        c.query_drop(format!("DROP TABLE IF EXISTS {}", names.join(", ")))
    });
    c.query_drop("SET SESSION foreign_key_checks = @bmo_fk_checks")?;
    Ok(dropped?)
}

/// A new generation number.
pub(super) fn next(c: &mut Conn) -> Result<u64> {
    let last: Option<u64> = c
        .query_first::<Option<u64>, _>(format!("SELECT MAX(generation) FROM {LIST}"))?
        .flatten();
    let on_disk = tables_like(c, TABLE_PREFIX)?
        .iter()
        .filter_map(|t| {
            t[TABLE_PREFIX.len()..]
                .split('_')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .max();
    Ok(last.max(on_disk).unwrap_or(0) + 1)
}

/// Writes what `generation` keeps, replacing what it kept before.
pub(super) fn save(c: &mut Conn, generation: u64, state: State, kept: &Generation) -> Result<()> {
    let mut tx = c.start_transaction(mysql::TxOpts::default())?;
    tx.exec_drop(
        format!("DELETE FROM {LIST} WHERE generation = ?"),
        (generation,),
    )?;
    let insert = format!(
        "INSERT INTO {LIST} (generation, state, kind, name, tbl, sql_mode, create_stmt) VALUES (?, ?, ?, ?, ?, ?, ?)"
    );
    let state = state.as_str();
    for t in &kept.tables {
        tx.exec_drop(
            &insert,
            (generation, state, "table", &t.name, &t.kept, "", ""),
        )?;
    }
    for (table, fk) in &kept.foreign_keys {
        tx.exec_drop(
            &insert,
            (
                generation,
                state,
                "foreign key",
                &fk.name,
                table,
                "",
                &fk.clause,
            ),
        )?;
    }
    for o in &kept.objects {
        tx.exec_drop(
            &insert,
            (
                generation,
                state,
                o.kind.as_str(),
                &o.name,
                &o.table,
                &o.sql_mode,
                &o.create,
            ),
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// What `generation` keeps.
pub(super) fn read(c: &mut Conn, generation: u64) -> Result<Generation> {
    let rows: Vec<(String, String, String, String, String)> = c.exec(
        format!("SELECT kind, name, tbl, sql_mode, create_stmt FROM {LIST} WHERE generation = ? ORDER BY id"),
        (generation,),
    )?;
    let mut kept = Generation::default();
    for (kind, name, table, sql_mode, create) in rows {
        match kind.as_str() {
            "table" => kept.tables.push(KeptTable { name, kept: table }),
            "foreign key" => kept.foreign_keys.push((
                table,
                ForeignKey {
                    name,
                    clause: create,
                },
            )),
            other => kept.objects.push(Object {
                kind: DefinitionKind::parse(other)
                    .with_context(|| format!("unknown kind `{other}` in {LIST}"))?,
                name,
                table,
                create,
                sql_mode,
            }),
        }
    }
    Ok(kept)
}

/// Marks `generation` the safety copy and drops every other one.
pub(super) fn promote(c: &mut Conn, generation: u64) -> Result<()> {
    c.exec_drop(
        format!("UPDATE {LIST} SET state = 'undo' WHERE generation = ?"),
        (generation,),
    )?;
    let others: Vec<u64> = c.exec(
        format!("SELECT DISTINCT generation FROM {LIST} WHERE generation <> ?"),
        (generation,),
    )?;
    for g in others {
        forget(c, g)?;
    }
    Ok(())
}

/// Drops `generation`'s tables and its rows.
pub(super) fn forget(c: &mut Conn, generation: u64) -> Result<()> {
    let tables = tables_like(c, &format!("{TABLE_PREFIX}{generation}_"))?;
    drop_tables(c, &tables)?;
    c.exec_drop(
        format!("DELETE FROM {LIST} WHERE generation = ?"),
        (generation,),
    )?;
    Ok(())
}

/// The safety copy's generation, if there is one.
pub(super) fn current(c: &mut Conn) -> Result<Option<u64>> {
    Ok(c.query_first::<Option<u64>, _>(format!(
        "SELECT MAX(generation) FROM {LIST} WHERE state = 'undo'"
    ))?
    .flatten())
}

/// Puts right what a killed restore left (run under the job lock, before
/// a restore or an undo): staged tables are dropped; a pending generation
/// whose tables were moved becomes the safety copy, one whose were not is
/// forgotten; kept tables no generation lists are dropped.
pub(super) fn settle(c: &mut Conn) -> Result<()> {
    let staged = tables_like(c, STAGE_PREFIX)?;
    if !staged.is_empty() {
        log::warn!(
            "dropping {} staged tables a killed restore left",
            staged.len()
        );
        drop_tables(c, &staged)?;
    }
    let pending: Vec<u64> = c.query(format!(
        "SELECT DISTINCT generation FROM {LIST} WHERE state = 'pending'"
    ))?;
    for g in pending {
        if tables_like(c, &format!("{TABLE_PREFIX}{g}_"))?.is_empty() {
            forget(c, g)?;
        } else {
            log::warn!("a restore was killed after its swap; what it replaced is the safety copy");
            promote(c, g)?;
        }
    }
    let listed: Vec<u64> = c.query(format!("SELECT DISTINCT generation FROM {LIST}"))?;
    let orphans: Vec<String> = tables_like(c, TABLE_PREFIX)?
        .into_iter()
        .filter(|t| {
            t[TABLE_PREFIX.len()..]
                .split('_')
                .next()
                .and_then(|g| g.parse::<u64>().ok())
                .is_none_or(|g| !listed.contains(&g))
        })
        .collect();
    drop_tables(c, &orphans)
}

/// Drops the safety copy and anything a restore left: after a backup
/// succeeds.
pub(crate) fn drop_all(c: &mut Conn) -> Result<()> {
    let generations: Vec<u64> = c.query(format!("SELECT DISTINCT generation FROM {LIST}"))?;
    for g in generations {
        forget(c, g)?;
    }
    let left: Vec<String> = tables_like(c, TABLE_PREFIX)?
        .into_iter()
        .chain(tables_like(c, STAGE_PREFIX)?)
        .collect();
    drop_tables(c, &left)
}
