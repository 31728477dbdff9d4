//! `runningoperation` and its actions: the queue of service operations that
//! processing modules perform. The work is done by `runner` and `db`; each
//! handler reads its request, checks every id before changing anything, and
//! calls one of them.

use anyhow::Result;

use super::{db_page, label, sort_keys};
use crate::context::Ctx;
use crate::db::filter;
use crate::db::operations::{
    self, OperationFields, OperationRow, OPERATION_SORTS, OPERATION_TYPES,
};
use crate::db::runstate::Marker;
use crate::operation::{Manual, State};
use crate::protocol::{
    ErrorKind, Form, Lang, ListPage, Mode, PanelError, RedirectKind, Reply, Request, Row, Slist,
};
use crate::runner::{ask, control, tasks};

/// The longest staff comment.
const COMMENT_MAX: usize = 4096;

/// `runningoperation`: the list, filtered for this administrator, paged and
/// sorted in SQL.
pub fn list(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let paging = req.paging(&sort_keys(OPERATION_SORTS))?;
    let user = req.user().unwrap_or_default().to_string();
    let db = ctx.db()?;
    let filter = filter::load(db, &user)?;
    let (rows, total) = operations::list(db, &filter, &db_page(&paging))?;
    let lang = req.lang();
    Ok(Reply::List(ListPage {
        rows: rows.into_iter().map(|r| operation_row(r, lang)).collect(),
        total,
        paging,
    }))
}

/// The operation types with their names in the user's language.
pub fn type_options(lang: Lang) -> Vec<(String, String)> {
    OPERATION_TYPES
        .iter()
        .map(|t| {
            (
                t.to_string(),
                label(lang, "runningoperation", &format!("op_{t}")),
            )
        })
        .collect()
}

fn on_off_options(lang: Lang) -> Vec<(String, String)> {
    ["off", "on"]
        .iter()
        .map(|v| {
            (
                v.to_string(),
                label(lang, "runningoperation", &format!("manual_{v}")),
            )
        })
        .collect()
}

/// The form's fields as the request carries them, checked.
fn submitted_fields(req: &Request) -> Result<OperationFields, PanelError> {
    let intname = req.required("intname")?;
    if !OPERATION_TYPES.contains(&intname) {
        return Err(PanelError::value("intname", intname));
    }
    Ok(OperationFields {
        intname: intname.to_string(),
        item: req.id("item")?,
        trycount: req.number("trycount", 0, 1_000)?.unwrap_or(0) as u32,
        manual: Manual::from_bool(req.choice("manual", &["on", "off"])? == Some("on")),
        comment: req.text("comment", COMMENT_MAX)?.to_string(),
    })
}

/// `runningoperation.edit`: view, create and edit one operation.
pub fn edit(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let lang = req.lang();
    let slists = vec![
        Slist {
            name: "intname",
            options: type_options(lang),
        },
        Slist {
            name: "manual",
            options: on_off_options(lang),
        },
    ];
    match req.mode() {
        Mode::View => {
            let values = match req.param("elid") {
                None => vec![("trycount", "0".into()), ("manual", "off".into())],
                Some(_) => {
                    let id = req.elid()?;
                    let op = operations::get(ctx.db()?, id)?
                        .ok_or_else(|| PanelError::missed("runningoperation", id))?;
                    vec![
                        ("intname", op.intname),
                        ("item", op.item.to_string()),
                        ("trycount", op.trycount.to_string()),
                        ("cdate", op.cdate),
                        ("manual", op.manual.as_str().into()),
                        ("comment", op.comment),
                    ]
                }
            };
            Ok(Reply::Form(Form { values, slists }))
        }
        Mode::SetValues => {
            let values = ["intname", "item", "trycount", "manual", "comment"]
                .iter()
                .map(|f| (*f, req.param(f).unwrap_or_default().to_string()))
                .collect();
            Ok(Reply::Form(Form { values, slists }))
        }
        Mode::SubmitNew => {
            let fields = submitted_fields(req)?;
            let db = ctx.db()?;
            if !operations::item_exists(db, fields.item)? {
                return Err(PanelError::missed("item", fields.item).into());
            }
            let id = operations::create(db, &fields)?;
            log::info!(
                "created operation {id} ({} of service {})",
                fields.intname,
                fields.item
            );
            Ok(Reply::Ok)
        }
        Mode::SubmitEdit if req.param("intname").is_none() => {
            // Not the form: a processing module (or the panel) setting
            // some fields through the API, most often `errorxml`.
            report(req, ctx, req.elid()?)
        }
        Mode::SubmitEdit => {
            let id = req.elid()?;
            let fields = submitted_fields(req)?;
            let db = ctx.db()?;
            if !operations::exists(db, id)? {
                return Err(PanelError::missed("runningoperation", id).into());
            }
            if !operations::item_exists(db, fields.item)? {
                return Err(PanelError::missed("item", fields.item).into());
            }
            if control::first_running(db, &[id])?.is_some() {
                return Err(PanelError::new(
                    ErrorKind::Running,
                    "runningoperation",
                    id.to_string(),
                )
                .into());
            }
            operations::update(db, id, &fields)?;
            Ok(Reply::Ok)
        }
    }
}

/// `runningoperation.edit sok=ok elid=ID errorxml=...` as every processing
/// module calls it on failure (and `manual=on|off`, `comment=` as some
/// do): the error goes on the operation and the attempt in progress; the
/// fields given are set; nothing else is demanded, and fields this plugin
/// does not keep are accepted and left alone. Allowed while the operation
/// runs: that is when its module reports.
fn report(req: &Request, ctx: &mut Ctx<'_>, id: u64) -> Result<Reply> {
    let errorxml = req.param("errorxml").unwrap_or_default().trim().to_string();
    let manual = req.choice("manual", &["on", "off"])?;
    let comment = match req.param("comment") {
        Some(_) => Some(req.text("comment", COMMENT_MAX)?.to_string()),
        None => None,
    };
    let db = ctx.db()?;
    if !operations::exists(db, id)? {
        return Err(PanelError::missed("runningoperation", id).into());
    }
    if !errorxml.is_empty() {
        let error = crate::runner::attempt::module_error(&errorxml).unwrap_or_else(|| {
            crate::runner::attempt::ModuleError {
                kind: "error".into(),
                object: "processingmodule".into(),
                value: String::new(),
                message: errorxml.chars().take(1000).collect(),
            }
        });
        crate::db::reports::report_error(
            db,
            id,
            &errorxml,
            &crate::db::runstate::ModuleErrorFields {
                kind: &error.kind,
                object: &error.object,
                value: &error.value,
                message: &error.message,
            },
        )?;
        log::warn!(
            "operation {id}: its module reported an error ({}: {})",
            error.kind,
            error.message
        );
    }
    match manual {
        Some("on") => crate::db::runstate::make_manual(db, &[id], false)?,
        Some(_) => operations::set_automatic(db, id)?,
        None => {}
    }
    if let Some(comment) = comment {
        operations::set_comment(db, id, &comment)?;
    }
    Ok(Reply::Ok)
}

/// `runningoperation.setmanual`: no more automatic attempts (vendor
/// modules call it after their last failure, then open a staff task).
pub fn setmanual(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let ids = existing_ids(req, ctx)?;
    crate::db::runstate::make_manual(ctx.db()?, &ids, false)?;
    log::info!("operations {ids:?} switched to manual by {}", req.actor());
    Ok(Reply::Ok)
}

/// The ids of a group action, all of them existing.
fn existing_ids(req: &Request, ctx: &mut Ctx<'_>) -> Result<Vec<u64>> {
    let ids = req.elids()?;
    if let Some(missing) = operations::first_missing(ctx.db()?, &ids)? {
        return Err(PanelError::missed("runningoperation", missing).into());
    }
    Ok(ids)
}

/// `runningoperation.start`: run now, in the background.
pub fn start(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let ids = existing_ids(req, ctx)?;
    let config = ctx.config;
    if !config.runs_modules() {
        // Companion mode: BILLmanager's own scheduler runs these; starting
        // one here as well could run it twice.
        return Err(
            PanelError::new(ErrorKind::CoreRuns, "runningoperation", ids[0].to_string()).into(),
        );
    }
    let db = ctx.db()?;
    if let Some(id) = control::first_running(db, &ids)? {
        return Err(PanelError::new(ErrorKind::Running, "runningoperation", id.to_string()).into());
    }
    control::start(config, db, &ids, Marker::Panel)?;
    log::info!("started operations {ids:?} by {}", req.actor());
    Ok(Reply::Ok)
}

/// `runningoperation.stop`: end running attempts; all turn manual.
pub fn stop(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let ids = existing_ids(req, ctx)?;
    control::stop(ctx.db()?, &ids)?;
    log::info!("stopped operations {ids:?} by {}", req.actor());
    Ok(Reply::Ok)
}

/// `runningoperation.delete`: remove (stopping running ones first).
pub fn delete(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let ids = existing_ids(req, ctx)?;
    control::delete(ctx.db()?, &ids)?;
    log::info!("deleted operations {ids:?} by {}", req.actor());
    Ok(Reply::Ok)
}

/// `runningoperation.taskcreate`: a staff task for each operation without
/// one, made by the panel (`runner::tasks`).
pub fn taskcreate(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let ids = existing_ids(req, ctx)?;
    let note = format!(
        "Created from the running operations list by {}",
        req.user().unwrap_or("an administrator")
    );
    let config = ctx.config;
    let tasks = tasks::open_tasks(config, ctx.db()?, &ids, &note)?;
    log::info!("tasks {tasks:?} for operations {ids:?}");
    Ok(Reply::Ok)
}

/// `runningoperationgotoserver`: to the control panel of the operation's server.
pub fn gotoserver(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let id = req.elid()?;
    let config = ctx.config;
    let db = ctx.db()?;
    let op = operations::get(db, id)?.ok_or_else(|| PanelError::missed("runningoperation", id))?;
    match ask::control_panel_url(config, db, &op)? {
        Some(url) => Ok(Reply::Redirect(RedirectKind::Blank, url)),
        None => {
            Err(PanelError::new(ErrorKind::NoServer, "runningoperation", id.to_string()).into())
        }
    }
}

/// `runningoperation.su`: into the panel as the client who owns the service.
pub fn su(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let id = req.elid()?;
    let db = ctx.db()?;
    let op = operations::get(db, id)?.ok_or_else(|| PanelError::missed("runningoperation", id))?;
    let user = match op.account {
        Some(account) => operations::account_user(db, account)?,
        None => None,
    };
    match user {
        Some(name) => Ok(Reply::Redirect(
            RedirectKind::Top,
            format!("func=su&elid={}", url_encode(&name)),
        )),
        None => Err(PanelError::new(ErrorKind::NoUser, "runningoperation", id.to_string()).into()),
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// "Open: vds1017.example.com", with the operation type in the user's language.
fn description(row: &OperationRow, lang: Lang) -> String {
    let op = label(lang, "runningoperation", &format!("op_{}", row.intname));
    let op = if op.starts_with("op_") {
        row.intname.clone()
    } else {
        op
    };
    match (row.item_name.is_empty(), row.item.is_empty()) {
        (false, _) => format!("{op}: {}", row.item_name),
        (true, false) => format!("{op}: #{}", row.item),
        (true, true) => op,
    }
}

fn operation_row(row: OperationRow, lang: Lang) -> Row {
    let color = match row.status {
        State::Error => Some("red"),
        State::Run => Some("green"),
        State::Stopped => Some("yellow"),
        State::Wait => None,
    };
    let desc = description(&row, lang);
    let status = format!("status_{}", row.status);
    let manual = format!("manual_{}", row.manual.as_str());
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
    .cell("manual", manual)
}

#[cfg(test)]
mod tests {
    use super::url_encode;

    #[test]
    fn su_target_is_encoded() {
        assert_eq!(url_encode("client1_0"), "client1_0");
        assert_eq!(url_encode("a&b=c d"), "a%26b%3Dc%20d");
    }
}
