//! The realtime admin API (contract, "HTTP admin"): stats, online users,
//! rooms (list, create, inspect, delete), sends to a user, a room or
//! everyone, seed 002's `/ws/messages`, and the idle clean-up. Handlers run
//! on the control plane and reach the shards only through the hub.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::control::{rfc3339, ApiError};
use crate::server::ServerBuilder;
use crate::ServerView;

use super::delivery::{to_channel_counted, to_user_counted};
use super::envelope::{Kind, Outbound};
use super::figures::ShardFigures;
use super::membership::delete_room;
use super::presence::{OnlineUser, Presence};
use super::rooms::{Room, RoomTable};
use super::session::ALL_CHANNEL;
use super::{Service, ROUTES};

type Shared = Extension<Arc<Service>>;
type Answer = Result<(StatusCode, Json<Value>), ApiError>;

/// Online users listed in one answer unless `?limit=` says otherwise, and
/// the most it may say.
const DEFAULT_LIST: usize = 1000;
const MAX_LIST: usize = 100_000;

/// Adds the admin routes to `builder`.
pub(super) fn routes(builder: ServerBuilder, service: &Arc<Service>) -> ServerBuilder {
    let with = |route: axum::routing::MethodRouter| route.layer(Extension(service.clone()));
    builder
        .admin("/ws/stats", with(get(stats)))
        .admin("/ws/online", with(get(online)))
        .admin("/ws/users/online", with(get(online)))
        .admin("/ws/rooms", with(get(list_rooms).post(create_room)))
        .admin(
            "/ws/rooms/{id}",
            with(get(inspect_room).delete(remove_room)),
        )
        .admin("/ws/send", with(post(send)))
        .admin("/ws/broadcast", with(post(broadcast)))
        .admin("/ws/messages", with(post(messages)))
        .admin("/ws/cleanup", with(post(cleanup)))
}

fn now() -> String {
    rfc3339(SystemTime::now())
}

fn ok(value: Value) -> Answer {
    Ok((StatusCode::OK, Json(value)))
}

/// A JSON body of type `T`, or 400 saying what is wrong with it.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}

/// `data` of a send: an object, `{}` when absent.
fn data_text(data: Option<Value>) -> Result<String, ApiError> {
    match data {
        None | Some(Value::Null) => Ok("{}".to_owned()),
        Some(data @ Value::Object(_)) => Ok(data.to_string()),
        Some(_) => Err(ApiError::bad_request("data must be a JSON object")),
    }
}

/// A `message_type` the admin API may send: 1 to 64 of `a-z`, `0-9`, `_`.
fn message_type(name: &str) -> Result<&str, ApiError> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(name)
    } else {
        Err(ApiError::bad_request(
            "message_type must be 1 to 64 characters of a-z, 0-9 and _",
        ))
    }
}

async fn stats(Extension(service): Shared, Extension(server): Extension<ServerView>) -> Answer {
    let shards = server
        .hub
        .run_on_all(|shard| {
            let figures = shard.local::<ShardFigures>().clone();
            (figures, shard.local::<Presence>().count())
        })
        .await
        .map_err(ApiError::unavailable)?;
    let mut sum = ShardFigures::default();
    let mut users = 0;
    for (figures, online) in &shards {
        sum.add(figures);
        users += online;
    }
    let rooms = service.rooms.list();
    let by_room: Map<String, Value> = rooms
        .iter()
        .map(|r| (r.id.to_string(), room_counts(r)))
        .collect();
    let by_type: Map<String, Value> = Kind::ALL
        .iter()
        .map(|&k| (k.as_str().to_owned(), json!(sum.messages[k as usize])))
        .collect();
    ok(json!({
        "total_connections": sum.sessions,
        "unique_users": users,
        "online_users": users,
        "total_rooms": rooms.len(),
        "total_messages": sum.messages.iter().sum::<u64>(),
        "messages_by_type": by_type,
        "rate_limited": sum.rate_limited,
        "errors": sum.errors,
        "unsent_dropped": sum.unsent_dropped,
        "rooms": by_room,
        "server_uptime": server.started.elapsed().as_secs(),
        "timestamp": now(),
    }))
}

fn room_counts(room: &Room) -> Value {
    json!({
        "name": room.name,
        "client_count": room.connections(),
        "user_count": room.users(),
        "message_count": room.messages(),
    })
}

fn room_json(room: &Room) -> Value {
    let mut answer = room_counts(room);
    answer["id"] = json!(&*room.id);
    answer["description"] = json!(room.description);
    answer["created_at"] = json!(rfc3339(room.created_at));
    answer["auto_created"] = json!(room.auto);
    answer
}

fn user_json(user: &OnlineUser) -> Value {
    json!({
        "user_id": &*user.user_id,
        "username": &*user.username,
        "connected_at": rfc3339(user.connected_at),
        "connections": user.connections,
    })
}

#[derive(Deserialize)]
struct Limit {
    limit: Option<usize>,
}

fn list_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIST);
    if (1..=MAX_LIST).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_LIST}"
        )))
    }
}

async fn online(Extension(server): Extension<ServerView>, Query(q): Query<Limit>) -> Answer {
    let limit = list_limit(q.limit)?;
    let mut users: Vec<OnlineUser> = server
        .hub
        .run_on_all(|shard| shard.local::<Presence>().list())
        .await
        .map_err(ApiError::unavailable)?
        .into_iter()
        .flatten()
        .collect();
    users.sort_by(|a, b| (a.connected_at, &a.user_id).cmp(&(b.connected_at, &b.user_id)));
    let count = users.len();
    let listed: Vec<Value> = users.iter().take(limit).map(user_json).collect();
    ok(json!({
        "count": count,
        "online_users": count,
        "users": listed,
        "truncated": count > limit,
        "timestamp": now(),
    }))
}

async fn list_rooms(Extension(service): Shared) -> Answer {
    let rooms: Vec<Value> = service.rooms.list().iter().map(|r| room_json(r)).collect();
    ok(json!({"rooms": rooms, "total": rooms.len(), "max_rooms": service.cfg.max_rooms}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRoom {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

async fn create_room(Extension(service): Shared, bytes: Bytes) -> Answer {
    let new: NewRoom = body(&bytes)?;
    if !RoomTable::valid_id(&new.id) {
        return Err(ApiError::bad_request(
            "id must be 1 to 128 bytes without spaces or control characters",
        ));
    }
    match service.rooms.create(&new.id, &new.name, &new.description) {
        Ok(room) => Ok((StatusCode::CREATED, Json(room_json(&room)))),
        Err(e) => Err(ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string())),
    }
}

fn room_or_404(service: &Service, id: &str) -> Result<Arc<Room>, ApiError> {
    service.rooms.get(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "room_not_found",
            format!("no room {id:?}"),
        )
    })
}

async fn inspect_room(
    Extension(service): Shared,
    Extension(server): Extension<ServerView>,
    Path(id): Path<String>,
    Query(q): Query<Limit>,
) -> Answer {
    let limit = list_limit(q.limit)?;
    let room = room_or_404(&service, &id)?;
    let wanted = room.clone();
    let mut members: Vec<OnlineUser> = server
        .hub
        .run_on_all(move |shard| shard.local::<Presence>().in_room(&wanted))
        .await
        .map_err(ApiError::unavailable)?
        .into_iter()
        .flatten()
        .collect();
    members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    let mut answer = room_json(&room);
    answer["members"] = members.iter().take(limit).map(user_json).collect();
    answer["truncated"] = json!(members.len() > limit);
    ok(answer)
}

async fn remove_room(
    Extension(service): Shared,
    Extension(server): Extension<ServerView>,
    Path(id): Path<String>,
) -> Answer {
    match delete_room(&service, &server.hub, &id).await {
        Some(removed) => ok(json!({"deleted": id, "connections_removed": removed})),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "room_not_found",
            format!("no room {id:?}"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    to_user_id: String,
    message_type: String,
    data: Option<Value>,
}

async fn send(
    Extension(service): Shared,
    Extension(server): Extension<ServerView>,
    bytes: Bytes,
) -> Answer {
    let req: SendBody = body(&bytes)?;
    let kind = message_type(&req.message_type)?;
    let data = data_text(req.data)?;
    let text = Outbound::new(kind, &data).to_user(&req.to_user_id).encode();
    deliver_to_user(&service, &server, kind, &req.to_user_id, &text).await
}

async fn deliver_to_user(
    service: &Service,
    server: &ServerView,
    kind: &str,
    to: &str,
    text: &str,
) -> Answer {
    let connections = to_user_counted(&server.hub, to, text)
        .await
        .map_err(ApiError::unavailable)?;
    if connections == 0 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "user_not_online",
            format!("user {to:?} has no open connection"),
        ));
    }
    count(service, kind);
    ok(json!({"status": "sent", "to_user_id": to, "connections": connections}))
}

fn count(service: &Service, kind: &str) {
    if let Some(kind) = Kind::parse(kind) {
        service.count_api_message(kind);
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BroadcastBody {
    message_type: String,
    data: Option<Value>,
    room: Option<String>,
}

async fn broadcast(
    Extension(service): Shared,
    Extension(server): Extension<ServerView>,
    bytes: Bytes,
) -> Answer {
    let req: BroadcastBody = body(&bytes)?;
    let kind = message_type(&req.message_type)?;
    let data = data_text(req.data)?;
    deliver_broadcast(&service, &server, kind, &data, req.room.as_deref(), None).await
}

/// Sends to a room's members, or to everyone: the deliveries made.
async fn deliver_broadcast(
    service: &Service,
    server: &ServerView,
    kind: &str,
    data: &str,
    room: Option<&str>,
    from: Option<&str>,
) -> Answer {
    let mut message = Outbound::new(kind, data);
    if let Some(from) = from {
        message = message.from_user(from);
    }
    let delivered = match room {
        Some(id) => {
            let room = room_or_404(service, id)?;
            room.count_message();
            let text = message.in_room(&room.id).encode();
            to_channel_counted(&server.hub, room.channel.clone(), &text).await
        }
        None => to_channel_counted(&server.hub, Arc::from(ALL_CHANNEL), &message.encode()).await,
    }
    .map_err(ApiError::unavailable)?;
    count(service, kind);
    let mut answer = json!({"status": "sent", "delivered": delivered});
    if let Some(room) = room {
        answer["room"] = json!(room);
    }
    ok(answer)
}

/// Seed 002's form: `{"type", "content", "room_id" | "room", "to" |
/// "to_user_id", "data"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedMessage {
    #[serde(rename = "type")]
    kind: String,
    content: Option<Value>,
    #[serde(alias = "room")]
    room_id: Option<String>,
    #[serde(alias = "to_user_id")]
    to: Option<String>,
    data: Option<Value>,
    from: Option<String>,
}

async fn messages(
    Extension(service): Shared,
    Extension(server): Extension<ServerView>,
    bytes: Bytes,
) -> Answer {
    let req: SeedMessage = body(&bytes)?;
    let mut data = match req.data {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::bad_request("data must be a JSON object")),
    };
    if let Some(content) = req.content {
        data.entry("content").or_insert(content);
    }
    let data = Value::Object(data).to_string();
    match req.kind.as_str() {
        "room_message" => {
            let room = req
                .room_id
                .ok_or_else(|| ApiError::bad_request("room_message needs room_id"))?;
            deliver_broadcast(
                &service,
                &server,
                "room_message",
                &data,
                Some(&room),
                req.from.as_deref(),
            )
            .await
        }
        "private_message" => {
            let to = req
                .to
                .ok_or_else(|| ApiError::bad_request("private_message needs to (or to_user_id)"))?;
            let mut message = Outbound::new("private_message", &data).to_user(&to);
            if let Some(from) = req.from.as_deref() {
                message = message.from_user(from);
            }
            deliver_to_user(&service, &server, "private_message", &to, &message.encode()).await
        }
        "broadcast" => {
            deliver_broadcast(
                &service,
                &server,
                "broadcast",
                &data,
                None,
                req.from.as_deref(),
            )
            .await
        }
        other => Err(ApiError::bad_request(format!(
            "type {other:?} is not room_message, private_message or broadcast"
        ))),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CleanupBody {
    idle_seconds: Option<u64>,
}

async fn cleanup(
    Extension(service): Shared,
    Extension(server): Extension<ServerView>,
    bytes: Bytes,
) -> Answer {
    let req: CleanupBody = if bytes.is_empty() {
        CleanupBody::default()
    } else {
        body(&bytes)?
    };
    let idle = req
        .idle_seconds
        .map_or(service.cfg.cleanup_idle, Duration::from_secs);
    let closed: usize = server
        .hub
        .run_on_all(move |shard| {
            let cutoff = SystemTime::now()
                .checked_sub(idle)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let idle_ids: Vec<_> = shard
                .connections_after(None, usize::MAX)
                .into_iter()
                .filter(|c| ROUTES.contains(&c.route.as_str()) && c.last_activity <= cutoff)
                .map(|c| c.id)
                .collect();
            idle_ids
                .into_iter()
                .filter(|&id| shard.close(id, crate::protocol::close::code::NORMAL, "idle"))
                .count()
        })
        .await
        .map_err(ApiError::unavailable)?
        .into_iter()
        .sum();
    ok(json!({"closed": closed, "idle_seconds": idle.as_secs(), "timestamp": now()}))
}
