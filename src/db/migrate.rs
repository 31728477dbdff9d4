//! Versioned migrations of the plugin's own tables.
//!
//! Each migration is a numbered list of idempotent statements (`IF NOT
//! EXISTS`), applied in order and recorded in `billmgrops_migration`. The
//! fast path is one query; when something is pending, a server-wide named
//! lock serialises racing invocations (two panel calls at once after an
//! upgrade), and the version is read again under the lock.

use anyhow::{bail, Context, Result};
use mysql::prelude::Queryable;

use super::Db;

/// One schema step.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub statements: &'static [&'static str],
}

/// Every migration, oldest first. Never edit a released one: add a new one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "running operation state, attempt history, list filters",
        statements: &[
            "CREATE TABLE IF NOT EXISTS billmgrops_operation (
            runningoperation INT NOT NULL PRIMARY KEY,
            status ENUM('wait','run','error','stopped') NOT NULL DEFAULT 'wait',
            next_try DATETIME NULL,
            started DATETIME NULL,
            runner VARCHAR(255) NULL,
            pgid INT NULL,
            stop_requested TINYINT NOT NULL DEFAULT 0,
            comment TEXT NULL,
            updated DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
            KEY status_next (status, next_try)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            "CREATE TABLE IF NOT EXISTS billmgrops_attempt (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            runningoperation INT NOT NULL,
            item INT NULL,
            task INT NULL,
            intname VARCHAR(64) NOT NULL DEFAULT '',
            createdate DATETIME NOT NULL,
            duration_ms BIGINT NULL,
            command TEXT NULL,
            exit_status VARCHAR(128) NULL,
            outcome ENUM('ok','error','timeout','stopped','interrupted') NOT NULL DEFAULT 'error',
            error_type VARCHAR(255) NULL,
            error_object VARCHAR(255) NULL,
            error_value TEXT NULL,
            error_msg TEXT NULL,
            stdout MEDIUMTEXT NULL,
            stderr MEDIUMTEXT NULL,
            KEY operation (runningoperation, id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            "CREATE TABLE IF NOT EXISTS billmgrops_filter (
            user VARCHAR(255) NOT NULL PRIMARY KEY,
            status VARCHAR(16) NULL,
            intname VARCHAR(64) NULL,
            client VARCHAR(255) NULL,
            item INT NULL,
            itemtype INT NULL,
            processingmodule INT NULL,
            cdate_from DATE NULL,
            cdate_to DATE NULL,
            manual VARCHAR(3) NULL,
            updated DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    },
    Migration {
        version: 2,
        name: "backup copies, storages, plans and settings",
        statements: &[
            "CREATE TABLE IF NOT EXISTS billmgrops_backup (
            id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            name VARCHAR(128) NOT NULL,
            storage VARCHAR(255) NOT NULL,
            state ENUM('running','ok','failed') NOT NULL DEFAULT 'running',
            phase VARCHAR(32) NULL,
            percent INT NOT NULL DEFAULT 0,
            reason TEXT NULL,
            created DATETIME NOT NULL,
            finished DATETIME NULL,
            size BIGINT NULL,
            tables INT NULL,
            rows_count BIGINT NULL,
            encrypted TINYINT NOT NULL DEFAULT 0,
            runner VARCHAR(255) NULL,
            restore_state VARCHAR(16) NULL,
            restore_phase VARCHAR(32) NULL,
            restore_percent INT NULL,
            restore_reason TEXT NULL,
            plan INT NULL,
            storage_id INT NULL,
            UNIQUE KEY name (name),
            KEY created (created)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            "CREATE TABLE IF NOT EXISTS billmgrops_storage (
            id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            name VARCHAR(255) NOT NULL,
            kind VARCHAR(16) NOT NULL DEFAULT 'local',
            location TEXT NOT NULL,
            created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
            UNIQUE KEY name (name)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            "CREATE TABLE IF NOT EXISTS billmgrops_plan (
            id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            name VARCHAR(255) NOT NULL,
            storage INT NOT NULL,
            schedule ENUM('daily','weekly','off') NOT NULL DEFAULT 'daily',
            at_time CHAR(5) NOT NULL DEFAULT '03:00',
            days VARCHAR(32) NOT NULL DEFAULT '',
            keep_count INT NULL,
            keep_size_mib BIGINT NULL,
            exclude_tables TEXT NULL,
            files TEXT NULL,
            last_run DATETIME NULL,
            UNIQUE KEY name (name)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            "CREATE TABLE IF NOT EXISTS billmgrops_setting (
            name VARCHAR(64) NOT NULL PRIMARY KEY,
            value TEXT NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    },
    Migration {
        version: 3,
        name: "remote storages, plans with several storages, copies in several places, download tokens",
        statements: &[
            // A storage's fields (JSON) and its one secret, sealed with the
            // server key: a dump of the database alone does not reveal it.
            "CREATE TABLE IF NOT EXISTS billmgrops_storage_access (
            storage INT NOT NULL PRIMARY KEY,
            params TEXT NOT NULL,
            secret TEXT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            // The further storages a plan sends its copies to (the first is
            // billmgrops_plan.storage).
            "CREATE TABLE IF NOT EXISTS billmgrops_plan_storage (
            plan INT NOT NULL,
            storage INT NOT NULL,
            PRIMARY KEY (plan, storage)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            // The further places a copy was sent to, and how that went.
            "CREATE TABLE IF NOT EXISTS billmgrops_copy_place (
            backup INT NOT NULL,
            storage_id INT NOT NULL,
            state ENUM('running','ok','failed') NOT NULL DEFAULT 'running',
            reason TEXT NULL,
            PRIMARY KEY (backup, storage_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            // Single-use download tokens (only their SHA-256 is kept).
            "CREATE TABLE IF NOT EXISTS billmgrops_download (
            token_hash CHAR(64) NOT NULL PRIMARY KEY,
            backup INT NOT NULL,
            admin VARCHAR(255) NOT NULL,
            expires DATETIME NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    },
    Migration {
        version: 4,
        name: "the objects each copy holds (backupdata)",
        statements: &[
            // From each copy's listing: one row per object; `object_key` is
            // the id as text, or the directory of saved files.
            "CREATE TABLE IF NOT EXISTS billmgrops_object (
            backup INT NOT NULL,
            kind VARCHAR(16) NOT NULL,
            object_key VARCHAR(255) NOT NULL,
            name VARCHAR(255) NOT NULL,
            owner VARCHAR(255) NOT NULL DEFAULT '',
            owner_id BIGINT NULL,
            PRIMARY KEY (backup, kind, object_key),
            KEY kind_key (kind, object_key),
            KEY kind_name (kind, name)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    },
    Migration {
        version: 5,
        name: "health: when an operation turned manual, the notices sent, the last cron tick",
        statements: &[
            // When an operation turned manual after its last allowed
            // failure (a table, not a column: ADD COLUMN IF NOT EXISTS is
            // MariaDB's alone, and every statement here must be repeatable).
            "CREATE TABLE IF NOT EXISTS billmgrops_manual (
            runningoperation INT NOT NULL PRIMARY KEY,
            since DATETIME NOT NULL,
            KEY since (since)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            // One row per event notified (a failed copy, an operation that
            // turned manual): the key makes every notice at most once.
            "CREATE TABLE IF NOT EXISTS billmgrops_notice (
            event VARCHAR(128) NOT NULL PRIMARY KEY,
            created DATETIME NOT NULL,
            state ENUM('logged','sent','failed','before') NOT NULL DEFAULT 'logged',
            detail TEXT NULL,
            KEY created (created)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            // Copies that failed before notices existed are not news.
            "INSERT IGNORE INTO billmgrops_notice (event, created, state)
             SELECT CONCAT('backup:', id), NOW(), 'before' FROM billmgrops_backup WHERE state = 'failed'",
        ],
    },
    Migration {
        version: 6,
        name: "errors processing modules report through the panel API",
        statements: &[
            // The error document a module sent with `runningoperation.edit
            // errorxml=` during an attempt (one per attempt, the last one).
            "CREATE TABLE IF NOT EXISTS billmgrops_report (
            attempt BIGINT NOT NULL PRIMARY KEY,
            runningoperation INT NOT NULL,
            reported DATETIME NOT NULL,
            errorxml MEDIUMTEXT NOT NULL,
            KEY operation (runningoperation)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    },
    Migration {
        version: 7,
        name: "the object index as blocks copies share",
        statements: &[
            // A run of one kind's objects of a copy in key order, compressed
            // (`db::objects`), named by the SHA-256 of its content; `lo` and
            // `hi` bound its keys when they are integers.
            "CREATE TABLE IF NOT EXISTS billmgrops_object_block (
            hash CHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
            kind VARCHAR(16) NOT NULL,
            lo BIGINT NULL,
            hi BIGINT NULL,
            objects INT NOT NULL,
            data MEDIUMBLOB NOT NULL,
            KEY kind (kind)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            // The blocks each copy holds.
            "CREATE TABLE IF NOT EXISTS billmgrops_copy_block (
            backup INT NOT NULL,
            block CHAR(64) CHARACTER SET ascii NOT NULL,
            PRIMARY KEY (backup, block),
            KEY block (block)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    },
    Migration {
        version: 8,
        name: "who marked an operation to run, and the runner it is meant for",
        statements: &[
            // One row per operation marked to run and not yet taken: the
            // token its runner must show to begin (a runner whose mark was
            // put back finds none and does nothing), and the connection of
            // the scheduler tick that marked it (NULL: the panel's Start),
            // so a later tick knows a dead tick's marks at once.
            "CREATE TABLE IF NOT EXISTS billmgrops_mark (
            runningoperation INT NOT NULL PRIMARY KEY,
            token CHAR(16) CHARACTER SET ascii NOT NULL,
            tick BIGINT UNSIGNED NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    },
    Migration {
        version: 9,
        name: "a restore's safety copy kept inside the billing database",
        statements: &[
            // What each generation of replaced tables keeps (see
            // engine::restore::kept): its tables (`table`: live name, kept
            // name in `tbl`), their foreign keys (`foreign key`: name,
            // table in `tbl`, clause) and the live views, triggers,
            // routines and events.
            "CREATE TABLE IF NOT EXISTS billmgrops_kept (
            id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            generation BIGINT UNSIGNED NOT NULL,
            state ENUM('pending','undo') NOT NULL,
            kind VARCHAR(16) NOT NULL,
            name VARCHAR(64) NOT NULL,
            tbl VARCHAR(64) NOT NULL,
            sql_mode TEXT NOT NULL,
            create_stmt LONGTEXT NOT NULL,
            KEY generation (generation)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    },
    Migration {
        version: 10,
        name: "each copy's place in the binary log",
        statements: &[
            // `server|file|position` from the copy's listing, where it is
            // known, so that the recoverable window is found without
            // opening every copy (a table, not a column: see 5).
            "CREATE TABLE IF NOT EXISTS billmgrops_copy_log (
            backup INT NOT NULL PRIMARY KEY,
            position VARCHAR(400) NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    },
    Migration {
        version: 11,
        name: "restore drills and their evidence",
        statements: &[
            // One row per drill: which copy, to which second (none: the
            // copy itself), how long, how many rows and transactions, and
            // the outcome with its reason.
            "CREATE TABLE IF NOT EXISTS billmgrops_drill (
            id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            started DATETIME NOT NULL,
            finished DATETIME NULL,
            copy VARCHAR(255) NOT NULL DEFAULT '',
            to_time DATETIME NULL,
            seconds DOUBLE NULL,
            rows_count BIGINT UNSIGNED NOT NULL DEFAULT 0,
            transactions BIGINT UNSIGNED NOT NULL DEFAULT 0,
            state ENUM('running','ok','failed') NOT NULL DEFAULT 'running',
            reason TEXT NULL,
            KEY started (started)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        ],
    },
];

/// A step of a migration written in Rust.
type Step = fn(&mut Db) -> Result<()>;

/// Steps in Rust after a migration's statements, by version: what SQL
/// alone cannot do (7: the older object index, moved into blocks).
const AFTER: &[(u32, Step)] = &[(7, super::objects::convert_rows)];

const LOCK_NAME: &str = "billmgrops.migrate";
const LOCK_WAIT_SECS: u32 = 30;

/// The newest version this binary knows.
pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The version the database is at (0 for a database the plugin never saw).
pub fn current(db: &mut Db) -> Result<u32> {
    match db
        .conn()
        .query_first::<Option<u32>, _>("SELECT MAX(version) FROM billmgrops_migration")
    {
        Ok(v) => Ok(v.flatten().unwrap_or(0)),
        Err(mysql::Error::MySqlError(e)) if e.code == 1146 => Ok(0),
        Err(e) => Err(e).context("failed to read the plugin's schema version"),
    }
}

/// Applies every pending migration. Safe to run concurrently and repeatedly.
pub fn migrate(db: &mut Db) -> Result<()> {
    let now = current(db)?;
    if now >= latest() {
        if now > latest() {
            log::warn!(
                "the database schema is version {now}, newer than this binary knows ({}); \
                 was the plugin downgraded?",
                latest()
            );
        }
        return Ok(());
    }
    let got: Option<Option<i64>> = db
        .conn()
        .exec_first("SELECT GET_LOCK(?, ?)", (LOCK_NAME, LOCK_WAIT_SECS))
        .context("failed to take the migration lock")?;
    if got.flatten() != Some(1) {
        bail!("another billmgr-ops process has been migrating the plugin's tables for {LOCK_WAIT_SECS}s; try again");
    }
    let result = apply_pending(db);
    let _ = db.conn().exec_drop("DO RELEASE_LOCK(?)", (LOCK_NAME,));
    result
}

/// Drops every `billmgrops_*` table and the plugin's side databases
/// ([`super::SideDb::ALL`]): `uninstall --purge`.
/// Returns how many tables were dropped.
pub fn drop_plugin_tables(db: &mut Db) -> Result<usize> {
    let live = db.name()?;
    let tables: Vec<String> = db
        .conn()
        .query(
            "SELECT table_name FROM information_schema.tables
             WHERE table_schema = DATABASE() AND table_name LIKE 'billmgrops\\_%'",
        )
        .context("failed to list the plugin's tables")?;
    db.conn().query_drop("SET SESSION foreign_key_checks = 0")?;
    for table in &tables {
        db.conn()
            .query_drop(format!(
                "DROP TABLE IF EXISTS {}",
                super::quote_ident(table)
            ))
            .with_context(|| format!("failed to drop {table}"))?;
    }
    db.conn().query_drop("SET SESSION foreign_key_checks = 1")?;
    for side in super::SideDb::ALL {
        let scratch = side.of(&live);
        super::drop_side_database(db.conn(), &scratch)
            .with_context(|| format!("failed to drop database {scratch}"))?;
    }
    Ok(tables.len())
}

fn apply_pending(db: &mut Db) -> Result<()> {
    db.conn()
        .query_drop(
            "CREATE TABLE IF NOT EXISTS billmgrops_migration (
                version INT NOT NULL PRIMARY KEY,
                name VARCHAR(255) NOT NULL,
                applied DATETIME NOT NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        )
        .context("failed to create billmgrops_migration")?;
    let now = current(db)?;
    for m in MIGRATIONS.iter().filter(|m| m.version > now) {
        for sql in m.statements {
            db.conn()
                .query_drop(sql)
                .with_context(|| format!("migration {} ({}) failed", m.version, m.name))?;
        }
        for (_, step) in AFTER.iter().filter(|(v, _)| *v == m.version) {
            step(db).with_context(|| format!("migration {} ({}) failed", m.version, m.name))?;
        }
        db.conn()
            .exec_drop(
                "INSERT IGNORE INTO billmgrops_migration (version, name, applied) VALUES (?, ?, NOW())",
                (m.version, m.name),
            )
            .with_context(|| format!("failed to record migration {}", m.version))?;
        log::info!("applied migration {} ({})", m.version, m.name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_tables_are_prefixed() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last);
            last = m.version;
            for sql in m.statements {
                assert!(
                    sql.contains("IF NOT EXISTS")
                        || sql.contains("IF EXISTS")
                        || sql.contains("INSERT IGNORE"),
                    "{sql}"
                );
                if let Some(rest) = sql.split("TABLE IF NOT EXISTS ").nth(1) {
                    assert!(rest.starts_with(super::super::TABLE_PREFIX), "{sql}");
                }
            }
        }
    }
}
