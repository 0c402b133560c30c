//! The gateway's counters on one shard, kept as a shard-local value and summed on each scrape:
//! CALLs by direction, action and outcome, how long each took, frames refused, answers nobody
//! waited for. Action names come from charge points and commands, so only the actions of the
//! OCPP versions the gateway speaks ([`KNOWN_ACTIONS`]) are labels; any other counts as
//! `other`. The label set is fixed whatever a peer sends.

use std::collections::HashMap;
use std::fmt::Error as FmtError;
use std::time::Duration;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::events::Direction;

/// Every action of OCPP 1.6 (all profiles, with the security extension) and OCPP 2.0.1, sorted:
/// the `Action` enums of python `ocpp` 2.1.0, the package the payload schemas come from.
pub const KNOWN_ACTIONS: [&str; 75] = [
    "Authorize",
    "BootNotification",
    "CancelReservation",
    "CertificateSigned",
    "ChangeAvailability",
    "ChangeConfiguration",
    "ClearCache",
    "ClearChargingProfile",
    "ClearDisplayMessage",
    "ClearVariableMonitoring",
    "ClearedChargingLimit",
    "CostUpdated",
    "CustomerInformation",
    "DataTransfer",
    "DeleteCertificate",
    "DiagnosticsStatusNotification",
    "ExtendedTriggerMessage",
    "FirmwareStatusNotification",
    "Get15118EVCertificate",
    "GetBaseReport",
    "GetCertificateStatus",
    "GetChargingProfiles",
    "GetCompositeSchedule",
    "GetConfiguration",
    "GetDiagnostics",
    "GetDisplayMessages",
    "GetInstalledCertificateIds",
    "GetLocalListVersion",
    "GetLog",
    "GetMonitoringReport",
    "GetReport",
    "GetTransactionStatus",
    "GetVariables",
    "Heartbeat",
    "InstallCertificate",
    "LogStatusNotification",
    "MeterValues",
    "NotifyChargingLimit",
    "NotifyCustomerInformation",
    "NotifyDisplayMessages",
    "NotifyEVChargingNeeds",
    "NotifyEVChargingSchedule",
    "NotifyEvent",
    "NotifyMonitoringReport",
    "NotifyReport",
    "PublishFirmware",
    "PublishFirmwareStatusNotification",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "ReportChargingProfiles",
    "RequestStartTransaction",
    "RequestStopTransaction",
    "ReservationStatusUpdate",
    "ReserveNow",
    "Reset",
    "SecurityEventNotification",
    "SendLocalList",
    "SetChargingProfile",
    "SetDisplayMessage",
    "SetMonitoringBase",
    "SetMonitoringLevel",
    "SetNetworkProfile",
    "SetVariableMonitoring",
    "SetVariables",
    "SignCertificate",
    "SignedFirmwareStatusNotification",
    "SignedUpdateFirmware",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
    "TransactionEvent",
    "TriggerMessage",
    "UnlockConnector",
    "UnpublishFirmware",
    "UpdateFirmware",
];

/// The label every action outside [`KNOWN_ACTIONS`] counts under.
pub const OTHER_ACTION: &str = "other";

/// The label of `action`: itself when an OCPP version knows it, else [`OTHER_ACTION`].
pub fn action_label(action: &str) -> &'static str {
    KNOWN_ACTIONS
        .binary_search(&action)
        .map_or(OTHER_ACTION, |at| KNOWN_ACTIONS[at])
}

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

/// One shard's counters, by action label ([`action_label`]).
#[derive(Debug, Clone, Default)]
pub struct ShardFigures {
    pub calls: HashMap<(Direction, &'static str, Outcome), u64>,
    pub durations: HashMap<(Direction, &'static str), Durations>,
    /// Frames that were not valid OCPP-J (answered with a CALLERROR where possible).
    pub frame_errors: u64,
    /// CALLRESULTs and CALLERRORs that matched no outstanding CALL (late or unknown).
    pub unmatched_replies: u64,
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
        let action = action_label(action);
        *self.calls.entry((direction, action, outcome)).or_default() += 1;
        if let Some(elapsed) = elapsed {
            self.durations
                .entry((direction, action))
                .or_default()
                .observe(elapsed);
        }
    }

    /// Adds another shard's counters to these.
    pub fn add(&mut self, other: &ShardFigures) {
        for (&key, n) in &other.calls {
            *self.calls.entry(key).or_default() += n;
        }
        for (&key, d) in &other.durations {
            self.durations.entry(key).or_default().add(d);
        }
        self.frame_errors += other.frame_errors;
        self.unmatched_replies += other.unmatched_replies;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_known_action_and_the_rest_as_other() {
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
        for hostile in [
            "X\"} 1\nringgate_up 0\n",
            "heartbeat",
            "Heartbeat ",
            "",
            "Vendor",
        ] {
            a.count_call(Direction::Uplink, hostile, Outcome::Error, None);
        }
        let mut sum = ShardFigures::default();
        sum.add(&a);
        sum.add(&a);
        assert_eq!(
            sum.calls[&(Direction::Uplink, "Heartbeat", Outcome::Result)],
            4
        );
        assert_eq!(
            sum.calls[&(Direction::Uplink, OTHER_ACTION, Outcome::Error)],
            10
        );
        assert_eq!(sum.calls.len(), 2, "no label but the known ones and other");
        let d = &sum.durations[&(Direction::Uplink, "Heartbeat")];
        assert_eq!((d.counts[0], d.counts[BUCKETS.len()]), (2, 2));
    }

    #[test]
    fn the_known_actions_are_sorted_and_cover_every_vendored_schema() {
        assert!(
            KNOWN_ACTIONS.windows(2).all(|w| w[0] < w[1]),
            "sorted, once each"
        );
        let schemas = concat!(env!("CARGO_MANIFEST_DIR"), "/src/services/ocpp/schemas");
        let mut seen = 0;
        for version in ["v16", "v201"] {
            for file in std::fs::read_dir(format!("{schemas}/{version}")).unwrap() {
                let name = file.unwrap().file_name().into_string().unwrap();
                let action = name.trim_end_matches(".json").trim_end_matches("Request");
                assert_eq!(action_label(action), action, "{version}/{name}");
                seen += 1;
            }
        }
        assert!(seen >= 14, "{seen} schemas");
        for command in [
            "RemoteStartTransaction",
            "RequestStartTransaction",
            "GetVariables",
            "Reset",
        ] {
            assert_eq!(action_label(command), command);
        }
    }
}
