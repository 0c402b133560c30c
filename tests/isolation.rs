//! One connection's trouble stays its own: a panicking handler closes only its
//! connection (1011) while its shard keeps serving; a consumer that never reads
//! is cut off at the send-queue bound (1008); connections past MAX_CONNECTIONS
//! get a 503 while the ones inside the limit keep working and `/health` still
//! answers.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{RawWs, ReadEvent, ServerProcess, UpgradeRequest, OP_CLOSE, OP_TEXT};
use ringgate::{ConnCtx, Handler, Message, Server};

const WAIT: Duration = Duration::from_secs(5);

/// Echoes, but panics on the text "boom".
struct Fragile;

impl Handler for Fragile {
    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        if msg == Message::Text("boom") {
            panic!("handler bug triggered on purpose");
        }
        ctx.send(msg);
    }
}

#[test]
fn a_panicking_handler_closes_only_its_connection() {
    let mut cfg = common::loopback_config();
    cfg.server.shards = 1; // both connections share the shard that sees the panic
    let server = Server::builder(cfg)
        .websocket("/fragile", Fragile)
        .start()
        .expect("server starts");
    let addr = server.local_addr();

    let mut healthy = RawWs::connect(addr, "/fragile");
    let mut victim = RawWs::connect(addr, "/fragile");
    healthy.assert_echo("before");
    victim.send_text("boom");
    assert_eq!(victim.expect_close(WAIT), Some(1011));
    for i in 0..10 {
        healthy.assert_echo(&format!("after {i}"));
    }
    let mut late = RawWs::connect(addr, "/fragile");
    late.assert_echo("the shard still accepts");

    drop((healthy, victim, late));
    server.shutdown();
    server.join().expect("the shard survived the panic");
}

#[test]
fn a_consumer_that_never_reads_is_closed_at_the_send_queue_bound() {
    let server = ServerProcess::spawn(&[
        ("RINGGATE_MAX_SEND_QUEUE", "1MiB"),
        ("SERVER_WRITE_TIMEOUT", "2s"),
    ]);
    let mut hog = RawWs::connect(server.addr, "/echo");
    let payload = vec![b'x'; 60 * 1024];
    let frame = common::client_frame(OP_TEXT, &payload);
    // Send far more than the socket buffers plus the queue can hold, never reading.
    hog.stream.set_write_timeout(Some(WAIT)).unwrap();
    let mut sent = 0usize;
    while sent < 64 << 20 {
        if hog.stream.write_all(&frame).is_err() {
            break; // the server closed us: what we wait for
        }
        sent += frame.len();
    }
    let mut other = RawWs::connect(server.addr, "/echo");
    other.assert_echo("other connections are unaffected");
    // What reaches the hog ends with a 1008 close frame or a reset: never a
    // normal close, never an endless stream.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let close_code = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match hog.read_event(left) {
            ReadEvent::Frame(f) if f.opcode == OP_CLOSE => break f.close_code(),
            ReadEvent::Frame(_) => continue,
            ReadEvent::Closed => break None,
            ReadEvent::TimedOut => panic!("the slow consumer was never cut off"),
        }
    };
    assert!(
        matches!(close_code, None | Some(1008)),
        "closed with {close_code:?}"
    );
    other.assert_echo("still fine after the hog is gone");
}

#[test]
fn connections_past_the_limit_get_503_and_the_rest_keep_working() {
    let server = ServerProcess::spawn(&[("MAX_CONNECTIONS", "3"), ("RINGGATE_SHARDS", "1")]);
    let mut held: Vec<RawWs> = (0..3)
        .map(|_| RawWs::connect(server.addr, "/echo"))
        .collect();
    let refused = UpgradeRequest::new("/echo").send(server.addr);
    assert_eq!(refused.status, 503, "{refused:?}");
    refused.assert_error_json();
    for ws in &mut held {
        ws.assert_echo("still served");
    }
    // The admin reserve keeps /health answering at the limit.
    assert_eq!(common::health_connections(server.addr), Some(3));
    drop(held);
    // Slots free up once the held connections are gone.
    assert!(
        common::eventually(WAIT, || common::health_connections(server.addr) == Some(0)),
        "slots never freed"
    );
    RawWs::connect(server.addr, "/echo").assert_echo("a slot again");
}
