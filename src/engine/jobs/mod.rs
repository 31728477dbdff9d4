//! Backup jobs as the CLI and the panel run them: one backup or restore at
//! a time per database ([`lock`]), the catalog kept up to date with phase
//! and percent, and every outcome recorded with its reason.
//!
//! - [`backup`]: taking a copy (dump, further storages, retention, index);
//! - [`restore`]: opening, verifying and restoring copies, whole or by
//!   object and file;
//! - [`catalog`]: finding, deleting and rescanning copies, due plans;
//! - [`lock`]: the job lock, a guard.
//!
//! What a job reads its options from is [`super::settings`].

pub mod backup;
pub mod catalog;
pub mod drill;
pub mod follow;
pub mod lock;
pub mod pitr;
pub mod restore;
pub mod window;

pub use super::saved::pick::show_object;
pub use backup::{take_copy, take_copy_locked};
pub use catalog::{delete_copy, due_plans, find, rescan};
pub use drill::{drill, DrillOf};
pub use follow::{follow_log, spool_dir, AlreadyFollowed};
pub use lock::{busy, with_job_lock, Busy};
pub use pitr::{restore_objects_at, restore_to_time, NotRecoverable};
pub use restore::{
    open_copy, restore_copy, restore_files, restore_objects, undo_restore, verify_copy,
};
pub use window::{log_position_now, log_window};
