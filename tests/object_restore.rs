//! Restoring single objects: a deleted client with everything that hangs
//! off it, skip versus edit, a deleted tariff brought back with its
//! client, all-or-nothing on a conflict, and only the needed bytes read.

use crate::harness::{Panel, TestDb};

struct Fixture {
    db: TestDb,
    panel: Panel,
}

fn fixture() -> Fixture {
    let db = TestDb::seeded(30);
    let panel = Panel::for_backups(&db);
    Fixture { db, panel }
}

impl Fixture {
    fn copy(&self) -> String {
        let out = self.panel.command(&["backup", "create"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.db
            .scalar("SELECT name FROM billmgrops_backup ORDER BY id DESC LIMIT 1")
    }

    fn restore(&self, copy: &str, kind: &str, id: &str, behavior: &str) -> std::process::Output {
        self.panel
            .command(&[
                "backup",
                "restore-object",
                copy,
                kind,
                id,
                "--behavior",
                behavior,
            ])
            .output()
            .unwrap()
    }

    /// Everything of client `id`: its row, users, services with their
    /// parameters, payments.
    fn client(&self, id: &str) -> String {
        self.db.scalar(&format!(
            "SELECT CONCAT_WS('|',
               (SELECT CONCAT_WS(',', name, balance, registration_date) FROM account WHERE id = {id}),
               (SELECT GROUP_CONCAT(CONCAT_WS(',', id, name, email) ORDER BY id) FROM user WHERE account = {id}),
               (SELECT GROUP_CONCAT(CONCAT_WS(',', id, name, cost, expiredate, pricelist) ORDER BY id) FROM item WHERE account = {id}),
               (SELECT GROUP_CONCAT(CONCAT_WS(',', p.id, p.intname, p.value) ORDER BY p.id) FROM itemparam p JOIN item i ON i.id = p.item WHERE i.account = {id}),
               (SELECT GROUP_CONCAT(CONCAT_WS(',', id, number, amount) ORDER BY id) FROM payment WHERE account = {id}))"
        ))
    }

    /// A client with at least two services.
    fn busy_client(&self) -> String {
        self.db
            .scalar("SELECT account FROM item GROUP BY account HAVING COUNT(*) >= 2 ORDER BY account LIMIT 1")
    }
}

#[test]
fn a_deleted_client_comes_back_whole_and_others_keep_their_changes() {
    let f = fixture();
    let a = f.busy_client();
    let b =
        f.db.scalar(&format!("SELECT MIN(id) FROM account WHERE id <> {a}"));
    let saved = f.client(&a);
    let copy = f.copy();
    f.db.exec(&format!(
        "UPDATE account SET name = 'Changed since' WHERE id = {b}"
    ));
    f.db.exec(&format!("DELETE FROM account WHERE id = {a}"));
    assert_ne!(f.client(&a), saved);
    let out = f.restore(&copy, "account", &a, "skip");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        f.client(&a),
        saved,
        "the client, its users, services, parameters, payments"
    );
    assert_eq!(
        f.db.scalar(&format!("SELECT name FROM account WHERE id = {b}")),
        "Changed since",
        "other clients keep what changed after the copy"
    );
    // Progress as plain lines (not a terminal), one per phase.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("restore-object: read\nrestore-object: write\naccount: 1 rows\n"),
        "{stderr}"
    );
    // Only the chunks that can hold the client were read.
    let line = stderr.lines().find(|l| l.starts_with("read ")).unwrap();
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(numbers[0] > 0 && numbers[0] < numbers[1], "{line}");
}

#[test]
fn skip_keeps_an_edited_service_and_edit_brings_it_back() {
    let f = fixture();
    let a = f.busy_client();
    let saved = f.client(&a);
    let copy = f.copy();
    let edited =
        f.db.scalar(&format!("SELECT MIN(id) FROM item WHERE account = {a}"));
    let deleted =
        f.db.scalar(&format!("SELECT MAX(id) FROM item WHERE account = {a}"));
    f.db.exec(&format!("UPDATE item SET cost = 999.5 WHERE id = {edited}"));
    f.db.exec(&format!("DELETE FROM item WHERE id = {deleted}"));
    let out = f.restore(&copy, "account", &a, "skip");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        f.db.scalar(&format!("SELECT cost FROM item WHERE id = {edited}")),
        "999.5000",
        "skip leaves the edited service as it is now"
    );
    assert_eq!(
        f.db.scalar(&format!("SELECT COUNT(*) FROM item WHERE id = {deleted}")),
        "1",
        "skip adds the deleted service back"
    );
    let out = f.restore(&copy, "item", &edited, "edit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        f.client(&a),
        saved,
        "edit returns the service to its saved state"
    );
}

#[test]
fn a_client_whose_tariff_was_deleted_comes_back_with_the_tariff() {
    let f = fixture();
    let a = f.busy_client();
    // A tariff of its own for one of the client's services.
    f.db.exec("INSERT INTO pricelist (intname, name, itemtype, project) SELECT 'own', 'Own tariff', itemtype, project FROM pricelist LIMIT 1");
    let tariff = f.db.scalar("SELECT MAX(id) FROM pricelist");
    f.db.exec(&format!(
        "UPDATE item SET pricelist = {tariff} WHERE id = (SELECT id FROM (SELECT MIN(id) AS id FROM item WHERE account = {a}) x)"
    ));
    f.db.exec(&format!(
        "DELETE FROM processingmodule2pricelist WHERE pricelist = {tariff}"
    ));
    let saved = f.client(&a);
    let copy = f.copy();
    f.db.exec(&format!("DELETE FROM account WHERE id = {a}"));
    f.db.exec(&format!("DELETE FROM pricelist WHERE id = {tariff}"));
    let out = f.restore(&copy, "account", &a, "skip");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        f.db.scalar(&format!("SELECT name FROM pricelist WHERE id = {tariff}")),
        "Own tariff"
    );
    assert_eq!(f.client(&a), saved);
}

#[test]
fn a_conflict_midway_leaves_nothing_half_done() {
    let f = fixture();
    let a = f.db.scalar(
        "SELECT account FROM user GROUP BY account HAVING COUNT(*) >= 1 ORDER BY account LIMIT 1",
    );
    let copy = f.copy();
    let taken = f.db.scalar(&format!(
        "SELECT name FROM user WHERE account = {a} ORDER BY id DESC LIMIT 1"
    ));
    f.db.exec(&format!("DELETE FROM account WHERE id = {a}"));
    // Another client's new user takes the name (user names are unique).
    f.db.exec(&format!(
        "INSERT INTO user (account, name) SELECT MIN(id), '{}' FROM account",
        taken.replace('\'', "''")
    ));
    let before = f.db.scalar("SELECT COUNT(*) FROM item");
    let out = f.restore(&copy, "account", &a, "skip");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to restore a row of `user`"));
    assert_eq!(
        f.db.scalar(&format!("SELECT COUNT(*) FROM account WHERE id = {a}")),
        "0"
    );
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM item"),
        before,
        "nothing half-restored"
    );
    // Missing objects and unknown kinds are clear errors.
    let out = f.restore(&copy, "account", "999999", "skip");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not hold account 999999"));
    let out = f.restore(&copy, "tariff", "1", "skip");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a kind"));
}

#[test]
fn the_panel_offers_the_copies_that_hold_the_object_and_restores_from_one() {
    let f = fixture();
    let a = f.busy_client();
    let saved = f.client(&a);
    f.copy();
    let first = f.db.scalar("SELECT id FROM billmgrops_backup");
    f.db.exec(&format!(
        "UPDATE account SET name = 'Later name' WHERE id = {a}"
    ));
    f.copy();
    let second = f.db.scalar("SELECT MAX(id) FROM billmgrops_backup");
    let form = f
        .panel
        .call("backupdata.restore")
        .param("plid", "account")
        .param("elid", &a)
        .run();
    let doc = form.doc();
    let versions: Vec<String> = doc
        .find_all("slist")
        .find(|s| s.get_attr("name") == Some("version"))
        .unwrap()
        .find_all("val")
        .map(|v| v.get_attr("key").unwrap_or_default().to_string())
        .collect();
    assert_eq!(versions, [second.clone(), first.clone()], "newest first");
    f.db.exec(&format!("DELETE FROM account WHERE id = {a}"));
    let restore = |version: &str, behavior: &str| {
        f.panel
            .call("backupdata.restore")
            .param("plid", "account")
            .param("elid", &a)
            .param("sok", "ok")
            .param("version", version)
            .param("behavior", behavior)
            .run()
    };
    let out = restore(&first, "skip");
    assert!(out.ok(), "{}", out.text());
    assert_eq!(f.client(&a), saved, "the chosen (older) copy's state");
    // Bad requests change nothing.
    assert_eq!(
        restore("999", "skip").error_type(),
        ("value".into(), "version".into())
    );
    assert_eq!(restore(&first, "merge").error_type().0, "value");
    // While another backup or restore runs: the typed refusal, not a
    // failed restore.
    {
        use mysql::prelude::Queryable;
        let mut holder = f.db.conn();
        let lock = format!("billmgrops.backup.{}", f.db.name);
        let _: Option<i64> = holder
            .exec_first("SELECT GET_LOCK(?, 0)", (&lock,))
            .unwrap();
        assert_eq!(
            restore(&first, "skip").error_type(),
            ("backup_running".into(), "backup".into())
        );
    }
    let missing = f
        .panel
        .call("backupdata.restore")
        .param("plid", "account")
        .param("elid", "999999")
        .run();
    assert_eq!(missing.error_type().0, "missed");
    let files = f
        .panel
        .call("backupdata.restore")
        .param("plid", "files")
        .param("elid", "1")
        .run();
    assert_eq!(files.error_type(), ("value".into(), "plid".into()));
    let user = f
        .panel
        .call("backupdata.restore")
        .param("plid", "account")
        .param("elid", &a)
        .level("16")
        .run();
    assert_eq!(user.error_type().0, "access");
    // A conflict is a typed error, and nothing changes.
    let taken = f.db.scalar(&format!(
        "SELECT name FROM user WHERE account = {a} LIMIT 1"
    ));
    f.db.exec(&format!("DELETE FROM account WHERE id = {a}"));
    f.db.exec(&format!(
        "INSERT INTO user (account, name) SELECT MIN(id), '{}' FROM account",
        taken.replace('\'', "''")
    ));
    let out = restore(&second, "edit");
    assert_eq!(out.error_type().0, "restore_failed", "{}", out.text());
    assert_eq!(
        f.db.scalar(&format!("SELECT COUNT(*) FROM account WHERE id = {a}")),
        "0"
    );
}

#[test]
fn a_saved_file_is_restored_inside_its_directory_only() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let etc = f.panel.mgrdir().join("etc");
    let conf = etc.join("panel.conf");
    std::fs::write(&conf, "Option saved\n").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o640)).unwrap();
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    std::fs::File::options()
        .write(true)
        .open(&conf)
        .unwrap()
        .set_modified(old)
        .unwrap();
    std::fs::create_dir_all(etc.join("sub")).unwrap();
    std::fs::write(etc.join("sub/extra.conf"), "extra\n").unwrap();
    std::fs::write(etc.join("gone.conf"), "gone\n").unwrap();
    f.copy();
    let dir = etc.display().to_string();
    // The directory and its files are listed from the catalog.
    let dirs = f
        .panel
        .call("backupdata.names")
        .param("plid", "files")
        .run()
        .rows();
    assert!(dirs.iter().any(|r| crate::harness::cell(r, "id") == dir));
    let files = f
        .panel
        .call("backupdata.files")
        .param("plid", &dir)
        .run()
        .rows();
    let names: Vec<String> = files
        .iter()
        .map(|r| crate::harness::cell(r, "dname"))
        .collect();
    assert!(
        names.contains(&"panel.conf".to_string()) && names.contains(&"gone.conf".to_string()),
        "{names:?}"
    );

    std::fs::write(&conf, "Option broken\n").unwrap();
    std::fs::remove_file(etc.join("gone.conf")).unwrap();
    let restore = |paths: &str, behavior: &str| {
        let version = f.db.scalar("SELECT MAX(id) FROM billmgrops_backup");
        f.panel
            .call("backupdata.files.restore")
            .param("plid", &dir)
            .param("elid", paths)
            .param("sok", "ok")
            .param("version", &version)
            .param("behavior", behavior)
            .run()
    };
    let both = format!("{}, {}", conf.display(), etc.join("gone.conf").display());
    let out = restore(&both, "skip");
    assert!(out.ok(), "{}", out.text());
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "Option broken\n",
        "skip keeps it"
    );
    assert_eq!(
        std::fs::read_to_string(etc.join("gone.conf")).unwrap(),
        "gone\n"
    );
    let out = restore(&conf.display().to_string(), "edit");
    assert!(out.ok(), "{}", out.text());
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "Option saved\n");
    let meta = std::fs::metadata(&conf).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_eq!(meta.modified().unwrap(), old);

    // Not through a symbolic link that points out of the saved directory.
    let outside = f.panel.mgrdir().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::remove_dir_all(etc.join("sub")).unwrap();
    std::os::unix::fs::symlink(&outside, etc.join("sub")).unwrap();
    let out = restore(&etc.join("sub/extra.conf").display().to_string(), "edit");
    assert_eq!(out.error_type().0, "restore_failed", "{}", out.text());
    assert!(out.text().contains("symbolic link"));
    assert!(!outside.join("extra.conf").exists());
    // Nor outside what was saved.
    let out = restore(&format!("{dir}/../../../etc/passwd"), "edit");
    assert_eq!(out.error_type().0, "missed");
}

#[test]
fn an_encrypted_copy_restores_one_client_the_same_way() {
    let f = fixture();
    let saved_settings = f.panel.set_backup_passphrase("correct horse battery");
    assert!(saved_settings.ok(), "{}", saved_settings.text());
    let a = f.busy_client();
    let saved = f.client(&a);
    let copy = f.copy();
    assert_eq!(f.db.scalar("SELECT encrypted FROM billmgrops_backup"), "1");
    f.db.exec(&format!("DELETE FROM account WHERE id = {a}"));
    let out = f.restore(&copy, "account", &a, "skip");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(f.client(&a), saved);
}

#[test]
fn relations_declared_in_the_config_are_followed_like_foreign_keys() {
    let f = fixture();
    let a = f.busy_client();
    f.db.exec("CREATE TABLE client_note (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, account INT NOT NULL, note TEXT)");
    f.db.exec(&format!("INSERT INTO client_note (account, note) VALUES ({a}, 'first'), ({a}, 'second'), (0, 'other')"));
    let copy = f.copy();
    let notes = || {
        f.db.scalar(&format!(
            "SELECT COUNT(*) FROM client_note WHERE account = {a}"
        ))
    };
    f.db.exec(&format!("DELETE FROM account WHERE id = {a}"));
    f.db.exec(&format!("DELETE FROM client_note WHERE account = {a}"));
    let out = f.restore(&copy, "account", &a, "skip");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        notes(),
        "0",
        "without a foreign key or a declared relation, notes stay out"
    );
    f.panel
        .configure("BackupRelations client_note.account=account.id\n");
    f.db.exec(&format!("DELETE FROM account WHERE id = {a}"));
    let out = f.restore(&copy, "account", &a, "skip");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(notes(), "2", "the declared relation brings them back");
}

/// A copy's listing (the one beside the archive), as JSON.
fn listing_of(f: &Fixture, copy: &str) -> (std::path::PathBuf, serde_json::Value) {
    let path = f
        .panel
        .mgrdir()
        .join(format!("var/billmgr-ops/backup/{copy}.json"));
    let listing = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (path, listing)
}

/// The archive bytes `restore-object` says it read.
fn bytes_read(out: &std::process::Output) -> u64 {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("read ")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn one_client_is_found_by_the_key_index_and_read_by_frames() {
    let db = TestDb::seeded(1500);
    let f = Fixture {
        panel: Panel::for_backups(&db),
        db,
    };
    let copy = f.copy();
    let (path, listing) = listing_of(&f, &copy);
    assert_eq!(listing["version"], 3);
    let tables = listing["tables"].as_array().unwrap();
    let table = |name: &str| tables.iter().find(|t| t["name"] == name).unwrap();
    let item = table("item");
    let frames: usize = item["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["frames"].as_array().map_or(1, Vec::len))
        .sum();
    assert!(frames >= 3, "the services are cut into frames: {frames}");
    let index = item["keys"]["account"].as_array().unwrap();
    assert!(!index.is_empty(), "services are indexed by client");
    assert!(
        table("currency")["keys"].is_null(),
        "keys to lookup tables are not indexed"
    );

    let a = f.busy_client();
    let saved = f.client(&a);
    f.db.exec(&format!("DELETE FROM account WHERE id = {a}"));
    let read = bytes_read(&f.restore(&copy, "account", &a, "skip"));
    assert_eq!(f.client(&a), saved);
    let data: u64 = tables
        .iter()
        .flat_map(|t| t["chunks"].as_array().unwrap())
        .map(|c| c["entry"]["size"].as_u64().unwrap())
        .sum();
    assert!(
        read * 5 < data,
        "one client of 1500 reads a small part of the data: {read} of {data}"
    );

    // A copy as format version 1 wrote it (no frames, no key index, the
    // SHA-256 of every chunk's text) still restores the same client,
    // reading whole chunks.
    use sha2::Digest as _;
    let tar =
        std::fs::read(path.with_file_name(listing["archive"]["object"].as_str().unwrap())).unwrap();
    let mut old = listing.clone();
    old["version"] = 1.into();
    for t in old["tables"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("keys");
        for c in t["chunks"].as_array_mut().unwrap() {
            assert!(c.get("text_sha256").is_none(), "version 3 hashes text once");
            let at = c["entry"]["offset"].as_u64().unwrap() as usize;
            let size = c["entry"]["size"].as_u64().unwrap() as usize;
            let text = zstd::stream::decode_all(&tar[at..at + size]).unwrap();
            let c = c.as_object_mut().unwrap();
            c.remove("frames");
            c.remove("frame_keys");
            c.insert(
                "text_sha256".into(),
                hex::encode(sha2::Sha256::digest(&text)).into(),
            );
        }
    }
    // Its text hashes are still checked: one wrong, the client is refused.
    let mut wrong = old.clone();
    for t in wrong["tables"].as_array_mut().unwrap() {
        for c in t["chunks"].as_array_mut().unwrap() {
            c["text_sha256"] = "0".repeat(64).into();
        }
    }
    std::fs::write(&path, serde_json::to_vec(&wrong).unwrap()).unwrap();
    f.db.exec(&format!("DELETE FROM account WHERE id = {a}"));
    let gone = f.client(&a);
    let out = f.restore(&copy, "account", &a, "skip");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("other text than was saved"), "{stderr}");
    assert_eq!(f.client(&a), gone, "nothing was restored");
    std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
    f.db.exec(&format!("DELETE FROM account WHERE id = {a}"));
    let read_v1 = bytes_read(&f.restore(&copy, "account", &a, "skip"));
    assert_eq!(f.client(&a), saved);
    assert!(read_v1 > read, "whole chunks: {read_v1} against {read}");
}

#[test]
fn a_key_index_naming_a_frame_the_table_lacks_is_refused_and_changes_nothing() {
    use crate::harness::forge::{listing_beside, take_apart};
    let f = fixture();
    let copy = f.copy();
    let (path, listing) = listing_of(&f, &copy);
    let object = listing["archive"]["object"].as_str().unwrap().to_string();
    let tar_path = path.with_file_name(&object);
    let a = f.busy_client();
    // Every block of the services' index by client now says client `a`'s
    // services are in frame 99999; the archive is otherwise consistent.
    let forged_block = zstd::bulk::compress(format!("{a}\t99999\n").as_bytes(), 3).unwrap();
    let mut parts = take_apart(&std::fs::read(&tar_path).unwrap());
    let mut forged = 0;
    for (entry, data) in &mut parts.entries {
        if entry.starts_with("keys/item/account/") {
            *data = forged_block.clone();
            forged += 1;
        }
    }
    assert!(forged > 0, "the copy indexes services by client");
    let tar = parts.build();
    std::fs::write(&tar_path, &tar).unwrap();
    std::fs::write(&path, listing_beside(&tar, &object)).unwrap();

    f.db.exec(&format!("DELETE FROM account WHERE id = {a}"));
    let before = f.client(&a);
    let out = f.restore(&copy, "account", &a, "skip");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the restore ran: {stderr}");
    assert!(
        stderr.contains("names frame 99999, which the table does not have"),
        "{stderr}"
    );
    assert_eq!(f.client(&a), before, "nothing was restored");
}
