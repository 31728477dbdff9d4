//! The backup engine: consistent copies of the billing database and the
//! panel's files, verification, and staged full restore. It knows MySQL and
//! storages, and nothing of XML or the panel.
//!
//! # Overview
//!
//! Its modules are private; the face below (`pub use`) is its one door,
//! chiefly [`jobs`]. Inside, lowest layer first (tests/layers.rs holds the
//! code to this order; a module uses only those of lower layers):
//!
//! 1. [`mod@format`]: what a copy is, the types written to a storage and read
//!    back (docs/archive-format.md); [`tsv`] for rows, [`spill`] for
//!    temporary files, [`crypt`] for encrypted copies, [`policy`] for when
//!    plans are due and which copies they keep;
//! 2. [`ddl`]: every statement read from a copy checked and rebuilt before
//!    it runs; [`introspect`]: what a database holds, read from its
//!    catalog; [`archive`]: the tar with its entries, and a copy opened on
//!    a storage;
//! 3. [`verify`]: every byte of a copy checked against its listing,
//!    without the database;
//! 4. [`restore`]: load into a staging database, check, then swap
//!    atomically (or merge the missing rows), keeping the replaced tables
//!    for undo;
//! 5. [`saved`]: single objects and files, indexed and restored one by
//!    one;
//! 6. [`dump`]: one snapshot, several connections, one archive per copy
//!    (consistency, parallelism, memory and failure are described there);
//! 7. [`settings`]: the one table of backup settings and how they resolve;
//! 8. [`jobs`]: what the CLI and the panel call: one backup or restore at
//!    a time (a database lock), the catalog of copies, progress and
//!    outcome;
//! 9. [`upload`]: copies and dumps brought from outside, checked first.

mod archive;
mod binlog;
mod crypt;
mod ddl;
mod dump;
mod format;
mod introspect;
mod jobs;
mod policy;
mod restore;
mod saved;
mod settings;
mod spill;
mod tsv;
mod upload;
mod verify;

// The engine's face: the jobs, and the types their signatures carry. The
// CLI, the panel's functions, health and the download CGI use these and
// nothing else of the engine (its modules are private to it).
pub use binlog::follow::FollowOptions;
pub use crypt::{encrypt_to_passphrase, seal_secret, signing_key};
pub use format::check::BadListing;
pub use format::kinds::{self as object_kinds, FILE, TABLE_KINDS};
pub use jobs::{
    busy, delete_copy, drill, due_plans, find, follow_log, log_position_now, log_window, open_copy,
    rescan, restore_copy, restore_files, restore_objects, restore_objects_at, restore_to_time,
    show_object, spool_dir, take_copy, undo_restore, verify_copy, AlreadyFollowed, Busy, DrillOf,
    NotRecoverable,
};
pub use policy::schedule::{self, Schedule};
pub use restore::Behavior;
pub use saved::object_restore::Wanted;
pub use settings::{open_storage, Setting, Settings, Values, SETTINGS};
pub use upload::{
    upload as upload_copy, DumpNeedsGrants, NameTaken, NotACopy, ReadProgress, Source,
};

/// What the crate's integration tests reach inside the engine (through
/// `crate::test_support`) and its own fuzz tests: the archive writer for
/// forged copies, the catalog's row estimates, the DDL checker and the
/// listing. Not for the code.
#[doc(hidden)]
pub mod test_support {
    pub use crate::engine::archive::{read_entries, ArchiveWriter};
    pub use crate::engine::format::names::LISTING_ENTRY;
    pub use crate::engine::introspect::tables;

    #[cfg(any(test, feature = "fuzz"))]
    pub mod ddl {
        pub use crate::engine::ddl::*;
    }

    #[cfg(any(test, feature = "fuzz"))]
    pub mod listing {
        pub use crate::engine::format::kinds::*;
        pub use crate::engine::format::listing::*;
    }
}
