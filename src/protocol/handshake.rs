//! The RFC 6455 section 4.2 opening handshake on a parsed `RequestHead`: validation, the
//! `Sec-WebSocket-Accept` key, and the 101 or error response bytes. Sans-IO and allocation-lean
//! (it runs per connection); it never panics and never echoes unchecked bytes into a response.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};
use thiserror::Error;

use super::http::{self, RequestHead};

/// The GUID RFC 6455 appends to the client key before hashing.
const WEBSOCKET_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// What a valid upgrade request offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeInfo {
    /// `Sec-WebSocket-Key`, trimmed; input to `accept_key`.
    pub key: String,
    /// `Sec-WebSocket-Protocol` offers in order, split on commas, trimmed, across repeated headers.
    pub protocols: Vec<String>,
    /// Raw `Sec-WebSocket-Extensions` offers (one per comma-separated entry, parameters kept).
    pub extensions: Vec<String>,
    pub origin: Option<String>,
}

/// Why an upgrade request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandshakeError {
    #[error("WebSocket upgrade requires the GET method")]
    MethodNotAllowed,
    #[error("WebSocket upgrade requires HTTP/1.1 or later")]
    HttpVersion,
    #[error("missing Host header")]
    MissingHost,
    #[error("Upgrade header must contain websocket")]
    NotUpgrade,
    #[error("Connection header must contain upgrade")]
    ConnectionNotUpgrade,
    #[error("unsupported Sec-WebSocket-Version; only 13 is supported")]
    UnsupportedVersion,
    #[error("missing Sec-WebSocket-Key header")]
    MissingKey,
    #[error("Sec-WebSocket-Key must be base64 of exactly 16 bytes")]
    InvalidKey,
}

impl HandshakeError {
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::MethodNotAllowed => 405,
            HandshakeError::UnsupportedVersion => 426,
            HandshakeError::HttpVersion
            | HandshakeError::MissingHost
            | HandshakeError::NotUpgrade
            | HandshakeError::ConnectionNotUpgrade
            | HandshakeError::MissingKey
            | HandshakeError::InvalidKey => 400,
        }
    }

    /// Short machine code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            HandshakeError::MethodNotAllowed => "method_not_allowed",
            HandshakeError::HttpVersion => "unsupported_http_version",
            HandshakeError::MissingHost => "missing_host",
            HandshakeError::NotUpgrade => "not_websocket_upgrade",
            HandshakeError::ConnectionNotUpgrade => "connection_not_upgrade",
            HandshakeError::UnsupportedVersion => "unsupported_version",
            HandshakeError::MissingKey => "missing_key",
            HandshakeError::InvalidKey => "invalid_key",
        }
    }

    /// Headers the error response must carry (RFC 9110 `Allow`, RFC 6455 version advertisement).
    pub fn extra_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            HandshakeError::MethodNotAllowed => &[("Allow", "GET")],
            HandshakeError::UnsupportedVersion => &[("Sec-WebSocket-Version", "13")],
            _ => &[],
        }
    }
}

/// True when the request asks for a WebSocket (an `Upgrade` header holding the token
/// `websocket`, case-insensitive); such requests go to `validate_upgrade`, others to plain HTTP.
pub fn wants_upgrade(req: &RequestHead) -> bool {
    req.has_token("upgrade", "websocket")
}

/// Full RFC 6455 4.2.1 validation, checked in this order: GET; HTTP/1.1 or later; Host present;
/// Upgrade has token websocket; Connection has token upgrade; Sec-WebSocket-Version exactly 13
/// (absent or other is `UnsupportedVersion`); Sec-WebSocket-Key present and base64 of 16 bytes.
pub fn validate_upgrade(req: &RequestHead) -> Result<UpgradeInfo, HandshakeError> {
    if req.method != "GET" {
        return Err(HandshakeError::MethodNotAllowed);
    }
    if req.minor_version < 1 {
        return Err(HandshakeError::HttpVersion);
    }
    if req.header("host").is_none() {
        return Err(HandshakeError::MissingHost);
    }
    if !req.has_token("upgrade", "websocket") {
        return Err(HandshakeError::NotUpgrade);
    }
    if !req.has_token("connection", "upgrade") {
        return Err(HandshakeError::ConnectionNotUpgrade);
    }
    if req.header_str("sec-websocket-version") != Some("13") {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = req
        .header("sec-websocket-key")
        .ok_or(HandshakeError::MissingKey)?;
    let key = std::str::from_utf8(key.trim_ascii())
        .ok()
        .filter(|key| is_valid_key(key))
        .ok_or(HandshakeError::InvalidKey)?;
    Ok(UpgradeInfo {
        key: key.to_owned(),
        protocols: list_values(req, "sec-websocket-protocol"),
        extensions: list_values(req, "sec-websocket-extensions"),
        // Lossy rather than dropped: a non-UTF-8 Origin must still fail an origin check.
        origin: req
            .header("origin")
            .map(|v| String::from_utf8_lossy(v.trim_ascii()).into_owned()),
    })
}

/// Base64 (padded, canonical) of exactly 16 bytes: 24 characters ending in "==".
fn is_valid_key(key: &str) -> bool {
    // 18 bytes is base64's decode estimate for 24 characters, so decode_slice never refuses it.
    let mut decoded = [0u8; 18];
    key.len() == 24 && matches!(STANDARD.decode_slice(key, &mut decoded), Ok(16))
}

/// Every comma-separated, trimmed, non-empty entry of every header `name`, in order.
/// Entries that are not UTF-8 cannot be valid tokens and are skipped.
fn list_values(req: &RequestHead, name: &str) -> Vec<String> {
    req.headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| std::str::from_utf8(entry).ok())
        .map(str::to_owned)
        .collect()
}

/// `base64(sha1(key + GUID))`, the `Sec-WebSocket-Accept` value.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(WEBSOCKET_GUID);
    let digest = sha.finalize();
    let mut accept = String::with_capacity(28);
    STANDARD.encode_string(digest, &mut accept);
    accept
}

/// Appends the 101 response: status line, `Upgrade: websocket`, `Connection: Upgrade`,
/// `Sec-WebSocket-Accept`, `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions` if
/// chosen, then `extra`, blank line.
pub fn write_switching_protocols(
    out: &mut Vec<u8>,
    accept: &str,
    protocol: Option<&str>,
    extensions: Option<&str>,
    extra: &[(String, String)],
) {
    http::push_status_line(out, 101);
    out.extend_from_slice(b"Upgrade: websocket\r\nConnection: Upgrade\r\n");
    http::push_header(out, "Sec-WebSocket-Accept", accept);
    if let Some(protocol) = protocol {
        http::push_header(out, "Sec-WebSocket-Protocol", protocol);
    }
    if let Some(extensions) = extensions {
        http::push_header(out, "Sec-WebSocket-Extensions", extensions);
    }
    for (name, value) in extra {
        http::push_header(out, name, value);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends the JSON error response for `err`: its status, code, Display message and extra headers.
pub fn write_handshake_error(out: &mut Vec<u8>, err: &HandshakeError) {
    http::write_error(
        out,
        err.status(),
        err.code(),
        &err.to_string(),
        err.extra_headers(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::http::parse_request;

    const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn head(raw: &str) -> RequestHead {
        parse_request(raw.as_bytes(), 8192).unwrap().unwrap().0
    }

    /// A valid upgrade request with `line` as its request line and `extra` headers appended.
    fn upgrade(line: &str, extra: &str) -> String {
        format!(
            "{line}\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    /// The valid request with header `name` removed, or replaced by `name: value`.
    fn with_header(name: &str, value: Option<&str>) -> RequestHead {
        let mut req = head(&upgrade("GET /ws HTTP/1.1", ""));
        req.headers.retain(|h| !h.name.eq_ignore_ascii_case(name));
        if let Some(value) = value {
            req.headers.push(http::Header {
                name: name.to_owned(),
                value: value.as_bytes().to_vec(),
            });
        }
        req
    }

    #[test]
    fn rfc_6455_accept_key() {
        assert_eq!(accept_key(RFC_KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn valid_upgrade_collects_offers() {
        let req = head(&upgrade(
            "GET /ws?token=t HTTP/1.1",
            "Sec-WebSocket-Protocol: chat, superchat\r\n\
             Sec-WebSocket-Protocol: ,v2.json ,\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n\
             Origin: https://example.com\r\n",
        ));
        assert!(wants_upgrade(&req));
        let info = validate_upgrade(&req).unwrap();
        assert_eq!(
            info,
            UpgradeInfo {
                key: RFC_KEY.to_owned(),
                protocols: vec!["chat".into(), "superchat".into(), "v2.json".into()],
                extensions: vec![
                    "permessage-deflate; client_max_window_bits".into(),
                    "x-foo".into()
                ],
                origin: Some("https://example.com".into()),
            }
        );
    }

    #[test]
    fn minimal_upgrade_has_no_offers() {
        let info = validate_upgrade(&head(&upgrade("GET / HTTP/1.1", ""))).unwrap();
        assert!(info.protocols.is_empty() && info.extensions.is_empty());
        assert_eq!(info.origin, None);
    }

    #[test]
    fn upgrade_and_connection_are_case_insensitive_token_lists() {
        let req = head(
            "GET / HTTP/1.1\r\nHost: h\r\nupgrade: WebSocket\r\n\
             Connection: keep-alive, Upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             SEC-WEBSOCKET-VERSION:  13 \r\n\r\n",
        );
        assert!(wants_upgrade(&req));
        assert!(validate_upgrade(&req).is_ok());
        let split = head(
            "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nUpgrade: foo, WEBSOCKET\r\n\
             Connection: keep-alive\r\nconnection: UPGRADE\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        );
        assert!(validate_upgrade(&split).is_ok());
        assert!(!wants_upgrade(&head("GET / HTTP/1.1\r\nHost: h\r\n\r\n")));
        assert!(!wants_upgrade(&with_header("upgrade", Some("websockets"))));
    }

    #[test]
    fn each_error_with_status_and_extra_headers() {
        let cases = [
            (
                head(&upgrade("POST /ws HTTP/1.1", "")),
                HandshakeError::MethodNotAllowed,
                405,
            ),
            (
                head(&upgrade("get /ws HTTP/1.1", "")),
                HandshakeError::MethodNotAllowed,
                405,
            ),
            (
                head(&upgrade("GET /ws HTTP/1.0", "")),
                HandshakeError::HttpVersion,
                400,
            ),
            (with_header("host", None), HandshakeError::MissingHost, 400),
            (
                with_header("upgrade", None),
                HandshakeError::NotUpgrade,
                400,
            ),
            (
                with_header("upgrade", Some("h2c")),
                HandshakeError::NotUpgrade,
                400,
            ),
            (
                with_header("connection", Some("keep-alive")),
                HandshakeError::ConnectionNotUpgrade,
                400,
            ),
            (
                with_header("sec-websocket-version", None),
                HandshakeError::UnsupportedVersion,
                426,
            ),
            (
                with_header("sec-websocket-version", Some("8")),
                HandshakeError::UnsupportedVersion,
                426,
            ),
            (
                with_header("sec-websocket-key", None),
                HandshakeError::MissingKey,
                400,
            ),
            (
                with_header("sec-websocket-key", Some("")),
                HandshakeError::InvalidKey,
                400,
            ),
        ];
        for (req, err, status) in cases {
            assert_eq!(validate_upgrade(&req), Err(err.clone()));
            assert_eq!(err.status(), status, "{err:?}");
        }
        assert_eq!(
            HandshakeError::UnsupportedVersion.extra_headers(),
            &[("Sec-WebSocket-Version", "13")]
        );
        assert_eq!(
            HandshakeError::MethodNotAllowed.extra_headers(),
            &[("Allow", "GET")]
        );
        assert!(HandshakeError::InvalidKey.extra_headers().is_empty());
    }

    #[test]
    fn key_must_be_base64_of_16_bytes() {
        for bad in [
            "dGhlIHNhbXBsZSBub25jZQ",     // unpadded
            "dGhlIHNhbXBsZSBub25jZQ=",    // half padded
            "dGhlIHNhbXBsZSBub25jZR==",   // non-zero trailing bits
            "dGhlIHNhbXBsZSBub25jZXg=",   // 17 bytes
            "dGhlIHNhbXBsZSBub25jZXh5",   // 18 bytes
            "dGhlIHNhbXBsZSBub2!jZQ==",   // not base64
            "dGhlIHNhbXBsZSBub25jZQ==AA", // trailing data
            "dGhl",
        ] {
            let req = with_header("sec-websocket-key", Some(bad));
            assert_eq!(
                validate_upgrade(&req),
                Err(HandshakeError::InvalidKey),
                "{bad}"
            );
        }
        let mut req = with_header("sec-websocket-key", None);
        req.headers.push(http::Header {
            name: "Sec-WebSocket-Key".into(),
            value: b"\xff\xfe".to_vec(),
        });
        assert_eq!(validate_upgrade(&req), Err(HandshakeError::InvalidKey));
        let other = "AAAAAAAAAAAAAAAAAAAAAA==";
        let info = validate_upgrade(&with_header("sec-websocket-key", Some(other))).unwrap();
        assert_eq!(info.key, other);
    }

    #[test]
    fn non_utf8_origin_is_kept_lossily() {
        let mut req = with_header("origin", None);
        req.headers.push(http::Header {
            name: "Origin".into(),
            value: b"https://\xffevil".to_vec(),
        });
        let info = validate_upgrade(&req).unwrap();
        assert_eq!(info.origin.as_deref(), Some("https://\u{fffd}evil"));
    }

    #[test]
    fn switching_protocols_layout() {
        let mut out = b"x".to_vec();
        let extra = [("X-Server".to_owned(), "ringgate".to_owned())];
        write_switching_protocols(
            &mut out,
            &accept_key(RFC_KEY),
            Some("chat"),
            Some("permessage-deflate"),
            &extra,
        );
        assert_eq!(
            out,
            b"xHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
              Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\
              X-Server: ringgate\r\n\r\n"
        );
        out.clear();
        write_switching_protocols(&mut out, "abc", None, None, &[]);
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: abc\r\n\r\n"
        );
    }

    #[test]
    fn handshake_error_responses() {
        let mut out = Vec::new();
        write_handshake_error(&mut out, &HandshakeError::UnsupportedVersion);
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "unsupported_version");
        assert_eq!(
            json["error"]["message"],
            HandshakeError::UnsupportedVersion.to_string()
        );

        let mut out = Vec::new();
        write_handshake_error(&mut out, &HandshakeError::MethodNotAllowed);
        assert!(out.starts_with(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n"));
    }

    #[test]
    fn codes_are_distinct() {
        let all = [
            HandshakeError::MethodNotAllowed,
            HandshakeError::HttpVersion,
            HandshakeError::MissingHost,
            HandshakeError::NotUpgrade,
            HandshakeError::ConnectionNotUpgrade,
            HandshakeError::UnsupportedVersion,
            HandshakeError::MissingKey,
            HandshakeError::InvalidKey,
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(HandshakeError::code).collect();
        assert_eq!(codes.len(), all.len());
    }
}
