//! `billmgr-ops call` and the other commands, end to end.

use crate::harness::{binary, Panel, TestDb};

#[test]
fn call_prints_page_two_of_five_rows() {
    let db = TestDb::seeded(60);
    let out = Panel::new(&db)
        .cli(&["runningoperation", "p_cnt=5", "p_num=2"])
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.rows().len(), 5);
    assert_eq!(out.value("p_num"), "2");
}

#[test]
fn call_exits_1_on_an_error_document_and_2_on_bad_arguments() {
    let panel = Panel::with_url("mysql://root@127.0.0.1:1/none");
    let out = panel.cli(&["runningoperation.errorhistory"]).run();
    assert_eq!(out.code, Some(1));
    assert_eq!(out.error_type(), ("empty".into(), "elid".into()));
    let out = panel.cli(&["runningoperation", "p_cnt"]).run();
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("not KEY=VALUE"), "{}", out.stderr);
    let out = panel.cli(&["runningoperation", "--level", "16"]).run();
    assert_eq!(out.error_type().0, "access");
}

#[test]
fn call_reads_the_request_document_with_stdin_and_speaks_russian() {
    let db = TestDb::seeded(10);
    let panel = Panel::new(&db);
    let out = panel
        .cli(&["runningoperation", "--stdin", "--lang", "ru"])
        .stdin("<doc><tparams><p_cnt>1</p_cnt></tparams></doc>")
        .run();
    assert_eq!(out.rows().len(), 1);
    assert_eq!(out.doc().get_attr("lang"), Some("ru"));
}

#[test]
fn help_is_available_everywhere() {
    for args in [
        &["--help"][..],
        &["call", "--help"],
        &["migrate", "--help"],
        &["dev", "--help"],
        &["dev", "seed", "--help"],
        &["install", "--help"],
        &["uninstall", "--help"],
        &["status", "--help"],
    ] {
        let out = std::process::Command::new(binary())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}

#[test]
fn a_broken_config_still_answers_the_panel_with_a_document() {
    let panel = Panel::with_url("mysql://root@127.0.0.1:1/none");
    std::fs::write(
        panel.mgrdir().join("etc/billmgr-ops.conf"),
        "AdminLevel lots\n",
    )
    .unwrap();
    let out = panel.call("runningoperation").run();
    assert_eq!(out.code, Some(0));
    assert_eq!(out.error_type(), ("internal".into(), "config".into()));
    assert!(out.stderr.contains("AdminLevel lots"), "{}", out.stderr);
}

#[test]
fn output_cut_short_by_its_reader_ends_quietly() {
    use std::process::Stdio;
    let db = TestDb::seeded(60);
    let panel = Panel::new(&db);
    for args in [
        &["status", "--no-probe"][..],
        &["call", "runningoperation", "p_cnt=1000"][..],
    ] {
        // `| head -c 0`: the reader is gone before the first byte.
        let mut child = panel
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert!(
            out.status.success() || args[0] == "status",
            "{args:?}: {:?}",
            out.status
        );
    }
}
