//! Values a handler returns are checked before they reach the wire: a close
//! code RFC 6455 forbids is sent as 1011, a refusal with a status that is
//! not an error status or an upgrade header that could break or forge the
//! response is answered 500, and the hub refuses to close with a bad code.
//! Plain HTTP answers: a 1xx final status becomes 500, a Content-Length that
//! is not the body's is dropped.

mod common;

use std::time::Duration;

use common::{http_get, RawWs, UpgradeRequest};
use ringgate::axum;
use ringgate::axum::http::{header, StatusCode};
use ringgate::axum::response::IntoResponse;
use ringgate::axum::routing::{get, MethodRouter};
use ringgate::hub::HubError;
use ringgate::{
    Accept, ConnCtx, ConnId, Handler, Message, Reject, Server, UpgradeRequest as Upgrade,
};
use std::sync::{Arc, Mutex};

const WAIT: Duration = Duration::from_secs(5);

/// Answers upgrades by path with a bad value each; on "close N" closes with
/// code N; records its connections' ids.
struct Careless {
    ids: Arc<Mutex<Vec<ConnId>>>,
}

impl Handler for Careless {
    fn on_upgrade(&self, req: &Upgrade<'_>) -> Result<Accept, Reject> {
        match req.path() {
            "/reject-101" => Err(Reject::new(101, "nope", "a 101 is no refusal")),
            "/reject-200" => Err(Reject::new(200, "nope", "neither is a 200")),
            "/reject-403" => Err(Reject::new(403, "forbidden", "a fine refusal")),
            "/header-crlf" => Ok(Accept::new().header("X-Note", "a\r\nX-Injected: yes")),
            "/header-name" => Ok(Accept::new().header("X Bad Name", "v")),
            "/header-forged" => Ok(Accept::new().header("Sec-WebSocket-Accept", "forged")),
            _ => Ok(Accept::new().header("X-Fine", "yes")),
        }
    }

    fn on_open(&self, ctx: &mut ConnCtx<'_>) {
        self.ids.lock().unwrap().push(ctx.id());
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        if let Message::Text(text) = msg {
            if let Some(code) = text.strip_prefix("close ") {
                ctx.close(code.parse().unwrap(), "asked to");
                return;
            }
        }
        ctx.send(msg);
    }
}

/// Plain HTTP answers with a status or header a response may not carry.
fn bad_http(status: u16, length: Option<&'static str>) -> MethodRouter {
    get(move || async move {
        let mut response = axum::Json(serde_json::json!({"ok": true})).into_response();
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        if let Some(length) = length {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, length.parse().unwrap());
        }
        response
    })
}

struct Fixture {
    handle: ringgate::ServerHandle,
    ids: Arc<Mutex<Vec<ConnId>>>,
}

fn start() -> Fixture {
    let cfg = common::loopback_config();
    let ids = Arc::new(Mutex::new(Vec::new()));
    let handle = Server::builder(cfg)
        .websocket("/*", Careless { ids: ids.clone() })
        .http("/http-101", bad_http(101, None))
        .http("/http-length", bad_http(200, Some("0")))
        .http("/http-ok", bad_http(200, None))
        .start()
        .expect("server starts");
    Fixture { handle, ids }
}

#[test]
fn refusals_without_an_error_status_become_500() {
    let f = start();
    let addr = f.handle.local_addr();
    for path in ["/reject-101", "/reject-200"] {
        let resp = UpgradeRequest::new(path).send(addr);
        assert_eq!(resp.status, 500, "{path}: {resp:?}");
        resp.assert_error_json();
        assert!(resp.header("Sec-WebSocket-Accept").is_none(), "{path}");
    }
    let resp = UpgradeRequest::new("/reject-403").send(addr);
    assert_eq!(resp.status, 403);
    assert_eq!(resp.json()["error"]["code"], "forbidden");
}

#[test]
fn upgrade_headers_that_break_or_forge_the_response_become_500() {
    let f = start();
    let addr = f.handle.local_addr();
    for path in ["/header-crlf", "/header-name", "/header-forged"] {
        let resp = UpgradeRequest::new(path).send(addr);
        assert_eq!(resp.status, 500, "{path}: {resp:?}");
        assert!(resp.header("X-Injected").is_none(), "{path}: {resp:?}");
    }
    let resp = UpgradeRequest::new("/fine").send(addr);
    assert_eq!(resp.status, 101);
    assert_eq!(resp.header("X-Fine"), Some("yes"));
}

#[test]
fn close_codes_the_wire_forbids_are_sent_as_1011() {
    let f = start();
    let addr = f.handle.local_addr();
    for (asked, sent) in [
        (1005, 1011),
        (1006, 1011),
        (1015, 1011),
        (999, 1011),
        (4000, 4000),
        (1000, 1000),
    ] {
        let mut ws = RawWs::connect(addr, "/close");
        ws.send_text(&format!("close {asked}"));
        assert_eq!(
            ws.expect_close(WAIT),
            Some(sent),
            "handler closed with {asked}"
        );
    }
}

#[test]
fn the_hub_refuses_to_close_with_a_forbidden_code() {
    let f = start();
    let mut ws = RawWs::connect(f.handle.local_addr(), "/hub");
    ws.assert_echo("open");
    let id = *f.ids.lock().unwrap().last().unwrap();
    let hub = f.handle.hub();
    assert_eq!(
        hub.close(id, 1005, "no"),
        Err(HubError::InvalidCloseCode(1005))
    );
    ws.assert_echo("still open");
    assert_eq!(hub.close(id, 4001, "yes"), Ok(()));
    assert_eq!(ws.expect_close(WAIT), Some(4001));
}

#[test]
fn plain_answers_with_a_1xx_status_become_500_and_a_false_length_is_dropped() {
    let f = start();
    let addr = f.handle.local_addr();
    let resp = http_get(addr, "/http-101");
    assert_eq!(resp.status, 500, "{resp:?}");
    resp.assert_error_json();
    // The handler said Content-Length: 0 for an 11-byte body: the server
    // writes the body's real length instead.
    let resp = http_get(addr, "/http-length");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.json()["ok"], true, "{resp:?}");
    assert_eq!(http_get(addr, "/http-ok").status, 200);
}
