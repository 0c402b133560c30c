//! The HTTP side of the port: upgrade validation answers, 404 / 405 / 426 /
//! 431, error JSON, `/health`, and turning `/echo` off.

mod common;

use common::{
    connect, http_get, read_response, RawWs, ServerProcess, UpgradeRequest, SAMPLE_ACCEPT,
};
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn valid_upgrade_answers_101_with_the_rfc_accept_key() {
    let server = ServerProcess::spawn(&[]);
    let resp = UpgradeRequest::new("/echo").send(server.addr);
    assert_eq!(resp.status, 101, "{resp:?}");
    assert_eq!(resp.header("Sec-WebSocket-Accept"), Some(SAMPLE_ACCEPT));
    assert!(resp.has_token("Upgrade", "websocket"), "{resp:?}");
    assert!(resp.has_token("Connection", "upgrade"), "{resp:?}");
    assert_eq!(
        resp.header("Sec-WebSocket-Protocol"),
        None,
        "no subprotocol was offered, none may be selected"
    );
}

#[test]
fn unsupported_or_missing_version_is_426_advertising_13() {
    let server = ServerProcess::spawn(&[]);
    for req in [
        UpgradeRequest::new("/echo").header("Sec-WebSocket-Version", "8"),
        UpgradeRequest::new("/echo").header("Sec-WebSocket-Version", "14"),
        UpgradeRequest::new("/echo").without("Sec-WebSocket-Version"),
    ] {
        let resp = req.send(server.addr);
        assert_eq!(resp.status, 426, "{req:?} -> {resp:?}");
        assert_eq!(resp.header("Sec-WebSocket-Version"), Some("13"), "{resp:?}");
        resp.assert_error_json();
    }
}

#[test]
fn missing_or_bad_key_is_400() {
    let server = ServerProcess::spawn(&[]);
    for req in [
        UpgradeRequest::new("/echo").without("Sec-WebSocket-Key"),
        UpgradeRequest::new("/echo").header("Sec-WebSocket-Key", "not base64 !!"),
        // valid base64, but of 4 bytes instead of 16
        UpgradeRequest::new("/echo").header("Sec-WebSocket-Key", "AAAAAA=="),
    ] {
        let resp = req.send(server.addr);
        assert_eq!(resp.status, 400, "{req:?} -> {resp:?}");
        resp.assert_error_json();
    }
}

#[test]
fn missing_upgrade_or_connection_token_is_400() {
    let server = ServerProcess::spawn(&[]);
    for req in [
        UpgradeRequest::new("/echo").without("Upgrade"),
        UpgradeRequest::new("/echo").header("Upgrade", "h2c"),
        UpgradeRequest::new("/echo").without("Connection"),
        UpgradeRequest::new("/echo").header("Connection", "keep-alive"),
    ] {
        let resp = req.send(server.addr);
        assert_eq!(resp.status, 400, "{req:?} -> {resp:?}");
        resp.assert_error_json();
    }
}

#[test]
fn token_lists_and_case_are_accepted() {
    let server = ServerProcess::spawn(&[]);
    let req = UpgradeRequest::new("/echo")
        .header("Upgrade", "WebSocket")
        .header("Connection", "keep-alive, Upgrade");
    let resp = req.send(server.addr);
    assert_eq!(resp.status, 101, "{resp:?}");
}

#[test]
fn non_get_upgrade_is_405() {
    let server = ServerProcess::spawn(&[]);
    let resp = UpgradeRequest::new("/echo")
        .method("POST")
        .send(server.addr);
    assert_eq!(resp.status, 405, "{resp:?}");
    resp.assert_error_json();
}

#[test]
fn unknown_path_is_404_for_upgrades_and_plain_requests() {
    let server = ServerProcess::spawn(&[]);
    let resp = UpgradeRequest::new("/no-such-route").send(server.addr);
    assert_eq!(resp.status, 404, "{resp:?}");
    resp.assert_error_json();

    let resp = http_get(server.addr, "/no-such-route");
    assert_eq!(resp.status, 404, "{resp:?}");
    resp.assert_error_json();
}

#[test]
fn oversized_request_head_is_431() {
    // Default limit: 8192 bytes.
    let server = ServerProcess::spawn(&[]);
    let big = UpgradeRequest::new("/echo").header("X-Padding", &"a".repeat(9000));
    let resp = big.send(server.addr);
    assert_eq!(resp.status, 431, "{:?}", (resp.status, &resp.reason));
    resp.assert_error_json();

    // A head well under the limit is fine.
    let fits = UpgradeRequest::new("/echo").header("X-Padding", &"a".repeat(6000));
    assert_eq!(fits.send(server.addr).status, 101);
}

#[test]
fn configured_header_limit_is_enforced() {
    let server = ServerProcess::spawn(&[("RINGGATE_MAX_HEADER_BYTES", "1024")]);
    let big = UpgradeRequest::new("/echo").header("X-Padding", &"b".repeat(2000));
    assert_eq!(big.send(server.addr).status, 431);
    let fits = UpgradeRequest::new("/echo").header("X-Padding", &"b".repeat(500));
    assert_eq!(fits.send(server.addr).status, 101);
}

fn assert_rfc3339(ts: &str) {
    let b = ts.as_bytes();
    let ok = b.len() >= 20
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't')
        && b[13] == b':'
        && b[16] == b':'
        && (ts.ends_with('Z') || ts.ends_with('z') || ts[19..].contains(['+', '-']));
    assert!(ok, "timestamp {ts:?} is not RFC 3339");
}

#[test]
fn health_reports_status_timestamp_connections_and_uptime() {
    let server = ServerProcess::spawn(&[]);
    let resp = http_get(server.addr, "/health");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(resp.has_token("Connection", "close"), "{resp:?}");
    assert!(
        resp.header("Content-Type")
            .unwrap_or("")
            .contains("application/json"),
        "{resp:?}"
    );
    let v = resp.json();
    assert_eq!(v["status"], "healthy", "{v}");
    assert_rfc3339(v["timestamp"].as_str().expect("timestamp string"));
    assert!(v["connections"].is_u64(), "{v}");
    assert!(v["uptime"].is_string(), "{v}");
}

#[test]
fn health_counts_open_websocket_connections() {
    let server = ServerProcess::spawn(&[]);
    let count = || {
        http_get(server.addr, "/health").json()["connections"]
            .as_u64()
            .unwrap()
    };
    let wait_for = |pred: &dyn Fn(u64) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let n = count();
            if pred(n) {
                return n;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "connections stuck at {n}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let clients: Vec<RawWs> = (0..3)
        .map(|_| RawWs::connect(server.addr, "/echo"))
        .collect();
    wait_for(&|n| n >= 3);
    for mut c in clients {
        c.send_close(1000, b"");
        assert!(c.closed_within(Duration::from_secs(5)));
    }
    // The health request itself may or may not be counted.
    wait_for(&|n| n <= 1);
}

#[test]
fn plain_responses_keep_the_connection_until_asked_to_close() {
    let server = ServerProcess::spawn(&[]);
    let mut s = connect(server.addr, Duration::from_secs(5));
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (resp, rest) = read_response(&mut s).expect("first response");
    assert_eq!(resp.status, 200);
    assert!(!resp.has_token("Connection", "close"), "{resp:?}");
    assert!(rest.is_empty(), "nothing may follow the response");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (resp, rest) = read_response(&mut s).expect("second response on the same connection");
    assert_eq!(resp.status, 200);
    assert!(resp.has_token("Connection", "close"), "{resp:?}");
    assert!(rest.is_empty(), "nothing may follow the response");
    // Then EOF (or a reset), not a read timeout.
    let mut byte = [0u8; 1];
    match s.read(&mut byte) {
        Ok(0) => {}
        Ok(_) => panic!("unexpected bytes after the response"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}

#[test]
fn echo_can_be_disabled_by_flag_and_by_environment() {
    let by_flag = ServerProcess::spawn_with_args(&["--no-echo"], &[]);
    assert_eq!(UpgradeRequest::new("/echo").send(by_flag.addr).status, 404);
    let by_env = ServerProcess::spawn(&[("RINGGATE_ECHO", "false")]);
    assert_eq!(UpgradeRequest::new("/echo").send(by_env.addr).status, 404);
    assert_eq!(http_get(by_env.addr, "/health").status, 200);
}
