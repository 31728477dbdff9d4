//! Storages off this server through Apache OpenDAL: FTP/FTPS and
//! S3-compatible object storage (see docs/architecture.md for why).
//!
//! OpenDAL is asynchronous; the engine is not. A small shared tokio
//! runtime carries OpenDAL's work and [`opendal::blocking::Operator`]
//! gives the engine plain `Read`/`Write`. Every operator carries a timeout
//! for each request and a retry with exponential backoff, so a failed
//! request (an S3 part, a stat) is retried before the job gives up. A copy
//! counts as stored only after the engine has checked what the storage
//! holds (see `check_stored`), and the listing that makes a copy a copy is
//! always written last.
//!
//! Writes are never visible half-done: S3 shows an object only when its
//! multipart upload completes; OpenDAL's FTP writer writes a temporary
//! name and renames it.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{Context, Result};
use opendal::blocking;
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::options::{ReadOptions, ReaderOptions, WriteOptions};
use opendal::services;

use super::params::{Kind, Params};
use super::runtime::{install_tls_provider, REQUEST_TIMEOUT, RETRIES, RUNTIME};
use super::{check_name, ObjectInfo, Storage, StorageError, StorageWriter};

/// Uploads go in parts of this size (S3 multipart; the minimum S3 allows
/// is 5 MiB), two parts in flight.
const PART_SIZE: usize = 16 << 20;
const PARTS_IN_FLIGHT: usize = 2;

pub struct RemoteStorage {
    op: blocking::Operator,
    describe: String,
    /// Upload in parts, several at a time (S3).
    multipart: bool,
    /// FTP: the directory to create (all its parents too) before the
    /// first write, through an operator rooted at `/`.
    make_root: std::sync::Mutex<Option<(blocking::Operator, String)>>,
    /// FTP: how to log in again, and the storage's directory. Each read
    /// gets an operator, and so a pool of connections, of its own.
    /// OpenDAL's FTP reader leaves the connection's data transfer open
    /// when it ends (it never reads the server's closing reply), and its
    /// pool hands such a connection out again, whose next transfer then
    /// fails ("Data connection is already open"); a read's connections
    /// now go with its operator instead.
    ftp: Option<(Ftp, String)>,
}

/// An FTP server's address and login.
struct Ftp {
    endpoint: String,
    user: String,
    password: String,
}

impl Ftp {
    /// An operator on the server rooted at `root`.
    fn operator(&self, root: &str) -> opendal::Result<blocking::Operator> {
        let b = services::Ftp::default()
            .endpoint(&self.endpoint)
            .root(root)
            .user(&self.user)
            .password(&self.password);
        with_layers(opendal::Operator::new(b))
    }
}

/// The timeout and retry layers every operator carries, and the blocking
/// face the engine uses.
fn with_layers(op: opendal::Result<opendal::Operator>) -> opendal::Result<blocking::Operator> {
    let op = op?
        .layer(TimeoutLayer::new().with_io_timeout(REQUEST_TIMEOUT))
        .layer(
            RetryLayer::new()
                .with_jitter()
                .with_min_delay(Duration::from_secs(1))
                .with_max_delay(Duration::from_secs(30))
                .with_max_times(RETRIES),
        );
    let _guard = RUNTIME.enter();
    blocking::Operator::new(op)
}

impl RemoteStorage {
    /// Opens a storage of a remote kind. `secret` is the password (FTP) or
    /// the secret access key (S3), already unsealed.
    pub fn open(params: &Params, secret: Option<&str>) -> Result<RemoteStorage> {
        let describe = params.describe();
        // The HTTP client for S3, and one TLS provider for all (idempotent).
        opendal::install_default();
        install_tls_provider();
        let root = format!("/{}", params.path.trim_matches('/'));
        let secret = secret.unwrap_or("");
        let ftp = (params.kind == Kind::Ftp).then(|| Ftp {
            endpoint: format!(
                "{}://{}:{}",
                if params.tls { "ftps" } else { "ftp" },
                params.host,
                params.port()
            ),
            user: params.user.clone(),
            password: secret.to_string(),
        });
        let op = match &ftp {
            Some(ftp) => ftp.operator(&root),
            None if params.kind == Kind::S3 => {
                let mut b = services::S3::default()
                    .bucket(&params.bucket)
                    .root(&root)
                    .region(if params.region.is_empty() {
                        "us-east-1"
                    } else {
                        &params.region
                    })
                    .access_key_id(&params.access_key)
                    .secret_access_key(secret)
                    .disable_config_load()
                    .disable_ec2_metadata()
                    // The server checks every part against its checksum.
                    .checksum_algorithm("crc32c");
                if !params.endpoint.is_empty() {
                    b = b.endpoint(&params.endpoint);
                }
                with_layers(opendal::Operator::new(b))
            }
            None => anyhow::bail!("{} is not an OpenDAL storage", params.kind),
        }
        .explained(|| format!("failed to configure {describe}"))?;
        let make_root = match &ftp {
            Some(ftp) if root != "/" => {
                let top = ftp
                    .operator("/")
                    .explained(|| format!("failed to configure {describe}"))?;
                Some((top, format!("{}/", root.trim_start_matches('/'))))
            }
            _ => None,
        };
        Ok(RemoteStorage {
            op,
            ftp: ftp.map(|f| (f, root)),
            describe,
            multipart: params.kind == Kind::S3,
            make_root: std::sync::Mutex::new(make_root),
        })
    }

    /// FTP: creates the storage's directory and its parents, once.
    fn ensure_root(&self) -> Result<()> {
        let mut make_root = self.make_root.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((top, dir)) = make_root.as_ref() {
            top.create_dir(dir)
                .explained(|| format!("failed to create the directory of {}", self.describe))?;
            *make_root = None;
        }
        Ok(())
    }

    /// Runs `op` up to three times while it fails other than by a
    /// missing object or a refusal. An FTP server answers a read that
    /// stops early (a ranged read) with "426 transfer aborted", which
    /// OpenDAL may meet as the reply to the next command on that
    /// connection (a read, a delete): such a command is tried again.
    fn again<T>(
        &self,
        doing: &str,
        name: &str,
        mut op: impl FnMut() -> opendal::Result<T>,
    ) -> opendal::Result<T> {
        let mut tries = 0;
        loop {
            tries += 1;
            match op() {
                Err(e)
                    if tries < 3
                        && !matches!(
                            e.kind(),
                            opendal::ErrorKind::NotFound | opendal::ErrorKind::PermissionDenied
                        ) =>
                {
                    log::warn!("{doing} {name} on {} again: {e}", self.describe);
                }
                other => return other,
            }
        }
    }

    /// The operator for one read: the shared one, or for FTP one of the
    /// read's own (see `ftp`).
    fn reading_op(&self) -> opendal::Result<std::borrow::Cow<'_, blocking::Operator>> {
        match &self.ftp {
            Some((ftp, root)) => Ok(std::borrow::Cow::Owned(ftp.operator(root)?)),
            None => Ok(std::borrow::Cow::Borrowed(&self.op)),
        }
    }

    fn fail(&self, what: &str, name: &str) -> String {
        format!("failed to {what} {name} on {}", self.describe)
    }
}

/// OpenDAL's error, said briefly for the administrator (the full context,
/// with request ids and headers, goes to the log at debug level).
fn explain(e: opendal::Error) -> anyhow::Error {
    log::debug!("storage error: {e:?}");
    let what = match e.kind() {
        opendal::ErrorKind::PermissionDenied => {
            "access denied: the credentials or the permissions are wrong"
        }
        opendal::ErrorKind::NotFound => "not found",
        opendal::ErrorKind::ConfigInvalid => "the storage settings are not valid",
        opendal::ErrorKind::RateLimited => "the storage refused: too many requests",
        _ => "",
    };
    let mut cause = e.message().to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    // FTP's "530 Not logged in" reaches us as an unexpected response.
    let what = if what.is_empty() && cause.contains("[530]") {
        "access denied: the credentials or the permissions are wrong"
    } else {
        what
    };
    let message = match (what, cause.is_empty()) {
        ("", _) => cause,
        (what, true) => what.to_string(),
        (what, false) => format!("{what} ({cause})"),
    };
    // By kind: the retry layer has already retried what OpenDAL marks
    // temporary (and marks it persistent when it gives up), so what is
    // left to tell is whether a person must act.
    let permanent = matches!(
        e.kind(),
        opendal::ErrorKind::PermissionDenied
            | opendal::ErrorKind::ConfigInvalid
            | opendal::ErrorKind::NotFound
            | opendal::ErrorKind::Unsupported
            | opendal::ErrorKind::IsADirectory
            | opendal::ErrorKind::NotADirectory
    ) || message.starts_with("access denied");
    if permanent {
        StorageError::permanent(message)
    } else {
        StorageError::temporary(message)
    }
}

/// Adds our context to an OpenDAL result.
pub(super) trait Explain<T> {
    fn explained(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Explain<T> for opendal::Result<T> {
    fn explained(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| explain(e).context(context()))
    }
}

struct RemoteWriter {
    inner: Option<blocking::StdWriter>,
    target: String,
    describe: String,
}

impl Write for RemoteWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.inner {
            Some(w) => w.write(buf),
            None => Err(std::io::Error::other("the writer is closed")),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        // Parts are sent as they fill; a flush would cut short parts.
        Ok(())
    }
}

impl StorageWriter for RemoteWriter {
    fn commit(mut self: Box<Self>) -> Result<()> {
        let mut inner = self.inner.take().context("the writer is closed")?;
        let _guard = RUNTIME.enter();
        inner
            .close()
            .map_err(|e| match e.downcast::<opendal::Error>() {
                Ok(e) => explain(e),
                Err(e) => anyhow::Error::from(e),
            })
            .with_context(|| format!("failed to store {} on {}", self.target, self.describe))?;
        Ok(())
    }
}

impl Drop for RemoteWriter {
    fn drop(&mut self) {
        // Not committed: nothing under the final name (a multipart upload
        // that never completes is invisible; OpenDAL's FTP writer writes a
        // temporary name).
        self.inner.take();
    }
}

impl Storage for RemoteStorage {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn list(&self) -> Result<Vec<ObjectInfo>> {
        let _guard = RUNTIME.enter();
        self.ensure_root()?;
        let entries = match self.op.list("/") {
            Ok(entries) => entries,
            // A directory or prefix nothing was written to yet.
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(explain(e).context(format!("failed to list {}", self.describe))),
        };
        let mut out = Vec::new();
        for entry in entries {
            let name = entry.name().to_string();
            if !entry.metadata().is_file() || check_name(&name).is_err() || name.ends_with(".part")
            {
                continue;
            }
            let size = match entry.metadata().content_length() {
                0 => self.size(&name)?,
                n => n,
            };
            out.push(ObjectInfo { name, size });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn create(&self, name: &str) -> Result<Box<dyn StorageWriter>> {
        check_name(name)?;
        let _guard = RUNTIME.enter();
        self.ensure_root()?;
        let path = name.to_string();
        let writer = self
            .op
            .writer_options(
                &path,
                WriteOptions {
                    chunk: self.multipart.then_some(PART_SIZE),
                    concurrent: if self.multipart { PARTS_IN_FLIGHT } else { 1 },
                    ..WriteOptions::default()
                },
            )
            .explained(|| self.fail("start writing", name))?;
        Ok(Box::new(RemoteWriter {
            inner: Some(writer.into_std_write()),
            target: name.to_string(),
            describe: self.describe.clone(),
        }))
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        check_name(name)?;
        let _guard = RUNTIME.enter();
        let reader = self
            .reading_op()
            .explained(|| self.fail("open", name))?
            .reader_options(
                name,
                ReaderOptions {
                    chunk: Some(PART_SIZE),
                    concurrent: PARTS_IN_FLIGHT,
                    ..ReaderOptions::default()
                },
            )
            .and_then(|r| r.into_std_read(..))
            .explained(|| self.fail("open", name))?;
        Ok(Box::new(reader))
    }

    fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        check_name(name)?;
        if len == 0 {
            return Ok(Vec::new());
        }
        let _guard = RUNTIME.enter();
        let read = || {
            self.reading_op()?.read_options(
                name,
                ReadOptions {
                    range: (offset..offset + len).into(),
                    ..ReadOptions::default()
                },
            )
        };
        let buf = self
            .again("reading", name, read)
            .map_err(|e| explain(e).context(self.fail("read", name)))?
            .to_vec();
        anyhow::ensure!(
            buf.len() as u64 == len,
            "{name} on {} is shorter than expected",
            self.describe
        );
        Ok(buf)
    }

    fn size(&self, name: &str) -> Result<u64> {
        check_name(name)?;
        let _guard = RUNTIME.enter();
        match self.op.stat(name) {
            Ok(meta) => Ok(meta.content_length()),
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => {
                Err(super::NotFound(name.to_string()).into())
            }
            Err(e) => Err(explain(e).context(self.fail("find", name))),
        }
    }

    fn remove(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let _guard = RUNTIME.enter();
        // A delete that failed on a stale reply may have been done: gone
        // on the next try is what a delete wants.
        let mut first = true;
        self.again("deleting", name, || {
            let result = match self.op.delete(name) {
                Err(e) if !first && e.kind() == opendal::ErrorKind::NotFound => Ok(()),
                other => other,
            };
            first = false;
            result
        })
        .explained(|| self.fail("delete", name))
    }

    fn free_space(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    fn vouches_for_content(&self) -> bool {
        // S3 checks the CRC32C sent with every part (see `open`).
        self.multipart
    }
}
