//! Notifications: a failed backup, a failed restore drill, a gap in the
//! binary log or a follower far behind it, and an operation that turned
//! manual are
//! written to the log and, when `NotifyEmail` is set, mailed through the
//! local sendmail, at most once per event.
//!
//! Every event has a key (`backup:<copy id>`, `manual:<operation
//! id>:<when it turned manual>`) that is claimed in `billmgrops_notice`
//! before anything is said, so however many processes sweep at once (cron,
//! the backup that just failed, the attempt that just gave up), each event
//! is told once. New events of one sweep go out as one mail. A mail that
//! sendmail refuses is logged and not retried.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::config::Config;
use crate::db::health::{self, TroubledOperation};
use crate::db::{backups, Db};

/// One event to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub key: String,
    pub text: String,
}

fn copy_event(c: &backups::CopyRow) -> Event {
    Event {
        key: format!("backup:{}", c.id),
        text: format!(
            "Backup copy {} (started {}{}) FAILED: {}\n  See: billmgr-ops backup list; the log has the detail.",
            c.name,
            c.created,
            c.plan.map(|p| format!(", plan {p}")).unwrap_or_default(),
            if c.reason.is_empty() { "no reason recorded" } else { &c.reason }
        ),
    }
}

fn manual_event(key: String, op: &TroubledOperation) -> Event {
    Event {
        key,
        text: format!(
            "Running operation #{} ({}) turned MANUAL at {} after {} failed attempts{}\n  \
             A staff task was opened. History: billmgr-ops call runningoperation.errorhistory elid={}",
            op.id,
            op.what(),
            op.manual_since,
            op.attempts,
            op.error_suffix(),
            op.id
        ),
    }
}

fn drill_event(d: &crate::db::drills::Drill) -> Event {
    Event {
        key: format!("drill:{}", d.id),
        text: format!(
            "Restore drill #{} (started {} UTC{}{}) FAILED: {}\n  The copies may not restore: see billmgr-ops status and the log.",
            d.id,
            d.started,
            if d.copy.is_empty() { String::new() } else { format!(", copy {}", d.copy) },
            if d.to_time.is_empty() { String::new() } else { format!(", to {} UTC", d.to_time) },
            if d.reason.is_empty() { "no reason recorded" } else { &d.reason }
        ),
    }
}

/// Finds the events nobody was told of, claims them, logs them and, when
/// configured, mails them. Returns the events this call told.
pub fn sweep(config: &Config, db: &mut Db) -> Result<Vec<Event>> {
    let mut fresh = Vec::new();
    for id in health::unnotified_failed_copies(db)? {
        if let Some(copy) = backups::get(db, id)? {
            fresh.push(copy_event(&copy));
        }
    }
    for (key, op) in health::unnotified_manual(db)? {
        fresh.push(manual_event(key, &op));
    }
    for d in crate::db::drills::unnotified_failures(db)? {
        fresh.push(drill_event(&d));
    }
    // The binary log: a gap, a follower far behind (claimed once each).
    match super::log::gather(config, db, &mut Vec::new()) {
        Ok(log) => fresh.extend(
            log.alerts
                .into_iter()
                .map(|(key, text)| Event { key, text }),
        ),
        Err(e) => log::warn!("the binary log's state: {e:#}"),
    }
    let mut told = Vec::new();
    for event in fresh {
        if health::claim_notice(db, &event.key)? {
            log::error!("{}", event.text.replace('\n', " "));
            told.push(event);
        }
    }
    let Some(to) = config.setting("NotifyEmail").filter(|v| !v.is_empty()) else {
        return Ok(told);
    };
    if told.is_empty() {
        return Ok(told);
    }
    let keys: Vec<String> = told.iter().map(|e| e.key.clone()).collect();
    match send_mail(config, to, &told) {
        Ok(()) => {
            log::info!("mailed {} notice(s) to {to}", told.len());
            health::settle_notices(db, &keys, "sent", "")?;
        }
        Err(e) => {
            log::error!("failed to mail {} notice(s) to {to}: {e:#}", told.len());
            health::settle_notices(db, &keys, "failed", &format!("{e:#}"))?;
        }
    }
    Ok(told)
}

/// Checks that an address list holds nothing that could become a header.
fn check_addresses(list: &str) -> Result<()> {
    if list.chars().any(|c| c.is_control())
        || list
            .split(',')
            .any(|a| !a.trim().contains('@') || a.trim().contains(char::is_whitespace))
    {
        bail!("`{list}` is not a comma-separated list of mail addresses");
    }
    Ok(())
}

/// The mail, headers and body.
pub fn compose(from: &str, to: &str, host: &str, events: &[Event]) -> String {
    let subject = if events.len() == 1 {
        let first = &events[0].key;
        let what = if first.starts_with("backup:") {
            "a backup failed"
        } else {
            "an operation turned manual"
        };
        format!("[billmgr-ops] {host}: {what}")
    } else {
        format!(
            "[billmgr-ops] {host}: {} events need attention",
            events.len()
        )
    };
    let mut mail = format!(
        "From: {from}\nTo: {to}\nSubject: {subject}\nAuto-Submitted: auto-generated\n\
         MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
    );
    for e in events {
        mail.push_str(&e.text);
        mail.push_str("\n\n");
    }
    mail.push_str(&format!(
        "-- \nbillmgr-ops on {host}. `billmgr-ops status` shows the whole picture.\n"
    ));
    mail
}

fn send_mail(config: &Config, to: &str, events: &[Event]) -> Result<()> {
    check_addresses(to).context("NotifyEmail")?;
    let host = crate::host::hostname();
    let from = match config.setting("NotifyFrom").filter(|v| !v.is_empty()) {
        Some(from) => {
            check_addresses(from).context("NotifyFrom")?;
            from.to_string()
        }
        None => format!("billmgr-ops@{host}"),
    };
    let sendmail = config.setting("Sendmail").unwrap_or("/usr/sbin/sendmail");
    let mut child = Command::new(sendmail)
        .args(["-t", "-i"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {sendmail} (set Sendmail in the config)"))?;
    let mail = compose(&from, to, &host, events);
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(mail.as_bytes())
        .with_context(|| format!("{sendmail} did not take the mail"))?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{sendmail} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_cannot_smuggle_headers() {
        assert!(check_addresses("ops@example.com").is_ok());
        assert!(check_addresses("ops@example.com, boss@example.com").is_ok());
        assert!(check_addresses("ops@example.com\nBcc: x@evil").is_err());
        assert!(check_addresses("not an address").is_err());
    }

    #[test]
    fn one_mail_names_every_event() {
        let events = vec![
            Event {
                key: "backup:1".into(),
                text: "Backup copy b1 FAILED: disk".into(),
            },
            Event {
                key: "manual:2:20261123".into(),
                text: "Running operation #2 turned MANUAL".into(),
            },
        ];
        let mail = compose("a@h", "ops@x", "h", &events);
        assert!(mail.contains("Subject: [billmgr-ops] h: 2 events need attention\n"));
        assert!(mail.contains("b1 FAILED") && mail.contains("#2 turned MANUAL"));
        let one = compose("a@h", "ops@x", "h", &events[..1]);
        assert!(one.contains("Subject: [billmgr-ops] h: a backup failed\n"));
    }
}
