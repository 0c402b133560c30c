//! The idle mode's `--expect-marker`: each connection searches every message
//! the server sends it for the marker (a streaming search across frame and
//! read boundaries, no copy of the message), counts the text messages that
//! held it, and the run adds up how many connections got it exactly once,
//! twice or more, or never, and when the first and last arrived (Unix ms).
//! Sans-IO: never touches a socket.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ringgate::protocol::frame::OpCode;

use crate::conn::{answer_control, Msgs};
use crate::wire::FrameSink;

/// Longest marker accepted.
pub const MAX_MARKER: usize = 1024;

/// The text searched for, with its Knuth-Morris-Pratt table.
#[derive(Debug, PartialEq, Eq)]
pub struct Marker {
    text: String,
    /// `fallback[i]`: the longest proper prefix of `text[..=i]` that is
    /// also its suffix.
    fallback: Box<[u32]>,
}

impl Marker {
    /// A marker of 1 to [`MAX_MARKER`] bytes.
    pub fn new(text: &str) -> Result<Marker, String> {
        if text.is_empty() || text.len() > MAX_MARKER {
            return Err(format!(
                "--expect-marker must be 1 to {MAX_MARKER} bytes, not {}",
                text.len()
            ));
        }
        let bytes = text.as_bytes();
        let mut fallback = vec![0u32; bytes.len()];
        let mut k = 0usize;
        for i in 1..bytes.len() {
            while k > 0 && bytes[i] != bytes[k] {
                k = fallback[k - 1] as usize;
            }
            if bytes[i] == bytes[k] {
                k += 1;
            }
            fallback[i] = k as u32;
        }
        Ok(Marker {
            text: text.to_owned(),
            fallback: fallback.into_boxed_slice(),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// One connection's watch: how far into the marker the current message
/// has matched, whether it held the marker, and the messages that did.
#[derive(Debug)]
pub struct Listener {
    marker: Arc<Marker>,
    matched: u32,
    found: bool,
    /// Text messages that held the marker.
    pub hits: u32,
}

impl Listener {
    pub fn new(marker: Arc<Marker>) -> Listener {
        Listener {
            marker,
            matched: 0,
            found: false,
            hits: 0,
        }
    }

    /// Searches the next bytes of the current message.
    fn scan(&mut self, chunk: &[u8]) {
        if self.found {
            return;
        }
        let pattern = self.marker.text.as_bytes();
        let mut k = self.matched as usize;
        for &b in chunk {
            while k > 0 && pattern[k] != b {
                k = self.marker.fallback[k - 1] as usize;
            }
            if pattern[k] == b {
                k += 1;
                if k == pattern.len() {
                    self.found = true;
                    return;
                }
            }
        }
        self.matched = k as u32;
    }

    /// The message ended: whether it was a text message holding the
    /// marker (counted). The next message is searched afresh.
    fn end_message(&mut self, text: bool) -> bool {
        let hit = text && self.found;
        self.hits = self.hits.saturating_add(u32::from(hit));
        self.matched = 0;
        self.found = false;
        hit
    }
}

/// What one thread saw of the marker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarkerStats {
    /// Connections counted (each once: when it ended, or when the hold
    /// ended with it still open), by the marker messages each got.
    pub exactly_once: u64,
    pub twice_or_more: u64,
    pub none: u64,
    /// Connections whose first marker message arrived (for the live count).
    pub reached: u64,
    /// Marker messages over all connections, and the other data messages.
    pub messages: u64,
    pub other_messages: u64,
    /// The first and the last marker message's arrival, Unix ms.
    pub first_ms: Option<u64>,
    pub last_ms: Option<u64>,
}

impl MarkerStats {
    /// A marker message arrived at `at_ms`; `first` on its connection.
    pub fn receipt(&mut self, at_ms: u64, first: bool) {
        self.messages += 1;
        self.reached += u64::from(first);
        self.first_ms = Some(self.first_ms.map_or(at_ms, |t| t.min(at_ms)));
        self.last_ms = Some(self.last_ms.map_or(at_ms, |t| t.max(at_ms)));
    }

    /// Counts a connection that got `hits` marker messages.
    pub fn tally(&mut self, hits: u32) {
        match hits {
            0 => self.none += 1,
            1 => self.exactly_once += 1,
            _ => self.twice_or_more += 1,
        }
    }

    pub fn merge(&mut self, other: &MarkerStats) {
        self.exactly_once += other.exactly_once;
        self.twice_or_more += other.twice_or_more;
        self.none += other.none;
        self.reached += other.reached;
        self.messages += other.messages;
        self.other_messages += other.other_messages;
        self.first_ms = [self.first_ms, other.first_ms].into_iter().flatten().min();
        self.last_ms = [self.last_ms, other.last_ms].into_iter().flatten().max();
    }
}

/// The wall clock in Unix milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Searches a listener's messages for the marker and notes each hit's
/// arrival; answers pings and closes into `replies`.
pub struct MarkerSink<'a> {
    pub listener: &'a mut Listener,
    pub msgs: &'a mut Msgs,
    pub stats: &'a mut MarkerStats,
    pub replies: &'a mut Vec<u8>,
    pub mask: [u8; 4],
}

impl FrameSink for MarkerSink<'_> {
    fn data(&mut self, _offset: u64, chunk: &[u8]) {
        self.listener.scan(chunk);
    }

    fn message_end(&mut self, _len: u64, text: bool) {
        if self.listener.end_message(text) {
            self.stats.receipt(unix_ms(), self.listener.hits == 1);
        } else {
            self.stats.other_messages += 1;
        }
    }

    fn control(&mut self, opcode: OpCode, payload: &[u8]) {
        answer_control(self.msgs, self.replies, self.mask, opcode, payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FrameDecoder;
    use ringgate::protocol::writer::{encode_close, encode_frame};

    fn listener(marker: &str) -> Listener {
        Listener::new(Arc::new(Marker::new(marker).unwrap()))
    }

    /// Whether one message fed in `step`-byte pieces holds the marker.
    fn holds(marker: &str, message: &str, step: usize) -> bool {
        let mut l = listener(marker);
        for piece in message.as_bytes().chunks(step) {
            l.scan(piece);
        }
        l.end_message(true)
    }

    #[test]
    fn finds_the_marker_across_piece_boundaries() {
        let message = r#"{"message_type":"system_message","data":{"marker":"rg-abab-abac"}}"#;
        for step in 1..=message.len() {
            assert!(holds("rg-abab-abac", message, step), "step {step}");
            // A self-overlapping marker whose match restarts mid-way.
            assert!(holds("abac", message, step), "step {step}");
            assert!(!holds("rg-abab-abad", message, step), "step {step}");
        }
        assert!(holds("aab", "aaab", 1));
        assert!(!holds("aab", "abab", 1));
    }

    #[test]
    fn refuses_empty_and_huge_markers() {
        assert!(Marker::new("").is_err());
        assert!(Marker::new(&"x".repeat(MAX_MARKER + 1)).is_err());
        assert!(Marker::new(&"x".repeat(MAX_MARKER)).is_ok());
    }

    #[test]
    fn counts_marker_messages_per_connection_and_times_them() {
        let mut l = listener("MARK");
        let (mut msgs, mut stats, mut replies) = (Msgs::default(), MarkerStats::default(), vec![]);
        let mut wire = Vec::new();
        encode_frame(&mut wire, OpCode::Text, br#"{"message_type":"welcome"}"#);
        encode_frame(&mut wire, OpCode::Text, b"..MA");
        // A binary message with the marker does not count, and a match
        // never runs on from one message into the next.
        encode_frame(&mut wire, OpCode::Binary, b"MARK");
        encode_frame(&mut wire, OpCode::Text, b"RK..");
        encode_frame(&mut wire, OpCode::Ping, b"p");
        encode_frame(&mut wire, OpCode::Text, b"..MARK..MARK");
        encode_close(&mut wire, 1001, "bye");
        let before = unix_ms();
        let mut sink = MarkerSink {
            listener: &mut l,
            msgs: &mut msgs,
            stats: &mut stats,
            replies: &mut replies,
            mask: [1, 2, 3, 4],
        };
        let mut dec = FrameDecoder::default();
        for piece in wire.chunks(3) {
            dec.feed(piece, &mut sink).unwrap();
        }
        assert_eq!(l.hits, 1);
        assert_eq!(
            (stats.messages, stats.reached, stats.other_messages),
            (1, 1, 4)
        );
        assert!(stats.first_ms.unwrap() >= before && stats.first_ms == stats.last_ms);
        assert!(
            msgs.got_close && !replies.is_empty(),
            "ping and close answered"
        );
    }

    #[test]
    fn tallies_and_merges() {
        let mut a = MarkerStats::default();
        for hits in [0, 1, 1, 2, 7] {
            a.tally(hits);
        }
        a.receipt(2_000, true);
        let mut b = MarkerStats::default();
        b.receipt(1_000, true);
        b.receipt(3_000, false);
        b.tally(1);
        a.merge(&b);
        assert_eq!((a.exactly_once, a.twice_or_more, a.none), (3, 2, 1));
        assert_eq!((a.messages, a.reached), (3, 2));
        assert_eq!((a.first_ms, a.last_ms), (Some(1_000), Some(3_000)));
        let mut empty = MarkerStats::default();
        empty.merge(&MarkerStats::default());
        assert_eq!((empty.first_ms, empty.last_ms), (None, None));
    }
}
