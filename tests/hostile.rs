//! The hostile-input suite: copies, listings, dumps, uploads, documents
//! and filesystems made by someone who means harm, and database servers
//! whose clock is not UTC. Every case must end in one clear, typed refusal
//! (or the right result) and change nothing it should not.
//!
//! Each of the holes an outside test found at commit 1c1a7e1 has a test
//! here that failed there: files restored where a copy says
//! (`files_restore_only_below_the_configured_directories`), SQL run from a
//! listing (`sql_in_a_forged_copy_never_runs`), a dump reaching the live
//! database (`a_sql_dump_reaches_only_its_scratch_database`), a planted
//! link (`a_link_planted_beside_a_restored_file_is_not_written_through`),
//! crashes without a document (`deep_and_huge_documents_get_one_document_in_bounded_memory`,
//! `a_tar_header_claiming_exabytes_is_refused_cleanly`), downloads on a
//! server in UTC+3 (`downloads_and_status_work_on_a_server_in_utc_plus_3`),
//! small and slow uploads (`small_and_slow_uploads_are_accepted`) and the
//! panel's reach (`the_panel_cannot_reach_beyond_its_directories`,
//! `a_failed_restore_keeps_the_previous_safety_copy`).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::harness::forge::{listing_beside, take_apart};
use crate::harness::{binary, mariadb, Panel, TestDb};

struct Fixture {
    db: TestDb,
    panel: Panel,
}

fn fixture() -> Fixture {
    let db = TestDb::seeded(20);
    let panel = Panel::for_backups(&db);
    Fixture { db, panel }
}

impl Fixture {
    fn cli(&self, args: &[&str]) -> std::process::Output {
        self.panel.command(args).output().unwrap()
    }

    fn copy(&self) -> (String, String) {
        self.panel.take_copy(&self.db)
    }

    fn storage(&self) -> PathBuf {
        self.panel.mgrdir().join("var/billmgr-ops/backup")
    }

    fn tar(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.storage().join(format!("{name}.tar"))).unwrap()
    }

    /// Uploads `bytes` as the panel would hand them over.
    fn upload(&self, bytes: &[u8], name: &str) -> crate::harness::Output {
        let dir = self.panel.mgrdir().join("tmp");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{name}.upload"));
        std::fs::write(&file, bytes).unwrap();
        self.panel
            .call("backups.upload")
            .param("sok", "ok")
            .param("type", "file")
            .param("file", &file.display().to_string())
            .param("name", name)
            .run()
    }

    /// Puts a forged copy straight onto the storage (as someone who can
    /// write there would) and lists it with a rescan.
    fn plant(&self, tar: &[u8], name: &str) {
        std::fs::write(self.storage().join(format!("{name}.tar")), tar).unwrap();
        std::fs::write(
            self.storage().join(format!("{name}.json")),
            listing_beside(tar, &format!("{name}.tar")),
        )
        .unwrap();
        let out = self.cli(&["backup", "rescan"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every table's checksum, the plugin's settings and the schema's
    /// objects: what must not change.
    fn state(&self) -> String {
        let tables = self.db.scalar(&format!(
            "SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) FROM information_schema.TABLES
             WHERE TABLE_SCHEMA = '{}' AND TABLE_NAME NOT IN ('billmgrops_backup', 'billmgrops_copy_block', 'billmgrops_object_block', 'billmgrops_setting')",
            self.db.name
        ));
        let sums: Vec<String> = tables
            .split(',')
            .filter(|t| !t.is_empty())
            .map(|t| format!("{t}={}", self.db.checksum(t)))
            .collect();
        let objects = self.db.scalar(&format!(
            "SELECT CONCAT((SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{0}'), '/',
                           (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{0}'), '/',
                           (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{0}'), '/',
                           (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{0}'))",
            self.db.name
        ));
        format!("{} {objects}", sums.join(" "))
    }
}

fn entry(path: &str) -> Value {
    json!({"path": path, "offset": 0, "size": 0,
           "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"})
}

#[test]
fn files_restore_only_below_the_configured_directories() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let etc = f.panel.mgrdir().join("etc");
    let evil = etc.join("evil.sh");
    std::fs::write(&evil, "#!/bin/sh\nid\n").unwrap();
    std::fs::set_permissions(&evil, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let (id, name) = f.copy();
    let outside = std::env::temp_dir().join(format!("bmo-hostile-{}-files", std::process::id()));
    let _ = std::fs::remove_dir_all(&outside);
    let target = outside.join("evil.sh");

    // The copy claims its file was saved from a directory of its choice.
    let mut parts = take_apart(&f.tar(&name));
    let files = parts.listing["files"].as_array_mut().unwrap();
    for file in files.iter_mut() {
        if file["path"].as_str().unwrap().ends_with("/etc/evil.sh") {
            file["path"] = target.display().to_string().into();
        }
    }
    files.push(
        json!({"path": outside.display().to_string(), "kind": "dir", "mode": 0o777,
                      "uid": 0, "gid": 0, "mtime": 0,
                      "entry": entry(&format!("files{}", outside.display()))}),
    );
    parts
        .entries
        .push((format!("files{}", outside.display()), Vec::new()));
    let up = f.upload(&parts.build(), "forged-files");
    assert!(up.ok(), "{}", up.text());
    let forged =
        f.db.scalar("SELECT id FROM billmgrops_backup WHERE name = 'forged-files'");
    let out = f
        .panel
        .call("backupdata.files.restore")
        .param("plid", &outside.display().to_string())
        .param("elid", &target.display().to_string())
        .param("sok", "ok")
        .param("version", &forged)
        .param("behavior", "edit")
        .run();
    assert_eq!(out.error_type().0, "restore_failed", "{}", out.text());
    assert!(
        out.text().contains("outside the directories"),
        "{}",
        out.text()
    );
    assert!(
        !target.exists() && !outside.exists(),
        "nothing written where the copy said"
    );

    // The real file comes back where it was, without its set-user-ID bit.
    std::fs::remove_file(&evil).unwrap();
    let out = f
        .panel
        .call("backupdata.files.restore")
        .param("plid", &etc.display().to_string())
        .param("elid", &evil.display().to_string())
        .param("sok", "ok")
        .param("version", &id)
        .param("behavior", "edit")
        .run();
    assert!(out.ok(), "{}", out.text());
    let mode = std::fs::metadata(&evil).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755, "no set-user-ID from a copy");
}

/// Forged listings that carry SQL: each must be refused at upload, and
/// refused again by a restore when planted on the storage, with nothing
/// changed.
#[test]
fn sql_in_a_forged_copy_never_runs() {
    let f = fixture();
    f.db.exec("CREATE TABLE note (id INT PRIMARY KEY, body TEXT)");
    let (_, name) = f.copy();
    let live = f.db.name.clone();
    let tar = f.tar(&name);
    type Edit = Box<dyn Fn(&mut crate::harness::forge::Parts)>;
    let table = |create: String| -> Edit {
        Box::new(move |p| {
            for t in p.listing["tables"].as_array_mut().unwrap() {
                if t["name"] == "note" {
                    t["create"] = create.clone().into();
                }
            }
        })
    };
    let definition = |kind: &'static str, name: &'static str, create: String| -> Edit {
        Box::new(move |p| {
            let path = format!("schema/{kind}s/{name}.sql");
            p.entries.push((path.clone(), create.clone().into_bytes()));
            let mut e = entry(&path);
            e["size"] = create.len().into();
            p.listing["definitions"]
                .as_array_mut()
                .unwrap()
                .push(json!({
                "kind": kind, "name": name, "table": if kind == "trigger" { "note" } else { "" },
                "create": create, "sql_mode": "", "entry": e}));
        })
    };
    let cases: Vec<(&str, Edit)> = vec![
        ("drop", table(format!("DROP TABLE `{live}`.`journal`"))),
        ("two", table(format!("CREATE TABLE `note` (id INT PRIMARY KEY, body TEXT); DROP TABLE `{live}`.`journal`"))),
        ("select", table(format!("CREATE TABLE `note` (id INT PRIMARY KEY, body TEXT) SELECT * FROM `{live}`.`billmgrops_setting`"))),
        ("engine", table("CREATE TABLE `note` (id INT PRIMARY KEY, body TEXT) ENGINE=CONNECT TABLE_TYPE=DOS FILE_NAME='/etc/shadow'".into())),
        ("view", definition("view", "v", format!("CREATE VIEW `v` AS SELECT 1; DROP TABLE `{live}`.`journal`"))),
        ("grant", definition("procedure", "p", "CREATE PROCEDURE `p`() BEGIN GRANT ALL ON *.* TO 'evil'@'%'; END".into())),
        ("event", definition("event", "e", "CREATE EVENT `e` ON SCHEDULE EVERY 1 MINUTE DO UPDATE billmgrops_setting SET value = 'x'".into())),
        ("trigger", definition("trigger", "t", "CREATE TRIGGER `t` BEFORE INSERT ON `note` FOR EACH ROW INSERT INTO mysql.user VALUES ()".into())),
        ("dynamic", definition("procedure", "q", "CREATE PROCEDURE `q`() EXECUTE IMMEDIATE 'DROP DATABASE mysql'".into())),
    ];
    let before = f.state();
    for (case, edit) in cases {
        let mut parts = take_apart(&tar);
        edit(&mut parts);
        let forged = parts.build();
        let up = f.upload(&forged, &format!("up-{case}"));
        assert_eq!(up.error_type().0, "badcopy", "{case}: {}", up.text());
        let planted = format!("planted-{case}");
        f.plant(&forged, &planted);
        let out = f.cli(&["backup", "restore", &planted]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: the restore ran");
        assert!(stderr.contains("refused"), "{case}: {stderr}");
        assert_eq!(f.state(), before, "{case}: something changed");
    }
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM mysql.user WHERE User = 'evil'"),
        "0"
    );
}

#[test]
fn forged_listings_are_refused_before_anything_is_stored() {
    let f = fixture();
    let (_, name) = f.copy();
    let tar = f.tar(&name);
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit)> = vec![
        ("huge-chunk", |l| {
            l["tables"][0]["chunks"][0]["text_size"] = json!(1u64 << 60)
        }),
        ("huge-entry", |l| {
            l["tables"][0]["schema_entry"]["size"] = json!(1u64 << 60)
        }),
        ("rows", |l| l["tables"][0]["rows"] = json!(123_456_789u64)),
        ("overlap", |l| {
            let first = l["tables"][0]["schema_entry"].clone();
            l["tables"][1]["schema_entry"]["offset"] = first["offset"].clone();
        }),
        ("duplicate", |l| {
            let t = l["tables"][0].clone();
            l["tables"].as_array_mut().unwrap().push(t);
        }),
        ("plugin-table", |l| {
            l["tables"][0]["name"] = json!("billmgrops_storage_access")
        }),
        ("nul-name", |l| l["tables"][0]["name"] = json!("a\u{0}b")),
        ("column", |l| {
            l["tables"][0]["primary_key"] = json!(["no_such_column"])
        }),
        ("path", |l| {
            l["tables"][0]["schema_entry"]["path"] = json!("../../etc/passwd")
        }),
        (
            "kind",
            |l| l["definitions"] = json!([{"kind": "user", "name": "x", "create": "", "entry": {"path": "x", "offset": 0, "size": 0, "sha256": ""}}]),
        ),
        (
            "file-path",
            |l| l["files"] = json!([{"path": "/x/../etc/shadow", "kind": "file", "mode": 0, "uid": 0, "gid": 0, "mtime": 0, "entry": {"path": "files/x", "offset": 0, "size": 0, "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}]),
        ),
        ("name", |l| l["name"] = json!("../../x")),
        ("version", |l| l["version"] = json!(99)),
        // Frames that do not tile their chunk.
        ("frames", |l| {
            let t = l["tables"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|t| !t["chunks"].as_array().unwrap().is_empty())
                .unwrap();
            t["chunks"][0]["frames"] = json!([1, 2]);
        }),
        // A key index of a column the table does not have.
        ("key-column", |l| {
            l["tables"][0]["keys"] = json!({"no_such_column": []})
        }),
    ];
    let copies = f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup");
    for (case, edit) in cases {
        let mut parts = take_apart(&tar);
        edit(&mut parts.listing);
        let up = f.upload(&parts.build_as_edited(), case);
        assert!(!up.ok(), "{case}: accepted");
        assert_eq!(
            up.error_type(),
            ("badcopy".into(), "file".into()),
            "{case}: {}",
            up.text()
        );
        assert!(
            !f.storage().join(format!("{case}.tar")).exists(),
            "{case}: left on the storage"
        );
    }
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup"),
        copies
    );
}

#[test]
fn a_tar_header_claiming_exabytes_is_refused_cleanly() {
    let f = fixture();
    // Laid out by hand: a tar builder would end the archive before the
    // lie, and a reader would stop there.
    let header = |path: &str, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_size(size);
        h.set_mode(0o600);
        h.set_cksum();
        h.as_bytes().to_vec()
    };
    let format = b"billmgr-ops-copy 1\n";
    let mut bytes = header("FORMAT", format.len() as u64);
    bytes.extend_from_slice(format);
    bytes.resize(1024, 0);
    bytes.extend_from_slice(&header("data/t/0.tsv.zst", 1u64 << 60));
    bytes.extend_from_slice(&[7u8; 4096]);
    let out = f.upload(&bytes, "exabytes");
    assert_eq!(
        out.error_type(),
        ("badcopy".into(), "file".into()),
        "{}",
        out.text()
    );
    assert!(!f.storage().join("exabytes.tar").exists());
}

#[test]
fn a_sql_dump_reaches_only_its_scratch_database() {
    let f = fixture();
    let live = f.db.name.clone();
    let marker = std::env::temp_dir().join(format!("bmo-hostile-{}-dump", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let m = marker.display();
    let cases = [
        ("update", format!("UPDATE `{live}`.account SET name = 'pwned';\n")),
        ("insert", format!("INSERT INTO {live}.journal (id) VALUES (99999999);\n")),
        ("drop", format!("DROP TABLE `{live}`.`journal`;\n")),
        ("dropdb", format!("/*!40000 DROP DATABASE IF EXISTS `{live}`*/;\nDROP TABLE IF EXISTS `{live}`.`payment`;\n")),
        ("file", format!("SELECT 'x' INTO OUTFILE '{m}';\n")),
        ("local", "LOAD DATA LOCAL INFILE '/etc/hostname' INTO TABLE t;\n".into()),
        ("grant", "GRANT ALL ON *.* TO 'evil'@'%' IDENTIFIED BY 'x';\n".into()),
        ("global", "SET GLOBAL max_connections = 3;\n".into()),
        ("shell", format!("\\! touch {m}\n")),
        ("view", format!("CREATE VIEW v AS SELECT * FROM `{live}`.account;\n")),
    ];
    let before = f.state();
    let connections = f.db.scalar("SELECT @@GLOBAL.max_connections");
    for (case, hostile) in cases {
        let dump = format!(
            "-- MariaDB dump 10.19\nCREATE TABLE t (a INT PRIMARY KEY);\nINSERT INTO t VALUES (1);\n{hostile}"
        );
        let out = f.upload(dump.as_bytes(), case);
        assert_eq!(out.error_type().0, "badcopy", "{case}: {}", out.text());
        assert_eq!(f.state(), before, "{case}: the live database changed");
        assert!(!marker.exists(), "{case}: a file was written");
    }
    assert_eq!(f.db.scalar("SELECT @@GLOBAL.max_connections"), connections);
    assert_eq!(
        f.db.scalar(
            "SELECT COUNT(*) FROM mysql.user WHERE User = 'evil' OR User LIKE 'bmo\\_import\\_%'"
        ),
        "0"
    );
    // The refusal says what the server refused.
    let out = f.upload(
        format!("CREATE TABLE t (a INT);\nUPDATE `{live}`.account SET name = 'x';\n").as_bytes(),
        "says",
    );
    assert!(
        out.text().contains("ERROR 1142") || out.text().contains("denied"),
        "{}",
        out.text()
    );
}

#[test]
fn small_and_slow_uploads_are_accepted() {
    let f = fixture();
    // Under 512 bytes: read once, loaded once.
    let small =
        "-- tiny dump\nCREATE TABLE t (a INT PRIMARY KEY);\nINSERT INTO t VALUES (1),(2);\n";
    assert!(small.len() < 512);
    let out = f.upload(small.as_bytes(), "tiny");
    assert!(out.ok(), "{}", out.text());
    // A URL whose body arrives a few bytes at a time.
    let served = f.panel.mgrdir().join("served");
    std::fs::create_dir_all(&served).unwrap();
    std::fs::write(served.join("slow.sql"), small).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = r#"
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = open(sys.argv[2], 'rb').read()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        for i in range(0, len(body), 7):
            self.wfile.write(body[i:i+7]); self.wfile.flush(); time.sleep(0.01)
    def log_message(self, *a): pass
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
"#;
    let mut server = Command::new("python3")
        .args([
            "-c",
            script,
            &port.to_string(),
            &served.join("slow.sql").display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::harness::wait_until(30, "the slow server", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    f.panel.configure("UploadPrivateUrls on\n");
    let out = f
        .panel
        .call("backups.upload")
        .param("sok", "ok")
        .param("type", "url")
        .param("url", &format!("http://127.0.0.1:{port}/slow.sql"))
        .param("name", "slow")
        .run();
    let _ = server.kill();
    let _ = server.wait();
    assert!(out.ok(), "{}", out.text());
    assert_eq!(f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup WHERE name IN ('tiny', 'slow') AND state = 'ok'"), "2");
}

#[test]
fn a_link_planted_beside_a_restored_file_is_not_written_through() {
    let f = fixture();
    let etc = f.panel.mgrdir().join("etc");
    let conf = etc.join("panel.conf");
    std::fs::write(&conf, "Option saved\n").unwrap();
    let (id, _) = f.copy();
    std::fs::write(&conf, "Option changed\n").unwrap();
    // Someone who can write into etc/ plants links at every name a restore
    // has used or might guess.
    let victim = f.panel.mgrdir().join("victim");
    std::fs::write(&victim, "untouched\n").unwrap();
    for planted in [
        ".panel.conf.bmo-restore",
        ".panel.conf.part",
        ".panel.conf.tmp",
    ] {
        std::os::unix::fs::symlink(&victim, etc.join(planted)).unwrap();
    }
    let out = f
        .panel
        .call("backupdata.files.restore")
        .param("plid", &etc.display().to_string())
        .param("elid", &conf.display().to_string())
        .param("sok", "ok")
        .param("version", &id)
        .param("behavior", "edit")
        .run();
    assert!(out.ok(), "{}", out.text());
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "Option saved\n");
    assert!(!std::fs::symlink_metadata(&conf)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// Runs the binary in panel mode on `doc` under python's getrusage:
/// (stdout, peak RSS of the child in KiB).
fn panel_call_measured(panel: &Panel, func: &str, doc: &[u8]) -> (String, u64) {
    let file = panel.mgrdir().join("request.xml");
    std::fs::write(&file, doc).unwrap();
    let measure = "import resource, subprocess, sys\n\
        r = subprocess.run(sys.argv[2:], stdin=open(sys.argv[1], 'rb'), stdout=subprocess.PIPE)\n\
        sys.stdout.buffer.write(r.stdout)\n\
        sys.stderr.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n";
    let out = Command::new("python3")
        .args([
            "-c",
            measure,
            &file.display().to_string(),
            &binary().display().to_string(),
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MGR_DIR", panel.mgrdir())
        .env("PARAM_func", func)
        .env("AUTH_USER", "admin")
        .env("AUTH_LEVEL", "29")
        .output()
        .unwrap();
    assert!(out.status.success());
    let rss = String::from_utf8_lossy(&out.stderr).trim().parse().unwrap();
    (String::from_utf8(out.stdout).unwrap(), rss)
}

#[test]
fn deep_and_huge_documents_get_one_document_in_bounded_memory() {
    let panel = Panel::with_url("mysql://root@127.0.0.1:1/nothing");
    let limit = 16 * 1024 * 1024 - 64;
    let deep = format!("{}{}", "<a>".repeat(50_000), "</a>".repeat(50_000));
    let flat = format!("<doc>{}</doc>", "<a/>".repeat((limit - 11) / 4));
    // Wide but within the node limit: 42,000 elements of long text.
    let text = "x".repeat(380);
    let mut wide = String::from("<doc>");
    while wide.len() + 400 < limit {
        wide.push_str(&format!("<v>{text}</v>"));
    }
    wide.push_str("</doc>");
    for (what, doc, answer) in [
        ("deep", deep, "xml"),
        ("flat", flat, "xml"),
        // Parsed whole, then refused for the database no place names.
        ("wide", wide, "db_credentials"),
    ] {
        let (stdout, rss_kib) = panel_call_measured(&panel, "runningoperation", doc.as_bytes());
        let parsed = billmgr_ops::test_support::Element::parse(&stdout).unwrap_or_else(|e| {
            panic!(
                "{what}: no document ({e}): {}",
                &stdout[..stdout.len().min(300)]
            )
        });
        let error = parsed
            .find("error")
            .unwrap_or_else(|| panic!("{what}: no error"));
        assert_eq!(error.get_attr("type"), Some(answer), "{what}");
        assert!(
            rss_kib <= 64 * 1024,
            "{what}: peak RSS {rss_kib} KiB for a 16 MiB request"
        );
        eprintln!("{what}: {} bytes in, peak RSS {rss_kib} KiB", doc.len());
    }
}

#[test]
fn a_request_whose_tags_are_not_xml_names_is_refused_as_xml() {
    let panel = Panel::with_url("mysql://root@127.0.0.1:1/nothing");
    // Each once answered with a document holding `</>` or `<a<b>`, which
    // no XML parser accepts, and exit 0.
    for doc in [
        "<doc>< /></doc>",
        "<a<b>",
        "<doc c<d='1'/>",
        "<doc><1/></doc>",
    ] {
        let (stdout, _) = panel_call_measured(&panel, "runningoperation", doc.as_bytes());
        let parsed = billmgr_ops::test_support::Element::parse(&stdout)
            .unwrap_or_else(|e| panic!("{doc}: no document ({e}): {stdout}"));
        let error = parsed
            .find("error")
            .unwrap_or_else(|| panic!("{doc}: no error"));
        assert_eq!(error.get_attr("type"), Some("xml"), "{doc}: {stdout}");
    }
}

#[test]
fn downloads_and_status_work_on_a_server_in_utc_plus_3() {
    let db = TestDb::seeded_on(mariadb::server_utc3(), 5);
    assert_eq!(
        db.scalar("SELECT TIMESTAMPDIFF(HOUR, UTC_TIMESTAMP(), NOW())"),
        "3",
        "the server runs three hours ahead of UTC"
    );
    let panel = Panel::for_backups(&db);
    let (id, _) = panel.take_copy(&db);
    let issued = panel.call("backups.download").param("elid", &id).run();
    let url = issued.doc().find("ok").expect("a redirect").text_content();
    let token = url.split_once("token=").unwrap().1.to_string();
    let got = Command::new(panel.cgi_program())
        .env_clear()
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", "GET")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("QUERY_STRING", format!("token={token}"))
        .env("MGR_DIR", panel.mgrdir())
        .env("BILLMGR_OPS_DB", &db.url)
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&got.stdout[..got.stdout.len().min(200)]).into_owned();
    assert!(head.starts_with("Status: 200"), "{head}");
    // A cron tick, then the status screen: the heartbeat is fresh and the
    // last copy is not overdue by three hours.
    assert!(panel.command(&["cron"]).output().unwrap().status.success());
    let status = panel
        .command(&["status", "--json", "--no-probe"])
        .output()
        .unwrap();
    let json: Value = serde_json::from_slice(&status.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&status.stdout)));
    let problems = json["problems"].as_array().cloned().unwrap_or_default();
    assert!(
        !problems
            .iter()
            .any(|p| p.as_str().unwrap_or("").contains("cron")),
        "{problems:?}"
    );
}

#[test]
fn the_panel_cannot_reach_beyond_its_directories() {
    let f = fixture();
    let settings = |files: &str| {
        f.panel
            .call("billmgr.backup.settings")
            .param("sok", "ok")
            .param("path", "var/billmgr-ops/backup")
            .param("threads", "2")
            .param("compression", "3")
            .param("files", files)
            .param("lock_timeout", "5")
            .run()
    };
    for files in ["/etc", "etc /root/.ssh", "../../../etc", "etc/../../../etc"] {
        let out = settings(files);
        assert_eq!(
            out.error_type(),
            ("outside".into(), "files".into()),
            "{files}: {}",
            out.text()
        );
    }
    assert!(settings("etc var").ok());
    // The administrator widens the reach in the config file only.
    let extra = std::env::temp_dir().join(format!("bmo-hostile-{}-extra", std::process::id()));
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("site.conf"), "x\n").unwrap();
    f.panel
        .configure(&format!("BackupFilesAllowed {}\n", extra.display()));
    assert!(settings(&format!("etc {}", extra.display())).ok());
    let (_, name) = f.copy();
    let listing = std::fs::read_to_string(f.storage().join(format!("{name}.json"))).unwrap();
    assert!(listing.contains("site.conf"));
    // A setting saved before the limit (or written by hand) fails the copy
    // with its reason rather than copying /etc.
    f.db.exec("UPDATE billmgrops_setting SET value = '/etc' WHERE name = 'BackupFiles'");
    let out = f.cli(&["backup", "create"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside the directories"));
    std::fs::remove_dir_all(&extra).unwrap();
}

#[test]
fn a_failed_restore_keeps_the_previous_safety_copy() {
    let f = fixture();
    f.db.exec(
        "CREATE TABLE note (id INT PRIMARY KEY, body TEXT); INSERT INTO note VALUES (1, 'first')",
    );
    let (_, name) = f.copy();
    let ok = f.cli(&["backup", "restore", &name]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let kept = || {
        f.db.scalar(
            "SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'billmgrops\\_kept\\_%'",
        )
    };
    let before = kept();
    assert!(!before.is_empty());
    // The next restore fails at its swap: `note` is a view now.
    f.db.exec("DROP TABLE note; CREATE VIEW note AS SELECT 1 AS id, 'x' AS body");
    let failed = f.cli(&["backup", "restore", &name]);
    assert!(!failed.status.success());
    assert_eq!(kept(), before, "the previous safety copy is still there");
    f.db.exec("DROP VIEW note");
    let undone = f.cli(&["backup", "undo"]);
    assert!(
        undone.status.success(),
        "{}",
        String::from_utf8_lossy(&undone.stderr)
    );
}
