//! A restore's staged tables, inside the billing database itself: the
//! panel's own account may create tables there and nowhere else.
//!
//! Table `i` of the copy is staged as `billmgrops_stage_<i>` (the plugin's
//! prefix: never in a copy, never taken for a live table), created from
//! its checked definition without its foreign keys, which are added once
//! it has its live name ([`super::keys`]). The staged tables are dropped
//! when the restore ends, however it ends; those of a killed restore by
//! the next one ([`super::kept::settle`]).

use anyhow::{Context, Result};
use mysql::Conn;

use super::definitions::{run_checked, Checked};
use super::kept::{drop_tables, STAGE_PREFIX};
use crate::engine::ddl::{split_foreign_keys, ForeignKey};

/// One table of the copy, staged.
pub(super) struct StagedTable {
    /// The copy's (and the live) name.
    pub name: String,
    /// The name it is loaded under.
    pub staged: String,
    /// Its foreign keys, added after the swap.
    pub foreign_keys: Vec<ForeignKey>,
    create: String,
}

/// Every table of a copy, staged.
pub(super) struct Staging {
    pub tables: Vec<StagedTable>,
}

impl Staging {
    /// Names and splits the checked tables.
    pub fn of(checked: &Checked) -> Result<Staging> {
        let tables = checked
            .tables
            .iter()
            .enumerate()
            .map(|(i, (name, create))| {
                let staged = format!("{STAGE_PREFIX}{i}");
                let split = split_foreign_keys(create, &staged)
                    .with_context(|| format!("the definition of table `{name}`"))?;
                Ok(StagedTable {
                    name: name.clone(),
                    staged,
                    foreign_keys: split.foreign_keys,
                    create: split.create,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Staging { tables })
    }

    /// The staged name of the copy's table `name`.
    pub fn staged_of(&self, name: &str) -> Option<String> {
        self.tables
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.staged.clone())
    }

    /// The copy's foreign keys, as (table, key).
    pub fn foreign_keys(&self) -> Vec<(String, ForeignKey)> {
        self.tables
            .iter()
            .flat_map(|t| t.foreign_keys.iter().map(|k| (t.name.clone(), k.clone())))
            .collect()
    }
}

/// Drops the staged tables when the restore ends, however it ends.
pub(super) struct StageGuard<'a> {
    pub conn: &'a mut Conn,
    tables: Vec<String>,
}

impl Drop for StageGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = drop_tables(self.conn, &self.tables) {
            log::warn!("cannot drop the staged tables: {e:#}");
        }
    }
}

/// Creates the staged tables in the connection's database; they are
/// dropped when the guard goes.
pub(super) fn create<'c>(control: &'c mut Conn, staging: &Staging) -> Result<StageGuard<'c>> {
    let guard = StageGuard {
        conn: control,
        tables: staging.tables.iter().map(|t| t.staged.clone()).collect(),
    };
    for t in &staging.tables {
        run_checked(guard.conn, &t.create)
            .with_context(|| format!("failed to stage table `{}`", t.name))?;
    }
    Ok(guard)
}
