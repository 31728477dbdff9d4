//! Fetching an upload from an http(s) URL, without letting the URL reach
//! what the panel should not: unless the administrator allows it
//! (`UploadPrivateUrls on`), every address the request would connect to,
//! after DNS and after every redirect, must be public (not loopback,
//! private, link-local, shared, multicast or unspecified, in IPv4 or IPv6,
//! including IPv4 inside IPv6).
//!
//! The check lives where the connection is made: a DNS resolver for the
//! HTTP client that drops non-public addresses (so a name that resolves
//! differently the second time gains nothing), and a redirect policy that
//! refuses a literal non-public address and any scheme but http(s). The
//! transfer itself is OpenDAL's HTTP service, with the storages' timeouts
//! and retries.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use anyhow::{Context, Result};
use opendal::blocking;
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::services;

use super::remote::Explain;
use super::runtime::{install_tls_provider, REQUEST_TIMEOUT, RETRIES, RUNTIME};

/// The URL leads to an address the panel may not reach. Callers branch
/// on it.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not a public address (UploadPrivateUrls is off)")]
pub struct PrivateAddress(pub String);

/// The [`PrivateAddress`] refusal somewhere in `e`'s chain of causes (a
/// read of the body fails with it wrapped by the HTTP stack).
pub fn private_in(e: &(dyn std::error::Error + 'static)) -> Option<PrivateAddress> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(p) = c.downcast_ref::<PrivateAddress>() {
            return Some(PrivateAddress(p.0.clone()));
        }
        cause = c.source();
    }
    // Some layers keep only the text of their cause.
    let text = e.to_string();
    text.contains("is not a public address")
        .then(|| PrivateAddress("the URL's server".into()))
}

/// Is `ip` an address of the public Internet?
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let seg = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address.
            if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public_v4(Ipv4Addr::from(
                    (u32::from(seg[6]) << 16) | u32::from(seg[7]),
                ));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || (seg[0] & 0xffc0) == 0xfec0 // site-local
                || seg[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared (CGNAT)
        || o[0] >= 240) // reserved
}

/// Resolves names for the HTTP client, keeping public addresses only.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = (host.as_str(), 0).to_socket_addrs()?.collect();
            let public: Vec<SocketAddr> =
                all.iter().copied().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let shown = all
                    .first()
                    .map_or_else(|| host.clone(), |a| format!("{host} ({})", a.ip()));
                return Err(
                    Box::new(PrivateAddress(shown)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A literal address in a URL's host, if it is one.
fn literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Checks a URL's scheme and, unless private addresses are allowed, a
/// literal address in it.
fn check_url(url: &reqwest::Url, allow_private: bool) -> Result<()> {
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "`{url}` is not an http or https URL"
    );
    let host = url.host_str().filter(|h| !h.is_empty());
    let host = host.with_context(|| format!("`{url}` names no server"))?;
    if let Some(ip) = literal(host) {
        if !allow_private && !is_public(ip) {
            return Err(PrivateAddress(ip.to_string()).into());
        }
    }
    Ok(())
}

/// Streams the body at `url`.
pub fn open_url(url: &str, allow_private: bool) -> Result<Box<dyn Read + Send>> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("`{url}` is not a URL"))?;
    check_url(&parsed, allow_private)?;
    install_tls_provider();
    let mut client = reqwest::Client::builder()
        .connect_timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                return attempt.error("too many redirects");
            }
            match check_url(attempt.url(), allow_private) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e.to_string()),
            }
        }));
    if !allow_private {
        client = client.dns_resolver(Arc::new(PublicOnly));
    }
    let client = client.build().context("cannot build the HTTP client")?;
    let transport = opendal::HttpTransporter::new(
        opendal_http_transport_reqwest::ReqwestTransport::new(client),
    );
    let origin = format!(
        "{}://{}",
        parsed.scheme(),
        &url[parsed.scheme().len() + 3..]
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default()
    );
    let path = &url[origin.len()..];
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    opendal::install_default();
    let op = opendal::Operator::new(services::Http::default().endpoint(&origin))
        .explained(|| format!("cannot fetch {url}"))?
        .layer(TimeoutLayer::new().with_io_timeout(REQUEST_TIMEOUT))
        .layer(RetryLayer::new().with_jitter().with_max_times(RETRIES));
    let op = op.with_context(opendal::OperationContext::new().with_http_transport(transport));
    let _guard = RUNTIME.enter();
    let op = blocking::Operator::new(op).explained(|| format!("cannot fetch {url}"))?;
    let reader = op
        .reader(&path)
        .and_then(|r| r.into_std_read(..))
        .map_err(|e| {
            // The resolver's refusal arrives wrapped; say it plainly.
            let text = format!("{e:#}");
            if text.contains("is not a public address") {
                anyhow::Error::from(PrivateAddress(format!("the server of {url}")))
            } else {
                anyhow::anyhow!("cannot fetch {url}: {e}")
            }
        })?;
    Ok(Box::new(reader))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_told_apart() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "93.184.216.34",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn literal_private_urls_are_refused_before_any_connection() {
        for url in [
            "http://127.0.0.1:1/x",
            "http://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "http://[::ffff:7f00:1]/x",
        ] {
            let e = open_url(url, false).err().unwrap();
            assert!(e.downcast_ref::<PrivateAddress>().is_some(), "{url}: {e:#}");
        }
        assert!(open_url("ftp://example.com/x", false).is_err());
        assert!(open_url("file:///etc/passwd", false).is_err());
    }
}
