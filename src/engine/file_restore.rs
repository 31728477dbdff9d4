//! Restoring saved files (`backupdata.files.restore`): only files the copy
//! lists, only inside the directories that were saved, never through a
//! symbolic link or `..`; each file written to a temporary name beside it
//! with its saved owner, mode and times, then renamed over (so a reader
//! never sees half a file). `skip` leaves an existing file alone.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::archive::listing::FileEntry;
use super::archive::{sha256_hex, Copy, Listing};
use super::restore::Behavior;

/// What a files restore did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FilesReport {
    pub written: Vec<String>,
    pub kept: Vec<String>,
}

/// The saved directories: those the listing has whose parent it has not.
fn roots(listing: &Listing) -> Vec<&str> {
    let dirs: Vec<&str> = listing
        .files
        .iter()
        .filter(|f| f.kind == "dir")
        .map(|f| f.path.as_str())
        .collect();
    dirs.iter()
        .copied()
        .filter(|d| {
            let parent = Path::new(d).parent().and_then(Path::to_str).unwrap_or("");
            !dirs.contains(&parent)
        })
        .collect()
}

/// Checks that `path` may be written: a file the copy lists, absolute,
/// without `..`, inside a saved directory, with no symbolic link between
/// the saved directory and the file.
fn check_path<'l>(listing: &'l Listing, path: &str) -> Result<&'l FileEntry> {
    let p = Path::new(path);
    if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        bail!("`{path}` is not a plain absolute path");
    }
    let entry = listing
        .files
        .iter()
        .find(|f| f.path == path && f.kind == "file")
        .ok_or_else(|| anyhow!("the copy has no file `{path}`"))?;
    let root = roots(listing)
        .into_iter()
        .find(|r| p.starts_with(r))
        .ok_or_else(|| anyhow!("`{path}` is outside the saved directories"))?;
    // Every existing directory from the root down must be a real one.
    let mut dir = PathBuf::from(root);
    let rest = p
        .parent()
        .and_then(|parent| parent.strip_prefix(root).ok())
        .context("a file outside its root")?
        .to_path_buf();
    for part in std::iter::once(None).chain(rest.components().map(Some)) {
        if let Some(part) = part {
            dir.push(part);
        }
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_symlink() => {
                bail!(
                    "`{}` is a symbolic link: refusing to write through it",
                    dir.display()
                )
            }
            Ok(m) if !m.is_dir() => bail!("`{}` is not a directory", dir.display()),
            Ok(_) | Err(_) => {}
        }
    }
    if std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
        bail!("`{path}` is a symbolic link now: refusing to write through it");
    }
    Ok(entry)
}

/// Restores `paths` from the copy. All are checked before any is written.
pub fn restore_files(
    copy: &Copy<'_>,
    listing: &Listing,
    paths: &[String],
    behavior: Behavior,
) -> Result<FilesReport> {
    let entries: Vec<&FileEntry> = paths
        .iter()
        .map(|p| check_path(listing, p))
        .collect::<Result<_>>()?;
    let mut report = FilesReport::default();
    for f in entries {
        let target = Path::new(&f.path);
        if behavior == Behavior::Skip && target.exists() {
            report.kept.push(f.path.clone());
            continue;
        }
        let data = copy.read_range(f.entry.offset, f.entry.size)?;
        anyhow::ensure!(
            sha256_hex(&data) == f.entry.sha256,
            "the copy's `{}` is corrupt",
            f.path
        );
        let dir = target.parent().context("a file without a directory")?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let temp = dir.join(format!(
            ".{}.bmo-restore",
            target
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("file")
        ));
        let written = (|| -> Result<()> {
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)?;
            out.write_all(&data)?;
            out.sync_all()?;
            std::os::unix::fs::chown(&temp, Some(f.uid as u32), Some(f.gid as u32))?;
            std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(f.mode & 0o7777))?;
            let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(f.mtime);
            out.set_modified(mtime)?;
            std::fs::rename(&temp, target)?;
            Ok(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(e.context(format!("cannot restore `{}`", f.path)));
        }
        report.written.push(f.path.clone());
    }
    Ok(report)
}
