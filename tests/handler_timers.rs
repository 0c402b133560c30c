//! Handler timers go with their connection: 10,000 connections that each
//! set a one-hour timer open and close, and the shards' timer store
//! (`ringgate_handler_timers` on `/metrics`) ends empty, while a connection
//! that stays keeps its timer and it still fires.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{eventually, RawWs};
use ringgate::{ConnCtx, Handler, Message, Server};

const WAIT: Duration = Duration::from_secs(10);

/// Sets a one-hour timer when a connection opens; "soon" sets one due in
/// 50 ms, which answers "fired".
struct Hourly;

impl Handler for Hourly {
    fn on_open(&self, ctx: &mut ConnCtx<'_>) {
        ctx.set_timer(Duration::from_secs(3600), 1);
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        if msg == Message::Text("soon") {
            ctx.set_timer(Duration::from_millis(50), 2);
        }
    }

    fn on_timer(&self, ctx: &mut ConnCtx<'_>, token: u64) {
        ctx.send(Message::Text(&format!("fired {token}")));
    }
}

fn timers_held(addr: SocketAddr) -> u64 {
    let text = String::from_utf8(common::http_get(addr, "/metrics").body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("ringgate_handler_timers "))
        .map_or(u64::MAX, |n| n.trim().parse().unwrap())
}

#[test]
fn the_timers_of_closed_connections_leave_the_store() {
    let handle = Server::builder(common::loopback_config())
        .websocket("/hourly", Hourly)
        .start()
        .expect("server starts");
    let addr = handle.local_addr();
    let mut stays = RawWs::connect(addr, "/hourly");
    for _round in 0..10 {
        let batch: Vec<RawWs> = (0..1000).map(|_| RawWs::connect(addr, "/hourly")).collect();
        assert!(timers_held(addr) >= 1000);
        for mut ws in batch {
            ws.send_close(1000, b"");
        }
        assert!(eventually(WAIT, || common::health_connections(addr) == Some(1)));
    }
    assert!(
        eventually(WAIT, || timers_held(addr) <= 1),
        "timers held after 10,000 connections came and went: {}",
        timers_held(addr)
    );
    stays.send_text("soon");
    assert_eq!(common::read_text(&mut stays, WAIT), "fired 2");
    assert_eq!(
        timers_held(addr),
        1,
        "the hour-long timer of the one that stays"
    );
}
