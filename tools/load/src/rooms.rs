//! Realtime's rooms, made before anyone connects: one `POST {path}/rooms`
//! per room over plain HTTP/1.1 (a fresh connection each, `Connection:
//! close`), with `Authorization: Bearer` when an admin token is given.
//! 201 is a room created, 409 one that exists already; any other answer, or
//! none, stops the run with a message that says which room and why.

use std::time::Duration;

use serde::Serialize;

use crate::http::exchange;
use crate::realtime::{room_name, rooms_path, RealtimePlan};
use crate::url::WsUrl;

/// Time allowed for one request, connect to the end of the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
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
        let (status, body) = exchange(url.addr, &request, REQUEST_TIMEOUT)
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
    crate::http::json_request("POST", host, path, token, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realtime::Secret;
    use std::io::{Read as _, Write as _};
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
