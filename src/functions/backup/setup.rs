//! `billmgr.backup.setup` (a storage and a plan in one form) and
//! `billmgr.backup.settings` (the module settings, read and checked
//! against the one table of `engine::settings`).

use anyhow::Result;

use super::{plan_options, storage_options};
use crate::context::Ctx;
use crate::db::backupconf::{self, PlanRow};
use crate::engine;
use crate::engine::schedule;
use crate::engine::{Setting, Settings, Values, SETTINGS};
use crate::functions::label;
use crate::protocol::{ErrorKind, Form, Mode, PanelError, Reply, Request, Slist};
use crate::storage::params::{Kind, Params};
use crate::storage::{self, Storage};

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
    let opened: Result<Box<dyn Storage>> = storage::open(&ctx.config.mgrdir, params, secret);
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
            // Both names first: a taken plan name must not leave a new
            // storage behind.
            backupconf::check_new_names(db, Some(&storage_name), Some(&plan.name))?;
            let sealed = match &secret {
                Some(secret) => Some(engine::seal_secret(&ctx.config.mgrdir, secret)?),
                None => None,
            };
            let db = ctx.db()?;
            let storage = backupconf::add_storage(db, &storage_name, &params, sealed.as_deref())?;
            let plan = backupconf::add_plan(db, &PlanRow { storage, ..plan })?;
            backupconf::set_plan_extra_storages(db, plan, &also)?;
            log::info!(
                "storage `{storage_name}` ({}) and plan {plan} added by {}",
                params.describe(),
                req.actor()
            );
            Ok(Reply::Ok)
        }
    }
}

/// `billmgr.backup.settings`: module settings; `dropsettings=on` forgets
/// the settings and the catalog (copies stay on their storages); the rescan
/// button rebuilds the catalog from the listings on the default storage,
/// the check button probes the default storage.
pub fn settings(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    match req.mode() {
        Mode::View | Mode::SetValues => settings_form(req, ctx),
        Mode::SubmitNew | Mode::SubmitEdit => {
            if req.choice("dropsettings", &["on", "off"])? == Some("on") {
                backupconf::drop_all(ctx.db()?)?;
                log::warn!("backup settings and catalog dropped by {}", req.actor());
                return Ok(Reply::Ok);
            }
            match req.param("clicked_button") {
                Some("check_storage") => check_default_storage(ctx),
                Some("rescan") => {
                    let config = ctx.config;
                    let db = ctx.db()?;
                    let settings = Settings::resolve(config, db, None, None)?;
                    let added = engine::rescan(db, &settings, &mut |_, _| {})?;
                    log::info!("rescan added {added} copies");
                    Ok(Reply::Ok)
                }
                _ => save_settings(req, ctx),
            }
        }
    }
}

/// The settings of the panel's form: each saved value, else the config
/// file's, else the table's default.
fn settings_form(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let config = ctx.config;
    let db = ctx.db()?;
    let mut values = Vec::new();
    for s in SETTINGS {
        let Some(field) = s.field else { continue };
        let value = backupconf::setting(db, s.key)?
            .or_else(|| config.value(s.key).map(str::to_string))
            .unwrap_or_else(|| s.default.to_string());
        values.push((field, value));
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

/// The check button: the default storage, end to end.
fn check_default_storage(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let config = ctx.config;
    let settings = Settings::resolve(config, ctx.db()?, None, None)?;
    if let Err(e) = storage::probe(settings.storage.as_ref()) {
        log::warn!(
            "storage check of {} failed: {e}",
            settings.storage.describe()
        );
        return Err(
            PanelError::new(ErrorKind::Storage, settings.storage_name, e.to_string()).into(),
        );
    }
    Ok(Reply::Ok)
}

/// Saves the form: every value checked against its setting (files against
/// the panel's reach) before anything is written.
fn save_settings(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let config = ctx.config;
    let mut values = Vec::new();
    for s in SETTINGS {
        let Some(field) = s.field else { continue };
        let v = req.text(field, 4096)?.trim().to_string();
        if s.values == Values::Paths {
            within_reach(config, field, &v)?;
        }
        if !s.accepts(&v) {
            return Err(PanelError::value(field, &v).into());
        }
        values.push((s.key, v));
    }
    let encrypt = req.choice("encrypt", &["on", "off"])? == Some("on");
    let passphrase = req.text("passphrase", 1024)?;
    let db = ctx.db()?;
    if let Some(id) = req.opt_id(
        Setting::get("BackupDefaultStorage")
            .field
            .unwrap_or_default(),
    )? {
        if backupconf::storage(db, id)?.is_none() {
            return Err(PanelError::missed("storage", id).into());
        }
    }
    if let Some(id) = req.opt_id(Setting::get("BackupDefaultPlan").field.unwrap_or_default())? {
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
        let sealed = engine::seal_secret(&config.mgrdir, passphrase)?;
        backupconf::set_setting(db, "BackupPassphrase", &sealed)?;
        log::warn!("backup encryption passphrase changed by {}", req.actor());
    }
    Ok(Reply::Ok)
}
