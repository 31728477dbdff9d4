//! `backups.download` and `backups.upload`: a copy taken home through a
//! single-use link, and one brought back (a file the panel hands over, or
//! a URL), verified before it is listed.

use anyhow::Result;

use super::storage_options;
use crate::context::Ctx;
use crate::db::backupconf;
use crate::db::backups::{self, JobState};
use crate::engine;
use crate::functions::label;
use crate::protocol::{ErrorKind, Form, Mode, PanelError, RedirectKind, Reply, Request, Slist};

/// `backups.download`: a redirect to the download CGI with a single-use
/// token that expires in minutes (see `crate::download`).
pub fn download(req: &Request, ctx: &mut Ctx<'_>) -> Result<Reply> {
    let id = req.elid()?;
    let admin = req.actor().to_string();
    let config = ctx.config;
    let db = ctx.db()?;
    let row = backups::get(db, id)?.ok_or_else(|| PanelError::missed("backup", id))?;
    if row.state != JobState::Ok {
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
                    engine::Source::Url {
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
            let settings = engine::Settings::resolve(config, db, None, storage)?;
            let row = engine::upload_copy(
                config,
                &source,
                &settings,
                &from,
                Some(&name),
                Box::new(|_, _| {}),
            )?;
            log::info!("copy {} uploaded by {}", row.name, req.actor());
            Ok(Reply::Ok)
        }
    }
}

/// The panel's uploaded file: below `UploadDir` (lexically, then walked
/// without following a symbolic link), a regular file, opened now.
fn uploaded_file(config: &crate::config::Config, file: &str) -> Result<engine::Source, PanelError> {
    let path = std::path::PathBuf::from(file);
    let outside = || PanelError::new(ErrorKind::Outside, "file", file);
    let rel = crate::fsutil::below(&config.upload_dir, &path).ok_or_else(outside)?;
    let name = rel.file_name().ok_or_else(outside)?;
    let opened = crate::fsutil::Dir::open(&config.upload_dir)
        .and_then(|d| d.walk(rel.parent().unwrap_or(std::path::Path::new("")), None))
        .and_then(|d| d.open_file(name));
    match opened {
        Ok(f) => Ok(engine::Source::Opened(f, path)),
        Err(e) => {
            log::warn!("upload of `{file}` refused: {e}");
            Err(PanelError::value("file", file))
        }
    }
}
