//! `backupdata` and `backupdata.names`: what the copies hold, by kind
//! (clients, users, services, payments, files) and by object, across every
//! good copy, from the catalog's index of their listings (no archive is
//! opened). The kinds are defined in `engine::saved::objects`.

use anyhow::Result;

use super::{db_page, label, sort_keys};
use crate::config::DbSource;
use crate::context::Ctx;
use crate::db::backups;
use crate::db::objects::{self as index, OBJECT_SORTS};
use crate::engine;
use crate::engine::Behavior;
use crate::engine::Wanted;
use crate::protocol::{ErrorKind, Form, ListPage, Mode, PanelError, Reply, Request, Row, Slist};

const SECTION: &str = "backupdata";

/// `backupdata`: the kinds of saved data.
pub fn list(req: &Request, _ctx: &mut Ctx<'_>) -> Result<Reply> {
    let rows: Vec<Row> = crate::engine::object_kinds::kinds()
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
    let kinds: Vec<&str> = crate::engine::object_kinds::kinds().collect();
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
    // Owners are clients, shown by their names.
    let owners = crate::engine::object_kinds::of_table(kind)
        .and_then(|k| k.owner)
        .map(|_| crate::engine::TABLE_KINDS[0].kind);
    let (rows, total) =
        index::objects_page(ctx.db()?, kind, owners, &search, None, &db_page(&paging))?;
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

/// What a restore form's submit chose: a copy that holds every object,
/// and how existing data is treated.
struct Chosen {
    name: String,
    behavior: Behavior,
    settings: crate::engine::Settings,
    source: DbSource,
}

/// The form both restores share: the copies that hold every one of
/// `keys` of `kind` (newest first) and the behavior; on submit, the
/// choice, checked against those copies.
fn choose(
    req: &Request,
    ctx: &mut Ctx<'_>,
    form: &str,
    kind: &str,
    keys: &[String],
) -> Result<Result<Chosen, Reply>> {
    let lang = req.lang();
    let config = ctx.config;
    let db = ctx.db()?;
    let versions = index::copies_holding(db, kind, keys)?;
    if versions.is_empty() {
        return Err(PanelError::missed(kind, keys.join(", ")).into());
    }
    match req.mode() {
        Mode::View | Mode::SetValues => Ok(Err(Reply::Form(Form {
            values: vec![
                ("objects", keys.join(", ")),
                ("version", versions[0].0.to_string()),
                ("behavior", "skip".into()),
                ("at", String::new()),
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
                        .map(|b| (b.to_string(), label(lang, form, &format!("behavior_{b}"))))
                        .collect(),
                },
            ],
        }))),
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
            let settings = crate::engine::Settings::for_copy(config, db, &row)?;
            let source = config
                .db
                .clone()
                .ok_or_else(|| PanelError::new(ErrorKind::Db, "database", ""))?;
            Ok(Ok(Chosen {
                name: name.clone(),
                behavior,
                settings,
                source,
            }))
        }
    }
}

/// A restore's outcome as the panel shows it: another job running, or the
/// restore failed (and changed nothing) with its reason.
fn outcome<T>(result: Result<T>, object: &str, what: &str, user: &str) -> Result<Reply> {
    match result {
        Ok(_) => {
            log::info!("{what} restored by {user}");
            Ok(Reply::Ok)
        }
        // Shown as `backup_running` by the protocol's edge.
        Err(e) if e.downcast_ref::<engine::Busy>().is_some() => Err(e),
        Err(e) => {
            let reason = format!("{e:#}");
            log::warn!("restore of {what} failed: {reason}");
            Err(e.context(PanelError::new(ErrorKind::RestoreFailed, object, reason)))
        }
    }
}

/// `backupdata.restore`: objects `elid` (", "-separated ids) of kind
/// `plid` from the copy chosen as `version` (the form offers exactly the
/// copies that hold them all), `skip` or `edit`; with what depends on them
/// and what they need, in one transaction (see `engine::saved::object_restore`).
pub fn restore(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let kinds: Vec<&str> = crate::engine::TABLE_KINDS.iter().map(|k| k.kind).collect();
    let kind = req
        .choice("plid", &kinds)?
        .ok_or_else(|| PanelError::empty("plid"))?;
    let ids = req.elids()?;
    let keys: Vec<String> = ids.iter().map(u64::to_string).collect();
    let c = match choose(req, ctx, "backupdata.restore", kind, &keys)? {
        Ok(chosen) => chosen,
        Err(form) => return Ok(form),
    };
    let ids: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
    // A second given: the objects as they were then (the newest copy
    // before it and the binary log after it), whatever copy was chosen.
    let at = req.text("at", 19)?.trim();
    if !at.is_empty() {
        let second = crate::clock::Timestamp::parse(at)
            .filter(|_| at.len() == 19)
            .ok_or_else(|| PanelError::value("at", at))?;
        let log = engine::Settings::resolve(ctx.config, ctx.db()?, None, None)?;
        let wanted = Wanted {
            kind,
            ids: &ids,
            behavior: c.behavior,
        };
        let result = engine::restore_objects_at(
            ctx.config,
            &c.source,
            &log,
            second.unix(),
            wanted,
            &mut |_, _| {},
        );
        let what = format!("{kind} {keys:?} as at {at} UTC");
        return outcome(result, kind, &what, req.actor());
    }
    let result = engine::restore_objects(
        ctx.config,
        &c.source,
        &c.settings,
        &c.name,
        Wanted {
            kind,
            ids: &ids,
            behavior: c.behavior,
        },
        &mut |_, _| {},
    );
    let what = format!("{kind} {keys:?} from {}", c.name);
    outcome(result, kind, &what, req.actor())
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
    let (rows, total) = index::objects_page(
        ctx.db()?,
        crate::engine::FILE,
        None,
        &search,
        Some(&dir),
        &db_page(&paging),
    )?;
    Ok(Reply::List(ListPage {
        rows: rows
            .into_iter()
            .map(|o| {
                Row::default()
                    // The list's key is `name` (BILLmanager's); `id` kept
                    // for callers of earlier versions.
                    .cell("name", o.key.clone())
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
/// saved directories (see `engine::saved::file_restore`).
pub fn files_restore(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let paths: Vec<String> = req
        .required("elid")?
        .split(", ")
        .map(str::to_string)
        .collect();
    let c = match choose(
        req,
        ctx,
        "backupdata.files.restore",
        crate::engine::FILE,
        &paths,
    )? {
        Ok(chosen) => chosen,
        Err(form) => return Ok(form),
    };
    let result = engine::restore_files(
        ctx.config,
        &c.source,
        &c.settings,
        &c.name,
        &paths,
        c.behavior,
    );
    let what = format!("files {paths:?} from {}", c.name);
    outcome(result, "file", &what, req.actor())
}
