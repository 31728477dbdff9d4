//! `runningoperation` and `runningoperation.errorhistory` against seeded data.

use mysql::prelude::Queryable;

use crate::harness::{cell, Panel, TestDb};

/// Every column of the list, as the manifest declares it.
const COLUMNS: &[&str] = &[
    "id",
    "desc",
    "item",
    "itemtype",
    "client",
    "cdate",
    "trycount",
    "processingmodule",
    "task",
    "status",
    "manual",
];

fn ids(rows: &[billmgr_ops::test_support::Element]) -> Vec<u64> {
    rows.iter()
        .map(|r| cell(r, "id").parse().unwrap())
        .collect()
}

#[test]
fn rows_carry_every_column_joined_from_billmanager_tables() {
    let db = TestDb::seeded(60);
    let out = Panel::new(&db)
        .call("runningoperation")
        .param("p_cnt", "1000")
        .run();
    let rows = out.rows();
    assert_eq!(
        rows.len().to_string(),
        db.scalar("SELECT COUNT(*) FROM runningoperation")
    );
    for row in &rows {
        let names: Vec<&str> = row.elements().map(|e| e.name.as_str()).collect();
        assert_eq!(names, COLUMNS);
    }
    // Check one row against the database, column by column.
    let row = &rows[0];
    let id = cell(row, "id");
    let expect = |sql: &str| db.scalar(&sql.replace("{id}", &id));
    assert_eq!(
        cell(row, "item"),
        expect("SELECT item FROM runningoperation WHERE id={id}")
    );
    assert_eq!(
        cell(row, "client"),
        expect("SELECT a.name FROM runningoperation ro JOIN item i ON i.id=ro.item JOIN account a ON a.id=i.account WHERE ro.id={id}")
    );
    assert_eq!(
        cell(row, "itemtype"),
        expect("SELECT t.intname FROM runningoperation ro JOIN item i ON i.id=ro.item JOIN pricelist p ON p.id=i.pricelist JOIN itemtype t ON t.id=p.itemtype WHERE ro.id={id}")
    );
    assert_eq!(
        cell(row, "processingmodule"),
        expect("SELECT pm.name FROM runningoperation ro JOIN processingmodule pm ON pm.id=ro.processingmodule WHERE ro.id={id}")
    );
    assert_eq!(
        cell(row, "trycount"),
        expect("SELECT trycount FROM runningoperation WHERE id={id}")
    );
    assert_eq!(
        cell(row, "cdate"),
        expect(
            "SELECT DATE_FORMAT(cdate, '%Y-%m-%d %H:%i:%s') FROM runningoperation WHERE id={id}"
        )
    );
    let item_name = expect(
        "SELECT i.name FROM runningoperation ro JOIN item i ON i.id=ro.item WHERE ro.id={id}",
    );
    assert!(
        cell(row, "desc").ends_with(&format!(": {item_name}")),
        "{}",
        cell(row, "desc")
    );
}

#[test]
fn status_is_a_message_and_rows_are_coloured_by_state() {
    let db = TestDb::seeded(150);
    let rows = Panel::new(&db)
        .call("runningoperation")
        .param("p_cnt", "10000")
        .run()
        .rows();
    let mut seen = std::collections::BTreeSet::new();
    for row in &rows {
        let status = cell(row, "status");
        let color = row.get_attr("color");
        let expected_color = match status.as_str() {
            "status_wait" => None,
            "status_run" => Some("green"),
            "status_error" => Some("red"),
            "status_stopped" => Some("yellow"),
            other => panic!("unexpected status {other}"),
        };
        assert_eq!(color, expected_color, "{status}");
        seen.insert(status);
    }
    assert_eq!(
        seen.len(),
        4,
        "seeded data should hold every state: {seen:?}"
    );
}

#[test]
fn the_panel_gets_every_row_and_pages_them_itself() {
    let db = TestDb::seeded(60);
    let panel = Panel::new(&db);
    let out = panel
        .call("runningoperation")
        .param("p_cnt", "5")
        .param("p_num", "2")
        .run();
    let total: usize = db
        .scalar("SELECT COUNT(*) FROM runningoperation")
        .parse()
        .unwrap();
    assert!(total > 10);
    assert_eq!(out.rows().len(), total, "every row the filter selects");
    assert_eq!(out.value("p_elems"), total.to_string());
    assert_eq!(
        (out.value("p_num"), out.value("p_cnt")),
        ("2".into(), "5".into()),
        "echoed"
    );
    // Without paging asked, none is echoed.
    let out = panel.call("runningoperation").run();
    assert!(out.doc().find("p_num").is_none() && out.doc().find("p_cnt").is_none());
    // At a terminal, `call` pages.
    let out = panel.cli(&["runningoperation", "p_cnt=5", "p_num=2"]).run();
    assert_eq!(out.rows().len(), 5);
}

#[test]
fn page_two_of_five() {
    let db = TestDb::seeded(60);
    let panel = Panel::new(&db);
    // The plugin pages when the config says so (a panel that does not).
    panel.configure("ListPaging plugin\n");
    let all = ids(&panel
        .call("runningoperation")
        .param("p_cnt", "10000")
        .run()
        .rows());
    let out = panel
        .call("runningoperation")
        .param("p_cnt", "5")
        .param("p_num", "2")
        .run();
    assert_eq!(ids(&out.rows()), all[5..10]);
    assert_eq!(out.value("p_num"), "2");
    assert_eq!(out.value("p_cnt"), "5");
    assert_eq!(out.value("p_elems"), all.len().to_string());
    // Past the end: no rows, the total still right.
    let out = panel
        .call("runningoperation")
        .param("p_cnt", "5")
        .param("p_num", "999")
        .run();
    assert!(out.rows().is_empty());
    assert_eq!(out.value("p_elems"), all.len().to_string());
}

/// `a <= b` as the list sorts: NULL (empty) first, numbers by value, text
/// in the database's own collation.
fn le(conn: &mut mysql::Conn, a: &str, b: &str, numeric: bool) -> bool {
    if a.is_empty() {
        return true;
    }
    if b.is_empty() {
        return false;
    }
    if numeric {
        return a.parse::<f64>().unwrap() <= b.parse::<f64>().unwrap();
    }
    // The collation the billing tables have here: utf8mb4_general_ci on
    // MariaDB, utf8mb4_0900_ai_ci on MySQL 8 and later (where `Ł` sorts
    // with `L`, not after `Z`).
    let collation: String = conn
        .query_first(
            "SELECT COLLATION_NAME FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'account' AND COLUMN_NAME = 'name'",
        )
        .unwrap()
        .unwrap();
    assert!(
        collation
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "{collation}"
    );
    let r: Option<i64> = conn
        .exec_first(
            format!(
                "SELECT CONVERT(? USING utf8mb4) COLLATE {collation} <= CONVERT(? USING utf8mb4) COLLATE {collation}"
            ),
            (a, b),
        )
        .unwrap();
    r == Some(1)
}

#[test]
fn every_column_sorts_both_ways_in_sql() {
    let db = TestDb::seeded(120);
    let panel = Panel::new(&db);
    let mut conn = db.conn();
    for column in COLUMNS {
        let fetch = |order: &str| {
            panel
                .call("runningoperation")
                .param("p_cnt", "10000")
                .param("p_sort", column)
                .param("p_order", order)
                .run()
                .rows()
        };
        let asc = fetch("asc");
        let desc = fetch("desc");
        // Ties are broken by id in the same direction: desc is asc reversed.
        let mut reversed = ids(&asc);
        reversed.reverse();
        assert_eq!(ids(&desc), reversed, "p_sort={column}");
        if *column == "desc" {
            continue; // sorts by operation type then service name, not by the text shown
        }
        let numeric = matches!(*column, "id" | "item" | "trycount" | "task");
        for pair in asc.windows(2) {
            let (a, b) = (cell(&pair[0], column), cell(&pair[1], column));
            assert!(
                le(&mut conn, &a, &b, numeric),
                "p_sort={column}: {a:?} before {b:?}"
            );
        }
        let out = panel
            .call("runningoperation")
            .param("p_sort", column)
            .param("p_cnt", "3")
            .run();
        assert_eq!(out.value("p_sort"), *column);
        assert_eq!(out.value("p_order"), "asc");
    }
}

#[test]
fn errorhistory_lists_attempts_newest_first() {
    let db = TestDb::seeded(100);
    let panel = Panel::new(&db);
    let op = db.scalar(
        "SELECT runningoperation FROM billmgrops_attempt GROUP BY runningoperation ORDER BY COUNT(*) DESC, runningoperation LIMIT 1",
    );
    let count = db.scalar(&format!(
        "SELECT COUNT(*) FROM billmgrops_attempt WHERE runningoperation={op}"
    ));
    let out = panel
        .call("runningoperation.errorhistory")
        .param("elid", &op)
        .run();
    let rows = out.rows();
    assert_eq!(rows.len().to_string(), count);
    assert!(rows.len() >= 2);
    let got = ids(&rows);
    let mut sorted = got.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(got, sorted, "newest first");
    for row in &rows {
        let names: Vec<&str> = row.elements().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["id", "createdate", "item", "task"]);
        assert_eq!(
            cell(row, "item"),
            db.scalar(&format!("SELECT item FROM runningoperation WHERE id={op}"))
        );
    }
    // Sorted by date ascending when asked; paging applies (where the
    // plugin pages).
    panel.configure("ListPaging plugin\n");
    let out = panel
        .call("runningoperation.errorhistory")
        .param("elid", &op)
        .param("p_sort", "createdate")
        .param("p_cnt", "1")
        .run();
    assert_eq!(out.rows().len(), 1);
    assert_eq!(out.value("p_elems"), count);
    assert_eq!(ids(&out.rows())[0], *got.last().unwrap());
    // Reached as a sublist with plid.
    let out = panel
        .call("runningoperation.errorhistory")
        .param("plid", &op)
        .run();
    assert_eq!(out.rows().len().to_string(), count);
}

#[test]
fn errorhistory_of_an_operation_without_attempts_is_empty_and_of_an_unknown_one_is_missed() {
    let db = TestDb::seeded(100);
    let panel = Panel::new(&db);
    let fresh = db.scalar("SELECT id FROM runningoperation WHERE trycount = 0 ORDER BY id LIMIT 1");
    let out = panel
        .call("runningoperation.errorhistory")
        .param("elid", &fresh)
        .run();
    assert!(out.rows().is_empty());
    assert_eq!(out.value("p_elems"), "0");
    let out = panel
        .call("runningoperation.errorhistory")
        .param("elid", "987654")
        .run();
    assert_eq!(
        out.error_type(),
        ("missed".into(), "runningoperation".into())
    );
    // History outlives its operation.
    let op = db.scalar("SELECT MIN(runningoperation) FROM billmgrops_attempt");
    db.exec(&format!("DELETE FROM runningoperation WHERE id={op}"));
    let out = panel
        .call("runningoperation.errorhistory")
        .param("elid", &op)
        .run();
    assert!(!out.rows().is_empty());
}

#[test]
fn injection_shaped_values_are_refused_and_change_nothing() {
    let db = TestDb::seeded(20);
    let before = db.checksum("runningoperation");
    let panel = Panel::new(&db);
    for (name, value) in [
        ("p_sort", "id DESC; DELETE FROM runningoperation; --"),
        ("p_order", "asc, (SELECT SLEEP(5))"),
        ("p_cnt", "5 UNION SELECT 1"),
    ] {
        let out = panel.call("runningoperation").param(name, value).run();
        assert_eq!(out.error_type(), ("value".into(), name.into()));
    }
    let out = panel
        .call("runningoperation.errorhistory")
        .param("elid", "1' OR '1'='1")
        .run();
    assert_eq!(out.error_type(), ("value".into(), "elid".into()));
    assert_eq!(db.checksum("runningoperation"), before);
}
