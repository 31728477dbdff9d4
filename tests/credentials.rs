//! The billing database found as BILLmanager 6 keeps it: `billmgr.conf`,
//! then `billmgr.conf.d/*.conf` (a later key wins), else `mgrctl paramlist`
//! (asked outside panel calls only, its answer kept for them), with the
//! panel's own account (`ALL` on its database only). No account is guessed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

use mysql::prelude::Queryable;

use crate::harness::{cell, Panel, PanelAccount, TestDb};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The directories `install` expects of a panel, and a `sbin/mgrctl`
/// running `script`.
fn panel_tree(mgr: &Path, mgrctl: &str) {
    crate::harness::panel_dirs(mgr);
    let path = mgr.join("sbin/mgrctl");
    std::fs::write(&path, format!("#!/bin/sh\n{mgrctl}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_panel_with_only_db_conf_installs_takes_verifies_and_restores_a_copy_with_its_own_account() {
    let db = TestDb::seeded(5);
    let account = PanelAccount::new(&db);
    let panel = Panel::laid_out_by_the_panel(&db, &account);
    let mgr = panel.mgrdir().clone();
    panel_tree(&mgr, "exit 0");
    // An earlier file with a wrong password: db.conf, read after it, wins.
    std::fs::write(
        mgr.join("etc/billmgr.conf.d/00-old.conf"),
        "DBPassword wrong\nDBUser nobody\n",
    )
    .unwrap();
    let sysroot = format!("{}-sys", mgr.display());
    for dir in ["etc/cron.d", "etc/logrotate.d"] {
        std::fs::create_dir_all(Path::new(&sysroot).join(dir)).unwrap();
    }
    let out = panel
        .command(&["install", "--sysroot", &sysroot])
        .output()
        .unwrap();
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("billmgr.conf.d/db.conf") && text.contains(&account.user),
        "install says where the credentials came from and whose they are: {text}"
    );
    assert!(
        text.contains("no RELOAD"),
        "and what the account lacks: {text}"
    );
    assert!(!text.contains("w#rd"), "never the password: {text}");

    let status = panel
        .command(&["status", "--json", "--no-probe"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&status.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", stderr(&status)));
    let origin = json["database"]["origin"].as_str().unwrap();
    assert!(origin.ends_with("billmgr.conf.d/db.conf"), "{origin}");
    assert!(
        json["database"]["account"]["user"]
            .as_str()
            .unwrap()
            .starts_with(&account.user),
        "{json}"
    );

    let out = panel.command(&["backup", "create"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let name = db.scalar("SELECT name FROM billmgrops_backup ORDER BY id DESC LIMIT 1");
    let out = panel
        .command(&["backup", "verify", &name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // A panel call finds the database the same way.
    let list = panel.call("runningoperation").run();
    assert!(list.doc().find("error").is_none(), "{list:?}");

    // The account restores the copy (staged inside its database: it may
    // create no other), undoes and redoes it, and adds missing rows.
    let tables = ["account", "item", "payment", "expense", "itemparam"];
    // Rows, and the definition line by line: MariaDB may list the keys
    // of a table whose foreign keys were dropped and added in another
    // order.
    let state = || {
        tables
            .iter()
            .map(|t| {
                let create: String = db
                    .conn()
                    .query_first::<(String, String), _>(format!("SHOW CREATE TABLE `{t}`"))
                    .unwrap()
                    .unwrap()
                    .1;
                let mut lines: Vec<String> = create
                    .lines()
                    .map(|l| l.trim_end_matches(',').to_string())
                    .collect();
                lines.sort();
                (db.checksum(t), lines)
            })
            .collect::<Vec<_>>()
    };
    let copied = state();
    db.exec("DELETE FROM itemparam; UPDATE account SET balance = balance + 1; DELETE FROM payment WHERE id % 2 = 0");
    let changed = state();
    let run = |args: &[&str]| {
        let out = panel.command(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    run(&["backup", "restore", &name]);
    assert_eq!(
        state(),
        copied,
        "the restore brought the copy back, keys and all"
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA
             WHERE LEFT(SCHEMA_NAME, LENGTH('{db}_bmo_')) = '{db}_bmo_'",
            db = db.name
        )),
        "0",
        "no database beside the billing one"
    );
    run(&["backup", "undo"]);
    assert_eq!(state(), changed, "undo brought the changed tables back");
    run(&["backup", "undo"]);
    assert_eq!(state(), copied, "and undoing the undo redid the restore");
    db.exec("DELETE FROM payment WHERE id % 2 = 1");
    run(&["backup", "restore", &name, "--behavior", "skip"]);
    assert_eq!(state(), copied, "skip added the missing rows");
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'billmgrops\\_stage\\_%'"),
        "0",
        "nothing staged is left"
    );
    let _ = std::fs::remove_dir_all(&sysroot);
}

#[test]
fn where_nothing_names_an_account_nothing_is_guessed_and_the_error_names_the_places_read() {
    let db = TestDb::empty();
    let account = PanelAccount::new(&db);
    let panel = Panel::laid_out_by_the_panel(&db, &account);
    let mgr = panel.mgrdir().clone();
    panel_tree(&mgr, "exit 1");
    // A host, but no account: the vendor default `root` is not assumed.
    std::fs::write(mgr.join("etc/billmgr.conf.d/db.conf"), "DBHost localhost\n").unwrap();
    let out = panel.command(&["migrate"]).output().unwrap();
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("no billing database account is configured")
            && text.contains("billmgr.conf.d")
            && text.contains("paramlist"),
        "{text}"
    );
    // In the panel, a typed, localized error with the places read.
    for lang in ["en", "ru"] {
        let out = panel.call("runningoperation").param("lang", lang).run();
        let err = out.error();
        assert_eq!(err.get_attr("type"), Some("db_credentials"), "{out:?}");
        let msg = cell(&err, "msg");
        assert!(msg.contains("billmgr.conf.d"), "{msg}");
        if lang == "ru" {
            assert!(msg.contains("учётную запись"), "{msg}");
        }
    }
}

#[test]
fn paramlist_is_asked_outside_the_panel_and_its_answer_kept_for_panel_calls() {
    let db = TestDb::seeded(2);
    let account = PanelAccount::new(&db);
    let panel = Panel::laid_out_by_the_panel(&db, &account);
    let mgr = panel.mgrdir().clone();
    let (host, port) = db.host_port();
    std::fs::remove_file(mgr.join("etc/billmgr.conf.d/db.conf")).unwrap();
    let answer = mgr.join("paramlist.xml");
    std::fs::write(
        &answer,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<doc><elem><CryptKey>etc/billmgr.pem</CryptKey>\
             <DBHost>{host}</DBHost><DBPort>{port}</DBPort><DBUser>{}</DBUser>\
             <DBPassword>{}</DBPassword><DBName>{}</DBName></elem></doc>\n",
            account.user,
            account.password.replace('&', "&amp;").replace('<', "&lt;"),
            db.name
        ),
    )
    .unwrap();
    let calls = mgr.join("var/mgrctl.calls");
    panel_tree(
        &mgr,
        &format!(
            "echo \"$*\" >> '{}'\n[ \"$*\" = '-m billmgr -o xml paramlist' ] && exec cat '{}'\nexit 1",
            calls.display(),
            answer.display()
        ),
    );
    let out = panel.command(&["migrate"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let kept = mgr.join("var/billmgr-ops.paramlist");
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "kept like db.conf");
    assert!(std::fs::read_to_string(&kept)
        .unwrap()
        .contains(&format!("DBUser {}", account.user)));
    let asked = std::fs::read_to_string(&calls).unwrap().lines().count();
    // A panel call does not ask the panel: it reads what was kept.
    let list = panel.call("runningoperation").run();
    assert!(list.doc().find("error").is_none(), "{list:?}");
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap().lines().count(),
        asked,
        "a panel call asked mgrctl"
    );
}

#[test]
fn a_panel_that_answers_paramlist_wrongly_is_named_in_the_error_and_nothing_is_guessed() {
    let db = TestDb::empty();
    let account = PanelAccount::new(&db);
    let panel = Panel::laid_out_by_the_panel(&db, &account);
    let mgr = panel.mgrdir().clone();
    std::fs::remove_file(mgr.join("etc/billmgr.conf.d/db.conf")).unwrap();
    for (script, says) in [
        ("echo 'not a document <'", "not XML"),
        (
            "echo '<doc><error type=\"access\">denied</error></doc>'",
            "the panel answered an error: denied",
        ),
        ("exit 7", "exited with"),
        (
            "echo '<doc><elem><DBHost>h</DBHost></elem></doc>'",
            "no DBUser",
        ),
    ] {
        panel_tree(&mgr, script);
        let out = panel.command(&["migrate"]).output().unwrap();
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{script}: {text}");
        assert!(text.contains(says), "{script}: {text}");
        assert!(
            !mgr.join("var/billmgr-ops.paramlist").exists(),
            "{script}: nothing kept"
        );
    }
}
