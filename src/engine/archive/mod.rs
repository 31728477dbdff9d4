//! The archive: one tar file per copy, readable with standard tools.
//!
//! ```text
//! FORMAT                          "billmgr-ops-copy 2\n"
//! schema/tables/<table>.sql       CREATE TABLE, one per table
//! schema/<kind>/<name>.sql        views, triggers, procedures, functions, events
//! data/<table>/<range>-<part>.tsv.zst
//!                                 rows as LOAD DATA text (tab-separated, \N for
//!                                 NULL, backslash escapes), zstd frames of
//!                                 about 128 KiB of text each
//! keys/<table>/<column>/<n>.tsv.zst
//!                                 the key index: which frames hold each value
//! files/<absolute path>           the panel's files, with their owner, mode, times
//! listing.json                    the listing (see `listing`), last
//! ```
//!
//! The full specification is docs/archive-format.md.

pub mod object_spill;
pub mod objects;

use std::io::{self, Read, Seek, SeekFrom, Write};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::format::check::{self, MAX_LISTING};
use super::format::names::{archive_object, listing_object};
use super::format::{Entry, Listing};

use super::crypt::{CopyKey, RangeReader};
use crate::storage::Storage;

/// A copy on a storage, opened: reads its listing and its archive, whole or
/// by ranges, decrypting when it is encrypted.
pub struct Copy<'a> {
    pub storage: &'a dyn Storage,
    pub name: String,
    pub key: Option<CopyKey>,
}

impl<'a> Copy<'a> {
    pub fn archive(&self) -> String {
        archive_object(&self.name, self.key.is_some())
    }

    /// The listing beside the archive, checked ([`check`]), also against
    /// the archive's size on the storage.
    pub fn listing(&self) -> Result<Listing> {
        let object = listing_object(&self.name, self.key.is_some());
        let mut data = Vec::new();
        let reader = self.storage.open(&object).with_context(|| {
            format!(
                "no listing of copy `{}` on {}",
                self.name,
                self.storage.describe()
            )
        })?;
        let reader: Box<dyn Read + '_> = match &self.key {
            None => reader,
            Some(key) => Box::new(key.decrypt(reader)?),
        };
        reader.take(MAX_LISTING + 1).read_to_end(&mut data)?;
        let listing = Listing::from_json(&data)?;
        // The stored archive bounds every entry (an encrypted one is a
        // little larger than the tar it holds).
        let size = self.archive_size()?;
        listing.check_within(size)?;
        Ok(listing)
    }

    /// The stored archive's size (encrypted, when it is).
    pub fn archive_size(&self) -> Result<u64> {
        self.storage.size(&self.archive())
    }

    /// The archive from its start (plain tar bytes).
    pub fn open(&self) -> Result<Box<dyn Read + Send + 'a>> {
        let reader = self.storage.open(&self.archive()).with_context(|| {
            format!(
                "failed to read {} from {}",
                self.archive(),
                self.storage.describe()
            )
        })?;
        Ok(match &self.key {
            None => reader,
            Some(key) => Box::new(key.decrypt(reader)?),
        })
    }

    /// `len` bytes of the tar at `offset`.
    pub fn read_range(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        match &self.key {
            None => self.storage.read_range(&self.archive(), offset, len),
            Some(key) => {
                let mut r = key.decrypt(RangeReader::new(self.storage, &self.archive())?)?;
                r.seek(SeekFrom::Start(offset))?;
                let mut buf = vec![0; len as usize];
                r.read_exact(&mut buf)
                    .with_context(|| format!("failed to read {} at {offset}", self.archive()))?;
                Ok(buf)
            }
        }
    }
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Counts and hashes everything written through it.
pub struct HashingWriter<W: Write> {
    inner: W,
    written: u64,
    hasher: Sha256,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            written: 0,
            hasher: Sha256::new(),
        }
    }

    pub fn position(&self) -> u64 {
        self.written
    }

    /// The inner writer, the byte count and the hex SHA-256.
    pub fn finish(self) -> (W, u64, String) {
        (
            self.inner,
            self.written,
            hex::encode(self.hasher.finalize()),
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes (SHA-256) and counts what is read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    pub(crate) hasher: Sha256,
    pub(crate) read: u64,
}

impl<R> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            read: 0,
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Writes tar entries and tells where each entry's data landed.
pub struct ArchiveWriter<W: Write> {
    builder: tar::Builder<HashingWriter<W>>,
    mtime: u64,
}

/// Metadata of a file entry.
pub struct FileMeta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

impl<W: Write> ArchiveWriter<W> {
    /// `mtime` stamps the entries that are not panel files.
    pub fn new(inner: W, mtime: u64) -> Self {
        let mut builder = tar::Builder::new(HashingWriter::new(inner));
        builder.mode(tar::HeaderMode::Complete);
        ArchiveWriter { builder, mtime }
    }

    fn append_with(&mut self, path: &str, data: &[u8], mut header: tar::Header) -> Result<Entry> {
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.builder
            .append_data(&mut header, path, data)
            .with_context(|| format!("failed to write archive entry `{path}`"))?;
        let end = self.builder.get_ref().position();
        let padded = (data.len() as u64).div_ceil(512) * 512;
        Ok(Entry {
            path: path.to_string(),
            offset: end - padded,
            size: data.len() as u64,
            sha256: sha256_hex(data),
        })
    }

    /// A regular entry (mode 0600, owned by root).
    pub fn append(&mut self, path: &str, data: &[u8]) -> Result<Entry> {
        self.append_with(path, data, self.own_header())
    }

    fn own_header(&self) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o600);
        header.set_mtime(self.mtime);
        header.set_uid(0);
        header.set_gid(0);
        header
    }

    /// A regular entry like [`Self::append`] of `size` bytes read from
    /// `data` as they are written (an entry too large to hold in memory).
    pub fn append_reader(&mut self, path: &str, size: u64, data: impl Read) -> Result<Entry> {
        let mut header = self.own_header();
        header.set_size(size);
        header.set_cksum();
        let mut hashed = HashingReader::new(data.take(size));
        self.builder
            .append_data(&mut header, path, &mut hashed)
            .with_context(|| format!("failed to write archive entry `{path}`"))?;
        anyhow::ensure!(
            hashed.read == size,
            "archive entry `{path}` ended after {} of {size} bytes",
            hashed.read
        );
        let end = self.builder.get_ref().position();
        Ok(Entry {
            path: path.to_string(),
            offset: end - size.div_ceil(512) * 512,
            size,
            sha256: hex::encode(hashed.hasher.finalize()),
        })
    }

    /// A panel file with its own metadata.
    pub fn append_file(&mut self, path: &str, data: &[u8], meta: &FileMeta) -> Result<Entry> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(meta.mode & 0o7777);
        header.set_uid(meta.uid);
        header.set_gid(meta.gid);
        header.set_mtime(meta.mtime);
        self.append_with(path, data, header)
    }

    /// A directory or symbolic link entry (no data).
    pub fn append_special(
        &mut self,
        path: &str,
        target: Option<&str>,
        meta: &FileMeta,
    ) -> Result<Entry> {
        let mut header = tar::Header::new_gnu();
        header.set_mode(meta.mode & 0o7777);
        header.set_uid(meta.uid);
        header.set_gid(meta.gid);
        header.set_mtime(meta.mtime);
        header.set_size(0);
        match target {
            Some(t) => {
                header.set_entry_type(tar::EntryType::Symlink);
                self.builder
                    .append_link(&mut header, path, t)
                    .with_context(|| format!("failed to write archive entry `{path}`"))?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_cksum();
                self.builder
                    .append_data(&mut header, path, io::empty())
                    .with_context(|| format!("failed to write archive entry `{path}`"))?;
            }
        }
        Ok(Entry {
            path: path.to_string(),
            offset: self.builder.get_ref().position(),
            size: 0,
            sha256: sha256_hex(b""),
        })
    }

    /// Ends the tar; returns the inner writer, the archive's size and SHA-256.
    pub fn finish(self) -> Result<(W, u64, String)> {
        let inner = self
            .builder
            .into_inner()
            .context("failed to finish the archive")?;
        Ok(inner.finish())
    }
}

/// One entry read back from an archive, for checking against the listing.
pub struct ReadEntry {
    pub path: String,
    pub offset: u64,
    pub data: Vec<u8>,
}

/// Reads every entry of an archive in order, passing each to `visit`.
/// Entries are read whole: a chunk is a few megabytes, and no entry over
/// [`check::MAX_FILE`] is read at all (the size in a tar header is
/// checked before anything is allocated for it).
pub fn read_entries(
    reader: impl Read,
    mut visit: impl FnMut(ReadEntry) -> Result<()>,
) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().context("failed to read the archive")? {
        let mut entry = entry.context("the archive is damaged")?;
        let path = entry
            .path()
            .context("an archive entry has a bad path")?
            .to_string_lossy()
            .into_owned();
        let offset = entry.raw_file_position();
        let size = entry.size();
        anyhow::ensure!(
            size <= check::MAX_FILE,
            check::BadListing(format!(
                "archive entry `{path}` claims {size} bytes, more than any entry of a copy"
            ))
        );
        let mut data = Vec::with_capacity(size.min(8 << 20) as usize);
        (&mut entry)
            .take(size)
            .read_to_end(&mut data)
            .with_context(|| format!("the archive is damaged in `{path}`"))?;
        anyhow::ensure!(
            data.len() as u64 == size,
            "the archive is damaged in `{path}`: it ends early"
        );
        visit(ReadEntry { path, offset, data })?;
    }
    Ok(())
}

/// Checks read data against its listing entry.
pub fn check_entry(expected: &Entry, got: &ReadEntry) -> Result<()> {
    anyhow::ensure!(
        got.path == expected.path,
        "archive entry `{}` found where the listing has `{}`",
        got.path,
        expected.path
    );
    anyhow::ensure!(
        got.data.len() as u64 == expected.size && got.offset == expected.offset,
        "archive entry `{}`: {} bytes at {}, the listing says {} at {}",
        got.path,
        got.data.len(),
        got.offset,
        expected.size,
        expected.offset
    );
    let sum = sha256_hex(&got.data);
    anyhow::ensure!(
        sum == expected.sha256,
        "archive entry `{}` is corrupt: SHA-256 {sum}, the listing says {}",
        got.path,
        expected.sha256
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_point_at_the_data() {
        let mut w = ArchiveWriter::new(Vec::new(), 1_700_000_000);
        let a = w
            .append(
                super::super::format::names::FORMAT_ENTRY,
                b"billmgr-ops-copy 1\n",
            )
            .unwrap();
        let long = format!("data/{}/00000-0000.tsv.zst", "t".repeat(150));
        let b = w.append(&long, &[7u8; 1000]).unwrap();
        let (bytes, size, sum) = w.finish().unwrap();
        assert_eq!(size, bytes.len() as u64);
        assert_eq!(sum, sha256_hex(&bytes));
        for e in [&a, &b] {
            let at = e.offset as usize;
            assert_eq!(
                sha256_hex(&bytes[at..at + e.size as usize]),
                e.sha256,
                "{}",
                e.path
            );
        }
        let mut seen = Vec::new();
        read_entries(&bytes[..], |r| {
            let expected = if r.path == a.path { &a } else { &b };
            check_entry(expected, &r)?;
            seen.push(r.path);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [a.path.clone(), long]);
    }

    #[test]
    fn a_flipped_byte_is_caught() {
        let mut w = ArchiveWriter::new(Vec::new(), 0);
        let e = w.append("data/t/0.tsv.zst", b"some rows").unwrap();
        let (mut bytes, _, _) = w.finish().unwrap();
        bytes[e.offset as usize + 2] ^= 1;
        let err = read_entries(&bytes[..], |r| check_entry(&e, &r)).unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
    }
}
