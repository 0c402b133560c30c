//! The realtime counters one shard keeps as a shard-local value: plain
//! numbers bumped on the message path by that shard alone, copied out and
//! summed when `/metrics` or `/ws/stats` asks.

use super::envelope::Kind;

/// Number of message types (`Kind` as an index).
pub const KINDS: usize = Kind::ALL.len();

/// One shard's realtime counters.
#[derive(Debug, Clone, Default)]
pub struct ShardFigures {
    /// Open realtime connections on the shard.
    pub sessions: u64,
    /// Client messages accepted, by type.
    pub messages: [u64; KINDS],
    /// Client messages refused by the rate limit.
    pub rate_limited: u64,
    /// `error` replies sent.
    pub errors: u64,
    /// Presence reports and server messages dropped: a full mailbox refused
    /// them and the shard's queue for it was full too.
    pub unsent_dropped: u64,
}

impl ShardFigures {
    pub fn count_message(&mut self, kind: Kind) {
        self.messages[kind as usize] += 1;
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &ShardFigures) {
        self.sessions += other.sessions;
        for (sum, n) in self.messages.iter_mut().zip(other.messages) {
            *sum += n;
        }
        self.rate_limited += other.rate_limited;
        self.errors += other.errors;
        self.unsent_dropped += other.unsent_dropped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_index_their_own_slot() {
        for (i, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i, "{kind:?}");
        }
    }
}
