//! Point-in-time recovery against a real server writing a binary log (the
//! host's MariaDB, or scripts/dbserver.sh's MySQL and MariaDB 10.5), as
//! root and as the panel's account with the replication privileges: the
//! follower killed mid-stream, the server restarted, the log rotated and
//! purged, then a restore to a chosen second, every table's checksum equal
//! to the state at that second while writes went on around it.

use std::path::Path;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql::prelude::Queryable;

use crate::harness::logserver::LogServer;
use crate::harness::{wait_until, Panel, TestDb};

const SCHEMA: &str = "
CREATE TABLE customer (
  id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  balance DECIMAL(12,2) NOT NULL DEFAULT 0,
  registered DATETIME(6) NULL,
  touched TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  state ENUM('active','blocked','deleted') NOT NULL DEFAULT 'active',
  flags SET('a','b','c') NOT NULL DEFAULT '',
  big BIGINT UNSIGNED NOT NULL DEFAULT 0,
  small TINYINT UNSIGNED NOT NULL DEFAULT 0,
  note TEXT NULL,
  avatar BLOB NULL,
  born DATE NULL,
  ratio DOUBLE NULL,
  bits BIT(10) NULL,
  meta JSON NULL
) ENGINE=InnoDB;
CREATE TABLE invoice (
  id INT AUTO_INCREMENT PRIMARY KEY,
  customer INT UNSIGNED NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  paid DATETIME NOT NULL,
  KEY (customer),
  CONSTRAINT invoice_customer FOREIGN KEY (customer) REFERENCES customer (id)
) ENGINE=InnoDB;
CREATE TABLE ledger (customer INT UNSIGNED, message VARCHAR(50)) ENGINE=InnoDB;
";

const TABLES: [&str; 3] = ["customer", "invoice", "ledger"];

/// A steady writer of small transactions across the tables, that rides
/// out a restarted server and can be held between transactions.
struct Writer {
    hold: Arc<AtomicBool>,
    held: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    committed: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(url: &str) -> Writer {
        let (hold, held, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let committed = Arc::new(AtomicU64::new(0));
        let url = url.to_string();
        let thread = {
            let (hold, held, stop, committed) =
                (hold.clone(), held.clone(), stop.clone(), committed.clone());
            std::thread::spawn(move || {
                let mut conn: Option<mysql::Conn> = None;
                let mut n: u64 = 0;
                while !stop.load(Ordering::SeqCst) {
                    if hold.load(Ordering::SeqCst) {
                        held.store(true, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    held.store(false, Ordering::SeqCst);
                    if conn.is_none() {
                        conn = mysql::Conn::new(mysql::Opts::from_url(&url).unwrap()).ok();
                        if conn.is_none() {
                            std::thread::sleep(Duration::from_millis(100));
                            continue;
                        }
                    }
                    n += 1;
                    match transaction(conn.as_mut().unwrap(), n) {
                        Ok(()) => {
                            committed.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => conn = None,
                    }
                    std::thread::sleep(Duration::from_millis(15));
                }
            })
        };
        Writer {
            hold,
            held,
            stop,
            committed,
            thread: Some(thread),
        }
    }

    /// Holds the writer between transactions; returns once it is held.
    fn hold(&self) {
        self.hold.store(true, Ordering::SeqCst);
        self.held.store(false, Ordering::SeqCst);
        wait_until(60, "the writer holds", || self.held.load(Ordering::SeqCst));
    }

    fn release(&self) {
        self.hold.store(false, Ordering::SeqCst);
    }

    fn committed(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One transaction: a client, a payment, a balance, a journal line, and
/// now and then a deletion; values of every kind the schema has.
fn transaction(c: &mut mysql::Conn, n: u64) -> mysql::Result<()> {
    let mut tx = c.start_transaction(mysql::TxOpts::default())?;
    let name = format!("клиент «{n}» 'q' \\ x");
    let avatar: Vec<u8> = (0..(n % 300) as u8).chain([0, 255, 39, 92]).collect();
    tx.exec_drop(
        "INSERT INTO customer (name, balance, registered, state, flags, big, small, note, avatar, born, ratio, bits, meta)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        vec![
            mysql::Value::from(&name),
            format!("{}.{:02}", n * 7 % 10_000, n % 100).into(),
            (!n.is_multiple_of(3))
                .then(|| format!("2026-0{}-1{} 12:34:56.{:06}", 1 + n % 9, n % 10, n * 37 % 1_000_000))
                .into(),
            ["active", "blocked", "deleted"][(n % 3) as usize].into(),
            ["", "a", "b,c", "a,b,c"][(n % 4) as usize].into(),
            (u64::MAX - n).into(),
            ((250 + n % 6) as u8).into(),
            (!n.is_multiple_of(5)).then(|| "заметка ".repeat((n % 7) as usize)).into(),
            (!n.is_multiple_of(4)).then_some(avatar).into(),
            n.is_multiple_of(2).then(|| format!("19{:02}-0{}-2{}", n % 100, 1 + n % 9, n % 8)).into(),
            (n % 3 != 1).then_some(n as f64 / 7.0).into(),
            (n % 2 == 1).then_some((n % 1024) as u16).into(),
            (n % 3 == 2).then(|| format!("{{\"n\": {n}, \"tags\": [\"x\", \"ü\"]}}")).into(),
        ],
    )?;
    let id = tx.last_insert_id().unwrap_or(0);
    tx.exec_drop(
        "INSERT INTO invoice (customer, amount, paid) VALUES (?, ?, NOW())",
        (id, format!("{}.50", n % 1000)),
    )?;
    tx.exec_drop(
        "UPDATE customer SET balance = balance + 1.25, small = 0, note = NULL WHERE id = ?",
        (id / 2 + 1,),
    )?;
    tx.exec_drop(
        "INSERT INTO ledger (customer, message) VALUES (?, ?)",
        (id, format!("m{}", n % 4)),
    )?;
    if n.is_multiple_of(5) {
        tx.exec_drop(
            "DELETE FROM invoice WHERE id = (SELECT id FROM (SELECT MIN(id) AS id FROM invoice) p)",
            (),
        )?;
        tx.query_drop("DELETE FROM ledger WHERE message = 'm0' LIMIT 1")?;
    }
    tx.commit()
}

fn checksums(db: &TestDb) -> Vec<(String, u64, String)> {
    TABLES
        .iter()
        .map(|t| {
            (
                t.to_string(),
                db.checksum(t),
                db.scalar(&format!("SELECT COUNT(*) FROM {t}")),
            )
        })
        .collect()
}

/// A follower process, killed (-9) when dropped, however the test ends.
struct Follower(Child);

impl Follower {
    /// Starts a follower and returns once it follows (its spool records
    /// where it reads from): what is written after is in its log.
    fn start(panel: &Panel) -> Follower {
        let spool = panel.mgrdir().join("var/billmgr-ops/binlog");
        let states = || {
            std::fs::read_dir(&spool)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter_map(|e| std::fs::metadata(e.path().join("state.json")).ok())
                        .filter_map(|m| m.modified().ok())
                        .max()
                })
                .ok()
                .flatten()
        };
        let before = states();
        let follower = Follower(
            panel
                .command(&["backup", "follow", "--segment-seconds", "1"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("cannot start the follower"),
        );
        wait_until(60, "the follower follows", || states() > before);
        follower
    }

    fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The newest time any stored segment reaches (its last event).
fn stored_until(backup_dir: &Path) -> i64 {
    std::fs::read_dir(backup_dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".idx"))
                .filter_map(|e| std::fs::read(e.path()).ok())
                .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .filter_map(|v| v["last_time"].as_i64())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn utc(secs: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%F %T"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Holds the writer, takes the state at a second no transaction is in,
/// and releases the writer once that second has passed.
fn mark_second(writer: &Writer, db: &TestDb) -> (i64, Vec<(String, u64, String)>) {
    writer.hold();
    let second = now();
    let state = checksums(db);
    // Transactions after this began after `second`.
    while now() <= second {
        std::thread::sleep(Duration::from_millis(50));
    }
    writer.release();
    (second, state)
}

#[test]
fn a_restore_to_a_second_survives_a_killed_follower_a_restarted_server_rotation_and_purge() {
    let mut server = LogServer::start();
    let db = TestDb::empty_on(server.server);
    db.grant_plugin_globally("REPLICATION SLAVE, REPLICATION CLIENT");
    db.exec(SCHEMA);
    let panel = Panel::for_backups(&db);
    let backup_dir = panel.mgrdir().join("var/billmgr-ops/backup");
    assert!(panel.command(&["migrate"]).status().unwrap().success());

    let follow = Follower::start(&panel);
    let writer = Writer::start(&db.url);
    wait_until(60, "the first transactions", || writer.committed() > 20);
    // A copy taken while the writes go on: its place in the log is exact.
    let (_, copy) = panel.take_copy(&db);
    let listing: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup_dir.join(format!("{copy}.json"))).unwrap())
            .unwrap();
    assert!(
        listing["binlog"]["file"]
            .as_str()
            .is_some_and(|f| !f.is_empty()),
        "the copy records its place in the log: {}",
        listing["binlog"]
    );

    // The follower killed mid-stream, and started again.
    let before = writer.committed();
    wait_until(60, "writes before the kill", || {
        writer.committed() > before + 30
    });
    drop(follow);
    let before = writer.committed();
    wait_until(60, "writes while no follower runs", || {
        writer.committed() > before + 30
    });
    let mut follow = Follower::start(&panel);

    // A rotation, then the server restarted under the writes.
    server.conn().query_drop("FLUSH BINARY LOGS").unwrap();
    let before = writer.committed();
    wait_until(60, "writes after the rotation", || {
        writer.committed() > before + 20
    });
    server.down();
    server.up();
    let before = writer.committed();
    wait_until(120, "writes after the restart", || {
        writer.committed() > before + 30
    });

    // The second to restore to, amid the writes.
    let (second, state) = mark_second(&writer, &db);
    let before = writer.committed();
    wait_until(60, "writes after the second", || {
        writer.committed() > before + 30
    });

    // Logs the follower has read are purged.
    wait_until(120, "the follower stores past the second", || {
        stored_until(&backup_dir) > second
    });
    let mut c = server.conn();
    let logs: Vec<mysql::Row> = c.query("SHOW BINARY LOGS").unwrap();
    let current: String = logs.last().unwrap().get(0).unwrap();
    c.query_drop(format!("PURGE BINARY LOGS TO '{current}'"))
        .unwrap();
    drop(writer);
    let after = checksums(&db);
    assert_ne!(after, state, "the writes went on after the second");

    let (ok, stderr) = restore_to(&panel, second);
    assert!(ok, "restore --to failed: {stderr}");
    assert!(stderr.contains("transactions"), "{stderr}");
    assert_eq!(
        checksums(&db),
        state,
        "the database as at {}: {stderr}",
        utc(second)
    );

    // The follower still runs, and nothing it holds is lost or doubled:
    // the chain of segments from the copy on has no break.
    assert!(follow.running(), "the follower runs on");
}

/// A log server with the schema, a panel for it (whose account, where it
/// is the panel's own, may replicate), and its backup directory.
fn setup() -> (LogServer, TestDb, Panel, std::path::PathBuf) {
    setup_with(0)
}

/// [`setup`], with the panel's own tables and `clients` clients too.
fn setup_with(clients: u64) -> (LogServer, TestDb, Panel, std::path::PathBuf) {
    let server = LogServer::start();
    let db = if clients > 0 {
        TestDb::seeded_on(server.server, clients)
    } else {
        TestDb::empty_on(server.server)
    };
    db.grant_plugin_globally("REPLICATION SLAVE, REPLICATION CLIENT");
    db.exec(SCHEMA);
    let panel = Panel::for_backups(&db);
    assert!(panel.command(&["migrate"]).status().unwrap().success());
    let dir = panel.mgrdir().join("var/billmgr-ops/backup");
    (server, db, panel, dir)
}

/// Writes `n` transactions (numbered from `from`) and returns.
fn write(db: &TestDb, from: u64, n: u64) {
    let mut c = db.conn();
    for i in from..from + n {
        transaction(&mut c, i).unwrap();
    }
}

/// The second just begun, with every write before it in earlier seconds
/// and none after it until it has passed: the state at it, and the second.
fn quiet_second(db: &TestDb) -> (i64, Vec<(String, u64, String)>) {
    let second = now();
    let state = checksums(db);
    while now() <= second {
        std::thread::sleep(Duration::from_millis(50));
    }
    (second, state)
}

/// The log around a copy: writes, the copy, more writes, a quiet second
/// (and the state at it), more writes, and the log stored past it.
struct AroundACopy {
    copy_id: String,
    copy: String,
    second: i64,
    state: Vec<(String, u64, String)>,
}

fn around_a_copy(db: &TestDb, panel: &Panel, dir: &Path) -> AroundACopy {
    write(db, 1, 10);
    let (copy_id, copy) = panel.take_copy(db);
    write(db, 20, 15);
    let (second, state) = quiet_second(db);
    write(db, 50, 5);
    wait_until(60, "the log past the second", || stored_until(dir) > second);
    AroundACopy {
        copy_id,
        copy,
        second,
        state,
    }
}

/// `backup restore --to <second>`: whether it succeeded, and its stderr.
fn restore_to(panel: &Panel, second: i64) -> (bool, String) {
    let out = panel
        .command(&["backup", "restore", "--to", &utc(second)])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Kills every process started for `mgrdir` (a follower the cron tick
/// started), when dropped.
struct Reaper(String);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = std::process::Command::new("pkill")
            .args(["-9", "-f", &self.0])
            .status();
    }
}

fn status_json(panel: &Panel) -> serde_json::Value {
    let out = panel
        .command(&["status", "--json", "--no-probe"])
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status --json: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `status` names a problem that says `what`.
fn assert_problem(panel: &Panel, what: &str) {
    let s = status_json(panel);
    let problems = s["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p.as_str().unwrap().contains(what)),
        "no problem says `{what}`: {s}"
    );
}

#[test]
fn the_tick_keeps_the_follower_running_and_a_purged_log_is_a_gap_a_copy_closes() {
    // The tick runs the panel's operations too: the panel's tables.
    let (server, db, panel, _) = setup_with(2);
    panel.configure("BinlogFollow on\nBinlogSegmentSeconds 1\n");
    let _reaper = Reaper(panel.mgrdir().display().to_string());
    let tick = |panel: &Panel| {
        let out = panel.command(&["cron"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    tick(&panel);
    wait_until(60, "the tick's follower runs", || {
        status_json(&panel)["log"]["follower_running"] == true
    });
    panel.take_copy(&db);
    write(&db, 1, 20);
    wait_until(60, "the window reaches the writes", || {
        let s = status_json(&panel);
        s["log"]["window_from"].is_string()
            && s["log"]["lag_secs"] == 0
            && s["log"]["window_to"].is_string()
    });
    let s = status_json(&panel);
    assert!(
        s["log"]["prerequisites"]["missing"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{s}"
    );
    assert!(s["log"]["gaps"].as_array().unwrap().is_empty(), "{s}");

    // The follower stopped; the server rotates and purges what it had not
    // read: a gap, found when the tick starts the follower again.
    let _ = std::process::Command::new("pkill")
        .args([
            "-9",
            "-f",
            &format!("{} .*backup follow", panel.mgrdir().display()),
        ])
        .status();
    wait_until(60, "the follower is gone", || {
        status_json(&panel)["log"]["follower_running"] == false
    });
    write(&db, 100, 20);
    let mut c = server.conn();
    c.query_drop("FLUSH BINARY LOGS").unwrap();
    let logs: Vec<mysql::Row> = c.query("SHOW BINARY LOGS").unwrap();
    let current: String = logs.last().unwrap().get(0).unwrap();
    // The server keeps a log its (dead) follower's dump thread still
    // holds until that thread is gone.
    wait_until(60, "the old logs are purged", || {
        let dumps: Vec<u64> = c
            .query(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
            )
            .unwrap();
        for id in dumps {
            let _ = c.query_drop(format!("KILL {id}"));
        }
        c.query_drop(format!("PURGE BINARY LOGS TO '{current}'"))
            .unwrap();
        let logs: Vec<mysql::Row> = c.query("SHOW BINARY LOGS").unwrap();
        logs.len() == 1
    });
    assert_problem(&panel, "follower is not running");
    tick(&panel);
    wait_until(60, "the gap is found and shown", || {
        !status_json(&panel)["log"]["gaps"]
            .as_array()
            .unwrap()
            .is_empty()
    });
    assert_problem(&panel, "gap");
    // The next tick mails it, and takes a full copy, which closes it.
    let sendmail = crate::health::recording_sendmail(&panel);
    panel.configure(&format!(
        "NotifyEmail ops@example.com\nSendmail {}\n",
        sendmail.display()
    ));
    let copies = db.scalar("SELECT COUNT(*) FROM billmgrops_backup WHERE state = 'ok'");
    // A copy's name is by the second: the gap's copy must not share one.
    std::thread::sleep(Duration::from_millis(1100));
    tick(&panel);
    wait_until(120, "the gap's copy", || {
        db.scalar("SELECT COUNT(*) FROM billmgrops_backup WHERE state = 'ok'") != copies
    });
    let mails = crate::health::mails(&panel);
    assert!(mails.iter().any(|m| m.contains("GAP")), "{mails:?}");
    wait_until(30, "the gap is closed", || {
        status_json(&panel)["log"]["gaps"]
            .as_array()
            .unwrap()
            .is_empty()
    });
}

#[test]
fn a_damaged_segment_or_a_schema_change_in_the_window_is_refused_and_changes_nothing() {
    let (_server, db, panel, dir) = setup();
    let _follow = Follower::start(&panel);
    write(&db, 1, 10);
    panel.take_copy(&db);
    write(&db, 20, 10);
    let (before_ddl, _) = quiet_second(&db);
    db.exec("ALTER TABLE ledger ADD COLUMN extra INT NULL");
    write(&db, 40, 10);
    let (after_ddl, _) = quiet_second(&db);
    write(&db, 60, 3);
    wait_until(60, "the follower stores past the second", || {
        stored_until(&dir) > after_ddl
    });
    let live = checksums(&db);

    // Past the schema change: refused, the live tables untouched.
    let (ok, stderr) = restore_to(&panel, after_ddl);
    assert!(!ok && stderr.contains("changes the schema"), "{stderr}");
    assert_eq!(checksums(&db), live);

    // A segment damaged on the storage: refused by its SHA-256.
    let seg = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let original = std::fs::read(&seg).unwrap();
    let mut damaged = original.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x55;
    std::fs::write(&seg, &damaged).unwrap();
    // A forged description beside it, naming a path: left out.
    std::fs::write(
        dir.join("billmgr-binlog-x.idx"),
        br#"{"format":1,"server":"x","start":{"file":"../../etc/passwd","pos":4}}"#,
    )
    .unwrap();
    let (ok, stderr) = restore_to(&panel, before_ddl);
    assert!(!ok, "a damaged log restored: {stderr}");
    assert!(
        stderr.contains("damaged") || stderr.contains("cannot parse"),
        "{stderr}"
    );
    assert_eq!(checksums(&db), live);

    // Mended, the second before the change restores.
    std::fs::write(&seg, &original).unwrap();
    let (ok, stderr) = restore_to(&panel, before_ddl);
    assert!(ok, "{stderr}");
}

#[test]
fn an_encrypted_log_restores_with_the_passphrase_alone() {
    let (_server, db, panel, dir) = setup();
    assert!(panel.set_backup_passphrase("log passphrase").ok());
    let _follow = Follower::start(&panel);
    let AroundACopy { second, state, .. } = around_a_copy(&db, &panel, &dir);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".seg.age")), "{names:?}");
    assert!(
        !names.iter().any(|n| n.ends_with(".seg")),
        "a segment in clear: {names:?}"
    );
    let (ok, stderr) = restore_to(&panel, second);
    assert!(ok, "{stderr}");
    assert_eq!(checksums(&db), state);
}

/// A client with his users, services and payments, as text.
fn client(db: &TestDb, id: &str) -> String {
    db.scalar(&format!(
        "SELECT CONCAT_WS('|',
           (SELECT CONCAT_WS(',', name, balance, registration_date) FROM account WHERE id = {id}),
           (SELECT GROUP_CONCAT(CONCAT_WS(',', id, name, email) ORDER BY id) FROM user WHERE account = {id}),
           (SELECT GROUP_CONCAT(CONCAT_WS(',', id, name, cost, expiredate) ORDER BY id) FROM item WHERE account = {id}),
           (SELECT GROUP_CONCAT(CONCAT_WS(',', id, number, amount) ORDER BY id) FROM payment WHERE account = {id}))"
    ))
}

#[test]
fn the_panel_restores_a_client_as_he_was_at_a_second() {
    let (_server, db, panel, dir) = setup_with(6);
    let _follow = Follower::start(&panel);
    let a = db.scalar("SELECT account FROM payment ORDER BY account LIMIT 1");
    let other = db.scalar(&format!(
        "SELECT id FROM account WHERE id <> {a} ORDER BY id LIMIT 1"
    ));
    let (copy_id, _) = panel.take_copy(&db);
    // After the copy, before the second: the client and a payment changed.
    db.exec(&format!(
        "UPDATE account SET name = 'Renamed before', balance = balance + 10 WHERE id = {a};
         UPDATE payment SET amount = 42 WHERE account = {a} ORDER BY id LIMIT 1"
    ));
    let (second, _) = quiet_second(&db);
    let then = client(&db, &a);
    assert!(then.contains("Renamed before"), "{then}");
    // After it: the client deleted, another client changed.
    db.exec(&format!(
        "DELETE FROM account WHERE id = {a}; UPDATE account SET name = 'Other after' WHERE id = {other}"
    ));
    wait_until(60, "the follower stores past the second", || {
        stored_until(&dir) > second
    });
    let restore_at = |at: &str| {
        panel
            .call("backupdata.restore")
            .param("plid", "account")
            .param("elid", &a)
            .param("sok", "ok")
            .param("version", &copy_id)
            .param("behavior", "skip")
            .param("at", at)
            .run()
    };
    let out = restore_at(&utc(second));
    assert!(out.ok(), "{}", out.text());
    assert_eq!(
        client(&db, &a),
        then,
        "the client as he was at {}",
        utc(second)
    );
    assert_eq!(
        db.scalar(&format!("SELECT name FROM account WHERE id = {other}")),
        "Other after",
        "nothing else changes"
    );
    // A second that is not one: refused, nothing changed.
    let out = restore_at("2026-13-01 00:00:00");
    assert_eq!(out.error_type(), ("value".into(), "at".into()));
    assert_eq!(client(&db, &a), then);
}

#[test]
fn retention_deletes_the_log_before_the_oldest_kept_copy_and_keeps_the_rest() {
    let (_server, db, panel, dir) = setup();
    let _follow = Follower::start(&panel);
    let out = panel
        .call("billmgr.backup.setup")
        .param("sok", "ok")
        .param("storage_name", "here")
        .param("storage_kind", "local")
        .param("path", "var/billmgr-ops/backup")
        .param("plan_name", "one")
        .param("schedule", "daily")
        .param("at_time", "00:00")
        .param("keep_count", "1")
        .run();
    assert!(out.ok(), "{}", out.text());
    let plan = db.scalar("SELECT id FROM billmgrops_plan WHERE name = 'one'");
    let copy = || {
        let out = panel
            .command(&["backup", "create", "--plan", &plan])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let segments = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".idx")
            })
            .count()
    };
    write(&db, 1, 10);
    copy();
    write(&db, 20, 10);
    let (first, _) = quiet_second(&db);
    write(&db, 40, 10);
    wait_until(60, "the log past the first second", || {
        stored_until(&dir) > first
    });
    let before = segments();
    // A copy's name is by the second.
    std::thread::sleep(Duration::from_millis(1100));
    copy();
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM billmgrops_backup WHERE state = 'ok'"),
        "1"
    );
    assert!(
        segments() < before,
        "segments before the kept copy are deleted ({before} before)"
    );
    let (ok, stderr) = restore_to(&panel, first);
    assert!(!ok, "a second before the kept copy restored: {stderr}");
    // After the kept copy, the log still serves.
    write(&db, 60, 10);
    let (second, state) = quiet_second(&db);
    write(&db, 80, 5);
    wait_until(60, "the log past the second", || {
        stored_until(&dir) > second
    });
    let (ok, stderr) = restore_to(&panel, second);
    assert!(ok, "{stderr}");
    assert_eq!(checksums(&db), state);
}

#[test]
fn a_drill_restores_into_scratch_keeps_the_evidence_and_a_failed_one_is_mailed() {
    let (_server, db, panel, dir) = setup_with(3);
    let _follow = Follower::start(&panel);
    let _reaper = Reaper(panel.mgrdir().display().to_string());
    let (_, copy) = panel.take_copy(&db);
    write(&db, 1, 20);
    let (second, _) = quiet_second(&db);
    write(&db, 30, 3);
    wait_until(60, "the log past the second", || {
        stored_until(&dir) > second
    });
    let live = checksums(&db);

    // The newest second the stored log reaches, restored and dropped.
    let out = panel.command(&["backup", "drill"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("drill passed") && stderr.contains(" to "),
        "{stderr}"
    );
    assert_eq!(checksums(&db), live, "the live database is not touched");
    assert_eq!(
        db.scalar(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'billmgrops\\_stage%'"
        ),
        "0",
        "nothing staged is left"
    );
    let drill = &status_json(&panel)["log"]["last_drill"];
    assert_eq!(drill["state"], "ok", "{drill}");
    assert_eq!(drill["copy"], copy.as_str());
    assert!(
        drill["to_time"].as_str().is_some_and(|t| !t.is_empty()),
        "{drill}"
    );
    assert!(drill["transactions"].as_u64().unwrap() > 0, "{drill}");

    // The drill's own staged tables in the log do not stop a restore to
    // a second after it.
    write(&db, 50, 10);
    let (after_drill, state) = quiet_second(&db);
    write(&db, 70, 3);
    wait_until(60, "the log past the drill", || {
        stored_until(&dir) > after_drill
    });
    let (ok, stderr) = restore_to(&panel, after_drill);
    assert!(ok, "{stderr}");
    assert_eq!(checksums(&db), state);
    let live = checksums(&db);

    // A damaged copy fails its drill: a problem in status, and a mail.
    let sendmail = crate::health::recording_sendmail(&panel);
    panel.configure(&format!(
        "NotifyEmail ops@example.com\nSendmail {}\n",
        sendmail.display()
    ));
    let tar = dir.join(format!("{copy}.tar"));
    let mut bytes = std::fs::read(&tar).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&tar, bytes).unwrap();
    let out = panel
        .command(&["backup", "drill", "--copy", &copy])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a damaged copy passed its drill");
    assert_eq!(checksums(&db), live);
    assert_problem(&panel, "restore drill");
    assert!(panel.command(&["cron"]).status().unwrap().success());
    let mails = crate::health::mails(&panel);
    assert!(
        mails
            .iter()
            .any(|m| m.contains("Restore drill") && m.contains("FAILED")),
        "{mails:?}"
    );

    // The tick starts a drill when one is due.
    panel.configure("BackupDrillDays 1\n");
    db.exec("UPDATE billmgrops_drill SET started = started - INTERVAL 2 DAY");
    let drills = db.scalar("SELECT COUNT(*) FROM billmgrops_drill");
    let out = panel.command(&["cron"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(120, "the tick's drill ends", || {
        db.scalar("SELECT COUNT(*) FROM billmgrops_drill WHERE finished IS NOT NULL") != drills
    });
}

#[test]
fn the_panel_restores_the_database_as_it_was_at_a_second_in_the_background() {
    let (_server, db, panel, dir) = setup();
    let _follow = Follower::start(&panel);
    let _reaper = Reaper(panel.mgrdir().display().to_string());
    let AroundACopy {
        copy_id,
        second,
        state,
        ..
    } = around_a_copy(&db, &panel, &dir);
    let restore = |at: &str| {
        panel
            .call("backups.restore")
            .param("elid", &copy_id)
            .param("sok", "ok")
            .param("behavior", "edit")
            .param("at", at)
            .run()
    };
    assert_eq!(
        restore("yesterday").error_type(),
        ("value".into(), "at".into())
    );
    let out = restore(&utc(second));
    assert!(out.ok(), "{}", out.text());
    wait_until(120, "the database as at the second", || {
        checksums(&db) == state
    });
}

/// docs/archive-format.md's log replay script, as the document holds it.
fn replay_script() -> String {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/archive-format.md"
    ))
    .unwrap();
    let start = doc
        .find("```sh\n#!/bin/sh\n# replay-log.sh")
        .expect("docs/archive-format.md holds the log replay script")
        + "```sh\n".len();
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_string()
}

/// The server's own log reader: the host's mariadb-binlog, or on a MySQL
/// server of scripts/dbserver.sh its chroot's mysqlbinlog, given the
/// segments inside the chroot.
fn log_reader(panel: &Panel) -> String {
    let root = std::env::var("BILLMGR_OPS_TEST_DB_ROOT").unwrap_or_default();
    let mysql = !root.is_empty()
        && std::path::Path::new(&root)
            .join("usr/bin/mysqlbinlog")
            .exists();
    if !mysql {
        return "mariadb-binlog".into();
    }
    let wrapper = panel.mgrdir().join("mysqlbinlog");
    std::fs::write(
        &wrapper,
        format!(
            r#"#!/bin/sh
# mysqlbinlog, in {root}: the files it is given copied in.
inside=/tmp/replay-$$
mkdir -p "{root}$inside"
n=0
for a; do
  shift
  case $a in
    --*) set -- "$@" "$a" ;;
    *) n=$((n + 1)); cp "$a" "{root}$inside/$n"; set -- "$@" "$inside/$n" ;;
  esac
done
chroot "{root}" mysqlbinlog "$@"
rc=$?
rm -rf "{root}$inside"
exit $rc
"#
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper.display().to_string()
}

#[test]
fn the_documented_replay_script_brings_a_restored_copy_to_the_second() {
    let (_server, db, panel, dir) = setup();
    let _follow = Follower::start(&panel);
    let AroundACopy {
        copy,
        second,
        state,
        ..
    } = around_a_copy(&db, &panel, &dir);
    // The copy restored, then the log by hand, as a stranger would.
    let out = panel
        .command(&["backup", "restore", &copy])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = panel.mgrdir().join("replay-log.sh");
    std::fs::write(&script, replay_script()).unwrap();
    let replay = || {
        std::process::Command::new("sh")
            .arg(&script)
            .arg(dir.join(format!("{copy}.json")))
            .arg(&dir)
            .arg(&db.name)
            .arg(utc(second))
            .env("MYSQL", crate::recipe::client(&db))
            .env("BINLOG", log_reader(&panel))
            .output()
            .unwrap()
    };
    let out = replay();
    assert!(
        out.status.success(),
        "the documented replay failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(checksums(&db), state, "the database as at {}", utc(second));

    // Damaged segments (every one: the one that holds the copy's place
    // among them) are refused before anything is applied.
    for seg in std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
    {
        let mut bytes = std::fs::read(&seg).unwrap();
        let at = bytes.len() - 10;
        bytes[at] ^= 0x55;
        std::fs::write(&seg, bytes).unwrap();
    }
    let out = replay();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("damaged"),
        "{stderr}"
    );
}

#[test]
fn while_the_storage_is_down_the_log_waits_in_the_spool_and_drains_when_it_is_back() {
    let (_server, db, panel, dir) = setup();
    let _follow = Follower::start(&panel);
    write(&db, 1, 5);
    let (_, copy) = panel.take_copy(&db);
    // The storage's directory gone, a file in its place: nothing can be
    // stored.
    let aside = dir.with_extension("aside");
    std::fs::rename(&dir, &aside).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    write(&db, 10, 20);
    let sealed = panel
        .mgrdir()
        .join(format!("var/billmgr-ops/binlog/{}/sealed", db.name));
    let waiting = || {
        std::fs::read_dir(&sealed)
            .map(|d| d.filter(|e| e.is_ok()).count())
            .unwrap_or(0)
    };
    wait_until(60, "sealed segments wait in the spool", || waiting() > 0);
    // Back: the spool drains, and the log serves a restore.
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&aside, &dir).unwrap();
    let (second, state) = quiet_second(&db);
    write(&db, 40, 3);
    wait_until(90, "the spool drains", || {
        waiting() == 0 && stored_until(&dir) > second
    });
    assert!(dir.join(format!("{copy}.json")).exists());
    let (ok, stderr) = restore_to(&panel, second);
    assert!(ok, "{stderr}");
    assert_eq!(checksums(&db), state);
}
