//! SIGTERM: every client gets close 1001 (going away), then the process exits
//! with status 0 within the drain timeout.

mod common;

use common::*;
use futures_util::StreamExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_sends_1001_to_every_client_and_exits_0() {
    let mut server = ServerProcess::spawn(&[("RINGGATE_DRAIN_TIMEOUT", "5s")]);
    let mut clients = Vec::new();
    for i in 0..10 {
        let mut ws = ws_connect(&server.ws_url("/echo")).await;
        ws_echo(&mut ws, Message::Text(format!("client {i}"))).await;
        clients.push(ws);
    }

    server.terminate();

    for (i, ws) in clients.iter_mut().enumerate() {
        // tungstenite answers the close frame itself; then the stream ends.
        match ws_next(ws, Duration::from_secs(10)).await {
            Message::Close(Some(frame)) => {
                assert_eq!(frame.code, CloseCode::Away, "client {i}: {frame:?}")
            }
            other => panic!("client {i}: expected close 1001, got {other:?}"),
        }
        let end = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(_)) = ws.next().await {}
        });
        end.await
            .unwrap_or_else(|_| panic!("client {i}: TCP not closed"));
    }

    let status = tokio::task::block_in_place(|| server.wait_exit(Duration::from_secs(20)));
    let status = status.expect("still running 20 s after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sigterm_with_unresponsive_clients_exits_after_the_drain_timeout() {
    let mut server = ServerProcess::spawn(&[("RINGGATE_DRAIN_TIMEOUT", "1s")]);
    // Raw clients that read nothing and never answer the close frame.
    let clients: Vec<RawWs> = (0..5)
        .map(|_| RawWs::connect(server.addr, "/echo"))
        .collect();
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("still running 15 s after SIGTERM with a 1 s drain timeout");
    assert!(status.success(), "exit status {status:?}");
    for mut c in clients {
        assert_eq!(c.expect_close(Duration::from_secs(5)), Some(1001));
    }
}

#[test]
fn sigterm_with_no_clients_exits_0_promptly() {
    let mut server = ServerProcess::spawn(&[]);
    server.terminate();
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("still running");
    assert!(status.success(), "exit status {status:?}");
}

/// A free loopback port (bound and released: another process could take it
/// in between, which a test on loopback accepts).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn while_draining_newcomers_are_refused_at_once_and_health_says_draining() {
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut server = ServerProcess::spawn(&[
        ("RINGGATE_DRAIN_TIMEOUT", "3s"),
        ("RINGGATE_ADMIN_LISTEN", &admin.to_string()),
    ]);
    assert_eq!(http_get(admin, "/health").status, 200);
    // Two clients that never answer the close frame keep the drain going
    // until its timeout; one that answers is closed cleanly.
    let stubborn: Vec<RawWs> = (0..2)
        .map(|_| RawWs::connect(server.addr, "/echo"))
        .collect();
    let mut polite = RawWs::connect(server.addr, "/echo");
    server.terminate();
    assert_eq!(polite.expect_close(Duration::from_secs(5)), Some(1001));
    polite.send_close(1001, b"");

    // A newcomer is refused at once, not left waiting for the drain.
    let refused = eventually(Duration::from_secs(1), || {
        std::net::TcpStream::connect_timeout(&server.addr, Duration::from_millis(200))
            .map_err(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
            .err()
            .unwrap_or(false)
    });
    assert!(refused, "a connect during the drain was not refused");
    // The internal address answers health with 503 draining meanwhile.
    let health = http_get(admin, "/health");
    assert_eq!(health.status, 503, "{health:?}");
    assert_eq!(health.json()["status"], "draining");

    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("still running 15 s after SIGTERM with a 3 s drain timeout");
    assert!(status.success(), "exit status {status:?}");
    let log = server.stderr_text();
    let summary = log
        .lines()
        .find(|l| l.contains("drain ended"))
        .unwrap_or_else(|| panic!("no drain summary in the log:\n{log}"));
    assert!(
        summary.contains("3 connections") && summary.contains("2 cut at the drain timeout"),
        "{summary}"
    );
    drop(stubborn);
}
