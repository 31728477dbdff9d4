//! Unnamed temporary files that keep what would not fit in memory: a
//! dump's saved objects and key index runs, a per-object restore's rows.
//! Created exclusively (never through a symlink), readable by root alone,
//! unlinked at once, so nothing is left behind whatever ends the process.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};

use anyhow::{Context, Result};

/// An unnamed temporary file written at its end and read by ranges.
pub struct SpillFile {
    file: File,
    end: u64,
}

impl SpillFile {
    /// A new file in the system's temporary directory (created
    /// exclusively, readable by root alone, unlinked at once).
    pub fn new(what: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "billmgr-ops-{what}-{}",
            crate::fsutil::random_hex(8)?
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(crate::fsutil::libc_nofollow())
            .open(&path)
            .and_then(|f| std::fs::remove_file(&path).map(|()| f))
            .with_context(|| format!("failed to create `{}`", path.display()))?;
        Ok(SpillFile { file, end: 0 })
    }

    /// Appends `data`; returns where it went.
    pub fn append(&mut self, data: &[u8]) -> Result<u64> {
        self.file
            .write_all_at(data, self.end)
            .context("failed to keep the copy's indexes on disk")?;
        let at = self.end;
        self.end += data.len() as u64;
        Ok(at)
    }

    /// `size` bytes at `offset`, as a reader.
    pub fn section(&self, offset: u64, size: u64) -> Section<'_> {
        Section {
            file: &self.file,
            at: offset,
            end: offset + size,
        }
    }

    /// `size` bytes at `offset`.
    pub fn read(&self, offset: u64, size: u64) -> Result<Vec<u8>> {
        let mut out = vec![0; usize::try_from(size)?];
        self.file
            .read_exact_at(&mut out, offset)
            .context("failed to read the copy's indexes back")?;
        Ok(out)
    }
}

/// A byte range of a spill file (positioned reads: no shared cursor).
pub struct Section<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.at);
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.at += n as u64;
        Ok(n)
    }
}
