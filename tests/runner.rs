//! The running operations module end to end: the panel functions, the real
//! runner processes and the scheduler, with the test processing modules of
//! tests/fixtures/processing (succeed, fail, crash, flood, hang ...).

use crate::harness::{add_operation, cell, wait_until, Output, Panel, TestDb};

struct Fixture {
    db: TestDb,
    panel: Panel,
}

fn fixture() -> Fixture {
    let db = TestDb::seeded(20);
    let panel = Panel::new(&db).with_modules().with_panel_api();
    // A tick makes one pass here; the tests of staying ask for it.
    panel.configure("SchedulerStay 0\n");
    Fixture { db, panel }
}

impl Fixture {
    /// A new operation `open` on a service handled by test module `module`.
    fn operation(&self, module: &str) -> u64 {
        add_operation(&self.db, module)
    }

    fn call(&self, func: &str, elid: &str) -> Output {
        self.panel.call(func).param("elid", elid).run()
    }

    /// The runner's status of an operation, or "gone".
    fn status(&self, id: u64) -> String {
        if self.db.scalar(&format!(
            "SELECT COUNT(*) FROM runningoperation WHERE id={id}"
        )) == "0"
        {
            return "gone".into();
        }
        self.db.scalar(&format!(
            "SELECT COALESCE((SELECT status FROM billmgrops_operation WHERE runningoperation={id}), 'wait')"
        ))
    }

    fn field(&self, id: u64, column: &str) -> String {
        self.db.scalar(&format!(
            "SELECT {column} FROM runningoperation WHERE id={id}"
        ))
    }

    /// The newest task naming operation `id` (made by the panel).
    fn task_of(&self, id: u64) -> String {
        self.db.scalar(&format!(
            "SELECT COALESCE(MAX(id), 0) FROM task WHERE runningoperation={id}"
        ))
    }

    fn last_attempt(&self, id: u64, column: &str) -> String {
        self.db.scalar(&format!(
            "SELECT {column} FROM billmgrops_attempt WHERE runningoperation={id} ORDER BY id DESC LIMIT 1"
        ))
    }

    /// Runs one attempt in the foreground, as start does in the background.
    fn run_attempt(&self, id: u64) -> std::process::Output {
        self.panel
            .command(&["run-operation", &id.to_string()])
            .output()
            .unwrap()
    }

    /// Waits until the operation's attempt is not running any more and its
    /// record is complete.
    fn settled(&self, id: u64) {
        wait_until(60, &format!("operation {id} to settle"), || {
            let s = self.status(id);
            s != "run" && s != "wait" && self.last_attempt(id, "outcome") != "interrupted"
        });
    }

    /// The pids pmhang recorded: the module and its child.
    fn hang_pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.panel.mgrdir().join("var/pmhang.pids"))
            .unwrap_or_default()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect()
    }
}

fn alive(pid: i32) -> bool {
    // A zombie is dead for our purpose.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split_whitespace().nth(2).is_none_or(|state| state != "Z"))
        .unwrap_or(false)
}

#[test]
fn a_successful_attempt_removes_the_operation_and_keeps_its_history() {
    let f = fixture();
    let id = f.operation("pmok");
    let out = f.call("runningoperation.start", &id.to_string());
    assert!(out.doc().find("ok").is_some(), "{}", out.stdout);
    wait_until(60, "the operation to finish", || f.status(id) == "gone");
    let runs = f.panel.module_runs();
    let pm =
        f.db.scalar("SELECT MAX(id) FROM processingmodule WHERE module='pmok'");
    let item = f.db.scalar("SELECT MIN(id) FROM item");
    assert_eq!(
        runs,
        [format!(
            "pmok --command open --item {item} --module {pm} --runningoperation {id}"
        )]
    );
    assert_eq!(f.last_attempt(id, "outcome"), "ok");
    assert_eq!(f.last_attempt(id, "exit_status"), "exit status: 0");
    let history = f.call("runningoperation.errorhistory", &id.to_string());
    assert_eq!(history.rows().len(), 1);
}

#[test]
fn the_list_shows_a_started_operation_running_at_once() {
    let f = fixture();
    let id = f.operation("pmhang");
    f.call("runningoperation.start", &id.to_string());
    let rows = f
        .panel
        .call("runningoperation")
        .param("p_cnt", "1000")
        .run()
        .rows();
    let row = rows
        .iter()
        .find(|r| cell(r, "id") == id.to_string())
        .unwrap();
    assert_eq!(cell(row, "status"), "status_run");
    assert_eq!(row.get_attr("color"), Some("green"));
    f.call("runningoperation.stop", &id.to_string());
    f.settled(id);
}

#[test]
fn a_failure_is_counted_recorded_and_retried_later() {
    let f = fixture();
    let id = f.operation("pmfail");
    assert!(f.run_attempt(id).status.success());
    assert_eq!(f.status(id), "error");
    assert_eq!(f.field(id, "trycount"), "1");
    assert_eq!(f.field(id, "manual"), "off");
    assert!(f
        .field(id, "errorxml")
        .contains(r#"<error type="connect" object="vmmanager">"#));
    let delay = |f: &Fixture| {
        f.db.scalar(&format!(
            // From the end of the last attempt (its start plus its duration),
            // so the figure does not depend on how fast this test runs.
            "SELECT TIMESTAMPDIFF(SECOND, a.createdate + INTERVAL CEIL(a.duration_ms / 1000) SECOND, s.next_try)
             FROM billmgrops_operation s
             JOIN billmgrops_attempt a ON a.id = (SELECT MAX(id) FROM billmgrops_attempt WHERE runningoperation = {id})
             WHERE s.runningoperation = {id}"
        ))
        .parse::<i64>()
        .unwrap()
    };
    assert!(
        (299..=301).contains(&delay(&f)),
        "first retry after 5 minutes, got {}s",
        delay(&f)
    );
    assert!(f.run_attempt(id).status.success());
    assert_eq!(f.field(id, "trycount"), "2");
    assert!(
        (599..=601).contains(&delay(&f)),
        "second retry after 10 minutes, got {}s",
        delay(&f)
    );

    // The attempt in full, as errorhistory.showlog shows it.
    let attempt = f.last_attempt(id, "id");
    let doc = f
        .panel
        .call("errorhistory.showlog")
        .param("elid", &attempt)
        .param("plid", &id.to_string())
        .run()
        .doc();
    let v = |name: &str| doc.find(name).map(|e| e.text_content()).unwrap_or_default();
    assert!(
        v("command").ends_with(&format!(
            "/processing/pmfail --command open --item {} --module {} --runningoperation {id}",
            f.field(id, "item"),
            f.field(id, "processingmodule")
        )),
        "{}",
        v("command")
    );
    assert_eq!(v("exit_status"), "exit status: 1");
    assert_eq!(v("outcome"), "Failed");
    assert_eq!(
        (
            v("error_type").as_str(),
            v("error_object").as_str(),
            v("error_value").as_str()
        ),
        ("connect", "vmmanager", "https://vm.example.net")
    );
    assert_eq!(v("error_msg"), "Connection timed out");
    assert!(v("stdout").contains("<error type=\"connect\""));
    assert_eq!(v("stderr"), "connecting to https://vm.example.net ...\n");
    assert!(v("duration").ends_with(" s"));
    let missing = f
        .panel
        .call("errorhistory.showlog")
        .param("elid", "99999999")
        .run();
    assert_eq!(missing.error_type(), ("missed".into(), "attempt".into()));
}

#[test]
fn an_error_document_with_exit_zero_is_a_failure() {
    let f = fixture();
    let id = f.operation("pmerrorzero");
    f.run_attempt(id);
    assert_eq!(f.status(id), "error");
    assert_eq!(f.last_attempt(id, "error_type"), "exists");
    assert_eq!(f.last_attempt(id, "error_value"), "client7");
}

#[test]
fn the_last_allowed_failure_turns_the_operation_manual_with_one_task() {
    let f = fixture();
    let id = f.operation("pmfail");
    f.db.exec(&format!(
        "UPDATE runningoperation SET trycount = 9 WHERE id = {id}"
    ));
    f.run_attempt(id);
    assert_eq!(f.field(id, "trycount"), "10");
    assert_eq!(f.field(id, "manual"), "on");
    let task = f.task_of(id);
    assert_eq!(
        f.db.scalar(&format!(
            "SELECT runningoperation FROM task WHERE id = {task}"
        )),
        id.to_string()
    );
    // Made by the panel: its type from task.gettype, no row written here.
    assert_eq!(
        f.db.scalar(&format!("SELECT type FROM task WHERE id = {task}")),
        "postopen"
    );
    let calls = f.panel.panel_calls();
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("task.gettype operation=open item="))
            && calls.iter().any(|c| c.starts_with("task.edit sok=ok")
                && c.contains(&format!("runningoperation={id}"))),
        "{calls:?}"
    );
    assert_eq!(
        f.db.scalar(&format!(
            "SELECT next_try IS NULL FROM billmgrops_operation WHERE runningoperation = {id}"
        )),
        "1"
    );
    // Manual now: the scheduler leaves it alone, an administrator may still start it.
    let tick = f.panel.command(&["cron"]).output().unwrap();
    assert!(tick.status.success());
    assert_eq!(
        f.db.scalar(&format!(
            "SELECT COUNT(*) FROM billmgrops_attempt WHERE runningoperation = {id}"
        )),
        "1"
    );
    f.run_attempt(id);
    assert_eq!(f.field(id, "trycount"), "11");
    assert_eq!(
        f.db.scalar(&format!(
            "SELECT COUNT(*) FROM task WHERE runningoperation = {id}"
        )),
        "1",
        "no second task"
    );
}

#[test]
fn a_crash_is_a_named_signal() {
    let f = fixture();
    let id = f.operation("pmcrash");
    f.run_attempt(id);
    assert_eq!(f.last_attempt(id, "exit_status"), "signal: 11 (SIGSEGV)");
    assert_eq!(f.last_attempt(id, "outcome"), "error");
    assert_eq!(f.last_attempt(id, "error_type"), "exit");
    assert_eq!(f.last_attempt(id, "stderr"), "about to crash\n");
}

#[test]
fn a_flood_of_output_keeps_only_the_tail() {
    let f = fixture();
    f.panel.configure("OutputLimit 4096\n");
    let id = f.operation("pmflood");
    f.run_attempt(id);
    let stdout = f.last_attempt(id, "stdout");
    assert!(stdout.len() < 4096 + 100, "{} bytes kept", stdout.len());
    assert!(stdout.ends_with("999999\n1000000\nLAST LINE\n"));
    // seq 1 1000000 prints 6,888,896 bytes, then 10 for the last line.
    let cut = 6_888_896 + 10 - 4096;
    assert!(
        stdout.starts_with(&format!("[... {cut} earlier bytes not kept ...]")),
        "{}",
        &stdout[..60]
    );
    assert_eq!(f.last_attempt(id, "exit_status"), "exit status: 2");
}

#[test]
fn a_missing_or_not_executable_module_is_a_recorded_failure() {
    let f = fixture();
    let id = f.operation("pmnosuch");
    assert!(f.run_attempt(id).status.success());
    assert_eq!(f.status(id), "error");
    assert_eq!(f.last_attempt(id, "error_type"), "nostart");
    assert!(
        f.last_attempt(id, "error_msg")
            .contains("processing/pmnosuch"),
        "{}",
        f.last_attempt(id, "error_msg")
    );
    let module = f.panel.mgrdir().join("processing/pmok");
    std::fs::set_permissions(&module, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let id = f.operation("pmok");
    f.run_attempt(id);
    assert_eq!(f.status(id), "error");
    assert!(
        f.last_attempt(id, "error_msg")
            .contains("Permission denied"),
        "{}",
        f.last_attempt(id, "error_msg")
    );
    // A module name that is not a plain file name never runs.
    let id = f.operation("../../bin/true");
    f.run_attempt(id);
    assert_eq!(f.last_attempt(id, "error_type"), "nostart");
}

#[test]
fn a_timeout_ends_the_module_and_its_children() {
    let f = fixture();
    f.panel.configure("OperationTimeout 1\n");
    let id = f.operation("pmhang");
    f.run_attempt(id);
    assert_eq!(f.last_attempt(id, "outcome"), "timeout");
    assert_eq!(f.status(id), "error");
    let pids = f.hang_pids();
    assert_eq!(pids.len(), 2);
    wait_until(10, "the hung module and its child to be gone", || {
        !pids.iter().any(|p| alive(*p))
    });
}

#[test]
fn stop_ends_a_hanging_module_and_its_children() {
    let f = fixture();
    let id = f.operation("pmhang");
    f.call("runningoperation.start", &id.to_string());
    wait_until(30, "the module to start", || f.hang_pids().len() == 2);
    let pids = f.hang_pids();
    assert!(pids.iter().all(|p| alive(*p)));
    let out = f.call("runningoperation.stop", &id.to_string());
    assert!(out.doc().find("ok").is_some(), "{}", out.stdout);
    assert_eq!(f.field(id, "manual"), "on");
    f.settled(id);
    assert_eq!(f.status(id), "stopped");
    assert_eq!(f.last_attempt(id, "outcome"), "stopped");
    wait_until(10, "the module and its child to be gone", || {
        !pids.iter().any(|p| alive(*p))
    });
    // Stopped and manual: the scheduler does not start it again.
    f.panel.command(&["cron"]).output().unwrap();
    assert_eq!(f.status(id), "stopped");
    // Switching it back to automatic hands it to the scheduler again.
    let out = f
        .panel
        .call("runningoperation.edit")
        .param("sok", "ok")
        .param("elid", &id.to_string())
        .param("intname", "open")
        .param("item", &f.field(id, "item"))
        .param("trycount", "0")
        .param("manual", "off")
        .run();
    assert!(out.doc().find("ok").is_some(), "{}", out.stdout);
    assert_eq!(f.status(id), "wait");
}

#[test]
fn two_concurrent_starts_run_the_module_once() {
    let f = fixture();
    let id = f.operation("pmslow");
    let spawn = || {
        f.panel
            .command(&["call", "runningoperation.start", &format!("elid={id}")])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("<ok/>") || text.contains("type=\"running\""),
            "{text}"
        );
    }
    wait_until(60, "the operation to finish", || f.status(id) == "gone");
    // Both Starts have returned, so every runner they started is running
    // or gone; once none is left, no other attempt can come.
    wait_until(60, "every runner of the operation to exit", || {
        runners_of(&f.panel, id) == 0
    });
    assert_eq!(
        f.panel.module_runs().len(),
        1,
        "{:?}",
        f.panel.module_runs()
    );
}

#[test]
fn a_start_while_an_attempt_runs_is_a_typed_error() {
    let f = fixture();
    let id = f.operation("pmhang");
    f.call("runningoperation.start", &id.to_string());
    wait_until(30, "the module to start", || f.hang_pids().len() == 2);
    let out = f.call("runningoperation.start", &id.to_string());
    assert_eq!(
        out.error_type(),
        ("running".into(), "runningoperation".into())
    );
    assert!(out
        .error()
        .find("msg")
        .unwrap()
        .text_content()
        .contains(&id.to_string()));
    // run-operation by hand refuses too, with its own exit status.
    assert_eq!(f.run_attempt(id).status.code(), Some(3));
    f.call("runningoperation.stop", &id.to_string());
    f.settled(id);
    assert_eq!(f.panel.module_runs().len(), 1);
}

#[test]
fn delete_stops_a_running_operation_first_and_keeps_the_history() {
    let f = fixture();
    let id = f.operation("pmhang");
    f.call("runningoperation.start", &id.to_string());
    wait_until(30, "the module to start", || f.hang_pids().len() == 2);
    let pids = f.hang_pids();
    let out = f.call("runningoperation.delete", &id.to_string());
    assert!(out.doc().find("ok").is_some(), "{}", out.stdout);
    assert_eq!(f.status(id), "gone");
    wait_until(10, "the module and its child to be gone", || {
        !pids.iter().any(|p| alive(*p))
    });
    wait_until(10, "the attempt record", || {
        f.last_attempt(id, "outcome") == "stopped"
    });
    let history = f.call("runningoperation.errorhistory", &id.to_string());
    assert_eq!(history.rows().len(), 1);
}

#[test]
fn group_actions_with_one_bad_id_change_nothing() {
    let f = fixture();
    let a = f.operation("pmok");
    let b = f.operation("pmfail");
    let snapshot = |f: &Fixture| {
        (
            f.db.checksum("runningoperation"),
            f.db.checksum("billmgrops_operation"),
            f.db.scalar("SELECT COUNT(*) FROM task"),
        )
    };
    let before = snapshot(&f);
    for func in [
        "runningoperation.delete",
        "runningoperation.stop",
        "runningoperation.start",
        "runningoperation.taskcreate",
    ] {
        let out = f.call(func, &format!("{a}, 99999999, {b}"));
        assert_eq!(
            out.error_type(),
            ("missed".into(), "runningoperation".into()),
            "{func}"
        );
        assert_eq!(cell(&out.error(), "param"), "runningoperation");
        assert!(
            out.error()
                .find("msg")
                .unwrap()
                .text_content()
                .contains("99999999"),
            "{func}"
        );
        assert_eq!(snapshot(&f), before, "{func} changed something");
        let out = f.call(func, &format!("{a}, x"));
        assert_eq!(out.error_type(), ("value".into(), "elid".into()), "{func}");
    }
    assert!(f.panel.module_runs().is_empty());
}

#[test]
fn group_actions_act_on_every_id() {
    let f = fixture();
    let (a, b) = (f.operation("pmfail"), f.operation("pmfail"));
    let both = format!("{a}, {b}");
    let out = f.call("runningoperation.taskcreate", &both);
    assert!(out.doc().find("ok").is_some(), "{}", out.stdout);
    for id in [a, b] {
        let task = f.task_of(id);
        assert_eq!(
            f.db.scalar(&format!(
                "SELECT runningoperation FROM task WHERE id={task}"
            )),
            id.to_string()
        );
    }
    f.call("runningoperation.taskcreate", &both);
    assert_eq!(
        f.db.scalar(&format!(
            "SELECT COUNT(*) FROM task WHERE runningoperation IN ({both})"
        )),
        "2"
    );
    f.call("runningoperation.start", &both);
    for id in [a, b] {
        f.settled(id);
        assert_eq!(f.field(id, "trycount"), "1");
    }
    f.call("runningoperation.stop", &both);
    for id in [a, b] {
        assert_eq!(
            (f.status(id), f.field(id, "manual")),
            ("stopped".into(), "on".into())
        );
    }
    f.call("runningoperation.delete", &both);
    for id in [a, b] {
        assert_eq!(f.status(id), "gone");
    }
    // Tasks outlive their operations.
    assert_eq!(
        f.db.scalar(&format!(
            "SELECT COUNT(*) FROM task WHERE runningoperation IN ({both})"
        )),
        "2"
    );
}

#[test]
fn edit_views_creates_and_saves() {
    let f = fixture();
    let id = f.operation("pmfail");
    f.db.exec(&format!(
        "INSERT INTO billmgrops_operation (runningoperation, comment) VALUES ({id}, 'call the DC')"
    ));
    let doc = f.call("runningoperation.edit", &id.to_string()).doc();
    let v = |name: &str| doc.find(name).map(|e| e.text_content()).unwrap_or_default();
    assert_eq!(
        (v("intname"), v("manual"), v("comment")),
        ("open".into(), "off".into(), "call the DC".into())
    );
    assert_eq!(
        v("cdate"),
        f.db.scalar(&format!(
            "SELECT DATE_FORMAT(cdate, '%Y-%m-%d %H:%i:%s') FROM runningoperation WHERE id={id}"
        ))
    );
    let intnames: Vec<String> = doc
        .find_all("slist")
        .find(|s| s.get_attr("name") == Some("intname"))
        .unwrap()
        .find_all("val")
        .map(|v| v.get_attr("key").unwrap().to_string())
        .collect();
    assert!(intnames.contains(&"suspend".to_string()));

    let item = f.db.scalar("SELECT MAX(id) FROM item");
    let create = |intname: &str, item: &str| {
        f.panel
            .call("runningoperation.edit")
            .param("sok", "ok")
            .param("intname", intname)
            .param("item", item)
            .param("comment", "созданo вручную")
            .run()
    };
    let before = f.db.scalar("SELECT COUNT(*) FROM runningoperation");
    assert_eq!(
        create("open", "99999999").error_type(),
        ("missed".into(), "item".into())
    );
    assert_eq!(
        create("format_disk", &item).error_type(),
        ("value".into(), "intname".into())
    );
    assert_eq!(
        create("open'; DROP TABLE item; --", &item).error_type(),
        ("value".into(), "intname".into())
    );
    assert_eq!(f.db.scalar("SELECT COUNT(*) FROM runningoperation"), before);
    assert!(create("suspend", &item).doc().find("ok").is_some());
    let new = f.db.scalar("SELECT MAX(id) FROM runningoperation");
    assert_eq!(f.db.scalar(&format!("SELECT CONCAT(intname, ' ', item, ' ', manual, ' ', cdate IS NOT NULL) FROM runningoperation WHERE id={new}")), format!("suspend {item} off 1"));

    let out = f
        .panel
        .call("runningoperation.edit")
        .param("sok", "ok")
        .param("elid", &id.to_string())
        .param("intname", "resume")
        .param("item", &item)
        .param("trycount", "3")
        .param("manual", "on")
        .param("comment", "checked")
        .run();
    assert!(out.doc().find("ok").is_some(), "{}", out.stdout);
    assert_eq!(f.db.scalar(&format!("SELECT CONCAT(intname, ' ', item, ' ', trycount, ' ', manual) FROM runningoperation WHERE id={id}")), format!("resume {item} 3 on"));
    let bad = f
        .panel
        .call("runningoperation.edit")
        .param("sok", "ok")
        .param("elid", "99999999")
        .param("intname", "open")
        .param("item", &item)
        .run();
    assert_eq!(
        bad.error_type(),
        ("missed".into(), "runningoperation".into())
    );
    let bad = f
        .panel
        .call("runningoperation.edit")
        .param("sok", "ok")
        .param("elid", &id.to_string())
        .param("intname", "open")
        .param("item", &item)
        .param("trycount", "-1")
        .run();
    assert_eq!(bad.error_type(), ("value".into(), "trycount".into()));
}

#[test]
fn filters_are_kept_per_administrator_and_are_data_not_sql() {
    let f = fixture();
    let count = |user: &str| {
        f.panel
            .call("runningoperation")
            .env("AUTH_USER", user)
            .param("p_cnt", "1000")
            .run()
    };
    let all = count("admin").value("p_elems");
    let set = |params: &[(&str, &str)]| {
        let mut c = f.panel.call("runningoperation.filter").param("sok", "ok");
        for (k, v) in params {
            c = c.param(k, v);
        }
        c.run()
    };
    assert!(set(&[("status", "error")]).doc().find("ok").is_some());
    let out = count("admin");
    let expected = f.db.scalar("SELECT COUNT(*) FROM runningoperation ro JOIN billmgrops_operation s ON s.runningoperation = ro.id WHERE s.status = 'error'");
    assert_eq!(out.value("p_elems"), expected);
    assert!(out
        .rows()
        .iter()
        .all(|r| cell(r, "status") == "status_error"));
    assert_eq!(
        count("other_admin").value("p_elems"),
        all,
        "another administrator's list is unfiltered"
    );
    // The form shows the saved filter.
    let form = f.panel.call("runningoperation.filter").run().doc();
    assert_eq!(form.find("status").unwrap().text_content(), "error");
    // Injection-shaped text is matched literally.
    assert!(set(&[("client", "%' OR 1=1 --")])
        .doc()
        .find("ok")
        .is_some());
    assert_eq!(count("admin").value("p_elems"), "0");
    assert!(set(&[("client", "_")]).doc().find("ok").is_some());
    assert_eq!(
        count("admin").value("p_elems"),
        "0",
        "LIKE wildcards are literal"
    );
    assert_eq!(
        set(&[("cdate_from", "yesterday")]).error_type(),
        ("value".into(), "cdate_from".into())
    );
    assert_eq!(
        set(&[("status", "bogus")]).error_type(),
        ("value".into(), "status".into())
    );
    // Dates, types and modules.
    assert!(
        set(&[("cdate_from", "2000-01-01"), ("cdate_to", "2000-12-31")])
            .doc()
            .find("ok")
            .is_some()
    );
    assert_eq!(count("admin").value("p_elems"), "0");
    let pm =
        f.db.scalar("SELECT MIN(processingmodule) FROM runningoperation");
    assert!(set(&[("processingmodule", &pm), ("manual", "off")])
        .doc()
        .find("ok")
        .is_some());
    let expected = f.db.scalar(&format!(
        "SELECT COUNT(*) FROM runningoperation WHERE processingmodule = {pm} AND manual = 'off'"
    ));
    assert_eq!(count("admin").value("p_elems"), expected);
    // Reset.
    assert!(set(&[("clicked_button", "reset")])
        .doc()
        .find("ok")
        .is_some());
    assert_eq!(count("admin").value("p_elems"), all);
    assert_eq!(f.db.scalar("SELECT COUNT(*) FROM billmgrops_filter"), "0");
}

#[test]
fn setfilter_shows_one_clients_operations() {
    let f = fixture();
    let account = f.db.scalar("SELECT i.account FROM runningoperation ro JOIN item i ON i.id = ro.item GROUP BY i.account ORDER BY COUNT(*) DESC LIMIT 1");
    let out = f.call("runningoperation.setfilter", &account);
    let ok = out.doc().find("ok").cloned().unwrap();
    assert_eq!(
        (ok.get_attr("type"), ok.text_content().as_str()),
        (Some("list"), "func=runningoperation")
    );
    let list = f
        .panel
        .call("runningoperation")
        .param("p_cnt", "1000")
        .run();
    let expected = f.db.scalar(&format!("SELECT COUNT(*) FROM runningoperation ro JOIN item i ON i.id = ro.item WHERE i.account = {account}"));
    assert_eq!(list.value("p_elems"), expected);
    assert_eq!(
        f.call("runningoperation.setfilter", "99999999")
            .error_type(),
        ("missed".into(), "account".into())
    );
}

#[test]
fn the_scheduler_starts_what_is_due_within_its_bounds() {
    let f = fixture();
    f.db.exec("DELETE FROM runningoperation");
    f.panel.configure("Concurrency 2\n");
    let due = [
        f.operation("pmhang"),
        f.operation("pmhang"),
        f.operation("pmhang"),
    ];
    let manual = f.operation("pmok");
    f.db.exec(&format!(
        "UPDATE runningoperation SET manual = 'on' WHERE id = {manual}"
    ));
    let later = f.operation("pmok");
    f.db.exec(&format!("INSERT INTO billmgrops_operation (runningoperation, status, next_try) VALUES ({later}, 'error', NOW() + INTERVAL 1 HOUR)"));

    // Maintenance mode: nothing starts.
    std::fs::write(f.panel.mgrdir().join("etc/billmgr.DoNothing"), "").unwrap();
    let tick = f.panel.command(&["cron"]).output().unwrap();
    assert!(String::from_utf8_lossy(&tick.stderr).contains("maintenance"));
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM billmgrops_operation WHERE status = 'run'"),
        "0"
    );
    std::fs::remove_file(f.panel.mgrdir().join("etc/billmgr.DoNothing")).unwrap();

    assert!(f
        .panel
        .command(&["cron"])
        .output()
        .unwrap()
        .status
        .success());
    let attempts = format!(
        "SELECT COUNT(*) FROM billmgrops_attempt WHERE runningoperation IN ({})",
        due.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    wait_until(30, "two attempts to run", || f.db.scalar(&attempts) == "2");
    let running: Vec<u64> = due
        .iter()
        .copied()
        .filter(|id| f.status(*id) == "run")
        .collect();
    assert_eq!(running.len(), 2, "Concurrency 2");
    assert_eq!(f.status(manual), "wait");
    assert_eq!(f.status(later), "error");
    // A second tick while both run starts nothing more: its own report.
    let tick = f.panel.command(&["cron"]).output().unwrap();
    let told = String::from_utf8_lossy(&tick.stderr);
    assert!(told.contains("started []"), "{told}");
    assert_eq!(f.db.scalar(&attempts), "2");
    let ids = running
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    f.call("runningoperation.stop", &ids);
    for id in running {
        f.settled(id);
    }
}

#[test]
fn the_scheduler_settles_what_a_dead_runner_left() {
    let f = fixture();
    let id = f.operation("pmok");
    f.db.exec(&format!(
        "INSERT INTO billmgrops_operation (runningoperation, status, started, runner) VALUES ({id}, 'run', NOW() - INTERVAL 2 MINUTE, 'gone-host:1')"
    ));
    f.db.exec(&format!(
        "UPDATE runningoperation SET manual = 'on' WHERE id = {id}"
    ));
    let tick = f.panel.command(&["cron"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&tick.stderr).contains(&format!("interrupted [{id}]")),
        "{}",
        String::from_utf8_lossy(&tick.stderr)
    );
    assert_eq!(f.status(id), "error");
    // A runner killed in the middle leaves its attempt as interrupted.
    let id = f.operation("pmhang");
    let mut runner = f
        .panel
        .command(&["run-operation", &id.to_string()])
        .spawn()
        .unwrap();
    wait_until(30, "the module to start", || f.hang_pids().len() == 2);
    runner.kill().unwrap();
    runner.wait().unwrap();
    for pid in f.hang_pids() {
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(pid.to_string())
            .status();
    }
    assert_eq!(f.last_attempt(id, "outcome"), "interrupted");
    assert_eq!(f.field(id, "trycount"), "1");
    // Its lock died with its connection: the operation can run again.
    f.db.exec(&format!("UPDATE billmgrops_operation SET started = NOW() - INTERVAL 2 MINUTE WHERE runningoperation = {id}"));
    f.panel.command(&["cron"]).output().unwrap();
    assert_eq!(f.status(id), "error");
}

#[test]
fn gotoserver_asks_the_module_then_falls_back_to_its_url() {
    let f = fixture();
    let id = f.operation("pmpanel");
    let out = f.call("runningoperationgotoserver", &id.to_string());
    let ok = out
        .doc()
        .find("ok")
        .cloned()
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert_eq!(ok.get_attr("type"), Some("blank"));
    assert_eq!(
        ok.text_content(),
        format!(
            "https://panel.example.net/login?item={}",
            f.field(id, "item")
        )
    );

    let id = f.operation("pmok");
    let pm = f.field(id, "processingmodule");
    assert_eq!(
        f.call("runningoperationgotoserver", &id.to_string())
            .error_type(),
        ("noserver".into(), "runningoperation".into())
    );
    f.db.exec(&format!("INSERT INTO processingparam (processingmodule, intname, value) VALUES ({pm}, 'url', 'vm9.example.net:1500')"));
    let ok = f
        .call("runningoperationgotoserver", &id.to_string())
        .doc()
        .find("ok")
        .cloned()
        .unwrap();
    assert_eq!(ok.text_content(), "https://vm9.example.net:1500");
}

#[test]
fn su_redirects_to_the_clients_user() {
    let f = fixture();
    let id = f.operation("pmok");
    let user = f.db.scalar(&format!(
        "SELECT u.name FROM runningoperation ro JOIN item i ON i.id = ro.item JOIN user u ON u.account = i.account WHERE ro.id = {id} AND u.enabled = 'on' ORDER BY u.id LIMIT 1"
    ));
    let ok = f
        .call("runningoperation.su", &id.to_string())
        .doc()
        .find("ok")
        .cloned()
        .unwrap();
    assert_eq!(
        (ok.get_attr("type"), ok.text_content()),
        (Some("top"), format!("func=su&elid={user}"))
    );
    f.db.exec(&format!("UPDATE user SET enabled = 'off' WHERE account = (SELECT i.account FROM runningoperation ro JOIN item i ON i.id = ro.item WHERE ro.id = {id})"));
    assert_eq!(
        f.call("runningoperation.su", &id.to_string()).error_type(),
        ("nouser".into(), "runningoperation".into())
    );
}

#[test]
fn every_function_refuses_a_client() {
    let f = fixture();
    let before = f.db.checksum("runningoperation");
    for function in billmgr_ops::test_support::FUNCTIONS {
        let out = f
            .panel
            .call(function.name)
            .level("16")
            .param("elid", "1")
            .param("sok", "ok")
            .run();
        assert_eq!(
            out.error_type(),
            ("access".into(), function.name.to_string()),
            "{}",
            function.name
        );
    }
    assert_eq!(f.db.checksum("runningoperation"), before);
    assert!(f.panel.module_runs().is_empty());
}

/// One more operation on the processing module of operation `like`.
fn operation_on_module_of(f: &Fixture, like: u64, intname: &str) -> u64 {
    f.db.exec(&format!(
        "INSERT INTO runningoperation (item, intname, processingmodule, trycount, manual, cdate)
         SELECT item, '{intname}', processingmodule, 0, 'off', NOW() FROM runningoperation WHERE id = {like}"
    ));
    f.db.scalar("SELECT MAX(id) FROM runningoperation")
        .parse()
        .unwrap()
}

/// The operations a `cron` tick says it started.
fn started_by(tick: &std::process::Output) -> Vec<u64> {
    let stderr = String::from_utf8_lossy(&tick.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("started ["))
        .unwrap_or_else(|| panic!("{stderr}"));
    line["started [".len()..line.find(']').unwrap()]
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

#[test]
fn one_tick_keeps_the_slots_full_until_the_backlog_is_done() {
    let f = fixture();
    f.db.exec("DELETE FROM runningoperation");
    // Six operations of two seconds, two slots: a tick that only started
    // what fits would leave four for the next minutes.
    f.panel.configure("Concurrency 2\nSchedulerStay 55\n");
    let first = f.operation("pmslow");
    let mut ids = vec![first];
    for _ in 0..5 {
        ids.push(f.operation("pmslow"));
    }
    let tick = f.panel.command(&["cron"]).output().unwrap();
    assert!(
        tick.status.success(),
        "{}",
        String::from_utf8_lossy(&tick.stderr)
    );
    let mut started = started_by(&tick);
    started.sort_unstable();
    assert_eq!(started, ids, "every one started by the one tick");
    for id in &ids {
        wait_until(30, "the attempt to be recorded", || {
            f.last_attempt(*id, "outcome") == "ok"
        });
    }
    // Never more than two at once: each attempt began no earlier than the
    // one two places before it ended.
    let spans: Vec<(i64, i64)> =
        f.db.scalar(&format!(
            "SELECT GROUP_CONCAT(CONCAT(UNIX_TIMESTAMP(createdate) * 1000, ':',
                        UNIX_TIMESTAMP(createdate) * 1000 + duration_ms) ORDER BY createdate, id)
                 FROM billmgrops_attempt WHERE runningoperation BETWEEN {} AND {}",
            ids[0], ids[5]
        ))
        .split(',')
        .map(|s| {
            let (a, b) = s.split_once(':').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert_eq!(spans.len(), 6);
    // (createdate has whole seconds: allow one.)
    for i in 2..spans.len() {
        assert!(
            spans[i].0 + 1000 >= spans[i - 2].1.min(spans[i - 1].1),
            "three at once: {spans:?}"
        );
    }
}

#[test]
fn one_module_does_not_take_every_slot_and_open_goes_first() {
    let f = fixture();
    f.db.exec("DELETE FROM runningoperation");
    f.panel
        .configure("Concurrency 2\nModuleConcurrency 1\nSchedulerStay 0\n");
    // Oldest first: two hanging operations of one module, a housekeeping
    // one of another, then an `open` of a third.
    let hang = f.operation("pmhang");
    let hang2 = operation_on_module_of(&f, hang, "open");
    let sync = f.operation("pmok");
    f.db.exec(&format!(
        "UPDATE runningoperation SET intname = 'sync_item' WHERE id = {sync}"
    ));
    let open = f.operation("pmok");
    f.db.exec("UPDATE runningoperation SET cdate = NOW() - INTERVAL 1 HOUR WHERE intname = 'open'");
    f.db.exec(&format!(
        "UPDATE runningoperation SET cdate = NOW() - INTERVAL 2 HOUR WHERE id = {sync}"
    ));
    f.db.exec(&format!(
        "UPDATE runningoperation SET cdate = NOW() - INTERVAL 30 MINUTE WHERE id = {open}"
    ));
    let tick = f.panel.command(&["cron"]).output().unwrap();
    let mut started = started_by(&tick);
    started.sort_unstable();
    // `open` before `sync_item` though younger; one of the module's two.
    assert_eq!(
        started,
        vec![hang, open],
        "{}",
        String::from_utf8_lossy(&tick.stderr)
    );
    assert_eq!(f.status(hang2), "wait", "the module's second waits");
    assert_eq!(f.status(sync), "wait");
    f.call("runningoperation.stop", &hang.to_string());
    f.settled(hang);
}

#[test]
fn a_fresh_mark_of_a_tick_that_is_gone_is_put_back_at_once_and_its_late_runner_does_nothing() {
    let f = fixture();
    let id = f.operation("pmok");
    f.db.exec(&format!(
        "UPDATE runningoperation SET manual = 'on' WHERE id = {id}"
    ));
    // Marked a moment ago by a tick whose connection is gone (no server
    // gives out connection id 4294967000 to a test's few connections).
    f.db.exec(&format!(
        "INSERT INTO billmgrops_operation (runningoperation, status, started) VALUES ({id}, 'run', NOW())"
    ));
    f.db.exec(&format!(
        "INSERT INTO billmgrops_mark (runningoperation, token, tick) VALUES ({id}, 'aaaaaaaaaaaaaaaa', 4294967000)"
    ));
    let tick = f.panel.command(&["cron"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&tick.stderr);
    assert!(
        stderr.contains(&format!("put back [{id}]")),
        "put back at once, not after the grace: {stderr}"
    );
    assert_eq!(f.status(id), "wait");
    assert_eq!(
        f.db.scalar(&format!(
            "SELECT COUNT(*) FROM billmgrops_mark WHERE runningoperation = {id}"
        )),
        "0"
    );
    // The runner that tick started arrives late: its mark is gone, so it
    // does nothing (exit 3) and counts no attempt.
    let late = f
        .panel
        .command(&[
            "run-operation",
            &id.to_string(),
            "--claim",
            "aaaaaaaaaaaaaaaa",
        ])
        .output()
        .unwrap();
    assert_eq!(late.status.code(), Some(3), "{late:?}");
    assert_eq!(f.field(id, "trycount"), "0", "no attempt counted");
    assert_eq!(
        f.db.scalar(&format!(
            "SELECT COUNT(*) FROM billmgrops_attempt WHERE runningoperation = {id}"
        )),
        "0"
    );
    // A runner with the right token takes its mark.
    f.db.exec(&format!(
        "INSERT INTO billmgrops_mark (runningoperation, token, tick) VALUES ({id}, 'bbbbbbbbbbbbbbbb', NULL)"
    ));
    let wrong = f
        .panel
        .command(&[
            "run-operation",
            &id.to_string(),
            "--claim",
            "cccccccccccccccc",
        ])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(3), "{wrong:?}");
    let right = f
        .panel
        .command(&[
            "run-operation",
            &id.to_string(),
            "--claim",
            "bbbbbbbbbbbbbbbb",
        ])
        .output()
        .unwrap();
    assert!(right.status.success(), "{right:?}");
    assert_eq!(f.status(id), "gone");
}

#[test]
fn an_operation_marked_by_a_killed_tick_is_due_again_without_an_attempt() {
    let f = fixture();
    let id = f.operation("pmok");
    f.db.exec(&format!(
        "UPDATE runningoperation SET manual = 'on' WHERE id = {id}"
    ));
    // Marked running by a tick killed before the runner started.
    f.db.exec(&format!(
        "INSERT INTO billmgrops_operation (runningoperation, status, started) VALUES ({id}, 'run', NOW() - INTERVAL 2 MINUTE)"
    ));
    let tick = f.panel.command(&["cron"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&tick.stderr);
    assert!(stderr.contains(&format!("put back [{id}]")), "{stderr}");
    assert_eq!(f.status(id), "wait");
    assert_eq!(f.field(id, "trycount"), "0", "no attempt counted");
    // status shows what is due and, once attempts have run, how long the
    // backlog takes.
    f.db.exec(&format!(
        "UPDATE runningoperation SET manual = 'off' WHERE id = {id}"
    ));
    let status = f
        .panel
        .command(&["status", "--json", "--no-probe"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        json["operations"]["backlog"].as_u64().unwrap() >= 1,
        "{json}"
    );
}

#[test]
fn a_staying_tick_killed_mid_backlog_loses_nothing_and_runs_nothing_twice() {
    let f = fixture();
    f.db.exec("DELETE FROM runningoperation");
    f.panel.configure("Concurrency 2\nSchedulerStay 55\n");
    let ids: Vec<u64> = (0..6).map(|_| f.operation("pmslow")).collect();
    let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    let done = || {
        f.db.scalar(&format!(
            "SELECT COUNT(*) FROM billmgrops_attempt WHERE runningoperation IN ({list}) AND outcome = 'ok'"
        ))
        .parse::<usize>()
        .unwrap()
    };
    let mut tick = f
        .panel
        .command(&["cron"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed with attempts done, attempts running and operations due.
    wait_until(30, "two attempts to end", || done() >= 2);
    tick.kill().unwrap(); // SIGKILL
    tick.wait().unwrap();
    assert!(done() < ids.len(), "the tick was killed mid-backlog");
    // The next tick takes over at once (the server released the killed
    // tick's lock with its connection), puts back at once what the killed
    // tick marked and no runner took, and stays until the backlog is done:
    // its exit is the event waited on.
    let next = f.panel.command(&["cron"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert!(next.status.success(), "{stderr}");
    assert_eq!(done(), ids.len(), "every operation done: {stderr}");
    for id in &ids {
        assert_eq!(f.status(*id), "gone", "operation {id}");
    }
    // Exactly one attempt each: none lost, none run twice.
    assert_eq!(
        f.db.scalar(&format!(
            "SELECT COUNT(*) FROM billmgrops_attempt WHERE runningoperation IN ({list})"
        )),
        ids.len().to_string()
    );
}

/// The runner processes of operation `id` of this panel alive now (read
/// from /proc: `run-operation <id>` with the panel's directory).
fn runners_of(panel: &crate::harness::Panel, id: u64) -> usize {
    let mgrdir = panel.mgrdir().display().to_string();
    let command = format!("run-operation\0{id}\0");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .filter(|c| c.contains(&command) && c.contains(&mgrdir))
        .count()
}
