//! Living with the plugin: `billmgr-ops status` (is everything healthy?)
//! and the notifications of failed backups and operations that turned
//! manual.

pub mod log;
pub mod notify;
pub mod status;
