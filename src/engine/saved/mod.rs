//! Saved objects: what a copy holds that an administrator restores one by
//! one (`backupdata`) — clients with their users, services and payments,
//! and the panel's files.
//!
//! - [`objects`]: the kinds, defined in one table, and the index rows a
//!   listing yields;
//! - [`index`]: a copy's objects cut into the catalog's blocks ahead of
//!   the catalog's transaction;
//! - [`pick`]: finding an object's rows in a copy by ranged reads;
//! - [`object_restore`]: an object and what it needs, written into the
//!   live database in one transaction, its rows kept on disk until then
//!   ([`gathered`]);
//! - [`file_restore`]: saved files written back below the allowed roots.

pub mod file_restore;
pub mod gathered;
pub mod index;
pub mod object_restore;
pub mod objects;
pub mod pick;
pub mod staged_rows;
