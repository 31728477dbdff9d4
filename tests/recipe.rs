//! docs/archive-format.md's restore script, taken out of the document as
//! it stands and run as a stranger would on a new server: tar, zstd, jq,
//! sha256sum and the mariadb client, no billmgr-ops. The database it
//! restores must equal the source, table by table (CHECKSUM TABLE) and
//! definition by definition (body, sql_mode, character set).

use std::process::Command;

use crate::harness::{Panel, TestDb};

/// The script block of the document (the one that starts `#!/bin/sh`).
fn script_from_the_document() -> String {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/archive-format.md"
    ))
    .unwrap();
    let start = doc
        .find("```sh\n#!/bin/sh\n")
        .expect("docs/archive-format.md holds the restore script")
        + "```sh\n".len();
    let end = start + doc[start..].find("```").unwrap();
    doc[start..end].to_string()
}

/// Every kind of definition, the hard cases of each.
fn add_definitions(db: &TestDb) {
    db.plugin_exec(
        "CREATE FUNCTION client_name(a INT) RETURNS VARCHAR(255) READS SQL DATA
           COMMENT 'имя клиента 🙂' RETURN (SELECT name FROM account WHERE id = a)",
    );
    // Listed (by name) before what they use: a view on a function, a view
    // on a view.
    db.plugin_exec("CREATE VIEW a_named AS SELECT id, client_name(id) AS n FROM account");
    db.plugin_exec("CREATE VIEW z_base AS SELECT id, name FROM account");
    db.plugin_exec("CREATE VIEW a_first AS SELECT * FROM z_base WHERE id < 10");
    db.plugin_exec(
        "CREATE PROCEDURE touch_clients(IN n INT) MODIFIES SQL DATA
         BEGIN
           /* kept: a comment is part of the body */
           DECLARE i INT DEFAULT 0;
           -- a line comment; with a semicolon
           WHILE i < n DO SET i = i + 1; END WHILE;
           UPDATE account SET note = CONCAT('проверка; ', note) WHERE id = -1;
         END",
    );
    db.plugin_exec(
        "SET SESSION sql_mode = 'PIPES_AS_CONCAT,NO_ENGINE_SUBSTITUTION';
         CREATE TRIGGER account_note BEFORE UPDATE ON account FOR EACH ROW
         BEGIN
           IF NEW.note IS NULL THEN SET NEW.note = 'was ' || OLD.name; END IF;
         END;
         SET SESSION sql_mode = DEFAULT",
    );
    db.plugin_exec(
        "CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 03:00:00' DISABLE
         COMMENT 'ночью' DO UPDATE account SET note = note WHERE id = -1",
    );
}

/// Kind, name, body, sql_mode, definer, security, character set and
/// collation (and comment) of every definition.
fn definitions(db: &TestDb, database: &str) -> Vec<String> {
    let sql = format!(
        "SELECT CONCAT_WS('|', 'view', TABLE_NAME, VIEW_DEFINITION, '', DEFINER, SECURITY_TYPE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{d}'
         UNION ALL SELECT CONCAT_WS('|', ROUTINE_TYPE, ROUTINE_NAME, ROUTINE_DEFINITION, SQL_MODE, DEFINER, SECURITY_TYPE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, ROUTINE_COMMENT) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{d}'
         UNION ALL SELECT CONCAT_WS('|', 'trigger', TRIGGER_NAME, ACTION_STATEMENT, SQL_MODE, DEFINER, ACTION_TIMING, EVENT_MANIPULATION, CHARACTER_SET_CLIENT, COLLATION_CONNECTION) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{d}'
         UNION ALL SELECT CONCAT_WS('|', 'event', EVENT_NAME, EVENT_DEFINITION, SQL_MODE, DEFINER, TIME_ZONE, STATUS, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, EVENT_COMMENT) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{d}'",
        d = database
    );
    use mysql::prelude::Queryable;
    let mut rows: Vec<String> = db.conn().query(sql).unwrap();
    rows.sort();
    // A view's text names its own database: compare without it.
    rows.iter()
        .map(|r| r.replace(&format!("`{database}`."), ""))
        .collect()
}

fn checksums(db: &TestDb, database: &str) -> Vec<String> {
    use mysql::prelude::Queryable;
    let mut c = db.conn();
    let tables: Vec<String> = c
        .exec(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?
             AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE 'billmgrops\\_%' ORDER BY TABLE_NAME",
            (database,),
        )
        .unwrap();
    tables
        .iter()
        .map(|t| {
            let row: Option<(String, Option<u64>)> = c
                .query_first(format!("CHECKSUM TABLE `{database}`.`{t}`"))
                .unwrap();
            format!("{t} {:?}", row.unwrap().1)
        })
        .collect()
}

/// The mariadb client's command line for the test server.
pub(crate) fn client(db: &TestDb) -> String {
    let address = db.url.trim_start_matches("mysql://");
    let (user, rest) = address.split_once('@').unwrap();
    let (host_port, _) = rest.split_once('/').unwrap();
    let (host, port) = host_port.split_once(':').unwrap();
    format!("mariadb --protocol=tcp -h{host} -P{port} -u{user}")
}

/// One restore by the script at a time: on MySQL it allows LOAD DATA LOCAL
/// for its restore and then turns it off again, under another's feet.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes a copy (encrypted with `passphrase` if given) of a database with
/// every kind of definition, restores it with the documented script and
/// compares.
fn restore_by_hand(passphrase: Option<&str>) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let db = TestDb::seeded(30);
    add_definitions(&db);
    // Not the server's default: the database made anew keeps it.
    db.exec(&format!(
        "ALTER DATABASE `{}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        db.name
    ));
    let panel = Panel::for_backups(&db);
    if let Some(p) = passphrase {
        let set = panel.set_backup_passphrase(p);
        assert!(!set.stdout.contains("<error"), "{}", set.stdout);
    }
    let (_, name) = panel.take_copy(&db);
    let file = match passphrase {
        Some(_) => format!("{name}.tar.age"),
        None => format!("{name}.tar"),
    };
    let copy = panel.mgrdir().join("var/billmgr-ops/backup").join(file);
    assert!(copy.exists(), "{}", copy.display());
    let script = panel.mgrdir().join("restore-copy.sh");
    std::fs::write(&script, script_from_the_document()).unwrap();
    let target = format!("{}_byhand", db.name);
    // The copy's views and routines name the account that made them.
    db.grant_plugin_account(&target);
    let files_to = panel.mgrdir().join("saved");
    std::fs::create_dir(&files_to).unwrap();
    let out = match passphrase {
        None => Command::new("sh")
            .arg(&script)
            .arg(&copy)
            .arg(&target)
            .env("MYSQL", client(&db))
            .env("FILES_TO", &files_to)
            .output()
            .unwrap(),
        // age asks for the passphrase on a terminal: `script` gives the
        // command one, fed from stdin, as the document says.
        // age asks for the passphrase on a terminal: `script` gives the
        // command one, told not to echo, fed from stdin, as the document
        // says.
        Some(p) => Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{{ sleep 1; printf '%s\\n' \"$PASSPHRASE\"; }} | script -qec \"stty -echo; sh {} {} {}\" /dev/null",
                script.display(),
                copy.display(),
                target
            ))
            .env("PASSPHRASE", p)
            .env("MYSQL", client(&db))
            .env("FILES_TO", &files_to)
            .output()
            .unwrap(),
    };
    if let Some(p) = passphrase {
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(p)
                && !String::from_utf8_lossy(&out.stderr).contains(p),
            "the passphrase was shown"
        );
    }
    let restored = || {
        assert!(
            out.status.success(),
            "the documented script failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("the plugin's own tables"),
            "the script says what a copy never holds"
        );
        assert_eq!(checksums(&db, &target), checksums(&db, &db.name));
        let collation = |d: &str| {
            db.scalar(&format!(
                "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{d}'"
            ))
        };
        assert_eq!(collation(&target), "utf8mb4_unicode_ci");
        let (want, got) = (definitions(&db, &db.name), definitions(&db, &target));
        assert_eq!(want.len(), 7, "{want:#?}");
        assert_eq!(got, want);
        // The panel's files (BackupFiles: etc), below FILES_TO at their
        // own paths, with their modes.
        let conf = panel.mgrdir().join("etc/billmgr.conf");
        let saved = files_to.join(conf.strip_prefix("/").unwrap());
        assert_eq!(
            std::fs::read(&saved).unwrap_or_default(),
            std::fs::read(&conf).unwrap(),
            "{}",
            saved.display()
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&saved).unwrap().mode(),
            std::fs::metadata(&conf).unwrap().mode()
        );
    };
    let result = std::panic::catch_unwind(restored);
    db.exec(&format!("DROP DATABASE IF EXISTS `{target}`"));
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn the_documented_script_restores_a_copy_exactly() {
    restore_by_hand(None);
}

#[test]
fn the_documented_script_restores_an_encrypted_copy_exactly() {
    restore_by_hand(Some("correct horse; battery"));
}

#[test]
fn the_documented_script_stops_at_a_damaged_chunk() {
    let db = TestDb::seeded(5);
    let panel = Panel::for_backups(&db);
    let (_, name) = panel.take_copy(&db);
    let copy = panel
        .mgrdir()
        .join(format!("var/billmgr-ops/backup/{name}.tar"));
    // One byte of the first data chunk flipped inside the tar.
    let mut bytes = std::fs::read(&copy).unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == [0x28, 0xb5, 0x2f, 0xfd])
        .expect("a zstd frame (a data chunk) in the tar");
    // Inside the frame (its header is 6 to 18 bytes): the entry's hash
    // changes whatever the byte is.
    bytes[at + 5] ^= 0xff;
    std::fs::write(&copy, bytes).unwrap();
    let script = panel.mgrdir().join("restore-copy.sh");
    std::fs::write(&script, script_from_the_document()).unwrap();
    let target = format!("{}_byhand", db.name);
    // The copy's views and routines name the account that made them.
    db.grant_plugin_account(&target);
    let out = Command::new("sh")
        .arg(&script)
        .arg(&copy)
        .arg(&target)
        .env("MYSQL", "false")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the copy is damaged"), "{stderr}");
}

/// A copy changed as `damage` says (without the listing beside it where
/// `alone`), run through the documented script: it must stop and say
/// `expected`.
fn refused_by_the_script(damage: impl Fn(&mut Vec<u8>), alone: bool, expected: &str) {
    let db = TestDb::seeded(3);
    let panel = Panel::for_backups(&db);
    let (_, name) = panel.take_copy(&db);
    let copy = panel
        .mgrdir()
        .join(format!("var/billmgr-ops/backup/{name}.tar"));
    if alone {
        std::fs::remove_file(copy.with_extension("json")).unwrap();
    }
    let mut bytes = std::fs::read(&copy).unwrap();
    damage(&mut bytes);
    std::fs::write(&copy, bytes).unwrap();
    let script = panel.mgrdir().join("restore-copy.sh");
    std::fs::write(&script, script_from_the_document()).unwrap();
    let out = Command::new("sh")
        .arg(&script)
        .arg(&copy)
        .arg(format!("{}_byhand", db.name))
        .env("MYSQL", "false")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the script took a damaged copy: {stderr}"
    );
    assert!(stderr.contains(expected), "{stderr}");
}

#[test]
fn the_documented_script_checks_the_archive_itself() {
    // A byte after the tar's end: every entry still checks, the archive
    // does not.
    refused_by_the_script(|b| b.push(0), false, "the archive differs from its listing");
}

#[test]
fn the_documented_script_checks_the_saved_files() {
    // One byte of a saved file (etc/billmgr.conf: `DBHost localhost`)
    // flipped inside the tar, the listing beside it gone (so the archive's
    // own hash is not there to catch it first).
    refused_by_the_script(
        |b| {
            let at = b
                .windows(16)
                .position(|w| w == b"DBHost localhost")
                .expect("the saved billmgr.conf in the tar");
            b[at] ^= 0x20;
        },
        true,
        "an entry differs from its listing",
    );
}

#[test]
fn the_documented_script_refuses_a_value_the_server_would_change() {
    let db = TestDb::seeded(3);
    let panel = Panel::for_backups(&db);
    let (_, name) = panel.take_copy(&db);
    let copy = panel
        .mgrdir()
        .join(format!("var/billmgr-ops/backup/{name}.tar"));
    // A consistent copy (every hash right) whose first client's balance is
    // a word: a LOCAL load would store 0 with a warning.
    let mut parts = crate::harness::forge::take_apart(&std::fs::read(&copy).unwrap());
    // (Without the saved files: the forge lays out data entries only.)
    parts.entries.retain(|(p, _)| !p.starts_with("files/"));
    parts.listing["files"] = serde_json::json!([]);
    let tables = parts.listing["tables"].as_array_mut().unwrap();
    let account = tables.iter_mut().find(|t| t["name"] == "account").unwrap();
    let column = account["columns"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c == "balance")
        .unwrap();
    let chunk = &mut account["chunks"][0];
    let path = chunk["entry"]["path"].as_str().unwrap().to_string();
    let (_, data) = parts.entries.iter_mut().find(|(p, _)| *p == path).unwrap();
    let text = zstd::decode_all(&data[..]).unwrap();
    let mut lines: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let mut fields: Vec<Vec<u8>> = lines[0]
        .split(|&b| b == b'\t')
        .map(<[u8]>::to_vec)
        .collect();
    fields[column] = b"lots".to_vec();
    lines[0] = fields.join(&b'\t');
    let text = lines.join(&b'\n');
    *data = zstd::encode_all(&text[..], 1).unwrap();
    chunk["text_size"] = text.len().into();
    let chunk = chunk.as_object_mut().unwrap();
    chunk.remove("frames");
    chunk.remove("frame_keys");
    std::fs::write(&copy, parts.build()).unwrap();
    std::fs::remove_file(copy.with_extension("json")).unwrap();
    let script = panel.mgrdir().join("restore-copy.sh");
    std::fs::write(&script, script_from_the_document()).unwrap();
    let target = format!("{}_byhand", db.name);
    db.grant_plugin_account(&target);
    let out = {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        Command::new("sh")
            .arg(&script)
            .arg(&copy)
            .arg(&target)
            .env("MYSQL", client(&db))
            .output()
            .unwrap()
    };
    db.exec(&format!("DROP DATABASE IF EXISTS `{target}`"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a changed value went in: {stderr}");
    assert!(stderr.contains("changed values"), "{stderr}");
}
