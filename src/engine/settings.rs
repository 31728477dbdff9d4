//! The backup settings: one table ([`SETTINGS`]) says every setting's
//! name, its field in the panel's settings form, what values it takes and
//! its default; the config file, the values saved from the panel, the form
//! and the jobs all read it, so a default or a range lives in one place
//! (a test holds `config::KEYS` and the README to it).
//!
//! Resolution ([`BackupOptions::resolve`]): the default, then the config
//! file, then the value saved from the panel (`billmgrops_setting`), then
//! a plan (its storage, tables and files) or a storage chosen for the job.
//! The result is plain options; [`BackupOptions::open`] opens the storage
//! and unseals the passphrase, making the [`Settings`] a job runs with.

use std::path::PathBuf;

use age::secrecy::{ExposeSecret, SecretString};
use anyhow::{bail, Context, Result};

use super::crypt;
use super::dump::DumpOptions;
use super::format::ForeignKey;
use crate::config::Config;
use crate::db::backupconf::{self, PlanRow, StorageRow};
use crate::db::Db;
use crate::storage::{self, local::LocalStorage, Storage};

/// What values a setting takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Values {
    /// A whole number in a range.
    Number { min: u64, max: u64 },
    /// A path (relative ones from the panel directory), no `..`.
    Path,
    /// Paths separated by spaces (checked against the panel's reach where
    /// saved).
    Paths,
    /// Names separated by spaces.
    Names,
    /// `table.column=table.column` pairs separated by spaces.
    Relations,
    /// The id of a storage or plan, or empty.
    Id,
    /// `on` or `off`.
    OnOff,
}

/// One backup setting.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// The key, in billmgr-ops.conf and `billmgrops_setting`.
    pub key: &'static str,
    /// The field of the panel's settings form; `None`: the config file's only.
    pub field: Option<&'static str>,
    pub values: Values,
    pub default: &'static str,
}

/// Every backup setting.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "BackupDir",
        field: Some("path"),
        values: Values::Path,
        default: "var/billmgr-ops/backup",
    },
    Setting {
        key: "BackupThreads",
        field: Some("threads"),
        values: Values::Number { min: 1, max: 32 },
        default: "2",
    },
    Setting {
        key: "BackupCompression",
        field: Some("compression"),
        values: Values::Number { min: 1, max: 19 },
        default: "1",
    },
    Setting {
        key: "BackupFiles",
        field: Some("files"),
        values: Values::Paths,
        default: "etc",
    },
    Setting {
        key: "BackupExcludeTables",
        field: Some("exclude_tables"),
        values: Values::Names,
        default: "",
    },
    Setting {
        key: "BackupLockTimeout",
        field: Some("lock_timeout"),
        values: Values::Number { min: 1, max: 3600 },
        default: "5",
    },
    Setting {
        key: "BackupRelations",
        field: None,
        values: Values::Relations,
        default: "",
    },
    Setting {
        key: "BackupDefaultStorage",
        field: Some("default_storage"),
        values: Values::Id,
        default: "",
    },
    Setting {
        key: "BackupDefaultPlan",
        field: Some("default_plan"),
        values: Values::Id,
        default: "",
    },
    Setting {
        key: "BackupKeepUndo",
        field: Some("keep_undo"),
        values: Values::OnOff,
        default: "off",
    },
];

impl Setting {
    /// The setting named `key` (a name not in the table is a bug).
    pub fn get(key: &str) -> &'static Setting {
        SETTINGS
            .iter()
            .find(|s| s.key == key)
            .unwrap_or_else(|| panic!("no backup setting {key}"))
    }

    /// Whether `value` is one this setting takes.
    pub fn accepts(&self, value: &str) -> bool {
        match self.values {
            Values::Number { min, max } => {
                value.parse::<u64>().is_ok_and(|n| (min..=max).contains(&n))
            }
            Values::Path => !value.is_empty() && !value.contains(".."),
            Values::Paths => !value.split_whitespace().any(|p| p.contains("..")),
            Values::Names => value.split_whitespace().all(|n| n.len() <= 64),
            Values::Relations => value.split_whitespace().all(|r| relation(r).is_some()),
            Values::Id => value.is_empty() || value.parse::<u64>().is_ok(),
            Values::OnOff => matches!(value, "" | "on" | "off"),
        }
    }
}

/// `child_table.column=parent_table.column` as a foreign key.
fn relation(r: &str) -> Option<(String, ForeignKey)> {
    let (child, parent) = r.split_once('=')?;
    let (table, column) = child.split_once('.')?;
    let (ref_table, ref_column) = parent.split_once('.')?;
    Some((
        table.to_string(),
        ForeignKey {
            columns: vec![column.to_string()],
            ref_table: ref_table.to_string(),
            ref_columns: vec![ref_column.to_string()],
        },
    ))
}

/// A declared relation (`BackupRelations`): a foreign key of `table`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation {
    pub table: String,
    pub key: ForeignKey,
}

/// Where a job's copies are: the default directory of the config file,
/// or a configured storage (not opened: see [`BackupOptions::open`]).
#[derive(Clone, Debug)]
pub enum Place {
    /// `BackupDir`, absolute.
    Directory(PathBuf),
    Storage(Box<StorageRow>),
}

/// How copies are taken and restored: plain values resolved from the
/// settings table (its defaults are the only ones), the config file, the
/// values saved from the panel and a plan. Nothing here is opened and no
/// secret is unsealed: [`BackupOptions::open`] does that.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// The panel's directory (relative storage paths, the sealing key).
    pub mgrdir: PathBuf,
    pub place: Place,
    pub plan: Option<PlanRow>,
    pub dump: DumpOptions,
    pub restore_threads: usize,
    /// Declared relations (`BackupRelations`) for per-object restore.
    pub relations: Vec<Relation>,
    /// Keep the replaced tables of the last restore after later backups
    /// (default: drop them at the next successful backup).
    pub keep_undo: bool,
    /// The passphrase as the config file gives it, or sealed as saved
    /// from the panel; unsealed only by [`BackupOptions::open`].
    passphrase: Option<Passphrase>,
}

#[derive(Clone)]
enum Passphrase {
    Plain(SecretString),
    Sealed(String),
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// A job's storage, opened (its secret unsealed): the handle through which
/// a job reaches the network. Made only by [`BackupOptions::open`] and
/// [`open_storage`].
pub struct Settings {
    pub options: BackupOptions,
    pub storage: Box<dyn Storage>,
    /// The storage's id in `billmgrops_storage`; `None` for the default
    /// directory of the config file.
    pub storage_id: Option<u64>,
    pub storage_name: String,
    /// Copies are encrypted with it when set.
    pub passphrase: Option<SecretString>,
}

/// A configured storage, opened (its secret unsealed with the panel's
/// key): the one place a storage's secret is unsealed.
pub fn open_storage(mgrdir: &std::path::Path, row: &StorageRow) -> Result<Box<dyn Storage>> {
    let secret = match &row.sealed_secret {
        Some(sealed) => Some(
            crypt::open_secret(mgrdir, sealed)
                .with_context(|| format!("cannot unseal the secret of storage `{}`", row.name))?,
        ),
        None => None,
    };
    storage::open(
        mgrdir,
        &row.params,
        secret.as_ref().map(|s| s.expose_secret()),
    )
    .with_context(|| format!("storage `{}`", row.name))
}

impl BackupOptions {
    /// From the table's defaults overridden by `get` (the config file, then
    /// the saved values).
    fn build(config: &Config, get: &dyn Fn(&str) -> Option<String>) -> Result<BackupOptions> {
        let value = |key: &str| -> Result<String> {
            let setting = Setting::get(key);
            let v = get(key).unwrap_or_else(|| setting.default.to_string());
            if !setting.accepts(&v) {
                bail!(
                    "backup setting {key} `{v}` is not a value it takes ({:?})",
                    setting.values
                );
            }
            Ok(v)
        };
        let number = |key: &str| -> Result<u64> {
            let v = value(key)?;
            Ok(v.parse().unwrap_or_default())
        };
        let words = |key: &str| -> Result<Vec<String>> {
            Ok(value(key)?.split_whitespace().map(str::to_string).collect())
        };
        let threads = number("BackupThreads")? as usize;
        Ok(BackupOptions {
            mgrdir: config.mgrdir.clone(),
            place: Place::Directory(storage::absolute(&config.mgrdir, &value("BackupDir")?)),
            plan: None,
            dump: DumpOptions {
                threads,
                compression_level: number("BackupCompression")? as i32,
                chunk_bytes: super::dump::CHUNK_BYTES,
                rows_per_range: super::dump::ROWS_PER_RANGE,
                exclude_tables: words("BackupExcludeTables")?,
                files: words("BackupFiles")?
                    .iter()
                    .map(|p| storage::absolute(&config.mgrdir, p))
                    .collect(),
                lock_timeout: number("BackupLockTimeout")?,
                reader: config.backup_reader,
                snapshot_gap: config.dev_snapshot_gap,
            },
            restore_threads: threads,
            relations: words("BackupRelations")?
                .iter()
                .filter_map(|r| relation(r))
                .map(|(table, key)| Relation { table, key })
                .collect(),
            keep_undo: value("BackupKeepUndo")? == "on",
            passphrase: config
                .backup_passphrase
                .clone()
                .map(|p| Passphrase::Plain(SecretString::from(p))),
        })
    }

    /// The config file, overridden by the module settings saved in the
    /// database, then by a plan (its storage, tables and files) or a storage.
    pub fn resolve(
        config: &Config,
        db: &mut Db,
        plan: Option<u64>,
        storage: Option<u64>,
    ) -> Result<BackupOptions> {
        let mut saved = std::collections::HashMap::new();
        for s in SETTINGS.iter().filter(|s| s.field.is_some()) {
            if let Some(v) = backupconf::setting(db, s.key)? {
                saved.insert(s.key, v);
            }
        }
        let mut options = BackupOptions::build(config, &|key| {
            saved
                .get(key)
                .cloned()
                .or_else(|| config.value(key).map(str::to_string))
        })?;
        let plan = match plan {
            Some(id) => Some(backupconf::plan(db, id)?.ok_or(NoSuchObject("plan", id))?),
            None => None,
        };
        let default_storage = saved
            .get("BackupDefaultStorage")
            .and_then(|v| v.parse::<u64>().ok());
        let storage = storage
            .or(plan.as_ref().map(|p| p.storage))
            .or(default_storage);
        if let Some(id) = storage {
            let row = backupconf::storage(db, id)?.ok_or(NoSuchObject("storage", id))?;
            options.place = Place::Storage(Box::new(row));
        }
        if let Some(p) = &plan {
            if !p.exclude_tables.trim().is_empty() {
                options.dump.exclude_tables = p
                    .exclude_tables
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
            }
            if !p.files.trim().is_empty() {
                options.dump.files = p
                    .files
                    .split_whitespace()
                    .map(|f| storage::absolute(&config.mgrdir, f))
                    .collect();
            }
        }
        options.plan = plan;
        if options.passphrase.is_none() {
            options.passphrase =
                backupconf::setting(db, "BackupPassphrase")?.map(Passphrase::Sealed);
        }
        Ok(options)
    }

    /// The options to reach an existing copy (its storage).
    pub fn for_copy(
        config: &Config,
        db: &mut Db,
        row: &crate::db::backups::CopyRow,
    ) -> Result<BackupOptions> {
        BackupOptions::resolve(config, db, None, row.storage_id)
    }

    /// Opens the place (a storage's secret unsealed) and unseals the
    /// passphrase: what a job needs to reach copies.
    pub fn open(self) -> Result<Settings> {
        let (storage, storage_id, storage_name): (Box<dyn Storage>, _, _) = match &self.place {
            Place::Directory(dir) => (
                Box::new(LocalStorage::new(dir.clone())),
                None,
                "default".into(),
            ),
            Place::Storage(row) => (
                open_storage(&self.mgrdir, row)?,
                Some(row.id),
                row.name.clone(),
            ),
        };
        let passphrase = match &self.passphrase {
            None => None,
            Some(Passphrase::Plain(p)) => Some(p.clone()),
            Some(Passphrase::Sealed(sealed)) => Some(crypt::open_secret(&self.mgrdir, sealed)?),
        };
        Ok(Settings {
            options: self,
            storage,
            storage_id,
            storage_name,
            passphrase,
        })
    }
}

impl Settings {
    /// [`BackupOptions::resolve`], opened.
    pub fn resolve(
        config: &Config,
        db: &mut Db,
        plan: Option<u64>,
        storage: Option<u64>,
    ) -> Result<Settings> {
        BackupOptions::resolve(config, db, plan, storage)?.open()
    }

    /// [`BackupOptions::for_copy`], opened.
    pub fn for_copy(
        config: &Config,
        db: &mut Db,
        row: &crate::db::backups::CopyRow,
    ) -> Result<Settings> {
        BackupOptions::for_copy(config, db, row)?.open()
    }
}

/// A plan or storage id that does not exist. Callers branch on it.
#[derive(Debug, thiserror::Error)]
#[error("no {0} {1}")]
pub struct NoSuchObject(pub &'static str, pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_values_their_settings_take() {
        for s in SETTINGS {
            assert!(s.accepts(s.default), "{}", s.key);
        }
        let threads = Setting::get("BackupThreads");
        assert!(!threads.accepts("0") && !threads.accepts("abc") && threads.accepts("32"));
        assert!(!Setting::get("BackupDir").accepts("../etc"));
        assert!(Setting::get("BackupRelations").accepts("note.account=account.id"));
        assert!(!Setting::get("BackupRelations").accepts("note.account"));
    }
}
