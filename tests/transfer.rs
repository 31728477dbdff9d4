//! Taking a copy home and bringing one back: `backups.download` and its
//! CGI program (single-use, expiring, signed tokens), `backups.upload`
//! from a file and from a URL on loopback, refusals of damaged files, and
//! mysqldump files (plain, gzip, zstd) imported and restored.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{Panel, TestDb};

struct Fixture {
    db: TestDb,
    panel: Panel,
}

fn fixture(clients: u64) -> Fixture {
    let db = TestDb::seeded(clients);
    let panel = Panel::for_backups(&db);
    Fixture { db, panel }
}

/// What the CGI program answered: status line, headers, body.
struct Answer {
    status: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Fixture {
    fn cli(&self, args: &[&str]) -> std::process::Output {
        self.panel.command(args).output().unwrap()
    }

    fn copy(&self) -> (String, String) {
        self.panel.take_copy(&self.db)
    }

    fn dir(&self) -> PathBuf {
        self.panel.mgrdir().join("var/billmgr-ops/backup")
    }

    /// Where the panel leaves uploaded files (`UploadDir`, `tmp` by
    /// default): the only place `backups.upload` reads from.
    fn uploads(&self, name: &str) -> PathBuf {
        let dir = self.panel.mgrdir().join("tmp");
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    /// backups.download for copy `id`: the token from the redirect.
    fn token(&self, id: &str) -> String {
        let out = self.panel.call("backups.download").param("elid", id).run();
        let doc = out.doc();
        let ok = doc.find("ok").unwrap_or_else(|| panic!("{}", out.text()));
        assert_eq!(ok.get_attr("type"), Some("blank"));
        let url = ok.text_content();
        assert!(
            url.starts_with("/mancgi/billmgr-ops-download?token="),
            "{url}"
        );
        url.split_once("token=").unwrap().1.to_string()
    }

    /// Runs the binary as the web server runs a CGI program.
    fn cgi(&self, query: &str) -> Answer {
        let out = Command::new(self.panel.cgi_program())
            .env_clear()
            .env("GATEWAY_INTERFACE", "CGI/1.1")
            .env("REQUEST_METHOD", "GET")
            .env("QUERY_STRING", query)
            .env("REMOTE_ADDR", "127.0.0.1")
            .env("MGR_DIR", self.panel.mgrdir())
            .env("BILLMGR_OPS_DB", &self.db.plugin_url)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let split = out
            .stdout
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("CGI headers end with an empty line");
        let head = String::from_utf8_lossy(&out.stdout[..split]).into_owned();
        let headers: Vec<(String, String)> = head
            .split("\r\n")
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let status = headers
            .iter()
            .find(|(k, _)| k == "Status")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        Answer {
            status,
            headers,
            body: out.stdout[split + 4..].to_vec(),
        }
    }

    fn upload_file(&self, path: &Path, name: &str) -> crate::harness::Output {
        self.panel
            .call("backups.upload")
            .param("sok", "ok")
            .param("type", "file")
            .param("file", &path.display().to_string())
            .param("name", name)
            .run()
    }

    fn checksums(&self) -> Vec<u64> {
        ["account", "item", "payment", "itemparam", "user"]
            .iter()
            .map(|t| self.db.checksum(t))
            .collect()
    }
}

#[test]
fn a_token_downloads_the_exact_copy_once() {
    let f = fixture(30);
    let (id, name) = f.copy();
    let token = f.token(&id);
    let got = f.cgi(&format!("token={token}"));
    assert_eq!(got.status, "200 OK");
    let stored = std::fs::read(f.dir().join(format!("{name}.tar"))).unwrap();
    assert_eq!(got.body, stored, "the exact bytes of the archive");
    assert_eq!(
        got.header("Content-Length"),
        Some(stored.len().to_string().as_str())
    );
    assert_eq!(got.header("Content-Type"), Some("application/x-tar"));
    assert_eq!(
        got.header("Content-Disposition"),
        Some(format!("attachment; filename=\"{name}.tar\"").as_str())
    );
    // Once only.
    assert_eq!(f.cgi(&format!("token={token}")).status, "403 Forbidden");
}

#[test]
fn altered_expired_missing_and_foreign_tokens_are_forbidden() {
    let f = fixture(5);
    let (id, _) = f.copy();
    let forbidden = |query: &str| {
        let a = f.cgi(query);
        assert_eq!(a.status, "403 Forbidden", "{query}");
        assert_eq!(a.body, b"Forbidden\n", "no detail");
    };
    forbidden("");
    forbidden("token=");
    forbidden("token=nonsense");
    forbidden("token=1' OR '1'='1");
    // Altered: another copy id, another expiry, a flipped signature.
    let token = f.token(&id);
    let parts: Vec<&str> = token.split('.').collect();
    forbidden(&format!("token=99.{}.{}.{}", parts[1], parts[2], parts[3]));
    let later: i64 = parts[1].parse::<i64>().unwrap() + 3600;
    forbidden(&format!(
        "token={}.{later}.{}.{}",
        parts[0], parts[2], parts[3]
    ));
    let mut sig = parts[3].to_string();
    let flipped = if sig.ends_with('0') { '1' } else { '0' };
    sig.pop();
    sig.push(flipped);
    forbidden(&format!(
        "token={}.{}.{}.{sig}",
        parts[0], parts[1], parts[2]
    ));
    // The untouched token still works: the failures spent nothing.
    assert_eq!(f.cgi(&format!("token={token}")).status, "200 OK");
    // Expired in the database.
    let token = f.token(&id);
    f.db.exec("UPDATE billmgrops_download SET expires = NOW() - INTERVAL 1 MINUTE");
    forbidden(&format!("token={token}"));
    // A token for a copy that is not complete is not even issued.
    f.db.exec("UPDATE billmgrops_backup SET state = 'failed'");
    let out = f.panel.call("backups.download").param("elid", &id).run();
    assert_eq!(out.error_type().0, "copy_state");
    // Nor for a missing copy, nor for a user.
    let out = f.panel.call("backups.download").param("elid", "999").run();
    assert_eq!(out.error_type().0, "missed");
    let out = f
        .panel
        .call("backups.download")
        .param("elid", &id)
        .level("16")
        .run();
    assert_eq!(out.error_type().0, "access");
}

#[test]
fn a_downloaded_copy_uploads_verifies_and_restores() {
    let f = fixture(40);
    let (id, name) = f.copy();
    let before = f.checksums();
    let got = f.cgi(&format!("token={}", f.token(&id)));
    let file = f.uploads("home.tar");
    std::fs::write(&file, &got.body).unwrap();
    // The copy is gone from the server; bring it back from the file.
    let out = f
        .panel
        .call("backups.delete")
        .param("elid", &id)
        .param("clean_storages", "on")
        .run();
    assert!(out.ok(), "{}", out.text());
    let out = f.upload_file(&file, "");
    assert!(out.ok(), "{}", out.text());
    assert_eq!(
        f.db.scalar("SELECT CONCAT(name, ':', state) FROM billmgrops_backup"),
        "home:ok",
        "named after the file"
    );
    // Its objects are indexed from its own tables, for backupdata.
    let names = f.panel.call("backupdata.names").param("plid", "item").run();
    assert_eq!(
        names.value("p_elems"),
        f.db.scalar("SELECT COUNT(*) FROM item")
    );
    let verify = f.cli(&["backup", "verify", "home"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    f.db.exec("DELETE FROM itemparam WHERE id % 2 = 0");
    let restored = f.cli(&["backup", "restore", "home"]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(f.checksums(), before);
    // The same name again is refused.
    let again = f.upload_file(&file, "home");
    assert_eq!(again.error_type(), ("exists".into(), "name".into()));
    let _ = name;
}

#[test]
fn an_upload_streams_from_a_url() {
    let f = fixture(10);
    let (id, _) = f.copy();
    let got = f.cgi(&format!("token={}", f.token(&id)));
    let served = f.panel.mgrdir().join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(served.join("from-web.tar"), &got.body).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .current_dir(&served)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::harness::wait_until(30, "the web server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let upload_url = |url: &str| {
        f.panel
            .call("backups.upload")
            .param("sok", "ok")
            .param("type", "url")
            .param("url", url)
            .run()
    };
    // Off by default: the panel cannot reach loopback, by address or name.
    let refused = upload_url(&format!("http://127.0.0.1:{port}/from-web.tar"));
    let by_name = upload_url(&format!("http://localhost:{port}/from-web.tar"));
    f.panel.configure("UploadPrivateUrls on\n");
    let out = upload_url(&format!("http://127.0.0.1:{port}/from-web.tar"));
    let missing = upload_url(&format!("http://127.0.0.1:{port}/nothing-here.tar"));
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(
        refused.error_type(),
        ("outside".into(), "url".into()),
        "{}",
        refused.text()
    );
    assert_eq!(
        by_name.error_type(),
        ("outside".into(), "url".into()),
        "{}",
        by_name.text()
    );
    assert!(out.ok(), "{}", out.text());
    assert_eq!(
        f.db.scalar(
            "SELECT COUNT(*) FROM billmgrops_backup WHERE name = 'from-web' AND state = 'ok'"
        ),
        "1"
    );
    assert!(f.cli(&["backup", "verify", "from-web"]).status.success());
    assert_ne!(missing.error_type().0, "", "a missing file is an error");
    let bad = upload_url("file:///etc/passwd");
    assert_eq!(bad.error_type(), ("value".into(), "url".into()));
}

#[test]
fn damaged_and_foreign_files_are_refused_and_leave_nothing() {
    let f = fixture(20);
    let (id, name) = f.copy();
    let tar = std::fs::read(f.dir().join(format!("{name}.tar"))).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", tar[..tar.len() / 2].to_vec()),
        ("flipped", {
            let mut t = tar.clone();
            let at = t.len() / 3;
            t[at] ^= 0x55;
            t
        }),
        ("picture", b"\x89PNG\r\n\x1a\n not a copy".to_vec()),
        ("empty", Vec::new()),
        (
            "encrypted",
            b"age-encryption.org/v1\n-> X25519 abc\n".to_vec(),
        ),
    ];
    let before = f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup");
    for (what, bytes) in cases {
        let file = f.uploads(&format!("{what}.bin"));
        std::fs::write(&file, &bytes).unwrap();
        let out = f.upload_file(&file, what);
        assert_eq!(
            out.error_type(),
            ("badcopy".into(), "file".into()),
            "{what}: {}",
            out.text()
        );
        assert!(
            !f.dir().join(format!("{what}.tar")).exists()
                && !f.dir().join(format!("{what}.json")).exists(),
            "{what}: nothing left on the storage"
        );
    }
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup"),
        before
    );
    // Outside the upload directory, a relative path, `..`: beyond reach.
    for path in ["/etc", "relative.tar", "/etc/hostname"] {
        let out = f.upload_file(Path::new(path), "x");
        assert_eq!(
            out.error_type(),
            ("outside".into(), "file".into()),
            "{path}"
        );
    }
    let sneaky = format!("{}/../etc/billmgr.conf", f.uploads("").display());
    let out = f.upload_file(Path::new(&sneaky), "x");
    assert_eq!(out.error_type(), ("outside".into(), "file".into()));
    // The directory itself, and a directory inside it, are no files.
    let out = f.upload_file(&f.uploads(""), "x");
    assert_eq!(out.error_type(), ("outside".into(), "file".into()));
    std::fs::create_dir_all(f.uploads("sub")).unwrap();
    let out = f.upload_file(&f.uploads("sub"), "x");
    assert_eq!(out.error_type(), ("value".into(), "file".into()));
    let out = f.upload_file(&f.uploads("hostname"), "../../x");
    assert_eq!(out.error_type().0, "value", "no such file");
    let _ = id;
}

fn dump_of(f: &Fixture) -> Vec<u8> {
    let url = f.db.url.clone();
    let rest = url.strip_prefix("mysql://").unwrap();
    let (auth, hostpart) = rest.split_once('@').unwrap();
    let (host, db) = hostpart.split_once('/').unwrap();
    let (host, port) = host.split_once(':').unwrap_or((host, "3306"));
    let out = Command::new("mariadb-dump")
        .args([
            "--no-defaults",
            "--protocol=tcp",
            &format!("--host={host}"),
            &format!("--port={port}"),
            &format!("--user={}", auth.split(':').next().unwrap()),
            "--single-transaction",
            "--databases",
            db,
            "--ignore-table",
            &format!("{db}.billmgrops_migration"),
        ])
        .output()
        .expect("the tests need mariadb-dump (mariadb-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn mysqldump_files_import_as_copies_and_restore() {
    let f = fixture(25);
    let before = f.checksums();
    // --databases adds CREATE DATABASE and USE of the live database: the
    // import must not touch it.
    let sql = dump_of(&f);
    assert!(String::from_utf8_lossy(&sql[..4000.min(sql.len())]).contains("USE `"));
    let plain = f.uploads("billing.sql");
    std::fs::write(&plain, &sql).unwrap();
    let gz = f.uploads("billing-gz.sql.gz");
    let zst = f.uploads("billing-zst.sql.zst");
    for (cmd, target) in [("gzip", &gz), ("zstd", &zst)] {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{cmd} -c < '{}' > '{}'",
                plain.display(),
                target.display()
            ))
            .status()
            .unwrap()
            .success();
        assert!(ok, "{cmd}");
    }
    if f.db.as_panel_account() {
        // A dump of another tool runs as SQL, confined to a temporary
        // account the panel's own may not create: refused, saying why.
        let out = f.upload_file(&plain, "");
        assert_eq!(
            out.error_type(),
            ("dump_grants".into(), "file".into()),
            "{}",
            out.text()
        );
        assert!(out.text().contains("CREATE DATABASE"), "{}", out.text());
        assert_eq!(
            f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup WHERE name LIKE 'billing%'"),
            "0"
        );
        return;
    }
    for (file, name) in [
        (&plain, "billing"),
        (&gz, "billing-gz"),
        (&zst, "billing-zst"),
    ] {
        let out = f.upload_file(file, "");
        assert!(out.ok(), "{name}: {}", out.text());
        assert_eq!(
            f.db.scalar(&format!(
                "SELECT state FROM billmgrops_backup WHERE name = '{name}'"
            )),
            "ok"
        );
    }
    assert_eq!(f.checksums(), before, "importing changed nothing live");
    assert_eq!(
        f.db.scalar(&format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '{}\\_bmo\\_import'",
            f.db.name
        )),
        "0",
        "the scratch database is gone"
    );
    f.db.exec("UPDATE account SET name = 'changed'");
    let out = f.cli(&["backup", "restore", "billing-zst"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(f.checksums(), before, "the imported dump restores the data");
    // A dump that does not load is refused and leaves nothing.
    let broken = f.uploads("broken.sql");
    std::fs::write(&broken, "-- MySQL dump\nCREATE TABLE x (a int;\n").unwrap();
    let out = f.upload_file(&broken, "");
    assert_eq!(out.error_type().0, "badcopy", "{}", out.text());
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup WHERE name = 'broken'"),
        "0"
    );
}

#[test]
fn an_encrypted_copy_downloads_encrypted_to_the_passphrase() {
    let f = fixture(10);
    let saved = f.panel.set_backup_passphrase("correct horse battery");
    assert!(saved.ok(), "{}", saved.text());
    let (id, name) = f.copy();
    let got = f.cgi(&format!("token={}", f.token(&id)));
    assert_eq!(got.status, "200 OK");
    assert!(got.body.starts_with(b"age-encryption.org/v1\n-> scrypt "));
    assert_eq!(
        got.header("Content-Disposition"),
        Some(format!("attachment; filename=\"{name}.tar.age\"").as_str())
    );
    let file = f.uploads("home.tar.age");
    std::fs::write(&file, &got.body).unwrap();
    // The age tool asks for the passphrase on a terminal.
    let script = format!(
        "cd '{}' && printf 'correct horse battery\\n' | script -qec 'age -d -o home.tar home.tar.age' /dev/null >/dev/null 2>&1; tar -tf home.tar",
        f.uploads("").display()
    );
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.starts_with("FORMAT\n") && list.contains("listing.json"),
        "age + tar gave: {list} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Brought back, it is stored encrypted again and restores.
    let before = f.checksums();
    let up = f.upload_file(&file, "back");
    assert!(up.ok(), "{}", up.text());
    assert_eq!(
        f.db.scalar(
            "SELECT CONCAT(state, ':', encrypted) FROM billmgrops_backup WHERE name = 'back'"
        ),
        "ok:1"
    );
    assert!(f.dir().join("back.tar.age").exists() && f.dir().join("back.key.age").exists());
    f.db.exec("DELETE FROM itemparam WHERE id % 2 = 1");
    let restored = f.cli(&["backup", "restore", "back"]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(f.checksums(), before);
    // The plain tar, decrypted by hand, is accepted too; a damaged
    // encrypted file is refused.
    let up = f.upload_file(&f.uploads("home.tar"), "by-hand");
    assert!(up.ok(), "{}", up.text());
    let mut damaged = got.body.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 1;
    let bad = f.uploads("damaged.tar.age");
    std::fs::write(&bad, &damaged).unwrap();
    assert_eq!(f.upload_file(&bad, "damaged").error_type().0, "badcopy");
    assert!(!f.dir().join("damaged.tar.age").exists() && !f.dir().join("damaged.key.age").exists());
}
