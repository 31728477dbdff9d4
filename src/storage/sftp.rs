//! A directory on an SSH server, over SFTP, with password or key
//! authentication, through russh and russh-sftp (pure Rust: no `ssh`
//! binary, no lingering master connections).
//!
//! The connection is made on first use and kept for the storage's life.
//! The server's host key is checked against `~/.ssh/known_hosts` by the
//! storage's policy: `accept-new` (remember a new server, refuse a changed
//! key), `strict` (must be known already) or `off`. A new object is written
//! as `<name>.part` and renamed on commit; leftovers are removed by
//! [`Storage::clean_partials`]. SFTP does not vouch for what it stored, so
//! the engine reads every upload back (see `check_stored`).

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::fs::File;
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::OpenFlags;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::params::Params;
use super::runtime::{REQUEST_TIMEOUT, RUNTIME};
use super::{check_name, ObjectInfo, Storage, StorageError, StorageWriter};

/// How long connecting and logging in may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct SftpStorage {
    params: Params,
    password: Option<String>,
    describe: String,
    root: String,
    session: Mutex<Option<Connected>>,
}

/// A live connection: the SSH handle (kept so the session stays open) and
/// the SFTP session on it.
struct Connected {
    _ssh: russh::client::Handle<HostKeyCheck>,
    sftp: Arc<SftpSession>,
    root_made: bool,
}

/// Checks the server's host key by the storage's policy.
struct HostKeyCheck {
    host: String,
    port: u16,
    policy: String,
    /// Why the key was refused, for the error message.
    refused: Arc<Mutex<Option<String>>>,
}

impl russh::client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        if self.policy == "off" {
            return Ok(true);
        }
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            *self.refused.lock().unwrap_or_else(|e| e.into_inner()) =
                Some("the server offers a certificate, which is not supported".into());
            return Ok(false);
        };
        let verdict = match russh::keys::check_known_hosts(&self.host, self.port, key) {
            Ok(true) => Ok(()),
            Ok(false) if self.policy == "strict" => {
                Err("the server's key is not in known_hosts (policy: strict)".to_string())
            }
            Ok(false) => russh::keys::known_hosts::learn_known_hosts(&self.host, self.port, key)
                .map_err(|e| format!("cannot remember the server's key: {e}")),
            Err(russh::keys::Error::KeyChanged { line }) => Err(format!(
                "the server's key differs from the one in known_hosts (line {line}): refused"
            )),
            Err(e) => Err(format!("cannot read known_hosts: {e}")),
        };
        match verdict {
            Ok(()) => Ok(true),
            Err(why) => {
                *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                Ok(false)
            }
        }
    }
}

fn within<T, E: std::fmt::Display>(
    timeout: Duration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T> {
    RUNTIME.block_on(async {
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            // A refused session or a dropped connection may pass.
            Ok(Err(e)) => Err(StorageError::temporary(format!("{what}: {e}"))),
            Err(_) => Err(StorageError::temporary(format!(
                "{what}: no answer within {}s",
                timeout.as_secs()
            ))),
        }
    })
}

impl SftpStorage {
    pub fn new(params: &Params, password: Option<&str>) -> SftpStorage {
        let path = params.path.trim_end_matches('/');
        SftpStorage {
            params: params.clone(),
            password: password.filter(|p| !p.is_empty()).map(str::to_string),
            describe: params.describe(),
            root: if path.is_empty() {
                ".".into()
            } else {
                path.into()
            },
            session: Mutex::new(None),
        }
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.root)
    }

    fn connect(&self) -> Result<Connected> {
        let p = &self.params;
        let refused = Arc::new(Mutex::new(None));
        let check = HostKeyCheck {
            host: p.host.clone(),
            port: p.port(),
            policy: p.host_key.clone(),
            refused: refused.clone(),
        };
        let config = Arc::new(russh::client::Config {
            inactivity_timeout: Some(REQUEST_TIMEOUT),
            ..Default::default()
        });
        let connected = within(
            CONNECT_TIMEOUT,
            "cannot connect",
            russh::client::connect(config, (p.host.as_str(), p.port()), check),
        );
        let mut ssh = match connected {
            Ok(ssh) => ssh,
            Err(e) => {
                if let Some(why) = refused.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    return Err(StorageError::permanent(format!(
                        "host key check failed: {why}"
                    )));
                }
                return Err(e);
            }
        };
        let auth = if p.key_file.is_empty() {
            let password = self.password.clone().unwrap_or_default();
            within(
                CONNECT_TIMEOUT,
                "cannot log in",
                ssh.authenticate_password(p.user.clone(), password),
            )?
        } else {
            let key = russh::keys::load_secret_key(&p.key_file, self.password.as_deref())
                .with_context(|| format!("cannot read the key file {}", p.key_file))?;
            let hash = within(
                CONNECT_TIMEOUT,
                "cannot log in",
                ssh.best_supported_rsa_hash(),
            )?
            .flatten();
            within(
                CONNECT_TIMEOUT,
                "cannot log in",
                ssh.authenticate_publickey(
                    p.user.clone(),
                    PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                ),
            )?
        };
        if !auth.success() {
            return Err(StorageError::permanent(format!(
                "access denied: the credentials or the permissions are wrong (user {})",
                p.user
            )));
        }
        let sftp = within(CONNECT_TIMEOUT, "cannot start SFTP", async {
            let channel = ssh.channel_open_session().await?;
            channel.request_subsystem(true, "sftp").await?;
            SftpSession::new(channel.into_stream())
                .await
                .map_err(|e| russh::Error::IO(std::io::Error::other(e.to_string())))
        })?;
        sftp.set_timeout(REQUEST_TIMEOUT.as_secs());
        Ok(Connected {
            _ssh: ssh,
            sftp: Arc::new(sftp),
            root_made: false,
        })
    }

    /// The SFTP session, connecting on first use; with `make_root`, the
    /// storage's directory is created (with its parents) first.
    fn sftp(&self, make_root: bool) -> Result<Arc<SftpSession>> {
        let mut guard = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(
                self.connect()
                    .with_context(|| format!("cannot reach {}", self.describe))?,
            );
        }
        let connected = guard.as_mut().expect("connected above");
        if make_root && !connected.root_made {
            let sftp = connected.sftp.clone();
            let mut dir = String::new();
            for part in self.root.split('/') {
                if part.is_empty() && dir.is_empty() {
                    dir.push('/');
                    continue;
                }
                if !dir.is_empty() && !dir.ends_with('/') {
                    dir.push('/');
                }
                dir.push_str(part);
                let exists = within(REQUEST_TIMEOUT, "stat", sftp.try_exists(dir.clone()))?;
                if !exists {
                    within(REQUEST_TIMEOUT, "mkdir", sftp.create_dir(dir.clone()))
                        .with_context(|| format!("cannot create {dir} on {}", self.describe))?;
                }
            }
            connected.root_made = true;
        }
        Ok(connected.sftp.clone())
    }

    fn fail(&self, what: &str, name: &str) -> String {
        format!("failed to {what} {name} on {}", self.describe)
    }
}

/// A file being written: buffered, then closed and renamed on commit.
struct SftpWriter {
    file: Option<File>,
    buf: Vec<u8>,
    sftp: Arc<SftpSession>,
    temp: String,
    target: String,
    describe: String,
}

impl SftpWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("the writer is closed"))?;
        let buf = std::mem::take(&mut self.buf);
        RUNTIME.block_on(async {
            tokio::time::timeout(REQUEST_TIMEOUT, file.write_all(&buf))
                .await
                .map_err(|_| std::io::Error::other("the SFTP server stopped answering"))?
        })
    }
}

impl Write for SftpWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 4 << 20 {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl StorageWriter for SftpWriter {
    fn commit(mut self: Box<Self>) -> Result<()> {
        self.send()
            .with_context(|| format!("failed to store {} on {}", self.target, self.describe))?;
        let mut file = self.file.take().context("the writer is closed")?;
        within(REQUEST_TIMEOUT, "close", async {
            file.sync_all().await.ok();
            file.shutdown().await
        })
        .with_context(|| format!("failed to store {} on {}", self.target, self.describe))?;
        // SFTP's rename does not replace: the old object goes first.
        let _ = within(
            REQUEST_TIMEOUT,
            "remove",
            self.sftp.remove_file(self.target.clone()),
        );
        within(
            REQUEST_TIMEOUT,
            "rename",
            self.sftp.rename(self.temp.clone(), self.target.clone()),
        )
        .with_context(|| format!("failed to store {} on {}", self.target, self.describe))?;
        self.temp.clear();
        Ok(())
    }
}

impl Drop for SftpWriter {
    fn drop(&mut self) {
        if let Some(mut file) = self.file.take() {
            let _ = within(Duration::from_secs(10), "close", file.shutdown());
        }
        if !self.temp.is_empty() {
            let _ = within(
                Duration::from_secs(10),
                "remove",
                self.sftp.remove_file(self.temp.clone()),
            );
        }
    }
}

/// Reading a file, as `Read`.
struct SftpReader {
    file: File,
}

impl Read for SftpReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let file = &mut self.file;
        RUNTIME.block_on(async {
            tokio::time::timeout(REQUEST_TIMEOUT, file.read(buf))
                .await
                .map_err(|_| std::io::Error::other("the SFTP server stopped answering"))?
        })
    }
}

impl Storage for SftpStorage {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn list(&self) -> Result<Vec<ObjectInfo>> {
        let sftp = self.sftp(false)?;
        let entries = match within(REQUEST_TIMEOUT, "list", sftp.read_dir(self.root.clone())) {
            Ok(entries) => entries,
            // A directory nothing was written to yet.
            Err(e) if e.to_string().contains("No such file") => return Ok(Vec::new()),
            Err(e) => return Err(e.context(format!("failed to list {}", self.describe))),
        };
        let mut out: Vec<ObjectInfo> = entries
            .filter(|e| e.file_type().is_file())
            .map(|e| ObjectInfo {
                name: e.file_name(),
                size: e.metadata().size.unwrap_or(0),
            })
            .filter(|o| check_name(&o.name).is_ok() && !o.name.ends_with(".part"))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn create(&self, name: &str) -> Result<Box<dyn StorageWriter>> {
        check_name(name)?;
        let sftp = self.sftp(true)?;
        let temp = self.path(&format!("{name}.part"));
        let file = within(
            REQUEST_TIMEOUT,
            "open",
            sftp.open_with_flags(
                temp.clone(),
                OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
            ),
        )
        .with_context(|| self.fail("start writing", name))?;
        Ok(Box::new(SftpWriter {
            file: Some(file),
            buf: Vec::with_capacity(4 << 20),
            sftp,
            temp,
            target: self.path(name),
            describe: self.describe.clone(),
        }))
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        check_name(name)?;
        let sftp = self.sftp(false)?;
        let file = within(REQUEST_TIMEOUT, "open", sftp.open(self.path(name)))
            .with_context(|| self.fail("open", name))?;
        Ok(Box::new(std::io::BufReader::with_capacity(
            1 << 20,
            SftpReader { file },
        )))
    }

    fn read_range(&self, name: &str, offset: u64, len: u64) -> Result<Vec<u8>> {
        check_name(name)?;
        let sftp = self.sftp(false)?;
        let path = self.path(name);
        within(REQUEST_TIMEOUT, "read", async {
            let mut file = sftp.open(path).await?;
            file.seek(std::io::SeekFrom::Start(offset)).await?;
            let mut buf = vec![0u8; len as usize];
            file.read_exact(&mut buf).await?;
            file.shutdown().await.ok();
            Ok::<_, std::io::Error>(buf)
        })
        .with_context(|| self.fail("read", name))
    }

    fn size(&self, name: &str) -> Result<u64> {
        check_name(name)?;
        let sftp = self.sftp(false)?;
        let path = self.path(name);
        if !within(REQUEST_TIMEOUT, "stat", sftp.try_exists(path.clone()))
            .with_context(|| self.fail("find", name))?
        {
            return Err(super::NotFound(name.to_string()).into());
        }
        let meta = within(REQUEST_TIMEOUT, "stat", sftp.metadata(path))
            .with_context(|| self.fail("find", name))?;
        Ok(meta.size.unwrap_or(0))
    }

    fn remove(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let sftp = self.sftp(false)?;
        let path = self.path(name);
        if !within(REQUEST_TIMEOUT, "stat", sftp.try_exists(path.clone()))? {
            return Ok(());
        }
        within(REQUEST_TIMEOUT, "remove", sftp.remove_file(path))
            .with_context(|| self.fail("delete", name))
    }

    fn free_space(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    fn vouches_for_content(&self) -> bool {
        false
    }

    fn clean_partials(&self) -> Result<usize> {
        let sftp = self.sftp(false)?;
        let entries = match within(REQUEST_TIMEOUT, "list", sftp.read_dir(self.root.clone())) {
            Ok(entries) => entries,
            Err(e) if e.to_string().contains("No such file") => return Ok(0),
            Err(e) => return Err(e.context(format!("failed to list {}", self.describe))),
        };
        let mut n = 0;
        for entry in entries {
            let name = entry.file_name();
            if entry.file_type().is_file() && name.ends_with(".part") {
                within(
                    REQUEST_TIMEOUT,
                    "remove",
                    sftp.remove_file(self.path(&name)),
                )
                .with_context(|| self.fail("delete", &name))?;
                n += 1;
            }
        }
        Ok(n)
    }
}
