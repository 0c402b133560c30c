//! The settings table: every environment variable, its YAML key, its kind and its help line, plus
//! the parts of `--help` built from it (the environment table, the config file's sections). It never parses text itself (that is
//! `values`), never reads the environment and never checks cross-field rules (that is `Config`).

use std::fmt::Write as _;

use super::values::{Bool, Bytes, Compress, Count, Dur, Io, Kind, List, Pairs, Port, Text, Token};
use super::Config;

/// One setting that has an environment variable.
pub(super) struct Setting {
    pub(super) var: &'static str,
    /// Its YAML key, which is also its field path in [`Config`].
    pub(super) key: &'static str,
    pub(super) help: &'static str,
    pub(super) set: fn(&mut Config, &str) -> Result<(), &'static str>,
    pub(super) show: fn(&Config) -> String,
}

/// Builds [`SETTINGS`] from rows of `VARIABLE, field.path, Kind, "help";`.
macro_rules! settings {
    ($($var:literal, $first:ident $(. $rest:ident)*, $kind:ident, $help:literal;)*) => {
        /// Every environment variable, in `--help` order; the loader walks it in this order.
        pub(super) const SETTINGS: &[Setting] = &[$(Setting {
            var: $var,
            key: concat!(stringify!($first) $(, ".", stringify!($rest))*),
            help: $help,
            set: |cfg, s| {
                cfg.$first $(.$rest)* = <$kind as Kind<_>>::parse(s)?;
                Ok(())
            },
            show: |cfg| <$kind as Kind<_>>::show(&cfg.$first $(.$rest)*),
        }),*];
    };
}

settings! {
    "SERVER_HOST", server.host, Text, "address to listen on";
    "SERVER_PORT", server.port, Port, "TCP port (0 = ephemeral)";
    "RINGGATE_SHARDS", server.shards, Count, "shard threads (0 = one per CPU in the affinity mask)";
    "RINGGATE_IO", server.io, Io, "I/O driver: auto, uring or epoll";
    "MAX_CONNECTIONS", server.max_connections, Count, "open connections, whole server";
    "RINGGATE_BACKLOG", server.backlog, Count, "listen backlog";
    "RINGGATE_DEFER_ACCEPT", server.defer_accept, Bool, "accept a connection when its first bytes arrive (TCP_DEFER_ACCEPT)";
    "SERVER_READ_TIMEOUT", server.read_timeout, Dur, "time to receive the HTTP request head";
    "SERVER_WRITE_TIMEOUT", server.write_timeout, Dur, "close when queued output stalls this long";
    "RINGGATE_IDLE_TIMEOUT", server.idle_timeout, Dur, "close when the peer sends nothing this long (0 = off)";
    "RINGGATE_DRAIN_TIMEOUT", server.drain_timeout, Dur, "on SIGTERM, wait this long for close handshakes";
    "RINGGATE_MAX_HEADER_BYTES", server.max_header_bytes, Count, "largest HTTP request head (over: 431)";
    "RINGGATE_DIRECT_DESCRIPTORS", server.direct_descriptors, Bool, "io_uring: sockets in each shard's own file table (open-files limit per shard)";
    "RINGGATE_ADMIN_RESERVE", server.admin_reserve, Count, "sockets past MAX_CONNECTIONS kept for plain HTTP (health, admin)";
    "RINGGATE_MAILBOX_COMMANDS", server.mailbox_commands, Count, "hub commands a shard's mailbox holds (more: refused)";
    "RINGGATE_MAILBOX_BYTES", server.mailbox_bytes, Bytes, "bytes (frames, closures' loads) a shard's mailbox holds (more: refused)";
    "RINGGATE_MAX_PENDING_UPGRADES", server.max_pending_upgrades, Count, "upgrades a shard parks awaiting their handler's answer (more: 503)";
    "RINGGATE_UPGRADE_TIMEOUT", server.upgrade_timeout, Dur, "how long a parked upgrade waits for its answer (then 503)";
    "RINGGATE_MAX_MESSAGE_SIZE", websocket.max_message_size, Bytes, "largest message on routes without their own limit (/echo)";
    "RINGGATE_MAX_FRAGMENTS", websocket.max_fragments, Count, "most frames in one message";
    "WS_PING_PERIOD", websocket.ping_period, Dur, "server ping interval (0 = no pings)";
    "WS_PONG_WAIT", websocket.pong_wait, Dur, "after a ping, close a peer silent this long";
    "RINGGATE_MAX_SEND_QUEUE", websocket.max_send_queue, Bytes, "bytes queued per connection (over: close 1008)";
    "RINGGATE_MIN_SEND_RATE", websocket.min_send_rate, Bytes, "bytes/s a peer must take while output waits (per write-timeout window)";
    "WS_ENABLE_COMPRESSION", websocket.enable_compression, Bool, "offer permessage-deflate on routes without a mode of their own";
    "WS_COMPRESSION_MODE", websocket.compression_mode, Compress, "their mode: shared (codecs per shard) or dedicated (per connection)";
    "WS_COMPRESSION_WINDOW_BITS", websocket.compression_window_bits, Count, "dedicated mode: largest LZ77 window both ways (9-15)";
    "WS_COMPRESSION_THRESHOLD", websocket.compression_threshold, Bytes, "messages smaller than this are sent uncompressed";
    "WS_COMPRESSION_LEVEL", websocket.compression_level, Count, "zlib compression level (0-9)";
    "RINGGATE_HTTP_MAX_BODY", http.max_body, Bytes, "largest plain HTTP request body (over: 413)";
    "RINGGATE_HTTP_IDLE_TIMEOUT", http.idle_timeout, Dur, "keep-alive: time to start (and send the head of) the next request";
    "RINGGATE_HTTP_BODY_TIMEOUT", http.body_timeout, Dur, "longest wait for the next piece of a request body";
    "RINGGATE_HTTP_MAX_REQUESTS", http.max_requests, Count, "requests per HTTP connection (the last answer closes it)";
    "RINGGATE_HTTP_MAX_CONNECTIONS", http.max_connections, Count, "plain HTTP connections held at once (more: 503)";
    "RINGGATE_CONTROL_REALTIME", http.realtime_priority, Bool, "control plane (health, admin, metrics) at real-time priority when allowed";
    "ADMIN_TOKEN", admin.token, Token, "bearer token for admin routes (unset: loopback peers only)";
    "RINGGATE_ADMIN_LISTEN", admin.listen, Text, "second address for admin routes and /metrics, e.g. 127.0.0.1:9090";
    "RINGGATE_ADMIN_MAX_CONNECTIONS", admin.max_connections, Count, "connections the admin address holds at once, apart from the public cap (more: 503)";
    "RINGGATE_METRICS_MAX_BYTES", admin.metrics_max_bytes, Bytes, "largest /metrics answer; families past it are left out whole and counted";
    "RINGGATE_ADMIN_HOSTS", admin.hosts, List, "without ADMIN_TOKEN: more Host names admin requests may use (loopback and listen addresses always)";
    "RINGGATE_REALTIME", realtime.enabled, Bool, "serve the realtime service on /ws and /ws/connect";
    "JWT_SECRET", realtime.jwt_secret, Token, "HS256 secret of the realtime tokens (unset: anonymous users)";
    "WS_JWT_LEEWAY", realtime.jwt_leeway, Dur, "clock skew allowed on a token's exp and nbf";
    "WS_CLOSE_ON_TOKEN_EXPIRY", realtime.close_on_token_expiry, Bool, "close a realtime connection (1008) when its token expires";
    "WS_MAX_MESSAGE_SIZE", realtime.max_message_size, Bytes, "largest realtime message (over: close 1009)";
    "WS_RATE_LIMIT_PER_MINUTE", realtime.rate_limit_per_minute, Count, "messages per connection a minute (0 = no limit)";
    "WS_RATE_LIMIT_BURST", realtime.rate_limit_burst, Count, "messages a connection may send at once (0 = a tenth of the minute's)";
    "WS_RATE_LIMIT_CLOSE_AFTER", realtime.rate_limit_close_after, Count, "refused messages in a row before a close with 1008";
    "WS_ENABLE_ORIGIN_CHECK", realtime.enable_origin_check, Bool, "refuse realtime upgrades from origins not allowed (403)";
    "WS_ALLOWED_ORIGINS", realtime.allowed_origins, List, "allowed origins: https://a.example, *.example.com, *";
    "WS_IP_ALLOWLIST", realtime.ip_allowlist, List, "peers allowed on the realtime routes: CIDRs or addresses (empty = all)";
    "WS_MAX_ROOMS", realtime.max_rooms, Count, "rooms that may exist at once";
    "WS_DEFAULT_ROOMS", realtime.default_rooms, List, "rooms created at start";
    "WS_MAX_ROOMS_PER_USER", realtime.max_rooms_per_user, Count, "rooms one connection may be in";
    "WS_AUTO_CREATE_ROOMS", realtime.auto_create_rooms, Bool, "a join of an unknown room creates it";
    "WS_ADMIN_ROOM_RESERVE", realtime.admin_room_reserve, Count, "rooms of WS_MAX_ROOMS joins may not create (kept for the admin API)";
    "WS_AUTO_ROOM_GRACE", realtime.auto_room_grace, Dur, "a room a join created goes once empty this long";
    "WS_ENABLE_USER_PRESENCE", realtime.presence, Bool, "announce user_joined / user_left to room members";
    "WS_PRESENCE_MAX_MEMBERS", realtime.presence_max_members, Count, "rooms with more users stop announcing joins and leaves";
    "WS_CLEANUP_IDLE_TIMEOUT", realtime.cleanup_idle, Dur, "POST /ws/cleanup closes connections silent this long";
    "RINGGATE_REALTIME_COMPRESSION", realtime.compression, Compress, "realtime routes: default, off, shared or dedicated";
    "RINGGATE_OCPP", ocpp.enabled, Bool, "serve the OCPP gateway on SERVER_WEBSOCKET_PATH/{charge_point_id}";
    "SERVER_WEBSOCKET_PATH", ocpp.path, Text, "path prefix of the OCPP route";
    "OCPP_PROTOCOLS", ocpp.protocols, List, "OCPP subprotocols served, in order of preference";
    "OCPP_HEARTBEAT_INTERVAL", ocpp.heartbeat_interval, Dur, "heartbeat interval BootNotification answers give";
    "OCPP_BOOT_STATUS", ocpp.boot_status, Text, "BootNotification answer: accepted, pending or rejected";
    "OCPP_ALLOWED_IDS", ocpp.allowed_ids, List, "charge-point ids allowed to connect (empty = any; others 404)";
    "OCPP_AUTH_REQUIRED", ocpp.auth_required, Bool, "refuse charge points without a password entry (401)";
    "OCPP_PASSWORDS", ocpp.passwords, Pairs, "Basic auth: id=argon2-PHC-hash entries, whitespace-separated";
    "OCPP_AUTH_THREADS", ocpp.auth_threads, Count, "threads that run Basic auth's argon2 checks, off the shards";
    "OCPP_AUTH_QUEUE", ocpp.auth_queue, Count, "password checks waiting for those threads (more: 503)";
    "OCPP_ID_TAGS", ocpp.id_tags, List, "id tags Authorize accepts (empty = every tag)";
    "OCPP_CALL_TIMEOUT", ocpp.call_timeout, Dur, "how long a downlink command waits for its answer";
    "OCPP_MAX_QUEUED_COMMANDS", ocpp.max_queued_commands, Count, "commands queued per charge point behind the outstanding one (more: 429)";
    "OCPP_IDLE_TIMEOUT", ocpp.idle_timeout, Dur, "close a charge point silent this long (4001; 0 = off)";
    "OCPP_MAX_MESSAGE_SIZE", ocpp.max_message_size, Bytes, "largest OCPP message (over: close 1009)";
    "OCPP_MAX_MESSAGE_ITEMS", ocpp.max_message_items, Count, "array elements and object members one OCPP message holds, all levels (more: CALLERROR, unparsed)";
    "OCPP_MAX_CHARGE_POINTS", ocpp.max_charge_points, Count, "charge points remembered, connected or not (full: a disconnected one is evicted, else 503)";
    "OCPP_EVENTS_FILE", ocpp.events_file, Text, "append every OCPP event to this NDJSON file (empty = none)";
    "OCPP_EVENT_BUFFER", ocpp.event_buffer, Count, "events queued for the sink (more: dropped and counted)";
    "OCPP_EVENT_BUFFER_BYTES", ocpp.event_buffer_bytes, Bytes, "bytes the events queued for the sink hold (more: dropped and counted)";
    "OCPP_COMPRESSION", ocpp.compression, Compress, "OCPP route: default, off, shared or dedicated";
    "RINGGATE_ECHO", echo.enabled, Bool, "serve the echo route";
    "RINGGATE_ECHO_PATH", echo.path, Text, "path of the echo route";
    "RINGGATE_ECHO_COMPRESSION", echo.compression, Compress, "echo route: default, off, shared or dedicated";
    "LOG_LEVEL", log_level, Text, "tracing filter: trace, debug, info, warn, error or directives";
    "RINGGATE_LOG_BUFFER", log_buffer, Count, "log lines held while stderr is slow (more: dropped and counted)";
}

/// The sections of the YAML file (the first part of the dotted keys), in table order.
pub(super) fn sections() -> Vec<&'static str> {
    let mut sections: Vec<&'static str> = Vec::new();
    for section in SETTINGS
        .iter()
        .filter_map(|s| s.key.split_once('.'))
        .map(|(s, _)| s)
    {
        if !sections.contains(&section) {
            sections.push(section);
        }
    }
    sections
}

/// The help of `--config`: the file's sections and top-level keys.
pub(super) fn config_help() -> String {
    let keys: Vec<&str> = SETTINGS
        .iter()
        .map(|s| s.key)
        .filter(|key| !key.contains('.'))
        .collect();
    format!(
        "YAML config file: sections {}; keys {} (ringgate.example.yaml shows every one)",
        sections().join(", "),
        keys.join(", ")
    )
}

/// The environment table for `--help`, with the built-in defaults.
pub(super) fn env_help() -> String {
    let defaults = Config::default();
    let rows: Vec<_> = SETTINGS
        .iter()
        .map(|s| (s.var, s.key, (s.show)(&defaults), s.help))
        .collect();
    let var_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let key_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let default_width = rows.iter().map(|r| r.2.len()).max().unwrap_or(0);
    let mut text = String::from(
        "Precedence: built-in defaults < --config FILE < environment < flags.\n\
         Durations: 250ms, 30s, 5m, 1h30m, 0. Sizes: 1048576, 512KiB, 16MiB, 1MB.\n\n\
         Environment variables (YAML key, default, meaning):\n",
    );
    for (var, key, default, help) in rows {
        let _ = writeln!(
            text,
            "  {var:<var_width$}  {key:<key_width$}  {default:<default_width$}  {help}"
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_help_names_every_section_and_top_level_key() {
        let help = config_help();
        for setting in SETTINGS {
            let first = setting.key.split('.').next().unwrap();
            assert!(help.contains(first), "{first} missing from {help}");
        }
        assert!(sections().iter().all(|s| !s.contains('.')));
    }

    #[test]
    fn every_setting_round_trips_its_default() {
        let defaults = Config::default();
        let mut cfg = Config::default();
        for setting in SETTINGS {
            (setting.set)(&mut cfg, &(setting.show)(&defaults)).unwrap();
            assert_eq!(
                (setting.show)(&cfg),
                (setting.show)(&defaults),
                "{}",
                setting.var
            );
        }
    }
}
