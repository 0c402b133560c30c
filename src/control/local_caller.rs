//! What a tokenless admin request must look like, besides coming from a
//! loopback peer, to be taken as the operator's own and not a browser page's
//! or a proxied stranger's: no proxy headers, a `Host` that names this
//! machine (DNS rebinding), no `Origin` of another site (cross-site requests).
//! It only reads headers; it never decides about peers or tokens (`auth`).

use std::net::{IpAddr, SocketAddr};

use axum::http::uri::Authority;
use axum::http::{header, HeaderMap, StatusCode, Uri};

use super::errors::ApiError;
use crate::config::Config;

/// Headers a reverse proxy adds to what it relays.
const PROXY_HEADERS: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-real-ip",
    "via",
];

/// The names a tokenless admin request may be addressed to.
#[derive(Debug)]
pub(super) struct LocalCaller {
    /// Lowercase host names and IP addresses, besides loopback ones.
    names: Vec<String>,
}

impl LocalCaller {
    /// `localhost`, loopback addresses, the listen addresses (unless they are
    /// the unspecified `0.0.0.0` or `::`) and `admin.hosts`.
    pub(super) fn new(config: &Config) -> Self {
        let listen_ip = config
            .admin
            .listen
            .parse::<SocketAddr>()
            .ok()
            .map(|a| a.ip().to_string());
        let names = ["localhost".to_owned(), config.server.host.clone()]
            .into_iter()
            .chain(listen_ip)
            .chain(config.admin.hosts.iter().cloned())
            .map(|name| bare(&name).to_ascii_lowercase())
            .filter(|name| !name.is_empty() && name != "0.0.0.0" && name != "::")
            .collect();
        Self { names }
    }

    /// `Ok` when `headers` show a request made on this machine for itself.
    pub(super) fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if let Some(name) = PROXY_HEADERS.iter().find(|&&h| headers.contains_key(h)) {
            return Err(refused(
                "proxied_request",
                format!("without ADMIN_TOKEN, admin routes take no relayed requests ({name}); set ADMIN_TOKEN, or use RINGGATE_ADMIN_LISTEN"),
            ));
        }
        if let Some(host) = headers.get(header::HOST) {
            let host = host.to_str().ok().and_then(|h| h.parse::<Authority>().ok());
            if !host.is_some_and(|h| self.knows(h.host())) {
                return Err(refused(
                    "host_refused",
                    "without ADMIN_TOKEN, admin requests must be addressed to this machine: localhost, a loopback or listen address, or RINGGATE_ADMIN_HOSTS",
                ));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().ok().and_then(|o| o.parse::<Uri>().ok());
            if !origin.is_some_and(|o| o.host().is_some_and(|name| self.knows(name))) {
                return Err(refused(
                    "origin_refused",
                    "without ADMIN_TOKEN, admin routes answer no page of another site (Origin)",
                ));
            }
        }
        Ok(())
    }

    /// Whether `name` (a host, maybe a bracketed IPv6 address) is this machine's.
    fn knows(&self, name: &str) -> bool {
        let name = bare(name).to_ascii_lowercase();
        match name.parse::<IpAddr>() {
            Ok(ip) => ip.to_canonical().is_loopback() || self.names.contains(&ip.to_string()),
            Err(_) => self.names.contains(&name),
        }
    }
}

/// A host without IPv6 brackets or the trailing dot of a fully qualified name.
fn bare(name: &str) -> &str {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name)
}

fn refused(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn caller(host: &str, listen: &str, extra: &[&str]) -> LocalCaller {
        let mut config = Config::default();
        config.server.host = host.to_owned();
        config.admin.listen = listen.to_owned();
        config.admin.hosts = extra.iter().map(|&h| h.to_owned()).collect();
        LocalCaller::new(&config)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|&(k, v)| {
                (
                    header::HeaderName::from_static(k),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    fn code(c: &LocalCaller, pairs: &[(&'static str, &str)]) -> Option<String> {
        c.check(&headers(pairs)).err().map(|e| e.code)
    }

    #[test]
    fn local_names_pass_and_others_do_not() {
        let c = caller("0.0.0.0", "10.1.2.3:9090", &["GW.internal"]);
        for host in [
            "localhost",
            "LOCALHOST:8080",
            "localhost.:8080",
            "127.0.0.1:8080",
            "127.9.9.9",
            "[::1]:8080",
            "10.1.2.3:9090",
            "gw.internal",
        ] {
            assert_eq!(code(&c, &[("host", host)]), None, "{host}");
        }
        for host in [
            "evil.example",
            "0.0.0.0:8080",
            "10.1.2.4",
            "[::2]",
            "localhost.evil.example",
        ] {
            assert_eq!(
                code(&c, &[("host", host)]).as_deref(),
                Some("host_refused"),
                "{host}"
            );
        }
        assert_eq!(code(&c, &[]), None, "no Host (HTTP/1.0) is no browser");
    }

    #[test]
    fn foreign_origins_and_proxies_are_refused() {
        let c = caller("127.0.0.1", "", &[]);
        assert_eq!(code(&c, &[("origin", "http://localhost:8080")]), None);
        assert_eq!(code(&c, &[("origin", "http://[::1]:8080")]), None);
        for origin in [
            "https://evil.example",
            "null",
            "file://",
            "http://127.0.0.1.evil.example",
        ] {
            assert_eq!(
                code(&c, &[("origin", origin)]).as_deref(),
                Some("origin_refused"),
                "{origin}"
            );
        }
        for proxy in PROXY_HEADERS {
            let name = header::HeaderName::from_static(proxy);
            let mut h = HeaderMap::new();
            h.insert(name, HeaderValue::from_static("203.0.113.9"));
            assert_eq!(c.check(&h).unwrap_err().code, "proxied_request", "{proxy}");
        }
    }
}
