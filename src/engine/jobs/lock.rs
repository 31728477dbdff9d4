//! One backup, restore or upload at a time per database: the job's named
//! lock (`db::lock`, `LockKind::Job`), so it holds across processes and
//! hosts, released when the work ends (and by the server if the process
//! dies).

use anyhow::Result;

use crate::db::lock::{self, LockKind, NamedLock};
use crate::db::Db;

/// Another backup or restore holds the lock. Callers branch on it.
#[derive(Debug, thiserror::Error)]
#[error("another backup or restore is running")]
pub struct Busy;

/// Runs `work` holding the job lock ([`Busy`] otherwise).
pub fn with_job_lock<T>(db: &mut Db, work: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
    let Some(mut held) = NamedLock::try_take(db, LockKind::Job)? else {
        return Err(Busy.into());
    };
    work(held.db())
}

/// Is a backup or restore running now?
pub fn busy(db: &mut Db) -> Result<bool> {
    lock::is_held(db, LockKind::Job)
}
