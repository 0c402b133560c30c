//! What a shard counts for `/metrics`, as plain numbers the shard alone
//! writes (no atomics, no shared cache lines on the data path) and hands out
//! as a copy when asked through the hub ([`crate::ShardCtx::metrics`]); the
//! control plane sums the copies of every shard at scrape time.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::stats::CloseReason;

/// Upper bounds (seconds) of the connection-duration histogram's buckets;
/// one more bucket holds the rest.
pub const DURATION_BUCKETS: [f64; 10] = [
    1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 21600.0, 86400.0,
];

/// One WebSocket route's counters on one shard.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteMetrics {
    /// The route's pattern (`/echo`, `/ocpp/*`).
    pub route: Arc<str>,
    /// Connections open now.
    pub open: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    /// Of the open connections, those that negotiated permessage-deflate.
    pub open_compressed: u64,
}

/// What a shard's permessage-deflate did: messages compressed to be sent
/// (a broadcast compressed once counts once, however many members get it)
/// and compressed messages inflated, with their sizes before and after.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeflateMetrics {
    pub compressed: u64,
    /// Payload bytes in, compressed bytes out (frame headers not counted).
    pub compress_plain_bytes: u64,
    pub compress_wire_bytes: u64,
    pub inflated: u64,
    /// Compressed bytes in, payload bytes out.
    pub inflate_wire_bytes: u64,
    pub inflate_plain_bytes: u64,
}

/// What became of the upgrades route handlers deferred
/// ([`crate::UpgradeRequest::defer`]) on one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpgradeMetrics {
    /// Parked now, waiting for an answer.
    pub pending: u64,
    /// Parked since start.
    pub deferred: u64,
    /// Answered with an accept, or with a refusal.
    pub accepted: u64,
    pub rejected: u64,
    /// Answered 503 at the upgrade timeout.
    pub timed_out: u64,
    /// The client went before the answer came.
    pub abandoned: u64,
    /// Deferrals refused because the shard parked its maximum already.
    pub busy: u64,
}

/// One shard's counters since it started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardMetrics {
    pub shard: usize,
    /// Per WebSocket route, in registration order.
    pub routes: Vec<RouteMetrics>,
    /// Bytes read from and written to sockets (handshakes and frames).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Answers to upgrade requests by status: 101 for the accepted ones.
    pub handshakes: BTreeMap<u16, u64>,
    /// Close codes in close frames the server started, and in the peers'.
    pub close_codes_sent: BTreeMap<u16, u64>,
    pub close_codes_received: BTreeMap<u16, u64>,
    /// Connections the server closed, by reason (index: `CloseReason as usize`).
    pub closed: [u64; CloseReason::COUNT],
    /// Hub commands this shard's full mailbox refused.
    pub mailbox_rejected: u64,
    /// Lifetimes of the WebSocket connections that ended: counts per
    /// [`DURATION_BUCKETS`] bucket (not cumulative; the last is the rest),
    /// their sum in seconds and their number.
    pub duration_buckets: [u64; DURATION_BUCKETS.len() + 1],
    pub duration_sum_s: f64,
    pub duration_count: u64,
    pub deflate: DeflateMetrics,
    pub upgrades: UpgradeMetrics,
    /// Handler timers the shard holds now (`ConnCtx::set_timer`).
    pub handler_timers: u64,
}

impl ShardMetrics {
    /// Empty counters for `routes`.
    pub(crate) fn new(shard: usize, routes: impl Iterator<Item = Arc<str>>) -> Self {
        Self {
            shard,
            routes: routes
                .map(|route| RouteMetrics {
                    route,
                    ..RouteMetrics::default()
                })
                .collect(),
            ..Self::default()
        }
    }

    /// A WebSocket connection lived `seconds`.
    pub(crate) fn observe_duration(&mut self, seconds: f64) {
        let bucket = DURATION_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(DURATION_BUCKETS.len());
        self.duration_buckets[bucket] += 1;
        self.duration_sum_s += seconds;
        self.duration_count += 1;
    }

    pub(crate) fn count_handshake(&mut self, status: u16) {
        *self.handshakes.entry(status).or_default() += 1;
    }

    pub(crate) fn count_close_sent(&mut self, code: u16) {
        *self.close_codes_sent.entry(code).or_default() += 1;
    }

    pub(crate) fn count_close_received(&mut self, code: u16) {
        *self.close_codes_received.entry(code).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_bucket() {
        let mut m = ShardMetrics::new(0, std::iter::empty());
        for s in [0.5, 1.0, 2.0, 100_000.0] {
            m.observe_duration(s);
        }
        assert_eq!(m.duration_buckets[0], 2);
        assert_eq!(m.duration_buckets[1], 1);
        assert_eq!(m.duration_buckets[DURATION_BUCKETS.len()], 1);
        assert_eq!(m.duration_count, 4);
    }
}
