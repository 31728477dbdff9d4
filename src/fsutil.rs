//! Files written and read without following a symbolic link someone else
//! planted.
//!
//! Every temporary file the plugin writes is created exclusively
//! (`O_CREAT|O_EXCL`, which also refuses a symbolic link in its place) and
//! renamed into place. Where a path lies below a directory that others may
//! write into (saved files restored into the panel's directories, uploads
//! taken from the panel's upload directory), it is walked one component at
//! a time from a directory handle with `O_NOFOLLOW`, so no component can
//! be a link that leads elsewhere, and files are created with `openat`
//! relative to that handle: a directory swapped for a link after the check
//! does not move the write.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path};

use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// Random hex characters from the kernel, for names no one can guess.
pub fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A new file at `path`, created exclusively (an existing file or a
/// symbolic link there makes it fail), with `mode`.
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc_nofollow())
        .open(path)
}

/// `O_NOFOLLOW` for `OpenOptions::custom_flags`.
pub fn libc_nofollow() -> i32 {
    OFlag::O_NOFOLLOW.bits()
}

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// An open directory; paths below it are resolved from it, never through
/// a symbolic link.
pub struct Dir {
    fd: OwnedFd,
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// What a name in a directory is, without following it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Missing,
    File,
    Dir,
    Symlink,
    Other,
}

impl Dir {
    /// Opens `path` as a trusted root (configured by the administrator;
    /// a link there is followed).
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        Ok(Dir { fd })
    }

    /// The subdirectory `name`, refusing a symbolic link.
    pub fn dir(&self, name: &OsStr) -> io::Result<Dir> {
        check_component(name)?;
        let fd = openat(
            self.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            nix::Error::ELOOP | nix::Error::ENOTDIR => io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "`{}` is a symbolic link or not a directory",
                    name.to_string_lossy()
                ),
            ),
            e => errno(e),
        })?;
        Ok(Dir { fd })
    }

    /// Walks `rel` (relative, no `..`) one directory at a time, creating
    /// missing ones with `mode` when `create` is set.
    pub fn walk(&self, rel: &Path, create: Option<u32>) -> io::Result<Dir> {
        let mut dir = Dir {
            fd: self.fd.try_clone()?,
        };
        for part in rel.components() {
            let Component::Normal(name) = part else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("`{}` is not a plain relative path", rel.display()),
                ));
            };
            if let (Found::Missing, Some(mode)) = (dir.find(name)?, create) {
                match mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(nix::Error::EEXIST) => {}
                    Err(e) => return Err(errno(e)),
                }
            }
            dir = dir.dir(name)?;
        }
        Ok(dir)
    }

    /// What `name` is, not following a link.
    pub fn find(&self, name: &OsStr) -> io::Result<Found> {
        check_component(name)?;
        match fstatat(self.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
                Ok(if kind == SFlag::S_IFREG {
                    Found::File
                } else if kind == SFlag::S_IFDIR {
                    Found::Dir
                } else if kind == SFlag::S_IFLNK {
                    Found::Symlink
                } else {
                    Found::Other
                })
            }
            Err(nix::Error::ENOENT) => Ok(Found::Missing),
            Err(e) => Err(errno(e)),
        }
    }

    /// Opens the regular file `name` for reading, refusing a link.
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        check_component(name)?;
        let fd = openat(
            self.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        )
        .map_err(errno)?;
        let file = File::from(fd);
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{}` is not a regular file", name.to_string_lossy()),
            ));
        }
        Ok(file)
    }

    /// A new temporary file beside `target` (`.<target>.<random>.bmo`),
    /// created exclusively with mode 0600; returns it and its name.
    pub fn create_temp(&self, target: &OsStr) -> io::Result<(File, OsString)> {
        check_component(target)?;
        let mut name = OsString::from(".");
        name.push(target);
        name.push(format!(".{}.bmo", random_hex(6)?));
        let fd = openat(
            self.as_fd(),
            name.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(errno)?;
        Ok((File::from(fd), name))
    }

    /// Renames `from` to `to`, both in this directory.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        check_component(from)?;
        check_component(to)?;
        renameat(self.as_fd(), from, self.as_fd(), to).map_err(errno)
    }

    /// Sets this directory's owner (when given) and mode.
    pub fn set_meta(&self, owner: Option<(u32, u32)>, mode: u32) -> io::Result<()> {
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(self, Some(uid), Some(gid))?;
        }
        nix::sys::stat::fchmod(self, Mode::from_bits_truncate(mode)).map_err(errno)
    }

    /// Removes the file (or link) `name`.
    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        check_component(name)?;
        unlinkat(self.as_fd(), name, UnlinkatFlags::NoRemoveDir).map_err(errno)
    }
}

/// One plain path component: no `/`, not `.` or `..`, not empty.
fn check_component(name: &OsStr) -> io::Result<()> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` is not a plain file name", name.to_string_lossy()),
        ));
    }
    Ok(())
}

/// `path` below `root` as a relative path, when it is one (lexically: no
/// `..` anywhere, `path` absolute).
pub fn below<'p>(root: &Path, path: &'p Path) -> Option<&'p Path> {
    if !path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return None;
    }
    path.strip_prefix(root).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("bmo-fsutil-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn links_are_never_followed() {
        let d = dir("links");
        let outside = dir("links-outside");
        std::os::unix::fs::symlink(&outside, d.join("sub")).unwrap();
        std::os::unix::fs::symlink(outside.join("x"), d.join("file")).unwrap();
        let root = Dir::open(&d).unwrap();
        assert!(root.dir(OsStr::new("sub")).is_err());
        assert!(root.walk(Path::new("sub/deeper"), Some(0o755)).is_err());
        assert!(root.open_file(OsStr::new("file")).is_err());
        assert_eq!(root.find(OsStr::new("file")).unwrap(), Found::Symlink);
        assert!(create_new(&d.join("file"), 0o600).is_err());
        assert!(!outside.join("x").exists());
        // A temporary file is new, private, and renamed into place.
        let (mut f, name) = root.create_temp(OsStr::new("out")).unwrap();
        f.write_all(b"data").unwrap();
        root.rename(&name, OsStr::new("out")).unwrap();
        assert_eq!(std::fs::read(d.join("out")).unwrap(), b"data");
        assert!(root.dir(OsStr::new("..")).is_err());
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn below_is_lexical_and_strict() {
        let root = Path::new("/usr/local/mgr5");
        assert_eq!(
            below(root, Path::new("/usr/local/mgr5/etc/x")),
            Some(Path::new("etc/x"))
        );
        assert_eq!(below(root, Path::new("/usr/local/mgr5/../../etc")), None);
        assert_eq!(below(root, Path::new("/usr/local/mgr50/etc")), None);
        assert_eq!(below(root, Path::new("etc")), None);
    }
}
