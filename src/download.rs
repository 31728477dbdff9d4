//! Downloading a copy: `backups.download` issues a token, the same binary
//! running as a CGI program (`<mgrdir>/cgi/billmgr-ops-download`, reached
//! as `/mancgi/billmgr-ops-download`) spends it and streams the archive.
//!
//! A token is `<copy id>.<expires>.<nonce>.<mac>`: the MAC (HMAC-SHA256
//! with a key derived from the installation's key) makes a forged or
//! altered token fail before the database is asked; the database holds
//! the SHA-256 of each issued token, with its copy, administrator and
//! expiry, and the row is deleted as the token is spent, so a token works
//! once. Anything wrong gets `403 Forbidden` with no detail (the reason is
//! logged).
//!
//! A plain copy is sent as stored (the tar holds its own listing). An
//! encrypted copy is sent re-encrypted to the backup passphrase, so that
//! `age -d` with the passphrase alone opens it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use hmac::{Hmac, Mac};
use mysql::prelude::Queryable;
use sha2::Sha256;

use crate::clock;
use crate::config::Config;
use crate::db::{backups, Db};
use crate::engine;

/// How long a token lives.
pub const TOKEN_LIFETIME_SECS: i64 = 300;
/// The CGI program's name under `<mgrdir>/cgi/`.
pub const CGI_NAME: &str = "billmgr-ops-download";

fn mac(config: &Config, payload: &str) -> Result<Hmac<Sha256>> {
    let key = engine::signing_key(&config.mgrdir, "download")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(payload.as_bytes());
    Ok(mac)
}

fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Issues a single-use token for copy `backup`, for `admin`, and returns
/// the URL the panel should open.
pub fn issue(config: &Config, db: &mut Db, backup: u64, admin: &str) -> Result<String> {
    let mut nonce = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut nonce))
        .context("cannot read /dev/urandom")?;
    let expires = clock::now_unix() + TOKEN_LIFETIME_SECS;
    let payload = format!("{backup}.{expires}.{}", hex::encode(nonce));
    let token = format!(
        "{payload}.{}",
        hex::encode(mac(config, &payload)?.finalize().into_bytes())
    );
    db.conn()
        .query_drop("DELETE FROM billmgrops_download WHERE expires < UTC_TIMESTAMP()")
        .context("failed to purge expired download tokens")?;
    // The expiry is kept in UTC and compared with UTC_TIMESTAMP(): the
    // server's own zone (often not UTC) never enters.
    db.conn()
        .exec_drop(
            "INSERT INTO billmgrops_download (token_hash, backup, admin, expires) VALUES (?, ?, ?, ?)",
            (token_hash(&token), backup, admin, clock::utc_datetime(expires)),
        )
        .context("failed to record the download token")?;
    Ok(format!("/mancgi/{CGI_NAME}?token={token}"))
}

/// Checks and spends a token: the copy id and who it was issued to.
fn spend(config: &Config, db: &mut Db, token: &str) -> Result<(u64, String)> {
    let parts: Vec<&str> = token.split('.').collect();
    let [id, expires, _nonce, sig] = parts[..] else {
        bail!("a malformed token");
    };
    let payload = &token[..token.len() - sig.len() - 1];
    let sig = hex::decode(sig).context("a malformed signature")?;
    mac(config, payload)?
        .verify_slice(&sig)
        .map_err(|_| anyhow::anyhow!("a token with a wrong signature"))?;
    let expires: i64 = expires.parse().context("a malformed expiry")?;
    anyhow::ensure!(expires >= clock::now_unix(), "an expired token");
    let id: u64 = id.parse().context("a malformed copy id")?;
    let mut tx = db
        .conn()
        .start_transaction(mysql::TxOpts::default())
        .context("failed to start a transaction")?;
    let hash = token_hash(token);
    let admin: Option<String> = tx.exec_first(
        "SELECT admin FROM billmgrops_download WHERE token_hash = ? AND backup = ? AND expires >= UTC_TIMESTAMP() FOR UPDATE",
        (&hash, id),
    )?;
    let admin = admin.context("a token that was used already or never issued")?;
    tx.exec_drop(
        "DELETE FROM billmgrops_download WHERE token_hash = ?",
        (&hash,),
    )?;
    tx.commit().context("failed to spend the token")?;
    Ok((id, admin))
}

/// The `token` parameter of a query string.
fn query_token(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .filter(|t| t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'))
}

/// Runs as the CGI program: streams the copy a valid token names, or
/// answers 403.
pub fn cgi_main(config: &Config, env: &BTreeMap<String, String>) -> ExitCode {
    // The CGI's one response.
    #[allow(clippy::disallowed_methods)]
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    match serve(config, env, &mut out) {
        Ok(()) => {
            let _ = out.flush();
        }
        Err(Refused(reason)) => {
            log::warn!(
                "download refused ({} from {}): {reason:#}",
                env.get("QUERY_STRING").map_or(0, String::len),
                env.get("REMOTE_ADDR").map_or("?", String::as_str)
            );
            let _ = write!(
                out,
                "Status: 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nForbidden\n"
            );
            let _ = out.flush();
        }
    }
    ExitCode::SUCCESS
}

/// Why a download was refused, for the log only.
struct Refused(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for Refused {
    fn from(e: E) -> Self {
        Refused(e.into())
    }
}

fn serve(
    config: &Config,
    env: &BTreeMap<String, String>,
    out: &mut dyn Write,
) -> Result<(), Refused> {
    if env.get("REQUEST_METHOD").map(String::as_str) != Some("GET") {
        return Err(anyhow::anyhow!("not a GET request").into());
    }
    let query = env.get("QUERY_STRING").map_or("", String::as_str);
    let token = query_token(query).context("no token")?;
    let source = config.db_source()?.clone();
    let mut db = Db::open(&source, config.db_connect_timeout)?;
    let (id, admin) = spend(config, &mut db, token)?;
    let row = backups::get(&mut db, id)?.context("the copy is gone")?;
    if row.state != backups::CopyState::Ok {
        return Err(anyhow::anyhow!("copy {} is {}", row.name, row.state).into());
    }
    let settings = crate::engine::Settings::for_copy(config, &mut db, &row)?;
    drop(db);
    let copy = engine::open_copy(&settings, &row.name)?;
    log::info!("copy {} downloaded by {admin}", row.name);
    // Once headers are out, a failure can only cut the stream short (the
    // length tells the browser it is incomplete).
    match &copy.key {
        None => {
            let size = copy.archive_size()?;
            let mut reader = copy.open()?;
            write!(
                out,
                "Status: 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: {size}\r\n\
                 Content-Disposition: attachment; filename=\"{}.tar\"\r\n\r\n",
                row.name
            )?;
            std::io::copy(&mut reader, out)?;
        }
        Some(_) => {
            let passphrase = settings
                .passphrase
                .as_ref()
                .context("an encrypted copy, and no passphrase to send it with")?;
            let mut plain = copy.open()?;
            write!(
                out,
                "Status: 200 OK\r\nContent-Type: application/octet-stream\r\n\
                 Content-Disposition: attachment; filename=\"{}.tar.age\"\r\n\r\n",
                row.name
            )?;
            let mut sealed = engine::encrypt_to_passphrase(passphrase, out)?;
            std::io::copy(&mut plain, &mut sealed)?;
            sealed.finish()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_token_parameter_is_taken() {
        assert_eq!(query_token("token=1.2.ab.cd"), Some("1.2.ab.cd"));
        assert_eq!(query_token("x=1&token=1.2.ab.cd"), Some("1.2.ab.cd"));
        assert_eq!(query_token("token=1.2.ab.cd%27"), None);
        assert_eq!(query_token("tok=1"), None);
    }
}
