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
