//! Applying a staged restore to the live database, and taking it back:
//! `edit` swaps whole tables in one atomic `RENAME TABLE` (the replaced
//! ones kept for [`undo`], [`super::kept`]), `skip` merges the missing
//! rows in one transaction, and `undo` swaps the kept tables back.
//!
//! Everything happens inside the billing database. Around the rename, a
//! swap moves what a table cannot take with it: triggers (dropped from the
//! replaced tables and kept; the copy's created after), foreign keys
//! ([`super::keys`]) and the views, routines and events of the copy. If
//! anything after the rename fails, every step is reversed.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use super::super::format::DefinitionKind;
use super::super::introspect::{self, Object};
use super::definitions::{create_in, recreate, run_checked, Checked};
use super::kept::{self, Generation, KeptTable, State};
use super::stage::Staging;
use super::{base_tables, connect, keys};
use crate::config::DbSource;
use crate::db::{self, quote_ident};

/// One `RENAME TABLE` of `(from, to)` moves inside the live database.
fn rename_all(c: &mut Conn, moves: &[(String, String)]) -> Result<()> {
    if moves.is_empty() {
        return Ok(());
    }
    let renames: Vec<String> = moves
        .iter()
        .map(|(from, to)| format!("{} TO {}", quote_ident(from), quote_ident(to)))
        .collect();
    c.query_drop(format!("RENAME TABLE {}", renames.join(", ")))?;
    Ok(())
}

fn reversed(moves: &[(String, String)]) -> Vec<(String, String)> {
    moves
        .iter()
        .rev()
        .map(|(a, b)| (b.clone(), a.clone()))
        .collect()
}

/// Drops the triggers of `live` on `tables`: a trigger's name is the
/// database's once, and the copy brings its own.
fn drop_triggers(c: &mut Conn, live: &str, tables: &HashSet<String>) -> Result<()> {
    for t in introspect::triggers(c, live, Some(tables))? {
        c.query_drop(DefinitionKind::Trigger.drop_sql(live, &t.name))?;
    }
    Ok(())
}

fn recreate_triggers(c: &mut Conn, live: &str, triggers: &[Object]) {
    for t in triggers
        .iter()
        .filter(|o| o.kind == DefinitionKind::Trigger)
    {
        if let Err(e) = create_in(c, live, &t.sql_mode, &t.create) {
            log::error!("cannot recreate trigger `{}`: {e:#}", t.name);
        }
    }
}

/// edit: the atomic swap, then the foreign keys and the copy's other
/// objects; reversed on failure. The replaced tables become a pending
/// generation of kept tables, the safety copy once everything succeeded.
/// Returns the kept tables' prefix.
pub(super) fn swap(
    c: &mut Conn,
    checked: &Checked,
    staging: &Staging,
    live: &str,
) -> Result<String> {
    let live_tables = base_tables(c, live)?;
    let copy_tables: HashSet<String> = staging.tables.iter().map(|t| t.name.clone()).collect();
    let generation = kept::next(c)?;
    let mut replaced: Vec<&String> = live_tables.intersection(&copy_tables).collect();
    replaced.sort();
    let moved: HashSet<String> = replaced.iter().map(|t| (*t).clone()).collect();
    let keeping = Generation {
        tables: replaced
            .iter()
            .enumerate()
            .map(|(slot, t)| KeptTable {
                name: (*t).clone(),
                kept: kept::table_name(generation, slot),
            })
            .collect(),
        foreign_keys: keys::of_tables(c, replaced.iter().copied())?,
        // What undo needs besides the tables: the live views, triggers,
        // routines and events as they are now.
        objects: introspect::objects(c, live)?,
    };
    // Tables outside the copy keep their keys to the live names.
    let outside = keys::children_outside(c, &copy_tables)?;
    let outside_keys = keys::of_tables(c, outside.iter())?;
    kept::save(c, generation, State::Pending, &keeping)?;
    let old_triggers = introspect::triggers(c, live, Some(&moved))?;
    drop_triggers(c, live, &moved)?;
    let mut forth: Vec<(String, String)> = keeping
        .tables
        .iter()
        .map(|k| (k.name.clone(), k.kept.clone()))
        .collect();
    forth.extend(
        staging
            .tables
            .iter()
            .map(|t| (t.staged.clone(), t.name.clone())),
    );
    if let Err(e) = rename_all(c, &forth) {
        recreate_triggers(c, live, &old_triggers);
        let _ = kept::forget(c, generation);
        return Err(e.context("the swap of tables failed; nothing was changed"));
    }
    let kept_names: Vec<&str> = keeping.tables.iter().map(|k| k.kept.as_str()).collect();
    let new_names: Vec<&str> = staging.tables.iter().map(|t| t.name.as_str()).collect();
    let outside_names: Vec<&str> = outside.iter().map(String::as_str).collect();
    let applied = (|| -> Result<()> {
        // The kept tables give their keys up first: the names pass on.
        keys::set(c, &kept_names, &[])?;
        keys::set(c, &new_names, &staging.foreign_keys())?;
        keys::set(c, &outside_names, &outside_keys)?;
        checked.create_definitions(c, live)
    })();
    if let Err(e) = applied {
        // Put everything back as it was: the copy's triggers first, or the
        // tables cannot move.
        let undone = (|| -> Result<()> {
            drop_triggers(c, live, &copy_tables)?;
            keys::set(c, &new_names, &[])?;
            rename_all(c, &reversed(&forth))?;
            let old: Vec<&str> = keeping.tables.iter().map(|k| k.name.as_str()).collect();
            keys::set(c, &old, &keeping.foreign_keys)?;
            keys::set(c, &outside_names, &outside_keys)
        })();
        recreate_triggers(c, live, &old_triggers);
        return match undone {
            Ok(()) => {
                let _ = kept::forget(c, generation);
                Err(e.context(
                    "the copy's keys, views, triggers or routines failed; the swap was reversed",
                ))
            }
            Err(u) => Err(e.context(format!(
                "the copy's keys or objects failed AND reversing the swap failed ({u:#}); \
                 the old tables are kept as `{}*`, and `undo` brings them back",
                kept::table_name(generation, 0).trim_end_matches('0')
            ))),
        };
    }
    // The swap stands: its replaced tables become the safety copy.
    kept::promote(c, generation)?;
    let prefix = format!("{}*", kept::table_name(generation, 0).trim_end_matches('0'));
    log::info!(
        "restore swapped {} tables; the {} replaced ones are kept as `{prefix}`",
        copy_tables.len(),
        keeping.tables.len()
    );
    Ok(prefix)
}

/// skip: add the copy's missing rows, all tables in one transaction, and
/// the copy's objects that do not exist.
pub(super) fn merge(
    c: &mut Conn,
    listing: &super::Listing,
    checked: &Checked,
    staging: &Staging,
    live: &str,
) -> Result<()> {
    let live_tables = base_tables(c, live)?;
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
        let staged = staging
            .staged_of(&t.name)
            .context("a table of the copy was not staged")?;
        let cols = t
            .columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        tx.query_drop(format!(
            "INSERT IGNORE INTO {} ({cols}) SELECT {cols} FROM {}",
            quote_ident(&t.name),
            quote_ident(&staged)
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
/// views, triggers, routines and events and foreign keys they had; what
/// was live is kept in their place, so an undo can itself be undone.
/// Returns how many tables were swapped.
pub fn undo(source: &DbSource, timeout: Duration) -> Result<usize> {
    let mut c = connect(source, timeout)?;
    let live = db::current_database(&mut c)?;
    kept::settle(&mut c)?;
    let Some(generation) = kept::current(&mut c)? else {
        return super::legacy::undo(&mut c, &live);
    };
    let was = kept::read(&mut c, generation)?;
    let live_tables = base_tables(&mut c, &live)?;
    let names: HashSet<String> = was.tables.iter().map(|k| k.name.clone()).collect();
    let back: Vec<&KeptTable> = was
        .tables
        .iter()
        .filter(|k| live_tables.contains(&k.name))
        .collect();
    let now = Generation {
        tables: back.iter().map(|k| (*k).clone()).collect(),
        foreign_keys: keys::of_tables(&mut c, back.iter().map(|k| &k.name))?,
        objects: introspect::objects(&mut c, &live)?,
    };
    let outside = keys::children_outside(&mut c, &names)?;
    let outside_keys = keys::of_tables(&mut c, outside.iter())?;
    drop_triggers(&mut c, &live, &names)?;
    let mut moves: Vec<(String, String)> = Vec::new();
    for (slot, k) in was.tables.iter().enumerate() {
        if live_tables.contains(&k.name) {
            let scratch = format!("billmgrops_swap_{slot}");
            moves.push((k.name.clone(), scratch.clone()));
            moves.push((k.kept.clone(), k.name.clone()));
            moves.push((scratch, k.kept.clone()));
        } else {
            moves.push((k.kept.clone(), k.name.clone()));
        }
    }
    if let Err(e) = rename_all(&mut c, &moves) {
        recreate_triggers(&mut c, &live, &now.objects);
        return Err(e.context("undo failed; nothing was changed"));
    }
    let kept_names: Vec<&str> = now.tables.iter().map(|k| k.kept.as_str()).collect();
    let restored: Vec<&str> = was.tables.iter().map(|k| k.name.as_str()).collect();
    let outside_names: Vec<&str> = outside.iter().map(String::as_str).collect();
    keys::set(&mut c, &kept_names, &[])?;
    keys::set(&mut c, &restored, &was.foreign_keys)?;
    keys::set(&mut c, &outside_names, &outside_keys)?;
    for o in &now.objects {
        c.query_drop(o.kind.drop_sql(&live, &o.name))?;
    }
    recreate(&mut c, &live, &was.objects)?;
    kept::save(&mut c, generation, State::Undo, &now)?;
    c.query_drop(format!("USE {}", quote_ident(&live)))?;
    log::warn!(
        "undo: swapped {} tables back from the safety copy",
        was.tables.len()
    );
    Ok(was.tables.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reversed_swap_moves_each_table_back_last_first() {
        let forth = vec![
            ("a".to_string(), "k_0".to_string()),
            ("s_0".to_string(), "a".to_string()),
        ];
        assert_eq!(
            reversed(&forth),
            vec![
                ("a".to_string(), "s_0".to_string()),
                ("k_0".to_string(), "a".to_string()),
            ]
        );
    }
}
