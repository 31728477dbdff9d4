//! billmgr-ops: backup and running operations for BILLmanager 6.
//!
//! One binary, several roles: the panel's addon handler (no subcommand),
//! `billmgr-ops call` for running a function by hand, and the commands cron
//! and administrators run. The layers, top to bottom:
//!
//! - [`cli`]: the command line; panel mode reads the environment and stdin.
//! - [`protocol`]: the panel protocol; the only code that knows PARAM_*,
//!   the stdin document, and writes to stdout.
//! - [`functions`]: the registry of panel functions; one module per
//!   function family, thin glue from request to db/engine to reply.
//! - [`db`]: connection, the plugin's migrations, queries by table family.
//! - [`config`], [`context`], [`logging`], [`xml`], [`clock`]: support.
//! - [`dev`]: the demo schema and data generator (never used in panel mode).
//! - [`install`]: install, upgrade and uninstall into a panel directory;
//!   [`health`]: `status` and the notifications.
//!
//! # Files on disk
//!
//! - `<mgrdir>/etc/billmgr-ops.conf`: the plugin's config ([`config`]).
//! - `<mgrdir>/etc/billmgr.conf`: BILLmanager's; its DB* keys are read.
//! - `<mgrdir>/etc/xml/billmgr_mod_billmgrops*.xml`: the manifests, from xml/
//!   (also compiled in: [`protocol::messages::MANIFESTS`]).
//! - `<mgrdir>/var/billmgr-ops.log`: the log ([`logging`]).
//! - Tables `billmgrops_*` in the billing database ([`db::migrate`]).
//! - `<mgrdir>/addon/billmgr-ops`, `<mgrdir>/cgi/billmgr-ops-download`,
//!   `/etc/cron.d/billmgr-ops`, `/etc/logrotate.d/billmgr-ops` and their
//!   record `<mgrdir>/etc/billmgr-ops.installed`: placed by [`install`].

pub mod background;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod cron;
pub mod db;
#[cfg(feature = "dev")]
pub mod dev;
pub mod download;
pub mod engine;
pub mod fsutil;
pub mod functions;
#[cfg(test)]
mod fuzz;
pub mod health;
pub mod host;
pub mod install;
pub mod logging;
pub mod progress;
pub mod protocol;
pub mod runner;
pub mod storage;
pub mod xml;
