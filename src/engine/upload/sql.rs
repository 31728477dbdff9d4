//! Importing a mysqldump / mariadb-dump file, confined to a scratch
//! database.
//!
//! A dump is a script: it can name any database (`UPDATE billmgr.account`,
//! `USE`, `DROP DATABASE`), change the server (`SET GLOBAL`, `GRANT`), read
//! files (`LOAD DATA LOCAL INFILE '/etc/shadow'`) or write them (`INTO
//! OUTFILE`). Filtering its text cannot be complete, so the server confines
//! it instead:
//!
//! - the client logs in as a temporary account created for this import
//!   (`bmo_import_<random>`, random password, from the same host as the
//!   plugin), whose only grant is `ALL` on the scratch database
//!   (`<db>_bmo_import`, wildcards escaped): any statement that reaches
//!   another database, a global setting or a file on the server is refused
//!   by the server, and the import fails with its message;
//! - the client runs with `--local-infile=0` (no file of this host is
//!   sent), `--binary-mode` (client commands such as `\!` and `source`
//!   are off) and, where it has it, `--sandbox`;
//! - `DEFINER=` clauses of the dump's definitions are left out (the
//!   account may not name another one); afterwards its views, triggers,
//!   routines and events are checked like a copy's ([`crate::engine::ddl`])
//!   and created again in the scratch database with the plugin's account
//!   as their definer, or the import is refused.
//!
//! The account is dropped when the import ends, however it ends; one left
//! by a killed process is dropped by the next import. A plugin account that
//! may not create accounts cannot import: the upload is refused and says
//! why.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use mysql::prelude::Queryable;

use super::super::format::DefinitionKind;
use super::{refuse, DumpNeedsGrants, NotACopy};
use crate::config::{Config, DbSource};
use crate::db::backups::CopyRow;
use crate::db::{quote_ident, Db};
use crate::engine::ddl::{self, Scope};
use crate::engine::jobs;
use crate::engine::settings::Settings;

/// The prefix of the temporary accounts.
const USER_PREFIX: &str = "bmo_import_";

/// A string literal for SQL text (the values here are ours or the server's).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A database name for `GRANT ... ON`, its `_` and `%` escaped (they are
/// wildcards there).
fn grant_database(name: &str) -> String {
    quote_ident(
        &name
            .replace('\\', "\\\\")
            .replace('_', "\\_")
            .replace('%', "\\%"),
    )
}

/// The temporary account.
struct Account {
    user: String,
    host: String,
    password: String,
}

impl Account {
    fn sql(&self) -> String {
        format!("{}@{}", literal(&self.user), literal(&self.host))
    }
}

/// Drops accounts left by imports that died.
fn drop_stale(db: &mut Db) {
    let stale: Vec<(String, String)> = db
        .conn()
        .exec(
            "SELECT User, Host FROM mysql.user WHERE User LIKE ?",
            (format!("{}%", USER_PREFIX.replace('_', "\\_")),),
        )
        .unwrap_or_default();
    for (user, host) in stale {
        let sql = format!("DROP USER IF EXISTS {}@{}", literal(&user), literal(&host));
        if let Err(e) = db.conn().query_drop(sql) {
            log::warn!("cannot drop the stale import account {user}: {e}");
        }
    }
}

/// Creates the temporary account with `ALL` on `scratch` only.
fn create_account(db: &mut Db, scratch: &str) -> Result<Account> {
    drop_stale(db);
    let host: Option<String> = db
        .conn()
        .query_first("SELECT SUBSTRING_INDEX(USER(), '@', -1)")?;
    let account = Account {
        user: format!("{USER_PREFIX}{}", crate::fsutil::random_hex(6)?),
        host: host.unwrap_or_else(|| "localhost".into()),
        password: crate::fsutil::random_hex(24)?,
    };
    let created = db
        .conn()
        .query_drop(format!(
            "CREATE USER {} IDENTIFIED BY {}",
            account.sql(),
            literal(&account.password)
        ))
        .and_then(|()| {
            db.conn().query_drop(format!(
                "GRANT ALL PRIVILEGES ON {}.* TO {}",
                grant_database(scratch),
                account.sql()
            ))
        });
    if let Err(e) = created {
        let _ = db
            .conn()
            .query_drop(format!("DROP USER IF EXISTS {}", account.sql()));
        return Err(DumpNeedsGrants(format!("CREATE USER: {e}")).into());
    }
    Ok(account)
}

/// Loads a SQL dump into a scratch database as a confined account, takes
/// a copy of it, drops both.
pub(super) fn import(
    config: &Config,
    db: &mut Db,
    source_db: &DbSource,
    settings: &Settings,
    name: &str,
    sql: Box<dyn Read + Send>,
) -> Result<CopyRow> {
    let live = db.name()?;
    let scratch = crate::db::SideDb::Import.of(&live);
    jobs::with_job_lock(db, |db| {
        let drop = format!("DROP DATABASE IF EXISTS {}", quote_ident(&scratch));
        crate::db::drop_side_database(db.conn(), &scratch)?;
        if let Err(e) = db.conn().query_drop(format!(
            "CREATE DATABASE {} CHARACTER SET utf8mb4",
            quote_ident(&scratch)
        )) {
            return Err(DumpNeedsGrants(format!("CREATE DATABASE {scratch}: {e}")).into());
        }
        let result = create_account(db, &scratch).and_then(|account| {
            let loaded = load(config, source_db, &account, &scratch, sql);
            if let Err(e) = db
                .conn()
                .query_drop(format!("DROP USER IF EXISTS {}", account.sql()))
            {
                log::warn!("cannot drop the import account {}: {e}", account.user);
            }
            loaded
        });
        let result = result
            .and_then(|()| own_definitions(db, &scratch))
            .and_then(|()| {
                jobs::take_copy_locked(
                    config,
                    db,
                    &source_db.sibling(&scratch),
                    Some(name),
                    settings,
                    &mut |_, _| {},
                )
            });
        if let Err(e) = db.conn().query_drop(&drop) {
            log::warn!("cannot drop the import database {scratch}: {e}");
        }
        result
    })
}

/// The client program, and whether it knows `--sandbox`.
fn client() -> Result<(&'static str, bool)> {
    let runs = |c: &str, args: &[&str]| {
        Command::new(c)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let client = ["mariadb", "mysql"]
        .into_iter()
        .find(|c| runs(c, &["--version"]))
        .context("importing a SQL dump needs the mariadb or mysql client")?;
    Ok((
        client,
        runs(client, &["--no-defaults", "--sandbox", "--version"]),
    ))
}

/// Streams `sql` into the command-line client, logged in as `account`,
/// connected to `database`.
fn load(
    config: &Config,
    source: &DbSource,
    account: &Account,
    database: &str,
    sql: Box<dyn Read + Send>,
) -> Result<()> {
    let opts = crate::db::options(source, config.db_connect_timeout)?;
    let (client, sandbox) = client()?;
    let mut cmd = Command::new(client);
    // The client gets nothing of this process's environment but PATH.
    #[allow(clippy::disallowed_methods)]
    let path = std::env::var_os("PATH").unwrap_or_default();
    cmd.env_clear()
        .env("PATH", path)
        .arg("--no-defaults")
        .arg("--batch")
        .arg("--binary-mode")
        .arg("--local-infile=0")
        .arg(format!("--user={}", account.user))
        .arg(format!("--database={database}"));
    if sandbox {
        cmd.arg("--sandbox");
    }
    match opts.get_socket() {
        Some(socket) => cmd.arg(format!("--socket={socket}")),
        None => cmd
            .arg("--protocol=tcp")
            .arg(format!("--host={}", opts.get_ip_or_hostname()))
            .arg(format!("--port={}", opts.get_tcp_port())),
    };
    // The password goes by the environment, not the command line.
    cmd.env("MYSQL_PWD", &account.password);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {client}"))?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&mut stderr).take(64 * 1024).read_to_string(&mut text);
        text
    });
    let fed = feed(sql, &mut stdin);
    drop(stdin);
    let status = child.wait()?;
    let errors = errors.join().unwrap_or_default();
    if let Err(e) = fed {
        if status.success() || e.downcast_ref::<NotACopy>().is_some() {
            return Err(e);
        }
    }
    if !status.success() {
        return Err(refuse(format!(
            "the SQL dump does not load into its scratch database: {}",
            client_error(&errors)
        )));
    }
    Ok(())
}

/// The line of the client's output that says what failed (it frames
/// statements with lines of dashes in batch mode).
fn client_error(stderr: &str) -> String {
    let lines = || stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    lines()
        .find(|l| l.starts_with("ERROR"))
        .or_else(|| lines().find(|l| !l.chars().all(|c| c == '-')))
        .unwrap_or("the client failed")
        .chars()
        .take(500)
        .collect()
}

/// Copies the dump to the client line by line, leaving out the lines
/// that switch to or create the database a `--databases` dump names (a
/// convenience: the account could not reach it anyway) and `DEFINER=`
/// clauses of definition lines (the confined account may not name
/// another; see [`own_definitions`]).
fn feed(sql: Box<dyn Read + Send>, out: &mut dyn Write) -> Result<()> {
    let mut reader = BufReader::with_capacity(1 << 20, sql);
    let mut line = Vec::new();
    let mut replication = ServerLines::default();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| super::read_failure("the dump cannot be read", e))?;
        if n == 0 {
            return Ok(());
        }
        if replication.skips(&line) {
            continue;
        }
        let upper: Vec<u8> = line.iter().take(24).map(u8::to_ascii_uppercase).collect();
        if upper.starts_with(b"USE ")
            || upper.starts_with(b"CREATE DATABASE")
            || upper.starts_with(b"/*!40000 DROP DATABASE")
            || upper.starts_with(b"DROP DATABASE")
        {
            continue;
        }
        out.write_all(&without_definer(&line))?;
    }
}

/// Lines of a dump that speak to the server that wrote it, not about the
/// data, and that only an account with SUPER (or SYSTEM_VARIABLES_ADMIN)
/// may run: mysqldump's GTID bookkeeping from a server with GTIDs on
/// (`SET @@GLOBAL.GTID_PURGED=...`, which may run over several lines,
/// and the `SQL_LOG_BIN` switch around the dump), and mariadb-dump's
/// sandbox line (`/*!999999\- enable the sandbox mode */`, since 10.5.25,
/// 10.6.18, 10.11.8, 11.4.2), which the mysql client and older MariaDB
/// clients take for an unknown command. They are left out of the import.
#[derive(Default)]
struct ServerLines {
    /// Inside a `GTID_PURGED` statement that has not ended.
    in_gtid: bool,
}

impl ServerLines {
    fn skips(&mut self, line: &[u8]) -> bool {
        let trimmed = line.trim_ascii();
        if self.in_gtid {
            self.in_gtid = !trimmed.ends_with(b";");
            return true;
        }
        let upper: Vec<u8> = trimmed
            .iter()
            .take(48)
            .map(u8::to_ascii_uppercase)
            .collect();
        let starts = |p: &[u8]| upper.starts_with(p);
        if starts(b"SET @@GLOBAL.GTID_PURGED") {
            self.in_gtid = !trimmed.ends_with(b";");
            return true;
        }
        starts(b"/*!999999\\-")
            || starts(b"/*M!999999\\-")
            || starts(b"SET @MYSQLDUMP_TEMP_LOG_BIN")
            || starts(b"SET @@SESSION.SQL_LOG_BIN")
    }
}

/// `line` without its `DEFINER=user@host` clauses, when it is a line of a
/// definition (as mysqldump and mariadb-dump write them: starting with
/// `CREATE` or a versioned comment); data lines are passed as they are.
fn without_definer(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let start = line
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(line.len());
    let head: Vec<u8> = line[start..]
        .iter()
        .take(6)
        .map(u8::to_ascii_uppercase)
        .collect();
    if !(head.starts_with(b"/*!") || head.starts_with(b"CREATE")) {
        return line.into();
    }
    let upper: Vec<u8> = line.iter().map(u8::to_ascii_uppercase).collect();
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if upper[i..].starts_with(b"DEFINER=") {
            let mut j = i + b"DEFINER=".len();
            j = skip_account_part(line, j);
            if line.get(j) == Some(&b'@') {
                j = skip_account_part(line, j + 1);
            }
            i = j;
            continue;
        }
        out.push(line[i]);
        i += 1;
    }
    out.into()
}

/// The end of a user or host: quoted (`` ` ``, `'`, `"`) or a bare word.
fn skip_account_part(line: &[u8], mut j: usize) -> usize {
    match line.get(j) {
        Some(&q) if q == b'`' || q == b'\'' || q == b'"' => {
            j += 1;
            while j < line.len() {
                if line[j] == q {
                    if line.get(j + 1) == Some(&q) {
                        j += 2;
                        continue;
                    }
                    return j + 1;
                }
                j += 1;
            }
            j
        }
        _ => {
            while j < line.len() && (line[j].is_ascii_alphanumeric() || b"_.%-$".contains(&line[j]))
            {
                j += 1;
            }
            j
        }
    }
}

/// Creates the dump's views, triggers, routines and events again with the
/// plugin's account as their definer (the confined account that created
/// them is gone), each checked like a copy's; one that fails the checks
/// refuses the upload.
fn own_definitions(db: &mut Db, scratch: &str) -> Result<()> {
    let live = db.name()?;
    let conn = db.conn();
    conn.query_drop(format!("USE {}", quote_ident(scratch)))?;
    let objects = crate::engine::introspect::objects(conn, scratch)?;
    let tables: Vec<String> = conn.exec(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'",
        (scratch,),
    )?;
    let scope = Scope::read(conn, scratch, "", tables)?;
    let result = (|| -> Result<()> {
        for o in &objects {
            let kind = o.kind;
            let sql_mode = if kind == DefinitionKind::View {
                "NO_ENGINE_SUBSTITUTION"
            } else {
                o.sql_mode.as_str()
            };
            let create = ddl::definition(
                &scope,
                &ddl::Object {
                    kind,
                    name: &o.name,
                    table: &o.table,
                    create: &o.create,
                    sql_mode,
                    definer: Some("CURRENT_USER"),
                },
            )
            .map_err(|e| refuse(format!("the dump's {e}")))?;
            conn.query_drop(kind.drop_sql(scratch, &o.name))?;
            conn.exec_drop("SET SESSION sql_mode = ?", (sql_mode,))?;
            ddl::run_checked(conn, &create)
                .with_context(|| format!("cannot create {} `{}` again", o.kind, o.name))?;
        }
        Ok(())
    })();
    let _ = conn.query_drop("SET SESSION sql_mode = DEFAULT");
    let _ = conn.query_drop(format!("USE {}", quote_ident(&live)));
    result
}

#[cfg(test)]
mod tests {

    #[test]
    fn lines_for_the_dumping_server_are_left_out() {
        let dump = "/*M!999999\\- enable the sandbox mode */ \n\
                    -- MySQL dump\n\
                    SET @MYSQLDUMP_TEMP_LOG_BIN = @@SESSION.SQL_LOG_BIN;\n\
                    SET @@SESSION.SQL_LOG_BIN= 0;\n\
                    SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n\
                    4e11fa47-71ca-11e1-9e33-c80aa9429562:1-3';\n\
                    CREATE TABLE t (a int);\n\
                    INSERT INTO t VALUES (1);\n\
                    SET @@SESSION.SQL_LOG_BIN = @MYSQLDUMP_TEMP_LOG_BIN;\n";
        let mut out = Vec::new();
        feed(
            Box::new(std::io::Cursor::new(dump.as_bytes().to_vec())),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "-- MySQL dump\nCREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\n"
        );
    }
    use super::*;

    #[test]
    fn definers_are_left_out_of_definition_lines_only() {
        let cases: &[(&str, &str)] = &[
            (
                "/*!50013 DEFINER=`root`@`localhost` SQL SECURITY DEFINER */\n",
                "/*!50013  SQL SECURITY DEFINER */\n",
            ),
            (
                "/*!50003 CREATE*/ /*!50017 DEFINER=`ro``ot`@`%`*/ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a=1 */;;\n",
                "/*!50003 CREATE*/ /*!50017 */ /*!50003 TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a=1 */;;\n",
            ),
            (
                "CREATE DEFINER=root@localhost PROCEDURE `p`()\n",
                "CREATE  PROCEDURE `p`()\n",
            ),
            (
                "INSERT INTO `t` VALUES ('DEFINER=`root`@`localhost`');\n",
                "INSERT INTO `t` VALUES ('DEFINER=`root`@`localhost`');\n",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(&without_definer(line.as_bytes())),
                *want
            );
        }
    }

    #[test]
    fn the_database_of_a_databases_dump_is_left_out() {
        let dump = b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `live`;\nUSE `live`;\nCREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\n";
        let mut out = Vec::new();
        feed(Box::new(&dump[..]), &mut out).unwrap();
        assert_eq!(out, b"CREATE TABLE t (a int);\nINSERT INTO t VALUES (1);\n");
    }

    #[test]
    fn the_client_error_is_the_line_that_says_it() {
        let out = "--------------\nUPDATE billmgr.account SET x = 1\n--------------\n\nERROR 1142 (42000) at line 3: UPDATE command denied\n";
        assert!(client_error(out).starts_with("ERROR 1142"));
        assert_eq!(client_error("--------------\n"), "the client failed");
    }

    #[test]
    fn grants_name_the_scratch_database_exactly() {
        assert_eq!(
            grant_database("bill_mgr_bmo_import"),
            "`bill\\_mgr\\_bmo\\_import`"
        );
        assert_eq!(literal("a'b\\c"), "'a''b\\\\c'");
    }
}
