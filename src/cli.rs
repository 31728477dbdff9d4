//! The command line: panel mode (no subcommand) and the commands an
//! administrator or cron runs by hand.
//!
//! Exit codes: panel mode exits 0 whenever it printed a document (the
//! `<error>` inside is the signal), 1 when even that failed. `call` exits 0
//! for a document without `<error>`, 1 for one with it, so scripts can
//! branch. Other commands exit 0 on success and 1 on failure, with the error
//! chain on stderr; `run-operation` exits 3 when the operation is already
//! running and 4 when it does not exist; every `backup` subcommand exits 3
//! when another backup, restore or upload holds the job lock, and `backup
//! upload` 2 when the file is refused; `status` exits 1 when something
//! needs attention. Output cut short by its reader (`| head`) ends quietly
//! with 0, as ripgrep and cargo do.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::db::health;
use crate::db::runstate::Settled;
use crate::db::{backupconf, backups};
use crate::db::{migrate, Db};
#[cfg(feature = "dev")]
use crate::dev;
use crate::engine::{jobs, restore, upload};
use crate::health::{notify, status};
use crate::protocol::{self, request::MAX_STDIN, Incoming};
use crate::runner::{attempt, scheduler};
use crate::storage::params::{Kind, Params};
use crate::{install, logging};

/// Backup and running-operations plugin for BILLmanager 6.
///
/// Without a command it runs as the panel's addon handler: the request comes
/// as PARAM_* environment variables and an XML document on stdin, and one
/// XML document goes to stdout.
#[derive(Parser, Debug)]
#[command(name = "billmgr-ops", version)]
pub struct Cli {
    /// The panel directory [env: MGR_DIR] [default: /usr/local/mgr5]
    #[arg(long, global = true, value_name = "DIR")]
    mgrdir: Option<PathBuf>,
    /// The plugin's config file (env: BILLMGR_OPS_CONFIG; default: MGRDIR/etc/billmgr-ops.conf)
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one panel function exactly as the panel would and print its document.
    Call(CallArgs),
    /// Create or upgrade the plugin's own tables.
    Migrate,
    /// One scheduler tick: start the running operations that are due (run every minute).
    Cron,
    /// Run one attempt of a running operation now, in the foreground.
    ///
    /// This is what start and cron launch in the background. It does nothing
    /// when another attempt of the operation is running (exit status 3).
    RunOperation {
        /// The running operation's id.
        id: u64,
    },
    /// Install or upgrade the plugin into the panel directory (--mgrdir):
    /// the handler, manifests, download CGI, example config, cron line and
    /// logrotate rules; migrates the tables and reloads the panel.
    Install(InstallArgs),
    /// Remove what install placed. The plugin's tables, key, log and an
    /// edited config stay unless --purge; copies on storages always stay.
    Uninstall {
        #[command(flatten)]
        args: InstallArgs,
        /// Also drop the plugin's tables and remove its config, key and log.
        #[arg(long)]
        purge: bool,
    },
    /// Backups and running operations at a glance; exit status 1 when
    /// something needs attention.
    Status {
        /// Print JSON, for monitoring.
        #[arg(long)]
        json: bool,
        /// Do not check the storages (no probe object is written).
        #[arg(long)]
        no_probe: bool,
    },
    /// Backup copies: take, list, verify, restore, delete, rescan.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Developer tools: demo data (built with the `dev` feature only; the
    /// shipped binary has none, so it can never touch a live database).
    #[cfg(feature = "dev")]
    #[command(subcommand)]
    Dev(DevCommand),
}

#[derive(Args, Debug)]
struct CallArgs {
    /// The function, e.g. runningoperation.
    func: String,
    /// Request parameters as key=value (elid="3, 7" for several ids).
    #[arg(value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// AUTH_LEVEL of the caller [default: administrator]
    #[arg(long)]
    level: Option<u32>,
    /// AUTH_USER of the caller.
    #[arg(long, default_value = "admin")]
    user: String,
    /// Interface language.
    #[arg(long, default_value = "en", value_parser = ["en", "ru"])]
    lang: String,
    /// Read the request document from stdin, as the panel sends it.
    #[arg(long)]
    stdin: bool,
}

#[derive(Args, Debug)]
struct InstallArgs {
    /// The root of /etc/cron.d and /etc/logrotate.d (for package builds and
    /// tests).
    #[arg(long, value_name = "DIR", default_value = "/")]
    sysroot: PathBuf,
    /// companion: the functions under names of their own (billmgrops.*)
    /// beside BILLmanager's, which keeps running the processing modules;
    /// replace: under BILLmanager's own names. Default: the installed
    /// mode, or companion on a first install.
    #[arg(long, value_parser = ["companion", "replace"])]
    mode: Option<String>,
}

#[derive(Subcommand, Debug)]
enum BackupCommand {
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
    /// Restore a copy into the live database, staged and reversible.
    Restore {
        /// The copy's name or id.
        copy: String,
        /// skip: keep existing rows, add missing ones; edit: make every table exactly as in the copy.
        #[arg(long, default_value = "edit", value_parser = ["edit", "skip"])]
        behavior: String,
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
        #[arg(long, default_value = "skip", value_parser = ["edit", "skip"])]
        behavior: String,
    },
    /// Configure and check storages.
    #[command(subcommand)]
    Storage(StorageCommand),
}

#[derive(Subcommand, Debug)]
enum StorageCommand {
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
struct StorageArgs {
    name: String,
    #[arg(long, value_parser = ["local", "sftp", "ftp", "s3"])]
    kind: String,
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

#[cfg(feature = "dev")]
#[derive(Subcommand, Debug)]
enum DevCommand {
    /// Fill the BILLmanager schema with realistic, deterministic demo data.
    Seed(dev::seed::SeedOptions),
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let env: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    // Run by the web server as the download CGI program: told by the
    // name it was installed and started under (`<mgrdir>/cgi/billmgr-ops-download`),
    // never by CGI variables, which the panel also hands its addon handlers.
    if invoked_as_cgi() {
        return match Config::load(None, None, &env) {
            Ok(config) => {
                logging::set_function("download");
                logging::init(&config, &env);
                crate::download::cgi_main(&config, &env)
            }
            Err(e) => {
                let _ = write!(
                    std::io::stdout(),
                    "Status: 403 Forbidden\r\nContent-Type: text/plain\r\n\r\nForbidden\n"
                );
                fail(e)
            }
        };
    }
    let cli = Cli::parse();
    let config = Config::load(cli.mgrdir.as_deref(), cli.config.as_deref(), &env);
    match cli.command {
        None => panel_mode(config, &env),
        Some(Command::Call(args)) => match config {
            Ok(config) => {
                logging::init(&config, &env);
                protocol::install_panic_hook();
                call(&config, args)
            }
            Err(e) => fail(e),
        },
        Some(command) => match config.and_then(|config| {
            logging::set_function(command.log_name());
            logging::init(&config, &env);
            run(&config, command)
        }) {
            Ok(code) => code,
            Err(e) => fail(e),
        },
    }
}

/// Whether this process was started as the download CGI program: its
/// program name is [`crate::download::CGI_NAME`].
fn invoked_as_cgi() -> bool {
    std::env::args_os().next().is_some_and(|argv0| {
        std::path::Path::new(&argv0)
            .file_name()
            .is_some_and(|name| name == crate::download::CGI_NAME)
    })
}

fn fail(e: anyhow::Error) -> ExitCode {
    // The reader of our output went away (`billmgr-ops backup list | head
    // -1`): nothing is wrong, and there is no one to tell.
    let broken_pipe = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    log::error!("{e:#}");
    eprintln!("billmgr-ops: {e:#}");
    ExitCode::FAILURE
}

/// The panel's addon handler: always one document on stdout.
fn panel_mode(config: Result<Config>, env: &BTreeMap<String, String>) -> ExitCode {
    let mut stdin = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(MAX_STDIN as u64 + 1)
        .read_to_end(&mut stdin);
    let incoming = Incoming {
        env: env.clone(),
        stdin,
        // The panel pages an addon's lists itself, unless told otherwise.
        whole_lists: config.as_ref().is_ok_and(|c| !c.plugin_paging),
    };
    let doc = match config {
        Ok(config) => {
            logging::init(&config, env);
            protocol::install_panic_hook();
            if let Err(e) = read {
                log::error!("failed to read stdin: {e}");
            }
            protocol::handle(crate::functions::FUNCTIONS, incoming, &config)
        }
        Err(e) => {
            // No config means no log file: stderr is all there is.
            eprintln!("billmgr-ops: {e:#}");
            let lang = Incoming::lang_hint(env);
            let error = protocol::PanelError::new(protocol::ErrorKind::Internal, "config", "");
            protocol::response::render_error(None, "", lang, &error)
        }
    };
    match protocol::emit(&doc) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("failed to write the document: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `billmgr-ops call`: builds the environment the panel would and runs the call.
fn call(config: &Config, args: CallArgs) -> ExitCode {
    let level = args.level.unwrap_or(config.admin_level.max(29));
    let mut env = BTreeMap::new();
    env.insert("PARAM_func".to_string(), args.func.clone());
    env.insert("PARAM_lang".to_string(), args.lang.clone());
    env.insert("AUTH_USER".to_string(), args.user.clone());
    env.insert("AUTH_LEVEL".to_string(), level.to_string());
    for param in &args.params {
        let Some((key, value)) = param.split_once('=') else {
            eprintln!("billmgr-ops: `{param}` is not KEY=VALUE");
            return ExitCode::from(2);
        };
        env.insert(format!("PARAM_{key}"), value.to_string());
    }
    let mut stdin = Vec::new();
    if args.stdin {
        if let Err(e) = std::io::stdin()
            .lock()
            .take(MAX_STDIN as u64 + 1)
            .read_to_end(&mut stdin)
        {
            eprintln!("billmgr-ops: failed to read stdin: {e}");
            return ExitCode::FAILURE;
        }
    }
    let doc = protocol::handle(
        crate::functions::FUNCTIONS,
        Incoming {
            env,
            stdin,
            whole_lists: false,
        },
        config,
    );
    if let Err(e) = protocol::emit(&doc) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return ExitCode::SUCCESS;
        }
        eprintln!("billmgr-ops: failed to write the document: {e}");
        return ExitCode::FAILURE;
    }
    if doc.find("error").is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

impl Command {
    /// The name log lines carry for this command.
    fn log_name(&self) -> &'static str {
        match self {
            Command::Call(_) => "call",
            Command::Migrate => "migrate",
            Command::Cron => "cron",
            Command::RunOperation { .. } => "run-operation",
            Command::Backup(_) => "backup",
            #[cfg(feature = "dev")]
            Command::Dev(_) => "dev",
            Command::Install(_) => "install",
            Command::Uninstall { .. } => "uninstall",
            Command::Status { .. } => "status",
        }
    }
}

fn run(config: &Config, command: Command) -> Result<ExitCode> {
    match command {
        Command::Call(_) => unreachable!("handled in main"),
        Command::Migrate => {
            let mut db = open_db(config)?;
            let before = migrate::current(&mut db)?;
            migrate::migrate(&mut db)?;
            eprintln!(
                "plugin tables at version {} (were {before})",
                migrate::current(&mut db)?
            );
        }
        Command::Cron => {
            let mut db = open_db(config)?;
            health::record_cron_tick(&mut db)?;
            if let Err(e) = notify::sweep(config, &mut db) {
                log::error!("notifications: {e:#}");
            }
            // Backup plans first: a due plan starts in the background.
            if !config.mgrdir.join("etc/billmgr.DoNothing").exists() && !jobs::busy(&mut db)? {
                if let Some(plan) = jobs::due_plans(&mut db)?.first() {
                    crate::background::spawn(
                        config,
                        &[
                            "backup".into(),
                            "create".into(),
                            "--plan".into(),
                            plan.to_string(),
                        ],
                    )?;
                    eprintln!("backup plan {plan} is due: started");
                }
            }
            let report = scheduler::tick(config, &mut db)?;
            if report.paused {
                eprintln!("maintenance mode (etc/billmgr.DoNothing): nothing started");
            } else if report.overlapped {
                eprintln!("another tick is running: nothing done");
            } else {
                eprintln!(
                    "started {:?}; settled as interrupted {:?}; {} running",
                    report.started, report.interrupted, report.running
                );
            }
        }
        Command::RunOperation { id } => {
            let db = open_db(config)?;
            let outcome = attempt::run(config, db, id)?;
            // An operation that turned manual is news: told at once.
            if let attempt::Outcome::Settled(Settled::TurnedManual | Settled::ManualByModule) =
                outcome
            {
                if let Err(e) = crate::health::notify::sweep(config, &mut open_db(config)?) {
                    log::error!("notifications: {e:#}");
                }
            }
            match outcome {
                attempt::Outcome::Busy => {
                    eprintln!("operation {id} is already running");
                    return Ok(ExitCode::from(3));
                }
                attempt::Outcome::Gone => {
                    eprintln!("operation {id} does not exist");
                    return Ok(ExitCode::from(4));
                }
                attempt::Outcome::Settled(s) => eprintln!("operation {id}: {s:?}"),
            }
        }
        Command::Backup(command) => return backup(config, command),
        Command::Install(args) => {
            let report = install::install(config, &install_target(config, &args)?)?;
            print_report(&report, true);
        }
        Command::Uninstall { args, purge } => {
            let report = install::uninstall(
                config,
                &install_target(config, &args)?,
                install::Removal { purge },
            )?;
            // After a purge the log is gone and stays gone.
            print_report(&report, !purge);
        }
        Command::Status { json, no_probe } => {
            let mut db = open_db(config)?;
            let status = status::gather(config, &mut db, !no_probe)?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &status)?;
                writeln!(out)?;
            } else {
                write!(out, "{}", status::render_text(&status))?;
            }
            if !status.healthy {
                return Ok(ExitCode::FAILURE);
            }
        }
        #[cfg(feature = "dev")]
        Command::Dev(DevCommand::Seed(opts)) => {
            let mut db = open_db(config)?;
            let mut bar = crate::progress::Progress::new("seed");
            let result = dev::seed::run(&mut db, &opts, &mut |p, n| bar.update(p, n));
            bar.finish();
            let seeded = result?;
            eprintln!(
                "seeded {} clients (seed {}) in {:.1}s:",
                opts.clients, opts.seed, seeded.seconds
            );
            for (table, rows) in seeded.rows {
                eprintln!("  {table:<24} {rows:>10} rows");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn install_target(config: &Config, args: &InstallArgs) -> Result<install::Target> {
    Ok(install::Target {
        mgrdir: config.mgrdir.clone(),
        sysroot: args.sysroot.clone(),
        binary: std::env::current_exe().context("cannot find the running binary")?,
        log_file: config.log_file.clone(),
        mode: args
            .mode
            .as_deref()
            .and_then(crate::config::InstallMode::parse),
    })
}

fn print_report(report: &install::Report, log: bool) {
    for line in &report.changed {
        if log {
            log::info!("{line}");
        }
        eprintln!("{line}");
    }
    for line in &report.notices {
        eprintln!("note: {line}");
    }
}

/// `billmgr-ops backup ...`. Exit status 3: another backup or restore runs.
fn backup(config: &Config, command: BackupCommand) -> Result<ExitCode> {
    let source = config.db.clone().context("no database configured")?;
    let result = match command {
        BackupCommand::Create { plan, storage } => {
            let mut db = open_db(config)?;
            let settings =
                crate::engine::settings::Settings::resolve(config, &mut db, plan, storage)?;
            drop(db);
            let mut bar = crate::progress::Progress::new("backup");
            let result = jobs::take_copy(config, &source, &settings, &mut |p, n| bar.update(p, n));
            bar.finish();
            if result.is_err() {
                // Tell now rather than at the next cron tick.
                if let Err(e) = open_db(config).and_then(|mut db| notify::sweep(config, &mut db)) {
                    log::error!("notifications: {e:#}");
                }
            }
            result.map(|row| {
                eprintln!(
                    "copy {} (id {}): {} bytes, {} rows",
                    row.name, row.id, row.size, row.rows
                );
            })
        }
        BackupCommand::List => {
            let mut db = open_db(config)?;
            let mut out = std::io::stdout().lock();
            for c in backups::list(&mut db)? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}{}",
                    c.id,
                    c.name,
                    c.created,
                    c.state,
                    c.size,
                    c.rows,
                    if c.reason.is_empty() {
                        String::new()
                    } else {
                        format!("\t{}", c.reason)
                    }
                )?;
            }
            Ok(())
        }
        BackupCommand::Verify { copy } => {
            let mut db = open_db(config)?;
            let row = jobs::find(&mut db, &copy)?;
            let settings = crate::engine::settings::Settings::for_copy(config, &mut db, &row)?;
            let mut bar = crate::progress::Progress::new("verify");
            let result = jobs::verify_copy(&settings, &row.name, &mut |p, n| bar.update(p, n));
            bar.finish();
            result.map(|r| {
                eprintln!(
                    "copy {}: ok ({} entries, {} chunks, {} rows, {} bytes)",
                    row.name, r.entries, r.chunks, r.rows, r.bytes
                );
            })
        }
        BackupCommand::Restore { copy, behavior } => {
            let mut db = open_db(config)?;
            let row = jobs::find(&mut db, &copy)?;
            let settings = crate::engine::settings::Settings::for_copy(config, &mut db, &row)?;
            drop(db);
            let behavior =
                restore::Behavior::parse(&behavior).context("behavior is edit or skip")?;
            let mut bar = crate::progress::Progress::new("restore");
            let mut progress = |phase: &str, percent: u32| bar.update(phase, percent);
            let result = jobs::restore_copy(
                config,
                &source,
                &settings,
                &row.name,
                behavior,
                &mut progress,
            );
            bar.finish();
            result.map(|r| {
                eprintln!("restored copy {}: {} tables, {} rows", row.name, r.tables, r.rows);
                if let Some(undo) = r.undo {
                    eprintln!("the replaced tables are kept in database `{undo}` until the next successful backup");
                }
            })
        }
        BackupCommand::Delete {
            copy,
            clean_storage,
        } => {
            let mut db = open_db(config)?;
            let row = jobs::find(&mut db, &copy)?;
            let settings = crate::engine::settings::Settings::for_copy(config, &mut db, &row)?;
            jobs::delete_copy(&mut db, &settings, &row, clean_storage)
        }
        BackupCommand::Undo => jobs::undo_restore(config, &source).map(|n| {
            eprintln!("{n} tables swapped back; run undo again to redo the restore");
        }),
        BackupCommand::Storage(command) => return storage(config, command),
        BackupCommand::RestoreObject {
            copy,
            kind,
            ids,
            behavior,
        } => {
            let mut db = open_db(config)?;
            let row = jobs::find(&mut db, &copy)?;
            anyhow::ensure!(
                row.state == crate::db::backups::CopyState::Ok,
                "copy {} is {}",
                row.name,
                row.state
            );
            let settings = crate::engine::settings::Settings::for_copy(config, &mut db, &row)?;
            drop(db);
            let behavior =
                restore::Behavior::parse(&behavior).context("behavior is edit or skip")?;
            let mut bar = crate::progress::Progress::new("restore-object");
            let result = jobs::restore_objects(
                config,
                &source,
                &settings,
                &row.name,
                &kind,
                &ids,
                behavior,
                &mut |p, n| bar.update(p, n),
            );
            bar.finish();
            result.map(|r| {
                for (table, n) in &r.rows {
                    eprintln!("{table}: {n} rows");
                }
                eprintln!("read {} of {} archive bytes", r.bytes_read, r.archive_size);
            })
        }
        BackupCommand::Show { copy, kind, id } => {
            let mut db = open_db(config)?;
            let row = jobs::find(&mut db, &copy)?;
            let settings = crate::engine::settings::Settings::for_copy(config, &mut db, &row)?;
            let opened = jobs::open_copy(&settings, &row.name)?;
            let listing = opened.listing()?;
            let view = crate::engine::pick::show_object(&opened, &listing, &kind, id)?;
            eprintln!(
                "read {} of {} archive bytes",
                view.bytes_read, view.archive_size
            );
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &view)?;
            writeln!(out)?;
            Ok(())
        }
        BackupCommand::Upload {
            file,
            url,
            name,
            storage,
        } => {
            let mut db = open_db(config)?;
            let settings =
                crate::engine::settings::Settings::resolve(config, &mut db, None, storage)?;
            drop(db);
            let from = match (file, url) {
                (Some(file), _) => upload::Source::File(file),
                (None, Some(url)) => upload::Source::Url {
                    url,
                    allow_private: config.upload_private_urls,
                },
                (None, None) => bail!("--file or --url is needed"),
            };
            let bar = std::sync::Arc::new(std::sync::Mutex::new(crate::progress::Progress::new(
                "upload",
            )));
            let shown = bar.clone();
            let progress: upload::ReadProgress = Box::new(move |read, size| {
                let percent = size.map_or(0, |size| read * 100 / size.max(1)) as u32;
                if let Ok(mut bar) = shown.lock() {
                    bar.update("read", percent);
                }
            });
            let result = upload::upload_with_progress(
                config,
                &source,
                &settings,
                &from,
                name.as_deref(),
                progress,
            );
            if let Ok(mut bar) = bar.lock() {
                bar.finish();
            }
            match result {
                Ok(row) => {
                    eprintln!(
                        "copy {} (id {}): {} bytes, {} rows",
                        row.name, row.id, row.size, row.rows
                    );
                    Ok(())
                }
                Err(e) if e.downcast_ref::<upload::NotACopy>().is_some() => {
                    eprintln!("billmgr-ops: refused: {e:#}");
                    return Ok(ExitCode::from(2));
                }
                Err(e) => Err(e),
            }
        }
        BackupCommand::Rescan => {
            let mut db = open_db(config)?;
            let settings = crate::engine::settings::Settings::resolve(config, &mut db, None, None)?;
            let mut bar = crate::progress::Progress::new("rescan");
            let result = jobs::rescan(&mut db, &settings, &mut |p, n| bar.update(p, n));
            bar.finish();
            result.map(|n| eprintln!("{n} copies added to the catalog"))
        }
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.downcast_ref::<jobs::Busy>().is_some() => {
            eprintln!("billmgr-ops: {e:#}");
            Ok(ExitCode::from(3))
        }
        Err(e) => Err(e),
    }
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
                kind: Kind::parse(&a.kind).context("unknown kind")?,
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
                        std::env::var("BILLMGR_OPS_STORAGE_SECRET").unwrap_or_default()
                    };
                    anyhow::ensure!(
                        !secret.is_empty() || !params.kind.secret_required(&params),
                        "the {field} is missing: set BILLMGR_OPS_STORAGE_SECRET or use --secret-stdin"
                    );
                    if secret.is_empty() {
                        None
                    } else {
                        Some(crate::engine::crypt::seal_secret(&config.mgrdir, &secret)?)
                    }
                }
            };
            anyhow::ensure!(
                find(&mut db, &a.name).is_err(),
                "a storage named `{}` exists already",
                a.name
            );
            let id = backupconf::add_storage(&mut db, &a.name, &params, secret.as_deref())?;
            eprintln!("storage {id}: {}", params.describe());
        }
        StorageCommand::List => {
            let mut out = std::io::stdout().lock();
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
            let opened = crate::engine::settings::open_storage(&config.mgrdir, &row)?;
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
            let used: Vec<String> = backupconf::plans(&mut db)?
                .into_iter()
                .filter(|p| p.storage == row.id)
                .map(|p| p.name)
                .collect();
            anyhow::ensure!(
                used.is_empty(),
                "storage `{}` is the storage of plans {}",
                row.name,
                used.join(", ")
            );
            backupconf::remove_storage(&mut db, row.id)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn open_db(config: &Config) -> Result<Db> {
    let Some(source) = &config.db else {
        bail!("no database configured: set BILLMGR_OPS_DB, DBUrl in billmgr-ops.conf, or DBHost/DBName in billmgr.conf");
    };
    Db::open(source, config.db_connect_timeout).context("cannot open the billing database")
}
