//! `backupdata` and `backupdata.names`: the kinds of saved data and the
//! objects of each kind across copies, from the listings' object index.

use crate::harness::{cell, Panel, TestDb};

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
    fn copy(&self) -> String {
        let out = self.panel.command(&["backup", "create"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.db.scalar("SELECT MAX(id) FROM billmgrops_backup")
    }

    fn names(&self, kind: &str, extra: &[(&str, &str)]) -> crate::harness::Output {
        let mut call = self.panel.call("backupdata.names").param("plid", kind);
        for (k, v) in extra {
            call = call.param(k, v);
        }
        call.run()
    }
}

#[test]
fn the_kinds_are_listed_in_both_languages() {
    let f = fixture(1);
    let rows = f.panel.call("backupdata").run().rows();
    let kinds: Vec<String> = rows.iter().map(|r| cell(r, "id")).collect();
    assert_eq!(kinds, ["account", "user", "item", "payment", "files"]);
    assert_eq!(cell(&rows[0], "type"), "Clients");
    let ru = f
        .panel
        .call("backupdata")
        .env("PARAM_lang", "ru")
        .run()
        .rows();
    assert_eq!(cell(&ru[2], "type"), "Услуги");
    let out = f.panel.call("backupdata").level("16").run();
    assert_eq!(out.error_type().0, "access");
}

#[test]
fn objects_are_listed_across_copies_with_owners_and_versions() {
    let f = fixture(12);
    let first = f.copy();
    let renamed: String = f.db.scalar("SELECT name FROM account ORDER BY id LIMIT 1");
    f.db.exec("UPDATE account SET name = 'Renamed Client' WHERE id = (SELECT MIN(id) FROM (SELECT id FROM account) a)");
    f.db.exec("INSERT INTO account (name, project, registration_date, balance) SELECT 'Newcomer Ltd', project, NOW(), 0 FROM account LIMIT 1");
    let second = f.copy();
    // A failed copy holds nothing that counts.
    f.db.exec("INSERT INTO billmgrops_backup (name, storage, state, created) VALUES ('broken', 'default', 'failed', NOW())");

    let clients = f.names("account", &[("p_cnt", "1000")]);
    let rows = clients.rows();
    assert_eq!(clients.value("p_elems"), "13", "12 seeded and the newcomer");
    let row = |name: &str| {
        rows.iter()
            .find(|r| cell(r, "name") == name)
            .unwrap_or_else(|| panic!("no `{name}` in {}", clients.text()))
            .clone()
    };
    assert_eq!(cell(&row("Newcomer Ltd"), "versions"), "1");
    assert_eq!(
        cell(&row("Renamed Client"), "versions"),
        "2",
        "one object in both copies"
    );
    let other = rows
        .iter()
        .find(|r| cell(r, "name") != "Renamed Client" && cell(r, "name") != "Newcomer Ltd")
        .unwrap();
    assert_eq!(cell(other, "versions"), "2");
    assert_ne!(
        renamed, "Renamed Client",
        "the seed's name differs from the new one"
    );
    assert!(!rows.iter().any(|r| cell(r, "name") == renamed));

    // Services name their client.
    let items = f.names("item", &[("p_cnt", "1000")]).rows();
    assert!(!items.is_empty());
    let (item_id, owner): (u64, String) = {
        let r = &items[0];
        (cell(r, "id").parse().unwrap(), cell(r, "owner"))
    };
    let expected = f.db.scalar(&format!(
        "SELECT a.name FROM item i JOIN account a ON a.id = i.account WHERE i.id = {item_id}"
    ));
    assert_eq!(owner, expected);

    // Search by name or owner, with LIKE's wildcards taken literally.
    let found = f.names("account", &[("search", "newcomer")]);
    assert_eq!(found.value("p_elems"), "1");
    assert_eq!(f.names("account", &[("search", "%")]).value("p_elems"), "0");
    let by_owner = f.names(
        "payment",
        &[("search", "Renamed Client"), ("p_cnt", "1000")],
    );
    assert!(by_owner
        .rows()
        .iter()
        .all(|r| cell(r, "owner") == "Renamed Client"));

    // Paging and sorting (where the plugin pages).
    f.panel.configure("ListPaging plugin\n");
    let page = f.names(
        "account",
        &[
            ("p_cnt", "5"),
            ("p_num", "3"),
            ("p_sort", "name"),
            ("p_order", "asc"),
        ],
    );
    assert_eq!(page.rows().len(), 3);
    // A page is the same slice of the whole list, either way round.
    let ids = |out: &crate::harness::Output| -> Vec<String> {
        out.rows().iter().map(|r| cell(r, "id")).collect()
    };
    let sorted = |order: &str, count: &str, num: &str| {
        ids(&f.names(
            "account",
            &[
                ("p_cnt", count),
                ("p_num", num),
                ("p_sort", "name"),
                ("p_order", order),
            ],
        ))
    };
    let all = sorted("asc", "1000", "1");
    assert_eq!(all.len(), 13);
    assert_eq!(ids(&page), all[10..].to_vec());
    assert_eq!(sorted("asc", "5", "2"), all[5..10].to_vec());
    let reversed: Vec<String> = all.iter().rev().cloned().collect();
    assert_eq!(sorted("desc", "5", "1"), reversed[..5].to_vec());
    // The saved files, by directory.
    let dirs = f.names("files", &[]).rows();
    let etc = f.panel.mgrdir().join("etc").display().to_string();
    assert!(
        dirs.iter().any(|r| cell(r, "name") == etc),
        "{etc} among the saved directories"
    );

    // Deleting a copy takes its objects out.
    // Without `sok`, the form (whether the storages' files go too).
    let form = f.panel.call("backups.delete").param("elid", &first).run();
    assert_eq!(form.value("clean_storages"), "off", "{}", form.text());
    let out = f
        .panel
        .call("backups.delete")
        .param("elid", &first)
        .param("sok", "ok")
        .run();
    assert!(out.ok(), "{}", out.text());
    let after = f.names("account", &[("search", "Renamed Client")]).rows();
    assert_eq!(cell(&after[0], "versions"), "1");
    let _ = second;

    // Bad requests.
    assert_eq!(
        f.names("nonsense", &[]).error_type(),
        ("value".into(), "plid".into())
    );
    assert_eq!(
        f.panel.call("backupdata.names").run().error_type().0,
        "empty"
    );
    assert_eq!(
        f.names("account", &[("p_sort", "owner; DROP TABLE x")])
            .error_type()
            .0,
        "value"
    );
}

#[test]
fn the_listing_carries_the_objects_and_key_ranges_of_each_chunk() {
    let f = fixture(8);
    f.copy();
    let name = f.db.scalar("SELECT name FROM billmgrops_backup");
    let listing: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            f.panel
                .mgrdir()
                .join(format!("var/billmgr-ops/backup/{name}.json")),
        )
        .unwrap(),
    )
    .unwrap();
    // The archive carries no list of its objects (its tables hold them);
    // the catalog indexed them as the copy was taken.
    assert!(listing.get("objects").is_none());
    assert_eq!(
        f.names("account", &[]).value("p_elems"),
        f.db.scalar("SELECT COUNT(*) FROM account")
    );
    let tables = listing["tables"].as_array().unwrap();
    let item = tables.iter().find(|t| t["name"] == "item").unwrap();
    let range = &item["chunks"][0]["ranges"]["account"];
    assert_eq!(
        range[0].as_i64().unwrap().to_string(),
        f.db.scalar("SELECT MIN(account) FROM item")
    );
    assert_eq!(
        range[1].as_i64().unwrap().to_string(),
        f.db.scalar("SELECT MAX(account) FROM item")
    );
    // A rescan indexes what it finds.
    f.db.exec("DELETE FROM billmgrops_copy_block");
    f.db.exec("DELETE FROM billmgrops_object_block");
    f.db.exec("DELETE FROM billmgrops_backup");
    let out = f.panel.command(&["backup", "rescan"]).output().unwrap();
    assert!(out.status.success());
    // From the copy's own tables, every kind, as the dump indexed them.
    for (kind, table) in [
        ("account", "account"),
        ("user", "user"),
        ("item", "item"),
        ("payment", "payment"),
    ] {
        assert_eq!(
            f.names(kind, &[]).value("p_elems"),
            f.db.scalar(&format!("SELECT COUNT(*) FROM {table}")),
            "{kind}"
        );
    }
    let name_of_last =
        f.db.scalar("SELECT name FROM account ORDER BY id DESC LIMIT 1");
    assert!(
        f.names("account", &[]).stdout.contains(&name_of_last),
        "the clients are indexed by name"
    );
}

#[test]
fn one_object_is_read_from_a_copy_by_ranged_reads() {
    let f = fixture(40);
    f.copy();
    let name = f.db.scalar("SELECT name FROM billmgrops_backup");
    let id =
        f.db.scalar("SELECT account FROM item GROUP BY account ORDER BY COUNT(*) DESC LIMIT 1");
    f.db.exec(&format!("DELETE FROM account WHERE id = {id}"));
    let out = f
        .panel
        .command(&["backup", "show", &name, "account", &id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tables = view["tables"].as_array().unwrap();
    let rows_of = |t: &str| {
        tables
            .iter()
            .find(|e| e[0] == t)
            .map_or(0, |e| e[1].as_array().unwrap().len())
    };
    assert_eq!(rows_of("account"), 1);
    assert_eq!(
        tables[0][1][0]["id"],
        id.as_str(),
        "the deleted client, from the copy"
    );
    assert!(rows_of("item") > 0, "its services: {view}");
    let read = view["bytes_read"].as_u64().unwrap();
    let size = view["archive_size"].as_u64().unwrap();
    assert!(read > 0 && read < size, "read {read} of {size}");
    let missing = f
        .panel
        .command(&["backup", "show", &name, "account", "999999"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not hold account 999999"));
    let bad = f
        .panel
        .command(&["backup", "show", &name, "tariff", "1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a kind"));
}

/// (blocks, references) of the catalog's object index.
fn index_size(f: &Fixture) -> (u64, u64) {
    let n = |sql: &str| f.db.scalar(sql).parse::<u64>().unwrap();
    (
        n("SELECT COUNT(*) FROM billmgrops_object_block"),
        n("SELECT COUNT(*) FROM billmgrops_copy_block"),
    )
}

#[test]
fn copies_of_unchanged_data_share_the_object_index() {
    let f = fixture(3000);
    let first = f.copy();
    let (blocks, refs) = index_size(&f);
    assert!(
        blocks > 4,
        "several blocks per kind at 3000 clients: {blocks}"
    );
    assert_eq!(blocks, refs);
    f.copy();
    f.copy();
    assert_eq!(
        index_size(&f),
        (blocks, 3 * refs),
        "three copies of the same data: one set of blocks"
    );
    // One renamed client changes the one block that holds it.
    f.db.exec("UPDATE account SET name = 'Renamed' WHERE id = (SELECT MIN(id) FROM (SELECT id FROM account) a)");
    f.copy();
    let (after, _) = index_size(&f);
    assert_eq!(after, blocks + 1, "only the changed block is new");
    let all = f.names("account", &[("p_cnt", "1")]);
    assert_eq!(
        all.value("p_elems"),
        f.db.scalar("SELECT COUNT(*) FROM account")
    );
    let renamed = f.names("account", &[("search", "renamed")]).rows();
    assert_eq!(cell(&renamed[0], "versions"), "4", "{renamed:?}");
    // Deleting copies prunes the blocks no copy holds any more.
    for _ in 0..4 {
        let id = f.db.scalar("SELECT MIN(id) FROM billmgrops_backup");
        let out = f
            .panel
            .call("backups.delete")
            .param("elid", &id)
            .param("sok", "ok")
            .run();
        assert!(out.ok(), "{}", out.text());
    }
    assert_eq!(index_size(&f), (0, 0));
    let _ = first;
}

#[test]
fn an_index_of_the_older_shape_is_moved_into_blocks() {
    let f = fixture(5);
    let id = f.copy();
    // The index as versions before 7 kept it: a row per object per copy.
    f.db.exec("DELETE FROM billmgrops_copy_block");
    f.db.exec("DELETE FROM billmgrops_object_block");
    f.db.exec(
        "CREATE TABLE billmgrops_object (backup INT NOT NULL, kind VARCHAR(16) NOT NULL,
         object_key VARCHAR(255) NOT NULL, name VARCHAR(255) NOT NULL,
         owner VARCHAR(255) NOT NULL DEFAULT '', owner_id BIGINT NULL,
         PRIMARY KEY (backup, kind, object_key))",
    );
    f.db.exec(&format!(
        "INSERT INTO billmgrops_object SELECT {id}, 'account', id, name, '', NULL FROM account"
    ));
    f.db.exec(&format!(
        "INSERT INTO billmgrops_object SELECT {id}, 'item', i.id, i.name, a.name, a.id
         FROM item i JOIN account a ON a.id = i.account"
    ));
    f.db.exec("DELETE FROM billmgrops_migration WHERE version >= 7");
    let clients = f.names("account", &[("p_cnt", "1000")]);
    assert_eq!(clients.value("p_elems"), "5", "{}", clients.text());
    let items = f.names("item", &[("p_cnt", "1000")]).rows();
    assert!(!items.is_empty());
    let expected = f.db.scalar(&format!(
        "SELECT a.name FROM item i JOIN account a ON a.id = i.account WHERE i.id = {}",
        cell(&items[0], "id")
    ));
    assert_eq!(cell(&items[0], "owner"), expected);
    assert_eq!(
        f.db.scalar(
            "SELECT COUNT(*) FROM information_schema.tables
             WHERE table_schema = DATABASE() AND table_name = 'billmgrops_object'"
        ),
        "0",
        "the older table is gone"
    );
}
