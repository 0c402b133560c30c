//! A shard never dies quietly. Handler code that panics, even in a `Drop`
//! (an identity dropped when its connection goes, a panic payload dropped
//! after the guard caught it), closes only its connection; and if a shard
//! dies anyway (an engine bug, injected here by the debug-only
//! `RINGGATE_TEST_SHARD_PANIC`), the process logs it and exits non-zero
//! instead of running on with a dead core.

mod common;

use std::time::Duration;

use common::{health_connections, RawWs, ServerProcess};
use ringgate::hub::CloseReason;
use ringgate::{Accept, Config, ConnCtx, Handler, Message, Reject, Server, UpgradeRequest};

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn a_dead_shard_stops_the_process_with_a_failure_status() {
    let mut server = ServerProcess::spawn(&[
        ("RINGGATE_SHARDS", "2"),
        ("RINGGATE_TEST_SHARD_PANIC", "1:300"),
    ]);
    let status = server.wait_exit(Duration::from_secs(15));
    let stderr = server.stderr_text();
    let status =
        status.unwrap_or_else(|| panic!("the server runs on with a dead shard; stderr:\n{stderr}"));
    assert!(!status.success(), "exit status {status:?}");
    assert!(
        stderr.contains("shard failed") && stderr.contains("shard=1"),
        "the log must name the dead shard:\n{stderr}"
    );
}

#[test]
fn a_healthy_server_does_not_trip_the_shard_watch() {
    let mut server = ServerProcess::spawn(&[("RINGGATE_SHARDS", "2")]);
    let mut ws = RawWs::connect(server.addr, "/echo");
    ws.assert_echo("alive");
    assert!(server.is_running());
    assert_eq!(health_connections(server.addr), Some(1));
}

/// An identity whose `Drop` panics.
struct Grenade;

impl Drop for Grenade {
    fn drop(&mut self) {
        panic!("identity Drop panicked on purpose");
    }
}

/// A panic payload whose `Drop` panics too.
struct Bomb;

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("panic payload's Drop panicked on purpose");
    }
}

/// `/grenade` attaches a [`Grenade`]; on "bomb" the handler panics with a
/// [`Bomb`]; anything else is echoed.
struct Troublesome;

impl Handler for Troublesome {
    fn on_upgrade(&self, req: &UpgradeRequest<'_>) -> Result<Accept, Reject> {
        Ok(match req.path() {
            "/grenade" => Accept::new().identity(Grenade),
            _ => Accept::new(),
        })
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        if msg == Message::Text("bomb") {
            std::panic::panic_any(Bomb);
        }
        ctx.send(msg);
    }
}

fn one_shard_server() -> ringgate::ServerHandle {
    let mut cfg = Config::load(None, &|k| std::env::var(k).ok()).expect("config");
    cfg.server.host = "127.0.0.1".into();
    cfg.server.port = 0;
    cfg.server.shards = 1;
    Server::builder(cfg)
        .websocket("/grenade", Troublesome)
        .websocket("/bomb", Troublesome)
        .start()
        .expect("server starts")
}

#[test]
fn an_identity_that_panics_when_dropped_costs_only_its_connection() {
    let server = one_shard_server();
    let addr = server.local_addr();
    let mut bystander = RawWs::connect(addr, "/bomb");
    for round in 0..3 {
        let mut ws = RawWs::connect(addr, "/grenade");
        ws.assert_echo("hello");
        ws.send_close(1000, b"");
        assert_eq!(ws.expect_close(WAIT), Some(1000));
        drop(ws);
        bystander.assert_echo(&format!("the shard lives on, round {round}"));
    }
    RawWs::connect(addr, "/bomb").assert_echo("and still accepts");
    drop(bystander);
    server.shutdown();
    server.join().expect("no shard died");
}

#[test]
fn a_panic_whose_payload_panics_when_dropped_is_contained() {
    let server = one_shard_server();
    let addr = server.local_addr();
    let mut bystander = RawWs::connect(addr, "/bomb");
    let mut victim = RawWs::connect(addr, "/bomb");
    victim.send_text("bomb");
    assert_eq!(victim.expect_close(WAIT), Some(1011));
    bystander.assert_echo("the shard lives on");
    let failed = CloseReason::HandlerFailed as usize;
    assert!(
        common::eventually(WAIT, || server.hub().stats().shards[0].closed[failed] == 1),
        "the close is counted: {:?}",
        server.hub().stats()
    );
    drop((bystander, victim));
    server.shutdown();
    server.join().expect("no shard died");
}
