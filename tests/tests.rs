//! End-to-end tests: the real binary against a real MariaDB.
//!
//! The harness uses BILLMGR_OPS_TEST_DB when set, otherwise it starts a
//! private mariadbd; every test gets a database of its own.

// Tests read the environment and their children's stdout freely.
#![allow(clippy::print_stdout, clippy::print_stderr, clippy::disallowed_methods)]

#[cfg(not(feature = "dev"))]
compile_error!("the integration tests seed their databases with `billmgr-ops dev seed`: run them with `--features dev` (scripts/test.sh does)");

mod harness;

mod backup;
mod backupdata;
mod cli;
mod coexistence;
mod credentials;
mod health;
mod hostile;
mod install;
mod layers;
mod object_restore;
mod pitr;
mod protocol;
mod reader;
mod recipe;
mod registry;
mod runner;
mod runningoperation;
mod seed;
mod storages;
mod transfer;
