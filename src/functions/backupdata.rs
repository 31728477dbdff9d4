//! `backupdata` and `backupdata.names`: what the copies hold, by kind
//! (clients, users, services, payments, files) and by object, across every
//! good copy, from the catalog's index of their listings (no archive is
//! opened). The kinds are defined in `engine::objects`.

use anyhow::Result;

use super::{db_page, label, sort_keys};
use crate::context::Ctx;
use crate::db::backups::{self, OBJECT_SORTS};
use crate::engine::objects;
use crate::protocol::{ListPage, PanelError, Reply, Request, Row};

const SECTION: &str = "backupdata";

/// `backupdata`: the kinds of saved data.
pub fn list(req: &Request, _ctx: &mut Ctx<'_>) -> Result<Reply> {
    let rows: Vec<Row> = objects::kinds()
        .map(|kind| {
            Row::default()
                .cell("id", kind)
                .cell("type", label(req.lang(), SECTION, &format!("type_{kind}")))
        })
        .collect();
    Ok(Reply::List(ListPage {
        total: rows.len() as u64,
        rows,
        paging: req.paging(&[])?,
    }))
}

/// `backupdata.names`: the objects of one kind (`plid`, or `elid` when
/// opened from the kinds) in any good copy: name, owning client, in how
/// many copies and the newest; `search` narrows by name or owner.
pub fn names(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let kinds: Vec<&str> = objects::kinds().collect();
    let field = if req.param("plid").is_some() {
        "plid"
    } else {
        "elid"
    };
    let kind = req
        .choice(field, &kinds)?
        .ok_or_else(|| PanelError::empty("plid"))?;
    let search = req.text("search", 255)?.trim().to_string();
    let paging = req.paging(&sort_keys(OBJECT_SORTS))?;
    let (rows, total) = backups::objects_page(ctx.db()?, kind, &search, &db_page(&paging))?;
    Ok(Reply::List(ListPage {
        rows: rows
            .into_iter()
            .map(|o| {
                Row::default()
                    .cell("id", o.key)
                    .cell("name", o.name)
                    .cell("owner", o.owner)
                    .cell("versions", o.versions.to_string())
                    .cell("latest", o.latest)
            })
            .collect(),
        total,
        paging,
    }))
}
