//! Before the data: the shared snapshot the workers read in, and the plan
//! that cuts tables into units of work.

use std::time::Duration;

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use mysql::Conn;

use super::super::format::{Consistency, LogPosition};
use super::super::introspect::{self, Table};
use super::DumpOptions;
use crate::config::{DbSource, RowReader};
use crate::db::{self, quote_ident, wire};

/// One unit of work: a table, or a key range of one.
#[derive(Clone, Debug)]
pub(super) struct Unit {
    pub table: usize,
    pub index: usize,
    /// Key bounds, `[start, end)`; open where `None`.
    pub range: Option<(Option<i64>, Option<i64>)>,
    pub weight: u64,
}

/// The session of every dump connection: raw bytes out, UTC times, no
/// query time-out.
const SESSION: &str = "SET SESSION character_set_results = binary, time_zone = '+00:00',
     net_write_timeout = 3600, net_read_timeout = 3600, wait_timeout = 28800";

/// Opens a dump connection through the client library.
fn connect(source: &DbSource, timeout: Duration) -> Result<Conn> {
    db::bulk_conn(source, timeout, SESSION).context("failed to open a dump connection")
}

/// A worker's connection: the direct row reader ([`wire`]), or the client
/// library where that cannot connect (an authentication it does not
/// speak) or is turned off (`BackupReader client`).
pub(super) enum Reader {
    Wire(wire::Conn),
    Client(Conn),
}

impl Reader {
    pub fn query_drop(&mut self, sql: &str) -> Result<()> {
        match self {
            Reader::Wire(c) => c.query_drop(sql)?,
            Reader::Client(c) => c.query_drop(sql)?,
        }
        Ok(())
    }

    pub fn name(&self) -> &'static str {
        match self {
            Reader::Wire(_) => "direct",
            Reader::Client(_) => "client library",
        }
    }
}

/// Opens the workers' connections, each with the dump session: direct
/// readers when the first one connects, else the client library's.
struct Readers<'a> {
    source: &'a DbSource,
    timeout: Duration,
    /// `None` until the first connection decides.
    direct: Option<bool>,
}

impl Readers<'_> {
    fn open(&mut self) -> Result<Reader> {
        if self.direct != Some(false) {
            match self.open_direct() {
                Ok(c) => {
                    self.direct = Some(true);
                    return Ok(Reader::Wire(c));
                }
                Err(e) if self.direct.is_none() => {
                    log::warn!("the direct row reader cannot connect ({e:#}); reading through the client library");
                    self.direct = Some(false);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Reader::Client(connect(self.source, self.timeout)?))
    }

    fn open_direct(&self) -> Result<wire::Conn> {
        let opts = db::options(self.source, self.timeout)?;
        let mut c = wire::Conn::connect(&opts, self.timeout)
            .with_context(|| format!("cannot connect to the database {}", self.source))?;
        c.query_drop(SESSION)
            .context("failed to prepare a dump connection")?;
        Ok(c)
    }
}

/// The snapshot the workers read in.
pub(super) struct Snapshot {
    /// A connection outside the snapshot, for what the copy reads of the
    /// schema (the data dictionary is not versioned by a snapshot anyway).
    pub control: Conn,
    pub workers: Vec<Reader>,
    pub consistency: Consistency,
    /// Where the snapshot stands in the binary log, when it is known
    /// exactly.
    pub position: Option<LogPosition>,
}

/// Starts `threads` workers' snapshots while `control` holds `lock`, then
/// runs `unlock`.
fn shared(
    control: &mut Conn,
    readers: &mut Readers<'_>,
    threads: usize,
    gap: Option<Duration>,
    unlock: &str,
    log_on: bool,
) -> Result<(Vec<Reader>, Option<LogPosition>)> {
    let workers: Result<Vec<Reader>> = (0..threads)
        .map(|i| {
            if let Some(gap) = gap.filter(|_| i > 0) {
                std::thread::sleep(gap);
            }
            let mut c = readers.open()?;
            begin(&mut c)?;
            Ok(c)
        })
        .collect();
    // While the lock holds, no transaction on these tables commits: the
    // log's position now is the snapshots' own.
    let mut workers = workers;
    let position = match (&mut workers, log_on) {
        (Ok(w), true) => position(control, &mut w[0], true),
        _ => None,
    };
    let unlocked = control.query_drop(unlock);
    let workers = workers?;
    unlocked.context("failed to release the snapshot lock")?;
    Ok((workers, position))
}

/// MariaDB's own record of where a transaction's snapshot stands in the
/// log (`binlog_snapshot_file`, `binlog_snapshot_position`): exact
/// without a lock. `None` on MySQL.
fn snapshot_status(worker: &mut Reader) -> Option<(String, u64)> {
    let sql = "SHOW STATUS LIKE 'binlog\\_snapshot\\_%'";
    let rows: Vec<(String, String)> = match worker {
        Reader::Client(c) => c.query(sql).ok()?,
        Reader::Wire(c) => {
            let mut rows = c.query(sql).ok()?;
            let mut found = Vec::new();
            while let Ok(Some(r)) = rows.next() {
                let text = |i| String::from_utf8_lossy(r.get(i).unwrap_or_default()).into_owned();
                found.push((text(0), text(1)));
            }
            found
        }
    };
    let get = |name: &str| {
        rows.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let file = get("binlog_snapshot_file")?;
    let pos = get("binlog_snapshot_position")?.parse().ok()?;
    (!file.is_empty()).then_some((file, pos))
}

/// Where the workers' snapshot stands in the binary log: MariaDB's own
/// record of it, or (`locked`: no transaction on the copied tables can
/// commit meanwhile) the log's position now. `None`, said in the log,
/// where neither is exact.
fn position(control: &mut Conn, worker: &mut Reader, locked: bool) -> Option<LogPosition> {
    let server = introspect::server_identity(control).ok()?;
    let ((file, pos), exact_gtid) = match snapshot_status(worker) {
        Some(p) => (p, locked),
        None if locked => match introspect::current_position(control) {
            Ok(Some(p)) => (p, true),
            Ok(None) => return None,
            Err(e) => {
                log::warn!("the copy will not know its place in the binary log: {e:#}");
                return None;
            }
        },
        None => {
            log::warn!("one connection without a lock on MySQL: the copy's place in the binary log is not exact, so it is not recorded");
            return None;
        }
    };
    let gtid = if exact_gtid {
        [
            "SELECT @@GLOBAL.gtid_executed",
            "SELECT @@GLOBAL.gtid_binlog_pos",
        ]
        .iter()
        .find_map(|q| control.query_first::<String, _>(*q).ok().flatten())
        .unwrap_or_default()
    } else {
        String::new()
    };
    Some(LogPosition {
        server,
        file,
        pos,
        gtid,
    })
}

fn begin(c: &mut Reader) -> Result<()> {
    c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")?;
    c.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")?;
    Ok(())
}

/// `LOCK TABLES` of every base table of the database but the plugin's own,
/// each `READ`: it waits for transactions that wrote to them to end, and
/// holds back new writes until `UNLOCK TABLES`, so snapshots started
/// meanwhile see one state of the database. `None` for a database with
/// no table.
fn lock_tables_statement(control: &mut Conn) -> Result<Option<String>> {
    let tables: Vec<String> = control
        .query(format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'
               AND TABLE_NAME NOT LIKE '{}%'",
            db::TABLE_PREFIX.replace('_', "\\_")
        ))
        .context("failed to list the tables to lock")?;
    if tables.is_empty() {
        return Ok(None);
    }
    let list: Vec<String> = tables
        .iter()
        .map(|t| format!("{} READ", quote_ident(t)))
        .collect();
    Ok(Some(format!("LOCK TABLES {}", list.join(", "))))
}

/// Starts the workers' snapshot: shared under a brief global read lock
/// when the account may take one (RELOAD), else under read locks of the
/// database's tables, else one worker alone.
pub(super) fn snapshot(
    source: &DbSource,
    timeout: Duration,
    opts: &DumpOptions,
) -> Result<Snapshot> {
    let mut readers = Readers {
        source,
        timeout,
        direct: (opts.reader == RowReader::Client).then_some(false),
    };
    let (threads, lock_timeout) = (opts.threads.max(1), opts.lock_timeout);
    let mut control = connect(source, timeout)?;
    let log_on = introspect::log_bin(&mut control).unwrap_or(false);
    let mariadb = control
        .query_first::<String, _>("SELECT VERSION()")?
        .is_some_and(|v| v.contains("MariaDB"));
    // On MySQL a snapshot's place in the log is exact only under a lock.
    if threads > 1 || (log_on && !mariadb) {
        control.query_drop(format!(
            "SET SESSION lock_wait_timeout = {}",
            lock_timeout.max(1)
        ))?;
        // MariaDB's BACKUP STAGE BLOCK_COMMIT holds back only commits, so it
        // neither waits for open transactions nor stalls their statements;
        // FLUSH TABLES WITH READ LOCK (MySQL) can deadlock against a
        // transaction in progress until lock_wait_timeout ends it.
        let (lock, unlock) = match control.query_drop("BACKUP STAGE START") {
            Ok(()) => ("BACKUP STAGE BLOCK_COMMIT", "BACKUP STAGE END"),
            Err(e) => {
                log::info!("no BACKUP STAGE ({e}); using FLUSH TABLES WITH READ LOCK");
                ("FLUSH TABLES WITH READ LOCK", "UNLOCK TABLES")
            }
        };
        match control.query_drop(lock) {
            Ok(()) => {
                let how = Consistency::SharedSnapshot;
                return under_lock(control, &mut readers, threads, opts, unlock, how, log_on);
            }
            Err(e) => {
                let _ = control.query_drop(unlock);
                log::info!("no global lock ({lock}: {e}); locking the database's tables instead");
            }
        }
        // The panel's own account has no RELOAD: the database's tables
        // read-locked for the moment the workers' snapshots start.
        match lock_tables_statement(&mut control)? {
            Some(lock_tables) => match control.query_drop(&lock_tables) {
                Ok(()) => {
                    let how = Consistency::TableLocks;
                    let unlock = "UNLOCK TABLES";
                    return under_lock(control, &mut readers, threads, opts, unlock, how, log_on);
                }
                Err(e) => {
                    let _ = control.query_drop("UNLOCK TABLES");
                    log::warn!("no shared snapshot (LOCK TABLES: {e}); dumping with one connection in its own snapshot");
                }
            },
            None => log::info!("no table to lock; dumping with one connection"),
        }
    }
    let mut c = readers.open()?;
    begin(&mut c)?;
    let position = if log_on {
        position(&mut control, &mut c, false)
    } else {
        None
    };
    Ok(Snapshot {
        control,
        workers: vec![c],
        consistency: Consistency::SingleConnection,
        position,
    })
}

/// The workers' shared snapshot, started while `control` holds a lock
/// that `unlock` releases (`consistency` says which).
fn under_lock(
    mut control: Conn,
    readers: &mut Readers<'_>,
    threads: usize,
    opts: &DumpOptions,
    unlock: &str,
    consistency: Consistency,
    log_on: bool,
) -> Result<Snapshot> {
    let gap = opts.snapshot_gap;
    let (workers, position) = shared(&mut control, readers, threads, gap, unlock, log_on)?;
    Ok(Snapshot {
        control,
        workers,
        consistency,
        position,
    })
}

/// Splits tables into units, largest first. Ranges of one table cover
/// every key: the first is open below, the last open above.
/// The largest share of a table's bytes one unit should hold: a table of
/// few wide rows (attachments, logs with blobs) is split by its size, not
/// only by its row count, so that it does not fall to one worker.
const BYTES_PER_RANGE: u64 = 64 << 20;

/// How many key ranges a table is cut into: by rows or by bytes,
/// whichever asks for more.
fn range_count(table: &Table, rows_per_range: u64) -> u64 {
    let by_rows = table.estimated_rows.div_ceil(rows_per_range.max(1));
    let by_bytes = table.data_length.div_ceil(BYTES_PER_RANGE);
    by_rows.max(by_bytes).min(table.estimated_rows.max(1))
}

pub(super) fn plan(conn: &mut Conn, tables: &[Table], rows_per_range: u64) -> Result<Vec<Unit>> {
    let mut units = Vec::new();
    for (t, table) in tables.iter().enumerate() {
        let weight = table.data_length.max(1);
        let ranges = range_count(table, rows_per_range);
        if table.integer_key && ranges >= 2 {
            let key = quote_ident(&table.primary_key[0]);
            let bounds: Option<(Option<i64>, Option<i64>)> = conn
                .query_first(format!(
                    "SELECT MIN({key}), MAX({key}) FROM {}",
                    quote_ident(&table.name)
                ))
                .with_context(|| format!("failed to read the key range of `{}`", table.name))?;
            if let Some((Some(lo), Some(hi))) = bounds {
                let span = i128::from(hi) - i128::from(lo) + 1;
                let width = (span / i128::from(ranges)).max(1);
                let cuts: Vec<i64> = (1..ranges)
                    .map(|i| i128::from(lo) + width * i128::from(i))
                    .take_while(|&c| c <= i128::from(hi))
                    .map(|c| c as i64)
                    .collect();
                for index in 0..=cuts.len() {
                    let start = index.checked_sub(1).map(|i| cuts[i]);
                    let end = cuts.get(index).copied();
                    let weight = weight / (cuts.len() as u64 + 1);
                    units.push(Unit {
                        table: t,
                        index,
                        range: Some((start, end)),
                        weight,
                    });
                }
                continue;
            }
        }
        units.push(Unit {
            table: t,
            index: 0,
            range: None,
            weight,
        });
    }
    units.sort_by_key(|u| std::cmp::Reverse(u.weight));
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: u64, bytes: u64) -> Table {
        Table {
            estimated_rows: rows,
            data_length: bytes,
            ..Table::default()
        }
    }

    #[test]
    fn wide_tables_are_cut_by_bytes_and_long_ones_by_rows() {
        // 2,500 rows of 80 KB: one unit by rows, four by bytes.
        assert_eq!(range_count(&table(2_500, 200 << 20), 250_000), 4);
        // 1 M narrow rows: by rows.
        assert_eq!(range_count(&table(1_000_000, 60 << 20), 250_000), 4);
        // Small tables stay whole; never more ranges than rows.
        assert_eq!(range_count(&table(10, 1 << 10), 250_000), 1);
        assert_eq!(range_count(&table(3, 900 << 20), 250_000), 3);
        assert_eq!(range_count(&table(0, 0), 250_000), 0);
    }
}
