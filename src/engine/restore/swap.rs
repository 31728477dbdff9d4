//! Applying a staged restore to the live database, and taking it back:
//! `edit` swaps whole tables in one atomic `RENAME TABLE` (the replaced
//! ones kept for [`undo`]), `skip` merges the missing rows in one
//! transaction, and `undo` swaps the kept tables back.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use super::super::introspect::{self, DefinitionKind};
use super::definitions::{self, create_in, run_checked, Checked, DEFINITIONS_TABLE};
use super::{base_tables, connect};
use crate::config::DbSource;
use crate::db::{self, quote_ident, SideDb};

/// `db`.`table`
fn q(db: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(db), quote_ident(table))
}

/// One `RENAME TABLE` of `(from database, to database, table)` moves.
fn rename_all(c: &mut Conn, moves: &[(&str, &str, &str)]) -> Result<()> {
    if moves.is_empty() {
        return Ok(());
    }
    let renames: Vec<String> = moves
        .iter()
        .map(|(from, to, t)| format!("{} TO {}", q(from, t), q(to, t)))
        .collect();
    c.query_drop(format!("RENAME TABLE {}", renames.join(", ")))?;
    Ok(())
}

fn drop_database(c: &mut Conn, name: &str) -> Result<()> {
    c.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(name)))?;
    Ok(())
}

fn fresh_database(c: &mut Conn, name: &str) -> Result<()> {
    drop_database(c, name)?;
    c.query_drop(format!("CREATE DATABASE {}", quote_ident(name)))?;
    Ok(())
}

/// Drops the triggers of `database` on `tables`: `RENAME TABLE` cannot
/// move a table with triggers to another database.
fn drop_triggers(c: &mut Conn, database: &str, tables: &HashSet<String>) -> Result<()> {
    for t in introspect::triggers(c, database, Some(tables))? {
        c.query_drop(DefinitionKind::Trigger.drop_sql(database, &t.name))?;
    }
    Ok(())
}

/// edit: the atomic swap, then the copy's other objects; reversed on
/// failure. The replaced tables go to a database of their own and take
/// the previous safety copy's place only once everything succeeded.
pub(super) fn swap(c: &mut Conn, checked: &Checked, live: &str, stage: &str) -> Result<String> {
    let (next, undo) = (SideDb::UndoNext.of(live), SideDb::Undo.of(live));
    let live_tables = base_tables(c, live)?;
    let copy_tables: HashSet<String> = checked.tables.iter().map(|t| t.0.clone()).collect();
    let moved: HashSet<String> = live_tables.intersection(&copy_tables).cloned().collect();
    fresh_database(c, &next)?;
    // What undo needs besides the tables: the live views, triggers,
    // routines and events as they are now.
    let live_objects = introspect::objects(c, live)?;
    definitions::save(c, &next, &live_objects)?;
    let old_triggers = introspect::triggers(c, live, Some(&moved))?;
    drop_triggers(c, live, &moved)?;
    let mut forth: Vec<(&str, &str, &str)> = moved
        .iter()
        .map(|t| (live, next.as_str(), t.as_str()))
        .collect();
    forth.extend(copy_tables.iter().map(|t| (stage, live, t.as_str())));
    if let Err(e) = rename_all(c, &forth) {
        for t in &old_triggers {
            let _ = create_in(c, live, &t.sql_mode, &t.create);
        }
        let _ = drop_database(c, &next);
        return Err(e.context("the swap of tables failed; nothing was changed"));
    }
    if let Err(e) = checked.create_definitions(c, live) {
        // Put everything back as it was: the copy's triggers that were
        // created must go first, or the tables cannot move.
        let _ = drop_triggers(c, live, &copy_tables);
        // Each move reversed, last first: the copy's tables leave before
        // the replaced ones come back under the same names.
        let back: Vec<(&str, &str, &str)> =
            forth.iter().rev().map(|&(a, b, t)| (b, a, t)).collect();
        let undone = rename_all(c, &back);
        for t in &old_triggers {
            let _ = create_in(c, live, &t.sql_mode, &t.create);
        }
        return match undone {
            Ok(()) => {
                let _ = drop_database(c, &next);
                Err(e.context("the copy's views, triggers or routines failed; the swap was reversed"))
            }
            Err(u) => Err(e.context(format!(
                "the copy's objects failed AND reversing the swap failed ({u:#}); the old tables are in `{next}`"
            ))),
        };
    }
    // The swap stands: its replaced tables become the safety copy.
    promote_undo(c, &next, &undo)?;
    c.query_drop(format!("USE {}", quote_ident(live)))?;
    log::info!(
        "restore swapped {} tables; the replaced ones are kept in `{undo}`",
        copy_tables.len()
    );
    Ok(undo)
}

/// Moves every table of `next` into a fresh `undo` and drops `next`. Until
/// the move, [`undo`] falls back to `next`.
fn promote_undo(c: &mut Conn, next: &str, undo: &str) -> Result<()> {
    let tables: Vec<String> = c.exec(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
        (next,),
    )?;
    fresh_database(c, undo)?;
    let moves: Vec<(&str, &str, &str)> = tables.iter().map(|t| (next, undo, t.as_str())).collect();
    rename_all(c, &moves).with_context(|| format!("the replaced tables stay in `{next}`"))?;
    drop_database(c, next)
}

/// skip: add the copy's missing rows, all tables in one transaction, and
/// the copy's objects that do not exist.
pub(super) fn merge(
    c: &mut Conn,
    listing: &super::Listing,
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
            "INSERT IGNORE INTO {} ({cols}) SELECT {cols} FROM {}",
            q(live, &t.name),
            q(stage, &t.name)
        ))
        .with_context(|| format!("failed to add the missing rows of `{}`", t.name))?;
    }
    tx.commit()?;
    let existing: HashSet<(DefinitionKind, String)> = introspect::objects(c, live)?
        .into_iter()
        .map(|o| (o.kind, o.name))
        .collect();
    for d in &checked.definitions {
        if !existing.contains(&(d.kind, d.name.clone())) {
            create_in(c, live, &d.sql_mode, &d.create)
                .with_context(|| format!("failed to create {} `{}`", d.kind.as_str(), d.name))?;
        }
    }
    c.query_drop(format!("USE {}", quote_ident(live)))?;
    Ok(())
}

/// Swaps the tables kept by the last `edit` restore back in, with the
/// views, triggers, routines and events they had; what was live goes to the
/// undo database in their place, so an undo can itself be undone. Returns
/// how many tables were swapped.
pub fn undo(source: &DbSource, timeout: Duration) -> Result<usize> {
    let mut c = connect(source, timeout)?;
    let live = db::current_database(&mut c)?;
    let swap_db = SideDb::Swap.of(&live);
    let has = |c: &mut Conn, db: &str| -> Result<bool> {
        let found: Option<String> = c.exec_first(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (db, DEFINITIONS_TABLE),
        )?;
        Ok(found.is_some())
    };
    // A swap that died while promoting its safety copy left it in `next`.
    let (next, undo) = (SideDb::UndoNext.of(&live), SideDb::Undo.of(&live));
    let undo = if !has(&mut c, &undo)? && has(&mut c, &next)? {
        next
    } else {
        undo
    };
    anyhow::ensure!(
        has(&mut c, &undo)?,
        "there is no restore to undo (no `{undo}` database)"
    );
    let saved = definitions::saved(&mut c, &undo)?;
    let tables: HashSet<String> = base_tables(&mut c, &undo)?
        .into_iter()
        .filter(|t| t != DEFINITIONS_TABLE)
        .collect();
    let live_tables = base_tables(&mut c, &live)?;
    let current = introspect::objects(&mut c, &live)?;
    drop_triggers(&mut c, &live, &tables)?;
    fresh_database(&mut c, &swap_db)?;
    let mut moves: Vec<(&str, &str, &str)> = Vec::new();
    for t in &tables {
        if live_tables.contains(t) {
            moves.push((&live, &swap_db, t));
            moves.push((&undo, &live, t));
            moves.push((&swap_db, &undo, t));
        } else {
            moves.push((&undo, &live, t));
        }
    }
    let swapped = rename_all(&mut c, &moves);
    drop_database(&mut c, &swap_db)?;
    if let Err(e) = swapped {
        for o in current.iter().filter(|o| o.kind == DefinitionKind::Trigger) {
            let _ = create_in(&mut c, &live, &o.sql_mode, &o.create);
        }
        return Err(e.context("undo failed; nothing was changed"));
    }
    for o in &current {
        c.query_drop(o.kind.drop_sql(&live, &o.name))?;
    }
    definitions::recreate(&mut c, &live, &saved)?;
    definitions::save(&mut c, &undo, &current)?;
    c.query_drop(format!("USE {}", quote_ident(&live)))?;
    log::warn!("undo: swapped {} tables back from `{undo}`", tables.len());
    Ok(tables.len())
}
