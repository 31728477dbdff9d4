//! Storages: where copies live. A small interface that every kind
//! implements: list, stream a new object in (visible only once committed),
//! stream one out, read a byte range of one, remove one.
//!
//! The engine only ever sees `dyn Storage`; the local directory is the
//! first kind, and remote kinds are further implementations of the same
//! trait. Ranged reads are part of the contract because per-object restore
//! reads only the chunks it needs.

pub mod local;

use std::io::{Read, Write};

use anyhow::Result;

/// An object on a storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub name: String,
    pub size: u64,
}

/// A new object being written. Nothing is visible under the final name
/// until [`StorageWriter::commit`]; dropping without commit leaves nothing
/// that looks like a copy.
pub trait StorageWriter: Write + Send {
    /// Makes the object visible under its name, durably.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A place that holds copies.
pub trait Storage: Send + Sync {
    /// For messages and logs: kind and location, never a secret.
    fn describe(&self) -> String;
    /// Committed objects.
    fn list(&self) -> Result<Vec<ObjectInfo>>;
    /// Starts writing object `name`.
    fn create(&self, name: &str) -> Result<Box<dyn StorageWriter>>;
    /// Streams object `name` from its start.
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>>;
    /// `len` bytes of object `name` from `offset`.
    fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>>;
    fn size(&self, name: &str) -> Result<u64>;
    fn remove(&self, name: &str) -> Result<()>;
    /// Bytes free for new objects, when the kind can tell.
    fn free_space(&self) -> Result<Option<u64>>;
    /// Removes what interrupted writers left behind; returns how many.
    fn clean_partials(&self) -> Result<usize> {
        Ok(0)
    }
}

/// Counts the bytes handed to a storage writer, so that the stored object
/// can be checked against them after commit.
pub struct Counted {
    inner: Box<dyn StorageWriter>,
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Counted {
    /// The writer and a handle that reads the count.
    pub fn new(
        inner: Box<dyn StorageWriter>,
    ) -> (Counted, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        (
            Counted {
                inner,
                written: std::sync::Arc::clone(&written),
            },
            written,
        )
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl StorageWriter for Counted {
    fn commit(self: Box<Self>) -> Result<()> {
        self.inner.commit()
    }
}

/// Commits nothing more: checks that `storage` holds all of `object`.
pub fn check_stored(storage: &dyn Storage, object: &str, written: u64) -> Result<()> {
    let stored = storage.size(object)?;
    anyhow::ensure!(
        stored == written,
        "{} holds {stored} bytes of {object}, {written} were written",
        storage.describe()
    );
    Ok(())
}

/// An object name is a plain file name: no directories, nothing hidden.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    anyhow::ensure!(ok, "`{name}` is not a valid object name");
    Ok(())
}
