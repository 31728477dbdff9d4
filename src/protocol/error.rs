//! `PanelError`: an error the panel shows to the user as a typed
//! `<error type=.. object=..>` with a localized message.
//!
//! Every kind maps to one `msg_error_<type>` message in the manifests, in en
//! and ru; a test walks [`ErrorKind::ALL`] against xml/ so a kind can't exist
//! without its texts. Anything that is not a `PanelError` reaches the panel as
//! `type="internal"` and its detail goes to the log only.

use std::fmt;

/// The error types this plugin can raise, as the panel sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The user's access level is too low for the function.
    Access,
    /// The request document is not well-formed XML.
    Xml,
    /// The request document is larger than the limit.
    TooLarge,
    /// No function of that name is registered.
    UnknownFunc,
    /// A required parameter is missing or empty.
    Empty,
    /// A parameter has a value of the wrong shape (not a number, unknown column ...).
    Value,
    /// A parameter value is longer than allowed.
    TooLong,
    /// The object named by the request does not exist.
    Missed,
    /// The operation has an attempt running now.
    Running,
    /// No control panel address is known for the operation's server.
    NoServer,
    /// The operation's client has no user to log in as.
    NoUser,
    /// A backup or restore is running; only one at a time.
    BackupRunning,
    /// The copy is not complete (running or failed) and cannot be used.
    CopyState,
    /// An object of that name exists already.
    Exists,
    /// A storage cannot be reached, refuses the credentials or fails a check.
    Storage,
    /// A file offered as a copy is not a valid copy (nor a SQL dump).
    BadCopy,
    /// Restoring objects failed; nothing was changed.
    RestoreFailed,
    /// A file, upload or URL lies beyond what the panel may reach.
    Outside,
    /// BILLmanager's own scheduler runs processing modules (companion mode).
    CoreRuns,
    /// No place read names the billing database's account.
    NoCredentials,
    /// The database account lacks what uploading another tool's SQL dump needs.
    DumpGrants,
    /// The billing database cannot be reached.
    Db,
    /// Anything unexpected; the detail is in the log.
    Internal,
}

impl ErrorKind {
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::Access,
        ErrorKind::Xml,
        ErrorKind::TooLarge,
        ErrorKind::UnknownFunc,
        ErrorKind::Empty,
        ErrorKind::Value,
        ErrorKind::TooLong,
        ErrorKind::Missed,
        ErrorKind::Running,
        ErrorKind::NoServer,
        ErrorKind::NoUser,
        ErrorKind::BackupRunning,
        ErrorKind::CopyState,
        ErrorKind::Exists,
        ErrorKind::Storage,
        ErrorKind::BadCopy,
        ErrorKind::RestoreFailed,
        ErrorKind::Outside,
        ErrorKind::CoreRuns,
        ErrorKind::NoCredentials,
        ErrorKind::DumpGrants,
        ErrorKind::Db,
        ErrorKind::Internal,
    ];

    /// The `type` attribute, and the suffix of the `msg_error_<type>` message.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Access => "access",
            ErrorKind::Xml => "xml",
            ErrorKind::TooLarge => "toolarge",
            ErrorKind::UnknownFunc => "unknownfunc",
            ErrorKind::Empty => "empty",
            ErrorKind::Value => "value",
            ErrorKind::TooLong => "toolong",
            ErrorKind::Missed => "missed",
            ErrorKind::Running => "running",
            ErrorKind::NoServer => "noserver",
            ErrorKind::NoUser => "nouser",
            ErrorKind::BackupRunning => "backup_running",
            ErrorKind::CopyState => "copy_state",
            ErrorKind::Exists => "exists",
            ErrorKind::Storage => "storage",
            ErrorKind::BadCopy => "badcopy",
            ErrorKind::RestoreFailed => "restore_failed",
            ErrorKind::Outside => "outside",
            ErrorKind::CoreRuns => "core_runs",
            ErrorKind::NoCredentials => "db_credentials",
            ErrorKind::DumpGrants => "dump_grants",
            ErrorKind::Db => "db",
            ErrorKind::Internal => "internal",
        }
    }
}

/// The panel error an error chain comes to: a [`PanelError`] anywhere in
/// it (as the root cause or a context layer), else one of the typed errors
/// of the layers below, mapped here and nowhere else; `None` for anything
/// untyped (shown as `internal`, its detail logged).
pub fn panel_error(err: &anyhow::Error) -> Option<PanelError> {
    if let Some(panel) = err.downcast_ref::<PanelError>() {
        return Some(panel.clone());
    }
    if let Some(missing) = err.downcast_ref::<crate::config::NoCredentials>() {
        return Some(PanelError::new(
            ErrorKind::NoCredentials,
            "database",
            missing.read.join("; "),
        ));
    }
    if err.downcast_ref::<crate::db::Unavailable>().is_some() {
        return Some(PanelError::new(ErrorKind::Db, "database", ""));
    }
    if err.downcast_ref::<crate::engine::Busy>().is_some() {
        return Some(PanelError::new(ErrorKind::BackupRunning, "backup", ""));
    }
    if let Some(needs) = err.downcast_ref::<crate::engine::DumpNeedsGrants>() {
        return Some(PanelError::new(
            ErrorKind::DumpGrants,
            "file",
            needs.0.clone(),
        ));
    }
    if let Some(taken) = err.downcast_ref::<crate::engine::NameTaken>() {
        return Some(PanelError::new(ErrorKind::Exists, "name", taken.0.clone()));
    }
    // A refused upload: the file is not a copy, its listing is refused, or
    // its URL leads inside.
    if let Some(refused) = err.downcast_ref::<crate::engine::NotACopy>() {
        return Some(PanelError::new(
            ErrorKind::BadCopy,
            "file",
            refused.0.clone(),
        ));
    }
    if let Some(bad) = err.downcast_ref::<crate::engine::BadListing>() {
        return Some(PanelError::new(ErrorKind::BadCopy, "file", bad.0.clone()));
    }
    if let Some(private) = err.downcast_ref::<crate::storage::fetch::PrivateAddress>() {
        return Some(PanelError::new(
            ErrorKind::Outside,
            "url",
            private.0.clone(),
        ));
    }
    use crate::db::backupconf::Refused;
    match err.downcast_ref::<Refused>()? {
        Refused::StorageNameTaken(name) => Some(PanelError::new(
            ErrorKind::Exists,
            "storage_name",
            name.clone(),
        )),
        Refused::PlanNameTaken(name) => Some(PanelError::new(
            ErrorKind::Exists,
            "plan_name",
            name.clone(),
        )),
        Refused::StorageInUse { storage, .. } => Some(PanelError::new(
            ErrorKind::Value,
            "storage",
            storage.clone(),
        )),
    }
}

/// A typed, user-facing error: kind, the object it concerns (a parameter or
/// an object type such as `runningoperation`) and the offending value.
// The same shape BILLmanager uses in its own log lines.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Type: '{}' Object: '{object}' Value: '{value}'", kind.as_str())]
pub struct PanelError {
    pub kind: ErrorKind,
    pub object: String,
    pub value: String,
}

impl PanelError {
    pub fn new(kind: ErrorKind, object: impl Into<String>, value: impl Into<String>) -> Self {
        PanelError {
            kind,
            object: object.into(),
            value: value.into(),
        }
    }

    pub fn access(func: &str) -> Self {
        Self::new(ErrorKind::Access, func, "")
    }

    pub fn empty(param: &str) -> Self {
        Self::new(ErrorKind::Empty, param, "")
    }

    pub fn value(param: &str, value: &str) -> Self {
        Self::new(ErrorKind::Value, param, shorten(value))
    }

    pub fn toolong(param: &str, len: usize) -> Self {
        Self::new(ErrorKind::TooLong, param, format!("{len} characters"))
    }

    pub fn missed(object: &str, value: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Missed, object, shorten(&value.to_string()))
    }
}

/// Keeps echoed values readable in the panel and in logs.
fn shorten(value: &str) -> String {
    const MAX: usize = 200;
    if value.chars().count() <= MAX {
        value.to_string()
    } else {
        let mut s: String = value.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_names() {
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn long_values_are_shortened() {
        let e = PanelError::value("elid", &"9".repeat(1000));
        assert_eq!(e.value.chars().count(), 201);
        assert!(e.to_string().len() < 300);
    }
}
