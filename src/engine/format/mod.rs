//! The copy's format: every type that is written to a storage and read
//! back from one, and the rules that refuse a hostile one (in the manner
//! of rustic_core's `repofile`). Nothing here does I/O or knows the
//! database; everything above reads and writes copies through these
//! types. docs/archive-format.md is the specification.
//!
//! - [`listing`]: the listing (`listing.json`, and `<copy>.json` beside
//!   the archive) and its entries;
//! - [`check`]: a listing read from outside checked before anything is
//!   allocated or run from it;
//! - [`kinds`]: the closed sets a listing names (definitions, consistency,
//!   encryption, compression, files, the kinds of saved objects);
//! - [`names`]: the names of a copy's objects on a storage and of the
//!   archive's fixed entries.

pub mod check;
pub mod kinds;
pub mod listing;
pub mod names;

pub use kinds::{Compression, Consistency, DefinitionKind, Encryption, FileKind};
pub use listing::{
    ArchiveSummary, Chunk, DatabaseCollation, Definition, Entry, FileEntry, ForeignKey, KeyBlock,
    Listing, LogPosition, SavedObject, TableEntry,
};
