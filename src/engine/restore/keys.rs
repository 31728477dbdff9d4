//! Foreign keys of the live database's tables, as a swap moves them.
//!
//! A foreign key follows the table it references when that table is
//! renamed, and its name is the database's once (see [`super::kept`]). So
//! a swap takes the foreign keys off the tables it keeps, puts the copy's
//! on the restored tables, and points the keys of tables outside the copy
//! back at the live names. With `foreign_key_checks = 0` (the restore's
//! connections) each is a change of metadata only.

use std::collections::HashSet;

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use super::super::ddl::{run_checked, split_foreign_keys, ForeignKey};
use crate::db::quote_ident;

/// The foreign keys of `table` in the connection's database, as the
/// server writes them.
pub(super) fn of_table(c: &mut Conn, table: &str) -> Result<Vec<ForeignKey>> {
    let (_, create): (String, String) = c
        .query_first(format!("SHOW CREATE TABLE {}", quote_ident(table)))?
        .with_context(|| format!("no table `{table}`"))?;
    Ok(split_foreign_keys(&create, table)
        .with_context(|| format!("cannot read the foreign keys of `{table}`"))?
        .foreign_keys)
}

/// The foreign keys of each of `tables`, as (table, key).
pub(super) fn of_tables<'a>(
    c: &mut Conn,
    tables: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<(String, ForeignKey)>> {
    let mut all = Vec::new();
    for t in tables {
        all.extend(of_table(c, t)?.into_iter().map(|k| (t.clone(), k)));
    }
    Ok(all)
}

/// Drops every foreign key of `table`.
pub(super) fn drop_all(c: &mut Conn, table: &str) -> Result<()> {
    let names: Vec<String> = c.exec(
        "SELECT CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND CONSTRAINT_TYPE = 'FOREIGN KEY'",
        (table,),
    )?;
    if names.is_empty() {
        return Ok(());
    }
    let drops: Vec<String> = names
        .iter()
        .map(|n| format!("DROP FOREIGN KEY {}", quote_ident(n)))
        .collect();
    c.query_drop(format!(
        "ALTER TABLE {} {}",
        quote_ident(table),
        drops.join(", ")
    ))
    .with_context(|| format!("failed to drop the foreign keys of `{table}`"))
}

/// Adds `keys` (checked clauses, or the server's own) to `table`.
pub(super) fn add(c: &mut Conn, table: &str, keys: &[&ForeignKey]) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let adds: Vec<String> = keys.iter().map(|k| format!("ADD {}", k.clause)).collect();
    run_checked(
        c,
        &format!("ALTER TABLE {} {}", quote_ident(table), adds.join(", ")),
    )
    .with_context(|| format!("failed to add the foreign keys of `{table}`"))
}

/// Gives each table of `keys` exactly its keys there.
pub(super) fn set(c: &mut Conn, tables: &[&str], keys: &[(String, ForeignKey)]) -> Result<()> {
    for t in tables {
        drop_all(c, t)?;
    }
    for t in tables {
        let mine: Vec<&ForeignKey> = keys
            .iter()
            .filter(|(table, _)| table == t)
            .map(|(_, k)| k)
            .collect();
        add(c, t, &mine)?;
    }
    Ok(())
}

/// Tables outside `tables` (and not the plugin's) with a foreign key to
/// one of them.
pub(super) fn children_outside(c: &mut Conn, tables: &HashSet<String>) -> Result<Vec<String>> {
    let pairs: Vec<(String, String)> = c.query(
        "SELECT DISTINCT TABLE_NAME, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS
         WHERE CONSTRAINT_SCHEMA = DATABASE() AND UNIQUE_CONSTRAINT_SCHEMA = DATABASE()",
    )?;
    let mut children: Vec<String> = pairs
        .into_iter()
        .filter(|(child, parent)| {
            tables.contains(parent)
                && !tables.contains(child)
                && !child.starts_with(crate::db::TABLE_PREFIX)
        })
        .map(|(child, _)| child)
        .collect();
    children.sort();
    children.dedup();
    Ok(children)
}
