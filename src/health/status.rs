//! `billmgr-ops status`: one screen that says whether backups and running
//! operations are healthy, and what to look at first when they are not.
//! The same facts as JSON (`--json`) for monitoring; the exit status is 0
//! when healthy and 1 when there are problems.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use crate::clock::Timestamp;
use crate::config::Config;
use crate::db::backups::CopyState;
use crate::db::health::{self, TroubledOperation};
use crate::db::{backupconf, backups, Db};
use crate::engine::Schedule;

/// A cron tick older than this means cron is not running the plugin.
pub const CRON_STALE_SECS: i64 = 300;
/// A plan due longer than this without a copy is overdue.
pub const OVERDUE_SECS: i64 = 3600;

/// Everything `status` reports.
#[derive(Debug, Serialize)]
pub struct Status {
    /// No problems found.
    pub healthy: bool,
    /// What needs attention, most important first; empty when healthy.
    pub problems: Vec<String>,
    /// The database server's clock when the status was taken.
    pub checked_at: String,
    /// `etc/billmgr.DoNothing` exists: cron starts no operation and no plan.
    pub maintenance: bool,
    /// This binary's version, and the one `install` placed in the panel
    /// directory (none when it was not installed there).
    pub version: String,
    pub installed_version: Option<String>,
    pub database: DatabaseStatus,
    pub cron: CronStatus,
    pub backup: BackupStatus,
    /// The binary log: restores to a second.
    pub log: super::log::LogStatus,
    pub operations: OperationsStatus,
}

/// The billing database: where its credentials came from (never the
/// password), the server and what the account lacks.
#[derive(Debug, Serialize)]
pub struct DatabaseStatus {
    /// Host or socket, account and database.
    pub source: String,
    /// Where the credentials were read.
    pub origin: String,
    pub account: crate::db::account::Account,
}

#[derive(Debug, Serialize)]
pub struct CronStatus {
    /// The last `billmgr-ops cron` tick, if any.
    pub last_tick: Option<String>,
    pub seconds_ago: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct BackupStatus {
    /// A copy being taken now.
    pub running: Option<CopySummary>,
    pub plans: Vec<PlanStatus>,
    /// The newest copy of any kind (by hand, uploaded, or of a plan).
    pub last_copy: Option<CopySummary>,
    pub storages: Vec<StorageStatus>,
    /// The catalog's index of saved objects (`backupdata`).
    pub object_index: crate::db::objects::IndexSize,
}

#[derive(Debug, Serialize)]
pub struct CopySummary {
    pub id: u64,
    pub name: String,
    pub created: String,
    /// running, ok or failed.
    pub state: crate::db::backups::CopyState,
    pub reason: String,
    pub size: u64,
}

#[derive(Debug, Serialize)]
pub struct PlanStatus {
    pub id: u64,
    pub name: String,
    /// daily, weekly or off.
    pub schedule: String,
    pub last_copy: Option<CopySummary>,
    /// When the next copy is due (now, when it is due or overdue); none for
    /// a plan run only by hand.
    pub next_due: Option<String>,
    pub overdue: bool,
}

#[derive(Debug, Serialize)]
pub struct StorageStatus {
    pub id: Option<u64>,
    pub name: String,
    pub kind: String,
    pub location: String,
    /// Written, read back and deleted a probe; `None` when not checked.
    pub reachable: Option<bool>,
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct OperationsStatus {
    pub total: u64,
    /// waiting, running, failing (retried automatically), manual, stopped.
    pub by_state: BTreeMap<String, u64>,
    pub oldest_failing: Option<TroubledOperation>,
    pub turned_manual_last_day: Vec<TroubledOperation>,
    /// Operations due now and not yet started.
    pub backlog: u64,
    /// The mean length of recent attempts, seconds (none yet: unknown).
    pub mean_attempt_secs: Option<f64>,
    /// How long the backlog takes at that pace with every slot busy.
    pub drain_secs: Option<u64>,
}

fn summary(c: &backups::CopyRow) -> CopySummary {
    CopySummary {
        id: c.id,
        name: c.name.clone(),
        created: c.created.clone(),
        state: c.state,
        reason: c.reason.clone(),
        size: c.size,
    }
}

/// Takes the status. `probe` checks every storage end to end (a write, a
/// read and a delete of a small object), which takes a moment per remote
/// storage.
pub fn gather(config: &Config, db: &mut Db, probe: bool) -> Result<Status> {
    let now = health::server_clock(db)?;
    let mut problems = Vec::new();

    let version = env!("CARGO_PKG_VERSION").to_string();
    let installed_version = config.installed_version();
    if let Some(installed) = installed_version.as_ref().filter(|v| **v != version) {
        problems.push(format!(
            "the panel runs billmgr-ops {installed}, this is {version}: finish the upgrade with `billmgr-ops install`"
        ));
    }
    let tick = health::last_cron_tick(db)?;
    let cron = CronStatus {
        seconds_ago: tick.as_ref().map(|t| t.1),
        last_tick: tick.map(|t| t.0),
    };
    match cron.seconds_ago {
        None => problems.push(
            "cron has never run `billmgr-ops cron`: nothing is scheduled (see README, Installation)"
                .to_string(),
        ),
        Some(ago) if ago > CRON_STALE_SECS => problems.push(format!(
            "the last cron tick was {ago} s ago: is the cron line in /etc/cron.d/billmgr-ops?"
        )),
        _ => {}
    }

    let copies = backups::list(db)?;
    let running = copies
        .iter()
        .find(|c| c.state == CopyState::Running)
        .map(summary);
    let mut plans = Vec::new();
    for plan in backupconf::plans(db)? {
        let last = copies
            .iter()
            .find(|c| c.plan == Some(plan.id) && c.state != CopyState::Running);
        let schedule = Schedule::from_plan(&plan.schedule, &plan.at_time, &plan.days);
        let last_run = Timestamp::parse(&plan.last_run);
        let next_due = schedule
            .as_ref()
            .and_then(|s| s.next_run(last_run, now))
            .map(|t| t.to_string());
        // Due for more than an hour: the slot it is due for began then (a
        // slot of an earlier day, missed, is later than today's).
        let overdue = schedule.as_ref().is_some_and(|s| {
            s.is_due(last_run, now)
                && s.slot_of(now)
                    .is_none_or(|slot| !(0..=OVERDUE_SECS).contains(&slot.seconds_until(now)))
        }) && running.is_none();
        if overdue {
            problems.push(format!(
                "backup plan `{}` is overdue (due at {} and not started)",
                plan.name, plan.at_time
            ));
        }
        if let Some(c) = last.filter(|c| c.state == CopyState::Failed) {
            problems.push(format!(
                "the last copy of plan `{}` ({}) failed: {}",
                plan.name, c.name, c.reason
            ));
        }
        plans.push(PlanStatus {
            id: plan.id,
            name: plan.name.clone(),
            schedule: plan.schedule.clone(),
            last_copy: last.map(summary),
            next_due,
            overdue,
        });
    }
    let last_copy = copies
        .iter()
        .find(|c| c.state != CopyState::Running)
        .map(summary);
    if plans.is_empty() {
        if let Some(c) = copies.first().filter(|c| c.state == CopyState::Failed) {
            problems.push(format!("the last copy ({}) failed: {}", c.name, c.reason));
        }
    }

    let mut storages = Vec::new();
    let configured = backupconf::storages(db)?;
    // Probed side by side: a dead storage waits out its timeout, and one
    // should not add its wait to the others'.
    let checks: Vec<Option<Result<()>>> = std::thread::scope(|scope| {
        let probes: Vec<_> = configured
            .iter()
            .map(|row| {
                scope.spawn(move || {
                    probe.then(|| {
                        crate::engine::open_storage(&config.mgrdir, row).and_then(|s| {
                            crate::storage::probe(s.as_ref()).map_err(anyhow::Error::from)
                        })
                    })
                })
            })
            .collect();
        probes
            .into_iter()
            .map(|p| {
                p.join()
                    .unwrap_or_else(|_| Some(Err(anyhow::anyhow!("the probe panicked"))))
            })
            .collect()
    });
    for (row, checked) in configured.iter().zip(checks) {
        let error = match &checked {
            Some(Err(e)) => format!("{e:#}"),
            _ => String::new(),
        };
        if !error.is_empty() {
            problems.push(format!("storage `{}` is not reachable: {error}", row.name));
        }
        storages.push(StorageStatus {
            id: Some(row.id),
            name: row.name.clone(),
            kind: row.kind.clone(),
            location: row.location.clone(),
            reachable: checked.map(|r| r.is_ok()),
            error,
        });
    }
    if configured.is_empty() {
        let settings = crate::engine::Settings::resolve(config, db, None, None)?;
        let checked = probe.then(|| crate::storage::probe(settings.storage.as_ref()));
        let error = match &checked {
            Some(Err(e)) => e.to_string(),
            _ => String::new(),
        };
        if !error.is_empty() {
            problems.push(format!("the backup directory is not usable: {error}"));
        }
        storages.push(StorageStatus {
            id: None,
            name: settings.storage_name.clone(),
            kind: "local".into(),
            location: settings.storage.describe(),
            reachable: checked.map(|r| r.is_ok()),
            error,
        });
    }

    let log = super::log::gather(config, db, &mut problems)?;

    let by_state: BTreeMap<String, u64> = health::operations_by_state(db)?.into_iter().collect();
    let (backlog, mean_attempt_secs) = crate::db::runstate::backlog(db)?;
    let drain_secs = mean_attempt_secs.map(|mean| {
        (backlog as f64 * mean / f64::from(config.runner.concurrency.max(1))).ceil() as u64
    });
    let total = by_state.values().sum();
    let oldest_failing = health::oldest_failing(db)?;
    let turned_manual_last_day = health::turned_manual_within(db, 24)?;
    if !turned_manual_last_day.is_empty() {
        problems.push(format!(
            "{} running operation(s) turned manual in the last day after repeated failures",
            turned_manual_last_day.len()
        ));
    }

    Ok(Status {
        healthy: problems.is_empty(),
        problems,
        checked_at: now.to_string(),
        maintenance: config.maintenance(),
        version,
        installed_version,
        database: DatabaseStatus {
            source: config
                .db
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            origin: config
                .db_origin
                .as_ref()
                .map(|o| o.to_string())
                .unwrap_or_default(),
            account: crate::db::account::read(db)?,
        },
        cron,
        backup: BackupStatus {
            running,
            plans,
            last_copy,
            storages,
            object_index: crate::db::objects::size(db)?,
        },
        log,
        operations: OperationsStatus {
            total,
            by_state,
            backlog,
            mean_attempt_secs,
            drain_secs,
            oldest_failing,
            turned_manual_last_day,
        },
    })
}

fn copy_line(c: &CopySummary) -> String {
    match c.state {
        CopyState::Failed => format!("{} FAILED ({}): {}", c.created, c.name, c.reason),
        CopyState::Running => format!("{} running ({})", c.created, c.name),
        CopyState::Ok => format!("{} ok ({}, {} MiB)", c.created, c.name, c.size / (1 << 20)),
    }
}

fn operation_line(op: &TroubledOperation) -> String {
    format!(
        "#{} {}, {} attempts since {}{}",
        op.id,
        op.what(),
        op.attempts,
        op.created,
        op.error_suffix()
    )
}

/// A duration for people: `45 s`, `12 min`, `3 h 20 min`.
fn duration_words(secs: u64) -> String {
    match secs {
        0..=99 => format!("{secs} s"),
        100..=5999 => format!("{} min", secs.div_ceil(60)),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

/// The one screen.
pub fn render_text(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "billmgr-ops {} status at {}: {}",
        s.installed_version.as_deref().unwrap_or(&s.version),
        s.checked_at,
        if s.healthy {
            "healthy".to_string()
        } else {
            format!("{} problem(s)", s.problems.len())
        }
    );
    for p in &s.problems {
        let _ = writeln!(out, "  ! {p}");
    }
    if s.maintenance {
        let _ = writeln!(
            out,
            "\nMaintenance mode (etc/billmgr.DoNothing): cron starts no operation and no plan"
        );
    }
    let _ = writeln!(
        out,
        "\nDatabase: {} (credentials from {})\n  server {}, account {}",
        s.database.source, s.database.origin, s.database.account.server, s.database.account.user
    );
    for note in &s.database.account.missing {
        let _ = writeln!(out, "  - {note}");
    }
    let _ = writeln!(
        out,
        "\nCron: {}",
        match (&s.cron.last_tick, s.cron.seconds_ago) {
            (Some(t), Some(ago)) => format!("last tick {t} ({ago} s ago)"),
            _ => "never ran".into(),
        }
    );
    let _ = writeln!(out, "\nBackups");
    if let Some(r) = &s.backup.running {
        let _ = writeln!(out, "  now taking: {}", copy_line(r));
    }
    if s.backup.plans.is_empty() {
        let _ = writeln!(out, "  no plans (Backup → Setup adds one)");
    }
    for p in &s.backup.plans {
        let _ = writeln!(
            out,
            "  plan {} `{}` ({}): last {}; next {}{}",
            p.id,
            p.name,
            p.schedule,
            p.last_copy
                .as_ref()
                .map_or_else(|| "none yet".to_string(), copy_line),
            p.next_due.as_deref().unwrap_or("only by hand"),
            if p.overdue { " OVERDUE" } else { "" }
        );
    }
    let _ = writeln!(
        out,
        "  newest copy: {}",
        s.backup
            .last_copy
            .as_ref()
            .map_or_else(|| "none".to_string(), copy_line)
    );
    let index = &s.backup.object_index;
    let _ = writeln!(
        out,
        "  object index: {} blocks, {} KiB, {} references from copies",
        index.blocks,
        index.bytes / 1024,
        index.references
    );
    for st in &s.backup.storages {
        let _ = writeln!(
            out,
            "  storage {} ({}, {}): {}",
            st.name,
            st.kind,
            st.location,
            match st.reachable {
                Some(true) => "reachable".to_string(),
                Some(false) => format!("NOT REACHABLE: {}", st.error),
                None => "not checked".to_string(),
            }
        );
    }
    out.push_str(&super::log::render(&s.log));
    let _ = writeln!(out, "\nRunning operations: {}", s.operations.total);
    if !s.operations.by_state.is_empty() {
        let states: Vec<String> = s
            .operations
            .by_state
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(out, "  {}", states.join(", "));
    }
    if s.operations.backlog > 0 {
        let _ = writeln!(
            out,
            "  due now: {}{}",
            s.operations.backlog,
            match (s.operations.mean_attempt_secs, s.operations.drain_secs) {
                (Some(mean), Some(drain)) => format!(
                    "; about {} at the current pace ({mean:.1} s an attempt)",
                    duration_words(drain)
                ),
                _ => String::new(),
            }
        );
    }
    if let Some(op) = &s.operations.oldest_failing {
        let _ = writeln!(out, "  oldest failing: {}", operation_line(op));
    }
    if !s.operations.turned_manual_last_day.is_empty() {
        let _ = writeln!(out, "  turned manual in the last day:");
        for op in s.operations.turned_manual_last_day.iter().take(20) {
            let _ = writeln!(out, "    {}", operation_line(op));
        }
        let more = s.operations.turned_manual_last_day.len().saturating_sub(20);
        if more > 0 {
            let _ = writeln!(out, "    ... and {more} more (--json lists all)");
        }
    }
    out
}
