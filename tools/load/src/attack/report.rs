//! The attack's report: for each stream what it sent (against what its rate
//! called for, bytes before and after compression) and what came back
//! (answers by kind, latency, how its connections ended); with `--pid` the
//! server's RSS and CPU over time. A table, or one JSON object.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::progress::group;
use crate::report::{fmt_percentiles, round, Percentiles};

use super::plan::{AttackPlan, Kind};
use super::sampler::ServerSample;
use super::tally::Tally;

/// How a message stream's charge points fared.
#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    /// Upgrades that succeeded (reopenings included).
    pub opened: u64,
    /// Of those, with permessage-deflate agreed.
    pub compressed: u64,
    /// How each ended, or why it did not open or boot.
    pub ends: BTreeMap<String, u64>,
}

/// One stream's figures.
#[derive(Debug, Clone, Serialize)]
pub struct KindReport {
    /// What it sends.
    pub what: String,
    /// Per second.
    pub rate: f64,
    /// Messages or attempts the rate called for over `--duration`.
    pub due: u64,
    pub sent: u64,
    /// Due while `--window` CALLs were unanswered: not sent.
    pub skipped: u64,
    /// Payload bytes sent, and as they went on the wire.
    pub payload_bytes: u64,
    pub wire_bytes: u64,
    /// What came back: `CALLRESULT`, `CALLERROR code`, `HTTP status`, or why
    /// nothing did (`timeout`, `connect refused`, ...).
    pub answers: BTreeMap<String, u64>,
    /// CALLs whose answer never came.
    pub unanswered: u64,
    /// Server messages that answered nothing of ours.
    pub unmatched: u64,
    /// Send (handshakes: connect()) to answer, µs.
    pub answer_us: Option<Percentiles>,
    /// Message streams only.
    pub connections: Option<Connections>,
}

impl KindReport {
    fn new(plan: &AttackPlan, kind: Kind, what: String, t: &Tally) -> KindReport {
        let messages = matches!(kind, Kind::Schema | Kind::Labels | Kind::Events);
        KindReport {
            what,
            rate: plan.rate(kind),
            due: t.due,
            sent: t.sent,
            skipped: t.skipped,
            payload_bytes: t.payload_bytes,
            wire_bytes: t.wire_bytes,
            answers: t.answers.clone(),
            unanswered: t.unanswered,
            unmatched: t.unmatched,
            answer_us: Percentiles::of(&t.answer_us),
            connections: messages.then(|| Connections {
                opened: t.opened,
                compressed: t.compressed,
                ends: t.ends.clone(),
            }),
        }
    }
}

/// The server over the attack (`--pid`).
#[derive(Debug, Clone, Serialize)]
pub struct ServerSummary {
    pub rss_kib_first: u64,
    pub rss_kib_max: u64,
    pub rss_kib_last: u64,
    /// CPU seconds over the attack.
    pub cpu_s: Option<f64>,
}

/// The whole report; serialized as is for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct AttackReport {
    pub mode: &'static str,
    pub url: String,
    pub duration_s: f64,
    pub elapsed_s: f64,
    pub kinds: BTreeMap<&'static str, KindReport>,
    /// `--pid`: every `--sample-interval`.
    pub samples: Vec<ServerSample>,
    pub server: Option<ServerSummary>,
    pub timed_out: bool,
    /// Every stream sent and got at least one answer, and the run ended
    /// before `--timeout`: the attack happened (whatever the server did).
    pub passed: bool,
}

impl AttackReport {
    pub fn new(
        plan: &AttackPlan,
        tallies: Vec<(Kind, String, Tally)>,
        samples: Vec<ServerSample>,
        elapsed: Duration,
    ) -> AttackReport {
        let timed_out = elapsed >= plan.timeout;
        let answered = tallies
            .iter()
            .all(|(_, _, t)| t.sent > 0 && !t.answer_us.is_empty());
        let kinds = tallies
            .into_iter()
            .map(|(kind, what, t)| (kind.name(), KindReport::new(plan, kind, what, &t)))
            .collect();
        let rss: Vec<u64> = samples.iter().filter_map(|s| s.rss_kib).collect();
        let server = match (rss.first(), rss.last(), rss.iter().max()) {
            (Some(&first), Some(&last), Some(&max)) => Some(ServerSummary {
                rss_kib_first: first,
                rss_kib_max: max,
                rss_kib_last: last,
                cpu_s: samples.last().and_then(|s| s.cpu_s),
            }),
            _ => None,
        };
        AttackReport {
            mode: "attack",
            url: format!("ws://{}{}", plan.url.host_header, plan.url.target),
            duration_s: plan.duration.as_secs_f64(),
            elapsed_s: round(elapsed.as_secs_f64(), 3),
            kinds,
            samples,
            server,
            timed_out,
            passed: answered && !timed_out,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The human-readable table.
    pub fn to_table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "ringgate-load attack  {}  ({} s, ended after {:.1} s)",
            self.url, self.duration_s, self.elapsed_s
        );
        let counts = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                return "none".to_owned();
            }
            m.iter()
                .map(|(k, n)| format!("{} × {}", k.escape_debug(), group(*n as f64)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (name, k) in &self.kinds {
            let _ = writeln!(t, "  {name:<11}{} at {}/s", k.what, k.rate);
            let mut row = |label: &str, v: String| {
                let _ = writeln!(t, "  {:<11}{label:<12}{v}", "");
            };
            let mut sent = format!(
                "{} of {} due, {} skipped (window full)",
                group(k.sent as f64),
                group(k.due as f64),
                group(k.skipped as f64)
            );
            if k.payload_bytes > 0 {
                let _ = write!(
                    sent,
                    "; {} KiB, {} KiB on the wire",
                    group((k.payload_bytes >> 10) as f64),
                    group((k.wire_bytes >> 10) as f64)
                );
            }
            row("sent", sent);
            let mut answers = counts(&k.answers);
            if k.connections.is_some() {
                let _ = write!(
                    answers,
                    "; {} unanswered, {} unmatched",
                    group(k.unanswered as f64),
                    group(k.unmatched as f64)
                );
            }
            row("answers", answers);
            if let Some(p) = &k.answer_us {
                row("answer µs", fmt_percentiles(p));
            }
            if let Some(c) = &k.connections {
                row(
                    "connections",
                    format!(
                        "{} opened ({} compressed); ended: {}",
                        group(c.opened as f64),
                        group(c.compressed as f64),
                        counts(&c.ends)
                    ),
                );
            }
        }
        if let Some(s) = &self.server {
            let mut v = format!(
                "rss {} KiB first, {} max, {} last",
                group(s.rss_kib_first as f64),
                group(s.rss_kib_max as f64),
                group(s.rss_kib_last as f64)
            );
            if let Some(cpu) = s.cpu_s {
                let _ = write!(v, "; {cpu:.2} CPU-s");
            }
            let _ = writeln!(t, "  {:<11}{v}", "server");
            let _ = writeln!(t, "  {:>13} {:>12} {:>9}", "t (s)", "rss KiB", "cpu s");
            for s in &self.samples {
                let _ = writeln!(
                    t,
                    "  {:>13.1} {:>12} {:>9}",
                    s.t_s,
                    s.rss_kib.map_or("-".into(), |r| group(r as f64)),
                    s.cpu_s.map_or("-".into(), |c| format!("{c:.2}"))
                );
            }
        }
        if self.timed_out {
            let _ = writeln!(t, "  timed out: the run hit --timeout");
        }
        t
    }
}
