//! The command line: `Cli` (the clap flags) and `Cli::apply`, the last layer over a loaded config.
//! It never reads files or the environment and never validates; the caller runs `Config::validate`.

use std::path::PathBuf;

use super::names::Nearest;
use super::settings::{config_help, env_help, SETTINGS};
use super::source::Source;
use super::{Config, ConfigError, IoMode};

/// Command-line flags; each one overrides the file and the environment.
#[derive(Debug, clap::Parser)]
#[command(
    name = "ringgate",
    version,
    about = "Thread-per-core io_uring WebSocket gateway",
    after_help = env_help()
)]
pub struct Cli {
    #[arg(short, long, value_name = "FILE", help = config_help())]
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
    /// Any setting, by YAML key or variable name: --set realtime.max_rooms=10
    /// or --set WS_MAX_ROOMS=10 (repeatable; beats the other flags)
    #[arg(short, long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<String>,
    /// Read a charge-point password from standard input, print its argon2
    /// hash (for OCPP_PASSWORDS) and exit
    #[arg(long)]
    pub hash_password: bool,
}

impl Cli {
    /// Overrides `cfg` with every flag given, `--set` last; call
    /// [`Config::validate`] afterwards. An unknown key or a bad value is an
    /// error naming the flag.
    pub fn apply(&self, cfg: &mut Config) -> Result<(), ConfigError> {
        let flag = |name: &str| Source::Flag(name.to_owned());
        if let Some(host) = &self.host {
            cfg.server.host.clone_from(host);
            cfg.sources.record("server.host", flag("--host"));
        }
        if let Some(port) = self.port {
            cfg.server.port = port;
            cfg.sources.record("server.port", flag("--port"));
        }
        if let Some(shards) = self.shards {
            cfg.server.shards = shards;
            cfg.sources.record("server.shards", flag("--shards"));
        }
        if let Some(io) = self.io {
            cfg.server.io = io;
            cfg.sources.record("server.io", flag("--io"));
        }
        if let Some(level) = &self.log_level {
            cfg.log_level.clone_from(level);
            cfg.sources.record("log_level", flag("--log-level"));
        }
        if self.no_echo {
            cfg.echo.enabled = false;
            cfg.sources.record("echo.enabled", flag("--no-echo"));
        }
        self.settings
            .iter()
            .try_for_each(|pair| apply_set(cfg, pair))
    }
}

/// One `--set KEY=VALUE`; errors name the setting as written (`--set WS_MAX_ROOMS`).
fn apply_set(cfg: &mut Config, pair: &str) -> Result<(), ConfigError> {
    let (name, value) = pair.split_once('=').ok_or_else(|| ConfigError::Invalid {
        key: "--set".to_owned(),
        value: pair.to_owned(),
        message: "expected KEY=VALUE".to_owned(),
    })?;
    let (name, value) = (name.trim(), value.trim());
    let setting = SETTINGS
        .iter()
        .find(|s| s.key == name || s.var == name)
        .ok_or_else(|| ConfigError::UnknownSetting {
            name: name.to_owned(),
            nearest: Nearest::set_name(name),
        })?;
    let flag = format!("--set {name}");
    (setting.set)(cfg, value).map_err(|expected| ConfigError::Invalid {
        key: flag.clone(),
        value: value.to_owned(),
        message: format!("expected {expected}"),
    })?;
    cfg.sources.record(setting.key, Source::Flag(flag));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::settings::SETTINGS;
    use crate::config::tests::load_with;
    use clap::{CommandFactory, Parser};

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
            "--set",
            "WS_MAX_ROOMS=7",
            "-s",
            "realtime.default_rooms=a, b",
        ])
        .unwrap();
        cli.apply(&mut cfg).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.server.port, 9200);
        assert_eq!(cfg.server.host, "::1");
        assert_eq!(cfg.server.shards, 3);
        assert_eq!(cfg.server.io, IoMode::Epoll);
        assert_eq!(cfg.log_level, "ringgate=trace");
        assert!(!cfg.echo.enabled);
        assert_eq!(cfg.realtime.max_rooms, 7);
        assert_eq!(cfg.realtime.default_rooms, ["a", "b"]);
    }

    #[test]
    fn bad_set_flags_name_the_problem() {
        let mut cfg = Config::default();
        for (flag, want) in [
            ("WS_MAX_ROOMS", "expected KEY=VALUE"),
            ("nope=1", "no setting \"nope\""),
            (
                "server.port=high",
                "--set server.port: expected a port number",
            ),
        ] {
            let cli = Cli::try_parse_from(["ringgate", "--set", flag]).unwrap();
            let line = cli.apply(&mut cfg).unwrap_err().to_string();
            assert!(line.contains(want), "{line}");
        }
    }

    #[test]
    fn checks_name_the_flag_that_set_the_value() {
        for (args, named) in [
            (
                &["--shards", "5000"][..],
                "for --shards: must be at most 1024",
            ),
            (&["--host", " "][..], "for --host: must not be empty"),
            (
                &["--log-level", "loud"][..],
                "for --log-level: expected trace",
            ),
            (
                &["-s", "WS_MAX_ROOMS=0"][..],
                "for --set WS_MAX_ROOMS: must be at least",
            ),
            (&["-s", "server.port=1", "--port", "2"][..], ""),
        ] {
            let mut cfg = load_with(None, &[("RINGGATE_SHARDS", "3")]).unwrap();
            let cli = Cli::try_parse_from(["ringgate"].iter().chain(args)).unwrap();
            cli.apply(&mut cfg).unwrap();
            match cfg.validate() {
                Ok(()) => assert_eq!(named, "", "{args:?}"),
                Err(e) => assert!(e.to_string().contains(named), "{args:?}: {e}"),
            }
        }
    }

    #[test]
    fn absent_flags_change_nothing() {
        let mut cfg = load_with(None, &[("SERVER_PORT", "9100")]).unwrap();
        Cli::try_parse_from(["ringgate"])
            .unwrap()
            .apply(&mut cfg)
            .unwrap();
        assert_eq!(cfg.server.port, 9100);
        assert!(cfg.echo.enabled);
    }

    #[test]
    fn commands_the_example_file_shows_parse() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ringgate.example.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let commands: Vec<&str> = text
            .match_indices("ringgate ")
            .filter_map(|(at, _)| text[at..].split(['\n', ')']).next())
            .collect();
        assert!(commands.len() >= 2, "{commands:?}");
        for command in commands {
            if let Err(e) = Cli::try_parse_from(command.split_whitespace()) {
                panic!("{command:?} does not parse: {e}");
            }
        }
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
            "--set",
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
        }
    }
}
