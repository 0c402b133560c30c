//! What one worker thread measured: histograms (µs), counters and failures
//! by cause (and a soak run's tally), merged across threads at the end. Also
//! the live counters a worker publishes for the progress line.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hdrhistogram::Histogram;

use crate::deflate_codec::DeflateStats;
use crate::marker::MarkerStats;
use crate::ocpp::OcppStats;
use crate::realtime::RealtimeStats;
use crate::soak::SoakStats;
use crate::wire::DecodeError;

/// Every failure cause counted, with its stable JSON name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// `ECONNREFUSED` on connect.
    ConnectRefused,
    /// `EADDRNOTAVAIL`/`EADDRINUSE`: out of local ports for that source address.
    AddrUnavailable,
    /// Could not create a socket (`EMFILE`, `ENFILE`, ...).
    SocketError,
    /// Any other connect error.
    ConnectFailed,
    /// Handshake not complete within `--handshake-timeout`.
    Timeout,
    /// An answer other than 101.
    BadStatus,
    /// A 101 with a wrong accept key, or a malformed answer.
    BadHandshake,
    /// A frame the client refused (masked, reserved bits, bad sequence).
    ProtocolError,
    /// The server closed the TCP connection while it should have stayed up.
    ClosedEarly,
    /// The server sent a Close frame while the connection should have stayed up.
    ClosedByServer,
    /// A read or write error (reset, broken pipe).
    IoError,
    /// An echo of the wrong length or with the wrong sequence stamp.
    EchoMismatch,
    /// A message sent whose echo never came back by the end of the run.
    Unanswered,
    /// A sustained-mode send skipped because `--window` messages were unanswered.
    WindowFull,
    /// Fanout: a delivery out of sequence; a gap counts the messages skipped,
    /// a duplicate or reordered delivery counts one.
    FanoutGap,
    /// Fanout: a message published but not delivered to an open subscriber
    /// by the end of the drain grace.
    Undelivered,
    /// Realtime: a delivery behind its publisher's sequence (a duplicate, or
    /// one that came after a later one).
    Duplicate,
    /// Realtime: a member without its `room_joined` `--handshake-timeout`
    /// after connect().
    NotJoined,
    /// Realtime: an `error` message with the code `rate_limited`.
    RateLimited,
    /// Realtime: any other `error` message.
    ServerError,
    /// A 101 that did not select the subprotocol offered (OCPP: `ocpp1.6`).
    NoSubprotocol,
    /// OCPP: a text message that is no OCPP-J frame, a binary message, or a
    /// CALLRESULT whose payload lacks what its action's answer needs.
    BadFrame,
    /// OCPP: a CALLRESULT whose id is not the outstanding CALL's (or with no
    /// CALL outstanding).
    ReplyMismatch,
    /// OCPP: a CALLERROR from the server.
    CallError,
    /// OCPP: a BootNotification answered with a status other than `Accepted`.
    BootRejected,
    /// OCPP: a charge point whose BootNotification was not answered
    /// `--handshake-timeout` after connect().
    NotBooted,
    /// `--deflate`: a 101 whose `Sec-WebSocket-Extensions` is no valid
    /// answer to the offer (an extension not offered, a bad parameter).
    BadExtension,
    /// `--deflate`: a compressed message that did not inflate.
    InflateError,
}

impl Cause {
    /// All causes, in report order.
    pub const ALL: [Cause; 28] = [
        Cause::ConnectRefused,
        Cause::AddrUnavailable,
        Cause::SocketError,
        Cause::ConnectFailed,
        Cause::Timeout,
        Cause::BadStatus,
        Cause::BadHandshake,
        Cause::ProtocolError,
        Cause::ClosedEarly,
        Cause::ClosedByServer,
        Cause::IoError,
        Cause::EchoMismatch,
        Cause::Unanswered,
        Cause::WindowFull,
        Cause::FanoutGap,
        Cause::Undelivered,
        Cause::Duplicate,
        Cause::NotJoined,
        Cause::RateLimited,
        Cause::ServerError,
        Cause::NoSubprotocol,
        Cause::BadFrame,
        Cause::ReplyMismatch,
        Cause::CallError,
        Cause::BootRejected,
        Cause::NotBooted,
        Cause::BadExtension,
        Cause::InflateError,
    ];

    /// The stable name used in the table and the JSON `failures` object.
    pub fn name(self) -> &'static str {
        match self {
            Cause::ConnectRefused => "connect_refused",
            Cause::AddrUnavailable => "addr_unavailable",
            Cause::SocketError => "socket_error",
            Cause::ConnectFailed => "connect_failed",
            Cause::Timeout => "timeout",
            Cause::BadStatus => "bad_status",
            Cause::BadHandshake => "bad_handshake",
            Cause::ProtocolError => "protocol_error",
            Cause::ClosedEarly => "closed_early",
            Cause::ClosedByServer => "closed_by_server",
            Cause::IoError => "io_error",
            Cause::EchoMismatch => "echo_mismatch",
            Cause::Unanswered => "unanswered",
            Cause::WindowFull => "window_full",
            Cause::FanoutGap => "fanout_gap",
            Cause::Undelivered => "undelivered",
            Cause::Duplicate => "duplicate",
            Cause::NotJoined => "not_joined",
            Cause::RateLimited => "rate_limited",
            Cause::ServerError => "server_error",
            Cause::NoSubprotocol => "no_subprotocol",
            Cause::BadFrame => "bad_frame",
            Cause::ReplyMismatch => "reply_mismatch",
            Cause::CallError => "call_error",
            Cause::BootRejected => "boot_rejected",
            Cause::NotBooted => "not_booted",
            Cause::BadExtension => "bad_extension",
            Cause::InflateError => "inflate_error",
        }
    }

    /// Maps a connect-time I/O error to its cause.
    pub fn of_connect_error(err: &std::io::Error) -> Cause {
        match err.raw_os_error() {
            Some(libc::ECONNREFUSED) => Cause::ConnectRefused,
            Some(libc::EADDRNOTAVAIL | libc::EADDRINUSE) => Cause::AddrUnavailable,
            Some(libc::ETIMEDOUT) => Cause::Timeout,
            _ => Cause::ConnectFailed,
        }
    }

    /// Maps a refused server byte stream to its cause.
    pub fn of_decode_error(err: &DecodeError) -> Cause {
        match err {
            DecodeError::Inflate => Cause::InflateError,
            _ => Cause::ProtocolError,
        }
    }
}

/// A µs histogram from 1 µs to 10 min at 3 significant figures.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// One latency slot of a sustained run.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Round trips completed in this slot (by receive time).
    pub rtt: Histogram<u64>,
    /// Messages sent in this slot.
    pub sent: u64,
}

/// Everything one worker measured.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Connect-to-101 latency of successful handshakes, µs.
    pub handshake: Histogram<u64>,
    /// Round-trip time of echoed messages (fanout: publish-to-delivery
    /// latency), µs.
    pub rtt: Histogram<u64>,
    /// Per-interval latency (sustained mode).
    pub slots: Vec<Slot>,
    /// Failures, indexed like [`Cause::ALL`].
    pub failures: [u64; Cause::ALL.len()],
    /// Refused handshakes (`bad_status`) by HTTP status.
    pub refused: BTreeMap<u16, u64>,
    /// Connection attempts started.
    pub attempts: u64,
    /// Handshakes completed.
    pub handshakes: u64,
    /// Of those, fanout publishers.
    pub publishers: u64,
    /// Data messages sent (fanout: published).
    pub sent: u64,
    /// Echoes received and checked (fanout: deliveries).
    pub received: u64,
    /// Payload bytes received in echoes (fanout: deliveries).
    pub bytes_received: u64,
    /// Connections open when the measured phase ended.
    pub up_at_end: u64,
    /// Soak: how connections ended, by behaviour.
    pub soak: SoakStats,
    /// Realtime: joins per room, expected deliveries, messages ignored.
    pub realtime: RealtimeStats,
    /// OCPP: boots, latency per action, the server's CALLs answered.
    pub ocpp: OcppStats,
    /// `--deflate`: the answers, and the traffic of the connections that
    /// agreed (added when each ends).
    pub deflate: DeflateStats,
    /// Idle `--expect-marker`: the marker messages and the connections'
    /// tally.
    pub marker: MarkerStats,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            handshake: new_histogram(),
            rtt: new_histogram(),
            slots: Vec::new(),
            failures: [0; Cause::ALL.len()],
            refused: BTreeMap::new(),
            attempts: 0,
            handshakes: 0,
            publishers: 0,
            sent: 0,
            received: 0,
            bytes_received: 0,
            up_at_end: 0,
            soak: SoakStats::default(),
            realtime: RealtimeStats::default(),
            ocpp: OcppStats::default(),
            deflate: DeflateStats::default(),
            marker: MarkerStats::default(),
        }
    }
}

impl Stats {
    /// Counts `n` failures of `cause`.
    pub fn fail(&mut self, cause: Cause, n: u64) {
        self.failures[cause as usize] += n;
    }

    /// Notes the HTTP status of a refused handshake (its `bad_status` is
    /// counted with the connection's end).
    pub fn note_refusal(&mut self, status: u16) {
        *self.refused.entry(status).or_default() += 1;
    }

    /// Failures of `cause` so far.
    pub fn failures_of(&self, cause: Cause) -> u64 {
        self.failures[cause as usize]
    }

    /// All failures so far.
    pub fn total_failures(&self) -> u64 {
        self.failures.iter().sum()
    }

    /// Records a round trip of `us` µs completed in sustained slot `slot`.
    pub fn record_slot_rtt(&mut self, slot: usize, us: u64) {
        self.slot_mut(slot).rtt.saturating_record(us.max(1));
    }

    /// Counts a message sent in sustained slot `slot`.
    pub fn count_slot_send(&mut self, slot: usize) {
        self.slot_mut(slot).sent += 1;
    }

    fn slot_mut(&mut self, slot: usize) -> &mut Slot {
        while self.slots.len() <= slot {
            self.slots.push(Slot {
                rtt: new_histogram(),
                sent: 0,
            });
        }
        &mut self.slots[slot]
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        self.handshake
            .add(&other.handshake)
            .expect("same histogram bounds");
        self.rtt.add(&other.rtt).expect("same histogram bounds");
        for (i, slot) in other.slots.iter().enumerate() {
            let mine = self.slot_mut(i);
            mine.rtt.add(&slot.rtt).expect("same histogram bounds");
            mine.sent += slot.sent;
        }
        for (a, b) in self.failures.iter_mut().zip(other.failures) {
            *a += b;
        }
        for (status, n) in &other.refused {
            *self.refused.entry(*status).or_default() += n;
        }
        self.attempts += other.attempts;
        self.handshakes += other.handshakes;
        self.publishers += other.publishers;
        self.sent += other.sent;
        self.received += other.received;
        self.bytes_received += other.bytes_received;
        self.up_at_end += other.up_at_end;
        self.soak.merge(&other.soak);
        self.realtime.merge(&other.realtime);
        self.ocpp.merge(&other.ocpp);
        self.deflate.merge(&other.deflate);
        self.marker.merge(&other.marker);
    }
}

/// Counters a worker publishes for the progress line; one cache line pair each.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Live {
    /// Connections open now.
    pub up: AtomicU64,
    /// Handshakes completed so far.
    pub handshakes: AtomicU64,
    /// Echoes received so far.
    pub received: AtomicU64,
    /// Failures so far.
    pub failures: AtomicU64,
    /// Connections that got the `--expect-marker` message so far.
    pub marked: AtomicU64,
}

impl Live {
    /// Publishes a worker's current numbers.
    pub fn publish(&self, up: u64, stats: &Stats) {
        self.up.store(up, Relaxed);
        self.handshakes.store(stats.handshakes, Relaxed);
        self.received.store(stats.received, Relaxed);
        self.failures.store(stats.total_failures(), Relaxed);
        self.marked.store(stats.marker.reached, Relaxed);
    }
}

/// Sums of every worker's [`Live`] counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveSum {
    pub up: u64,
    pub handshakes: u64,
    pub received: u64,
    pub failures: u64,
    pub marked: u64,
}

impl LiveSum {
    /// Reads and adds up `lives`.
    pub fn of(lives: &[Live]) -> LiveSum {
        lives.iter().fold(LiveSum::default(), |s, l| LiveSum {
            up: s.up + l.up.load(Relaxed),
            handshakes: s.handshakes + l.handshakes.load(Relaxed),
            received: s.received + l.received.load(Relaxed),
            failures: s.failures + l.failures.load(Relaxed),
            marked: s.marked + l.marked.load(Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_names_are_unique_and_indexed() {
        for (i, c) in Cause::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
        let mut names: Vec<_> = Cause::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Cause::ALL.len());
    }

    #[test]
    fn merges() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        a.rtt.record(10).unwrap();
        b.rtt.record(1000).unwrap();
        b.fail(Cause::Timeout, 2);
        b.note_refusal(401);
        a.note_refusal(401);
        b.record_slot_rtt(2, 5);
        b.count_slot_send(2);
        b.received = 3;
        a.merge(&b);
        assert_eq!(a.rtt.len(), 2);
        assert_eq!(a.rtt.max(), 1000u64.max(a.rtt.max()));
        assert_eq!(a.failures_of(Cause::Timeout), 2);
        assert_eq!(a.total_failures(), 2);
        assert_eq!(a.refused, BTreeMap::from([(401, 2)]));
        assert_eq!(a.slots.len(), 3);
        assert_eq!(a.slots[2].sent, 1);
        assert_eq!(a.received, 3);
    }
}
