//! The follower: a replica's connection to the server (the `mysql`
//! crate's binlog stream), whose events go to the spool exactly as the
//! server wrote them, made durable at least every [`FollowOptions::sync`]
//! and at every idle moment (the server's heartbeat), and cut into
//! segments by time, size and the server's own file rotation.
//!
//! A lost connection or a restarted server is met by asking again from
//! the last durable position. A position the server no longer has (its
//! logs purged before they were read) or another server is a gap: it is
//! recorded in the spool's state, and the follower goes on from the
//! oldest log the server still has (or its current position).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mysql::binlog::events::{Event, EventData};
use mysql::prelude::Queryable;
use mysql::{BinlogRequest, Conn, OptsBuilder};

use super::super::introspect::{binary_logs, current_position, server_identity};
use super::event::kind;
use super::segment::Position;
use super::spool::{Gap, Spool};
use crate::config::DbSource;
use crate::db;

/// How the follower cuts and keeps the log.
#[derive(Clone, Debug)]
pub struct FollowOptions {
    /// The replica's server id on the source (unique among its replicas).
    pub replica_id: u32,
    /// A segment is sealed once it is this old …
    pub segment_age: Duration,
    /// … or this large.
    pub segment_bytes: u64,
    /// Bytes the spool may hold before the follower stops reading until
    /// the storages take some.
    pub spool_limit: u64,
    /// Longest time an event stays in memory before it is synced.
    pub sync: Duration,
    pub connect_timeout: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            replica_id: 0x6f70_0001,
            segment_age: Duration::from_secs(60),
            segment_bytes: 64 << 20,
            spool_limit: 4 << 30,
            sync: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// What stopped one stream.
enum Ended {
    /// Asked to stop.
    Stopped,
    /// The spool is full: wait for the storages.
    SpoolFull,
}

/// Follows the log until `stop` says so, reconnecting after every
/// failure; `tick` runs between streams and at every sealed segment (it
/// hands segments to the storages; see [`super::spool`]).
pub fn follow(
    source: &DbSource,
    spool: &mut Spool,
    opts: &FollowOptions,
    stop: &dyn Fn() -> bool,
    tick: &mut dyn FnMut(&mut Spool) -> Result<()>,
) -> Result<()> {
    let mut backoff = Duration::from_millis(500);
    while !stop() {
        match stream(source, spool, opts, stop, tick) {
            Ok(Ended::Stopped) => break,
            Ok(Ended::SpoolFull) => {
                log::warn!(
                    "the log spool holds its limit ({} bytes): waiting for the storages",
                    opts.spool_limit
                );
                while !stop() && spool.waiting_bytes()? > opts.spool_limit / 2 {
                    tick(spool)?;
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            Err(e) => {
                log::warn!("the binary log stream ended: {e:#}; again in {backoff:?}");
                // What was made durable is kept, and sealed when due: the
                // next stream goes on from it.
                let kept = spool
                    .discard_unsynced()
                    .and_then(|()| spool.seal_if_due(opts.segment_age, opts.segment_bytes))
                    .and_then(|_| tick(spool));
                if let Err(e) = kept {
                    log::error!("the log spool: {e:#}");
                }
                let until = Instant::now() + backoff;
                while Instant::now() < until && !stop() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        }
        backoff = Duration::from_millis(500);
    }
    spool.seal_if_due(Duration::ZERO, 0)?;
    tick(spool)
}

fn connect(source: &DbSource, opts: &FollowOptions) -> Result<Conn> {
    let base = db::options(source, opts.connect_timeout)?;
    let opts = OptsBuilder::from_opts(base)
        .read_timeout(Some(Duration::from_secs(10)))
        .write_timeout(Some(Duration::from_secs(10)));
    Conn::new(opts).with_context(|| format!("cannot connect to {source}"))
}

/// Where the stream begins: the durable position, or (a gap) the oldest
/// log the server still has, or where it writes now.
fn start(conn: &mut Conn, spool: &mut Spool) -> Result<Position> {
    let identity = server_identity(conn)?;
    let now = crate::clock::now_unix();
    if spool.state.server != identity {
        // What was read from the other server is sealed as it stands.
        spool.seal()?;
        let old = std::mem::replace(&mut spool.state.server, identity.clone());
        let after = spool.state.next.take();
        let resumed_at = current_position(conn)?
            .map(|(file, pos)| Position { file, pos })
            .context("the server's binary log is off (log_bin): there is nothing to follow")?;
        if !old.is_empty() {
            // Another server: what happened between is not in any log
            // this follower holds.
            spool.state.gaps.push(Gap {
                found: now,
                why: format!("another server ({old}, now {identity})"),
                after,
                resumed_at: resumed_at.clone(),
            });
        }
        spool.state.next = Some(resumed_at.clone());
        spool.save()?;
        return Ok(resumed_at);
    }
    let next = spool.state.next.clone().context("no position")?;
    let logs = binary_logs(conn)?;
    if logs.contains(&next.file) {
        // Saved again: its time says when the follower last connected.
        spool.save()?;
        return Ok(next);
    }
    spool.seal()?;
    let resumed_at = match logs.first() {
        Some(file) => Position {
            file: file.clone(),
            pos: 4,
        },
        None => current_position(conn)?
            .map(|(file, pos)| Position { file, pos })
            .context("the server's binary log is off")?,
    };
    log::error!(
        "the server no longer has {} (purged before it was read): the log has a gap until {resumed_at}; a full copy closes it",
        next.file
    );
    spool.state.gaps.push(Gap {
        found: now,
        why: format!("{} was purged before it was read", next.file),
        after: Some(next),
        resumed_at: resumed_at.clone(),
    });
    spool.state.next = Some(resumed_at.clone());
    spool.save()?;
    Ok(resumed_at)
}

fn stream(
    source: &DbSource,
    spool: &mut Spool,
    opts: &FollowOptions,
    stop: &dyn Fn() -> bool,
    tick: &mut dyn FnMut(&mut Spool) -> Result<()>,
) -> Result<Ended> {
    let mut conn = connect(source, opts)?;
    let from = start(&mut conn, spool)?;
    // Heartbeats every half second when the log is idle (nanoseconds);
    // MariaDB's own events (GTID, annotations) rather than stand-ins.
    conn.query_drop("SET @master_heartbeat_period = 500000000")?;
    conn.query_drop("SET @mariadb_slave_capability = 4")?;
    log::info!("following the binary log from {from}");
    // (MariaDB sends its `Annotate_rows` events only with flag 2 of
    // COM_BINLOG_DUMP, which the client library masks off: a segment from
    // MariaDB holds the server's events without them.)
    let request = BinlogRequest::new(opts.replica_id)
        .with_filename(from.file.as_bytes().to_vec())
        .with_pos(from.pos);
    let mut events = conn.get_binlog_stream(request)?;

    let mut file = from.file.clone();
    let mut next = from;
    let mut fde: Vec<u8> = Vec::new();
    let (mut pending_events, mut pending_bytes, mut last_time) = (0u64, 0u64, 0i64);
    let mut last_sync = Instant::now();
    let mut buf = Vec::with_capacity(1 << 16);
    // At a transaction's end (or outside one) a segment may be sealed;
    // a stream that goes on from a durable position may begin inside one.
    let mut between = false;
    loop {
        if stop() {
            spool.sync(&next, pending_events, pending_bytes, last_time)?;
            return Ok(Ended::Stopped);
        }
        let Some(event) = events.next() else {
            anyhow::bail!("the server closed the stream");
        };
        let event: Event = event.context("the binary log stream failed")?;
        let header = event.header();
        let (kind, log_pos) = (header.event_type_raw(), header.log_pos());
        if matches!(kind, kind::ROTATE | kind::FORMAT_DESCRIPTION) {
            log::debug!(
                "event {kind} at {file}, log_pos {log_pos}, flags {:#x}, time {}",
                header.flags_raw(),
                header.timestamp()
            );
        }
        buf.clear();
        event.write(mysql::binlog::BinlogVersion::Version4, &mut buf)?;
        let idle = match kind {
            kind::HEARTBEAT => true,
            kind::ROTATE => {
                let raw = super::event::RawEvent::from_bytes(buf.clone(), 0)?;
                let (target, pos) = raw
                    .rotate_target()
                    .context("a rotate event without a file name")?;
                if log_pos != 0 && header.timestamp() != 0 {
                    // The server's own rotation: the file's last event.
                    spool.append(&next, &fde, &buf, i64::from(header.timestamp()))?;
                    pending_events += 1;
                    pending_bytes += buf.len() as u64;
                    next = Position {
                        file: target.clone(),
                        pos,
                    };
                    spool.sync(&next, pending_events, pending_bytes, last_time)?;
                    (pending_events, pending_bytes) = (0, 0);
                    spool.seal_if_due(Duration::ZERO, 0)?;
                    tick(spool)?;
                }
                file = target;
                continue;
            }
            kind::FORMAT_DESCRIPTION => {
                fde = buf.clone();
                if log_pos != 0 {
                    // A file's own first event: the log goes on in this
                    // file (after a rotation, or the server's restart: the
                    // file before ended with its last event), and this is
                    // the next segment's head.
                    next = Position {
                        file: file.clone(),
                        pos: 4,
                    };
                    spool.sync(&next, pending_events, pending_bytes, last_time)?;
                    (pending_events, pending_bytes) = (0, 0);
                    spool.seal()?;
                    spool.open_at(&next, &fde)?;
                    next.pos = u64::from(log_pos);
                    spool.sync(&next, 0, 0, last_time)?;
                }
                continue;
            }
            _ => {
                let time = i64::from(header.timestamp());
                spool.append(&next, &fde, &buf, time)?;
                pending_events += 1;
                pending_bytes += buf.len() as u64;
                last_time = last_time.max(time);
                if log_pos != 0 {
                    next = Position {
                        file: file.clone(),
                        pos: u64::from(log_pos),
                    };
                }
                between = match kind {
                    kind::XID => true,
                    kind::QUERY => ends_transaction(&event),
                    kind::GTID | kind::ANONYMOUS_GTID | kind::MARIADB_GTID => false,
                    _ => between,
                };
                false
            }
        };
        // A segment due for sealing is sealed at the end of a transaction
        // (or when the log is idle), everything before it synced first.
        let seal = (between || idle) && spool.due(opts.segment_age, opts.segment_bytes);
        if pending_events > 0 && (idle || seal || last_sync.elapsed() >= opts.sync) {
            spool.sync(&next, pending_events, pending_bytes, last_time)?;
            (pending_events, pending_bytes) = (0, 0);
            last_sync = Instant::now();
        }
        if seal && spool.seal()?.is_some() {
            tick(spool)?;
            if spool.waiting_bytes()? > opts.spool_limit {
                return Ok(Ended::SpoolFull);
            }
        }
        if idle && pending_events == 0 {
            last_sync = Instant::now();
        }
    }
}

/// Whether a query event ends a transaction (`COMMIT`) or stands alone
/// (DDL, which commits by itself); `BEGIN` opens one.
fn ends_transaction(event: &Event) -> bool {
    match event.read_data() {
        Ok(Some(EventData::QueryEvent(q))) => !q.query_raw().eq_ignore_ascii_case(b"BEGIN"),
        _ => true,
    }
}
