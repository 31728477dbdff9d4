//! The remote storage servers the tests talk to, real ones on loopback,
//! each started once per test process: OpenSSH's sshd (SFTP), pyftpdlib
//! (FTP), vsftpd (FTPS, with a test CA), moto (S3, signatures checked).
//! Each test uses a directory or prefix of its own on them.
//!
//! The Python servers come from the venv that scripts/test.sh makes
//! (`target/test-servers/venv`, or BILLMGR_OPS_TEST_PYTHON). Every server
//! lives under a watchdog whose stdin is a pipe held by this process: when
//! the test process ends, however it ends, the server stops.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Keeps a server alive until the test process exits: its stdin pipe, and
/// the child, reaped on drop if it ever is.
struct Watchdog {
    _stdin: Mutex<ChildStdin>,
    child: Mutex<Child>,
}

impl Watchdog {
    fn new(mut child: Child) -> Watchdog {
        let stdin = child.stdin.take().expect("piped stdin");
        Watchdog {
            _stdin: Mutex::new(stdin),
            child: Mutex::new(child),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Ok(child) = self.child.get_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free TCP port on 127.0.0.1")
}

fn wait_for_port(port: u16, what: &str) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not start listening on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn base_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("billmgr-ops-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("cannot create a server directory");
    dir
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("BILLMGR_OPS_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-servers/venv/bin/python");
    assert!(
        venv.is_file(),
        "the storage tests need the test servers' Python venv: run scripts/test.sh (it installs \
         moto and pyftpdlib into target/test-servers/venv), or set BILLMGR_OPS_TEST_PYTHON"
    );
    venv
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/servers")
        .join(name)
}

/// Runs `script` under `sh`, with a watchdog: `$1` is the server's command
/// line, stopped when our end of the pipe closes.
fn watched(command: &str, dir: &Path) -> Watchdog {
    let script = format!(
        "{command} & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid; rm -rf '{}'",
        dir.display()
    );
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start sh");
    Watchdog::new(child)
}

/// Fixtures that change the host (a system account, /var/run/vsftpd) run
/// only when BILLMGR_OPS_TEST_SYSTEM=1 allows it, as scripts/test.sh and
/// CI do; otherwise the test fails saying so: no silent skip.
fn allow_host_changes(what: &str) {
    assert!(
        std::env::var("BILLMGR_OPS_TEST_SYSTEM").as_deref() == Ok("1"),
        "this test needs {what} on this host; run the suite through scripts/test.sh \
         (or set BILLMGR_OPS_TEST_SYSTEM=1, as root) to allow it"
    );
}

/// A system account with a password, for the servers that log in system
/// users (vsftpd, sshd with a password); created once, as root, when
/// [`allow_host_changes`] allows it.
pub fn test_account() -> (&'static str, &'static str) {
    static ONCE: OnceLock<()> = OnceLock::new();
    let (user, password) = ("billmgrops-test", "Tls-s3cret 1");
    ONCE.get_or_init(|| {
        allow_host_changes("the system account `billmgrops-test` (useradd, chpasswd)");
        let exists = Command::new("id")
            .arg(user)
            .output()
            .unwrap()
            .status
            .success();
        if !exists {
            let ok = Command::new("useradd")
                .args(["-m", "-s", "/bin/sh", user])
                .status()
                .expect("useradd")
                .success();
            assert!(
                ok,
                "cannot create the test account (the tests run as root in CI)"
            );
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        chpasswd
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{user}:{password}\n").as_bytes())
            .unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
    });
    (user, password)
}

pub struct Sftp {
    pub port: u16,
    pub key_file: PathBuf,
    pub dir: PathBuf,
    _watchdog: Watchdog,
}

/// An sshd on loopback that lets this user in with a test key.
pub fn sftp() -> &'static Sftp {
    static S: OnceLock<Sftp> = OnceLock::new();
    S.get_or_init(|| {
        let sshd = PathBuf::from("/usr/sbin/sshd");
        assert!(
            sshd.is_file(),
            "the SFTP tests need openssh-server (scripts/test.sh installs it)"
        );
        let dir = base_dir("sshd");
        let keygen = |name: &str| {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(name))
                .status()
                .expect("ssh-keygen")
                .success();
            assert!(ok, "ssh-keygen failed");
        };
        keygen("host_key");
        keygen("client_key");
        test_account();
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication yes\nKbdInteractiveAuthentication no\nStrictModes no\n\
                 UsePAM no\nSubsystem sftp internal-sftp\nLogLevel ERROR\nMaxStartups 100\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let watchdog = watched(
            &format!("{} -D -e -f {}", sshd.display(), config.display()),
            &dir,
        );
        wait_for_port(port, "sshd");
        Sftp {
            port,
            key_file: dir.join("client_key"),
            dir,
            _watchdog: watchdog,
        }
    })
}

pub struct Ftp {
    pub port: u16,
    pub user: &'static str,
    pub password: &'static str,
    pub dir: PathBuf,
    _watchdog: Watchdog,
}

fn openssl(args: &str, dir: &Path) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("the FTPS tests need the openssl command");
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// pyftpdlib on loopback: plain FTP.
pub fn ftp() -> &'static Ftp {
    static S: OnceLock<Ftp> = OnceLock::new();
    S.get_or_init(|| {
        let dir = base_dir("ftpd");
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        let (user, password) = ("billmgr", "s3cret pass");
        let port = free_port();
        let watchdog = watched(
            &format!(
                "{} {} {port} {} {user} '{password}' </dev/null >/dev/null 2>&1",
                python().display(),
                fixture("ftpd.py").display(),
                root.display()
            ),
            &dir,
        );
        wait_for_port(port, "the FTP server");
        Ftp {
            port,
            user,
            password,
            dir: root,
            _watchdog: watchdog,
        }
    })
}

pub struct Ftps {
    pub port: u16,
    pub user: &'static str,
    pub password: &'static str,
    /// The account's home, the root of what it sees.
    pub dir: PathBuf,
    /// The CA that signed the server's certificate (for SSL_CERT_FILE).
    pub ca_file: PathBuf,
    _watchdog: Watchdog,
}

/// vsftpd on loopback with TLS required on control and data connections,
/// a certificate for 127.0.0.1 signed by a test CA, and a system account
/// of its own (created here; the tests run as root, as CI does).
pub fn ftps() -> &'static Ftps {
    static S: OnceLock<Ftps> = OnceLock::new();
    S.get_or_init(|| {
        let vsftpd = PathBuf::from("/usr/sbin/vsftpd");
        assert!(vsftpd.is_file(), "the FTPS tests need vsftpd (scripts/test.sh installs it)");
        let dir = base_dir("vsftpd");
        openssl(
            "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=billmgr-ops-test-CA -keyout ca.key -out ca.pem",
            &dir,
        );
        openssl(
            "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr",
            &dir,
        );
        std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out server.pem",
            &dir,
        );
        let (user, password) = test_account();
        let home = PathBuf::from(format!("/home/{user}"));
        allow_host_changes("vsftpd's /var/run/vsftpd/empty");
        let _ = std::fs::create_dir_all("/var/run/vsftpd/empty");
        let port = free_port();
        std::fs::write(
            dir.join("vsftpd.conf"),
            format!(
                "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
                 local_enable=YES\nwrite_enable=YES\nanonymous_enable=NO\nchroot_local_user=YES\n\
                 allow_writeable_chroot=YES\nssl_enable=YES\nrsa_cert_file={d}/server.pem\n\
                 rsa_private_key_file={d}/server.key\nforce_local_logins_ssl=YES\n\
                 force_local_data_ssl=YES\nrequire_ssl_reuse=NO\npasv_enable=YES\n\
                 seccomp_sandbox=NO\npam_service_name=vsftpd\n\
                 secure_chroot_dir=/var/run/vsftpd/empty\nxferlog_enable=NO\nmax_clients=200\n\
                 max_per_ip=200\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let watchdog = watched(
            &format!(
                "{} {}/vsftpd.conf </dev/null >/dev/null 2>&1",
                vsftpd.display(),
                dir.display()
            ),
            &dir,
        );
        wait_for_port(port, "vsftpd");
        Ftps {
            port,
            user,
            password,
            dir: home,
            ca_file: dir.join("ca.pem"),
            _watchdog: watchdog,
        }
    })
}

pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    _watchdog: Watchdog,
}

/// moto on loopback with a user, its key and a bucket; requests must be
/// signed with that key.
pub fn s3() -> &'static S3 {
    static S: OnceLock<S3> = OnceLock::new();
    S.get_or_init(|| {
        let port = free_port();
        let mut child = Command::new(python())
            .arg(fixture("s3d.py"))
            .args([&port.to_string(), "copies"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start the S3 server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the S3 server did not start ({e}): {line:?}"));
        S3 {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: v["bucket"].as_str().unwrap().to_string(),
            access_key: v["access_key"].as_str().unwrap().to_string(),
            secret_key: v["secret_key"].as_str().unwrap().to_string(),
            _watchdog: Watchdog::new(child),
        }
    })
}

/// A TCP relay in front of a server, which a test can cut: after `cut_after`
/// bytes from client to server it drops every connection once (later
/// connections pass again), or with `down` it refuses all from then on.
pub struct Relay {
    pub port: u16,
    passed: Arc<AtomicU64>,
    cut_at: Arc<AtomicU64>,
    cut_done: Arc<AtomicBool>,
    down: Arc<AtomicBool>,
}

impl Relay {
    pub fn new(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Relay {
            port,
            passed: Arc::new(AtomicU64::new(0)),
            cut_at: Arc::new(AtomicU64::new(u64::MAX)),
            cut_done: Arc::new(AtomicBool::new(false)),
            down: Arc::new(AtomicBool::new(false)),
        };
        let (passed, cut_at, cut_done, down) = (
            relay.passed.clone(),
            relay.cut_at.clone(),
            relay.cut_done.clone(),
            relay.down.clone(),
        );
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if down.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                open.lock().unwrap().push(client.try_clone().unwrap());
                open.lock().unwrap().push(server.try_clone().unwrap());
                let pump = |mut from: TcpStream, mut to: TcpStream, count: bool| {
                    let (passed, cut_at, cut_done, down, open) = (
                        passed.clone(),
                        cut_at.clone(),
                        cut_done.clone(),
                        down.clone(),
                        open.clone(),
                    );
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if count {
                                let total = passed.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                                if total >= cut_at.load(Ordering::SeqCst)
                                    && !cut_done.swap(true, Ordering::SeqCst)
                                {
                                    for s in open.lock().unwrap().drain(..) {
                                        let _ = s.shutdown(Shutdown::Both);
                                    }
                                    break;
                                }
                            }
                            if down.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                };
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    true,
                );
                pump(server, client, false);
            }
        });
        relay
    }

    /// Drop every open connection once, when `bytes` more have passed
    /// from client to server.
    pub fn cut_after(&self, bytes: u64) {
        self.cut_at
            .store(self.passed.load(Ordering::SeqCst) + bytes, Ordering::SeqCst);
    }

    /// From `bytes` on, cut everything and refuse new connections.
    pub fn down_after(&self, bytes: u64) {
        self.cut_after(bytes);
        let (cut_done, down) = (self.cut_done.clone(), self.down.clone());
        std::thread::spawn(move || {
            while !cut_done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            down.store(true, Ordering::SeqCst);
        });
    }

    pub fn was_cut(&self) -> bool {
        self.cut_done.load(Ordering::SeqCst)
    }
}
