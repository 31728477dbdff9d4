//! Undoing a restore made by an earlier version, which kept the replaced
//! tables in a database of their own (`<db>_bmo_undo`, or
//! `<db>_bmo_undo_next` when it died promoting them) instead of inside the
//! billing database ([`super::kept`]). Only an account that could create
//! those databases has one.

use std::collections::HashSet;

use anyhow::Result;
use mysql::prelude::Queryable;
use mysql::Conn;

use super::super::format::DefinitionKind;
use super::super::introspect;
use super::base_tables;
use super::definitions::{self, create_in, DEFINITIONS_TABLE};
use crate::db::{quote_ident, SideDb};

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

/// Swaps the tables kept in the side database back in, with the views,
/// triggers, routines and events they had; what was live goes to the side
/// database in their place, so an undo can itself be undone. Returns how
/// many tables were swapped.
pub(super) fn undo(c: &mut Conn, live: &str) -> Result<usize> {
    let live = live.to_string();
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
    let undo = if !has(c, &undo)? && has(c, &next)? {
        next
    } else {
        undo
    };
    anyhow::ensure!(has(c, &undo)?, "there is no restore to undo");
    let saved = definitions::saved(c, &undo)?;
    let tables: HashSet<String> = base_tables(c, &undo)?
        .into_iter()
        .filter(|t| t != DEFINITIONS_TABLE)
        .collect();
    let live_tables = base_tables(c, &live)?;
    let current = introspect::objects(c, &live)?;
    drop_triggers(c, &live, &tables)?;
    fresh_database(c, &swap_db)?;
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
    let swapped = rename_all(c, &moves);
    drop_database(c, &swap_db)?;
    if let Err(e) = swapped {
        for o in current.iter().filter(|o| o.kind == DefinitionKind::Trigger) {
            let _ = create_in(c, &live, &o.sql_mode, &o.create);
        }
        return Err(e.context("undo failed; nothing was changed"));
    }
    for o in &current {
        c.query_drop(o.kind.drop_sql(&live, &o.name))?;
    }
    definitions::recreate(c, &live, &saved)?;
    definitions::save(c, &undo, &current)?;
    c.query_drop(format!("USE {}", quote_ident(&live)))?;
    log::warn!("undo: swapped {} tables back from `{undo}`", tables.len());
    Ok(tables.len())
}
