//! The final report: derives rates and per-CPU-second figures from an
//! [`Outcome`], and prints them as a table or as one JSON object whose field
//! names are stable. A soak run adds its section (`soak_report`), an ocpp
//! run its own (`ocpp_report`), a `--deflate` run its own (`deflate_report`),
//! an idle `--expect-marker` run its own (`marker_report`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cli::{Mode, Plan};
use crate::deflate_report::DeflateReport;
use crate::marker_report::MarkerReport;
use crate::ocpp_report::OcppReport;
use crate::progress::group;
use crate::realtime::RealtimePlan;
use crate::run::{Outcome, Sample};
use crate::soak_report::SoakReport;
use crate::stats::{Cause, Stats};

/// Latency percentiles in µs.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
    pub count: u64,
}

impl Percentiles {
    /// `None` for an empty histogram.
    pub fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        (!h.is_empty()).then(|| Percentiles {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: (h.mean() * 10.0).round() / 10.0,
            count: h.len(),
        })
    }
}

/// One row of the sustained latency-over-time table.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineRow {
    /// End of the slot, seconds after the work phase started.
    pub t_s: f64,
    pub sent: u64,
    pub received: u64,
    pub rtt_us: Option<Percentiles>,
}

/// The whole report; serialized as is for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub url: String,
    pub threads: usize,
    pub connections: u64,
    pub payload_bytes: usize,
    pub window: usize,
    /// Handshakes that succeeded.
    pub connected: u64,
    /// Connections open when the connect phase ended.
    pub up_after_connect: u64,
    /// Connections open at the end of the measured phase.
    pub up_at_end: u64,
    pub connect_s: f64,
    pub handshakes_per_s: f64,
    pub handshake_us: Option<Percentiles>,
    pub handshakes_per_server_cpu_s: Option<f64>,
    /// The measured phase: the connect phase for storm, the work phase
    /// (sending, or holding for idle) otherwise.
    pub elapsed_s: f64,
    /// Echoes received and checked.
    pub messages: u64,
    pub messages_sent: u64,
    pub msgs_per_s: f64,
    /// Echoed payload bytes per second (one direction).
    pub bytes_per_s: f64,
    pub rtt_us: Option<Percentiles>,
    /// Fanout: subscribers and publishers connected, messages/s per publisher.
    pub subscribers: Option<u64>,
    pub publishers: Option<u64>,
    pub rate: Option<u64>,
    /// Fanout: messages received by all subscribers (= `messages`), and
    /// published × subscribers.
    pub deliveries: Option<u64>,
    pub expected_deliveries: Option<u64>,
    pub deliveries_per_s: Option<f64>,
    pub deliveries_per_server_cpu_s: Option<f64>,
    /// Fanout: publish-to-delivery latency.
    pub latency_us: Option<Percentiles>,
    pub failures: BTreeMap<&'static str, u64>,
    /// Refused handshakes (`bad_status`) by HTTP status.
    pub refused: BTreeMap<u16, u64>,
    pub server_cpu_s: Option<f64>,
    pub msgs_per_server_cpu_s: Option<f64>,
    pub client_cpu_s: f64,
    pub msgs_per_client_cpu_s: Option<f64>,
    pub rss_kib_before: Option<u64>,
    pub rss_kib_after: Option<u64>,
    pub kib_per_conn: Option<f64>,
    pub timeline: Option<Vec<TimelineRow>>,
    pub timed_out: bool,
    /// Soak: behaviours, health, server samples and the flat verdict.
    pub soak: Option<SoakReport>,
    /// Realtime: rooms, exactly-once, rate limiting, CPU per delivery.
    pub realtime: Option<RealtimeReport>,
    /// OCPP: boots, the storm, CALL latency, the server's CALLs.
    pub ocpp: Option<OcppReport>,
    /// `--deflate` (null without it): upgrades that agreed, and the payload
    /// and wire bytes each way.
    pub deflate: Option<DeflateReport>,
    /// Idle `--expect-marker` (null without it): the connections by the
    /// marker messages each got, and when the first and last arrived.
    pub marker: Option<MarkerReport>,
}

/// A realtime run's own figures.
#[derive(Debug, Clone, Serialize)]
pub struct RealtimeReport {
    pub rooms: u32,
    pub publishers_per_room: u32,
    /// Members signed in with a JWT (`--jwt-secret`), or anonymous.
    pub jwt: bool,
    /// Rooms the POSTs created, and found there already.
    pub rooms_created: Option<u32>,
    pub rooms_existing: Option<u32>,
    /// Members that had their `room_joined` (publishers included), and the
    /// fewest and most in one room.
    pub members_joined: u64,
    pub members_per_room_min: u64,
    pub members_per_room_max: u64,
    /// Expected deliveries that did not arrive (`expected_deliveries` −
    /// `deliveries`), and deliveries that came again or out of order.
    pub missing: u64,
    pub duplicates: u64,
    /// Deliveries were expected, and each arrived once: nothing missing, no
    /// duplicate.
    pub exactly_once: bool,
    /// `error` messages: `rate_limited` ones, and any other.
    pub rate_limited: u64,
    pub server_errors: u64,
    /// Other server messages (welcome, presence, ...), not looked at.
    pub ignored_messages: u64,
    /// The wait for quiet after everyone joined (`--settle`), its server
    /// CPU-seconds, and whether it ended in quiet (not at the deadline).
    pub settle_s: f64,
    pub settle_server_cpu_s: Option<f64>,
    pub settled: bool,
    /// Server CPU-seconds of the measured phase per million deliveries.
    pub server_cpu_s_per_million_deliveries: Option<f64>,
}

impl RealtimeReport {
    fn new(rt: &RealtimePlan, s: &Stats, out: &Outcome, server_cpu: Option<f64>) -> RealtimeReport {
        let r = &s.realtime;
        let rooms = out.rooms;
        let joined = out.joined.as_ref().unwrap_or(&out.connected);
        let settle_s = out.connected.at.duration_since(joined.at).as_secs_f64();
        let per_room = (0..rt.rooms as usize).map(|i| r.room_members.get(i).copied().unwrap_or(0));
        let missing = r.expected.saturating_sub(s.received);
        let duplicates = s.failures_of(Cause::Duplicate);
        RealtimeReport {
            rooms: rt.rooms,
            publishers_per_room: rt.publishers_per_room,
            jwt: rt.jwt_secret.is_some(),
            rooms_created: rooms.map(|r| r.created),
            rooms_existing: rooms.map(|r| r.existing),
            members_joined: r.joins,
            members_per_room_min: per_room.clone().min().unwrap_or(0),
            members_per_room_max: per_room.max().unwrap_or(0),
            missing,
            duplicates,
            exactly_once: r.expected > 0 && missing == 0 && duplicates == 0,
            rate_limited: s.failures_of(Cause::RateLimited),
            server_errors: s.failures_of(Cause::ServerError),
            ignored_messages: r.ignored,
            settle_s: round(settle_s, 3),
            settle_server_cpu_s: cpu_between(joined, &out.connected).map(|c| round(c, 3)),
            settled: r.unsettled == 0,
            server_cpu_s_per_million_deliveries: server_cpu
                .filter(|_| s.received > 0)
                .map(|cpu| round(cpu * 1e6 / s.received as f64, 3)),
        }
    }

    /// The rooms row of the table.
    fn write_rooms(&self, row: &mut impl FnMut(&str, String)) {
        let rooms = match (self.rooms_created, self.rooms_existing) {
            (Some(c), Some(e)) => format!(", {c} created, {e} there already"),
            _ => String::new(),
        };
        row(
            "rooms",
            format!(
                "{} ({}..{} members each{rooms}), {} members joined, {}",
                group(f64::from(self.rooms)),
                group(self.members_per_room_min as f64),
                group(self.members_per_room_max as f64),
                group(self.members_joined as f64),
                if self.jwt { "JWT" } else { "anonymous" }
            ),
        );
    }

    /// The settling row.
    fn write_settle(&self, row: &mut impl FnMut(&str, String)) {
        let mut v = format!("{:.3} s", self.settle_s);
        if let Some(cpu) = self.settle_server_cpu_s {
            let _ = write!(v, ", server {cpu:.3} CPU-s");
        }
        if !self.settled {
            v.push_str(", never quiet: the run hit --timeout");
        }
        row("settle", v);
    }

    /// The exactly-once verdict and the server's other messages.
    fn write_checks(&self, row: &mut impl FnMut(&str, String)) {
        let verdict = if self.exactly_once {
            "yes".to_owned()
        } else {
            format!(
                "NO: {} missing, {} duplicates",
                group(self.missing as f64),
                group(self.duplicates as f64)
            )
        };
        row("exactly once", verdict);
        row(
            "server msgs",
            format!(
                "{} rate_limited, {} other errors, {} ignored (welcome, presence, ...)",
                group(self.rate_limited as f64),
                group(self.server_errors as f64),
                group(self.ignored_messages as f64)
            ),
        );
    }
}

pub(crate) fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

fn per(n: f64, secs: Option<f64>) -> Option<f64> {
    secs.filter(|&s| s > 0.0).map(|s| round(n / s, 1))
}

fn cpu_between(a: &Sample, b: &Sample) -> Option<f64> {
    Some(b.server_cpu?.since(&a.server_cpu?))
}

impl Report {
    pub fn new(plan: &Plan, out: &Outcome) -> Report {
        let s = &out.stats;
        // Realtime: connecting ends when every member joined (then settling).
        let joined = out.joined.as_ref().unwrap_or(&out.connected);
        let connect_s = joined.at.duration_since(out.start.at).as_secs_f64();
        // OCPP: the whole run, storm, calls and hold.
        let (from, to) = match plan.mode {
            Mode::Storm { .. } => (&out.start, &out.connected),
            Mode::Ocpp(_) => (&out.start, &out.worked),
            _ => (&out.connected, &out.worked),
        };
        let elapsed = to.at.duration_since(from.at).as_secs_f64();
        let server_cpu = cpu_between(from, to);
        let client_cpu = to.client_cpu_s - from.client_cpu_s;
        let sends = plan.mode.sends();
        let fanout = match &plan.mode {
            Mode::Fanout { rate, .. } => Some(*rate),
            Mode::Realtime(rt) => Some(rt.rate),
            _ => None,
        };

        let messages = s.received as f64;
        let subscribers = s.handshakes - s.publishers;
        let deliveries_per_s = per(messages, Some(elapsed)).unwrap_or(0.0);
        let rss_before = out.start.server_rss_kib;
        let rss_after = out.worked.server_rss_kib;
        // Only the modes that hold connections and nothing else say much
        // about memory per connection.
        let holds = matches!(
            plan.mode,
            Mode::Storm { .. } | Mode::Idle { .. } | Mode::Ocpp(_)
        );
        let kib_per_conn = match (rss_before, rss_after) {
            (Some(a), Some(b)) if holds && s.up_at_end > 0 => {
                Some(round((b as f64 - a as f64) / s.up_at_end as f64, 2))
            }
            _ => None,
        };
        let timeline = matches!(plan.mode, Mode::Sustained { .. }).then(|| {
            let width = match plan.mode {
                Mode::Sustained {
                    report_interval, ..
                } => report_interval.as_secs_f64(),
                _ => 1.0,
            };
            s.slots
                .iter()
                .enumerate()
                .map(|(i, slot)| TimelineRow {
                    t_s: round((i + 1) as f64 * width, 3),
                    sent: slot.sent,
                    received: slot.rtt.len(),
                    rtt_us: Percentiles::of(&slot.rtt),
                })
                .collect()
        });
        Report {
            mode: plan.mode.name(),
            url: format!("ws://{}{}", plan.url.host_header, plan.url.target),
            threads: plan.threads,
            connections: match plan.mode {
                Mode::Realtime(_) => plan.total_connections(),
                _ => plan.connections,
            },
            payload_bytes: plan.payload,
            window: plan.window,
            connected: s.handshakes,
            up_after_connect: out.up_after_connect,
            up_at_end: s.up_at_end,
            connect_s: round(connect_s, 4),
            handshakes_per_s: per(s.handshakes as f64, Some(connect_s)).unwrap_or(0.0),
            handshake_us: Percentiles::of(&s.handshake),
            handshakes_per_server_cpu_s: per(s.handshakes as f64, cpu_between(&out.start, joined)),
            elapsed_s: round(elapsed, 4),
            messages: s.received,
            messages_sent: s.sent,
            msgs_per_s: deliveries_per_s,
            bytes_per_s: per(s.bytes_received as f64, Some(elapsed)).unwrap_or(0.0),
            // OCPP's CALL latency is in its section.
            rtt_us: (!plan.mode.delivers() && !matches!(plan.mode, Mode::Ocpp(_)))
                .then(|| Percentiles::of(&s.rtt))
                .flatten(),
            subscribers: fanout.map(|_| subscribers),
            publishers: fanout.map(|_| s.publishers),
            rate: fanout,
            deliveries: fanout.map(|_| s.received),
            expected_deliveries: fanout.map(|_| match plan.mode {
                Mode::Realtime(_) => s.realtime.expected,
                _ => s.sent * subscribers,
            }),
            deliveries_per_s: fanout.map(|_| deliveries_per_s),
            deliveries_per_server_cpu_s: fanout.and_then(|_| per(messages, server_cpu)),
            latency_us: plan
                .mode
                .delivers()
                .then(|| Percentiles::of(&s.rtt))
                .flatten(),
            failures: Cause::ALL
                .iter()
                .filter(|c| s.failures_of(**c) > 0)
                .map(|c| (c.name(), s.failures_of(*c)))
                .collect(),
            refused: s.refused.clone(),
            server_cpu_s: server_cpu.map(|c| round(c, 3)),
            msgs_per_server_cpu_s: if sends {
                per(messages, server_cpu)
            } else {
                None
            },
            client_cpu_s: round(client_cpu, 3),
            msgs_per_client_cpu_s: if sends {
                per(messages, Some(client_cpu))
            } else {
                None
            },
            rss_kib_before: rss_before,
            rss_kib_after: rss_after,
            kib_per_conn,
            timeline,
            timed_out: out.timed_out,
            soak: match &plan.mode {
                Mode::Soak(soak) => {
                    Some(SoakReport::new(soak, &s.soak, s.sent, out.watch.as_ref()))
                }
                _ => None,
            },
            realtime: match &plan.mode {
                Mode::Realtime(rt) => Some(RealtimeReport::new(rt, s, out, server_cpu)),
                _ => None,
            },
            ocpp: match &plan.mode {
                Mode::Ocpp(ocpp) => Some(OcppReport::new(
                    ocpp,
                    plan.connections,
                    s,
                    out.commands.as_ref(),
                    cpu_between(&out.start, joined),
                    out.timed_out,
                )),
                _ => None,
            },
            deflate: plan.deflate.then(|| DeflateReport::new(&s.deflate)),
            marker: plan
                .mode
                .marker()
                .map(|m| MarkerReport::new(m.text(), &s.marker, plan.connections)),
        }
    }

    /// Whether the run failed its purpose beyond connecting: a realtime run
    /// that missed or duplicated a delivery (or expected none), an ocpp run
    /// with a charge point not booted, any error, or a command not answered,
    /// an idle `--expect-marker` run where a connection did not get the
    /// marker exactly once.
    pub fn failed_check(&self) -> bool {
        self.realtime.as_ref().is_some_and(|r| !r.exactly_once)
            || self.ocpp.as_ref().is_some_and(|o| !o.passed)
            || self.marker.as_ref().is_some_and(|m| !m.all_exactly_once)
    }

    /// One JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The human-readable table.
    pub fn to_table(&self) -> String {
        let mut t = String::new();
        let who = match self.publishers {
            Some(p) if self.realtime.is_some() => format!(
                "{} members, {p} of them publishing",
                group(self.connections as f64)
            ),
            Some(p) => format!(
                "{} subscribers + {p} publisher{}",
                group(self.connections as f64),
                if p == 1 { "" } else { "s" }
            ),
            None if self.ocpp.is_some() => {
                format!("{} charge points", group(self.connections as f64))
            }
            None => format!("{} connections", group(self.connections as f64)),
        };
        let _ = writeln!(
            t,
            "ringgate-load {}  {}  ({who}, {} thread{})",
            self.mode,
            self.url,
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        );
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "  {k:<15}{v}");
        };
        row(
            "connections",
            format!(
                "{} connected, {} up after connecting, {} up at end",
                group(self.connected as f64),
                group(self.up_after_connect as f64),
                group(self.up_at_end as f64)
            ),
        );
        let mut connect = format!(
            "{:.3} s, {} handshakes/s",
            self.connect_s,
            group(self.handshakes_per_s)
        );
        if let Some(h) = self.handshakes_per_server_cpu_s {
            let _ = write!(connect, ", {} per server CPU-second", group(h));
        }
        row("connect", connect);
        if let Some(p) = &self.handshake_us {
            row("handshake µs", fmt_percentiles(p));
        }
        if let Some(r) = &self.realtime {
            r.write_settle(&mut row);
        }
        row("measured", format!("{:.3} s", self.elapsed_s));
        if let Some(o) = &self.ocpp {
            o.write_rows(&mut row);
        }
        if let (Some(subs_n), Some(pubs), Some(rate), Some(expected)) = (
            self.subscribers,
            self.publishers,
            self.rate,
            self.expected_deliveries,
        ) {
            let (what, subs, unit) = match self.realtime {
                Some(_) => ("realtime", "listeners", "B data"),
                None => ("fanout", "subscribers", "B payload"),
            };
            row(
                what,
                format!(
                    "{} {subs}, {pubs} publisher{} at {} msgs/s each, {} {unit}",
                    group(subs_n as f64),
                    if pubs == 1 { "" } else { "s" },
                    group(rate as f64),
                    self.payload_bytes
                ),
            );
            if let Some(r) = &self.realtime {
                r.write_rooms(&mut row);
            }
            row(
                "deliveries",
                format!(
                    "{} of {} expected ({} published), {} deliveries/s",
                    group(self.messages as f64),
                    group(expected as f64),
                    group(self.messages_sent as f64),
                    group(self.msgs_per_s)
                ),
            );
            if let Some(r) = &self.realtime {
                r.write_checks(&mut row);
            }
        } else if self.messages_sent > 0 && self.soak.is_none() && self.ocpp.is_none() {
            row(
                "messages",
                format!(
                    "{} echoed of {} sent, {} B payload",
                    group(self.messages as f64),
                    group(self.messages_sent as f64),
                    self.payload_bytes
                ),
            );
            row(
                "rate",
                format!(
                    "{} msgs/s, {} MiB/s echoed",
                    group(self.msgs_per_s),
                    round(self.bytes_per_s / (1 << 20) as f64, 2)
                ),
            );
        }
        if let Some(d) = &self.deflate {
            d.write_rows(&mut row);
        }
        if let Some(m) = &self.marker {
            m.write_rows(&mut row);
        }
        if let Some(p) = &self.rtt_us {
            row("rtt µs", fmt_percentiles(p));
        }
        if let Some(p) = &self.latency_us {
            row("latency µs", fmt_percentiles(p));
        }
        let what = if self.latency_us.is_some() {
            "deliveries"
        } else {
            "msgs"
        };
        if let Some(cpu) = self.server_cpu_s {
            let mut v = format!("{cpu:.3} s");
            if let Some(m) = self.msgs_per_server_cpu_s {
                let _ = write!(v, ", {} {what} per server CPU-second", group(m));
            }
            if let Some(c) = self
                .realtime
                .as_ref()
                .and_then(|r| r.server_cpu_s_per_million_deliveries)
            {
                let _ = write!(v, ", {c:.3} CPU-s per million deliveries");
            }
            row("server cpu", v);
        }
        let mut v = format!("{:.3} s", self.client_cpu_s);
        if let Some(m) = self.msgs_per_client_cpu_s {
            let _ = write!(v, ", {} {what} per client CPU-second", group(m));
        }
        if self.elapsed_s >= 0.5 && self.client_cpu_s >= 0.9 * self.elapsed_s * self.threads as f64
        {
            v.push_str("  (client saturated: it may be the bottleneck)");
        }
        row("client cpu", v);
        if let (Some(a), Some(b)) = (self.rss_kib_before, self.rss_kib_after) {
            let mut v = format!("{} KiB -> {} KiB", group(a as f64), group(b as f64));
            if let Some(k) = self.kib_per_conn {
                let _ = write!(v, ", {k:.2} KiB per connection");
            }
            row("server rss", v);
        }
        let failures = if self.failures.is_empty() {
            "none".to_owned()
        } else {
            self.failures
                .iter()
                .map(|(k, v)| format!("{k} {}", group(*v as f64)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        row("failures", failures);
        if !self.refused.is_empty() {
            let statuses: Vec<String> = self
                .refused
                .iter()
                .map(|(status, n)| format!("HTTP {status} × {}", group(*n as f64)))
                .collect();
            row("refused", statuses.join(", "));
        }
        if self.timed_out {
            row("timed out", "yes: the run hit --timeout".to_owned());
        }
        if let Some(soak) = &self.soak {
            soak.write_table(&mut t);
        }
        if let Some(rows) = &self.timeline {
            let _ = writeln!(
                t,
                "  {:>8} {:>10} {:>10} {:>9} {:>9} {:>9}",
                "t (s)", "sent", "echoed", "p50 µs", "p99 µs", "max µs"
            );
            for r in rows {
                let (p50, p99, max) = r.rtt_us.map_or((0, 0, 0), |p| (p.p50, p.p99, p.max));
                let _ = writeln!(
                    t,
                    "  {:>8.1} {:>10} {:>10} {:>9} {:>9} {:>9}",
                    r.t_s, r.sent, r.received, p50, p99, max
                );
            }
        }
        t
    }
}

pub(crate) fn fmt_percentiles(p: &Percentiles) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {:.1}, n {})",
        group(p.p50 as f64),
        group(p.p90 as f64),
        group(p.p99 as f64),
        group(p.p999 as f64),
        group(p.max as f64),
        p.mean,
        group(p.count as f64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn percentiles() {
        assert_eq!(Percentiles::of(&new_histogram()), None);
        let mut h = new_histogram();
        for v in 1..=100 {
            h.record(v).unwrap();
        }
        let p = Percentiles::of(&h).unwrap();
        assert_eq!((p.p50, p.p99, p.max, p.count), (50, 99, 100, 100));
    }

    #[test]
    fn rates() {
        assert_eq!(per(10.0, Some(4.0)), Some(2.5));
        assert_eq!(per(10.0, Some(0.0)), None);
        assert_eq!(per(10.0, None), None);
    }
}
