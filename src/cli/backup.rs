//! `billmgr-ops backup ...`: one function per subcommand, each thin glue
//! from its arguments to `engine::jobs` and a line on stderr. Exit status
//! 3 for any of them when another backup, restore or upload holds the job
//! lock; 2 for a refused upload; 1 for any other failure.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::open_db;
use crate::config::{Config, DbSource};
use crate::db::backups::{self, CopyRow, CopyState};
use crate::db::{backupconf, Db};
use crate::engine;
use crate::engine::Behavior;
use crate::engine::Settings;
use crate::engine::Wanted;
use crate::health::notify;
use crate::progress::Progress;
use crate::storage::params::{Kind, Params};

#[derive(Subcommand, Debug)]
pub enum BackupCommand {
    /// Take a copy now.
    Create {
        /// Of this plan (its storage, tables and files; its retention after).
        #[arg(long)]
        plan: Option<u64>,
        /// To this storage (default: the plan's, else the configured directory).
        #[arg(long)]
        storage: Option<u64>,
    },
    /// The copies in the catalog, newest first.
    List,
    /// Check every byte of a copy against its listing (the database is not touched).
    Verify {
        /// The copy's name or id.
        copy: String,
    },
    /// Restore a copy into the live database, staged and reversible; or,
    /// with --to, the database as it was at a second (a copy and the
    /// binary log after it).
    Restore {
        /// The copy's name or id.
        #[arg(required_unless_present = "to", conflicts_with = "to")]
        copy: Option<String>,
        /// A second, `YYYY-MM-DD HH:MM:SS` UTC: the newest copy before it,
        /// then the binary log up to it (`backup follow` keeps it).
        #[arg(long)]
        to: Option<String>,
        /// skip: keep existing rows, add missing ones; edit: make every table exactly as in the copy.
        #[arg(long, default_value = "edit", value_parser = behavior)]
        behavior: Behavior,
    },
    /// Undo the last restore: swap the replaced tables back in (again to redo).
    Undo,
    /// Delete a copy from the catalog.
    Delete {
        /// The copy's name or id.
        copy: String,
        /// Also delete its archive and listing from the storage.
        #[arg(long)]
        clean_storage: bool,
    },
    /// Rebuild the catalog from the listings on the storage.
    Rescan,
    /// Bring in a copy (or a mysqldump file: .sql, .sql.gz, .sql.zst) from a
    /// file or an http(s) URL; it is listed only once verified.
    Upload {
        /// A file on this server.
        #[arg(long, conflicts_with = "url", required_unless_present = "url")]
        file: Option<PathBuf>,
        /// An http or https URL, streamed.
        #[arg(long)]
        url: Option<String>,
        /// The copy's name (default: from the file name).
        #[arg(long)]
        name: Option<String>,
        /// Into this storage (default: the default storage).
        #[arg(long)]
        storage: Option<u64>,
    },
    /// Show one saved object of a copy (a client, user, service or payment)
    /// and the rows that point at it, as JSON; reads only the chunks that
    /// can hold them.
    Show {
        /// The copy's name or id.
        copy: String,
        /// account, user, item or payment.
        kind: String,
        id: i64,
    },
    /// Restore single objects of a copy (clients, users, services,
    /// payments) with what depends on them and what they need, in one
    /// transaction.
    RestoreObject {
        /// The copy's name or id.
        copy: String,
        /// account, user, item or payment.
        kind: String,
        /// The objects' ids.
        #[arg(required = true)]
        ids: Vec<i64>,
        /// skip: add what is missing, keep what exists; edit: also bring
        /// existing rows back to their saved values.
        #[arg(long, default_value = "skip", value_parser = behavior)]
        behavior: Behavior,
    },
    /// Restore single objects as they were at a second (UTC): the newest
    /// copy before it and the binary log after it, staged and read, then
    /// the objects restored as from a copy.
    RestoreObjectAt {
        /// The second, `YYYY-MM-DD HH:MM:SS` UTC.
        to: String,
        /// account, user, item or payment.
        kind: String,
        /// The objects' ids.
        #[arg(required = true)]
        ids: Vec<i64>,
        /// skip: add what is missing, keep what exists; edit: also bring
        /// existing rows back to their values at that second.
        #[arg(long, default_value = "skip", value_parser = behavior)]
        behavior: Behavior,
    },
    /// A restore drill: restore into staged tables that are never applied,
    /// check everything, keep the evidence (status shows the last one).
    /// Default: the last second the stored log reaches, or the newest copy.
    Drill {
        /// Drill this copy (name or id).
        #[arg(long, conflicts_with = "to")]
        copy: Option<String>,
        /// Drill the database at this second, `YYYY-MM-DD HH:MM:SS` UTC.
        #[arg(long)]
        to: Option<String>,
    },
    /// Configure and check storages.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Follow the server's binary log to the default storage, for restores
    /// to any second (runs until killed; the cron tick starts it).
    Follow(super::binlog::FollowArgs),
}

#[derive(Subcommand, Debug)]
pub enum StorageCommand {
    /// Add a storage. Its secret (FTP password, S3 secret key) is read from
    /// BILLMGR_OPS_STORAGE_SECRET or, with --secret-stdin, from the first
    /// line of stdin; never from the command line.
    Add(Box<StorageArgs>),
    /// The configured storages.
    List,
    /// Write, read back and delete a small probe object.
    Check {
        /// The storage's name or id.
        storage: String,
    },
    /// Forget a storage (the copies on it stay there).
    Remove {
        /// The storage's name or id.
        storage: String,
    },
}

#[derive(Args, Debug)]
pub struct StorageArgs {
    name: String,
    /// local, sftp, ftp or s3.
    #[arg(long, value_parser = storage_kind)]
    kind: Kind,
    /// Local or remote directory, or the key prefix in the bucket.
    #[arg(long, default_value = "")]
    path: String,
    #[arg(long, default_value = "")]
    host: String,
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, default_value = "")]
    user: String,
    /// SFTP: the private key file.
    #[arg(long, default_value = "")]
    key_file: String,
    /// SFTP: accept-new, strict or off.
    #[arg(long, default_value = "accept-new")]
    host_key: String,
    /// FTP: explicit TLS (FTPS).
    #[arg(long)]
    tls: bool,
    /// S3: the service URL (empty for AWS).
    #[arg(long, default_value = "")]
    endpoint: String,
    #[arg(long, default_value = "")]
    region: String,
    #[arg(long, default_value = "")]
    bucket: String,
    #[arg(long, default_value = "")]
    access_key: String,
    /// Read the secret from the first line of stdin.
    #[arg(long)]
    secret_stdin: bool,
}

/// Runs a `backup` subcommand.
pub fn run(config: &Config, command: BackupCommand) -> Result<ExitCode> {
    let source = config.db_source()?.clone();
    let result = match command {
        BackupCommand::Create { plan, storage } => create(config, &source, plan, storage),
        BackupCommand::List => list(config),
        BackupCommand::Verify { copy } => verify(config, &copy),
        BackupCommand::Restore {
            copy: Some(copy),
            behavior,
            ..
        } => restore(config, &source, &copy, behavior),
        BackupCommand::Restore {
            to: Some(to),
            behavior,
            ..
        } => match super::binlog::restore_to(config, &source, &to, behavior) {
            Err(e) if e.downcast_ref::<engine::NotRecoverable>().is_some() => {
                eprintln!("billmgr-ops: {e:#}");
                return Ok(ExitCode::from(2));
            }
            other => other,
        },
        BackupCommand::Restore { .. } => bail!("name a copy, or a second with --to"),
        BackupCommand::Delete {
            copy,
            clean_storage,
        } => delete(config, &copy, clean_storage),
        BackupCommand::Undo => engine::undo_restore(config, &source).map(|n| {
            eprintln!("{n} tables swapped back; run undo again to redo the restore");
        }),
        BackupCommand::Storage(command) => return storage(config, command),
        BackupCommand::RestoreObject {
            copy,
            kind,
            ids,
            behavior,
        } => restore_object(config, &source, &copy, &kind, &ids, behavior),
        BackupCommand::Show { copy, kind, id } => show(config, &copy, &kind, id),
        BackupCommand::Drill { copy, to } => super::binlog::drill(config, &source, copy, to),
        BackupCommand::RestoreObjectAt {
            to,
            kind,
            ids,
            behavior,
        } => super::binlog::restore_objects_at(config, &source, &to, &kind, &ids, behavior),
        BackupCommand::Upload {
            file,
            url,
            name,
            storage,
        } => match upload_copy(config, &source, file, url, name, storage) {
            Err(e) if e.downcast_ref::<engine::NotACopy>().is_some() => {
                eprintln!("billmgr-ops: refused: {e:#}");
                return Ok(ExitCode::from(2));
            }
            other => other,
        },
        BackupCommand::Rescan => rescan(config),
        BackupCommand::Follow(args) => match super::binlog::follow(config, &source, &args) {
            Err(e) if e.downcast_ref::<engine::AlreadyFollowed>().is_some() => {
                eprintln!("billmgr-ops: {e:#}");
                return Ok(ExitCode::from(3));
            }
            other => other,
        },
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.downcast_ref::<engine::Busy>().is_some() => {
            eprintln!("billmgr-ops: {e:#}");
            Ok(ExitCode::from(3))
        }
        Err(e) => Err(e),
    }
}

/// A copy by name or id, with the settings that reach its storage.
fn find(config: &Config, copy: &str) -> Result<(CopyRow, Settings)> {
    let mut db = open_db(config)?;
    let row = engine::find(&mut db, copy)?;
    let settings = Settings::for_copy(config, &mut db, &row)?;
    Ok((row, settings))
}

/// `--behavior`, typed by clap.
fn behavior(text: &str) -> Result<Behavior, String> {
    Behavior::parse(text).ok_or_else(|| "edit or skip".to_string())
}

/// `--kind` of a storage, typed by clap.
fn storage_kind(text: &str) -> Result<Kind, String> {
    Kind::parse(text).ok_or_else(|| "local, sftp, ftp or s3".to_string())
}

fn create(
    config: &Config,
    source: &DbSource,
    plan: Option<u64>,
    storage: Option<u64>,
) -> Result<()> {
    let settings = Settings::resolve(config, &mut open_db(config)?, plan, storage)?;
    let mut bar = Progress::new("backup");
    let result = engine::take_copy(config, source, &settings, &mut |p, n| bar.update(p, n));
    bar.finish();
    if result.is_err() {
        // Tell now rather than at the next cron tick.
        if let Err(e) = open_db(config).and_then(|mut db| notify::sweep(config, &mut db)) {
            log::error!("notifications: {e:#}");
        }
    }
    let row = result?;
    eprintln!(
        "copy {} (id {}): {} bytes, {} rows",
        row.name, row.id, row.size, row.rows
    );
    Ok(())
}

fn list(config: &Config) -> Result<()> {
    let mut db = open_db(config)?;
    let mut out = super::stdout().lock();
    for c in backups::list(&mut db)? {
        let reason = if c.reason.is_empty() {
            String::new()
        } else {
            format!("\t{}", c.reason)
        };
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}{reason}",
            c.id, c.name, c.created, c.state, c.size, c.rows
        )?;
    }
    Ok(())
}

fn verify(config: &Config, copy: &str) -> Result<()> {
    let (row, settings) = find(config, copy)?;
    let mut bar = Progress::new("verify");
    let result = engine::verify_copy(&settings, &row.name, &mut |p, n| bar.update(p, n));
    bar.finish();
    let r = result?;
    eprintln!(
        "copy {}: ok ({} entries, {} chunks, {} rows, {} bytes)",
        row.name, r.entries, r.chunks, r.rows, r.bytes
    );
    Ok(())
}

fn restore(config: &Config, source: &DbSource, copy: &str, how: Behavior) -> Result<()> {
    let (row, settings) = find(config, copy)?;
    let mut bar = Progress::new("restore");
    let result = engine::restore_copy(config, source, &settings, &row.name, how, &mut |p, n| {
        bar.update(p, n)
    });
    bar.finish();
    let r = result?;
    eprintln!(
        "restored copy {}: {} tables, {} rows",
        row.name, r.tables, r.rows
    );
    if let Some(undo) = r.undo {
        eprintln!(
            "the replaced tables are kept as `{undo}` until the next successful backup (`backup undo` brings them back)"
        );
    }
    Ok(())
}

fn delete(config: &Config, copy: &str, clean_storage: bool) -> Result<()> {
    let (row, settings) = find(config, copy)?;
    engine::delete_copy(&mut open_db(config)?, &settings, &row, clean_storage)
}

fn restore_object(
    config: &Config,
    source: &DbSource,
    copy: &str,
    kind: &str,
    ids: &[i64],
    how: Behavior,
) -> Result<()> {
    let (row, settings) = find(config, copy)?;
    anyhow::ensure!(
        row.state == CopyState::Ok,
        "copy {} is {}",
        row.name,
        row.state
    );
    let mut bar = Progress::new("restore-object");
    let result = engine::restore_objects(
        config,
        source,
        &settings,
        &row.name,
        Wanted {
            kind,
            ids,
            behavior: how,
        },
        &mut |p, n| bar.update(p, n),
    );
    bar.finish();
    let r = result?;
    for (table, n) in &r.rows {
        eprintln!("{table}: {n} rows");
    }
    eprintln!("read {} of {} archive bytes", r.bytes_read, r.archive_size);
    Ok(())
}

fn show(config: &Config, copy: &str, kind: &str, id: i64) -> Result<()> {
    let (row, settings) = find(config, copy)?;
    let opened = engine::open_copy(&settings, &row.name)?;
    let listing = opened.listing()?;
    let view = crate::engine::show_object(&opened, &listing, kind, id)?;
    eprintln!(
        "read {} of {} archive bytes",
        view.bytes_read, view.archive_size
    );
    let mut out = super::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &view)?;
    writeln!(out)?;
    Ok(())
}

fn upload_copy(
    config: &Config,
    source: &DbSource,
    file: Option<PathBuf>,
    url: Option<String>,
    name: Option<String>,
    storage: Option<u64>,
) -> Result<()> {
    let settings = Settings::resolve(config, &mut open_db(config)?, None, storage)?;
    let from = match (file, url) {
        (Some(file), _) => engine::Source::File(file),
        (None, Some(url)) => engine::Source::Url {
            url,
            allow_private: config.upload_private_urls,
        },
        (None, None) => bail!("--file or --url is needed"),
    };
    let bar = std::sync::Arc::new(std::sync::Mutex::new(Progress::new("upload")));
    let shown = bar.clone();
    let progress: engine::ReadProgress = Box::new(move |read, size| {
        let percent = size.map_or(0, |size| read * 100 / size.max(1)) as u32;
        if let Ok(mut bar) = shown.lock() {
            bar.update("read", percent);
        }
    });
    let result = engine::upload_copy(config, source, &settings, &from, name.as_deref(), progress);
    if let Ok(mut bar) = bar.lock() {
        bar.finish();
    }
    let row = result?;
    eprintln!(
        "copy {} (id {}): {} bytes, {} rows",
        row.name, row.id, row.size, row.rows
    );
    Ok(())
}

fn rescan(config: &Config) -> Result<()> {
    let mut db = open_db(config)?;
    let settings = Settings::resolve(config, &mut db, None, None)?;
    let mut bar = Progress::new("rescan");
    let result = engine::rescan(&mut db, &settings, &mut |p, n| bar.update(p, n));
    bar.finish();
    eprintln!("{} copies added to the catalog", result?);
    Ok(())
}

/// `billmgr-ops backup storage ...`. Exit status 1 when a check fails.
fn storage(config: &Config, command: StorageCommand) -> Result<ExitCode> {
    let mut db = open_db(config)?;
    let find = |db: &mut Db, key: &str| -> Result<backupconf::StorageRow> {
        backupconf::storages(db)?
            .into_iter()
            .find(|s| s.name == key || s.id.to_string() == key)
            .with_context(|| format!("no storage `{key}`"))
    };
    match command {
        StorageCommand::Add(a) => {
            let params = Params {
                kind: a.kind,
                path: a.path,
                host: a.host,
                port: a.port,
                user: a.user,
                key_file: a.key_file,
                host_key: a.host_key,
                tls: a.tls,
                endpoint: a.endpoint,
                region: a.region,
                bucket: a.bucket,
                access_key: a.access_key,
            };
            if let Some((field, value)) = params.invalid_field() {
                bail!(
                    "--{}: `{value}` is missing or not valid",
                    field.replace('_', "-")
                );
            }
            let secret = match params.kind.secret_field() {
                None => None,
                Some(field) => {
                    let secret = if a.secret_stdin {
                        let mut line = String::new();
                        std::io::stdin().read_line(&mut line)?;
                        line.trim_end_matches(['\r', '\n']).to_string()
                    } else {
                        config.storage_secret.clone().unwrap_or_default()
                    };
                    anyhow::ensure!(
                        !secret.is_empty() || !params.kind.secret_required(&params),
                        "the {field} is missing: set BILLMGR_OPS_STORAGE_SECRET or use --secret-stdin"
                    );
                    if secret.is_empty() {
                        None
                    } else {
                        Some(crate::engine::seal_secret(&config.mgrdir, &secret)?)
                    }
                }
            };
            let id = backupconf::add_storage(&mut db, &a.name, &params, secret.as_deref())?;
            eprintln!("storage {id}: {}", params.describe());
        }
        StorageCommand::List => {
            let mut out = super::stdout().lock();
            for s in backupconf::storages(&mut db)? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    s.id,
                    s.name,
                    s.kind,
                    s.params.describe()
                )?;
            }
        }
        StorageCommand::Check { storage } => {
            let row = find(&mut db, &storage)?;
            let opened = crate::engine::open_storage(&config.mgrdir, &row)?;
            match crate::storage::probe(opened.as_ref()) {
                Ok(()) => eprintln!("storage {} ({}): ok", row.name, opened.describe()),
                Err(e) => {
                    eprintln!("storage {} ({}): {e}", row.name, opened.describe());
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        StorageCommand::Remove { storage } => {
            let row = find(&mut db, &storage)?;
            backupconf::remove_storage(&mut db, row.id)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
