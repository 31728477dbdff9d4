//! Point-in-time recovery's log: the server's binary log followed as a
//! replica ([`follow`]), kept in a local spool until the storages hold it
//! ([`spool`]), cut into segments in the server's own file format with a
//! description each ([`segment`]), and replayed into a staged database up
//! to a chosen second ([`replay`]).
//!
//! Inside, lowest first: [`event`] (one event's bytes, read without
//! trust), [`segment`], [`spool`], [`follow`], [`replay`].

pub mod event;
pub mod follow;
pub mod replay;
pub mod segment;
pub mod spool;
