//! Hostile plain HTTP next to WebSocket traffic: 1,000 malformed, oversized
//! and slow requests (garbage, 431 heads, slowloris heads, kept-alive
//! connections that trickle their next head, bodies announced and never
//! sent) while 1,000 WebSocket clients echo. No echo client may fail, the
//! bad requests get their errors, and the server still answers /health.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{connect, http_get, read_response, RawWs, ServerProcess};

const WS_CLIENTS: usize = 1000;
/// Bad requests of each of the five kinds.
const EACH: usize = 200;

/// Opens the hostile connections; those meant to hang are returned, held.
fn hostile(addr: std::net::SocketAddr) -> (Vec<TcpStream>, Vec<u16>) {
    let mut held = Vec::new();
    let mut statuses = Vec::new();
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(9000)
    );
    for _ in 0..EACH {
        for request in [&b"\x00\x01\x02 junk junk\r\n\r\n"[..], big.as_bytes()] {
            let mut s = connect(addr, Duration::from_secs(10));
            s.write_all(request).unwrap();
            statuses.push(read_response(&mut s).map_or(0, |(r, _)| r.status));
        }
        // A head that never ends.
        let mut s = connect(addr, Duration::from_secs(10));
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        held.push(s);
        // A kept-alive connection whose next head trickles.
        let mut s = connect(addr, Duration::from_secs(10));
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        statuses.push(read_response(&mut s).map_or(0, |(r, _)| r.status));
        s.write_all(b"GET /hea").unwrap();
        held.push(s);
        // A body announced and never sent.
        let mut s = connect(addr, Duration::from_secs(10));
        s.write_all(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
            .unwrap();
        held.push(s);
    }
    (held, statuses)
}

#[test]
fn bad_http_does_not_disturb_websocket_clients() {
    common::raise_nofile_limit();
    let server = ServerProcess::spawn(&[]);
    let addr = server.addr;
    let mut clients: Vec<RawWs> = (0..WS_CLIENTS)
        .map(|_| RawWs::connect(addr, "/echo"))
        .collect();
    let attacker = std::thread::spawn(move || hostile(addr));
    let mut rounds = 0;
    while !attacker.is_finished() || rounds < 2 {
        for (i, c) in clients.iter_mut().enumerate() {
            c.assert_echo(&format!("client {i} round {rounds}"));
        }
        rounds += 1;
    }
    let (mut held, statuses) = attacker.join().unwrap();
    let count = |status| statuses.iter().filter(|&&s| s == status).count();
    assert_eq!(count(400), EACH, "garbage heads get 400: {statuses:?}");
    assert_eq!(count(431), EACH, "oversized heads get 431");
    assert_eq!(
        count(200),
        EACH,
        "the kept-alive connections' first requests"
    );
    // With 600 bad connections held open, everyone else is still served.
    for c in clients.iter_mut().take(100) {
        c.assert_echo("after the attack");
    }
    assert_eq!(http_get(addr, "/health").status, 200);
    assert!(rounds >= 2);
    // The held connections are still open (none was answered yet) and the
    // server drops them by its deadlines; here they just go away.
    let mut byte = [0u8; 1];
    let s = &mut held[0];
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        s.read(&mut byte).is_err(),
        "a slowloris head was answered early"
    );
}
