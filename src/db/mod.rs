//! The billing database: connecting with timeouts, the plugin's own tables
//! and the queries, grouped by the BILLmanager table family they serve.
//!
//! The plugin reads BILLmanager's tables (etc/sql/billmgr.sql describes the
//! ones it touches) and keeps its own state in tables prefixed
//! [`TABLE_PREFIX`], created and upgraded by [`migrate`]. Plugin tables carry
//! no foreign keys to BILLmanager's tables, so a restore that swaps
//! BILLmanager's tables never drags the plugin's state along.

pub mod account;
pub mod backupconf;
pub mod backups;
pub mod drills;
pub mod filter;
pub mod health;
pub mod lock;
pub mod migrate;
pub mod objects;
pub mod operations;
pub mod reports;
pub mod runstate;
pub mod wire;

use std::time::Duration;

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::{Conn, Opts, OptsBuilder};

use crate::config::DbSource;

/// The billing database cannot be reached (no address, a refused or
/// silent server). Callers branch on it: the panel shows "database
/// unavailable" while the log gets the cause.
#[derive(Debug, thiserror::Error)]
#[error("the billing database is unavailable")]
pub struct Unavailable;

/// Every table the plugin owns starts with this.
pub const TABLE_PREFIX: &str = "billmgrops_";

/// An open connection to the billing database.
pub struct Db {
    conn: Conn,
    name: Option<String>,
}

impl Db {
    /// Connects, failing within `timeout` when the server does not answer.
    ///
    /// # Errors
    /// The error chain holds [`Unavailable`].
    pub fn connect(source: &DbSource, timeout: Duration) -> Result<Db> {
        let opts = options(source, timeout)
            .with_context(|| format!("bad database address `{source}`"))
            .context(Unavailable)?;
        let conn = connect_within(opts, timeout)
            .with_context(|| format!("cannot connect to the database {source}"))
            .context(Unavailable)?;
        let mut db = Db { conn, name: None };
        db.conn
            .query_drop("SET NAMES utf8mb4")
            .context("failed to set the connection character set")?;
        Ok(db)
    }

    /// Connects and brings the plugin's tables up to date.
    pub fn open(source: &DbSource, timeout: Duration) -> Result<Db> {
        let mut db = Db::connect(source, timeout)?;
        migrate::migrate(&mut db)?;
        Ok(db)
    }

    pub fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// The name of the connected database.
    pub fn name(&mut self) -> Result<String> {
        if self.name.is_none() {
            let name: Option<Option<String>> = self
                .conn
                .query_first("SELECT DATABASE()")
                .context("failed to read the database name")?;
            self.name = Some(name.flatten().unwrap_or_default());
        }
        Ok(self.name.clone().unwrap_or_default())
    }
}

/// Connection options from a source; no connection is made.
pub fn options(source: &DbSource, timeout: Duration) -> Result<Opts> {
    let base = match source {
        DbSource::Url(url) => OptsBuilder::from_opts(Opts::from_url(url)?),
        DbSource::Parts {
            host,
            user,
            password,
            name,
            socket,
            port,
        } => OptsBuilder::new()
            .ip_or_hostname(Some(host.as_str()))
            .tcp_port(port.unwrap_or(3306))
            .user(Some(user.as_str()))
            .pass(Some(password.as_str()))
            .db_name(Some(name.as_str()))
            .socket(socket.as_deref()),
        DbSource::Sibling { base, database } => {
            OptsBuilder::from_opts(options(base, timeout)?).db_name(Some(database.as_str()))
        }
    };
    Ok(base
        .tcp_connect_timeout(Some(timeout))
        // No panel call or CLI query waits this long for a reply; a server
        // that stops answering mid-call becomes an error, not a hang.
        .read_timeout(Some(QUERY_TIMEOUT))
        .write_timeout(Some(QUERY_TIMEOUT))
        // Do not silently hop from TCP to a local socket: connect exactly
        // where the configuration says.
        .prefer_socket(false)
        .into())
}

/// How long one query may wait for the server.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(600);

/// Connects, giving up after `timeout` plus a grace second.
///
/// The client library's connect timeout covers only the TCP connect, so a
/// server that accepts and then says nothing (overloaded, or not a MySQL
/// server at all) would hang the handshake until the read timeout. The
/// handshake runs on a helper thread instead; on time-out the thread is left
/// to finish on its own (its socket has a read timeout, so it does).
fn connect_within(opts: Opts, timeout: Duration) -> Result<Conn> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("db-connect".into())
        .spawn(move || {
            let _ = tx.send(Conn::new(opts));
        })
        .context("failed to start the connection thread")?;
    match rx.recv_timeout(timeout + Duration::from_secs(1)) {
        Ok(result) => Ok(result?),
        Err(_) => anyhow::bail!(
            "the server did not complete the handshake within {}s",
            timeout.as_secs()
        ),
    }
}

/// A connection for bulk work (dump, restore): the query time-out of
/// [`options`] lifted, `session` applied (`SET SESSION ...`).
pub fn bulk_conn(source: &DbSource, timeout: Duration, session: &str) -> Result<Conn> {
    let opts = OptsBuilder::from_opts(options(source, timeout)?)
        .read_timeout(None)
        .write_timeout(None);
    let mut conn = connect_within(opts.into(), timeout)
        .with_context(|| format!("cannot connect to the database {source}"))?;
    conn.query_drop(session)
        .context("failed to prepare a bulk connection")?;
    Ok(conn)
}

/// Makes `information_schema.TABLES` answer with the tables' current
/// statistics on this connection. MySQL 8.0 and later cache them for a day
/// (`information_schema_stats_expiry`): a table loaded after the cache was
/// filled reads `TABLE_ROWS` 0, and the copy's split of work and the space
/// check trust these figures. MariaDB has no such cache (nor the variable).
pub fn fresh_statistics(conn: &mut Conn) -> Result<()> {
    const UNKNOWN_SYSTEM_VARIABLE: u16 = 1193;
    match conn.query_drop("SET SESSION information_schema_stats_expiry = 0") {
        Err(mysql::Error::MySqlError(e)) if e.code == UNKNOWN_SYSTEM_VARIABLE => Ok(()),
        other => other.context("failed to ask for current table statistics"),
    }
}

/// The database a connection is in; an error when it is in none.
pub fn current_database(conn: &mut Conn) -> Result<String> {
    conn.query_first::<Option<String>, _>("SELECT DATABASE()")?
        .flatten()
        .context("the database address names no database")
}

/// A database the plugin keeps beside the live one, named `<live><suffix>`.
/// `uninstall --purge` drops [`SideDb::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SideDb {
    /// A restore's staging database, dropped when the restore ends.
    Stage,
    /// The tables the last `edit` restore replaced, for `undo`.
    Undo,
    /// Where a swap puts the replaced tables until it has succeeded.
    UndoNext,
    /// An undo's scratch for three-way renames.
    Swap,
    /// Where an uploaded SQL dump is loaded and checked.
    Import,
}

impl SideDb {
    pub const ALL: [SideDb; 5] = [
        SideDb::Stage,
        SideDb::Undo,
        SideDb::UndoNext,
        SideDb::Swap,
        SideDb::Import,
    ];

    pub fn suffix(self) -> &'static str {
        match self {
            SideDb::Stage => "_bmo_stage",
            SideDb::Undo => "_bmo_undo",
            SideDb::UndoNext => "_bmo_undo_next",
            SideDb::Swap => "_bmo_swap",
            SideDb::Import => "_bmo_import",
        }
    }

    /// This side database of `live`.
    pub fn of(self, live: &str) -> String {
        format!("{live}{}", self.suffix())
    }
}

/// Drops a side database if it exists: an account with privileges on the
/// billing database alone may not even name another one in `DROP DATABASE
/// IF EXISTS`.
pub fn drop_side_database(conn: &mut Conn, database: &str) -> Result<()> {
    let exists: Option<u8> = conn.exec_first(
        "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        (database,),
    )?;
    if exists.is_some() {
        conn.query_drop(format!("DROP DATABASE IF EXISTS {}", quote_ident(database)))?;
    }
    Ok(())
}

/// Quotes an identifier for SQL. Identifiers in this crate come from fixed
/// tables or from the server's own catalog, never from a request.
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A page of a list query: the protocol's paging, mapped to SQL by the
/// query that owns the sort whitelist.
#[derive(Clone, Copy, Debug)]
pub struct Page<'a> {
    pub offset: u64,
    pub limit: u64,
    /// A key of the query's sort whitelist; `None` for its default order.
    pub sort: Option<&'a str>,
    pub descending: bool,
}

impl Page<'_> {
    /// `ORDER BY .. LIMIT .. OFFSET ..` for this page. `sorts` maps sort keys
    /// to SQL expressions; `tiebreak` keeps the order stable across pages.
    pub fn clause(&self, sorts: &[(&str, &str)], default: &str, tiebreak: &str) -> Result<String> {
        let dir = if self.descending { "DESC" } else { "ASC" };
        let expr = match self.sort {
            None => default,
            Some(key) => sorts
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, e)| *e)
                .with_context(|| format!("`{key}` is not a sort key of this list"))?,
        };
        let order = expr
            .split(',')
            .map(|e| format!("{} {dir}", e.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(format!(
            "ORDER BY {order}, {tiebreak} {dir} LIMIT {} OFFSET {}",
            self.limit, self.offset
        ))
    }
}

/// A result cell as display text: NULL is empty, bytes are read as UTF-8
/// (invalid sequences replaced), dates as `YYYY-MM-DD HH:MM:SS`.
pub fn cell_text(row: &mysql::Row, index: usize) -> String {
    row.as_ref(index).map(value_text).unwrap_or_default()
}

/// [`cell_text`], moving the value out of the row (text is not copied).
pub fn cell_take(row: &mut mysql::Row, index: usize) -> String {
    match row.take::<mysql::Value, _>(index) {
        Some(mysql::Value::Bytes(b)) => String::from_utf8(b)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        Some(v) => value_text(&v),
        None => String::new(),
    }
}

fn value_text(value: &mysql::Value) -> String {
    use mysql::Value;
    match value {
        Value::NULL => String::new(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Date(y, mo, d, h, mi, s, _) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
        }
        Value::Time(neg, days, h, mi, s, _) => {
            let sign = if *neg { "-" } else { "" };
            format!("{sign}{:02}:{mi:02}:{s:02}", u32::from(*h) + days * 24)
        }
    }
}
