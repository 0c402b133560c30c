//! The gateway's counters on one shard, kept as a shard-local value and summed on each scrape:
//! CALLs by direction, action and outcome, how long each took, frames refused, answers nobody
//! waited for. Action names come from charge points, so one shard keeps at most
//! [`MAX_ACTIONS`] of them and counts the rest under `other`.

use std::collections::HashMap;
use std::fmt::Error as FmtError;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::events::Direction;

/// Distinct action labels one shard keeps.
pub const MAX_ACTIONS: usize = 64;

/// Upper bounds (seconds) of the call-duration buckets, `+Inf` aside.
const BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0,
];

/// How a CALL ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered with a CALLRESULT.
    Result,
    /// Answered with a CALLERROR.
    Error,
    /// Not answered in time (downlink only).
    Timeout,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Result => "result",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
        }
    }
}

/// A duration histogram: counts per bucket of [`BUCKETS`] (and one for `+Inf`), sum, count.
#[derive(Debug, Clone, Default)]
pub struct Durations {
    counts: [u64; BUCKETS.len() + 1],
    sum_s: f64,
}

impl Durations {
    fn observe(&mut self, elapsed: Duration) {
        let s = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket] += 1;
        self.sum_s += s;
    }

    fn add(&mut self, other: &Durations) {
        for (sum, n) in self.counts.iter_mut().zip(other.counts) {
            *sum += n;
        }
        self.sum_s += other.sum_s;
    }
}

impl EncodeMetric for Durations {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), FmtError> {
        // prometheus-client adds the buckets up itself and writes f64::MAX as +Inf.
        let buckets: Vec<(f64, u64)> = BUCKETS
            .iter()
            .copied()
            .chain([f64::MAX])
            .zip(self.counts)
            .collect();
        let count = self.counts.iter().sum();
        encoder.encode_histogram::<NoLabelSet>(self.sum_s, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// One shard's counters.
#[derive(Debug, Clone, Default)]
pub struct ShardFigures {
    pub calls: HashMap<(Direction, Arc<str>, Outcome), u64>,
    pub durations: HashMap<(Direction, Arc<str>), Durations>,
    /// Frames that were not valid OCPP-J (answered with a CALLERROR where possible).
    pub frame_errors: u64,
    /// CALLRESULTs and CALLERRORs that matched no outstanding CALL (late or unknown).
    pub unmatched_replies: u64,
    /// Distinct action names seen, to cap the labels.
    actions: Vec<Arc<str>>,
}

impl ShardFigures {
    /// Counts a CALL in `direction` of `action` that ended as `outcome` after `elapsed`
    /// (`None`: not timed).
    pub fn count_call(
        &mut self,
        direction: Direction,
        action: &str,
        outcome: Outcome,
        elapsed: Option<Duration>,
    ) {
        let action = self.label(action);
        *self
            .calls
            .entry((direction, action.clone(), outcome))
            .or_default() += 1;
        if let Some(elapsed) = elapsed {
            self.durations
                .entry((direction, action))
                .or_default()
                .observe(elapsed);
        }
    }

    /// The label of `action`: itself while there is room, else `other`.
    fn label(&mut self, action: &str) -> Arc<str> {
        if let Some(known) = self.actions.iter().find(|a| &***a == action) {
            return known.clone();
        }
        if self.actions.len() < MAX_ACTIONS {
            let label: Arc<str> = Arc::from(action);
            self.actions.push(label.clone());
            return label;
        }
        Arc::from("other")
    }

    /// Adds another shard's counters to these.
    pub fn add(&mut self, other: &ShardFigures) {
        for (key, n) in &other.calls {
            *self.calls.entry(key.clone()).or_default() += n;
        }
        for (key, d) in &other.durations {
            self.durations.entry(key.clone()).or_default().add(d);
        }
        self.frame_errors += other.frame_errors;
        self.unmatched_replies += other.unmatched_replies;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_and_labels_capped() {
        let mut a = ShardFigures::default();
        a.count_call(
            Direction::Uplink,
            "Heartbeat",
            Outcome::Result,
            Some(Duration::from_micros(50)),
        );
        a.count_call(
            Direction::Uplink,
            "Heartbeat",
            Outcome::Result,
            Some(Duration::from_secs(500)),
        );
        for n in 0..MAX_ACTIONS + 5 {
            a.count_call(Direction::Uplink, &format!("X{n}"), Outcome::Error, None);
        }
        let mut sum = ShardFigures::default();
        sum.add(&a);
        sum.add(&a);
        let heartbeat: Arc<str> = Arc::from("Heartbeat");
        assert_eq!(
            sum.calls[&(Direction::Uplink, heartbeat.clone(), Outcome::Result)],
            4
        );
        let other: Arc<str> = Arc::from("other");
        assert_eq!(sum.calls[&(Direction::Uplink, other, Outcome::Error)], 12);
        let d = &sum.durations[&(Direction::Uplink, heartbeat)];
        assert_eq!((d.counts[0], d.counts[BUCKETS.len()]), (2, 2));
    }
}
