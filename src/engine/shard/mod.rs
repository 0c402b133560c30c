//! One shard's connections and everything that happens to them, independent of
//! how bytes move: the driver reports accepts, received bytes, finished writes
//! and EOFs; the shard answers with queued output and connections to close
//! (listed in `dirty`). Only the owning thread ever touches this state.

mod admission;
mod closes;
mod compression;
mod conn;
mod frames;
mod handler_timers;
mod locals;
mod timers;
mod upgrade;
mod view;

use std::net::SocketAddr;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use slab::Slab;

use admission::AcceptBackoff;
pub(crate) use admission::Room;
use closes::CloseCounts;
use compression::Negotiated;
pub(crate) use compression::{ConnDeflate, ShardDeflate};
use conn::{Closing, Conn, Phase};
pub(crate) use handler_timers::HandlerTimers;
pub(crate) use locals::ShardLocals;
pub use view::{ConnInfo, ShardCtx};

use super::descriptor::Descriptor;
use super::handoff::{PlainHttp, Ticket};
use super::socket::PeerAddr;
use super::{ShardEvent, Shared};
use crate::handler::{ConnCtx, Handler, ShardScope};
use crate::hub::{
    CloseReason, Command, ConnId, ShardInbox, ShardMetrics, SharedFrame, Subscriptions,
};
use crate::protocol::close::code;
use crate::protocol::reader::MessageReader;
use crate::protocol::writer::encode_close;

/// Most slots a shard reserves address space for at start (about 180 MiB
/// of address space, not memory, at 176 bytes a slot).
const MAX_PRESIZED_SLOTS: usize = 1 << 20;

/// Mailbox work one loop turn may do (a command, or one delivery of a
/// broadcast), so a flood into this shard cannot starve its sockets and timers.
const INBOX_BUDGET: usize = 16_384;

/// What the driver must do with a connection after the shard touched it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing to do (a write is in flight or nothing is queued).
    Idle,
    /// Write the queued bytes.
    Write,
    /// Close the socket now, even with a write in flight (the driver aborts
    /// it first); `reset` closes abortively (RST).
    Close { reset: bool },
    /// Stop receiving and give the socket to the control plane
    /// ([`Shard::detach`]).
    HandOff,
}

/// What goes with a detached connection's socket to the control plane.
pub(crate) struct Detached {
    bytes: Vec<u8>,
    ticket: Option<Ticket>,
}

/// A shard: a slab of connections plus its channel table and mailbox.
pub(crate) struct Shard {
    pub(crate) index: usize,
    conns: Slab<Conn>,
    /// Each slot's generation, bumped when a connection takes the slot: the
    /// part of a [`ConnId`] that tells apart the connections a slot held.
    generations: Vec<u32>,
    pub(crate) shared: Arc<Shared>,
    subs: Subscriptions,
    inbox: ShardInbox,
    /// Where to say the shard is ready (taken once it is).
    events: Option<crossbeam_channel::Sender<ShardEvent>>,
    /// The mailbox held more than one turn's budget.
    inbox_backlog: bool,
    backoff: AcceptBackoff,
    closes: CloseCounts,
    clock: Instant,
    /// Milliseconds since the shard started; refreshed by [`Shard::update_clock`].
    pub(crate) now: u64,
    /// Connections whose output or lifecycle changed since the driver last looked.
    dirty: Vec<usize>,
    /// Peer addresses reported by accepts, by slot, for connections on
    /// direct descriptors (which getpeername cannot ask; empty otherwise).
    peers: Vec<Option<SocketAddr>>,
    /// Set once shutdown began: the drain deadline.
    draining_until: Option<u64>,
    /// Connections in [`Phase::Upgrading`].
    parked: usize,
    /// Connections open when the drain began, and those its deadline cut.
    drained_from: usize,
    drain_cut: usize,
    /// What `/metrics` reports of this shard.
    metrics: ShardMetrics,
    /// Timers handlers set on their connections.
    handler_timers: HandlerTimers,
    /// Values handlers keep per shard.
    locals: ShardLocals,
    /// permessage-deflate codecs and buffers shared by the shard's connections.
    codecs: ShardDeflate,
    /// The wall-clock time when `clock` started.
    epoch: SystemTime,
}

impl Shard {
    pub(crate) fn new(
        index: usize,
        inbox: ShardInbox,
        events: crossbeam_channel::Sender<ShardEvent>,
        shared: Arc<Shared>,
    ) -> Self {
        // Room for this shard's share of MAX_CONNECTIONS up front: address
        // space only (pages become resident as slots fill), and the slab
        // never doubles and copies under a connection storm.
        let shards = shared.hub.shards().max(1);
        let share = shared.config.server.max_connections / shards + 1;
        let clock = Instant::now();
        Self {
            index,
            conns: Slab::with_capacity(share.min(MAX_PRESIZED_SLOTS)),
            generations: Vec::new(),
            subs: Subscriptions::default(),
            inbox,
            events: Some(events),
            inbox_backlog: false,
            backoff: AcceptBackoff::default(),
            closes: CloseCounts::default(),
            clock,
            now: 0,
            dirty: Vec::new(),
            peers: Vec::new(),
            draining_until: None,
            parked: 0,
            drained_from: 0,
            drain_cut: 0,
            metrics: ShardMetrics::new(index, shared.routes.ws_patterns()),
            handler_timers: HandlerTimers::new(clock),
            locals: ShardLocals::default(),
            codecs: ShardDeflate::new(
                shared.config.websocket.compression_level as u32,
                shared.config.websocket.compression_threshold,
            ),
            epoch: SystemTime::now(),
            shared,
        }
    }

    pub(crate) fn update_clock(&mut self) {
        self.now = self.clock.elapsed().as_millis() as u64;
    }

    /// The eventfd the driver watches for hub commands.
    pub(crate) fn waker_fd(&self) -> RawFd {
        self.inbox.inbox.waker_fd()
    }

    /// The driver finished its set-up: the server may report it is listening.
    pub(crate) fn ready(&mut self) {
        if let Some(events) = self.events.take() {
            // The handle may be gone already (a failed start): nobody to tell.
            let _ = events.send(ShardEvent::Ready);
        }
    }

    /// True while new connections are welcome.
    pub(crate) fn accepting(&self) -> bool {
        self.draining_until.is_none()
    }

    /// True when the loop may exit: draining and nothing left, or the drain
    /// deadline passed.
    pub(crate) fn finished(&self) -> bool {
        match self.draining_until {
            Some(deadline) => self.conns.is_empty() || self.now >= deadline,
            None => false,
        }
    }

    /// Registers an accepted socket, or gives it back (`Err`) when the server
    /// is full: the driver then refuses it with [`OVERLOADED`]. `room` is what
    /// the driver's own descriptor table allows.
    pub(crate) fn on_accept(
        &mut self,
        socket: Descriptor,
        peer: PeerAddr,
        room: Room,
    ) -> Result<usize, Descriptor> {
        self.accept_succeeded();
        if !self.accepting() {
            // Accepted as the listener closed for the drain.
            return Err(socket);
        }
        let key = self.conns.vacant_key();
        if key >= ConnId::MAX_SLOTS {
            return Err(socket);
        }
        let Some(reserve) = self.admit(room) else {
            return Err(socket);
        };
        if key >= self.generations.len() {
            self.generations.resize(key + 1, 0);
        }
        let generation = &mut self.generations[key];
        *generation = generation.wrapping_add(1);
        let id = ConnId::new(self.index, key as u32, *generation);
        let direct = matches!(socket, Descriptor::Direct(_));
        self.conns.insert(Conn::new(id, socket, reserve, self.now));
        if let (true, PeerAddr::Known(addr)) = (direct, peer) {
            if key >= self.peers.len() {
                self.peers.resize(key + 1, None);
            }
            self.peers[key] = addr;
        }
        Ok(key)
    }

    /// How to find connection `key`'s peer address.
    fn peer(&self, key: usize) -> PeerAddr {
        match self.conns[key].socket.process_fd() {
            Some(fd) => PeerAddr::Socket(fd),
            None => PeerAddr::Known(self.peers[key]),
        }
    }

    /// The number the driver names connection `key`'s socket by in its
    /// operations (a process descriptor or a table index).
    pub(crate) fn socket_fd(&self, key: usize) -> RawFd {
        self.conns[key].socket.raw()
    }

    /// Bytes arrived on connection `key`. `data` is the driver's receive
    /// buffer; it may be modified (unmasked) in place.
    pub(crate) fn on_data(&mut self, key: usize, data: &mut [u8]) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.last_rx = self.now;
        self.metrics.bytes_in += data.len() as u64;
        match conn.phase {
            _ if conn.closing.ignores_input() => {}
            Phase::Handshake => self.on_request_bytes(key, data),
            Phase::Upgrading => self.on_parked_bytes(key, data),
            Phase::Open => self.on_frame_bytes(key, data),
            Phase::HandOff => {
                if let Some(head) = conn.head.as_mut() {
                    head.bytes.extend_from_slice(data);
                }
            }
        }
        self.mark(key);
    }

    /// The peer closed its side or the socket failed. A connection being
    /// handed off goes on: the control plane reads the end of input itself.
    pub(crate) fn on_eof(&mut self, key: usize) {
        if matches!(self.conns.get(key), Some(c) if c.phase == Phase::HandOff) {
            return;
        }
        self.notify_close(key, Some(code::ABNORMAL), "connection lost");
        self.close_now(key, false);
    }

    /// Marks connection `key` for closing at the driver's next look.
    fn close_now(&mut self, key: usize, reset: bool) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !matches!(conn.closing, Closing::Now { .. }) {
                conn.closing = Closing::Now { reset };
            }
            self.mark(key);
        }
    }

    /// Fills `iov` with connection `key`'s queued output and marks it in
    /// flight; returns the entries filled.
    pub(crate) fn start_write(&mut self, key: usize, iov: &mut [libc::iovec]) -> usize {
        self.conns[key].sendq.start_write(iov)
    }

    /// The write the driver started on `key` did not happen (would block,
    /// interrupted): the bytes stay queued.
    pub(crate) fn write_not_started(&mut self, key: usize) {
        self.conns[key].sendq.abort_write();
    }

    /// The driver wrote `n` bytes of the write it started.
    pub(crate) fn on_written(&mut self, key: usize, n: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.sendq.complete(n);
            self.metrics.bytes_out += n as u64;
            self.mark(key);
        }
    }

    /// A write failed: the connection is dead.
    pub(crate) fn on_write_error(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.sendq.abort_write();
        }
        self.on_eof(key);
    }

    /// Decides what the driver does next with connection `key`.
    pub(crate) fn next(&self, key: usize) -> Next {
        let Some(conn) = self.conns.get(key) else {
            return Next::Idle;
        };
        match conn.closing {
            Closing::Now { reset } => Next::Close { reset },
            _ if conn.phase == Phase::HandOff => Next::HandOff,
            _ if conn.sendq.write_in_flight() => Next::Idle,
            _ if !conn.sendq.is_empty() => Next::Write,
            Closing::AfterFlush { .. } => Next::Close { reset: false },
            _ => Next::Idle,
        }
    }

    /// Takes the list of connections the driver should look at.
    pub(crate) fn take_dirty(&mut self, into: &mut Vec<usize>) {
        into.clear();
        std::mem::swap(into, &mut self.dirty);
        for &key in into.iter() {
            if let Some(conn) = self.conns.get_mut(key) {
                conn.dirty = false;
            }
        }
    }

    /// Forgets connection `key` once no driver operation refers to it any
    /// more, and hands its socket to the driver to close (a process
    /// descriptor closes when dropped). What the handler attached is dropped
    /// under the panic guard.
    pub(crate) fn remove(&mut self, key: usize) -> Descriptor {
        self.notify_close(key, Some(code::ABNORMAL), "connection closed");
        self.forget(key).socket
    }

    /// Forgets connection `key` of [`Next::HandOff`] once no driver operation
    /// refers to it any more: its socket (for the driver to turn into a
    /// process descriptor if it is not one) and what goes with it to the
    /// control plane ([`Shard::hand_off`]).
    pub(crate) fn detach(&mut self, key: usize) -> (Descriptor, Detached) {
        let mut conn = self.forget(key);
        let head = conn.head.take().map(|head| *head);
        let (bytes, ticket) = head.map_or((Vec::new(), None), |h| (h.bytes, h.ticket));
        (conn.socket, Detached { bytes, ticket })
    }

    /// Gives a detached connection to the control plane (`socket` is its
    /// process descriptor).
    pub(crate) fn hand_off(&self, socket: OwnedFd, detached: Detached) {
        let Some(ticket) = detached.ticket else {
            return;
        };
        self.shared.http_gate.hand_off(PlainHttp {
            socket,
            bytes: detached.bytes,
            ticket,
        });
    }

    /// Takes connection `key` out of the slab and its counts.
    fn forget(&mut self, key: usize) -> Conn {
        let mut conn = self.conns.remove(key);
        self.shared.sockets.fetch_sub(1, Ordering::Relaxed);
        self.descriptor_freed();
        if conn.phase == Phase::Upgrading {
            self.parked -= 1;
            self.metrics.upgrades.abandoned += 1;
            if let Some(head) = &conn.head {
                head.forsake();
            }
        }
        if conn.phase == Phase::Open {
            let route = &mut self.metrics.routes[conn.route as usize];
            route.open = route.open.saturating_sub(1);
            if conn.deflate != Negotiated::Off {
                route.open_compressed = route.open_compressed.saturating_sub(1);
            }
            let lived_ms = self.now.saturating_sub(conn.accepted_at);
            self.metrics.observe_duration(lived_ms as f64 / 1000.0);
            self.subs.remove_slot(conn.id.slot());
            self.inbox
                .counters
                .connections
                .fetch_sub(1, Ordering::Relaxed);
        }
        let conns = &self.conns;
        self.handler_timers
            .connection_gone(|id| conns.get(id.slot() as usize).is_some_and(|c| c.id == id));
        let attached = conn.attached.take();
        guarded(move || drop(attached));
        conn
    }

    /// Every connection's key.
    pub(crate) fn keys(&self) -> Vec<usize> {
        self.conns.iter().map(|(key, _)| key).collect()
    }

    /// The driver's last word, once no operation refers to a socket any
    /// more: what the drain left open is cut (and reported in the shard's
    /// counters for the exit summary) and every connection forgotten.
    pub(crate) fn end(&mut self) {
        let left = self
            .conns
            .iter()
            .filter(|(_, c)| !matches!(c.closing, Closing::Now { .. }))
            .count();
        self.inbox
            .counters
            .publish_drain(self.drained_from, self.drain_cut + left);
        for key in self.keys() {
            drop(self.remove(key));
        }
    }

    /// True while the shard has work for the next loop turn without waiting:
    /// connections the driver has not looked at, or mailbox commands left
    /// over from the last turn's budget.
    pub(crate) fn has_work(&self) -> bool {
        !self.dirty.is_empty() || self.inbox_backlog
    }

    /// True while received bytes still matter for connection `key`.
    pub(crate) fn wants_input(&self, key: usize) -> bool {
        matches!(self.conns.get(key), Some(c) if !c.closing.ignores_input() && c.phase != Phase::HandOff)
    }

    /// The socket of `key` can take more output.
    pub(crate) fn mark_writable(&mut self, key: usize) {
        self.mark(key);
    }

    fn mark(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// Runs the handler's `on_close` once for an open connection.
    fn notify_close(&mut self, key: usize, code: Option<u16>, reason: &str) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase != Phase::Open || conn.close_notified {
            return;
        }
        conn.close_notified = true;
        self.with_handler(key, true, |handler, ctx| {
            handler.on_close(ctx, code, reason)
        });
    }

    /// Runs `f` with the route handler of connection `key` and a context on
    /// it, under the panic guard. Returns whether it finished and the close
    /// it asked for. With `closing`, the context discards sends and closes
    /// (the connection is closing already).
    fn with_handler(
        &mut self,
        key: usize,
        closing: bool,
        f: impl FnOnce(&dyn Handler, &mut ConnCtx<'_>),
    ) -> (bool, Option<(u16, String)>) {
        let handler = self
            .shared
            .routes
            .ws_handler(self.conns[key].route as usize)
            .clone();
        let mut close = closing.then(|| (0, String::new()));
        let (_, mut ctx) = self.split_conn(key, &mut close);
        let finished = guarded(|| f(&*handler, &mut ctx));
        (finished, close.filter(|_| !closing))
    }

    /// Connection `key`'s reader and a handler's view of the connection
    /// and this shard; a close the handler asks for lands in `close`.
    fn split_conn<'a>(
        &'a mut self,
        key: usize,
        close: &'a mut Option<(u16, String)>,
    ) -> (&'a mut MessageReader, ConnCtx<'a>) {
        let peer = self.peer(key);
        let scope = ShardScope {
            subs: &mut self.subs,
            timers: &mut self.handler_timers,
            locals: &mut self.locals,
            codecs: &mut self.codecs,
            hub: &self.shared.hub,
            close,
        };
        self.conns[key].split(peer, scope)
    }

    /// Runs a handler callback on open connection `key` under the panic
    /// guard, then acts on what it asked: a close (a panic closes with
    /// 1011), and the send-queue bound for what it queued.
    fn callback(&mut self, key: usize, f: impl FnOnce(&dyn Handler, &mut ConnCtx<'_>)) {
        let (finished, mut close) = self.with_handler(key, false, f);
        if !finished {
            close = Some((code::INTERNAL_ERROR, "handler failed".to_owned()));
            self.count_close(CloseReason::HandlerFailed);
        }
        if let Some((code, reason)) = close {
            let wait = self.close_wait_ms();
            self.start_close(key, code, &reason, wait);
        }
        self.enforce_send_limit(key);
    }

    /// Fires the handler timers that are due, on connections still open.
    fn fire_handler_timers(&mut self) {
        for (id, token) in self.handler_timers.take_due(self.now) {
            let key = id.slot() as usize;
            if self.is_open(id) && self.conns[key].closing == Closing::No {
                self.callback(key, |handler, ctx| handler.on_timer(ctx, token));
                // No input brought it here: what the handler queued is
                // written only if the connection is marked for a flush.
                self.mark(key);
            }
        }
    }

    /// Starts a server-initiated close: send a close frame, then wait for the
    /// peer's close until `deadline_ms` from now.
    pub(crate) fn start_close(&mut self, key: usize, code: u16, reason: &str, wait_ms: u64) {
        let now = self.now;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.closing != Closing::No {
            return;
        }
        match conn.phase {
            Phase::Open => {
                let mut frame = Vec::with_capacity(4 + reason.len());
                encode_close(&mut frame, code, reason);
                conn.sendq.push_bytes(&frame);
                conn.closing = Closing::AwaitPeer {
                    deadline: now + wait_ms,
                };
                self.metrics.count_close_sent(code);
                self.notify_close(key, Some(code), reason);
            }
            Phase::Handshake | Phase::Upgrading | Phase::HandOff => {
                conn.closing = Closing::Now { reset: false }
            }
        }
        self.mark(key);
    }

    /// Fails the connection: a close frame with `code`, then TCP close as soon
    /// as it is written (no waiting for the peer).
    pub(crate) fn fail(&mut self, key: usize, code: u16, reason: &str) {
        let deadline = self.now + self.close_wait_ms();
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.closing.ignores_input() {
            return;
        }
        if conn.phase == Phase::Open && conn.closing == Closing::No {
            let mut frame = Vec::with_capacity(4 + reason.len());
            encode_close(&mut frame, code, reason);
            conn.sendq.push_bytes(&frame);
            self.metrics.count_close_sent(code);
        }
        conn.closing = Closing::AfterFlush { deadline };
        self.notify_close(key, Some(code), reason);
        self.mark(key);
    }

    /// Applies the slow-consumer rule after output was queued: the bound is
    /// on what the queue holds in memory, entries included.
    fn enforce_send_limit(&mut self, key: usize) {
        let limit = self.shared.config.websocket.max_send_queue;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.sendq.held() > limit && conn.closing == Closing::No {
            conn.sendq.discard_unstarted();
            tracing::debug!(conn = %conn.id, "slow consumer: send queue over {limit} bytes");
            self.count_close(CloseReason::SlowConsumer);
            self.fail(
                key,
                code::POLICY_VIOLATION,
                "slow consumer: send queue full",
            );
        }
    }

    /// Queues a shared frame for a connection, if `id` still names it.
    pub(super) fn deliver(&mut self, id: ConnId, frame: &SharedFrame) -> bool {
        let key = id.slot() as usize;
        match self.conns.get_mut(key) {
            Some(conn)
                if conn.id == id && conn.phase == Phase::Open && conn.closing == Closing::No =>
            {
                let (mut deflate, sendq) = conn.deflate_and_sendq();
                self.codecs.push_shared(&mut deflate, sendq, frame);
                self.metrics.routes[conn.route as usize].messages_out += 1;
                self.mark(key);
                self.enforce_send_limit(key);
                true
            }
            _ => false,
        }
    }

    /// Carries out the commands waiting in the mailbox, up to one turn's
    /// budget ([`Shard::has_work`] says when some are left for the next).
    pub(crate) fn drain_inbox(&mut self) {
        if self.inbox.inbox.shutdown_requested() {
            self.begin_drain();
        }
        self.inbox.inbox.reset_wake();
        let mut budget = INBOX_BUDGET;
        self.inbox_backlog = false;
        while budget > 0 {
            let Some(cmd) = self.inbox.inbox.take() else {
                return;
            };
            budget = budget.saturating_sub(1 + self.execute(cmd));
        }
        self.inbox_backlog = true;
    }

    /// Goes on with the commands the last turn's budget left in the mailbox.
    pub(crate) fn drain_inbox_backlog(&mut self) {
        if self.inbox_backlog {
            self.drain_inbox();
        }
    }

    /// Carries out one hub command; returns the deliveries it made.
    fn execute(&mut self, cmd: Command) -> usize {
        match cmd {
            Command::Send(id, frame) => return self.deliver(id, &frame) as usize,
            Command::SendMany(ids, frame) => {
                for &id in &ids {
                    self.deliver(id, &frame);
                }
                return ids.len();
            }
            Command::Broadcast(channel, frame, except) => {
                return self.deliver_to_channel(&channel, &frame, except).1;
            }
            Command::Subscribe(id, channel) => {
                if self.is_open(id) {
                    self.subs.subscribe(id.slot(), &channel);
                }
            }
            Command::Unsubscribe(id, channel) => {
                if self.is_open(id) {
                    self.subs.unsubscribe(id.slot(), &channel);
                }
            }
            Command::Close(id, code, reason) => {
                if self.is_open(id) {
                    let wait = self.close_wait_ms();
                    self.start_close(id.slot() as usize, code, &reason, wait);
                }
            }
            Command::Upgrade(id, decision) => self.on_upgrade_answer(id, *decision),
            Command::Run(f, _) => {
                let mut ctx = ShardCtx { shard: self };
                if !guarded(|| f(&mut ctx)) {
                    tracing::warn!(
                        shard = self.index,
                        "code run on the shard through the hub panicked"
                    );
                }
            }
        }
        0
    }

    /// Delivers `frame` to this shard's members of `channel` but `except`;
    /// returns the deliveries made and the members tried.
    pub(super) fn deliver_to_channel(
        &mut self,
        channel: &str,
        frame: &SharedFrame,
        except: Option<ConnId>,
    ) -> (usize, usize) {
        let members: Vec<u32> = self.subs.members(channel).collect();
        let mut delivered = 0;
        for &slot in &members {
            let id = self.conns.get(slot as usize).map(|c| c.id);
            if let Some(id) = id.filter(|&id| Some(id) != except) {
                delivered += usize::from(self.deliver(id, frame));
            }
        }
        (delivered, members.len())
    }

    pub(super) fn is_open(&self, id: ConnId) -> bool {
        matches!(self.conns.get(id.slot() as usize), Some(c) if c.id == id && c.phase == Phase::Open)
    }

    /// How long a server-initiated close waits for the peer's close frame.
    fn close_wait_ms(&self) -> u64 {
        self.shared.config.server.drain_timeout.as_millis() as u64
    }

    /// Stops accepting and closes every connection with 1001.
    fn begin_drain(&mut self) {
        if self.draining_until.is_some() {
            return;
        }
        let wait = self.close_wait_ms();
        self.draining_until = Some(self.now + wait);
        self.drained_from = self.conns.len();
        for key in self.keys() {
            self.start_close(key, code::GOING_AWAY, "server shutting down", wait);
        }
        tracing::debug!(
            shard = self.index,
            "draining {} connections",
            self.conns.len()
        );
    }

    /// Publishes the shard's close counts (for [`crate::Hub::stats`]).
    fn publish_counters(&self) {
        self.inbox.counters.publish_closed(&self.closes.total);
    }
}

/// Runs handler code, turning a panic into `false` so one connection's bug
/// never takes down its shard. The panic's payload is handler code too (its
/// `Drop` may panic again): it is dropped under a guard of its own, and
/// leaked if even that fails.
pub(crate) fn guarded(f: impl FnOnce()) -> bool {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(()) => true,
        Err(payload) => {
            if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
                std::mem::forget(again);
            }
            false
        }
    }
}

/// The answer to a connection over MAX_CONNECTIONS.
pub(crate) static OVERLOADED: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| {
    let mut out = Vec::new();
    crate::protocol::http::write_error(
        &mut out,
        503,
        "server_full",
        "too many connections, retry later",
        &[("Retry-After", "1")],
    );
    out
});
