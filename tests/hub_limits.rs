//! The hub under pressure, through the library API on an in-process server:
//! a flood into a shard's mailbox is refused past its bound with an error
//! the sender can count (and the shard counts too), every accepted message is
//! delivered, the flood does not starve the shard's own sockets, and a
//! connection id never names a later connection in the same slot.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{connect, read_response, RawWs, UpgradeRequest, OP_TEXT};
use ringgate::hub::HubError;
use ringgate::{Config, ConnCtx, ConnId, Handler, Message, Server};

const CHANNEL: &str = "flood";

/// `/sub` connections subscribe to [`CHANNEL`]; every connection echoes and
/// records its id.
struct Recorder {
    ids: Arc<Mutex<Vec<ConnId>>>,
}

impl Handler for Recorder {
    fn on_open(&self, ctx: &mut ConnCtx<'_>) {
        ctx.subscribe(CHANNEL);
        self.ids.lock().unwrap().push(ctx.id());
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        ctx.send(msg);
    }
}

fn start(configure: impl FnOnce(&mut Config)) -> (ringgate::ServerHandle, Arc<Mutex<Vec<ConnId>>>) {
    let mut cfg = common::loopback_config();
    cfg.server.shards = 1;
    configure(&mut cfg);
    let ids = Arc::new(Mutex::new(Vec::new()));
    let handle = Server::builder(cfg)
        .websocket("/sub", Recorder { ids: ids.clone() })
        .start()
        .expect("server starts");
    (handle, ids)
}

/// Reads text messages until `expected` arrived or nothing came for 3 s;
/// returns how many arrived.
fn count_messages(ws: &mut RawWs, expected: usize) -> usize {
    let mut got = 0;
    while got < expected {
        match ws.read_event(Duration::from_secs(3)) {
            common::ReadEvent::Frame(f) if f.opcode == OP_TEXT => got += 1,
            common::ReadEvent::Frame(_) => {}
            _ => break,
        }
    }
    got
}

#[test]
fn a_full_mailbox_refuses_with_an_error_and_delivers_all_it_took() {
    let (server, _) = start(|cfg| cfg.server.mailbox_commands = 64);
    let mut subscriber = RawWs::connect(server.local_addr(), "/sub");
    subscriber.assert_echo("subscribed");
    let hub = server.hub();
    let (mut accepted, mut refused) = (0usize, 0u64);
    for i in 0..50_000 {
        match hub.broadcast(CHANNEL, Message::Text(&format!("m{i}"))) {
            Ok(()) => accepted += 1,
            Err(HubError::MailboxFull { shards: 1 }) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(
        refused > 0,
        "50,000 posts as fast as possible never filled a mailbox of 64"
    );
    assert_eq!(
        hub.stats().shards[0].mailbox_rejected,
        refused,
        "the shard counts what it refused"
    );
    assert_eq!(
        count_messages(&mut subscriber, accepted),
        accepted,
        "every accepted broadcast arrives"
    );
    subscriber.assert_echo("and nothing more");
    drop(subscriber);
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn a_flood_of_broadcasts_does_not_starve_the_shard() {
    let (server, _) = start(|_| {});
    let addr = server.local_addr();
    // Subscribers that read (and discard) as fast as the kernel hands bytes
    // over, in their own threads, so every delivery is real work.
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let ws = RawWs::connect(addr, "/sub");
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut stream = ws.stream;
                stream
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let mut sink = vec![0u8; 1 << 16];
                while !stop.load(Ordering::Relaxed) {
                    match stream.read(&mut sink) {
                        Ok(0) => panic!("a subscriber was closed"),
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => panic!("a subscriber failed: {e}"),
                    }
                }
            })
        })
        .collect();
    // The probe echoes on the same shard, outside the channel.
    let mut probe = RawWs::connect(addr, "/echo");
    probe.assert_echo("ready");
    let hub = server.hub();
    let flooder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut posted = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if hub.broadcast(CHANNEL, Message::Text("flood")).is_ok() {
                    posted += 1;
                }
            }
            posted
        })
    };
    let mut worst = Duration::ZERO;
    for i in 0..10 {
        let sent = Instant::now();
        probe.assert_echo(&format!("probe {i}"));
        worst = worst.max(sent.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let posted = flooder.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    assert!(posted > 1000, "the flood posted only {posted}");
    assert!(
        worst < Duration::from_secs(2),
        "an echo took {worst:?} on a shard flooded with {posted} broadcasts"
    );
    drop(probe);
    server.shutdown();
    server.join().unwrap();
}

/// Connects, upgrades and drops the connection with a reset (no TIME_WAIT).
fn connect_and_leave(addr: SocketAddr) {
    let mut s: TcpStream = connect(addr, Duration::from_secs(10));
    s.write_all(&UpgradeRequest::new("/sub").to_bytes())
        .unwrap();
    let (resp, _) = read_response(&mut s).expect("101");
    assert_eq!(resp.status, 101);
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

#[test]
fn connection_ids_are_not_reused_when_slots_are() {
    // 70,000 connections through a handful of slots: past 65,536 a 16-bit
    // generation would repeat.
    const THREADS: usize = 4;
    const EACH: usize = 17_500;
    let (server, ids) = start(|_| {});
    let addr = server.local_addr();
    let workers: Vec<_> = (0..THREADS)
        .map(|_| std::thread::spawn(move || (0..EACH).for_each(|_| connect_and_leave(addr))))
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert!(
        common::eventually(Duration::from_secs(10), || ids.lock().unwrap().len()
            == THREADS * EACH),
        "every connection opened"
    );
    let ids = ids.lock().unwrap();
    let slots: HashSet<u64> = ids.iter().map(|id| id.as_u64() >> 32).collect();
    let unique: HashSet<&ConnId> = ids.iter().collect();
    assert!(
        slots.len() < 100,
        "the churn went through few slots ({})",
        slots.len()
    );
    assert_eq!(unique.len(), ids.len(), "an id named two connections");
    drop(ids);
    server.shutdown();
    server.join().unwrap();
}
