//! The command line: panel mode (no subcommand) and the commands an
//! administrator or cron runs by hand.
//!
//! Exit codes: panel mode exits 0 whenever it printed a document (the
//! `<error>` inside is the signal), 1 when even that failed. `call` exits 0
//! for a document without `<error>`, 1 for one with it (2 for a parameter
//! that is not KEY=VALUE), so scripts can branch. Other commands exit 0 on success and 1 on failure, with the error
//! chain on stderr; `run-operation` exits 3 when the operation is already
//! running and 4 when it does not exist; every `backup` subcommand exits 3
//! when another backup, restore or upload holds the job lock, and `backup
//! upload` 2 when the file is refused; `status` exits 1 when something
//! needs attention. Output cut short by its reader (`| head`) ends quietly
//! with 0, as ripgrep and cargo do.

mod backup;
mod binlog;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::db::{migrate, Db};
#[cfg(feature = "dev")]
use crate::dev;
use crate::health::status;
use crate::operation::Settled;
use crate::protocol::{self, request::MAX_STDIN, Incoming};
use crate::runner::attempt;
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
        /// The token of the mark this runner was started for (start and
        /// cron pass it): a mark put back or taken since means nothing to do.
        #[arg(long, hide = true)]
        claim: Option<String>,
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
    Backup(backup::BackupCommand),
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
                    stdout(),
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

/// The command line's stdout: listings and reports (`status`, `backup
/// list`, ...) and the CGI's refusal; panel mode writes only through
/// `protocol::emit`.
#[allow(clippy::disallowed_methods)]
pub(crate) fn stdout() -> std::io::Stdout {
    std::io::stdout()
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
            let report = crate::cron::tick(config, &mut open_db(config)?)?;
            if let Some(plan) = report.plan_started {
                eprintln!("backup plan {plan} is due: started");
            }
            let ops = report.operations;
            if ops.paused {
                eprintln!("maintenance mode (etc/billmgr.DoNothing): nothing started");
            } else if ops.overlapped {
                eprintln!("another tick is running: nothing done");
            } else {
                eprintln!(
                    "started {:?}; settled as interrupted {:?}; put back {:?}; {} running",
                    ops.started, ops.interrupted, ops.put_back, ops.running
                );
            }
        }
        Command::RunOperation { id, claim } => {
            let db = open_db(config)?;
            let outcome = attempt::run(config, db, id, claim.as_deref())?;
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
                attempt::Outcome::Unclaimed => {
                    eprintln!(
                        "operation {id}: this runner's mark was put back or taken; nothing done"
                    );
                    return Ok(ExitCode::from(3));
                }
                attempt::Outcome::Gone => {
                    eprintln!("operation {id} does not exist");
                    return Ok(ExitCode::from(4));
                }
                attempt::Outcome::Settled(s) => eprintln!("operation {id}: {s:?}"),
            }
        }
        Command::Backup(command) => return backup::run(config, command),
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
            let mut out = stdout().lock();
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

pub(crate) fn open_db(config: &Config) -> Result<Db> {
    Db::open(config.db_source()?, config.db_connect_timeout)
        .context("cannot open the billing database")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Cli;
    use crate::background::Job;

    /// Background jobs are started with arguments built by
    /// [`Job::args`]: a renamed flag must fail here, not in production.
    #[test]
    fn every_background_job_parses_as_a_command() {
        let jobs = [
            Job::BackupCreate {
                plan: None,
                storage: None,
            },
            Job::BackupCreate {
                plan: Some(3),
                storage: Some(4),
            },
            Job::BackupRestore {
                copy: 7,
                behavior: "edit".into(),
            },
            Job::BackupRestore {
                copy: 7,
                behavior: "skip".into(),
            },
            Job::RunOperation {
                id: 12,
                claim: "0123456789abcdef".into(),
            },
        ];
        for job in jobs {
            let args = std::iter::once("billmgr-ops".to_string()).chain(job.args());
            if let Err(e) = Cli::try_parse_from(args) {
                panic!("{job:?} does not parse: {e}");
            }
        }
    }
}
