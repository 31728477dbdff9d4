//! What describes a storage: its kind and the fields of that kind, as the
//! setup form, the CLI and `billmgrops_storage.params` (JSON) carry them.
//! The one secret of a storage (an FTP password, an S3 secret key) is not
//! here: it is stored sealed in its own column and handed to
//! [`super::open`] only when the storage is opened.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kinds of storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A directory on this server.
    #[default]
    Local,
    /// A directory on an SSH server (password or key authentication).
    Sftp,
    /// A directory on an FTP server, plain or with explicit TLS (FTPS).
    Ftp,
    /// A bucket (and prefix) on AWS S3 or an S3-compatible server.
    S3,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Local, Kind::Sftp, Kind::Ftp, Kind::S3];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Local => "local",
            Kind::Sftp => "sftp",
            Kind::Ftp => "ftp",
            Kind::S3 => "s3",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The name of this kind's secret field, if it has one.
    pub fn secret_field(self) -> Option<&'static str> {
        match self {
            Kind::Ftp | Kind::Sftp => Some("password"),
            Kind::S3 => Some("secret_key"),
            Kind::Local => None,
        }
    }

    /// Whether storages of this kind with these fields need their secret:
    /// SFTP with a key file needs none (the secret is then the key's
    /// passphrase, if it has one).
    pub fn secret_required(self, params: &Params) -> bool {
        match self {
            Kind::Sftp => params.key_file.is_empty(),
            kind => kind.secret_field().is_some(),
        }
    }

    /// The fields this kind needs filled in.
    pub fn required_fields(self) -> &'static [&'static str] {
        match self {
            Kind::Local => &["path"],
            Kind::Sftp => &["host", "user"],
            Kind::Ftp => &["host", "user"],
            Kind::S3 => &["bucket", "access_key"],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A storage's fields (all kinds in one flat record; a kind reads its own).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Params {
    pub kind: Kind,
    /// Local: the directory (relative to the panel's directory unless
    /// absolute). Remote: the directory on the server, or the key prefix
    /// in the bucket.
    pub path: String,
    /// SFTP and FTP: the server's name or address.
    pub host: String,
    /// SFTP and FTP: the port; 0 means the kind's default (22, 21).
    pub port: u16,
    pub user: String,
    /// SFTP: the private key file on this server (empty: log in with the
    /// password).
    pub key_file: String,
    /// SFTP: `accept-new` (remember a new server's key, refuse a changed
    /// one), `strict` (the key must be in known_hosts already) or `off`.
    pub host_key: String,
    /// FTP: explicit TLS (FTPS).
    pub tls: bool,
    /// S3: the service URL; empty for AWS.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    /// S3: the access key id (the secret key is sealed separately).
    pub access_key: String,
}

impl Params {
    pub fn port(&self) -> u16 {
        match (self.port, self.kind) {
            (0, Kind::Sftp) => 22,
            (0, Kind::Ftp) => 21,
            (p, _) => p,
        }
    }

    /// Kind and location, for messages and logs: never a secret.
    pub fn describe(&self) -> String {
        let path = self.path.trim_matches('/');
        match self.kind {
            Kind::Local => format!("local directory {}", self.path),
            Kind::Sftp => format!("sftp://{}@{}:{}/{path}", self.user, self.host, self.port()),
            Kind::Ftp => format!(
                "{}://{}@{}:{}/{path}",
                if self.tls { "ftps" } else { "ftp" },
                self.user,
                self.host,
                self.port()
            ),
            Kind::S3 => {
                let endpoint = if self.endpoint.is_empty() {
                    "aws"
                } else {
                    self.endpoint.as_str()
                };
                format!("s3://{}/{path} at {endpoint}", self.bucket)
            }
        }
    }

    /// The first field that is missing or malformed, as (field, value).
    pub fn invalid_field(&self) -> Option<(&'static str, String)> {
        for field in self.kind.required_fields() {
            let value = match *field {
                "path" => &self.path,
                "host" => &self.host,
                "user" => &self.user,
                "key_file" => &self.key_file,
                "bucket" => &self.bucket,
                "access_key" => &self.access_key,
                _ => continue,
            };
            if value.trim().is_empty() {
                return Some((field, String::new()));
            }
        }
        let bad = |s: &str| s.chars().any(|c| c.is_control() || c.is_whitespace());
        // A leading '-' would reach ssh as an option.
        if bad(&self.host) || self.host.contains(['/', '@']) || self.host.starts_with('-') {
            return Some(("host", self.host.clone()));
        }
        if bad(&self.user) || self.user.contains(['/', '@', ':']) || self.user.starts_with('-') {
            return Some(("user", self.user.clone()));
        }
        if self.path.split('/').any(|p| p == "..") || self.path.contains('\0') {
            return Some(("path", self.path.clone()));
        }
        if self.kind == Kind::Sftp && !self.key_file.is_empty() && !self.key_file.starts_with('/') {
            return Some(("key_file", self.key_file.clone()));
        }
        if !matches!(self.host_key.as_str(), "" | "accept-new" | "strict" | "off") {
            return Some(("host_key", self.host_key.clone()));
        }
        let web = |e: &str| e.starts_with("http://") || e.starts_with("https://");
        if !self.endpoint.is_empty() && !web(&self.endpoint) {
            return Some(("endpoint", self.endpoint.clone()));
        }
        let bucket_ok = self
            .bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
        if !bucket_ok {
            return Some(("bucket", self.bucket.clone()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_describe_no_secret() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Kind::parse("dropbox"), None);
        let p = Params {
            kind: Kind::Ftp,
            host: "backup.example.com".into(),
            user: "bill".into(),
            path: "/copies/".into(),
            tls: true,
            ..Params::default()
        };
        assert_eq!(p.describe(), "ftps://bill@backup.example.com:21/copies");
        assert_eq!(p.invalid_field(), None);
    }

    #[test]
    fn malformed_fields_are_named() {
        let p = Params {
            kind: Kind::Sftp,
            host: "h".into(),
            user: "u".into(),
            key_file: "id_rsa".into(),
            ..Params::default()
        };
        assert_eq!(p.invalid_field().map(|f| f.0), Some("key_file"));
        let p = Params {
            kind: Kind::S3,
            bucket: "b".into(),
            access_key: "k".into(),
            endpoint: "ftp://x".into(),
            ..Params::default()
        };
        assert_eq!(p.invalid_field().map(|f| f.0), Some("endpoint"));
        let p = Params {
            kind: Kind::Ftp,
            host: "h -oProxyCommand=x".into(),
            user: "u".into(),
            ..Params::default()
        };
        assert_eq!(p.invalid_field().map(|f| f.0), Some("host"));
        let p = Params {
            kind: Kind::Local,
            path: "../../etc".into(),
            ..Params::default()
        };
        assert_eq!(p.invalid_field().map(|f| f.0), Some("path"));
    }
}
