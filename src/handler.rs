//! The application-facing API of a WebSocket route: the [`Handler`] trait and
//! the values it sees and returns. A handler runs on the shard that owns the
//! connection; it must not block (hand slow work to another thread and answer
//! through the [`Hub`]; an upgrade that needs slow work is deferred with
//! [`UpgradeRequest::defer`] and answered later through its [`PendingUpgrade`]).

use std::any::Any;
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::engine::sendq::SendQueue;
use crate::engine::shard::{ConnDeflate, HandlerTimers, ShardDeflate, ShardLocals};
use crate::engine::socket::PeerAddr;
use crate::hub::{ConnId, Hub, HubError, Subscriptions};
use crate::protocol::close::{code, is_valid_wire_code};
use crate::protocol::deflate::DeflateMode;
use crate::protocol::frame::OpCode;
use crate::protocol::handshake::UpgradeInfo;
use crate::protocol::http::{check_header, HeaderError, RequestHead};

/// Headers the 101 response writes itself; an [`Accept`] may not set them.
const UPGRADE_HEADERS: &[&str] = &[
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Content-Length",
    "Transfer-Encoding",
];

/// A complete WebSocket data message, borrowed from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl Message<'_> {
    pub(crate) fn opcode(&self) -> OpCode {
        match self {
            Message::Text(_) => OpCode::Text,
            Message::Binary(_) => OpCode::Binary,
        }
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(s) => s.as_bytes(),
            Message::Binary(b) => b,
        }
    }
}

/// What `on_upgrade` sees: the HTTP request and the validated upgrade fields.
pub struct UpgradeRequest<'a> {
    pub(crate) head: &'a RequestHead,
    pub(crate) info: &'a UpgradeInfo,
    pub(crate) peer: PeerAddr,
    /// Where a deferred answer goes, and whether the shard may park one more.
    pub(crate) deferral: Deferral<'a>,
}

/// The shard's side of [`UpgradeRequest::defer`].
pub(crate) struct Deferral<'a> {
    pub(crate) id: ConnId,
    pub(crate) hub: &'a Hub,
    /// The shard parks no more upgrades than its limit.
    pub(crate) room: bool,
    /// Set once the handler took a [`PendingUpgrade`]: the flag it shares
    /// with the shard, which clears it when the answer would be dropped.
    pub(crate) taken: Cell<Option<Arc<AtomicBool>>>,
    /// Set when a deferral was refused for want of room.
    pub(crate) refused: Cell<bool>,
}

impl UpgradeRequest<'_> {
    /// Request path without the query.
    pub fn path(&self) -> &str {
        &self.head.path
    }
    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.head.query_param(name)
    }
    /// A request header (case-insensitive name), trimmed, if valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header_str(name)
    }
    /// Subprotocols the client offered, in its order of preference.
    pub fn protocols(&self) -> &[String] {
        &self.info.protocols
    }
    /// The `Origin` header, if any.
    pub fn origin(&self) -> Option<&str> {
        self.info.origin.as_deref()
    }
    /// The peer's socket address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer.get()
    }
    /// Defers the answer to this upgrade: return `Ok(Accept::deferred())`
    /// from `on_upgrade`, hand the [`PendingUpgrade`] to whatever does the
    /// slow work (a thread pool, an async task), and answer through it from
    /// any thread. Meanwhile the shard parks the socket: it serves its other
    /// connections, and answers `503 upgrade_timeout` if no answer comes
    /// within `RINGGATE_UPGRADE_TIMEOUT`. A client that leaves first is
    /// forgotten, and the answer that comes later is dropped.
    ///
    /// Refused (`503 upgrade_busy`, ready to return with `?`) when the shard
    /// already parks `RINGGATE_MAX_PENDING_UPGRADES` upgrades.
    pub fn defer(&self) -> Result<PendingUpgrade, Reject> {
        let d = &self.deferral;
        if !d.room {
            d.refused.set(true);
            return Err(Reject::new(
                503,
                "upgrade_busy",
                "too many upgrades are waiting for an answer; retry later",
            ));
        }
        let wanted = Arc::new(AtomicBool::new(true));
        d.taken.set(Some(wanted.clone()));
        Ok(PendingUpgrade {
            hub: d.hub.clone(),
            id: d.id,
            answered: false,
            wanted,
        })
    }
}

/// An upgrade whose answer comes later ([`UpgradeRequest::defer`]): `Send`,
/// so it may go to any thread. Answer it once with [`PendingUpgrade::answer`]
/// (or `accept` / `reject`); dropped unanswered, it refuses the upgrade with
/// `500 internal_error`.
pub struct PendingUpgrade {
    hub: Hub,
    id: ConnId,
    answered: bool,
    /// Cleared by the shard once an answer would be dropped.
    wanted: Arc<AtomicBool>,
}

impl PendingUpgrade {
    /// The id the connection will have once accepted.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// False once the answer would be dropped (the client has gone, or the
    /// upgrade timed out): slow work done for it may stop there.
    pub fn is_wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed)
    }

    /// Answers the upgrade: the shard then carries on as if `on_upgrade`
    /// had returned `decision`. Never refused for a full mailbox (the shard
    /// parks a bounded number of upgrades, so their answers are bounded too);
    /// [`HubError::Stopped`] once the server has stopped.
    pub fn answer(mut self, decision: Result<Accept, Reject>) -> Result<(), HubError> {
        self.answered = true;
        self.hub.answer_upgrade(self.id, decision)
    }

    /// Accepts the upgrade ([`PendingUpgrade::answer`]).
    pub fn accept(self, accept: Accept) -> Result<(), HubError> {
        self.answer(Ok(accept))
    }

    /// Refuses the upgrade ([`PendingUpgrade::answer`]).
    pub fn reject(self, reject: Reject) -> Result<(), HubError> {
        self.answer(Err(reject))
    }
}

impl Drop for PendingUpgrade {
    fn drop(&mut self) {
        if !self.answered && self.is_wanted() {
            let refusal = Reject::new(
                500,
                "internal_error",
                "the upgrade handler dropped the request without an answer",
            );
            // The server may be gone; the socket then closes with it.
            let _ = self.hub.answer_upgrade(self.id, Err(refusal));
        }
    }
}

impl std::fmt::Debug for PendingUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingUpgrade")
            .field("id", &self.id)
            .finish()
    }
}

/// The identity a handler attaches to a connection at upgrade time.
pub type Identity = Box<dyn Any + Send>;

/// A positive answer to an upgrade.
#[derive(Default)]
pub struct Accept {
    pub(crate) protocol: Option<String>,
    pub(crate) identity: Option<Identity>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) max_message_size: Option<usize>,
    pub(crate) label: Option<String>,
    pub(crate) compression: Option<DeflateMode>,
    /// The answer comes later ([`Accept::deferred`]).
    pub(crate) deferred: bool,
}

impl Accept {
    pub fn new() -> Self {
        Self::default()
    }
    /// What `on_upgrade` returns after [`UpgradeRequest::defer`]: the answer
    /// comes later, through the [`PendingUpgrade`]. Returned without a
    /// deferral, it is answered `500 internal_error` (and a warning is logged).
    pub fn deferred() -> Self {
        Self {
            deferred: true,
            ..Self::default()
        }
    }
    /// Selects one of the offered subprotocols (one the client did not offer
    /// is left out of the answer).
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = Some(protocol.into());
        self
    }
    /// Attaches a value the handler can read back with [`ConnCtx::identity`].
    pub fn identity<T: Any + Send>(mut self, value: T) -> Self {
        self.identity = Some(Box::new(value));
        self
    }
    /// The largest message this connection may send, after reassembly
    /// (a larger one is closed with 1009), instead of the server's
    /// `websocket.max_message_size`: a route's own limit.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = Some(bytes.max(1));
        self
    }
    /// How this connection may compress (permessage-deflate), instead of
    /// the server's default (`websocket.enable_compression` and
    /// `websocket.compression_mode`): a route's own mode, from
    /// [`crate::Config::deflate_mode`]. Compression is used only if the
    /// client offers it.
    pub fn compression(mut self, mode: DeflateMode) -> Self {
        self.compression = Some(mode);
        self
    }
    /// A name for the connection that operators know it by (a charge-point
    /// id, say): `/connections` lists the connection under it.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
    /// Adds a header to the 101 response. The name must be an HTTP token,
    /// the value free of control characters (tab aside), and neither may be
    /// one of the handshake's own headers (`Upgrade`, `Connection`,
    /// `Sec-WebSocket-*`, `Content-Length`, `Transfer-Encoding`): otherwise
    /// the upgrade is refused with `500 internal_error` and a warning is logged.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The first header that may not be sent, if any.
    pub(crate) fn check_headers(&self) -> Result<(), HeaderError> {
        self.headers
            .iter()
            .try_for_each(|(name, value)| check_header(name, value, UPGRADE_HEADERS))
    }
}

/// A refusal of an upgrade: answered as an HTTP error with a JSON body.
#[derive(Debug, Clone)]
pub struct Reject {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl Reject {
    /// `code` is a short machine-readable string, `message` a human one.
    /// `status` must be an error status (400-599): any other is answered as
    /// `500 internal_error` (a 1xx or 2xx would tell the client the upgrade
    /// went ahead) and a warning is logged.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// Whether the status is one a refusal may carry.
    pub(crate) fn has_error_status(&self) -> bool {
        (400..=599).contains(&self.status)
    }
}

/// A WebSocket route's behaviour. One value serves every shard.
pub trait Handler: Send + Sync + 'static {
    /// Decides on an upgrade request: accept (maybe choosing a subprotocol and
    /// attaching an identity) or reject with an HTTP status, now or later
    /// ([`UpgradeRequest::defer`]). It runs on the shard: anything slow (a
    /// password hash, a call to another service) belongs behind a deferral.
    fn on_upgrade(&self, _req: &UpgradeRequest<'_>) -> Result<Accept, Reject> {
        Ok(Accept::new())
    }
    /// The connection is open; frames may be sent.
    fn on_open(&self, _ctx: &mut ConnCtx<'_>) {}
    /// A complete text or binary message arrived.
    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>);
    /// A timer this connection set with [`ConnCtx::set_timer`] is due.
    fn on_timer(&self, _ctx: &mut ConnCtx<'_>, _token: u64) {}
    /// The connection is closing. `code` is the peer's close code, or the
    /// code the server closed with; sends are discarded from here on.
    fn on_close(&self, _ctx: &mut ConnCtx<'_>, _code: Option<u16>, _reason: &str) {}
}

/// A handler's view of one connection, valid for one callback.
pub struct ConnCtx<'a> {
    pub(crate) id: ConnId,
    pub(crate) peer: PeerAddr,
    pub(crate) protocol: Option<&'a str>,
    pub(crate) identity: Option<&'a mut (dyn Any + Send)>,
    pub(crate) sendq: &'a mut SendQueue,
    /// What the connection negotiated of permessage-deflate, and the
    /// shard's codecs.
    pub(crate) deflate: ConnDeflate<'a>,
    pub(crate) shard: ShardScope<'a>,
    /// Messages this callback queued (for `/metrics`).
    pub(crate) sent: u64,
}

/// The shard's state a handler callback may touch, borrowed for it.
pub(crate) struct ShardScope<'a> {
    pub(crate) subs: &'a mut Subscriptions,
    pub(crate) timers: &'a mut HandlerTimers,
    pub(crate) locals: &'a mut ShardLocals,
    pub(crate) codecs: &'a mut ShardDeflate,
    pub(crate) hub: &'a Hub,
    /// Where a close the handler asks for lands.
    pub(crate) close: &'a mut Option<(u16, String)>,
}

impl ConnCtx<'_> {
    /// This connection's id (stable for its life; names its shard).
    pub fn id(&self) -> ConnId {
        self.id
    }
    /// The peer's socket address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer.get()
    }
    /// The negotiated subprotocol.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol
    }
    /// The identity attached at upgrade, if it has type `T`.
    pub fn identity<T: Any>(&self) -> Option<&T> {
        self.identity.as_deref().and_then(|v| v.downcast_ref::<T>())
    }
    /// The identity attached at upgrade, to change: per-connection state
    /// the handler owns (only this connection's callbacks ever see it, on
    /// its shard's thread, so no lock is needed).
    pub fn identity_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.identity
            .as_deref_mut()
            .and_then(|v| v.downcast_mut::<T>())
    }
    /// Queues a message to this connection (no cross-thread hop).
    /// Discarded once the connection is closing.
    pub fn send(&mut self, msg: Message<'_>) {
        if self.shard.close.is_none() {
            self.shard.codecs.push_message(
                &mut self.deflate,
                self.sendq,
                msg.opcode(),
                msg.as_bytes(),
            );
            self.sent += 1;
        }
    }
    /// Subscribes this connection to `channel` on its own shard.
    pub fn subscribe(&mut self, channel: &str) {
        self.shard.subs.subscribe(self.id.slot(), channel);
    }
    /// Calls [`Handler::on_timer`] with `token` on this connection once
    /// `after` has passed (within one shard tick, at most 250 ms, after it
    /// is due), unless the connection has gone by then. Set several for
    /// several deadlines; a timer cannot be cancelled: keep the token you
    /// are waiting for in the connection's state and ignore stale ones.
    pub fn set_timer(&mut self, after: std::time::Duration, token: u64) {
        let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        self.shard.timers.set(self.id, ms, token);
    }
    /// Removes this connection from `channel`.
    pub fn unsubscribe(&mut self, channel: &str) {
        self.shard.subs.unsubscribe(self.id.slot(), channel);
    }
    /// Starts the close handshake with `code` and `reason`. The code must be
    /// one RFC 6455 lets an endpoint send (1000-1003, 1007-1014, 3000-4999):
    /// any other (1005, 1006, 1015, ...) is sent as 1011 and a warning is
    /// logged. The reason is cut to the 123 bytes a close frame holds, at a
    /// char boundary.
    pub fn close(&mut self, code: u16, reason: &str) {
        if self.shard.close.is_some() {
            return;
        }
        let code = if is_valid_wire_code(code) {
            code
        } else {
            tracing::warn!(conn = %self.id, "handler closed with code {code}, which may not be sent; sending 1011");
            code::INTERNAL_ERROR
        };
        *self.shard.close = Some((code, reason.to_owned()));
    }
    /// The hub, for sends and broadcasts to other connections.
    pub fn hub(&self) -> &Hub {
        self.shard.hub
    }
    /// This shard's value of type `T` (created with `T::default()` on first
    /// use): per-shard state a service keeps, seen by every connection of
    /// the shard and by code the hub runs there ([`crate::ShardCtx::local`]).
    /// Only this shard's thread ever touches it, so it needs no lock.
    pub fn local<T: Default + Send + 'static>(&mut self) -> &mut T {
        self.shard.locals.get::<T>()
    }
}
