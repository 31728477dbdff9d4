//! Encryption of copies with age (<https://age-encryption.org>), so the
//! `age` command opens them.
//!
//! Each encrypted copy gets its own X25519 key: the archive and its listing
//! are age files encrypted to it (`<copy>.tar.age`, `<copy>.json.age`), and
//! the key itself is stored beside them encrypted with the passphrase
//! (`<copy>.key.age`, scrypt). The passphrase is needed once per job to
//! open the key; after that, any part of the archive can be read with a
//! ranged read, because age encrypts in independent 64 KiB chunks and its
//! reader can seek.
//!
//! By hand: `age -d -o copy.key <copy>.key.age` (asks for the passphrase),
//! then `age -d -i copy.key <copy>.tar.age | tar -x`.
//!
//! The passphrase itself is kept in the database encrypted to this
//! installation's own key (`<mgrdir>/etc/billmgr-ops.key`, mode 600), so a
//! dump of the database alone does not reveal it.

use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use age::x25519;
use anyhow::{anyhow, Context, Result};

use crate::storage::{Storage, StorageWriter};

/// A copy's key.
#[derive(Clone)]
pub struct CopyKey(x25519::Identity);

/// The passphrase of the copy's key was wrong, or the key is damaged.
/// Callers branch on it.
#[derive(Debug, thiserror::Error)]
#[error("the passphrase does not open this copy's key")]
pub struct WrongPassphrase;

impl CopyKey {
    pub fn generate() -> CopyKey {
        CopyKey(x25519::Identity::generate())
    }

    /// The key as an age identity file, encrypted with `passphrase`.
    pub fn seal(&self, passphrase: &SecretString) -> Result<Vec<u8>> {
        let encryptor = passphrase_encryptor(passphrase)?;
        let mut out = Vec::new();
        let mut w = encryptor.wrap_output(&mut out)?;
        writeln!(
            w,
            "# billmgr-ops copy key: age -d -i <this file, decrypted> <copy>.tar.age"
        )?;
        writeln!(w, "{}", self.0.to_string().expose_secret())?;
        w.finish()?;
        Ok(out)
    }

    /// Opens a sealed key.
    pub fn open(sealed: &[u8], passphrase: &SecretString) -> Result<CopyKey> {
        let decryptor = age::Decryptor::new(sealed).context("the copy's key file is damaged")?;
        let identity = passphrase_identity(passphrase);
        let mut reader = decryptor
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .map_err(|_| WrongPassphrase)?;
        let mut text = String::new();
        reader.read_to_string(&mut text)?;
        let line = text
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .ok_or_else(|| anyhow!("the copy's key file holds no key"))?;
        Ok(CopyKey(
            x25519::Identity::from_str(line).map_err(|e| anyhow!("bad copy key: {e}"))?,
        ))
    }

    /// A writer that encrypts to this key.
    pub fn encrypt<W: Write>(&self, out: W) -> Result<age::stream::StreamWriter<W>> {
        let recipient = self.0.to_public();
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))?;
        Ok(encryptor.wrap_output(out)?)
    }

    /// A reader that decrypts an object encrypted to this key; it can also
    /// seek when the input can.
    pub fn decrypt<R: Read>(&self, input: R) -> Result<age::stream::StreamReader<BufReader<R>>> {
        let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(256 << 10, input))
            .context("not an age file")?;
        decryptor
            .decrypt(std::iter::once(&self.0 as &dyn age::Identity))
            .map_err(|e| anyhow!("this copy's key does not open the object: {e}"))
    }
}

/// Where an archive's bytes go: straight to the storage, or through age.
pub enum Sink {
    Plain(Box<dyn StorageWriter>),
    Age(age::stream::StreamWriter<Box<dyn StorageWriter>>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Age(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Age(w) => w.flush(),
        }
    }
}

impl Sink {
    /// Writes to `out`, encrypted to `key` when there is one.
    pub fn new(out: Box<dyn StorageWriter>, key: Option<&CopyKey>) -> Result<Sink> {
        Ok(match key {
            None => Sink::Plain(out),
            Some(key) => Sink::Age(key.encrypt(out)?),
        })
    }

    /// Ends the encryption, if any, and commits the object.
    pub fn commit(self) -> Result<()> {
        let inner = match self {
            Sink::Plain(w) => w,
            Sink::Age(w) => w.finish().context("failed to finish the encryption")?,
        };
        inner.commit()
    }
}

/// Reads an object through ranged reads, as `Read + Seek`.
pub struct RangeReader<'a> {
    storage: &'a dyn Storage,
    object: String,
    size: u64,
    pos: u64,
}

impl<'a> RangeReader<'a> {
    pub fn new(storage: &'a dyn Storage, object: &str) -> Result<Self> {
        Ok(RangeReader {
            storage,
            object: object.to_string(),
            size: storage.size(object)?,
            pos: 0,
        })
    }
}

impl Read for RangeReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = (buf.len() as u64).min(self.size.saturating_sub(self.pos));
        if len == 0 {
            return Ok(0);
        }
        let data = self
            .storage
            .read_range(&self.object, self.pos, len)
            .map_err(|e| io::Error::other(format!("{e:#}")))?;
        buf[..data.len()].copy_from_slice(&data);
        self.pos += data.len() as u64;
        Ok(data.len())
    }
}

impl Seek for RangeReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.size as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if pos < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        self.pos = pos as u64;
        Ok(self.pos)
    }
}

/// A key for signing (download tokens), derived from the installation's
/// own key: the same on every call, unknown without that file.
pub fn signing_key(mgrdir: &Path, purpose: &str) -> Result<[u8; 32]> {
    use sha2::Digest;
    let identity = local_key(mgrdir)?;
    let mut h = sha2::Sha256::new();
    h.update(b"billmgr-ops signing key\0");
    h.update(purpose.as_bytes());
    h.update(b"\0");
    h.update(identity.to_string().expose_secret().as_bytes());
    Ok(h.finalize().into())
}

/// The scrypt work factor (log2 N) of what this plugin encrypts to a
/// passphrase: age's recommended 18 (256 MiB, about a second), fixed
/// rather than measured, so every server can open what any other wrote.
const SCRYPT_LOG_N: u8 = 18;
/// The highest work factor accepted from a file: a forged file must not
/// make a decryption take gigabytes (N = 2^20 needs 1 GiB).
const MAX_SCRYPT_LOG_N: u8 = 20;

fn passphrase_encryptor(passphrase: &SecretString) -> Result<age::Encryptor> {
    let mut recipient = age::scrypt::Recipient::new(passphrase.clone());
    recipient.set_work_factor(SCRYPT_LOG_N);
    age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        .map_err(|e| anyhow!("cannot encrypt to the passphrase: {e}"))
}

fn passphrase_identity(passphrase: &SecretString) -> age::scrypt::Identity {
    let mut identity = age::scrypt::Identity::new(passphrase.clone());
    identity.set_max_work_factor(MAX_SCRYPT_LOG_N);
    identity
}

/// Decrypts a stream encrypted to a passphrase (what a download of an
/// encrypted copy gives).
pub fn decrypt_with_passphrase<R: Read>(
    input: R,
    passphrase: &SecretString,
) -> Result<age::stream::StreamReader<BufReader<R>>> {
    let decryptor = age::Decryptor::new(BufReader::new(input)).context("not an age file")?;
    let identity = passphrase_identity(passphrase);
    decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|_| WrongPassphrase.into())
}

/// Re-encrypts a plaintext stream to a passphrase (age's scrypt
/// recipient), so that `age -d` opens it with the passphrase alone.
pub fn encrypt_to_passphrase<W: Write>(
    passphrase: &SecretString,
    out: W,
) -> Result<age::stream::StreamWriter<W>> {
    let encryptor = passphrase_encryptor(passphrase)?;
    Ok(encryptor.wrap_output(out)?)
}

/// The installation's own key, created on first use.
fn local_key(mgrdir: &Path) -> Result<x25519::Identity> {
    let path = mgrdir.join("etc/billmgr-ops.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let line = text
            .lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-"))
            .unwrap_or_default();
        return x25519::Identity::from_str(line)
            .map_err(|e| anyhow!("`{}` is damaged: {e}", path.display()));
    }
    let identity = x25519::Identity::generate();
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("failed to create `{}`", path.display()))?;
    writeln!(
        f,
        "# billmgr-ops: encrypts secrets kept in the database. Keep it with the panel's etc."
    )?;
    writeln!(f, "{}", identity.to_string().expose_secret())?;
    f.sync_all()?;
    Ok(identity)
}

/// A secret as stored in the database: `age:` and hex of an age file
/// encrypted to the installation's key.
pub fn seal_secret(mgrdir: &Path, secret: &str) -> Result<String> {
    let recipient = local_key(mgrdir)?.to_public();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))?;
    let mut out = Vec::new();
    let mut w = encryptor.wrap_output(&mut out)?;
    w.write_all(secret.as_bytes())?;
    w.finish()?;
    Ok(format!("age:{}", hex::encode(&out)))
}

/// Opens a secret sealed by [`seal_secret`].
pub fn open_secret(mgrdir: &Path, sealed: &str) -> Result<SecretString> {
    let hex = sealed.strip_prefix("age:").context("not a sealed secret")?;
    let bytes = hex::decode(hex).context("a sealed secret is damaged")?;
    let identity = local_key(mgrdir)?;
    let decryptor = age::Decryptor::new(&bytes[..])?;
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| anyhow!("this installation's key does not open a stored secret: {e}"))?;
    let mut text = String::new();
    reader.read_to_string(&mut text)?;
    Ok(SecretString::from(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_with_its_passphrase() {
        let key = CopyKey::generate();
        let sealed = key
            .seal(&SecretString::from("correct horse".to_string()))
            .unwrap();
        assert!(CopyKey::open(&sealed, &SecretString::from("correct horse".to_string())).is_ok());
        let err = CopyKey::open(&sealed, &SecretString::from("wrong".to_string()))
            .err()
            .unwrap();
        assert!(err.downcast_ref::<WrongPassphrase>().is_some());
    }

    #[test]
    fn an_encrypted_stream_reads_back_from_any_offset() {
        let key = CopyKey::generate();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = key.encrypt(Vec::new()).unwrap();
        w.write_all(&data).unwrap();
        let sealed = w.finish().unwrap();
        let mut r = key.decrypt(io::Cursor::new(sealed)).unwrap();
        r.seek(SeekFrom::Start(200_001)).unwrap();
        let mut part = vec![0; 1000];
        r.read_exact(&mut part).unwrap();
        assert_eq!(part, data[200_001..201_001]);
    }

    #[test]
    fn secrets_round_trip_through_the_installation_key() {
        let dir = std::env::temp_dir().join(format!("billmgr-ops-crypt-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        let sealed = seal_secret(&dir, "s3cret").unwrap();
        assert!(!sealed.contains("s3cret"));
        assert_eq!(
            open_secret(&dir, &sealed).unwrap().expose_secret(),
            "s3cret"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("etc/billmgr-ops.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
