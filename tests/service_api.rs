//! What services build on, over real sockets: per-connection state the
//! handler changes (`identity_mut`), per-connection timers, a broadcast that
//! leaves out its sender, channels as a directory from an application key
//! to its connections on every shard, one send to several connections, and
//! code run on a shard through the hub that learns at once whether a
//! connection is still there.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{block_on, eventually, RawWs};
use ringgate::hub::HubError;
use ringgate::{Accept, ConnCtx, ConnId, Handler, Message, Reject, Server, ServerHandle};

const WAIT: Duration = Duration::from_secs(5);
const ROOM: &str = "room";

/// Counts each connection's messages in its identity and answers with the
/// count; "say:X" goes to everyone else in the room.
struct Counter {
    ids: Arc<Mutex<Vec<ConnId>>>,
}

impl Handler for Counter {
    fn on_upgrade(&self, _: &ringgate::UpgradeRequest<'_>) -> Result<Accept, Reject> {
        Ok(Accept::new().identity(0u64))
    }

    fn on_open(&self, ctx: &mut ConnCtx<'_>) {
        ctx.subscribe(ROOM);
        self.ids.lock().unwrap().push(ctx.id());
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        let Message::Text(text) = msg else { return };
        if let Some(said) = text.strip_prefix("say:") {
            let _ = ctx
                .hub()
                .broadcast_except(ROOM, Message::Text(said), ctx.id());
            return;
        }
        if let Some(ms) = text.strip_prefix("timer:") {
            // Two timers, set out of order: they fire in due order.
            let ms: u64 = ms.parse().unwrap();
            ctx.set_timer(Duration::from_millis(10 * ms), 2);
            ctx.set_timer(Duration::from_millis(ms), 1);
            return;
        }
        if let Some(key) = text.strip_prefix("as:") {
            ctx.subscribe(key);
            ctx.send(Message::Text("registered"));
            return;
        }
        let count = ctx.identity_mut::<u64>().map(|n| {
            *n += 1;
            *n
        });
        ctx.send(Message::Text(&format!("{count:?}")));
    }

    /// Timer 1 says so; timer 2 closes the connection.
    fn on_timer(&self, ctx: &mut ConnCtx<'_>, token: u64) {
        if token == 2 {
            ctx.close(4003, "timer 2");
        } else {
            ctx.send(Message::Text(&format!("timer {token}")));
        }
    }
}

fn start() -> (ServerHandle, Arc<Mutex<Vec<ConnId>>>) {
    let cfg = common::loopback_config();
    let ids = Arc::new(Mutex::new(Vec::new()));
    let handle = Server::builder(cfg)
        .websocket("/room", Counter { ids: ids.clone() })
        .start()
        .expect("server starts");
    (handle, ids)
}

fn text(ws: &mut RawWs) -> String {
    common::read_text(ws, WAIT)
}

#[test]
fn each_connection_keeps_its_own_mutable_state() {
    let (handle, _) = start();
    let mut a = RawWs::connect(handle.local_addr(), "/room");
    let mut b = RawWs::connect(handle.local_addr(), "/room");
    for expected in ["Some(1)", "Some(2)", "Some(3)"] {
        a.send_text("count");
        assert_eq!(text(&mut a), expected);
    }
    b.send_text("count");
    assert_eq!(text(&mut b), "Some(1)", "b's count is its own");
}

#[test]
fn a_broadcast_can_leave_out_its_sender() {
    let (handle, ids) = start();
    let addr = handle.local_addr();
    let mut clients: Vec<RawWs> = (0..4).map(|_| RawWs::connect(addr, "/room")).collect();
    assert!(eventually(WAIT, || ids.lock().unwrap().len() == 4));
    let hub = handle.hub();
    assert_eq!(block_on(hub.channel_members(ROOM)), Ok(4));
    assert_eq!(block_on(hub.channel_members("nobody")), Ok(0));

    clients[0].send_text("say:hello");
    for c in &mut clients[1..] {
        assert_eq!(text(c), "hello");
    }
    // The sender's next message is its own count, not the broadcast.
    clients[0].send_text("count");
    assert_eq!(text(&mut clients[0]), "Some(1)");
}

#[test]
fn code_run_on_a_shard_learns_whether_a_connection_is_there() {
    let (handle, ids) = start();
    let hub = handle.hub();
    let mut ws = RawWs::connect(handle.local_addr(), "/room");
    assert!(eventually(WAIT, || ids.lock().unwrap().len() == 1));
    let id = ids.lock().unwrap()[0];

    let sent = block_on(hub.run_on(id.shard(), move |shard| {
        shard.send(id, Message::Text("from the shard"))
    }));
    assert_eq!(sent, Ok(true));
    assert_eq!(text(&mut ws), "from the shard");

    assert_eq!(
        block_on(hub.run_on(id.shard(), move |shard| shard.close(id, 4002, "bye"))),
        Ok(true)
    );
    assert_eq!(ws.expect_close(WAIT), Some(4002));
    drop(ws);
    assert!(eventually(WAIT, || {
        block_on(hub.run_on(id.shard(), move |shard| !shard.is_open(id))) == Ok(true)
    }));
    let gone = block_on(hub.run_on(id.shard(), move |shard| {
        shard.send(id, Message::Text("too late"))
    }));
    assert_eq!(gone, Ok(false), "a send to a departed connection says so");
}

#[test]
fn a_panic_in_code_run_on_a_shard_is_an_error_and_the_shard_lives_on() {
    let (handle, _) = start();
    let hub = handle.hub();
    let failed = block_on(hub.run_on(0, |_| -> u32 { panic!("on purpose") }));
    assert_eq!(failed, Err(HubError::RunFailed(0)));
    let mut ws = RawWs::connect(handle.local_addr(), "/room");
    ws.send_text("count");
    assert_eq!(text(&mut ws), "Some(1)");
    assert_eq!(
        block_on(hub.run_on(hub.shards(), |_| ())),
        Err(HubError::NoSuchShard(hub.shards()))
    );
}

#[test]
fn timers_fire_in_order_and_can_close_the_connection() {
    let (handle, _) = start();
    let mut ws = RawWs::connect(handle.local_addr(), "/room");
    let set = std::time::Instant::now();
    ws.send_text("timer:300");
    assert_eq!(text(&mut ws), "timer 1");
    let first = set.elapsed();
    assert!(
        first >= Duration::from_millis(300),
        "fired early: {first:?}"
    );
    // What a timer sends goes out at once, not with the next I/O on the
    // connection (here timer 2's close, at 3 s).
    assert!(
        first < Duration::from_millis(2500),
        "timer 1's message waited for other I/O: {first:?}"
    );
    assert_eq!(ws.expect_close(WAIT), Some(4003), "timer 2 closes");
    assert!(set.elapsed() >= Duration::from_millis(3000));
}

#[test]
fn a_key_finds_its_connections_on_every_shard_and_one_send_reaches_them() {
    let (handle, _) = start();
    let addr = handle.local_addr();
    let hub = handle.hub();
    let mut user: Vec<RawWs> = (0..4).map(|_| RawWs::connect(addr, "/room")).collect();
    let mut other = RawWs::connect(addr, "/room");
    for ws in &mut user {
        ws.send_text("as:user:42");
        assert_eq!(text(ws), "registered");
    }
    let ids = block_on(hub.channel_member_ids("user:42")).unwrap();
    assert_eq!(ids.len(), 4);
    hub.send_many(&ids, Message::Text("private")).unwrap();
    for ws in &mut user {
        assert_eq!(text(ws), "private");
    }
    other.send_text("count");
    assert_eq!(text(&mut other), "Some(1)", "the others got nothing");
    // A departed connection leaves the directory.
    drop(user.pop());
    assert!(eventually(WAIT, || {
        block_on(hub.channel_member_ids("user:42")).map(|ids| ids.len()) == Ok(3)
    }));
}
