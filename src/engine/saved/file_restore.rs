//! Restoring saved files (`backupdata.files.restore`): only files the copy
//! lists, and only below the directories this installation allows (the
//! panel directory and `BackupFilesAllowed`, from the config: never a
//! directory a copy names). The path is walked from the allowed directory
//! one component at a time without following a symbolic link
//! ([`crate::fsutil::Dir`]); each file is written to a new temporary file
//! created exclusively beside it (so a link planted at that name is never
//! written through), given its saved owner, mode and times, checked
//! against the copy's SHA-256, and renamed over the target (so a reader
//! never sees half a file). A restored file never keeps a set-user-ID or
//! set-group-ID bit. `skip` leaves an existing file alone.

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use super::super::archive::Copy;
use super::super::format::{FileEntry, FileKind, Listing};
use super::super::restore::Behavior;
use crate::fsutil::{Dir, Found};

/// What a files restore did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FilesReport {
    pub written: Vec<String>,
    pub kept: Vec<String>,
}

/// A file to restore: its listing entry, the allowed directory it lies in
/// and its directory and name below that.
struct Target<'l> {
    entry: &'l FileEntry,
    root: &'l Path,
    dir: &'l Path,
    name: &'l OsStr,
}

/// Checks that `path` may be written: a file the copy lists, below one of
/// `roots`.
fn target<'l>(
    listing: &'l Listing,
    roots: &'l [std::path::PathBuf],
    path: &str,
) -> Result<Target<'l>> {
    let entry = listing
        .files
        .iter()
        .find(|f| f.path == path && f.kind == FileKind::File)
        .ok_or_else(|| anyhow!("the copy has no file `{path}`"))?;
    let full = Path::new(&entry.path);
    let (root, rel) = roots
        .iter()
        .find_map(|r| crate::fsutil::below(r, full).map(|rel| (r.as_path(), rel)))
        .ok_or_else(|| {
            anyhow!(
                "`{path}` is outside the directories files may be restored into (the panel directory and BackupFilesAllowed)"
            )
        })?;
    let name = rel.file_name().context("a file without a name")?;
    let dir = rel.parent().unwrap_or(Path::new(""));
    Ok(Target {
        entry,
        root,
        dir,
        name,
    })
}

/// The saved directory `path`'s owner and mode, if the copy has it.
fn saved_dir<'l>(listing: &'l Listing, path: &Path) -> Option<&'l FileEntry> {
    listing
        .files
        .iter()
        .find(|f| f.kind == FileKind::Dir && Path::new(&f.path) == path)
}

/// Opens (creating what is missing, with the saved owner and mode) the
/// directory of `t`, never through a link.
fn open_dir(listing: &Listing, t: &Target<'_>) -> Result<Dir> {
    let mut dir =
        Dir::open(t.root).with_context(|| format!("cannot open `{}`", t.root.display()))?;
    let mut path = t.root.to_path_buf();
    for part in t.dir.iter() {
        path.push(part);
        let found = dir.find(part)?;
        match found {
            Found::Dir => {}
            Found::Missing => {
                let created = dir.walk(Path::new(part), Some(0o700))?;
                match saved_dir(listing, &path) {
                    Some(saved) => created.set_meta(
                        Some((saved.uid as u32, saved.gid as u32)),
                        saved.mode & 0o7777,
                    )?,
                    None => created.set_meta(None, 0o755)?,
                }
            }
            Found::Symlink => bail!(
                "`{}` is a symbolic link: refusing to write through it",
                path.display()
            ),
            _ => bail!("`{}` is not a directory", path.display()),
        }
        dir = dir
            .dir(part)
            .with_context(|| format!("refusing to write through `{}`", path.display()))?;
    }
    Ok(dir)
}

/// Restores `paths` from the copy into the allowed `roots`. All are
/// checked before any is written.
pub fn restore_files(
    copy: &Copy<'_>,
    listing: &Listing,
    roots: &[std::path::PathBuf],
    paths: &[String],
    behavior: Behavior,
) -> Result<FilesReport> {
    let targets: Vec<Target<'_>> = paths
        .iter()
        .map(|p| target(listing, roots, p))
        .collect::<Result<_>>()?;
    let mut report = FilesReport::default();
    for t in targets {
        let f = t.entry;
        let dir = open_dir(listing, &t)?;
        match dir.find(t.name)? {
            Found::Symlink => bail!(
                "`{}` is a symbolic link now: refusing to write through it",
                f.path
            ),
            Found::Dir | Found::Other => bail!("`{}` is not a regular file", f.path),
            Found::File if behavior == Behavior::Skip => {
                report.kept.push(f.path.clone());
                continue;
            }
            Found::File | Found::Missing => {}
        }
        let (mut out, temp) = dir
            .create_temp(t.name)
            .with_context(|| format!("cannot write beside `{}`", f.path))?;
        let written = (|| -> Result<()> {
            // Read in pieces, hashing as it goes: a large file is never
            // held whole, and a copy that does not match is never renamed in.
            let mut hasher = Sha256::new();
            let mut at = 0u64;
            while at < f.entry.size {
                let n = (f.entry.size - at).min(8 << 20);
                let piece = copy.read_range(f.entry.offset + at, n)?;
                anyhow::ensure!(piece.len() as u64 == n, "the copy's `{}` is short", f.path);
                hasher.update(&piece);
                out.write_all(&piece)?;
                at += n;
            }
            anyhow::ensure!(
                hex::encode(hasher.finalize()) == f.entry.sha256,
                "the copy's `{}` is corrupt",
                f.path
            );
            out.sync_all()?;
            std::os::unix::fs::fchown(&out, Some(f.uid as u32), Some(f.gid as u32))?;
            // Never set-user-ID or set-group-ID: a copy cannot hand out
            // the rights of the owner it names.
            out.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(
                f.mode & 0o1777,
            ))?;
            let mtime = std::time::UNIX_EPOCH + std::time::Duration::from_secs(f.mtime);
            out.set_modified(mtime)?;
            dir.rename(&temp, t.name)?;
            Ok(())
        })();
        if let Err(e) = written {
            let _ = dir.remove(&temp);
            return Err(e.context(format!("cannot restore `{}`", f.path)));
        }
        report.written.push(f.path.clone());
    }
    Ok(report)
}
