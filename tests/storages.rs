//! Copies on remote storages, against real servers on loopback: SFTP
//! (OpenSSH), FTP and FTPS (pyftpdlib), S3 (moto, signatures checked).
//! For each kind: setup and connection check through the panel, backup,
//! list, verify, full restore, delete with clean_storages; wrong
//! credentials; transfers cut midway; secrets never shown or stored plain.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{servers, Output, Panel, TestDb};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Sftp,
    Ftp,
    Ftps,
    S3,
}

struct Fixture {
    db: TestDb,
    panel: Panel,
    kind: Kind,
    /// This test's own directory (SFTP, FTP) or prefix (S3) on the server.
    path: String,
}

fn fixture(kind: Kind, clients: u64) -> Fixture {
    let db = TestDb::seeded(clients);
    let panel = Panel::for_backups(&db);
    let path = match kind {
        Kind::Sftp => servers::sftp().dir.join(&db.name).display().to_string(),
        _ => format!("t/{}", db.name),
    };
    Fixture {
        db,
        panel,
        kind,
        path,
    }
}

impl Fixture {
    /// The environment a process needs to reach this kind (the FTPS CA).
    fn env(&self) -> Vec<(&'static str, String)> {
        match self.kind {
            Kind::Ftps => vec![(
                "SSL_CERT_FILE",
                servers::ftps().ca_file.display().to_string(),
            )],
            _ => Vec::new(),
        }
    }

    /// The setup form's storage fields for this kind, pointing at `port`
    /// (the server's, or a relay's) with the right or a wrong secret.
    fn storage_fields(&self, port: Option<u16>, right_secret: bool) -> Vec<(&'static str, String)> {
        let mut f = vec![("path", self.path.clone())];
        match self.kind {
            Kind::Sftp => {
                let s = servers::sftp();
                let key = if right_secret {
                    s.key_file.display().to_string()
                } else {
                    let other = s.dir.join(format!("stranger-{}", self.db.name));
                    let _ = std::fs::remove_file(&other);
                    let ok = Command::new("ssh-keygen")
                        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                        .arg(&other)
                        .status()
                        .unwrap()
                        .success();
                    assert!(ok);
                    other.display().to_string()
                };
                f.extend([
                    ("storage_kind", "sftp".into()),
                    ("host", "127.0.0.1".into()),
                    ("port", port.unwrap_or(s.port).to_string()),
                    ("user", whoami()),
                    ("key_file", key),
                    ("host_key", "off".into()),
                ]);
            }
            Kind::Ftp | Kind::Ftps => {
                let tls = self.kind == Kind::Ftps;
                let (server_port, user, password) = if tls {
                    let s = servers::ftps();
                    (s.port, s.user, s.password)
                } else {
                    let s = servers::ftp();
                    (s.port, s.user, s.password)
                };
                let port = port.unwrap_or(server_port);
                f.extend([
                    ("storage_kind", "ftp".into()),
                    ("host", "127.0.0.1".into()),
                    ("port", port.to_string()),
                    ("user", user.into()),
                    ("tls", if tls { "on" } else { "off" }.into()),
                    (
                        "password",
                        if right_secret { password } else { "wrong" }.into(),
                    ),
                ]);
            }
            Kind::S3 => {
                let s = servers::s3();
                let endpoint = match port {
                    Some(p) => format!("http://127.0.0.1:{p}"),
                    None => s.endpoint.clone(),
                };
                f.extend([
                    ("storage_kind", "s3".into()),
                    ("endpoint", endpoint),
                    ("bucket", s.bucket.clone()),
                    ("access_key", s.access_key.clone()),
                    (
                        "secret_key",
                        if right_secret {
                            s.secret_key.clone()
                        } else {
                            "wrong".into()
                        },
                    ),
                ]);
            }
        }
        f
    }

    fn setup(&self, name: &str, fields: &[(&'static str, String)], button: Option<&str>) -> Output {
        let mut call = self
            .panel
            .call("billmgr.backup.setup")
            .param("sok", "ok")
            .param("storage_name", name)
            .param("plan_name", &format!("plan-{name}"))
            .param("schedule", "off")
            .param("at_time", "03:00");
        for (k, v) in fields {
            call = call.param(k, v);
        }
        if let Some(b) = button {
            call = call.param("clicked_button", b);
        }
        for (k, v) in self.env() {
            call = call.env(k, &v);
        }
        call.run()
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = self.panel.command(args);
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn plan_id(&self, storage: &str) -> String {
        self.db.scalar(&format!(
            "SELECT id FROM billmgrops_plan WHERE name = 'plan-{storage}'"
        ))
    }

    /// The objects this test has on the server.
    fn objects(&self) -> Vec<String> {
        let mut names: Vec<String> = match self.kind {
            Kind::Sftp => list_dir(&PathBuf::from(&self.path)),
            Kind::Ftp => list_dir(&servers::ftp().dir.join(&self.path)),
            Kind::Ftps => list_dir(&servers::ftps().dir.join(&self.path)),
            Kind::S3 => s3_keys(&format!("{}/", self.path)),
        };
        names.sort();
        names
    }

    fn checksums(&self) -> Vec<u64> {
        ["account", "item", "payment", "itemparam", "user"]
            .iter()
            .map(|t| self.db.checksum(t))
            .collect()
    }
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn list_dir(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Object names under `prefix` in the test bucket, read with boto3.
fn s3_keys(prefix: &str) -> Vec<String> {
    let s = servers::s3();
    let script = format!(
        "import boto3\nc = boto3.client('s3', endpoint_url='{}', region_name='us-east-1', \
         aws_access_key_id='{}', aws_secret_access_key='{}')\n\
         for o in c.list_objects_v2(Bucket='{}', Prefix='{prefix}').get('Contents', []):\n    \
         print(o['Key'][len('{prefix}'):])\n",
        s.endpoint, s.access_key, s.secret_key, s.bucket
    );
    let python = std::env::var_os("BILLMGR_OPS_TEST_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-servers/venv/bin/python"),
        PathBuf::from,
    );
    let out = Command::new(python).arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Setup with a check, a backup, list, verify, restore, delete with
/// clean_storages; the secret is never shown, logged or stored plain.
fn round_trip(kind: Kind) {
    let f = fixture(kind, 150);
    let fields = f.storage_fields(None, true);
    let checked = f.setup("remote", &fields, Some("check"));
    assert!(checked.ok(), "check: {}", checked.text());
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM billmgrops_storage"),
        "0",
        "a check saves nothing"
    );
    let saved = f.setup("remote", &fields, None);
    assert!(saved.ok(), "setup: {}", saved.text());
    let plan = f.plan_id("remote");
    f.cli_ok(&["backup", "create", "--plan", &plan]);
    let name =
        f.db.scalar("SELECT name FROM billmgrops_backup WHERE state = 'ok'");
    let objects = f.objects();
    assert_eq!(
        objects,
        vec![format!("{name}.json"), format!("{name}.tar")],
        "exactly the archive and its listing, nothing half-written"
    );
    assert!(f.cli_ok(&["backup", "list"]).contains(&name));
    let verified = f.cli(&["backup", "verify", &name]);
    assert!(
        String::from_utf8_lossy(&verified.stderr).contains(": ok ("),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    let before = f.checksums();
    f.db.exec("UPDATE account SET name = CONCAT(name, ' (changed)') WHERE id % 3 = 0");
    f.db.exec("DELETE FROM itemparam WHERE id % 2 = 0");
    assert_ne!(f.checksums(), before);
    f.cli_ok(&["backup", "restore", &name]);
    assert_eq!(
        f.checksums(),
        before,
        "the restore from {kind:?} brings back every row"
    );

    // The secret: not in the form, not in the database, not in the log.
    let secret = match kind {
        Kind::Ftp => Some(servers::ftp().password.to_string()),
        Kind::Ftps => Some(servers::ftps().password.to_string()),
        Kind::S3 => Some(servers::s3().secret_key.clone()),
        Kind::Sftp => None,
    };
    if let Some(secret) = secret {
        let form = f.panel.call("billmgr.backup.setup").run();
        assert!(!form.text().contains(&secret));
        let stored = f.db.scalar(
            "SELECT CONCAT(s.location, a.params, a.secret) FROM billmgrops_storage s JOIN billmgrops_storage_access a ON a.storage = s.id",
        );
        assert!(!stored.contains(&secret), "the secret is stored sealed");
        assert!(stored.contains("age:"));
        let log = std::fs::read_to_string(f.panel.mgrdir().join("var/billmgr-ops.log"))
            .unwrap_or_default();
        assert!(!log.contains(&secret), "the secret is never logged");
    }

    let id = f.db.scalar("SELECT id FROM billmgrops_backup");
    let mut delete = f
        .panel
        .call("backups.delete")
        .param("elid", &id)
        .param("clean_storages", "on");
    for (k, v) in f.env() {
        delete = delete.env(k, &v);
    }
    let deleted = delete.run();
    assert!(deleted.ok(), "{}", deleted.text());
    assert_eq!(
        f.objects(),
        Vec::<String>::new(),
        "clean_storages empties the storage"
    );
    assert_eq!(f.db.scalar("SELECT COUNT(*) FROM billmgrops_backup"), "0");
}

#[test]
fn sftp_backup_restore_delete() {
    round_trip(Kind::Sftp);
}

#[test]
fn ftp_backup_restore_delete() {
    round_trip(Kind::Ftp);
}

#[test]
fn ftps_backup_restore_delete() {
    round_trip(Kind::Ftps);
}

/// FTPS: an untrusted certificate is refused.
#[test]
fn ftps_check_needs_a_trusted_certificate() {
    let f = fixture(Kind::Ftps, 1);
    let fields = f.storage_fields(None, true);
    let checked = f.setup("tls", &fields, Some("check"));
    assert!(checked.ok(), "with the CA trusted: {}", checked.text());
    let mut call = f
        .panel
        .call("billmgr.backup.setup")
        .param("sok", "ok")
        .param("storage_name", "tls")
        .param("plan_name", "plan-tls")
        .param("clicked_button", "check");
    for (k, v) in &fields {
        call = call.param(k, v);
    }
    let untrusted = call.run();
    let (kind, object) = untrusted.error_type();
    assert_eq!((kind.as_str(), object.as_str()), ("storage", "tls"));
}

#[test]
fn s3_backup_restore_delete() {
    round_trip(Kind::S3);
}

/// Wrong credentials: the check names the storage and the failing step;
/// a copy to it fails with the storage in its reason; nothing is left.
fn wrong_credentials(kind: Kind) {
    let f = fixture(kind, 5);
    let fields = f.storage_fields(None, false);
    let checked = f.setup("badcreds", &fields, Some("check"));
    let (kind_attr, object) = checked.error_type();
    assert_eq!(kind_attr, "storage", "{}", checked.text());
    assert_eq!(object, "badcreds");
    let saved = f.setup("badcreds", &fields, None);
    assert!(
        saved.ok(),
        "saving without a check is allowed: {}",
        saved.text()
    );
    let storage = f.db.scalar("SELECT id FROM billmgrops_storage");
    let out = f.cli(&["backup", "create", "--storage", &storage]);
    assert!(!out.status.success());
    let reason = f.db.scalar("SELECT reason FROM billmgrops_backup");
    assert!(
        reason.contains("127.0.0.1") && reason.contains(&f.path.trim_matches('/').to_string()),
        "the reason names the storage: {reason}"
    );
    let check = f.cli(&["backup", "storage", "check", "badcreds"]);
    assert!(!check.status.success());
    let said = String::from_utf8_lossy(&check.stderr);
    // Typed as permanent: a person must act.
    assert!(
        said.contains("failed") && said.contains("will fail again"),
        "{said}"
    );
}

#[test]
fn sftp_wrong_key_is_a_clear_error() {
    wrong_credentials(Kind::Sftp);
}

#[test]
fn ftp_wrong_password_is_a_clear_error() {
    wrong_credentials(Kind::Ftp);
}

#[test]
fn s3_wrong_secret_is_a_clear_error() {
    wrong_credentials(Kind::S3);
}

/// A transfer cut midway: retried to a good copy, or failed with nothing
/// that looks like a copy; the next copy works either way.
fn cut_midway(kind: Kind, down: bool) {
    let f = fixture(kind, 400);
    let target = match kind {
        Kind::Sftp => servers::sftp().port,
        Kind::Ftp => servers::ftp().port,
        Kind::Ftps => servers::ftps().port,
        Kind::S3 => servers::s3()
            .endpoint
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap(),
    };
    let relay = servers::Relay::new(target);
    let fields = f.storage_fields(Some(relay.port), true);
    assert!(f.setup("cut", &fields, None).ok());
    let storage = f.db.scalar("SELECT id FROM billmgrops_storage");
    // FTP's data goes on connections of its own, straight to the server:
    // cutting its control connection is what a relay can do.
    let cut = if matches!(kind, Kind::Ftp | Kind::Ftps) {
        150
    } else {
        150_000
    };
    if down {
        relay.down_after(cut);
    } else {
        relay.cut_after(cut);
    }
    let out = f.cli(&["backup", "create", "--storage", &storage]);
    assert!(relay.was_cut(), "the copy passed less than the cut-off");
    let state = f.db.scalar("SELECT state FROM billmgrops_backup");
    let name = f.db.scalar("SELECT name FROM billmgrops_backup");
    if state == "ok" {
        assert!(out.status.success());
        f.cli_ok(&["backup", "verify", &name]);
    } else {
        assert_eq!(state, "failed", "{}", String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success());
        assert!(
            !f.objects().iter().any(|o| o.ends_with(".json")),
            "a failed copy leaves no listing: {:?}",
            f.objects()
        );
    }
    if down {
        assert_eq!(state, "failed", "a server that stays away fails the copy");
        // Typed as temporary: the server may come back.
        let check = f.cli(&["backup", "storage", "check", "cut"]);
        assert!(!check.status.success());
        let said = String::from_utf8_lossy(&check.stderr);
        assert!(said.contains("temporary"), "{said}");
    } else if kind == Kind::S3 {
        assert_eq!(state, "ok", "a part cut off is sent again");
    }
}

#[test]
fn s3_part_cut_off_is_retried() {
    cut_midway(Kind::S3, false);
}

#[test]
fn s3_server_gone_fails_cleanly() {
    cut_midway(Kind::S3, true);
}

#[test]
fn sftp_connection_dropped_for_good_fails_cleanly() {
    cut_midway(Kind::Sftp, true);
}

#[test]
fn ftp_connection_dropped_for_good_fails_cleanly() {
    cut_midway(Kind::Ftp, true);
}

/// A plan sends each copy to its storage and to further ones: streamed
/// from the first, checked, listed; a further storage that fails is
/// recorded and the copy stays good elsewhere; delete cleans every place.
#[test]
fn a_plan_sends_copies_to_several_storages() {
    let f = fixture(Kind::S3, 20);
    let s3 = servers::s3();
    let ftp = servers::ftp();
    let add = |name: &str, args: &[&str], secret: &str| {
        let mut cmd = f
            .panel
            .command(&[&["backup", "storage", "add", name], args].concat());
        let out = cmd
            .env("BILLMGR_OPS_STORAGE_SECRET", secret)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        f.db.scalar(&format!(
            "SELECT id FROM billmgrops_storage WHERE name = '{name}'"
        ))
    };
    let in_s3 = add(
        "cloud",
        &[
            "--kind",
            "s3",
            "--endpoint",
            &s3.endpoint,
            "--bucket",
            &s3.bucket,
            "--access-key",
            &s3.access_key,
            "--path",
            &f.path,
        ],
        &s3.secret_key,
    );
    let ftp_path = format!("t/{}-ftp", f.db.name);
    let in_ftp = add(
        "ftp",
        &[
            "--kind",
            "ftp",
            "--host",
            "127.0.0.1",
            "--port",
            &ftp.port.to_string(),
            "--user",
            ftp.user,
            "--path",
            &ftp_path,
        ],
        ftp.password,
    );
    let broken = add(
        "broken",
        &[
            "--kind",
            "ftp",
            "--host",
            "127.0.0.1",
            "--port",
            &ftp.port.to_string(),
            "--user",
            ftp.user,
            "--path",
            "t/broken",
        ],
        "not the password",
    );
    let local = vec![
        ("storage_kind", "local".to_string()),
        ("path", "var/copies".to_string()),
        ("also_storages", format!("{in_s3},{in_ftp},{broken}")),
    ];
    let saved = f.setup("here", &local, None);
    assert!(saved.ok(), "{}", saved.text());
    let plan = f.plan_id("here");
    f.cli_ok(&["backup", "create", "--plan", &plan]);
    let name =
        f.db.scalar("SELECT name FROM billmgrops_backup WHERE state = 'ok'");
    let expected = vec![format!("{name}.json"), format!("{name}.tar")];
    assert_eq!(f.objects(), expected, "in S3");
    let mut in_ftp_dir = list_dir(&ftp.dir.join(&ftp_path));
    in_ftp_dir.sort();
    assert_eq!(in_ftp_dir, expected, "on FTP");
    assert_eq!(
        std::fs::read(f.panel.mgrdir().join(format!("var/copies/{name}.tar"))).unwrap(),
        std::fs::read(ftp.dir.join(&ftp_path).join(format!("{name}.tar"))).unwrap(),
        "the same bytes everywhere"
    );
    assert_eq!(
        f.db.scalar("SELECT GROUP_CONCAT(CONCAT(storage_id, ':', state) ORDER BY storage_id) FROM billmgrops_copy_place"),
        format!("{in_s3}:ok,{in_ftp}:ok,{broken}:failed")
    );
    let reason = f.db.scalar(&format!(
        "SELECT reason FROM billmgrops_copy_place WHERE storage_id = {broken}"
    ));
    assert!(
        reason.contains("broken") && reason.contains("denied"),
        "{reason}"
    );
    let rows = f.panel.call("billmgr.backup").run().rows();
    assert_eq!(
        crate::harness::cell(&rows[0], "storage"),
        "here, cloud, ftp, broken (Failed)"
    );
    let id = f.db.scalar("SELECT id FROM billmgrops_backup");
    let deleted = f
        .panel
        .call("backups.delete")
        .param("elid", &id)
        .param("clean_storages", "on")
        .run();
    assert!(deleted.ok(), "{}", deleted.text());
    assert!(f.objects().is_empty());
    assert!(list_dir(&ftp.dir.join(&ftp_path)).is_empty());
    assert!(list_dir(&f.panel.mgrdir().join("var/copies")).is_empty());
    assert_eq!(
        f.db.scalar("SELECT COUNT(*) FROM billmgrops_copy_place"),
        "0"
    );
}

/// The settings' button checks the default storage, whatever its kind.
#[test]
fn the_settings_check_the_default_storage() {
    let f = fixture(Kind::S3, 1);
    for (name, right) in [("good", true), ("bad", false)] {
        let fields = f.storage_fields(None, right);
        assert!(f.setup(name, &fields, None).ok());
    }
    let check = |storage: &str| {
        f.panel
            .call("billmgr.backup.settings")
            .param("sok", "ok")
            .param("path", "var/billmgr-ops/backup")
            .param("threads", "2")
            .param("compression", "3")
            .param("lock_timeout", "5")
            .param("default_storage", storage)
            .run();
        f.panel
            .call("billmgr.backup.settings")
            .param("sok", "ok")
            .param("clicked_button", "check_storage")
            .run()
    };
    let good =
        f.db.scalar("SELECT id FROM billmgrops_storage WHERE name = 'good'");
    let bad =
        f.db.scalar("SELECT id FROM billmgrops_storage WHERE name = 'bad'");
    let out = check(&good);
    assert!(out.ok(), "{}", out.text());
    let out = check(&bad);
    assert_eq!(
        out.error_type(),
        ("storage".into(), "bad".into()),
        "{}",
        out.text()
    );
    assert!(out.text().contains("access denied"), "{}", out.text());
}

/// SFTP with a password instead of a key, and the host key policies:
/// accept-new remembers the server, then refuses it when its key changes;
/// strict refuses a server not in known_hosts.
#[test]
fn sftp_password_login_and_host_key_policies() {
    let f = fixture(Kind::Sftp, 20);
    let s = servers::sftp();
    let (user, password) = servers::test_account();
    let home = f.panel.mgrdir().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let fields = |policy: &str, password: &str| {
        vec![
            ("storage_kind", "sftp".to_string()),
            ("host", "127.0.0.1".into()),
            ("port", s.port.to_string()),
            ("user", user.into()),
            ("password", password.into()),
            ("host_key", policy.into()),
            ("path", format!("/tmp/{}-pw", f.db.name)),
        ]
    };
    let check = |name: &str, fields: &[(&'static str, String)]| {
        let mut call = f
            .panel
            .call("billmgr.backup.setup")
            .param("sok", "ok")
            .param("storage_name", name)
            .param("plan_name", &format!("plan-{name}"))
            .param("clicked_button", "check")
            .env("HOME", &home.display().to_string());
        for (k, v) in fields {
            call = call.param(k, v);
        }
        call.run()
    };
    let known_hosts = home.join(".ssh/known_hosts");
    let strict = check("strict", &fields("strict", password));
    assert_eq!(strict.error_type().0, "storage", "{}", strict.text());
    assert!(
        strict.text().contains("not in known_hosts"),
        "{}",
        strict.text()
    );
    let first = check("pw", &fields("accept-new", password));
    assert!(first.ok(), "{}", first.text());
    let remembered = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(
        remembered.contains(&format!("[127.0.0.1]:{}", s.port)),
        "{remembered}"
    );
    let again = check("pw", &fields("strict", password));
    assert!(
        again.ok(),
        "a remembered server passes strict: {}",
        again.text()
    );
    let wrong = check("pw", &fields("accept-new", "not the password"));
    assert_eq!(wrong.error_type().0, "storage");
    assert!(wrong.text().contains("access denied"), "{}", wrong.text());
    // The server's key changes (another key recorded for it).
    let other = s.dir.join("other_host_key.pub");
    let _ = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(s.dir.join("other_host_key"))
        .status();
    let other = std::fs::read_to_string(other).unwrap();
    let key = other
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{} {key}\n", s.port)).unwrap();
    let changed = check("pw", &fields("accept-new", password));
    assert_eq!(changed.error_type().0, "storage", "{}", changed.text());
    assert!(changed.text().contains("differs"), "{}", changed.text());
    // A copy with the password, end to end.
    let mut save = f
        .panel
        .call("billmgr.backup.setup")
        .param("sok", "ok")
        .param("storage_name", "pw")
        .param("plan_name", "plan-pw")
        .param("schedule", "off");
    for (k, v) in fields("off", password) {
        save = save.param(k, &v);
    }
    assert!(save.run().ok());
    let plan = f.plan_id("pw");
    f.cli_ok(&["backup", "create", "--plan", &plan]);
    let name =
        f.db.scalar("SELECT name FROM billmgrops_backup WHERE state = 'ok'");
    assert!(f.cli_ok(&["backup", "list"]).contains(&name));
    let verified = f.cli(&["backup", "verify", &name]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}
