//! Staff tasks for running operations, made by the panel itself, as
//! vendor modules make them (../shared/reference/real-host.md §4): never
//! by writing the panel's `task` table.
//!
//! - Installed as a companion, BILLmanager's own `runningoperation` is
//!   there: its `runningoperation.taskcreate elid=<ro>` makes the task.
//! - Otherwise (replace mode: that name is this plugin's own function, and
//!   calling it would call ourselves) the task type comes from
//!   `task.gettype operation=<command> item=<service>` and
//!   `task.edit sok=ok item= runningoperation= type= params=` creates it,
//!   as ISPsystem's PHP and Python module libraries do. An operation whose
//!   command has no task type gets none.
//!
//! Like vendor code, an operation that has a task already (any task naming
//! it) gets no second one. The new task is found by SQL afterwards.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::{Config, InstallMode};
use crate::db::operations;
use crate::db::Db;

/// How long one panel call may take.
const PANEL_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks the panel for a staff task for each of `ids` that has none; returns
/// the tasks made. `note` goes with the task where the panel takes one.
pub fn open_tasks(config: &Config, db: &mut Db, ids: &[u64], note: &str) -> Result<Vec<u64>> {
    let mut made = Vec::new();
    for &id in ids {
        if operations::task_of(db, id)?.is_some() {
            continue;
        }
        let Some(op) = operations::get(db, id)? else {
            continue;
        };
        let id_text = id.to_string();
        if config.install_mode() == Some(InstallMode::Companion) {
            crate::mgrctl::call(
                &config.mgrdir,
                "runningoperation.taskcreate",
                &[("elid", &id_text), ("sok", "ok")],
                PANEL_TIMEOUT,
            )
            .with_context(|| format!("the panel made no task for operation {id}"))?;
        } else {
            let item = op.item.to_string();
            let answer = crate::mgrctl::call(
                &config.mgrdir,
                "task.gettype",
                &[("operation", &op.intname), ("item", &item)],
                PANEL_TIMEOUT,
            )
            .with_context(|| format!("no task type for operation {id}"))?;
            let task_type = answer
                .find("task_type")
                .map(|t| t.text_content().trim().to_string())
                .unwrap_or_default();
            if task_type.is_empty() {
                log::warn!(
                    "operation {id}: the panel has no task type for `{}`; no task",
                    op.intname
                );
                continue;
            }
            crate::mgrctl::call(
                &config.mgrdir,
                "task.edit",
                &[
                    ("sok", "ok"),
                    ("item", &item),
                    ("runningoperation", &id_text),
                    ("type", &task_type),
                    ("params", note),
                ],
                PANEL_TIMEOUT,
            )
            .with_context(|| format!("the panel made no task for operation {id}"))?;
        }
        let task = operations::task_of(db, id)?
            .with_context(|| format!("the panel answered, but operation {id} has no task"))?;
        made.push(task);
    }
    Ok(made)
}
