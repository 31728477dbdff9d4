//! The operation runner: attempts of processing modules and the scheduler
//! that starts them.
//!
//! The life of an operation (its states, and what an attempt's end does
//! to it) is [`crate::operation`]'s; the runner makes attempts and
//! the db layer keeps the state.
//!
//! - [`attempt`]: one attempt, in its own process (`billmgr-ops
//!   run-operation ID`), under the operation's database lock.
//! - [`control`]: what the panel's start, stop and delete do.
//! - [`scheduler`]: one cron tick: repair what a dead runner left, start
//!   what is due within the concurrency bound.
//! - [`process`]: running the module: process group, timeout, output tails.
//! - [`backoff`]: the retry delay.
//! - [`tasks`]: staff tasks, asked of the panel (`mgrctl`).

pub mod ask;
pub mod attempt;
pub mod backoff;
pub mod control;
pub mod process;
pub mod scheduler;
pub mod tasks;

pub use crate::host::runner_id;
