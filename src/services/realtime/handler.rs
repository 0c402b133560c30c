//! The realtime route's [`Handler`]: the checks before the upgrade (address,
//! origin, token, the room asked for), the welcome, each client message
//! parsed once and sent on, and the clean-up when a connection goes.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::protocol::close::code;
use crate::protocol::deflate::DeflateMode;
use crate::{Accept, ConnCtx, Handler, Message, Reject, UpgradeRequest};

use super::auth::{find_token, AuthError, TOKEN_PROTOCOL};
use super::delivery::{reply_error, send_json, to_user_from};
use super::envelope::{parse_inbound, Inbound, Kind, Outbound};
use super::figures::ShardFigures;
use super::membership;
use super::session::{Admit, Session, User, ALL_CHANNEL};
use super::{Refusal, Service};

/// The timer that closes a connection when its token expires.
const TOKEN_EXPIRED: u64 = 1;

/// Reused buffer for the JSON parser, one per shard.
#[derive(Default)]
struct Scratch(Vec<u8>);

/// The handler of one realtime route (`/ws` or `/ws/connect`).
pub(super) struct Realtime {
    service: Arc<Service>,
    /// `/ws/connect` joins the first default room when no `room_id` is given.
    joins_default_room: bool,
    /// permessage-deflate on the realtime routes.
    compression: DeflateMode,
}

impl Realtime {
    pub(super) fn new(service: Arc<Service>, route: &str, compression: DeflateMode) -> Realtime {
        Realtime {
            service,
            joins_default_room: route == "/ws/connect",
            compression,
        }
    }

    fn refuse(&self, refusal: Refusal, status: u16, message: String) -> Reject {
        self.service.count_refusal(refusal);
        Reject::new(status, refusal.label(), message)
    }

    /// The user of a request: from its token, or anonymous without a secret.
    fn authenticate(&self, req: &UpgradeRequest<'_>) -> Result<(User, Option<u64>), AuthError> {
        let Some(verifier) = &self.service.verifier else {
            let id = format!("anon-{}", uuid::Uuid::new_v4().simple());
            let name = format!("guest-{}", &id[5..13]);
            return Ok((User::new(&id, &name, false), None));
        };
        let (token, source) = find_token(
            req.query_param("token"),
            req.header("authorization"),
            req.protocols(),
        )
        .ok_or(AuthError::Missing)?;
        let claims = verifier.verify(&token)?;
        tracing::debug!(user = %claims.sub, ?source, "token accepted");
        let user = User::new(&claims.sub, &claims.username, claims.is_admin());
        let leeway = self.service.cfg.jwt_leeway.as_secs();
        Ok((user, Some(claims.exp.saturating_add(leeway))))
    }
}

impl Handler for Realtime {
    fn on_upgrade(&self, req: &UpgradeRequest<'_>) -> Result<Accept, Reject> {
        let service = &self.service;
        if !service.allowlist.is_empty() {
            // Fails closed: a peer whose address cannot be read is not on the list.
            match req.peer_addr() {
                Some(peer) if service.allowlist.allows(peer.ip()) => {}
                Some(peer) => {
                    return Err(self.refuse(
                        Refusal::Address,
                        403,
                        format!("{} is not in WS_IP_ALLOWLIST", peer.ip()),
                    ))
                }
                None => {
                    return Err(self.refuse(
                        Refusal::AddressUnknown,
                        403,
                        "the peer's address is unknown, so WS_IP_ALLOWLIST cannot admit it"
                            .to_owned(),
                    ))
                }
            }
        }
        if let (Some(policy), Some(origin)) = (&service.origins, req.origin()) {
            if !policy.allows(origin) {
                return Err(self.refuse(
                    Refusal::Origin,
                    403,
                    format!("origin {origin:?} is not allowed"),
                ));
            }
        }
        let (user, expires_at) = self.authenticate(req).map_err(|e| {
            service.count_auth_failure(&e);
            Reject::new(401, e.reason(), e.to_string())
        })?;
        let asked = req.query_param("room_id").filter(|id| !id.is_empty());
        // `/ws/connect`'s default room, unless an admin deleted it since.
        let default_room = || {
            let first = service.cfg.default_rooms.first()?;
            self.joins_default_room
                .then(|| service.rooms.get(first))
                .flatten()
        };
        let connect_room = match asked {
            None => default_room(),
            Some(id) => match service
                .rooms
                .find_or_create(&id, service.cfg.auto_create_rooms)
            {
                Ok(Some(room)) => Some(room),
                Ok(None) => {
                    return Err(self.refuse(Refusal::RoomNotFound, 404, format!("no room {id:?}")))
                }
                Err(e) => return Err(Reject::new(409, e.code(), e.to_string())),
            },
        };
        let mut session = Session::new(
            Arc::new(user),
            service.cfg.rate_limit_per_minute,
            service.cfg.rate_limit_burst,
        );
        session.connect_room = connect_room;
        session.expires_at = expires_at;
        let accept = Accept::new()
            .identity(session)
            .max_message_size(service.cfg.max_message_size)
            .compression(self.compression);
        // A browser that offered `access_token` (with or without a token
        // after it) fails the connection unless the answer selects it.
        let offered = req.protocols().iter().any(|p| p == TOKEN_PROTOCOL);
        Ok(if offered {
            accept.protocol(TOKEN_PROTOCOL)
        } else {
            accept
        })
    }

    fn on_open(&self, ctx: &mut ConnCtx<'_>) {
        let session = ctx.identity_mut::<Session>().expect("a session");
        let user = session.user.clone();
        let connect_room = session.connect_room.take();
        let expires_at = session.expires_at;
        ctx.local::<ShardFigures>().sessions += 1;
        if let (true, Some(at)) = (self.service.cfg.close_on_token_expiry, expires_at) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            ctx.set_timer(Duration::from_secs(at.saturating_sub(now)), TOKEN_EXPIRED);
        }
        ctx.subscribe(ALL_CHANNEL);
        membership::connect(&self.service, ctx);
        let rooms: Vec<&str> = connect_room.iter().map(|r| &*r.id).collect();
        let welcome = json!({
            "user_id": &*user.id,
            "username": &*user.name,
            "rooms": rooms,
        });
        send_json(ctx, &Outbound::new("welcome", &welcome.to_string()));
        if let Some(room) = connect_room {
            // Checked at the upgrade; a room deleted since is joined as an
            // ordinary join would be (refused with an error).
            membership::join(&self.service, ctx, &room.id);
        }
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        let session = ctx.identity_mut::<Session>().expect("a session");
        match session.admit(self.service.cfg.rate_limit_close_after) {
            Admit::Yes => {}
            Admit::Refused => {
                ctx.local::<ShardFigures>().rate_limited += 1;
                reply_error(
                    ctx,
                    "rate_limited",
                    "too many messages: slow down (WS_RATE_LIMIT_PER_MINUTE)",
                );
                return;
            }
            Admit::Abuse => {
                ctx.local::<ShardFigures>().rate_limited += 1;
                ctx.close(code::POLICY_VIOLATION, "rate limit exceeded");
                return;
            }
        }
        let Message::Text(text) = msg else {
            reply_error(
                ctx,
                "unsupported",
                "binary messages are not supported on this route; send JSON text",
            );
            return;
        };
        let parsed = {
            let scratch = &mut ctx.local::<Scratch>().0;
            parse_inbound(text, scratch)
        };
        match parsed {
            Ok(inbound) => {
                ctx.local::<ShardFigures>().count_message(inbound.kind);
                self.dispatch(ctx, inbound);
            }
            Err(e) => reply_error(ctx, e.code(), &e.to_string()),
        }
    }

    fn on_timer(&self, ctx: &mut ConnCtx<'_>, token: u64) {
        if token == TOKEN_EXPIRED {
            ctx.close(code::POLICY_VIOLATION, "token expired");
        }
    }

    fn on_close(&self, ctx: &mut ConnCtx<'_>, _code: Option<u16>, _reason: &str) {
        if ctx.identity::<Session>().is_none() {
            return;
        }
        let figures = ctx.local::<ShardFigures>();
        figures.sessions = figures.sessions.saturating_sub(1);
        membership::disconnect(&self.service, ctx);
    }
}

impl Realtime {
    /// Carries out one parsed client message.
    fn dispatch(&self, ctx: &mut ConnCtx<'_>, msg: Inbound) {
        let user = ctx.identity::<Session>().expect("a session").user.clone();
        match msg.kind {
            Kind::Ping => send_json(ctx, &Outbound::new("pong", &msg.data)),
            Kind::Pong => {}
            Kind::Join | Kind::Leave => {
                let Some(room) = msg.room.as_deref() else {
                    reply_error(ctx, "missing_room", "join and leave need a room");
                    return;
                };
                if msg.kind == Kind::Join {
                    membership::join(&self.service, ctx, room);
                } else {
                    membership::leave(&self.service, ctx, room);
                }
            }
            Kind::Broadcast | Kind::Notification | Kind::SystemMessage if !user.admin => {
                reply_error(
                    ctx,
                    "forbidden",
                    &format!("{} needs a token with role admin", msg.kind.as_str()),
                );
            }
            Kind::Broadcast => self.send_everyone(ctx, &user, &msg),
            Kind::Text
            | Kind::RoomMessage
            | Kind::PrivateMessage
            | Kind::Notification
            | Kind::SystemMessage => {
                if let Some(to) = msg.to_user_id.as_deref() {
                    self.send_private(ctx, &user, &msg, to);
                } else if let Some(room) = msg.room.as_deref() {
                    self.send_room(ctx, &user, &msg, room);
                } else if msg.kind == Kind::Notification || msg.kind == Kind::SystemMessage {
                    self.send_everyone(ctx, &user, &msg);
                } else {
                    reply_error(
                        ctx,
                        "missing_target",
                        &format!("{} needs a room or a to_user_id", msg.kind.as_str()),
                    );
                }
            }
        }
    }

    fn send_room(&self, ctx: &mut ConnCtx<'_>, user: &User, msg: &Inbound, room_id: &str) {
        if msg.kind == Kind::PrivateMessage {
            reply_error(ctx, "missing_target", "private_message needs a to_user_id");
            return;
        }
        membership::drop_if_deleted(&self.service, ctx, room_id);
        let session = ctx.identity::<Session>().expect("a session");
        let Some(room) = session.room(room_id).cloned() else {
            reply_error(
                ctx,
                "not_in_room",
                &format!("join room {room_id:?} before sending to it"),
            );
            return;
        };
        room.count_message();
        let text = Outbound::new(msg.kind.as_str(), &msg.data)
            .from_user(&user.id)
            .in_room(&room.id)
            .encode();
        if let Err(e) = ctx.hub().broadcast(&room.channel, Message::Text(&text)) {
            reply_error(
                ctx,
                "overloaded",
                &format!("the message did not reach every member: {e}"),
            );
        }
    }

    fn send_private(&self, ctx: &mut ConnCtx<'_>, user: &User, msg: &Inbound, to: &str) {
        let text = Outbound::new(msg.kind.as_str(), &msg.data)
            .from_user(&user.id)
            .to_user(to)
            .encode();
        let sender = ctx.id();
        if let Err(e) = to_user_from(&self.service, ctx.hub(), to, &text, sender) {
            reply_error(ctx, "overloaded", &format!("the message was not sent: {e}"));
        }
    }

    fn send_everyone(&self, ctx: &mut ConnCtx<'_>, user: &User, msg: &Inbound) {
        let text = Outbound::new(msg.kind.as_str(), &msg.data)
            .from_user(&user.id)
            .encode();
        if let Err(e) = ctx.hub().broadcast(ALL_CHANNEL, Message::Text(&text)) {
            reply_error(
                ctx,
                "overloaded",
                &format!("the message did not reach everyone: {e}"),
            );
        }
    }
}
