//! The realtime service on `/ws` and `/ws/connect`: JWT users, rooms across
//! shards, room / private / broadcast messages, presence, limits and its
//! admin API (README, "Realtime"). Built only on the library's public API:
//! a [`crate::Handler`], hub channels (one per room, one for
//! everyone), shard-local state and admin HTTP routes.
//!
//! Where each fact lives: a connection's user and rooms in its `Session`;
//! a user's presence on the user's home shard ([`presence`]); the room table
//! behind a lock read on joins and admin calls only; counters per shard;
//! what a full mailbox refused, on the shard that could not post it
//! (`unsent`), until the `janitor` thread calls that shard back.

pub mod access;
mod admin;
pub mod auth;
mod delivery;
pub mod envelope;
mod figures;
mod handler;
mod janitor;
#[cfg(test)]
mod live_tests;
mod membership;
mod metrics;
pub mod presence;
pub mod rate;
pub mod rooms;
mod session;
mod unsent;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::RealtimeConfig;
use crate::server::ServerBuilder;
use access::{AccessError, IpAllowlist, OriginPolicy};
use auth::{AuthError, Verifier};
use envelope::Kind;
use rooms::{RoomError, RoomTable};

/// The WebSocket routes of the service.
pub const ROUTES: [&str; 2] = ["/ws", "/ws/connect"];

/// Why the service could not be set up; names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum RealtimeError {
    #[error("invalid WS_ALLOWED_ORIGINS: {0}")]
    Origins(AccessError),
    #[error("invalid WS_IP_ALLOWLIST: {0}")]
    Allowlist(AccessError),
    #[error("invalid WS_DEFAULT_ROOMS entry {room:?}: {source}")]
    DefaultRoom { room: String, source: RoomError },
    #[error("cannot start the realtime-janitor thread: {0}")]
    Janitor(std::io::Error),
}

impl RealtimeError {
    /// The setting at fault (its YAML key) and what is wrong with it; `None` when no
    /// setting is at fault.
    pub fn setting(&self) -> Option<(&'static str, String)> {
        match self {
            RealtimeError::Origins(e) => Some(("realtime.allowed_origins", e.to_string())),
            RealtimeError::Allowlist(e) => Some(("realtime.ip_allowlist", e.to_string())),
            RealtimeError::DefaultRoom { room, source } => {
                Some(("realtime.default_rooms", format!("room {room:?}: {source}")))
            }
            RealtimeError::Janitor(_) => None,
        }
    }
}

/// Why an upgrade was refused, other than a token (counted for `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Origin,
    Address,
    /// An allowlist is set and the peer's address cannot be learnt (the
    /// socket was reset before the request was read): refused, never let by.
    AddressUnknown,
    RoomNotFound,
}

impl Refusal {
    const ALL: [Refusal; 4] = [
        Refusal::Origin,
        Refusal::Address,
        Refusal::AddressUnknown,
        Refusal::RoomNotFound,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::Origin => "origin_not_allowed",
            Refusal::Address => "ip_not_allowed",
            Refusal::AddressUnknown => "peer_address_unknown",
            Refusal::RoomNotFound => "room_not_found",
        }
    }
}

/// What every shard and the admin API share: settings, checks, rooms and
/// the counters of refused upgrades (rare, so shared atomics do).
pub(crate) struct Service {
    cfg: RealtimeConfig,
    verifier: Option<Verifier>,
    /// `None`: the origin check is off.
    origins: Option<OriginPolicy>,
    allowlist: IpAllowlist,
    rooms: RoomTable,
    /// The background thread: calls shards back, reclaims empty rooms.
    janitor: janitor::Janitor,
    auth_failures: [AtomicU64; AuthError::ALL_REASONS.len()],
    refusals: [AtomicU64; Refusal::ALL.len()],
    /// Messages the admin API sent, by type.
    api_messages: [AtomicU64; figures::KINDS],
}

impl Service {
    fn new(cfg: &RealtimeConfig) -> Result<Service, RealtimeError> {
        let origins = if cfg.enable_origin_check {
            Some(OriginPolicy::new(&cfg.allowed_origins).map_err(RealtimeError::Origins)?)
        } else {
            None
        };
        let allowlist = IpAllowlist::new(&cfg.ip_allowlist).map_err(RealtimeError::Allowlist)?;
        let rooms = RoomTable::new(cfg.max_rooms, cfg.admin_room_reserve);
        for room in &cfg.default_rooms {
            rooms
                .create(room, &title_case(room), "")
                .map_err(|source| RealtimeError::DefaultRoom {
                    room: room.clone(),
                    source,
                })?;
        }
        let verifier = match cfg.jwt_secret.0.as_str() {
            "" => None,
            secret => Some(Verifier::new(secret.as_bytes(), cfg.jwt_leeway)),
        };
        Ok(Service {
            cfg: cfg.clone(),
            verifier,
            origins,
            allowlist,
            rooms,
            janitor: janitor::Janitor::default(),
            auth_failures: Default::default(),
            refusals: Default::default(),
            api_messages: Default::default(),
        })
    }

    fn count_auth_failure(&self, error: &AuthError) {
        if let Some(i) = AuthError::ALL_REASONS
            .iter()
            .position(|&r| r == error.reason())
        {
            self.auth_failures[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count_refusal(&self, refusal: Refusal) {
        self.refusals[refusal as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn count_api_message(&self, kind: Kind) {
        self.api_messages[kind as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// `general` → `General`: a default room's display name.
fn title_case(id: &str) -> String {
    let mut chars = id.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Adds the service to `builder` when `realtime.enabled`: the WebSocket
/// routes, the admin routes and the `/metrics` figures. Logs one warning
/// when no JWT secret is set (anonymous users).
pub fn install(builder: ServerBuilder) -> Result<ServerBuilder, RealtimeError> {
    let cfg = &builder.config().realtime;
    if !cfg.enabled {
        return Ok(builder);
    }
    let service = Arc::new(Service::new(cfg)?);
    if service.verifier.is_none() {
        tracing::warn!("JWT_SECRET is not set: /ws accepts anonymous users with generated ids");
    }
    if cfg.auto_create_rooms
        && cfg.max_rooms.saturating_sub(cfg.admin_room_reserve) <= cfg.default_rooms.len()
    {
        tracing::warn!(
            "WS_AUTO_CREATE_ROOMS is on, but WS_MAX_ROOMS ({}) less WS_ADMIN_ROOM_RESERVE ({}) \
             leaves joins no room to create",
            cfg.max_rooms,
            cfg.admin_room_reserve
        );
    }
    janitor::start(&service).map_err(RealtimeError::Janitor)?;
    Ok(attach(builder, service))
}

/// Adds the routes and figures of `service` to `builder`.
fn attach(builder: ServerBuilder, service: Arc<Service>) -> ServerBuilder {
    let compression = builder.config().deflate_mode(service.cfg.compression);
    let mut builder = builder;
    for route in ROUTES {
        builder = builder.websocket(
            route,
            handler::Realtime::new(service.clone(), route, compression),
        );
    }
    let builder = admin::routes(builder, &service);
    builder.metrics(metrics::source(service))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_rooms_get_a_display_name_and_bad_settings_name_themselves() {
        let service = Service::new(&RealtimeConfig::default()).unwrap();
        assert_eq!(service.rooms.get("general").unwrap().name, "General");
        let cfg = RealtimeConfig {
            enable_origin_check: true,
            allowed_origins: vec!["not an origin".into()],
            ..RealtimeConfig::default()
        };
        let err = Service::new(&cfg).err().unwrap().to_string();
        assert!(err.starts_with("invalid WS_ALLOWED_ORIGINS"), "{err}");
        let cfg = RealtimeConfig {
            ip_allowlist: vec!["10.0.0.0/33".into()],
            ..RealtimeConfig::default()
        };
        let err = Service::new(&cfg).err().unwrap().to_string();
        assert!(err.starts_with("invalid WS_IP_ALLOWLIST"), "{err}");
        let cfg = RealtimeConfig {
            default_rooms: vec!["a b".into()],
            ..RealtimeConfig::default()
        };
        let err = Service::new(&cfg).err().unwrap().to_string();
        assert!(err.contains("WS_DEFAULT_ROOMS"), "{err}");
    }
}
