//! The client side of the opening handshake, sans IO: writes the upgrade
//! request (with any extra headers a mode needs, such as a subprotocol
//! offer) and checks the server's answer (status 101, `Upgrade`,
//! `Connection`, `Sec-WebSocket-Accept` from ringgate's `accept_key`, the
//! subprotocol when one was offered, and the permessage-deflate answer when
//! it was offered, read by `deflate`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ringgate::protocol::handshake::accept_key;

use crate::deflate::{self, Agreed};

/// Largest response head accepted.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// How an upgrade answer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// A well-formed response with a status other than 101.
    Status(u16),
    /// Malformed, oversized, or missing/wrong upgrade headers.
    Bad(&'static str),
    /// A 101 that did not select the one subprotocol offered.
    Subprotocol,
    /// A 101 whose extensions answer no offer of ours.
    Extension(&'static str),
}

/// What the request offered, which the answer is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Offered<'a> {
    /// The `Sec-WebSocket-Key` sent.
    pub key: &'a str,
    /// The one subprotocol offered, which the server must select.
    pub subprotocol: Option<&'a str>,
    /// permessage-deflate was offered ([`deflate::OFFER`]).
    pub deflate: bool,
}

/// An accepted answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upgraded {
    /// Bytes of the response head; anything after it is WebSocket frames.
    pub head_len: usize,
    /// What the answer agreed to, when permessage-deflate was offered and
    /// agreed.
    pub deflate: Option<Agreed>,
}

/// Appends the upgrade request, with `headers` (name, value) after the
/// usual ones, and returns the `Sec-WebSocket-Key` sent, made from 16 bytes
/// of `nonce`.
pub fn write_request(
    out: &mut Vec<u8>,
    host: &str,
    target: &str,
    headers: &[(&str, &str)],
    nonce: [u8; 16],
) -> String {
    let key = STANDARD.encode(nonce);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(
        b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
    );
    out.extend_from_slice(key.as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
    key
}

/// Checks a response head in `buf` for the request that `offered` describes.
/// `Ok(None)`: incomplete, read more. `Ok(Some(_))`: accepted.
pub fn check_response(
    buf: &[u8],
    offered: Offered<'_>,
) -> Result<Option<Upgraded>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
            return Err(HandshakeError::Bad("response head too large"))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HandshakeError::Bad("malformed response")),
    };
    let status = resp.code.unwrap_or(0);
    if status != 101 {
        return Err(HandshakeError::Status(status));
    }
    let headers: &[httparse::Header] = resp.headers;
    let has_token = |name: &str, token: &str| {
        values(headers, name).any(|v| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
        })
    };
    if !has_token("upgrade", "websocket") {
        return Err(HandshakeError::Bad("no Upgrade: websocket"));
    }
    if !has_token("connection", "upgrade") {
        return Err(HandshakeError::Bad("no Connection: upgrade"));
    }
    let expected = accept_key(offered.key);
    let mut accepts = values(headers, "sec-websocket-accept");
    match (accepts.next(), accepts.next()) {
        (Some(v), None) if v.trim_ascii() == expected.as_bytes() => {}
        _ => return Err(HandshakeError::Bad("wrong Sec-WebSocket-Accept")),
    }
    if let Some(offered) = offered.subprotocol {
        let mut selected = values(headers, "sec-websocket-protocol");
        match (selected.next(), selected.next()) {
            (Some(v), None) if v.trim_ascii() == offered.as_bytes() => {}
            _ => return Err(HandshakeError::Subprotocol),
        }
    }
    // Without an offer, an extension in the answer is not looked at: the
    // frames' RSV bits are refused should the server use it.
    let deflate = match offered.deflate {
        true => deflate::parse_answer(values(headers, "sec-websocket-extensions"))
            .map_err(HandshakeError::Extension)?,
        false => None,
    };
    Ok(Some(Upgraded {
        head_len: n,
        deflate,
    }))
}

/// The values of every header called `name`.
fn values<'a>(
    headers: &'a [httparse::Header<'a>],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head length of an accepted answer, nothing offered but `subprotocol`.
    fn check(
        buf: &[u8],
        key: &str,
        subprotocol: Option<&str>,
    ) -> Result<Option<usize>, HandshakeError> {
        let offered = Offered {
            key,
            subprotocol,
            deflate: false,
        };
        check_response(buf, offered).map(|up| up.map(|u| u.head_len))
    }

    fn response(accept: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
    }

    #[test]
    fn request_shape() {
        let mut out = Vec::new();
        let key = write_request(&mut out, "127.0.0.1:9", "/echo", &[], [0; 16]);
        assert_eq!(key, "AAAAAAAAAAAAAAAAAAAAAA==");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("GET /echo HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        let mut out = Vec::new();
        let headers = [("Sec-WebSocket-Protocol", "ocpp1.6"), ("X-A", "b")];
        write_request(&mut out, "h", "/ocpp/cp-1", &headers, [0; 16]);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("==\r\nSec-WebSocket-Protocol: ocpp1.6\r\nX-A: b\r\n\r\n"));
    }

    #[test]
    fn accepts_the_rfc_example() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let head = response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let mut buf = head.clone().into_bytes();
        buf.extend_from_slice(&[0x81, 0]);
        assert_eq!(check(&buf, key, None), Ok(Some(head.len())));
        for cut in 0..head.len() {
            assert_eq!(check(&buf[..cut], key, None), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn refuses_bad_answers() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let wrong = response("AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert!(matches!(
            check(wrong.as_bytes(), key, None),
            Err(HandshakeError::Bad(_))
        ));
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            check(not_found, key, None),
            Err(HandshakeError::Status(404))
        );
        let no_upgrade = b"HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n\r\n";
        assert!(check(no_upgrade, key, None).is_err());
        assert!(check(b"garbage\r\n\r\n", key, None).is_err());
        let huge = vec![b'a'; MAX_RESPONSE_HEAD + 1];
        assert!(check(&huge, key, None).is_err());
    }

    #[test]
    fn checks_the_subprotocol_offered() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let plain = response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let with = |proto: &str| {
            plain.replace(
                "\r\n\r\n",
                &format!("\r\nSec-WebSocket-Protocol: {proto}\r\n\r\n"),
            )
        };
        let ok = with("ocpp1.6");
        assert_eq!(
            check(ok.as_bytes(), key, Some("ocpp1.6")),
            Ok(Some(ok.len()))
        );
        assert_eq!(check(ok.as_bytes(), key, None), Ok(Some(ok.len())));
        for bad in [plain.clone(), with("ocpp2.0.1"), with("ocpp1.6, ocpp2.0.1")] {
            assert_eq!(
                check(bad.as_bytes(), key, Some("ocpp1.6")),
                Err(HandshakeError::Subprotocol),
                "{bad}"
            );
        }
    }

    #[test]
    fn reads_the_deflate_answer_when_offered() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let plain = response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let with = |ext: &str| {
            plain.replace(
                "\r\n\r\n",
                &format!("\r\nSec-WebSocket-Extensions: {ext}\r\n\r\n"),
            )
        };
        let offered = |deflate| Offered {
            key,
            subprotocol: None,
            deflate,
        };
        let shared =
            with("permessage-deflate; server_no_context_takeover; client_no_context_takeover");
        let up = check_response(shared.as_bytes(), offered(true))
            .unwrap()
            .unwrap();
        assert_eq!(up.head_len, shared.len());
        let agreed = up.deflate.expect("agreed");
        assert!(agreed.server_no_context_takeover && agreed.client_no_context_takeover);
        assert_eq!(
            check_response(plain.as_bytes(), offered(true)),
            Ok(Some(Upgraded {
                head_len: plain.len(),
                deflate: None
            })),
            "declined: uncompressed"
        );
        assert_eq!(
            check_response(shared.as_bytes(), offered(false))
                .unwrap()
                .unwrap()
                .deflate,
            None,
            "not offered: not read"
        );
        for bad in ["permessage-deflate; foo", "x-webkit-deflate-frame"] {
            assert!(matches!(
                check_response(with(bad).as_bytes(), offered(true)),
                Err(HandshakeError::Extension(_))
            ));
        }
    }
}
