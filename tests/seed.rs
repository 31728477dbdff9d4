//! `dev seed` and `migrate`: deterministic data, safe re-runs, racing migrations.

use crate::harness::{Panel, TestDb};

fn checksums(db: &TestDb) -> Vec<String> {
    let tables = billmgr_ops::test_support::billmanager_tables();
    tables
        .iter()
        .chain(
            [
                "billmgrops_operation".to_string(),
                "billmgrops_attempt".to_string(),
            ]
            .iter(),
        )
        .map(|t| {
            format!(
                "{t}={}/{}",
                db.scalar(&format!("SELECT COUNT(*) FROM `{t}`")),
                db.checksum(t)
            )
        })
        .collect()
}

fn seed(db: &TestDb, args: &[&str]) -> std::process::Output {
    Panel::new(db)
        .command(&[&["dev", "seed"], args].concat())
        .output()
        .unwrap()
}

#[test]
fn the_same_seed_gives_the_same_data() {
    let a = TestDb::seeded(80);
    let b = TestDb::seeded(80);
    assert_eq!(checksums(&a), checksums(&b));
    let c = TestDb::empty();
    let out = seed(&c, &["--clients", "80", "--seed", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.starts_with("seed: clients\nseeded 80 clients (seed 2) in "),
        "progress as a plain line, then the summary: {stderr}"
    );
    assert!(
        stderr.contains("\n  account                          80 rows\n"),
        "{stderr}"
    );
    assert_ne!(checksums(&a), checksums(&c));
}

#[test]
fn the_data_has_the_shapes_that_break_naive_dumps() {
    let db = TestDb::seeded(200);
    let count = |sql: &str| db.scalar(sql).parse::<u64>().unwrap();
    assert!(count("SELECT COUNT(*) FROM account WHERE note IS NULL") > 0);
    assert!(count("SELECT COUNT(*) FROM account WHERE note = ''") > 0);
    assert!(count("SELECT COUNT(*) FROM account WHERE note = 'NULL'") > 0);
    assert!(count("SELECT COUNT(*) FROM account WHERE note LIKE '%\\t%' AND note LIKE '%\\n%' AND note LIKE '%\\\\\\\\%'") > 0);
    assert!(count("SELECT COUNT(*) FROM account WHERE name <> CONVERT(name USING ascii)") > 0);
    assert!(count("SELECT COUNT(*) FROM account WHERE LENGTH(note) > CHAR_LENGTH(note) + CHAR_LENGTH(note) / 2") > 0, "4-byte UTF-8");
    for (status, label) in [
        ("wait", "waiting"),
        ("run", "running"),
        ("error", "failing"),
        ("stopped", "stopped"),
    ] {
        assert!(
            count(&format!(
                "SELECT COUNT(*) FROM billmgrops_operation WHERE status='{status}'"
            )) > 0,
            "no {label} operation"
        );
    }
    assert!(
        count("SELECT COUNT(*) FROM runningoperation WHERE manual='on' AND task IS NOT NULL") > 0
    );
    assert!(count("SELECT COUNT(*) FROM task t JOIN runningoperation ro ON ro.task = t.id AND t.runningoperation = ro.id") > 0, "tasks linked both ways");
    assert!(count("SELECT COUNT(DISTINCT processingmodule) FROM item") >= 5);
    assert!(
        count(
            "SELECT COUNT(DISTINCT p.itemtype) FROM item i JOIN pricelist p ON p.id = i.pricelist"
        ) >= 5
    );
    // Foreign keys hold although the generator loads with checks off.
    assert_eq!(count("SELECT COUNT(*) FROM item i LEFT JOIN account a ON a.id = i.account WHERE a.id IS NULL"), 0);
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM itemparam p LEFT JOIN item i ON i.id = p.item WHERE i.id IS NULL"
        ),
        0
    );
    assert_eq!(count("SELECT COUNT(*) FROM runningoperation r LEFT JOIN item i ON i.id = r.item WHERE i.id IS NULL"), 0);
}

#[test]
fn seeding_refuses_to_overwrite_without_reset() {
    let db = TestDb::seeded(5);
    let before = checksums(&db);
    let out = seed(&db, &["--clients", "5", "--seed", "9"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reset"));
    assert_eq!(checksums(&db), before);
    let out = seed(&db, &["--clients", "7", "--seed", "9", "--reset"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(db.scalar("SELECT COUNT(*) FROM account"), "7");
}

#[test]
fn racing_migrations_apply_once() {
    let db = TestDb::empty();
    let panel = Panel::new(&db);
    let racing: Vec<_> = (0..6)
        .map(|_| panel.command(&["migrate"]).spawn().unwrap())
        .collect();
    for mut child in racing {
        assert!(child.wait().unwrap().success());
    }
    // And once more on an up-to-date database.
    assert!(panel.command(&["migrate"]).status().unwrap().success());
    let latest = billmgr_ops::test_support::latest_migration().to_string();
    assert_eq!(
        db.scalar("SELECT MAX(version) FROM billmgrops_migration"),
        latest
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM billmgrops_migration"),
        latest
    );
}

#[test]
fn racing_first_calls_on_a_new_database_all_answer() {
    // Several panel calls arrive at once right after install: each must
    // migrate or wait for the one that does, and answer.
    let db = TestDb::seeded(10);
    db.exec("DROP TABLE billmgrops_migration, billmgrops_operation, billmgrops_attempt");
    let panel = Panel::new(&db);
    let children: Vec<_> = (0..8)
        .map(|_| {
            panel
                .command(&["call", "runningoperation", "p_cnt=1"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{text}");
        assert!(text.contains("<p_elems>"), "{text}");
    }
}
