//! `billmgr-ops install` and `uninstall`: putting the plugin into a panel
//! directory, upgrading it in place, and taking it out again.
//!
//! Everything install places is listed in `planned_files`; what it
//! actually placed is recorded in `<mgrdir>/etc/billmgr-ops.installed`, so
//! an uninstall removes exactly that (and an upgrade removes what an older
//! version placed and this one no longer does). Each file is written under a
//! temporary name and renamed, only when its content, mode or owner differ:
//! a second install changes nothing and does not disturb the panel. The
//! plugin's config is created from the example only when absent and never
//! overwritten; an uninstall keeps it when it was edited, and keeps the
//! plugin's tables, key, log and copies unless asked with `--purge`.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod panel;

use crate::config::{Config, InstallMode};
use crate::db::{migrate, Db};
use crate::download::CGI_NAME;
use crate::protocol::naming;
use panel::reload_panel;

/// The handler's file name in `<mgrdir>/addon/`, as the manifests name it.
pub const HANDLER: &str = "billmgr-ops";
/// The record of an installation.
pub const RECORD: &str = crate::config::INSTALL_RECORD;
/// The plugin's config, relative to the panel directory.
pub const CONFIG: &str = "etc/billmgr-ops.conf";
/// The annotated example config, shipped and refreshed by every install.
pub const CONFIG_EXAMPLE_TEXT: &str = include_str!("../../etc/billmgr-ops.conf.example");

/// Where to install.
#[derive(Clone, Debug)]
pub struct Target {
    /// The panel directory (`/usr/local/mgr5`).
    pub mgrdir: PathBuf,
    /// The root under which `etc/cron.d` and `etc/logrotate.d` live: `/`
    /// on a server; a temporary directory in tests and package builds.
    pub sysroot: PathBuf,
    /// The binary to install (normally the running one).
    pub binary: PathBuf,
    /// The log file, for the logrotate rules.
    pub log_file: PathBuf,
    /// Companion or replace (`--mode`); `None`: keep the installed mode, or
    /// companion on a first install.
    pub mode: Option<InstallMode>,
}

/// What one install or uninstall did, line by line, for the administrator.
#[derive(Debug, Default)]
pub struct Report {
    /// Files written, replaced or removed.
    pub changed: Vec<String>,
    /// Things worth knowing that are not failures.
    pub notices: Vec<String>,
}

impl Report {
    fn change(&mut self, what: &str, path: &Path) {
        self.changed.push(format!("{what} {}", path.display()));
    }
}

/// The content of one installed file.
enum Content {
    Text(String),
    /// A file copied as it is (the binary).
    File(PathBuf),
}

/// One file install places.
struct Planned {
    path: PathBuf,
    content: Content,
    mode: u32,
}

/// The record kept in `<mgrdir>/etc/billmgr-ops.installed`.
#[derive(Serialize, Deserialize, Debug, Default, PartialEq, Eq)]
struct Record {
    version: String,
    /// Every file install placed, absolute.
    files: Vec<PathBuf>,
    /// Directories install had to create, removed again when empty.
    dirs: Vec<PathBuf>,
    /// SHA-256 of the config as install created it; absent when the config
    /// existed before.
    config_sha256: Option<String>,
    /// companion or replace; absent in records of versions before modes
    /// (which installed the BILLmanager names: replace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<InstallMode>,
}

/// The cron line's file: one tick a minute.
fn cron_text(mgrdir: &Path) -> String {
    format!(
        "# billmgr-ops: the scheduler tick (backup plans, running operations).\n\
         # Placed by `billmgr-ops install`; `billmgr-ops uninstall` removes it.\n\
         SHELL=/bin/sh\n\
         PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         * * * * * root {} --mgrdir {} cron >/dev/null 2>&1\n",
        mgrdir.join("addon").join(HANDLER).display(),
        mgrdir.display()
    )
}

/// The logrotate rules for the plugin's log. Every billmgr-ops process
/// reopens the log when it was rotated away (see [`crate::logging`]), so no
/// copytruncate and no signal are needed.
fn logrotate_text(log_file: &Path) -> String {
    format!(
        "# billmgr-ops log. Placed by `billmgr-ops install`.\n\
         {} {{\n    weekly\n    maxsize 50M\n    rotate 8\n    compress\n    delaycompress\n    \
         missingok\n    notifempty\n    create 0640 root root\n}}\n",
        log_file.display()
    )
}

/// Everything install places for `mode`, in order.
fn planned_files(t: &Target, mode: InstallMode) -> Vec<Planned> {
    let mut files = vec![Planned {
        path: t.mgrdir.join("addon").join(HANDLER),
        content: Content::File(t.binary.clone()),
        mode: 0o750,
    }];
    for (name, text) in naming::manifests(mode) {
        files.push(Planned {
            path: t.mgrdir.join("etc/xml").join(name),
            content: Content::Text(text),
            mode: 0o644,
        });
    }
    // The download CGI: the same binary as a regular file under the name
    // it tells its role by (vendor CGIs are regular files; whether the web
    // server follows a link is not documented).
    files.push(Planned {
        path: t.mgrdir.join("cgi").join(CGI_NAME),
        content: Content::File(t.binary.clone()),
        mode: 0o755,
    });
    files.push(Planned {
        path: t.mgrdir.join("etc/billmgr-ops.conf.example"),
        content: Content::Text(CONFIG_EXAMPLE_TEXT.to_string()),
        mode: 0o644,
    });
    files.push(Planned {
        path: t.sysroot.join("etc/cron.d/billmgr-ops"),
        content: Content::Text(cron_text(&t.mgrdir)),
        mode: 0o644,
    });
    files.push(Planned {
        path: t.sysroot.join("etc/logrotate.d/billmgr-ops"),
        content: Content::Text(logrotate_text(&t.log_file)),
        mode: 0o644,
    });
    files
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn file_sha256(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Is `path` already exactly as planned (content, mode, and root's when
/// we are root)?
fn is_current(p: &Planned) -> Result<bool> {
    let Ok(meta) = fs::symlink_metadata(&p.path) else {
        return Ok(false);
    };
    if !meta.is_file()
        || meta.mode() & 0o7777 != p.mode
        || (as_root() && (meta.uid() != 0 || meta.gid() != 0))
    {
        return Ok(false);
    }
    Ok(match &p.content {
        Content::Text(text) => {
            meta.len() == text.len() as u64 && fs::read(&p.path)? == text.as_bytes()
        }
        Content::File(src) => {
            meta.len() == fs::metadata(src)?.len() && file_sha256(&p.path)? == file_sha256(src)?
        }
    })
}

/// Writes `p` under a temporary name beside it and renames it into place.
fn put(p: &Planned) -> Result<()> {
    let dir = p.path.parent().context("no parent directory")?;
    let name = p
        .path
        .file_name()
        .context("no file name")?
        .to_string_lossy();
    // A name no one can guess, created exclusively: a link planted there
    // is never written through.
    let tmp = dir.join(format!(".{name}.bmo-{}", crate::fsutil::random_hex(6)?));
    let written = (|| -> Result<()> {
        match &p.content {
            Content::Text(text) => write_new(&tmp, text.as_bytes())?,
            Content::File(src) => {
                let mut from = fs::File::open(src)
                    .with_context(|| format!("cannot read {}", src.display()))?;
                let mut to = crate::fsutil::create_new(&tmp, 0o600)?;
                std::io::copy(&mut from, &mut to)?;
                to.sync_all()?;
            }
        }
        if as_root() {
            std::os::unix::fs::chown(&tmp, Some(0), Some(0))?;
        }
        fs::set_permissions(&tmp, fs::Permissions::from_mode(p.mode))?;
        Ok(())
    })();
    let result = written.and_then(|()| fs::rename(&tmp, &p.path).map_err(Into::into));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("failed to write {}", p.path.display()))
}

fn write_new(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = crate::fsutil::create_new(path, 0o600)?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

fn read_record(mgrdir: &Path) -> Result<Option<Record>> {
    let path = mgrdir.join(RECORD);
    match fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .with_context(|| format!("{} is damaged; remove it and install again", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Checks that we may write where we are asked to: the real /etc and a
/// panel directory are root's.
fn check_rights(t: &Target) -> Result<()> {
    if !as_root() && t.sysroot == Path::new("/") {
        bail!("this writes the panel's directory and /etc/cron.d: run it as root (sudo billmgr-ops ...)");
    }
    Ok(())
}

/// Checks that `mgrdir` looks like a panel directory.
fn check_panel(mgrdir: &Path) -> Result<()> {
    if !mgrdir.join("etc").is_dir() {
        bail!(
            "{} is not a BILLmanager directory (it has no etc/); give the right one with --mgrdir",
            mgrdir.display()
        );
    }
    Ok(())
}

/// Installs or upgrades the plugin: migrations first (nothing is touched
/// when the database is unreachable), then the files, then a panel reload
/// when anything changed.
pub fn install(config: &Config, t: &Target) -> Result<Report> {
    check_rights(t)?;
    check_panel(&t.mgrdir)?;
    if !t.binary.is_file() {
        bail!(
            "the binary to install, {}, is not a file",
            t.binary.display()
        );
    }
    let mut report = Report::default();
    let source = config.db_source()?;
    let mut db = Db::connect(source, config.db_connect_timeout)?;
    let account = crate::db::account::read(&mut db)?;
    report.notices.push(format!(
        "database {source} (credentials from {}), server {}, account {}",
        config
            .db_origin
            .as_ref()
            .map_or_else(String::new, |o| o.to_string()),
        account.server,
        account.user
    ));
    report.notices.extend(account.missing);
    // Restores to a second: what the server and the account lack for
    // the binary-log follower, each with how to turn it on.
    match crate::db::account::log_prerequisites(&mut db) {
        Ok(p) if p.ready() => report.notices.push(
            "restores to a second: the binary log can be followed; the cron tick starts `backup follow`".into(),
        ),
        Ok(p) => report
            .notices
            .extend(p.missing.iter().map(|m| format!("restores to a second: {m}"))),
        Err(e) => report
            .notices
            .push(format!("restores to a second: cannot read the binary log's settings: {e:#}")),
    }
    let before = migrate::current(&mut db)?;
    migrate::migrate(&mut db)?;
    let after = migrate::current(&mut db)?;
    if after != before {
        report.changed.push(format!(
            "plugin tables migrated from version {before} to {after}"
        ));
    }
    drop(db);

    if !t.sysroot.join("etc/cron.d").is_dir() {
        report.notices.push(
            "no /etc/cron.d: install cron (Debian, Ubuntu: apt install cron; RHEL family: dnf install cronie), \
             or nothing will be scheduled"
                .into(),
        );
    }
    let previous = read_record(&t.mgrdir)?;
    // The mode asked for; else the one installed (a record from before
    // modes installed the BILLmanager names); else companion.
    let mode = t.mode.unwrap_or(match &previous {
        Some(r) => r.mode.unwrap_or(InstallMode::Replace),
        None => InstallMode::Companion,
    });
    let old = previous.unwrap_or_default();
    let mut record = Record {
        version: env!("CARGO_PKG_VERSION").to_string(),
        dirs: old.dirs.clone(),
        config_sha256: old.config_sha256.clone(),
        files: Vec::new(),
        mode: Some(mode),
    };
    if old.mode != Some(mode) {
        report.notices.push(format!(
            "mode: {} ({})",
            mode.as_str(),
            match mode {
                InstallMode::Companion => "functions under billmgrops.* names beside BILLmanager's own; BILLmanager runs the processing modules",
                InstallMode::Replace => "functions under BILLmanager's own names; billmgr-ops runs the processing modules",
            }
        ));
    }
    for p in planned_files(t, mode) {
        let dir = p.path.parent().context("no parent directory")?;
        if !dir.exists() {
            fs::create_dir_all(dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
            record.dirs.push(dir.to_path_buf());
            report.change("created", dir);
        }
        if !is_current(&p)? {
            let existed = p.path.symlink_metadata().is_ok();
            put(&p)?;
            report.change(if existed { "updated" } else { "installed" }, &p.path);
        }
        record.files.push(p.path);
    }
    for gone in old.files.iter().filter(|f| !record.files.contains(f)) {
        if remove_file(gone)? {
            report.change("removed (no longer shipped)", gone);
        }
    }
    let config_path = t.mgrdir.join(CONFIG);
    if !config_path.exists() {
        put(&Planned {
            path: config_path.clone(),
            content: Content::Text(CONFIG_EXAMPLE_TEXT.to_string()),
            mode: 0o600,
        })?;
        record.config_sha256 = Some(sha256_hex(CONFIG_EXAMPLE_TEXT.as_bytes()));
        report.change("created", &config_path);
    } else {
        report.notices.push(format!(
            "kept the existing config {}",
            config_path.display()
        ));
    }
    if old != record {
        let text = serde_json::to_string_pretty(&record)? + "\n";
        put(&Planned {
            path: t.mgrdir.join(RECORD),
            content: Content::Text(text),
            mode: 0o644,
        })?;
    }
    if report.changed.is_empty() {
        report
            .notices
            .push("already installed and current: nothing changed".into());
    } else {
        reload_panel(&t.mgrdir, &mut report);
    }
    Ok(report)
}

/// What to remove besides the installed files.
#[derive(Clone, Copy, Debug, Default)]
pub struct Removal {
    /// Also the plugin's tables, config, key and log.
    pub purge: bool,
}

/// Removes what install placed; with `purge`, the plugin's data too (never
/// the copies on the storages).
pub fn uninstall(config: &Config, t: &Target, removal: Removal) -> Result<Report> {
    check_rights(t)?;
    check_panel(&t.mgrdir)?;
    let mut report = Report::default();
    if removal.purge {
        let source = config
            .db
            .as_ref()
            .context("--purge drops the plugin's tables, but no database is configured")?;
        let mut db = Db::connect(source, config.db_connect_timeout)?;
        let dropped = migrate::drop_plugin_tables(&mut db)?;
        report
            .changed
            .push(format!("dropped {dropped} plugin tables (billmgrops_*)"));
    }
    let record = match read_record(&t.mgrdir)? {
        Some(r) => r,
        None => {
            report.notices.push(format!(
                "no {} (installed by hand?): removing the files install would place",
                t.mgrdir.join(RECORD).display()
            ));
            Record {
                files: planned_files(t, InstallMode::Companion)
                    .into_iter()
                    .map(|p| p.path)
                    .collect(),
                ..Record::default()
            }
        }
    };
    for file in &record.files {
        if remove_file(file)? {
            report.change("removed", file);
        }
    }
    let config_path = t.mgrdir.join(CONFIG);
    if config_path.exists() {
        let untouched = record
            .config_sha256
            .as_deref()
            .is_some_and(|sha| file_sha256(&config_path).ok().as_deref() == Some(sha));
        if untouched || removal.purge {
            remove_file(&config_path)?;
            report.change("removed", &config_path);
        } else {
            report.notices.push(format!(
                "kept {} (edited, or not created by install; --purge removes it)",
                config_path.display()
            ));
        }
    }
    if removal.purge {
        for data in [t.mgrdir.join("etc/billmgr-ops.key")]
            .into_iter()
            .chain(rotated_logs(&t.log_file))
        {
            if remove_file(&data)? {
                report.change("removed", &data);
            }
        }
    } else {
        report.notices.push(
            "kept the plugin's tables, key, log and copies (uninstall --purge removes all but the copies)"
                .into(),
        );
    }
    if remove_file(&t.mgrdir.join(RECORD))? {
        report.change("removed", &t.mgrdir.join(RECORD));
    }
    for dir in record.dirs.iter().rev() {
        if fs::remove_dir(dir).is_ok() {
            report.change("removed", dir);
        }
    }
    if !report.changed.is_empty() {
        reload_panel(&t.mgrdir, &mut report);
    }
    Ok(report)
}

/// The log and its rotated generations (`billmgr-ops.log.1`, `.2.gz` ...).
fn rotated_logs(log_file: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (log_file.parent(), log_file.file_name()) else {
        return Vec::new();
    };
    let name = name.to_string_lossy().into_owned();
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|f| {
                let f = f.to_string_lossy();
                f == name || f.starts_with(&format!("{name}."))
            })
        })
        .collect()
}

/// Removes a file or link; `false` when it was not there.
fn remove_file(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("failed to remove {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cron_line_runs_the_installed_handler_every_minute() {
        let text = cron_text(Path::new("/usr/local/mgr5"));
        assert!(text.contains(
            "* * * * * root /usr/local/mgr5/addon/billmgr-ops --mgrdir /usr/local/mgr5 cron"
        ));
        assert!(
            text.ends_with('\n'),
            "cron ignores a last line without newline"
        );
    }

    #[test]
    fn every_manifest_is_planned_with_the_handler_and_cgi() {
        let t = Target {
            mgrdir: PathBuf::from("/m"),
            sysroot: PathBuf::from("/"),
            binary: PathBuf::from("/b"),
            log_file: PathBuf::from("/m/var/billmgr-ops.log"),
            mode: None,
        };
        let paths: Vec<_> = planned_files(&t, InstallMode::Companion)
            .into_iter()
            .map(|p| p.path)
            .collect();
        assert!(paths.contains(&PathBuf::from("/m/addon/billmgr-ops")));
        assert!(paths.contains(&PathBuf::from("/m/cgi").join(CGI_NAME)));
        assert!(paths.contains(&PathBuf::from("/etc/cron.d/billmgr-ops")));
        for (name, _) in crate::protocol::messages::MANIFESTS {
            assert!(paths.contains(&PathBuf::from("/m/etc/xml").join(name)));
        }
    }
}
