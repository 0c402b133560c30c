//! Soak's sans-IO parts: the plan (the mix of behaviours and its timings),
//! what each connection does ([`Kind`], [`Life`]), the invalid input garbage
//! senders write ([`Garbage`]) with the close code RFC 6455 calls for, and
//! the tally of how connections ended ([`SoakStats`]), merged across threads.
//! `soak_phase` drives connections with these on the worker.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use ringgate::protocol::frame::OpCode;
use ringgate::protocol::writer::encode_client_frame;

use crate::fanout::Subscriber;
use crate::stats::{new_histogram, Cause};

/// A soak run's settings beyond the common ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoakPlan {
    /// How long the mix runs (publishing included).
    pub duration: Duration,
    /// Broadcasts per second from the publisher.
    pub rate: u64,
    /// Connections of each behaviour, indexed like [`Behaviour::ALL`].
    pub mix: [u64; 4],
    /// Churn: lifetime range after the 101; garbage: delay before the garbage.
    pub lifetime: (Duration, Duration),
    /// A never-reader not cut off after this long is given up on.
    pub stall_limit: Duration,
    /// Server RSS and descriptors are sampled this often.
    pub sample_every: Duration,
    /// Samples before this (from the start of the run) are warm-up.
    pub warmup: Duration,
}

impl SoakPlan {
    /// Splits `connections` by the percentages of churners, never-readers
    /// and garbage senders; the rest are polite.
    pub fn mix_of(
        connections: u64,
        churn: f64,
        silent: f64,
        garbage: f64,
    ) -> Result<[u64; 4], String> {
        let mut mix = [0; 4];
        for (i, (flag, pct)) in [
            ("--churn", churn),
            ("--silent", silent),
            ("--garbage", garbage),
        ]
        .into_iter()
        .enumerate()
        {
            if !(0.0..=100.0).contains(&pct) {
                return Err(format!("{flag} {pct}: must be a percentage, 0..=100"));
            }
            mix[i + 1] = (connections as f64 * pct / 100.0).round() as u64;
        }
        let others: u64 = mix[1..].iter().sum();
        if others > connections {
            return Err("--churn + --silent + --garbage come to more than 100%".into());
        }
        mix[0] = connections - others;
        Ok(mix)
    }
}

/// The four behaviours of a soak run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Reads everything, answers pings, stays for the whole run.
    Polite,
    /// Leaves after a few seconds and is replaced.
    Churn,
    /// Never reads; probes with a ping every second until the server cuts it off.
    Silent,
    /// Sends one invalid frame and expects the matching close code.
    Garbage,
}

impl Behaviour {
    pub const ALL: [Behaviour; 4] = [
        Behaviour::Polite,
        Behaviour::Churn,
        Behaviour::Silent,
        Behaviour::Garbage,
    ];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Polite => "polite",
            Behaviour::Churn => "churn",
            Behaviour::Silent => "silent",
            Behaviour::Garbage => "garbage",
        }
    }
}

/// How a churning connection leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Sends Close 1000 and waits for the server's Close and end of TCP.
    Close,
    /// Closes its socket without a word.
    Drop,
    /// Sends only part of its upgrade request, then closes its socket.
    MidHandshake,
}

impl Ending {
    const ALL: [Ending; 3] = [Ending::Close, Ending::Drop, Ending::MidHandshake];

    fn name(self) -> &'static str {
        match self {
            Ending::Close => "close",
            Ending::Drop => "drop",
            Ending::MidHandshake => "mid_handshake",
        }
    }
}

/// One piece of invalid client input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Garbage {
    /// A frame with reserved opcode 3.
    BadOpcode,
    /// A binary frame with RSV2 set, which no extension offered here uses
    /// (RSV1 would be valid once `--deflate` is agreed).
    RsvBits,
    /// A binary frame without a mask.
    Unmasked,
    /// A continuation frame with no message to continue.
    BadContinuation,
    /// A text frame that is not UTF-8.
    BadUtf8,
    /// A binary frame header announcing 1 GiB.
    Oversized,
}

impl Garbage {
    pub const ALL: [Garbage; 6] = [
        Garbage::BadOpcode,
        Garbage::RsvBits,
        Garbage::Unmasked,
        Garbage::BadContinuation,
        Garbage::BadUtf8,
        Garbage::Oversized,
    ];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Garbage::BadOpcode => "bad_opcode",
            Garbage::RsvBits => "rsv_bits",
            Garbage::Unmasked => "unmasked",
            Garbage::BadContinuation => "bad_continuation",
            Garbage::BadUtf8 => "bad_utf8",
            Garbage::Oversized => "oversized",
        }
    }

    /// The close code the server must answer with (RFC 6455 §7.4.1):
    /// 1007 for invalid UTF-8, 1009 for a message over the server's limit
    /// (any sane limit is under 1 GiB), 1002 for the rest.
    pub fn expected_code(self) -> u16 {
        match self {
            Garbage::BadUtf8 => 1007,
            Garbage::Oversized => 1009,
            _ => 1002,
        }
    }

    /// Appends the bytes, masked with `mask` where the frame is masked.
    pub fn append(self, out: &mut Vec<u8>, mask: [u8; 4]) {
        match self {
            Garbage::BadOpcode => {
                out.extend_from_slice(&[0x83, 0x80]);
                out.extend_from_slice(&mask);
            }
            Garbage::RsvBits => {
                let at = out.len();
                encode_client_frame(out, true, OpCode::Binary, b"x", mask);
                out[at] |= 0x20;
            }
            Garbage::Unmasked => out.extend_from_slice(&[0x82, 1, b'x']),
            Garbage::BadContinuation => {
                encode_client_frame(out, true, OpCode::Continuation, b"x", mask)
            }
            Garbage::BadUtf8 => encode_client_frame(out, true, OpCode::Text, b"ok\xC3\x28", mask),
            Garbage::Oversized => {
                out.extend_from_slice(&[0x82, 0x80 | 127]);
                out.extend_from_slice(&(1u64 << 30).to_be_bytes());
                out.extend_from_slice(&mask);
            }
        }
    }
}

/// What one soak connection does: its behaviour and, for churners and
/// garbage senders, which variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Polite,
    Churn(Ending),
    Silent,
    Garbage(Garbage),
}

impl Kind {
    /// A connection of `behaviour`, its variant picked by `random`.
    pub fn draw(behaviour: Behaviour, random: u64) -> Kind {
        let pick = |n: usize| (random % n as u64) as usize;
        match behaviour {
            Behaviour::Polite => Kind::Polite,
            Behaviour::Churn => Kind::Churn(Ending::ALL[pick(Ending::ALL.len())]),
            Behaviour::Silent => Kind::Silent,
            Behaviour::Garbage => Kind::Garbage(Garbage::ALL[pick(Garbage::ALL.len())]),
        }
    }

    pub fn behaviour(self) -> Behaviour {
        match self {
            Kind::Polite => Behaviour::Polite,
            Kind::Churn(_) => Behaviour::Churn,
            Kind::Silent => Behaviour::Silent,
            Kind::Garbage(_) => Behaviour::Garbage,
        }
    }

    fn variant(self) -> Option<&'static str> {
        match self {
            Kind::Churn(e) => Some(e.name()),
            Kind::Garbage(g) => Some(g.name()),
            Kind::Polite | Kind::Silent => None,
        }
    }
}

/// How the client ended a connection on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// A churner closed its socket.
    Dropped,
    /// A churner closed its socket mid-handshake.
    LeftMidHandshake,
    /// A never-reader reached `--stall-limit` without being cut off.
    NotCutOff,
    /// A garbage sender got no Close within the grace.
    NoClose,
    /// A churner's close handshake did not finish within the grace.
    CloseTimeout,
}

impl End {
    fn name(self) -> &'static str {
        match self {
            End::Dropped => "dropped",
            End::LeftMidHandshake => "left",
            End::NotCutOff => "not cut off",
            End::NoClose => "no close",
            End::CloseTimeout => "close timeout",
        }
    }
}

/// A soak connection's state beyond the common one.
#[derive(Debug)]
pub struct Life {
    pub kind: Kind,
    /// Deliveries, checked like a fanout subscriber's.
    pub sub: Subscriber,
    /// When the 101 arrived, ns since the run's epoch.
    pub upgraded_ns: Option<u64>,
    /// The connection's one action is done (churn: Close sent; garbage:
    /// garbage sent); its timer now guards the grace.
    pub acted: bool,
    /// How the client ended it, if it did.
    pub end: Option<End>,
}

impl Life {
    pub fn new(kind: Kind, sub: Subscriber) -> Life {
        Life {
            kind,
            sub,
            upgraded_ns: None,
            acted: false,
            end: None,
        }
    }

    /// Never-readers do not read.
    pub fn reads(&self) -> bool {
        self.kind != Kind::Silent
    }

    /// Polite subscribers must get every broadcast.
    pub fn checked_subscriber(&self) -> Option<&Subscriber> {
        (self.kind == Kind::Polite).then_some(&self.sub)
    }

    /// The key this connection's end is counted under in its behaviour's
    /// outcomes: the variant (if any), then what ended it (see [`result`]).
    /// A never-reader that ended after its 101 without the client's doing
    /// was cut off by the server.
    pub fn outcome(&self, close_code: Option<u16>, cause: Option<Cause>) -> String {
        let mut what = match self.end {
            Some(end) => end.name().to_owned(),
            None => result(close_code, cause),
        };
        if self.kind == Kind::Silent && self.end.is_none() && self.upgraded_ns.is_some() {
            what = format!("cut off: {what}");
        }
        match self.kind.variant() {
            Some(v) => format!("{v}: {what}"),
            None => what,
        }
    }
}

/// What ended a connection the client did not end on purpose: the server's
/// Close code, or the cause of the failure, or `eof` (the server ended TCP
/// without a Close).
pub fn result(close_code: Option<u16>, cause: Option<Cause>) -> String {
    match (close_code, cause) {
        (Some(code), _) => format!("close {code}"),
        (None, Some(Cause::IoError)) => "reset".to_owned(),
        (None, Some(Cause::ClosedEarly) | None) => "eof".to_owned(),
        (None, Some(Cause::Timeout)) => "handshake timeout".to_owned(),
        (None, Some(cause)) => cause.name().to_owned(),
    }
}

/// What the soak measured on one thread, merged at the end.
#[derive(Debug, Clone)]
pub struct SoakStats {
    /// Connections opened, per behaviour (indexed like [`Behaviour::ALL`]).
    pub opened: [u64; 4],
    /// Connections open when the mix stopped, per behaviour.
    pub up_at_end: [u64; 4],
    /// How connections ended while the mix ran, per behaviour: outcome key
    /// ([`Life::outcome`]) to count.
    pub outcomes: [BTreeMap<String, u64>; 4],
    /// Garbage senders whose connection did not end with the expected code.
    pub garbage_unexpected: u64,
    /// Never-readers cut off: 101 to the cut-off noticed, µs.
    pub cut_off: Histogram<u64>,
    /// Polite subscribers: deliveries counted, and the broadcasts they should
    /// have had (from their first to the last published, or for one that
    /// ended early, to its last delivery).
    pub polite_deliveries: u64,
    pub polite_expected: u64,
    /// Publisher connections lost (and reopened).
    pub publisher_lost: u64,
}

impl Default for SoakStats {
    fn default() -> Self {
        SoakStats {
            opened: [0; 4],
            up_at_end: [0; 4],
            outcomes: Default::default(),
            garbage_unexpected: 0,
            cut_off: new_histogram(),
            polite_deliveries: 0,
            polite_expected: 0,
            publisher_lost: 0,
        }
    }
}

impl SoakStats {
    /// Counts the end of a connection; `now_ns` is when it was noticed.
    pub fn ended(
        &mut self,
        life: &Life,
        close_code: Option<u16>,
        cause: Option<Cause>,
        now_ns: u64,
    ) {
        let b = life.kind.behaviour() as usize;
        *self.outcomes[b]
            .entry(life.outcome(close_code, cause))
            .or_default() += 1;
        match life.kind {
            Kind::Polite => self.count_polite(&life.sub, None),
            Kind::Silent if life.end.is_none() => {
                if let Some(at) = life.upgraded_ns {
                    let us = now_ns.saturating_sub(at) / 1000;
                    self.cut_off.saturating_record(us.max(1));
                }
            }
            Kind::Garbage(g) if close_code != Some(g.expected_code()) => {
                self.garbage_unexpected += 1;
            }
            _ => {}
        }
    }

    /// Adds a polite subscriber's deliveries; `published` as in
    /// [`Subscriber::expected`].
    pub fn count_polite(&mut self, sub: &Subscriber, published: Option<&[u64]>) {
        self.polite_deliveries += sub.delivered;
        self.polite_expected += sub.expected(published);
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &SoakStats) {
        for i in 0..Behaviour::ALL.len() {
            self.opened[i] += other.opened[i];
            self.up_at_end[i] += other.up_at_end[i];
            for (k, v) in &other.outcomes[i] {
                *self.outcomes[i].entry(k.clone()).or_default() += v;
            }
        }
        self.garbage_unexpected += other.garbage_unexpected;
        self.cut_off
            .add(&other.cut_off)
            .expect("same histogram bounds");
        self.polite_deliveries += other.polite_deliveries;
        self.polite_expected += other.polite_expected;
        self.publisher_lost += other.publisher_lost;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringgate::protocol::reader::{MessageReader, ReaderLimits};
    use std::ops::ControlFlow;

    #[test]
    fn the_server_parser_refuses_every_garbage_with_its_code() {
        for g in Garbage::ALL {
            let mut bytes = Vec::new();
            g.append(&mut bytes, [0x11, 0x22, 0x33, 0x44]);
            let mut reader = MessageReader::new(ReaderLimits::default());
            let err = reader
                .feed(&mut bytes, &mut |_| ControlFlow::Continue(()))
                .expect_err(g.name());
            assert_eq!(err.close_code(), g.expected_code(), "{}: {err}", g.name());
        }
    }

    #[test]
    fn splits_the_mix() {
        assert_eq!(
            SoakPlan::mix_of(5000, 10.0, 2.0, 3.0),
            Ok([4250, 500, 100, 150])
        );
        assert_eq!(SoakPlan::mix_of(10, 0.0, 0.0, 100.0), Ok([0, 0, 0, 10]));
        assert!(SoakPlan::mix_of(10, 60.0, 50.0, 0.0).is_err());
        assert!(SoakPlan::mix_of(10, -1.0, 0.0, 0.0).is_err());
    }

    #[test]
    fn draws_every_variant() {
        let kinds: Vec<Kind> = (0..6).map(|r| Kind::draw(Behaviour::Garbage, r)).collect();
        assert_eq!(kinds.len(), Garbage::ALL.len());
        assert!(Garbage::ALL
            .iter()
            .all(|g| kinds.contains(&Kind::Garbage(*g))));
        assert_eq!(
            Kind::draw(Behaviour::Churn, 2),
            Kind::Churn(Ending::MidHandshake)
        );
        assert_eq!(
            Kind::draw(Behaviour::Silent, 7).behaviour(),
            Behaviour::Silent
        );
    }

    #[test]
    fn tallies_outcomes() {
        let mut stats = SoakStats::default();
        let mut life = Life::new(Kind::Garbage(Garbage::BadUtf8), Subscriber::joining(1));
        life.upgraded_ns = Some(0);
        stats.ended(&life, Some(1007), Some(Cause::IoError), 5);
        stats.ended(&life, Some(1002), None, 5);
        let mut silent = Life::new(Kind::Silent, Subscriber::joining(1));
        silent.upgraded_ns = Some(1_000_000);
        stats.ended(&silent, None, Some(Cause::IoError), 3_000_000_000);
        silent.end = Some(End::NotCutOff);
        stats.ended(&silent, None, None, 9_000_000_000);
        let churn = Life::new(Kind::Churn(Ending::Drop), Subscriber::joining(1));
        stats.ended(&churn, None, Some(Cause::Timeout), 0);

        let mut merged = SoakStats::default();
        merged.merge(&stats);
        merged.merge(&stats);
        let garbage = &merged.outcomes[Behaviour::Garbage as usize];
        assert_eq!(garbage["bad_utf8: close 1007"], 2);
        assert_eq!(garbage["bad_utf8: close 1002"], 2);
        assert_eq!(merged.garbage_unexpected, 2);
        let silent = &merged.outcomes[Behaviour::Silent as usize];
        assert_eq!(silent["cut off: reset"], 2);
        assert_eq!(silent["not cut off"], 2);
        assert_eq!(merged.cut_off.len(), 2);
        assert_eq!(merged.cut_off.max() / 100_000, 30, "about 3 s");
        assert_eq!(
            merged.outcomes[Behaviour::Churn as usize]["drop: handshake timeout"],
            2
        );
    }
}
