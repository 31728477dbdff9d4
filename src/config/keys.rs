//! Every key of billmgr-ops.conf, once, with its default and a one-line
//! description: a deliberate table (etc/billmgr-ops.conf.example and the
//! README's configuration reference are checked against it).

/// One configuration key of billmgr-ops.conf.
pub struct Key {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// Every key of billmgr-ops.conf.
pub const KEYS: &[Key] = &[
    Key {
        name: "DBUrl",
        default: "",
        help:
            "mysql:// URL of the billing database (TCP, or ?socket=/path); empty: the panel's own (billmgr.conf, billmgr.conf.d/*.conf, else mgrctl paramlist)",
    },
    Key {
        name: "DBConnectTimeout",
        default: "5",
        help: "seconds to wait for the database before giving up with an error",
    },
    Key {
        name: "AdminLevel",
        default: "28",
        help: "lowest AUTH_LEVEL allowed to run administrator functions",
    },
    Key {
        name: "OperationTimeout",
        default: "600",
        help: "seconds one attempt of a processing module may run before it is stopped",
    },
    Key {
        name: "RetryDelay",
        default: "300",
        help: "seconds before the first automatic retry of a failed operation; doubles after each failure",
    },
    Key {
        name: "RetryDelayMax",
        default: "21600",
        help: "the longest wait between automatic retries, in seconds",
    },
    Key {
        name: "MaxAttempts",
        default: "10",
        help: "after this many failed attempts an operation turns manual and a staff task is opened",
    },
    Key {
        name: "Concurrency",
        default: "4",
        help: "how many operations the scheduler runs at once",
    },
    Key {
        name: "ModuleConcurrency",
        default: "0",
        help: "how many slots one processing module gets while another module's operations are due (it takes free slots nobody else wants), so that one slow or dead module server cannot keep the others waiting; 0: half of Concurrency, at least 1",
    },
    Key {
        name: "SchedulerStay",
        default: "55",
        help: "seconds one cron tick stays to start the next due operation as soon as a slot frees (cron starts a tick every minute); 0: one pass only",
    },
    Key {
        name: "RunModules",
        default: "auto",
        help: "on: billmgr-ops starts processing modules for running operations; off: it only shows and manages them; auto: on, except when installed in companion mode, where BILLmanager's own scheduler runs them and both would run an operation twice",
    },
    Key {
        name: "ListPaging",
        default: "panel",
        help: "panel: a list called by the panel returns every row (up to 10000) and the panel pages it; plugin: the plugin pages lists itself, as for `billmgr-ops call`",
    },
    Key {
        name: "OutputLimit",
        default: "65536",
        help: "bytes of a module's stdout and of its stderr kept per attempt (the tail)",
    },
    Key {
        name: "BackupDir",
        default: "var/billmgr-ops/backup",
        help: "the local directory that holds copies; a relative path is taken from the panel directory",
    },
    Key {
        name: "BackupThreads",
        default: "2",
        help: "connections that dump or load tables in parallel",
    },
    Key {
        name: "BackupCompression",
        default: "1",
        help: "zstd level of copies, 1 (fastest) to 19 (smallest); on billing rows in 128 KiB frames 1 is also smaller than 2 to 4",
    },
    Key {
        name: "BackupFiles",
        default: "etc",
        help: "files and directories copied with the database, space-separated; relative to the panel directory",
    },
    Key {
        name: "BackupFilesAllowed",
        default: "",
        help: "directories outside the panel directory whose files plans may copy and restore, space-separated absolute paths; only this file can widen that reach, never the panel",
    },
    Key {
        name: "UploadDir",
        default: "tmp",
        help: "where the panel leaves an uploaded file; backups.upload reads files from there only (relative to the panel directory)",
    },
    Key {
        name: "UploadPrivateUrls",
        default: "off",
        help: "on: backups.upload may fetch URLs on loopback, link-local and private addresses (off: refused, so the panel cannot reach internal services)",
    },
    Key {
        name: "BackupExcludeTables",
        default: "",
        help: "tables not to copy, space-separated",
    },
    Key {
        name: "BackupLockTimeout",
        default: "5",
        help: "seconds a copy may wait for the brief global read lock before it falls back to one connection",
    },
    Key {
        name: "BackupReader",
        default: "direct",
        help: "how a copy reads rows: direct (a connection of its own; an account it cannot log in as reads through the client library) or client (always the client library)",
    },
    Key {
        name: "BinlogFollow",
        default: "auto",
        help: "auto: the cron tick keeps `backup follow` running when the server's binary log is on and the account may replicate; on: always (status says what is missing); off: never",
    },
    Key {
        name: "BinlogSegmentSeconds",
        default: "60",
        help: "the follower seals a log segment for the storage once it is this many seconds old (or 64 MiB): at most this much of the log waits in the spool",
    },
    Key {
        name: "BackupDrillDays",
        default: "7",
        help: "days between restore drills the cron tick starts (a copy, or the database at the last second the stored log reaches, restored into staged tables that are never applied); 0: none",
    },
    Key {
        name: "BinlogLagAlert",
        default: "300",
        help: "seconds the follower may lag behind the server (or be stopped) before status and mail say so",
    },
    Key {
        name: "BackupRelations",
        default: "",
        help: "relations without a foreign key that restoring one object follows, space-separated table.column=table.column (child=parent)",
    },
    Key {
        name: "NotifyEmail",
        default: "",
        help: "where to mail a failed backup or an operation that turned manual (comma-separated); empty: the log only",
    },
    Key {
        name: "NotifyFrom",
        default: "",
        help: "the sender of those mails; empty: billmgr-ops@<host name>",
    },
    Key {
        name: "Sendmail",
        default: "/usr/sbin/sendmail",
        help: "the local sendmail program that sends them (called with -t -i)",
    },
    Key {
        name: "LogFile",
        default: "var/billmgr-ops.log",
        help: "log file; a relative path is taken from the panel directory",
    },
    Key {
        name: "LogLevel",
        default: "info",
        help: "error, warn, info, debug or trace (RUST_LOG overrides it)",
    },
];
