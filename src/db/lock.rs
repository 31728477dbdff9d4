//! Server-side named locks (`GET_LOCK`): what the plugin does one at a time
//! per billing database, across processes and hosts. One naming rule and
//! one guard for all of them; the guard releases its lock when dropped,
//! and the server releases it if the holder's connection dies.

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::Db;

/// What a lock guards. Named locks are server-wide, so every name carries
/// the database's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// A backup, restore or upload (`engine::jobs`).
    Job,
    /// A scheduler tick (`runner::scheduler`).
    Tick,
    /// An attempt of running operation `id` (`runner::attempt`).
    Operation(u64),
    /// The binary-log follower (`engine::jobs::follow`): one per database.
    Follow,
}

/// MariaDB and MySQL allow lock names of 64 characters.
const MAX_NAME: usize = 64;

impl LockKind {
    /// The lock's name for `database`: `billmgrops.<kind>.<database>[.<id>]`,
    /// or where that is longer than the server allows, the database's
    /// name hashed (FNV-1a: stable and short; a collision only shares a
    /// lock).
    pub fn name(self, database: &str) -> String {
        let (kind, id) = match self {
            LockKind::Job => ("backup", None),
            LockKind::Tick => ("cron", None),
            LockKind::Operation(id) => ("op", Some(id)),
            LockKind::Follow => ("follow", None),
        };
        let named = |database: &str| match id {
            Some(id) => format!("billmgrops.{kind}.{database}.{id}"),
            None => format!("billmgrops.{kind}.{database}"),
        };
        let name = named(database);
        if name.len() <= MAX_NAME {
            return name;
        }
        let hash = database.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        named(&format!("{hash:016x}"))
    }
}

/// A named lock, held; released when dropped.
pub struct NamedLock<'db> {
    db: &'db mut Db,
    name: String,
}

impl<'db> NamedLock<'db> {
    /// Takes the lock without waiting: `None` when another connection
    /// holds it.
    pub fn try_take(db: &'db mut Db, kind: LockKind) -> Result<Option<NamedLock<'db>>> {
        let name = kind.name(&db.name()?);
        let got: Option<Option<i64>> = db
            .conn()
            .exec_first("SELECT GET_LOCK(?, 0)", (&name,))
            .with_context(|| format!("failed to take lock {name}"))?;
        Ok((got.flatten() == Some(1)).then_some(NamedLock { db, name }))
    }

    /// The connection that holds the lock.
    pub fn db(&mut self) -> &mut Db {
        self.db
    }
}

impl Drop for NamedLock<'_> {
    fn drop(&mut self) {
        let _ = self
            .db
            .conn()
            .exec_drop("DO RELEASE_LOCK(?)", (&self.name,));
    }
}

/// Does any connection hold the lock?
pub fn is_held(db: &mut Db, kind: LockKind) -> Result<bool> {
    let name = kind.name(&db.name()?);
    let holder: Option<Option<i64>> = db
        .conn()
        .exec_first("SELECT IS_USED_LOCK(?)", (&name,))
        .with_context(|| format!("failed to check lock {name}"))?;
    Ok(holder.flatten().is_some())
}

#[cfg(test)]
mod tests {
    use super::LockKind;

    #[test]
    fn names_are_as_earlier_versions_wrote_them_where_they_fit() {
        // A process of an earlier version may hold one of these while an
        // upgrade runs: the names must not change.
        assert_eq!(LockKind::Job.name("billmgr"), "billmgrops.backup.billmgr");
        assert_eq!(LockKind::Tick.name("billmgr"), "billmgrops.cron.billmgr");
        assert_eq!(
            LockKind::Operation(42).name("billmgr"),
            "billmgrops.op.billmgr.42"
        );
    }

    #[test]
    fn long_database_names_are_hashed_to_fit_and_stay_apart() {
        for kind in [
            LockKind::Job,
            LockKind::Tick,
            LockKind::Operation(4_000_000_000),
        ] {
            let a = kind.name(&"d".repeat(64));
            let b = kind.name(&format!("{}e", "d".repeat(63)));
            assert!(a.len() <= 64, "{a}");
            // Truncating would have given both the same lock.
            assert_ne!(a, b);
            assert_eq!(a, kind.name(&"d".repeat(64)), "stable");
        }
        assert_ne!(
            LockKind::Job.name(&"d".repeat(64)),
            LockKind::Tick.name(&"d".repeat(64))
        );
    }
}
