//! Asking BILLmanager itself: `<mgrdir>/sbin/mgrctl -m billmgr -o xml
//! FUNC key=value ...`, as vendor modules do (`LocalQuery` in PHP,
//! `Mgrctl` in Python; ../shared/reference/real-host.md §1, §4), with a
//! time limit and a bounded answer. The answer is an XML document; one
//! holding `<error>` is the panel's refusal.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::xml::Element;

/// The most of an answer read: the documents asked for are small.
const ANSWER_LIMIT: u64 = 1 << 20;

/// Calls panel function `func` with `params`; returns its document.
pub fn call(
    mgrdir: &Path,
    func: &str,
    params: &[(&str, &str)],
    timeout: Duration,
) -> Result<Element> {
    let mgrctl = mgrdir.join("sbin/mgrctl");
    if !mgrctl.is_file() {
        bail!("{} is absent", mgrctl.display());
    }
    let mut command = Command::new(&mgrctl);
    command.args(["-m", "billmgr", "-o", "xml", func]);
    for (key, value) in params {
        command.arg(format!("{key}={value}"));
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // The panel's journal names who asked (as ISPsystem's Python
        // library does for its modules).
        .env("SSH_CONNECTION", "billmgr-ops")
        .spawn()
        .with_context(|| format!("cannot run {}", mgrctl.display()))?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(&mut stdout, ANSWER_LIMIT),
            &mut out,
        )
        .map(|_| out)
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{func}: no answer in {}s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader failed"))??;
    if !status.success() {
        bail!("{func}: exited with {status}");
    }
    let text = String::from_utf8_lossy(&out);
    let doc = Element::parse(text.trim())
        .map_err(|e| anyhow::anyhow!("{func}: its answer is not XML: {e}"))?;
    if let Some(err) = doc.find("error") {
        let msg = err
            .find("msg")
            .map(|m| m.text_content())
            .unwrap_or_else(|| err.text_content());
        bail!("{func}: the panel answered an error: {}", msg.trim());
    }
    Ok(doc)
}
