//! Launching `billmgr-ops` itself in the background: detached from the
//! panel call or cron tick that starts it (its own process group, no stdin,
//! stdout or stderr: the panel waits for our stdout to close), with the
//! same panel directory and config file.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};

use crate::config::Config;

/// Starts `billmgr-ops <args>` in the background and returns at once.
pub fn spawn(config: &Config, args: &[String]) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the billmgr-ops executable")?;
    Command::new(&exe)
        .arg("--mgrdir")
        .arg(&config.mgrdir)
        .arg("--config")
        .arg(&config.path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .with_context(|| format!("failed to start `{} {}`", exe.display(), args.join(" ")))?;
    Ok(())
}
