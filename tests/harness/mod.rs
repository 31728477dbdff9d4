//! The test harness: the real binary, called the way the panel calls it.
//!
//! ```ignore
//! let db = TestDb::seeded(50);
//! let out = Panel::new(&db).call("runningoperation").param("p_cnt", "5").run();
//! assert_eq!(out.rows().len(), 5);
//! ```

pub mod forge;
pub mod logserver;
pub mod mariadb;
pub mod servers;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use billmgr_ops::test_support::Element;
pub use mariadb::{MgrDir, TestDb};

/// The binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_billmgr-ops"))
}

/// The one way the tests start the binary: a clean environment (only
/// `PATH`), the panel directory `mgrdir` and the database `db_url`.
fn binary_command(mgrdir: &Path, db_url: Option<&str>, args: &[String]) -> Command {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MGR_DIR", mgrdir);
    if let Some(url) = db_url {
        cmd.env("BILLMGR_OPS_DB", url);
    }
    cmd
}

impl TestDb {
    /// A database with the BILLmanager schema and `clients` seeded clients
    /// (seed 1), made by the real `billmgr-ops dev seed`.
    pub fn seeded(clients: u64) -> TestDb {
        TestDb::seeded_on(mariadb::server(), clients)
    }

    /// [`TestDb::seeded`] on a given server (see `mariadb::server_utc3`).
    pub fn seeded_on(server: &'static mariadb::Server, clients: u64) -> TestDb {
        let db = TestDb::empty_on(server);
        let out = Panel::new(&db)
            .command(&[
                "dev",
                "seed",
                "--clients",
                &clients.to_string(),
                "--seed",
                "1",
            ])
            .output()
            .expect("failed to run dev seed");
        assert!(
            out.status.success(),
            "dev seed failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        db
    }
}

/// An account like BILLmanager's own: `ALL` on one database and no
/// privilege anywhere else (no RELOAD, no CREATE of other databases), with
/// a password of symbols; dropped with the value.
pub struct PanelAccount {
    pub user: String,
    pub password: String,
    admin_url: String,
    url: String,
}

/// Makes the directories `install` expects of a panel under `mgr`.
pub fn panel_dirs(mgr: &Path) {
    for dir in [
        "addon",
        "cgi",
        "etc/xml",
        "sbin",
        "var/.xmlcache",
        "processing",
    ] {
        std::fs::create_dir_all(mgr.join(dir)).unwrap();
    }
}

/// The password of the test accounts: symbols a naive parser cuts.
const PANEL_PASSWORD: &str = "p@ss w#rd;'\\x";

/// Creates `user` with `ALL` on `database` only (as `admin`, connected to
/// the server at `admin_url`); returns the account's URL of the database.
fn panel_account(admin: &mut mysql::Conn, user: &str, database: &str, admin_url: &str) -> String {
    use mysql::prelude::Queryable;
    admin
        .query_drop(format!("DROP USER IF EXISTS '{user}'@'%'"))
        .unwrap();
    let literal = PANEL_PASSWORD.replace('\\', "\\\\").replace('\'', "\\'");
    admin
        .query_drop(format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{literal}'"
        ))
        .unwrap();
    admin
        .query_drop(format!("GRANT ALL ON `{database}`.* TO '{user}'@'%'"))
        .unwrap();
    let opts = mysql::Opts::from_url(admin_url).unwrap();
    let encoded: String = PANEL_PASSWORD
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "mysql://{user}:{encoded}@{}:{}/{database}",
        opts.get_ip_or_hostname(),
        opts.get_tcp_port()
    )
}

impl PanelAccount {
    pub fn new(db: &TestDb) -> PanelAccount {
        let user = format!("bmo_{}", db.name);
        let url = panel_account(&mut db.conn(), &user, &db.name, &db.url);
        PanelAccount {
            user,
            password: PANEL_PASSWORD.to_string(),
            admin_url: db.url.clone(),
            url,
        }
    }

    /// A mysql:// URL of the database as this account (the password
    /// encoded).
    pub fn url(&self, _db: &TestDb) -> String {
        self.url.clone()
    }
}

impl Drop for PanelAccount {
    fn drop(&mut self) {
        use mysql::prelude::Queryable;
        if let Ok(mut c) = mysql::Conn::new(mysql::Opts::from_url(&self.admin_url).unwrap()) {
            let _ = c.query_drop(format!("DROP USER IF EXISTS '{}'@'%'", self.user));
        }
    }
}

/// A derived table of the numbers 1..=`n` in column `seq`, written so
/// that MariaDB and MySQL both take it (MariaDB's `seq_1_to_N` tables are
/// its own; MySQL stops a recursive CTE at 1,000 rows by default).
pub fn numbers(n: u64) -> String {
    let digits = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 \
                  UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 \
                  UNION ALL SELECT 8 UNION ALL SELECT 9)";
    let places = n.max(1).ilog10() as usize + 1;
    let sum: Vec<String> = (0..places)
        .map(|p| format!("{}*d{p}.d", 10u64.pow(p as u32)))
        .collect();
    let from: Vec<String> = (0..places).map(|p| format!("{digits} d{p}")).collect();
    format!(
        "(SELECT {} + 1 AS seq FROM {} HAVING seq <= {n})",
        sum.join(" + "),
        from.join(", ")
    )
}

/// A new running operation `open` on the first service, handled by a new
/// processing module running test module `module`; returns its id.
pub fn add_operation(db: &TestDb, module: &str) -> u64 {
    use mysql::prelude::Queryable;
    let mut c = db.conn();
    c.exec_drop(
        "INSERT INTO processingmodule (name, module) VALUES (?, ?)",
        (format!("Test {module}"), module),
    )
    .unwrap();
    let pm = c.last_insert_id();
    c.exec_drop(
        "INSERT INTO runningoperation (item, intname, processingmodule, trycount, manual, cdate)
         SELECT MIN(id), 'open', ?, 0, 'off', NOW() FROM item",
        (pm,),
    )
    .unwrap();
    c.last_insert_id()
}

/// Where calls go: a database (or a deliberately broken address) and a
/// panel directory.
pub struct Panel {
    db_url: Option<String>,
    mgrdir: MgrDir,
}

impl Panel {
    pub fn new(db: &TestDb) -> Panel {
        Panel {
            db_url: Some(db.plugin_url.clone()),
            mgrdir: MgrDir::new(),
        }
    }

    /// A panel whose database is found as on a real BILLmanager 6 host:
    /// only `etc/billmgr.conf.d/db.conf` names it (`DBHost`, `DBPort`,
    /// `DBUser`, `DBPassword`, `DBName`), for `account`; nothing else
    /// tells the plugin where the database is.
    pub fn laid_out_by_the_panel(db: &TestDb, account: &PanelAccount) -> Panel {
        let mut panel = Panel::new(db);
        panel.db_url = None;
        let (host, port) = db.host_port();
        let conf_d = panel.mgrdir().join("etc/billmgr.conf.d");
        std::fs::create_dir_all(&conf_d).unwrap();
        std::fs::write(
            panel.mgrdir().join("etc/billmgr.conf"),
            "# BILLmanager's own settings; the database is in billmgr.conf.d\nSessionTimeout 3600\n",
        )
        .unwrap();
        std::fs::write(
            conf_d.join("db.conf"),
            format!(
                "DBHost {host}\nDBPort {port}\nDBUser {}\nDBPassword {}\nDBName {}\n",
                account.user, account.password, db.name
            ),
        )
        .unwrap();
        panel
    }

    /// A panel for backup tests: its billmgr.conf names a database server,
    /// as a real panel's does (the plugin's own database source wins).
    pub fn for_backups(db: &TestDb) -> Panel {
        let panel = Panel::new(db);
        std::fs::write(
            panel.mgrdir().join("etc/billmgr.conf"),
            "DBHost localhost\n",
        )
        .expect("cannot write billmgr.conf");
        panel
    }

    /// Takes a copy with `billmgr-ops backup create`; returns its catalog
    /// id and name.
    pub fn take_copy(&self, db: &TestDb) -> (String, String) {
        let out = self.command(&["backup", "create"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = db.scalar("SELECT MAX(id) FROM billmgrops_backup");
        let name = db.scalar(&format!(
            "SELECT name FROM billmgrops_backup WHERE id = {id}"
        ));
        (id, name)
    }

    /// The download CGI program as the web server finds it: the binary
    /// under the name `cgi/billmgr-ops-download` (it tells its role by that
    /// name, as `install` places it).
    pub fn cgi_program(&self) -> PathBuf {
        let dir = self.mgrdir().join("cgi");
        std::fs::create_dir_all(&dir).unwrap();
        let program = dir.join("billmgr-ops-download");
        if !program.exists() {
            std::os::unix::fs::symlink(binary(), &program).unwrap();
        }
        program
    }

    /// Turns backup encryption on with `passphrase` through the settings
    /// form (the other settings at their defaults).
    pub fn set_backup_passphrase(&self, passphrase: &str) -> Output {
        self.call("billmgr.backup.settings")
            .param("sok", "ok")
            .param("path", "var/billmgr-ops/backup")
            .param("threads", "2")
            .param("compression", "3")
            .param("files", "etc")
            .param("lock_timeout", "5")
            .param("encrypt", "on")
            .param("passphrase", passphrase)
            .run()
    }

    /// A panel whose database is at `url` (for unreachable-database tests).
    pub fn with_url(url: &str) -> Panel {
        Panel {
            db_url: Some(url.to_string()),
            mgrdir: MgrDir::new(),
        }
    }

    pub fn mgrdir(&self) -> &PathBuf {
        &self.mgrdir.0
    }

    /// Installs the test processing modules of tests/fixtures/processing
    /// into this panel's `processing/`.
    pub fn with_modules(self) -> Panel {
        let src =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/processing");
        let dst = self.mgrdir().join("processing");
        std::fs::create_dir_all(&dst).unwrap();
        for entry in std::fs::read_dir(src).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dst.join(path.file_name().unwrap())).unwrap();
        }
        self
    }

    /// Puts the stand-in for the panel's `sbin/mgrctl` in place
    /// (tests/fixtures/panel/mgrctl): the panel's staff-task functions, and
    /// the installed addon for the plugin's own.
    pub fn with_panel_api(self) -> Panel {
        let sbin = self.mgrdir().join("sbin");
        std::fs::create_dir_all(&sbin).unwrap();
        let shim = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/panel/mgrctl");
        std::fs::copy(shim, sbin.join("mgrctl")).unwrap();
        self
    }

    /// The panel functions asked through `sbin/mgrctl`, one line a call.
    pub fn panel_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.mgrdir().join("var/mgrctl.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Appends lines to this panel's billmgr-ops.conf.
    pub fn configure(&self, lines: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.mgrdir().join("etc/billmgr-ops.conf"))
            .unwrap();
        f.write_all(lines.as_bytes()).unwrap();
    }

    /// The lines the test modules wrote to var/module-runs.log.
    pub fn module_runs(&self) -> Vec<String> {
        std::fs::read_to_string(self.mgrdir().join("var/module-runs.log"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// A command line of the binary against this panel (not a panel call).
    pub fn command(&self, args: &[&str]) -> Command {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        binary_command(self.mgrdir(), self.db_url.as_deref(), &args)
    }

    /// A call in panel mode: PARAM_func, an admin AUTH_LEVEL, no stdin.
    pub fn call(&self, func: &str) -> Call<'_> {
        Call {
            panel: self,
            env: vec![
                ("PARAM_func".into(), func.into()),
                ("AUTH_USER".into(), "admin".into()),
                ("AUTH_LEVEL".into(), "29".into()),
            ],
            args: Vec::new(),
            stdin: Vec::new(),
        }
    }

    /// `billmgr-ops call FUNC args...`.
    pub fn cli(&self, args: &[&str]) -> Call<'_> {
        Call {
            panel: self,
            env: Vec::new(),
            args: std::iter::once("call")
                .chain(args.iter().copied())
                .map(String::from)
                .collect(),
            stdin: Vec::new(),
        }
    }
}

/// One call being built.
pub struct Call<'a> {
    panel: &'a Panel,
    env: Vec<(String, String)>,
    args: Vec<String>,
    stdin: Vec<u8>,
}

impl Call<'_> {
    /// (chainable) Sets PARAM_<name>.
    pub fn param(mut self, name: &str, value: &str) -> Self {
        self.env.push((format!("PARAM_{name}"), value.to_string()));
        self
    }

    /// (chainable) Sets any environment variable; an empty value removes it.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.retain(|(n, _)| n != name);
        if !value.is_empty() {
            self.env.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// (chainable) Sets AUTH_LEVEL; an empty value removes it.
    pub fn level(self, level: &str) -> Self {
        self.env("AUTH_LEVEL", level)
    }

    /// (chainable) The stdin document.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = data.into();
        self
    }

    pub fn run(self) -> Output {
        let mut cmd = binary_command(
            self.panel.mgrdir(),
            self.panel.db_url.as_deref(),
            &self.args,
        );
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("failed to start billmgr-ops");
        let feeder = mariadb::feed(child.stdin.take().unwrap(), self.stdin);
        let out = child
            .wait_with_output()
            .expect("failed to wait for billmgr-ops");
        feeder.join().unwrap();
        Output {
            stdout: String::from_utf8(out.stdout).expect("stdout is not UTF-8"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code(),
        }
    }
}

/// What a call printed.
#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

impl Output {
    /// The document: asserts there is exactly one well-formed document with
    /// an XML declaration.
    pub fn doc(&self) -> Element {
        assert!(
            self.stdout
                .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            "no XML declaration: {}",
            self.stdout
        );
        Element::parse(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one well-formed document ({e}):\n{}",
                self.stdout
            )
        })
    }

    /// The `<error>` element, asserting there is one.
    pub fn error(&self) -> Element {
        self.doc()
            .find("error")
            .cloned()
            .unwrap_or_else(|| panic!("expected an error document, got:\n{}", self.stdout))
    }

    /// Whether the document is `<ok/>`.
    pub fn ok(&self) -> bool {
        self.doc().find("ok").is_some()
    }

    /// Everything printed, for assertion messages.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// `(type, object)` of the error.
    pub fn error_type(&self) -> (String, String) {
        let e = self.error();
        (
            e.get_attr("type").unwrap_or_default().to_string(),
            e.get_attr("object").unwrap_or_default().to_string(),
        )
    }

    /// The list rows, asserting the document is not an error.
    pub fn rows(&self) -> Vec<Element> {
        let doc = self.doc();
        assert!(
            doc.find("error").is_none(),
            "unexpected error:\n{}",
            self.stdout
        );
        doc.find_all("elem").cloned().collect()
    }

    /// A top-level value such as p_elems.
    pub fn value(&self, name: &str) -> String {
        self.doc()
            .find(name)
            .map(|e| e.text_content())
            .unwrap_or_default()
    }
}

/// Polls `condition` every 100 ms until it holds; panics with `what` after
/// `secs` seconds. For background work (runner processes), never for timing.
pub fn wait_until(secs: u64, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The text of child `name` of a row.
pub fn cell(row: &Element, name: &str) -> String {
    row.find(name).map(|e| e.text_content()).unwrap_or_default()
}
