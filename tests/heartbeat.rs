//! Server pings every WS_PING_PERIOD; a peer silent for WS_PONG_WAIT after a
//! ping is closed, a peer that answers stays.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const FAST_HEARTBEAT: &[(&str, &str)] = &[("WS_PING_PERIOD", "300ms"), ("WS_PONG_WAIT", "300ms")];

#[test]
fn silent_peer_is_pinged_then_closed() {
    let server = ServerProcess::spawn(FAST_HEARTBEAT);
    let mut ws = RawWs::connect(server.addr, "/echo");
    let start = Instant::now();
    let mut pings = 0;
    let closed = loop {
        match ws.read_event(Duration::from_secs(5).saturating_sub(start.elapsed())) {
            ReadEvent::Frame(f) if f.opcode == OP_PING => pings += 1,
            ReadEvent::Frame(f) if f.opcode == OP_CLOSE => continue,
            ReadEvent::Frame(f) => panic!("unexpected frame {f:?}"),
            ReadEvent::Closed => break true,
            ReadEvent::TimedOut => break false,
        }
    };
    assert!(pings >= 1, "the server must ping before dropping the peer");
    assert!(
        closed,
        "a peer that never answers must be closed within 5 s"
    );
}

#[tokio::test]
async fn answering_peer_stays_open_and_keeps_echoing() {
    let server = ServerProcess::spawn(FAST_HEARTBEAT);
    let mut ws = ws_connect(&server.ws_url("/echo")).await;
    // Reading lets tungstenite answer each ping with a pong.
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut pings = 0;
    loop {
        match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(other) => panic!("unexpected while idle: {other:?}"),
        }
    }
    assert!(
        pings >= 2,
        "expected pings every 300 ms, saw {pings} in 2 s"
    );
    ws_echo(&mut ws, Message::Text("still here".into())).await;
    ws.close(None).await.unwrap();
}

#[test]
fn raw_peer_answering_pings_stays_open() {
    let server = ServerProcess::spawn(FAST_HEARTBEAT);
    let mut ws = RawWs::connect(server.addr, "/echo");
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_secs(2) {
        match ws.read_event(Duration::from_millis(100)) {
            ReadEvent::Frame(f) if f.opcode == OP_PING => {
                pings += 1;
                ws.send(true, OP_PONG, &f.payload);
            }
            ReadEvent::Frame(f) => panic!("unexpected frame {f:?}"),
            ReadEvent::Closed => panic!("closed although every ping was answered"),
            ReadEvent::TimedOut => {}
        }
    }
    assert!(pings >= 2, "saw {pings} pings in 2 s");
    ws.send_text("alive");
    loop {
        let f = ws.read_frame(Duration::from_secs(5));
        match f.opcode {
            OP_PING => ws.send(true, OP_PONG, &f.payload),
            OP_TEXT => break assert_eq!(f.payload, b"alive"),
            _ => panic!("unexpected frame {f:?}"),
        }
    }
}

#[test]
fn no_server_pings_when_the_period_is_zero() {
    let server = ServerProcess::spawn(&[("WS_PING_PERIOD", "0"), ("WS_PONG_WAIT", "300ms")]);
    let mut ws = RawWs::connect(server.addr, "/echo");
    match ws.read_event(Duration::from_millis(1500)) {
        ReadEvent::TimedOut => {}
        other => panic!("expected silence with WS_PING_PERIOD=0, got {other:?}"),
    }
    ws.assert_echo("quiet");
}

#[tokio::test]
async fn client_ping_gets_pong_with_the_same_payload() {
    let server = ServerProcess::spawn(&[]);
    let mut ws = ws_connect(&server.ws_url("/echo")).await;
    ws.send(Message::Ping(b"heartbeat-42".to_vec()))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    match got {
        Ok(Some(Ok(Message::Pong(p)))) => assert_eq!(p, b"heartbeat-42"),
        other => panic!("expected a pong, got {other:?}"),
    }
}
