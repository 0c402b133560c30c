//! `/health`, `/metrics` and `/stats` on the internal admin address answer promptly while a
//! shard is too busy to reach its mailbox: health reads counters only, and the figures of a
//! shard that does not answer within the control plane's wait are its last copy (counted in
//! `ringgate_metrics_stale_shards`), never older than what an earlier scrape showed. (On the
//! public port a request waits for whichever shard accepted it.)

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{http_get, RawWs};
use ringgate::Server;

/// A shard held busy longer than any answer may take.
const BUSY: Duration = Duration::from_secs(3);

fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn timed_get(addr: SocketAddr, path: &str) -> (Duration, u16, String) {
    let started = Instant::now();
    let resp = http_get(addr, path);
    (
        started.elapsed(),
        resp.status,
        String::from_utf8_lossy(&resp.body).into_owned(),
    )
}

#[test]
fn health_metrics_and_stats_answer_while_a_shard_is_busy() {
    let mut cfg = common::loopback_config();
    cfg.server.shards = 2;
    cfg.admin.listen = "127.0.0.1:0".into();
    let handle = Server::builder(cfg).start().expect("server starts");
    let mut ws = RawWs::connect(handle.local_addr(), "/echo");
    let addr = handle.admin_addr().expect("the internal address");
    ws.assert_echo("before");
    let (_, status, before) = timed_get(addr, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(sample(&before, "ringgate_metrics_stale_shards"), Some(0.0));
    let messages = |text: &str| {
        sample(
            text,
            "websocket_messages_total{direction=\"in\",route=\"/echo\"}",
        )
        .unwrap_or(0.0)
    };
    assert_eq!(messages(&before), 1.0);

    // Shard 1 sleeps: it reaches its mailbox again only after BUSY.
    handle
        .hub()
        .post_run(1, |_| std::thread::sleep(BUSY))
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let (took, status, _) = timed_get(addr, "/health");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "/health took {took:?}");
    let (took, status, during) = timed_get(addr, "/metrics");
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "/metrics took {took:?}");
    assert_eq!(sample(&during, "ringgate_metrics_stale_shards"), Some(1.0));
    assert!(
        messages(&during) >= messages(&before),
        "counters never go back"
    );
    let (took, status, stats) = timed_get(addr, "/stats");
    assert_eq!(status, 200, "{stats}");
    assert!(took < Duration::from_secs(1), "/stats took {took:?}");

    // Once the shard is back, the figures are fresh again.
    std::thread::sleep(BUSY);
    let (_, _, after) = timed_get(addr, "/metrics");
    assert_eq!(sample(&after, "ringgate_metrics_stale_shards"), Some(0.0));
}
