//! billmgr-ops: backup and running operations for BILLmanager 6.
//!
//! One binary, several roles: the panel's addon handler (no subcommand),
//! `billmgr-ops call` for running a function by hand, the download CGI,
//! and the commands cron and administrators run. The layers, top to
//! bottom (docs/architecture.md draws them; tests/layers.rs holds the code
//! to them):
//!
//! - [`cli`]: the command line; panel mode reads the environment and stdin.
//! - [`install`]: install, upgrade and uninstall into a panel directory.
//! - [`cron`]: the minute's tick over both modules.
//! - [`functions`]: the registry of panel functions; one module per
//!   function family, thin glue from request to engine or db to reply;
//!   [`health`]: `status` and the notifications.
//! - [`protocol`]: the panel protocol; the only code that knows PARAM_*,
//!   the stdin document, and writes the panel's document to stdout.
//! - [`runner`]: processing-module attempts; [`download`]: download tokens
//!   and the CGI; [`context`]: one call's config and lazy database.
//! - [`engine`]: the backup engine; [`dev`]: the demo schema and data
//!   generator (the `dev` feature only).
//! - [`db`]: connection, the plugin's migrations, queries by table family.
//! - [`storage`]: where copies live; [`background`]: detached jobs.
//! - [`operation`]: a running operation's states and the pure rule of
//!   what an attempt's end does to it (persisted by `db`).
//! - [`config`], [`logging`], [`xml`], [`clock`], [`fsutil`], [`progress`],
//!   [`host`], [`mgrctl`] (asking the panel itself): support.
//!
//! Every module is private to the crate, so the compiler reports dead
//! code; the binary enters through [`main`], and the integration tests
//! reach the few tables they check through [`test_support`].
//!
//! # Files on disk
//!
//! - `<mgrdir>/etc/billmgr-ops.conf`: the plugin's config ([`config`]).
//! - `<mgrdir>/etc/billmgr.conf` and `etc/billmgr.conf.d/*.conf`:
//!   BILLmanager's; their DB* keys are read ([`config::panel_db`]);
//!   `<mgrdir>/var/billmgr-ops.paramlist`: `mgrctl paramlist`'s kept answer.
//! - `<mgrdir>/etc/xml/billmgr_mod_billmgrops*.xml`: the manifests, from xml/
//!   (also compiled in: [`protocol::messages::MANIFESTS`]).
//! - `<mgrdir>/var/billmgr-ops.log`: the log ([`logging`]).
//! - Tables `billmgrops_*` in the billing database ([`db::migrate`]).
//! - `<mgrdir>/addon/billmgr-ops`, `<mgrdir>/cgi/billmgr-ops-download`,
//!   `/etc/cron.d/billmgr-ops`, `/etc/logrotate.d/billmgr-ops` and their
//!   record `<mgrdir>/etc/billmgr-ops.installed`: placed by [`install`].

// The crate's docs are for its developers (`cargo doc
// --document-private-items`): they link the private modules freely.
#![allow(rustdoc::private_intra_doc_links)]

mod background;
mod cli;
mod clock;
mod config;
mod context;
mod cron;
mod db;
#[cfg(feature = "dev")]
mod dev;
mod download;
mod engine;
mod fsutil;
mod functions;
#[cfg(test)]
mod fuzz;
#[cfg(any(test, feature = "fuzz"))]
#[doc(hidden)]
pub mod fuzzing;
mod health;
mod host;
mod install;
mod logging;
mod mgrctl;
mod operation;
mod progress;
mod protocol;
mod runner;
mod storage;
mod xml;

pub use cli::main;

/// What the integration tests (tests/) reach inside the crate, and
/// nothing more: the tables they hold the manifests, texts, README and
/// example config to, the XML reader for documents, and the archive
/// writer for forged copies. Not an API.
#[doc(hidden)]
pub mod test_support {
    pub use crate::config::{parse_lines, InstallMode, KEYS};
    pub use crate::db::migrate::latest as latest_migration;
    #[cfg(feature = "dev")]
    pub use crate::dev::schema::tables as billmanager_tables;
    pub use crate::engine::test_support::{read_entries, ArchiveWriter, LISTING_ENTRY};
    pub use crate::engine::SETTINGS;
    pub use crate::functions::{Access, Kind, FUNCTIONS};
    pub use crate::protocol::messages::MANIFESTS;
    pub use crate::protocol::naming::manifests;
    pub use crate::protocol::ErrorKind;
    pub use crate::xml::Element;

    /// The row count the copy splits work by, per table of the database
    /// `url` names (`engine::test_support::tables`).
    pub fn estimated_rows(url: &str) -> anyhow::Result<Vec<(String, u64)>> {
        let mut conn = mysql::Conn::new(mysql::Opts::from_url(url)?)?;
        let database = crate::db::current_database(&mut conn)?;
        Ok(
            crate::engine::test_support::tables(&mut conn, &database, &[])?
                .into_iter()
                .map(|t| (t.name, t.estimated_rows))
                .collect(),
        )
    }
}
