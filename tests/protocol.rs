//! The panel protocol at the wire: exact environment and stdin in, one
//! well-formed document out, exit status 0, whatever the input.

use crate::harness::{Panel, TestDb};

#[test]
fn panel_mode_prints_the_rows_and_keeps_the_incoming_document() {
    let db = TestDb::seeded(40);
    let stdin = r#"<?xml version="1.0" encoding="UTF-8"?>
<doc lang="en" func="runningoperation" binary="/billmgr" host="https://billing.example.com">
  <tparams><func>runningoperation</func><out>xml</out></tparams>
  <metadata name="runningoperation" type="list" key="id"><coldata><col name="id"/></coldata></metadata>
  <messages name="runningoperation"><msg name="title">Running operations</msg></messages>
</doc>"#;
    let out = Panel::new(&db).call("runningoperation").stdin(stdin).run();
    assert_eq!(out.code, Some(0));
    let doc = out.doc();
    assert_eq!(doc.get_attr("binary"), Some("/billmgr"));
    assert!(
        doc.find("metadata").is_some()
            && doc.find("messages").is_some()
            && doc.find("tparams").is_some()
    );
    let expected: usize = db
        .scalar("SELECT COUNT(*) FROM runningoperation")
        .parse()
        .unwrap();
    assert!(expected > 0);
    assert_eq!(out.value("p_elems"), expected.to_string());
    assert_eq!(out.rows().len(), expected.min(100));
    assert!(out.stderr.is_empty(), "stderr: {}", out.stderr);
}

#[test]
fn function_comes_from_action_name_or_the_document() {
    let db = TestDb::seeded(5);
    let panel = Panel::new(&db);
    let out = panel
        .call("runningoperation")
        .env("PARAM_func", "")
        .env("ACTION_NAME", "runningoperation")
        .run();
    assert!(out.doc().find("p_elems").is_some(), "{}", out.stdout);
    let out = panel
        .call("runningoperation")
        .env("PARAM_func", "")
        .stdin("<doc func=\"runningoperation\"/>")
        .run();
    assert!(out.doc().find("p_elems").is_some(), "{}", out.stdout);
}

#[test]
fn values_only_under_tparams_count() {
    let db = TestDb::seeded(30);
    let panel = Panel::new(&db);
    panel.configure("ListPaging plugin\n");
    let out = panel
        .call("runningoperation")
        .stdin("<doc><tparams><p_cnt>2</p_cnt></tparams></doc>")
        .run();
    assert_eq!(out.rows().len(), 2);
    assert_eq!(out.value("p_cnt"), "2");
}

#[test]
fn a_user_level_call_gets_an_access_error() {
    let db = TestDb::seeded(3);
    let panel = Panel::new(&db);
    for level in ["16", "27", ""] {
        let out = panel
            .call("runningoperation")
            .level(level)
            .stdin("<doc func=\"runningoperation\"/>")
            .run();
        assert_eq!(out.code, Some(0));
        assert_eq!(
            out.error_type(),
            ("access".into(), "runningoperation".into()),
            "level {level:?}"
        );
        assert!(out.doc().find("elem").is_none());
    }
    // The configured admin level decides.
    std::fs::write(
        panel.mgrdir().join("etc/billmgr-ops.conf"),
        "AdminLevel 30\n",
    )
    .unwrap();
    let out = panel.call("runningoperation").level("29").run();
    assert_eq!(out.error_type().0, "access");
    let out = panel.call("runningoperation").level("30").run();
    assert!(out.doc().find("error").is_none(), "{}", out.stdout);
}

#[test]
fn broken_documents_get_an_xml_error() {
    // No database at all: bad input must be answered without one.
    let panel = Panel::with_url("mysql://root@127.0.0.1:1/none");
    for stdin in [
        &b"<doc"[..],
        b"<doc><elem></doc>",
        b"<a/><b/>",
        b"\xff\xfe<doc/>",
        b"<!DOCTYPE doc [<!ENTITY a 'aaaaaaaa'>]><doc>&a;</doc>",
    ] {
        let out = panel.call("runningoperation").stdin(stdin.to_vec()).run();
        assert_eq!(out.code, Some(0));
        assert_eq!(
            out.error_type().0,
            "xml",
            "stdin {:?}",
            String::from_utf8_lossy(stdin)
        );
    }
}

#[test]
fn an_oversized_document_is_refused() {
    let panel = Panel::with_url("mysql://root@127.0.0.1:1/none");
    let mut big = b"<doc>".to_vec();
    big.resize(17 * 1024 * 1024, b'x');
    big.extend_from_slice(b"</doc>");
    let out = panel.call("runningoperation").stdin(big).run();
    assert_eq!(out.code, Some(0));
    assert_eq!(out.error_type().0, "toolarge");
}

#[test]
fn a_byte_order_mark_and_an_empty_stdin_are_fine() {
    let db = TestDb::seeded(3);
    let panel = Panel::new(&db);
    let out = panel.call("runningoperation").stdin("\u{feff}<doc/>").run();
    assert!(out.doc().find("p_elems").is_some(), "{}", out.stdout);
    let out = panel.call("runningoperation").stdin("  \n").run();
    assert!(out.doc().find("p_elems").is_some(), "{}", out.stdout);
}

#[test]
fn unknown_function_missing_and_bad_ids_never_reach_the_database() {
    let panel = Panel::with_url("mysql://root@127.0.0.1:1/none");
    /// (function, parameters, expected (type, object))
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        (&'static str, &'static str),
    );
    let cases: &[Case] = &[
        ("nosuch.func", &[], ("unknownfunc", "func")),
        ("runningoperation.errorhistory", &[], ("empty", "elid")),
        (
            "runningoperation.errorhistory",
            &[("elid", "abc")],
            ("value", "elid"),
        ),
        (
            "runningoperation.errorhistory",
            &[("elid", "1 OR 1=1")],
            ("value", "elid"),
        ),
        (
            "runningoperation.errorhistory",
            &[("elid", "-5")],
            ("value", "elid"),
        ),
        (
            "runningoperation",
            &[("p_sort", "id; DROP TABLE item")],
            ("value", "p_sort"),
        ),
        ("runningoperation", &[("p_cnt", "many")], ("value", "p_cnt")),
        ("runningoperation", &[("p_num", "0")], ("value", "p_num")),
        (
            "runningoperation",
            &[("p_order", "random")],
            ("value", "p_order"),
        ),
    ];
    for (func, params, expected) in cases {
        let mut call = panel.call(func);
        for (k, v) in *params {
            call = call.param(k, v);
        }
        let out = call.run();
        assert_eq!(out.code, Some(0));
        assert_eq!(
            out.error_type(),
            (expected.0.to_string(), expected.1.to_string()),
            "{func} {params:?}"
        );
    }
    let long = "x".repeat(70 * 1024);
    let out = panel.call("runningoperation").param("comment", &long).run();
    assert_eq!(out.error_type(), ("toolong".into(), "comment".into()));
}

#[test]
fn an_unreachable_database_is_an_error_document() {
    let panel = Panel::with_url("mysql://root@127.0.0.1:1/none");
    let out = panel.call("runningoperation").run();
    assert_eq!(out.code, Some(0));
    assert_eq!(out.error_type().0, "db");
    let log = std::fs::read_to_string(panel.mgrdir().join("var/billmgr-ops.log")).unwrap();
    assert!(log.contains("cannot connect to the database"), "{log}");
    assert!(
        !out.stdout.contains("127.0.0.1:1"),
        "the address leaked to the panel"
    );
}

#[test]
fn a_silent_server_does_not_hang_the_call() {
    // Accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(1) {
            held.push(stream);
            std::thread::sleep(std::time::Duration::from_secs(8));
        }
    });
    let panel = Panel::with_url(&format!("mysql://root@127.0.0.1:{port}/none"));
    std::fs::write(
        panel.mgrdir().join("etc/billmgr-ops.conf"),
        "DBConnectTimeout 1\n",
    )
    .unwrap();
    let out = panel.call("runningoperation").run();
    assert_eq!(out.error_type().0, "db");
    let log = std::fs::read_to_string(panel.mgrdir().join("var/billmgr-ops.log")).unwrap();
    assert!(log.contains("handshake"), "{log}");
    drop(keep);
}

#[test]
fn an_internal_failure_shows_internal_and_logs_the_detail() {
    // A database without BILLmanager's tables: the query fails.
    let db = TestDb::empty();
    let panel = Panel::new(&db);
    let out = panel.call("runningoperation").run();
    assert_eq!(out.code, Some(0));
    assert_eq!(out.error_type().0, "internal");
    assert!(!out.stdout.contains("doesn't exist"));
    let log = std::fs::read_to_string(panel.mgrdir().join("var/billmgr-ops.log")).unwrap();
    assert!(
        log.contains("runningoperation: failed to count running operations"),
        "{log}"
    );
    assert!(
        log.contains(&format!("{}.runningoperation' doesn't exist", db.name)),
        "{log}"
    );
}

#[test]
fn errors_are_localized_from_the_cookie_param_or_document() {
    let panel = Panel::with_url("mysql://root@127.0.0.1:1/none");
    let out = panel
        .call("nosuch")
        .env("HTTP_COOKIE", "billmgrses5=x; billmgrlang5=billmgr:ru")
        .run();
    let err = out.error();
    assert_eq!(err.get_attr("lang"), Some("ru"));
    assert_eq!(
        err.find("msg").unwrap().text_content(),
        "Неизвестная функция «nosuch»"
    );
    let out = panel.call("nosuch").stdin("<doc lang=\"ru\"/>").run();
    assert_eq!(out.error().get_attr("lang"), Some("ru"));
    let out = panel
        .call("nosuch")
        .param("lang", "en")
        .stdin("<doc lang=\"ru\"/>")
        .run();
    assert_eq!(
        out.error().find("msg").unwrap().text_content(),
        "Unknown function \"nosuch\""
    );
    let params: Vec<_> = out
        .error()
        .find_all("param")
        .map(|p| p.get_attr("name").unwrap().to_string())
        .collect();
    assert_eq!(params, ["object", "value"]);
}

#[test]
fn the_log_names_time_pid_level_and_function() {
    let panel = Panel::with_url("mysql://root@127.0.0.1:1/none");
    let out = panel.call("runningoperation").level("16").run();
    assert_eq!(out.error_type().0, "access");
    let log = std::fs::read_to_string(panel.mgrdir().join("var/billmgr-ops.log")).unwrap();
    let line = log.lines().last().unwrap();
    // 2026-11-23 16:44:27 [8743] WARN runningoperation: access refused ...
    let parts: Vec<&str> = line.splitn(5, ' ').collect();
    assert_eq!(parts[0].len(), 10, "{line}");
    assert!(
        parts[2].starts_with('[') && parts[2].ends_with(']'),
        "{line}"
    );
    assert_eq!(parts[3], "WARN", "{line}");
    assert!(
        parts[4].starts_with("runningoperation: access refused"),
        "{line}"
    );
}
