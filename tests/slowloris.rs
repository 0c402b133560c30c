//! SERVER_READ_TIMEOUT bounds the time for a complete request head: a client
//! trickling header bytes is dropped, while open WebSocket clients (whose
//! head is long complete) carry on undisturbed.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Writes `head` one byte per `gap`, watching for the server to close.
/// Returns how long the server let the client trickle, or `None` if it
/// never closed within `limit`.
fn trickle(
    addr: std::net::SocketAddr,
    head: &[u8],
    gap: Duration,
    limit: Duration,
) -> Option<Duration> {
    let mut s = connect(addr, Duration::from_secs(5));
    s.set_read_timeout(Some(gap)).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    for b in head.iter().cycle() {
        if start.elapsed() > limit {
            return None;
        }
        if s.write_all(std::slice::from_ref(b)).is_err() {
            return Some(start.elapsed());
        }
        // Waits `gap`, unless the server answers (maybe with a 408) or closes.
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {} // a 408 response; EOF follows
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_client_is_dropped_while_others_keep_echoing() {
    let server = ServerProcess::spawn(&[("SERVER_READ_TIMEOUT", "1s")]);
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(ws_connect(&server.ws_url("/echo")).await);
    }

    let addr = server.addr;
    // A header line that never ends: the head can never complete.
    let slow = tokio::task::spawn_blocking(move || {
        let head =
            b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        trickle(
            addr,
            head,
            Duration::from_millis(300),
            Duration::from_secs(10),
        )
    });

    // Meanwhile, every normal client keeps echoing for 3 s: three times the
    // read timeout, so a server that applied it to open WebSockets would fail.
    let echoers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut ws)| {
            tokio::spawn(async move {
                let until = Instant::now() + Duration::from_secs(3);
                let mut n = 0;
                while Instant::now() < until {
                    ws_echo(&mut ws, Message::Text(format!("client {i} message {n}"))).await;
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                n
            })
        })
        .collect();

    let dropped_after = slow.await.unwrap();
    for e in echoers {
        let n = e.await.expect("an echoing client failed");
        assert!(n >= 5, "a client managed only {n} echoes in 3 s");
    }
    let after = dropped_after.expect("the slow client was not dropped within 10 s");
    assert!(
        after <= Duration::from_secs(6),
        "dropped only after {after:?} with a 1 s read timeout"
    );
}

#[test]
fn silent_connection_is_dropped() {
    let server = ServerProcess::spawn(&[("SERVER_READ_TIMEOUT", "1s")]);
    let mut s = connect(server.addr, Duration::from_secs(8));
    let start = Instant::now();
    let mut buf = Vec::new();
    // Reads to EOF (a 408 may come first); the 8 s read timeout fails the test.
    match s.read_to_end(&mut buf) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("not dropped after {:?}: {e}", start.elapsed()),
    }
    assert!(
        start.elapsed() <= Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    if !buf.is_empty() {
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.starts_with("HTTP/1.1 408"),
            "unexpected answer {text:?}"
        );
    }
}

#[test]
fn a_head_completed_in_time_is_served() {
    // A client that is slow but finishes within the timeout is not a slowloris.
    let server = ServerProcess::spawn(&[("SERVER_READ_TIMEOUT", "3s")]);
    let mut s = connect(server.addr, Duration::from_secs(5));
    let req = UpgradeRequest::new("/echo").to_bytes();
    let (a, b) = req.split_at(req.len() / 2);
    s.write_all(a).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    s.write_all(b).unwrap();
    let (resp, _) = read_response(&mut s).unwrap();
    assert_eq!(resp.status, 101);
}
