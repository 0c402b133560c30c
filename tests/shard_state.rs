//! The library API the realtime service stands on, over real sockets:
//! shard-local values shared by a shard's connections and code run there,
//! acting on other connections from a shard (subscribe, identity, local
//! broadcast), fire-and-forget runs, a route's own message size limit, and
//! a service's figures on `/metrics`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{block_on, eventually, http_get, RawWs};
use ringgate::prometheus_client::collector::Collector;
use ringgate::prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use ringgate::prometheus_client::metrics::gauge::ConstGauge;
use ringgate::{Accept, ConnCtx, Frame, Handler, Message, Reject, Server, ServerHandle};

const WAIT: Duration = Duration::from_secs(5);

/// Messages this shard's connections sent, kept as a shard-local value.
#[derive(Default)]
struct Seen(u64);

/// "count" answers the shard's running total; "limit" routes accept
/// messages up to 16 bytes.
struct Local {
    limit: Option<usize>,
}

impl Handler for Local {
    fn on_upgrade(&self, _: &ringgate::UpgradeRequest<'_>) -> Result<Accept, Reject> {
        let accept = Accept::new().identity(String::new());
        Ok(match self.limit {
            Some(limit) => accept.max_message_size(limit),
            None => accept,
        })
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        ctx.local::<Seen>().0 += 1;
        let total = ctx.local::<Seen>().0;
        ctx.send(Message::Text(&format!("{total} {}", msg.as_bytes().len())));
    }
}

fn start() -> ServerHandle {
    let mut cfg = common::loopback_config();
    cfg.server.shards = 1;
    Server::builder(cfg)
        .websocket("/local", Local { limit: None })
        .websocket("/small", Local { limit: Some(16) })
        .start()
        .expect("server starts")
}

fn text(ws: &mut RawWs) -> String {
    common::read_text(ws, WAIT)
}

#[test]
fn a_shard_local_value_is_shared_by_the_shards_connections_and_code_run_there() {
    let handle = start();
    let mut a = RawWs::connect(handle.local_addr(), "/local");
    let mut b = RawWs::connect(handle.local_addr(), "/local");
    a.send_text("x");
    assert_eq!(text(&mut a), "1 1");
    b.send_text("yy");
    assert_eq!(text(&mut b), "2 2", "b sees a's count: one value per shard");
    let seen = block_on(handle.hub().run_on(0, |shard| shard.local::<Seen>().0));
    assert_eq!(seen, Ok(2));
}

#[test]
fn code_on_a_shard_subscribes_changes_identities_and_broadcasts_one_frame() {
    let handle = start();
    let hub = handle.hub();
    let mut clients: Vec<RawWs> = (0..3)
        .map(|_| RawWs::connect(handle.local_addr(), "/local"))
        .collect();
    assert!(eventually(WAIT, || hub.stats().connections == 3));
    let ids = block_on(hub.run_on(0, |shard| {
        shard
            .connections_after(None, 10)
            .into_iter()
            .map(|c| c.id)
            .collect::<Vec<_>>()
    }))
    .unwrap();
    let (first, second) = (ids[0], ids[1]);
    let frame = Frame::new(Message::Text("to the pair"));
    let reached = block_on(hub.run_on(0, move |shard| {
        assert!(shard.subscribe(first, "pair") && shard.subscribe(second, "pair"));
        shard
            .identity_mut::<String>(first)
            .unwrap()
            .push_str("tagged");
        assert!(shard.identity_mut::<u64>(first).is_none(), "wrong type");
        let reached = shard.broadcast("pair", &frame);
        shard.unsubscribe(second, "pair");
        (reached, shard.channel_members("pair"))
    }));
    assert_eq!(reached, Ok((2, 1)));
    assert_eq!(text(&mut clients[0]), "to the pair");
    assert_eq!(text(&mut clients[1]), "to the pair");
    clients[2].send_text("z");
    assert_eq!(
        text(&mut clients[2]),
        "1 1",
        "the third got no broadcast first"
    );
    let tag = block_on(hub.run_on(0, move |shard| shard.identity_mut::<String>(first).cloned()));
    assert_eq!(tag, Ok(Some("tagged".to_owned())));
}

#[test]
fn a_posted_run_happens_without_anyone_waiting_for_it() {
    let handle = start();
    let hub = handle.hub();
    hub.post_run(0, |shard| shard.local::<Seen>().0 = 41)
        .unwrap();
    hub.post_run(0, |shard| shard.local::<Seen>().0 += 1)
        .unwrap();
    assert!(eventually(WAIT, || {
        block_on(hub.run_on(0, |shard| shard.local::<Seen>().0)) == Ok(42)
    }));
    assert!(hub.post_run(7, |_| {}).is_err(), "no shard 7");
}

#[test]
fn a_route_can_have_its_own_message_size_limit() {
    let handle = start();
    let mut small = RawWs::connect(handle.local_addr(), "/small");
    small.send_text(&"a".repeat(16));
    assert_eq!(text(&mut small), "1 16");
    small.send_text(&"a".repeat(17));
    assert_eq!(small.expect_close(WAIT), Some(1009));
    let mut big = RawWs::connect(handle.local_addr(), "/local");
    big.send_text(&"a".repeat(1000));
    assert_eq!(text(&mut big), "2 1000", "the server's limit elsewhere");
}

/// One gauge, from a service.
#[derive(Debug)]
struct Answer(i64);

impl Collector for Answer {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let gauge = ConstGauge::new(self.0);
        let metric = encoder.encode_descriptor(
            "service_answer",
            "A test figure",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(metric)
    }
}

#[test]
fn a_service_adds_its_figures_to_metrics() {
    let mut cfg = common::loopback_config();
    cfg.server.shards = 2;
    let handle = Server::builder(cfg)
        .metrics(Arc::new(|hub: ringgate::Hub| {
            Box::pin(async move {
                let shards = hub.run_on_all(|shard| shard.index()).await.unwrap();
                Box::new(Answer(40 + shards.len() as i64)) as Box<dyn Collector>
            })
        }))
        .start()
        .expect("server starts");
    let response = http_get(handle.local_addr(), "/metrics");
    assert_eq!(response.status, 200);
    let body = String::from_utf8_lossy(&response.body);
    assert!(body.contains("\nservice_answer 42\n"), "{body}");
    assert!(
        body.contains("websocket_connections_total"),
        "the server's own figures stay"
    );
}
