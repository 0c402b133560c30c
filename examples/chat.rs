//! A chat room on the library API: every connection to `/chat` joins one
//! channel, and each text message is broadcast to all of them (on every
//! shard) prefixed with the sender's connection id. `GET /chat/stats` shows
//! the room's figures on each shard, asked of the shards through the hub.
//!
//! Run: `cargo run --release --example chat` then connect two clients, e.g.
//! `python3 -m websockets ws://127.0.0.1:8080/chat`.

use ringgate::axum::routing::get;
use ringgate::axum::{Extension, Json};
use ringgate::{
    Accept, ApiError, Config, ConnCtx, Handler, Message, Reject, Server, ServerView, UpgradeRequest,
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

/// `GET /chat/stats`: each shard's connections and messages on `/chat` (an
/// admin route: loopback callers, or `ADMIN_TOKEN` as a bearer token).
async fn stats(Extension(server): Extension<ServerView>) -> Result<Json<Value>, ApiError> {
    let shards = server
        .hub
        .run_on_all(|shard| shard.metrics())
        .await
        .map_err(ApiError::unavailable)?;
    let chat = |m: &ringgate::hub::ShardMetrics| {
        let route = m.routes.iter().find(|r| &*r.route == "/chat");
        route.map_or(json!({}), |r| {
            json!({"connections": r.open, "messages_in": r.messages_in, "messages_out": r.messages_out})
        })
    };
    Ok(Json(
        json!({"shards": shards.iter().map(chat).collect::<Vec<_>>()}),
    ))
}

fn main() -> anyhow::Result<()> {
    let mut config = Config::default();
    config.server.port = 8080;
    let handle = Server::builder(config)
        .websocket("/chat", Chat)
        .admin("/chat/stats", get(stats))
        .start()?;
    println!(
        "chat on ws://{}/chat (stats at /chat/stats)",
        handle.local_addr()
    );
    handle.join()?;
    Ok(())
}
