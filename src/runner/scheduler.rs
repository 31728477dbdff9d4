//! The scheduler (`billmgr-ops cron`, every minute): settle what vanished
//! runners left behind, then keep the slots full. One tick stays for
//! `SchedulerStay` seconds (default 55), and whenever an attempt ends it
//! starts the next due operation, so a backlog drains at the modules' pace
//! and not at cron's. Nothing starts while `<mgrdir>/etc/billmgr.DoNothing`
//! exists (BILLmanager's maintenance mode).
//!
//! Guarantees (docs/operations.md):
//! - one scheduler per database, across processes and hosts: a tick holds
//!   a server-side named lock on its connection, released by the server if
//!   the tick dies;
//! - one attempt of an operation at a time: each runner holds the
//!   operation's own named lock (`db::lock`);
//! - `kill -9` of a tick loses nothing: an operation it marked but whose
//!   runner never took it is put back as due at once by the next tick (a
//!   mark names the tick's connection; the tick lock tells that tick is
//!   gone), without an attempt counted, and a runner that arrives later
//!   finds its mark gone and does nothing; one whose runner died is
//!   settled as interrupted and retried;
//! - fair: at most `Concurrency` attempts; a module past
//!   `ModuleConcurrency` only takes slots no other module's due operation
//!   wants; the due ones by [`COMMAND_PRIORITY`], then oldest first.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::backoff::retry_delay;
use super::control;
use crate::config::Config;
use crate::db::lock::{self, LockKind, NamedLock};
use crate::db::runstate::{self, Marker};
use crate::db::Db;

/// A runner that has not taken its lock this long after being marked is
/// taken for dead (it normally takes it within milliseconds). Marks of a
/// tick that is gone, and of this tick's runners that exited, are put
/// back at once instead.
const START_GRACE_SECS: u64 = 60;
/// How often a staying tick looks at the slots in the database (for
/// attempts started elsewhere: the panel's Start, another host).
const POLL: Duration = Duration::from_millis(250);
/// How often it asks whether a runner it started has exited: an ended
/// attempt frees its slot at once, not at the next look.
const REAP: Duration = Duration::from_millis(20);
/// How often a staying tick looks for newly due operations while slots
/// are free but nothing ended (a retry whose time came, a new operation).
const DUE_EVERY: Duration = Duration::from_secs(5);

/// Which commands go first, lower first; any other command after these.
/// A client who paid waits for `open` and `resume`; changes the client
/// asked for come next; `suspend` and `close` end a service and can wait
/// minutes without harm (and `close` cannot be undone, so it goes after
/// `suspend`); synchronisation and the rest are housekeeping.
pub const COMMAND_PRIORITY: &[(&str, u32)] = &[
    ("open", 0),
    ("resume", 0),
    ("reopen", 0),
    ("prolong", 1),
    ("setparam", 1),
    ("changeparam", 1),
    ("suspend", 2),
    ("close", 3),
];

/// What a tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Maintenance mode was on: nothing was started.
    pub paused: bool,
    /// Another tick was running: this one did nothing.
    pub overlapped: bool,
    /// Operations whose runner had vanished, now settled as failed.
    pub interrupted: Vec<u64>,
    /// Operations marked but never taken by a runner, put back as due.
    pub put_back: Vec<u64>,
    /// Operations started by this tick.
    pub started: Vec<u64>,
    /// Attempts running when the tick ended.
    pub running: usize,
}

/// Runs one tick.
pub fn tick(config: &Config, db: &mut Db) -> Result<TickReport> {
    let mut report = TickReport::default();
    if config.maintenance() {
        log::info!("maintenance mode (etc/billmgr.DoNothing): no operation is started");
        report.paused = true;
        return Ok(report);
    }
    let Some(mut held) = NamedLock::try_take(db, LockKind::Tick)? else {
        log::info!("another scheduler tick is running");
        report.overlapped = true;
        return Ok(report);
    };
    tick_locked(config, held.db(), &mut report)?;
    Ok(report)
}

/// The attempts running now, by operation, with their modules.
struct Slots {
    running: HashMap<u64, Option<u64>>,
}

impl Slots {
    fn per_module(&self) -> HashMap<Option<u64>, u32> {
        let mut out = HashMap::new();
        for module in self.running.values() {
            *out.entry(*module).or_default() += 1;
        }
        out
    }
}

/// The runners this tick started, and those of them that exited.
#[derive(Default)]
struct Runners {
    running: Vec<(u64, Child)>,
    exited: HashSet<u64>,
}

fn tick_locked(config: &Config, db: &mut Db, report: &mut TickReport) -> Result<()> {
    runstate::drop_orphans(db)?;
    let me = runstate::connection_id(db)?;
    let stay_until = Instant::now() + config.runner.scheduler_stay;
    let mut looked_for_due: Option<Instant> = None;
    let mut last_running: BTreeSet<u64> = BTreeSet::new();
    let mut runners = Runners::default();
    loop {
        let slots = repair(config, db, me, &mut runners.exited, report)?;
        report.running = slots.running.len();
        if !config.runs_modules() {
            // Companion mode: BILLmanager's own scheduler runs the operations.
            return Ok(());
        }
        let now_running: BTreeSet<u64> = slots.running.keys().copied().collect();
        let something_ended = last_running.difference(&now_running).next().is_some();
        let free = (config.runner.concurrency as usize).saturating_sub(slots.running.len());
        let look = free > 0
            && (looked_for_due.is_none()
                || something_ended
                || looked_for_due.is_some_and(|t| t.elapsed() >= DUE_EVERY));
        let mut started = Vec::new();
        if look {
            looked_for_due = Some(Instant::now());
            let picked = pick(config, db, &slots, free)?;
            if !picked.is_empty() {
                for (id, child) in control::start(config, db, &picked, Marker::Tick)
                    .context("failed to start due operations")?
                {
                    runners.exited.remove(&id); // an earlier runner's exit is not this one's
                    runners.running.push((id, child));
                    started.push(id);
                }
                log::info!("started operations {started:?}");
            }
        }
        last_running = now_running;
        last_running.extend(started.iter().copied());
        report.running = last_running.len();
        report.started.extend(started);
        if Instant::now() >= stay_until || config.maintenance() {
            return Ok(());
        }
        // Nothing runs and nothing was due: no reason to stay.
        if last_running.is_empty() && look {
            return Ok(());
        }
        wait_for_runners(&mut runners, POLL);
    }
}

/// Sleeps up to `limit`, returning early when one of `runners` exits (and
/// reaping those that did, so a staying tick leaves no zombies).
fn wait_for_runners(runners: &mut Runners, limit: Duration) {
    let until = Instant::now() + limit;
    loop {
        let before = runners.running.len();
        // An error from try_wait means the child is gone all the same.
        runners.running.retain_mut(|(id, r)| {
            let alive = matches!(r.try_wait(), Ok(None));
            if !alive {
                runners.exited.insert(*id);
            }
            alive
        });
        if runners.running.len() < before || Instant::now() >= until {
            return;
        }
        std::thread::sleep(REAP.min(until.saturating_duration_since(Instant::now())));
    }
}

/// Settles operations whose runner is gone; returns what runs. `me` is
/// this tick's connection; `exited`, the operations whose runner this tick
/// started and saw exit.
fn repair(
    config: &Config,
    db: &mut Db,
    me: u64,
    exited: &mut HashSet<u64>,
    report: &mut TickReport,
) -> Result<Slots> {
    let mut running = HashMap::new();
    for m in runstate::marked_running(db)? {
        // No runner will take it: marked by a tick that is gone (this one
        // holds the tick lock), or by this tick for a runner that exited.
        let orphaned = m.tick.is_some_and(|t| t != me) || exited.remove(&m.id);
        if lock::is_held(db, LockKind::Operation(m.id))? {
            running.insert(m.id, m.module);
        } else if !m.taken && (orphaned || m.age >= START_GRACE_SECS) {
            if runstate::mark_not_started(db, m.id)? {
                log::warn!("operation {}: marked but never started; due again", m.id);
                report.put_back.push(m.id);
            } else {
                running.insert(m.id, m.module); // a runner took it just now
            }
        } else if m.age < START_GRACE_SECS {
            running.insert(m.id, m.module); // just marked; its runner is on the way
        } else {
            let tries = crate::db::operations::get(db, m.id)?.map_or(1, |o| o.trycount.max(1));
            let delay = retry_delay(
                tries,
                config.runner.retry_delay,
                config.runner.retry_delay_max,
            );
            runstate::mark_interrupted(db, m.id, delay.as_secs())?;
            log::warn!(
                "operation {}: its runner vanished; retry in {}s",
                m.id,
                delay.as_secs()
            );
            report.interrupted.push(m.id);
        }
    }
    Ok(Slots { running })
}

/// The due operations to start in `free` slots: in [`COMMAND_PRIORITY`]
/// order, oldest first; first no module past `ModuleConcurrency`, then,
/// if slots are still free, any (a slot never idles while something is
/// due: a backlog of one module drains at the full `Concurrency`, and
/// the others' operations take the slots it frees before it does).
fn pick(config: &Config, db: &mut Db, slots: &Slots, free: usize) -> Result<Vec<u64>> {
    let mut per_module = slots.per_module();
    let limit = config.runner.module_concurrency.max(1);
    // Enough candidates that a saturated module's backlog does not hide
    // the others'.
    let want = (free as u32).saturating_mul(16).clamp(64, 4096);
    let candidates = runstate::due(db, want, COMMAND_PRIORITY)?;
    let mut out = Vec::with_capacity(free);
    for &(id, module) in &candidates {
        if out.len() == free {
            break;
        }
        let n = per_module.entry(module).or_default();
        // Operations without a module fail at once; they take no
        // module's share.
        if module.is_some() && *n >= limit {
            continue;
        }
        *n += 1;
        out.push(id);
    }
    for &(id, _) in &candidates {
        if out.len() == free {
            break;
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}
