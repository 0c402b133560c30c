//! Upgrades whose handler answers later (`UpgradeRequest::defer`), over real
//! sockets: an answer from another thread accepts (with an identity) or
//! refuses; no answer ends in 503 at the upgrade timeout; a dropped
//! `PendingUpgrade` refuses with 500; a client that leaves first is
//! forgotten and its late answer dropped; the parking bound refuses with 503;
//! frames sent before the 101 are read once it is; and the shard serves
//! other connections all the while. Each outcome is counted on `/metrics`.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client_frame, connect, eventually, parse_frame, read_response, RawWs, OP_TEXT};
use ringgate::{
    Accept, ConnCtx, Handler, Message, PendingUpgrade, Reject, Server, ServerHandle, UpgradeRequest,
};

const WAIT: Duration = Duration::from_secs(5);

/// Counts the identities dropped, so a test sees that a late answer's
/// identity was not leaked.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Defers every upgrade on `/later?do=...`: `accept` and `reject` are
/// answered by a thread after `ms` milliseconds, `drop` drops the handle,
/// `keep` keeps it forever (never answered). Messages are echoed with the
/// identity's tag in front.
struct Later {
    kept: Arc<Mutex<Vec<PendingUpgrade>>>,
    dropped: Arc<AtomicUsize>,
}

impl Handler for Later {
    fn on_upgrade(&self, req: &UpgradeRequest<'_>) -> Result<Accept, Reject> {
        let action = req.query_param("do").unwrap_or_default();
        let ms: u64 = req
            .query_param("ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(50);
        if action == "now" {
            return Ok(Accept::new());
        }
        if action == "wrong" {
            return Ok(Accept::deferred());
        }
        let pending = req.defer()?;
        let dropped = self.dropped.clone();
        match action.as_str() {
            "keep" => self.kept.lock().unwrap().push(pending),
            "drop" => drop(pending),
            _ => {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(ms));
                    let answer = if action == "reject" {
                        Err(Reject::new(401, "denied", "not today"))
                    } else {
                        Ok(Accept::new().identity((String::from("tag"), Tracked(dropped))))
                    };
                    let _ = pending.answer(answer);
                });
            }
        }
        Ok(Accept::deferred())
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        let Message::Text(text) = msg else { return };
        let tag = ctx
            .identity::<(String, Tracked)>()
            .map_or("none", |(tag, _)| tag.as_str())
            .to_owned();
        ctx.send(Message::Text(&format!("{tag}:{text}")));
    }
}

struct Server1 {
    handle: ServerHandle,
    kept: Arc<Mutex<Vec<PendingUpgrade>>>,
    dropped: Arc<AtomicUsize>,
}

fn start(max_pending: usize, timeout: Duration) -> Server1 {
    let mut cfg = common::loopback_config();
    cfg.server.shards = 1;
    cfg.server.max_pending_upgrades = max_pending;
    cfg.server.upgrade_timeout = timeout;
    let kept = Arc::new(Mutex::new(Vec::new()));
    let dropped = Arc::new(AtomicUsize::new(0));
    let handle = Server::builder(cfg)
        .websocket(
            "/later",
            Later {
                kept: kept.clone(),
                dropped: dropped.clone(),
            },
        )
        .start()
        .expect("server starts");
    Server1 {
        handle,
        kept,
        dropped,
    }
}

fn upgrade(addr: SocketAddr, query: &str) -> common::HttpResponse {
    common::UpgradeRequest::new(&format!("/later?{query}")).send(addr)
}

/// One sample of the deferred-upgrade counters on `/metrics`.
fn deferred(addr: SocketAddr, outcome: &str) -> u64 {
    let text = String::from_utf8(common::http_get(addr, "/metrics").body).unwrap();
    let line = format!("ringgate_upgrades_deferred_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .map_or(0, |n| n.trim().parse().unwrap())
}

fn pending(addr: SocketAddr) -> u64 {
    let text = String::from_utf8(common::http_get(addr, "/metrics").body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("ringgate_upgrades_pending "))
        .map_or(u64::MAX, |n| n.trim().parse().unwrap())
}

#[test]
fn an_answer_from_another_thread_accepts_with_its_identity() {
    let s = start(16, WAIT);
    let addr = s.handle.local_addr();
    let mut ws = RawWs::upgrade_with(
        connect(addr, WAIT),
        &common::UpgradeRequest::new("/later?do=accept&ms=100"),
    );
    ws.send_text("hi");
    assert_eq!(common::read_text(&mut ws, WAIT), "tag:hi");
    assert_eq!(deferred(addr, "deferred"), 1);
    assert_eq!(deferred(addr, "accepted"), 1);
    assert_eq!(pending(addr), 0);
}

#[test]
fn an_answer_from_another_thread_refuses_with_its_status() {
    let s = start(16, WAIT);
    let addr = s.handle.local_addr();
    let resp = upgrade(addr, "do=reject");
    assert_eq!(resp.status, 401, "{resp:?}");
    assert_eq!(resp.json()["error"]["code"], "denied");
    assert_eq!(deferred(addr, "rejected"), 1);
}

#[test]
fn no_answer_in_time_is_a_503_and_a_dropped_handle_a_500() {
    let s = start(16, Duration::from_millis(300));
    let addr = s.handle.local_addr();
    let started = Instant::now();
    let resp = upgrade(addr, "do=keep");
    assert_eq!(resp.status, 503, "{resp:?}");
    assert_eq!(resp.json()["error"]["code"], "upgrade_timeout");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(deferred(addr, "timed_out"), 1);
    // The answer that comes after the timeout is dropped.
    let late = s.kept.lock().unwrap().pop().unwrap();
    late.accept(Accept::new()).unwrap();

    let resp = upgrade(addr, "do=drop");
    assert_eq!(resp.status, 500, "{resp:?}");
    assert_eq!(resp.json()["error"]["code"], "internal_error");

    let resp = upgrade(addr, "do=wrong");
    assert_eq!(
        resp.status, 500,
        "Accept::deferred() without defer(): {resp:?}"
    );
}

#[test]
fn a_client_that_leaves_first_is_forgotten_and_its_late_answer_dropped() {
    let s = start(16, WAIT);
    let addr = s.handle.local_addr();
    let mut stream = connect(addr, WAIT);
    stream
        .write_all(&common::UpgradeRequest::new("/later?do=accept&ms=500").to_bytes())
        .unwrap();
    assert!(eventually(WAIT, || pending(addr) == 1), "parked");
    drop(stream);
    assert!(
        eventually(WAIT, || pending(addr) == 0
            && deferred(addr, "abandoned") == 1),
        "the slot is freed as soon as the client goes"
    );
    // The answer comes 500 ms after the upgrade: its identity is dropped.
    assert!(eventually(WAIT, || s.dropped.load(Ordering::SeqCst) == 1));
    assert_eq!(deferred(addr, "accepted"), 0);
    assert_eq!(common::health_connections(addr), Some(0));
}

#[test]
fn the_parking_bound_refuses_and_the_shard_serves_on_meanwhile() {
    let s = start(2, WAIT);
    let addr = s.handle.local_addr();
    let mut parked = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(addr, WAIT);
        stream
            .write_all(&common::UpgradeRequest::new("/later?do=keep").to_bytes())
            .unwrap();
        parked.push(stream);
    }
    assert!(eventually(WAIT, || pending(addr) == 2));
    let resp = upgrade(addr, "do=keep");
    assert_eq!(resp.status, 503, "{resp:?}");
    assert_eq!(resp.json()["error"]["code"], "upgrade_busy");
    assert_eq!(deferred(addr, "busy"), 1);
    // The one shard answers other connections while two upgrades wait.
    let mut ws = RawWs::upgrade_with(
        connect(addr, WAIT),
        &common::UpgradeRequest::new("/later?do=now"),
    );
    ws.send_text("still here");
    assert_eq!(common::read_text(&mut ws, WAIT), "none:still here");
    // Answering the parked ones opens them.
    for pending in s.kept.lock().unwrap().drain(..) {
        pending.accept(Accept::new()).unwrap();
    }
    for stream in &mut parked {
        let (resp, _) = read_response(stream).unwrap();
        assert_eq!(resp.status, 101);
    }
    assert!(eventually(WAIT, || pending(addr) == 0));
}

#[test]
fn frames_sent_before_the_answer_are_read_once_it_accepts() {
    let s = start(16, WAIT);
    let addr = s.handle.local_addr();
    let mut stream = connect(addr, WAIT);
    let mut bytes = common::UpgradeRequest::new("/later?do=accept&ms=200").to_bytes();
    bytes.extend(client_frame(OP_TEXT, b"early"));
    stream.write_all(&bytes).unwrap();
    stream.write_all(&client_frame(OP_TEXT, b"later")).unwrap();
    let (resp, mut rest) = read_response(&mut stream).unwrap();
    assert_eq!(resp.status, 101);
    let mut texts = Vec::new();
    let deadline = Instant::now() + WAIT;
    while texts.len() < 2 && Instant::now() < deadline {
        match parse_frame(&rest) {
            Some((frame, used)) => {
                texts.push(String::from_utf8(frame.payload).unwrap());
                rest.drain(..used);
            }
            None => {
                let mut buf = [0u8; 4096];
                let n = std::io::Read::read(&mut stream, &mut buf).unwrap();
                rest.extend_from_slice(&buf[..n]);
            }
        }
    }
    assert_eq!(texts, ["tag:early", "tag:later"]);
}
