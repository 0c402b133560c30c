//! The OCPP-J gateway on `{SERVER_WEBSOCKET_PATH}/{charge_point_id}`: charge points speaking
//! `ocpp1.6` or `ocpp2.0.1` (contract, "OCPP-J"; README, "OCPP"). Sans-IO layers, tested on
//! text: the RPC framing ([`frame`], over a byte scan that bounds each message first),
//! versions and error codes ([`errors`]), payload validation against the official JSON
//! schemas ([`schema`]), who is connecting
//! ([`identity`], [`auth`]), the embedded central system ([`central`]) and what it learns
//! ([`station`]), one charge point's command queue ([`downlink`]). On top: the route's
//! handler, the charge-point table ([`registry`]), commands from the backend ([`commands`]),
//! events for the backend bus ([`events`]), the admin API and `/metrics`. Like every service
//! it uses the library's public API and imports nothing from `engine/`.
//!
//! Where each fact lives: a connection's session and downlink in its identity, on its shard;
//! a charge point's facts and current connection in the registry; counters per shard.

mod admin;
pub mod auth;
pub mod backoff;
pub mod central;
pub mod commands;
pub mod downlink;
pub mod errors;
pub mod events;
mod figures;
pub mod frame;
mod handler;
mod hash_pool;
pub mod identity;
mod metrics;
mod rawjson;
pub mod registry;
pub mod schema;
mod session;
pub mod station;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::OcppConfig;
use crate::server::ServerBuilder;
use auth::{AuthError, BadHash, Passwords};
use backoff::Backoff;
use central::{BootStatus, Policy, TransactionIds};
pub use commands::Gateway;
use errors::Version;
use events::{EventSink, Events, NdjsonFile};
pub use handler::{CLOSE_DELETED, CLOSE_IDLE, CLOSE_REPLACED};
use hash_pool::HashPool;
use registry::Registry;

/// Why the gateway could not be set up; names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum OcppError {
    #[error("invalid OCPP_PASSWORDS: {0}")]
    Password(BadHash),
    #[error("cannot open OCPP_EVENTS_FILE {path:?}: {problem}")]
    EventsFile {
        path: String,
        problem: std::io::Error,
    },
    #[error("cannot start the OCPP event sink: {0}")]
    Sink(std::io::Error),
    #[error("cannot start the OCPP password-hash threads: {0}")]
    HashPool(std::io::Error),
}

impl OcppError {
    /// The setting at fault (its YAML key) and what is wrong with it; `None` when no
    /// setting is at fault.
    pub fn setting(&self) -> Option<(&'static str, String)> {
        match self {
            OcppError::Password(e) => Some(("ocpp.passwords", e.to_string())),
            OcppError::EventsFile { path, problem } => Some((
                "ocpp.events_file",
                format!("cannot open {path:?}: {problem}"),
            )),
            OcppError::Sink(_) | OcppError::HashPool(_) => None,
        }
    }
}

/// Why an upgrade was refused, other than auth (counted for `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    BadId,
    UnknownId,
    NoProtocol,
    Full,
    /// The password-hash queue was full.
    AuthBusy,
}

impl Refusal {
    const ALL: [Refusal; 5] = [
        Refusal::BadId,
        Refusal::UnknownId,
        Refusal::NoProtocol,
        Refusal::Full,
        Refusal::AuthBusy,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::BadId => "invalid_charge_point_id",
            Refusal::UnknownId => "unknown_charge_point",
            Refusal::NoProtocol => "no_supported_subprotocol",
            Refusal::Full => "charge_point_table_full",
            Refusal::AuthBusy => "auth_busy",
        }
    }
}

/// What every shard, the admin API and library callers share.
pub(crate) struct Service {
    cfg: OcppConfig,
    /// The versions served, in the server's order of preference.
    versions: Vec<Version>,
    policy: Policy,
    tx_ids: TransactionIds,
    passwords: Passwords,
    /// Where Basic auth's argon2 checks run, off the shards.
    hash_pool: HashPool,
    /// Wrong passwords per id and address, and who is shut out for them.
    backoff: Backoff,
    allowed: HashSet<String>,
    registry: Registry,
    events: Events,
    /// Downlink commands queued or outstanding, all charge points.
    pending: Arc<AtomicI64>,
    refusals: [AtomicU64; Refusal::ALL.len()],
    auth_failures: [AtomicU64; AuthError::ALL.len()],
}

impl Service {
    fn new(cfg: &OcppConfig, events: Events) -> Result<Service, OcppError> {
        let versions = cfg
            .protocols
            .iter()
            .filter_map(|p| Version::from_subprotocol(p))
            .collect();
        let policy = Policy {
            // Checked by `Config::validate`.
            boot_status: BootStatus::parse(&cfg.boot_status).unwrap_or(BootStatus::Accepted),
            heartbeat_interval: cfg.heartbeat_interval,
            id_tags: cfg.id_tags.iter().cloned().collect(),
        };
        Ok(Service {
            cfg: cfg.clone(),
            versions,
            policy,
            tx_ids: TransactionIds::new(),
            passwords: Passwords::new(&cfg.passwords, cfg.auth_required)
                .map_err(OcppError::Password)?,
            hash_pool: HashPool::start(cfg.auth_threads, cfg.auth_queue)
                .map_err(OcppError::HashPool)?,
            backoff: Backoff::default(),
            allowed: cfg.allowed_ids.iter().cloned().collect(),
            registry: Registry::new(cfg.max_charge_points),
            events,
            pending: Arc::default(),
            refusals: Default::default(),
            auth_failures: Default::default(),
        })
    }

    fn count_refusal(&self, refusal: Refusal) {
        self.refusals[refusal as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn count_auth_failure(&self, error: AuthError) {
        if let Some(i) = AuthError::ALL.iter().position(|&e| e == error) {
            self.auth_failures[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Adds the gateway to `builder` when `ocpp.enabled`: the WebSocket route, the admin routes
/// and the `/metrics` figures. Events go to `sink` when given, else to `OCPP_EVENTS_FILE`
/// when set, else nowhere. Returns the [`Gateway`] handle for commands from code.
pub fn install(
    builder: ServerBuilder,
    sink: Option<Box<dyn EventSink>>,
) -> Result<(ServerBuilder, Option<Gateway>), OcppError> {
    let cfg = builder.config().ocpp.clone();
    if !cfg.enabled {
        return Ok((builder, None));
    }
    let sink = match sink {
        Some(sink) => Some(sink),
        None if cfg.events_file.is_empty() => None,
        None => {
            let file = NdjsonFile::open(Path::new(&cfg.events_file)).map_err(|problem| {
                OcppError::EventsFile {
                    path: cfg.events_file.clone(),
                    problem,
                }
            })?;
            Some(Box::new(file) as Box<dyn EventSink>)
        }
    };
    let events = match sink {
        Some(sink) => Events::start(sink, cfg.event_buffer, cfg.event_buffer_bytes)
            .map_err(OcppError::Sink)?,
        None => Events::disabled(),
    };
    let compression = builder.config().deflate_mode(cfg.compression);
    let service = Arc::new(Service::new(&cfg, events)?);
    let gateway = Gateway {
        service: service.clone(),
    };
    let route = format!("{}/*", cfg.path);
    let builder = builder.websocket(
        &route,
        handler::Ocpp {
            service: service.clone(),
            compression,
        },
    );
    let builder = admin::routes(builder, &cfg.path, &gateway);
    Ok((builder.metrics(metrics::source(service)), Some(gateway)))
}
