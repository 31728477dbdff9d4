//! One attempt of one running operation.
//!
//! Runs in its own process (`billmgr-ops run-operation ID`), detached from
//! the panel call or cron tick that started it:
//!
//! 1. take the operation's lock without waiting (held: someone else runs
//!    it; this process does nothing);
//! 2. record the attempt as begun (`interrupted` until it ends);
//! 3. run `<mgrdir>/processing/<module> --command <intname> --item <item>
//!    --module <id> --runningoperation <id>` with the timeout;
//! 4. exit 0 and no `<error>` on stdout is success: the operation is
//!    removed; anything else is a failure, retried later, or made manual
//!    with a staff task after the last allowed attempt.

use std::cell::RefCell;

use anyhow::{Context, Result};

use super::backoff::retry_delay;
use super::process::{Ending, ModuleCommand, RunResult};
use crate::config::Config;
use crate::db::lock::{LockKind, NamedLock};
use crate::db::operations::{self, Operation};
use crate::db::runstate::{self, AttemptEnd, AttemptStart, ModuleErrorFields};
use crate::db::Db;
use crate::operation::{AttemptOutcome, Settled};
use crate::xml::Element;

/// What running an attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Another attempt of the operation holds its lock.
    Busy,
    /// The operation no longer exists.
    Gone,
    /// The mark this runner was started for is gone (put back by the
    /// scheduler, or taken by another runner since): nothing was run.
    Unclaimed,
    /// The attempt ran; this is what became of the operation.
    Settled(Settled),
}

/// The error a module reported on stdout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModuleError {
    pub kind: String,
    pub object: String,
    pub value: String,
    pub message: String,
}

/// Finds the module's `<error>` in its stdout, in any of the shapes vendor
/// modules print: `<doc><error type= object=><param name="value">..`,
/// `<error value=..>`, or the C++ base's `<processingmodule><error>`.
pub fn module_error(stdout: &str) -> Option<ModuleError> {
    let doc = Element::parse(stdout.trim()).ok()?;
    fn find(e: &Element) -> Option<&Element> {
        if e.name == "error" {
            return Some(e);
        }
        e.elements().find_map(find)
    }
    let err = find(&doc)?;
    let param = |name: &str| {
        err.find_all("param")
            .find(|p| p.get_attr("name") == Some(name))
            .map(|p| p.text_content())
    };
    let message = err
        .find("msg")
        .map(|m| m.text_content())
        .or_else(|| param("error"))
        .or_else(|| param("desc"))
        .or_else(|| Some(err.text_content().trim().to_string()).filter(|t| !t.is_empty()))
        .unwrap_or_default();
    Some(ModuleError {
        kind: err.get_attr("type").unwrap_or("error").to_string(),
        object: err.get_attr("object").unwrap_or_default().to_string(),
        value: err
            .get_attr("value")
            .map(str::to_string)
            .or_else(|| param("value"))
            .unwrap_or_default(),
        message,
    })
}

/// A module name from the database, accepted only as a plain file name.
fn safe_module_name(name: &str) -> Option<&str> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    ok.then_some(name)
}

/// The command of an attempt, or why there is none.
pub fn command_for(config: &Config, op: &Operation) -> Result<ModuleCommand, String> {
    let (module_id, module) = op
        .module
        .as_ref()
        .ok_or_else(|| "the operation's service has no processing module".to_string())?;
    let name = safe_module_name(module)
        .ok_or_else(|| format!("processing module name {module:?} is not a plain file name"))?;
    Ok(ModuleCommand {
        program: config.mgrdir.join("processing").join(name),
        args: vec![
            "--command".into(),
            op.intname.clone(),
            "--item".into(),
            op.item.to_string(),
            "--module".into(),
            module_id.to_string(),
            "--runningoperation".into(),
            op.id.to_string(),
        ],
    })
}

/// Runs one attempt of operation `id` to its end; `claim` is the token of
/// the mark the runner was started for (`None`: run by hand).
pub fn run(config: &Config, mut db: Db, id: u64, claim: Option<&str>) -> Result<Outcome> {
    let Some(mut held) = NamedLock::try_take(&mut db, LockKind::Operation(id))? else {
        log::info!("operation {id} is already being run elsewhere; nothing to do");
        return Ok(Outcome::Busy);
    };
    run_locked(config, held.db(), id, claim)
}

fn run_locked(config: &Config, db: &mut Db, id: u64, claim: Option<&str>) -> Result<Outcome> {
    let Some(op) = operations::get(db, id)? else {
        log::info!("operation {id} no longer exists");
        return Ok(Outcome::Gone);
    };
    let command = command_for(config, &op);
    let shown = match &command {
        Ok(c) => c.to_string(),
        Err(why) => format!("(none: {why})"),
    };
    let attempt = runstate::begin(
        db,
        &AttemptStart {
            operation: id,
            item: op.item,
            task: op.task,
            intname: &op.intname,
            command: &shown,
            runner: &super::runner_id(),
            claim,
        },
    )?;
    let Some(attempt) = attempt else {
        log::info!("operation {id}: the mark this runner was started for is gone; nothing to do");
        return Ok(Outcome::Unclaimed);
    };
    log::info!("operation {id}: attempt {attempt}: {shown}");
    let result = match &command {
        Ok(c) => {
            let db_cell = RefCell::new(&mut *db);
            c.run(
                config.runner.timeout,
                config.runner.output_limit,
                |pgid| {
                    if let Err(e) = runstate::set_pgid(&mut db_cell.borrow_mut(), id, pgid) {
                        log::warn!("operation {id}: {e:#}");
                    }
                },
                || runstate::stop_requested(&mut db_cell.borrow_mut(), id).unwrap_or(false),
            )
        }
        Err(why) => RunResult {
            ending: Ending::NotStarted(why.clone()),
            duration: Default::default(),
            stdout: Default::default(),
            stderr: Default::default(),
        },
    };
    record(config, db, &op, attempt, &result)
}

/// Records what the attempt came to, and what became of the operation.
fn record(
    config: &Config,
    db: &mut Db,
    op: &Operation,
    attempt: u64,
    result: &RunResult,
) -> Result<Outcome> {
    let stdout = result.stdout.text();
    let stderr = result.stderr.text();
    // An error the module reported through the panel API during the
    // attempt counts as one printed on stdout (vendor modules do both).
    let via_api = crate::db::reports::reported(db, attempt)?;
    let reported = module_error(&stdout).or_else(|| {
        via_api.as_deref().map(|doc| {
            module_error(doc).unwrap_or_else(|| ModuleError {
                kind: "error".into(),
                object: "processingmodule".into(),
                value: String::new(),
                message: "the module reported an error through runningoperation.edit".into(),
            })
        })
    });
    let outcome = match (&result.ending, &reported) {
        (Ending::Stopped, _) => AttemptOutcome::Stopped,
        (Ending::TimedOut, _) => AttemptOutcome::Timeout,
        (_, None) if result.exited_ok() => AttemptOutcome::Ok,
        _ => AttemptOutcome::Error,
    };
    // What the operation's errorxml and the attempt's error say.
    let error = match (&reported, outcome) {
        (_, AttemptOutcome::Ok) => None,
        (Some(e), _) => Some(e.clone()),
        (None, AttemptOutcome::Timeout) => Some(ModuleError {
            kind: "timeout".into(),
            object: "processingmodule".into(),
            value: format!("{}s", config.runner.timeout.as_secs()),
            message: format!(
                "the module did not finish within {}s and was stopped",
                config.runner.timeout.as_secs()
            ),
        }),
        (None, AttemptOutcome::Stopped) => Some(ModuleError {
            kind: "stopped".into(),
            object: "runningoperation".into(),
            value: op.id.to_string(),
            message: "stopped by an administrator".into(),
        }),
        (None, _) => Some(ModuleError {
            kind: match result.ending {
                Ending::NotStarted(_) => "nostart".into(),
                _ => "exit".into(),
            },
            object: "processingmodule".into(),
            value: result.ending_text(),
            message: match &result.ending {
                Ending::NotStarted(why) => format!("the module could not be started: {why}"),
                _ => format!("the module failed ({})", result.ending_text()),
            },
        }),
    };
    let errorxml = match (&reported, &error) {
        (Some(_), _) if via_api.is_some() && module_error(&stdout).is_none() => {
            via_api.clone().unwrap_or_default()
        }
        (Some(_), _) => stdout.trim().to_string(),
        (None, Some(e)) => Element::new("doc")
            .child(
                Element::new("error")
                    .attr("type", e.kind.as_str())
                    .attr("object", e.object.as_str())
                    .child(
                        Element::new("param")
                            .attr("name", "value")
                            .text(e.value.as_str()),
                    )
                    .child(Element::new("msg").text(e.message.as_str())),
            )
            .to_document(),
        (None, None) => String::new(),
    };
    let tries = op.trycount + 1;
    let delay = retry_delay(
        tries,
        config.runner.retry_delay,
        config.runner.retry_delay_max,
    );
    let settled = runstate::finish(
        db,
        &AttemptEnd {
            attempt,
            operation: op.id,
            duration_ms: result.duration.as_millis() as u64,
            exit_status: &result.ending_text(),
            outcome,
            error: error.as_ref().map(|e| ModuleErrorFields {
                kind: &e.kind,
                object: &e.object,
                value: &e.value,
                message: &e.message,
            }),
            stdout: &stdout,
            stderr: &stderr,
            errorxml: &errorxml,
            retry_in: delay.as_secs(),
            max_attempts: config.runner.max_attempts,
            manual_before: op.manual,
        },
    )
    .with_context(|| format!("failed to record attempt {attempt} of operation {}", op.id))?;
    match settled {
        Settled::Finished => log::info!("operation {}: done, removed", op.id),
        Settled::WillRetry => log::warn!(
            "operation {} failed ({}): retry in {}s",
            op.id,
            result.ending_text(),
            delay.as_secs()
        ),
        Settled::TurnedManual => {
            let note = format!(
                "Automatic processing failed {tries} times; the last error: {}",
                error.as_ref().map(|e| e.message.as_str()).unwrap_or("")
            );
            // The attempt is recorded either way; a panel that makes no
            // task leaves the operation manual, as `status` shows.
            match super::tasks::open_tasks(config, db, &[op.id], &note) {
                Ok(tasks) => log::error!(
                    "operation {} failed {tries} times and turned manual; staff task {tasks:?}",
                    op.id
                ),
                Err(e) => log::error!(
                    "operation {} failed {tries} times and turned manual; no staff task: {e:#}",
                    op.id
                ),
            }
        }
        Settled::Stopped => log::warn!("operation {}: stopped by an administrator", op.id),
        Settled::ManualByModule => {
            // The module made it manual itself (`runningoperation.setmanual`)
            // and makes its own staff task: none is added here.
            log::error!(
                "operation {} failed and its module switched it to manual",
                op.id
            );
        }
    }
    Ok(Outcome::Settled(settled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_errors_in_every_vendor_shape() {
        let e = module_error(
            r#"<doc><error type="auth" object="vm"><param name="value">u</param></error></doc>"#,
        )
        .unwrap();
        assert_eq!(
            (e.kind.as_str(), e.object.as_str(), e.value.as_str()),
            ("auth", "vm", "u")
        );
        let e = module_error(r#"<?xml version="1.0"?><doc><processingmodule id="2"><error type="client" object="bad_response" value="https://x"><param name="error" type="msg">No route</param></error></processingmodule></doc>"#).unwrap();
        assert_eq!(
            (e.kind.as_str(), e.value.as_str(), e.message.as_str()),
            ("client", "https://x", "No route")
        );
        let e = module_error(r#"<doc><error type="exists" object="user" lang="en"><msg>User exists</msg></error></doc>"#).unwrap();
        assert_eq!(e.message, "User exists");
        assert!(module_error("<doc><ok/></doc>").is_none());
        assert!(module_error("").is_none());
        assert!(module_error("Traceback (most recent call last): ...").is_none());
    }

    #[test]
    fn module_names_are_plain_file_names() {
        assert_eq!(safe_module_name("pmvmmanager6"), Some("pmvmmanager6"));
        for bad in ["", "../bin/sh", ".hidden", "a/b", "pm x"] {
            assert_eq!(safe_module_name(bad), None, "{bad}");
        }
    }
}
