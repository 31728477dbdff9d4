//! The dump's two row readers, the direct one (`db::wire`) and the client
//! library's: the same copy from either, over TCP and a local socket, with
//! a password and without the RELOAD privilege.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use mysql::prelude::Queryable;

use crate::backup::every_feature;
use crate::harness::{Panel, TestDb};

/// Every `data/` entry of a copy's archive, decompressed.
fn data_entries(archive: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut tar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    let mut out = BTreeMap::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if !path.starts_with("data/") {
            continue;
        }
        let mut raw = Vec::new();
        entry.read_to_end(&mut raw).unwrap();
        let text = if path.ends_with(".zst") {
            zstd::stream::decode_all(&raw[..]).unwrap()
        } else {
            raw
        };
        out.insert(path, text);
    }
    out
}

/// Takes a copy; returns its name.
fn copy(panel: &Panel, db: &TestDb) -> String {
    ok(panel, &["backup", "create"]);
    db.scalar("SELECT name FROM billmgrops_backup WHERE state = 'ok' ORDER BY id DESC LIMIT 1")
}

/// Runs `billmgr-ops ARGS` against `panel`, which must succeed.
fn ok(panel: &Panel, args: &[&str]) {
    let out = panel.command(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn log(panel: &Panel) -> String {
    std::fs::read_to_string(panel.mgrdir().join("var/billmgr-ops.log")).unwrap()
}

fn archive(panel: &Panel, name: &str) -> std::path::PathBuf {
    panel
        .mgrdir()
        .join(format!("var/billmgr-ops/backup/{name}.tar"))
}

#[test]
fn either_reader_writes_the_same_rows_byte_for_byte() {
    let db = TestDb::seeded(40);
    db.plugin_exec(&every_feature());
    // A cell past one 16 MiB packet (the row arrives in pieces, its length
    // takes 8 bytes), full of bytes LOAD DATA escapes.
    db.exec("SET GLOBAL max_allowed_packet = 64 * 1024 * 1024");
    db.exec(
        "CREATE TABLE big (id INT PRIMARY KEY, v LONGBLOB, n INT) ENGINE=InnoDB;
         INSERT INTO big VALUES (1, REPEAT(X'5C0A0900', 4500000), 7), (2, NULL, NULL), (3, '', 0)",
    );
    let panel = Panel::for_backups(&db);
    panel.configure("BackupThreads 2\n");
    let direct = copy(&panel, &db);
    panel.configure("BackupReader client\n");
    let client = copy(&panel, &db);
    let log = log(&panel);
    assert!(
        log.contains(&format!("{}, direct reader", db.snapshot_kind())),
        "{log}"
    );
    assert!(
        log.contains(&format!("{}, client library reader", db.snapshot_kind())),
        "{log}"
    );

    let (a, b) = (
        data_entries(&archive(&panel, &direct)),
        data_entries(&archive(&panel, &client)),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, text) in &a {
        assert!(b[path] == *text, "{path} differs between the readers");
    }
    let big: usize = a
        .iter()
        .filter(|(p, _)| p.starts_with("data/big/"))
        .map(|(_, t)| t.len())
        .sum();
    assert!(big > 32 << 20, "the big row's escaped text: {big} bytes");
    ok(&panel, &["backup", "verify", &direct]);
}

/// Creates `user` with `password` and every privilege on `db` only (no
/// RELOAD), reachable however the test connects.
fn create_user(db: &TestDb, user: &str, password: &str) {
    for host in ["%", "localhost", "127.0.0.1"] {
        db.exec(&format!(
            "CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}';
             GRANT ALL ON `{}`.* TO '{user}'@'{host}'",
            db.name
        ));
    }
}

fn drop_user(db: &TestDb, user: &str) {
    for host in ["%", "localhost", "127.0.0.1"] {
        db.exec(&format!("DROP USER IF EXISTS '{user}'@'{host}'"));
    }
}

#[test]
fn an_account_with_a_password_and_no_reload_copies_in_parallel_under_table_locks() {
    let db = TestDb::seeded(20);
    let user = format!("{}_ro", db.name);
    create_user(&db, &user, "s3cret-Pw_1");
    let url = db
        .url
        .replacen("://root@", &format!("://{user}:s3cret-Pw_1@"), 1);
    assert_ne!(url, db.url, "the test server's URL names root");
    let panel = Panel::with_url(&url);
    let name = copy(&panel, &db);
    let log = log(&panel);
    assert!(log.contains("table-locks, direct reader"), "{log}");
    ok(&panel, &["backup", "verify", &name]);
    // The account's rows are the server's rows.
    let rows = data_entries(&archive(&panel, &name));
    let accounts = rows
        .iter()
        .filter(|(p, _)| p.starts_with("data/account/"))
        .map(|(_, t)| t.iter().filter(|&&b| b == b'\n').count())
        .sum::<usize>();
    assert_eq!(
        accounts.to_string(),
        db.scalar("SELECT COUNT(*) FROM account")
    );

    // A wrong password is refused, and nothing is taken.
    let bad = Panel::with_url(&url.replace("s3cret-Pw_1", "wrong"));
    let out = bad.command(&["backup", "create"]).output().unwrap();
    assert!(!out.status.success());
    drop_user(&db, &user);
}

/// The test server's socket as this machine sees it: a server in a
/// chroot (scripts/dbserver.sh) names it inside the chroot, whose
/// directory `BILLMGR_OPS_TEST_DB_ROOT` gives.
fn server_socket(db: &TestDb) -> Option<String> {
    let socket = db.scalar("SELECT @@socket");
    let root = std::env::var("BILLMGR_OPS_TEST_DB_ROOT").unwrap_or_default();
    [socket.clone(), format!("{root}{socket}")]
        .into_iter()
        .find(|p| !p.is_empty() && Path::new(p).exists())
}

#[test]
fn a_copy_over_the_local_socket_reads_through_the_direct_reader() {
    let db = TestDb::seeded(20);
    let Some(socket) = server_socket(&db) else {
        // Only where BILLMGR_OPS_TEST_DB names a server of another
        // machine; scripts/test.sh never runs it so.
        eprintln!("the test server's socket is not on this machine: nothing to test");
        return;
    };
    // The plugin's own account (with a password under
    // BILLMGR_OPS_TEST_ACCOUNT=panel: on MySQL, caching_sha2_password's
    // full authentication over the socket, then its fast path for the
    // workers' connections).
    let opts = mysql::Opts::from_url(&db.plugin_url).unwrap();
    let user = opts.get_user().unwrap_or("root");
    let url = match opts.get_pass() {
        Some(_) => db
            .plugin_url
            .replacen(&format!("@{}", opts.get_ip_or_hostname()), "@localhost", 1)
            .replacen(&format!(":{}/", opts.get_tcp_port()), "/", 1),
        None => format!("mysql://{user}@localhost/{}", db.name),
    };
    let url = format!("{url}?socket={socket}");
    let panel = Panel::with_url(&url);
    let name = copy(&panel, &db);
    assert!(log(&panel).contains("direct reader"), "{}", log(&panel));
    ok(&panel, &["backup", "verify", &name]);
}

#[test]
fn a_table_loaded_after_its_statistics_were_read_is_not_taken_for_empty() {
    let db = TestDb::empty();
    db.plugin_exec("CREATE TABLE grown (id INT PRIMARY KEY, v VARCHAR(20))");
    // Reading the statistics once fills MySQL's day-long cache of them.
    let before = estimated(&db);
    assert_eq!(before, 0, "a new table");
    db.plugin_exec(&format!(
        "INSERT INTO grown SELECT seq, 'x' FROM {} n",
        crate::harness::numbers(5000)
    ));
    // InnoDB counts the rows in the background, once a tenth of the table
    // changed: wait for its count (from root, which may read it).
    let counted = format!(
        "SELECT COALESCE(MAX(n_rows), 0) FROM mysql.innodb_table_stats \
         WHERE database_name = '{}' AND table_name = 'grown'",
        db.name
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while db.scalar(&counted).parse::<u64>().unwrap() < 1000 {
        assert!(
            std::time::Instant::now() < deadline,
            "InnoDB never counted the rows"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let after = estimated(&db);
    assert!(after >= 1000, "read {after} rows for a table of 5000");
}

fn estimated(db: &TestDb) -> u64 {
    let mut c = db.conn();
    let _: Vec<u64> = c
        .query(format!(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{}'",
            db.name
        ))
        .unwrap();
    billmgr_ops::test_support::estimated_rows(&db.plugin_url)
        .unwrap()
        .into_iter()
        .find(|(t, _)| t == "grown")
        .map(|(_, n)| n)
        .expect("the table is listed")
}
