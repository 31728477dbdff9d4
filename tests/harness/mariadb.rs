//! The test database server: `BILLMGR_OPS_TEST_DB` when set (a mysql:// URL
//! of a server, without a database name), otherwise a private mariadbd
//! started once per test process in a temporary directory.
//!
//! The private server runs under a small `sh` watchdog whose stdin is a pipe
//! held by this process: when the test process ends, however it ends, the
//! pipe closes, the watchdog stops mariadbd and removes its directory.

use std::io::Write;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

/// A running server.
pub struct Server {
    /// `mysql://user[:pass]@host:port` without a database.
    pub base_url: String,
    /// Keeps the watchdog alive; dropped only at process exit.
    _watchdog: Option<Mutex<ChildStdin>>,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static MOSCOW: OnceLock<Server> = OnceLock::new();

impl Server {
    /// A server the caller started and stops (`logserver`), for
    /// [`TestDb::empty_on`].
    pub fn at(base_url: String) -> &'static Server {
        Box::leak(Box::new(Server {
            base_url,
            _watchdog: None,
        }))
    }
}

/// The server for this test process.
pub fn server() -> &'static Server {
    SERVER.get_or_init(|| match std::env::var("BILLMGR_OPS_TEST_DB") {
        Ok(url) if !url.is_empty() => Server {
            base_url: url.trim_end_matches('/').to_string(),
            _watchdog: None,
        },
        _ => start_private(None),
    })
}

/// A private server whose clock runs in UTC+3 (`default-time-zone`), as
/// on most BILLmanager servers: `NOW()` there is three hours ahead of
/// `UTC_TIMESTAMP()`. Started on first use, whatever BILLMGR_OPS_TEST_DB
/// says.
pub fn server_utc3() -> &'static Server {
    MOSCOW.get_or_init(|| start_private(Some("+03:00")))
}

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .map(PathBuf::from)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from));
    let dirs: Vec<PathBuf> = dirs.collect();
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free TCP port on 127.0.0.1")
}

fn start_private(zone: Option<&str>) -> Server {
    let (Some(mariadbd), Some(install)) = (
        find(&["mariadbd", "mysqld"]),
        find(&["mariadb-install-db", "mysql_install_db"]),
    ) else {
        panic!(
            "the tests need MariaDB: install mariadb-server (scripts/test.sh does), \
             or point BILLMGR_OPS_TEST_DB at a server (mysql://root@127.0.0.1:3306)"
        );
    };
    let dir = std::env::temp_dir().join(format!(
        "billmgr-ops-mariadb-{}{}",
        std::process::id(),
        if zone.is_some() { "-tz" } else { "" }
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("cannot create the server directory");
    let data = dir.join("data");
    let out = Command::new(&install)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args([
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ])
        .output()
        .expect("failed to run mariadb-install-db");
    assert!(
        out.status.success(),
        "mariadb-install-db failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let socket = dir.join("mysql.sock");
    let error_log = dir.join("error.log");
    // $0 is mariadbd, $1 the directory to remove, the rest its arguments.
    let script = r#"d="$1"; shift; "$0" "$@" & p=$!; read _; kill "$p"; wait "$p"; rm -rf "$d""#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&mariadbd)
        .arg(&dir)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--port={port}"))
        .arg(format!("--log-error={}", error_log.display()))
        .arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()))
        .args([
            "--bind-address=127.0.0.1",
            "--user=root",
            "--skip-log-bin",
            "--skip-name-resolve",
            "--local-infile=1",
            "--innodb-buffer-pool-size=128M",
            "--innodb-flush-log-at-trx-commit=2",
            "--innodb-doublewrite=0",
            "--max-connections=500",
            "--character-set-server=utf8mb4",
        ])
        .args(zone.map(|z| format!("--default-time-zone={z}")))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("failed to start mariadbd");
    let stdin = child.stdin.take().expect("piped stdin");
    let base_url = format!("mysql://root@127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if mysql::Conn::new(mysql::Opts::from_url(&base_url).unwrap()).is_ok() {
            break;
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            panic!(
                "the private mariadbd did not come up; its log:\n{}",
                std::fs::read_to_string(&error_log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Server {
        base_url,
        _watchdog: Some(Mutex::new(stdin)),
    }
}

/// A database of its own for one test, dropped when the test passes.
pub struct TestDb {
    pub name: String,
    /// root's address of the database, for setting up and checking.
    pub url: String,
    /// The address the plugin is given: root's, or with
    /// `BILLMGR_OPS_TEST_ACCOUNT=panel` that of an account like the
    /// panel's own (`ALL` on this database only), so that the same tests
    /// run as either (scripts/test.sh).
    pub plugin_url: String,
    /// That account, dropped with the database.
    account: Option<String>,
    server: &'static Server,
}

impl TestDb {
    /// A new, empty database.
    pub fn empty() -> TestDb {
        TestDb::empty_on(server())
    }

    /// A new, empty database on `server`.
    pub fn empty_on(server: &'static Server) -> TestDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut conn = mysql::Conn::new(mysql::Opts::from_url(&server.base_url).unwrap())
            .expect("cannot connect to the test server");
        conn.query_drop(format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
        ))
        .expect("cannot create the test database");
        let url = format!("{}/{name}", server.base_url);
        let (plugin_url, account) = match std::env::var("BILLMGR_OPS_TEST_ACCOUNT").as_deref() {
            Ok("panel") => {
                let user = format!("bma_{name}");
                // MySQL logs binary by default, and then refuses a trigger
                // or routine from an account without SUPER unless the
                // administrator trusts function creators, as a host whose
                // panel account makes them must.
                let _ = conn.query_drop("SET GLOBAL log_bin_trust_function_creators = 1");
                let url = super::panel_account(&mut conn, &user, &name, &url);
                (url, Some(user))
            }
            _ => (url.clone(), None),
        };
        TestDb {
            name,
            url,
            plugin_url,
            account,
            server,
        }
    }

    /// The test server's TCP host and port.
    pub fn host_port(&self) -> (String, u16) {
        let opts = mysql::Opts::from_url(&self.url).unwrap();
        (opts.get_ip_or_hostname().to_string(), opts.get_tcp_port())
    }

    /// Gives the plugin's account, where it is one like the panel's own,
    /// `ALL` on `database` too: as an administrator restoring the panel's
    /// database under another name would, for the definitions whose
    /// definer it is.
    pub fn grant_plugin_account(&self, database: &str) {
        if let Some(user) = &self.account {
            self.exec(&format!("GRANT ALL ON `{database}`.* TO '{user}'@'%'"));
        }
    }

    /// Grants the plugin's account, where it is one like the panel's own,
    /// `privileges` on `*.*` too (the binary-log follower's replication
    /// privileges).
    pub fn grant_plugin_globally(&self, privileges: &str) {
        if let Some(user) = &self.account {
            self.exec(&format!("GRANT {privileges} ON *.* TO '{user}'@'%'"));
        }
    }

    /// Whether the plugin is given an account like the panel's own.
    pub fn as_panel_account(&self) -> bool {
        self.account.is_some()
    }

    /// How a copy's connections share one snapshot with the plugin's
    /// account: the server's global lock needs RELOAD, which the panel's
    /// own account lacks.
    pub fn snapshot_kind(&self) -> &'static str {
        if self.as_panel_account() {
            "table-locks"
        } else {
            "shared-snapshot"
        }
    }

    /// Runs SQL as the plugin's account: views, triggers and routines made
    /// this way are the plugin's own, as on a panel whose objects its own
    /// account made (another account's it could not restore without SUPER).
    pub fn plugin_exec(&self, sql: &str) {
        let mut c = mysql::Conn::new(mysql::Opts::from_url(&self.plugin_url).unwrap())
            .expect("cannot connect as the plugin's account");
        run_batch(&mut c, sql);
    }

    /// A connection to this database, for setting up and checking.
    pub fn conn(&self) -> mysql::Conn {
        mysql::Conn::new(mysql::Opts::from_url(&self.url).unwrap()).expect("cannot connect")
    }

    /// Runs SQL statements, failing on an error in any of them (a
    /// multi-statement batch reports later errors only in its later result
    /// sets, so every set is walked).
    pub fn exec(&self, sql: &str) {
        run_batch(&mut self.conn(), sql);
    }

    /// The first column of the first row of a query, as text.
    pub fn scalar(&self, sql: &str) -> String {
        let mut c = self.conn();
        let v: Option<mysql::Value> = c.query_first(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        match v {
            None | Some(mysql::Value::NULL) => String::new(),
            Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(&b).into_owned(),
            Some(other) => other.as_sql(true).trim_matches('\'').to_string(),
        }
    }
}

impl TestDb {
    /// `CHECKSUM TABLE` of one table.
    pub fn checksum(&self, table: &str) -> u64 {
        let mut c = self.conn();
        let row: Option<(String, Option<u64>)> = c
            .query_first(format!("CHECKSUM TABLE `{table}`"))
            .unwrap_or_else(|e| panic!("CHECKSUM TABLE {table}: {e}"));
        row.and_then(|r| r.1)
            .unwrap_or_else(|| panic!("no checksum for {table}"))
    }
}

/// Runs a batch of statements, failing on an error in any of them (a
/// batch reports later errors only in its later results).
fn run_batch(c: &mut mysql::Conn, sql: &str) {
    let mut result = c.query_iter(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    while let Some(set) = result.iter() {
        for row in set {
            row.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept database {} for inspection ({})", self.name, self.url);
            return;
        }
        if let Ok(mut c) = mysql::Conn::new(mysql::Opts::from_url(&self.server.base_url).unwrap()) {
            let _ = c.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name));
            if let Some(user) = &self.account {
                let _ = c.query_drop(format!("DROP USER IF EXISTS '{user}'@'%'"));
            }
        }
    }
}

/// Writes `data` to a child's stdin from a thread, so a child that writes
/// a lot before reading cannot deadlock the test.
pub fn feed(mut stdin: ChildStdin, data: Vec<u8>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    })
}

/// A fresh panel directory (etc/, var/) under the system temp dir,
/// removed when the test passes and kept (and named) when it fails.
pub struct MgrDir(pub PathBuf);

impl MgrDir {
    pub fn new() -> MgrDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "billmgr-ops-mgr-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["etc", "var"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        // The cron tick keeps a binary-log follower running where the
        // server logs (MySQL does by default), and starts restore drills:
        // tests that want them start them or turn these on.
        std::fs::write(
            dir.join("etc/billmgr-ops.conf"),
            "BinlogFollow off\nBackupDrillDays 0\n",
        )
        .unwrap();
        MgrDir(dir)
    }
}

impl Drop for MgrDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept panel directory {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
