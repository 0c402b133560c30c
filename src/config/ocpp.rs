//! The OCPP gateway's settings (`ocpp` in YAML): the route, the versions, the embedded central
//! system's answers, charge-point authentication, downlink commands and the event sink. Only
//! the struct and its defaults; the loader, the variables and the checks are the parent's.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::values::{from_kind, list, passwords, Bytes, Compress, Dur};
use super::Compression;

/// The OCPP-J gateway on `{path}/{charge_point_id}` (README, "OCPP").
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OcppConfig {
    pub enabled: bool,
    /// Path prefix; the charge-point id is the segment after it.
    pub path: String,
    /// Subprotocols served, in the server's order of preference.
    #[serde(deserialize_with = "list")]
    pub protocols: Vec<String>,
    /// `interval` in BootNotification answers: how often charge points send Heartbeat.
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub heartbeat_interval: Duration,
    /// What BootNotification answers: `accepted`, `pending` or `rejected`.
    pub boot_status: String,
    /// Charge-point ids allowed to connect; empty = any (unknown: 404).
    #[serde(deserialize_with = "list")]
    pub allowed_ids: Vec<String>,
    /// Refuse charge points without a password entry (401).
    pub auth_required: bool,
    /// Charge-point id → PHC password hash (argon2), for HTTP Basic auth.
    #[serde(deserialize_with = "passwords")]
    pub passwords: BTreeMap<String, String>,
    /// Threads that run the argon2 checks of Basic auth, off the shards.
    pub auth_threads: usize,
    /// Password checks waiting for those threads (more: 503).
    pub auth_queue: usize,
    /// Id tags Authorize / StartTransaction accept; empty = every tag.
    #[serde(deserialize_with = "list")]
    pub id_tags: Vec<String>,
    /// How long a downlink command waits for its answer unless it says (`timeout_ms`).
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub call_timeout: Duration,
    /// Commands waiting behind the outstanding one, per charge point (more: 429).
    pub max_queued_commands: usize,
    /// Close a charge point (4001) that sent no message this long; 0 = off.
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub idle_timeout: Duration,
    /// Largest OCPP message (larger: close 1009).
    #[serde(deserialize_with = "from_kind::<Bytes, _, _>")]
    pub max_message_size: usize,
    /// Most array elements and object members one message holds, all levels together (more:
    /// a CALLERROR before it is parsed).
    pub max_message_items: usize,
    /// Charge points remembered, connected or not; past it a new one takes the place of a
    /// disconnected one (never booted first, then the longest gone), else 503.
    pub max_charge_points: usize,
    /// Append every event to this NDJSON file; empty = no file.
    pub events_file: String,
    /// Events queued for the sink; past it they are dropped and counted.
    pub event_buffer: usize,
    /// Bytes the queued events may hold; past it they are dropped and counted.
    #[serde(deserialize_with = "from_kind::<Bytes, _, _>")]
    pub event_buffer_bytes: usize,
    /// permessage-deflate on the OCPP route.
    #[serde(deserialize_with = "from_kind::<Compress, _, _>")]
    pub compression: Compression,
}

impl Default for OcppConfig {
    fn default() -> Self {
        OcppConfig {
            enabled: true,
            path: "/ocpp".to_owned(),
            protocols: vec!["ocpp1.6".to_owned(), "ocpp2.0.1".to_owned()],
            heartbeat_interval: Duration::from_secs(300),
            boot_status: "accepted".to_owned(),
            allowed_ids: Vec::new(),
            auth_required: false,
            passwords: BTreeMap::new(),
            auth_threads: 1,
            auth_queue: 1024,
            id_tags: Vec::new(),
            call_timeout: Duration::from_secs(30),
            max_queued_commands: 16,
            idle_timeout: Duration::ZERO,
            max_message_size: 1 << 20,
            max_message_items: 10_000,
            max_charge_points: 200_000,
            events_file: String::new(),
            event_buffer: 65_536,
            event_buffer_bytes: 64 << 20,
            compression: Compression::Default,
        }
    }
}
