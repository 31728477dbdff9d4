//! The database account and server the plugin works with: which server
//! (MariaDB or MySQL, and its version), which account, and what the
//! account's grants allow, for `install` and `status` to say what each
//! missing privilege costs (../shared/reference/real-host.md §2).

use anyhow::{Context, Result};
use mysql::prelude::Queryable;
use serde::Serialize;

use super::Db;

/// What the server and the account are.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Account {
    /// `VERSION()`, e.g. `10.11.6-MariaDB-0+deb12u1` or `8.0.36`.
    pub server: String,
    /// `CURRENT_USER()`: the account the server matched.
    pub user: String,
    /// What a missing privilege costs, one note each; empty when nothing
    /// is missing.
    pub missing: Vec<String>,
}

/// The privileges found in the account's grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// `RELOAD` on `*.*` (or `ALL` there).
    pub reload: bool,
    /// `CREATE` on `*.*` (or `ALL` there): databases beside the billing one.
    pub create_databases: bool,
    /// `SUPER`, or MySQL's `SET_USER_ID` / MariaDB's `SET USER`.
    pub set_user: bool,
    /// `REPLICATION SLAVE` (MariaDB also says `REPLICATION REPLICA`):
    /// the binary-log follower's stream.
    pub replication_slave: bool,
    /// `REPLICATION CLIENT` (MariaDB 10.5+: `BINLOG MONITOR`), or
    /// `SUPER`: the log's position and files.
    pub replication_client: bool,
}

impl Grants {
    /// Reads `SHOW GRANTS` lines. Privileges on named databases count
    /// only for what they name; a line that is not a grant is ignored.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Grants {
        let mut g = Grants::default();
        for line in lines {
            let line = line.as_ref();
            let Some(rest) = line.strip_prefix("GRANT ") else {
                continue;
            };
            let Some(on) = rest.find(" ON ") else {
                continue;
            };
            let (privileges, target) = (&rest[..on], &rest[on + 4..]);
            if !target.starts_with("*.*") {
                continue;
            }
            for p in privileges.split(',').map(|p| p.trim().to_ascii_uppercase()) {
                match p.as_str() {
                    "ALL" | "ALL PRIVILEGES" => {
                        g.reload = true;
                        g.create_databases = true;
                        g.set_user = true;
                        g.replication_slave = true;
                        g.replication_client = true;
                    }
                    "REPLICATION SLAVE" | "REPLICATION REPLICA" => g.replication_slave = true,
                    "REPLICATION CLIENT" | "BINLOG MONITOR" => g.replication_client = true,
                    "RELOAD" => g.reload = true,
                    "CREATE" => g.create_databases = true,
                    "SUPER" => {
                        g.set_user = true;
                        g.replication_client = true;
                    }
                    "SET_USER_ID" | "SET USER" | "SET_ANY_DEFINER" => g.set_user = true,
                    _ => {}
                }
            }
        }
        g
    }

    /// What each missing privilege costs.
    pub fn missing(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.reload {
            notes.push(
                "no RELOAD: a copy cannot take the server's brief global lock; its connections \
                 start their snapshots while the database's tables are read-locked instead \
                 (writes to them wait for that moment)"
                    .to_string(),
            );
        }
        if !self.create_databases {
            notes.push(
                "no CREATE on other databases: uploading a SQL dump (not a copy made by \
                 billmgr-ops) needs the scratch database <db>_bmo_import (GRANT ALL ON \
                 `<db>\\_bmo\\_%`.* TO the account) and CREATE USER; restores stage inside \
                 the billing database and need nothing more"
                    .to_string(),
            );
        }
        if !self.set_user {
            notes.push(
                "no SUPER (SET_USER_ID): a view, trigger or routine defined by another account \
                 cannot be restored as it was (a stock billing database has none)"
                    .to_string(),
            );
        }
        notes
    }
}

/// What following the binary log (restores to a second) needs of the
/// server and the account, with how to turn on what is missing.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LogPrerequisites {
    pub log_bin: bool,
    pub binlog_format: String,
    pub binlog_row_image: String,
    pub replication_slave: bool,
    pub replication_client: bool,
    /// One note per thing missing, each saying how to turn it on; empty
    /// when the log can be followed.
    pub missing: Vec<String>,
}

impl LogPrerequisites {
    pub fn ready(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Reads the server's log settings and the account's grants.
pub fn log_prerequisites(db: &mut Db) -> Result<LogPrerequisites> {
    let (log_bin, format, image, version): (Option<i64>, Option<String>, Option<String>, String) =
        db.conn()
            .query_first("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, VERSION()")
            .context("failed to read the binary log's settings")?
            .context("the server did not say")?;
    let user: String = db
        .conn()
        .query_first("SELECT CURRENT_USER()")?
        .unwrap_or_default();
    let lines: Vec<String> = db
        .conn()
        .query("SHOW GRANTS")
        .context("failed to read the account's grants")?;
    let grants = Grants::parse(&lines);
    let log_bin = log_bin == Some(1);
    let (format, image) = (format.unwrap_or_default(), image.unwrap_or_default());
    let mariadb = version.contains("MariaDB");
    let mut missing = Vec::new();
    if !log_bin {
        missing.push(if mariadb {
            "the binary log is off: add `log_bin` and `binlog_format = ROW` under [mysqld] in the server's configuration and restart it".to_string()
        } else {
            "the binary log is off: remove `skip-log-bin` / `disable-log-bin` from the server's configuration (MySQL 8 has it on by default) and restart it".to_string()
        });
    }
    if log_bin && !format.eq_ignore_ascii_case("ROW") {
        missing.push(format!(
            "binlog_format is {format}: set `binlog_format = ROW` in the server's configuration (and SET GLOBAL binlog_format = 'ROW' for now)"
        ));
    }
    if log_bin && !image.eq_ignore_ascii_case("FULL") {
        missing.push(format!(
            "binlog_row_image is {image}: set `binlog_row_image = FULL` in the server's configuration (and SET GLOBAL binlog_row_image = 'FULL' for now)"
        ));
    }
    if !grants.replication_slave || !grants.replication_client {
        missing.push(format!(
            "the account lacks {}: GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO {user} (as an administrator of the server)",
            match (grants.replication_slave, grants.replication_client) {
                (false, false) => "REPLICATION SLAVE and REPLICATION CLIENT",
                (false, true) => "REPLICATION SLAVE",
                _ => "REPLICATION CLIENT",
            }
        ));
    }
    Ok(LogPrerequisites {
        log_bin,
        binlog_format: format,
        binlog_row_image: image,
        replication_slave: grants.replication_slave,
        replication_client: grants.replication_client,
        missing,
    })
}

/// The server and the account, with what the account lacks.
pub fn read(db: &mut Db) -> Result<Account> {
    let (server, user): (String, String) = db
        .conn()
        .query_first("SELECT VERSION(), CURRENT_USER()")
        .context("failed to ask the server its version")?
        .context("the server did not say its version")?;
    let lines: Vec<String> = db
        .conn()
        .query("SHOW GRANTS")
        .context("failed to read the account's grants")?;
    let mut missing = Grants::parse(&lines).missing();
    if grants_on_side_databases(&lines, &db.name()?) {
        missing.retain(|m| !m.starts_with("no CREATE on other databases"));
    }
    Ok(Account {
        server,
        user,
        missing,
    })
}

/// Does a grant give the account the plugin's side databases of
/// `database` (`<db>_bmo_%`, with `_` as a wildcard or escaped)?
fn grants_on_side_databases(lines: &[String], database: &str) -> bool {
    let wanted = [
        format!("`{}\\_bmo\\_%`", database.replace('_', "\\_")),
        format!("`{database}_bmo_%`"),
        format!("`{}\\_bmo\\_%`", database),
    ];
    lines.iter().any(|l| {
        l.starts_with("GRANT ALL")
            && wanted
                .iter()
                .any(|w| l.contains(&format!(" ON {w}.* ")) || l.contains(&format!(" ON {w}.*")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_as_mariadb_and_mysql_write_them() {
        let root =
            Grants::parse(&["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION"]);
        assert!(root.reload && root.create_databases && root.set_user);
        assert!(root.missing().is_empty());
        // MySQL 8's root: static privileges listed, dynamic ones apart.
        let mysql_root = Grants::parse(&[
            "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, SHUTDOWN, PROCESS, FILE, SUPER ON *.* TO `root`@`localhost` WITH GRANT OPTION",
            "GRANT APPLICATION_PASSWORD_ADMIN,SET_USER_ID,SYSTEM_USER ON *.* TO `root`@`localhost` WITH GRANT OPTION",
        ]);
        assert!(mysql_root.reload && mysql_root.create_databases && mysql_root.set_user);
        assert!(mysql_root.replication_client && !mysql_root.replication_slave);
        // MariaDB 10.5+ writes REPLICATION CLIENT as BINLOG MONITOR.
        let follower =
            Grants::parse(&["GRANT BINLOG MONITOR, REPLICATION SLAVE ON *.* TO `billmgr`@`%`"]);
        assert!(follower.replication_slave && follower.replication_client);
        // The panel's own account: ALL on its database only.
        let panel = Grants::parse(&[
            "GRANT USAGE ON *.* TO `billmgr`@`localhost` IDENTIFIED BY PASSWORD '*X'",
            "GRANT ALL PRIVILEGES ON `billmgr`.* TO `billmgr`@`localhost`",
        ]);
        assert_eq!(panel, Grants::default());
        assert_eq!(panel.missing().len(), 3);
        let lines = vec![
            "GRANT USAGE ON *.* TO `billmgr`@`%`".to_string(),
            "GRANT ALL PRIVILEGES ON `billmgr\\_bmo\\_%`.* TO `billmgr`@`%`".to_string(),
        ];
        assert!(grants_on_side_databases(&lines, "billmgr"));
        assert!(!grants_on_side_databases(&lines, "other"));
        // Not a grant, or a database's: nothing global.
        assert_eq!(
            Grants::parse(&["REVOKE RELOAD ON *.* FROM x", "GRANT RELOAD ON `a`.* TO x"]),
            Grants::default()
        );
    }
}
