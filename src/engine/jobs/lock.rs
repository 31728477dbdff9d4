//! One backup, restore or upload at a time per database: a server-side
//! named lock (`GET_LOCK('billmgrops.backup.<db>')`), so it holds across
//! processes and hosts, held by a guard that releases it when dropped
//! (the server also releases it if the process dies).

use anyhow::Result;

use crate::db::{runstate, Db};

/// Another backup or restore holds the lock. Callers branch on it.
#[derive(Debug, thiserror::Error)]
#[error("another backup or restore is running")]
pub struct Busy;

fn lock_name(db: &mut Db) -> Result<String> {
    let name = format!("billmgrops.backup.{}", db.name()?);
    Ok(name.chars().take(64).collect())
}

/// The job lock, held; released when dropped.
pub struct JobLock<'db> {
    db: &'db mut Db,
    name: String,
}

impl<'db> JobLock<'db> {
    /// Takes the lock without waiting; [`Busy`] when another job holds it.
    pub fn take(db: &'db mut Db) -> Result<JobLock<'db>> {
        let name = lock_name(db)?;
        if !runstate::try_lock(db, &name)? {
            return Err(Busy.into());
        }
        Ok(JobLock { db, name })
    }

    /// The connection that holds the lock.
    pub fn db(&mut self) -> &mut Db {
        self.db
    }
}

impl Drop for JobLock<'_> {
    fn drop(&mut self) {
        runstate::release(self.db, &self.name);
    }
}

/// Runs `work` holding the job lock ([`Busy`] otherwise).
pub fn with_job_lock<T>(db: &mut Db, work: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
    let mut lock = JobLock::take(db)?;
    work(lock.db())
}

/// Is a backup or restore running now?
pub fn busy(db: &mut Db) -> Result<bool> {
    let name = lock_name(db)?;
    runstate::is_locked(db, &name)
}
