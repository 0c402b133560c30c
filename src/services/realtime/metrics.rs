//! The realtime figures on `/metrics` (contract names): rooms, members,
//! online users, messages by type, rate-limited messages, auth failures by
//! reason, and refused upgrades by reason. Gathered on each scrape from
//! every shard's counters and presence through the hub.

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
use super::envelope::Kind;
use super::figures::ShardFigures;
use super::presence::Presence;
use super::{Refusal, Service};

/// The `/metrics` source of the service.
pub(super) fn source(service: Arc<Service>) -> MetricsSource {
    let latest: Arc<Latest<(ShardFigures, usize)>> = Arc::default();
    Arc::new(move |hub: Hub| {
        let (service, latest) = (service.clone(), latest.clone());
        Box::pin(async move {
            let shards = latest
                .gather(&hub, FIGURES_WAIT, |shard| {
                    let figures = shard.local::<ShardFigures>().clone();
                    (figures, shard.local::<Presence>().count())
                })
                .await
                .map(|gathered| gathered.answers)
                .unwrap_or_default();
            let mut figures = ShardFigures::default();
            let mut online = 0;
            for (shard, users) in &shards {
                figures.add(shard);
                online += users;
            }
            Box::new(Scrape {
                service,
                figures,
                online,
            }) as Box<dyn Collector>
        })
    })
}

#[derive(Debug)]
struct Scrape {
    service: Arc<Service>,
    figures: ShardFigures,
    online: usize,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), FmtError> {
        let e = &mut encoder;
        let service = &self.service;
        let rooms = service.rooms.list();
        single(
            e,
            "realtime_rooms",
            "Rooms that exist",
            &ConstGauge::new(rooms.len() as i64),
        )?;
        family(
            e,
            "realtime_room_members",
            "Users in each room (a user with several connections counts once)",
            MetricType::Gauge,
            rooms.iter().map(|r| {
                (
                    [("room", r.id.to_string().into())],
                    ConstGauge::new(r.users() as i64),
                )
            }),
        )?;
        family(
            e,
            "realtime_room_connections",
            "Connections in each room",
            MetricType::Gauge,
            rooms.iter().map(|r| {
                (
                    [("room", r.id.to_string().into())],
                    ConstGauge::new(r.connections() as i64),
                )
            }),
        )?;
        single(
            e,
            "realtime_online_users",
            "Users with at least one open realtime connection",
            &ConstGauge::new(self.online as i64),
        )?;
        single(
            e,
            "realtime_connections",
            "Open realtime connections",
            &ConstGauge::new(self.figures.sessions as i64),
        )?;
        family(
            e,
            "realtime_messages",
            "Messages accepted, from clients and the admin API, by type",
            MetricType::Counter,
            Kind::ALL.iter().map(|&k| {
                let api = service.api_messages[k as usize].load(Ordering::Relaxed);
                let n = self.figures.messages[k as usize] + api;
                ([("type", k.as_str().into())], ConstCounter::new(n))
            }),
        )?;
        single(
            e,
            "realtime_rate_limited",
            "Client messages refused by the rate limit",
            &ConstCounter::new(self.figures.rate_limited),
        )?;
        single(
            e,
            "realtime_errors",
            "error replies sent to clients",
            &ConstCounter::new(self.figures.errors),
        )?;
        single(
            e,
            "realtime_unsent_dropped",
            "Presence reports and server messages dropped: a full mailbox refused them and the retry queue was full too",
            &ConstCounter::new(self.figures.unsent_dropped),
        )?;
        family(
            e,
            "realtime_auth_failures",
            "Upgrades refused for their token, by reason",
            MetricType::Counter,
            AuthError::ALL_REASONS
                .iter()
                .enumerate()
                .map(|(i, &reason)| {
                    let n = service.auth_failures[i].load(Ordering::Relaxed);
                    ([("reason", reason.into())], ConstCounter::new(n))
                }),
        )?;
        family(
            e,
            "realtime_upgrades_refused",
            "Upgrades refused for their address, origin or room, by reason",
            MetricType::Counter,
            Refusal::ALL.iter().map(|&r| {
                let n = service.refusals[r as usize].load(Ordering::Relaxed);
                ([("reason", r.label().into())], ConstCounter::new(n))
            }),
        )
    }
}
