//! Fanout's sans-IO parts: the header every published message starts with
//! (sequence, send time, publisher), each publisher's send [`Schedule`], and
//! the subscriber side ([`Subscriber`], [`DeliverySink`]) that checks every
//! publisher's sequence and records publish-to-delivery latency.
//!
//! Send times are nanoseconds since the run's epoch, one monotonic clock for
//! every thread of this process, so a delivery's latency is its receive time
//! minus the send time it carries.

use std::time::Duration;

use ringgate::protocol::frame::OpCode;

use crate::conn::{answer_control, EchoSpec, Msgs};
use crate::stats::{Cause, Stats};
use crate::wire::FrameSink;

/// Bytes of the header: sequence (u64), send time in ns (u64) and publisher
/// index (u32), little-endian. The smallest fanout payload.
pub const HEADER_LEN: usize = 20;

const NS_PER_S: u128 = 1_000_000_000;

/// The header of message `seq` of publisher `publisher`, sent at `sent_ns`.
pub fn header(seq: u64, sent_ns: u64, publisher: u32) -> [u8; HEADER_LEN] {
    let mut out = [0; HEADER_LEN];
    out[..8].copy_from_slice(&seq.to_le_bytes());
    out[8..16].copy_from_slice(&sent_ns.to_le_bytes());
    out[16..].copy_from_slice(&publisher.to_le_bytes());
    out
}

/// `(seq, sent_ns, publisher)` of a header.
pub fn parse_header(h: &[u8; HEADER_LEN]) -> (u64, u64, u32) {
    let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
    let publisher = u32::from_le_bytes(h[16..].try_into().expect("4 bytes"));
    (u64_at(0), u64_at(8), publisher)
}

/// When one publisher sends: `total` messages, message `k` due at
/// `offset + k / rate` after the start. Publishers are offset evenly within
/// one interval so that several do not send in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub rate: u64,
    pub total: u64,
    pub offset_ns: u64,
}

impl Schedule {
    /// Publisher `index` of `publishers`, `rate` messages/s for `duration`.
    pub fn new(rate: u64, duration: Duration, index: u32, publishers: u64) -> Schedule {
        let rate = rate.max(1);
        let total = (u128::from(rate) * duration.as_nanos() / NS_PER_S) as u64;
        let offset_ns = (NS_PER_S * u128::from(index)
            / (u128::from(rate) * u128::from(publishers.max(1)))) as u64;
        Schedule {
            rate,
            total,
            offset_ns,
        }
    }

    /// How many messages are due `elapsed_ns` after the start.
    pub fn due(&self, elapsed_ns: u64) -> u64 {
        let Some(since) = elapsed_ns.checked_sub(self.offset_ns) else {
            return 0;
        };
        let due = u128::from(since) * u128::from(self.rate) / NS_PER_S + 1;
        due.min(u128::from(self.total)) as u64
    }

    /// When message `k` is due, ns after the start.
    pub fn at(&self, k: u64) -> u64 {
        let at = u128::from(k) * NS_PER_S / u128::from(self.rate);
        (at as u64).saturating_add(self.offset_ns)
    }
}

/// Where a subscriber is in one publisher's sequence.
#[derive(Debug, Clone, Copy)]
struct Track {
    /// The first sequence number expected ([`JOINING`] until a subscriber
    /// that joined mid-run sees its first delivery).
    first: u64,
    /// The sequence number expected next.
    next: u64,
}

/// `Track::first` of a subscriber that joined mid-run and has no delivery yet.
const JOINING: u64 = u64::MAX;

/// A subscriber's state: the header of the message being read, where it is
/// in each publisher's sequence, and how many deliveries it counted.
#[derive(Debug)]
pub struct Subscriber {
    head: [u8; HEADER_LEN],
    tracks: Box<[Track]>,
    /// Deliveries of the right shape (in order or after a gap).
    pub delivered: u64,
}

impl Subscriber {
    /// A subscriber that is up before anything is published: it expects every
    /// publisher's sequence from 0.
    pub fn new(publishers: usize) -> Subscriber {
        Subscriber::starting_at(publishers, 0)
    }

    /// A subscriber that joined while publishing runs: each publisher's first
    /// delivery is where its sequence starts.
    pub fn joining(publishers: usize) -> Subscriber {
        Subscriber::starting_at(publishers, JOINING)
    }

    fn starting_at(publishers: usize, first: u64) -> Subscriber {
        let track = Track { first, next: first };
        Subscriber {
            head: [0; HEADER_LEN],
            tracks: vec![track; publishers].into_boxed_slice(),
            delivered: 0,
        }
    }

    /// How many publishers' sequences it follows.
    pub fn publishers(&self) -> usize {
        self.tracks.len()
    }

    /// Messages of `published` (a count per publisher) this subscriber has
    /// neither received nor counted as skipped. A joining subscriber misses
    /// nothing from a publisher it has not heard from yet.
    pub fn missing(&self, published: &[u64]) -> u64 {
        self.tracks
            .iter()
            .zip(published)
            .filter(|(t, _)| t.first != JOINING)
            .map(|(t, sent)| sent.saturating_sub(t.next))
            .sum()
    }

    /// Takes message `seq` of publisher `publisher` (an index into this
    /// subscriber's publishers): `None` for an unknown publisher, otherwise
    /// where it falls in that publisher's sequence. A message at or after the
    /// one expected is counted as delivered and moves the sequence on.
    pub fn see(&mut self, publisher: usize, seq: u64) -> Option<Seen> {
        let track = self.tracks.get_mut(publisher)?;
        if track.first == JOINING {
            *track = Track {
                first: seq,
                next: seq,
            };
        }
        if seq < track.next {
            return Some(Seen::Behind);
        }
        let skipped = seq - track.next;
        track.next = seq + 1;
        self.delivered += 1;
        Some(if skipped == 0 {
            Seen::InOrder
        } else {
            Seen::After(skipped)
        })
    }

    /// Messages this subscriber should have had: from its start to
    /// `published` (a count per publisher), or with `None`, to the last one
    /// it received.
    pub fn expected(&self, published: Option<&[u64]>) -> u64 {
        self.tracks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.first != JOINING)
            .map(|(i, t)| {
                let end = published.map_or(t.next, |p| p.get(i).copied().unwrap_or(0));
                end.max(t.next) - t.first
            })
            .sum()
    }
}

/// Where a message fell in its publisher's sequence ([`Subscriber::see`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The one expected next.
    InOrder,
    /// Later than expected: this many were skipped.
    After(u64),
    /// Before the one expected: a duplicate or a late (reordered) message.
    Behind,
}

/// Checks deliveries to one subscriber (length, type, publisher, sequence),
/// records their latency, and answers pings and closes into `replies`.
pub struct DeliverySink<'a> {
    pub sub: &'a mut Subscriber,
    pub msgs: &'a mut Msgs,
    pub stats: &'a mut Stats,
    pub replies: &'a mut Vec<u8>,
    pub spec: EchoSpec,
    /// Receive time, ns since the run's epoch.
    pub now_ns: u64,
}

impl FrameSink for DeliverySink<'_> {
    fn data(&mut self, offset: u64, chunk: &[u8]) {
        if offset < HEADER_LEN as u64 {
            let at = offset as usize;
            let n = (HEADER_LEN - at).min(chunk.len());
            self.sub.head[at..at + n].copy_from_slice(&chunk[..n]);
        }
    }

    fn message_end(&mut self, len: u64, text: bool) {
        // The payload is at least HEADER_LEN bytes, so a message of the right
        // length has filled the whole header.
        if text || len != self.spec.payload_len {
            return self.stats.fail(Cause::EchoMismatch, 1);
        }
        let (seq, sent_ns, publisher) = parse_header(&self.sub.head);
        match self.sub.see(publisher as usize, seq) {
            None => return self.stats.fail(Cause::EchoMismatch, 1),
            Some(Seen::Behind) => return self.stats.fail(Cause::FanoutGap, 1),
            Some(Seen::After(skipped)) => self.stats.fail(Cause::FanoutGap, skipped),
            Some(Seen::InOrder) => {}
        }
        self.stats.received += 1;
        self.stats.bytes_received += len;
        let us = self.now_ns.saturating_sub(sent_ns) / 1000;
        self.stats.rtt.saturating_record(us.max(1));
    }

    fn control(&mut self, opcode: OpCode, payload: &[u8]) {
        answer_control(self.msgs, self.replies, self.spec.mask, opcode, payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{FrameDecoder, MessageTemplate};
    use ringgate::protocol::frame::decode_header;
    use ringgate::protocol::mask::apply_mask;
    use ringgate::protocol::writer::encode_frame;

    #[test]
    fn headers_round_trip_through_a_template() {
        let h = header(0x0102_0304_0506_0708, 99_000, 7);
        assert_eq!(parse_header(&h), (0x0102_0304_0506_0708, 99_000, 7));
        let t = MessageTemplate::new(64, false, [9, 8, 7, 6]);
        let mut frame = Vec::new();
        t.append_with(&mut frame, &h);
        let (fh, n) = decode_header(&frame).unwrap().unwrap();
        assert_eq!((fh.opcode, fh.payload_len), (OpCode::Binary, 64));
        let mut payload = frame[n..].to_vec();
        apply_mask(&mut payload, fh.mask.unwrap(), 0);
        assert_eq!(payload[..HEADER_LEN], h);
        assert!(payload[HEADER_LEN..].iter().all(u8::is_ascii_lowercase));
    }

    #[test]
    fn schedules() {
        let s = Schedule::new(1000, Duration::from_secs(5), 0, 1);
        assert_eq!((s.total, s.offset_ns), (5000, 0));
        assert_eq!(s.due(0), 1);
        assert_eq!(s.due(999_999), 1);
        assert_eq!(s.due(1_000_000), 2);
        assert_eq!(s.due(u64::MAX), 5000);
        assert_eq!(s.at(3), 3_000_000);
        // Two publishers at 10/s: the second sends half an interval later.
        let s = Schedule::new(10, Duration::from_secs(1), 1, 2);
        assert_eq!((s.total, s.offset_ns), (10, 50_000_000));
        assert_eq!(s.due(49_999_999), 0);
        assert_eq!(s.due(50_000_000), 1);
        assert_eq!(s.at(1), 150_000_000);
        assert_eq!(Schedule::new(3, Duration::from_millis(300), 0, 1).total, 0);
    }

    /// A server frame carrying message `seq` of `publisher`, `len` bytes.
    fn delivery(len: usize, seq: u64, sent_ns: u64, publisher: u32) -> Vec<u8> {
        let mut payload = vec![b'x'; len];
        payload[..HEADER_LEN].copy_from_slice(&header(seq, sent_ns, publisher));
        let mut out = Vec::new();
        encode_frame(&mut out, OpCode::Binary, &payload);
        out
    }

    /// Feeds `wire` to a subscriber of `payload_len`-byte deliveries in
    /// pieces of `piece` bytes at `now_ns`; returns the stats and the replies.
    fn feed(
        sub: &mut Subscriber,
        payload_len: u64,
        wire: &[u8],
        piece: usize,
        now_ns: u64,
    ) -> (Stats, Vec<u8>) {
        let mut msgs = Msgs::default();
        let mut stats = Stats::default();
        let mut replies = Vec::new();
        let mut sink = DeliverySink {
            sub,
            msgs: &mut msgs,
            stats: &mut stats,
            replies: &mut replies,
            spec: EchoSpec {
                payload_len,
                stamp_len: 8,
                text: false,
                mask: [1, 2, 3, 4],
            },
            now_ns,
        };
        let mut dec = FrameDecoder::default();
        for piece in wire.chunks(piece) {
            dec.feed(piece, &mut sink).unwrap();
        }
        (stats, replies)
    }

    #[test]
    fn checks_sequences_per_publisher() {
        let mut sub = Subscriber::new(2);
        let mut wire = Vec::new();
        for (seq, publisher) in [(0, 0), (0, 1), (1, 0), (4, 0), (1, 1), (4, 0), (2, 0)] {
            wire.extend(delivery(30, seq, 1_000, publisher));
        }
        wire.extend(delivery(30, 0, 0, 2)); // no such publisher
        wire.extend(delivery(31, 5, 0, 0)); // wrong length
        encode_frame(&mut wire, OpCode::Ping, b"p");
        let (stats, replies) = feed(&mut sub, 30, &wire, 7, 6_000);
        // Delivered: p0 0,1,4 and p1 0,1; skipped p0 2,3; then 4 again and 2
        // arrive out of order.
        assert_eq!(stats.received, 5);
        assert_eq!(stats.failures_of(Cause::FanoutGap), 2 + 1 + 1);
        assert_eq!(stats.failures_of(Cause::EchoMismatch), 2);
        assert_eq!((stats.rtt.len(), stats.rtt.max()), (5, 5));
        assert_eq!(sub.missing(&[5, 2]), 0);
        assert_eq!(sub.missing(&[7, 4]), 4);
        assert_eq!(sub.delivered, 5);
        assert_eq!(sub.expected(None), 5 + 2);
        assert_eq!(sub.expected(Some(&[7, 4])), 7 + 4);
        let (pong, _) = decode_header(&replies).unwrap().unwrap();
        assert_eq!(pong.opcode, OpCode::Pong);
    }

    #[test]
    fn a_joining_subscriber_starts_at_its_first_delivery() {
        let mut sub = Subscriber::joining(2);
        assert_eq!((sub.missing(&[9, 9]), sub.expected(Some(&[9, 9]))), (0, 0));
        let mut wire = Vec::new();
        for seq in [40, 41, 43] {
            wire.extend(delivery(20, seq, 0, 0));
        }
        let (stats, _) = feed(&mut sub, 20, &wire, wire.len(), 0);
        assert_eq!(stats.failures_of(Cause::FanoutGap), 1);
        assert_eq!(sub.delivered, 3);
        // Publisher 1 was never heard from: nothing expected or missing there.
        assert_eq!(sub.expected(None), 4);
        assert_eq!(sub.expected(Some(&[50, 7])), 10);
        assert_eq!(sub.missing(&[50, 7]), 6);
    }
}
