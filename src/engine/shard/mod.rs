//! One shard's connections and everything that happens to them, independent of
//! how bytes move: the driver reports accepts, received bytes, finished writes
//! and EOFs; the shard answers with queued output and connections to close
//! (listed in `dirty`). Only the owning thread ever touches this state.

mod conn;
mod frames;
mod timers;
mod upgrade;

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use slab::Slab;

pub(crate) use conn::{Closing, Conn, Phase};

use super::socket::PeerAddr;
use super::Shared;
use crate::hub::{Command, ConnId, ShardInbox, Subscriptions};
use crate::protocol::close::code;
use crate::protocol::writer::encode_close;

/// Most slots a shard reserves address space for at start (about 180 MiB
/// of address space, not memory, at 176 bytes a slot).
const MAX_PRESIZED_SLOTS: usize = 1 << 20;

/// What the driver must do with a connection after the shard touched it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing to do (a write is in flight or nothing is queued).
    Idle,
    /// Write the queued bytes.
    Write,
    /// Close the socket now.
    Close,
}

/// A shard: a slab of connections plus its channel table and mailbox.
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) conns: Slab<Conn>,
    pub(crate) shared: Arc<Shared>,
    subs: Subscriptions,
    inbox: ShardInbox,
    serial: u16,
    clock: Instant,
    /// Milliseconds since the shard started; refreshed by [`Shard::update_clock`].
    pub(crate) now: u64,
    /// Connections whose output or lifecycle changed since the driver last looked.
    dirty: Vec<usize>,
    /// Peer addresses reported by accepts, by slot, for connections marked
    /// `peer_known` (direct descriptors only; empty otherwise).
    peers: Vec<Option<SocketAddr>>,
    /// Set once shutdown began: the drain deadline.
    draining_until: Option<u64>,
    messages_in: u64,
    messages_out: u64,
}

impl Shard {
    pub(crate) fn new(index: usize, inbox: ShardInbox, shared: Arc<Shared>) -> Self {
        // Room for this shard's share of MAX_CONNECTIONS up front: address
        // space only (pages become resident as slots fill), and the slab
        // never doubles and copies under a connection storm.
        let shards = shared.hub.shards().max(1);
        let share = shared.config.server.max_connections / shards + 1;
        Self {
            index,
            conns: Slab::with_capacity(share.min(MAX_PRESIZED_SLOTS)),
            shared,
            subs: Subscriptions::default(),
            inbox,
            serial: 0,
            clock: Instant::now(),
            now: 0,
            dirty: Vec::new(),
            peers: Vec::new(),
            draining_until: None,
            messages_in: 0,
            messages_out: 0,
        }
    }

    pub(crate) fn update_clock(&mut self) {
        self.now = self.clock.elapsed().as_millis() as u64;
    }

    /// The eventfd the driver watches for hub commands.
    pub(crate) fn waker_fd(&self) -> RawFd {
        self.inbox.waker.raw_fd()
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

    /// Registers an accepted socket (`fd`: a process descriptor, or the
    /// driver's direct descriptor). `None` means the server is full: the
    /// driver refuses it with [`OVERLOADED`].
    pub(crate) fn on_accept(&mut self, fd: RawFd, peer: PeerAddr) -> Option<usize> {
        let limit = self.shared.config.server.max_connections;
        let before = self.shared.sockets.fetch_add(1, Ordering::Relaxed);
        if before >= limit || !self.accepting() {
            self.shared.sockets.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        self.serial = self.serial.wrapping_add(1);
        let entry = self.conns.vacant_entry();
        let id = ConnId::new(self.index, self.serial, entry.key() as u32);
        let key = entry.key();
        let conn = entry.insert(Conn::new(id, fd, self.now));
        if let PeerAddr::Known(addr) = peer {
            conn.peer_known = true;
            if key >= self.peers.len() {
                self.peers.resize(key + 1, None);
            }
            self.peers[key] = addr;
        }
        Some(key)
    }

    /// How to find connection `key`'s peer address.
    fn peer(&self, key: usize) -> PeerAddr {
        let conn = &self.conns[key];
        if conn.peer_known {
            PeerAddr::Known(self.peers[key])
        } else {
            PeerAddr::Socket(conn.fd)
        }
    }

    /// Bytes arrived on connection `key`. `data` is the driver's receive
    /// buffer; it may be modified (unmasked) in place.
    pub(crate) fn on_data(&mut self, key: usize, data: &mut [u8]) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.last_rx = self.now;
        match (conn.phase, conn.closing) {
            (_, Closing::AfterFlush | Closing::Now) => {}
            (Phase::Handshake, _) => self.on_request_bytes(key, data),
            (Phase::Open, _) => self.on_frame_bytes(key, data),
        }
        self.mark(key);
    }

    /// The peer closed its side or the socket failed.
    pub(crate) fn on_eof(&mut self, key: usize) {
        self.notify_close(key, Some(code::ABNORMAL), "connection lost");
        if let Some(conn) = self.conns.get_mut(key) {
            conn.closing = Closing::Now;
            self.mark(key);
        }
    }

    /// The driver wrote `n` bytes of the write it started.
    pub(crate) fn on_written(&mut self, key: usize, n: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            conn.sendq.complete(n);
            conn.tx_pending_since = if conn.sendq.is_empty() { 0 } else { self.now };
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
        if conn.sendq.write_in_flight() {
            return Next::Idle;
        }
        match conn.closing {
            Closing::Now => Next::Close,
            _ if !conn.sendq.is_empty() => Next::Write,
            Closing::AfterFlush => Next::Close,
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

    /// The driver closed the socket of `key`: forget the connection.
    pub(crate) fn remove(&mut self, key: usize) {
        self.notify_close(key, Some(code::ABNORMAL), "connection closed");
        if self.conns.contains(key) {
            let conn = self.conns.remove(key);
            self.shared.sockets.fetch_sub(1, Ordering::Relaxed);
            if conn.phase == Phase::Open {
                self.subs.remove_slot(conn.id.slot());
                self.inbox
                    .counters
                    .connections
                    .fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// True while the shard has connections the driver has not looked at.
    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// True while received bytes still matter for connection `key`.
    pub(crate) fn wants_input(&self, key: usize) -> bool {
        matches!(self.conns.get(key), Some(c) if !matches!(c.closing, Closing::AfterFlush | Closing::Now))
    }

    /// The socket of `key` can take more output.
    pub(crate) fn mark_writable(&mut self, key: usize) {
        self.mark(key);
    }

    fn mark(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            if conn.tx_pending_since == 0 && !conn.sendq.is_empty() {
                conn.tx_pending_since = self.now.max(1);
            }
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
        let handler = self.shared.routes.ws_handler(conn.route).clone();
        let peer = self.peer(key);
        let conn = &mut self.conns[key];
        // A close is already under way: sends from on_close are discarded.
        let mut close = Some((0, String::new()));
        let (_, mut ctx) = conn.split(peer, &mut self.subs, &self.shared.hub, &mut close);
        guarded(|| handler.on_close(&mut ctx, code, reason));
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
                self.notify_close(key, Some(code), reason);
            }
            Phase::Handshake => conn.closing = Closing::Now,
        }
        self.mark(key);
    }

    /// Fails the connection: a close frame with `code`, then TCP close as soon
    /// as it is written (no waiting for the peer).
    pub(crate) fn fail(&mut self, key: usize, code: u16, reason: &str) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if matches!(conn.closing, Closing::AfterFlush | Closing::Now) {
            return;
        }
        if conn.phase == Phase::Open && conn.closing == Closing::No {
            let mut frame = Vec::with_capacity(4 + reason.len());
            encode_close(&mut frame, code, reason);
            conn.sendq.push_bytes(&frame);
        }
        conn.closing = Closing::AfterFlush;
        self.notify_close(key, Some(code), reason);
        self.mark(key);
    }

    /// Applies the slow-consumer rule after output was queued.
    fn enforce_send_limit(&mut self, key: usize) {
        let limit = self.shared.config.websocket.max_send_queue;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.sendq.len() > limit && conn.closing == Closing::No {
            conn.sendq.discard_unstarted();
            tracing::debug!(conn = %conn.id, "slow consumer: send queue over {limit} bytes");
            self.fail(
                key,
                code::POLICY_VIOLATION,
                "slow consumer: send queue full",
            );
        }
    }

    /// Queues a shared frame for a connection, if `id` still names it.
    fn deliver(&mut self, id: ConnId, frame: &bytes::Bytes) {
        let key = id.slot() as usize;
        match self.conns.get_mut(key) {
            Some(conn)
                if conn.id == id && conn.phase == Phase::Open && conn.closing == Closing::No =>
            {
                conn.sendq.push_shared(frame.clone());
                self.messages_out += 1;
                self.mark(key);
                self.enforce_send_limit(key);
            }
            _ => {}
        }
    }

    /// Carries out every command waiting in the mailbox.
    pub(crate) fn drain_inbox(&mut self) {
        self.inbox.waker.reset();
        while let Ok(cmd) = self.inbox.rx.try_recv() {
            match cmd {
                Command::Send(id, frame) => self.deliver(id, &frame),
                Command::Broadcast(channel, frame) => {
                    let members: Vec<u32> = self.subs.members(&channel).collect();
                    for slot in members {
                        let id = self.conns.get(slot as usize).map(|c| c.id);
                        if let Some(id) = id {
                            self.deliver(id, &frame);
                        }
                    }
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
                Command::Shutdown => self.begin_drain(),
            }
        }
    }

    fn is_open(&self, id: ConnId) -> bool {
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
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.start_close(key, code::GOING_AWAY, "server shutting down", wait);
        }
        tracing::debug!(
            shard = self.index,
            "draining {} connections",
            self.conns.len()
        );
    }

    /// Publishes the shard's message counters.
    fn publish_counters(&self) {
        let c = &self.inbox.counters;
        c.messages_in.store(self.messages_in, Ordering::Relaxed);
        c.messages_out.store(self.messages_out, Ordering::Relaxed);
    }
}

/// Runs handler code, turning a panic into `false` so one connection's bug
/// never takes down its shard.
pub(crate) fn guarded(f: impl FnOnce()) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok()
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
