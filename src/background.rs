//! Launching `billmgr-ops` itself in the background: detached from the
//! panel call or cron tick that starts it (its own process group, no stdin,
//! stdout or stderr: the panel waits for our stdout to close), with the
//! same panel directory and config file.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};

use crate::config::Config;

/// What the panel hands a handler about the web request; a background job
/// is no part of that request, so none of it is passed on.
const REQUEST_VARIABLES: &[&str] = &[
    "GATEWAY_INTERFACE",
    "REQUEST_METHOD",
    "QUERY_STRING",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SCRIPT_NAME",
    "SCRIPT_FILENAME",
    "PATH_INFO",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
    "REQUEST_URI",
    "DOCUMENT_ROOT",
    "HTTPS",
];

/// The jobs started in the background: their command lines are built here
/// only, and a test parses each with the real command line definition, so
/// a renamed flag fails a test instead of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Job {
    /// `backup create [--plan ID] [--storage ID]`.
    BackupCreate {
        plan: Option<u64>,
        storage: Option<u64>,
    },
    /// `backup restore COPY --behavior edit|skip`.
    BackupRestore { copy: u64, behavior: String },
    /// `backup restore --to SECOND --behavior edit|skip`.
    BackupRestoreTo { to: String, behavior: String },
    /// `backup follow`: the binary-log follower, which runs until killed.
    BackupFollow,
    /// `backup drill`: a restore drill of the newest second or copy.
    BackupDrill,
    /// `run-operation ID --claim TOKEN`: the attempt for the mark with
    /// that token (`db::runstate::mark_pending`).
    RunOperation { id: u64, claim: String },
}

impl Job {
    /// The arguments after the program name.
    pub fn args(&self) -> Vec<String> {
        match self {
            Job::BackupCreate { plan, storage } => {
                let mut args = vec!["backup".to_string(), "create".to_string()];
                if let Some(id) = plan {
                    args.extend(["--plan".to_string(), id.to_string()]);
                }
                if let Some(id) = storage {
                    args.extend(["--storage".to_string(), id.to_string()]);
                }
                args
            }
            Job::BackupRestore { copy, behavior } => vec![
                "backup".into(),
                "restore".into(),
                copy.to_string(),
                "--behavior".into(),
                behavior.clone(),
            ],
            Job::BackupRestoreTo { to, behavior } => vec![
                "backup".into(),
                "restore".into(),
                "--to".into(),
                to.clone(),
                "--behavior".into(),
                behavior.clone(),
            ],
            Job::BackupFollow => vec!["backup".into(), "follow".into()],
            Job::BackupDrill => vec!["backup".into(), "drill".into()],
            Job::RunOperation { id, claim } => vec![
                "run-operation".into(),
                id.to_string(),
                "--claim".into(),
                claim.clone(),
            ],
        }
    }
}

/// Starts `job` in the background and returns at once.
pub fn start(config: &Config, job: &Job) -> Result<Child> {
    spawn(config, &job.args())
}

/// Starts `billmgr-ops <args>` in the background and returns at once,
/// with the child: a caller that stays (the scheduler) waits for it, and
/// so learns at once when it ends; one that returns may drop it.
fn spawn(config: &Config, args: &[String]) -> Result<Child> {
    let exe = std::env::current_exe().context("cannot find the billmgr-ops executable")?;
    let mut cmd = Command::new(&exe);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if REQUEST_VARIABLES.contains(&name.as_ref())
            || name.starts_with("HTTP_")
            || name.starts_with("PARAM_")
            || name.starts_with("AUTH_")
        {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd.arg("--mgrdir")
        .arg(&config.mgrdir)
        .arg("--config")
        .arg(&config.path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("failed to start `{} {}`", exe.display(), args.join(" ")))
}
