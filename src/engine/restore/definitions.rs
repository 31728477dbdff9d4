//! A restore's statements: every `CREATE` of a copy checked and rebuilt
//! by [`ddl`] before anything runs, then run one by one as prepared
//! statements under the sql_mode it was defined with; and the live
//! definitions an `edit` restore replaces, kept for `undo`.

use anyhow::{anyhow, Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

pub(super) use super::super::ddl::run_checked;
use super::super::ddl::{self, Scope};
use super::super::format::{DefinitionKind, Listing};
use super::super::introspect::Object;
use crate::db::quote_ident;

/// The sql_mode a restore's connections run under between statements.
pub(super) const LOAD_SQL_MODE: &str = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION";

/// A view's text is the server's own rendering (backquoted names), valid
/// under the default mode.
const VIEW_SQL_MODE: &str = "NO_ENGINE_SUBSTITUTION";

/// A copy's statements, checked and rebuilt ([`ddl`]): nothing else runs.
pub(super) struct Checked {
    /// (table, CREATE TABLE) in the listing's order.
    pub tables: Vec<(String, String)>,
    pub definitions: Vec<CheckedObject>,
}

/// A view, trigger, routine or event of a copy, checked.
pub(super) struct CheckedObject {
    pub kind: DefinitionKind,
    pub name: String,
    pub sql_mode: String,
    pub create: String,
}

impl Checked {
    pub fn of(scope: &Scope, listing: &Listing) -> Result<Checked> {
        let tables = listing
            .tables
            .iter()
            .map(|t| Ok((t.name.clone(), ddl::table(scope, &t.create, &t.name)?)))
            .collect::<Result<_, ddl::DdlError>>()?;
        let definitions = listing
            .definitions
            .iter()
            .map(|d| {
                let kind = d.kind;
                let sql_mode = if kind == DefinitionKind::View {
                    VIEW_SQL_MODE.to_string()
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

    pub fn create_of(&self, table: &str) -> Option<&str> {
        self.tables
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, c)| c.as_str())
    }

    /// Creates the copy's views, triggers, routines and events in
    /// `database`, dropping live ones of the same name first.
    pub fn create_definitions(&self, c: &mut Conn, database: &str) -> Result<()> {
        for d in &self.definitions {
            c.query_drop(d.kind.drop_sql(database, &d.name))?;
        }
        let all: Vec<&CheckedObject> = self.definitions.iter().collect();
        create_in_passes(&all, |d| {
            create_in(c, database, &d.sql_mode, &d.create)
                .with_context(|| format!("failed to create {} `{}`", d.kind.as_str(), d.name))
        })
    }
}

/// Runs a `CREATE` in `database` under the sql_mode it was defined with.
pub(super) fn create_in(c: &mut Conn, database: &str, sql_mode: &str, create: &str) -> Result<()> {
    c.query_drop(format!("USE {}", quote_ident(database)))?;
    c.exec_drop("SET SESSION sql_mode = ?", (sql_mode,))?;
    let result = run_checked(c, create);
    c.exec_drop("SET SESSION sql_mode = ?", (LOAD_SQL_MODE,))?;
    result
}

/// Creates `items` in passes until none is left, since views may depend
/// on each other; fails when a pass creates nothing.
pub(super) fn create_in_passes<T: Copy>(
    items: &[T],
    mut create: impl FnMut(T) -> Result<()>,
) -> Result<()> {
    let mut pending: Vec<T> = items.to_vec();
    while !pending.is_empty() {
        let mut failed = Vec::new();
        let mut last_error = None;
        for item in pending.iter().copied() {
            if let Err(e) = create(item) {
                last_error = Some(e);
                failed.push(item);
            }
        }
        if failed.len() == pending.len() {
            return Err(last_error.unwrap_or_else(|| anyhow!("objects could not be created")));
        }
        pending = failed;
    }
    Ok(())
}

/// The table in the undo database that keeps the replaced definitions.
pub(super) const DEFINITIONS_TABLE: &str = "_bmo_definitions";

/// Keeps `objects` (the live definitions a swap replaces) in `undo`.
pub(super) fn save(c: &mut Conn, undo: &str, objects: &[Object]) -> Result<()> {
    let table = format!("{}.{}", quote_ident(undo), quote_ident(DEFINITIONS_TABLE));
    c.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {table} (kind VARCHAR(16), name VARCHAR(64), tbl VARCHAR(64), sql_mode TEXT, create_stmt LONGTEXT) DEFAULT CHARSET=utf8mb4"
    ))?;
    c.query_drop(format!("DELETE FROM {table}"))?;
    for o in objects {
        c.exec_drop(
            format!("INSERT INTO {table} VALUES (?, ?, ?, ?, ?)"),
            (o.kind.as_str(), &o.name, &o.table, &o.sql_mode, &o.create),
        )?;
    }
    Ok(())
}

/// The definitions kept in `undo` by [`save`].
pub(super) fn saved(c: &mut Conn, undo: &str) -> Result<Vec<Object>> {
    let rows: Vec<(String, String, String, String, String)> = c.query(format!(
        "SELECT kind, name, tbl, sql_mode, create_stmt FROM {}.{}",
        quote_ident(undo),
        quote_ident(DEFINITIONS_TABLE)
    ))?;
    rows.into_iter()
        .map(|(kind, name, table, sql_mode, create)| {
            Ok(Object {
                kind: DefinitionKind::parse(&kind)
                    .with_context(|| format!("unknown kind `{kind}` in `{undo}`"))?,
                name,
                table,
                create,
                sql_mode,
            })
        })
        .collect()
}

/// Creates objects read from the server (the live definitions a swap
/// replaced) in `database`, in passes.
pub(super) fn recreate(c: &mut Conn, database: &str, objects: &[Object]) -> Result<()> {
    let all: Vec<&Object> = objects.iter().collect();
    create_in_passes(&all, |o| {
        create_in(c, database, &o.sql_mode, &o.create)
            .with_context(|| format!("failed to recreate {} `{}`", o.kind.as_str(), o.name))
    })
}
