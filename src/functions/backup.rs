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
use crate::engine::{crypt, jobs, schedule, upload};
use crate::protocol::{
    ErrorKind, Form, Lang, ListPage, Mode, PanelError, RedirectKind, Reply, Request, Row, Slist,
};
use crate::storage::params::{Kind, Params};
use crate::storage::{self, Storage};

const SECTION: &str = "billmgr.backup";

fn busy_error() -> PanelError {
    PanelError::new(ErrorKind::BackupRunning, "backup", "")
}

/// `billmgr.backup`: the copies, newest first.
pub fn list(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let paging = req.paging(&sort_keys(COPY_SORTS))?;
    let db = ctx.db()?;
    let (rows, total) = backups::page(db, &db_page(&paging))?;
    let storages = backupconf::storages(db)?;
    let lang = req.lang();
    // Where each copy is: its storage, then the further ones of its plan
    // (a failed one marked).
    let mut places = Vec::with_capacity(rows.len());
    for c in &rows {
        let mut names = vec![c.storage.clone()];
        for p in backups::places(db, c.id)? {
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

/// `backups.download`: a redirect to the download CGI with a single-use
/// token that expires in minutes (see `crate::download`).
pub fn download(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let id = req.elid()?;
    let admin = req.user().unwrap_or("?").to_string();
    let config = ctx.config;
    let db = ctx.db()?;
    let row = backups::get(db, id)?.ok_or_else(|| PanelError::missed("backup", id))?;
    if row.state != "ok" {
        return Err(PanelError::new(ErrorKind::CopyState, "backup", row.name).into());
    }
    let url = crate::download::issue(config, db, id, &admin)?;
    log::info!("download of copy {} issued to {admin}", row.name);
    Ok(Reply::Redirect(RedirectKind::Blank, url))
}

/// `backups.upload`: a copy (or a mysqldump file) from this computer or an
/// http(s) URL into a storage, verified before it is listed. The panel
/// hands an uploaded file over as the path of its temporary file in
/// `file`. The work is done within the call, so that a refusal comes back
/// to the form.
pub fn upload(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    const FORM: &str = "backups.upload";
    let lang = req.lang();
    match req.mode() {
        Mode::View | Mode::SetValues => Ok(Reply::Form(Form {
            values: vec![("type", "file".into())],
            slists: vec![
                Slist {
                    name: "type",
                    options: ["file", "url"]
                        .iter()
                        .map(|t| (t.to_string(), label(lang, FORM, &format!("type_{t}"))))
                        .collect(),
                },
                Slist {
                    name: "storage",
                    options: storage_options(ctx, lang)?,
                },
            ],
        })),
        Mode::SubmitNew | Mode::SubmitEdit => {
            let config = ctx.config;
            let from = match req.choice("type", &["file", "url"])?.unwrap_or("file") {
                "url" => {
                    let url = req.required("url")?.trim();
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(PanelError::value("url", url).into());
                    }
                    upload::Source::Url {
                        url: url.to_string(),
                        allow_private: config.upload_private_urls,
                    }
                }
                _ => uploaded_file(config, req.required("file")?)?,
            };
            let name = req.text("name", 100)?.trim().to_string();
            let storage = req.opt_id("storage")?;
            let source = config
                .db
                .clone()
                .ok_or_else(|| PanelError::new(ErrorKind::Db, "database", ""))?;
            let db = ctx.db()?;
            if let Some(id) = storage {
                if backupconf::storage(db, id)?.is_none() {
                    return Err(PanelError::missed("storage", id).into());
                }
            }
            let settings = jobs::Settings::resolve(config, db, None, storage)?;
            match upload::upload(config, &source, &settings, &from, Some(&name)) {
                Ok(row) => {
                    log::info!(
                        "copy {} uploaded by {}",
                        row.name,
                        req.user().unwrap_or("?")
                    );
                    Ok(Reply::Ok)
                }
                Err(e) => Err(upload_error(e)),
            }
        }
    }
}

/// The panel's uploaded file: below `UploadDir` (lexically, then walked
/// without following a symbolic link), a regular file, opened now.
fn uploaded_file(config: &crate::config::Config, file: &str) -> Result<upload::Source, PanelError> {
    let path = std::path::PathBuf::from(file);
    let outside = || PanelError::new(ErrorKind::Outside, "file", file);
    let rel = crate::fsutil::below(&config.upload_dir, &path).ok_or_else(outside)?;
    let name = rel.file_name().ok_or_else(outside)?;
    let opened = crate::fsutil::Dir::open(&config.upload_dir)
        .and_then(|d| d.walk(rel.parent().unwrap_or(std::path::Path::new("")), None))
        .and_then(|d| d.open_file(name));
    match opened {
        Ok(f) => Ok(upload::Source::Opened(f, path)),
        Err(e) => {
            log::warn!("upload of `{file}` refused: {e}");
            Err(PanelError::value("file", file))
        }
    }
}

/// A refused upload as the form shows it.
fn upload_error(e: anyhow::Error) -> anyhow::Error {
    if let Some(refused) = e.downcast_ref::<upload::NotACopy>() {
        let value = refused.0.clone();
        return e.context(PanelError::new(ErrorKind::BadCopy, "file", value));
    }
    if let Some(private) = e.downcast_ref::<crate::storage::fetch::PrivateAddress>() {
        let value = private.0.clone();
        return e.context(PanelError::new(ErrorKind::Outside, "url", value));
    }
    if let Some(bad) = e.downcast_ref::<crate::engine::archive::check::BadListing>() {
        let value = bad.0.clone();
        return e.context(PanelError::new(ErrorKind::BadCopy, "file", value));
    }
    if e.downcast_ref::<jobs::Busy>().is_some() {
        return e.context(busy_error());
    }
    e
}

/// The plan fields of a form, checked.
fn submitted_plan(
    config: &crate::config::Config,
    req: &Request,
    storage: u64,
) -> Result<PlanRow, PanelError> {
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
        files: within_reach(config, "files", req.text("files", 4096)?)?.to_string(),
        ..PlanRow::default()
    })
}

/// A `files` field, checked: every path (relative ones from the panel
/// directory) inside the panel directory or `BackupFilesAllowed`; the
/// panel cannot widen that reach.
fn within_reach<'v>(
    config: &crate::config::Config,
    field: &str,
    files: &'v str,
) -> Result<&'v str, PanelError> {
    for f in files.split_whitespace() {
        let path = match std::path::Path::new(f) {
            p if p.is_absolute() => p.to_path_buf(),
            p => config.mgrdir.join(p),
        };
        if config.file_root_of(&path).is_none() {
            return Err(PanelError::new(ErrorKind::Outside, field, f));
        }
    }
    Ok(files)
}

/// The storage fields of the setup form, checked: its name, its fields
/// and its secret (not yet sealed).
fn submitted_storage(req: &Request) -> Result<(String, Params, Option<String>), PanelError> {
    let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
    let kind = req
        .choice("storage_kind", &kinds)?
        .and_then(Kind::parse)
        .unwrap_or_default();
    let text = |field: &str| -> Result<String, PanelError> {
        Ok(req.text(field, 1024)?.trim().to_string())
    };
    let port = match text("port")?.as_str() {
        "" => 0,
        p => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| PanelError::value("port", p))?,
    };
    let params = Params {
        kind,
        path: text("path")?,
        host: text("host")?,
        port,
        user: text("user")?,
        key_file: text("key_file")?,
        host_key: req
            .choice("host_key", &["accept-new", "strict", "off"])?
            .unwrap_or("accept-new")
            .to_string(),
        tls: req.choice("tls", &["on", "off"])? == Some("on"),
        endpoint: text("endpoint")?,
        region: text("region")?,
        bucket: text("bucket")?,
        access_key: text("access_key")?,
    };
    if let Some((field, value)) = params.invalid_field() {
        return Err(if value.is_empty() {
            PanelError::empty(field)
        } else {
            PanelError::value(field, &value)
        });
    }
    let secret = match kind.secret_field() {
        Some(field) => {
            let v = req.text(field, 1024)?;
            if v.is_empty() && kind.secret_required(&params) {
                return Err(PanelError::empty(field));
            }
            (!v.is_empty()).then(|| v.to_string())
        }
        None => None,
    };
    let name = req.text("storage_name", 255)?.trim().to_string();
    Ok((name, params, secret))
}

/// Opens and checks a storage as the form describes it; a failure names
/// the step and the reason.
fn check_storage(ctx: &Ctx<'_>, name: &str, params: &Params, secret: Option<&str>) -> Result<()> {
    let opened: Result<Box<dyn Storage>> = match params.kind {
        Kind::Local => jobs::open_storage(
            ctx.config,
            &backupconf::StorageRow {
                params: params.clone(),
                ..Default::default()
            },
        ),
        _ => storage::remote::open(params, secret),
    };
    let outcome = opened.and_then(|s| storage::probe(s.as_ref()).map_err(anyhow::Error::from));
    outcome.map_err(|e| {
        log::warn!(
            "storage check of `{name}` ({}) failed: {e:#}",
            params.describe()
        );
        PanelError::new(ErrorKind::Storage, name, format!("{e:#}")).into()
    })
}

/// `billmgr.backup.setup`: the wizard: a storage of any kind and a plan in
/// one form. The "check" button tests the storage without saving; a plan
/// may also send its copies to storages configured before.
pub fn setup(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    const FORM: &str = "billmgr.backup.setup";
    let lang = req.lang();
    let options = |prefix: &str, values: &[&str]| -> Vec<(String, String)> {
        values
            .iter()
            .map(|v| (v.to_string(), label(lang, FORM, &format!("{prefix}_{v}"))))
            .collect()
    };
    match req.mode() {
        Mode::View | Mode::SetValues => {
            let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            let mut extra = storage_options(ctx, lang)?;
            extra.remove(0);
            Ok(Reply::Form(Form {
                values: vec![
                    ("storage_name", "local".into()),
                    ("storage_kind", "local".into()),
                    ("path", "var/billmgr-ops/backup".into()),
                    ("host_key", "accept-new".into()),
                    ("plan_name", "daily".into()),
                    ("schedule", "daily".into()),
                    ("at_time", "03:00".into()),
                    ("keep_count", "7".into()),
                ],
                slists: vec![
                    Slist {
                        name: "storage_kind",
                        options: options("kind", &kinds),
                    },
                    Slist {
                        name: "host_key",
                        options: options("host_key", &["accept-new", "strict", "off"]),
                    },
                    Slist {
                        name: "also_storages",
                        options: extra,
                    },
                    Slist {
                        name: "schedule",
                        options: options("schedule", &["daily", "weekly", "off"]),
                    },
                ],
            }))
        }
        Mode::SubmitNew | Mode::SubmitEdit => {
            let (storage_name, params, secret) = submitted_storage(req)?;
            if storage_name.is_empty() {
                return Err(PanelError::empty("storage_name").into());
            }
            if req.param("clicked_button") == Some("check") {
                check_storage(ctx, &storage_name, &params, secret.as_deref())?;
                return Ok(Reply::Ok);
            }
            let plan = submitted_plan(ctx.config, req, 0)?;
            if plan.name.is_empty() {
                return Err(PanelError::empty("plan_name").into());
            }
            let also = req.ids_in("also_storages")?;
            let db = ctx.db()?;
            for id in &also {
                if backupconf::storage(db, *id)?.is_none() {
                    return Err(PanelError::missed("storage", id).into());
                }
            }
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
            let sealed = match &secret {
                Some(secret) => Some(crypt::seal_secret(&ctx.config.mgrdir, secret)?),
                None => None,
            };
            let db = ctx.db()?;
            let storage = backupconf::add_storage(db, &storage_name, &params, sealed.as_deref())?;
            let plan = backupconf::add_plan(db, &PlanRow { storage, ..plan })?;
            backupconf::set_plan_extra_storages(db, plan, &also)?;
            log::info!(
                "storage `{storage_name}` ({}) and plan {plan} added by {}",
                params.describe(),
                req.user().unwrap_or("?")
            );
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
            if req.param("clicked_button") == Some("check_storage") {
                let db = ctx.db()?;
                let settings = jobs::Settings::resolve(config, db, None, None)?;
                if let Err(e) = storage::probe(settings.storage.as_ref()) {
                    log::warn!(
                        "storage check of {} failed: {e}",
                        settings.storage.describe()
                    );
                    return Err(PanelError::new(
                        ErrorKind::Storage,
                        settings.storage_name,
                        e.to_string(),
                    )
                    .into());
                }
                return Ok(Reply::Ok);
            }
            if req.param("clicked_button") == Some("rescan") {
                let db = ctx.db()?;
                let settings = jobs::Settings::resolve(config, db, None, None)?;
                let added = jobs::rescan(db, &settings, &mut |_, _| {})?;
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
                    "files" => {
                        within_reach(config, "files", &v)?;
                        true
                    }
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
