//! The attack's flags (clap) and the checked [`AttackPlan`]: which streams
//! run, each one's rate, the sizes, and the bounds that keep it on loopback
//! and short. There is no way to aim it at another host.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::cli::{parse_duration, parse_size};
use crate::url::{self, WsUrl};

/// The hostile streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
pub enum Kind {
    /// Charge points sending huge MeterValues of wrong sampled values.
    Schema,
    /// Charge points sending CALLs with hostile action names.
    Labels,
    /// Fresh charge point ids that connect and leave without booting.
    Registry,
    /// Charge points sending large valid DataTransfer CALLs.
    Events,
    /// Wrong Basic passwords for one id.
    Passwords,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Schema,
        Kind::Labels,
        Kind::Registry,
        Kind::Events,
        Kind::Passwords,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Schema => "schema",
            Kind::Labels => "labels",
            Kind::Registry => "registry",
            Kind::Events => "events",
            Kind::Passwords => "passwords",
        }
    }

    fn of_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// `attack`'s flags.
#[derive(Debug, Args)]
pub struct AttackArgs {
    /// The gateway's OCPP prefix; each charge point id is added to its path.
    /// A loopback address only: the attack never leaves this machine.
    #[arg(long, default_value = "ws://127.0.0.1:8080/ocpp")]
    pub url: String,
    /// The streams to run, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "schema,labels,registry,events,passwords"
    )]
    pub kinds: Vec<Kind>,
    /// Messages per second of each of schema, labels and events, and new
    /// ids per second of registry: `R` for all four, `KIND=R` for one
    /// (comma-separated, later ones win; fractions allowed, e.g.
    /// `2,events=0.2`).
    #[arg(long, value_delimiter = ',', default_value = "2")]
    pub rate: Vec<String>,
    /// Wrong passwords tried per second (passwords).
    #[arg(long, default_value_t = 1000.0)]
    pub password_rate: f64,
    /// The charge point id whose password is guessed (it should have one
    /// configured, OCPP_PASSWORDS).
    #[arg(long, default_value = "cp-0")]
    pub password_id: String,
    /// How long the streams run.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Charge points of each message stream (schema, labels, events), the
    /// stream's rate split over them.
    #[arg(short = 'c', long, default_value_t = 2)]
    pub connections: u32,
    /// CALLs one charge point may have unanswered; a message due while that
    /// many are is skipped and counted.
    #[arg(long, default_value_t = 4)]
    pub window: u32,
    /// Bytes of each schema and events message (the gateway's limit is
    /// OCPP_MAX_MESSAGE_SIZE, 1 MiB by default).
    #[arg(long, value_parser = parse_size, default_value = "1MiB")]
    pub size: usize,
    /// Charge point ids start with this, then a tag of this run.
    #[arg(long, default_value = "atk-")]
    pub id_prefix: String,
    /// Server process id: its RSS and CPU every --sample-interval.
    #[arg(long)]
    pub pid: Option<u32>,
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub sample_interval: Duration,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Hard cap on the whole run [default: --duration + 60s].
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
}

/// Highest rate of any stream, per second.
const MAX_RATE: f64 = 100_000.0;
/// Longest run.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Smallest and largest schema and events messages.
const MIN_SIZE: usize = 1024;
const MAX_SIZE: usize = 16 << 20;
/// Most charge points per message stream, and CALLs in flight on each.
const MAX_CONNECTIONS: u32 = 64;
const MAX_WINDOW: u32 = 1024;
/// `--timeout`'s default beyond `--duration`: answers draining, closes.
const TIMEOUT_SLACK: Duration = Duration::from_secs(60);

/// A checked attack.
#[derive(Debug, Clone)]
pub struct AttackPlan {
    pub url: WsUrl,
    /// In [`Kind::ALL`] order, each once.
    pub kinds: Vec<Kind>,
    /// Per second, indexed like [`Kind::ALL`] (passwords: `--password-rate`).
    pub rates: [f64; 5],
    pub password_id: String,
    pub duration: Duration,
    pub connections: u32,
    pub window: u32,
    pub size: usize,
    /// `--id-prefix` and this run's tag: every id of the run starts with it.
    pub id_prefix: String,
    pub pid: Option<u32>,
    pub sample_every: Duration,
    pub json: bool,
    pub timeout: Duration,
}

impl AttackPlan {
    pub fn rate(&self, kind: Kind) -> f64 {
        self.rates[kind as usize]
    }
}

impl AttackArgs {
    pub fn into_plan(self) -> Result<AttackPlan, String> {
        let url = url::parse(&self.url)?;
        if !url.addr.ip().is_loopback() {
            return Err(format!(
                "{} is not a loopback address: the attack only targets this machine",
                url.addr.ip()
            ));
        }
        let mut rates = [2.0; 5];
        for spec in &self.rate {
            let (kinds, value) = match spec.split_once('=') {
                Some((name, value)) => {
                    let kind = match Kind::of_name(name.trim()) {
                        Some(Kind::Passwords) => {
                            return Err("--rate passwords=R: use --password-rate R".into())
                        }
                        Some(kind) => kind,
                        None => {
                            return Err(format!(
                                "--rate {spec}: no stream {name:?} (schema, labels, registry, \
                                 events)"
                            ))
                        }
                    };
                    (vec![kind], value)
                }
                None => (
                    vec![Kind::Schema, Kind::Labels, Kind::Registry, Kind::Events],
                    spec.as_str(),
                ),
            };
            let rate = check_rate(&format!("--rate {spec}"), value)?;
            for kind in kinds {
                rates[kind as usize] = rate;
            }
        }
        rates[Kind::Passwords as usize] =
            check_rate("--password-rate", &self.password_rate.to_string())?;
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            return Err(format!(
                "--duration must be above 0 and at most {MAX_DURATION:?}"
            ));
        }
        if !(MIN_SIZE..=MAX_SIZE).contains(&self.size) {
            return Err(format!("--size must be {MIN_SIZE} B to 16 MiB"));
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.connections) {
            return Err(format!("--connections must be 1 to {MAX_CONNECTIONS}"));
        }
        if !(1..=MAX_WINDOW).contains(&self.window) {
            return Err(format!("--window must be 1 to {MAX_WINDOW}"));
        }
        if self.sample_interval.is_zero() {
            return Err("--sample-interval must be above 0".into());
        }
        let timeout = self.timeout.unwrap_or(self.duration + TIMEOUT_SLACK);
        if timeout.is_zero() {
            return Err("--timeout must be above 0".into());
        }
        let mut kinds = self.kinds;
        kinds.sort_unstable();
        kinds.dedup();
        Ok(AttackPlan {
            url,
            kinds,
            rates,
            password_id: self.password_id,
            duration: self.duration,
            connections: self.connections,
            window: self.window,
            size: self.size,
            id_prefix: format!("{}{}-", self.id_prefix, run_tag()),
            pid: self.pid,
            sample_every: self.sample_interval,
            json: self.json,
            timeout,
        })
    }
}

/// A rate in (0, [`MAX_RATE`]].
fn check_rate(flag: &str, value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(r) if r > 0.0 && r <= MAX_RATE => Ok(r),
        _ => Err(format!(
            "{flag}: a rate is a number above 0 and at most {MAX_RATE}"
        )),
    }
}

/// Six hex digits that differ from run to run, so that each run's ids are
/// new to the gateway.
fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!(
        "{:06x}",
        (nanos ^ (u64::from(std::process::id()) << 20)) & 0xff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        attack: AttackArgs,
    }

    fn plan(args: &[&str]) -> Result<AttackPlan, String> {
        let mut argv = vec!["attack"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .attack
            .into_plan()
    }

    #[test]
    fn defaults_run_every_stream() {
        let p = plan(&[]).unwrap();
        assert_eq!(p.kinds, Kind::ALL);
        assert_eq!(p.rates, [2.0, 2.0, 2.0, 2.0, 1000.0]);
        assert_eq!((p.connections, p.window, p.size), (2, 4, 1 << 20));
        assert_eq!(p.timeout, Duration::from_secs(70));
        assert_eq!(p.url.target, "/ocpp");
        assert!(p.id_prefix.starts_with("atk-") && p.id_prefix.len() == 11);
    }

    #[test]
    fn rates_for_all_or_one() {
        let p = plan(&[
            "--rate",
            "3,events=0.2",
            "--rate",
            "registry=100",
            "--password-rate",
            "50",
            "--kinds",
            "passwords,schema,schema",
        ])
        .unwrap();
        assert_eq!(p.rates, [3.0, 3.0, 100.0, 0.2, 50.0]);
        assert_eq!(p.rate(Kind::Events), 0.2);
        assert_eq!(p.kinds, [Kind::Schema, Kind::Passwords]);
    }

    #[test]
    fn refuses_what_is_unbounded_or_remote() {
        for bad in [
            &["--url", "ws://192.0.2.1/ocpp"][..],
            &["--rate", "0"],
            &["--rate", "schema=-1"],
            &["--rate", "bogus=1"],
            &["--rate", "passwords=5"],
            &["--rate", "1e9"],
            &["--password-rate", "0"],
            &["--duration", "0s"],
            &["--size", "100"],
            &["--size", "17MiB"],
            &["-c", "0"],
            &["--window", "0"],
            &["--kinds", "nope"],
        ] {
            assert!(plan(bad).is_err(), "{bad:?}");
        }
    }
}
