//! The billing database's credentials where BILLmanager keeps them.
//!
//! BILLmanager 6 reads `etc/billmgr.conf`, then every
//! `etc/billmgr.conf.d/*.conf` (its installer writes `db.conf` there);
//! vendor modules ask the panel instead, with `mgrctl -m billmgr -o xml
//! paramlist`, whose `/doc/elem/<Name>` shows the merged values
//! (../shared/reference/real-host.md §1). The plugin reads the files the
//! same way (in name order, a later key wins). Only where no file names
//! the account (`DBUser`) does it ask `paramlist`, and never from inside a
//! panel call: the panel would be asked a second question while it waits
//! for the first one's answer. `install` and every cron tick (outside the
//! panel) ask it and keep the answer in [`PARAMLIST_CACHE`] (mode 600,
//! like `db.conf`); a panel call reads that. No account is ever guessed:
//! without one the error names every place read.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{parse_lines, DbSource};

/// The keys BILLmanager keeps the database in.
pub const DB_KEYS: &[&str] = &[
    "DBHost",
    "DBUser",
    "DBPassword",
    "DBName",
    "DBSocket",
    "DBPort",
];

/// `paramlist`'s database keys as last asked, relative to the panel
/// directory.
pub const PARAMLIST_CACHE: &str = "var/billmgr-ops.paramlist";

/// How long `mgrctl paramlist` may take.
const PARAMLIST_TIMEOUT: Duration = Duration::from_secs(15);

/// Where the database credentials came from (printed by `status` and
/// `install`; never the password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbOrigin {
    /// The `BILLMGR_OPS_DB` environment variable.
    Environment,
    /// `DBUrl` in the plugin's own config.
    PluginConfig(PathBuf),
    /// The panel's files that set a database key, in the order read.
    PanelFiles(Vec<PathBuf>),
    /// `mgrctl -m billmgr paramlist`, asked now or kept from the last ask.
    Paramlist { cached: bool },
}

impl fmt::Display for DbOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbOrigin::Environment => write!(f, "the BILLMGR_OPS_DB environment variable"),
            DbOrigin::PluginConfig(path) => write!(f, "DBUrl in {}", path.display()),
            DbOrigin::PanelFiles(files) => {
                let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
                write!(f, "{}", names.join(", "))
            }
            DbOrigin::Paramlist { cached: false } => write!(f, "mgrctl -m billmgr paramlist"),
            DbOrigin::Paramlist { cached: true } => {
                write!(
                    f,
                    "mgrctl -m billmgr paramlist (as kept in {PARAMLIST_CACHE})"
                )
            }
        }
    }
}

/// No place read names the billing database's account: the places read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no billing database account is configured; read: {}", .read.join("; "))]
pub struct NoCredentials {
    pub read: Vec<String>,
}

/// The panel's files in the order BILLmanager reads them: `billmgr.conf`,
/// then `billmgr.conf.d/*.conf` by name. Only those that exist.
fn panel_files(mgrdir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = vec![];
    let main = mgrdir.join("etc/billmgr.conf");
    if main.is_file() {
        files.push(main);
    }
    let dir = mgrdir.join("etc/billmgr.conf.d");
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            let mut more: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "conf") && p.is_file())
                .collect();
            more.sort();
            files.extend(more);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("failed to read `{}`", dir.display())),
    }
    Ok(files)
}

/// The database keys of the panel's files merged (a later file wins),
/// with the files that set any of them.
fn read_panel_files(mgrdir: &Path) -> Result<(BTreeMap<String, String>, Vec<PathBuf>)> {
    let mut values = BTreeMap::new();
    let mut setting = Vec::new();
    for path in panel_files(mgrdir)? {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        let mut any = false;
        for (key, value) in parse_lines(&text) {
            if DB_KEYS.contains(&key.as_str()) {
                values.insert(key, value);
                any = true;
            }
        }
        if any {
            setting.push(path);
        }
    }
    Ok((values, setting))
}

/// The source the database keys describe, when they name the account.
fn source_of(v: &BTreeMap<String, String>) -> Result<Option<DbSource>> {
    let Some(user) = v.get("DBUser").filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let get = |k: &str, d: &str| {
        v.get(k)
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| d.to_string())
    };
    let port = match v.get("DBPort").filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .with_context(|| format!("DBPort `{p}` is not a TCP port"))?,
        ),
    };
    let host = get("DBHost", "localhost");
    let socket = v
        .get("DBSocket")
        .filter(|s| !s.is_empty())
        .cloned()
        .or_else(|| {
            (host == "localhost" && port.is_none())
                .then(default_socket)
                .flatten()
        });
    Ok(Some(DbSource::Parts {
        host,
        user: user.clone(),
        password: get("DBPassword", ""),
        name: get("DBName", "billmgr"),
        socket,
        port,
    }))
}

/// Where the C client library (and so the panel) connects for host
/// `localhost`: the server's default socket, not TCP. Debian's and
/// Ubuntu's packages of MySQL and MariaDB put it in /run/mysqld, RHEL's in
/// /var/lib/mysql. An account such as Debian's `root` may log in there
/// only (unix_socket authentication).
fn default_socket() -> Option<String> {
    [
        "/run/mysqld/mysqld.sock",
        "/var/run/mysqld/mysqld.sock",
        "/var/lib/mysql/mysql.sock",
        "/tmp/mysql.sock",
    ]
    .iter()
    .find(|p| Path::new(p).exists())
    .map(|p| p.to_string())
}

/// The database as the panel keeps it: its files, else `paramlist` (asked
/// now when `may_ask`, else as kept from the last ask). Where nothing
/// names an account, the error lists the places read.
pub fn panel_db(mgrdir: &Path, may_ask: bool) -> Result<(DbSource, DbOrigin), NoCredentials> {
    let mut read = Vec::new();
    match read_panel_files(mgrdir) {
        Ok((values, setting)) => {
            match source_of(&values) {
                Ok(Some(source)) => return Ok((source, DbOrigin::PanelFiles(setting))),
                Ok(None) => {}
                Err(e) => read.push(format!("{}: {e:#}", describe_files(mgrdir))),
            }
            if read.is_empty() {
                read.push(describe_files(mgrdir));
            }
        }
        Err(e) => read.push(format!("{e:#}")),
    }
    if may_ask {
        match ask_paramlist(mgrdir) {
            Ok(values) => {
                match source_of(&values) {
                    Ok(Some(source)) => {
                        // Only an answer that names the account is kept.
                        if let Err(e) = keep(mgrdir, &values) {
                            log::warn!("cannot keep paramlist's answer: {e:#}");
                        }
                        return Ok((source, DbOrigin::Paramlist { cached: false }));
                    }
                    Ok(None) => read.push("mgrctl -m billmgr paramlist (no DBUser)".into()),
                    Err(e) => read.push(format!("mgrctl -m billmgr paramlist: {e:#}")),
                }
            }
            Err(e) => read.push(format!("mgrctl -m billmgr paramlist: {e:#}")),
        }
    }
    let cache = mgrdir.join(PARAMLIST_CACHE);
    match std::fs::read_to_string(&cache) {
        Ok(text) => match source_of(&parse_lines(&text)) {
            Ok(Some(source)) => return Ok((source, DbOrigin::Paramlist { cached: true })),
            Ok(None) => read.push(format!("{} (no DBUser)", cache.display())),
            Err(e) => read.push(format!("{}: {e:#}", cache.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            read.push(format!("{} (absent)", cache.display()));
        }
        Err(e) => read.push(format!("{}: {e}", cache.display())),
    }
    Err(NoCredentials { read })
}

fn describe_files(mgrdir: &Path) -> String {
    format!(
        "{} and {}/*.conf (no DBUser)",
        mgrdir.join("etc/billmgr.conf").display(),
        mgrdir.join("etc/billmgr.conf.d").display()
    )
}

/// Asks the panel: `<mgrdir>/sbin/mgrctl -m billmgr -o xml paramlist`,
/// within [`PARAMLIST_TIMEOUT`]; its database keys.
fn ask_paramlist(mgrdir: &Path) -> Result<BTreeMap<String, String>> {
    let doc = crate::mgrctl::call(mgrdir, "paramlist", &[], PARAMLIST_TIMEOUT)?;
    let mut values = BTreeMap::new();
    for elem in doc.find_all("elem") {
        for field in elem.elements() {
            if DB_KEYS.contains(&field.name.as_str()) {
                values.insert(field.name.clone(), field.text_content().trim().to_string());
            }
        }
    }
    Ok(values)
}

/// Keeps `paramlist`'s database keys for panel calls: written under a
/// temporary name (mode 600, never through a symbolic link) and renamed.
fn keep(mgrdir: &Path, values: &BTreeMap<String, String>) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    let mut text = String::from(
        "# billmgr-ops: the database keys of `mgrctl -m billmgr paramlist`, kept for panel calls\n",
    );
    for (k, v) in values {
        if v.contains('\n') {
            bail!("{k} holds a line break");
        }
        text.push_str(&format!("{k} {v}\n"));
    }
    let rel = Path::new(PARAMLIST_CACHE);
    let dir =
        crate::fsutil::Dir::open(mgrdir)?.walk(rel.parent().unwrap_or(Path::new("")), None)?;
    let name = rel.file_name().context("no file name")?;
    let (mut file, temp) = dir.create_temp(name)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    dir.rename(&temp, name)?;
    Ok(())
}
