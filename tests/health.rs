//! `billmgr-ops status` (text and JSON) on a seeded database, and the
//! notifications of failed backups and operations that turned manual,
//! mailed through a recording sendmail at most once per event.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::harness::{add_operation, Panel, TestDb};

/// A panel for backups whose cron ticks start no operation: the seeded
/// operations name modules these tests do not have.
fn quiet_panel(db: &TestDb) -> Panel {
    let panel = Panel::for_backups(db);
    std::fs::write(panel.mgrdir().join("etc/billmgr.DoNothing"), "").unwrap();
    panel
}

fn run(panel: &Panel, args: &[&str]) -> std::process::Output {
    panel.command(args).output().unwrap()
}

fn status_json(panel: &Panel) -> (Option<i32>, serde_json::Value) {
    let out = run(panel, &["status", "--json"]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

/// Adds a local storage by the CLI, as an administrator would.
fn add_local_storage(panel: &Panel, name: &str, path: &str) {
    let add = run(
        panel,
        &[
            "backup", "storage", "add", name, "--kind", "local", "--path", path,
        ],
    );
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
}

/// A sendmail that appends each mail to var/mails, separated by a line.
pub(crate) fn recording_sendmail(panel: &Panel) -> PathBuf {
    let path = panel.mgrdir().join("sendmail");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n[ \"$1 $2\" = '-t -i' ] || exit 64\ncat >> {0}\necho '=====' >> {0}\n",
            panel.mgrdir().join("var/mails").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

pub(crate) fn mails(panel: &Panel) -> Vec<String> {
    std::fs::read_to_string(panel.mgrdir().join("var/mails"))
        .unwrap_or_default()
        .split("=====\n")
        .filter(|m| !m.trim().is_empty())
        .map(String::from)
        .collect()
}

/// An operation handled by test module `module` that was created in 2001
/// and has failed `trycount` times.
fn operation(db: &TestDb, module: &str, trycount: u32) -> u64 {
    let id = add_operation(db, module);
    db.exec(&format!(
        "UPDATE runningoperation SET trycount = {trycount}, cdate = '2001-01-01 00:00:00' WHERE id = {id}"
    ));
    id
}

#[test]
fn status_on_a_seeded_database_in_text_and_json() {
    let db = TestDb::seeded(40);
    let panel = quiet_panel(&db);
    // Before any cron tick: cron has never run, which is a problem.
    let (code, json) = status_json(&panel);
    assert_eq!(code, Some(1));
    assert_eq!(json["healthy"], false);
    assert!(
        json["problems"][0]
            .as_str()
            .unwrap()
            .contains("cron has never run"),
        "{json}"
    );

    let ok = run(&panel, &["cron"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let copy = run(&panel, &["backup", "create"]);
    assert!(
        copy.status.success(),
        "{}",
        String::from_utf8_lossy(&copy.stderr)
    );
    // A plan at a time long past today's, already run today: next due tomorrow.
    add_local_storage(&panel, "here", "var/billmgr-ops/backup");
    db.exec(
        "INSERT INTO billmgrops_plan (name, storage, schedule, at_time, last_run)
         SELECT 'nightly', id, 'daily', '00:00', NOW() FROM billmgrops_storage",
    );

    let (code, json) = status_json(&panel);
    // The seed leaves operations that failed long ago but none that turned
    // manual in the last day: healthy.
    assert_eq!(json["problems"], serde_json::json!([]), "{json}");
    assert_eq!(code, Some(0));
    assert!(json["cron"]["seconds_ago"].as_i64().unwrap() < 300);
    assert_eq!(json["backup"]["last_copy"]["state"], "ok");
    let plan = &json["backup"]["plans"][0];
    assert_eq!(plan["name"], "nightly");
    assert_eq!(plan["overdue"], false);
    assert!(
        plan["next_due"].as_str().unwrap().ends_with(" 00:00:00"),
        "{plan}"
    );
    assert_eq!(json["backup"]["storages"][0]["reachable"], true);
    let total: u64 = db
        .scalar("SELECT COUNT(*) FROM runningoperation")
        .parse()
        .unwrap();
    assert_eq!(json["operations"]["total"], total);
    let by_state: u64 = json["operations"]["by_state"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_state, total);

    // An operation that has failed since 2001 is the oldest failing one.
    let old = operation(&db, "pmfail", 3);
    db.exec(&format!(
        "INSERT INTO billmgrops_operation (runningoperation, status) VALUES ({old}, 'error')"
    ));
    let (_, json) = status_json(&panel);
    assert_eq!(json["operations"]["oldest_failing"]["id"], old, "{json}");

    // The text screen says the same.
    let out = run(&panel, &["status", "--no-probe"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(": healthy"), "{text}");
    assert!(text.contains("plan 1 `nightly` (daily)"), "{text}");
    assert!(
        text.contains(&format!("oldest failing: #{old} open")),
        "{text}"
    );
    assert!(text.contains("not checked"), "{text}");
}

#[test]
fn an_unreachable_storage_and_a_failed_copy_are_problems() {
    let db = TestDb::seeded(5);
    let panel = Panel::for_backups(&db);
    assert!(run(&panel, &["cron"]).status.success());
    db.exec(
        "INSERT INTO billmgrops_backup (name, storage, state, reason, created, finished)
         VALUES ('billmgr-20261101-030000', 'default', 'failed', 'disk full', NOW(), NOW())",
    );
    // A directory that cannot exist.
    add_local_storage(&panel, "gone", "/proc/billmgr-ops/none");
    // Two storages on one directory, probed side by side with the others.
    let twice = panel.mgrdir().join("var/twice");
    std::fs::create_dir_all(&twice).unwrap();
    for name in ["one", "two"] {
        add_local_storage(&panel, name, twice.to_str().unwrap());
    }
    let (code, json) = status_json(&panel);
    assert_eq!(code, Some(1));
    let problems = json["problems"].to_string();
    assert!(
        problems.contains("storage `gone` is not reachable"),
        "{problems}"
    );
    let storages = json["backup"]["storages"].as_array().unwrap();
    let reachable: Vec<(String, bool)> = storages
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["reachable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reachable,
        [
            ("gone".into(), false),
            ("one".into(), true),
            ("two".into(), true)
        ]
    );
    assert_eq!(
        std::fs::read_dir(&twice).unwrap().count(),
        0,
        "the probes leave nothing behind"
    );
    assert!(
        problems.contains("billmgr-20261101-030000") && problems.contains("disk full"),
        "{problems}"
    );
    assert_eq!(json["backup"]["storages"][0]["reachable"], false);
}

#[test]
fn a_manual_operation_and_a_failed_backup_are_mailed_once() {
    let db = TestDb::seeded(5);
    let panel = quiet_panel(&db).with_modules();
    let sendmail = recording_sendmail(&panel);
    panel.configure(&format!(
        "MaxAttempts 1\nNotifyEmail ops@example.com\nNotifyFrom billing@example.com\nSendmail {}\n",
        sendmail.display()
    ));
    // Copies that failed before the plugin could notify are not news.
    assert!(run(&panel, &["migrate"]).status.success());
    assert!(run(&panel, &["cron"]).status.success());
    assert!(mails(&panel).is_empty(), "{:?}", mails(&panel));

    let id = operation(&db, "pmfail", 0);
    let out = run(&panel, &["run-operation", &id.to_string()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT manual FROM runningoperation WHERE id = {id}"
        )),
        "on"
    );
    let sent = mails(&panel);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("To: ops@example.com\n"), "{}", sent[0]);
    assert!(
        sent[0].contains("From: billing@example.com\n"),
        "{}",
        sent[0]
    );
    assert!(
        sent[0].contains("an operation turned manual"),
        "{}",
        sent[0]
    );
    assert!(
        sent[0].contains(&format!("Running operation #{id} (open")),
        "{}",
        sent[0]
    );

    // Status lists it as turned manual in the last day.
    let (code, json) = status_json(&panel);
    assert_eq!(code, Some(1));
    assert_eq!(
        json["operations"]["turned_manual_last_day"][0]["id"], id,
        "{json}"
    );

    // Cron ticks sweep again: nothing new, nothing sent twice.
    assert!(run(&panel, &["cron"]).status.success());
    assert!(run(&panel, &["cron"]).status.success());
    assert_eq!(mails(&panel).len(), 1);

    // A copy that fails is mailed once, and logged.
    db.exec(
        "INSERT INTO billmgrops_backup (name, storage, state, reason, created, finished)
         VALUES ('billmgr-20261123-030000', 'default', 'failed', 'storage `box`: connection refused', NOW(), NOW())",
    );
    assert!(run(&panel, &["cron"]).status.success());
    assert!(run(&panel, &["cron"]).status.success());
    let sent = mails(&panel);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[1].contains("a backup failed"), "{}", sent[1]);
    assert!(sent[1].contains("billmgr-20261123-030000") && sent[1].contains("connection refused"));
    let log = std::fs::read_to_string(panel.mgrdir().join("var/billmgr-ops.log")).unwrap();
    assert!(log.contains("Backup copy billmgr-20261123-030000"), "{log}");
    assert_eq!(
        db.scalar("SELECT GROUP_CONCAT(state ORDER BY event) FROM billmgrops_notice WHERE state <> 'before'"),
        "sent,sent"
    );
}

#[test]
fn a_broken_sendmail_is_logged_and_not_retried() {
    let db = TestDb::seeded(5);
    let panel = Panel::for_backups(&db);
    panel.configure("NotifyEmail ops@example.com\nSendmail /nonexistent/sendmail\n");
    assert!(run(&panel, &["migrate"]).status.success());
    db.exec(
        "INSERT INTO billmgrops_backup (name, storage, state, reason, created, finished)
         VALUES ('billmgr-20261123-040000', 'default', 'failed', 'x', NOW(), NOW())",
    );
    // The tick itself succeeds: a mail problem never stops the scheduler.
    assert!(run(&panel, &["cron"]).status.success());
    assert!(run(&panel, &["cron"]).status.success());
    assert_eq!(
        db.scalar("SELECT CONCAT(COUNT(*), ' ', MIN(state)) FROM billmgrops_notice WHERE event LIKE 'backup:%'"),
        "1 failed"
    );
    let log = std::fs::read_to_string(panel.mgrdir().join("var/billmgr-ops.log")).unwrap();
    assert_eq!(
        log.matches("failed to mail 1 notice(s)").count(),
        1,
        "{log}"
    );
}
