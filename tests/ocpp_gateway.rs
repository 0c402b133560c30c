//! The OCPP gateway as a library user embeds it, over real sockets: a command sent with
//! `Gateway::send_command` reaches the charge point wherever it is and its answer comes
//! back; events reach an in-process sink in order; a command to nobody, or to a connection
//! that is closing, is refused at once.
//! (The Python suite drives the same gateway with the `ocpp` library as charge points.)

mod common;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{block_on, RawWs, UpgradeRequest};
use ringgate::services::ocpp::downlink::{Answer, CommandError};
use ringgate::services::ocpp::events::{Callback, Event};
use ringgate::services::ocpp::{self, Gateway};
use ringgate::{Server, ServerHandle};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(5);

fn start(events: mpsc::Sender<Event>) -> (ServerHandle, Gateway) {
    start_with(events, |_| {})
}

fn start_with(
    events: mpsc::Sender<Event>,
    configure: impl FnOnce(&mut ringgate::Config),
) -> (ServerHandle, Gateway) {
    let mut cfg = common::loopback_config();
    cfg.server.shards = 2;
    configure(&mut cfg);
    let sink = Callback(move |event: &Event| {
        let _ = events.send(event.clone());
    });
    let (builder, gateway) =
        ocpp::install(Server::builder(cfg), Some(Box::new(sink))).expect("the gateway installs");
    let handle = builder.start().expect("server starts");
    (handle, gateway.expect("enabled by default"))
}

fn charge_point(addr: SocketAddr, id: &str) -> RawWs {
    let request = UpgradeRequest::new(&format!("/ocpp/{id}"))
        .header("Sec-WebSocket-Protocol", "ocpp2.0.1, ocpp1.6");
    RawWs::upgrade_with(common::connect(addr, WAIT), &request)
}

fn read_json(ws: &mut RawWs) -> Value {
    serde_json::from_str(&common::read_text(ws, WAIT)).expect("the gateway sends JSON")
}

#[test]
fn a_command_reaches_the_charge_point_and_events_reach_the_sink() {
    let (events, seen) = mpsc::channel();
    let (handle, gateway) = start(events);
    let mut cp = charge_point(handle.local_addr(), "CP-7");
    cp.send_text(r#"[2,"b1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]"#);
    let boot = read_json(&mut cp);
    assert_eq!((boot[0].clone(), boot[1].clone()), (json!(3), json!("b1")));
    assert_eq!(boot[2]["status"], "Accepted", "{boot}");

    let hub = handle.hub();
    let sender = gateway.clone();
    let waiting = std::thread::spawn(move || {
        block_on(sender.send_command(&hub, "CP-7", "Reset", json!({"type": "Soft"}), WAIT))
    });
    let call = read_json(&mut cp);
    assert_eq!(
        (call[0].clone(), call[2].clone()),
        (json!(2), json!("Reset")),
        "{call}"
    );
    assert_eq!(call[3], json!({"type": "Soft"}));
    let message_id = call[1].as_str().expect("a string id");
    cp.send_text(&json!([3, message_id, {"status": "Accepted"}]).to_string());
    let answer = waiting.join().expect("the waiter returns");
    assert_eq!(answer, Ok(Answer::Result(json!({"status": "Accepted"}))));

    let kinds: Vec<(Option<&str>, &str, Option<String>)> = seen
        .iter()
        .take(5)
        .map(|e: Event| {
            (
                e.direction.map(|d| d.as_str()),
                e.kind.as_str(),
                e.action.clone(),
            )
        })
        .collect();
    let action = |a: &str| Some(a.to_owned());
    assert_eq!(
        kinds,
        [
            (None, "connected", None),
            (Some("uplink"), "call", action("BootNotification")),
            (Some("downlink"), "call_result", action("BootNotification")),
            (Some("downlink"), "call", action("Reset")),
            (Some("uplink"), "call_result", action("Reset")),
        ]
    );
}

#[test]
fn commands_are_checked_and_refused_without_a_charge_point() {
    let (events, _seen) = mpsc::channel();
    let (handle, gateway) = start(events);
    let hub = handle.hub();
    let send = |id: &str, action: &str, payload: Value| {
        block_on(gateway.send_command(&hub, id, action, payload, WAIT))
    };
    assert_eq!(
        send("nobody", "Reset", json!({})),
        Err(CommandError::NotConnected("nobody".into()))
    );
    assert!(matches!(
        send("nobody", "no spaces", json!({})),
        Err(CommandError::Invalid(_))
    ));
    assert!(matches!(
        send("nobody", "Reset", json!([1])),
        Err(CommandError::Invalid(_))
    ));
}

#[test]
fn a_malformed_answer_ends_the_command_as_an_error() {
    let (events, _seen) = mpsc::channel();
    let (handle, gateway) = start(events);
    let mut cp = charge_point(handle.local_addr(), "CP-8");
    let hub = handle.hub();
    let sender = gateway.clone();
    let waiting = std::thread::spawn(move || {
        block_on(sender.send_command(&hub, "CP-8", "Reset", json!({"type": "Hard"}), WAIT))
    });
    let call = read_json(&mut cp);
    let message_id = call[1].as_str().expect("a string id");
    cp.send_text(&json!([3, message_id]).to_string());
    match waiting.join().expect("the waiter returns") {
        Ok(Answer::Error {
            code, description, ..
        }) => {
            assert_eq!(code, "ProtocolError");
            assert!(description.contains("malformed"), "{description}");
        }
        other => panic!("{other:?}"),
    }
    // Nothing was sent back for the broken answer, and the charge point is still served.
    cp.send_text(r#"[2,"h1","Heartbeat",{}]"#);
    let heartbeat = read_json(&mut cp);
    assert_eq!(
        (heartbeat[0].clone(), heartbeat[1].clone()),
        (json!(3), json!("h1"))
    );
}

#[test]
fn a_command_to_a_closing_connection_is_refused_at_once() {
    let (events, _seen) = mpsc::channel();
    let drain = Duration::from_secs(3);
    let (handle, gateway) = start_with(events, |cfg| {
        cfg.server.shards = 1;
        cfg.server.drain_timeout = drain;
    });
    // A charge point that will never answer the server's close frame.
    let mut cp = charge_point(handle.local_addr(), "CP-9");
    cp.send_text(r#"[2,"h1","Heartbeat",{}]"#);
    assert_eq!(read_json(&mut cp)[1], json!("h1"));
    let hub = handle.hub();
    let listed = block_on(hub.run_on(0, |shard| shard.connections_after(None, 10))).unwrap();
    let conn = listed
        .iter()
        .find(|c| c.label.as_deref() == Some("CP-9"))
        .expect("the charge point's connection")
        .id;
    // Hold the shard, so that the command finds the connection in the table and then, on the
    // shard, finds it closing: the close is queued before the command.
    let held = hub.run_on(0, |_| std::thread::sleep(Duration::from_millis(300)));
    hub.close(conn, 1001, "going away")
        .expect("the close is queued");
    let started = Instant::now();
    let answer = block_on(gateway.send_command(&hub, "CP-9", "Reset", json!({}), 2 * drain));
    let took = started.elapsed();
    assert_eq!(answer, Err(CommandError::NotConnected("CP-9".into())));
    assert!(took < drain / 2, "answered after {took:?}");
    block_on(held).expect("the shard was held");
    // The table no longer points at the closing connection either.
    let again = block_on(gateway.send_command(&hub, "CP-9", "Reset", json!({}), 2 * drain));
    assert_eq!(again, Err(CommandError::NotConnected("CP-9".into())));
}
