//! Restoring single objects (a client, a service ...) from a copy into the
//! live database, with what depends on them and what they need, in one
//! transaction.
//!
//! What is restored, from the copy's own foreign keys:
//! - the object's row, and downward every row that points at a restored
//!   row (a client's users, services, payments; a service's parameters;
//!   child services), to a fixed point;
//! - upward, every row a restored row points at that the live database
//!   lacks (a deleted tariff, processing module, currency), taken from the
//!   copy too (without their other dependents).
//!
//! `skip` inserts only what is missing and leaves existing rows (by
//! primary key) as they are; `edit` also sets existing rows of the object
//! and its dependents back to their saved values (`UPDATE`, never
//! `REPLACE`, whose delete would cascade through ON DELETE CASCADE). Rows
//! created after the copy are left alone. Rows go in parents first, under
//! the server's foreign key checks, in one transaction: a conflict (a user
//! name taken since) rolls everything back. Only the chunks that can hold
//! the rows are read (`pick`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use mysql::prelude::Queryable;

use super::super::archive::Copy;
use super::super::format::{kinds, Listing, TableEntry};
use super::super::restore::Behavior;
use super::super::tsv::Cell;
use super::gathered::{Gathered, Part};
use super::pick::{self, RowSource};
use crate::config::DbSource;
use crate::db::{self, quote_ident};

/// What a restore did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ObjectReport {
    /// Rows written (inserted or, with edit, updated) per table.
    pub rows: BTreeMap<String, u64>,
    /// Archive bytes read, of `archive_size`.
    pub bytes_read: u64,
    pub archive_size: u64,
}

fn int(cell: &Cell) -> Option<i64> {
    std::str::from_utf8(cell.as_deref()?).ok()?.parse().ok()
}

/// The single integer primary key column of a table, if it has one.
fn key_column(t: &TableEntry) -> Option<&str> {
    (t.primary_key.len() == 1).then(|| t.primary_key[0].as_str())
}

fn column_at(t: &TableEntry, column: &str) -> Result<usize> {
    t.columns
        .iter()
        .position(|c| c == column)
        .with_context(|| format!("table `{}` has no column `{column}`", t.name))
}

/// Which saved objects to restore, and how.
#[derive(Clone, Copy, Debug)]
pub struct Wanted<'a> {
    /// A kind of [`super::super::format::kinds::TABLE_KINDS`].
    pub kind: &'a str,
    pub ids: &'a [i64],
    pub behavior: Behavior,
}

/// Restores the `wanted` objects from `copy` into the database of
/// `source`. `progress` hears phase `read` (rows gathered from the copy)
/// and `write` with the percent of gathered rows written.
pub fn restore_objects(
    source: &DbSource,
    timeout: Duration,
    copy: &Copy<'_>,
    listing: &Listing,
    wanted: Wanted<'_>,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<ObjectReport> {
    let mut reader = pick::ChunkReader::new(copy);
    restore_objects_from(source, timeout, &mut reader, listing, wanted, progress)
}

/// [`restore_objects`], the saved rows read from `reader` (a copy's
/// chunks, or a restore's staged tables: [`super::staged_rows`]).
pub fn restore_objects_from(
    source: &DbSource,
    timeout: Duration,
    reader: &mut dyn RowSource,
    listing: &Listing,
    wanted: Wanted<'_>,
    progress: &mut dyn FnMut(&str, u32),
) -> Result<ObjectReport> {
    let Wanted {
        kind,
        ids,
        behavior,
    } = wanted;
    let k = kinds::TABLE_KINDS
        .iter()
        .find(|k| k.kind == kind)
        .with_context(|| format!("`{kind}` is not a kind of saved object"))?;
    let tables: BTreeMap<&str, &TableEntry> = listing
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let own_table = *tables
        .get(k.table)
        .with_context(|| format!("the copy has no table `{}`", k.table))?;
    let mut conn = db::bulk_conn(
        source,
        timeout,
        "SET SESSION character_set_client = binary, character_set_connection = binary,
             character_set_results = binary, time_zone = '+00:00',
             sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'",
    )
    .context("failed to connect for the restore")?;
    let mut g = Gathered::new()?;
    progress("read", 0);

    // What restored rows point at, by table: looked up upward at the end.
    let mut pointed: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let refs = |t: &TableEntry, row: &[Cell], out: &mut BTreeMap<String, BTreeSet<i64>>| {
        for fk in t
            .foreign_keys
            .iter()
            .filter(|fk| fk.columns.len() == 1 && fk.ref_columns.len() == 1)
        {
            if let Some(v) = int(&row[column_at(t, &fk.columns[0])?]) {
                out.entry(fk.ref_table.clone()).or_default().insert(v);
            }
        }
        Ok::<(), anyhow::Error>(())
    };

    // The objects themselves.
    let wanted: BTreeSet<i64> = ids.iter().copied().collect();
    let mut frontier: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut found = BTreeSet::new();
    let id_at = column_at(own_table, k.id)?;
    reader.each_row_where(own_table, k.id, &wanted, &mut |row| {
        if let Some(id) = int(&row[id_at]) {
            found.insert(id);
        }
        add(&mut g, own_table, &row, &mut frontier)?;
        refs(own_table, &row, &mut pointed)
    })?;
    if let Some(missing) = wanted.difference(&found).next() {
        return Err(anyhow!("the copy does not hold {kind} {missing}"));
    }

    // Downward: rows pointing at restored rows, to a fixed point.
    while let Some((parent, keys)) = frontier.pop_first() {
        for t in &listing.tables {
            let Some(_) = key_column(t) else { continue };
            for fk in t.foreign_keys.iter().filter(|fk| {
                fk.ref_table == parent && fk.columns.len() == 1 && fk.ref_columns.len() == 1
            }) {
                reader.each_row_where(t, &fk.columns[0], &keys, &mut |row| {
                    if add(&mut g, t, &row, &mut frontier)? {
                        refs(t, &row, &mut pointed)?;
                    }
                    Ok(())
                })?;
            }
        }
    }

    // Upward: what restored rows point at and the live database lacks.
    // By rounds: each round looks up, per table, every key the rows of
    // the round before point at, in one query and one pass over the
    // frames that can hold them.
    let mut seen: BTreeSet<(String, i64)> = BTreeSet::new();
    while !pointed.is_empty() {
        let mut by_table: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        for (table, keys) in std::mem::take(&mut pointed) {
            for key in keys {
                if g.contains(Part::Own, &table, key) || !seen.insert((table.clone(), key)) {
                    continue;
                }
                by_table.entry(table.clone()).or_default().insert(key);
            }
        }
        for (table, keys) in by_table {
            let t = *tables
                .get(table.as_str())
                .with_context(|| format!("the copy has no table `{table}`"))?;
            let column = key_column(t).with_context(|| format!("`{table}` has no single key"))?;
            let list = keys
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let present: BTreeSet<i64> = conn
                .query::<i64, _>(format!(
                    "SELECT {c} FROM {t} WHERE {c} IN ({list})",
                    c = quote_ident(column),
                    t = quote_ident(&table),
                ))?
                .into_iter()
                .collect();
            let missing: BTreeSet<i64> = keys.difference(&present).copied().collect();
            if missing.is_empty() {
                continue;
            }
            let at = column_at(t, column)?;
            let mut found = BTreeSet::new();
            reader.each_row_where(t, column, &missing, &mut |row| {
                let Some(key) = int(&row[at]) else {
                    return Ok(());
                };
                refs(t, &row, &mut pointed)?;
                found.insert(key);
                g.insert(Part::Needed, &table, key, &row)?;
                Ok(())
            })?;
            if let Some(key) = missing.difference(&found).next() {
                return Err(anyhow!(
                    "{kind} needs {table} {key}, which neither the database nor the copy holds"
                ));
            }
        }
    }
    let bytes_read = reader.bytes_read();

    // Write, parents first, in one transaction.
    let order = parents_first(listing, g.tables());
    let mut report = ObjectReport {
        bytes_read,
        archive_size: listing.archive.as_ref().map_or(0, |a| a.size),
        ..ObjectReport::default()
    };
    let total = g.len();
    let mut done = 0usize;
    progress("write", 0);
    let mut tx = conn.start_transaction(mysql::TxOpts::default())?;
    for name in order {
        let t = tables[name.as_str()];
        let columns: Vec<&String> = t
            .columns
            .iter()
            .filter(|c| !t.generated.contains(c))
            .collect();
        let positions: Vec<usize> = columns
            .iter()
            .map(|c| column_at(t, c))
            .collect::<Result<_>>()?;
        let list = columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        let marks = vec!["?"; columns.len()].join(", ");
        let key_name = key_column(t).context("a table without a single key")?;
        let key_at = column_at(t, key_name)?;
        let key = quote_ident(key_name);
        let table = quote_ident(&name);
        let insert = format!("INSERT INTO {table} ({list}) VALUES ({marks})");
        let update = format!(
            "UPDATE {table} SET {} WHERE {key} = ?",
            columns
                .iter()
                .map(|c| format!("{} = ?", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let exists_sql = format!("SELECT 1 FROM {table} WHERE {key} = ?");
        for (part, overwrite) in [
            (Part::Needed, false),
            (Part::Own, behavior == Behavior::Edit),
        ] {
            g.each_row(part, &name, &mut |row| {
                let mut params: Vec<mysql::Value> = positions
                    .iter()
                    .map(|&i| match &row[i] {
                        None => mysql::Value::NULL,
                        Some(b) => mysql::Value::Bytes(b.clone()),
                    })
                    .collect();
                let key_value = match &row[key_at] {
                    None => mysql::Value::NULL,
                    Some(b) => mysql::Value::Bytes(b.clone()),
                };
                let exists: Option<i64> = tx.exec_first(&exists_sql, (key_value.clone(),))?;
                // A row that exists is kept (skip) or set to its saved
                // values (edit); any other unique-key conflict is an error
                // and rolls the whole restore back.
                let written = match (exists.is_some(), overwrite) {
                    (true, false) => false,
                    (true, true) => {
                        params.push(key_value);
                        tx.exec_drop(&update, params)
                            .with_context(|| format!("failed to restore a row of `{name}`"))?;
                        tx.affected_rows() > 0
                    }
                    (false, _) => {
                        tx.exec_drop(&insert, params)
                            .with_context(|| format!("failed to restore a row of `{name}`"))?;
                        true
                    }
                };
                if written {
                    *report.rows.entry(name.clone()).or_default() += 1;
                }
                let before = done * 100 / total.max(1);
                done += 1;
                let now = done * 100 / total.max(1);
                if now != before {
                    progress("write", now as u32);
                }
                Ok(())
            })?;
        }
    }
    tx.commit().context("failed to commit the restore")?;
    Ok(report)
}

/// Adds a row of `t` to the object's own rows (by key); a key new to them
/// goes to the frontier. False if the row was there already.
fn add(
    g: &mut Gathered,
    t: &TableEntry,
    row: &[Cell],
    frontier: &mut BTreeMap<String, BTreeSet<i64>>,
) -> Result<bool> {
    let Some(key) = key_column(t) else {
        return Ok(false);
    };
    let Some(k) = int(&row[column_at(t, key)?]) else {
        return Ok(false);
    };
    let new = g.insert(Part::Own, &t.name, k, row)?;
    if new {
        frontier.entry(t.name.clone()).or_default().insert(k);
    }
    Ok(new)
}

/// The tables in an order that puts every table after those it points at
/// (self-references aside).
fn parents_first<'a>(listing: &Listing, names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let wanted: BTreeSet<&String> = names.collect();
    let mut done: Vec<String> = Vec::new();
    let mut left: Vec<&TableEntry> = listing
        .tables
        .iter()
        .filter(|t| wanted.contains(&t.name))
        .collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|t| {
            let ready = t.foreign_keys.iter().all(|fk| {
                fk.ref_table == t.name
                    || !wanted.contains(&fk.ref_table)
                    || done.contains(&fk.ref_table)
            });
            if ready {
                done.push(t.name.clone());
            }
            !ready
        });
        if left.len() == before {
            // A cycle: the rest in the copy's order.
            done.extend(left.drain(..).map(|t| t.name.clone()));
        }
    }
    done
}
