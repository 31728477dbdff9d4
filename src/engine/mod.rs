//! The backup engine: consistent copies of the billing database and the
//! panel's files, verification, and staged full restore. It knows MySQL and
//! storages, and nothing of XML or the panel.
//!
//! # Overview
//!
//! - [`dump`]: one snapshot, several connections, one archive per copy
//!   (consistency, parallelism, memory and failure are described there);
//! - [`verify`]: every byte of a copy checked against its listing, without
//!   the database;
//! - [`restore`]: load into a staging database, check, then swap atomically
//!   (or merge the missing rows), keeping the replaced tables for undo;
//! - [`archive`]: the format (docs/archive-format.md), with [`tsv`] for the
//!   rows and [`crypt`] for encrypted copies;
//! - [`introspect`]: what a database holds, read from its catalog;
//! - [`ddl`]: every statement read from a copy checked and rebuilt before
//!   it runs;
//! - [`saved`]: single objects and files, indexed and restored one by one;
//! - [`upload`]: copies and dumps brought from outside, checked first;
//! - [`policy`]: when plans are due and which copies they keep;
//! - [`settings`]: the one table of backup settings and how they resolve;
//! - [`spill`]: unnamed temporary files for what would not fit in memory;
//! - [`jobs`]: what the CLI and the panel call: one backup or restore at a
//!   time (a database lock), the catalog of copies, progress and outcome.

pub mod archive;
pub mod crypt;
pub mod ddl;
pub mod dump;
pub mod introspect;
pub mod jobs;
pub mod policy;
pub mod restore;
pub mod saved;
pub mod settings;
pub mod spill;
pub mod tsv;
pub mod upload;
pub mod verify;
