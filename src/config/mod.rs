//! Configuration: built-in defaults, then a YAML file, then environment variables, then flags.
//! Owns the config structs, their defaults, `ConfigError` and `Config::load`/`validate`; it never
//! reads the process environment, parses value text (`values`) or names a variable (`settings`).

mod cli;
mod names;
mod ocpp;
mod settings;
mod source;
mod values;
mod yaml;

pub use cli::Cli;
pub use names::{unknown_variables, Nearest, UnknownVariable};
pub use ocpp::OcppConfig;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;
use serde::Deserialize;

use crate::hub::ConnId;
use crate::protocol::deflate::DeflateMode;
use settings::{Setting, SETTINGS};
use source::{Source, Sources};
use values::{check_log_level, from_kind, list, Bytes, Compress, Dur};

/// Which I/O driver the shards run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum IoMode {
    /// io_uring when the kernel allows it, otherwise epoll
    #[default]
    Auto,
    /// io_uring only; fail to start without it
    Uring,
    /// epoll only
    Epoll,
}

/// How a route compresses (permessage-deflate, RFC 7692).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Follow `websocket.enable_compression` and `websocket.compression_mode`
    #[default]
    Default,
    /// Never compress
    Off,
    /// Codecs per shard: no context takeover either way; no memory per connection
    Shared,
    /// Codecs per connection, with context takeover: better ratios, more memory
    Dedicated,
}

/// Everything the server reads at start. The YAML layout mirrors these fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub websocket: WebSocketConfig,
    pub echo: EchoConfig,
    pub http: HttpConfig,
    pub admin: AdminConfig,
    pub realtime: RealtimeConfig,
    pub ocpp: OcppConfig,
    /// A `tracing` filter: a level (`info`) or directives (`info,ringgate=debug`).
    pub log_level: String,
    /// Log lines the binary holds while stderr is slow; past it lines are dropped and
    /// counted (`ringgate_log_lines_dropped_total`), so logging never stalls a shard.
    pub log_buffer: usize,
    /// Where each setting was set, for errors; filled by `load` and `Cli::apply`.
    #[serde(skip)]
    sources: Sources,
}

/// The listener, the shards and the per-connection clocks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    /// 0 picks an ephemeral port.
    pub port: u16,
    /// 0 = one shard per CPU in the process's affinity mask.
    pub shards: usize,
    pub io: IoMode,
    /// Open connections across the whole server.
    pub max_connections: usize,
    pub backlog: u32,
    /// Accept a connection only once its first bytes arrive (TCP_DEFER_ACCEPT).
    pub defer_accept: bool,
    /// Time allowed to receive the whole HTTP request head (slowloris guard).
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub read_timeout: Duration,
    /// A connection whose queued output makes no progress this long is closed.
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub write_timeout: Duration,
    /// Close a connection that sent nothing this long; zero = off.
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub idle_timeout: Duration,
    /// On SIGTERM, how long to wait for close handshakes.
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub drain_timeout: Duration,
    /// A longer request head is answered 431.
    pub max_header_bytes: usize,
    /// io_uring only: accept sockets into each shard's registered file table
    /// instead of the process's, so they do not count against RLIMIT_NOFILE.
    pub direct_descriptors: bool,
    /// Sockets taken past `max_connections` for plain HTTP only, so `/health`
    /// and the admin routes answer when the server is full.
    pub admin_reserve: usize,
    /// Hub commands one shard's mailbox holds before it refuses more.
    pub mailbox_commands: usize,
    /// Bytes (frames, what posted closures hold) one shard's mailbox holds
    /// before it refuses more.
    #[serde(deserialize_with = "from_kind::<Bytes, _, _>")]
    pub mailbox_bytes: usize,
    /// Upgrades one shard parks while their handler's answer is pending
    /// (`UpgradeRequest::defer`); more are refused with 503.
    pub max_pending_upgrades: usize,
    /// How long a parked upgrade waits for its answer (then 503).
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub upgrade_timeout: Duration,
}

/// Limits and liveness checks of the WebSocket protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Largest message after reassembly, in bytes.
    #[serde(deserialize_with = "from_kind::<Bytes, _, _>")]
    pub max_message_size: usize,
    /// Most frames one message may arrive in.
    pub max_fragments: usize,
    /// How often the server pings; zero = no server pings.
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub ping_period: Duration,
    /// After a ping, a peer that sends nothing within this is closed.
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub pong_wait: Duration,
    /// Bytes queued for one connection; a slower consumer is closed with 1008.
    #[serde(deserialize_with = "from_kind::<Bytes, _, _>")]
    pub max_send_queue: usize,
    /// While output waits, each `server.write_timeout` window must see this
    /// many bytes a second written (or all that waited), else the peer is dropped.
    #[serde(deserialize_with = "from_kind::<Bytes, _, _>")]
    pub min_send_rate: usize,
    /// Offer permessage-deflate on every route that has no mode of its own.
    pub enable_compression: bool,
    /// The mode those routes use: `shared` or `dedicated`.
    #[serde(deserialize_with = "from_kind::<Compress, _, _>")]
    pub compression_mode: Compression,
    /// Dedicated mode: the largest LZ77 window, both ways (9-15).
    pub compression_window_bits: usize,
    /// Messages smaller than this are sent uncompressed.
    #[serde(deserialize_with = "from_kind::<Bytes, _, _>")]
    pub compression_threshold: usize,
    /// zlib level, 0-9 (1: fastest that still compresses well).
    pub compression_level: usize,
}

/// Plain HTTP on the port (the control plane): bodies, keep-alive, limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest request body; a longer one is answered 413.
    #[serde(deserialize_with = "from_kind::<Bytes, _, _>")]
    pub max_body: usize,
    /// A kept-alive connection must start its next request within this,
    /// and send its whole head within it.
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub idle_timeout: Duration,
    /// Longest wait for the next piece of a request body.
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub body_timeout: Duration,
    /// Requests one connection may make; the last answer closes it.
    pub max_requests: usize,
    /// Plain-HTTP connections held at once; more are answered 503.
    pub max_connections: usize,
    /// Run the control plane's thread at real-time priority (SCHED_RR 1) when the process
    /// may, so health and metrics answer while the shards saturate every core.
    pub realtime_priority: bool,
}

/// Who may use the admin routes, and where else they are served.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token the admin routes require; empty = loopback peers only.
    pub token: Secret,
    /// A second address (e.g. `127.0.0.1:9090`) serving the admin routes,
    /// `/metrics` and health; empty = none.
    pub listen: String,
    /// Connections the internal address holds at once, apart from the
    /// public port's `http.max_connections`; more are answered 503.
    pub max_connections: usize,
    /// Host names a tokenless admin request may be addressed to, besides
    /// loopback names and the listen addresses (`Host` and `Origin` checks).
    #[serde(deserialize_with = "list")]
    pub hosts: Vec<String>,
    /// Largest `/metrics` answer: metric families that would pass it are
    /// left out whole (and counted), so a scrape is never cut mid-line.
    #[serde(deserialize_with = "from_kind::<Bytes, _, _>")]
    pub metrics_max_bytes: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            token: Secret::default(),
            listen: String::new(),
            max_connections: 64,
            hosts: Vec::new(),
            metrics_max_bytes: 8 << 20,
        }
    }
}

/// A value never shown in logs, `Debug` output or `--help`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "(set)" })
    }
}

/// The realtime service on `/ws` and `/ws/connect` (README, "Realtime").
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    pub enabled: bool,
    /// HS256 secret the tokens are signed with; empty = anonymous users.
    pub jwt_secret: Secret,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub jwt_leeway: Duration,
    /// Close a connection (1008) when its token expires; otherwise a token
    /// is checked at the upgrade only.
    pub close_on_token_expiry: bool,
    /// Largest message on the realtime routes (larger: close 1009).
    #[serde(deserialize_with = "from_kind::<Bytes, _, _>")]
    pub max_message_size: usize,
    /// permessage-deflate on the realtime routes.
    #[serde(deserialize_with = "from_kind::<Compress, _, _>")]
    pub compression: Compression,
    /// Messages a connection may send a minute, on average; 0 = no limit.
    pub rate_limit_per_minute: u32,
    /// Messages a connection may send at once; 0 = a tenth of the minute's.
    pub rate_limit_burst: u32,
    /// Refused messages in a row after which the connection is closed (1008).
    pub rate_limit_close_after: u32,
    /// Refuse upgrades whose `Origin` is not in `allowed_origins` (403).
    pub enable_origin_check: bool,
    /// Exact origins, `*.example.com` wildcards, or `*`.
    #[serde(deserialize_with = "list")]
    pub allowed_origins: Vec<String>,
    /// Peer addresses allowed to connect (CIDRs or addresses); empty = all.
    #[serde(deserialize_with = "list")]
    pub ip_allowlist: Vec<String>,
    /// Rooms that may exist at once.
    pub max_rooms: usize,
    /// Rooms created at start.
    #[serde(deserialize_with = "list")]
    pub default_rooms: Vec<String>,
    /// Rooms one connection may be in at once.
    pub max_rooms_per_user: usize,
    /// A `join` of a room that does not exist creates it (up to `max_rooms`
    /// less `admin_room_reserve`).
    pub auto_create_rooms: bool,
    /// Rooms of `max_rooms` that joins may not create: the admin API's.
    pub admin_room_reserve: usize,
    /// A room a join created goes once empty this long.
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub auto_room_grace: Duration,
    /// Announce `user_joined` / `user_left` to room members.
    pub presence: bool,
    /// Rooms with more users than this stop announcing joins and leaves.
    pub presence_max_members: usize,
    /// `POST /ws/cleanup` closes connections silent for this long.
    #[serde(deserialize_with = "from_kind::<Dur, _, _>")]
    pub cleanup_idle: Duration,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        RealtimeConfig {
            enabled: true,
            jwt_secret: Secret::default(),
            jwt_leeway: Duration::from_secs(30),
            close_on_token_expiry: false,
            max_message_size: 512 << 10,
            compression: Compression::Default,
            rate_limit_per_minute: 1000,
            rate_limit_burst: 0,
            rate_limit_close_after: 100,
            enable_origin_check: false,
            allowed_origins: Vec::new(),
            ip_allowlist: Vec::new(),
            max_rooms: 100,
            default_rooms: vec!["general".to_owned()],
            max_rooms_per_user: 50,
            auto_create_rooms: false,
            admin_room_reserve: 10,
            auto_room_grace: Duration::from_secs(30),
            presence: true,
            presence_max_members: 1000,
            cleanup_idle: Duration::from_secs(300),
        }
    }
}

/// The `/echo` route used by Autobahn and the benchmarks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EchoConfig {
    pub enabled: bool,
    pub path: String,
    #[serde(deserialize_with = "from_kind::<Compress, _, _>")]
    pub compression: Compression,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            websocket: WebSocketConfig::default(),
            echo: EchoConfig::default(),
            http: HttpConfig::default(),
            admin: AdminConfig::default(),
            realtime: RealtimeConfig::default(),
            ocpp: OcppConfig::default(),
            log_level: "info".to_owned(),
            log_buffer: 8192,
            sources: Sources::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "0.0.0.0".to_owned(),
            port: 8080,
            shards: 0,
            io: IoMode::Auto,
            max_connections: 100_000,
            backlog: 4096,
            defer_accept: true,
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            idle_timeout: Duration::ZERO,
            drain_timeout: Duration::from_secs(10),
            max_header_bytes: 8192,
            direct_descriptors: false,
            admin_reserve: 16,
            mailbox_commands: 65_536,
            mailbox_bytes: 64 << 20,
            max_pending_upgrades: 1024,
            upgrade_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            max_message_size: 16 << 20,
            max_fragments: 262_144,
            ping_period: Duration::from_secs(60),
            pong_wait: Duration::from_secs(10),
            max_send_queue: 32 << 20,
            min_send_rate: 1024,
            enable_compression: false,
            compression_mode: Compression::Shared,
            compression_window_bits: 15,
            compression_threshold: 128,
            compression_level: 1,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body: 1 << 20,
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
            max_requests: 1000,
            max_connections: 1024,
            realtime_priority: true,
        }
    }
}

impl Default for EchoConfig {
    fn default() -> Self {
        EchoConfig {
            enabled: true,
            path: "/echo".to_owned(),
            compression: Compression::Default,
        }
    }
}

/// Why a configuration was refused. Display is one line naming the setting where the user
/// wrote it (the file, line and column with the YAML key; the variable; the flag).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not well-formed YAML.
    #[error("config file {}{}: YAML syntax error: {message}", path.display(), At(*at))]
    Syntax {
        path: PathBuf,
        at: Option<Location>,
        message: String,
    },
    /// A key that is neither a setting nor a section.
    #[error("config file {}{}: unknown key {key}{nearest}", path.display(), At(*at))]
    UnknownKey {
        path: PathBuf,
        at: Option<Location>,
        key: String,
        nearest: Nearest,
    },
    /// A value of the wrong type or form, as the YAML reader words it (key first).
    #[error("config file {}{}: {message}", path.display(), At(*at))]
    Yaml {
        path: PathBuf,
        at: Option<Location>,
        message: String,
    },
    /// `key` names the setting where its value was written: its variable, `KEY in config
    /// file PATH`, the flag, or for a default `KEY (default; VARIABLE)`.
    #[error("invalid value {value:?} for {key}: {message}")]
    Invalid {
        key: String,
        value: String,
        message: String,
    },
    /// A value the code using it refused (see [`Config::setting_error`]); the value is not
    /// repeated, as it may be a secret.
    #[error("{key}: {message}")]
    Refused { key: String, message: String },
    /// `--set NAME=VALUE` with a name no setting has.
    #[error("--set: no setting {name:?}{nearest}; --help lists them")]
    UnknownSetting { name: String, nearest: Nearest },
}

/// A place in the config file, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// `, line L column C`, or nothing.
struct At(Option<Location>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(Location { line, column }) => write!(f, ", line {line} column {column}"),
            None => Ok(()),
        }
    }
}

impl Config {
    /// The permessage-deflate mode of a route whose own setting is `route`.
    pub fn deflate_mode(&self, route: Compression) -> DeflateMode {
        let ws = &self.websocket;
        let route = match route {
            Compression::Default if ws.enable_compression => ws.compression_mode,
            Compression::Default => Compression::Off,
            chosen => chosen,
        };
        match route {
            Compression::Shared => DeflateMode::Shared,
            Compression::Dedicated => DeflateMode::Dedicated {
                window_bits: ws.compression_window_bits.clamp(9, 15) as u8,
            },
            Compression::Default | Compression::Off => DeflateMode::Off,
        }
    }

    /// Defaults, then the YAML file (if any), then environment variables (read through `env`,
    /// so tests pass a map), in that order; then [`Config::validate`]. An empty variable counts
    /// as unset.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut cfg = match file {
            Some(path) => Config::from_yaml_file(path)?,
            None => Config::default(),
        };
        for setting in SETTINGS {
            let Some(raw) = env(setting.var) else {
                continue;
            };
            let value = raw.trim();
            if value.is_empty() {
                continue;
            }
            (setting.set)(&mut cfg, value).map_err(|expected| ConfigError::Invalid {
                key: setting.var.to_owned(),
                value: value.to_owned(),
                message: format!("expected {expected}"),
            })?;
            cfg.sources.record(setting.key, Source::Env);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Cross-field checks, run after every layer is applied.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (server, ws) = (&self.server, &self.websocket);
        let rules = [
            (
                "server.host",
                !server.host.trim().is_empty(),
                "must not be empty",
            ),
            (
                "server.shards",
                server.shards <= ConnId::MAX_SHARDS,
                "must be at most 1024",
            ),
            (
                "server.max_connections",
                server.max_connections >= 1,
                "must be at least 1",
            ),
            (
                "server.mailbox_commands",
                server.mailbox_commands >= 1,
                "must be at least 1",
            ),
            (
                "server.mailbox_bytes",
                server.mailbox_bytes >= 1,
                "must be at least 1",
            ),
            (
                "server.read_timeout",
                !server.read_timeout.is_zero(),
                "must be above 0",
            ),
            (
                "server.write_timeout",
                !server.write_timeout.is_zero(),
                "must be above 0",
            ),
            (
                "server.max_header_bytes",
                server.max_header_bytes >= 512,
                "must be at least 512",
            ),
            (
                "websocket.max_message_size",
                ws.max_message_size >= 1,
                "must be at least 1",
            ),
            (
                "websocket.max_fragments",
                ws.max_fragments >= 1,
                "must be at least 1",
            ),
            (
                "websocket.max_send_queue",
                ws.max_send_queue >= 1024,
                "must be at least 1024",
            ),
            (
                "websocket.pong_wait",
                ws.ping_period.is_zero() || !ws.pong_wait.is_zero(),
                "must be above 0 while websocket.ping_period is not 0",
            ),
            (
                "http.max_requests",
                self.http.max_requests >= 1,
                "must be at least 1",
            ),
            (
                "http.max_connections",
                self.http.max_connections >= 1,
                "must be at least 1",
            ),
            (
                "http.idle_timeout",
                !self.http.idle_timeout.is_zero(),
                "must be above 0",
            ),
            (
                "http.body_timeout",
                !self.http.body_timeout.is_zero(),
                "must be above 0",
            ),
            (
                "admin.listen",
                self.admin.listen.is_empty()
                    || self.admin.listen.parse::<std::net::SocketAddr>().is_ok(),
                "must be an address like 127.0.0.1:9090",
            ),
            (
                "admin.max_connections",
                self.admin.max_connections >= 1,
                "must be at least 1",
            ),
            (
                "admin.metrics_max_bytes",
                self.admin.metrics_max_bytes >= 16 << 10,
                "must be at least 16KiB",
            ),
            (
                "realtime.max_message_size",
                self.realtime.max_message_size >= 1,
                "must be at least 1",
            ),
            (
                "websocket.compression_mode",
                matches!(
                    ws.compression_mode,
                    Compression::Shared | Compression::Dedicated
                ),
                "must be shared or dedicated",
            ),
            (
                "websocket.compression_window_bits",
                (9..=15).contains(&ws.compression_window_bits),
                "must be 9 to 15",
            ),
            (
                "websocket.compression_level",
                ws.compression_level <= 9,
                "must be 0 to 9",
            ),
            (
                "realtime.max_rooms",
                self.realtime.default_rooms.len() <= self.realtime.max_rooms,
                "must be at least the number of default rooms",
            ),
            (
                "realtime.max_rooms_per_user",
                self.realtime.max_rooms_per_user >= 1,
                "must be at least 1",
            ),
            (
                "ocpp.path",
                !self.ocpp.enabled
                    || (self.ocpp.path.starts_with('/') && !self.ocpp.path[1..].contains('/'))
                        && self.ocpp.path.len() > 1,
                "must be one path segment like /ocpp",
            ),
            (
                "ocpp.protocols",
                !self.ocpp.protocols.is_empty()
                    && self
                        .ocpp
                        .protocols
                        .iter()
                        .all(|p| p == "ocpp1.6" || p == "ocpp2.0.1"),
                "must list ocpp1.6 and/or ocpp2.0.1",
            ),
            (
                "ocpp.boot_status",
                ["accepted", "pending", "rejected"]
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(&self.ocpp.boot_status)),
                "must be accepted, pending or rejected",
            ),
            (
                "ocpp.heartbeat_interval",
                self.ocpp.heartbeat_interval >= Duration::from_secs(1),
                "must be at least 1s",
            ),
            (
                "ocpp.call_timeout",
                !self.ocpp.call_timeout.is_zero(),
                "must be above 0",
            ),
            (
                "ocpp.max_message_size",
                self.ocpp.max_message_size >= 1024,
                "must be at least 1024",
            ),
            (
                "ocpp.max_charge_points",
                self.ocpp.max_charge_points >= 1,
                "must be at least 1",
            ),
            (
                "ocpp.event_buffer",
                self.ocpp.event_buffer >= 1,
                "must be at least 1",
            ),
            (
                "ocpp.auth_threads",
                self.ocpp.auth_threads >= 1,
                "must be at least 1",
            ),
            (
                "ocpp.auth_queue",
                self.ocpp.auth_queue >= 1,
                "must be at least 1",
            ),
            (
                "ocpp.event_buffer_bytes",
                self.ocpp.event_buffer_bytes >= self.ocpp.max_message_size,
                "must be at least ocpp.max_message_size, or the largest messages' events are always dropped",
            ),
            (
                "ocpp.max_message_items",
                self.ocpp.max_message_items >= 16,
                "must be at least 16 (a CALL's own elements are 4)",
            ),
            (
                "echo.path",
                !self.echo.enabled || self.echo.path.starts_with('/'),
                "must start with /",
            ),
            ("log_buffer", self.log_buffer >= 1, "must be at least 1"),
        ];
        if let Some(&(key, _, message)) = rules.iter().find(|rule| !rule.1) {
            return Err(self.invalid(key, message.to_owned()));
        }
        check_log_level(&self.log_level).map_err(|message| self.invalid("log_level", message))
    }

    fn from_yaml_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        yaml::read(path, &text)
    }

    /// An error about the setting with YAML key `key` found by code that uses the config
    /// rather than by [`Config::validate`] (a service checking its entries at install, say):
    /// it names the setting where its value was written, like every other config error.
    pub fn setting_error(&self, key: &str, message: impl fmt::Display) -> ConfigError {
        let key = match SETTINGS.iter().find(|s| s.key == key) {
            Some(setting) => self.sources.describe(setting),
            None => key.to_owned(),
        };
        ConfigError::Refused {
            key,
            message: message.to_string(),
        }
    }

    fn invalid(&self, key: &str, message: String) -> ConfigError {
        let setting = setting(key);
        ConfigError::Invalid {
            key: self.sources.describe(setting),
            value: (setting.show)(self),
            message,
        }
    }
}

/// The row of a YAML key the code names.
fn setting(key: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|s| s.key == key)
        .expect("every key the code names is in SETTINGS")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(super) fn load_with(
        yaml: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let lookup = |k: &str| env.get(k).cloned();
        static NEXT_FILE: AtomicUsize = AtomicUsize::new(0);
        let file = yaml.map(|text| {
            let path = std::env::temp_dir().join(format!(
                "ringgate-config-test-{}-{}.yaml",
                std::process::id(),
                NEXT_FILE.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, text).unwrap();
            path
        });
        let result = Config::load(file.as_deref(), &lookup);
        if let Some(path) = file {
            std::fs::remove_file(path).unwrap();
        }
        result
    }

    fn error_line(yaml: Option<&str>, env: &[(&str, &str)]) -> String {
        let line = load_with(yaml, env).unwrap_err().to_string();
        assert!(!line.contains('\n'), "error spans lines: {line}");
        line
    }

    #[test]
    fn defaults() {
        let cfg = load_with(None, &[]).unwrap();
        assert_eq!(cfg.server.host, "0.0.0.0");
        assert_eq!(cfg.server.port, 8080);
        assert_eq!(cfg.server.shards, 0);
        assert_eq!(cfg.server.io, IoMode::Auto);
        assert_eq!(cfg.server.max_connections, 100_000);
        assert_eq!(cfg.server.backlog, 4096);
        assert_eq!(cfg.server.read_timeout, Duration::from_secs(10));
        assert_eq!(cfg.server.write_timeout, Duration::from_secs(30));
        assert_eq!(cfg.server.idle_timeout, Duration::ZERO);
        assert_eq!(cfg.server.drain_timeout, Duration::from_secs(10));
        assert_eq!(cfg.server.max_header_bytes, 8192);
        assert_eq!(cfg.websocket.max_message_size, 16_777_216);
        assert_eq!(cfg.websocket.max_fragments, 262_144);
        assert_eq!(cfg.websocket.ping_period, Duration::from_secs(60));
        assert_eq!(cfg.websocket.pong_wait, Duration::from_secs(10));
        assert_eq!(cfg.websocket.max_send_queue, 32 << 20);
        assert!(cfg.echo.enabled);
        assert_eq!(cfg.echo.path, "/echo");
        assert_eq!(cfg.log_level, "info");
    }

    #[test]
    fn yaml_overrides_defaults() {
        let yaml = "\
server:
  host: 127.0.0.1
  port: 9000
  io: epoll
  read_timeout: 250ms
  idle_timeout: 0
websocket:
  max_message_size: 512KiB
  max_send_queue: 1048576
  ping_period: 1h30m
echo:
  enabled: false
log_level: debug
";
        let cfg = load_with(Some(yaml), &[]).unwrap();
        assert_eq!(cfg.server.host, "127.0.0.1");
        assert_eq!(cfg.server.port, 9000);
        assert_eq!(cfg.server.io, IoMode::Epoll);
        assert_eq!(cfg.server.read_timeout, Duration::from_millis(250));
        assert_eq!(cfg.server.idle_timeout, Duration::ZERO);
        assert_eq!(
            cfg.server.write_timeout,
            Duration::from_secs(30),
            "untouched keys keep defaults"
        );
        assert_eq!(cfg.websocket.max_message_size, 512 * 1024);
        assert_eq!(cfg.websocket.max_send_queue, 1 << 20);
        assert_eq!(cfg.websocket.ping_period, Duration::from_secs(5400));
        assert!(!cfg.echo.enabled);
        assert_eq!(cfg.log_level, "debug");
    }

    #[test]
    fn empty_yaml_means_defaults() {
        let cfg = load_with(Some("# nothing here\n"), &[]).unwrap();
        assert_eq!(cfg.server.port, 8080);
    }

    #[test]
    fn env_beats_yaml() {
        let yaml = "server:\n  port: 9000\n  host: 127.0.0.1\n";
        let env = [
            ("SERVER_PORT", "9100"),
            ("WS_PING_PERIOD", "5m"),
            ("RINGGATE_ECHO", "off"),
            ("RINGGATE_MAX_MESSAGE_SIZE", "1MB"),
            ("RINGGATE_IO", "URING"),
            ("SERVER_HOST", ""),
        ];
        let cfg = load_with(Some(yaml), &env).unwrap();
        assert_eq!(cfg.server.port, 9100);
        assert_eq!(
            cfg.server.host, "127.0.0.1",
            "an empty variable counts as unset"
        );
        assert_eq!(cfg.websocket.ping_period, Duration::from_secs(300));
        assert_eq!(cfg.websocket.max_message_size, 1_000_000);
        assert_eq!(cfg.server.io, IoMode::Uring);
        assert!(!cfg.echo.enabled);
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        assert_eq!(
            error_line(None, &[("SERVER_PORT", "abc")]),
            r#"invalid value "abc" for SERVER_PORT: expected a port number 0-65535"#
        );
        let line = error_line(None, &[("WS_PING_PERIOD", "xyz")]);
        assert!(
            line.starts_with(r#"invalid value "xyz" for WS_PING_PERIOD: expected a duration"#),
            "{line}"
        );
        let line = error_line(None, &[("LOG_LEVEL", "bad[[")]);
        assert!(
            line.contains("for LOG_LEVEL: not a tracing filter"),
            "{line}"
        );
        let line = error_line(None, &[("LOG_LEVEL", "verbose")]);
        assert!(
            line.contains("LOG_LEVEL") && line.contains("expected trace"),
            "{line}"
        );
        let line = error_line(None, &[("RINGGATE_ECHO", "maybe")]);
        assert!(
            line.contains("RINGGATE_ECHO: expected true or false"),
            "{line}"
        );
    }

    #[test]
    fn bad_yaml_names_the_key_line_and_column() {
        let line = error_line(Some("server:\n  prot: 80\n"), &[]);
        assert!(
            line.ends_with(
                ", line 2 column 3: unknown key server.prot (did you mean server.port?)"
            ),
            "{line}"
        );
        let line = error_line(Some("colour: blue\n"), &[]);
        assert!(line.ends_with(": unknown key colour"), "{line}");
        let line = error_line(Some("server:\n  port: 1\n  prot: 80\n  host: x\n"), &[]);
        assert!(
            line.contains("line 3 column 3: unknown key server.prot"),
            "{line}"
        );
        let line = error_line(Some("websocket:\n  pong_wait: soon\n"), &[]);
        assert!(
            line.contains(", line 2 column 14: websocket.pong_wait: invalid value \"soon\": expected a duration"),
            "{line}"
        );
        let line = error_line(Some("server:\n  port: 70000\n"), &[]);
        assert!(
            line.contains("line 2 column 9: server.port: invalid value"),
            "{line}"
        );
        let line = error_line(Some("server: 5\n"), &[]);
        assert!(line.contains("server: invalid type"), "{line}");
        // A mapping where a leaf's value belongs is no section: its keys are not looked at.
        let line = error_line(Some("server:\n  port:\n    number: 80\n"), &[]);
        assert!(line.contains("server.port: invalid type: map"), "{line}");
    }

    #[test]
    fn yaml_syntax_errors_say_so_and_where() {
        let cases = [
            // Indented too far: a typed reading would call `9000 host` a bad port.
            ("server:\n  port: 9000\n   host: x\n", "line 3 column 8"),
            // Indented too little.
            ("server:\n  port: 9000\n host: x\n", "line 3 column 2"),
            ("server:\n\thost: x\n", "line 2 column 1"),
            ("server: [1, 2\n", "line 2 column 1"),
            ("server:\n  host: a\n  host: b\n", "line 2 column 3"),
        ];
        for (yaml, at) in cases {
            let line = error_line(Some(yaml), &[]);
            assert!(
                line.contains(&format!("{at}: YAML syntax error: ")),
                "{yaml:?}: {line}"
            );
            assert!(!line.contains("server.port"), "{yaml:?}: {line}");
        }
    }

    #[test]
    fn a_setting_is_named_where_it_was_set() {
        let file = "websocket:\n  pong_wait: 0\n";
        let line = error_line(Some(file), &[]);
        assert!(
            line.starts_with(r#"invalid value "0s" for websocket.pong_wait in config file "#),
            "{line}"
        );
        let line = error_line(Some(file), &[("WS_PONG_WAIT", "0")]);
        assert!(
            line.contains("for WS_PONG_WAIT:"),
            "the variable came last: {line}"
        );
        let line = error_line(
            None,
            &[("WS_DEFAULT_ROOMS", "a,b,c"), ("WS_MAX_ROOMS", "2")],
        );
        assert!(line.contains("for WS_MAX_ROOMS:"), "{line}");
        let rooms: Vec<String> = (0..101).map(|i| format!("room{i}")).collect();
        let line = error_line(None, &[("WS_DEFAULT_ROOMS", &rooms.join(","))]);
        assert!(
            line.contains(r#""100" for realtime.max_rooms (default; WS_MAX_ROOMS)"#),
            "{line}"
        );

        let cfg = load_with(Some("realtime:\n  ip_allowlist: [10.0.0.0/33]\n"), &[]).unwrap();
        let line = cfg
            .setting_error("realtime.ip_allowlist", "bad")
            .to_string();
        assert!(
            line.starts_with("realtime.ip_allowlist in config file "),
            "{line}"
        );
        assert!(line.ends_with(".yaml: bad"), "{line}");
        let cfg = load_with(None, &[("WS_IP_ALLOWLIST", "10.0.0.0/33")]).unwrap();
        assert_eq!(
            cfg.setting_error("realtime.ip_allowlist", "bad")
                .to_string(),
            "WS_IP_ALLOWLIST: bad"
        );
    }

    #[test]
    fn the_example_file_loads_and_names_every_setting_at_its_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ringgate.example.yaml");
        let cfg = Config::load(Some(&path), &|_| None).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let defaults = Config::default();
        for setting in SETTINGS {
            let found = setting
                .key
                .split('.')
                .try_fold(&yaml, |node, part| node.get(part));
            assert!(found.is_some(), "{} missing from the example", setting.key);
            assert_eq!(
                (setting.show)(&cfg),
                (setting.show)(&defaults),
                "{}",
                setting.key
            );
            assert!(
                text.contains(&format!("[{}]", setting.var)),
                "{} not named",
                setting.var
            );
        }
    }

    #[test]
    fn missing_file_is_an_error() {
        let err =
            Config::load(Some(Path::new("/nonexistent/ringgate.yaml")), &|_| None).unwrap_err();
        assert!(matches!(err, ConfigError::Io { .. }), "{err}");
    }

    #[test]
    fn validation_names_key_and_variable() {
        assert_eq!(
            error_line(None, &[("WS_PONG_WAIT", "0")]),
            r#"invalid value "0s" for WS_PONG_WAIT: must be above 0 while websocket.ping_period is not 0"#
        );
        load_with(None, &[("WS_PONG_WAIT", "0"), ("WS_PING_PERIOD", "0")]).unwrap();
        let cases = [
            (
                "RINGGATE_MAX_HEADER_BYTES",
                "100",
                "server.max_header_bytes",
            ),
            (
                "RINGGATE_MAX_SEND_QUEUE",
                "1000",
                "websocket.max_send_queue",
            ),
            (
                "RINGGATE_MAX_MESSAGE_SIZE",
                "0",
                "websocket.max_message_size",
            ),
            ("WS_MAX_MESSAGE_SIZE", "0", "realtime.max_message_size"),
            ("RINGGATE_MAX_FRAGMENTS", "0", "websocket.max_fragments"),
            ("MAX_CONNECTIONS", "0", "server.max_connections"),
            ("SERVER_READ_TIMEOUT", "0", "server.read_timeout"),
            ("SERVER_WRITE_TIMEOUT", "0", "server.write_timeout"),
            ("RINGGATE_ECHO_PATH", "echo", "echo.path"),
            ("WS_COMPRESSION_MODE", "off", "websocket.compression_mode"),
            (
                "WS_COMPRESSION_WINDOW_BITS",
                "8",
                "websocket.compression_window_bits",
            ),
            ("WS_COMPRESSION_LEVEL", "10", "websocket.compression_level"),
        ];
        for (var, value, key) in cases {
            let line = error_line(None, &[(var, value)]);
            assert!(line.contains(&format!("for {var}: ")), "{key}: {line}");
        }
        let mut cfg = Config::default();
        cfg.server.host = " ".into();
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.host (default; SERVER_HOST)"));
    }

    #[test]
    fn a_route_compresses_as_it_says_or_as_the_server_default() {
        use Compression::*;
        let dedicated = DeflateMode::Dedicated { window_bits: 12 };
        let cases = [
            (&[][..], Default, DeflateMode::Off),
            (&[][..], Shared, DeflateMode::Shared),
            (
                &[("WS_COMPRESSION_WINDOW_BITS", "12")][..],
                Dedicated,
                dedicated,
            ),
            (
                &[("WS_ENABLE_COMPRESSION", "true")][..],
                Default,
                DeflateMode::Shared,
            ),
            (
                &[("WS_ENABLE_COMPRESSION", "true")][..],
                Off,
                DeflateMode::Off,
            ),
            (
                &[
                    ("WS_ENABLE_COMPRESSION", "true"),
                    ("WS_COMPRESSION_MODE", "dedicated"),
                    ("WS_COMPRESSION_WINDOW_BITS", "12"),
                ][..],
                Default,
                dedicated,
            ),
        ];
        for (env, route, mode) in cases {
            let cfg = load_with(None, env).unwrap();
            assert_eq!(cfg.deflate_mode(route), mode, "{env:?} {route:?}");
        }
        let cfg = load_with(None, &[("RINGGATE_ECHO_COMPRESSION", "DEDICATED")]).unwrap();
        assert_eq!(cfg.echo.compression, Dedicated);
        assert!(error_line(None, &[("OCPP_COMPRESSION", "zstd")]).contains("OCPP_COMPRESSION"));
    }
}
