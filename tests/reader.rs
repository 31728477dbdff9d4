//! The dump's two row readers, the direct one (`db::wire`) and the client
//! library's: the same copy from either, over TCP and a local socket, with
//! a password and without the RELOAD privilege.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

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

#[test]
fn a_copy_over_the_local_socket_reads_through_the_direct_reader() {
    let db = TestDb::seeded(20);
    let socket = db.scalar("SELECT @@socket");
    if !Path::new(&socket).exists() {
        eprintln!("the test server's socket {socket} is not on this machine: nothing to test");
        return;
    }
    let url = format!("mysql://root@localhost/{}?socket={socket}", db.name);
    let panel = Panel::with_url(&url);
    let name = copy(&panel, &db);
    assert!(log(&panel).contains("direct reader"), "{}", log(&panel));
    ok(&panel, &["backup", "verify", &name]);
}
