//! Configuration: the panel directory, the plugin's own config file and the
//! database credentials.
//!
//! Both config files use BILLmanager's "Name value" line format (`#` starts
//! a comment). Every key the plugin knows is listed once in [`KEYS`], with
//! its default and a one-line description; etc/billmgr-ops.conf.example and
//! the README's configuration reference are checked against that table.
//!
//! The database is found in this order: the `BILLMGR_OPS_DB` environment
//! variable (a mysql:// URL), the `DBUrl` key of the plugin's config, then
//! where BILLmanager keeps it ([`panel_db`]: `DBHost`, `DBUser`,
//! `DBPassword`, `DBName`, `DBSocket`, `DBPort` from `etc/billmgr.conf` and
//! `etc/billmgr.conf.d/*.conf`, else `mgrctl paramlist`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

pub use keys::KEYS;
pub use panel_db::{DbOrigin, NoCredentials};

/// The default panel directory.
pub const DEFAULT_MGRDIR: &str = "/usr/local/mgr5";
/// The record `install` keeps of what it placed (relative to the panel
/// directory): its version and mode are read here too.
pub const INSTALL_RECORD: &str = "etc/billmgr-ops.installed";

/// How the plugin is installed into the panel (see
/// [`crate::protocol::naming`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstallMode {
    /// Functions under names of their own (`billmgrops.*`), beside
    /// BILLmanager's own: nothing built in is shadowed. The default.
    Companion,
    /// Functions under BILLmanager's own names.
    Replace,
}

impl InstallMode {
    pub fn parse(s: &str) -> Option<InstallMode> {
        match s {
            "companion" => Some(InstallMode::Companion),
            "replace" => Some(InstallMode::Replace),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InstallMode::Companion => "companion",
            InstallMode::Replace => "replace",
        }
    }
}

/// Whether this plugin's runner starts processing modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunModules {
    /// On, except when installed in companion mode (where BILLmanager's
    /// own scheduler runs the operations).
    Auto,
    On,
    Off,
}

/// How a copy reads rows (`BackupReader`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RowReader {
    /// The dump's own connection (`db::wire`), the client library where
    /// that cannot log in.
    #[default]
    Direct,
    /// Always the client library.
    Client,
}

/// Where the billing database is and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub enum DbSource {
    /// A mysql:// URL.
    Url(String),
    /// The parts as the panel keeps them.
    Parts {
        host: String,
        user: String,
        password: String,
        name: String,
        socket: Option<String>,
        port: Option<u16>,
    },
    /// Another database on the same server as `base` (an import's
    /// scratch database, for example).
    Sibling {
        base: Box<DbSource>,
        database: String,
    },
}

impl DbSource {
    /// The same server and account, database `database`.
    pub fn sibling(&self, database: &str) -> DbSource {
        DbSource::Sibling {
            base: Box::new(self.clone()),
            database: database.to_string(),
        }
    }
}

impl fmt::Debug for DbSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Printable without the password: safe for logs and error messages.
impl fmt::Display for DbSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbSource::Url(url) => write!(f, "{}", redact_url(url)),
            DbSource::Parts {
                host,
                user,
                name,
                socket,
                port,
                ..
            } => match (socket, port) {
                (Some(s), _) => write!(f, "{user}@{name} via socket {s}"),
                (None, Some(port)) => write!(f, "{user}@{host}:{port}/{name}"),
                (None, None) => write!(f, "{user}@{host}/{name}"),
            },
            DbSource::Sibling { base, database } => write!(f, "{base} (database {database})"),
        }
    }
}

/// Removes the password from a mysql:// URL.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

/// Settings of the operation runner and scheduler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerConfig {
    pub timeout: Duration,
    pub retry_delay: Duration,
    pub retry_delay_max: Duration,
    pub max_attempts: u32,
    pub concurrency: u32,
    /// Attempts of one processing module at once (never more than
    /// `concurrency`).
    pub module_concurrency: u32,
    /// How long a tick keeps feeding free slots.
    pub scheduler_stay: Duration,
    pub output_limit: usize,
}

/// The loaded configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub mgrdir: PathBuf,
    /// The config file that was read, if it exists.
    pub path: PathBuf,
    pub admin_level: u32,
    pub db_connect_timeout: Duration,
    pub log_file: PathBuf,
    pub log_level: String,
    /// The database, if one could be determined.
    pub db: Option<DbSource>,
    /// Where [`Config::db`] came from.
    pub db_origin: Option<DbOrigin>,
    /// Why there is no database: the places read.
    pub no_db: Option<NoCredentials>,
    /// How the operation runner behaves.
    pub runner: RunnerConfig,
    /// The backup passphrase from BILLMGR_OPS_PASSPHRASE, for restoring
    /// encrypted copies where the database holds no settings (a new server).
    pub backup_passphrase: Option<String>,
    /// A new storage's password or secret key from
    /// BILLMGR_OPS_STORAGE_SECRET (`backup storage add`).
    pub storage_secret: Option<String>,
    /// Developer builds only (the tests): a pause between two dump
    /// workers' snapshots, from BILLMGR_OPS_DEV_SNAPSHOT_GAP_MS, so that a
    /// test sees writes land between them unless the lock holds them back.
    pub dev_snapshot_gap: Option<Duration>,
    /// The directories whose files may be copied and restored: the panel
    /// directory, then `BackupFilesAllowed`.
    pub file_roots: Vec<PathBuf>,
    /// Where the panel leaves uploaded files (`UploadDir`).
    pub upload_dir: PathBuf,
    /// `BackupReader`.
    pub backup_reader: RowReader,
    /// `UploadPrivateUrls`: URL uploads may reach internal addresses.
    pub upload_private_urls: bool,
    /// `RunModules`.
    pub run_modules: RunModules,
    /// `ListPaging plugin`: lists are paged here even for the panel.
    pub plugin_paging: bool,
    /// Problems worth a log line that do not stop the plugin (unknown keys).
    pub warnings: Vec<String>,
    /// Every value from the file, for keys later issues add.
    values: BTreeMap<String, String>,
}

/// Was this process started by the panel (an addon handler's call, or
/// the download CGI)? It then never asks the panel a question of its own.
fn called_by_panel(env: &BTreeMap<String, String>) -> bool {
    ["PARAM_func", "AUTH_USER", "GATEWAY_INTERFACE"]
        .iter()
        .any(|k| env.contains_key(*k))
}

/// Reads "Name value" lines; the value is the rest of the line, trimmed.
pub fn parse_lines(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once(char::is_whitespace) {
            Some((n, v)) => (n, v.trim()),
            None => (line, ""),
        };
        out.insert(name.to_string(), value.to_string());
    }
    out
}

impl Config {
    /// Loads the configuration.
    ///
    /// `mgrdir` and `path` are what the command line gave; `env` supplies
    /// `MGR_DIR`, `BILLMGR_OPS_CONFIG` and `BILLMGR_OPS_DB`.
    pub fn load(
        mgrdir: Option<&Path>,
        path: Option<&Path>,
        env: &BTreeMap<String, String>,
    ) -> Result<Config> {
        let mgrdir = mgrdir
            .map(Path::to_path_buf)
            .or_else(|| {
                env.get("MGR_DIR")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MGRDIR));
        let path = path
            .map(Path::to_path_buf)
            .or_else(|| {
                env.get("BILLMGR_OPS_CONFIG")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| mgrdir.join("etc/billmgr-ops.conf"));
        let values = match std::fs::read_to_string(&path) {
            Ok(text) => parse_lines(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read `{}`", path.display()))
            }
        };
        let mut warnings = Vec::new();
        for name in values.keys() {
            if !KEYS.iter().any(|k| k.name == name) {
                warnings.push(format!("{}: unknown key `{name}` ignored", path.display()));
            }
        }
        let get = |name: &str| -> String {
            values
                .get(name)
                .cloned()
                .or_else(|| {
                    KEYS.iter()
                        .find(|k| k.name == name)
                        .map(|k| k.default.to_string())
                })
                .unwrap_or_default()
        };
        let number = |name: &str| -> Result<u64> {
            let v = get(name);
            v.parse::<u64>()
                .with_context(|| format!("{}: `{name} {v}` is not a whole number", path.display()))
        };
        let admin_level = number("AdminLevel")?;
        if admin_level > 31 {
            bail!(
                "{}: AdminLevel must be 0..31, not {admin_level}",
                path.display()
            );
        }
        let log_file = PathBuf::from(get("LogFile"));
        let log_file = if log_file.is_absolute() {
            log_file
        } else {
            mgrdir.join(log_file)
        };
        let db = match env.get("BILLMGR_OPS_DB").filter(|v| !v.is_empty()) {
            Some(url) => Ok((DbSource::Url(url.clone()), DbOrigin::Environment)),
            None => match get("DBUrl") {
                url if !url.is_empty() => {
                    Ok((DbSource::Url(url), DbOrigin::PluginConfig(path.clone())))
                }
                // The panel is never asked from inside a panel call.
                _ => panel_db::panel_db(&mgrdir, !called_by_panel(env)),
            },
        };
        let (db, db_origin, no_db) = match db {
            Ok((source, origin)) => (Some(source), Some(origin), None),
            Err(missing) => (None, None, Some(missing)),
        };
        let runner = RunnerConfig {
            timeout: Duration::from_secs(number("OperationTimeout")?.max(1)),
            retry_delay: Duration::from_secs(number("RetryDelay")?),
            retry_delay_max: Duration::from_secs(number("RetryDelayMax")?),
            max_attempts: number("MaxAttempts")?.clamp(1, 1_000) as u32,
            concurrency: number("Concurrency")?.clamp(1, 256) as u32,
            module_concurrency: match number("ModuleConcurrency")? {
                0 => number("Concurrency")?.clamp(1, 256).div_ceil(2) as u32,
                n => n.clamp(1, number("Concurrency")?.clamp(1, 256)) as u32,
            },
            scheduler_stay: Duration::from_secs(number("SchedulerStay")?.min(55)),
            output_limit: number("OutputLimit")?.clamp(1024, 16 << 20) as usize,
        };
        let mut file_roots = vec![mgrdir.clone()];
        for dir in get("BackupFilesAllowed").split_whitespace() {
            let dir = PathBuf::from(dir);
            if !dir.is_absolute() || crate::fsutil::below(Path::new("/"), &dir).is_none() {
                bail!(
                    "{}: BackupFilesAllowed needs plain absolute paths, not `{}`",
                    path.display(),
                    dir.display()
                );
            }
            file_roots.push(dir);
        }
        let upload_dir = match PathBuf::from(get("UploadDir")) {
            d if d.is_absolute() => d,
            d => mgrdir.join(d),
        };
        let upload_private_urls = match get("UploadPrivateUrls").as_str() {
            "on" => true,
            "off" | "" => false,
            other => bail!(
                "{}: UploadPrivateUrls is on or off, not `{other}`",
                path.display()
            ),
        };
        let run_modules = match get("RunModules").as_str() {
            "auto" | "" => RunModules::Auto,
            "on" => RunModules::On,
            "off" => RunModules::Off,
            other => bail!(
                "{}: RunModules is auto, on or off, not `{other}`",
                path.display()
            ),
        };
        let backup_reader = match get("BackupReader").as_str() {
            "direct" | "" => RowReader::Direct,
            "client" => RowReader::Client,
            other => bail!(
                "{}: BackupReader is direct or client, not `{other}`",
                path.display()
            ),
        };
        let plugin_paging = match get("ListPaging").as_str() {
            "panel" | "" => false,
            "plugin" => true,
            other => bail!(
                "{}: ListPaging is panel or plugin, not `{other}`",
                path.display()
            ),
        };
        Ok(Config {
            run_modules,
            plugin_paging,
            file_roots,
            upload_dir,
            upload_private_urls,
            backup_reader,
            backup_passphrase: env
                .get("BILLMGR_OPS_PASSPHRASE")
                .filter(|p| !p.is_empty())
                .cloned(),
            storage_secret: env
                .get("BILLMGR_OPS_STORAGE_SECRET")
                .filter(|p| !p.is_empty())
                .cloned(),
            dev_snapshot_gap: env
                .get("BILLMGR_OPS_DEV_SNAPSHOT_GAP_MS")
                .filter(|_| cfg!(feature = "dev"))
                .and_then(|v| v.parse::<u64>().ok())
                .map(|ms| Duration::from_millis(ms.min(5_000))),
            runner,
            admin_level: admin_level as u32,
            db_connect_timeout: Duration::from_secs(number("DBConnectTimeout")?.max(1)),
            log_level: get("LogLevel"),
            log_file,
            db,
            db_origin,
            no_db,
            warnings,
            mgrdir,
            path,
            values,
        })
    }

    /// How the plugin was installed into this panel, as `install` recorded
    /// it (`<mgrdir>/etc/billmgr-ops.installed`); `None` when it was not
    /// (a development tree, the tests).
    pub fn install_mode(&self) -> Option<InstallMode> {
        let text = std::fs::read(self.mgrdir.join(INSTALL_RECORD)).ok()?;
        let record: serde_json::Value = serde_json::from_slice(&text).ok()?;
        match record.get("mode").and_then(|m| m.as_str()) {
            Some(mode) => InstallMode::parse(mode),
            // A record from before modes existed: the BILLmanager names.
            None => Some(InstallMode::Replace),
        }
    }

    /// BILLmanager's maintenance mode (`<mgrdir>/etc/billmgr.DoNothing`):
    /// cron starts no operation and no backup plan.
    pub fn maintenance(&self) -> bool {
        self.mgrdir.join("etc/billmgr.DoNothing").exists()
    }

    /// The version `install` last placed into this panel, if it did.
    pub fn installed_version(&self) -> Option<String> {
        let text = std::fs::read(self.mgrdir.join(INSTALL_RECORD)).ok()?;
        let record: serde_json::Value = serde_json::from_slice(&text).ok()?;
        Some(record.get("version")?.as_str()?.to_string())
    }

    /// Whether this plugin's runner may start processing modules: not in
    /// companion mode unless `RunModules on`, because BILLmanager's own
    /// scheduler restarts the same operations every 5 minutes.
    pub fn runs_modules(&self) -> bool {
        match self.run_modules {
            RunModules::On => true,
            RunModules::Off => false,
            RunModules::Auto => self.install_mode() != Some(InstallMode::Companion),
        }
    }

    /// The allowed directory `path` lies in, and its place below it: files
    /// outside every one of [`Config::file_roots`] are neither copied nor
    /// restored. Lexical (no `..` is accepted); the restore walks the
    /// rest without following links.
    pub fn file_root_of<'p>(&self, path: &'p Path) -> Option<(&Path, &'p Path)> {
        self.file_roots
            .iter()
            .find_map(|root| crate::fsutil::below(root, path).map(|rel| (root.as_path(), rel)))
    }

    /// A value of the plugin's config, or its default from [`KEYS`].
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.value(name)
            .or_else(|| KEYS.iter().find(|k| k.name == name).map(|k| k.default))
    }

    /// The database to use, or the typed error that names the places read.
    pub fn db_source(&self) -> Result<&DbSource, NoCredentials> {
        match (&self.db, &self.no_db) {
            (Some(source), _) => Ok(source),
            (None, Some(missing)) => Err(missing.clone()),
            (None, None) => Err(NoCredentials { read: vec![] }),
        }
    }

    /// A raw value of the plugin's config, if set.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

mod keys;
pub mod panel_db;
#[cfg(test)]
mod tests;
