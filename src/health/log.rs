//! The binary log's part of `status`: whether it can be followed (and how
//! to turn on what is missing), whether the follower runs, its lag, the
//! recoverable window, gaps, and the last restore drill; with the
//! problems they make.

use anyhow::Result;
use serde::Serialize;

use crate::config::Config;
use crate::db::account::{self, LogPrerequisites};
use crate::db::lock::{self, LockKind};
use crate::db::Db;
use crate::engine;

/// What `BinlogFollow` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Follow {
    /// Followed when the server and the account allow it.
    Auto,
    On,
    Off,
}

impl Follow {
    pub fn as_str(self) -> &'static str {
        match self {
            Follow::Auto => "auto",
            Follow::On => "on",
            Follow::Off => "off",
        }
    }

    pub fn of(config: &Config) -> Follow {
        match config.value("BinlogFollow").unwrap_or("auto") {
            "on" => Follow::On,
            "off" => Follow::Off,
            _ => Follow::Auto,
        }
    }
}

/// The binary log and its follower.
#[derive(Debug, Serialize)]
pub struct LogStatus {
    pub follow: Follow,
    /// `None` when they could not be read.
    pub prerequisites: Option<LogPrerequisites>,
    pub follower_running: bool,
    /// The newest event the follower holds (UTC) and how far behind the
    /// server it is, seconds (0: it has read all the server wrote).
    pub last_event: Option<String>,
    pub lag_secs: Option<i64>,
    /// Bytes in the spool waiting for the storage.
    pub spool_bytes: u64,
    /// The recoverable window: from the oldest good copy the stored log
    /// reaches without a break, to the last stored event (UTC).
    pub window_from: Option<String>,
    pub window_from_copy: Option<String>,
    pub window_to: Option<String>,
    pub segments: u64,
    pub stored_bytes: u64,
    /// Breaks in the log since the last copy: (found, why).
    pub gaps: Vec<(String, String)>,
    /// The last restore drill (`backup drill`), if any.
    pub last_drill: Option<crate::db::drills::Drill>,
    /// What to mail (`notify`): a key naming each event once (a gap by
    /// when it was found; a stopped or lagging follower at most hourly),
    /// and its text.
    #[serde(skip)]
    pub alerts: Vec<(String, String)>,
}

/// Takes the log's status; problems go to `problems`.
pub fn gather(config: &Config, db: &mut Db, problems: &mut Vec<String>) -> Result<LogStatus> {
    let follow = Follow::of(config);
    let prerequisites = account::log_prerequisites(db).ok();
    let running = lock::is_held(db, LockKind::Follow)?;
    let dir = engine::spool_dir(config, &db.name()?);
    let w = engine::log_window(db, &dir)?;
    let now = crate::clock::now_unix();
    let lag_secs = w
        .next
        .as_ref()
        .map(|(_, file, pos)| match engine::log_position_now(db) {
            Ok(Some((f, p))) if &f == file && p == *pos => 0,
            _ => w.last_event.map_or(0, |t| (now - t).max(0)),
        });
    let wanted = match follow {
        Follow::Off => false,
        Follow::On => true,
        Follow::Auto => prerequisites.as_ref().is_some_and(|p| p.ready()) || w.next.is_some(),
    };
    let alert = config
        .value("BinlogLagAlert")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(300);
    let hour = crate::clock::Timestamp::from_unix(now).compact();
    let hour = hour.get(..11).unwrap_or(&hour).to_string();
    let mut alerts = Vec::new();
    if wanted {
        if let Some(p) = prerequisites.as_ref().filter(|p| !p.ready()) {
            for m in &p.missing {
                problems.push(format!("restores to a second: {m}"));
            }
        }
        if !running {
            problems.push(
                "the binary-log follower is not running: the cron tick starts it (`billmgr-ops backup follow`)".into(),
            );
        }
        if let Some(lag) = lag_secs.filter(|&l| l > alert) {
            let text =
                format!("the binary-log follower is {lag} s behind the server (limit {alert} s)");
            alerts.push((
                format!("log-lag:{hour}"),
                format!("Restores to a second: {text}.\n  The recoverable window ends that far back; see billmgr-ops status and the log."),
            ));
            problems.push(text);
        }
    }
    for (found, why) in &w.gaps {
        alerts.push((
            format!("log-gap:{found}"),
            format!(
                "Restores to a second: the binary log has a GAP (found {} UTC: {why}).\n  No restore to a second crosses it; the next cron tick takes a full copy, after which it does not matter.",
                crate::clock::utc_datetime(*found)
            ),
        ));
    }
    if !w.gaps.is_empty() {
        problems.push(format!(
            "the binary log has {} gap(s) no full copy has closed yet; the next copy closes them",
            w.gaps.len()
        ));
    }
    let last_drill = crate::db::drills::last(db)?;
    if let Some(d) = last_drill.as_ref().filter(|d| d.state == "failed") {
        problems.push(format!(
            "the last restore drill ({} UTC) failed: {}",
            d.started, d.reason
        ));
    }
    let utc = crate::clock::utc_datetime;
    Ok(LogStatus {
        follow,
        prerequisites,
        follower_running: running,
        last_event: w.last_event.map(utc),
        lag_secs,
        spool_bytes: w.spool_bytes,
        window_from: w.from.as_ref().map(|(_, t)| utc(*t)),
        window_from_copy: w.from.map(|(name, _)| name),
        window_to: w.to.map(utc),
        segments: w.segments,
        stored_bytes: w.stored_bytes,
        gaps: w.gaps.into_iter().map(|(t, why)| (utc(t), why)).collect(),
        last_drill,
        alerts,
    })
}

/// The log's lines of `status`.
pub fn render(s: &LogStatus) -> String {
    let mut out = String::from("\nRestore to a second (binary log):\n");
    let state = if s.follower_running {
        "running"
    } else {
        "not running"
    };
    out.push_str(&format!(
        "  follower: {state} (BinlogFollow {})\n",
        s.follow.as_str()
    ));
    match (&s.window_from, &s.window_to) {
        (Some(from), Some(to)) => out.push_str(&format!(
            "  recoverable: any second from {from} (copy {}) to {to} UTC\n",
            s.window_from_copy.as_deref().unwrap_or("")
        )),
        (None, Some(to)) => out.push_str(&format!(
            "  log stored to {to} UTC; no copy before it that the log reaches yet\n"
        )),
        _ => out.push_str("  nothing recoverable to a second yet\n"),
    }
    if let Some(lag) = s.lag_secs {
        out.push_str(&format!(
            "  lag: {lag} s; last event {}; {} segment(s), {} bytes stored; {} bytes waiting in the spool\n",
            s.last_event.as_deref().unwrap_or("-"),
            s.segments,
            s.stored_bytes,
            s.spool_bytes
        ));
    }
    for (when, why) in &s.gaps {
        out.push_str(&format!("  gap found {when}: {why}\n"));
    }
    if let Some(p) = &s.prerequisites {
        for m in &p.missing {
            out.push_str(&format!("  needs: {m}\n"));
        }
    }
    match &s.last_drill {
        Some(d) => out.push_str(&format!(
            "  last restore drill: {} UTC, copy {}{}: {}{}\n",
            d.started,
            d.copy,
            if d.to_time.is_empty() {
                String::new()
            } else {
                format!(" to {} UTC", d.to_time)
            },
            d.state,
            match (d.state.as_str(), d.seconds) {
                ("ok", Some(s)) => format!(
                    " in {s:.1} s ({} rows, {} transactions)",
                    d.rows, d.transactions
                ),
                ("failed", _) => format!(" ({})", d.reason),
                _ => String::new(),
            }
        )),
        None => out.push_str("  no restore drill yet (`billmgr-ops backup drill`)\n"),
    }
    out
}
