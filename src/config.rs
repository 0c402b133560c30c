//! Configuration: built-in defaults, then a YAML file, then environment variables, then flags.
//! Owns every setting the server reads at start, the one table that names them for the loader
//! and for `--help`, and their checks; it never reads the process environment itself.

use std::fmt::{Display, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::ValueEnum;
use serde::{de, Deserialize, Deserializer};

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

/// Everything the server reads at start. The YAML layout mirrors these fields.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub websocket: WebSocketConfig,
    pub echo: EchoConfig,
    /// A `tracing` filter: a level (`info`) or directives (`info,ringgate=debug`).
    pub log_level: String,
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
}

/// The `/echo` route used by Autobahn and the benchmarks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EchoConfig {
    pub enabled: bool,
    pub path: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            websocket: WebSocketConfig::default(),
            echo: EchoConfig::default(),
            log_level: "info".to_owned(),
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
            read_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            idle_timeout: Duration::ZERO,
            drain_timeout: Duration::from_secs(10),
            max_header_bytes: 8192,
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
        }
    }
}

impl Default for EchoConfig {
    fn default() -> Self {
        EchoConfig {
            enabled: true,
            path: "/echo".to_owned(),
        }
    }
}

/// Why a configuration was refused. Display is one line naming the key and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {}: {message}", path.display())]
    Yaml { path: PathBuf, message: String },
    /// `key` is an environment variable, or a YAML key followed by its variable in parentheses.
    #[error("invalid value {value:?} for {key}: {message}")]
    Invalid {
        key: String,
        value: String,
        message: String,
    },
}

impl Config {
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
                "server.max_connections",
                server.max_connections >= 1,
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
                "echo.path",
                !self.echo.enabled || self.echo.path.starts_with('/'),
                "must start with /",
            ),
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
        Config::from_yaml(&text).map_err(|message| ConfigError::Yaml {
            path: path.to_owned(),
            message,
        })
    }

    /// An empty document (or one of only comments) means all defaults.
    fn from_yaml(text: &str) -> Result<Config, String> {
        let no_content = text
            .lines()
            .map(str::trim)
            .all(|line| line.is_empty() || line.starts_with('#') || line == "---");
        if no_content {
            return Ok(Config::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string().replace('\n', " "))
    }

    fn invalid(&self, key: &str, message: String) -> ConfigError {
        let setting = SETTINGS
            .iter()
            .find(|s| s.key == key)
            .expect("every checked key is in SETTINGS");
        ConfigError::Invalid {
            key: format!("{} ({})", setting.key, setting.var),
            value: (setting.show)(self),
            message,
        }
    }
}

/// A bare word must be a level name; anything else must parse as `EnvFilter` directives.
fn check_log_level(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let bare_word = !filter.contains(['=', ',', '[', ':']);
    if bare_word && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(filter.trim())) {
        return Err("expected trace, debug, info, warn, error, off or filter directives".into());
    }
    tracing_subscriber::EnvFilter::try_new(filter)
        .map(drop)
        .map_err(|e| format!("not a tracing filter: {e}"))
}

/// How one kind of value is written in the environment, in YAML strings and in `--help`.
trait Kind<T> {
    /// On failure, says what was expected ("a port number 0-65535").
    fn parse(s: &str) -> Result<T, &'static str>;
    fn show(value: &T) -> String;
}

/// Any string.
struct Text;
/// A TCP port.
struct Port;
/// A non-negative integer.
struct Count;
/// A byte size: `1048576`, `512KiB`, `16MiB`, `1GiB`, `1MB` (units are case-insensitive).
struct Bytes;
/// A duration: `250ms`, `30s`, `5m`, `1h30m`, or `0`.
struct Dur;
/// A boolean: true/false, 1/0, yes/no, on/off.
struct Bool;
/// An [`IoMode`].
struct Io;

impl Kind<String> for Text {
    fn parse(s: &str) -> Result<String, &'static str> {
        Ok(s.to_owned())
    }
    fn show(value: &String) -> String {
        value.clone()
    }
}

impl Kind<u16> for Port {
    fn parse(s: &str) -> Result<u16, &'static str> {
        s.parse().map_err(|_| "a port number 0-65535")
    }
    fn show(value: &u16) -> String {
        value.to_string()
    }
}

impl<T: FromStr + Display> Kind<T> for Count {
    fn parse(s: &str) -> Result<T, &'static str> {
        s.parse().map_err(|_| "a non-negative integer")
    }
    fn show(value: &T) -> String {
        value.to_string()
    }
}

const BYTE_UNITS: [(&str, usize); 7] = [
    ("gib", 1 << 30),
    ("mib", 1 << 20),
    ("kib", 1 << 10),
    ("gb", 1_000_000_000),
    ("mb", 1_000_000),
    ("kb", 1_000),
    ("b", 1),
];

impl Kind<usize> for Bytes {
    fn parse(s: &str) -> Result<usize, &'static str> {
        const EXPECTED: &str = "a byte size like 1048576, 512KiB, 16MiB or 1MB";
        let lower = s.to_ascii_lowercase();
        let (digits, unit) = BYTE_UNITS
            .iter()
            .find_map(|&(suffix, unit)| Some((lower.strip_suffix(suffix)?, unit)))
            .unwrap_or((&lower, 1));
        let count: usize = digits.trim().parse().map_err(|_| EXPECTED)?;
        count.checked_mul(unit).ok_or(EXPECTED)
    }
    fn show(value: &usize) -> String {
        let binary = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
        match binary
            .iter()
            .find(|&&(_, unit)| *value != 0 && value % unit == 0)
        {
            Some((name, unit)) => format!("{}{name}", value / unit),
            None => value.to_string(),
        }
    }
}

impl Kind<Duration> for Dur {
    fn parse(s: &str) -> Result<Duration, &'static str> {
        if s == "0" {
            return Ok(Duration::ZERO);
        }
        humantime::parse_duration(s).map_err(|_| "a duration like 250ms, 30s, 5m or 1h30m")
    }
    fn show(value: &Duration) -> String {
        humantime::format_duration(*value).to_string()
    }
}

impl Kind<bool> for Bool {
    fn parse(s: &str) -> Result<bool, &'static str> {
        match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err("true or false"),
        }
    }
    fn show(value: &bool) -> String {
        value.to_string()
    }
}

impl Kind<IoMode> for Io {
    fn parse(s: &str) -> Result<IoMode, &'static str> {
        IoMode::from_str(s, true).map_err(|_| "auto, uring or epoll")
    }
    fn show(value: &IoMode) -> String {
        value
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned())
    }
}

/// Reads a YAML string (or integer) through a [`Kind`], so YAML and environment agree.
fn from_kind<'de, K: Kind<T>, T, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    struct Visit<K, T>(std::marker::PhantomData<(K, T)>);
    impl<K: Kind<T>, T> de::Visitor<'_> for Visit<K, T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or an integer")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            K::parse(s.trim())
                .map_err(|expected| E::custom(format!("invalid value {s:?}: expected {expected}")))
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
            self.visit_str(&n.to_string())
        }
    }
    deserializer.deserialize_any(Visit::<K, T>(std::marker::PhantomData))
}

/// One setting that has an environment variable.
struct Setting {
    var: &'static str,
    /// Its YAML key, which is also its field path in [`Config`].
    key: &'static str,
    help: &'static str,
    set: fn(&mut Config, &str) -> Result<(), &'static str>,
    show: fn(&Config) -> String,
}

/// Builds [`SETTINGS`] from rows of `VARIABLE, field.path, Kind, "help";`.
macro_rules! settings {
    ($($var:literal, $first:ident $(. $rest:ident)*, $kind:ident, $help:literal;)*) => {
        /// Every environment variable, in `--help` order; the loader walks it in this order.
        const SETTINGS: &[Setting] = &[$(Setting {
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
    "SERVER_READ_TIMEOUT", server.read_timeout, Dur, "time to receive the HTTP request head";
    "SERVER_WRITE_TIMEOUT", server.write_timeout, Dur, "close when queued output stalls this long";
    "RINGGATE_IDLE_TIMEOUT", server.idle_timeout, Dur, "close when the peer sends nothing this long (0 = off)";
    "RINGGATE_DRAIN_TIMEOUT", server.drain_timeout, Dur, "on SIGTERM, wait this long for close handshakes";
    "RINGGATE_MAX_HEADER_BYTES", server.max_header_bytes, Count, "largest HTTP request head (over: 431)";
    "WS_MAX_MESSAGE_SIZE", websocket.max_message_size, Bytes, "largest message, bytes or 16MiB-style";
    "RINGGATE_MAX_FRAGMENTS", websocket.max_fragments, Count, "most frames in one message";
    "WS_PING_PERIOD", websocket.ping_period, Dur, "server ping interval (0 = no pings)";
    "WS_PONG_WAIT", websocket.pong_wait, Dur, "after a ping, close a peer silent this long";
    "RINGGATE_MAX_SEND_QUEUE", websocket.max_send_queue, Bytes, "bytes queued per connection (over: close 1008)";
    "RINGGATE_ECHO", echo.enabled, Bool, "serve the echo route";
    "RINGGATE_ECHO_PATH", echo.path, Text, "path of the echo route";
    "LOG_LEVEL", log_level, Text, "tracing filter: trace, debug, info, warn, error or directives";
}

/// The environment table for `--help`, with the built-in defaults.
fn env_help() -> String {
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

/// Command-line flags; each one overrides the file and the environment.
#[derive(Debug, clap::Parser)]
#[command(
    name = "ringgate",
    version,
    about = "Thread-per-core io_uring WebSocket gateway",
    after_help = env_help()
)]
pub struct Cli {
    /// YAML config file (sections server, websocket, echo; key log_level)
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [SERVER_HOST]
    #[arg(long)]
    pub host: Option<String>,
    /// TCP port, 0 = ephemeral [SERVER_PORT]
    #[arg(long)]
    pub port: Option<u16>,
    /// Shard threads, 0 = one per CPU [RINGGATE_SHARDS]
    #[arg(long)]
    pub shards: Option<usize>,
    /// I/O driver [RINGGATE_IO]
    #[arg(long, value_enum)]
    pub io: Option<IoMode>,
    /// tracing filter, e.g. info or info,ringgate=debug [LOG_LEVEL]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Do not serve the echo route [RINGGATE_ECHO=false]
    #[arg(long)]
    pub no_echo: bool,
}

impl Cli {
    /// Overrides `cfg` with every flag given; call [`Config::validate`] afterwards.
    pub fn apply(&self, cfg: &mut Config) {
        if let Some(host) = &self.host {
            cfg.server.host.clone_from(host);
        }
        if let Some(port) = self.port {
            cfg.server.port = port;
        }
        if let Some(shards) = self.shards {
            cfg.server.shards = shards;
        }
        if let Some(io) = self.io {
            cfg.server.io = io;
        }
        if let Some(level) = &self.log_level {
            cfg.log_level.clone_from(level);
        }
        if self.no_echo {
            cfg.echo.enabled = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn load_with(yaml: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
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
            ("WS_MAX_MESSAGE_SIZE", "1MB"),
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
    fn flags_beat_env() {
        let env = [
            ("SERVER_PORT", "9100"),
            ("LOG_LEVEL", "warn"),
            ("RINGGATE_SHARDS", "2"),
        ];
        let mut cfg = load_with(None, &env).unwrap();
        let cli = Cli::try_parse_from([
            "ringgate",
            "--port",
            "9200",
            "--host",
            "::1",
            "--shards",
            "3",
            "--io",
            "epoll",
            "--log-level",
            "ringgate=trace",
            "--no-echo",
        ])
        .unwrap();
        cli.apply(&mut cfg);
        cfg.validate().unwrap();
        assert_eq!(cfg.server.port, 9200);
        assert_eq!(cfg.server.host, "::1");
        assert_eq!(cfg.server.shards, 3);
        assert_eq!(cfg.server.io, IoMode::Epoll);
        assert_eq!(cfg.log_level, "ringgate=trace");
        assert!(!cfg.echo.enabled);
    }

    #[test]
    fn absent_flags_change_nothing() {
        let mut cfg = load_with(None, &[("SERVER_PORT", "9100")]).unwrap();
        Cli::try_parse_from(["ringgate"]).unwrap().apply(&mut cfg);
        assert_eq!(cfg.server.port, 9100);
        assert!(cfg.echo.enabled);
    }

    #[test]
    fn durations() {
        for (text, want) in [
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("250ms", Duration::from_millis(250)),
            ("0", Duration::ZERO),
            ("1h30m", Duration::from_secs(5400)),
        ] {
            assert_eq!(Dur::parse(text), Ok(want), "{text}");
        }
        assert!(Dur::parse("30").is_err(), "a bare number needs a unit");
    }

    #[test]
    fn byte_sizes() {
        for (text, want) in [
            ("1024", 1024),
            ("16MiB", 16 << 20),
            ("512kib", 512 << 10),
            ("1MB", 1_000_000),
            ("2 GiB", 2 << 30),
            ("7b", 7),
        ] {
            assert_eq!(<Bytes as Kind<usize>>::parse(text), Ok(want), "{text}");
        }
        assert!(<Bytes as Kind<usize>>::parse("MiB").is_err());
        assert!(<Bytes as Kind<usize>>::parse("-1").is_err());
        assert_eq!(Bytes::show(&(16 << 20)), "16MiB");
        assert_eq!(Bytes::show(&1000), "1000");
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
        assert!(line.contains("log_level (LOG_LEVEL)"), "{line}");
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
    fn bad_yaml_names_the_key() {
        let line = error_line(Some("server:\n  prot: 80\n"), &[]);
        assert!(line.contains("unknown field `prot`"), "{line}");
        let line = error_line(Some("colour: blue\n"), &[]);
        assert!(line.contains("unknown field `colour`"), "{line}");
        let line = error_line(Some("websocket:\n  pong_wait: soon\n"), &[]);
        assert!(
            line.contains("pong_wait") && line.contains("expected a duration"),
            "{line}"
        );
        let line = error_line(Some("server:\n  port: 70000\n"), &[]);
        assert!(line.contains("port"), "{line}");
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
            r#"invalid value "0s" for websocket.pong_wait (WS_PONG_WAIT): must be above 0 while websocket.ping_period is not 0"#
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
            ("WS_MAX_MESSAGE_SIZE", "0", "websocket.max_message_size"),
            ("RINGGATE_MAX_FRAGMENTS", "0", "websocket.max_fragments"),
            ("MAX_CONNECTIONS", "0", "server.max_connections"),
            ("SERVER_READ_TIMEOUT", "0", "server.read_timeout"),
            ("SERVER_WRITE_TIMEOUT", "0", "server.write_timeout"),
            ("RINGGATE_ECHO_PATH", "echo", "echo.path"),
        ];
        for (var, value, key) in cases {
            let line = error_line(None, &[(var, value)]);
            assert!(line.contains(&format!("{key} ({var})")), "{line}");
        }
        let mut cfg = Config::default();
        cfg.server.host = " ".into();
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.host (SERVER_HOST)"));
    }

    #[test]
    fn help_lists_every_variable_with_its_default() {
        let help = Cli::command().render_long_help().to_string();
        for setting in SETTINGS {
            let row = help
                .lines()
                .find(|line| line.trim_start().starts_with(setting.var))
                .unwrap_or_else(|| panic!("{} missing from --help", setting.var));
            assert!(
                row.contains((setting.show)(&Config::default()).as_str()),
                "{row}"
            );
        }
        for flag in [
            "--config",
            "--host",
            "--port",
            "--shards",
            "--io",
            "--log-level",
            "--no-echo",
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
        }
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
