//! Running one processing module: its own process group, a timeout,
//! stdout and stderr captured concurrently and bounded to their tails.
//!
//! The module runs as the leader of a new process group, so "stop" and
//! "time out" end the module and everything it started. When the leader
//! exits, any children it left behind are killed too: they would otherwise
//! hold the output pipes open and the attempt would never finish.

use std::fmt;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// How long a stopped group gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(5);

/// A processing module invocation.
#[derive(Clone, Debug)]
pub struct ModuleCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// The exact command line, shell-quoted: what `errorhistory.showlog` shows
/// and what an administrator can paste into a shell.
impl fmt::Display for ModuleCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", shell_quote(&self.program.to_string_lossy()))?;
        for a in &self.args {
            write!(f, " {}", shell_quote(a))?;
        }
        Ok(())
    }
}

fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Why the run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The module exited (or was killed by a signal it did not get from us).
    Exited(ExitDescription),
    /// It ran past the timeout and was stopped.
    TimedOut,
    /// It was stopped on request.
    Stopped,
    /// It could not be started at all.
    NotStarted(String),
}

/// An exit status in words: "exit status: 1", "signal: 9 (SIGKILL)".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitDescription {
    pub code: Option<i32>,
    pub text: String,
}

impl ExitDescription {
    fn from(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitDescription {
                code: Some(code),
                text: format!("exit status: {code}"),
            },
            (None, Some(sig)) => {
                let name = Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("?");
                ExitDescription {
                    code: None,
                    text: format!("signal: {sig} ({name})"),
                }
            }
            _ => ExitDescription {
                code: None,
                text: status.to_string(),
            },
        }
    }
}

/// The tail of a stream: the last `limit` bytes and how many there were.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tail {
    pub bytes: Vec<u8>,
    pub total: u64,
}

impl Tail {
    /// As text; a note says how much was cut when it was.
    pub fn text(&self) -> String {
        let body = String::from_utf8_lossy(&self.bytes);
        let cut = self.total - self.bytes.len() as u64;
        if cut > 0 {
            format!("[... {cut} earlier bytes not kept ...]\n{body}")
        } else {
            body.into_owned()
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub ending: Ending,
    pub duration: Duration,
    pub stdout: Tail,
    pub stderr: Tail,
}

impl RunResult {
    /// Did the module exit with status 0?
    pub fn exited_ok(&self) -> bool {
        matches!(&self.ending, Ending::Exited(e) if e.code == Some(0))
    }

    /// The ending in words, for the attempt record.
    pub fn ending_text(&self) -> String {
        match &self.ending {
            Ending::Exited(e) => e.text.clone(),
            Ending::TimedOut => "timed out".into(),
            Ending::Stopped => "stopped by an administrator".into(),
            Ending::NotStarted(why) => format!("not started: {why}"),
        }
    }
}

/// Keeps the last `limit` bytes of a reader, counting all of them.
fn capture(mut reader: impl Read + Send + 'static, limit: usize) -> JoinHandle<Tail> {
    std::thread::spawn(move || {
        let mut tail = Tail::default();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    tail.total += n as u64;
                    tail.bytes.extend_from_slice(&buf[..n]);
                    if tail.bytes.len() > 2 * limit {
                        let cut = tail.bytes.len() - limit;
                        tail.bytes.drain(..cut);
                    }
                }
            }
        }
        if tail.bytes.len() > limit {
            let cut = tail.bytes.len() - limit;
            tail.bytes.drain(..cut);
        }
        tail
    })
}

/// Sends `signal` to the whole group led by `pgid`; a gone group is fine.
pub fn signal_group(pgid: u32, signal: Signal) {
    let _ = killpg(Pid::from_raw(pgid as i32), signal);
}

/// Is there still a process in group `pgid`?
pub fn group_alive(pgid: u32) -> bool {
    killpg(Pid::from_raw(pgid as i32), None).is_ok()
}

/// Ends a group: SIGTERM, up to [`GRACE`] to go, then SIGKILL.
pub fn end_group(pgid: u32, child: Option<&mut Child>) {
    signal_group(pgid, Signal::SIGTERM);
    let deadline = Instant::now() + GRACE;
    let mut child = child;
    while Instant::now() < deadline {
        if let Some(c) = child.as_deref_mut() {
            let _ = c.try_wait();
        }
        if !group_alive(pgid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group(pgid, Signal::SIGKILL);
}

impl ModuleCommand {
    /// Runs the module to its end, a timeout, or a stop request.
    ///
    /// `on_start` gets the process group id once the module runs (the
    /// runner records it so another process can stop it). `stop_requested`
    /// is polled about once a second.
    pub fn run(
        &self,
        timeout: Duration,
        output_limit: usize,
        on_start: impl FnOnce(u32),
        mut stop_requested: impl FnMut() -> bool,
    ) -> RunResult {
        let started = Instant::now();
        let spawned = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                return RunResult {
                    ending: Ending::NotStarted(format!("{}: {e}", self.program.display())),
                    duration: started.elapsed(),
                    stdout: Tail::default(),
                    stderr: Tail::default(),
                }
            }
        };
        let pgid = child.id();
        on_start(pgid);
        let out = capture(child.stdout.take().expect("piped"), output_limit);
        let err = capture(child.stderr.take().expect("piped"), output_limit);
        let mut last_poll = Instant::now();
        let ending = loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    // Leftover children would keep the pipes open.
                    signal_group(pgid, Signal::SIGKILL);
                    break Ending::Exited(ExitDescription::from(status));
                }
                Ok(None) => {}
                Err(e) => break Ending::NotStarted(format!("cannot wait for the module: {e}")),
            }
            if started.elapsed() >= timeout {
                end_group(pgid, Some(&mut child));
                let _ = child.wait();
                break Ending::TimedOut;
            }
            if last_poll.elapsed() >= Duration::from_secs(1) {
                last_poll = Instant::now();
                if stop_requested() {
                    end_group(pgid, Some(&mut child));
                    let _ = child.wait();
                    break Ending::Stopped;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        RunResult {
            ending,
            duration: started.elapsed(),
            stdout,
            stderr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> ModuleCommand {
        ModuleCommand {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
        }
    }

    /// Waits (up to 10 s) for a killed group to be gone: SIGKILL delivery
    /// and the reaping of orphans take a moment.
    fn gone(pgid: u32) -> bool {
        (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            !group_alive(pgid)
        })
    }

    #[test]
    fn command_line_is_shell_quoted() {
        let c = ModuleCommand {
            program: "/usr/local/mgr5/processing/pmx".into(),
            args: vec![
                "--command".into(),
                "open".into(),
                "it's x".into(),
                "".into(),
            ],
        };
        assert_eq!(
            c.to_string(),
            r"/usr/local/mgr5/processing/pmx --command open 'it'\''s x' ''"
        );
    }

    #[test]
    fn exit_status_and_output_are_captured() {
        let r = sh("echo out; echo err >&2; exit 3").run(
            Duration::from_secs(10),
            1024,
            |_| {},
            || false,
        );
        assert_eq!(r.ending_text(), "exit status: 3");
        assert_eq!(r.stdout.text(), "out\n");
        assert_eq!(r.stderr.text(), "err\n");
        assert!(!r.exited_ok());
    }

    #[test]
    fn long_output_keeps_the_tail() {
        let r = sh("seq 1 100000").run(Duration::from_secs(30), 2048, |_| {}, || false);
        assert!(r.exited_ok());
        assert_eq!(r.stdout.bytes.len(), 2048);
        assert!(r.stdout.total > 500_000);
        assert!(r.stdout.text().ends_with("99999\n100000\n"));
        assert!(r.stdout.text().starts_with("[... "));
    }

    #[test]
    fn a_signal_is_named() {
        let r = sh("kill -9 $$").run(Duration::from_secs(10), 1024, |_| {}, || false);
        assert_eq!(r.ending_text(), "signal: 9 (SIGKILL)");
    }

    #[test]
    fn a_missing_program_is_not_started() {
        let c = ModuleCommand {
            program: "/nonexistent/pmx".into(),
            args: vec![],
        };
        let r = c.run(
            Duration::from_secs(1),
            1024,
            |_| panic!("started"),
            || false,
        );
        assert!(
            matches!(r.ending, Ending::NotStarted(ref why) if why.contains("/nonexistent/pmx"))
        );
    }

    #[test]
    fn a_timeout_ends_the_whole_group() {
        let mut pgid = 0;
        let r = sh("sleep 300 & sleep 300").run(
            Duration::from_millis(300),
            1024,
            |p| pgid = p,
            || false,
        );
        assert_eq!(r.ending, Ending::TimedOut);
        assert!(gone(pgid));
    }

    #[test]
    fn a_stop_request_ends_the_whole_group() {
        let mut pgid = 0;
        let r = sh("trap '' TERM; sleep 300 & sleep 300").run(
            Duration::from_secs(60),
            1024,
            |p| pgid = p,
            || true,
        );
        assert_eq!(r.ending, Ending::Stopped);
        assert!(gone(pgid));
    }

    #[test]
    fn children_left_behind_do_not_hold_the_attempt_open() {
        let r = sh("(sleep 300; echo late) & echo done").run(
            Duration::from_secs(20),
            1024,
            |_| {},
            || false,
        );
        assert!(r.exited_ok());
        assert_eq!(r.stdout.text(), "done\n");
    }
}
