//! Where messages go: a room's members on every shard (one encoded frame
//! for all of them), every connection of a user (through the user's home
//! shard, which knows them), or everyone; and the replies to the sender.

use std::sync::Arc;

use crate::hub::{ConnId, Frame, Hub, HubError};
use crate::{ConnCtx, Message};

use super::envelope::{error_message, Outbound};
use super::figures::ShardFigures;
use super::presence::{home_shard, Presence};
use super::unsent::{self, Parcel};
use super::Service;

/// Queues `message` to the connection itself.
pub(super) fn send_json(ctx: &mut ConnCtx<'_>, message: &Outbound<'_>) {
    ctx.send(Message::Text(&message.encode()));
}

/// Answers the connection with an `error` message; it stays open.
pub(super) fn reply_error(ctx: &mut ConnCtx<'_>, code: &str, message: &str) {
    ctx.local::<ShardFigures>().errors += 1;
    ctx.send(Message::Text(&error_message(code, message)));
}

/// Sends `text` to every connection subscribed to `channel` (a room's, or
/// [`super::session::ALL_CHANNEL`] for everyone), counting the deliveries.
pub(super) async fn to_channel_counted(
    hub: &Hub,
    channel: Arc<str>,
    text: &str,
) -> Result<usize, HubError> {
    let frame = Frame::new(Message::Text(text));
    let counts = hub
        .run_on_all(move |shard| shard.broadcast(&channel, &frame))
        .await?;
    Ok(counts.into_iter().sum())
}

/// Sends `text` to every connection of user `to`, from a connection: the
/// user's home shard sends it, or answers `sender` with `user_offline`, or
/// with `overloaded` when a shard's mailbox refused it (the error itself
/// waits for a full mailbox rather than be lost).
pub(super) fn to_user_from(
    service: &Arc<Service>,
    hub: &Hub,
    to: &str,
    text: &str,
    sender: ConnId,
) -> Result<(), HubError> {
    let frame = Frame::new(Message::Text(text));
    let to: Arc<str> = Arc::from(to);
    let service = service.clone();
    let held = frame.len() + to.len();
    hub.post_run_holding(home_shard(&to, hub.shards()), held, move |shard| {
        let conns = shard.local::<Presence>().connections(&to);
        let refusal = if conns.is_empty() {
            error_message("user_offline", &format!("user {to:?} is not online"))
        } else {
            match shard.hub().send_many(&conns, frame) {
                Ok(()) | Err(HubError::Stopped) => return,
                Err(e) => error_message(
                    "overloaded",
                    &format!("the message did not reach every connection of user {to:?}: {e}"),
                ),
            }
        };
        shard.local::<ShardFigures>().errors += 1;
        let frame = Frame::new(Message::Text(&refusal));
        unsent::send_parcel(&service, shard, Parcel::Conn { to: sender, frame });
    })
}

/// Sends `text` to every connection of user `to`, for the admin API:
/// the number of connections it went to (0: the user is not online).
pub(super) async fn to_user_counted(hub: &Hub, to: &str, text: &str) -> Result<usize, HubError> {
    let frame = Frame::new(Message::Text(text));
    let user: Arc<str> = Arc::from(to);
    let conns = hub
        .run_on(home_shard(to, hub.shards()), move |shard| {
            shard.local::<Presence>().connections(&user).to_vec()
        })
        .await?;
    if !conns.is_empty() {
        hub.send_many(&conns, frame)?;
    }
    Ok(conns.len())
}
