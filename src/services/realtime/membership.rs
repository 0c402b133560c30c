//! Joining and leaving rooms, and presence: a connection's shard changes
//! its subscriptions and its session at once, then reports the connection's
//! state to the user's home shard, which works out whether the user as a
//! whole came or went and announces `user_joined` / `user_left` to the room.
//! A report or an announcement a full mailbox refuses is posted again later
//! ([`unsent`]), so presence always ends right.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::hub::{ConnId, Frame, Hub, HubError};
use crate::{ConnCtx, Message, ShardCtx};

use super::delivery::{reply_error, send_json};
use super::envelope::Outbound;
use super::presence::{Presence, Report};
use super::rooms::Room;
use super::session::{Session, User};
use super::unsent::{self, Parcel};
use super::Service;

/// How long a room's deletion keeps asking a shard whose mailbox is full
/// to take its members out, and how often.
const EVICT_PATIENCE: Duration = Duration::from_secs(10);
const EVICT_RETRY: Duration = Duration::from_millis(20);

/// Why a join was refused: the `error` reply's code and message.
pub(super) type Refused = (&'static str, String);

/// Joins room `room_id` for the connection: subscribe, remember, answer
/// `room_joined`, tell the home shard. Joining a room it is in answers
/// `room_joined` again and changes nothing.
pub(super) fn join(service: &Arc<Service>, ctx: &mut ConnCtx<'_>, room_id: &str) {
    drop_if_deleted(service, ctx, room_id);
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
    if let Some(room) = session.room(room_id) {
        return Ok(room.clone());
    }
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
    ctx.subscribe(&room.channel);
    let session = ctx.identity_mut::<Session>().expect("a session");
    session.rooms.push(room.clone());
    report(service, ctx);
    Ok(room)
}

/// Leaves room `room_id`: answers `room_left`, or an error when the
/// connection is not in it.
pub(super) fn leave(service: &Arc<Service>, ctx: &mut ConnCtx<'_>, room_id: &str) {
    let session = ctx.identity_mut::<Session>().expect("a session");
    let Some(room) = session.remove_room(room_id) else {
        reply_error(ctx, "not_in_room", &format!("not in room {room_id:?}"));
        return;
    };
    ctx.unsubscribe(&room.channel);
    room.connection_left();
    send_json(
        ctx,
        &Outbound::new("room_left", &json!({"room": &*room.id}).to_string()).in_room(&room.id),
    );
    report(service, ctx);
}

/// The connection opened: its user's home shard learns of it.
pub(super) fn connect(service: &Arc<Service>, ctx: &mut ConnCtx<'_>) {
    report(service, ctx);
}

/// The connection closed: it leaves its rooms and its user's home shard
/// forgets it (the user's last connection in a room announces `user_left`).
pub(super) fn disconnect(service: &Arc<Service>, ctx: &mut ConnCtx<'_>) {
    let Some(session) = ctx.identity_mut::<Session>() else {
        return;
    };
    session.closed = true;
    for room in std::mem::take(&mut session.rooms) {
        room.connection_left();
    }
    report(service, ctx);
}

/// Sends the connection's state to its user's home shard.
fn report(service: &Arc<Service>, ctx: &mut ConnCtx<'_>) {
    let conn = ctx.id();
    let report = ctx.identity::<Session>().expect("a session").report(conn);
    unsent::send_report(service, ctx, report);
}

/// Posts `report` to its user's home shard, which takes it in and announces
/// what changed.
pub(super) fn post_report(
    service: &Arc<Service>,
    hub: &Hub,
    report: Report,
) -> Result<(), HubError> {
    let service = service.clone();
    hub.post_run(report.user.home(hub.shards()), move |home| {
        let (user, conn) = (report.user.clone(), report.conn);
        let changes = home.local::<Presence>().apply(report);
        for room in &changes.arrived {
            announce(&service, home, "user_joined", &user, room, conn);
        }
        for room in &changes.departed {
            announce(&service, home, "user_left", &user, room, conn);
        }
    })
}

/// Tells `room`'s members (but connection `except`) on every shard that
/// `user` came or went, when presence is on, the room (this incarnation)
/// still exists and is small enough.
fn announce(
    service: &Service,
    home: &mut ShardCtx<'_>,
    kind: &str,
    user: &User,
    room: &Arc<Room>,
    except: ConnId,
) {
    if !service.cfg.presence || !room.is_live() || room.users() > service.cfg.presence_max_members {
        return;
    }
    let data = json!({"user_id": &*user.id, "username": &*user.name, "room": &*room.id});
    let text = Outbound::new(kind, &data.to_string())
        .in_room(&room.id)
        .encode();
    let frame = Frame::new(Message::Text(&text));
    for shard in 0..home.hub().shards() {
        let parcel = Parcel::Channel {
            shard,
            channel: room.channel.clone(),
            frame: frame.clone(),
            except: Some(except),
        };
        unsent::send_parcel(service, home, parcel);
    }
}

/// Deletes room `id`: every member, on every shard, gets `room_deleted`
/// and is taken out. Returns the connections removed, or `None` when
/// there was no such room.
pub(super) async fn delete_room(service: &Arc<Service>, hub: &Hub, id: &str) -> Option<usize> {
    let room = service.rooms.remove(id)?;
    Some(evict_everywhere(service, hub, room).await)
}

/// Takes every member of `room` (out of the table already) out of it, on
/// every shard: the connections removed. Members of a later incarnation
/// of the same id are on another channel, so never touched. A shard whose
/// mailbox is full is asked again, for a while.
pub(super) async fn evict_everywhere(service: &Arc<Service>, hub: &Hub, room: Arc<Room>) -> usize {
    let frame = Frame::new(Message::Text(&deleted_message(&room)));
    let deadline = Instant::now() + EVICT_PATIENCE;
    let mut removed = 0;
    let mut left: Vec<usize> = (0..hub.shards()).collect();
    while !left.is_empty() {
        let runs: Vec<_> = left
            .iter()
            .map(|&shard| {
                let (service, room, frame) = (service.clone(), room.clone(), frame.clone());
                (
                    shard,
                    hub.run_on(shard, move |ctx| {
                        remove_members(&service, ctx, &room, &frame)
                    }),
                )
            })
            .collect();
        left.clear();
        for (shard, run) in runs {
            match run.await {
                Ok(n) => removed += n,
                Err(HubError::MailboxFull { .. }) if Instant::now() < deadline => left.push(shard),
                Err(e) => {
                    tracing::warn!(room = %room.id, shard, "members of the deleted room not taken out: {e}")
                }
            }
        }
        if !left.is_empty() {
            tokio::time::sleep(EVICT_RETRY).await;
        }
    }
    removed
}

/// The `room_deleted` message of `room`.
fn deleted_message(room: &Room) -> String {
    Outbound::new("room_deleted", &json!({"room": &*room.id}).to_string())
        .in_room(&room.id)
        .encode()
}

/// One shard's part of deleting `room`.
fn remove_members(
    service: &Arc<Service>,
    shard: &mut ShardCtx<'_>,
    room: &Arc<Room>,
    frame: &Frame,
) -> usize {
    let members = shard.channel_member_ids(&room.channel);
    for &id in &members {
        shard.send_frame(id, frame);
        shard.unsubscribe(id, &room.channel);
        let Some(session) = shard.identity_mut::<Session>(id) else {
            continue;
        };
        if forget(session, room) {
            let report = session.report(id);
            unsent::send_report(service, shard, report);
        }
    }
    members.len()
}

/// If the connection holds a deleted incarnation of room `room_id` (its
/// removal has not reached this shard yet), takes it out now as the removal
/// would: `room_deleted`, then gone.
pub(super) fn drop_if_deleted(service: &Arc<Service>, ctx: &mut ConnCtx<'_>, room_id: &str) {
    let session = ctx.identity::<Session>().expect("a session");
    let Some(room) = session
        .room(room_id)
        .filter(|room| !room.is_live())
        .cloned()
    else {
        return;
    };
    ctx.send(Message::Text(&deleted_message(&room)));
    ctx.unsubscribe(&room.channel);
    let session = ctx.identity_mut::<Session>().expect("a session");
    if forget(session, &room) {
        report(service, ctx);
    }
}

/// `session` forgets `room`, that incarnation; whether it held it.
fn forget(session: &mut Session, room: &Arc<Room>) -> bool {
    let held = session.remove_incarnation(room);
    if held {
        room.connection_left();
    }
    held
}
