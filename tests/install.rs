//! `billmgr-ops install`, upgrade and `uninstall` into a temporary tree laid
//! out like /usr/local/mgr5 (with a recording `sbin/mgrctl`), and the .deb
//! built by scripts/package-deb.sh installed and removed by the real dpkg.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use billmgr_ops::test_support::Element;

use crate::harness::{binary, Panel, TestDb};

/// A panel tree and the system root its cron and logrotate files go to.
struct Tree {
    panel: Panel,
    sysroot: PathBuf,
}

impl Tree {
    fn new(db: &TestDb) -> Tree {
        let panel = Panel::new(db);
        let mgr = panel.mgrdir().clone();
        // A panel before install has no billmgr-ops.conf.
        std::fs::remove_file(mgr.join("etc/billmgr-ops.conf")).unwrap();
        crate::harness::panel_dirs(&mgr);
        // The panel's own files, which install must leave alone.
        std::fs::write(mgr.join("etc/billmgr.conf"), "DBHost localhost\n").unwrap();
        std::fs::write(mgr.join("etc/xml/billmgr_mod_other.xml"), "<mgrdata/>\n").unwrap();
        let mgrctl = mgr.join("sbin/mgrctl");
        std::fs::write(
            &mgrctl,
            format!(
                "#!/bin/sh\necho \"$*\" >> {}\n",
                mgr.join("var/mgrctl.calls").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&mgrctl, std::fs::Permissions::from_mode(0o755)).unwrap();
        let sysroot = PathBuf::from(format!("{}-sys", mgr.display()));
        let _ = std::fs::remove_dir_all(&sysroot);
        for dir in ["etc/cron.d", "etc/logrotate.d"] {
            std::fs::create_dir_all(sysroot.join(dir)).unwrap();
        }
        Tree { panel, sysroot }
    }

    /// The tree's siblings: the system root, the package and dpkg's root.
    fn sibling(&self, suffix: &str) -> PathBuf {
        PathBuf::from(format!("{}-{suffix}", self.mgr().display()))
    }

    fn mgr(&self) -> &Path {
        self.panel.mgrdir()
    }

    fn run(&self, args: &[&str]) -> Output {
        let sysroot = self.sysroot.display().to_string();
        let mut all = args.to_vec();
        all.extend(["--sysroot", &sysroot]);
        let out = self.panel.command(&all).output().unwrap();
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        out
    }

    fn mgrctl_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.mgr().join("var/mgrctl.calls"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Every path under the tree and the system root with its type, mode,
    /// owner, size, modification time and content hash (or link target).
    fn snapshot(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        walk(self.mgr(), "", &mut out);
        walk(&self.sysroot, "/", &mut out);
        // The record of mgrctl calls is the test's; the log is data every
        // run appends to (checked on its own).
        out.remove("var/mgrctl.calls");
        out.remove("var/billmgr-ops.log");
        out
    }
}

/// Each test copies the binary a few times: clean up after it.
impl Drop for Tree {
    fn drop(&mut self) {
        for dir in [
            self.sibling("sys"),
            self.sibling("deb"),
            self.sibling("root"),
        ] {
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = std::fs::remove_dir_all(self.mgr());
    }
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let rel = format!("{prefix}{}", path.file_name().unwrap().to_string_lossy());
        let desc = if meta.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(&path).unwrap().display())
        } else if meta.is_dir() {
            walk(&path, &format!("{rel}/"), out);
            format!("dir {:o}", meta.mode() & 0o7777)
        } else {
            format!(
                "file {:o} {}:{} {} {} {}",
                meta.mode() & 0o7777,
                meta.uid(),
                meta.gid(),
                meta.len(),
                meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
                sha256(&std::fs::read(&path).unwrap())
            )
        };
        out.insert(rel, desc);
    }
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn is_root() -> bool {
    // The owner of a file this process creates tells.
    let probe = std::env::temp_dir().join(format!("billmgr-ops-uid-{}", std::process::id()));
    std::fs::write(&probe, "").unwrap();
    let root = std::fs::metadata(&probe).unwrap().uid() == 0;
    std::fs::remove_file(&probe).unwrap();
    root
}

#[test]
fn install_places_every_file_with_its_mode_and_a_second_install_changes_nothing() {
    let db = TestDb::empty();
    let t = Tree::new(&db);
    std::fs::write(t.mgr().join("var/.xmlcache/billmgr.en.xml"), "<cached/>").unwrap();
    let out = t.run(&["install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mgr = t.mgr();

    let handler = mgr.join("addon/billmgr-ops");
    assert_eq!(mode(&handler), 0o750);
    assert_eq!(
        sha256(&std::fs::read(&handler).unwrap()),
        sha256(&std::fs::read(binary()).unwrap())
    );
    if is_root() {
        let meta = std::fs::metadata(&handler).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0));
    }
    // A first install is a companion: the manifests generated from xml/.
    let companion =
        billmgr_ops::test_support::manifests(billmgr_ops::test_support::InstallMode::Companion);
    assert_eq!(companion.len(), 3);
    for (name, text) in &companion {
        let path = mgr.join("etc/xml").join(name);
        assert_eq!(mode(&path), 0o644, "{name}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), *text, "{name}");
        assert!(text.contains("=\"billmgrops."), "{name}");
    }
    // The download CGI is the binary itself, a regular file under its name.
    let cgi = mgr.join("cgi/billmgr-ops-download");
    assert!(!std::fs::symlink_metadata(&cgi)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(mode(&cgi), 0o755);
    assert_eq!(
        sha256(&std::fs::read(&cgi).unwrap()),
        sha256(&std::fs::read(binary()).unwrap())
    );
    let config = mgr.join("etc/billmgr-ops.conf");
    assert_eq!(
        mode(&config),
        0o600,
        "the config may hold a database password"
    );
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/billmgr-ops.conf.example"),
    )
    .unwrap();
    assert_eq!(std::fs::read_to_string(&config).unwrap(), example);
    assert_eq!(
        std::fs::read_to_string(mgr.join("etc/billmgr-ops.conf.example")).unwrap(),
        example
    );
    let cron = std::fs::read_to_string(t.sysroot.join("etc/cron.d/billmgr-ops")).unwrap();
    assert!(
        cron.contains(&format!(
            "* * * * * root {} --mgrdir {} cron",
            handler.display(),
            mgr.display()
        )),
        "{cron}"
    );
    assert_eq!(mode(&t.sysroot.join("etc/cron.d/billmgr-ops")), 0o644);
    let rotate = std::fs::read_to_string(t.sysroot.join("etc/logrotate.d/billmgr-ops")).unwrap();
    assert!(rotate.starts_with("# billmgr-ops log"), "{rotate}");
    assert!(rotate.contains(&format!("{} {{", mgr.join("var/billmgr-ops.log").display())));
    // The panel's cache was cleared and the panel asked to reload, once.
    assert_eq!(
        std::fs::read_dir(mgr.join("var/.xmlcache"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(t.mgrctl_calls(), vec!["-m billmgr exit"]);
    // The tables were migrated.
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'billmgrops_notice'"),
        "1"
    );
    // The panel's own files are untouched.
    assert_eq!(
        std::fs::read_to_string(mgr.join("etc/xml/billmgr_mod_other.xml")).unwrap(),
        "<mgrdata/>\n"
    );

    let before = t.snapshot();
    let out = t.run(&["install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing changed"), "{}", stderr(&out));
    assert_eq!(t.snapshot(), before, "a second install changed files");
    assert_eq!(
        t.mgrctl_calls().len(),
        1,
        "a second install reloaded the panel"
    );
}

#[test]
fn installed_manifests_parse_and_name_the_installed_handler() {
    let db = TestDb::seeded(2);
    let t = Tree::new(&db);
    assert!(t.run(&["install"]).status.success());
    let mut handlers = 0;
    for entry in std::fs::read_dir(t.mgr().join("etc/xml")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("billmgr_mod_billmgrops") {
            continue;
        }
        let doc = Element::parse(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name} does not parse: {e}"));
        for handler in doc.find_all("handler") {
            let exe = t
                .mgr()
                .join("addon")
                .join(handler.get_attr("name").unwrap());
            let meta = std::fs::metadata(&exe)
                .unwrap_or_else(|_| panic!("{name} names {}, not installed", exe.display()));
            assert!(
                meta.mode() & 0o100 != 0,
                "{} is not executable",
                exe.display()
            );
            assert_eq!(handler.get_attr("type"), Some("xml"));
            assert!(handler.find_all("func").count() > 0);
            handlers += 1;
        }
    }
    assert!(
        handlers >= 2,
        "the backup and operations manifests name the handler"
    );
    // The installed handler answers a panel call.
    let out = std::process::Command::new(t.mgr().join("addon/billmgr-ops"))
        .env_clear()
        .env("BILLMGR_OPS_DB", &db.url)
        .env("MGR_DIR", t.mgr())
        .env("PARAM_func", "runningoperation")
        .env("AUTH_USER", "admin")
        .env("AUTH_LEVEL", "29")
        .output()
        .unwrap();
    let doc = Element::parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert!(doc.find_all("error").count() == 0, "{doc:?}");
}

#[test]
fn upgrade_keeps_a_modified_config_and_replaces_what_changed() {
    let db = TestDb::seeded(2);
    let t = Tree::new(&db);
    assert!(t.run(&["install"]).status.success());
    let mgr = t.mgr().to_path_buf();
    // The administrator's edits, and an older version's files.
    let config = mgr.join("etc/billmgr-ops.conf");
    let edited = "LogLevel debug\nNotifyEmail ops@example.com\n";
    std::fs::write(&config, edited).unwrap();
    let manifest = mgr.join("etc/xml/billmgr_mod_billmgrops_backup.xml");
    std::fs::write(&manifest, "<mgrdata><!-- old version --></mgrdata>\n").unwrap();
    std::fs::set_permissions(
        mgr.join("addon/billmgr-ops"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let retired = mgr.join("etc/xml/billmgr_mod_billmgrops_retired.xml");
    std::fs::write(&retired, "<mgrdata/>\n").unwrap();
    let record_path = mgr.join("etc/billmgr-ops.installed");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record_path).unwrap()).unwrap();
    record["files"]
        .as_array_mut()
        .unwrap()
        .push(retired.display().to_string().into());
    record["version"] = "0.0.1".into();
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();
    let status = |panel: &Panel| {
        let out = panel
            .command(&["status", "--json", "--no-probe"])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let before = status(&t.panel);
    assert_eq!(before["installed_version"], "0.0.1");
    assert!(
        before["problems"]
            .to_string()
            .contains("the panel runs billmgr-ops 0.0.1"),
        "{before}"
    );

    let out = t.run(&["install"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        edited,
        "upgrade touched the config"
    );
    assert!(
        stderr(&out).contains("kept the existing config"),
        "{}",
        stderr(&out)
    );
    // The installed mode (companion) is kept across the upgrade.
    let companion =
        billmgr_ops::test_support::manifests(billmgr_ops::test_support::InstallMode::Companion);
    let expected = &companion
        .iter()
        .find(|(f, _)| *f == "billmgr_mod_billmgrops_backup.xml")
        .unwrap()
        .1;
    assert!(std::fs::read_to_string(&manifest).unwrap() == *expected);
    assert_eq!(mode(&mgr.join("addon/billmgr-ops")), 0o750);
    assert!(
        !retired.exists(),
        "a file the new version does not ship was left"
    );
    let after = status(&t.panel);
    assert_eq!(after["installed_version"], after["version"]);
    assert!(
        !after["problems"].to_string().contains("the panel runs"),
        "{after}"
    );
    assert_eq!(t.mgrctl_calls().len(), 2);

    // Uninstall keeps the edited config; purge removes it.
    let out = t.run(&["uninstall"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), edited);
    assert!(!mgr.join("addon/billmgr-ops").exists());
}

#[test]
fn uninstall_removes_exactly_what_install_added_and_purge_the_data_too() {
    let db = TestDb::seeded(2);
    let t = Tree::new(&db);
    let pristine = t.snapshot();
    assert!(t.run(&["install"]).status.success());
    assert!(t.snapshot().len() > pristine.len());

    let out = t.run(&["uninstall"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Kept: the log and the tables (data).
    assert!(t.mgr().join("var/billmgr-ops.log").exists());
    assert_eq!(
        t.snapshot(),
        pristine,
        "uninstall left or removed something else"
    );
    assert_eq!(t.mgrctl_calls().len(), 2, "uninstall reloads the panel too");
    assert!(
        stderr(&out).contains("kept the plugin's tables"),
        "{}",
        stderr(&out)
    );
    assert_ne!(
        db.scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'billmgrops%'"),
        "0"
    );

    assert!(t.run(&["install"]).status.success());
    // A safety copy of a restore, as `backup restore` leaves one.
    let undo = format!("{}_bmo_undo", db.name);
    db.exec(&format!(
        "CREATE DATABASE `{undo}`; CREATE TABLE `{undo}`.account (id INT PRIMARY KEY)"
    ));
    let out = t.run(&["uninstall", "--purge"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(t.snapshot(), pristine);
    assert!(
        stderr(&out).contains("billmgr-ops.log"),
        "the log was not purged"
    );
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'billmgrops%'"),
        "0"
    );
    assert_eq!(
        db.scalar(&format!(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '{undo}'"
        )),
        "0",
        "the restore's safety copy was not purged"
    );
    // BILLmanager's own tables are still there.
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'account'"),
        "1"
    );
}

#[test]
fn install_refuses_a_wrong_directory_and_an_unreachable_database_changes_nothing() {
    let db = TestDb::empty();
    let t = Tree::new(&db);
    let nowhere = t.mgr().join("not-a-panel");
    std::fs::create_dir_all(&nowhere).unwrap();
    let out = std::process::Command::new(binary())
        .args([
            "--mgrdir",
            &nowhere.display().to_string(),
            "install",
            "--sysroot",
        ])
        .arg(&t.sysroot)
        .env_clear()
        .env("BILLMGR_OPS_DB", &db.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not a BILLmanager directory"),
        "{}",
        stderr(&out)
    );

    let before = t.snapshot();
    let broken = Panel::with_url("mysql://root@127.0.0.1:1/none");
    let out = broken
        .command(&[
            "--mgrdir",
            &t.mgr().display().to_string(),
            "install",
            "--sysroot",
        ])
        .arg(&t.sysroot)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(t.snapshot(), before, "a failed install changed files");
    assert!(t.mgrctl_calls().is_empty());
}

#[test]
fn the_deb_package_installs_and_removes_through_dpkg() {
    if std::process::Command::new("dpkg-deb")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("dpkg-deb is needed (scripts/lib.sh installs it)");
    }
    let db = TestDb::empty();
    let t = Tree::new(&db);
    let out_dir = t.sibling("deb");
    let _ = std::fs::remove_dir_all(&out_dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/package-deb.sh");
    let built = std::process::Command::new("bash")
        .arg(&script)
        .arg(&out_dir)
        .env("BINARY", binary())
        // A debug binary is large; xz would spend a minute on it.
        .env("DEB_COMPRESSION", "none")
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", stderr(&built));
    let deb = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("no .deb built");
    let info = std::process::Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("Package: billmgr-ops"), "{info}");
    assert!(
        info.contains("postinst") && info.contains("prerm"),
        "{info}"
    );

    // A private dpkg root: the package's files and the panel tree in it.
    let root = t.sibling("root");
    let _ = std::fs::remove_dir_all(&root);
    for dir in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "etc/cron.d",
        "etc/logrotate.d",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let mgr = root.join("usr/local/mgr5");
    for dir in ["etc/xml", "addon", "cgi", "var"] {
        std::fs::create_dir_all(mgr.join(dir)).unwrap();
    }
    let dpkg = |args: &[&str]| {
        let out = std::process::Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args([
                "--force-script-chrootless",
                "--force-depends",
                "--force-not-root",
                "--log=/dev/null",
            ])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BILLMGR_OPS_DB", &db.url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dpkg {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
    };
    dpkg(&["--install", &deb.display().to_string()]);
    assert!(root.join("usr/lib/billmgr-ops/billmgr-ops").is_file());
    assert_eq!(mode(&mgr.join("addon/billmgr-ops")), 0o750);
    assert!(mgr
        .join("etc/xml/billmgr_mod_billmgrops_backup.xml")
        .is_file());
    assert!(root.join("etc/cron.d/billmgr-ops").is_file());
    dpkg(&["--remove", "billmgr-ops"]);
    assert!(!mgr.join("addon/billmgr-ops").exists());
    assert!(!root.join("etc/cron.d/billmgr-ops").exists());
    assert!(!root.join("usr/lib/billmgr-ops/billmgr-ops").exists());
}

#[test]
fn install_and_uninstall_into_the_real_etc_need_root() {
    let db = TestDb::empty();
    let t = Tree::new(&db);
    let before = t.snapshot();
    for command in ["install", "uninstall"] {
        // As nobody (when the tests run as root), without --sysroot: /etc.
        let mut cmd = if is_root() {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(binary());
            c
        } else {
            std::process::Command::new(binary())
        };
        let out = cmd
            .args(["--mgrdir", &t.mgr().display().to_string(), command])
            .env_clear()
            .env("BILLMGR_OPS_DB", &db.url)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("run it as root"), "{}", stderr(&out));
    }
    assert_eq!(t.snapshot(), before);
}
