//! Which upgrade requests may reach `/ws` before any token is looked at: the `Origin` policy
//! (`WS_ALLOWED_ORIGINS`) and the peer IP allowlist (`WS_IP_ALLOWLIST`). Both are parsed
//! once at start; matching never allocates, never resolves names and never panics.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("{0:?} is not an origin, *.domain or *")]
    BadOrigin(String),
    #[error("{0:?} is not an IP address or CIDR")]
    BadCidr(String),
}

/// `WS_ALLOWED_ORIGINS` entries: `*` (any), an exact origin `https://app.example.com`
/// (`scheme://host[:port]`, compared case-insensitively, a trailing `/` ignored), a host
/// wildcard `*.example.com` (any scheme, any subdomain depth, NOT the bare apex
/// `example.com`), or `https://*.example.com` (scheme fixed).
///
/// A port is part of an origin: a pattern without one matches only origins without one
/// (`*.example.com:8443` names a port); a scheme's default port (80 for http and ws, 443 for
/// https and wss) is the same as none. The `null` origin matches only `*`. An empty list
/// allows no origin.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    any: bool,
    rules: Vec<OriginRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginRule {
    /// Lowercase; `None` for any scheme.
    scheme: Option<String>,
    host: HostRule,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    /// This host, lowercase.
    Exact(String),
    /// Any host ending in this suffix (lowercase, with its leading dot) with at least one
    /// label before it.
    Subdomain(String),
}

/// An `Origin` header value split into its parts, as written.
struct Origin<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<u16>,
}

impl OriginPolicy {
    pub fn new(patterns: &[String]) -> Result<OriginPolicy, AccessError> {
        let mut policy = OriginPolicy {
            any: false,
            rules: Vec::with_capacity(patterns.len()),
        };
        for pattern in patterns {
            let bad = || AccessError::BadOrigin(pattern.clone());
            let trimmed = pattern.trim();
            if trimmed == "*" {
                policy.any = true;
                continue;
            }
            // `*.example.com` is shorthand for a pattern of any scheme.
            let (scheme, authority) = match trimmed.split_once("://") {
                Some((scheme, rest)) if is_scheme(scheme) => (Some(scheme), rest),
                None if trimmed.starts_with("*.") => (None, trimmed),
                _ => return Err(bad()),
            };
            let (host, port) = split_authority(authority).ok_or_else(bad)?;
            let host = match host.strip_prefix('*') {
                Some(suffix) if suffix.starts_with('.') && is_dns_name(&suffix[1..]) => {
                    HostRule::Subdomain(suffix.to_ascii_lowercase())
                }
                Some(_) => return Err(bad()),
                None if is_host(host) => HostRule::Exact(host.to_ascii_lowercase()),
                None => return Err(bad()),
            };
            policy.rules.push(OriginRule {
                scheme: scheme.map(str::to_ascii_lowercase),
                host,
                port: scheme.map_or(port, |scheme| explicit_port(scheme, port)),
            });
        }
        Ok(policy)
    }

    /// Whether a request with this `Origin` header value may upgrade.
    pub fn allows(&self, origin: &str) -> bool {
        if self.any {
            return true;
        }
        let Some((scheme, authority)) = origin.trim().split_once("://") else {
            return false;
        };
        match split_authority(authority) {
            Some((host, port)) if is_scheme(scheme) && is_host(host) => {
                let port = explicit_port(scheme, port);
                let origin = Origin { scheme, host, port };
                self.rules.iter().any(|rule| rule.matches(&origin))
            }
            _ => false,
        }
    }
}

impl OriginRule {
    fn matches(&self, origin: &Origin<'_>) -> bool {
        let scheme_ok = match &self.scheme {
            Some(scheme) => scheme.eq_ignore_ascii_case(origin.scheme),
            None => true,
        };
        let host_ok = match &self.host {
            HostRule::Exact(host) => host.eq_ignore_ascii_case(origin.host),
            HostRule::Subdomain(suffix) => {
                let host = origin.host.as_bytes();
                host.len() > suffix.len()
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
            }
        };
        scheme_ok && host_ok && self.port == origin.port
    }
}

/// An RFC 3986 scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// `host[:port]` (one trailing `/` allowed) split into host and port, or `None` when the port
/// is not 1..=65535 or the host is empty. The host itself is checked by the caller.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    // The port follows the last `:` unless that `:` is inside an IPv6 literal `[…]`.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
            let port: u16 = port.parse().ok().filter(|p| digits && *p != 0)?;
            (host, Some(port))
        }
        _ => (authority, None),
    };
    (!host.is_empty()).then_some((host, port))
}

/// `port` unless it is the scheme's default port.
fn explicit_port(scheme: &str, port: Option<u16>) -> Option<u16> {
    let is = |names: [&str; 2]| names.iter().any(|name| name.eq_ignore_ascii_case(scheme));
    let default = if is(["http", "ws"]) {
        80
    } else if is(["https", "wss"]) {
        443
    } else {
        return port;
    };
    port.filter(|&port| port != default)
}

/// A DNS name or IPv4 address (see [`is_dns_name`]) or a bracketed IPv6 literal.
fn is_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => inner.parse::<std::net::Ipv6Addr>().is_ok(),
        None => is_dns_name(host),
    }
}

/// Dot-separated non-empty labels of letters, digits, `-` and `_`.
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `WS_IP_ALLOWLIST` entries: IPv4/IPv6 CIDRs (`10.0.0.0/8`, `2001:db8::/32`) or bare
/// addresses (a /32 or /128); host bits in a CIDR are ignored. An IPv4-mapped IPv6 peer
/// (`::ffff:1.2.3.4`) is matched as its IPv4 address (and as itself).
#[derive(Debug, Clone)]
pub struct IpAllowlist {
    nets: Vec<IpNet>,
}

impl IpAllowlist {
    pub fn new(entries: &[String]) -> Result<IpAllowlist, AccessError> {
        let nets = entries
            .iter()
            .map(|entry| {
                let trimmed = entry.trim();
                IpNet::from_str(trimmed)
                    .or_else(|_| IpAddr::from_str(trimmed).map(IpNet::from))
                    .map_err(|_| AccessError::BadCidr(entry.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(IpAllowlist { nets })
    }

    /// Whether a peer may connect; an empty list allows everyone.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.nets.is_empty() {
            return true;
        }
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.nets
            .iter()
            .any(|net| net.contains(&ip) || mapped.is_some_and(|v4| net.contains(&v4)))
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(patterns: &[&str]) -> OriginPolicy {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        OriginPolicy::new(&patterns).unwrap()
    }

    fn ips(entries: &[&str]) -> IpAllowlist {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        IpAllowlist::new(&entries).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn star_allows_everything() {
        let policy = origins(&["https://a.example.com", "*"]);
        for origin in [
            "https://x.org",
            "null",
            "",
            "garbage",
            "http://localhost:3000",
        ] {
            assert!(policy.allows(origin), "{origin:?}");
        }
    }

    #[test]
    fn empty_policy_allows_nothing() {
        let policy = origins(&[]);
        assert!(!policy.allows("https://example.com"));
        assert!(!policy.allows("null"));
    }

    #[test]
    fn exact_origin() {
        let policy = origins(&["https://App.Example.com/"]);
        for origin in [
            "https://app.example.com",
            "HTTPS://APP.EXAMPLE.COM",
            "https://app.example.com/",
        ] {
            assert!(policy.allows(origin), "{origin:?}");
        }
        for origin in [
            "http://app.example.com",
            "https://example.com",
            "https://x.app.example.com",
            "https://app.example.com.evil.org",
            "https://app.example.com:8443",
            "https://app.example.com/path",
            "https://app.example.comm",
            "wss://app.example.com",
            "app.example.com",
            "null",
            "",
        ] {
            assert!(!policy.allows(origin), "{origin:?}");
        }
    }

    #[test]
    fn ports() {
        let policy = origins(&["http://localhost:3000", "https://*.example.com:8443"]);
        assert!(policy.allows("http://localhost:3000"));
        assert!(policy.allows("http://localhost:03000"));
        assert!(!policy.allows("http://localhost"));
        assert!(!policy.allows("http://localhost:3001"));
        assert!(!policy.allows("http://localhost:"));
        assert!(!policy.allows("http://localhost:99999"));
        assert!(policy.allows("https://a.example.com:8443"));
        assert!(!policy.allows("https://a.example.com"));
        assert!(!policy.allows("https://a.example.com:443"));
    }

    #[test]
    fn default_ports_are_no_port() {
        let policy = origins(&["https://app.example.com:443", "http://*.example.com"]);
        assert!(policy.allows("https://app.example.com"));
        assert!(policy.allows("https://app.example.com:443"));
        assert!(policy.allows("HTTP://a.example.com:80"));
        assert!(!policy.allows("http://a.example.com:443"));
        assert!(!policy.allows("https://app.example.com:80"));
        // A wildcard of any scheme names no default port.
        assert!(!origins(&["*.example.com:443"]).allows("https://a.example.com"));
    }

    #[test]
    fn host_wildcard() {
        let policy = origins(&["*.example.com"]);
        for origin in [
            "https://app.example.com",
            "http://app.example.com",
            "https://a.b.c.example.com",
            "HTTPS://APP.EXAMPLE.COM",
            "custom-scheme://app.example.com",
        ] {
            assert!(policy.allows(origin), "{origin:?}");
        }
        for origin in [
            "https://example.com",
            "https://evil-example.com",
            "https://example.com.evil.org",
            "https://app.example.com.evil.org",
            "https://app.example.com:8443",
            "https://.example.com",
            "https://a..example.com",
            "https://app.example.co",
            "null",
        ] {
            assert!(!policy.allows(origin), "{origin:?}");
        }
    }

    #[test]
    fn scheme_fixed_wildcard() {
        let policy = origins(&["https://*.example.com"]);
        assert!(policy.allows("https://app.example.com"));
        assert!(policy.allows("https://deep.app.example.com/"));
        assert!(!policy.allows("http://app.example.com"));
        assert!(!policy.allows("https://example.com"));
        assert!(!policy.allows("https://evil-example.com"));
    }

    #[test]
    fn null_origin_only_with_star() {
        assert!(!origins(&["*.example.com", "https://example.com"]).allows("null"));
        assert!(origins(&["*"]).allows("null"));
        assert_eq!(
            OriginPolicy::new(&["null".to_string()]).unwrap_err(),
            AccessError::BadOrigin("null".into())
        );
    }

    #[test]
    fn ipv6_literal_origins() {
        let policy = origins(&["http://[::1]:8080", "http://[::1]"]);
        assert!(policy.allows("http://[::1]:8080"));
        assert!(policy.allows("http://[::1]"));
        assert!(!policy.allows("http://[::2]"));
        assert!(!policy.allows("http://[::1]:8081"));
    }

    #[test]
    fn bad_origin_patterns() {
        for pattern in [
            "",
            "example.com",
            "**",
            "*example.com",
            "*.",
            "*.*.example.com",
            "https://",
            "https://*",
            "https://a.*.example.com",
            "https://app.example.com/path",
            "https://app.example.com:0",
            "https://app.example.com:port",
            "https://user@app.example.com",
            "://app.example.com",
            "1http://app.example.com",
            "https://[not-ipv6]",
            "*.[::1]",
            "https://exa mple.com",
        ] {
            let patterns = vec![pattern.to_string()];
            assert_eq!(
                OriginPolicy::new(&patterns).unwrap_err(),
                AccessError::BadOrigin(pattern.into()),
                "{pattern:?}"
            );
        }
        let err = OriginPolicy::new(&["example.com".to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"example.com\" is not an origin, *.domain or *"
        );
    }

    #[test]
    fn cidrs_and_addresses() {
        let list = ips(&[
            "10.0.0.0/8",
            "192.168.1.7",
            "2001:db8::/32",
            "::1",
            " 172.16.0.1/12 ",
        ]);
        assert!(!list.is_empty());
        for allowed in [
            "10.0.0.1",
            "10.255.255.255",
            "192.168.1.7",
            "2001:db8::42",
            "::1",
            "172.31.0.9",
        ] {
            assert!(list.allows(ip(allowed)), "{allowed}");
        }
        for refused in [
            "11.0.0.1",
            "192.168.1.8",
            "2001:db9::1",
            "::2",
            "127.0.0.1",
            "172.32.0.1",
        ] {
            assert!(!list.allows(ip(refused)), "{refused}");
        }
    }

    #[test]
    fn ipv4_mapped_peers_match_as_ipv4() {
        let list = ips(&["10.0.0.0/8", "::ffff:192.0.2.0/120"]);
        assert!(list.allows(ip("::ffff:10.1.2.3")));
        assert!(!list.allows(ip("::ffff:11.1.2.3")));
        // An IPv6 entry written in mapped form still matches the mapped peer itself.
        assert!(list.allows(ip("::ffff:192.0.2.5")));
        // An IPv4-compatible (not mapped) address is not IPv4.
        assert!(!list.allows(ip("::10.1.2.3")));
        // Bare IPv4 peers do not match IPv6 entries.
        assert!(!ips(&["::/0"]).allows(ip("10.0.0.1")));
    }

    #[test]
    fn empty_allowlist_allows_everyone() {
        let list = ips(&[]);
        assert!(list.is_empty());
        assert!(list.allows(ip("203.0.113.9")));
        assert!(list.allows(ip("2001:db8::1")));
    }

    #[test]
    fn bad_allowlist_entries() {
        for entry in [
            "",
            "10.0.0.0/33",
            "2001:db8::/129",
            "localhost",
            "10.0.0",
            "10.0.0.0/",
            "1.2.3.4/8/8",
        ] {
            let entries = vec![entry.to_string()];
            assert_eq!(
                IpAllowlist::new(&entries).unwrap_err(),
                AccessError::BadCidr(entry.into()),
                "{entry:?}"
            );
        }
        let err = IpAllowlist::new(&["nope".to_string()]).unwrap_err();
        assert_eq!(err.to_string(), "\"nope\" is not an IP address or CIDR");
    }
}
