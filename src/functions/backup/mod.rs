//! `billmgr.backup` and its family: the list of copies, taking one,
//! restoring, deleting ([`transfer`]: download and upload; [`mod@setup`]: the
//! setup wizard and the module settings). Long work (taking and restoring
//! a copy) runs in the background: the call checks the request and that no
//! other job runs, starts `billmgr-ops backup ...` and returns at once; the
//! list shows the job's phase and percent.

mod setup;
mod transfer;

pub use setup::{settings, setup};
pub use transfer::{download, upload};

use anyhow::Result;

use super::{db_page, label, sort_keys};
use crate::background;
use crate::context::Ctx;
use crate::db::backupconf;
use crate::db::backups::{self, JobState, COPY_SORTS};
use crate::engine;
use crate::protocol::{
    ErrorKind, Form, Lang, ListPage, Mode, PanelError, Reply, Request, Row, Slist,
};

const SECTION: &str = "billmgr.backup";

/// `billmgr.backup`: the copies, newest first.
pub fn list(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let paging = req.paging(&sort_keys(COPY_SORTS))?;
    let db = ctx.db()?;
    let (rows, total) = backups::page(db, &db_page(&paging))?;
    let storages = backupconf::storages(db)?;
    let lang = req.lang();
    // Where each copy is: its storage, then the further ones of its plan
    // (a failed one marked).
    let ids: Vec<u64> = rows.iter().map(|c| c.id).collect();
    let mut further = backups::places_of(db, &ids)?;
    let mut places = Vec::with_capacity(rows.len());
    for c in &rows {
        let mut names = vec![c.storage.clone()];
        for p in further.remove(&c.id).unwrap_or_default() {
            let name = storages
                .iter()
                .find(|s| s.id == p.storage_id)
                .map_or_else(|| p.storage_id.to_string(), |s| s.name.clone());
            names.push(match p.state.as_str() {
                "ok" => name,
                state => format!(
                    "{name} ({})",
                    label(lang, SECTION, &format!("state_{state}"))
                ),
            });
        }
        places.push(names.join(", "));
    }
    let rows = rows
        .into_iter()
        .zip(places)
        .map(|(c, place)| {
            let progress = match (c.state, c.restore_state) {
                (JobState::Running, _) => {
                    format!(
                        "{} {}%",
                        label(lang, SECTION, &format!("phase_{}", c.phase)),
                        c.percent
                    )
                }
                (_, Some(JobState::Running)) => format!(
                    "{} {} {}%",
                    label(lang, SECTION, "restoring"),
                    label(lang, SECTION, &format!("phase_{}", c.restore_phase)),
                    c.restore_percent
                ),
                (_, Some(JobState::Ok)) => label(lang, SECTION, "restored"),
                _ => String::new(),
            };
            let reason = if c.restore_state == Some(JobState::Failed) {
                format!(
                    "{}: {}",
                    label(lang, SECTION, "restore_failed"),
                    c.restore_reason
                )
            } else {
                c.reason.clone()
            };
            Row {
                color: match c.state {
                    JobState::Failed => Some("red"),
                    JobState::Running => Some("green"),
                    JobState::Ok => None,
                },
                ..Row::default()
            }
            .cell("id", c.id.to_string())
            .cell("date", c.created)
            .cell("size", format!("{:.1}", c.size as f64 / 1_048_576.0))
            .cell("storage", place)
            .cell("state", format!("state_{}", c.state))
            .cell("progress", progress)
            .cell("reason", reason)
            .cell(
                "encrypted",
                if c.encrypted {
                    "encrypted_on"
                } else {
                    "encrypted_off"
                },
            )
        })
        .collect();
    Ok(Reply::List(ListPage {
        rows,
        total,
        paging,
    }))
}

/// A select's options: an empty "none" choice with its label, then `rows`.
fn options_after(none: String, rows: impl Iterator<Item = (u64, String)>) -> Vec<(String, String)> {
    std::iter::once((String::new(), none))
        .chain(rows.map(|(id, name)| (id.to_string(), name)))
        .collect()
}

/// The configured storages, after "the default storage".
fn storage_options(ctx: &mut Ctx<'_>, lang: Lang) -> Result<Vec<(String, String)>> {
    let rows = backupconf::storages(ctx.db()?)?
        .into_iter()
        .map(|s| (s.id, s.name));
    Ok(options_after(
        label(lang, "billmgr.backup.create", "default_storage"),
        rows,
    ))
}

/// The plans, after "no plan".
fn plan_options(ctx: &mut Ctx<'_>, lang: Lang) -> Result<Vec<(String, String)>> {
    let rows = backupconf::plans(ctx.db()?)?
        .into_iter()
        .map(|p| (p.id, p.name));
    Ok(options_after(
        label(lang, "billmgr.backup.create", "no_plan"),
        rows,
    ))
}

/// `billmgr.backup.create`: start a copy now (of a plan, or to the default
/// storage). With `elid`, the form shows that copy.
pub fn create(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let lang = req.lang();
    match req.mode() {
        Mode::View | Mode::SetValues => {
            let mut values = vec![
                (
                    "plan",
                    match req.param("plan") {
                        Some(p) => p.to_string(),
                        None => {
                            backupconf::setting(ctx.db()?, "BackupDefaultPlan")?.unwrap_or_default()
                        }
                    },
                ),
                (
                    "storage",
                    req.param("storage").unwrap_or_default().to_string(),
                ),
            ];
            if req.param("elid").is_some() {
                let id = req.elid()?;
                let c =
                    backups::get(ctx.db()?, id)?.ok_or_else(|| PanelError::missed("backup", id))?;
                values.extend([
                    ("name", c.name),
                    ("date", c.created),
                    ("state", label(lang, SECTION, &format!("state_{}", c.state))),
                    ("reason", c.reason),
                ]);
            }
            let slists = vec![
                Slist {
                    name: "plan",
                    options: plan_options(ctx, lang)?,
                },
                Slist {
                    name: "storage",
                    options: storage_options(ctx, lang)?,
                },
            ];
            Ok(Reply::Form(Form { values, slists }))
        }
        Mode::SubmitNew | Mode::SubmitEdit => {
            let plan = req.opt_id("plan")?;
            let storage = req.opt_id("storage")?;
            let db = ctx.db()?;
            if let Some(id) = plan {
                if backupconf::plan(db, id)?.is_none() {
                    return Err(PanelError::missed("plan", id).into());
                }
            }
            if let Some(id) = storage {
                if backupconf::storage(db, id)?.is_none() {
                    return Err(PanelError::missed("storage", id).into());
                }
            }
            if engine::busy(db)? {
                return Err(engine::Busy.into());
            }
            background::start(ctx.config, &background::Job::BackupCreate { plan, storage })?;
            log::info!("backup started by {}", req.actor());
            Ok(Reply::Ok)
        }
    }
}

/// `backups.restore`: restore copy `elid` in the background.
pub fn restore(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let lang = req.lang();
    let id = req.elid()?;
    let behavior = req.choice("behavior", &["skip", "edit"])?.unwrap_or("edit");
    let copy = backups::get(ctx.db()?, id)?.ok_or_else(|| PanelError::missed("backup", id))?;
    match req.mode() {
        Mode::View | Mode::SetValues => Ok(Reply::Form(Form {
            values: vec![
                ("name", copy.name),
                ("date", copy.created),
                ("at", String::new()),
                ("behavior", behavior.into()),
            ],
            slists: vec![Slist {
                name: "behavior",
                options: ["edit", "skip"]
                    .iter()
                    .map(|b| {
                        (
                            b.to_string(),
                            label(lang, "backups.restore", &format!("behavior_{b}")),
                        )
                    })
                    .collect(),
            }],
        })),
        Mode::SubmitNew | Mode::SubmitEdit => {
            // A second given: the database as it was then (the newest copy
            // before it and the binary log after it).
            let at = req.text("at", 19)?.trim();
            if !at.is_empty()
                && crate::clock::Timestamp::parse(at)
                    .filter(|_| at.len() == 19)
                    .is_none()
            {
                return Err(PanelError::value("at", at).into());
            }
            if at.is_empty() && copy.state != JobState::Ok {
                return Err(PanelError::new(ErrorKind::CopyState, "backup", copy.name).into());
            }
            if engine::busy(ctx.db()?)? {
                return Err(engine::Busy.into());
            }
            let job = if at.is_empty() {
                background::Job::BackupRestore {
                    copy: id,
                    behavior: behavior.into(),
                }
            } else {
                background::Job::BackupRestoreTo {
                    to: at.to_string(),
                    behavior: behavior.into(),
                }
            };
            background::start(ctx.config, &job)?;
            log::warn!(
                "restore of {} ({behavior}) started by {}",
                if at.is_empty() {
                    format!("copy {}", copy.name)
                } else {
                    format!("the database as at {at} UTC")
                },
                req.actor()
            );
            Ok(Reply::Ok)
        }
    }
}

/// `backups.delete`: copies out of the catalog; with `clean_storages=on`
/// also off their storages.
pub fn delete(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let ids = req.elids()?;
    let clean = req.choice("clean_storages", &["on", "off"])?;
    if req.mode() == Mode::View && clean.is_none() {
        // The form (BILLmanager's own shape): whether the storages' files
        // go too. A call that already says so deletes at once.
        for id in &ids {
            backups::get(ctx.db()?, *id)?.ok_or_else(|| PanelError::missed("backup", id))?;
        }
        return Ok(Reply::Form(Form {
            values: vec![("clean_storages", "off".into())],
            slists: Vec::new(),
        }));
    }
    let clean = clean == Some("on");
    let config = ctx.config;
    let db = ctx.db()?;
    let mut rows = Vec::new();
    for id in &ids {
        let row = backups::get(db, *id)?.ok_or_else(|| PanelError::missed("backup", id))?;
        if row.state == JobState::Running {
            return Err(engine::Busy.into());
        }
        rows.push(row);
    }
    for row in &rows {
        let settings = crate::engine::Settings::for_copy(config, db, row)?;
        engine::delete_copy(db, &settings, row, clean)?;
    }
    log::info!(
        "copies {ids:?} deleted by {} (storage too: {clean})",
        req.actor()
    );
    Ok(Reply::Ok)
}
