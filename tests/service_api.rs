//! What services build on, over real sockets: per-connection state the
//! handler changes (`identity_mut`), a broadcast that leaves out its sender,
//! channel member counts across shards, and code run on a shard through the
//! hub that learns at once whether a connection is still there.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually, RawWs};
use ringgate::hub::HubError;
use ringgate::{Accept, Config, ConnCtx, ConnId, Handler, Message, Reject, Server, ServerHandle};

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
        let count = ctx.identity_mut::<u64>().map(|n| {
            *n += 1;
            *n
        });
        ctx.send(Message::Text(&format!("{count:?}")));
    }
}

fn start() -> (ServerHandle, Arc<Mutex<Vec<ConnId>>>) {
    let mut cfg = Config::load(None, &|k| std::env::var(k).ok()).expect("config");
    cfg.server.host = "127.0.0.1".into();
    cfg.server.port = 0;
    let ids = Arc::new(Mutex::new(Vec::new()));
    let handle = Server::builder(cfg)
        .websocket("/room", Counter { ids: ids.clone() })
        .start()
        .expect("server starts");
    (handle, ids)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn text(ws: &mut RawWs) -> String {
    let (_, data) = ws.read_message(WAIT);
    String::from_utf8(data).unwrap()
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
