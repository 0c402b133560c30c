//! Cross-shard broadcast through the library API: an in-process server with
//! two shards, connections on both, one broadcast reaches each exactly once.

mod common;

use common::{ws_connect, ws_next, WsClient};
use futures_util::SinkExt;
use ringgate::{Config, ConnCtx, ConnId, Handler, Message, Server};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message as WsMessage;

const CHANNEL: &str = "all";

/// Subscribes every connection to "all" and greets it with its shard;
/// "bcast" broadcasts from inside a handler, anything else is echoed.
struct Broadcaster;

impl Handler for Broadcaster {
    fn on_open(&self, ctx: &mut ConnCtx<'_>) {
        ctx.subscribe(CHANNEL);
        let greeting = format!("shard {} id {}", ctx.id().shard(), ctx.id().as_u64());
        ctx.send(Message::Text(&greeting));
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        match msg {
            Message::Text("bcast") => ctx
                .hub()
                .broadcast(CHANNEL, Message::Text("from a handler"))
                .unwrap(),
            other => ctx.send(other),
        }
    }
}

fn config() -> Config {
    // Follows RINGGATE_IO (and the rest of the environment), like the binary.
    let mut cfg = common::loopback_config();
    cfg.server.shards = 2;
    cfg
}

/// An open client: its shard, its connection id, the socket.
struct Client {
    shard: usize,
    id: ConnId,
    ws: WsClient,
}

/// The next message of every client `to(i)` selects is `text`; then a
/// marker round trip on every client proves nothing else arrived: the
/// selected ones got `text` exactly once, the others not at all.
async fn assert_received_once(clients: &mut [Client], to: impl Fn(usize) -> bool, text: &str) {
    for (i, c) in clients.iter_mut().enumerate().filter(|(i, _)| to(*i)) {
        let got = ws_next(&mut c.ws, Duration::from_secs(10)).await;
        assert_eq!(got, WsMessage::Text(text.into()), "client {i}");
    }
    for (i, Client { ws, .. }) in clients.iter_mut().enumerate() {
        let marker = format!("marker {i}");
        ws.send(WsMessage::Text(marker.clone())).await.unwrap();
        let got = ws_next(ws, Duration::from_secs(10)).await;
        assert_eq!(
            got,
            WsMessage::Text(marker),
            "client {i} got a duplicate or stray message"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_every_connection_on_every_shard_once() {
    let handle = Server::builder(config())
        .websocket("/b", Broadcaster)
        .start()
        .expect("start in-process server");
    assert_eq!(handle.shards(), 2);
    // The library honours RINGGATE_IO like the binary does.
    match std::env::var("RINGGATE_IO").as_deref() {
        Ok("epoll") => assert_eq!(handle.io_name(), "epoll"),
        Ok("uring") => assert_eq!(handle.io_name(), "io_uring"),
        _ => {}
    }
    let url = format!("ws://{}/b", handle.local_addr());

    // Open connections until both shards hold at least one.
    let mut clients: Vec<Client> = Vec::new();
    let mut seen = [false; 2];
    for _ in 0..200 {
        let mut ws = ws_connect(&url).await;
        let greeting = match ws_next(&mut ws, Duration::from_secs(10)).await {
            WsMessage::Text(t) => t,
            other => panic!("expected the shard greeting, got {other:?}"),
        };
        let parsed = greeting
            .strip_prefix("shard ")
            .and_then(|s| s.split_once(" id "))
            .and_then(|(s, id)| Some((s.parse::<usize>().ok()?, id.parse::<u64>().ok()?)));
        let (shard, id) = parsed.unwrap_or_else(|| panic!("bad greeting {greeting:?}"));
        let id = ConnId::from_u64(id);
        assert!(shard < 2 && id.shard() == shard, "{greeting:?}");
        seen[shard] = true;
        clients.push(Client { shard, id, ws });
        if seen == [true, true] && clients.len() >= 4 {
            break;
        }
    }
    assert_eq!(
        seen,
        [true, true],
        "200 connections never reached both shards"
    );

    // The hub counts them all, per shard.
    let hub = handle.hub();
    let want: Vec<usize> = (0..2)
        .map(|s| clients.iter().filter(|c| c.shard == s).count())
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let stats = hub.stats();
        let per_shard: Vec<usize> = stats.shards.iter().map(|s| s.connections).collect();
        if stats.connections == clients.len() && per_shard == want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stats {stats:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // 1. From outside the server, through the hub.
    hub.broadcast(CHANNEL, Message::Text("hello all")).unwrap();
    assert_received_once(&mut clients, |_| true, "hello all").await;

    // 2. From a handler running on one shard, reaching the other shard too.
    clients[0]
        .ws
        .send(WsMessage::Text("bcast".into()))
        .await
        .unwrap();
    assert_received_once(&mut clients, |_| true, "from a handler").await;

    // 3. A direct send reaches its one connection, on whichever shard.
    for target in [0, clients.len() - 1] {
        hub.send(clients[target].id, Message::Text("direct"))
            .unwrap();
        assert_received_once(&mut clients, |i| i == target, "direct").await;
    }

    // 4. After an unsubscribe, a broadcast skips that connection.
    hub.unsubscribe(clients[0].id, CHANNEL).unwrap();
    // The unsubscribe and the broadcast go through the same mailbox, in order.
    hub.broadcast(CHANNEL, Message::Text("without 0")).unwrap();
    assert_received_once(&mut clients, |i| i != 0, "without 0").await;

    // 5. The hub closes a connection with the code it is given.
    let last = clients.len() - 1;
    hub.close(clients[last].id, 4000, "kicked").unwrap();
    match ws_next(&mut clients[last].ws, Duration::from_secs(10)).await {
        WsMessage::Close(Some(f)) => assert_eq!((u16::from(f.code), &*f.reason), (4000, "kicked")),
        other => panic!("expected close 4000, got {other:?}"),
    }

    drop(clients);
    handle.shutdown();
    handle.join().expect("server threads end cleanly");
}
