//! Living beside BILLmanager's own modules: the processing modules' own
//! API (`runningoperation.edit errorxml=`, `runningoperation.setmanual`)
//! through the installed handler, exactly as the panel runs it for
//! `mgrctl`; companion and replace installs; every registered function
//! driven the way the core drives an addon (PARAM_*, AUTH_*, CGI-style and
//! HTTP_* variables, a stdin document with tparams).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use billmgr_ops::test_support::Element;

use crate::harness::{add_operation, wait_until, Panel, TestDb};

/// A panel tree with the test modules, a stand-in `sbin/mgrctl`, and the
/// plugin installed into it in `mode`.
struct Installed {
    db: TestDb,
    panel: Panel,
    sysroot: PathBuf,
}

fn installed(mode: &str, clients: u64) -> Installed {
    let db = TestDb::seeded(clients);
    let panel = Panel::for_backups(&db).with_modules();
    let sbin = panel.mgrdir().join("sbin");
    std::fs::create_dir_all(&sbin).unwrap();
    let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/panel/mgrctl");
    std::fs::copy(shim, sbin.join("mgrctl")).unwrap();
    let sysroot = panel.mgrdir().join("sysroot");
    std::fs::create_dir_all(sysroot.join("etc/cron.d")).unwrap();
    let out = panel
        .command(&[
            "install",
            "--sysroot",
            &sysroot.display().to_string(),
            "--mode",
            mode,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Only the operations a test adds (the seeded ones name modules that
    // are not there).
    db.exec("DELETE FROM runningoperation");
    Installed { db, panel, sysroot }
}

impl Installed {
    fn handler(&self) -> PathBuf {
        self.panel.mgrdir().join("addon/billmgr-ops")
    }

    /// `mgrctl -m billmgr FUNC args...` through the stand-in.
    fn mgrctl(&self, func: &str, args: &[&str]) -> String {
        let out = Command::new(self.panel.mgrdir().join("sbin/mgrctl"))
            .args(["-m", "billmgr", func])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BILLMGR_OPS_DB", &self.db.url)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    /// A cron tick by the installed handler, as cron runs it: what it told.
    fn cron(&self) -> String {
        let out = Command::new(self.handler())
            .args([
                "--mgrdir",
                &self.panel.mgrdir().display().to_string(),
                "cron",
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BILLMGR_OPS_DB", &self.db.url)
            .output()
            .unwrap();
        let told = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{told}");
        told
    }

    fn attempts_done(&self, op: u64) -> bool {
        self.db.scalar(&format!(
            "SELECT COUNT(*) FROM billmgrops_attempt WHERE runningoperation = {op} AND outcome <> 'interrupted'"
        )) != "0"
            && !self.running(op)
    }

    fn running(&self, op: u64) -> bool {
        self.db.scalar(&format!(
            "SELECT COUNT(*) FROM billmgrops_operation WHERE runningoperation = {op} AND status = 'run'"
        )) != "0"
    }

    /// What an attempt and its operation came to, without what differs
    /// by the channel (the exit status, the output).
    fn outcome(&self, op: u64) -> String {
        self.db.scalar(&format!(
            "SELECT CONCAT_WS('|', a.outcome, a.error_type, a.error_object, a.error_value, a.error_msg,
                    ro.trycount, ro.manual, s.status, s.next_try IS NOT NULL, ro.errorxml LIKE '%Connection timed out%')
             FROM billmgrops_attempt a JOIN runningoperation ro ON ro.id = a.runningoperation
             JOIN billmgrops_operation s ON s.runningoperation = ro.id
             WHERE a.runningoperation = {op} ORDER BY a.id DESC LIMIT 1"
        ))
    }
}

#[test]
fn an_error_reported_through_the_api_counts_like_one_printed_on_stdout() {
    let p = installed("replace", 20);
    let by_api = add_operation(&p.db, "pmapi");
    let printed = add_operation(&p.db, "pmfail");
    p.cron();
    wait_until(60, "both attempts end", || {
        p.attempts_done(by_api) && p.attempts_done(printed)
    });
    let (api, stdout) = (p.outcome(by_api), p.outcome(printed));
    assert_eq!(api, stdout, "the same outcome by either channel");
    assert!(
        api.starts_with(
            "error|connect|vmmanager|https://vm.example.net|Connection timed out|1|off|error|1|1"
        ),
        "{api}"
    );
    // The module's call went through the handler as the panel runs it.
    let calls = std::fs::read_to_string(p.panel.mgrdir().join("var/mgrctl.log")).unwrap();
    assert!(
        calls.contains(&format!(
            "runningoperation.edit sok=ok elid={by_api} errorxml="
        )),
        "{calls}"
    );
    // The attempt's log shows the document the module sent.
    let attempt = p.db.scalar(&format!(
        "SELECT MAX(id) FROM billmgrops_attempt WHERE runningoperation = {by_api}"
    ));
    let log = p
        .panel
        .call("errorhistory.showlog")
        .param("elid", &attempt)
        .run();
    assert!(
        log.value("reported").contains("Connection timed out"),
        "{}",
        log.stdout
    );
}

#[test]
fn a_module_that_switches_its_operation_to_manual_gets_no_retry_and_no_second_task() {
    let p = installed("replace", 20);
    std::fs::write(p.panel.mgrdir().join("var/pmapi-setmanual"), "").unwrap();
    let op = add_operation(&p.db, "pmapi");
    let tasks = p.db.scalar("SELECT COUNT(*) FROM task");
    p.cron();
    wait_until(60, "the attempt ends", || p.attempts_done(op));
    assert_eq!(
        p.db.scalar(&format!(
            "SELECT CONCAT(ro.manual, ':', s.next_try IS NULL) FROM runningoperation ro
             JOIN billmgrops_operation s ON s.runningoperation = ro.id WHERE ro.id = {op}"
        )),
        "on:1"
    );
    assert_eq!(
        p.db.scalar("SELECT COUNT(*) FROM task"),
        tasks,
        "the module opens its own task"
    );
    assert_eq!(
        p.db.scalar(&format!(
            "SELECT COUNT(*) FROM billmgrops_manual WHERE runningoperation = {op}"
        )),
        "1"
    );
}

#[test]
fn the_api_accepts_what_modules_send_and_demands_nothing_else() {
    let p = installed("replace", 10);
    let op = add_operation(&p.db, "pmok");
    // errorxml with no attempt of ours running: recorded as an attempt.
    let out = p.mgrctl(
        "runningoperation.edit",
        &["sok=ok", &format!("elid={op}"), "errorxml=<doc><error type=\"auth\" object=\"vm\"><param name=\"value\">u</param></error></doc>"],
    );
    assert!(out.contains("<ok/>"), "{out}");
    assert_eq!(
        p.db.scalar(&format!(
            "SELECT CONCAT(outcome, ':', error_type, ':', error_value) FROM billmgrops_attempt WHERE runningoperation = {op}"
        )),
        "error:auth:u"
    );
    // manual=on with a field this plugin does not keep: accepted.
    let out = p.mgrctl(
        "runningoperation.edit",
        &[
            "sok=ok",
            &format!("elid={op}"),
            "manual=on",
            "somefield=kept-by-the-panel",
        ],
    );
    assert!(out.contains("<ok/>"), "{out}");
    assert_eq!(
        p.db.scalar(&format!(
            "SELECT manual FROM runningoperation WHERE id = {op}"
        )),
        "on"
    );
    let out = p.mgrctl(
        "runningoperation.edit",
        &["sok=ok", &format!("elid={op}"), "manual=off"],
    );
    assert!(out.contains("<ok/>"), "{out}");
    let out = p.mgrctl("runningoperation.setmanual", &[&format!("elid={op}")]);
    assert!(out.contains("<ok/>"), "{out}");
    assert_eq!(
        p.db.scalar(&format!(
            "SELECT manual FROM runningoperation WHERE id = {op}"
        )),
        "on"
    );
    // An operation that is not there is a typed error.
    let out = p.mgrctl("runningoperation.setmanual", &["elid=999999"]);
    assert!(out.contains("type=\"missed\""), "{out}");
}

#[test]
fn a_companion_leaves_running_operations_to_billmanager() {
    let p = installed("companion", 10);
    let op = add_operation(&p.db, "pmok");
    let told = p.cron();
    // The tick's own report: it started no runner, so no attempt can come.
    assert!(told.contains("started []"), "{told}");
    assert_eq!(
        p.db.scalar(&format!(
            "SELECT COUNT(*) FROM billmgrops_attempt WHERE runningoperation = {op}"
        )),
        "0",
        "the core's scheduler runs operations in companion mode"
    );
    // Both names answer; a start here is refused with the reason.
    let out = p
        .panel
        .call("billmgrops.runningoperation.start")
        .param("elid", &op.to_string())
        .run();
    assert_eq!(out.error_type().0, "core_runs", "{}", out.stdout);
    let list = p.panel.call("billmgrops.runningoperation").run();
    assert!(!list.rows().is_empty());
    assert_eq!(
        list.doc().get_attr("func"),
        Some("billmgrops.runningoperation")
    );
    // A redirect stays among the plugin's names.
    let out = p
        .panel
        .call("billmgrops.runningoperation.setfilter")
        .param("elid", "1")
        .run();
    let ok = out.doc().find("ok").cloned();
    if let Some(ok) = ok {
        assert!(
            ok.text_content()
                .starts_with("func=billmgrops.runningoperation"),
            "{}",
            out.stdout
        );
    }
    // Turned on explicitly, the plugin runs them.
    p.panel.configure("RunModules on\n");
    p.cron();
    wait_until(60, "the operation is done", || {
        p.db.scalar(&format!(
            "SELECT COUNT(*) FROM runningoperation WHERE id = {op}"
        )) == "0"
    });
    // Backup works fully: a copy through the companion names, started by
    // a call that carries CGI variables (its background job must not take
    // itself for the download CGI).
    let out = p
        .panel
        .call("billmgrops.billmgr.backup.create")
        .param("sok", "ok")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", "POST")
        .env(
            "QUERY_STRING",
            "func=billmgrops.billmgr.backup.create&sok=ok",
        )
        .run();
    assert!(out.ok(), "{}", out.stdout);
    wait_until(120, "the copy", || {
        p.db.scalar("SELECT COUNT(*) FROM billmgrops_backup WHERE state = 'ok'") == "1"
    });
    let _ = &p.sysroot;
}

/// The installed manifests' functions: (name, kind, the metadata's field
/// and column names).
fn registered(mgrdir: &Path) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(mgrdir.join("etc/xml")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let root = Element::parse(&text).unwrap();
        let metadata: Vec<&Element> = root.find_all("metadata").collect();
        for handler in root.find_all("handler") {
            for func in handler.find_all("func") {
                let name = func.get_attr("name").unwrap().to_string();
                let meta = metadata
                    .iter()
                    .find(|m| m.get_attr("name") == Some(name.as_str()));
                let kind = meta
                    .and_then(|m| m.get_attr("type"))
                    .unwrap_or("action")
                    .to_string();
                let mut fields = Vec::new();
                if let Some(m) = meta {
                    collect_names(m, &mut fields);
                }
                out.push((name, kind, fields));
            }
        }
    }
    out
}

fn collect_names(e: &Element, out: &mut Vec<String>) {
    for c in e.elements() {
        if matches!(c.name.as_str(), "field" | "col") {
            out.push(c.get_attr("name").unwrap_or_default().to_string());
        }
        collect_names(c, out);
    }
}

/// Calls the installed handler as the core calls an addon for `func`.
fn call_as_core(p: &Installed, func: &str, elid: &str) -> String {
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<doc func=\"{func}\" lang=\"ru\" binary=\"/billmgr\"><tparams><func>{func}</func><elid>{elid}</elid><out>xml</out></tparams></doc>"
    );
    let mut child = Command::new(p.handler())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MGR_DIR", p.panel.mgrdir())
        .env("BILLMGR_OPS_DB", &p.db.url)
        .env("PARAM_func", func)
        .env("PARAM_elid", elid)
        .env("PARAM_plid", elid)
        .env("AUTH_USER", "admin")
        .env("AUTH_LEVEL", "29")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", "POST")
        .env("QUERY_STRING", format!("func={func}&elid={elid}"))
        .env("REMOTE_ADDR", "192.0.2.10")
        .env("SERVER_NAME", "panel.example")
        .env("HTTP_HOST", "panel.example")
        .env("HTTP_COOKIE", "billmgrses5=abc; billmgrlang5=billmgr:ru")
        .env("HTTP_USER_AGENT", "Mozilla/5.0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    crate::harness::mariadb::feed(child.stdin.take().unwrap(), doc.into_bytes());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{func}: exit {:?}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_registered_function_answers_the_core_with_one_document_in_both_modes() {
    for mode in ["companion", "replace"] {
        let p = installed(mode, 10);
        let op = add_operation(&p.db, "pmok").to_string();
        let (copy, _) = p.panel.take_copy(&p.db);
        let functions = registered(p.panel.mgrdir());
        assert!(functions.len() >= 26, "{mode}: {}", functions.len());
        for (func, kind, fields) in functions {
            let canonical = func.strip_prefix("billmgrops.").unwrap_or(&func);
            assert_eq!(func != canonical, mode == "companion", "{mode}: {func}");
            let elid = if canonical.starts_with("backup") || canonical.starts_with("billmgr.backup")
            {
                copy.clone()
            } else {
                op.clone()
            };
            let out = call_as_core(&p, &func, &elid);
            assert!(
                out.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<doc"),
                "{mode} {func}: not a document: {}",
                &out[..out.len().min(200)]
            );
            let doc = Element::parse(&out).unwrap_or_else(|e| panic!("{mode} {func}: {e}"));
            assert_eq!(doc.get_attr("func"), Some(func.as_str()), "{mode} {func}");
            match doc.find("error") {
                Some(e) => {
                    let t = e.get_attr("type").unwrap_or_default();
                    assert!(
                        !t.is_empty() && t != "internal" && e.find("msg").is_some(),
                        "{mode} {func}: {out}"
                    );
                }
                None if kind == "list" => {
                    assert!(doc.find("p_elems").is_some(), "{mode} {func}: {out}");
                }
                None if kind == "form" => {
                    let answered: Vec<&str> = doc.elements().map(|e| e.name.as_str()).collect();
                    assert!(
                        fields.iter().any(|f| answered.contains(&f.as_str()))
                            || doc.find("ok").is_some(),
                        "{mode} {func}: none of {fields:?} in {out}"
                    );
                }
                None => {}
            }
        }
    }
}

#[test]
fn staff_tasks_are_made_by_the_panel_in_either_mode() {
    for (mode, func, asked) in [
        (
            "companion",
            "billmgrops.runningoperation.taskcreate",
            vec!["runningoperation.taskcreate elid={op} sok=ok"],
        ),
        (
            "replace",
            "runningoperation.taskcreate",
            vec![
                "task.gettype operation=open item=",
                "task.edit sok=ok item=",
            ],
        ),
    ] {
        let p = installed(mode, 5);
        let op = add_operation(&p.db, "pmok");
        let before = p.db.scalar("SELECT COUNT(*) FROM task");
        let out = p.mgrctl(func, &[&format!("elid={op}"), "sok=ok"]);
        assert!(out.contains("<ok/>"), "{mode}: {out}");
        // One task, of the panel's type, naming the operation.
        assert_eq!(
            p.db.scalar(&format!(
                "SELECT CONCAT(COUNT(*), ':', MAX(type)) FROM task WHERE runningoperation = {op}"
            )),
            "1:postopen",
            "{mode}"
        );
        assert_eq!(
            p.db.scalar("SELECT COUNT(*) FROM task")
                .parse::<u64>()
                .unwrap(),
            before.parse::<u64>().unwrap() + 1
        );
        let calls = p.panel.panel_calls();
        for call in asked {
            let call = call.replace("{op}", &op.to_string());
            assert!(
                calls.iter().any(|c| c.starts_with(&call)),
                "{mode}: {call} in {calls:?}"
            );
        }
        // A second ask makes no second task.
        p.mgrctl(func, &[&format!("elid={op}"), "sok=ok"]);
        assert_eq!(
            p.db.scalar(&format!(
                "SELECT COUNT(*) FROM task WHERE runningoperation = {op}"
            )),
            "1",
            "{mode}"
        );
    }
}
