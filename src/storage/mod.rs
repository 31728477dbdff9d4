//! Storages: where copies live. A small interface that every kind
//! implements: list, stream a new object in (visible only once committed),
//! stream one out, read a byte range of one, remove one.
//!
//! The engine only ever sees `dyn Storage`; the local directory is the
//! first kind, and remote kinds are further implementations of the same
//! trait. Ranged reads are part of the contract because per-object restore
//! reads only the chunks it needs.

pub mod local;
pub mod params;
pub mod remote;

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

/// The step of a connection check that failed, and why.
#[derive(Debug)]
pub struct ProbeFailure {
    /// `list`, `write`, `read` or `delete`.
    pub step: &'static str,
    pub error: anyhow::Error,
}

impl std::fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {:#}", self.step, self.error)
    }
}

impl std::error::Error for ProbeFailure {}

/// Checks a storage end to end: lists it, writes a small probe object,
/// reads it back whole and in part, deletes it and sees it gone.
pub fn probe(storage: &dyn Storage) -> Result<(), ProbeFailure> {
    let fail = |step| move |error| ProbeFailure { step, error };
    storage.list().map_err(fail("list"))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!("billmgr-ops-probe-{}-{nanos}", std::process::id());
    let data: Vec<u8> = (0..65_536u32).map(|i| (i * 31 % 251) as u8).collect();
    (|| -> Result<()> {
        let mut w = storage.create(&name)?;
        w.write_all(&data)?;
        w.commit()?;
        check_stored(storage, &name, data.len() as u64)
    })()
    .map_err(fail("write"))?;
    let read = (|| -> Result<()> {
        let mut back = Vec::new();
        storage.open(&name)?.read_to_end(&mut back)?;
        anyhow::ensure!(
            back == data,
            "the probe read back differs from what was written"
        );
        let part = storage.read_range(&name, 1000, 100)?;
        anyhow::ensure!(
            part == data[1000..1100],
            "a ranged read returned other bytes"
        );
        Ok(())
    })();
    let removed = storage.remove(&name);
    read.map_err(fail("read"))?;
    removed.map_err(fail("delete"))?;
    let left = storage.list().map_err(fail("delete"))?;
    if left.iter().any(|o| o.name == name) {
        return Err(fail("delete")(anyhow::anyhow!(
            "the probe is still listed after delete"
        )));
    }
    Ok(())
}
