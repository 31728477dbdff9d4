//! `billmgr.backup` and its family: the list of copies, taking one,
//! restoring, deleting, the setup wizard and the module settings. Long work
//! (taking and restoring a copy) runs in the background: the call checks
//! the request and that no other job runs, starts `billmgr-ops backup ...`
//! and returns at once; the list shows the job's phase and percent.

use anyhow::Result;

use super::{db_page, label, sort_keys};
use crate::background;
use crate::context::Ctx;
use crate::db::backupconf::{self, PlanRow};
use crate::db::backups::{self, COPY_SORTS};
use crate::engine::{jobs, schedule};
use crate::protocol::{
    ErrorKind, Form, Lang, ListPage, Mode, PanelError, Reply, Request, Row, Slist,
};

const SECTION: &str = "billmgr.backup";

fn busy_error() -> PanelError {
    PanelError::new(ErrorKind::BackupRunning, "backup", "")
}

/// `billmgr.backup`: the copies, newest first.
pub fn list(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let paging = req.paging(&sort_keys(COPY_SORTS))?;
    let (rows, total) = backups::page(ctx.db()?, &db_page(&paging))?;
    let lang = req.lang();
    let rows = rows
        .into_iter()
        .map(|c| {
            let progress = match (c.state.as_str(), c.restore_state.as_str()) {
                ("running", _) => {
                    format!(
                        "{} {}%",
                        label(lang, SECTION, &format!("phase_{}", c.phase)),
                        c.percent
                    )
                }
                (_, "running") => format!(
                    "{} {} {}%",
                    label(lang, SECTION, "restoring"),
                    label(lang, SECTION, &format!("phase_{}", c.restore_phase)),
                    c.restore_percent
                ),
                (_, "ok") => label(lang, SECTION, "restored"),
                _ => String::new(),
            };
            let reason = if c.restore_state == "failed" {
                format!(
                    "{}: {}",
                    label(lang, SECTION, "restore_failed"),
                    c.restore_reason
                )
            } else {
                c.reason.clone()
            };
            Row {
                color: match c.state.as_str() {
                    "failed" => Some("red"),
                    "running" => Some("green"),
                    _ => None,
                },
                ..Row::default()
            }
            .cell("id", c.id.to_string())
            .cell("date", c.created)
            .cell("size", format!("{:.1}", c.size as f64 / 1_048_576.0))
            .cell("storage", c.storage)
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
            if jobs::busy(db)? {
                return Err(busy_error().into());
            }
            let mut args = vec!["backup".to_string(), "create".to_string()];
            if let Some(id) = plan {
                args.extend(["--plan".to_string(), id.to_string()]);
            }
            if let Some(id) = storage {
                args.extend(["--storage".to_string(), id.to_string()]);
            }
            background::spawn(ctx.config, &args)?;
            log::info!("backup started by {}", req.user().unwrap_or("?"));
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
            if copy.state != "ok" {
                return Err(PanelError::new(ErrorKind::CopyState, "backup", copy.name).into());
            }
            if jobs::busy(ctx.db()?)? {
                return Err(busy_error().into());
            }
            background::spawn(
                ctx.config,
                &[
                    "backup".into(),
                    "restore".into(),
                    id.to_string(),
                    "--behavior".into(),
                    behavior.into(),
                ],
            )?;
            log::warn!(
                "restore of copy {} ({behavior}) started by {}",
                copy.name,
                req.user().unwrap_or("?")
            );
            Ok(Reply::Ok)
        }
    }
}

/// `backups.delete`: copies out of the catalog; with `clean_storages=on`
/// also off their storages.
pub fn delete(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let ids = req.elids()?;
    let clean = req.choice("clean_storages", &["on", "off"])? == Some("on");
    let config = ctx.config;
    let db = ctx.db()?;
    let mut rows = Vec::new();
    for id in &ids {
        let row = backups::get(db, *id)?.ok_or_else(|| PanelError::missed("backup", id))?;
        if row.state == "running" {
            return Err(busy_error().into());
        }
        rows.push(row);
    }
    for row in &rows {
        let settings = jobs::Settings::for_copy(config, db, row)?;
        jobs::delete_copy(db, &settings, row, clean)?;
    }
    log::info!(
        "copies {ids:?} deleted by {} (storage too: {clean})",
        req.user().unwrap_or("?")
    );
    Ok(Reply::Ok)
}

/// The plan fields of a form, checked.
fn submitted_plan(req: &Request, storage: u64) -> Result<PlanRow, PanelError> {
    let schedule = req
        .choice("schedule", &["daily", "weekly", "off"])?
        .unwrap_or("daily");
    let at = req.param("at_time").unwrap_or("03:00");
    if schedule::parse_time(at).is_none() {
        return Err(PanelError::value("at_time", at));
    }
    let days: Vec<String> = (1..=7)
        .filter(|d| req.param(&format!("day_{d}")) == Some("on"))
        .map(|d| d.to_string())
        .collect();
    if schedule == "weekly" && days.is_empty() {
        return Err(PanelError::empty("day_1"));
    }
    Ok(PlanRow {
        name: req.text("plan_name", 255)?.trim().to_string(),
        storage,
        schedule: schedule.into(),
        at_time: at.into(),
        days: days.join(","),
        keep_count: req.number("keep_count", 1, 100_000)?,
        keep_size_mib: req.number("keep_size", 1, 1 << 40)?,
        exclude_tables: req.text("exclude_tables", 4096)?.to_string(),
        files: req.text("files", 4096)?.to_string(),
        ..PlanRow::default()
    })
}

/// `billmgr.backup.setup`: the wizard: a storage and a plan in one form.
pub fn setup(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let lang = req.lang();
    match req.mode() {
        Mode::View | Mode::SetValues => Ok(Reply::Form(Form {
            values: vec![
                ("storage_name", "local".into()),
                ("storage_kind", "local".into()),
                ("path", "var/billmgr-ops/backup".into()),
                ("plan_name", "daily".into()),
                ("schedule", "daily".into()),
                ("at_time", "03:00".into()),
                ("keep_count", "7".into()),
            ],
            slists: vec![
                Slist {
                    name: "storage_kind",
                    options: vec![(
                        "local".into(),
                        label(lang, "billmgr.backup.setup", "kind_local"),
                    )],
                },
                Slist {
                    name: "schedule",
                    options: ["daily", "weekly", "off"]
                        .iter()
                        .map(|s| {
                            (
                                s.to_string(),
                                label(lang, "billmgr.backup.setup", &format!("schedule_{s}")),
                            )
                        })
                        .collect(),
                },
            ],
        })),
        Mode::SubmitNew | Mode::SubmitEdit => {
            let storage_name = req.required("storage_name")?.trim().to_string();
            req.choice("storage_kind", &["local"])?;
            let path = req.required("path")?.trim().to_string();
            if path.contains("..") || path.contains('\0') {
                return Err(PanelError::value("path", &path).into());
            }
            let plan = submitted_plan(req, 0)?;
            if plan.name.is_empty() {
                return Err(PanelError::empty("plan_name").into());
            }
            let db = ctx.db()?;
            if backupconf::storages(db)?
                .iter()
                .any(|s| s.name == storage_name)
            {
                return Err(
                    PanelError::new(ErrorKind::Exists, "storage_name", storage_name).into(),
                );
            }
            if backupconf::plans(db)?.iter().any(|p| p.name == plan.name) {
                return Err(PanelError::new(ErrorKind::Exists, "plan_name", plan.name).into());
            }
            let storage = backupconf::add_storage(db, &storage_name, "local", &path)?;
            backupconf::add_plan(db, &PlanRow { storage, ..plan })?;
            Ok(Reply::Ok)
        }
    }
}

/// `billmgr.backup.settings`: module settings; `dropsettings=on` forgets
/// the settings and the catalog (copies stay on their storages); the rescan
/// button rebuilds the catalog from the listings on the default storage.
pub fn settings(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    const FIELDS: &[(&str, &str)] = &[
        ("path", "BackupDir"),
        ("threads", "BackupThreads"),
        ("compression", "BackupCompression"),
        ("files", "BackupFiles"),
        ("exclude_tables", "BackupExcludeTables"),
        ("lock_timeout", "BackupLockTimeout"),
        ("default_storage", "BackupDefaultStorage"),
        ("default_plan", "BackupDefaultPlan"),
        ("keep_undo", "BackupKeepUndo"),
    ];
    let config = ctx.config;
    match req.mode() {
        Mode::View | Mode::SetValues => {
            let db = ctx.db()?;
            let current = jobs::Settings::resolve(config, db, None, None)?;
            let mut values = Vec::new();
            for (field, key) in FIELDS {
                let saved = backupconf::setting(db, key)?;
                let value = saved
                    .or_else(|| config.value(key).map(str::to_string))
                    .unwrap_or_else(|| match *field {
                        "threads" => current.dump.threads.to_string(),
                        "compression" => current.dump.compression_level.to_string(),
                        "lock_timeout" => current.dump.lock_timeout.to_string(),
                        "files" => "etc".into(),
                        "path" => "var/billmgr-ops/backup".into(),
                        _ => String::new(),
                    });
                values.push((*field, value));
            }
            // The passphrase is never sent back: only whether one is set.
            let encrypted = backupconf::setting(db, "BackupPassphrase")?.is_some();
            values.push(("encrypt", if encrypted { "on" } else { "off" }.into()));
            let slists = vec![
                Slist {
                    name: "default_storage",
                    options: storage_options(ctx, req.lang())?,
                },
                Slist {
                    name: "default_plan",
                    options: plan_options(ctx, req.lang())?,
                },
            ];
            Ok(Reply::Form(Form { values, slists }))
        }
        Mode::SubmitNew | Mode::SubmitEdit => {
            if req.choice("dropsettings", &["on", "off"])? == Some("on") {
                backupconf::drop_all(ctx.db()?)?;
                log::warn!(
                    "backup settings and catalog dropped by {}",
                    req.user().unwrap_or("?")
                );
                return Ok(Reply::Ok);
            }
            if req.param("clicked_button") == Some("rescan") {
                let db = ctx.db()?;
                let settings = jobs::Settings::resolve(config, db, None, None)?;
                let added = jobs::rescan(db, &settings)?;
                log::info!("rescan added {added} copies");
                return Ok(Reply::Ok);
            }
            let mut values = Vec::new();
            for (field, key) in FIELDS {
                let v = req.text(field, 4096)?.trim().to_string();
                let ok = match *field {
                    "threads" => v.parse::<u32>().is_ok_and(|n| (1..=32).contains(&n)),
                    "compression" => v.parse::<u32>().is_ok_and(|n| (1..=19).contains(&n)),
                    "lock_timeout" => v.parse::<u32>().is_ok_and(|n| (1..=3600).contains(&n)),
                    "path" => !v.is_empty() && !v.contains(".."),
                    "keep_undo" => matches!(v.as_str(), "" | "on" | "off"),
                    "default_storage" | "default_plan" => v.is_empty() || v.parse::<u64>().is_ok(),
                    _ => true,
                };
                if !ok {
                    return Err(PanelError::value(field, &v).into());
                }
                values.push((*key, v));
            }
            let encrypt = req.choice("encrypt", &["on", "off"])? == Some("on");
            let passphrase = req.text("passphrase", 1024)?;
            let db = ctx.db()?;
            if let Some(id) = req.opt_id("default_storage")? {
                if backupconf::storage(db, id)?.is_none() {
                    return Err(PanelError::missed("storage", id).into());
                }
            }
            if let Some(id) = req.opt_id("default_plan")? {
                if backupconf::plan(db, id)?.is_none() {
                    return Err(PanelError::missed("plan", id).into());
                }
            }
            let has_passphrase = backupconf::setting(db, "BackupPassphrase")?.is_some();
            if encrypt && passphrase.is_empty() && !has_passphrase {
                return Err(PanelError::empty("passphrase").into());
            }
            if encrypt && !passphrase.is_empty() && passphrase.chars().count() < 8 {
                return Err(PanelError::value("passphrase", "").into());
            }
            for (key, v) in values {
                backupconf::set_setting(db, key, &v)?;
            }
            if !encrypt {
                backupconf::delete_setting(db, "BackupPassphrase")?;
            } else if !passphrase.is_empty() {
                let sealed = crate::engine::crypt::seal_secret(&config.mgrdir, passphrase)?;
                backupconf::set_setting(db, "BackupPassphrase", &sealed)?;
                log::warn!(
                    "backup encryption passphrase changed by {}",
                    req.user().unwrap_or("?")
                );
            }
            Ok(Reply::Ok)
        }
    }
}
