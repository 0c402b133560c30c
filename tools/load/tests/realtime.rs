//! The realtime mode against a fake of the realtime service, in process on
//! the ringgate library: just enough of its JSON envelope (`welcome`,
//! `room_joined`, presence, `room_message` fan-out to the room, `error`s),
//! HS256 tokens checked when a secret is set, and `POST /ws/rooms` as an
//! admin route (201, then 409). Faults on demand show that missing and
//! duplicated deliveries fail the run.

use std::collections::HashSet;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ringgate::axum::http::StatusCode;
use ringgate::axum::routing::post;
use ringgate::axum::Json;
use ringgate::UpgradeRequest;
use ringgate::{Accept, Config, ConnCtx, Handler, Message, Reject, Server, ServerHandle};
use serde_json::{json, Value};

const SECRET: &str = "fake-secret";
const ADMIN: &str = "fake-admin";

/// What the fake does wrong.
#[derive(Clone, Copy)]
enum Fault {
    None,
    /// Answers a connection's publishes past the first N with `rate_limited`.
    RateLimitAfter(u64),
    /// Broadcasts every third publish twice.
    Duplicate,
}

/// One connection of the fake: its user, room, and publishes so far.
struct Who {
    user: String,
    room: Option<String>,
    sent: u64,
}

struct Realtime {
    secret: Option<&'static str>,
    fault: Fault,
    /// Every user that connected.
    users: Arc<Mutex<Vec<String>>>,
    /// Publishes broadcast, over all connections.
    broadcasts: AtomicU64,
}

fn envelope(kind: &str, data: &Value, user: &str, room: Option<&str>) -> String {
    let mut v = json!({
        "id": "00000000-0000-4000-8000-000000000000",
        "message_type": kind,
        "data": data,
        "timestamp": "2025-01-01T00:00:00Z",
        "from_user_id": user,
    });
    if let Some(room) = room {
        v["room"] = json!(room);
    }
    v.to_string()
}

impl Handler for Realtime {
    fn on_upgrade(&self, req: &UpgradeRequest<'_>) -> Result<Accept, Reject> {
        let user = match (self.secret, req.query_param("token")) {
            (None, _) => "anonymous".to_owned(),
            (Some(_), None) => return Err(Reject::new(401, "unauthorized", "no token")),
            (Some(secret), Some(token)) => {
                let key = jsonwebtoken::DecodingKey::from_secret(secret.as_bytes());
                let v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
                let claims = jsonwebtoken::decode::<Value>(&token, &key, &v)
                    .map_err(|e| Reject::new(401, "unauthorized", e.to_string()))?
                    .claims;
                if claims["username"] != claims["sub"] {
                    return Err(Reject::new(401, "unauthorized", "username"));
                }
                claims["sub"].as_str().unwrap_or_default().to_owned()
            }
        };
        self.users.lock().unwrap().push(user.clone());
        Ok(Accept::new().identity(Who {
            user,
            room: req.query_param("room_id"),
            sent: 0,
        }))
    }

    fn on_open(&self, ctx: &mut ConnCtx<'_>) {
        let who = ctx.identity::<Who>().unwrap();
        let (user, room) = (who.user.clone(), who.room.clone());
        let welcome = envelope("welcome", &json!({"user_id": user}), "system", None);
        ctx.send(Message::Text(&welcome));
        if let Some(room) = room {
            ctx.subscribe(&room);
            let joined = envelope("room_joined", &json!({"room_id": room}), "system", None);
            ctx.send(Message::Text(&joined));
            let presence = envelope("user_joined", &json!({"user_id": user}), &user, Some(&room));
            ctx.hub()
                .broadcast(&room, Message::Text(&presence))
                .unwrap();
        }
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        let Message::Text(text) = msg else { return };
        let v: Value = serde_json::from_str(text).unwrap();
        let who = ctx.identity_mut::<Who>().unwrap();
        if v["message_type"] != "room_message" || v["room"].as_str() != who.room.as_deref() {
            let err = json!({"code": "not_in_room"});
            return ctx.send(Message::Text(&envelope("error", &err, "system", None)));
        }
        if matches!(self.fault, Fault::RateLimitAfter(n) if who.sent >= n) {
            let err = json!({"code": "rate_limited", "message": "slow down"});
            return ctx.send(Message::Text(&envelope("error", &err, "system", None)));
        }
        who.sent += 1;
        let room = who.room.clone().unwrap();
        let out = envelope("room_message", &v["data"], &who.user, Some(&room));
        let n = self.broadcasts.fetch_add(1, Ordering::Relaxed);
        let times = if matches!(self.fault, Fault::Duplicate) && n % 3 == 2 {
            2
        } else {
            1
        };
        for _ in 0..times {
            ctx.hub().broadcast(&room, Message::Text(&out)).unwrap();
        }
    }
}

/// The fake on two shards; with `secure`, tokens and the admin token are
/// required. Returns the server and the users that connected.
fn fake(secure: bool, fault: Fault) -> (ServerHandle, Arc<Mutex<Vec<String>>>) {
    let mut cfg = Config::default();
    cfg.server.host = "127.0.0.1".into();
    cfg.server.port = 0;
    cfg.server.shards = 2;
    if secure {
        cfg.admin.token = ringgate::config::Secret(ADMIN.into());
    }
    let users = Arc::new(Mutex::new(Vec::new()));
    let rooms = Arc::new(Mutex::new(HashSet::new()));
    let create = move |Json(body): Json<Value>| {
        let rooms = rooms.clone();
        async move {
            let named = body["name"] == body["id"] && body["description"] == "load";
            let id = body["id"].as_str().unwrap_or_default().to_owned();
            if id.is_empty() || !named {
                return StatusCode::BAD_REQUEST;
            }
            if rooms.lock().unwrap().insert(id) {
                StatusCode::CREATED
            } else {
                StatusCode::CONFLICT
            }
        }
    };
    let handler = Realtime {
        secret: secure.then_some(SECRET),
        fault,
        users: users.clone(),
        broadcasts: AtomicU64::new(0),
    };
    let server = Server::builder(cfg)
        .websocket("/ws", handler)
        .admin("/ws/rooms", post(create))
        .start()
        .expect("the fake starts");
    (server, users)
}

/// Runs `realtime` with `flags` (space-separated) against `server`, no
/// secrets from the environment; the exit status and the JSON report.
fn realtime(server: &ServerHandle, flags: &str) -> (Output, Value) {
    let url = format!("ws://{}/ws", server.local_addr());
    let pid = std::process::id().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_ringgate-load"))
        .arg("realtime")
        .args(flags.split_whitespace())
        .args(["--url", &url, "--json", "--timeout", "30s", "--pid", &pid])
        .env_remove("JWT_SECRET")
        .env_remove("ADMIN_TOKEN")
        .output()
        .expect("ringgate-load runs");
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, report)
}

fn stderr(out: &Output) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(&out.stderr)
}

fn stop(server: ServerHandle) {
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn every_member_gets_every_room_message_once() {
    let (s, users) = fake(true, Fault::None);
    let flags = format!(
        "-c 200 --rooms 4 --rate 50 --duration 1s --threads 2 \
         --jwt-secret {SECRET} --admin-token {ADMIN}"
    );
    let (out, r) = realtime(&s, &flags);
    assert!(out.status.success(), "{r}\n{}", stderr(&out));
    assert_eq!(r["mode"], "realtime");
    assert_eq!(r["connected"], 200, "{r}");
    assert_eq!(r["up_at_end"], 200, "{r}");
    assert_eq!(r["failures"], json!({}), "{r}");
    assert_eq!(r["timed_out"], false, "{r}");
    assert_eq!(
        (r["subscribers"].as_u64(), r["publishers"].as_u64()),
        (Some(196), Some(4))
    );
    // 4 rooms of 50 members (49 listeners and the publisher, who gets its
    // own messages too); each publisher sends 50.
    assert_eq!(r["messages_sent"], 200, "{r}");
    assert_eq!(r["expected_deliveries"], 4 * 50 * 50, "{r}");
    assert_eq!(r["deliveries"], 4 * 50 * 50, "{r}");
    assert_eq!(r["latency_us"]["count"], 4 * 50 * 50, "{r}");
    let rt = &r["realtime"];
    assert_eq!(rt["exactly_once"], true, "{r}");
    assert_eq!(
        (rt["missing"].as_u64(), rt["duplicates"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        (rt["rooms_created"].as_u64(), rt["rooms_existing"].as_u64()),
        (Some(4), Some(0))
    );
    assert_eq!(rt["members_joined"], 200, "{r}");
    assert_eq!(
        (
            rt["members_per_room_min"].as_u64(),
            rt["members_per_room_max"].as_u64()
        ),
        (Some(50), Some(50))
    );
    assert_eq!(rt["jwt"], true, "{r}");
    assert_eq!(rt["rate_limited"], 0, "{r}");
    // A welcome each, and the presence of everyone who joined after them.
    assert!(rt["ignored_messages"].as_u64().unwrap() >= 200, "{r}");
    assert!(rt["server_cpu_s_per_million_deliveries"].is_number(), "{r}");
    // Publishing waited for a second of quiet after the last join.
    assert_eq!(rt["settled"], true, "{r}");
    assert!(rt["settle_s"].as_f64().unwrap() >= 1.0, "{r}");
    // Each connection was its own user.
    let mut seen = users.lock().unwrap().clone();
    seen.sort();
    let mut want: Vec<String> = (0..200).map(|i| format!("load-{i}")).collect();
    want.sort();
    assert_eq!(seen, want);

    // Again with two publishers per room: the rooms are there already.
    let flags = format!(
        "-c 60 --rooms 3 --publishers-per-room 2 --rate 40 --duration 500ms \
         --payload 48 --settle 0s --jwt-secret {SECRET} --admin-token {ADMIN}"
    );
    let (out, r) = realtime(&s, &flags);
    assert!(out.status.success(), "{r}\n{}", stderr(&out));
    assert_eq!(r["failures"], json!({}), "{r}");
    assert_eq!(r["messages_sent"], 6 * 20, "{r}");
    assert_eq!(r["deliveries"], 6 * 20 * 20, "{r}");
    assert_eq!(r["realtime"]["rooms_existing"], 3, "{r}");
    assert_eq!(r["realtime"]["rooms_created"], 0, "{r}");
    assert_eq!(r["realtime"]["exactly_once"], true, "{r}");
    assert!(r["realtime"]["settle_s"].as_f64().unwrap() < 1.0, "{r}");
    stop(s);
}

#[test]
fn refusals_are_reported_clearly() {
    let (s, _) = fake(true, Fault::None);
    // No admin token: the room API answers 401 and nothing connects.
    let (out, _) = realtime(&s, &format!("-c 4 --jwt-secret {SECRET}"));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("room load-0") && err.contains("401"), "{err}");
    // A wrong secret: every upgrade is refused.
    let (out, r) = realtime(
        &s,
        &format!("-c 4 --jwt-secret wrong --admin-token {ADMIN}"),
    );
    assert_eq!(out.status.code(), Some(1), "{r}");
    assert_eq!(r["failures"]["bad_status"], 4, "{r}");
    stop(s);
}

#[test]
fn rate_limits_and_duplicates_fail_the_run() {
    let (s, _) = fake(false, Fault::RateLimitAfter(5));
    let flags = "-c 20 --rate 20 --duration 1s";
    let (out, r) = realtime(&s, flags);
    assert_eq!(out.status.code(), Some(1), "{r}");
    let rt = &r["realtime"];
    assert_eq!(rt["jwt"], false, "{r}");
    assert_eq!(rt["rate_limited"], 15, "{r}");
    assert_eq!(r["deliveries"], 5 * 20, "{r}");
    assert_eq!(rt["missing"], 15 * 20, "{r}");
    assert_eq!(rt["exactly_once"], false, "{r}");
    stop(s);

    let (s, _) = fake(false, Fault::Duplicate);
    let (out, r) = realtime(&s, flags);
    assert_eq!(out.status.code(), Some(1), "{r}");
    let rt = &r["realtime"];
    assert_eq!(rt["missing"], 0, "{r}");
    assert_eq!(rt["duplicates"], 6 * 20, "{r}");
    assert_eq!(r["failures"]["duplicate"], 6 * 20, "{r}");
    assert_eq!(rt["exactly_once"], false, "{r}");
    stop(s);
}
