//! Target URLs: parses `ws://host[:port][/path][?query]` into the socket
//! address to connect to, the `Host` header and the request target. Owns the
//! loopback check that keeps a run on this machine unless the user opts out,
//! and adds a query parameter (a fanout publisher's `role=pub`) or a path
//! segment (an OCPP charge point's id).

use std::net::{SocketAddr, ToSocketAddrs};

/// A parsed `ws://` URL, resolved to one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The `Host` header value (`host` or `host:port`, as written).
    pub host_header: String,
    /// The request target: path plus query, at least `/`.
    pub target: String,
}

/// Parses and resolves `url`. `wss://` is refused: the client speaks no TLS.
pub fn parse(url: &str) -> Result<WsUrl, String> {
    let rest = if let Some(rest) = strip_prefix_ci(url, "ws://") {
        rest
    } else if strip_prefix_ci(url, "wss://").is_some() {
        return Err("wss:// is not supported (no TLS in this client); use ws://".into());
    } else {
        return Err(format!("{url:?}: expected a ws:// URL"));
    };
    let (authority, target) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_owned()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_owned()),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url:?}: expected ws://host[:port]/path"));
    }
    let (host, port) = split_host_port(authority)?;
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host:?} resolves to no address"))?;
    Ok(WsUrl {
        addr,
        host_header: authority.to_owned(),
        target,
    })
}

/// Splits `host[:port]` (IPv6 in brackets); the port defaults to 80.
fn split_host_port(authority: &str) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{authority:?}: unclosed '['"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("{authority:?}: junk after ']'")),
            },
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{authority:?}: empty host"));
    }
    let port = match port {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("{authority:?}: bad port {p:?}"))?,
    };
    Ok((host, port))
}

/// `target` with `param` (`name=value`) added to its query string.
pub fn add_query_param(target: &str, param: &str) -> String {
    match target.strip_suffix(['?', '&']) {
        Some(base) if base.contains('?') => format!("{base}&{param}"),
        Some(base) => format!("{base}?{param}"),
        None if target.contains('?') => format!("{target}&{param}"),
        None => format!("{target}?{param}"),
    }
}

/// `target` with `segment` (already percent-encoded) added to its path,
/// before any query: `/ocpp?v=1` and `cp-1` give `/ocpp/cp-1?v=1`.
pub fn add_path_segment(target: &str, segment: &str) -> String {
    let (path, query) = match target.find('?') {
        Some(i) => target.split_at(i),
        None => (target, ""),
    };
    format!("{}/{segment}{query}", path.trim_end_matches('/'))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_urls() {
        let u = parse("ws://127.0.0.1:9001/echo?x=1").unwrap();
        assert_eq!(u.addr, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(u.host_header, "127.0.0.1:9001");
        assert_eq!(u.target, "/echo?x=1");
    }

    #[test]
    fn defaults_path_and_port() {
        let u = parse("WS://127.0.0.2").unwrap();
        assert_eq!(u.addr, "127.0.0.2:80".parse().unwrap());
        assert_eq!(u.target, "/");
        assert_eq!(parse("ws://127.0.0.1:1?q").unwrap().target, "/?q");
    }

    #[test]
    fn ipv6_and_names() {
        let u = parse("ws://[::1]:8080/a").unwrap();
        assert_eq!(u.addr, "[::1]:8080".parse().unwrap());
        assert_eq!(u.host_header, "[::1]:8080");
        assert!(parse("ws://localhost:8080/")
            .unwrap()
            .addr
            .ip()
            .is_loopback());
    }

    #[test]
    fn adds_query_params() {
        for (target, want) in [
            ("/pubsub", "/pubsub?role=pub"),
            ("/pubsub?", "/pubsub?role=pub"),
            ("/pubsub?channel=bench", "/pubsub?channel=bench&role=pub"),
            ("/pubsub?channel=bench&", "/pubsub?channel=bench&role=pub"),
            ("/", "/?role=pub"),
        ] {
            assert_eq!(add_query_param(target, "role=pub"), want, "{target}");
        }
    }

    #[test]
    fn adds_path_segments() {
        for (target, want) in [
            ("/ocpp", "/ocpp/cp-1"),
            ("/ocpp/", "/ocpp/cp-1"),
            ("/", "/cp-1"),
            ("/ocpp?v=1", "/ocpp/cp-1?v=1"),
            ("/?v=1", "/cp-1?v=1"),
        ] {
            assert_eq!(add_path_segment(target, "cp-1"), want, "{target}");
        }
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "http://127.0.0.1/",
            "wss://127.0.0.1/",
            "ws://",
            "ws:///echo",
            "ws://127.0.0.1:notaport/",
            "ws://127.0.0.1:70000/",
            "ws://[::1/",
            "ws://user@127.0.0.1/",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
