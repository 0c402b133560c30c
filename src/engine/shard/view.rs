//! [`ShardCtx`]: what code sent to a shard through the hub
//! ([`crate::Hub::run_on`]) may see and do there. It runs on the shard's
//! thread between two I/O turns, so it must be quick; it never blocks and
//! never sees the driver.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use super::conn::Phase;
use super::Shard;
use crate::handler::Message;
use crate::hub::{ConnId, Frame, ShardMetrics, SharedFrame};
use crate::protocol::close::{code, is_valid_wire_code};

/// One open WebSocket connection, as `/connections` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    pub id: ConnId,
    /// The pattern of the route it connected to.
    pub route: String,
    pub connected_at: SystemTime,
    /// When it last sent anything.
    pub last_activity: SystemTime,
    pub remote_addr: Option<SocketAddr>,
    pub subprotocol: Option<String>,
    /// The name the route's handler gave it ([`crate::Accept::label`]).
    pub label: Option<String>,
}

/// A shard, seen by code the hub runs on it.
pub struct ShardCtx<'a> {
    pub(super) shard: &'a mut Shard,
}

impl ShardCtx<'_> {
    /// This shard's index.
    pub fn index(&self) -> usize {
        self.shard.index
    }

    /// The hub, to reach other shards from here.
    pub fn hub(&self) -> &crate::Hub {
        &self.shard.shared.hub
    }

    /// Open WebSocket connections on this shard.
    pub fn connection_count(&self) -> usize {
        self.open_conns().count()
    }

    /// Up to `limit` open WebSocket connections with ids above `after`, in
    /// id order (a slot's ids grow with the slot, so slab order is id order).
    pub fn connections_after(&self, after: Option<ConnId>, limit: usize) -> Vec<ConnInfo> {
        let shard = &*self.shard;
        self.open_conns()
            .filter(|(_, c)| after.map_or(true, |a| c.id > a))
            .take(limit)
            .map(|(key, c)| ConnInfo {
                id: c.id,
                route: shard.shared.routes.ws_pattern(c.route as usize).to_owned(),
                connected_at: shard.wall_clock(c.accepted_at),
                last_activity: shard.wall_clock(c.last_rx),
                remote_addr: shard.peer(key).get(),
                subprotocol: c
                    .attached
                    .as_ref()
                    .and_then(|a| a.protocol.as_deref())
                    .map(str::to_owned),
                label: c
                    .attached
                    .as_ref()
                    .and_then(|a| a.label.as_deref())
                    .map(str::to_owned),
            })
            .collect()
    }

    /// Whether `id` names an open WebSocket connection on this shard.
    pub fn is_open(&self, id: ConnId) -> bool {
        self.shard.is_open(id)
    }

    /// Queues `msg` to connection `id`; false when `id` names no open
    /// connection of this shard (gone, closing, or on another shard), so a
    /// caller learns at once that nobody got it.
    pub fn send(&mut self, id: ConnId, msg: Message<'_>) -> bool {
        self.shard.is_open(id) && self.shard.deliver(id, &SharedFrame::new(msg))
    }

    /// Starts the close handshake of connection `id` (a code RFC 6455
    /// forbids on the wire is sent as 1011); false when `id` names no open
    /// connection of this shard.
    pub fn close(&mut self, id: ConnId, code: u16, reason: &str) -> bool {
        if !self.shard.is_open(id) {
            return false;
        }
        let code = if is_valid_wire_code(code) {
            code
        } else {
            code::INTERNAL_ERROR
        };
        let wait = self.shard.close_wait_ms();
        self.shard
            .start_close(id.slot() as usize, code, reason, wait);
        true
    }

    /// Calls the route handler's `on_timer` with `token` on open connection
    /// `id` of this shard once `after` has passed, as
    /// [`crate::ConnCtx::set_timer`] does; false when `id` names no open
    /// connection here.
    pub fn set_timer(&mut self, id: ConnId, after: Duration, token: u64) -> bool {
        let open = self.shard.is_open(id);
        if open {
            let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
            self.shard.handler_timers.set(id, ms, token);
        }
        open
    }

    /// Queues a pre-encoded frame to connection `id`; false as for
    /// [`ShardCtx::send`].
    pub fn send_frame(&mut self, id: ConnId, frame: &Frame) -> bool {
        self.shard.deliver(id, &frame.0)
    }

    /// Queues `frame` to every open connection of this shard subscribed to
    /// `channel`; returns how many got it.
    pub fn broadcast(&mut self, channel: &str, frame: &Frame) -> usize {
        self.shard.deliver_to_channel(channel, &frame.0, None).0
    }

    /// Subscribes open connection `id` of this shard to `channel`; false
    /// when `id` names no open connection here.
    pub fn subscribe(&mut self, id: ConnId, channel: &str) -> bool {
        let open = self.shard.is_open(id);
        if open {
            self.shard.subs.subscribe(id.slot(), channel);
        }
        open
    }

    /// Removes connection `id` of this shard from `channel`.
    pub fn unsubscribe(&mut self, id: ConnId, channel: &str) {
        if self.shard.is_open(id) {
            self.shard.subs.unsubscribe(id.slot(), channel);
        }
    }

    /// The identity open connection `id` of this shard was accepted with,
    /// if it has type `T`: the handler's per-connection state, for code
    /// that acts on many connections (a room deleted, say).
    pub fn identity_mut<T: std::any::Any>(&mut self, id: ConnId) -> Option<&mut T> {
        if !self.shard.is_open(id) {
            return None;
        }
        self.shard.conns[id.slot() as usize]
            .attached
            .as_deref_mut()?
            .identity
            .as_deref_mut()?
            .downcast_mut::<T>()
    }

    /// This shard's value of type `T`, the same one handlers see with
    /// [`crate::ConnCtx::local`].
    pub fn local<T: Default + Send + 'static>(&mut self) -> &mut T {
        self.shard.locals.get::<T>()
    }

    /// Connections of this shard subscribed to `channel`.
    pub fn channel_members(&self, channel: &str) -> usize {
        self.shard.subs.member_count(channel)
    }

    /// The ids of this shard's connections subscribed to `channel`: with a
    /// channel per application key (`user:42`, `cp:CP-1`), the directory
    /// from that key to its connections.
    pub fn channel_member_ids(&self, channel: &str) -> Vec<ConnId> {
        let shard = &*self.shard;
        shard
            .subs
            .members(channel)
            .filter_map(|slot| shard.conns.get(slot as usize).map(|c| c.id))
            .collect()
    }

    /// A copy of this shard's counters.
    pub fn metrics(&self) -> ShardMetrics {
        let shard = &*self.shard;
        let mut metrics = shard.metrics.clone();
        metrics.closed = shard.closes.total;
        metrics.deflate = shard.codecs.metrics();
        metrics.upgrades.pending = shard.parked as u64;
        metrics.handler_timers = shard.handler_timers.len() as u64;
        metrics.mailbox_rejected = shard
            .shared
            .hub
            .stats()
            .shards
            .get(shard.index)
            .map_or(0, |s| s.mailbox_rejected);
        metrics
    }

    fn open_conns(&self) -> impl Iterator<Item = (usize, &super::conn::Conn)> {
        self.shard
            .conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Open)
    }
}

impl Shard {
    /// The wall-clock time of shard clock reading `ms`.
    fn wall_clock(&self, ms: u64) -> SystemTime {
        self.epoch + Duration::from_millis(ms)
    }
}
