//! Joining and leaving rooms, and presence: a connection's shard changes
//! its subscriptions and its session at once, then tells the user's home
//! shard, which decides whether the user as a whole came or went and
//! announces `user_joined` / `user_left` to the room.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::json;

use crate::hub::{ConnId, Frame, Hub, HubError};
use crate::{ConnCtx, Message, ShardCtx};

use super::delivery::{reply_error, send_json};
use super::envelope::Outbound;
use super::presence::Presence;
use super::rooms::Room;
use super::session::{Session, User};
use super::Service;

/// Why a join was refused: the `error` reply's code and message.
pub(super) type Refused = (&'static str, String);

/// Joins room `room_id` for the connection: subscribe, remember, answer
/// `room_joined`, tell the home shard. Joining a room it is in answers
/// `room_joined` again and changes nothing.
pub(super) fn join(service: &Arc<Service>, ctx: &mut ConnCtx<'_>, room_id: &str) {
    match try_join(service, ctx, room_id) {
        Ok(room) => send_json(
            ctx,
            &Outbound::new(
                "room_joined",
                &json!({"room": &*room.id, "name": room.name}).to_string(),
            )
            .in_room(&room.id),
        ),
        Err((code, message)) => reply_error(ctx, code, &message),
    }
}

fn try_join(
    service: &Arc<Service>,
    ctx: &mut ConnCtx<'_>,
    room_id: &str,
) -> Result<Arc<Room>, Refused> {
    let session = ctx
        .identity::<Session>()
        .expect("realtime connections have a session");
    if let Some(room) = session.room(room_id).cloned() {
        if room.is_live() {
            return Ok(room);
        }
        // A deleted incarnation whose removal has not reached this shard
        // yet: leave it now, as the removal would, then join anew.
        drop_deleted(ctx, &room);
    }
    let session = ctx.identity::<Session>().expect("a session");
    if session.rooms.len() >= service.cfg.max_rooms_per_user {
        return Err((
            "room_limit",
            format!(
                "a connection may be in {} rooms at most (WS_MAX_ROOMS_PER_USER)",
                service.cfg.max_rooms_per_user
            ),
        ));
    }
    let room = match service.rooms.enter(room_id, service.cfg.auto_create_rooms) {
        Ok(Some(room)) => room,
        Ok(None) => return Err(("room_not_found", format!("no room {room_id:?}"))),
        Err(e) => return Err((e.code(), e.to_string())),
    };
    enter(service, ctx, &room);
    Ok(room)
}

/// Puts the connection in `room` (counted in already) and tells the home
/// shard.
fn enter(service: &Arc<Service>, ctx: &mut ConnCtx<'_>, room: &Arc<Room>) {
    ctx.subscribe(&room.channel);
    let conn = ctx.id();
    let session = ctx.identity_mut::<Session>().expect("a session");
    session.rooms.push(room.clone());
    let user = session.user.clone();
    let (service, room) = (service.clone(), room.clone());
    at_home(ctx.hub(), &user.clone(), move |shard| {
        if shard.local::<Presence>().join(&user.id, &room) {
            announce(
                &service,
                shard.hub(),
                "user_joined",
                &user,
                &room,
                Some(conn),
            );
        }
    });
}

/// Leaves room `room_id`: answers `room_left`, or an error when the
/// connection is not in it.
pub(super) fn leave(service: &Arc<Service>, ctx: &mut ConnCtx<'_>, room_id: &str) {
    let conn = ctx.id();
    let session = ctx.identity_mut::<Session>().expect("a session");
    let Some(room) = session.remove_room(room_id) else {
        reply_error(ctx, "not_in_room", &format!("not in room {room_id:?}"));
        return;
    };
    let user = session.user.clone();
    ctx.unsubscribe(&room.channel);
    room.connection_left();
    send_json(
        ctx,
        &Outbound::new("room_left", &json!({"room": &*room.id}).to_string()).in_room(&room.id),
    );
    let service = service.clone();
    at_home(ctx.hub(), &user.clone(), move |shard| {
        if shard.local::<Presence>().leave(&user.id, &room) {
            announce(&service, shard.hub(), "user_left", &user, &room, Some(conn));
        }
    });
}

/// The connection opened: the user's home shard counts it.
pub(super) fn connect(ctx: &mut ConnCtx<'_>, user: &Arc<User>) {
    let (conn, at) = (ctx.id(), SystemTime::now());
    let user = user.clone();
    at_home(ctx.hub(), &user.clone(), move |shard| {
        shard
            .local::<Presence>()
            .connect(&user.id, &user.name, conn, at);
    });
}

/// The connection closed: it leaves its rooms (the last of the user's
/// connections there announces `user_left`) and the home shard forgets it.
pub(super) fn disconnect(service: &Arc<Service>, ctx: &mut ConnCtx<'_>) {
    let conn = ctx.id();
    let Some(session) = ctx.identity_mut::<Session>() else {
        return;
    };
    let rooms = std::mem::take(&mut session.rooms);
    let user = session.user.clone();
    for room in &rooms {
        room.connection_left();
    }
    let service = service.clone();
    at_home(ctx.hub(), &user.clone(), move |shard| {
        for room in &rooms {
            if shard.local::<Presence>().leave(&user.id, room) {
                announce(&service, shard.hub(), "user_left", &user, room, None);
            }
        }
        shard.local::<Presence>().disconnect(&user.id, conn);
    });
}

/// Deletes room `id`: every member, on every shard, gets `room_deleted`
/// and is taken out. Returns the connections removed, or `None` when
/// there was no such room.
pub(super) async fn delete_room(service: &Arc<Service>, hub: &Hub, id: &str) -> Option<usize> {
    let room = service.rooms.remove(id)?;
    Some(evict_everywhere(hub, room).await)
}

/// Takes every member of `room` (out of the table already) out of it, on
/// every shard: the connections removed. Members of a later incarnation
/// of the same id are on another channel, so never touched.
pub(super) async fn evict_everywhere(hub: &Hub, room: Arc<Room>) -> usize {
    let frame = Frame::new(Message::Text(&deleted_message(&room)));
    hub.run_on_all(move |shard| remove_members(shard, &room, &frame))
        .await
        .map_or(0, |counts| counts.into_iter().sum())
}

/// The `room_deleted` message of `room`.
fn deleted_message(room: &Room) -> String {
    Outbound::new("room_deleted", &json!({"room": &*room.id}).to_string())
        .in_room(&room.id)
        .encode()
}

/// One shard's part of deleting `room`.
fn remove_members(shard: &mut ShardCtx<'_>, room: &Arc<Room>, frame: &Frame) -> usize {
    let members = shard.channel_member_ids(&room.channel);
    let hub = shard.hub().clone();
    for &id in &members {
        shard.send_frame(id, frame);
        shard.unsubscribe(id, &room.channel);
        if let Some(session) = shard.identity_mut::<Session>(id) {
            forget_deleted(&hub, session, room);
        }
    }
    members.len()
}

/// The connection leaves `room`, a deleted incarnation it still holds, as
/// the deletion's removal would take it out: `room_deleted`, then gone.
pub(super) fn drop_deleted(ctx: &mut ConnCtx<'_>, room: &Arc<Room>) {
    ctx.send(Message::Text(&deleted_message(room)));
    ctx.unsubscribe(&room.channel);
    let hub = ctx.hub().clone();
    let session = ctx.identity_mut::<Session>().expect("a session");
    forget_deleted(&hub, session, room);
}

/// `session` forgets `room` (that incarnation), a deleted one, and the
/// user's home shard is told; nobody is left to announce it to.
fn forget_deleted(hub: &Hub, session: &mut Session, room: &Arc<Room>) {
    if !session.remove_incarnation(room) {
        return;
    }
    room.connection_left();
    let (user, room) = (session.user.clone(), room.clone());
    at_home(hub, &user.clone(), move |home| {
        home.local::<Presence>().leave(&user.id, &room);
    });
}

/// Runs `f` on `user`'s home shard. A refused post (a mailbox over its
/// bound) is logged: presence then misses one change.
fn at_home(hub: &Hub, user: &User, f: impl FnOnce(&mut ShardCtx<'_>) + Send + 'static) {
    match hub.post_run(user.home(hub.shards()), f) {
        // Shutting down: nobody will ask about presence again.
        Ok(()) | Err(HubError::Stopped) => {}
        Err(e) => tracing::warn!(user = %user.id, "presence update lost: {e}"),
    }
}

/// Tells `room`'s members (but `except`) that `user` came or went, when
/// presence is on, the room (this incarnation) still exists and is small
/// enough.
fn announce(
    service: &Service,
    hub: &Hub,
    kind: &str,
    user: &User,
    room: &Arc<Room>,
    except: Option<ConnId>,
) {
    if !service.cfg.presence || !room.is_live() || room.users() > service.cfg.presence_max_members {
        return;
    }
    let data = json!({"user_id": &*user.id, "username": &*user.name, "room": &*room.id});
    let text = Outbound::new(kind, &data.to_string())
        .in_room(&room.id)
        .encode();
    let sent = match except {
        Some(conn) => hub.broadcast_except(&room.channel, Message::Text(&text), conn),
        None => hub.broadcast(&room.channel, Message::Text(&text)),
    };
    if let Err(e) = sent {
        tracing::warn!(room = %room.id, "{kind} not announced everywhere: {e}");
    }
}
