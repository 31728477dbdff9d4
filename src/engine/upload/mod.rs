//! Bringing a copy in (`backups.upload`, `backup upload`): from a file or
//! streamed from an http(s) URL, into a storage, and listed only after it
//! is verified.
//!
//! What is accepted, told by its first bytes:
//! - a copy made by billmgr-ops (a tar with `FORMAT` and `listing.json`):
//!   stored as it comes, then read back and verified entry by entry
//!   against its own listing; only then is the listing written beside it
//!   and the copy added to the catalog;
//! - a SQL dump made by mysqldump or mariadb-dump, plain, gzip or zstd:
//!   loaded into a scratch database on the same server by the `mariadb`
//!   (or `mysql`) client logged in as a temporary account whose grants
//!   cover that database alone (`sql`), so nothing in the dump can reach
//!   another; a copy is taken of it like any other, and the scratch
//!   database and the account are dropped.
//!
//! Where it comes from is bounded too: a panel upload reads only below
//! `UploadDir`, never through a symbolic link; a URL reaches only public
//! addresses unless `UploadPrivateUrls` is on ([`crate::storage::fetch`]).
//!
//! Anything else, or a copy that fails verification, is refused with
//! [`NotACopy`] and leaves nothing behind.

mod sql;

use super::format::names;
use std::io::{BufReader, Read, Write};

use anyhow::{Context, Result};

use super::archive::{self, Copy};
use super::crypt::{self, CopyKey, Sink};
use super::format::{ArchiveSummary, Encryption, Listing};
use super::jobs;
use super::settings::Settings;
use super::verify;
use crate::config::{Config, DbSource};
use crate::db::backups::{self, CopyRow};
use crate::db::Db;
use crate::storage::{check_name, check_stored, Counted, Pending, StorageWriter};

/// The file is not a valid copy nor a SQL dump. Callers branch on it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotACopy(pub String);

/// A SQL dump cannot be staged: the plugin's database account may not
/// create the scratch database or the temporary account that confines the
/// dump. Callers branch on it.
#[derive(Debug, thiserror::Error)]
#[error("uploading a SQL dump of another tool needs more privileges than the plugin's database account has: {0}")]
pub struct DumpNeedsGrants(pub String);

/// A copy of that name is in the catalog already. Callers branch on it.
#[derive(Debug, thiserror::Error)]
#[error("a copy named `{0}` exists already")]
pub struct NameTaken(pub String);

fn refuse(why: impl Into<String>) -> anyhow::Error {
    NotACopy(why.into()).into()
}

/// A failed read of the source: a URL that led to an address the panel
/// may not reach says so; anything else refuses the file.
fn read_failure(what: &str, e: std::io::Error) -> anyhow::Error {
    match crate::storage::fetch::private_in(&e) {
        Some(private) => private.into(),
        None => refuse(format!("{what}: {e}")),
    }
}

/// Where an upload comes from.
pub enum Source {
    /// A file named at the command line (root at a shell).
    File(std::path::PathBuf),
    /// A file opened already (a panel upload, opened below `UploadDir`).
    Opened(std::fs::File, std::path::PathBuf),
    /// An http(s) URL; `allow_private` is `UploadPrivateUrls`.
    Url { url: String, allow_private: bool },
}

impl Source {
    /// The name a copy takes when none is given: the file name without
    /// its extensions, made a valid object name.
    pub fn default_name(&self) -> String {
        let raw = match self {
            Source::File(p) | Source::Opened(_, p) => p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Source::Url { url: u, .. } => u
                .split(['?', '#'])
                .next()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string(),
        };
        let mut name = raw.as_str();
        for ext in [".gz", ".zst", ".sql", ".age", ".tar"] {
            name = name.strip_suffix(ext).unwrap_or(name);
        }
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let name = name.trim_matches('-');
        if name.is_empty() {
            "upload".into()
        } else {
            name.chars().take(100).collect()
        }
    }

    /// The source, and its size when known (a file's; not a URL's).
    fn open(&self) -> Result<(Box<dyn Read + Send>, Option<u64>)> {
        match self {
            Source::File(p) => {
                let file = std::fs::File::open(p)
                    .with_context(|| format!("cannot open `{}`", p.display()))?;
                let size = file.metadata().ok().map(|m| m.len());
                Ok((Box::new(file), size))
            }
            Source::Opened(file, p) => {
                let file = file
                    .try_clone()
                    .with_context(|| format!("cannot read `{}`", p.display()))?;
                let size = file.metadata().ok().map(|m| m.len());
                Ok((Box::new(file), size))
            }
            Source::Url { url, allow_private } => {
                Ok((crate::storage::fetch::open_url(url, *allow_private)?, None))
            }
        }
    }
}

/// Told the bytes read from the source so far and its size when known.
pub type ReadProgress = Box<dyn FnMut(u64, Option<u64>) + Send>;

/// The source, reporting how far it has been read.
struct Observed {
    inner: Box<dyn Read + Send>,
    read: u64,
    size: Option<u64>,
    report: ReadProgress,
}

impl Read for Observed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        (self.report)(self.read, self.size);
        Ok(n)
    }
}

/// What the first bytes say.
#[derive(Debug, PartialEq)]
enum Shape {
    Tar,
    Age,
    Gzip,
    Zstd,
    Sql,
}

fn shape(head: &[u8]) -> Option<Shape> {
    if head.len() > 262 && &head[257..262] == b"ustar" {
        return Some(Shape::Tar);
    }
    if head.starts_with(b"age-encryption.org/") {
        return Some(Shape::Age);
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Some(Shape::Gzip);
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Some(Shape::Zstd);
    }
    looks_like_sql(head).then_some(Shape::Sql)
}

/// A dump by mysqldump or mariadb-dump starts with a comment, a
/// conditional comment or a statement, in text (UTF-8; a character cut by
/// the end of the head is fine).
fn looks_like_sql(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let start = text.trim_start().to_ascii_uppercase();
    let utf8 = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    utf8 && ["--", "/*", "CREATE ", "DROP ", "SET ", "INSERT ", "LOCK "]
        .iter()
        .any(|p| start.starts_with(p))
}

/// Brings a copy in, telling `progress` how much of the source has been
/// read. The job lock is taken here (an upload is a job like a backup).
pub fn upload(
    config: &Config,
    source_db: &DbSource,
    settings: &Settings,
    from: &Source,
    name: Option<&str>,
    progress: ReadProgress,
) -> Result<CopyRow> {
    let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => from.default_name(),
    };
    check_name(&name).map_err(|_| refuse(format!("`{name}` is not a valid copy name")))?;
    let mut db = Db::open(source_db, config.db_connect_timeout)?;
    anyhow::ensure!(
        backups::by_name(&mut db, &name)?.is_none(),
        NameTaken(name.clone())
    );
    let (inner, size) = from.open()?;
    let mut observed: Box<dyn Read + Send> = Box::new(Observed {
        inner,
        read: 0,
        size,
        report: progress,
    });
    // The first 512 bytes tell the shape: read until there are that many
    // or the source ends (a slow URL gives them in pieces), then put them
    // back in front of the rest, once.
    let mut head = Vec::with_capacity(512);
    (&mut observed)
        .take(512)
        .read_to_end(&mut head)
        .map_err(|e| read_failure("the upload cannot be read", e))?;
    let joined: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(head.clone()).chain(observed));
    let mut input: Box<dyn Read + Send> = Box::new(BufReader::with_capacity(1 << 20, joined));
    match shape(&head) {
        Some(Shape::Tar) => {
            jobs::with_job_lock(&mut db, |db| store_archive(db, settings, &name, &mut input))
        }
        Some(Shape::Age) => {
            let passphrase = settings.passphrase.as_ref().ok_or_else(|| {
                refuse("an encrypted copy, and no backup passphrase is set to open it")
            })?;
            let mut plain = crypt::decrypt_with_passphrase(input, passphrase).map_err(|e| {
                if e.downcast_ref::<crypt::WrongPassphrase>().is_some() {
                    refuse("an encrypted copy that the backup passphrase does not open")
                } else {
                    refuse(format!("{e:#}"))
                }
            })?;
            jobs::with_job_lock(&mut db, |db| store_archive(db, settings, &name, &mut plain))
        }
        Some(Shape::Gzip) => {
            let sql = flate2::read::MultiGzDecoder::new(input);
            sql::import(config, &mut db, source_db, settings, &name, Box::new(sql))
        }
        Some(Shape::Zstd) => {
            let sql = zstd::stream::read::Decoder::new(input)?;
            sql::import(config, &mut db, source_db, settings, &name, Box::new(sql))
        }
        Some(Shape::Sql) => sql::import(config, &mut db, source_db, settings, &name, input),
        None => Err(refuse("neither a copy made by billmgr-ops nor a SQL dump")),
    }
}

/// Stores a billmgr-ops archive, verifies it where it is stored, then
/// writes its listing beside it and adds it to the catalog.
fn store_archive(
    db: &mut Db,
    settings: &Settings,
    name: &str,
    input: &mut dyn Read,
) -> Result<CopyRow> {
    let storage = settings.storage.as_ref();
    // With a backup passphrase set, an uploaded copy is stored encrypted
    // like every copy taken here: its own key, sealed beside it.
    let key = settings.passphrase.as_ref().map(|_| CopyKey::generate());
    let encrypted = key.is_some();
    let object = names::archive_object(name, encrypted);
    let key_object = names::key_object(name);
    // Until the listing is beside the archive, a failure removes both.
    let pending = Pending::new(storage, vec![object.clone(), key_object.clone()]);
    if let (Some(key), Some(passphrase)) = (&key, &settings.passphrase) {
        let mut w = storage.create(&key_object)?;
        w.write_all(&key.seal(passphrase)?)?;
        w.commit()?;
    }
    let (out, tally) = Counted::new(storage.create(&object)?);
    let out: Box<dyn StorageWriter> = Box::new(out);
    let mut sink = Sink::new(out, key.as_ref())?;
    // The plaintext's size and hash, for the listing.
    let mut plain = archive::HashingWriter::new(&mut sink);
    std::io::copy(input, &mut plain)
        .map_err(|e| read_failure("the upload cannot be read to its end", e))?;
    plain.flush()?;
    let (_, size, sha256) = plain.finish();
    sink.commit()?;
    check_stored(storage, &object, &tally)?;
    let copy = Copy {
        storage,
        name: name.to_string(),
        key: key.clone(),
    };
    // The listing the archive carries, then every entry against it.
    let mut inner = None;
    archive::read_entries(&mut copy.open()?, |entry| {
        if entry.path == names::LISTING_ENTRY {
            inner = Some(entry.data);
        }
        Ok(())
    })
    .map_err(|e| refuse(format!("{e:#}")))?;
    let inner = inner.ok_or_else(|| refuse("the archive has no listing"))?;
    let mut listing = Listing::from_json(&inner)
        .map_err(|e| refuse(format!("the archive's listing is unreadable: {e:#}")))?;
    listing.encryption = if encrypted {
        Encryption::Age
    } else {
        Encryption::None
    };
    listing.archive = Some(ArchiveSummary {
        object: object.clone(),
        size,
        sha256,
    });
    verify::verify(&copy, &listing)
        .map_err(|e| refuse(format!("the archive does not match its listing: {e:#}")))?;
    // What a restore of it would run is checked now, not at 3 a.m.
    let live = db.name()?;
    super::restore::check_statements(db.conn(), &live, &listing)
        .map_err(|e| refuse(format!("{e:#}")))?;
    let saved = super::saved::objects::of_copy(&copy, &listing)?;
    let beside = storage.create(&names::listing_object(name, encrypted))?;
    let mut beside = Sink::new(beside, key.as_ref())?;
    beside.write_all(&listing.to_json())?;
    beside.commit()?;
    pending.keep();
    backups::register(
        db,
        &super::jobs::catalog::found_copy(name, settings, &listing, encrypted),
    )?;
    log::info!("copy {name} uploaded to {}", storage.describe());
    let row = backups::by_name(db, name)?.context("the uploaded copy is not in the catalog")?;
    super::saved::index::index_objects(
        db,
        row.id,
        &listing,
        super::saved::index::SealedBlocks::of(&saved),
    );
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_told_by_their_first_bytes() {
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(shape(&tar), Some(Shape::Tar));
        assert_eq!(shape(b"age-encryption.org/v1\n"), Some(Shape::Age));
        assert_eq!(shape(&[0x1f, 0x8b, 8, 0]), Some(Shape::Gzip));
        assert_eq!(shape(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Some(Shape::Zstd));
        assert_eq!(shape(b"-- MariaDB dump 10.19\n"), Some(Shape::Sql));
        // mariadb-dump since 10.5.25 / 10.6.18 / 10.11.8 / 11.4.2.
        assert_eq!(
            shape(b"/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump 10.19\n"),
            Some(Shape::Sql)
        );
        assert_eq!(shape(b"\x89PNG\r\n"), None);
        assert_eq!(shape(b"hello world"), None);
    }

    #[test]
    fn names_come_from_the_file() {
        let url = Source::Url {
            url: "https://x.example/a/billing-2026.sql.gz?sig=1".into(),
            allow_private: false,
        };
        assert_eq!(url.default_name(), "billing-2026");
        let file = Source::File("/tmp/My Copy.tar".into());
        assert_eq!(file.default_name(), "My-Copy");
        let bare = Source::Url {
            url: "https://x/".into(),
            allow_private: false,
        };
        assert_eq!(bare.default_name(), "upload");
    }
}
