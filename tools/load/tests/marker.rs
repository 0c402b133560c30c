//! Idle's `--expect-marker` (what scripts/scale.sh's broadcast preset runs):
//! against ringgate's own realtime service, in process on two shards
//! (anonymous users, presence off), an admin `POST /ws/broadcast` must reach
//! every connection exactly once, the tool must say so on stderr, and
//! SIGUSR1 must end its hold; against a fake that sends the marker twice to
//! some connections and never to others, the counts must show it and the
//! run must fail.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringgate::{Accept, Config, ConnCtx, Handler, Message, Reject, Server, ServerHandle};
use ringgate::{ServerBuilder, UpgradeRequest};
use serde_json::Value;

const MARKER: &str = "rg-broadcast-7f3a";

fn builder(shards: usize) -> ServerBuilder {
    let mut cfg = Config::default();
    cfg.server.host = "127.0.0.1".into();
    cfg.server.port = 0;
    cfg.server.shards = shards;
    cfg.server.io = common::driver();
    cfg.realtime.presence = false;
    cfg.websocket.ping_period = Duration::ZERO;
    Server::builder(cfg)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// `POST path` with a JSON `body` on one fresh connection: status and body.
fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

/// Waits up to `limit` for `done`.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Starts `idle` with `flags` against `url`, stderr lines on the receiver.
fn idle(url: &str, flags: &[&str]) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringgate-load"))
        .arg("idle")
        .args(flags)
        .args(["--url", url, "--json", "--timeout", "40s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ringgate-load runs");
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

fn stop(server: ServerHandle) {
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn a_broadcast_reaches_every_connection_once_and_sigusr1_ends_the_hold() {
    let server = ringgate::services::realtime::install(builder(2))
        .expect("the realtime service installs")
        .start()
        .expect("the server starts");
    let addr = server.local_addr();
    let started = Instant::now();
    let (child, stderr) = idle(
        &format!("ws://{addr}/ws"),
        &[
            "-c",
            "300",
            "--threads",
            "2",
            "--duration",
            "30s",
            "--expect-marker",
            MARKER,
        ],
    );
    let hub = server.hub();
    assert!(
        wait_for(Duration::from_secs(15), || hub.stats().connections >= 300),
        "only {} connections",
        hub.stats().connections
    );
    let sent_ms = unix_ms();
    let body = format!(r#"{{"message_type":"system_message","data":{{"marker":"{MARKER}"}}}}"#);
    let (status, answer) = post(addr, "/ws/broadcast", &body);
    assert_eq!(
        (status, &answer["delivered"]),
        (200, &Value::from(300)),
        "{answer}"
    );

    let notice = "ringgate-load: marker received on all 300 connections";
    let end = Instant::now() + Duration::from_secs(15);
    let mut lines = Vec::new();
    while !lines.iter().any(|l| l == notice) {
        let left = end.saturating_duration_since(Instant::now());
        match stderr.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(e) => panic!("no notice on stderr ({e}): {lines:?}"),
        }
    }
    // SAFETY: a plain kill(2) of the child we spawned.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) }, 0);
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "SIGUSR1 did not end the 30 s hold"
    );
    assert!(out.status.success(), "exit {:?}", out.status);
    let r: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let m = &r["marker"];
    assert_eq!(m["marker"], MARKER, "{r}");
    assert_eq!(
        (&m["exactly_once"], &m["twice_or_more"], &m["none"]),
        (&Value::from(300), &Value::from(0), &Value::from(0)),
        "{r}"
    );
    assert_eq!(
        (&m["messages"], &m["all_exactly_once"]),
        (&Value::from(300), &Value::Bool(true))
    );
    assert!(
        m["other_messages"].as_u64().unwrap() >= 300,
        "the welcomes: {r}"
    );
    let (first, last) = (
        m["first_ms"].as_u64().unwrap(),
        m["last_ms"].as_u64().unwrap(),
    );
    assert!(
        sent_ms <= first && first <= last && last <= unix_ms(),
        "{r}"
    );
    assert_eq!(
        (&r["up_at_end"], &r["failures"]),
        (&Value::from(300), &serde_json::json!({}))
    );
    stop(server);
}

/// Sends connection n, on open, the marker `n % 3` times: none, once, twice.
struct Uneven {
    opened: AtomicU64,
}

impl Handler for Uneven {
    fn on_upgrade(&self, _req: &UpgradeRequest<'_>) -> Result<Accept, Reject> {
        Ok(Accept::new())
    }

    fn on_open(&self, ctx: &mut ConnCtx<'_>) {
        ctx.send(Message::Text(r#"{"message_type":"welcome"}"#));
        let n = self.opened.fetch_add(1, Ordering::Relaxed);
        for _ in 0..n % 3 {
            ctx.send(Message::Text(&format!(r#"{{"marker":"{MARKER}"}}"#)));
            // The marker in a binary message does not count.
            ctx.send(Message::Binary(MARKER.as_bytes()));
        }
    }

    fn on_message(&self, _ctx: &mut ConnCtx<'_>, _msg: Message<'_>) {}
}

#[test]
fn missing_and_duplicate_markers_are_counted_and_fail_the_run() {
    let handler = Uneven {
        opened: AtomicU64::new(0),
    };
    let server = builder(1)
        .websocket("/uneven", handler)
        .start()
        .expect("the server starts");
    let url = format!("ws://{}/uneven", server.local_addr());
    let (child, stderr) = idle(
        &url,
        &["-c", "30", "--duration", "500ms", "--expect-marker", MARKER],
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a connection without the marker fails the run"
    );
    // The child is gone: its stderr is at its end.
    let lines: Vec<String> = stderr.iter().collect();
    assert!(
        !lines.iter().any(|l| l.contains("marker received")),
        "no notice while some lack it: {lines:?}"
    );
    let r: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let m = &r["marker"];
    assert_eq!(
        (&m["exactly_once"], &m["twice_or_more"], &m["none"]),
        (&Value::from(10), &Value::from(10), &Value::from(10)),
        "{r}"
    );
    assert_eq!(
        (&m["messages"], &m["all_exactly_once"]),
        (&Value::from(30), &Value::Bool(false))
    );
    // 30 welcomes and 30 binary copies.
    assert_eq!(m["other_messages"], 60, "{r}");
    stop(server);
}
