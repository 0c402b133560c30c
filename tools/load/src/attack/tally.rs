//! What one attack stream sent and got back, counted by one thread and
//! added up over its threads: messages or attempts, bytes before and after
//! compression, answers by kind, answer latency, and how its connections
//! ended. Keys come from the server, so their number is bounded.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::stats::new_histogram;

/// Distinct keys one map keeps; the rest count as `other`.
const MAX_KEYS: usize = 32;

/// One stream's counters.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Slots the stream's rate called for (set once, by the stream).
    pub due: u64,
    /// Messages (registry, passwords: upgrade attempts) sent.
    pub sent: u64,
    /// Messages due while `--window` were unanswered, not sent.
    pub skipped: u64,
    /// Payload bytes sent, and as framed (compressed or not).
    pub payload_bytes: u64,
    pub wire_bytes: u64,
    /// Answers by kind: `CALLRESULT`, `CALLERROR code`, `HTTP status`, or
    /// why an attempt got none.
    pub answers: BTreeMap<String, u64>,
    /// Messages sent whose answer never came (the connection ended first,
    /// or the drain ran out).
    pub unanswered: u64,
    /// Server messages that answered nothing outstanding.
    pub unmatched: u64,
    /// Send to answer, µs.
    pub answer_us: Histogram<u64>,
    /// Message streams: connections upgraded, of those with
    /// permessage-deflate agreed, and how each ended or was refused.
    pub opened: u64,
    pub compressed: u64,
    pub ends: BTreeMap<String, u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            due: 0,
            sent: 0,
            skipped: 0,
            payload_bytes: 0,
            wire_bytes: 0,
            answers: BTreeMap::new(),
            unanswered: 0,
            unmatched: 0,
            answer_us: new_histogram(),
            opened: 0,
            compressed: 0,
            ends: BTreeMap::new(),
        }
    }
}

/// Adds `n` to `key` in `map`, or to `other` once [`MAX_KEYS`] are there.
fn bump(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    let key = if map.len() < MAX_KEYS || map.contains_key(key) {
        key
    } else {
        "other"
    };
    *map.entry(key.to_owned()).or_default() += n;
}

impl Tally {
    /// Counts one answer of kind `key` that took `us` µs.
    pub fn answer(&mut self, key: &str, us: u64) {
        bump(&mut self.answers, key, 1);
        self.answer_us.saturating_record(us.max(1));
    }

    /// Counts an attempt that got no answer, for the reason `key`.
    pub fn no_answer(&mut self, key: &str) {
        bump(&mut self.answers, key, 1);
    }

    /// Counts a connection's end (or refusal) of kind `key`.
    pub fn end(&mut self, key: &str) {
        bump(&mut self.ends, key, 1);
    }

    /// Counts a message of `payload` bytes sent as `wire` bytes.
    pub fn sent(&mut self, payload: usize, wire: usize) {
        self.sent += 1;
        self.payload_bytes += payload as u64;
        self.wire_bytes += wire as u64;
    }

    pub fn merge(&mut self, other: &Tally) {
        self.sent += other.sent;
        self.skipped += other.skipped;
        self.payload_bytes += other.payload_bytes;
        self.wire_bytes += other.wire_bytes;
        for (k, n) in &other.answers {
            bump(&mut self.answers, k, *n);
        }
        self.unanswered += other.unanswered;
        self.unmatched += other.unmatched;
        self.answer_us
            .add(&other.answer_us)
            .expect("same histogram bounds");
        self.opened += other.opened;
        self.compressed += other.compressed;
        for (k, n) in &other.ends {
            bump(&mut self.ends, k, *n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_merges_with_bounded_keys() {
        let mut a = Tally::default();
        a.sent(1000, 10);
        a.answer("CALLRESULT", 5);
        let mut b = Tally::default();
        for i in 0..MAX_KEYS + 3 {
            b.answer(&format!("CALLERROR E{i}"), 7);
        }
        b.end("close 1000");
        a.merge(&b);
        assert_eq!((a.sent, a.payload_bytes, a.wire_bytes), (1, 1000, 10));
        assert_eq!(a.answers.len(), MAX_KEYS + 1);
        assert_eq!(a.answers.values().sum::<u64>(), MAX_KEYS as u64 + 4);
        assert_eq!(a.answer_us.len(), MAX_KEYS as u64 + 4);
        assert_eq!(a.ends["close 1000"], 1);
    }
}
