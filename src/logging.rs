//! Logging to `<mgrdir>/var/billmgr-ops.log` (time, pid, level, function).
//!
//! stdout belongs to the panel, so the log never goes there. When the log
//! file cannot be opened (a manual run without the panel tree), lines go to
//! stderr instead. Before each line the writer checks that the path still
//! names the file it has open and reopens it when not, so logrotate (or an
//! administrator's `mv`) can rotate the log under a 20-minute backup
//! without a signal or copytruncate.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// An append-only log file that follows its path across rotations.
pub struct ReopeningLog {
    path: PathBuf,
    file: File,
    inode: u64,
}

impl ReopeningLog {
    pub fn open(path: &Path) -> std::io::Result<ReopeningLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .custom_flags(crate::fsutil::libc_nofollow())
            .open(path)?;
        let inode = file.metadata()?.ino();
        Ok(ReopeningLog {
            path: path.to_path_buf(),
            file,
            inode,
        })
    }

    /// Reopens the path when it no longer names the open file.
    fn follow(&mut self) {
        let moved = std::fs::metadata(&self.path).map_or(true, |m| m.ino() != self.inode);
        if moved {
            if let Ok(reopened) = ReopeningLog::open(&self.path) {
                *self = reopened;
            }
        }
    }
}

impl Write for ReopeningLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.follow();
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

use crate::clock;
use crate::config::Config;

static FUNCTION: OnceLock<String> = OnceLock::new();

/// Names the function this process serves, for every later log line.
pub fn set_function(name: &str) {
    let _ = FUNCTION.set(name.to_string());
}

/// Starts logging as the configuration says. Call once.
pub fn init(config: &Config, env: &std::collections::BTreeMap<String, String>) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(&config.log_level);
    if let Some(filters) = env.get("RUST_LOG").filter(|f| !f.is_empty()) {
        builder.parse_filters(filters);
    }
    builder.format(|buf, record| {
        writeln!(
            buf,
            "{} [{}] {} {}: {}",
            clock::utc_datetime(clock::now_unix()),
            std::process::id(),
            record.level(),
            FUNCTION.get().map(String::as_str).unwrap_or("-"),
            record.args()
        )
    });
    if let Some(dir) = config.log_file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match ReopeningLog::open(&config.log_file) {
        Ok(file) => {
            builder.target(env_logger::Target::Pipe(Box::new(file)));
        }
        Err(_) => {
            builder.target(env_logger::Target::Stderr);
        }
    }
    let _ = builder.try_init();
    for warning in &config.warnings {
        log::warn!("{warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_log_is_reopened_at_its_path() {
        let dir = std::env::temp_dir().join(format!("billmgr-ops-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("billmgr-ops.log");
        let mut log = ReopeningLog::open(&path).unwrap();
        log.write_all(b"one\n").unwrap();
        std::fs::rename(&path, dir.join("billmgr-ops.log.1")).unwrap();
        log.write_all(b"two\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("billmgr-ops.log.1")).unwrap(),
            "one\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
