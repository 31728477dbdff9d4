//! `runningoperation.filter` and `runningoperation.setfilter`: the list
//! filter, kept per administrator until reset.

use anyhow::Result;

use super::label;
use super::runningoperation::type_options;
use crate::context::Ctx;
use crate::db::filter::{self, OperationFilter};
use crate::db::operations::{self, OPERATION_TYPES, STATUSES};
use crate::protocol::{Form, Mode, PanelError, RedirectKind, Reply, Request, Slist};

/// The filter as the form submits it, checked.
fn submitted(req: &Request) -> Result<OperationFilter, PanelError> {
    let text = |v: &str| Some(v.to_string()).filter(|s| !s.is_empty());
    Ok(OperationFilter {
        status: req.choice("status", STATUSES)?.map(str::to_string),
        intname: req.choice("intname", OPERATION_TYPES)?.map(str::to_string),
        client: text(req.text("client", 255)?.trim()),
        item: req.opt_id("item")?,
        itemtype: req.opt_id("itemtype")?,
        processingmodule: req.opt_id("processingmodule")?,
        cdate_from: req.date("cdate_from")?.map(str::to_string),
        cdate_to: req.date("cdate_to")?.map(str::to_string),
        manual: req.choice("manual", &["on", "off"])?.map(str::to_string),
    })
}

fn with_any(
    lang: crate::protocol::Lang,
    mut options: Vec<(String, String)>,
) -> Vec<(String, String)> {
    options.insert(
        0,
        (String::new(), label(lang, "runningoperation.filter", "any")),
    );
    options
}

/// `runningoperation.filter`: show, set or reset the filter.
pub fn filter(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let user = req.user().unwrap_or_default().to_string();
    let lang = req.lang();
    match req.mode() {
        Mode::SubmitNew | Mode::SubmitEdit => {
            let reset =
                req.param("clicked_button") == Some("reset") || req.param("reset") == Some("on");
            let f = if reset {
                OperationFilter::default()
            } else {
                submitted(req)?
            };
            filter::save(ctx.db()?, &user, &f)?;
            Ok(Reply::Ok)
        }
        Mode::View | Mode::SetValues => {
            let db = ctx.db()?;
            let f = filter::load(db, &user)?;
            let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
            let values = vec![
                ("status", f.status.clone().unwrap_or_default()),
                ("intname", f.intname.clone().unwrap_or_default()),
                ("client", f.client.clone().unwrap_or_default()),
                ("item", opt(f.item)),
                ("itemtype", opt(f.itemtype)),
                ("processingmodule", opt(f.processingmodule)),
                ("cdate_from", f.cdate_from.clone().unwrap_or_default()),
                ("cdate_to", f.cdate_to.clone().unwrap_or_default()),
                ("manual", f.manual.clone().unwrap_or_default()),
            ];
            let statuses = STATUSES
                .iter()
                .map(|s| {
                    (
                        s.to_string(),
                        label(lang, "runningoperation", &format!("status_{s}")),
                    )
                })
                .collect();
            let manual = ["on", "off"]
                .iter()
                .map(|s| {
                    (
                        s.to_string(),
                        label(lang, "runningoperation", &format!("manual_{s}")),
                    )
                })
                .collect();
            let slists = vec![
                Slist {
                    name: "status",
                    options: with_any(lang, statuses),
                },
                Slist {
                    name: "intname",
                    options: with_any(lang, type_options(lang)),
                },
                Slist {
                    name: "itemtype",
                    options: with_any(lang, operations::choices(db, "itemtype")?),
                },
                Slist {
                    name: "processingmodule",
                    options: with_any(lang, operations::choices(db, "processingmodule")?),
                },
                Slist {
                    name: "manual",
                    options: with_any(lang, manual),
                },
            ];
            Ok(Reply::Form(Form { values, slists }))
        }
    }
}

/// `runningoperation.setfilter`: show only the operations of one client
/// (`elid` = the account id), then go to the list.
pub fn setfilter(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let account = req.elid()?;
    let user = req.user().unwrap_or_default().to_string();
    let db = ctx.db()?;
    if !operations::account_exists(db, account)? {
        return Err(PanelError::missed("account", account).into());
    }
    let f = OperationFilter {
        client: Some(account.to_string()),
        ..OperationFilter::default()
    };
    filter::save(db, &user, &f)?;
    Ok(Reply::Redirect(
        RedirectKind::List,
        "func=runningoperation".into(),
    ))
}
