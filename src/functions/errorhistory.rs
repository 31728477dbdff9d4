//! `runningoperation.errorhistory` and `errorhistory.showlog`: the attempts
//! of an operation, and one attempt in full.

use anyhow::Result;

use super::{db_page, label, sort_keys};
use crate::context::Ctx;
use crate::db::operations::{self, ATTEMPT_SORTS};
use crate::protocol::{Form, ListPage, PanelError, Reply, Request, Row};

/// `runningoperation.errorhistory`: the attempts of one operation, newest
/// first. The operation comes as `elid` (opened from the list) or `plid`.
pub fn errorhistory(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let operation = if req.param("elid").is_none() && req.param("plid").is_some() {
        req.id("plid")?
    } else {
        req.elid()?
    };
    let paging = req.paging(&sort_keys(ATTEMPT_SORTS))?;
    let db = ctx.db()?;
    let (rows, total) = operations::history(db, operation, &db_page(&paging))?;
    // History outlives its operation; only an id with neither is unknown.
    if total == 0 && !operations::exists(db, operation)? {
        return Err(PanelError::missed("runningoperation", operation).into());
    }
    Ok(Reply::List(ListPage {
        rows: rows
            .into_iter()
            .map(|r| {
                Row::default()
                    .cell("id", r.id)
                    .cell("createdate", r.createdate)
                    .cell("item", r.item)
                    .cell("task", r.task)
            })
            .collect(),
        total,
        paging,
    }))
}

/// `errorhistory.showlog`: one attempt: when, how long, the command line,
/// how it ended, the module's error and its output.
pub fn showlog(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let id = req.elid()?;
    let db = ctx.db()?;
    let a = operations::attempt(db, id)?.ok_or_else(|| PanelError::missed("attempt", id))?;
    let reported = crate::db::reports::reported(db, id)?.unwrap_or_default();
    let duration = a
        .duration_ms
        .parse::<f64>()
        .map(|ms| format!("{:.1} s", ms / 1000.0))
        .unwrap_or_default();
    let outcome = label(
        req.lang(),
        "errorhistory.showlog",
        &format!("outcome_{}", a.outcome),
    );
    Ok(Reply::Form(Form {
        values: vec![
            ("id", a.id.to_string()),
            ("runningoperation", a.runningoperation.to_string()),
            ("createdate", a.createdate),
            ("duration", duration),
            ("command", a.command),
            ("exit_status", a.exit_status),
            ("outcome", outcome),
            ("error_type", a.error_type),
            ("error_object", a.error_object),
            ("error_value", a.error_value),
            ("error_msg", a.error_msg),
            ("reported", reported),
            ("stdout", a.stdout),
            ("stderr", a.stderr),
        ],
        slists: Vec::new(),
    }))
}
