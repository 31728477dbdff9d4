//! `backupdata` and `backupdata.names`: what the copies hold, by kind
//! (clients, users, services, payments, files) and by object, across every
//! good copy, from the catalog's index of their listings (no archive is
//! opened). The kinds are defined in `engine::objects`.

use anyhow::Result;

use super::{db_page, label, sort_keys};
use crate::context::Ctx;
use crate::db::backups::{self, OBJECT_SORTS};
use crate::engine::jobs;
use crate::engine::objects;
use crate::engine::restore::Behavior;
use crate::protocol::{ErrorKind, Form, ListPage, Mode, PanelError, Reply, Request, Row, Slist};

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
    let (rows, total) = backups::objects_page(ctx.db()?, kind, &search, None, &db_page(&paging))?;
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

/// `backupdata.restore`: objects `elid` (", "-separated ids) of kind
/// `plid` from the copy chosen as `version` (the form offers exactly the
/// copies that hold them all), `skip` or `edit`; with what depends on them
/// and what they need, in one transaction (see `engine::object_restore`).
pub fn restore(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    const FORM: &str = "backupdata.restore";
    let kinds: Vec<&str> = objects::TABLE_KINDS.iter().map(|k| k.kind).collect();
    let kind = req
        .choice("plid", &kinds)?
        .ok_or_else(|| PanelError::empty("plid"))?;
    let ids = req.elids()?;
    let keys: Vec<String> = ids.iter().map(u64::to_string).collect();
    let lang = req.lang();
    let config = ctx.config;
    let db = ctx.db()?;
    let versions = backups::copies_holding(db, kind, &keys)?;
    if versions.is_empty() {
        return Err(PanelError::missed(kind, keys.join(", ")).into());
    }
    match req.mode() {
        Mode::View | Mode::SetValues => Ok(Reply::Form(Form {
            values: vec![
                ("objects", keys.join(", ")),
                ("version", versions[0].0.to_string()),
                ("behavior", "skip".into()),
            ],
            slists: vec![
                Slist {
                    name: "version",
                    options: versions
                        .iter()
                        .map(|(id, created, name)| (id.to_string(), format!("{created} ({name})")))
                        .collect(),
                },
                Slist {
                    name: "behavior",
                    options: ["skip", "edit"]
                        .iter()
                        .map(|b| (b.to_string(), label(lang, FORM, &format!("behavior_{b}"))))
                        .collect(),
                },
            ],
        })),
        Mode::SubmitNew | Mode::SubmitEdit => {
            let version = req.id("version")?;
            let Some((_, _, name)) = versions.iter().find(|v| v.0 == version) else {
                return Err(PanelError::value("version", &version.to_string()).into());
            };
            let behavior = match req.choice("behavior", &["skip", "edit"])?.unwrap_or("skip") {
                "edit" => Behavior::Edit,
                _ => Behavior::Skip,
            };
            let row =
                backups::get(db, version)?.ok_or_else(|| PanelError::missed("backup", version))?;
            let settings = jobs::Settings::for_copy(config, db, &row)?;
            let source = config
                .db
                .clone()
                .ok_or_else(|| PanelError::new(ErrorKind::Db, "database", ""))?;
            let ids: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
            match jobs::restore_objects(config, &source, &settings, name, kind, &ids, behavior) {
                Ok(_) => {
                    log::info!(
                        "{kind} {keys:?} restored from {name} by {}",
                        req.user().unwrap_or("?")
                    );
                    Ok(Reply::Ok)
                }
                Err(e) if e.downcast_ref::<jobs::Busy>().is_some() => {
                    Err(e.context(PanelError::new(ErrorKind::BackupRunning, "backup", "")))
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    log::warn!("restore of {kind} {keys:?} from {name} failed: {reason}");
                    Err(e.context(PanelError::new(ErrorKind::RestoreFailed, kind, reason)))
                }
            }
        }
    }
}

/// `backupdata.files`: the files saved in one directory (`plid`, or
/// `elid` when opened from the directories), across copies.
pub fn files(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let field = if req.param("plid").is_some() {
        "plid"
    } else {
        "elid"
    };
    let dir = req.required(field)?.to_string();
    let paging = req.paging(&sort_keys(OBJECT_SORTS))?;
    let search = req.text("search", 255)?.trim().to_string();
    let (rows, total) = backups::objects_page(
        ctx.db()?,
        objects::FILE,
        &search,
        Some(&dir),
        &db_page(&paging),
    )?;
    Ok(Reply::List(ListPage {
        rows: rows
            .into_iter()
            .map(|o| {
                Row::default()
                    .cell("id", o.key)
                    .cell("dname", o.name)
                    .cell("versions", o.versions.to_string())
                    .cell("latest", o.latest)
            })
            .collect(),
        total,
        paging,
    }))
}

/// `backupdata.files.restore`: files `elid` (their paths, ", "-separated)
/// from the copy chosen as `version`, `skip` or `edit`; only inside the
/// saved directories (see `engine::file_restore`).
pub fn files_restore(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    const FORM: &str = "backupdata.files.restore";
    let paths: Vec<String> = req
        .required("elid")?
        .split(", ")
        .map(str::to_string)
        .collect();
    let lang = req.lang();
    let config = ctx.config;
    let db = ctx.db()?;
    let versions = backups::copies_holding(db, objects::FILE, &paths)?;
    if versions.is_empty() {
        return Err(PanelError::missed("file", paths.join(", ")).into());
    }
    match req.mode() {
        Mode::View | Mode::SetValues => Ok(Reply::Form(Form {
            values: vec![
                ("objects", paths.join(", ")),
                ("version", versions[0].0.to_string()),
                ("behavior", "skip".into()),
            ],
            slists: vec![
                Slist {
                    name: "version",
                    options: versions
                        .iter()
                        .map(|(id, created, name)| (id.to_string(), format!("{created} ({name})")))
                        .collect(),
                },
                Slist {
                    name: "behavior",
                    options: ["skip", "edit"]
                        .iter()
                        .map(|b| (b.to_string(), label(lang, FORM, &format!("behavior_{b}"))))
                        .collect(),
                },
            ],
        })),
        Mode::SubmitNew | Mode::SubmitEdit => {
            let version = req.id("version")?;
            let Some((_, _, name)) = versions.iter().find(|v| v.0 == version) else {
                return Err(PanelError::value("version", &version.to_string()).into());
            };
            let behavior = match req.choice("behavior", &["skip", "edit"])?.unwrap_or("skip") {
                "edit" => Behavior::Edit,
                _ => Behavior::Skip,
            };
            let row =
                backups::get(db, version)?.ok_or_else(|| PanelError::missed("backup", version))?;
            let settings = jobs::Settings::for_copy(config, db, &row)?;
            let source = config
                .db
                .clone()
                .ok_or_else(|| PanelError::new(ErrorKind::Db, "database", ""))?;
            match jobs::restore_files(config, &source, &settings, name, &paths, behavior) {
                Ok(_) => Ok(Reply::Ok),
                Err(e) if e.downcast_ref::<jobs::Busy>().is_some() => {
                    Err(e.context(PanelError::new(ErrorKind::BackupRunning, "backup", "")))
                }
                Err(e) => {
                    let reason = format!("{e:#}");
                    log::warn!("restore of files {paths:?} from {name} failed: {reason}");
                    Err(e.context(PanelError::new(ErrorKind::RestoreFailed, "file", reason)))
                }
            }
        }
    }
}
