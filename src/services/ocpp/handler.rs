//! The OCPP route's [`Handler`]: the checks before the upgrade (id, allow list, version,
//! Basic auth, room in the table), one connection per charge point, and each frame in turn:
//! an uplink CALL validated and answered by the embedded central system, an answer to a
//! downlink CALL handed to the [`Downlink`](super::downlink::Downlink), anything malformed
//! answered with the CALLERROR it deserves while the connection stays up. The work a frame
//! costs the shard is bounded by its size and `OCPP_MAX_MESSAGE_ITEMS`, whatever it holds.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::{json, Value};

use crate::logging::rate_limited;
use crate::protocol::close::code;
use crate::protocol::deflate::DeflateMode;
use crate::{Accept, ConnCtx, Handler, Message, Reject, UpgradeRequest};

use super::auth::{AuthError, Check};
use super::central::{self, BootStatus};
use super::downlink::{Answer, CommandError};
use super::errors::{ErrorCode, Version};
use super::events::{Direction, EventKind, JsonText};
use super::figures::{Outcome, ShardFigures};
use super::frame::{self, Frame, FrameError, MessageType, Parsed, MAX_ACTION};
use super::identity::{charge_point_id, choose_version};
use super::registry::Link;
use super::schema;
use super::session::{pump, Session};
use super::{Refusal, Service};

/// Close code of a connection a newer one of the same charge point replaced.
pub const CLOSE_REPLACED: u16 = 4000;
/// Close code of a charge point silent for `OCPP_IDLE_TIMEOUT`.
pub const CLOSE_IDLE: u16 = 4001;
/// Close code of a charge point an administrator deleted (`DELETE …?force=true`).
pub const CLOSE_DELETED: u16 = 4002;

/// The action label of a CALL whose action is not an action name, in logs and `/metrics`.
const NOT_AN_ACTION: &str = "other";

/// The timer token of the idle check (the downlink's tokens start above it).
const IDLE_TIMER: u64 = 1;

/// Reused buffer of the frame parser, one per shard.
#[derive(Default)]
struct Scratch(Vec<u8>);

/// The handler of the OCPP route.
pub(super) struct Ocpp {
    pub(super) service: Arc<Service>,
    /// permessage-deflate on the OCPP route.
    pub(super) compression: DeflateMode,
}

impl Ocpp {
    fn refuse(&self, refusal: Refusal, status: u16, message: String) -> Reject {
        self.service.count_refusal(refusal);
        Reject::new(status, refusal.label(), message)
    }
}

impl Handler for Ocpp {
    fn on_upgrade(&self, req: &UpgradeRequest<'_>) -> Result<Accept, Reject> {
        let service = &self.service;
        let id = charge_point_id(req.path(), &service.cfg.path)
            .map_err(|e| self.refuse(Refusal::BadId, 404, e.to_string()))?;
        if !service.allowed.is_empty() && !service.allowed.contains(&id) {
            return Err(self.refuse(
                Refusal::UnknownId,
                404,
                format!("charge point {id:?} is not in OCPP_ALLOWED_IDS"),
            ));
        }
        let version = choose_version(&service.versions, req.protocols()).ok_or_else(|| {
            let served: Vec<&str> = service.versions.iter().map(|v| v.subprotocol()).collect();
            self.refuse(
                Refusal::NoProtocol,
                400,
                format!(
                    "offer one of the subprotocols {} in Sec-WebSocket-Protocol (offered: {:?})",
                    served.join(", "),
                    req.protocols()
                ),
            )
        })?;
        let check = service
            .passwords
            .check_cheap(&id, req.header("authorization"))
            .map_err(|e| auth_refused(service, &id, e))?;
        service
            .registry
            .admits(&id)
            .map_err(|e| self.refuse(Refusal::Full, 503, e.to_string()))?;
        let session = Session::new(&id, version, req.peer_addr());
        let accept = Accept::new()
            .protocol(version.subprotocol())
            .max_message_size(service.cfg.max_message_size)
            .compression(self.compression)
            .label(id.clone())
            .identity(session);
        let Check::Verify(verification) = check else {
            return Ok(accept);
        };
        // The password needs its argon2 run: off the shard, after the back-off.
        let addr = req.peer_addr().map(|a| a.ip());
        service
            .backoff
            .check(&id, addr, Instant::now())
            .map_err(|_| auth_refused(service, &id, AuthError::TooManyFailures))?;
        let pending = req.defer()?;
        let on_pool = service.clone();
        let job = Box::new(move || {
            if !pending.is_wanted() {
                return; // the client left, or its upgrade timed out, while queued
            }
            let answer = match on_pool.passwords.verify(verification) {
                Ok(()) => {
                    on_pool.backoff.succeeded(&id, addr);
                    Ok(accept)
                }
                Err(e) => {
                    on_pool.backoff.failed(&id, addr, Instant::now());
                    Err(auth_refused(&on_pool, &id, e))
                }
            };
            // The server may have stopped meanwhile: nobody to answer.
            let _ = pending.answer(answer);
        });
        service.hash_pool.submit(job).map_err(|_| {
            self.refuse(
                Refusal::AuthBusy,
                503,
                "too many password checks are waiting; retry later".to_owned(),
            )
        })?;
        Ok(Accept::deferred())
    }

    fn on_open(&self, ctx: &mut ConnCtx<'_>) {
        let service = &self.service;
        let conn = ctx.id();
        let session = ctx.identity::<Session>().expect("a session");
        let (id, version, addr) = (session.id.clone(), session.version, session.remote_addr);
        let link = Link { conn, version };
        match service.registry.attach(&id, link, addr, SystemTime::now()) {
            Ok(None) => {}
            Ok(Some(old)) => {
                rate_limited!(10, info, charge_point = %id, old = %old.conn, new = %conn, "a newer connection replaces the charge point's older one");
                if let Err(e) = ctx.hub().close(
                    old.conn,
                    CLOSE_REPLACED,
                    "replaced by a newer connection of the same charge point",
                ) {
                    rate_limited!(10, warn, charge_point = %id, "could not close the replaced connection: {e}");
                }
            }
            Err(full) => {
                ctx.close(code::TRY_AGAIN_LATER, &full.to_string());
                return;
            }
        }
        if service.events.enabled() {
            let mut event = session_of(ctx).event(None, EventKind::Connected);
            let remote_addr = addr.map(|a| a.to_string());
            event.payload = Some(JsonText::of(&json!({ "remote_addr": remote_addr })));
            service.events.publish(event);
        }
        if !service.cfg.idle_timeout.is_zero() {
            ctx.set_timer(service.cfg.idle_timeout, IDLE_TIMER);
        }
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        let Message::Text(text) = msg else {
            ctx.close(
                code::UNSUPPORTED_DATA,
                "OCPP-J messages are JSON text frames",
            );
            return;
        };
        let received = Instant::now();
        session_of(ctx).last_rx = received;
        let parsed = {
            let scratch = &mut ctx.local::<Scratch>().0;
            frame::parse(text, scratch, self.service.cfg.max_message_items)
        };
        let Parsed {
            frame,
            payload_text,
        } = match parsed {
            Ok(parsed) => parsed,
            Err(e) => return self.on_bad_frame(ctx, e, text),
        };
        let events = self.service.events.enabled();
        match frame {
            Frame::Call {
                id,
                action,
                payload,
            } => {
                let call = Call {
                    message_id: id,
                    action,
                    payload,
                    payload_text,
                    received,
                };
                self.on_call(ctx, call)
            }
            Frame::CallResult { id, payload } => {
                let shown = events.then(|| JsonText::received(payload_text));
                self.on_answer(ctx, id, Answer::Result(payload), shown)
            }
            Frame::CallError {
                id,
                code,
                description,
                details,
            } => {
                let shown = events.then(|| JsonText::call_error(&code, &description, &details));
                let answer = Answer::Error {
                    code,
                    description,
                    details,
                };
                self.on_answer(ctx, id, answer, shown)
            }
        }
    }

    fn on_timer(&self, ctx: &mut ConnCtx<'_>, token: u64) {
        if token == IDLE_TIMER {
            let idle = self.service.cfg.idle_timeout;
            let silent = session_of(ctx).last_rx.elapsed();
            if silent >= idle {
                ctx.close(CLOSE_IDLE, "no message within OCPP_IDLE_TIMEOUT");
            } else {
                ctx.set_timer(idle - silent, IDLE_TIMER);
            }
            return;
        }
        let expired = session_of(ctx).downlink.expire(token, Instant::now());
        if let Some((action, message_id)) = expired {
            let id = session_of(ctx).id.clone();
            rate_limited!(10, info, charge_point = %id, %action, %message_id, "downlink CALL timed out; a later answer will be dropped");
            ctx.local::<ShardFigures>().count_call(
                Direction::Downlink,
                &action,
                Outcome::Timeout,
                None,
            );
            pump(&self.service, ctx);
        }
    }

    fn on_close(&self, ctx: &mut ConnCtx<'_>, code: Option<u16>, reason: &str) {
        let service = &self.service;
        let conn = ctx.id();
        let Some(session) = ctx.identity_mut::<Session>() else {
            return;
        };
        let error = if code == Some(CLOSE_REPLACED) {
            CommandError::Replaced
        } else {
            CommandError::Disconnected
        };
        session.downlink.close(&error);
        service
            .registry
            .detach(&session.id, conn, SystemTime::now());
        if service.events.enabled() {
            let mut event = session.event(None, EventKind::Disconnected);
            event.payload = Some(JsonText::of(&json!({"code": code, "reason": reason})));
            service.events.publish(event);
        }
    }
}

/// An uplink CALL, parsed.
struct Call<'t> {
    message_id: String,
    action: String,
    payload: Value,
    /// The payload as received, for its event.
    payload_text: &'t str,
    received: Instant,
}

impl Ocpp {
    /// An uplink CALL: validated, answered by the embedded central system, its facts kept.
    fn on_call(&self, ctx: &mut ConnCtx<'_>, call: Call<'_>) {
        let Call {
            message_id,
            action,
            payload,
            payload_text,
            received,
        } = call;
        let service = &self.service;
        let session = session_of(ctx);
        let (id, version, boot) = (session.id.clone(), session.version, session.boot);
        let now = SystemTime::now();
        let call_event = service.events.enabled().then(|| {
            let mut event = session.event(Some(Direction::Uplink), EventKind::Call);
            event.action = Some(action.clone());
            event.message_id = Some(message_id.clone());
            event.payload = Some(JsonText::received(payload_text));
            event
        });
        let named = frame::is_action_name(&action);
        let label = if named {
            action.as_str()
        } else {
            NOT_AN_ACTION
        };
        let answered = if !named {
            Err(central::Refusal {
                code: ErrorCode::NotImplemented,
                description: format!(
                    "the action is not a name of 1 to {MAX_ACTION} ASCII letters and digits"
                ),
            })
        } else if boot == Some(BootStatus::Rejected) && action != "BootNotification" {
            Err(central::Refusal {
                code: ErrorCode::Security,
                description: "the charge point's BootNotification was rejected: boot again"
                    .to_owned(),
            })
        } else {
            schema::validate(version, &action, &payload)
                .map_err(|v| central::Refusal {
                    code: v.code,
                    description: v.description,
                })
                .and_then(|()| {
                    central::answer(
                        version,
                        &action,
                        &payload,
                        &service.policy,
                        &service.tx_ids,
                        now,
                    )
                })
        };
        service.registry.update(&id, |station| {
            station.touch(now);
            if let Ok(central::Answer {
                update: Some(update),
                ..
            }) = &answered
            {
                station.apply(update, now);
            }
        });
        if let Ok(central::Answer {
            update: Some(central::Update::Boot { status, .. }),
            ..
        }) = &answered
        {
            session_of(ctx).boot = Some(*status);
        }
        let events = call_event.is_some();
        let (text, outcome, answer_event) = match answered {
            Ok(answer) => {
                let text = frame::encode_result(&message_id, &answer.payload);
                let shown = events.then(|| JsonText::of(&answer.payload));
                (text, Outcome::Result, (EventKind::CallResult, shown))
            }
            Err(refusal) => {
                tracing::debug!(charge_point = %id, action = label, code = ?refusal.code, "uplink CALL refused: {}", refusal.description);
                let details = json!({});
                let text = frame::encode_error(
                    &message_id,
                    refusal.code,
                    version,
                    &refusal.description,
                    &details,
                );
                let code = refusal.code.name(version);
                let shown =
                    events.then(|| JsonText::call_error(code, &refusal.description, &details));
                (text, Outcome::Error, (EventKind::CallError, shown))
            }
        };
        ctx.send(Message::Text(&text));
        ctx.local::<ShardFigures>().count_call(
            Direction::Uplink,
            label,
            outcome,
            Some(received.elapsed()),
        );
        if let Some(call_event) = call_event {
            service.events.publish(call_event);
            let mut event = session_of(ctx).event(Some(Direction::Downlink), answer_event.0);
            event.action = Some(action);
            event.message_id = Some(message_id);
            event.payload = answer_event.1;
            service.events.publish(event);
        }
    }

    /// A CALLRESULT or CALLERROR: the answer to the outstanding downlink CALL, or dropped.
    /// `shown` is its event's payload, when events are on.
    fn on_answer(
        &self,
        ctx: &mut ConnCtx<'_>,
        message_id: String,
        answer: Answer,
        shown: Option<JsonText>,
    ) {
        let service = &self.service;
        let session = session_of(ctx);
        let id = session.id.clone();
        let kind = match &answer {
            Answer::Result(_) => EventKind::CallResult,
            Answer::Error { .. } => EventKind::CallError,
        };
        let mut event = shown.map(|payload| {
            let mut event = session.event(Some(Direction::Uplink), kind);
            event.message_id = Some(message_id.clone());
            event.payload = Some(payload);
            event
        });
        let settled = session.downlink.answer(&message_id, answer, Instant::now());
        service
            .registry
            .update(&id, |station| station.touch(SystemTime::now()));
        match settled {
            Some(settled) => {
                if let Some(event) = &mut event {
                    event.action = Some(settled.action.clone());
                }
                let outcome = if settled.error {
                    Outcome::Error
                } else {
                    Outcome::Result
                };
                ctx.local::<ShardFigures>().count_call(
                    Direction::Downlink,
                    &settled.action,
                    outcome,
                    Some(settled.elapsed),
                );
                pump(service, ctx);
            }
            None => {
                if session_of(ctx).downlink.timed_out(&message_id) {
                    rate_limited!(10, info, charge_point = %id, %message_id, "an answer came after its CALL timed out: dropped");
                } else {
                    tracing::debug!(charge_point = %id, %message_id, "an answer matches no CALL of the gateway: dropped");
                }
                ctx.local::<ShardFigures>().unmatched_replies += 1;
            }
        }
        if let Some(event) = event {
            service.events.publish(event);
        }
    }

    /// A frame that is not valid OCPP-J: a CALLERROR when it was (or may have been) a CALL
    /// whose id can be read, else a log line. The connection stays up.
    fn on_bad_frame(&self, ctx: &mut ConnCtx<'_>, error: FrameError, text: &str) {
        ctx.local::<ShardFigures>().frame_errors += 1;
        let session = session_of(ctx);
        let (id, version) = (session.id.clone(), session.version);
        let answerable = matches!(error.message_type, Some(MessageType::Call) | None);
        let reply_id = match (&error.id, version) {
            (Some(message_id), _) if answerable => Some(message_id.as_str()),
            // OCPP 2.0.1 part 4: an unreadable id is answered under "-1".
            (None, Version::V201) if answerable => Some("-1"),
            _ => None,
        };
        let preview: String = text.chars().take(120).collect();
        tracing::debug!(charge_point = %id, code = ?error.code, frame = %preview, "malformed OCPP frame: {}", error.description);
        let answered_call = match (&error.message_type, &error.id) {
            (Some(MessageType::CallResult | MessageType::CallError), Some(message_id)) => {
                Some(message_id.clone())
            }
            _ => None,
        };
        if let Some(message_id) = answered_call {
            // A malformed answer to the outstanding CALL still ends it, as an error.
            let code = error.code.name(version);
            let description = format!(
                "the charge point's answer was malformed: {}",
                error.description
            );
            let details = json!({});
            let shown = self
                .service
                .events
                .enabled()
                .then(|| JsonText::call_error(code, &description, &details));
            let answer = Answer::Error {
                code: code.to_owned(),
                description,
                details,
            };
            self.on_answer(ctx, message_id, answer, shown);
        }
        if let Some(reply_id) = reply_id {
            let text = frame::encode_error(
                reply_id,
                error.code,
                version,
                &error.description,
                &json!({}),
            );
            ctx.send(Message::Text(&text));
        }
    }
}

/// Counts and logs an auth refusal; its answer (401, or 429 for a shut-out).
fn auth_refused(service: &Service, id: &str, e: AuthError) -> Reject {
    service.count_auth_failure(e);
    rate_limited!(10, info, charge_point = %id, reason = e.reason(), "OCPP upgrade refused");
    Reject::new(e.status(), e.reason(), e.to_string())
}

fn session_of<'c>(ctx: &'c mut ConnCtx<'_>) -> &'c mut Session {
    ctx.identity_mut::<Session>()
        .expect("every OCPP connection has a session")
}
