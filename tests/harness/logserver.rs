//! A database server of a test's own that writes a binary log, and that
//! the test may stop and start again: the host's mariadbd, or with
//! BILLMGR_OPS_TEST_DB_ROOT (scripts/dbserver.sh's chroot) the chroot's
//! mysqld or mariadbd, so that the point-in-time tests run on each server
//! kind scripts/test.sh covers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::mariadb::{free_port, Server};

pub struct LogServer {
    /// The chroot, when the server runs in one.
    root: Option<PathBuf>,
    /// The data directory as the server sees it.
    dir: PathBuf,
    port: u16,
    mysql: bool,
    watchdog: Option<(Child, ChildStdin)>,
    pub server: &'static Server,
}

fn outside(root: &Option<PathBuf>, path: &Path) -> PathBuf {
    match root {
        Some(r) => r.join(path.strip_prefix("/").unwrap()),
        None => path.to_path_buf(),
    }
}

impl LogServer {
    /// Initializes and starts a server with its binary log on
    /// (`binlog_format=ROW`, `binlog_row_image=FULL`).
    pub fn start() -> LogServer {
        let root = std::env::var("BILLMGR_OPS_TEST_DB_ROOT")
            .ok()
            .filter(|r| !r.is_empty())
            .map(PathBuf::from);
        let mysql = root.as_ref().is_some_and(|r| {
            r.join("usr/sbin/mysqld").exists() && !r.join("usr/sbin/mariadbd").exists()
        });
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = match &root {
            Some(_) => PathBuf::from(format!("/srv/billmgr-ops-log-{}-{n}", std::process::id())),
            None => {
                std::env::temp_dir().join(format!("billmgr-ops-log-{}-{n}", std::process::id()))
            }
        };
        let host_dir = outside(&root, &dir);
        let _ = std::fs::remove_dir_all(&host_dir);
        std::fs::create_dir_all(&host_dir).unwrap();
        let data = dir.join("data");
        let init = if mysql {
            vec![
                "/usr/sbin/mysqld".to_string(),
                "--no-defaults".into(),
                "--initialize-insecure".into(),
                format!("--datadir={}", data.display()),
                "--user=root".into(),
            ]
        } else {
            let install = if root.is_some() {
                "mysql_install_db"
            } else {
                "mariadb-install-db"
            };
            let mut a = vec![
                install.to_string(),
                "--no-defaults".into(),
                format!("--datadir={}", data.display()),
                "--user=root".into(),
                "--auth-root-authentication-method=normal".into(),
                "--skip-test-db".into(),
                // Many servers at once (the suite's, and each test's
                // own) would share the kernel's asynchronous I/O.
                "--innodb-use-native-aio=0".into(),
            ];
            // The chroot cannot resolve the machine's host name.
            if root.is_some() {
                a.push("--force".into());
            }
            a
        };
        let out = in_root(&root, &init)
            .output()
            .expect("cannot initialize the log server");
        assert!(
            out.status.success(),
            "initializing the log server failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut s = LogServer {
            root,
            dir,
            port,
            mysql,
            watchdog: None,
            server: Server::at(format!("mysql://root@127.0.0.1:{port}")),
        };
        s.up();
        s
    }

    fn args(&self) -> Vec<String> {
        let d = &self.dir;
        let mut a = vec![
            if self.mysql {
                "/usr/sbin/mysqld"
            } else if self.root.is_some() {
                "/usr/sbin/mariadbd"
            } else {
                "mariadbd"
            }
            .to_string(),
            "--no-defaults".into(),
            format!("--datadir={}", d.join("data").display()),
            format!("--socket={}", d.join("mysql.sock").display()),
            format!("--pid-file={}", d.join("pid").display()),
            format!("--log-error={}", d.join("error.log").display()),
            format!("--port={}", self.port),
            "--bind-address=127.0.0.1".into(),
            "--user=root".into(),
            format!("--log-bin={}", d.join("data/binlog").display()),
            "--server-id=1".into(),
            "--binlog-row-image=FULL".into(),
            "--innodb-buffer-pool-size=64M".into(),
            "--innodb-use-native-aio=0".into(),
            "--innodb-flush-log-at-trx-commit=2".into(),
            "--character-set-server=utf8mb4".into(),
            "--max-connections=200".into(),
        ];
        if self.mysql {
            a.extend(["--mysqlx=OFF".to_string(), "--secure-file-priv=".into()]);
        } else {
            a.extend([
                "--binlog-format=ROW".to_string(),
                "--skip-name-resolve".into(),
                "--local-infile=1".into(),
                "--collation-server=utf8mb4_general_ci".into(),
            ]);
        }
        a
    }

    /// Starts the server (again), and waits until it answers.
    pub fn up(&mut self) {
        assert!(self.watchdog.is_none(), "the log server is up already");
        // The watchdog stops the server when its stdin closes: at `down`,
        // or when the test process ends, however it ends.
        let script = r#""$0" "$@" & p=$!; read _; kill "$p"; wait "$p""#;
        let args = self.args();
        let (program, rest): (String, Vec<String>) = match &self.root {
            Some(r) => (
                "chroot".into(),
                std::iter::once(r.display().to_string())
                    .chain(args)
                    .collect(),
            ),
            None => (args[0].clone(), args[1..].to_vec()),
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(program)
            .args(rest)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start the log server");
        let stdin = child.stdin.take().unwrap();
        self.watchdog = Some((child, stdin));
        let deadline = Instant::now() + Duration::from_secs(120);
        while mysql::Conn::new(mysql::Opts::from_url(&self.server.base_url).unwrap()).is_err() {
            assert!(
                Instant::now() < deadline,
                "the log server did not come up:\n{}",
                std::fs::read_to_string(outside(&self.root, &self.dir.join("error.log")))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the server cleanly and waits until it has gone.
    pub fn down(&mut self) {
        if let Some((mut child, mut stdin)) = self.watchdog.take() {
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// A root connection.
    pub fn conn(&self) -> mysql::Conn {
        mysql::Conn::new(mysql::Opts::from_url(&self.server.base_url).unwrap())
            .expect("cannot connect to the log server")
    }
}

fn in_root(root: &Option<PathBuf>, args: &[String]) -> Command {
    match root {
        Some(r) => {
            let mut c = Command::new("chroot");
            c.arg(r).args(args);
            c
        }
        None => {
            let mut c = Command::new(&args[0]);
            c.args(&args[1..]);
            c
        }
    }
}

impl Drop for LogServer {
    fn drop(&mut self) {
        self.down();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(outside(&self.root, &self.dir));
        }
    }
}
