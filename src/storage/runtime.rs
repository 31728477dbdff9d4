//! What every network storage shares: the runtime their async clients
//! run on, how long one request may take and how often it is retried,
//! and the process's one TLS provider.

use std::sync::LazyLock;
use std::time::Duration;

/// The async clients (OpenDAL, russh) run here; two workers suit a
/// 2-core billing server.
pub static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("storage-io")
        .enable_all()
        .build()
        .expect("failed to start the storage runtime")
});

/// One request may take this long before it is retried.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// A failed request is retried this many times, waiting 1 s, 2 s, 4 s ...
/// up to 30 s between tries.
pub const RETRIES: usize = 5;

/// One TLS provider for the process (reqwest and suppaftp both bring one,
/// and rustls will not guess), limited to TLS 1.2.
///
/// Why 1.2: over TLS 1.3 the server sends session tickets after the
/// handshake; an FTPS upload never reads its data connection, so at close
/// those bytes are still unread and the kernel answers the close with a
/// reset, which makes the server drop the tail of the upload (vsftpd:
/// "426 Failure reading network stream"; pyftpdlib: a silently short
/// file). The FTP library offers no way to drain or to pick the version
/// for its connections alone. TLS 1.2 with the provider's AEAD suites is
/// what every S3 and FTPS service accepts.
pub fn install_tls_provider() {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider
        .cipher_suites
        .retain(|s| s.version() == &rustls::version::TLS12);
    let _ = provider.install_default();
}
