//! Replay: the log's row changes to the billing database applied to the
//! staged tables of a restore, transaction by transaction, up to the
//! first transaction that began after the chosen second.
//!
//! Nothing read from the log runs as SQL: a row event becomes a prepared
//! `INSERT`, `UPDATE` or `DELETE` of the staged table that stands for the
//! logged one, its values bound as parameters ([`values`]); the table's
//! name picks a staged table only through the restore's own map. A schema
//! change of the billing database inside the window stops the replay
//! with [`ReplayError::SchemaChange`]: its statement would have to run as
//! written; the plugin's own (its staging, kept and catalog tables) are
//! passed over ([`mod@statement`]). Every row must change exactly one row of the staged table,
//! else the log does not fit the copy ([`ReplayError::Mismatch`]). Each
//! segment's size and SHA-256 are checked against its description when
//! its end is reached; the staged tables are dropped on any failure, so
//! a damaged segment changes nothing live.

mod statement;
mod values;

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};

use anyhow::{Context, Result};
use mysql::binlog::events::{EventData, RowsEventData};
use mysql::binlog::row::BinlogRow;
use mysql::binlog::BinlogVersion;
use mysql::prelude::Queryable;
use mysql::{Conn, Value};
use mysql_common::binlog::EventStreamReader;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::event::{kind, Events};
use super::segment::{Position, SegmentInfo};
use crate::db::{quote_ident, TABLE_PREFIX};
use values::Column;

/// Why a replay stopped short.
#[derive(Debug, Error)]
pub enum ReplayError {
    #[error("the log changes the schema of the billing database at {time} UTC (`{statement}`); a replay applies row changes only: restore to a second before it, or from a copy taken after it")]
    SchemaChange { time: String, statement: String },
    #[error("the binary log does not fit the copy: {0}")]
    Mismatch(String),
    #[error("the log holds events replay does not read ({0})")]
    Unsupported(String),
}

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    pub transactions: u64,
    pub rows: u64,
    /// The newest transaction applied (its first event's time).
    pub last_time: i64,
    /// Tables of the billing database the log changed that the copy does
    /// not hold (left out of it by its plan): their changes are not
    /// applied.
    pub skipped_tables: BTreeSet<String>,
}

/// The staged table for a live one, as replay applies it.
struct Staged {
    name: String,
    columns: Vec<Column>,
    /// Indexes of the key columns (the primary key, else every column).
    key: Vec<usize>,
}

/// A replay in progress.
pub struct Replay<'a> {
    conn: &'a mut Conn,
    /// The database the log names (the live one; the staged tables are
    /// in it too).
    database: String,
    staged_of: &'a dyn Fn(&str) -> Option<String>,
    until: i64,
    from: Position,
    tables: HashMap<String, Option<Staged>>,
    /// The format and the table maps, kept from one segment to the next:
    /// a segment may end inside a transaction.
    reader: EventStreamReader,
    in_transaction: bool,
    done: bool,
    report: Replayed,
}

impl<'a> Replay<'a> {
    /// A replay into the staged tables `staged_of` names, of the events
    /// after `from` that began at or before `until` (UTC seconds).
    pub fn new(
        conn: &'a mut Conn,
        database: &str,
        staged_of: &'a dyn Fn(&str) -> Option<String>,
        from: Position,
        until: i64,
    ) -> Result<Replay<'a>> {
        conn.query_drop(
            "SET SESSION foreign_key_checks = 0, unique_checks = 1, time_zone = '+00:00', \
             sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', \
             character_set_client = binary, character_set_connection = binary",
        )?;
        Ok(Replay {
            conn,
            database: database.to_string(),
            staged_of,
            until,
            from,
            tables: HashMap::new(),
            reader: EventStreamReader::new(BinlogVersion::Version4),
            in_transaction: false,
            done: false,
            report: Replayed::default(),
        })
    }

    /// Whether the chosen second has been passed (no later segment is
    /// needed).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Applies one segment's events (`input`, decrypted), then checks it
    /// against `info`.
    pub fn segment(&mut self, info: &SegmentInfo, input: impl Read) -> Result<()> {
        let mut hashed = Hashed {
            inner: input,
            hasher: Sha256::new(),
            read: 0,
        };
        {
            let mut events = Events::new(&mut hashed)?;
            let mut reader = std::mem::replace(
                &mut self.reader,
                EventStreamReader::new(BinlogVersion::Version4),
            );
            while let Some(raw) = events.next_event()? {
                if self.done {
                    continue;
                }
                let event = catch_unwind(AssertUnwindSafe(|| reader.read(&raw.bytes[..])))
                    .map_err(|_| ReplayError::Mismatch("an event the reader cannot parse".into()))?
                    .context("an event replay cannot parse")?
                    .context("an empty event")?;
                let h = raw.header;
                let before_copy = info.start.file == self.from.file
                    && h.log_pos != 0
                    && u64::from(h.log_pos) <= self.from.pos;
                if before_copy {
                    continue;
                }
                self.event(&reader, &event, h.kind, i64::from(h.timestamp))?;
            }
            self.reader = reader;
        }
        // Read to the end, so that the hash covers every byte.
        std::io::copy(&mut hashed, &mut std::io::sink())?;
        let sha = hex::encode(hashed.hasher.finalize());
        anyhow::ensure!(
            hashed.read == info.size && sha == info.sha256,
            "log segment {} is damaged ({} bytes, SHA-256 {sha}; its description says {} bytes, {})",
            info.name(),
            hashed.read,
            info.size,
            info.sha256
        );
        Ok(())
    }

    /// Ends the replay: a transaction the log holds no end of is undone.
    pub fn finish(self) -> Result<Replayed> {
        if self.in_transaction {
            self.conn.query_drop("ROLLBACK")?;
        }
        Ok(self.report)
    }

    fn begin(&mut self, time: i64) -> Result<bool> {
        if time > self.until {
            self.done = true;
            if self.in_transaction {
                self.conn.query_drop("ROLLBACK")?;
                self.in_transaction = false;
            }
            return Ok(false);
        }
        if !self.in_transaction {
            self.conn.query_drop("START TRANSACTION")?;
            self.in_transaction = true;
            self.report.last_time = self.report.last_time.max(time);
        }
        Ok(true)
    }

    fn commit(&mut self) -> Result<()> {
        if self.in_transaction {
            self.conn.query_drop("COMMIT")?;
            self.in_transaction = false;
            self.report.transactions += 1;
        }
        Ok(())
    }

    fn event(
        &mut self,
        reader: &EventStreamReader,
        event: &mysql::binlog::events::Event,
        kind: u8,
        time: i64,
    ) -> Result<()> {
        match kind {
            // A transaction (or a statement standing alone) begins here;
            // it is opened at its first change, or (after the second
            // asked for) ends the replay.
            kind::GTID | kind::ANONYMOUS_GTID | kind::MARIADB_GTID if time > self.until => {
                self.begin(time)?;
            }
            kind::XID => self.commit()?,
            kind::QUERY => {
                let Ok(Some(EventData::QueryEvent(q))) = event.read_data() else {
                    return Err(
                        ReplayError::Mismatch("a query event replay cannot read".into()).into(),
                    );
                };
                let text = String::from_utf8_lossy(q.query_raw()).trim().to_string();
                let upper = text.to_ascii_uppercase();
                match upper.as_str() {
                    "BEGIN" => {
                        self.begin(time)?;
                    }
                    "COMMIT" => self.commit()?,
                    "ROLLBACK" => {
                        if self.in_transaction {
                            self.conn.query_drop("ROLLBACK")?;
                            self.in_transaction = false;
                        }
                    }
                    _ if upper.starts_with("SAVEPOINT") || upper.starts_with("ROLLBACK TO") => {}
                    _ => {
                        let schema = String::from_utf8_lossy(q.schema_raw()).into_owned();
                        let ours = statement::only_plugin_tables(&text, &self.database);
                        if time <= self.until && !ours && self.names_database(&schema, &text) {
                            return Err(ReplayError::SchemaChange {
                                time: crate::clock::utc_datetime(time),
                                statement: text.chars().take(200).collect(),
                            }
                            .into());
                        }
                        if time > self.until {
                            self.done = true;
                        }
                    }
                }
            }
            kind::WRITE_ROWS
            | kind::UPDATE_ROWS
            | kind::DELETE_ROWS
            | kind::WRITE_ROWS_V1
            | kind::UPDATE_ROWS_V1
            | kind::DELETE_ROWS_V1 => self.rows(reader, event, time)?,
            kind::TRANSACTION_PAYLOAD => {
                return Err(ReplayError::Unsupported(
                    "compressed transactions: binlog_transaction_compression".into(),
                )
                .into())
            }
            165..=170 => {
                return Err(ReplayError::Unsupported(
                    "MariaDB's compressed events: log_bin_compress".into(),
                )
                .into())
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether a statement run with default database `schema` touches the
    /// billing database.
    fn names_database(&self, schema: &str, text: &str) -> bool {
        if schema.eq_ignore_ascii_case(&self.database) {
            return true;
        }
        let lower = text.to_ascii_lowercase();
        let db = self.database.to_ascii_lowercase();
        [format!("`{db}`."), format!("{db}.")].iter().any(|needle| {
            lower.match_indices(needle.as_str()).any(|(at, _)| {
                at == 0
                    || !lower.as_bytes()[at - 1].is_ascii_alphanumeric()
                        && lower.as_bytes()[at - 1] != b'_'
            })
        })
    }

    fn rows(
        &mut self,
        reader: &EventStreamReader,
        event: &mysql::binlog::events::Event,
        time: i64,
    ) -> Result<()> {
        let Ok(Some(EventData::RowsEvent(rows))) = event.read_data() else {
            return Err(ReplayError::Mismatch("a row event replay cannot read".into()).into());
        };
        let tme = reader
            .get_tme(rows.table_id())
            .ok_or_else(|| ReplayError::Mismatch("a row event without its table map".into()))?;
        if tme.database_name() != self.database.as_str() {
            return Ok(());
        }
        let table = tme.table_name().into_owned();
        if table.starts_with(TABLE_PREFIX) {
            return Ok(());
        }
        if !self.in_transaction && !self.begin(time)? {
            return Ok(());
        }
        if !self.tables.contains_key(&table) {
            let staged = self.staged(&table)?;
            self.tables.insert(table.clone(), staged);
        }
        let Some(staged) = self.tables.get(&table).and_then(Option::as_ref) else {
            self.report.skipped_tables.insert(table);
            return Ok(());
        };
        let decoded: Vec<(Option<BinlogRow>, Option<BinlogRow>)> =
            catch_unwind(AssertUnwindSafe(|| {
                rows.rows(tme).collect::<std::io::Result<Vec<_>>>()
            }))
            .map_err(|_| ReplayError::Mismatch(format!("rows of `{table}` replay cannot parse")))?
            .with_context(|| format!("rows of `{table}` replay cannot parse"))?;
        let sql = statement(&rows, staged);
        for (before, after) in decoded {
            let mut params = Vec::new();
            if let Some(after) = after {
                params.extend(values_of(after, staged, false, &table)?);
            }
            if let Some(before) = before {
                params.extend(values_of(before, staged, true, &table)?);
            }
            self.conn.exec_drop(&sql, params)?;
            let changed = self.conn.affected_rows();
            if changed != 1
                && !matches!(
                    rows,
                    RowsEventData::UpdateRowsEvent(_) | RowsEventData::UpdateRowsEventV1(_)
                )
            {
                return Err(ReplayError::Mismatch(format!(
                    "a logged change of `{table}` changed {changed} rows of the restored copy"
                ))
                .into());
            }
            self.report.rows += 1;
        }
        Ok(())
    }

    fn staged(&mut self, table: &str) -> Result<Option<Staged>> {
        let Some(name) = (self.staged_of)(table) else {
            return Ok(None);
        };
        let columns = values::columns(self.conn, &self.database, &name)?;
        let primary: Vec<String> = self.conn.exec(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            (&self.database, &name),
        )?;
        let key: Vec<usize> = if primary.is_empty() {
            (0..columns.len())
                .filter(|&i| !columns[i].generated)
                .collect()
        } else {
            primary
                .iter()
                .filter_map(|p| columns.iter().position(|c| &c.name == p))
                .collect()
        };
        Ok(Some(Staged { name, columns, key }))
    }
}

/// The statement for one row of `rows`: values of the after image first
/// (every stored column), then the before image's key.
fn statement(rows: &RowsEventData<'_>, t: &Staged) -> String {
    let stored: Vec<&Column> = t.columns.iter().filter(|c| !c.generated).collect();
    let table = quote_ident(&t.name);
    let key = t
        .key
        .iter()
        .map(|&i| {
            format!(
                "{} <=> {}",
                quote_ident(&t.columns[i].name),
                values::placeholder(&t.columns[i])
            )
        })
        .collect::<Vec<_>>()
        .join(" AND ");
    match rows {
        RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            stored
                .iter()
                .map(|c| quote_ident(&c.name))
                .collect::<Vec<_>>()
                .join(", "),
            stored
                .iter()
                .map(|c| values::placeholder(c))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => {
            format!("DELETE FROM {table} WHERE {key} LIMIT 1")
        }
        _ => format!(
            "UPDATE {table} SET {} WHERE {key} LIMIT 1",
            stored
                .iter()
                .map(|c| format!("{} = {}", quote_ident(&c.name), values::placeholder(c)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A row image's values as parameters: every stored column (`key_only`:
/// the key columns).
fn values_of(mut row: BinlogRow, t: &Staged, key_only: bool, table: &str) -> Result<Vec<Value>> {
    if row.len() != t.columns.len() {
        return Err(ReplayError::Mismatch(format!(
            "a row of `{table}` has {} columns in the log and {} in the copy (the log must be written with binlog_row_image=FULL)",
            row.len(),
            t.columns.len()
        ))
        .into());
    }
    let wanted: Vec<usize> = if key_only {
        t.key.clone()
    } else {
        (0..t.columns.len())
            .filter(|&i| !t.columns[i].generated)
            .collect()
    };
    wanted
        .into_iter()
        .map(|i| {
            let v = row.take(i).ok_or_else(|| {
                ReplayError::Mismatch(format!("a row of `{table}` lacks column {i}"))
            })?;
            values::param(v, &t.columns[i])
        })
        .collect()
}

/// Hashes and counts what is read through it.
struct Hashed<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}
