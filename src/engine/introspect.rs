//! What a database holds, read from the server's catalog: base tables
//! with their columns, keys and foreign keys (inside the dump's snapshot),
//! and the views, triggers, routines and events with their definitions
//! (for the dump, a restore's swap and undo, and an upload's check).

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use super::format;
use super::format::DefinitionKind;
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
    pub foreign_keys: Vec<format::ForeignKey>,
}

/// A view, trigger, routine or event.
#[derive(Clone, Debug, Default)]
pub struct Object {
    pub kind: DefinitionKind,
    pub name: String,
    /// The table of a trigger; empty otherwise.
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

/// `SHOW CREATE <kind> database.name`: (sql_mode, statement), or `None`
/// when the object vanished meanwhile.
fn show_create(
    conn: &mut Conn,
    database: &str,
    kind: DefinitionKind,
    name: &str,
) -> Result<Option<(String, String)>> {
    let row: Option<mysql::Row> = conn
        .query_first(format!(
            "SHOW CREATE {} {}.{}",
            kind.keyword(),
            quote_ident(database),
            quote_ident(name)
        ))
        .with_context(|| format!("failed to read {} `{name}`", kind.as_str()))?;
    // View: name, statement, ...; procedure, function, trigger: name,
    // sql_mode, statement, ...; event: name, sql_mode, time_zone, statement.
    Ok(row.map(|r| match kind {
        DefinitionKind::View => (String::new(), text(r.get(1))),
        DefinitionKind::Event => (text(r.get(1)), text(r.get(3))),
        _ => (text(r.get(1)), text(r.get(2))),
    }))
}
/// The base tables of `database`, except the plugin's own and `exclude`.
pub fn tables(conn: &mut Conn, database: &str, exclude: &[String]) -> Result<Vec<Table>> {
    crate::db::fresh_statistics(conn)?;
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
        let mut foreign_keys: Vec<(String, format::ForeignKey)> = Vec::new();
        for (constraint, column, ref_table, ref_column) in fk_rows {
            match foreign_keys.iter_mut().find(|(c, _)| *c == constraint) {
                Some((_, fk)) => {
                    fk.columns.push(column);
                    fk.ref_columns.push(ref_column);
                }
                None => foreign_keys.push((
                    constraint,
                    format::ForeignKey {
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
            .partition(|(_, extra, _)| is_generated(extra));
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

/// Is a column with this `information_schema.COLUMNS.EXTRA` computed by
/// the server (`VIRTUAL GENERATED`, `STORED GENERATED`; MariaDB also
/// `PERSISTENT GENERATED`)? Its values are then never saved. A column with
/// an expression default is not: MySQL 8.0.13 and later say
/// `DEFAULT_GENERATED` for `DEFAULT CURRENT_TIMESTAMP` (and
/// `DEFAULT_GENERATED on update CURRENT_TIMESTAMP`), and its values are
/// data like any other.
pub(crate) fn is_generated(extra: &str) -> bool {
    extra
        .split_ascii_whitespace()
        .any(|word| word.eq_ignore_ascii_case("GENERATED"))
}

/// Views, triggers, routines and events, in an order that creates them.
pub fn objects(conn: &mut Conn, database: &str) -> Result<Vec<Object>> {
    let mut names: Vec<(DefinitionKind, String, String)> = Vec::new();
    let views: Vec<String> = conn
        .exec(
            "SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            (database,),
        )
        .context("failed to list views")?;
    names.extend(
        views
            .into_iter()
            .map(|v| (DefinitionKind::View, v, String::new())),
    );
    let routines: Vec<(String, String)> = conn
        .exec(
            "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES
             WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_TYPE, ROUTINE_NAME",
            (database,),
        )
        .context("failed to list routines")?;
    names.extend(routines.into_iter().map(|(kind, name)| {
        let kind = if kind == "FUNCTION" {
            DefinitionKind::Function
        } else {
            DefinitionKind::Procedure
        };
        (kind, name, String::new())
    }));
    names.extend(trigger_names(conn, database)?);
    let events: Vec<String> = conn
        .exec(
            "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME",
            (database,),
        )
        .context("failed to list events")?;
    names.extend(
        events
            .into_iter()
            .map(|e| (DefinitionKind::Event, e, String::new())),
    );
    read(conn, database, names)
}

/// The triggers of `database` on `tables` (all but the plugin's when
/// `None`), in creation order.
pub fn triggers(
    conn: &mut Conn,
    database: &str,
    tables: Option<&std::collections::HashSet<String>>,
) -> Result<Vec<Object>> {
    let names = trigger_names(conn, database)?
        .into_iter()
        .filter(|(_, _, table)| tables.is_none_or(|t| t.contains(table)))
        .collect();
    read(conn, database, names)
}

fn trigger_names(conn: &mut Conn, database: &str) -> Result<Vec<(DefinitionKind, String, String)>> {
    let triggers: Vec<(String, String)> = conn
        .exec(
            "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS
             WHERE TRIGGER_SCHEMA = ? ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
            (database,),
        )
        .context("failed to list triggers")?;
    Ok(triggers
        .into_iter()
        .filter(|(_, table)| !table.starts_with(TABLE_PREFIX))
        .map(|(name, table)| (DefinitionKind::Trigger, name, table))
        .collect())
}

/// A routine whose body the server hides from this account: it is not the
/// routine's definer and may not read others' routines. A copy without it
/// would restore without it, so the copy is refused instead.
#[derive(Debug, thiserror::Error)]
#[error(
    "the body of {kind} `{name}` is hidden from this database account (it is not the \
     routine's definer): grant the account SHOW CREATE ROUTINE on the database (MariaDB \
     11.3 and later), SELECT on mysql.proc (earlier MariaDB) or SHOW_ROUTINE (MySQL), \
     or create the routine again as this account"
)]
pub struct HiddenRoutine {
    pub kind: &'static str,
    pub name: String,
}

/// Reads the definitions of `names` (kind, name, table); one that vanished
/// meanwhile is left out.
fn read(
    conn: &mut Conn,
    database: &str,
    names: Vec<(DefinitionKind, String, String)>,
) -> Result<Vec<Object>> {
    let mut out = Vec::with_capacity(names.len());
    for (kind, name, table) in names {
        if let Some((sql_mode, create)) = show_create(conn, database, kind, &name)? {
            // The server answers NULL for the statement of a routine the
            // account may not read.
            let routine = matches!(kind, DefinitionKind::Function | DefinitionKind::Procedure);
            if routine && create.is_empty() {
                return Err(HiddenRoutine {
                    kind: kind.as_str(),
                    name,
                }
                .into());
            }
            out.push(Object {
                kind,
                name,
                table,
                create,
                sql_mode,
            });
        }
    }
    Ok(out)
}

/// The server's identity: `@@server_uuid` (MySQL), else MariaDB's server
/// id with its host name.
pub fn server_identity(conn: &mut Conn) -> Result<String> {
    if let Ok(Some(uuid)) = conn.query_first::<String, _>("SELECT @@server_uuid") {
        return Ok(uuid);
    }
    let (id, host): (u64, String) = conn
        .query_first("SELECT @@server_id, @@hostname")?
        .context("no server id")?;
    Ok(format!("mariadb-{id}-{host}"))
}

/// Whether the server writes a binary log.
pub fn log_bin(conn: &mut Conn) -> Result<bool> {
    Ok(conn.query_first::<i64, _>("SELECT @@log_bin")?.unwrap_or(0) == 1)
}

/// Where the server is writing its binary log now (`SHOW BINARY LOG
/// STATUS`, `SHOW MASTER STATUS` before MySQL 8.2 and on MariaDB): file
/// and position. `None` when the log is off.
pub fn current_position(conn: &mut Conn) -> Result<Option<(String, u64)>> {
    let row: Option<mysql::Row> = match conn.query_first("SHOW BINARY LOG STATUS") {
        Ok(row) => row,
        Err(_) => conn.query_first("SHOW MASTER STATUS").context(
            "cannot read the binary log's position (SHOW MASTER STATUS needs REPLICATION CLIENT, or BINLOG MONITOR on MariaDB)",
        )?,
    };
    Ok(row.map(|mut r| {
        let file = crate::db::cell_take(&mut r, 0);
        let pos = crate::db::cell_take(&mut r, 1).parse().unwrap_or(4);
        (file, pos)
    }))
}

/// The server's binary logs, oldest first.
pub fn binary_logs(conn: &mut Conn) -> Result<Vec<String>> {
    let rows: Vec<mysql::Row> = conn.query("SHOW BINARY LOGS")?;
    Ok(rows
        .into_iter()
        .map(|mut r| crate::db::cell_take(&mut r, 0))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::is_generated;

    #[test]
    fn only_computed_columns_are_generated_not_expression_defaults() {
        // As MariaDB 10.3-11 and MySQL 8.0-9.x write EXTRA.
        for extra in [
            "VIRTUAL GENERATED",
            "STORED GENERATED",
            "PERSISTENT GENERATED",
            "virtual generated",
            "VIRTUAL GENERATED INVISIBLE",
        ] {
            assert!(is_generated(extra), "{extra}");
        }
        for extra in [
            "",
            "auto_increment",
            "DEFAULT_GENERATED",
            "DEFAULT_GENERATED on update CURRENT_TIMESTAMP",
            "on update current_timestamp()",
            "INVISIBLE",
            "DEFAULT_GENERATED INVISIBLE",
        ] {
            assert!(!is_generated(extra), "{extra}");
        }
    }
}
