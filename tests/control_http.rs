//! The control plane as HTTP clients meet it, over real sockets: bodies and
//! their limits, keep-alive and its request limit, pipelining, `Expect:
//! 100-continue`, HEAD and 405, JSON errors, the admin rule with and without
//! a token, the internal admin address, answers that come later from another
//! thread while the shards keep echoing, a client that leaves before its
//! answer, `/connections` pages, the internal address's own connection
//! budget, the admin rule's browser defences (Origin, Host, JSON bodies,
//! proxied requests) and IPv4 peers on a dual-stack listener.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{connect, eventually, http_exchange, http_get, read_response, RawWs};
use ringgate::axum::body::Bytes;
use ringgate::axum::extract::Path;
use ringgate::axum::routing::{get, post};
use ringgate::axum::{Extension, Json};
use ringgate::{
    Accept, ApiError, Config, ConnCtx, Handler, Message, Reject, Server, ServerHandle, ServerView,
    UpgradeRequest,
};

const WAIT: Duration = Duration::from_secs(10);

/// Flags the deferred routes raise, for the tests to watch.
#[derive(Default)]
struct Flags {
    /// `/t/hang` started waiting.
    hang_started: AtomicBool,
    /// `/t/hang`'s future was dropped (its client left).
    hang_dropped: AtomicBool,
    /// Answers `/t/later` sent from its own thread.
    later_sent: AtomicUsize,
}

/// Sets a flag when dropped.
struct DropFlag(Arc<Flags>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.hang_dropped.store(true, Ordering::SeqCst);
    }
}

/// README's `Hub::run_on` example: one shard's open connections.
async fn count(
    Extension(s): Extension<ServerView>,
    Path(shard): Path<usize>,
) -> Result<Json<usize>, ApiError> {
    s.hub
        .run_on(shard, |ctx| ctx.connection_count())
        .await
        .map(Json)
        .map_err(|e| ApiError::not_found(e.to_string()))
}

/// A server on an ephemeral loopback port with test routes, configured from
/// the environment (so the driver variants apply) and then by `tune`.
fn start(tune: impl FnOnce(&mut Config)) -> (ServerHandle, Arc<Flags>) {
    let mut cfg = common::loopback_config();
    cfg.http.max_body = 1024;
    tune(&mut cfg);
    let flags = Arc::new(Flags::default());
    let (later, hang) = (flags.clone(), flags.clone());
    let handle = Server::builder(cfg)
        .http(
            "/t/body",
            post(|body: Bytes| async move { format!("got {} bytes", body.len()) }),
        )
        .admin(
            "/t/admin-body",
            post(|body: Bytes| async move { format!("got {} bytes", body.len()) }),
        )
        .admin(
            "/t/later",
            get(move || async move {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let flags = later.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(2));
                    flags.later_sent.fetch_add(1, Ordering::SeqCst);
                    let _ = tx.send("answered from another thread");
                });
                rx.await.unwrap_or("lost")
            }),
        )
        .admin(
            "/t/hang",
            get(move || async move {
                let _flag = DropFlag(hang.clone());
                hang.hang_started.store(true, Ordering::SeqCst);
                std::future::pending::<()>().await;
                "never"
            }),
        )
        .admin("/shards/{shard}/count", get(count))
        .start()
        .expect("server starts");
    (handle, flags)
}

/// The body of a response as text.
fn text(resp: &common::HttpResponse) -> String {
    String::from_utf8_lossy(&resp.body).into_owned()
}

fn post_body(addr: SocketAddr, body: &[u8]) -> common::HttpResponse {
    let mut req = format!(
        "POST /t/body HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    http_exchange(addr, &req)
}

/// A chunked request body of `total` bytes in 100-byte chunks.
fn chunked(total: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(100);
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend(std::iter::repeat(b'c').take(n));
        out.extend_from_slice(b"\r\n");
        left -= n;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[test]
fn bodies_by_length_and_chunked_with_a_cap() {
    let (handle, _) = start(|_| {});
    let addr = handle.local_addr();
    let resp = post_body(addr, &[b'x'; 1000]);
    assert_eq!((resp.status, text(&resp)), (200, "got 1000 bytes".into()));

    let resp = post_body(addr, &[b'x'; 1025]);
    assert_eq!(resp.status, 413, "{resp:?}");
    resp.assert_error_json();

    let head = "POST /t/body HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut req = head.as_bytes().to_vec();
    req.extend_from_slice(&chunked(700));
    let resp = http_exchange(addr, &req);
    assert_eq!((resp.status, text(&resp)), (200, "got 700 bytes".into()));

    let mut req = head.as_bytes().to_vec();
    req.extend_from_slice(&chunked(5000));
    let resp = http_exchange(addr, &req);
    assert_eq!(resp.status, 413, "a chunked body past the cap: {resp:?}");
    resp.assert_error_json();
}

#[test]
fn keep_alive_ends_with_the_request_limit() {
    let (handle, _) = start(|cfg| cfg.http.max_requests = 3);
    let mut s = connect(handle.local_addr(), WAIT);
    for i in 1..=3 {
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (resp, rest) = read_response(&mut s).expect("response on the kept connection");
        assert_eq!(resp.status, 200);
        assert!(rest.is_empty());
        assert_eq!(
            resp.has_token("Connection", "close"),
            i == 3,
            "request {i}: {resp:?}"
        );
    }
    let mut byte = [0u8; 1];
    assert!(
        matches!(s.read(&mut byte), Ok(0) | Err(_)),
        "closed after the limit"
    );
}

#[test]
fn plain_http_goes_on_when_the_handle_is_dropped() {
    // Dropping a ServerHandle without join leaves the shards running; plain
    // HTTP must keep answering with them.
    let (handle, _) = start(|_| {});
    let addr = handle.local_addr();
    drop(handle);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(http_get(addr, "/health").status, 200);
}

#[test]
fn an_idle_kept_alive_connection_is_closed() {
    let (handle, _) = start(|cfg| cfg.http.idle_timeout = Duration::from_millis(500));
    let mut s = connect(handle.local_addr(), WAIT);
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (resp, _) = read_response(&mut s).expect("first answer");
    assert_eq!(resp.status, 200);
    let idle = Instant::now();
    let mut byte = [0u8; 1];
    let end = s.read(&mut byte);
    assert!(matches!(end, Ok(0)), "closed, not {end:?}");
    let waited = idle.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (handle, _) = start(|_| {});
    let mut s = connect(handle.local_addr(), WAIT);
    let mut batch = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    batch.extend_from_slice(b"POST /t/body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    batch.extend_from_slice(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
    batch.extend_from_slice(b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(&batch).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("answers, then EOF");
    let mut rest = all.as_slice();
    let mut answers = Vec::new();
    for _ in 0..3 {
        let (status, body, used) = split_response(rest);
        answers.push((status, body));
        rest = &rest[used..];
    }
    assert_eq!(
        answers.iter().map(|a| a.0).collect::<Vec<_>>(),
        [200, 200, 404],
        "{:?}",
        String::from_utf8_lossy(&all)
    );
    assert_eq!(answers[1].1, "got 5 bytes");
    // The HEAD answer: a head with the length GET would have, and no body.
    let head = String::from_utf8_lossy(rest);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head:?}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD carries no body: {head:?}");
}

/// The status and body of the first response in `bytes` (framed by
/// Content-Length), and how many bytes it took.
fn split_response(bytes: &[u8]) -> (u16, String, usize) {
    let text = String::from_utf8_lossy(bytes);
    let head_end = text.find("\r\n\r\n").expect("a response head") + 4;
    let head = &text[..head_end];
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().unwrap())
        })
        .expect("a Content-Length");
    let body = String::from_utf8_lossy(&bytes[head_end..head_end + length]).into_owned();
    (status, body, head_end + length)
}

#[test]
fn expect_100_continue_then_the_body() {
    let (handle, _) = start(|_| {});
    let mut s = connect(handle.local_addr(), WAIT);
    s.write_all(
        b"POST /t/body HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"abcd").unwrap();
    let (resp, _) = read_response(&mut s).unwrap();
    assert_eq!((resp.status, text(&resp)), (200, "got 4 bytes".into()));

    // A body over the cap is refused before the client sends it.
    let mut s = connect(handle.local_addr(), WAIT);
    s.write_all(
        b"POST /t/body HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let (resp, _) = read_response(&mut s).unwrap();
    assert_eq!(resp.status, 413, "{resp:?}");
}

#[test]
fn wrong_method_is_405_with_allow_and_errors_are_json() {
    let (handle, _) = start(|_| {});
    let addr = handle.local_addr();
    let resp = http_exchange(
        addr,
        b"DELETE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("Allow"), Some("GET,HEAD"));
    resp.assert_error_json();
    for (request, status) in [
        (&b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"[..], 404),
        (b"BLAH\r\n\r\n", 400),
        (
            b"POST /t/body HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n",
            400,
        ),
    ] {
        let resp = http_exchange(addr, request);
        assert_eq!(
            resp.status,
            status,
            "{:?}",
            String::from_utf8_lossy(request)
        );
        resp.assert_error_json();
    }
    let big = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(9000)
    );
    let resp = http_exchange(addr, big.as_bytes());
    assert_eq!(resp.status, 431);
    resp.assert_error_json();
}

#[test]
fn admin_routes_need_the_token_when_one_is_set() {
    let (handle, _) = start(|cfg| cfg.admin.token = ringgate::config::Secret("s3cret".into()));
    let addr = handle.local_addr();
    let ask = |auth: Option<&str>| {
        let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        let req = format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
        http_exchange(addr, req.as_bytes())
    };
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic s3cret"),
        Some("Bearer s3cre"),
    ] {
        let resp = ask(auth);
        assert_eq!(resp.status, 401, "{auth:?}: {resp:?}");
        assert_eq!(
            resp.header("WWW-Authenticate"),
            Some("Bearer realm=\"ringgate\"")
        );
        resp.assert_error_json();
    }
    assert_eq!(ask(Some("Bearer s3cret")).status, 200);
    assert_eq!(ask(Some("bearer s3cret")).status, 200);
    // Public routes ask for nothing.
    assert_eq!(http_get(addr, "/health").status, 200);
    assert_eq!(http_get(addr, "/ws/health").status, 200);
}

/// This machine's address on its default route, when it has one that is
/// not loopback (a UDP "connect" sends nothing; it only picks the route).
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    probe.connect("192.0.2.1:9").ok()?;
    let ip = probe.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn without_a_token_other_peers_are_refused_admin_routes() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("skipped: this machine has no non-loopback address");
        return;
    };
    // Bound to that one address only, so the peer is not loopback.
    let (handle, _) = start(|cfg| cfg.server.host = ip.to_string());
    let addr = handle.local_addr();
    let resp = http_get(addr, "/metrics");
    assert_eq!(resp.status, 403, "{resp:?}");
    assert_eq!(resp.json()["error"]["code"], "forbidden");
    assert_eq!(
        http_get(addr, "/health").status,
        200,
        "public routes stay public"
    );
}

#[test]
fn without_a_token_loopback_peers_are_admins() {
    let (handle, _) = start(|_| {});
    let resp = http_get(handle.local_addr(), "/metrics");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(text(&resp).contains("websocket_connections_total"));
}

#[test]
fn the_internal_admin_address_serves_admin_routes_too() {
    let (handle, _) = start(|cfg| cfg.admin.listen = "127.0.0.1:0".into());
    let admin = handle.admin_addr().expect("admin listener bound");
    assert_ne!(admin, handle.local_addr());
    for path in ["/metrics", "/stats", "/connections", "/health"] {
        assert_eq!(http_get(admin, path).status, 200, "{path}");
    }
}

#[test]
fn a_later_answer_from_another_thread_does_not_hold_up_the_shards() {
    let (handle, flags) = start(|_| {});
    let addr = handle.local_addr();
    let mut clients: Vec<RawWs> = (0..4).map(|_| RawWs::connect(addr, "/echo")).collect();
    let asked = Instant::now();
    let waiter = std::thread::spawn(move || {
        let resp = http_get(addr, "/t/later");
        (resp.status, text(&resp), asked.elapsed())
    });
    let mut worst = Duration::ZERO;
    while flags.later_sent.load(Ordering::SeqCst) == 0 {
        for c in &mut clients {
            let t = Instant::now();
            c.assert_echo("still here");
            worst = worst.max(t.elapsed());
        }
        assert!(asked.elapsed() < WAIT, "the later answer never came");
    }
    let (status, body, took) = waiter.join().unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, "answered from another thread")
    );
    assert!(
        took >= Duration::from_millis(1900),
        "answered after {took:?}"
    );
    // A shard held up by the wait would show a 2 s echo.
    assert!(
        worst < Duration::from_secs(1),
        "an echo took {worst:?} while an answer was pending"
    );
}

#[test]
fn a_client_that_leaves_before_its_answer_is_forgotten() {
    let (handle, flags) = start(|_| {});
    let addr = handle.local_addr();
    let mut s = connect(addr, WAIT);
    s.write_all(b"GET /t/hang HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    assert!(eventually(WAIT, || flags
        .hang_started
        .load(Ordering::SeqCst)));
    drop(s);
    assert!(
        eventually(WAIT, || flags.hang_dropped.load(Ordering::SeqCst)),
        "the pending answer was not dropped after its client left"
    );
    // Only the asking connection is left on the control plane.
    assert!(eventually(WAIT, || {
        http_get(addr, "/stats").json()["http_connections"].as_u64() == Some(1)
    }));
}

#[test]
fn connections_come_in_pages() {
    let (handle, _) = start(|_| {});
    let addr = handle.local_addr();
    let _clients: Vec<RawWs> = (0..20).map(|_| RawWs::connect(addr, "/echo")).collect();
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = http_get(addr, &format!("/connections?limit=7&cursor={cursor}")).json();
        assert_eq!(page["total_connections"], 20, "{page}");
        let conns = page["connections"].as_object().expect("connections object");
        assert!(conns.len() <= 7);
        for (id, c) in conns {
            assert!(seen.insert(id.clone()), "{id} listed twice");
            assert_eq!(c["route"], "/echo");
            assert!(c["remote_addr"].as_str().unwrap().starts_with("127.0.0.1:"));
            assert!(c["connected_at"].as_str().unwrap().ends_with('Z'));
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!((seen.len(), pages), (20, 3));
    let per_shard: u64 = (0..handle.shards())
        .map(|i| {
            http_get(addr, &format!("/shards/{i}/count"))
                .json()
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(per_shard, 20, "run_on counts every connection once");
    let missing = http_get(addr, &format!("/shards/{}/count", handle.shards()));
    assert_eq!(missing.status, 404, "no such shard");
    missing.assert_error_json();
    let bad = http_get(addr, "/connections?limit=0");
    assert_eq!(bad.status, 400);
    bad.assert_error_json();
}

/// A response in one short line, for failure messages.
fn show(resp: &common::HttpResponse) -> String {
    let body: String = text(resp).chars().take(300).collect();
    format!("{} {body}", resp.status)
}

/// Opens `n` kept-alive plain-HTTP connections to `addr`, each past its
/// first answer (so each holds its place under the connection cap).
fn held_http(addr: SocketAddr, n: usize) -> Vec<std::net::TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = connect(addr, WAIT);
            s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                .unwrap();
            let (resp, _) = read_response(&mut s).expect("an answer on a kept connection");
            assert_eq!(resp.status, 200);
            s
        })
        .collect()
}

#[test]
fn the_internal_address_answers_when_the_public_http_cap_is_full() {
    let (handle, _) = start(|cfg| {
        cfg.http.max_connections = 3;
        cfg.admin.listen = "127.0.0.1:0".into();
    });
    let public = handle.local_addr();
    let internal = handle.admin_addr().expect("admin listener bound");
    let _held = held_http(public, 3);
    let refused = http_get(public, "/health");
    assert_eq!(
        refused.status,
        503,
        "the public cap is full: {}",
        show(&refused)
    );
    for path in ["/health", "/metrics", "/stats"] {
        let resp = http_get(internal, path);
        assert_eq!(
            resp.status,
            200,
            "{path} on the internal address: {}",
            show(&resp)
        );
    }
}

#[test]
fn the_internal_address_has_a_budget_of_its_own_and_counts_what_it_refuses() {
    let (handle, _) = start(|cfg| {
        cfg.admin.listen = "127.0.0.1:0".into();
        cfg.admin.max_connections = 2;
    });
    let internal = handle.admin_addr().expect("admin listener bound");
    let held = held_http(internal, 2);
    let refused = http_get(internal, "/health");
    assert_eq!(refused.status, 503, "{}", show(&refused));
    assert_eq!(refused.json()["error"]["code"], "http_busy");
    // The public port is not held up by the internal address being full.
    assert_eq!(http_get(handle.local_addr(), "/health").status, 200);
    drop(held);
    let refusals = |metrics: &str| -> Option<u64> {
        let line = metrics
            .lines()
            .find(|l| l.starts_with("ringgate_http_refused_total{listener=\"internal\"} "))?;
        line.rsplit(' ').next()?.parse().ok()
    };
    // Asking again while the held places are being given back may be refused too.
    assert!(eventually(WAIT, || {
        let resp = http_get(internal, "/metrics");
        resp.status == 200 && refusals(&text(&resp)).is_some_and(|n| n >= 1)
    }));
}

#[test]
fn ipv4_loopback_is_admin_on_a_dual_stack_listener() {
    let mut cfg = common::loopback_config();
    cfg.server.host = "::".into();
    let handle = match Server::builder(cfg).start() {
        Ok(handle) => handle,
        Err(e) => {
            eprintln!("skipped: no IPv6 listener on this machine ({e})");
            return;
        }
    };
    let v4 = SocketAddr::from(([127, 0, 0, 1], handle.local_addr().port()));
    if std::net::TcpStream::connect_timeout(&v4, WAIT).is_err() {
        eprintln!("skipped: the IPv6 listener is not dual-stack here (net.ipv6.bindv6only)");
        return;
    }
    let _client = RawWs::connect(v4, "/echo");
    let resp = http_get(v4, "/connections");
    assert_eq!(resp.status, 200, "127.0.0.1 through [::]: {}", show(&resp));
    let doc = resp.json();
    let remotes: Vec<&str> = doc["connections"]
        .as_object()
        .expect("connections object")
        .values()
        .map(|c| c["remote_addr"].as_str().unwrap())
        .collect();
    assert_eq!(remotes.len(), 1, "{doc}");
    assert!(remotes[0].starts_with("127.0.0.1:"), "{remotes:?}");
}

/// Names each connection after the rest of its path (`/named/{label}`), as
/// the OCPP gateway names charge points.
struct Named;

impl Handler for Named {
    fn on_upgrade(&self, req: &UpgradeRequest<'_>) -> Result<Accept, Reject> {
        let label = req.path().trim_start_matches("/named/").to_owned();
        Ok(Accept::new().label(label))
    }

    fn on_message(&self, _ctx: &mut ConnCtx<'_>, _msg: Message<'_>) {}
}

/// The connection ids `/connections` lists.
fn listed_ids(doc: &serde_json::Value) -> BTreeSet<u64> {
    doc["connections"]
        .as_object()
        .expect("connections object")
        .values()
        .map(|c| c["connection_id"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_label_never_hides_another_connection() {
    let mut cfg = common::loopback_config();
    // One shard: ids sort by slot, and a freed slot is the next one used.
    cfg.server.shards = 1;
    let handle = Server::builder(cfg)
        .websocket("/named/*", Named)
        .start()
        .expect("server starts");
    let addr = handle.local_addr();
    let first = RawWs::connect(addr, "/echo");
    let _second = RawWs::connect(addr, "/echo");
    let second_id = *listed_ids(&http_get(addr, "/connections").json())
        .last()
        .expect("two connections");
    drop(first);
    assert!(eventually(WAIT, || {
        http_get(addr, "/connections").json()["total_connections"] == 1
    }));
    // Takes the first one's slot, so its id sorts before the second's, and
    // it is named like the second's id.
    let _named = RawWs::connect(addr, &format!("/named/{second_id}"));
    let _twin = RawWs::connect(addr, &format!("/named/{second_id}"));
    let doc = http_get(addr, "/connections").json();
    assert_eq!(doc["total_connections"], 3, "{doc}");
    let ids = listed_ids(&doc);
    assert_eq!(ids.len(), 3, "a connection is hidden: {doc}");
    assert!(ids.contains(&second_id), "{doc}");
}

/// `POST /t/admin-body` with `headers` (whole lines) and `body`.
fn admin_post(addr: SocketAddr, headers: &str, body: &str) -> common::HttpResponse {
    let req = format!(
        "POST /t/admin-body HTTP/1.1\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    http_exchange(addr, req.as_bytes())
}

#[test]
fn without_a_token_what_a_browser_page_could_send_is_refused() {
    let (handle, _) = start(|_| {});
    let addr = handle.local_addr();
    let port = addr.port();
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    let json = "Content-Type: application/json\r\n";
    // What curl and requests send on this machine passes.
    for headers in [
        format!("{host}{json}"),
        format!("Host: localhost:{port}\r\nContent-Type: Application/JSON; charset=utf-8\r\n"),
        format!("{host}{json}Origin: http://127.0.0.1:{port}\r\n"),
        format!("Host: [::1]:{port}\r\n{json}Origin: http://localhost:{port}\r\n"),
    ] {
        let resp = admin_post(addr, &headers, "{}");
        assert_eq!(
            (resp.status, text(&resp)),
            (200, "got 2 bytes".into()),
            "{headers:?}"
        );
    }
    for (headers, status, code) in [
        // A page elsewhere posting a simple (unpreflighted) request.
        (
            format!("{host}Content-Type: text/plain\r\nOrigin: https://evil.example\r\n"),
            403,
            "origin_refused",
        ),
        (
            format!("{host}{json}Origin: null\r\n"),
            403,
            "origin_refused",
        ),
        (
            format!("{host}{json}Origin: http://127.0.0.1.evil.example:{port}\r\n"),
            403,
            "origin_refused",
        ),
        // DNS rebinding: the page's own name, resolved to 127.0.0.1.
        (
            format!("Host: evil.example:{port}\r\n{json}Origin: http://evil.example:{port}\r\n"),
            403,
            "host_refused",
        ),
        (
            format!("Host: evil.example:{port}\r\n{json}"),
            403,
            "host_refused",
        ),
        // A reverse proxy on this host relaying someone else's request.
        (
            format!("{host}{json}X-Forwarded-For: 203.0.113.9\r\n"),
            403,
            "proxied_request",
        ),
        (
            format!("{host}{json}Forwarded: for=203.0.113.9\r\n"),
            403,
            "proxied_request",
        ),
        // Bodies are JSON, declared as such.
        (
            format!("{host}Content-Type: text/plain\r\n"),
            415,
            "unsupported_media_type",
        ),
        (
            format!("{host}Content-Type: application/x-www-form-urlencoded\r\n"),
            415,
            "unsupported_media_type",
        ),
        (host.clone(), 415, "unsupported_media_type"),
    ] {
        let resp = admin_post(addr, &headers, "{}");
        assert_eq!(resp.status, status, "{headers:?}: {}", show(&resp));
        assert_eq!(resp.json()["error"]["code"], code, "{headers:?}");
    }
    // A read from a page elsewhere is refused too; public routes ask nothing.
    let get = |path: &str, origin: &str| {
        let req =
            format!("GET {path} HTTP/1.1\r\n{host}Origin: {origin}\r\nConnection: close\r\n\r\n");
        http_exchange(addr, req.as_bytes()).status
    };
    assert_eq!(get("/metrics", "https://evil.example"), 403);
    assert_eq!(get("/health", "https://evil.example"), 200);
}

#[test]
fn with_a_token_admin_bodies_are_json_and_any_host_may_call() {
    let (handle, _) = start(|cfg| cfg.admin.token = ringgate::config::Secret("s3cret".into()));
    let addr = handle.local_addr();
    let auth = "Authorization: Bearer s3cret\r\n";
    let resp = admin_post(
        addr,
        &format!("Host: gw.example.com\r\n{auth}Content-Type: application/json\r\nX-Forwarded-For: 203.0.113.9\r\n"),
        "{}",
    );
    assert_eq!(resp.status, 200, "{}", show(&resp));
    let resp = admin_post(
        addr,
        &format!("Host: gw.example.com\r\n{auth}Content-Type: text/plain\r\n"),
        "{}",
    );
    assert_eq!(resp.status, 415, "{}", show(&resp));
    assert_eq!(resp.json()["error"]["code"], "unsupported_media_type");
}

#[test]
fn without_a_token_an_internal_address_takes_the_admin_routes_off_the_public_port() {
    let (handle, _) = start(|cfg| cfg.admin.listen = "127.0.0.1:0".into());
    let public = handle.local_addr();
    let internal = handle.admin_addr().expect("admin listener bound");
    let resp = http_get(public, "/metrics");
    assert_eq!(resp.status, 403, "{}", show(&resp));
    assert_eq!(resp.json()["error"]["code"], "internal_only");
    assert_eq!(http_get(public, "/health").status, 200);
    assert_eq!(http_get(internal, "/metrics").status, 200);
}

#[test]
fn without_a_token_more_host_names_can_be_allowed() {
    let (handle, _) = start(|cfg| cfg.admin.hosts = vec!["gw.internal".into()]);
    let addr = handle.local_addr();
    let port = addr.port();
    let json = "Content-Type: application/json\r\n";
    let resp = admin_post(
        addr,
        &format!("Host: GW.internal:{port}\r\n{json}Origin: http://gw.internal:{port}\r\n"),
        "{}",
    );
    assert_eq!(resp.status, 200, "{}", show(&resp));
    let resp = admin_post(
        addr,
        &format!("Host: other.internal:{port}\r\n{json}"),
        "{}",
    );
    assert_eq!(resp.status, 403, "{}", show(&resp));
    assert_eq!(resp.json()["error"]["code"], "host_refused");
}
