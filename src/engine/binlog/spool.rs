//! The follower's local spool: the segment being written, the sealed
//! segments waiting for the storages, and the durable position.
//!
//! What is durable is what `state.json` says: the open segment's length
//! and the server position the stream continues from are written (to a
//! new name, synced, renamed) only after the segment's bytes up to that
//! length are synced. After a crash the open segment is cut back to that
//! length and the stream asked again from that position: no event is
//! lost and none is stored twice.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::event::MAGIC;
use super::segment::{Position, SegmentInfo};
use crate::fsutil;

const STATE: &str = "state.json";
/// A line per segment the storage took (its description), for `status`
/// to tell the recoverable window without listing the storage.
const STORED: &str = "stored.jsonl";
const OPEN: &str = "open.binlog";
const SEALED: &str = "sealed";

/// What the follower knows for sure, after a crash as before it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// The server's identity the log came from.
    pub server: String,
    /// Where the stream continues; `None` before the first event.
    pub next: Option<Position>,
    pub open: Option<OpenSegment>,
    /// Breaks in the log not yet closed by a full copy taken after them.
    #[serde(default)]
    pub gaps: Vec<Gap>,
    /// The newest event made durable here (its own time, UTC seconds).
    #[serde(default)]
    pub last_event: i64,
}

/// The segment being written.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OpenSegment {
    pub start: Position,
    /// Bytes of the file's head: the magic and the format description.
    #[serde(default)]
    pub head: u64,
    /// Bytes of `open.binlog` that are durable.
    pub size: u64,
    pub first_time: i64,
    pub last_time: i64,
    pub events: u64,
    /// When it was opened (this machine's clock, UTC seconds).
    pub opened: i64,
}

/// A break in the log: events between `after` and `resumed_at` are not
/// held, so no restore can cross it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Gap {
    /// When it was found (UTC seconds).
    pub found: i64,
    pub why: String,
    pub after: Option<Position>,
    pub resumed_at: Position,
}

pub struct Spool {
    dir: PathBuf,
    pub state: State,
    file: Option<File>,
}

impl Spool {
    /// Opens (creating) the spool in `dir` and brings it back to its last
    /// durable state.
    pub fn open(dir: &Path) -> Result<Spool> {
        fs::create_dir_all(dir.join(SEALED))
            .with_context(|| format!("cannot create the spool {}", dir.display()))?;
        let state = match fs::read(dir.join(STATE)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is damaged", dir.join(STATE).display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e).context("cannot read the follower's state"),
        };
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            state,
            file: None,
        };
        spool.recover()?;
        Ok(spool)
    }

    fn recover(&mut self) -> Result<()> {
        let Some(open) = self.state.open.clone() else {
            let _ = fs::remove_file(self.dir.join(OPEN));
            return Ok(());
        };
        let path = self.dir.join(OPEN);
        if !path.exists() {
            // Sealed, but the state was not written after it.
            anyhow::ensure!(
                self.sealed_path(&open).exists(),
                "the open segment {} is missing from the spool",
                path.display()
            );
            self.state.open = None;
            return self.save();
        }
        // A seal cut short before its rename left the description alone.
        let _ = fs::remove_file(self.sealed_path(&open).with_extension("idx"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(fsutil::libc_nofollow())
            .open(&path)?;
        // What was written after the last durable point goes: the stream
        // sends it again.
        file.set_len(open.size)?;
        file.seek(SeekFrom::End(0))?;
        self.file = Some(file);
        Ok(())
    }

    /// Drops what was appended after the last [`Spool::sync`] (a stream
    /// that failed mid-way): the next stream sends it again.
    pub fn discard_unsynced(&mut self) -> Result<()> {
        if let (Some(file), Some(open)) = (self.file.as_mut(), self.state.open.as_ref()) {
            file.set_len(open.size)?;
            file.seek(SeekFrom::End(0))?;
        }
        Ok(())
    }

    /// Writes the state durably (new name, synced, renamed).
    pub fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(&self.state)?;
        write_durably(&self.dir, STATE, &bytes)
    }

    /// Opens a segment at `start` (after a [`Spool::sync`] and a seal),
    /// its head the format description `fde`.
    pub fn open_at(&mut self, start: &Position, fde: &[u8]) -> Result<()> {
        anyhow::ensure!(self.state.open.is_none(), "a segment is open already");
        anyhow::ensure!(
            !fde.is_empty(),
            "no format description before the first event"
        );
        let path = self.dir.join(OPEN);
        let _ = fs::remove_file(&path);
        let mut file = fsutil::create_new(&path, 0o600)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(&MAGIC)?;
        file.write_all(fde)?;
        file.sync_data()?;
        self.state.open = Some(OpenSegment {
            start: start.clone(),
            head: (MAGIC.len() + fde.len()) as u64,
            size: (MAGIC.len() + fde.len()) as u64,
            first_time: 0,
            last_time: 0,
            events: 0,
            opened: crate::clock::now_unix(),
        });
        self.file = Some(file);
        self.save()
    }

    /// Appends events to the open segment, opening one at `start` with
    /// the format description `fde` first when there is none.
    pub fn append(&mut self, start: &Position, fde: &[u8], bytes: &[u8], time: i64) -> Result<()> {
        if self.state.open.is_none() {
            self.open_at(start, fde)?;
        }
        if let Some(open) = self.state.open.as_mut().filter(|o| o.first_time == 0) {
            open.first_time = time;
            open.last_time = time;
        }
        let file = self.file.as_mut().context("no open segment")?;
        file.write_all(bytes).context("cannot write to the spool")?;
        Ok(())
    }

    /// Makes everything appended durable, with the position the stream
    /// continues from and how many events and bytes it was.
    pub fn sync(&mut self, next: &Position, events: u64, bytes: u64, last_time: i64) -> Result<()> {
        if let (Some(file), Some(open)) = (self.file.as_mut(), self.state.open.as_mut()) {
            file.sync_data().context("cannot sync the spool")?;
            open.size += bytes;
            open.events += events;
            open.last_time = open.last_time.max(last_time);
        }
        self.state.next = Some(next.clone());
        self.state.last_event = self.state.last_event.max(last_time);
        self.save()
    }

    /// Whether the open segment is `age` old or `bytes` large.
    pub fn due(&self, age: std::time::Duration, bytes: u64) -> bool {
        self.state.open.as_ref().is_some_and(|o| {
            let old = crate::clock::now_unix() - o.opened >= age.as_secs() as i64;
            old || o.size >= bytes
        })
    }

    /// Seals the open segment when it is [`Spool::due`].
    pub fn seal_if_due(&mut self, age: std::time::Duration, bytes: u64) -> Result<bool> {
        Ok(self.due(age, bytes) && self.seal()?.is_some())
    }

    /// Seals the open segment (after a [`Spool::sync`]): it moves to the
    /// sealed segments, with its description, for the storages.
    pub fn seal(&mut self) -> Result<Option<SegmentInfo>> {
        let Some(open) = self.state.open.clone() else {
            return Ok(None);
        };
        if open.events == 0 {
            self.file = None;
            self.state.open = None;
            let _ = fs::remove_file(self.dir.join(OPEN));
            self.save()?;
            return Ok(None);
        }
        let next = self
            .state
            .next
            .clone()
            .context("a segment without a position")?;
        let path = self.dir.join(OPEN);
        let (size, sha256) = hash_file(&path)?;
        anyhow::ensure!(
            size == open.size,
            "the open segment is not what the state says"
        );
        let info = SegmentInfo {
            format: 1,
            server: self.state.server.clone(),
            start: open.start.clone(),
            head: open.head,
            next,
            first_time: open.first_time,
            last_time: open.last_time,
            events: open.events,
            size,
            sha256,
            stored_size: size,
            key: None,
        };
        let name = info.name();
        let sealed = self.dir.join(SEALED);
        write_durably(
            &sealed,
            &format!("{name}.idx"),
            &serde_json::to_vec_pretty(&info)?,
        )?;
        fs::rename(&path, sealed.join(format!("{name}.seg")))?;
        File::open(&sealed)?.sync_all()?;
        self.file = None;
        self.state.open = None;
        self.save()?;
        Ok(Some(info))
    }

    fn sealed_path(&self, open: &OpenSegment) -> PathBuf {
        let name = super::segment::name(&self.state.server, &open.start, open.first_time);
        self.dir.join(SEALED).join(format!("{name}.seg"))
    }

    /// Bytes waiting in the spool (sealed and open).
    pub fn waiting_bytes(&self) -> Result<u64> {
        let sealed: u64 = sealed(&self.dir)?.iter().map(|(i, _)| i.size).sum();
        Ok(sealed + self.state.open.as_ref().map_or(0, |o| o.size))
    }
}

/// The sealed segments of the spool in `dir` waiting for the storages,
/// oldest first.
pub fn sealed(dir: &Path) -> Result<Vec<(SegmentInfo, PathBuf)>> {
    let dir = dir.join(SEALED);
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("idx") {
            continue;
        }
        let info: SegmentInfo = serde_json::from_slice(&fs::read(&path)?)
            .with_context(|| format!("{} is damaged", path.display()))?;
        found.push((info, path.with_extension("seg")));
    }
    found.sort_by(|a, b| (a.0.first_time, &a.0.start).cmp(&(b.0.first_time, &b.0.start)));
    Ok(found)
}

/// The follower's state as it was last made durable, read only; `None`
/// where no follower has run.
pub fn read_state(dir: &Path) -> Result<Option<State>> {
    match fs::read(dir.join(STATE)) {
        Ok(bytes) => {
            Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is damaged", dir.join(STATE).display())
            })?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context("cannot read the follower's state"),
    }
}

/// The segments the storage took, as the follower noted them.
pub fn stored(dir: &Path) -> Result<Vec<SegmentInfo>> {
    match fs::read_to_string(dir.join(STORED)) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).context("cannot read the follower's notes"),
    }
}

/// Forgets a sealed segment the storages hold, noting it as stored.
pub fn forget(dir: &Path, info: &SegmentInfo) -> Result<()> {
    let mut line = serde_json::to_vec(info)?;
    line.push(b'\n');
    let mut notes = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(fsutil::libc_nofollow())
        .open(dir.join(STORED))?;
    notes.write_all(&line)?;
    let sealed = dir.join(SEALED);
    let name = info.name();
    fs::remove_file(sealed.join(format!("{name}.seg")))?;
    fs::remove_file(sealed.join(format!("{name}.idx")))?;
    Ok(())
}

/// Size and SHA-256 (hex) of a file.
pub fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let size = std::io::copy(&mut file, &mut hasher)?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// `bytes` to `dir/name`: a new file, synced, renamed over the old one,
/// the directory synced.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let temp = dir.join(format!(".{name}.{}", fsutil::random_hex(6)?));
    let mut file = fsutil::create_new(&temp, 0o600)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temp, dir.join(name))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}
