//! What can be restored, at a glance: the follower's state, its spool,
//! and the recoverable window (from the oldest good copy the stored log
//! reaches without a break, to the last stored event), read from the
//! catalog and the follower's own notes, never by listing a storage.

use std::path::Path;

use anyhow::Result;

use super::super::binlog::segment::{self, Position};
use super::super::binlog::spool::{self, Gap};
use super::super::format::LogPosition;
use crate::db::backups::{self, CopyState};
use crate::db::Db;

/// The binary log as `status` shows it.
#[derive(Clone, Debug, Default)]
pub struct LogWindow {
    /// Where the follower's stream goes on from (durable), and the
    /// server it follows.
    pub next: Option<(String, String, u64)>,
    /// The newest event made durable in the spool, UTC seconds.
    pub last_event: Option<i64>,
    /// Bytes waiting in the spool for the storage.
    pub spool_bytes: u64,
    /// The window: the oldest copy it begins with (name, UTC seconds of
    /// its snapshot), and the last second the stored log holds whole.
    pub from: Option<(String, i64)>,
    pub to: Option<i64>,
    pub segments: u64,
    pub stored_bytes: u64,
    pub gaps: Vec<(i64, String)>,
}

/// Reads the window of the log followed into the spool `dir`.
pub fn log_window(db: &mut Db, dir: &Path) -> Result<LogWindow> {
    let mut w = LogWindow::default();
    let Some(state) = spool::read_state(dir)? else {
        return Ok(w);
    };
    if let Some(next) = &state.next {
        w.next = Some((state.server.clone(), next.file.clone(), next.pos));
    }
    w.last_event = (state.last_event > 0).then_some(state.last_event);
    // A gap is closed by a good copy taken after it was found.
    let copies = backups::list(db)?;
    let newest_copy = copies
        .iter()
        .filter(|c| c.state == CopyState::Ok)
        .filter_map(|c| crate::clock::Timestamp::parse(&c.created))
        .map(|t| t.unix())
        .max();
    w.gaps = state
        .gaps
        .iter()
        .filter(|g: &&Gap| newest_copy.is_none_or(|c| c < g.found))
        .map(|g| (g.found, g.why.clone()))
        .collect();
    w.spool_bytes = spool::sealed(dir)
        .map(|s| s.iter().map(|(i, _)| i.size).sum())
        .unwrap_or(0)
        + state.open.as_ref().map_or(0, |o| o.size);
    let stored = spool::stored(dir)?;
    w.segments = stored.len() as u64;
    w.stored_bytes = stored.iter().map(|s| s.stored_size).sum();
    let end = segment::unbroken_to_newest(&stored);
    // The last second the stored log holds whole: more of the newest
    // event's second may still be on its way.
    w.to = end.first().map(|s| s.last_time - 1);
    let positions = backups::log_positions(db)?;
    for copy in copies.iter().rev() {
        if copy.state != CopyState::Ok {
            continue;
        }
        let Some(at) = positions
            .get(&copy.id)
            .and_then(|p| LogPosition::from_catalog(p))
        else {
            continue;
        };
        let p = Position {
            file: at.file,
            pos: at.pos,
        };
        if end.iter().any(|s| s.server == at.server && s.holds(&p)) {
            let taken = crate::clock::Timestamp::parse(&copy.created).map_or(0, |t| t.unix());
            w.from = Some((copy.name.clone(), taken));
            break;
        }
    }
    Ok(w)
}

/// Where the server writes its binary log now: file and position.
pub fn log_position_now(db: &mut Db) -> Result<Option<(String, u64)>> {
    super::super::introspect::current_position(db.conn())
}
