//! Realtime's rooms, made before anyone connects: one `POST {path}/rooms`
//! per room over plain HTTP/1.1 (a fresh connection each, `Connection:
//! close`), with `Authorization: Bearer` when an admin token is given.
//! 201 is a room created, 409 one that exists already; any other answer, or
//! none, stops the run with a message that says which room and why.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::realtime::{room_name, rooms_path, RealtimePlan};
use crate::url::WsUrl;

/// Time allowed for one request, connect to the end of the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read.
const MAX_RESPONSE: usize = 64 * 1024;
/// Most bytes of an unexpected answer's body quoted in the error.
const QUOTED: usize = 200;

/// What making the rooms did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RoomSetup {
    /// Answered 201.
    pub created: u32,
    /// Answered 409: there already.
    pub existing: u32,
}

/// Makes rooms `load-0`.. of `rt` on the server of `url`.
pub fn create_rooms(url: &WsUrl, rt: &RealtimePlan) -> Result<RoomSetup, String> {
    let path = rooms_path(&url.target);
    let token = rt.admin_token.as_ref().map(|t| t.0.as_str());
    let mut setup = RoomSetup::default();
    for r in 0..rt.rooms {
        let room = room_name(r);
        let request = room_request(&url.host_header, &path, &room, token);
        let (status, body) = exchange(url.addr, &request)
            .map_err(|e| format!("creating room {room}: POST {path} to {}: {e}", url.addr))?;
        match status {
            201 => setup.created += 1,
            409 => setup.existing += 1,
            _ => {
                let body = String::from_utf8_lossy(&body[..body.len().min(QUOTED)]);
                let hint = match status {
                    401 | 403 => " (an admin route: give --admin-token or ADMIN_TOKEN)",
                    404 | 405 => " (no room API there: is --url the realtime service's /ws?)",
                    _ => "",
                };
                return Err(format!(
                    "creating room {room}: POST {path} answered {status}{hint}: {}",
                    body.trim()
                ));
            }
        }
    }
    Ok(setup)
}

/// The request that creates `room`.
fn room_request(host: &str, path: &str, room: &str, token: Option<&str>) -> Vec<u8> {
    let body = serde_json::json!({"id": room, "name": room, "description": "load"}).to_string();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{auth}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends `request` on a new connection and reads the answer to its end:
/// the status and the body.
fn exchange(addr: SocketAddr, request: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let start = Instant::now();
    let mut sock = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)
        .map_err(|e| format!("cannot connect: {e}"))?;
    let left = || {
        REQUEST_TIMEOUT
            .checked_sub(start.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer within {REQUEST_TIMEOUT:?}"))
    };
    sock.set_write_timeout(Some(left()?))
        .and_then(|()| sock.write_all(request))
        .map_err(|e| format!("sending: {e}"))?;
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(answer) = complete(&response)? {
            return Ok(answer);
        }
        sock.set_read_timeout(Some(left()?))
            .map_err(|e| format!("reading: {e}"))?;
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if response.len() + n > MAX_RESPONSE => {
                return Err(format!("an answer over {MAX_RESPONSE} bytes"))
            }
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(format!("no answer within {REQUEST_TIMEOUT:?}"))
            }
            Err(e) => return Err(format!("reading: {e}")),
        }
    }
    // The server closed: whatever came is the whole answer.
    let head = parse_head(&response)?.ok_or("the server closed without an answer")?;
    Ok((head.status, response[head.len..].to_vec()))
}

/// The status and body once `response` holds all of its body (by
/// `Content-Length`); `None` while more is to come, or when only the end of
/// the connection can tell.
fn complete(response: &[u8]) -> Result<Option<(u16, Vec<u8>)>, String> {
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
fn parse_head(response: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(response) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("a malformed answer ({e})")),
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
    use crate::realtime::Secret;
    use std::net::TcpListener;

    fn plan(rooms: u32, token: Option<&str>) -> RealtimePlan {
        RealtimePlan {
            rate: 1,
            duration: Duration::from_secs(1),
            rooms,
            publishers_per_room: 1,
            jwt_secret: None,
            admin_token: token.map(|t| Secret(t.into())),
            settle: Duration::ZERO,
        }
    }

    /// A server that answers each of `answers` in turn, one per connection,
    /// and hands back the requests it read.
    fn serve(answers: Vec<&'static str>) -> (WsUrl, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url =
            crate::url::parse(&format!("ws://{}/ws", listener.local_addr().unwrap())).unwrap();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for answer in answers {
                let (mut s, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                // The head, then the body its Content-Length announces.
                loop {
                    let mut headers = [httparse::EMPTY_HEADER; 16];
                    let mut req = httparse::Request::new(&mut headers);
                    if let Ok(httparse::Status::Complete(head)) = req.parse(&request) {
                        let length = req.headers.iter().find(|h| h.name == "Content-Length");
                        let length: usize = std::str::from_utf8(length.unwrap().value)
                            .unwrap()
                            .parse()
                            .unwrap();
                        if request.len() >= head + length {
                            break;
                        }
                    }
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0);
                    request.extend_from_slice(&buf[..n]);
                }
                seen.push(String::from_utf8(request).unwrap());
                s.write_all(answer.as_bytes()).unwrap();
            }
            seen
        });
        (url, server)
    }

    #[test]
    fn creates_rooms_and_takes_existing_ones() {
        let (url, server) = serve(vec![
            "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
            // No length: the answer ends with the connection.
            "HTTP/1.1 409 Conflict\r\nConnection: close\r\n\r\n{\"error\":\"exists\"}",
            "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        ]);
        let setup = create_rooms(&url, &plan(3, Some("adm"))).unwrap();
        assert_eq!(
            setup,
            RoomSetup {
                created: 2,
                existing: 1
            }
        );
        let seen = server.join().unwrap();
        assert!(
            seen[0].starts_with("POST /ws/rooms HTTP/1.1\r\n"),
            "{}",
            seen[0]
        );
        assert!(seen[0].contains("\r\nAuthorization: Bearer adm\r\n"));
        assert!(seen[0].contains("\r\nConnection: close\r\n"));
        let body = seen[2].split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":"load-2","name":"load-2","description":"load"})
        );
    }

    #[test]
    fn says_which_room_failed_and_why() {
        let (url, server) = serve(vec![
            "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 16\r\n\r\n{\"error\":\"auth\"}",
        ]);
        let err = create_rooms(&url, &plan(5, None)).unwrap_err();
        assert!(err.contains("room load-1"), "{err}");
        assert!(err.contains("401"), "{err}");
        assert!(err.contains("--admin-token"), "{err}");
        assert!(err.contains("{\"error\":\"auth\"}"), "{err}");
        assert!(!server.join().unwrap()[0].contains("Authorization"));
        // Nobody listens there any more.
        let err = create_rooms(&url, &plan(1, None)).unwrap_err();
        assert!(err.contains("cannot connect"), "{err}");
    }
}
