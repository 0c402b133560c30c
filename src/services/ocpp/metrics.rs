//! The OCPP figures on `/metrics` (contract names): charge points connected by protocol,
//! CALLs by direction, action and result with their durations, commands pending, events
//! dropped by a slow sink; plus refused upgrades by reason, malformed frames and answers
//! nobody waited for. Shard counters are gathered through the hub on each scrape.

use std::fmt::Error as FmtError;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::control::{
    metric_family as family, metric_single as single, MetricsSource, FIGURES_WAIT,
};
use crate::hub::{Hub, Latest};

use super::auth::AuthError;
use super::errors::Version;
use super::figures::ShardFigures;
use super::{Refusal, Service};

/// The `/metrics` source of the gateway.
pub(super) fn source(service: Arc<Service>) -> MetricsSource {
    let latest: Arc<Latest<ShardFigures>> = Arc::default();
    Arc::new(move |hub: Hub| {
        let (service, latest) = (service.clone(), latest.clone());
        Box::pin(async move {
            let shards = latest
                .gather(&hub, FIGURES_WAIT, |shard| {
                    shard.local::<ShardFigures>().clone()
                })
                .await
                .map(|gathered| gathered.answers)
                .unwrap_or_default();
            let mut figures = ShardFigures::default();
            for shard in &shards {
                figures.add(shard);
            }
            Box::new(Scrape { service, figures }) as Box<dyn Collector>
        })
    })
}

struct Scrape {
    service: Arc<Service>,
    figures: ShardFigures,
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrape").finish_non_exhaustive()
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), FmtError> {
        let e = &mut encoder;
        let service = &self.service;
        let registry = &service.registry;
        family(
            e,
            "ocpp_charge_points_connected",
            "Charge points connected, by protocol",
            MetricType::Gauge,
            [Version::V16, Version::V201].map(|v| {
                (
                    [("protocol", v.subprotocol().into())],
                    ConstGauge::new(registry.connected(v) as i64),
                )
            }),
        )?;
        single(
            e,
            "ocpp_charge_points_known",
            "Charge points the gateway remembers, connected or not",
            &ConstGauge::new(registry.known() as i64),
        )?;
        let mut calls: Vec<_> = self.figures.calls.iter().collect();
        calls.sort_by_key(|&(&(direction, action, outcome), _)| {
            (direction.as_str(), action, outcome.as_str())
        });
        family(
            e,
            "ocpp_calls",
            "OCPP CALLs by direction, action and result (result, error or timeout)",
            MetricType::Counter,
            calls.into_iter().map(|((direction, action, outcome), n)| {
                (
                    [
                        ("direction", direction.as_str().into()),
                        ("action", (*action).into()),
                        ("result", outcome.as_str().into()),
                    ],
                    ConstCounter::new(*n),
                )
            }),
        )?;
        let mut durations: Vec<_> = self.figures.durations.iter().collect();
        durations.sort_by_key(|&(&(direction, action), _)| (direction.as_str(), action));
        family(
            e,
            "ocpp_call_duration_seconds",
            "From a CALL to its answer: the gateway's own answers (uplink) and charge points' (downlink)",
            MetricType::Histogram,
            durations.into_iter().map(|((direction, action), d)| {
                (
                    [
                        ("direction", direction.as_str().into()),
                        ("action", (*action).into()),
                    ],
                    d.clone(),
                )
            }),
        )?;
        single(
            e,
            "ocpp_commands_pending",
            "Downlink commands queued or waiting for their answer",
            &ConstGauge::new(service.pending.load(Ordering::Relaxed)),
        )?;
        single(
            e,
            "ocpp_event_sink_dropped",
            "Events dropped because the sink's buffer was full",
            &ConstCounter::new(service.events.dropped()),
        )?;
        single(
            e,
            "ocpp_event_sink_queued_bytes",
            "Bytes of events waiting for the sink (bounded by OCPP_EVENT_BUFFER_BYTES)",
            &ConstGauge::new(service.events.queued_bytes() as i64),
        )?;
        single(
            e,
            "ocpp_charge_points_evicted",
            "Disconnected charge points forgotten to make room in a full table (never booted first, then the longest gone)",
            &ConstCounter::new(service.registry.evicted()),
        )?;
        single(
            e,
            "ocpp_event_sink_failed",
            "Events the sink failed to write",
            &ConstCounter::new(service.events.failed()),
        )?;
        single(
            e,
            "ocpp_events_published",
            "Events handed to the sink",
            &ConstCounter::new(service.events.published()),
        )?;
        single(
            e,
            "ocpp_frame_errors",
            "Messages that were not valid OCPP-J",
            &ConstCounter::new(self.figures.frame_errors),
        )?;
        single(
            e,
            "ocpp_unmatched_replies",
            "CALLRESULTs and CALLERRORs matching no outstanding CALL (late or never asked)",
            &ConstCounter::new(self.figures.unmatched_replies),
        )?;
        let refusals = Refusal::ALL.iter().map(|&r| {
            (
                r.label(),
                service.refusals[r as usize].load(Ordering::Relaxed),
            )
        });
        let auth = AuthError::ALL
            .iter()
            .zip(&service.auth_failures)
            .map(|(e, n)| (e.reason(), n.load(Ordering::Relaxed)));
        family(
            e,
            "ocpp_upgrades_refused",
            "OCPP upgrades refused, by reason",
            MetricType::Counter,
            refusals
                .chain(auth)
                .map(|(reason, n)| ([("reason", reason.into())], ConstCounter::new(n))),
        )
    }
}
