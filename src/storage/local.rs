//! A directory on this server.
//!
//! A new object is written as `.<name>.part` in the same directory, synced,
//! and renamed over its final name on commit (then the directory is
//! synced), so a crash at any point leaves either the old state or the
//! complete object. Leftover `.part` files are invisible to `list` and
//! removed by [`LocalStorage::clean_partials`].

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{check_name, ObjectInfo, Storage, StorageWriter};

pub struct LocalStorage {
    dir: PathBuf,
}

impl LocalStorage {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LocalStorage { dir: dir.into() }
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        Ok(self.dir.join(name))
    }
}

struct LocalWriter {
    file: File,
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
    /// Bytes written, and up to where the kernel was told to start
    /// writing them out.
    written: u64,
    started: u64,
}

/// Written bytes after which the kernel starts writing them to disk, so
/// that the sync on commit does not wait for the whole object (0.4 s of
/// a 250 MB copy otherwise).
const WRITE_OUT_EVERY: u64 = 32 << 20;

impl Write for LocalWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= WRITE_OUT_EVERY {
            // DONTNEED starts the write-back of dirty pages without waiting
            // for it (and drops the clean ones: a copy is not read back
            // soon). Only a hint: a failure changes nothing.
            let _ = nix::fcntl::posix_fadvise(
                &self.file,
                i64::try_from(self.started).unwrap_or(i64::MAX),
                i64::try_from(self.written - self.started).unwrap_or(i64::MAX),
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
            );
            self.started = self.written;
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl StorageWriter for LocalWriter {
    fn commit(mut self: Box<Self>) -> Result<()> {
        self.file
            .sync_all()
            .with_context(|| format!("failed to sync `{}`", self.temp.display()))?;
        fs::rename(&self.temp, &self.target).with_context(|| {
            format!(
                "failed to rename `{}` to `{}`",
                self.temp.display(),
                self.target.display()
            )
        })?;
        if let Some(dir) = self.target.parent() {
            File::open(dir).and_then(|d| d.sync_all()).ok();
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

impl Storage for LocalStorage {
    fn describe(&self) -> String {
        format!("local directory {}", self.dir.display())
    }

    fn list(&self) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        if !self.dir.exists() {
            return Ok(out);
        }
        for entry in fs::read_dir(&self.dir)
            .with_context(|| format!("failed to read `{}`", self.dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            // An object deleted while the directory is read (another job,
            // a probe side by side) is simply not listed.
            let size = match entry.metadata() {
                Ok(meta) => meta.len(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            out.push(ObjectInfo { name, size });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn create(&self, name: &str) -> Result<Box<dyn StorageWriter>> {
        let target = self.path(name)?;
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("failed to create `{}`", self.dir.display()))?;
        let temp = self.dir.join(format!(".{name}.part"));
        // A leftover of a dead job goes first; the new one is created
        // exclusively, so a link planted at that name is never written
        // through.
        let _ = fs::remove_file(&temp);
        let file = crate::fsutil::create_new(&temp, 0o600)
            .with_context(|| format!("failed to create `{}`", temp.display()))?;
        Ok(Box::new(LocalWriter {
            file,
            temp,
            target,
            committed: false,
            written: 0,
            started: 0,
        }))
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        let path = self.path(name)?;
        let file =
            File::open(&path).with_context(|| format!("failed to open `{}`", path.display()))?;
        Ok(Box::new(std::io::BufReader::with_capacity(1 << 20, file)))
    }

    fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        let path = self.path(name)?;
        let mut file =
            File::open(&path).with_context(|| format!("failed to open `{}`", path.display()))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(len as usize);
        file.take(len)
            .read_to_end(&mut buf)
            .with_context(|| format!("failed to read `{}` at {offset}", path.display()))?;
        anyhow::ensure!(
            buf.len() as u64 == len,
            "`{}` is shorter than expected",
            path.display()
        );
        Ok(buf)
    }

    fn size(&self, name: &str) -> Result<u64> {
        let path = self.path(name)?;
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(super::NotFound(name.to_string()).into())
            }
            Err(e) => Err(e).with_context(|| format!("failed to stat `{}`", path.display())),
        }
    }

    fn remove(&self, name: &str) -> Result<()> {
        let path = self.path(name)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("failed to remove `{}`", path.display())),
        }
    }

    fn clean_partials(&self) -> Result<usize> {
        let mut removed = 0;
        if !self.dir.exists() {
            return Ok(0);
        }
        for entry in fs::read_dir(&self.dir)
            .with_context(|| format!("failed to read `{}`", self.dir.display()))?
        {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".part") {
                fs::remove_file(entry.path())
                    .with_context(|| format!("failed to remove `{}`", entry.path().display()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn free_space(&self) -> Result<Option<u64>> {
        // The directory may not exist yet: ask about the nearest one that does.
        let dir = self
            .dir
            .ancestors()
            .find(|d| d.exists())
            .unwrap_or(Path::new("/"));
        let stat = nix::sys::statvfs::statvfs(dir)
            .with_context(|| format!("failed to read free space of `{}`", dir.display()))?;
        Ok(Some(
            stat.blocks_available() as u64 * stat.fragment_size() as u64,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn dir(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("billmgr-ops-local-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn an_object_appears_only_when_committed() {
        let d = dir("commit");
        let s = LocalStorage::new(&d);
        let mut w = s.create("copy.tar").unwrap();
        w.write_all(b"hello world").unwrap();
        assert!(s.list().unwrap().is_empty());
        w.commit().unwrap();
        assert_eq!(
            s.list().unwrap(),
            vec![ObjectInfo {
                name: "copy.tar".into(),
                size: 11
            }]
        );
        assert_eq!(s.read_range("copy.tar", 6, 5).unwrap(), b"world");
        let mut all = String::new();
        s.open("copy.tar")
            .unwrap()
            .read_to_string(&mut all)
            .unwrap();
        assert_eq!(all, "hello world");
        assert!(s.free_space().unwrap().unwrap() > 0);
        s.remove("copy.tar").unwrap();
        assert!(s.list().unwrap().is_empty());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_abandoned_writer_leaves_nothing() {
        let d = dir("abandon");
        let s = LocalStorage::new(&d);
        let mut w = s.create("copy.tar").unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert!(s.list().unwrap().is_empty());
        assert_eq!(fs::read_dir(&d).unwrap().count(), 0);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_short_object_fails_the_stored_check() {
        let d = dir("stored");
        let s = LocalStorage::new(&d);
        let (mut w, count) = crate::storage::Counted::new(s.create("copy.tar").unwrap());
        w.write_all(&[1u8; 4096]).unwrap();
        Box::new(w).commit().unwrap();
        crate::storage::check_stored(&s, "copy.tar", &count).unwrap();
        // A storage that lost the tail (a full disk, a cut transfer).
        let f = OpenOptions::new()
            .write(true)
            .open(d.join("copy.tar"))
            .unwrap();
        f.set_len(1000).unwrap();
        let e = crate::storage::check_stored(&s, "copy.tar", &count).unwrap_err();
        assert!(e.to_string().contains("holds 1000 bytes"), "{e}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn names_cannot_escape_the_directory() {
        let s = LocalStorage::new(dir("names"));
        for bad in ["../x", "/etc/passwd", ".hidden", "a/b", ""] {
            assert!(s.create(bad).is_err(), "{bad}");
            assert!(s.open(bad).is_err(), "{bad}");
        }
    }
}
