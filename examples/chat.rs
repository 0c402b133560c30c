//! A chat room on the library API: every connection to `/chat` joins one
//! channel, and each text message is broadcast to all of them (on every
//! shard) prefixed with the sender's connection id. `GET /stats` shows the
//! hub's counters.
//!
//! Run: `cargo run --release --example chat` then connect two clients, e.g.
//! `python3 -m websockets ws://127.0.0.1:8080/chat`.

use ringgate::axum::routing::get;
use ringgate::axum::{Extension, Json};
use ringgate::{
    Accept, Config, ConnCtx, Handler, Message, Reject, Server, ServerView, UpgradeRequest,
};
use serde_json::{json, Value};

const ROOM: &str = "lobby";

struct Chat;

impl Handler for Chat {
    fn on_upgrade(&self, req: &UpgradeRequest<'_>) -> Result<Accept, Reject> {
        // Optional nickname from the query string; attached to the connection.
        let nick = req.query_param("nick").unwrap_or_else(|| "anon".to_owned());
        if nick.len() > 32 {
            return Err(Reject::new(400, "bad_nick", "nick is longer than 32 bytes"));
        }
        Ok(Accept::new().identity(nick))
    }

    fn on_open(&self, ctx: &mut ConnCtx<'_>) {
        ctx.subscribe(ROOM);
        let welcome = format!("welcome, you are connection {}", ctx.id());
        ctx.send(Message::Text(&welcome));
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        let Message::Text(text) = msg else {
            ctx.close(1003, "text only");
            return;
        };
        let nick = ctx.identity::<String>().map_or("anon", String::as_str);
        let line = format!("{nick}#{}: {text}", ctx.id());
        // The hub encodes the frame once and shares it with every shard.
        if let Err(e) = ctx.hub().broadcast(ROOM, Message::Text(&line)) {
            eprintln!("broadcast failed: {e}");
        }
    }
}

/// `GET /stats`: the hub's counters (an admin route: loopback callers, or
/// `ADMIN_TOKEN` as a bearer token).
async fn stats(Extension(server): Extension<ServerView>) -> Json<Value> {
    let stats = server.hub.stats();
    Json(json!({
        "connections": stats.connections,
        "shards": stats.shards.iter().map(|s| json!({
            "connections": s.connections,
            "messages_in": s.messages_in,
            "messages_out": s.messages_out,
        })).collect::<Vec<_>>(),
    }))
}

fn main() -> anyhow::Result<()> {
    let mut config = Config::default();
    config.server.port = 8080;
    let handle = Server::builder(config)
        .websocket("/chat", Chat)
        .admin("/stats", get(stats))
        .start()?;
    println!(
        "chat on ws://{}/chat (stats at /stats)",
        handle.local_addr()
    );
    handle.join()?;
    Ok(())
}
