//! `RINGGATE_DIRECT_DESCRIPTORS` (io_uring): sockets live in each shard's
//! registered file table, not in the process's; handlers still learn the peer
//! address; a full table answers 503 like a full server. Skipped (with a
//! message) when the server runs on epoll, where the setting does not apply.

mod common;

use common::*;
use futures_util::StreamExt;
use ringgate::{Accept, ConnCtx, Handler, Message, Reject, Server};
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn uring() -> bool {
    if std::env::var("RINGGATE_IO").is_ok_and(|v| v.eq_ignore_ascii_case("epoll")) {
        eprintln!("RINGGATE_IO=epoll: direct descriptors are io_uring only; skipped");
        return false;
    }
    true
}

/// Open process descriptors of `pid`.
fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

/// Tells the client its own address as the server sees it: in a response
/// header at upgrade time, and in the first message once open.
struct PeerReporter;

impl Handler for PeerReporter {
    fn on_upgrade(&self, req: &ringgate::UpgradeRequest<'_>) -> Result<Accept, Reject> {
        let peer = req.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        Ok(Accept::new().header("X-Peer", peer))
    }

    fn on_open(&self, ctx: &mut ConnCtx<'_>) {
        let peer = ctx.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        ctx.send(Message::Text(&peer));
    }

    fn on_message(&self, _ctx: &mut ConnCtx<'_>, _msg: Message<'_>) {}
}

#[tokio::test]
async fn handlers_see_the_peer_address_with_either_kind_of_descriptor() {
    if !uring() {
        return;
    }
    for direct in [false, true] {
        let mut cfg = common::loopback_config();
        cfg.server.shards = 1;
        cfg.server.direct_descriptors = direct;
        let server = Server::builder(cfg)
            .websocket("/peer", PeerReporter)
            .start()
            .expect("start");
        let url = format!("ws://{}/peer", server.local_addr());
        let (mut ws, response) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("connect");
        let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.get_ref() else {
            panic!("plain TCP expected");
        };
        let me: SocketAddr = tcp.local_addr().unwrap();
        let header = response
            .headers()
            .get("X-Peer")
            .map(|v| v.to_str().unwrap());
        assert_eq!(
            header,
            Some(me.to_string().as_str()),
            "on_upgrade, direct={direct}"
        );
        let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .expect("stream ended")
            .expect("read");
        assert_eq!(
            first,
            WsMessage::Text(me.to_string()),
            "on_open, direct={direct}"
        );
        ws.close(None).await.expect("close");
        while let Some(Ok(_)) = ws.next().await {}
        server.shutdown();
        server.join().expect("join");
    }
}

#[test]
fn sockets_stay_out_of_the_process_file_table() {
    if !uring() {
        return;
    }
    const CONNS: usize = 200;
    for direct in ["false", "true"] {
        let server = ServerProcess::spawn(&[
            ("RINGGATE_SHARDS", "1"),
            ("RINGGATE_DIRECT_DESCRIPTORS", direct),
        ]);
        let before = open_fds(server.pid());
        let mut clients: Vec<RawWs> = (0..CONNS)
            .map(|_| RawWs::connect(server.addr, "/echo"))
            .collect();
        for (i, ws) in clients.iter_mut().enumerate() {
            ws.assert_echo(&format!("client {i}"));
        }
        let added = open_fds(server.pid()).saturating_sub(before);
        if direct == "true" {
            assert!(
                added < 10,
                "{added} process descriptors for {CONNS} direct sockets"
            );
        } else {
            assert!(
                added >= CONNS,
                "{added} process descriptors for {CONNS} sockets"
            );
        }
    }
}

#[test]
fn a_full_file_table_answers_503_and_frees_its_entries() {
    if !uring() {
        return;
    }
    // The kernel caps a ring's file table at RLIMIT_NOFILE: 100 entries here,
    // some of them kept free for accepts in flight.
    let server = ServerProcess::spawn_with_open_files(
        100,
        &[
            ("RINGGATE_SHARDS", "1"),
            ("RINGGATE_DIRECT_DESCRIPTORS", "true"),
        ],
    );
    let mut clients = Vec::new();
    let refused = loop {
        let mut stream = connect(server.addr, Duration::from_secs(10));
        stream
            .write_all(&UpgradeRequest::new("/echo").to_bytes())
            .expect("write upgrade");
        let (resp, _) = read_response(&mut stream).expect("read the answer");
        if resp.status != 101 {
            break resp;
        }
        assert!(clients.len() < 100, "more sockets than table entries");
        clients.push(stream);
    };
    assert_eq!(refused.status, 503, "{refused:?}");
    refused.assert_error_json();
    assert!(refused.header("Retry-After").is_some(), "{refused:?}");
    // The table keeps entries for health and admin requests.
    assert_eq!(
        health_connections(server.addr),
        Some(clients.len() as u64),
        "/health must answer on a full table"
    );
    assert!(
        clients.len() >= 50,
        "only {} connections before the table was full",
        clients.len()
    );
    // Refused and closed sockets give their entries back: after the held
    // connections go, as many fit again, and they echo.
    let held = clients.len();
    drop(clients);
    std::thread::sleep(Duration::from_millis(300));
    let mut again: Vec<RawWs> = (0..held)
        .map(|_| RawWs::connect(server.addr, "/echo"))
        .collect();
    for ws in &mut again {
        ws.assert_echo("again");
    }
}
