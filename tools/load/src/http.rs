//! One plain HTTP/1.1 exchange on a fresh connection (`Connection: close`),
//! bounded in time and size: what making realtime rooms and sending OCPP
//! commands through an admin API need. Never keeps a connection or retries.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Largest answer read.
const MAX_RESPONSE: usize = 64 * 1024;

/// Why an exchange brought no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("sending: {0}")]
    Send(std::io::Error),
    #[error("reading: {0}")]
    Read(std::io::Error),
    #[error("an answer over {MAX_RESPONSE} bytes")]
    TooLarge,
    #[error("a malformed answer ({0})")]
    Malformed(httparse::Error),
    #[error("the server closed without an answer")]
    NoAnswer,
}

impl HttpError {
    /// A short stable name for counting failures by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            HttpError::Connect(_) => "connect",
            HttpError::Timeout(_) => "timeout",
            HttpError::Send(_) | HttpError::Read(_) => "io",
            HttpError::TooLarge => "too_large",
            HttpError::Malformed(_) => "malformed",
            HttpError::NoAnswer => "closed",
        }
    }
}

/// A request with a JSON body on a connection of its own: `METHOD path` to
/// `host`, with `Authorization: Bearer` when a token is given.
pub fn json_request(
    method: &str,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Vec<u8> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{auth}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends `request` on a new connection to `addr` and reads the answer to
/// its end, all within `timeout`: the status and the body.
pub fn exchange(
    addr: SocketAddr,
    request: &[u8],
    timeout: Duration,
) -> Result<(u16, Vec<u8>), HttpError> {
    let start = Instant::now();
    let mut sock = TcpStream::connect_timeout(&addr, timeout).map_err(HttpError::Connect)?;
    let left = || {
        timeout
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or(HttpError::Timeout(timeout))
    };
    sock.set_write_timeout(Some(left()?))
        .and_then(|()| sock.write_all(request))
        .map_err(HttpError::Send)?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(answer) = complete(&response)? {
            return Ok(answer);
        }
        sock.set_read_timeout(Some(left()?))
            .map_err(HttpError::Read)?;
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if response.len() + n > MAX_RESPONSE => return Err(HttpError::TooLarge),
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HttpError::Timeout(timeout))
            }
            Err(e) => return Err(HttpError::Read(e)),
        }
    }
    // The server closed: whatever came is the whole answer.
    let head = parse_head(&response)?.ok_or(HttpError::NoAnswer)?;
    Ok((head.status, response[head.len..].to_vec()))
}

/// The status and body once `response` holds all of its body (by
/// `Content-Length`); `None` while more is to come, or when only the end of
/// the connection can tell.
fn complete(response: &[u8]) -> Result<Option<(u16, Vec<u8>)>, HttpError> {
    Ok(match parse_head(response)? {
        Some(Head {
            status,
            len,
            content_length: Some(n),
        }) if response.len() >= len + n => Some((status, response[len..len + n].to_vec())),
        _ => None,
    })
}

/// A response head.
struct Head {
    status: u16,
    /// Bytes of the head.
    len: usize,
    content_length: Option<usize>,
}

/// The head of `response`, once it is complete.
fn parse_head(response: &[u8]) -> Result<Option<Head>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(response) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HttpError::Malformed(e)),
    };
    let content_length = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok());
    Ok(Some(Head {
        status: resp.code.unwrap_or(0),
        len,
        content_length,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_json_requests() {
        let r = json_request("POST", "127.0.0.1:9", "/a/b", Some("t"), "{}");
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "POST /a/b HTTP/1.1\r\nHost: 127.0.0.1:9\r\nContent-Type: application/json\r\n\
             Content-Length: 2\r\nAuthorization: Bearer t\r\nConnection: close\r\n\r\n{}"
        );
        let r = json_request("POST", "h", "/", None, "");
        assert!(!String::from_utf8(r).unwrap().contains("Authorization"));
    }

    #[test]
    fn reads_answers_by_length_or_to_the_end() {
        let done = complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!(done, Some((200, b"{}".to_vec())));
        assert_eq!(
            complete(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{}").unwrap(),
            None
        );
        assert_eq!(complete(b"HTTP/1.1 200 OK\r\n\r\nbody").unwrap(), None);
        assert!(matches!(
            complete(b"nonsense\r\n\r\n"),
            Err(HttpError::Malformed(_))
        ));
    }
}
