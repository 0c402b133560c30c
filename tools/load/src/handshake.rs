//! The client side of the opening handshake, sans IO: writes the upgrade
//! request and checks the server's answer (status 101, `Upgrade`,
//! `Connection` and `Sec-WebSocket-Accept` from ringgate's `accept_key`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ringgate::protocol::handshake::accept_key;

/// Largest response head accepted.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// How an upgrade answer was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeError {
    /// A well-formed response with a status other than 101.
    Status(u16),
    /// Malformed, oversized, or missing/wrong upgrade headers.
    Bad(&'static str),
}

/// Appends the upgrade request and returns the `Sec-WebSocket-Key` sent,
/// made from 16 bytes of `nonce`.
pub fn write_request(out: &mut Vec<u8>, host: &str, target: &str, nonce: [u8; 16]) -> String {
    let key = STANDARD.encode(nonce);
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(
        b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
    );
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    key
}

/// Checks a response head in `buf` for the request that sent `key`.
/// `Ok(None)`: incomplete, read more. `Ok(Some(n))`: accepted, the head was
/// `n` bytes and anything after it is WebSocket frames.
pub fn check_response(buf: &[u8], key: &str) -> Result<Option<usize>, HandshakeError> {
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
    let expected = accept_key(key);
    let mut accepts = values(headers, "sec-websocket-accept");
    match (accepts.next(), accepts.next()) {
        (Some(v), None) if v.trim_ascii() == expected.as_bytes() => Ok(Some(n)),
        _ => Err(HandshakeError::Bad("wrong Sec-WebSocket-Accept")),
    }
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

    fn response(accept: &str) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
             Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
    }

    #[test]
    fn request_shape() {
        let mut out = Vec::new();
        let key = write_request(&mut out, "127.0.0.1:9", "/echo", [0; 16]);
        assert_eq!(key, "AAAAAAAAAAAAAAAAAAAAAA==");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("GET /echo HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn accepts_the_rfc_example() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let head = response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let mut buf = head.clone().into_bytes();
        buf.extend_from_slice(&[0x81, 0]);
        assert_eq!(check_response(&buf, key), Ok(Some(head.len())));
        for cut in 0..head.len() {
            assert_eq!(check_response(&buf[..cut], key), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn refuses_bad_answers() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let wrong = response("AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert!(matches!(
            check_response(wrong.as_bytes(), key),
            Err(HandshakeError::Bad(_))
        ));
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            check_response(not_found, key),
            Err(HandshakeError::Status(404))
        );
        let no_upgrade = b"HTTP/1.1 101 OK\r\nConnection: Upgrade\r\n\r\n";
        assert!(check_response(no_upgrade, key).is_err());
        assert!(check_response(b"garbage\r\n\r\n", key).is_err());
        let huge = vec![b'a'; MAX_RESPONSE_HEAD + 1];
        assert!(check_response(&huge, key).is_err());
    }
}
