//! What the shards count and anyone may read: each shard's counters (written
//! by that shard alone, on a cache line of their own, read at any time), the
//! snapshot types the hub hands out, and the reasons the server closes
//! connections that did not ask to go.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Why the server closed a connection that did not ask to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The request head did not arrive within `SERVER_READ_TIMEOUT`.
    HandshakeTimeout,
    /// Silent for `WS_PONG_WAIT` after a ping (close 1001).
    PongTimeout,
    /// Silent for `RINGGATE_IDLE_TIMEOUT` (close 1000).
    IdleTimeout,
    /// Took output slower than `RINGGATE_MIN_SEND_RATE` (dropped).
    TooSlow,
    /// Its send queue passed `RINGGATE_MAX_SEND_QUEUE` (close 1008).
    SlowConsumer,
    /// Never finished a close the server started (dropped at the close wait).
    CloseTimeout,
    /// Broke the protocol (close 1002, 1007 or 1009).
    ProtocolError,
    /// Its handler panicked (close 1011).
    HandlerFailed,
}

impl CloseReason {
    /// How many reasons there are.
    pub const COUNT: usize = 8;
    /// Every reason, in the order of [`ShardStats::closed`].
    pub const ALL: [CloseReason; Self::COUNT] = [
        CloseReason::HandshakeTimeout,
        CloseReason::PongTimeout,
        CloseReason::IdleTimeout,
        CloseReason::TooSlow,
        CloseReason::SlowConsumer,
        CloseReason::CloseTimeout,
        CloseReason::ProtocolError,
        CloseReason::HandlerFailed,
    ];

    /// A short snake_case name (for logs and metric labels).
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::HandshakeTimeout => "handshake_timeout",
            CloseReason::PongTimeout => "pong_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::TooSlow => "too_slow",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::CloseTimeout => "close_timeout",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::HandlerFailed => "handler_failed",
        }
    }
}

/// Counters one shard writes and anyone may read.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct ShardCounters {
    pub(crate) connections: AtomicUsize,
    pub(crate) closed: [AtomicU64; CloseReason::COUNT],
    /// Connections open when the drain began, and those its timeout cut.
    drain: [AtomicUsize; 2],
}

impl ShardCounters {
    /// Publishes how the shard's drain went, as it exits.
    pub(crate) fn publish_drain(&self, open_at_start: usize, cut: usize) {
        self.drain[0].store(open_at_start, Ordering::Relaxed);
        self.drain[1].store(cut, Ordering::Relaxed);
    }

    /// What [`ShardCounters::publish_drain`] said: (open at start, cut).
    pub(crate) fn drain(&self) -> (usize, usize) {
        (
            self.drain[0].load(Ordering::Relaxed),
            self.drain[1].load(Ordering::Relaxed),
        )
    }

    /// Publishes the shard's close counts.
    pub(crate) fn publish_closed(&self, closed: &[u64; CloseReason::COUNT]) {
        for (counter, &n) in self.closed.iter().zip(closed) {
            counter.store(n, Ordering::Relaxed);
        }
    }

    pub(super) fn snapshot(&self, mailbox_rejected: u64) -> ShardStats {
        ShardStats {
            connections: self.connections.load(Ordering::Relaxed),
            mailbox_rejected,
            closed: std::array::from_fn(|i| self.closed[i].load(Ordering::Relaxed)),
        }
    }
}

/// One shard's figures in [`HubStats`] (its message counts are in
/// [`crate::ShardCtx::metrics`], where `/stats` and `/metrics` read them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardStats {
    pub connections: usize,
    /// Hub commands this shard's full mailbox refused.
    pub mailbox_rejected: u64,
    /// Connections the server closed, by reason: index with
    /// `CloseReason as usize` (the order of [`CloseReason::ALL`]).
    pub closed: [u64; CloseReason::COUNT],
}

/// A snapshot of the server's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubStats {
    /// Open WebSocket connections, all shards.
    pub connections: usize,
    pub shards: Vec<ShardStats>,
}
