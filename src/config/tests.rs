use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn tempdir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("billmgr-ops-config-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    dir
}

#[test]
fn lines_format() {
    let v = parse_lines("# c\nDBHost  db.example \n\nDBPassword a b#c\nFlag\n");
    assert_eq!(v["DBHost"], "db.example");
    assert_eq!(v["DBPassword"], "a b#c");
    assert_eq!(v["Flag"], "");
}

#[test]
fn database_precedence() {
    let dir = tempdir("precedence");
    std::fs::write(
        dir.join("etc/billmgr.conf"),
        "DBHost h\nDBUser u\nDBPassword secret\nDBName billmgr\n",
    )
    .unwrap();
    let c = Config::load(Some(&dir), None, &env(&[])).unwrap();
    assert_eq!(c.db.as_ref().unwrap().to_string(), "u@h/billmgr");
    assert!(!format!("{:?}", c.db).contains("secret"));

    std::fs::write(
        dir.join("etc/billmgr-ops.conf"),
        "DBUrl mysql://a:pw@x/y\nBogus 1\n",
    )
    .unwrap();
    let c = Config::load(Some(&dir), None, &env(&[])).unwrap();
    assert_eq!(c.db, Some(DbSource::Url("mysql://a:pw@x/y".into())));
    assert_eq!(c.db.as_ref().unwrap().to_string(), "mysql://a:***@x/y");
    assert_eq!(c.warnings.len(), 1);

    let c = Config::load(Some(&dir), None, &env(&[("BILLMGR_OPS_DB", "mysql://e/z")])).unwrap();
    assert_eq!(c.db, Some(DbSource::Url("mysql://e/z".into())));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_values_are_errors() {
    let dir = tempdir("bad");
    std::fs::write(dir.join("etc/billmgr-ops.conf"), "AdminLevel high\n").unwrap();
    let e = Config::load(Some(&dir), None, &env(&[])).unwrap_err();
    assert!(format!("{e:#}").contains("AdminLevel high"), "{e:#}");
    std::fs::write(dir.join("etc/billmgr-ops.conf"), "BackupReader fast\n").unwrap();
    let e = Config::load(Some(&dir), None, &env(&[])).unwrap_err();
    assert!(format!("{e:#}").contains("direct or client"), "{e:#}");
    std::fs::write(dir.join("etc/billmgr-ops.conf"), "BackupReader client\n").unwrap();
    let c = Config::load(Some(&dir), None, &env(&[])).unwrap();
    assert_eq!(c.backup_reader, super::RowReader::Client);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mgrdir_and_config_path_overrides() {
    let c = Config::load(None, None, &env(&[("MGR_DIR", "/nonexistent/mgr")])).unwrap();
    assert_eq!(c.mgrdir, PathBuf::from("/nonexistent/mgr"));
    assert_eq!(
        c.path,
        PathBuf::from("/nonexistent/mgr/etc/billmgr-ops.conf")
    );
    assert_eq!(
        c.log_file,
        PathBuf::from("/nonexistent/mgr/var/billmgr-ops.log")
    );
    assert_eq!(c.admin_level, 28);
    let c = Config::load(None, None, &env(&[("BILLMGR_OPS_CONFIG", "/x/y.conf")])).unwrap();
    assert_eq!(c.path, PathBuf::from("/x/y.conf"));
    assert_eq!(c.mgrdir, PathBuf::from(DEFAULT_MGRDIR));
}
