//! A running operation's life as types: the runner's state of it, the
//! panel's manual switch, what an attempt came to, and the one pure
//! function ([`after_attempt`]) that decides what an attempt's end does to
//! the operation.
//!
//! ```text
//!            start / cron tick                 exit 0, no <error>
//!   wait ───────────────────────► run ─────────────────────────────► (removed)
//!    ▲  ▲                          │  failure (exit ≠ 0, <error>, timeout,
//!    │  │ next_try reached         │           missing module, runner died)
//!    │  └───────────── error ◄─────┘  trycount+1, retry after 5m·2ⁿ (≤ 6h)
//!    │                   │ trycount ≥ MaxAttempts, or the module's own
//!    │                   ▼ setmanual: manual = on (+ staff task if ours)
//!    │ edit: manual=off
//!    └──────────────── stopped ◄── stop (ends the process group; manual = on)
//! ```
//!
//! A mark no runner took in time goes back to `wait` with no attempt
//! counted (the scheduler's repair).
//!
//! The database keeps these as the panel's strings
//! (`billmgrops_operation.status`, `runningoperation.manual`); they become
//! text only at that boundary (`db::runstate`, `db::operations`). No I/O
//! here: the db layer reads the facts in a transaction, asks
//! [`after_attempt`], and persists what it returns.

use std::fmt;

/// The runner's state of an operation (`billmgrops_operation.status`); an
/// operation with no state row is [`State::Wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Due (unless manual), or waiting for its next try.
    Wait,
    /// Marked to run, or its attempt is running.
    Run,
    /// The last attempt failed; retried at `next_try` unless manual.
    Error,
    /// Stopped by an administrator; manual until switched back.
    Stopped,
}

impl State {
    pub const ALL: [State; 4] = [State::Wait, State::Run, State::Error, State::Stopped];

    /// The panel's (and the column's) name.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Wait => "wait",
            State::Run => "run",
            State::Error => "error",
            State::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The panel's manual switch (`runningoperation.manual`): when on, no
/// automatic attempt is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Manual {
    Off,
    On,
}

impl Manual {
    pub const fn as_str(self) -> &'static str {
        match self {
            Manual::Off => "off",
            Manual::On => "on",
        }
    }

    /// The column's text; anything but `on` is off, as the panel reads it.
    pub fn parse(s: &str) -> Manual {
        if s == "on" {
            Manual::On
        } else {
            Manual::Off
        }
    }

    pub const fn from_bool(on: bool) -> Manual {
        if on {
            Manual::On
        } else {
            Manual::Off
        }
    }

    pub const fn is_on(self) -> bool {
        matches!(self, Manual::On)
    }
}

/// What an attempt came to, as `billmgrops_attempt.outcome` keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Exit 0 and no error reported.
    Ok,
    /// A failure: exit status, `<error>` on stdout or through the API,
    /// a crash, a module that could not start.
    Error,
    /// Stopped at `OperationTimeout`.
    Timeout,
    /// Stopped by an administrator.
    Stopped,
}

impl AttemptOutcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::Error => "error",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::Stopped => "stopped",
        }
    }
}

/// What became of the operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Done and removed.
    Finished,
    /// Failed; retried at the scheduled time.
    WillRetry,
    /// Failed for the last time: now manual, a task is due.
    TurnedManual,
    /// Stopped by an administrator.
    Stopped,
    /// Failed, and the module switched the operation to manual itself
    /// (`runningoperation.setmanual`): no retry, no task of ours.
    ManualByModule,
}

/// What [`after_attempt`] decides on, read in the transaction that
/// records the attempt's end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptFacts {
    pub outcome: AttemptOutcome,
    /// Attempts begun, this one included (`runningoperation.trycount`).
    pub tries: u32,
    /// The switch as it is now.
    pub manual_now: Manual,
    /// The switch when the attempt began: only a switch during the attempt
    /// is the module's doing (an administrator may start a manual one).
    pub manual_before: Manual,
    /// The attempt count at which the operation turns manual.
    pub max_attempts: u32,
    /// Seconds until the next automatic try, should there be one.
    pub retry_in: u64,
}

/// What to write after an attempt: the db layer persists this and nothing
/// else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The operation is done: it and its state are removed.
    Remove,
    /// The operation stays, with the attempt's error document, in `state`
    /// (runner, process group and stop request cleared).
    Keep {
        state: State,
        /// Switch manual on (it is never switched off here).
        turn_manual: bool,
        /// The next automatic try, in seconds; `None`: no automatic try.
        retry_in: Option<u64>,
        /// Record now as when it turned manual (for `status` and the
        /// notices of operations that need a person).
        note_manual_since: bool,
    },
}

/// The decision: what it is called, and what to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub settled: Settled,
    pub change: Change,
}

/// What an attempt's end does to its operation.
pub fn after_attempt(f: &AttemptFacts) -> Decision {
    let (settled, change) = match f.outcome {
        AttemptOutcome::Ok => (Settled::Finished, Change::Remove),
        AttemptOutcome::Stopped => (
            Settled::Stopped,
            Change::Keep {
                state: State::Stopped,
                turn_manual: true,
                retry_in: None,
                note_manual_since: false,
            },
        ),
        AttemptOutcome::Error | AttemptOutcome::Timeout => {
            // Made manual during the attempt, by its module through the API.
            let by_module = f.manual_now.is_on() && !f.manual_before.is_on();
            let last = by_module || f.tries >= f.max_attempts;
            let settled = if by_module {
                Settled::ManualByModule
            } else if last {
                Settled::TurnedManual
            } else {
                Settled::WillRetry
            };
            (
                settled,
                Change::Keep {
                    state: State::Error,
                    turn_manual: last,
                    retry_in: (!last).then_some(f.retry_in),
                    note_manual_since: last && !by_module,
                },
            )
        }
    };
    Decision { settled, change }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("running"), None);
        assert_eq!(Manual::parse("on"), Manual::On);
        assert_eq!(Manual::parse("off"), Manual::Off);
        assert_eq!(Manual::parse(""), Manual::Off);
        assert_eq!(Manual::from_bool(true).as_str(), "on");
    }

    /// Every outcome against every switch and count that matters, as a
    /// table: outcome, tries, switch before, switch now →
    /// settled, state, manual turned on, retried, manual time noted.
    #[test]
    fn after_attempt_table() {
        use AttemptOutcome as O;
        use Manual::{Off, On};
        type Row = (
            O,
            u32,
            Manual,
            Manual,
            Settled,
            Option<(State, bool, bool, bool)>,
        );
        let s = State::Stopped;
        let e = State::Error;
        let table: &[Row] = &[
            // done: removed, whatever the switch or the count
            (O::Ok, 1, Off, Off, Settled::Finished, None),
            (O::Ok, 5, On, On, Settled::Finished, None),
            (O::Ok, 9, Off, On, Settled::Finished, None),
            // an administrator's stop: stopped and manual, never retried
            (
                O::Stopped,
                1,
                Off,
                Off,
                Settled::Stopped,
                Some((s, true, false, false)),
            ),
            (
                O::Stopped,
                5,
                On,
                On,
                Settled::Stopped,
                Some((s, true, false, false)),
            ),
            // failures with tries left: retried
            (
                O::Error,
                1,
                Off,
                Off,
                Settled::WillRetry,
                Some((e, false, true, false)),
            ),
            (
                O::Timeout,
                4,
                Off,
                Off,
                Settled::WillRetry,
                Some((e, false, true, false)),
            ),
            // the last try: manual, noted, no retry
            (
                O::Error,
                5,
                Off,
                Off,
                Settled::TurnedManual,
                Some((e, true, false, true)),
            ),
            (
                O::Timeout,
                7,
                Off,
                Off,
                Settled::TurnedManual,
                Some((e, true, false, true)),
            ),
            // the module switched it to manual during the attempt: its own
            // task, not noted by us, not retried, even with tries left
            (
                O::Error,
                1,
                Off,
                On,
                Settled::ManualByModule,
                Some((e, true, false, false)),
            ),
            (
                O::Timeout,
                5,
                Off,
                On,
                Settled::ManualByModule,
                Some((e, true, false, false)),
            ),
            // an administrator started a manual operation and it failed:
            // it stays manual (the retry time is kept, but only a person
            // starts it); the last try is counted as for any other
            (
                O::Error,
                1,
                On,
                On,
                Settled::WillRetry,
                Some((e, false, true, false)),
            ),
            (
                O::Error,
                5,
                On,
                On,
                Settled::TurnedManual,
                Some((e, true, false, true)),
            ),
        ];
        for &(outcome, tries, before, now, settled, keep) in table {
            let facts = AttemptFacts {
                outcome,
                tries,
                manual_now: now,
                manual_before: before,
                max_attempts: 5,
                retry_in: 60,
            };
            let d = after_attempt(&facts);
            assert_eq!(d.settled, settled, "{facts:?}");
            let expected = match keep {
                None => Change::Remove,
                Some((state, turn_manual, retried, noted)) => Change::Keep {
                    state,
                    turn_manual,
                    retry_in: retried.then_some(60),
                    note_manual_since: noted,
                },
            };
            assert_eq!(d.change, expected, "{facts:?}");
        }
    }
}
