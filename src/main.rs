//! The `ringgate` binary: flags, config and logging in, then the server until a signal.
//! Owns process concerns only (exit codes, signals, stdout's "listening on" line);
//! it never holds server logic, which lives in the library.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use mimalloc::MiMalloc;
use ringgate::config::{unknown_variables, Cli, Config, ConfigError};
use ringgate::logging::dropped_lines_metric;
use ringgate::services::ocpp;
use ringgate::services::realtime;
use ringgate::Server;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder};
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Exit status for a refused configuration or input, as for a bad flag.
const BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    let cli = Cli::parse();
    if cli.hash_password {
        return print_password_hash();
    }
    let cfg = match configure(&cli) {
        Ok(cfg) => cfg,
        Err(err) => {
            eprintln!("ringgate: {err}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    // Shards log through a bounded queue that a thread of its own writes to stderr: a slow
    // reader of stderr costs dropped (and counted) lines, never a stalled shard.
    let (log_writer, log_flush) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(cfg.log_buffer)
        .thread_name("ringgate-log")
        .finish(std::io::stderr());
    let dropped = log_writer.error_counter();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(&cfg.log_level))
        .with_writer(log_writer)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .compact()
        .init();
    let environment = std::env::vars_os().map(|(name, value)| {
        (
            name.to_string_lossy().into_owned(),
            value.to_string_lossy().into_owned(),
        )
    });
    for unknown in unknown_variables(environment) {
        tracing::warn!("{unknown}");
    }
    let outcome = run(cfg, dropped.clone());
    let lost = dropped.dropped_lines();
    if lost > 0 {
        tracing::warn!("{lost} log lines dropped: stderr was not read fast enough");
    }
    // Writes out what the queue holds; gives up after about a second if stderr is stuck.
    drop(log_flush);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<ConfigError>() => {
            eprintln!("ringgate: {err}");
            ExitCode::from(BAD_INPUT)
        }
        Err(err) => {
            eprintln!("ringgate: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// File < environment < flags, then the cross-field checks.
fn configure(cli: &Cli) -> Result<Config, ConfigError> {
    let mut cfg = Config::load(cli.config.as_deref(), &|key| std::env::var(key).ok())?;
    cli.apply(&mut cfg)?;
    cfg.validate()?;
    Ok(cfg)
}

/// Serves until SIGTERM or SIGINT, then drains; a second signal exits at once
/// with status 1. A shard that dies stops the server with an error (status 1);
/// a setting a service refuses is a [`ConfigError`] (status 2).
fn run(cfg: Config, dropped_log_lines: ErrorCounter) -> anyhow::Result<()> {
    // Registered before the listener opens, so an early SIGTERM still drains.
    let signals = Signals::new([SIGTERM, SIGINT]).context("installing signal handlers")?;
    let builder = Server::builder(cfg.clone()).metrics(dropped_lines_metric(move || {
        dropped_log_lines.dropped_lines() as u64
    }));
    let builder = realtime::install(builder).map_err(|e| {
        let setting = e.setting();
        service_setting(&cfg, e, setting)
    })?;
    let (builder, _gateway) = ocpp::install(builder, None).map_err(|e| {
        let setting = e.setting();
        service_setting(&cfg, e, setting)
    })?;
    let handle = builder.start()?;

    let addr = handle.local_addr();
    println!("listening on {addr}");
    std::io::stdout().flush().context("writing to stdout")?;

    handle.stopper().on_signals(signals);
    handle.join()?;
    Ok(())
}

/// A service's refusal of a setting, named where the setting was written; a failure that is
/// no setting's fault (a thread that cannot start) as it is.
fn service_setting(
    cfg: &Config,
    error: impl std::error::Error + Send + Sync + 'static,
    setting: Option<(&'static str, String)>,
) -> anyhow::Error {
    match setting {
        Some((key, problem)) => cfg.setting_error(key, problem).into(),
        None => error.into(),
    }
}

/// `--hash-password`: one line of standard input (without its line end) → its PHC hash.
fn print_password_hash() -> ExitCode {
    let mut line = String::new();
    if let Err(err) = std::io::stdin().read_line(&mut line) {
        eprintln!("ringgate: reading the password from standard input: {err}");
        return ExitCode::from(BAD_INPUT);
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("ringgate: give the password on standard input");
        return ExitCode::from(BAD_INPUT);
    }
    if !(16..=40).contains(&password.chars().count()) {
        eprintln!("ringgate: warning: OCPP charge-point passwords are 16 to 40 characters");
    }
    println!("{}", ocpp::auth::hash_password(password));
    ExitCode::SUCCESS
}

/// Keeps the allocator's arenas off transparent huge pages: an idle
/// connection's few hundred bytes would otherwise pin 2 MiB pages (tuning.md,
/// "Memory per connection"). `MIMALLOC_ALLOW_THP=1` keeps them.
fn disable_transparent_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}
