//! What the database holds, read inside the dump's snapshot: base tables
//! with their columns, keys and foreign keys, and the views, triggers,
//! routines and events with their definitions.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use crate::db::{quote_ident, TABLE_PREFIX};

/// A base table as the dump needs it.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub name: String,
    pub create: String,
    pub columns: Vec<String>,
    pub generated: Vec<String>,
    pub primary_key: Vec<String>,
    /// The primary key is one integer column: chunks can be key ranges.
    pub integer_key: bool,
    /// The server's estimate, for planning only.
    pub estimated_rows: u64,
    pub data_length: u64,
    pub foreign_keys: Vec<crate::engine::archive::listing::ForeignKey>,
}

/// A view, trigger, routine or event.
#[derive(Clone, Debug, Default)]
pub struct Object {
    pub kind: &'static str,
    pub name: String,
    pub table: String,
    pub create: String,
    pub sql_mode: String,
}

fn text(v: Option<mysql::Value>) -> String {
    match v {
        Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(&b).into_owned(),
        Some(mysql::Value::NULL) | None => String::new(),
        Some(other) => other.as_sql(true).trim_matches('\'').to_string(),
    }
}

/// The base tables of `database`, except the plugin's own and `exclude`.
pub fn tables(conn: &mut Conn, database: &str, exclude: &[String]) -> Result<Vec<Table>> {
    let rows: Vec<(String, Option<u64>, Option<u64>)> = conn
        .exec(
            "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH FROM information_schema.TABLES
             WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
            (database,),
        )
        .context("failed to list tables")?;
    let mut out = Vec::new();
    for (name, rows, length) in rows {
        if name.starts_with(TABLE_PREFIX) || exclude.iter().any(|e| e == &name) {
            continue;
        }
        let create: Option<(String, String)> = conn
            .query_first(format!("SHOW CREATE TABLE {}", quote_ident(&name)))
            .with_context(|| format!("failed to read the definition of table `{name}`"))?;
        let columns: Vec<(String, String, String)> = conn
            .exec(
                "SELECT COLUMN_NAME, EXTRA, DATA_TYPE FROM information_schema.COLUMNS
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (database, &name),
            )
            .with_context(|| format!("failed to read the columns of `{name}`"))?;
        let key: Vec<String> = conn
            .exec(
                "SELECT COLUMN_NAME FROM information_schema.STATISTICS
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY'
                 ORDER BY SEQ_IN_INDEX",
                (database, &name),
            )
            .with_context(|| format!("failed to read the primary key of `{name}`"))?;
        let fk_rows: Vec<(String, String, String, String)> = conn
            .exec(
                "SELECT CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
                 FROM information_schema.KEY_COLUMN_USAGE
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND REFERENCED_TABLE_NAME IS NOT NULL
                 ORDER BY CONSTRAINT_NAME, ORDINAL_POSITION",
                (database, &name),
            )
            .with_context(|| format!("failed to read the foreign keys of `{name}`"))?;
        let mut foreign_keys: Vec<(String, crate::engine::archive::listing::ForeignKey)> =
            Vec::new();
        for (constraint, column, ref_table, ref_column) in fk_rows {
            match foreign_keys.iter_mut().find(|(c, _)| *c == constraint) {
                Some((_, fk)) => {
                    fk.columns.push(column);
                    fk.ref_columns.push(ref_column);
                }
                None => foreign_keys.push((
                    constraint,
                    crate::engine::archive::listing::ForeignKey {
                        columns: vec![column],
                        ref_table,
                        ref_columns: vec![ref_column],
                    },
                )),
            }
        }
        let integer_key = key.len() == 1
            && columns.iter().any(|(c, _, t)| {
                *c == key[0]
                    && matches!(
                        t.as_str(),
                        "tinyint" | "smallint" | "mediumint" | "int" | "bigint"
                    )
            });
        let (generated, plain): (Vec<_>, Vec<_>) = columns
            .into_iter()
            .partition(|(_, extra, _)| extra.to_ascii_uppercase().contains("GENERATED"));
        out.push(Table {
            create: create.map(|c| c.1).unwrap_or_default(),
            columns: plain.into_iter().map(|c| c.0).collect(),
            generated: generated.into_iter().map(|c| c.0).collect(),
            primary_key: key,
            integer_key,
            estimated_rows: rows.unwrap_or(0),
            data_length: length.unwrap_or(0),
            foreign_keys: foreign_keys.into_iter().map(|(_, fk)| fk).collect(),
            name,
        });
    }
    Ok(out)
}

/// Views, triggers, routines and events, in an order that creates them.
pub fn objects(conn: &mut Conn, database: &str) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    let views: Vec<String> = conn
        .exec(
            "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            (database,),
        )
        .context("failed to list views")?;
    for name in views {
        let row: Option<mysql::Row> = conn
            .query_first(format!("SHOW CREATE VIEW {}", quote_ident(&name)))
            .with_context(|| format!("failed to read view `{name}`"))?;
        let create = row.map(|r| text(r.get(1))).unwrap_or_default();
        out.push(Object {
            kind: "view",
            name,
            create,
            ..Object::default()
        });
    }
    let routines: Vec<(String, String)> = conn
        .exec(
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES
             WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
            (database,),
        )
        .context("failed to list routines")?;
    for (kind, name) in routines {
        let (kind, show) = if kind == "FUNCTION" {
            ("function", "FUNCTION")
        } else {
            ("procedure", "PROCEDURE")
        };
        let row: Option<mysql::Row> = conn
            .query_first(format!("SHOW CREATE {show} {}", quote_ident(&name)))
            .with_context(|| format!("failed to read {kind} `{name}`"))?;
        let (sql_mode, create) = row
            .map(|r| (text(r.get(1)), text(r.get(2))))
            .unwrap_or_default();
        out.push(Object {
            kind,
            name,
            create,
            sql_mode,
            ..Object::default()
        });
    }
    let triggers: Vec<(String, String)> = conn
        .exec(
            "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS
             WHERE TRIGGER_SCHEMA = ? ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
            (database,),
        )
        .context("failed to list triggers")?;
    for (name, table) in triggers {
        if table.starts_with(TABLE_PREFIX) {
            continue;
        }
        let row: Option<mysql::Row> = conn
            .query_first(format!("SHOW CREATE TRIGGER {}", quote_ident(&name)))
            .with_context(|| format!("failed to read trigger `{name}`"))?;
        let (sql_mode, create) = row
            .map(|r| (text(r.get(1)), text(r.get(2))))
            .unwrap_or_default();
        out.push(Object {
            kind: "trigger",
            name,
            table,
            create,
            sql_mode,
        });
    }
    let events: Vec<String> = conn
        .exec(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME",
            (database,),
        )
        .context("failed to list events")?;
    for name in events {
        let row: Option<mysql::Row> = conn
            .query_first(format!("SHOW CREATE EVENT {}", quote_ident(&name)))
            .with_context(|| format!("failed to read event `{name}`"))?;
        // Event, sql_mode, time_zone, Create Event, ...
        let (sql_mode, create) = row
            .map(|r| (text(r.get(1)), text(r.get(3))))
            .unwrap_or_default();
        out.push(Object {
            kind: "event",
            name,
            create,
            sql_mode,
            ..Object::default()
        });
    }
    Ok(out)
}
