//! `runningoperation` and its family: the queue of service operations that
//! processing modules perform.

use anyhow::Result;

use super::{db_page, sort_keys};
use crate::context::Ctx;
use crate::db::operations::{self, OperationRow, ATTEMPT_SORTS, OPERATION_SORTS};
use crate::protocol::{messages, Lang, ListPage, PanelError, Reply, Request, Row};

/// `runningoperation`: the list, paged and sorted in SQL.
pub fn list(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let paging = req.paging(&sort_keys(OPERATION_SORTS))?;
    let (rows, total) = operations::list(ctx.db()?, &db_page(&paging))?;
    let lang = req.lang();
    Ok(Reply::List(ListPage {
        rows: rows.into_iter().map(|r| operation_row(r, lang)).collect(),
        total,
        paging,
    }))
}

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

/// "Open: vds1017.example.com", with the operation type in the user's language.
fn description(row: &OperationRow, lang: Lang) -> String {
    let op = messages::message(lang, "runningoperation", &format!("op_{}", row.intname))
        .map(str::to_string)
        .unwrap_or_else(|| row.intname.clone());
    match (row.item_name.is_empty(), row.item.is_empty()) {
        (false, _) => format!("{op}: {}", row.item_name),
        (true, false) => format!("{op}: #{}", row.item),
        (true, true) => op,
    }
}

fn operation_row(row: OperationRow, lang: Lang) -> Row {
    let color = match row.status.as_str() {
        "error" => Some("red"),
        "run" => Some("green"),
        "stopped" => Some("yellow"),
        _ => None,
    };
    let desc = description(&row, lang);
    let status = format!("status_{}", row.status);
    Row {
        color,
        ..Row::default()
    }
    .cell("id", row.id)
    .cell("desc", desc)
    .cell("item", row.item)
    .cell("itemtype", row.itemtype)
    .cell("client", row.client)
    .cell("cdate", row.cdate)
    .cell("trycount", row.trycount)
    .cell("processingmodule", row.processingmodule)
    .cell("task", row.task)
    .cell("status", status)
}
