//! `GET /metrics` (admin): the OpenMetrics text format (which Prometheus
//! scrapes natively; counters end in `_total`, the answer in `# EOF`),
//! encoded by prometheus-client. Shards count with plain numbers of their own; a scrape
//! asks every shard for a copy through the hub and sums them here, so the
//! data path never touches a shared counter. The names are the contract's.
//! Label values go through [`family`] as escaped [`super::LabelValue`]s, and
//! the answer is held to `RINGGATE_METRICS_MAX_BYTES` ([`scrape_cap`]).

use std::collections::BTreeMap;
use std::fmt::Error as FmtError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::errors::ApiError;
use super::labels::Labels;
use super::scrape_cap;
use super::ServerView;
use crate::hub::{
    CloseReason, DeflateMetrics, Hub, ShardMetrics, UpgradeMetrics, DURATION_BUCKETS,
};

/// The content type of what prometheus-client writes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A service's figures for `/metrics`, gathered on each scrape: a
/// prometheus-client [`Collector`] made from the hub (asking the shards
/// through it, say). Add one with [`crate::ServerBuilder::metrics`].
pub type MetricsSource =
    Arc<dyn Fn(Hub) -> Pin<Box<dyn Future<Output = Box<dyn Collector>> + Send>> + Send + Sync>;

/// The `/metrics` handler: every figure, within `max_bytes` ([`scrape_cap`]).
pub(super) async fn metrics(
    Extension(server): Extension<ServerView>,
    sources: Arc<Vec<MetricsSource>>,
    max_bytes: usize,
) -> Response {
    // Every source gathers from the shards at once: each may wait for a busy shard.
    let gathering: Vec<_> = sources
        .iter()
        .map(|source| tokio::spawn(source(server.hub.clone())))
        .collect();
    let (shards, stale_shards) = match server.shard_figures().await {
        Ok(gathered) => (gathered.answers, gathered.stale),
        Err(e) => return ApiError::unavailable(e).into_response(),
    };
    let scrape = Scrape {
        shards,
        stale_shards: stale_shards as i64,
        http_connections: server.http_gate.open() as i64,
        http_refused: [
            ("public", server.http_gate.public.refused()),
            ("internal", server.http_gate.internal.refused()),
        ],
        uptime_s: server.started.elapsed().as_secs_f64(),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    for gathered in gathering {
        match gathered.await {
            Ok(collector) => registry.register_collector(collector),
            Err(e) => tracing::warn!("a /metrics source failed: {e}"),
        }
    }
    let mut encoded = String::new();
    let fitted = prometheus_client::encoding::text::encode_registry(&mut encoded, &registry)
        .and_then(|()| scrape_cap::fit(&encoded, max_bytes));
    match fitted {
        Ok(fitted) => {
            if !fitted.dropped.is_empty() {
                tracing::warn!(
                    "/metrics would pass RINGGATE_METRICS_MAX_BYTES ({max_bytes}): left out {}",
                    fitted.dropped.join(", ")
                );
            }
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], fitted.text).into_response()
        }
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("cannot encode the metrics: {e}"),
        )
        .into_response(),
    }
}

/// Every shard's copy of its counters, and the control plane's own figures.
#[derive(Debug)]
struct Scrape {
    shards: Vec<ShardMetrics>,
    /// Shards whose figures are their last copy (busy past the wait).
    stale_shards: i64,
    http_connections: i64,
    /// Connections each entrance turned away, full (`public`, `internal`).
    http_refused: [(&'static str, u64); 2],
    uptime_s: f64,
}

impl Scrape {
    /// The sum over shards of one figure, by label value.
    fn sum_by<K: Ord>(
        &self,
        each: impl Fn(&ShardMetrics, &mut BTreeMap<K, u64>),
    ) -> BTreeMap<K, u64> {
        let mut sums = BTreeMap::new();
        for shard in &self.shards {
            each(shard, &mut sums);
        }
        sums
    }

    fn total(&self, each: impl Fn(&ShardMetrics) -> u64) -> u64 {
        self.shards.iter().map(each).sum()
    }

    fn closed(&self, reason: CloseReason) -> u64 {
        self.total(|s| s.closed[reason as usize])
    }
}

/// Writes one metric without labels.
pub fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), FmtError> {
    let metric_encoder = encoder.encode_descriptor(name, help, None, metric.metric_type())?;
    metric.encode(metric_encoder)
}

/// Writes one metric family: a value per label set. Label values are
/// [`super::LabelValue`]s, escaped when written, whatever they hold.
pub fn family<const N: usize, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: impl IntoIterator<Item = (Labels<N>, M)>,
) -> Result<(), FmtError> {
    let mut metric_encoder = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, metric) in rows {
        metric.encode(metric_encoder.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), FmtError> {
        let e = &mut encoder;
        let routes = self.sum_by(|s, m: &mut BTreeMap<(String, &str), u64>| {
            for r in &s.routes {
                *m.entry((r.route.to_string(), "open")).or_default() += r.open;
                *m.entry((r.route.to_string(), "in")).or_default() += r.messages_in;
                *m.entry((r.route.to_string(), "out")).or_default() += r.messages_out;
            }
        });
        family(
            e,
            "websocket_connections_total",
            "Open WebSocket connections, by route",
            MetricType::Gauge,
            routes
                .iter()
                .filter(|((_, what), _)| *what == "open")
                .map(|((route, _), &n)| {
                    ([("route", route.clone().into())], ConstGauge::new(n as i64))
                }),
        )?;
        family(
            e,
            "websocket_messages",
            "WebSocket messages received (in) and sent (out), by route",
            MetricType::Counter,
            routes
                .iter()
                .filter(|((_, what), _)| *what != "open")
                .map(|((route, what), &n)| {
                    (
                        [
                            ("direction", what.to_string().into()),
                            ("route", route.clone().into()),
                        ],
                        ConstCounter::new(n),
                    )
                }),
        )?;
        family(
            e,
            "websocket_compressed_connections",
            "Open WebSocket connections that negotiated permessage-deflate, by route",
            MetricType::Gauge,
            self.sum_by(|s, m: &mut BTreeMap<String, u64>| {
                for r in &s.routes {
                    *m.entry(r.route.to_string()).or_default() += r.open_compressed;
                }
            })
            .into_iter()
            .map(|(route, n)| ([("route", route.into())], ConstGauge::new(n as i64))),
        )?;
        self.encode_deflate(e)?;
        let mut errors: Vec<(&'static str, u64)> = CloseReason::ALL
            .iter()
            .filter(|&&r| r != CloseReason::IdleTimeout)
            .map(|&r| (r.name(), self.closed(r)))
            .collect();
        errors.push(("mailbox_full", self.total(|s| s.mailbox_rejected)));
        family(
            e,
            "websocket_errors",
            "Connections the server closed for a fault (by kind), and hub commands a full shard mailbox refused (mailbox_full)",
            MetricType::Counter,
            errors
                .into_iter()
                .map(|(kind, n)| ([("kind", kind.into())], ConstCounter::new(n))),
        )?;
        family(
            e,
            "websocket_server_closes",
            "Connections the server closed, by reason",
            MetricType::Counter,
            CloseReason::ALL.iter().map(|&r| {
                (
                    [("reason", r.name().into())],
                    ConstCounter::new(self.closed(r)),
                )
            }),
        )?;
        single(
            e,
            "websocket_slow_consumer_closes",
            "Connections closed for taking output too slowly: send queue over its bound (1008) or under the minimum send rate",
            &ConstCounter::new(
                self.closed(CloseReason::SlowConsumer) + self.closed(CloseReason::TooSlow),
            ),
        )?;
        let handshakes = self.sum_by(|s, m: &mut BTreeMap<u16, u64>| {
            for (&status, &n) in &s.handshakes {
                *m.entry(status).or_default() += n;
            }
        });
        family(
            e,
            "websocket_handshakes",
            "Answers to WebSocket upgrade requests, by HTTP status (101: accepted)",
            MetricType::Counter,
            handshakes.iter().map(|(status, &n)| {
                (
                    [("status", status.to_string().into())],
                    ConstCounter::new(n),
                )
            }),
        )?;
        family(
            e,
            "websocket_bytes",
            "Bytes read from (in) and written to (out) WebSocket sockets",
            MetricType::Counter,
            [
                (
                    [("direction", "in".into())],
                    ConstCounter::new(self.total(|s| s.bytes_in)),
                ),
                (
                    [("direction", "out".into())],
                    ConstCounter::new(self.total(|s| s.bytes_out)),
                ),
            ],
        )?;
        let codes = self.sum_by(|s, m: &mut BTreeMap<(u16, &'static str), u64>| {
            for (&code, &n) in &s.close_codes_sent {
                *m.entry((code, "server")).or_default() += n;
            }
            for (&code, &n) in &s.close_codes_received {
                *m.entry((code, "client")).or_default() += n;
            }
        });
        family(
            e,
            "websocket_close_codes",
            "Close codes in close frames the server started (side=server) and the peers started (side=client)",
            MetricType::Counter,
            codes.iter().map(|((code, side), &n)| {
                (
                    [("code", code.to_string().into()), ("side", (*side).into())],
                    ConstCounter::new(n),
                )
            }),
        )?;
        self.encode_durations(e)?;
        self.encode_upgrades(e)?;
        family(
            e,
            "ringgate_shard_connections",
            "Open WebSocket connections, by shard",
            MetricType::Gauge,
            self.shards.iter().map(|s| {
                let open: u64 = s.routes.iter().map(|r| r.open).sum();
                (
                    [("shard", s.shard.to_string().into())],
                    ConstGauge::new(open as i64),
                )
            }),
        )?;
        family(
            e,
            "ringgate_mailbox_rejected",
            "Hub commands a shard's full mailbox refused, by shard",
            MetricType::Counter,
            self.shards.iter().map(|s| {
                (
                    [("shard", s.shard.to_string().into())],
                    ConstCounter::new(s.mailbox_rejected),
                )
            }),
        )?;
        single(
            e,
            "ringgate_handler_timers",
            "Timers route handlers set on their connections and the shards hold now",
            &ConstGauge::new(self.total(|s| s.handler_timers) as i64),
        )?;
        single(
            e,
            "ringgate_http_connections",
            "Plain HTTP connections the control plane holds",
            &ConstGauge::new(self.http_connections),
        )?;
        family(
            e,
            "ringgate_http_refused",
            "Plain HTTP connections answered 503 because their entrance's budget was full: the public port (RINGGATE_HTTP_MAX_CONNECTIONS) or the internal admin address (RINGGATE_ADMIN_MAX_CONNECTIONS)",
            MetricType::Counter,
            self.http_refused
                .map(|(listener, n)| ([("listener", listener.into())], ConstCounter::new(n))),
        )?;
        single(
            e,
            "ringgate_metrics_stale_shards",
            "Shards too busy to answer this scrape within 20 ms: their figures are from their last answer",
            &ConstGauge::new(self.stale_shards),
        )?;
        single(
            e,
            "ringgate_uptime_seconds",
            "Seconds since the server started",
            &ConstGauge::new(self.uptime_s),
        )
    }
}

impl Scrape {
    /// permessage-deflate's work: messages compressed to send (a broadcast
    /// once) and inflated on receipt, and their bytes on each side.
    fn encode_deflate(&self, e: &mut DescriptorEncoder) -> Result<(), FmtError> {
        let d = |f: fn(&DeflateMetrics) -> u64| self.total(|s| f(&s.deflate));
        family(
            e,
            "websocket_deflate_messages",
            "Messages compressed to be sent (op=compress; a broadcast counts once) and compressed messages inflated (op=inflate)",
            MetricType::Counter,
            [
                ([("op", "compress".into())], ConstCounter::new(d(|m| m.compressed))),
                ([("op", "inflate".into())], ConstCounter::new(d(|m| m.inflated))),
            ],
        )?;
        family(
            e,
            "websocket_deflate_bytes",
            "Bytes through permessage-deflate: payload (side=plain) and deflate data (side=compressed), by op",
            MetricType::Counter,
            [
                (
                    [("op", "compress".into()), ("side", "plain".into())],
                    ConstCounter::new(d(|m| m.compress_plain_bytes)),
                ),
                (
                    [("op", "compress".into()), ("side", "compressed".into())],
                    ConstCounter::new(d(|m| m.compress_wire_bytes)),
                ),
                (
                    [("op", "inflate".into()), ("side", "compressed".into())],
                    ConstCounter::new(d(|m| m.inflate_wire_bytes)),
                ),
                (
                    [("op", "inflate".into()), ("side", "plain".into())],
                    ConstCounter::new(d(|m| m.inflate_plain_bytes)),
                ),
            ],
        )
    }

    /// Upgrades whose handler deferred its answer: parked now, and what
    /// became of them.
    fn encode_upgrades(&self, e: &mut DescriptorEncoder) -> Result<(), FmtError> {
        let u = |f: fn(&UpgradeMetrics) -> u64| self.total(|s| f(&s.upgrades));
        single(
            e,
            "ringgate_upgrades_pending",
            "Upgrades parked while their route handler's deferred answer is pending",
            &ConstGauge::new(u(|m| m.pending) as i64),
        )?;
        family(
            e,
            "ringgate_upgrades_deferred",
            "Deferred upgrades by outcome: parked (deferred), answered (accepted, rejected), timed_out, abandoned by the client, or refused for want of room (busy)",
            MetricType::Counter,
            [
                ("deferred", u(|m| m.deferred)),
                ("accepted", u(|m| m.accepted)),
                ("rejected", u(|m| m.rejected)),
                ("timed_out", u(|m| m.timed_out)),
                ("abandoned", u(|m| m.abandoned)),
                ("busy", u(|m| m.busy)),
            ]
            .map(|(outcome, n)| ([("outcome", outcome.into())], ConstCounter::new(n))),
        )
    }

    /// The connection-duration histogram (prometheus-client adds the
    /// buckets up itself, and writes the f64::MAX bound as +Inf).
    fn encode_durations(&self, e: &mut DescriptorEncoder) -> Result<(), FmtError> {
        let mut counts = [0u64; DURATION_BUCKETS.len() + 1];
        for s in &self.shards {
            for (sum, n) in counts.iter_mut().zip(s.duration_buckets) {
                *sum += n;
            }
        }
        let buckets: Vec<(f64, u64)> = DURATION_BUCKETS
            .iter()
            .copied()
            .chain([f64::MAX])
            .zip(counts)
            .collect();
        let sum: f64 = self.shards.iter().map(|s| s.duration_sum_s).sum();
        let count = self.total(|s| s.duration_count);
        let mut metric = e.encode_descriptor(
            "websocket_connection_duration_seconds",
            "How long WebSocket connections lived, counted when they ended",
            None,
            MetricType::Histogram,
        )?;
        metric
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)
    }
}
