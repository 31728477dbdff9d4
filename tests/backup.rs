//! Backup and full restore against a real MariaDB: fidelity of every MySQL
//! feature, consistency under concurrent writes, crashes, corruption,
//! failed restores, and one job at a time.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mysql::prelude::Queryable;

use crate::harness::{wait_until, Panel, TestDb};

struct Fixture {
    db: TestDb,
    panel: Panel,
}

fn fixture(clients: u64) -> Fixture {
    let db = TestDb::seeded(clients);
    let panel = Panel::for_backups(&db);
    Fixture { db, panel }
}

impl Fixture {
    fn backup(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["backup"];
        all.extend_from_slice(args);
        self.panel.command(&all).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.backup(args);
        assert!(
            out.status.success(),
            "backup {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What `billmgr-ops backup ARGS` draws on a terminal (`script` gives
    /// it one).
    fn backup_under_terminal(&self, args: &str) -> String {
        let cmd = format!(
            "script -qec '{} backup {args}' /dev/null",
            crate::harness::binary().display()
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .env("BILLMGR_OPS_DB", &self.db.plugin_url)
            .env("MGR_DIR", self.panel.mgrdir())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Takes a copy and returns its name.
    fn copy(&self) -> String {
        self.ok(&["create"]);
        self.db.scalar(
            "SELECT name FROM billmgrops_backup WHERE state = 'ok' ORDER BY id DESC LIMIT 1",
        )
    }

    fn dir(&self) -> PathBuf {
        self.panel.mgrdir().join("var/billmgr-ops/backup")
    }

    /// CHECKSUM TABLE of every BILLmanager table (the plugin's excluded).
    fn checksums(&self) -> Vec<(String, u64)> {
        let mut c = self.db.conn();
        let tables: Vec<String> = c
            .exec(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE 'billmgrops\\_%' ORDER BY 1",
                (&self.db.name,),
            )
            .unwrap();
        tables
            .into_iter()
            .map(|t| (t.clone(), self.db.checksum(&t)))
            .collect()
    }

    /// SHOW CREATE of every view, trigger, routine and event.
    fn definitions(&self) -> Vec<String> {
        let mut c = self.db.conn();
        let name = &self.db.name;
        let objects: Vec<(String, String)> = c
            .exec(
                "SELECT 'VIEW', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?
                 UNION ALL SELECT 'TRIGGER', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
                 UNION ALL SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
                 UNION ALL SELECT 'EVENT', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?
                 ORDER BY 1, 2",
                (name, name, name, name),
            )
            .unwrap();
        objects
            .into_iter()
            .map(|(kind, n)| {
                let row: mysql::Row = c
                    .query_first(format!("SHOW CREATE {kind} `{n}`"))
                    .unwrap()
                    .unwrap();
                let index = match kind.as_str() {
                    "VIEW" => 1,
                    "EVENT" => 3,
                    _ => 2,
                };
                let text: Option<String> = row.get(index);
                // MySQL keeps the `;` that ended a body inside a batch of
                // statements (as the tests create them) and drops it from
                // one sent alone (as a restore, and the mysql client, send
                // them): the same definition either way.
                let text = text.unwrap_or_default();
                let text = text.strip_suffix(';').unwrap_or(&text);
                format!("{kind} {n}: {text}")
            })
            .collect()
    }
}

/// [`EVERY_FEATURE`] with its numbers table for this server.
pub(crate) fn every_feature() -> String {
    EVERY_FEATURE.replace("__NUMBERS_3000__", &crate::harness::numbers(3000))
}

/// Tables and objects that exercise every feature a copy must keep.
const EVERY_FEATURE: &str = r#"
SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION,NO_AUTO_VALUE_ON_ZERO';
CREATE TABLE kinds (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  s VARCHAR(100) NULL, t TEXT NULL, b BLOB NULL, vb VARBINARY(300) NULL,
  d DATE NULL, dt DATETIME(6) NULL, ts TIMESTAMP NULL DEFAULT NULL, tm TIME NULL, y YEAR NULL,
  dec1 DECIMAL(30,10) NULL, f FLOAT NULL, dbl DOUBLE NULL, e ENUM('a','b','c d') NULL, st SET('x','y','z') NULL,
  j JSON NULL, latin VARCHAR(50) CHARACTER SET latin1 NULL,
  total DECIMAL(31,10) AS (dec1 + 1) VIRTUAL,
  upper_s VARCHAR(100) AS (UPPER(s)) STORED
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO kinds (id, s, t, b, vb, d, dt, ts, tm, y, dec1, f, dbl, e, st, j, latin) VALUES
 (0, 'zero id', NULL, NULL, NULL, '0000-00-00', '0000-00-00 00:00:00', NULL, '-838:59:59', 2155, 0, 0, 0, NULL, '', NULL, NULL),
 (1, NULL, '', X'', X'00', '2024-02-29', '2024-02-29 23:59:59.999999', '2038-01-19 03:14:07', '12:00:00', 1901, -12345678901234567890.0123456789, 3.14159, 2.718281828459045, 'c d', 'x,z', '{"a": [1, "два", null]}', 'café'),
 (2, 'NULL', 'NULL', X'4E554C4C', X'5C4E', '1000-01-01', '1970-01-01 00:00:01', '1970-01-01 00:00:01', '00:00:00', 2000, 0.0000000001, -1.5e-10, 1e308, 'a', 'x,y,z', '[]', ''),
 (3, 'tab\there', 'line1\nline2\r\nline3\\back', X'000102030405060708090A0B0C0D0E0F5C095C6E0A0D', X'FFFEFD', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'b', NULL, 'null', 'a\tb'),
 (4, '🚀 emoji ✓ ёж', 'Привет, мир «ёлки» 𝔘𝔫𝔦𝔠𝔬𝔡𝔢', NULL, NULL, '9999-12-31', '9999-12-31 23:59:59', NULL, '838:59:59', 0, 99999999999999999999.9999999999, NULL, -0.0, NULL, NULL, '{"k": "\\u0000"}', NULL),
 (5, '\\N', '\\', X'5C', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO kinds (s, b) SELECT CONCAT('row ', seq), UNHEX(SHA2(seq, 256)) FROM __NUMBERS_3000__ n;
CREATE TABLE nokey (a INT, b VARCHAR(10)) ENGINE=InnoDB STATS_AUTO_RECALC=1;
INSERT INTO nokey VALUES (1, 'x'), (1, 'x'), (NULL, NULL);
CREATE TABLE empty_one (id BIGINT PRIMARY KEY) ENGINE=InnoDB;
CREATE TABLE compound (a INT, b VARCHAR(20), v INT, PRIMARY KEY (a, b)) ENGINE=InnoDB STATS_AUTO_RECALC=0;
INSERT INTO compound VALUES (1, 'a', 1), (1, 'b', 2), (2, 'a', 3);
CREATE VIEW active_items AS SELECT id, name, account FROM item WHERE status = 2;
CREATE VIEW active_item_count AS SELECT account, COUNT(*) AS n FROM active_items GROUP BY account;
CREATE TRIGGER payment_note BEFORE INSERT ON payment FOR EACH ROW SET NEW.info = COALESCE(NEW.info, 'from trigger');
CREATE PROCEDURE close_account(IN acc INT) MODIFIES SQL DATA UPDATE item SET status = 4 WHERE account = acc;
CREATE FUNCTION money(v DECIMAL(20,2)) RETURNS VARCHAR(40) DETERMINISTIC RETURN CONCAT(FORMAT(v, 2), ' ₽');
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00' DISABLE DO DELETE FROM journal WHERE createdate < NOW() - INTERVAL 5 YEAR;
"#;

#[test]
fn a_restored_database_is_identical_in_every_feature() {
    let f = fixture(60);
    f.db.plugin_exec(&every_feature());
    let (sums, defs) = (f.checksums(), f.definitions());
    assert!(defs.len() >= 6, "{defs:?}");
    // Tables as defined, with their statistics settings (the restore
    // pauses InnoDB's recalculation while it loads).
    let tables = || -> Vec<String> {
        ["kinds", "nokey", "compound", "empty_one"]
            .iter()
            .map(|t| {
                let row: mysql::Row =
                    f.db.conn()
                        .query_first(format!("SHOW CREATE TABLE `{t}`"))
                        .unwrap()
                        .unwrap();
                let text: String = row.get(1).unwrap();
                // MySQL writes `CHARACTER SET cs COLLATE c` for a column
                // created with an explicit `COLLATE c` (as SHOW CREATE
                // wrote it) and `COLLATE c` alone otherwise: the collation
                // names the character set, so the pair says no more.
                let words: Vec<&str> = text
                    .split(' ')
                    .filter(|w| !w.starts_with("AUTO_INCREMENT="))
                    .collect();
                let mut kept = Vec::with_capacity(words.len());
                let mut i = 0;
                while i < words.len() {
                    if words[i] == "CHARACTER"
                        && words.get(i + 1) == Some(&"SET")
                        && words.get(i + 3) == Some(&"COLLATE")
                    {
                        i += 3;
                        continue;
                    }
                    kept.push(words[i]);
                    i += 1;
                }
                kept.join(" ")
            })
            .collect()
    };
    let table_defs = tables();
    assert!(
        table_defs[1].contains("STATS_AUTO_RECALC=1"),
        "{table_defs:?}"
    );
    assert!(
        table_defs[2].contains("STATS_AUTO_RECALC=0"),
        "{table_defs:?}"
    );
    let name = f.copy();
    f.ok(&["verify", &name]);

    // Damage everything a restore must bring back.
    f.db.exec(
        "SET foreign_key_checks = 0; DELETE FROM account WHERE id <= 20; UPDATE kinds SET s = 'changed';
         DELETE FROM nokey; INSERT INTO compound VALUES (9, 'z', 9); DROP VIEW active_item_count;
         DROP PROCEDURE close_account; DROP TRIGGER payment_note; DROP EVENT nightly;
         CREATE TABLE created_later (id INT PRIMARY KEY)",
    );
    assert_ne!(f.checksums(), sums);
    f.ok(&["restore", &name]);
    let after: Vec<_> = f
        .checksums()
        .into_iter()
        .filter(|(t, _)| t != "created_later")
        .collect();
    assert_eq!(after, sums);
    assert_eq!(f.definitions(), defs);
    assert_eq!(tables(), table_defs);
    // The optimizer knows the restored table's size (computed once after
    // the load, not left as the empty table's).
    let estimated: u64 = f
        .db
        .scalar(&format!(
            "SELECT n_rows FROM mysql.innodb_table_stats WHERE database_name = '{}' AND table_name = 'kinds'",
            f.db.name
        ))
        .parse()
        .unwrap();
    assert!((1000..10_000).contains(&estimated), "{estimated}");
    // The zero id, the generated columns and the counters survived.
    assert_eq!(f.db.scalar("SELECT s FROM kinds WHERE id = 0"), "zero id");
    assert_eq!(
        f.db.scalar("SELECT upper_s FROM kinds WHERE id = 4"),
        "🚀 EMOJI ✓ ЁЖ"
    );
    let next: u64 = f.db.scalar(&format!("SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME = 'kinds'", f.db.name)).parse().unwrap();
    assert!(next > 3005);
    // The plugin's own tables were left alone: the catalog still lists the copy.
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup WHERE state = 'ok'"),
        "1"
    );
    // The replaced tables are kept for undo inside the billing database,
    // and dropped by the next good copy.
    let kept =
        f.db.scalar("SELECT tbl FROM billmgrops_kept WHERE kind = 'table' AND name = 'compound' AND state = 'undo'");
    assert!(kept.starts_with("billmgrops_kept_"), "{kept}");
    assert_eq!(f.db.scalar(&format!("SELECT COUNT(*) FROM `{kept}`")), "4");
    assert_eq!(
        f.db.scalar(&format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA
             WHERE LEFT(SCHEMA_NAME, LENGTH('{db}_bmo_')) = '{db}_bmo_'",
            db = f.db.name
        )),
        "0",
        "no database beside the billing one"
    );
    f.copy();
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND (TABLE_NAME LIKE 'billmgrops\\_kept\\_%' OR TABLE_NAME LIKE 'billmgrops\\_stage\\_%')"),
        "0"
    );
    assert_eq!(f.db.scalar("SELECT COUNT(*) FROM billmgrops_kept"), "0");
}

#[test]
fn the_archive_is_readable_with_standard_tools() {
    let f = fixture(20);
    let name = f.copy();
    let archive = f.dir().join(format!("{name}.tar"));
    let out = std::process::Command::new("tar")
        .arg("tf")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(out.status.success());
    let list = String::from_utf8(out.stdout).unwrap();
    assert!(list.starts_with("FORMAT\n"));
    assert!(list.contains("schema/tables/account.sql\n"));
    assert!(list.contains("data/account/00000-0000.tsv.zst\n"));
    assert!(list.ends_with("listing.json\n"));
    // A chunk is plain LOAD DATA text once zstd is through with it.
    let text = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar xOf '{}' data/currency/00000-0000.tsv.zst | zstd -dc",
            archive.display()
        ))
        .output()
        .unwrap();
    assert!(
        text.status.success(),
        "tar | zstd -dc failed (is zstd installed?)"
    );
    assert_eq!(
        String::from_utf8_lossy(&text.stdout).lines().next(),
        Some("1\tRussian ruble\tRUB\t643\ton")
    );
}

#[test]
fn a_copy_taken_during_transfers_restores_to_balanced_books() {
    let f = fixture(10);
    copy_during_transfers(&f, f.db.snapshot_kind(), &f.db.plugin_url);
}

#[test]
fn the_panels_own_account_copies_in_parallel_under_table_locks_to_balanced_books() {
    let f = fixture(10);
    let account = crate::harness::PanelAccount::new(&f.db);
    copy_during_transfers(&f, "table-locks", &account.url(&f.db));
}

/// Takes a copy as the account of `url` while transfers between wallets
/// run, with a pause between the workers' snapshots (transfers commit in
/// it unless the snapshot holds them back), checks how the snapshot was
/// made, restores it as root and checks the books.
fn copy_during_transfers(f: &Fixture, consistency: &str, url: &str) {
    f.db.exec(&format!(
        "CREATE TABLE wallet (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB;
         INSERT INTO wallet SELECT seq, 1000 FROM {} n;
         CREATE TABLE ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, src INT, dst INT, amount BIGINT) ENGINE=InnoDB;",
        crate::harness::numbers(200_000)
    ));
    f.panel.configure("BackupThreads 2\n");
    let stop = Arc::new(AtomicBool::new(false));
    let root = f.db.url.clone();
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut c = mysql::Conn::new(mysql::Opts::from_url(&root).unwrap()).unwrap();
            let mut n = 0u64;
            let mut x: u64 = 12345;
            while !stop.load(Ordering::Relaxed) && n < 200_000 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let (src, dst, amount) = (
                    (x >> 33) % 200_000 + 1,
                    (x >> 13) % 200_000 + 1,
                    (x >> 50) % 50 + 1,
                );
                // A transfer the server picks as a deadlock's victim is
                // rolled back whole, as an application would retry it.
                let transfer = |c: &mut mysql::Conn| -> Result<(), mysql::Error> {
                    let mut tx = c.start_transaction(mysql::TxOpts::default())?;
                    tx.exec_drop(
                        "UPDATE wallet SET balance = balance - ? WHERE id = ?",
                        (amount, src),
                    )?;
                    tx.exec_drop(
                        "UPDATE wallet SET balance = balance + ? WHERE id = ?",
                        (amount, dst),
                    )?;
                    tx.exec_drop(
                        "INSERT INTO ledger (src, dst, amount) VALUES (?, ?, ?)",
                        (src, dst, amount),
                    )?;
                    tx.commit()
                };
                match transfer(&mut c) {
                    Ok(()) => n += 1,
                    Err(mysql::Error::MySqlError(e)) if e.code == 1213 => continue,
                    Err(e) => panic!("transfer: {e}"),
                }
            }
            n
        })
    };
    // Let transfers get going, copy while they run, then stop them.
    wait_until(30, "transfers to start", || {
        f.db.scalar("SELECT COUNT(*) FROM ledger") != "0"
    });
    let out = f
        .panel
        .command(&["backup", "create"])
        .env("BILLMGR_OPS_DB", url)
        .env("BILLMGR_OPS_DEV_SNAPSHOT_GAP_MS", "300")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = f
        .db
        .scalar("SELECT name FROM billmgrops_backup WHERE state = 'ok' ORDER BY id DESC LIMIT 1");
    stop.store(true, Ordering::Relaxed);
    let transfers = writer.join().unwrap();
    let listing: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.dir().join(format!("{name}.json"))).unwrap())
            .unwrap();
    assert_eq!(listing["consistency"], consistency);
    f.ok(&["restore", &name]);
    let copied: u64 = f.db.scalar("SELECT COUNT(*) FROM ledger").parse().unwrap();
    assert!(
        copied > 0 && copied < transfers,
        "the copy caught the transfers mid-way ({copied} of {transfers})"
    );
    assert_eq!(
        f.db.scalar("SELECT SUM(balance) FROM wallet"),
        (200_000u64 * 1000).to_string()
    );
    // Across tables too: every wallet equals its start plus its ledger.
    let wrong = f.db.scalar(
        "SELECT COUNT(*) FROM wallet w
         LEFT JOIN (SELECT dst AS id, SUM(amount) AS v FROM ledger GROUP BY dst) i ON i.id = w.id
         LEFT JOIN (SELECT src AS id, SUM(amount) AS v FROM ledger GROUP BY src) o ON o.id = w.id
         WHERE w.balance <> 1000 + COALESCE(i.v, 0) - COALESCE(o.v, 0)",
    );
    assert_eq!(wrong, "0");
}

#[test]
fn a_copy_killed_midway_leaves_no_valid_copy_and_the_next_succeeds() {
    let f = fixture(30);
    f.panel.configure("BackupThreads 1\nBackupLockTimeout 1\n");
    // A writer holding a table makes the copy wait in the middle of its data.
    let mut blocker = f.db.conn();
    blocker.query_drop("LOCK TABLES journal WRITE").unwrap();
    let mut child = f.panel.command(&["backup", "create"]).spawn().unwrap();
    wait_until(60, "the copy to be under way", || {
        f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup WHERE phase = 'data'") == "1"
    });
    child.kill().unwrap();
    child.wait().unwrap();
    blocker.query_drop("UNLOCK TABLES").unwrap();
    let names = || -> Vec<String> {
        std::fs::read_dir(f.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let left = names();
    assert!(
        !left.is_empty()
            && left
                .iter()
                .all(|n| n.starts_with('.') && n.ends_with(".part")),
        "{left:?}"
    );
    assert_eq!(
        f.db.scalar("SELECT state FROM billmgrops_backup"),
        "running"
    );
    let name = f.copy();
    assert_eq!(f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup WHERE state = 'failed' AND reason LIKE 'interrupted%'"), "1");
    assert_eq!(names().len(), 2, "the partial file is gone: {:?}", names());
    f.ok(&["verify", &name]);
}

#[test]
fn a_corrupt_byte_is_caught_by_verify_and_restore_and_nothing_changes() {
    let f = fixture(40);
    let name = f.copy();
    let listing: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.dir().join(format!("{name}.json"))).unwrap())
            .unwrap();
    let chunk = listing["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "itemparam")
        .unwrap()["chunks"][0]["entry"]
        .clone();
    let archive = f.dir().join(format!("{name}.tar"));
    let mut bytes = std::fs::read(&archive).unwrap();
    let at = chunk["offset"].as_u64().unwrap() as usize + 100;
    bytes[at] ^= 0x20;
    std::fs::write(&archive, bytes).unwrap();

    f.db.exec("DELETE FROM payment WHERE id % 2 = 0");
    let before = f.checksums();
    let out = f.backup(&["verify", &name]);
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("data/itemparam/00000-0000.tsv.zst") && msg.contains("corrupt"),
        "{msg}"
    );
    let out = f.backup(&["restore", &name]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
    assert_eq!(f.checksums(), before, "the live database changed");
    assert_eq!(f.db.scalar(&format!("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}\\_bmo\\_%'", f.db.name)), "0");
}

#[test]
fn a_restore_that_fails_after_the_swap_puts_everything_back() {
    let f = fixture(30);
    f.db.plugin_exec("CREATE TRIGGER t1 BEFORE INSERT ON payment FOR EACH ROW SET NEW.info = 'x'");
    let name = f.copy();
    // Break the copy's trigger definition: creating it fails after the swap.
    let path = f.dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("SET NEW.info = 'x'", "SET NEW.no_such_column = 'x'"),
    )
    .unwrap();
    f.db.plugin_exec("DELETE FROM journal WHERE id % 3 = 0; DROP TRIGGER t1; CREATE TRIGGER t2 BEFORE INSERT ON payment FOR EACH ROW SET NEW.info = 'y'");
    let (before, defs) = (f.checksums(), f.definitions());
    let out = f.backup(&["restore", &name]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the swap was reversed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(f.checksums(), before);
    assert_eq!(f.definitions(), defs);
}

#[test]
fn skip_adds_what_is_missing_and_keeps_what_changed() {
    let f = fixture(30);
    let name = f.copy();
    let gone = f.db.scalar("SELECT MIN(id) FROM item");
    let edited = f.db.scalar("SELECT MAX(id) FROM item");
    f.db.exec(&format!("DELETE FROM item WHERE id = {gone}; UPDATE item SET name = 'edited.example' WHERE id = {edited}"));
    f.db.exec("INSERT INTO account (name, project, registration_date) VALUES ('new since the copy', 1, NOW())");
    f.ok(&["restore", &name, "--behavior", "skip"]);
    assert_eq!(
        f.db.scalar(&format!("SELECT COUNT(*) FROM item WHERE id = {gone}")),
        "1"
    );
    assert_eq!(
        f.db.scalar(&format!("SELECT name FROM item WHERE id = {edited}")),
        "edited.example"
    );
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM account WHERE name = 'new since the copy'"),
        "1"
    );
}

/// A routine made by another account (here root) whose body the plugin's
/// account may not read: the panel's own account is refused a copy that
/// would restore without it, saying why; root copies it.
#[test]
fn a_routine_hidden_from_the_account_is_not_left_out_of_a_copy() {
    let f = fixture(5);
    f.db.exec("CREATE FUNCTION by_root(a INT) RETURNS INT DETERMINISTIC RETURN a + 1");
    let out = f.panel.command(&["backup", "create"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if f.db.as_panel_account() {
        assert!(
            !out.status.success(),
            "a copy without the function: {stderr}"
        );
        assert!(
            stderr.contains("function `by_root` is hidden from this database account"),
            "{stderr}"
        );
        assert_eq!(
            f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup WHERE state = 'ok'"),
            "0"
        );
    } else {
        assert!(out.status.success(), "{stderr}");
        let name =
            f.db.scalar("SELECT name FROM billmgrops_backup WHERE state = 'ok'");
        let listing = f
            .panel
            .mgrdir()
            .join(format!("var/billmgr-ops/backup/{name}.json"));
        let listing = std::fs::read_to_string(listing).unwrap();
        assert!(listing.contains("by_root.sql"), "{listing}");
        let verified = f.backup(&["verify", &name]);
        assert!(verified.status.success());
    }
}

#[test]
fn one_backup_or_restore_at_a_time() {
    let f = fixture(5);
    let name = f.copy();
    let mut holder = f.db.conn();
    let lock = format!("billmgrops.backup.{}", f.db.name);
    let got: Option<i64> = holder
        .exec_first("SELECT GET_LOCK(?, 0)", (&lock,))
        .unwrap();
    assert_eq!(got, Some(1));
    for args in [&["create"][..], &["restore", &name]] {
        let out = f.backup(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("another backup or restore is running")
        );
    }
    drop(holder);
    f.copy();
}

#[test]
fn delete_and_rescan() {
    let f = fixture(5);
    let a = f.copy();
    let b = f.copy();
    f.ok(&["delete", &a]);
    assert!(
        f.dir().join(format!("{a}.tar")).exists(),
        "without --clean-storage the files stay"
    );
    f.ok(&["delete", &b, "--clean-storage"]);
    assert!(
        !f.dir().join(format!("{b}.tar")).exists() && !f.dir().join(format!("{b}.json")).exists()
    );
    assert_eq!(f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup"), "0");
    let out = f.backup(&["rescan"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "rescan: read\n1 copies added to the catalog\n",
        "progress as plain lines, then the outcome"
    );
    assert_eq!(
        f.db.scalar("SELECT GROUP_CONCAT(name) FROM billmgrops_backup"),
        a
    );
    let listed = f.ok(&["list"]);
    assert!(listed.contains(&a), "{listed}");
    let out = f.backup(&["verify", "no-such-copy"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no copy `no-such-copy`"));
}

/// Submits billmgr.backup.settings with the usual values and `extra`.
fn save_settings(f: &Fixture, extra: &[(&str, &str)]) -> crate::harness::Output {
    let mut call = f
        .panel
        .call("billmgr.backup.settings")
        .param("sok", "ok")
        .param("path", "var/billmgr-ops/backup")
        .param("threads", "2")
        .param("files", "etc")
        .param("lock_timeout", "5");
    if !extra.iter().any(|(k, _)| *k == "compression") {
        call = call.param("compression", "3");
    }
    for (k, v) in extra {
        call = call.param(k, v);
    }
    call.run()
}

// --- The panel functions -------------------------------------------------

fn wait_for_copies(f: &Fixture, state: &str, n: usize) {
    wait_until(60, &format!("{n} copies {state}"), || {
        f.db.scalar(&format!(
            "SELECT COUNT(*) FROM billmgrops_backup WHERE state = '{state}'"
        )) == n.to_string()
    });
}

#[test]
fn the_panel_lists_copies_with_their_state() {
    let f = fixture(10);
    let name = f.copy();
    f.db.exec("INSERT INTO billmgrops_backup (name, storage, state, created, reason) VALUES ('broken', 'default', 'failed', NOW() - INTERVAL 1 DAY, 'disk full')");
    let out = f.panel.call("billmgr.backup").run();
    let rows = out.rows();
    assert_eq!(out.value("p_elems"), "2");
    assert_eq!(
        crate::harness::cell(&rows[0], "state"),
        "state_ok",
        "newest first"
    );
    let size: f64 = crate::harness::cell(&rows[0], "size").parse().unwrap();
    let bytes: f64 =
        f.db.scalar(&format!(
            "SELECT size FROM billmgrops_backup WHERE name = '{name}'"
        ))
        .parse()
        .unwrap();
    assert!((size - bytes / 1_048_576.0).abs() < 0.06);
    assert_eq!(crate::harness::cell(&rows[1], "reason"), "disk full");
    assert_eq!(rows[1].get_attr("color"), Some("red"));
    let sorted = f
        .panel
        .call("billmgr.backup")
        .param("p_sort", "size")
        .param("p_order", "asc")
        .run()
        .rows();
    assert_eq!(crate::harness::cell(&sorted[0], "state"), "state_failed");
}

#[test]
fn the_panel_starts_a_copy_in_the_background_one_at_a_time() {
    let f = fixture(10);
    let out = f
        .panel
        .call("billmgr.backup.create")
        .param("sok", "ok")
        .run();
    assert!(out.doc().find("ok").is_some(), "{}", out.stdout);
    wait_for_copies(&f, "ok", 1);
    let out = f
        .panel
        .call("billmgr.backup.create")
        .param("sok", "ok")
        .param("plan", "999")
        .run();
    assert_eq!(out.error_type(), ("missed".into(), "plan".into()));
    let mut holder = f.db.conn();
    let lock = format!("billmgrops.backup.{}", f.db.name);
    let _: Option<i64> = holder
        .exec_first("SELECT GET_LOCK(?, 0)", (&lock,))
        .unwrap();
    let out = f
        .panel
        .call("billmgr.backup.create")
        .param("sok", "ok")
        .run();
    assert_eq!(out.error_type(), ("backup_running".into(), "backup".into()));
    drop(holder);
}

#[test]
fn the_panel_restores_a_copy_in_the_background() {
    let f = fixture(20);
    let name = f.copy();
    let id = f.db.scalar(&format!(
        "SELECT id FROM billmgrops_backup WHERE name = '{name}'"
    ));
    let form = f
        .panel
        .call("backups.restore")
        .param("elid", &id)
        .run()
        .doc();
    assert_eq!(form.find("name").unwrap().text_content(), name);
    assert!(form
        .find_all("slist")
        .any(|s| s.get_attr("name") == Some("behavior")));
    let before = f.checksums();
    f.db.exec("DELETE FROM payment");
    let out = f
        .panel
        .call("backups.restore")
        .param("elid", &id)
        .param("sok", "ok")
        .param("behavior", "edit")
        .run();
    assert!(out.doc().find("ok").is_some(), "{}", out.stdout);
    wait_until(60, "the restore", || f.checksums() == before);
    wait_until(30, "the restore's outcome in the list", || {
        let rows = f.panel.call("billmgr.backup").run().rows();
        crate::harness::cell(&rows[0], "progress") == "Restored"
    });
    // A restore that fails in the background says why in the list.
    let listing: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.dir().join(format!("{name}.json"))).unwrap())
            .unwrap();
    let chunk = &listing["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "payment")
        .unwrap()["chunks"][0]["entry"];
    let archive = f.dir().join(format!("{name}.tar"));
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes[chunk["offset"].as_u64().unwrap() as usize + 10] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();
    f.panel
        .call("backups.restore")
        .param("elid", &id)
        .param("sok", "ok")
        .run();
    wait_until(60, "the failed restore in the list", || {
        let rows = f
            .panel
            .call("billmgr.backup")
            .param("lang", "ru")
            .run()
            .rows();
        crate::harness::cell(&rows[0], "reason")
            .starts_with("Последнее восстановление не удалось: restore of copy")
    });
    let out = f
        .panel
        .call("backups.restore")
        .param("elid", &id)
        .param("sok", "ok")
        .param("behavior", "merge")
        .run();
    assert_eq!(out.error_type(), ("value".into(), "behavior".into()));
    f.db.exec("INSERT INTO billmgrops_backup (name, storage, state, created) VALUES ('half', 'default', 'failed', NOW())");
    let failed =
        f.db.scalar("SELECT id FROM billmgrops_backup WHERE name = 'half'");
    let out = f
        .panel
        .call("backups.restore")
        .param("elid", &failed)
        .param("sok", "ok")
        .run();
    assert_eq!(out.error_type().0, "copy_state");
    let out = f
        .panel
        .call("backups.restore")
        .param("elid", "424242")
        .run();
    assert_eq!(out.error_type(), ("missed".into(), "backup".into()));
}

#[test]
fn the_panel_deletes_copies_all_or_nothing() {
    let f = fixture(5);
    let a = f.copy();
    let b = f.copy();
    let id = |n: &str| {
        f.db.scalar(&format!(
            "SELECT id FROM billmgrops_backup WHERE name = '{n}'"
        ))
    };
    let out = f
        .panel
        .call("backups.delete")
        .param("elid", &format!("{}, 999999", id(&a)))
        .run();
    assert_eq!(out.error_type(), ("missed".into(), "backup".into()));
    assert_eq!(f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup"), "2");
    let out = f
        .panel
        .call("backups.delete")
        .param("elid", &format!("{}, {}", id(&a), id(&b)))
        .param("clean_storages", "on")
        .run();
    assert!(out.doc().find("ok").is_some(), "{}", out.stdout);
    assert_eq!(f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup"), "0");
    assert_eq!(std::fs::read_dir(f.dir()).unwrap().count(), 0);
}

#[test]
fn setup_creates_a_storage_and_a_plan_whose_retention_and_schedule_work() {
    let f = fixture(5);
    let setup = |params: &[(&str, &str)]| {
        let mut c = f.panel.call("billmgr.backup.setup").param("sok", "ok");
        for (k, v) in params {
            c = c.param(k, v);
        }
        c.run()
    };
    let good: &[(&str, &str)] = &[
        ("storage_name", "nightly-disk"),
        ("storage_kind", "local"),
        ("path", "var/plan-copies"),
        ("plan_name", "nightly"),
        ("schedule", "daily"),
        ("at_time", "00:00"),
        ("keep_count", "2"),
    ];
    assert_eq!(
        setup(&[
            ("storage_name", "x"),
            ("path", "p"),
            ("plan_name", "y"),
            ("at_time", "25:00")
        ])
        .error_type(),
        ("value".into(), "at_time".into())
    );
    assert_eq!(
        setup(&[
            ("storage_name", "x"),
            ("path", "p"),
            ("plan_name", "y"),
            ("schedule", "weekly")
        ])
        .error_type()
        .0,
        "empty"
    );
    assert_eq!(
        setup(&[
            ("storage_name", "x"),
            ("path", "../../etc"),
            ("plan_name", "y")
        ])
        .error_type(),
        ("value".into(), "path".into())
    );
    assert!(setup(good).doc().find("ok").is_some());
    assert_eq!(
        setup(good).error_type(),
        ("exists".into(), "storage_name".into())
    );
    let plan =
        f.db.scalar("SELECT id FROM billmgrops_plan WHERE name = 'nightly'");

    // Due now (never ran, 00:00 has passed): cron starts it in the background.
    let tick = f.panel.command(&["cron"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&tick.stderr).contains(&format!("backup plan {plan} is due")),
        "{}",
        String::from_utf8_lossy(&tick.stderr)
    );
    wait_for_copies(&f, "ok", 1);
    assert_ne!(
        f.db.scalar(&format!(
            "SELECT last_run FROM billmgrops_plan WHERE id = {plan}"
        )),
        ""
    );
    let tick = f.panel.command(&["cron"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&tick.stderr).contains("is due"),
        "ran once today"
    );

    // Retention: keep 2.
    for _ in 0..2 {
        f.ok(&["create", "--plan", &plan]);
    }
    assert_eq!(
        f.db.scalar(&format!(
            "SELECT COUNT(*) FROM billmgrops_backup WHERE plan = {plan}"
        )),
        "2"
    );
    let dir = f.panel.mgrdir().join("var/plan-copies");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        4,
        "two archives and two listings"
    );
    let newest = f.db.scalar(&format!(
        "SELECT name FROM billmgrops_backup WHERE plan = {plan} ORDER BY id DESC LIMIT 1"
    ));
    assert!(dir.join(format!("{newest}.tar")).exists());
}

#[test]
fn settings_are_saved_dropped_and_the_catalog_rescanned() {
    let f = fixture(5);
    let name = f.copy();
    let form = f.panel.call("billmgr.backup.settings").run().doc();
    assert_eq!(form.find("compression").unwrap().text_content(), "1");
    let save = |compression: &str| save_settings(&f, &[("compression", compression)]);
    assert_eq!(
        save("99").error_type(),
        ("value".into(), "compression".into())
    );
    assert!(save("5").doc().find("ok").is_some());
    assert_eq!(
        f.db.scalar("SELECT value FROM billmgrops_setting WHERE name = 'BackupCompression'"),
        "5"
    );
    let out = f
        .panel
        .call("billmgr.backup.settings")
        .param("sok", "ok")
        .param("dropsettings", "on")
        .run();
    assert!(out.doc().find("ok").is_some());
    assert_eq!(f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup"), "0");
    assert_eq!(f.db.scalar("SELECT COUNT(*) FROM billmgrops_setting"), "0");
    assert!(
        f.dir().join(format!("{name}.tar")).exists(),
        "copies stay on the storage"
    );
    let out = f
        .panel
        .call("billmgr.backup.settings")
        .param("sok", "ok")
        .param("clicked_button", "rescan")
        .run();
    assert!(out.doc().find("ok").is_some());
    assert_eq!(f.db.scalar("SELECT name FROM billmgrops_backup"), name);
}

#[test]
fn a_regretted_restore_is_undone_and_redone() {
    let f = fixture(20);
    f.db.plugin_exec(
        "CREATE TRIGGER t_old BEFORE INSERT ON payment FOR EACH ROW SET NEW.info = 'old'",
    );
    let name = f.copy();
    f.db.plugin_exec("DROP TRIGGER t_old; CREATE TRIGGER t_new BEFORE INSERT ON payment FOR EACH ROW SET NEW.info = 'new';
               DELETE FROM expense WHERE id % 2 = 0; CREATE VIEW v_now AS SELECT id FROM account");
    let (now_sums, now_defs) = (f.checksums(), f.definitions());
    f.ok(&["restore", &name]);
    let (copy_sums, copy_defs) = (f.checksums(), f.definitions());
    assert_ne!(copy_sums, now_sums);
    f.ok(&["undo"]);
    assert_eq!(f.checksums(), now_sums, "undo brings the data back");
    assert_eq!(f.definitions(), now_defs, "and the triggers and views");
    f.ok(&["undo"]);
    assert_eq!(f.checksums(), copy_sums, "undo again redoes the restore");
    assert_eq!(f.definitions(), copy_defs);
}

#[test]
fn a_foreign_key_that_fails_after_the_swap_puts_every_table_and_key_back() {
    let f = fixture(20);
    f.db.plugin_exec("CREATE TRIGGER t1 BEFORE INSERT ON payment FOR EACH ROW SET NEW.info = 'x'");
    let name = f.copy();
    // The copy's key of `item` to `account` names a column `account`
    // lacks: adding it fails once the tables are swapped.
    let path = f.dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    let broken = text.replace(
        "FOREIGN KEY (`account`) REFERENCES `account` (`id`)",
        "FOREIGN KEY (`account`) REFERENCES `account` (`no_such`)",
    );
    assert_ne!(broken, text, "the copy has the key");
    std::fs::write(&path, broken).unwrap();
    f.db.exec("DELETE FROM journal WHERE id % 3 = 0");
    let keys = || {
        f.db.scalar(
            "SELECT GROUP_CONCAT(CONCAT(TABLE_NAME, '.', CONSTRAINT_NAME, '>', REFERENCED_TABLE_NAME) \
             ORDER BY TABLE_NAME, CONSTRAINT_NAME) FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = DATABASE()",
        )
    };
    let (before, defs, before_keys) = (f.checksums(), f.definitions(), keys());
    let out = f.backup(&["restore", &name]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("the swap was reversed"), "{stderr}");
    assert_eq!(f.checksums(), before);
    assert_eq!(f.definitions(), defs);
    assert_eq!(keys(), before_keys, "every key back on its live table");
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM billmgrops_kept"),
        "0",
        "the failed restore keeps nothing"
    );
}

#[test]
fn a_safety_copy_an_earlier_version_kept_in_a_side_database_still_undoes() {
    let f = fixture(10);
    if f.db.as_panel_account() {
        // Such an account could never have made the side database.
        return;
    }
    let undo = format!("{}_bmo_undo", f.db.name);
    f.db.exec(&format!(
        "CREATE DATABASE `{undo}`;
         CREATE TABLE `{undo}`.note (id INT PRIMARY KEY); INSERT INTO `{undo}`.note VALUES (1), (2);
         CREATE TABLE `{undo}`._bmo_definitions (kind VARCHAR(16), name VARCHAR(64), tbl VARCHAR(64), sql_mode TEXT, create_stmt LONGTEXT);
         CREATE TABLE note (id INT PRIMARY KEY); INSERT INTO note VALUES (3)"
    ));
    f.ok(&["undo"]);
    assert_eq!(
        f.db.scalar("SELECT GROUP_CONCAT(id ORDER BY id) FROM note"),
        "1,2"
    );
    assert_eq!(
        f.db.scalar(&format!("SELECT GROUP_CONCAT(id) FROM `{undo}`.note")),
        "3",
        "what was live is kept in its place"
    );
    f.db.exec(&format!("DROP DATABASE `{undo}`"));
}

#[test]
fn a_table_outside_the_copy_keeps_its_foreign_key_to_the_live_table() {
    let f = fixture(10);
    let name = f.copy();
    f.db.exec(
        "CREATE TABLE extra_note (id INT PRIMARY KEY, account INT NOT NULL, \
         CONSTRAINT extra_note_account FOREIGN KEY (account) REFERENCES account (id))",
    );
    let target = || {
        f.db.scalar(
            "SELECT REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = DATABASE() AND CONSTRAINT_NAME = 'extra_note_account'",
        )
    };
    f.ok(&["restore", &name]);
    assert_eq!(target(), "account", "not the kept table");
    f.ok(&["undo"]);
    assert_eq!(target(), "account");
    // The key is enforced against the live rows.
    let id = f.db.scalar("SELECT MIN(id) FROM account");
    f.db.exec(&format!("INSERT INTO extra_note VALUES (1, {id})"));
    let mut c = f.db.conn();
    assert!(c
        .query_drop("INSERT INTO extra_note VALUES (2, -5)")
        .is_err());
}

#[test]
fn what_a_killed_restore_left_is_put_right_by_the_next_one() {
    let f = fixture(10);
    let name = f.copy();
    // As a restore killed while loading leaves it: staged tables. As one
    // killed after its swap: a pending generation whose tables were moved
    // (the only copy of what was live), and one killed before: a pending
    // generation with no tables. And a kept table nothing lists.
    f.db.exec(
        "CREATE TABLE billmgrops_stage_0 (id INT); CREATE TABLE billmgrops_stage_12 (id INT);
         CREATE TABLE billmgrops_kept_7_0 (id INT PRIMARY KEY); INSERT INTO billmgrops_kept_7_0 VALUES (1), (2);
         CREATE TABLE billmgrops_kept_9_0 (id INT);
         INSERT INTO billmgrops_kept (generation, state, kind, name, tbl, sql_mode, create_stmt) VALUES
           (7, 'pending', 'table', 'was_live', 'billmgrops_kept_7_0', '', ''),
           (8, 'pending', 'table', 'never_moved', 'billmgrops_kept_8_0', '', '')",
    );
    let left = || {
        f.db.scalar(
            "SELECT COALESCE(GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME), '') FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND (TABLE_NAME LIKE 'billmgrops\\_stage\\_%' OR TABLE_NAME LIKE 'billmgrops\\_kept\\_%')",
        )
    };
    // Undo finds the moved tables and brings them back.
    f.ok(&["undo"]);
    assert_eq!(f.db.scalar("SELECT COUNT(*) FROM was_live"), "2");
    assert_eq!(left(), "", "nothing staged or orphaned is left");
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM billmgrops_kept WHERE generation = 8"),
        "0"
    );
    // A restore begins the same way.
    f.db.exec("CREATE TABLE billmgrops_stage_3 (id INT)");
    f.ok(&["restore", &name]);
    assert!(!left().contains("stage"), "{}", left());
}

// --- Encryption ------------------------------------------------------------

fn set_passphrase(f: &Fixture, passphrase: &str) -> crate::harness::Output {
    save_settings(f, &[("encrypt", "on"), ("passphrase", passphrase)])
}

#[test]
fn an_encrypted_copy_round_trips_and_the_age_tool_opens_it() {
    let f = fixture(20);
    assert_eq!(
        set_passphrase(&f, "short").error_type(),
        ("value".into(), "passphrase".into())
    );
    assert!(set_passphrase(&f, "correct horse battery")
        .doc()
        .find("ok")
        .is_some());
    // The passphrase is neither in the database in clear nor shown back.
    assert!(f
        .db
        .scalar("SELECT value FROM billmgrops_setting WHERE name = 'BackupPassphrase'")
        .starts_with("age:"));
    let form = f.panel.call("billmgr.backup.settings").run();
    assert!(!form.stdout.contains("correct horse"));
    assert_eq!(form.doc().find("encrypt").unwrap().text_content(), "on");

    let before = f.checksums();
    let name = f.copy();
    assert_eq!(
        f.db.scalar(&format!(
            "SELECT encrypted FROM billmgrops_backup WHERE name = '{name}'"
        )),
        "1"
    );
    let mut objects: Vec<String> = std::fs::read_dir(f.dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    objects.sort();
    assert_eq!(
        objects,
        [
            format!("{name}.json.age"),
            format!("{name}.key.age"),
            format!("{name}.tar.age")
        ]
    );
    let archive = std::fs::read(f.dir().join(format!("{name}.tar.age"))).unwrap();
    assert!(archive.starts_with(b"age-encryption.org/v1"));
    assert!(
        !archive.windows(9).any(|w| w == b"itemparam"),
        "table names leak"
    );

    f.ok(&["verify", &name]);
    f.db.exec("DELETE FROM item WHERE id % 2 = 1");
    f.ok(&["restore", &name]);
    assert_eq!(f.checksums(), before);

    // Standard tools alone: age opens the key with the passphrase, then the archive.
    let dir = f.dir();
    let script = format!(
        "cd '{}' && printf 'correct horse battery\\n' | script -qec 'age -d -o /tmp/{name}.key {name}.key.age' /dev/null >/dev/null 2>&1 \
         && age -d -i /tmp/{name}.key {name}.tar.age | tar -t; rm -f /tmp/{name}.key",
        dir.display()
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.starts_with("FORMAT\n") && list.contains("data/itemparam/"),
        "age + tar gave: {list} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_wrong_or_missing_passphrase_is_a_clear_error_and_changes_nothing() {
    let f = fixture(10);
    assert!(set_passphrase(&f, "the right passphrase")
        .doc()
        .find("ok")
        .is_some());
    let name = f.copy();
    f.db.exec("DELETE FROM payment");
    let before = f.checksums();
    // Another server: no settings in the database, the passphrase from the environment.
    f.db.exec("DELETE FROM billmgrops_setting");
    for (passphrase, expected) in [
        ("", "is encrypted: set the passphrase"),
        (
            "a wrong passphrase",
            "the passphrase does not open this copy's key",
        ),
    ] {
        let out = f
            .panel
            .command(&["backup", "restore", &name])
            .env("BILLMGR_OPS_PASSPHRASE", passphrase)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(msg.contains(expected), "{msg}");
    }
    assert_eq!(f.checksums(), before);
    let out = f
        .panel
        .command(&["backup", "restore", &name])
        .env("BILLMGR_OPS_PASSPHRASE", "the right passphrase")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(f.checksums(), before, "the payments are back");
}

#[test]
fn progress_is_a_bar_on_a_terminal_and_lines_elsewhere() {
    let f = fixture(10);
    let out = f.backup(&["create"]);
    let plain = String::from_utf8_lossy(&out.stderr);
    assert!(
        plain.contains("backup: snapshot\nbackup: data\n"),
        "{plain}"
    );
    assert!(!plain.contains('\r'));
    // Under a terminal (script gives the command one).
    let tty = f.backup_under_terminal("create");
    assert!(
        tty.contains("\rbackup: [####################] 100%"),
        "{tty:?}"
    );

    // verify and upload, the other long commands, the same way.
    let list = f.backup(&["list"]);
    let name = String::from_utf8_lossy(&list.stdout)
        .lines()
        .next()
        .and_then(|l| l.split('\t').nth(1))
        .unwrap()
        .to_string();
    let out = f.backup(&["verify", &name]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr)
            .matches("verify: verify\n")
            .count(),
        1
    );
    let archive = f
        .panel
        .mgrdir()
        .join(format!("var/billmgr-ops/backup/{name}.tar"));
    let out = f.backup(&[
        "upload",
        "--file",
        &archive.display().to_string(),
        "--name",
        "again",
    ]);
    let plain = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && plain.starts_with("upload: read\n"),
        "{plain}"
    );
    let tty = f.backup_under_terminal(&format!("verify {name}"));
    assert!(
        tty.contains("\rverify: [####################] 100%"),
        "{tty:?}"
    );
}

#[test]
fn the_default_storage_and_a_kept_safety_copy() {
    let f = fixture(10);
    let setup = f
        .panel
        .call("billmgr.backup.setup")
        .param("sok", "ok")
        .param("storage_name", "second")
        .param("path", "var/second")
        .param("plan_name", "manual")
        .param("schedule", "off")
        .run();
    assert!(setup.doc().find("ok").is_some(), "{}", setup.stdout);
    let storage =
        f.db.scalar("SELECT id FROM billmgrops_storage WHERE name = 'second'");
    let save = |default_storage: &str| {
        save_settings(
            &f,
            &[("default_storage", default_storage), ("keep_undo", "on")],
        )
    };
    assert_eq!(
        save("777").error_type(),
        ("missed".into(), "storage".into())
    );
    assert!(save(&storage).doc().find("ok").is_some());
    let name = f.copy();
    assert!(f
        .panel
        .mgrdir()
        .join(format!("var/second/{name}.tar"))
        .exists());
    f.ok(&["restore", &name]);
    f.copy();
    assert_ne!(
        f.db.scalar("SELECT COUNT(*) FROM billmgrops_kept WHERE state = 'undo'"),
        "0",
        "kept after the next backup"
    );
    // The create form offers the storages.
    let form = f.panel.call("billmgr.backup.create").run().doc();
    let slist = form
        .find_all("slist")
        .find(|s| s.get_attr("name") == Some("storage"))
        .unwrap();
    assert!(slist
        .find_all("val")
        .any(|v| v.get_attr("key") == Some(storage.as_str())));
}

#[test]
fn a_connection_cut_mid_copy_fails_it_cleanly() {
    let f = fixture(30);
    f.panel.configure("BackupThreads 1\nBackupLockTimeout 1\n");
    let mut blocker = f.db.conn();
    blocker.query_drop("LOCK TABLES journal WRITE").unwrap();
    let child = f
        .panel
        .command(&["backup", "create"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The dump's connection waits on the locked table: cut it there.
    let find = format!(
        "SELECT ID FROM information_schema.PROCESSLIST
         WHERE DB = '{}' AND INFO LIKE 'SELECT %journal%' AND INFO NOT LIKE '%PROCESSLIST%'",
        f.db.name
    );
    wait_until(60, "the dump to reach the locked table", || {
        !f.db.scalar(&find).is_empty()
    });
    f.db.exec(&format!("KILL {}", f.db.scalar(&find)));
    blocker.query_drop("UNLOCK TABLES").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert_eq!(f.db.scalar("SELECT state FROM billmgrops_backup"), "failed");
    assert!(
        f.db.scalar("SELECT reason FROM billmgrops_backup")
            .contains("journal"),
        "the reason names the table"
    );
    let left: Vec<String> = std::fs::read_dir(f.dir())
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "nothing that looks like a copy, nothing partial: {left:?}"
    );
    f.copy();
}

/// Mounts a tmpfs of `size` at `dir`; false (after saying so) when this
/// machine does not allow it. Under CI that is a failure, never a skip.
fn small_disk(dir: &std::path::Path, size: &str) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to mount a tmpfs (root)"
        );
        eprintln!("SKIPPED: cannot mount a tmpfs here (not root?)");
    }
    ok
}

#[test]
fn a_full_disk_is_refused_or_fails_cleanly() {
    let f = fixture(300);
    let disk = f.panel.mgrdir().join("var/small");
    if !small_disk(&disk, "256k") {
        return;
    }
    f.panel
        .configure(&format!("BackupDir {}\n", disk.display()));
    let out = f.backup(&["create"]);
    let _ = std::process::Command::new("umount").arg(&disk).status();
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("not enough space") || msg.contains("No space left"),
        "{msg}"
    );
    assert_eq!(f.db.scalar("SELECT state FROM billmgrops_backup"), "failed");
    assert!(
        std::fs::read_dir(&disk).unwrap().next().is_none(),
        "nothing left behind"
    );
}

#[test]
fn a_copy_restores_on_the_other_kind_of_server() {
    // The suite's server (MariaDB 10.11, MySQL or MariaDB 10.5, by run)
    // and a private MariaDB 10.11: on the MySQL run a copy goes from MySQL
    // to MariaDB (whose 10.11 lacks MySQL's default collation,
    // utf8mb4_0900_ai_ci) and back.
    let here = TestDb::seeded(5);
    let there = TestDb::seeded_on(crate::harness::mariadb::server_utc3(), 5);
    for (from, to) in [(&here, &there), (&there, &here)] {
        from.exec(
            "DROP TABLE IF EXISTS cross_kinds;
             CREATE TABLE cross_kinds (id INT PRIMARY KEY, s VARCHAR(30), b VARCHAR(30) COLLATE utf8mb4_bin)
               ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
             INSERT INTO cross_kinds VALUES (1, 'Ёлка', 'x'), (2, 'café', 'Y'), (3, NULL, '')",
        );
        let panel = Panel::for_backups(from);
        let (_, name) = panel.take_copy(from);
        // The same storage, the other server's database: found by a rescan.
        let on_target = |args: &[&str]| {
            let out = panel
                .command(args)
                .env("BILLMGR_OPS_DB", &to.plugin_url)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        on_target(&["backup", "rescan"]);
        on_target(&["backup", "restore", &name]);
        let rows = |db: &TestDb| {
            db.scalar(
                "SELECT GROUP_CONCAT(CONCAT_WS('|', id, COALESCE(s, 'NULL'), b) ORDER BY id SEPARATOR ';')
                 FROM cross_kinds",
            )
        };
        assert_eq!(rows(to), rows(from), "{} to {}", from.name, to.name);
        assert_eq!(
            to.scalar("SELECT COUNT(*) FROM account"),
            from.scalar("SELECT COUNT(*) FROM account")
        );
        // Sorted by the restored column's own rules: binary for `b`.
        assert_eq!(
            to.scalar("SELECT GROUP_CONCAT(b ORDER BY b SEPARATOR ',') FROM cross_kinds"),
            ",Y,x"
        );
    }
}
