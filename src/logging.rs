//! Logging to `<mgrdir>/var/billmgr-ops.log` (time, pid, level, function).
//!
//! stdout belongs to the panel, so the log never goes there. When the log
//! file cannot be opened (a manual run without the panel tree), lines go to
//! stderr instead.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::OnceLock;

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
    match OpenOptions::new()
        .create(true)
        .append(true)
        .open(&config.log_file)
    {
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
