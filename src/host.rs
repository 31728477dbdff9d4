//! This machine, as the plugin names it in what it records: the host
//! name, and `host:pid` of a process that holds a job or an attempt.

/// This machine's host name.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// `host:pid` of this process, as recorded in the runner column of a
/// running operation or copy.
pub fn runner_id() -> String {
    format!("{}:{}", hostname(), std::process::id())
}
