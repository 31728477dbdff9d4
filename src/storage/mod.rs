//! Storages: where copies live. A small interface that every kind
//! implements: list, stream a new object in (visible only once committed),
//! stream one out, read a byte range of one, remove one.
//!
//! The engine only ever sees `dyn Storage`; the local directory is the
//! first kind, and remote kinds are further implementations of the same
//! trait. Ranged reads are part of the contract because per-object restore
//! reads only the chunks it needs.

pub mod fetch;
pub mod local;
pub mod params;
pub mod remote;
pub mod runtime;
pub mod sftp;

use std::io::{Read, Write};

use anyhow::{Context, Result};

/// The object is not on the storage: an answer, unlike a storage that
/// cannot be reached. Callers branch on it ([`is_not_found`]).
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not on the storage")]
pub struct NotFound(pub String);

/// Whether `e` says the object is not there (and nothing worse).
pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<NotFound>().is_some()
}

/// A storage's failure, and whether trying again later may help: a lost
/// connection, a time-out, a busy or rate-limited service are temporary;
/// wrong credentials, a refused host key, invalid settings are permanent
/// (a person must act). Callers branch on it ([`is_temporary`]).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    pub message: String,
    pub temporary: bool,
}

impl StorageError {
    pub fn temporary(message: impl Into<String>) -> anyhow::Error {
        StorageError {
            message: message.into(),
            temporary: true,
        }
        .into()
    }

    pub fn permanent(message: impl Into<String>) -> anyhow::Error {
        StorageError {
            message: message.into(),
            temporary: false,
        }
        .into()
    }
}

/// Whether the storage failure in `e` is temporary; `None` when `e` holds
/// no typed storage failure.
pub fn is_temporary(e: &anyhow::Error) -> Option<bool> {
    e.downcast_ref::<StorageError>().map(|s| s.temporary)
}

/// Opens the storage `params` describe: a directory on this server (a
/// relative path is taken from the panel directory `mgrdir`), or a remote
/// one with its `secret` (already unsealed by the caller).
pub fn open(
    mgrdir: &std::path::Path,
    params: &params::Params,
    secret: Option<&str>,
) -> Result<Box<dyn Storage>> {
    Ok(match params.kind {
        params::Kind::Local => Box::new(local::LocalStorage::new(absolute(mgrdir, &params.path))),
        // SFTP through russh, the others through OpenDAL.
        params::Kind::Sftp => Box::new(sftp::SftpStorage::new(params, secret)),
        _ => Box::new(remote::RemoteStorage::open(params, secret)?),
    })
}

/// `path`, taken from `base` when it is relative.
pub fn absolute(base: &std::path::Path, path: &str) -> std::path::PathBuf {
    if path.starts_with('/') {
        std::path::PathBuf::from(path)
    } else {
        base.join(path)
    }
}

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
    /// Whether a committed object is known to hold exactly what was
    /// written (a synced local file; S3, which checks each part's checksum),
    /// so that checking its size is enough. Otherwise it is read back.
    fn vouches_for_content(&self) -> bool {
        true
    }
    /// Removes what interrupted writers left behind; returns how many.
    fn clean_partials(&self) -> Result<usize> {
        Ok(0)
    }
}

/// Objects being written as one unit (an archive, its key, its listing):
/// removed when the guard drops unless [`Pending::keep`] was called, so a
/// failure at any step leaves nothing that looks like a copy.
pub struct Pending<'a> {
    storage: &'a dyn Storage,
    objects: Vec<String>,
}

impl<'a> Pending<'a> {
    pub fn new(storage: &'a dyn Storage, objects: Vec<String>) -> Pending<'a> {
        Pending { storage, objects }
    }

    /// The objects stay: the unit is complete.
    pub fn keep(mut self) {
        self.objects.clear();
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        for object in &self.objects {
            if let Err(e) = self.storage.remove(object) {
                if !is_not_found(&e) {
                    log::warn!("could not remove {object} after a failure: {e:#}");
                }
            }
        }
    }
}

/// What was handed to a storage writer: the byte count and SHA-256, to
/// check the stored object against after commit.
#[derive(Clone, Default)]
pub struct Tally(std::sync::Arc<std::sync::Mutex<(u64, sha2::Sha256)>>);

impl Tally {
    /// Bytes written and their SHA-256.
    pub fn written(&self) -> (u64, [u8; 32]) {
        use sha2::Digest;
        let t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (t.0, t.1.clone().finalize().into())
    }
}

/// Counts and hashes the bytes handed to a storage writer.
pub struct Counted {
    inner: Box<dyn StorageWriter>,
    tally: Tally,
}

impl Counted {
    /// The writer and a handle that reads the tally.
    pub fn new(inner: Box<dyn StorageWriter>) -> (Counted, Tally) {
        let tally = Tally::default();
        (
            Counted {
                inner,
                tally: tally.clone(),
            },
            tally,
        )
    }
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.write(buf)?;
        let mut t = self.tally.0.lock().unwrap_or_else(|e| e.into_inner());
        t.0 += n as u64;
        t.1.update(&buf[..n]);
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

/// Commits nothing more: checks that `storage` holds all of `object`, the
/// size always, and the content too where the storage itself does not
/// vouch for it (read back and hashed).
pub fn check_stored(storage: &dyn Storage, object: &str, tally: &Tally) -> Result<()> {
    let (written, sha256) = tally.written();
    let stored = storage.size(object)?;
    anyhow::ensure!(
        stored == written,
        "{} holds {stored} bytes of {object}, {written} were written",
        storage.describe()
    );
    if !storage.vouches_for_content() {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        let mut reader = storage.open(object)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf).with_context(|| {
                format!("failed to read {object} back from {}", storage.describe())
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let back: [u8; 32] = hasher.finalize().into();
        anyhow::ensure!(
            back == sha256,
            "{object} read back from {} differs from what was written",
            storage.describe()
        );
    }
    Ok(())
}

/// Copies object `name` from one storage to another, streaming, and checks
/// the stored copy like any other write. Returns its size.
pub fn replicate(from: &dyn Storage, to: &dyn Storage, name: &str) -> Result<u64> {
    let (mut w, tally) = Counted::new(to.create(name)?);
    let mut r = from.open(name)?;
    std::io::copy(&mut r, &mut w)
        .with_context(|| format!("failed to copy {name} to {}", to.describe()))?;
    Box::new(w).commit()?;
    check_stored(to, name, &tally)?;
    Ok(tally.written().0)
}

/// An object name is a plain file name: no directories, nothing hidden.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    anyhow::ensure!(ok, "`{name}` is not a valid object name");
    Ok(())
}

/// The step of a connection check that failed, and why.
#[derive(Debug, thiserror::Error)]
#[error("{step} failed: {error:#}{}", hint(error))]
pub struct ProbeFailure {
    /// `list`, `write`, `read` or `delete`.
    pub step: &'static str,
    pub error: anyhow::Error,
}

/// What a person can do about a failed check, when the failure says.
fn hint(error: &anyhow::Error) -> &'static str {
    match is_temporary(error) {
        Some(true) => " (temporary: trying again later may help)",
        Some(false) => " (it will fail again until the storage's settings or the server change)",
        None => "",
    }
}

/// Checks a storage end to end: lists it, writes a small probe object,
/// reads it back whole and in part, deletes it and sees it gone.
pub fn probe(storage: &dyn Storage) -> Result<(), ProbeFailure> {
    let fail = |step| move |error| ProbeFailure { step, error };
    storage.list().map_err(fail("list"))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Probes run side by side (status), maybe on one place twice.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("billmgr-ops-probe-{}-{nanos}-{n}", std::process::id());
    let data: Vec<u8> = (0..65_536u32).map(|i| (i * 31 % 251) as u8).collect();
    (|| -> Result<()> {
        let (mut w, tally) = Counted::new(storage.create(&name)?);
        w.write_all(&data)?;
        Box::new(w).commit()?;
        check_stored(storage, &name, &tally)
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
