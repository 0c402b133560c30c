//! The soak section of the report: how each behaviour's connections ended,
//! how long the server took to cut off never-readers, polite deliveries
//! against what was broadcast, the health checks, the server samples, and
//! the verdict on whether RSS and descriptors stayed flat after the warm-up.
//!
//! The flat rule: take the first sample at or after the warm-up; the median
//! of the last third of the samples must be at most that value plus
//! [`FLAT_PERCENT`] % plus a small absolute slack ([`RSS_SLACK_KIB`],
//! [`FD_SLACK`]). So noise of a few pages or sockets in flight, and a
//! passing spike (send queues of slow readers filling, then cut off), pass;
//! growth that stays does not.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::monitor::{ProcSample, Watch};
use crate::progress::group;
use crate::report::Percentiles;
use crate::soak::{Behaviour, SoakPlan, SoakStats};

/// Growth allowed over the first post-warm-up sample, in percent.
pub const FLAT_PERCENT: u64 = 10;
/// Absolute slack on top, for RSS (KiB) and descriptors.
pub const RSS_SLACK_KIB: u64 = 4096;
pub const FD_SLACK: u64 = 16;

/// One series after the warm-up, and whether it stayed flat.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Flatness {
    /// The first sample at or after the warm-up, and when (s since the start).
    pub first: u64,
    pub first_t_s: f64,
    pub min: u64,
    pub max: u64,
    pub last: u64,
    /// The most the tail median may be: first + FLAT_PERCENT % + slack.
    pub limit: u64,
    /// The median of the last third of the samples.
    pub tail_median: u64,
    /// Least-squares slope over those samples, per minute.
    pub slope_per_min: f64,
    pub samples: usize,
    pub flat: bool,
}

/// The flat rule over `(t_s, value)` points; `None` with no point at or
/// after `warmup_s`.
pub fn flatness(points: &[(f64, u64)], warmup_s: f64, slack: u64) -> Option<Flatness> {
    let after: Vec<(f64, u64)> = points
        .iter()
        .copied()
        .filter(|(t, _)| *t >= warmup_s)
        .collect();
    let &(first_t_s, first) = after.first()?;
    let min = after.iter().map(|p| p.1).min()?;
    let max = after.iter().map(|p| p.1).max()?;
    let limit = first + first * FLAT_PERCENT / 100 + slack;
    let mut tail: Vec<u64> = after[after.len() - after.len().div_ceil(3)..]
        .iter()
        .map(|p| p.1)
        .collect();
    tail.sort_unstable();
    let tail_median = tail[tail.len() / 2];
    Some(Flatness {
        first,
        first_t_s,
        min,
        max,
        last: after.last()?.1,
        limit,
        tail_median,
        slope_per_min: (slope(&after) * 60.0 * 10.0).round() / 10.0,
        samples: after.len(),
        flat: tail_median <= limit,
    })
}

/// Least-squares slope of `points`, per second (0 for fewer than two).
fn slope(points: &[(f64, u64)]) -> f64 {
    let n = points.len() as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_v = points.iter().map(|p| p.1 as f64).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (t, v) in points {
        num += (t - mean_t) * (*v as f64 - mean_v);
        den += (t - mean_t) * (t - mean_t);
    }
    if den > 0.0 {
        num / den
    } else {
        0.0
    }
}

/// One behaviour's connections.
#[derive(Debug, Clone, Serialize)]
pub struct BehaviourReport {
    /// Connections of this behaviour kept up.
    pub target: u64,
    /// Connections opened, replacements included.
    pub opened: u64,
    /// Open when the mix stopped.
    pub up_at_end: u64,
    /// How the others ended: outcome to count.
    pub outcomes: BTreeMap<String, u64>,
}

/// Every behaviour, in report order.
#[derive(Debug, Clone, Serialize)]
pub struct Behaviours {
    pub polite: BehaviourReport,
    pub churn: BehaviourReport,
    pub silent: BehaviourReport,
    pub garbage: BehaviourReport,
}

impl Behaviours {
    fn of(&self, b: Behaviour) -> &BehaviourReport {
        match b {
            Behaviour::Polite => &self.polite,
            Behaviour::Churn => &self.churn,
            Behaviour::Silent => &self.silent,
            Behaviour::Garbage => &self.garbage,
        }
    }
}

/// The health checks.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    pub checks: u64,
    pub failed: u64,
    pub failures: BTreeMap<&'static str, u64>,
    /// When the first failures happened, seconds since the start.
    pub failed_at_s: Vec<f64>,
    pub latency_us: Option<Percentiles>,
}

/// The soak section; serialized as the report's `soak` object.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub duration_s: f64,
    pub rate: u64,
    pub warmup_s: f64,
    pub sample_interval_s: f64,
    pub behaviours: Behaviours,
    /// Garbage senders whose connection did not end with the expected code.
    pub garbage_unexpected: u64,
    /// Never-readers cut off: 101 to the cut-off noticed.
    pub silent_cut_off_us: Option<Percentiles>,
    pub broadcasts: u64,
    pub publisher_lost: u64,
    pub polite_deliveries: u64,
    pub polite_expected: u64,
    pub health: HealthReport,
    pub samples: Vec<ProcSample>,
    /// `--pid` was given and the server could not be read at some sample.
    pub server_lost: bool,
    pub rss_kib: Option<Flatness>,
    pub fds: Option<Flatness>,
    /// RSS and descriptors both flat; `null` without samples after the warm-up.
    pub flat: Option<bool>,
    pub flat_rule: String,
}

impl SoakReport {
    pub fn new(
        plan: &SoakPlan,
        stats: &SoakStats,
        broadcasts: u64,
        watch: Option<&Watch>,
    ) -> SoakReport {
        let behaviour = |b: Behaviour| BehaviourReport {
            target: plan.mix[b as usize],
            opened: stats.opened[b as usize],
            up_at_end: stats.up_at_end[b as usize],
            outcomes: stats.outcomes[b as usize].clone(),
        };
        let warmup_s = plan.warmup.as_secs_f64();
        let samples = watch.map(|w| w.samples.clone()).unwrap_or_default();
        let series = |pick: fn(&ProcSample) -> Option<u64>| -> Vec<(f64, u64)> {
            samples
                .iter()
                .filter_map(|s| pick(s).map(|v| (s.t_s, v)))
                .collect()
        };
        let rss = flatness(&series(|s| s.rss_kib), warmup_s, RSS_SLACK_KIB);
        let fds = flatness(&series(|s| s.fds), warmup_s, FD_SLACK);
        let flat = match (&rss, &fds) {
            (Some(r), Some(f)) => Some(r.flat && f.flat),
            _ => None,
        };
        let health = match watch {
            Some(w) => HealthReport {
                checks: w.health.checks,
                failed: w.health.failed(),
                failures: w.health.failures.clone(),
                failed_at_s: w.health.failed_at_s.clone(),
                latency_us: Percentiles::of(&w.health.latency),
            },
            None => HealthReport {
                checks: 0,
                failed: 0,
                failures: BTreeMap::new(),
                failed_at_s: Vec::new(),
                latency_us: None,
            },
        };
        SoakReport {
            duration_s: plan.duration.as_secs_f64(),
            rate: plan.rate,
            warmup_s,
            sample_interval_s: plan.sample_every.as_secs_f64(),
            behaviours: Behaviours {
                polite: behaviour(Behaviour::Polite),
                churn: behaviour(Behaviour::Churn),
                silent: behaviour(Behaviour::Silent),
                garbage: behaviour(Behaviour::Garbage),
            },
            garbage_unexpected: stats.garbage_unexpected,
            silent_cut_off_us: Percentiles::of(&stats.cut_off),
            broadcasts,
            publisher_lost: stats.publisher_lost,
            polite_deliveries: stats.polite_deliveries,
            polite_expected: stats.polite_expected,
            health,
            samples,
            server_lost: watch.is_some_and(|w| w.server_lost),
            rss_kib: rss,
            fds,
            flat,
            flat_rule: format!(
                "after the warm-up, the median of the last third of the samples <= the first \
                 one + {FLAT_PERCENT}% + {RSS_SLACK_KIB} KiB (RSS) or + {FD_SLACK} (descriptors)"
            ),
        }
    }

    /// Appends the section to the report's table.
    pub fn write_table(&self, t: &mut String) {
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "  {k:<15}{v}");
        };
        row(
            "soak",
            format!(
                "{:.0} s, {} broadcasts/s, warm-up {:.0} s, a sample every {:.0} s",
                self.duration_s, self.rate, self.warmup_s, self.sample_interval_s
            ),
        );
        for b in Behaviour::ALL {
            let r = self.behaviours.of(b);
            row(
                b.name(),
                format!(
                    "{} kept up, {} opened, {} up at end{}",
                    group(r.target as f64),
                    group(r.opened as f64),
                    group(r.up_at_end as f64),
                    if r.outcomes.is_empty() {
                        ""
                    } else {
                        "; ended:"
                    }
                ),
            );
            for (outcome, n) in &r.outcomes {
                row("", format!("  {:>9}  {outcome}", group(*n as f64)));
            }
        }
        if let Some(p) = &self.silent_cut_off_us {
            row(
                "cut off after",
                format!(
                    "p50 {:.1} s, p90 {:.1} s, max {:.1} s (from the 101, {} never-readers)",
                    p.p50 as f64 / 1e6,
                    p.p90 as f64 / 1e6,
                    p.max as f64 / 1e6,
                    group(p.count as f64)
                ),
            );
        }
        if self.behaviours.garbage.opened > 0 {
            row(
                "garbage codes",
                match self.garbage_unexpected {
                    0 => "every ended garbage sender got the expected close code".to_owned(),
                    n => format!("{} did not get the expected close code", group(n as f64)),
                },
            );
        }
        row(
            "broadcasts",
            format!(
                "{} sent; polite subscribers got {} of {} expected{}",
                group(self.broadcasts as f64),
                group(self.polite_deliveries as f64),
                group(self.polite_expected as f64),
                match self.publisher_lost {
                    0 => String::new(),
                    n => format!("; publisher lost {n} times"),
                }
            ),
        );
        let h = &self.health;
        let mut health = format!(
            "{} checks, {} failed",
            group(h.checks as f64),
            group(h.failed as f64)
        );
        if !h.failures.is_empty() {
            let kinds: Vec<String> = h.failures.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = write!(health, " ({}; at {:?} s)", kinds.join(", "), h.failed_at_s);
        }
        if let Some(p) = &h.latency_us {
            let _ = write!(
                health,
                ", latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                p.p50 as f64 / 1e3,
                p.p99 as f64 / 1e3,
                p.max as f64 / 1e3
            );
        }
        row("health", health);
        if !self.samples.is_empty() {
            let _ = writeln!(
                t,
                "  {:>8} {:>12} {:>8} {:>8} {:>12}",
                "t (s)", "rss KiB", "fds", "up", "server conns"
            );
            let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| group(v as f64));
            for s in &self.samples {
                let _ = writeln!(
                    t,
                    "  {:>8.1} {:>12} {:>8} {:>8} {:>12}",
                    s.t_s,
                    opt(s.rss_kib),
                    opt(s.fds),
                    group(s.up as f64),
                    opt(s.server_connections)
                );
            }
        }
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "  {k:<15}{v}");
        };
        for (name, unit, f) in [("rss", " KiB", &self.rss_kib), ("fds", "", &self.fds)] {
            if let Some(f) = f {
                row(
                    name,
                    format!(
                        "from {}{unit} at {:.0} s: min {}, max {}, last {}, tail median {}, limit {}, slope {:+.1}/min: {}",
                        group(f.first as f64),
                        f.first_t_s,
                        group(f.min as f64),
                        group(f.max as f64),
                        group(f.last as f64),
                        group(f.tail_median as f64),
                        group(f.limit as f64),
                        f.slope_per_min,
                        if f.flat { "flat" } else { "NOT FLAT" }
                    ),
                );
            }
        }
        if self.server_lost {
            row(
                "server",
                "LOST: its /proc entry could not be read".to_owned(),
            );
        }
        row(
            "verdict",
            match self.flat {
                Some(true) => "flat".to_owned(),
                Some(false) => "NOT FLAT".to_owned(),
                None => {
                    "no samples after the warm-up (--pid missing or the run too short)".to_owned()
                }
            },
        );
        row("rule", self.flat_rule.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_growing_series() {
        let flat = [
            (0.0, 10),
            (10.0, 1000),
            (20.0, 1050),
            (30.0, 990),
            (40.0, 1100),
        ];
        let f = flatness(&flat, 10.0, 0).unwrap();
        assert_eq!(
            (f.first, f.min, f.max, f.last, f.limit),
            (1000, 990, 1100, 1100, 1100)
        );
        assert_eq!((f.samples, f.first_t_s), (4, 10.0));
        assert!(f.flat, "the warm-up sample does not count");
        assert_eq!(f.tail_median, 1100);
        let spike = [
            (10.0, 1000),
            (20.0, 1500),
            (30.0, 1000),
            (40.0, 1010),
            (50.0, 990),
            (60.0, 1000),
        ];
        let p = flatness(&spike, 0.0, 0).unwrap();
        assert!(
            p.flat && p.max == 1500,
            "a passing spike is no growth: {p:?}"
        );
        let growing = [(10.0, 1000), (20.0, 1060), (30.0, 1120)];
        let g = flatness(&growing, 0.0, 16).unwrap();
        assert_eq!(g.limit, 1116);
        assert!(!g.flat);
        assert_eq!(g.slope_per_min, 360.0);
        assert_eq!(flatness(&growing, 31.0, 0), None);
        assert_eq!(flatness(&[(5.0, 7)], 0.0, 0).unwrap().slope_per_min, 0.0);
    }
}
