//! Command line: the modes and their flags (clap), the size and duration
//! parsers, and the checked [`Job`] `main` runs: one mode's [`Plan`] that
//! every other module reads, the three plans of `all`, or an attack.

use std::ffi::OsString;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::attack::{AttackArgs, AttackPlan};
use crate::commands::CommandPlan;
use crate::marker::Marker;
use crate::ocpp::OcppPlan;
use crate::realtime::{RealtimePlan, Secret, MAX_ROOMS};
use crate::soak::SoakPlan;
use crate::suite::AllArgs;
use crate::url::{self, WsUrl};

/// WebSocket load and stress client.
///
/// Every run is bounded in count and time (`--timeout`) and stops by itself.
/// Targets must be loopback addresses unless `--allow-remote` is given.
#[derive(Debug, Parser)]
#[command(name = "ringgate-load", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand: a single mode, `all`, or `attack`.
#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Mode(ModeCmd),
    /// Storm, then throughput, then sustained against one --url (the seed's
    /// `--test-type all`): one report with a section and a verdict for each.
    /// -c and the connection flags go to every phase, --hold to the storm,
    /// --duration to throughput (unless --messages) and sustained, --window to
    /// throughput, --message-interval and --report-interval to sustained.
    /// Exits 1 unless every phase passed: all connections opened, no failure
    /// counted, no --timeout.
    All(AllArgs),
    /// Hostile OCPP inputs against a gateway, on loopback only: huge invalid
    /// MeterValues (schema), hostile action names (labels), fresh ids that
    /// leave without booting (registry), large valid frames (events), and
    /// wrong Basic passwords for one id (passwords), each a stream at its
    /// rate for --duration. Report what each sent and what came back; with
    /// --pid, the server's RSS and CPU over time.
    Attack(AttackArgs),
}

/// What `main` runs.
#[derive(Debug)]
pub enum Job {
    /// One mode.
    One(Box<Plan>),
    /// `all`: storm, throughput and sustained, in that order.
    All(Vec<Plan>),
    Attack(Box<AttackPlan>),
}

/// The single modes.
#[derive(Debug, Subcommand)]
pub enum ModeCmd {
    /// Open N connections, at most --max-concurrent handshakes in flight;
    /// report handshakes/s and handshake latency.
    Storm {
        #[command(flatten)]
        common: Common,
        /// Keep the connections open this long after the last handshake.
        #[arg(long, value_parser = parse_duration, default_value = "0s")]
        hold: Duration,
    },
    /// N connections each send --messages (or run for --duration), up to
    /// --window in flight, and check every echo; report msgs/s and RTT.
    Throughput {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        payload: PayloadArgs,
        /// Messages per connection (ignored with --duration).
        #[arg(long, default_value_t = 1000)]
        messages: u64,
        /// Send for this long instead of a message count.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        /// Messages in flight per connection.
        #[arg(long, default_value_t = 16)]
        window: usize,
    },
    /// N connections for --duration, one message per --message-interval
    /// each; report latency percentiles over time and any drop.
    Sustained {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        payload: PayloadArgs,
        /// How long to send.
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        duration: Duration,
        /// Time between two messages of one connection; a plain number is
        /// milliseconds.
        #[arg(long, value_parser = parse_interval, default_value = "1000")]
        message_interval: Duration,
        /// Width of one row of the latency-over-time table.
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        report_interval: Duration,
        /// Most messages in flight per connection; a send due while this many
        /// are unanswered is skipped and counted as `window_full`.
        #[arg(long, default_value_t = 64)]
        window: usize,
    },
    /// Hold N idle connections for --duration and report how many stayed
    /// up; with --pid, the server's RSS growth per connection. SIGUSR1 ends
    /// the hold early (the report follows as usual).
    Idle {
        #[command(flatten)]
        common: Common,
        /// How long to hold the connections once all are open.
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        duration: Duration,
        /// Messages (--payload bytes) each connection sends once all are
        /// open, echoes checked, before it idles: with --deflate, this makes
        /// the codecs a server keeps per connection.
        #[arg(long, default_value_t = 0)]
        messages: u64,
        #[command(flatten)]
        payload: PayloadArgs,
        /// Count, on every connection, the text messages the server sends
        /// that contain STR (say, a broadcast's payload): report the
        /// connections that got one exactly once, twice or more, or none,
        /// and the first and last arrival (Unix ms). Says on stderr once
        /// every connection opened has one; exits 1 unless every connection
        /// asked for got exactly one.
        #[arg(long, value_name = "STR")]
        expect_marker: Option<String>,
    },
    /// N subscribers (-c) on one channel, then --publishers connections
    /// (`role=pub` added to the query) each sending --rate binary messages/s
    /// for --duration; every subscriber checks the order of what it gets.
    /// Report deliveries/s and publish-to-delivery latency.
    Fanout {
        #[command(flatten)]
        common: Common,
        /// Messages per second from each publisher.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// How long to publish.
        #[arg(long, value_parser = parse_duration, default_value = "5s")]
        duration: Duration,
        /// Payload bytes per message, at least 20 (sequence, send time, publisher).
        #[arg(long, value_parser = parse_size, default_value = "64")]
        payload: usize,
        /// Publishing connections.
        #[arg(long, default_value_t = 1)]
        publishers: u64,
    },
    /// Chat-room fan-out against a realtime service's JSON envelope: -c
    /// members (publishers included) spread evenly over --rooms rooms
    /// `load-0`.. (created first with POST .../rooms), each joining with
    /// `?token=JWT&room_id=ROOM`; --publishers-per-room members of each room
    /// send --rate `room_message`s/s for --duration. Every member checks that
    /// it gets each of its room's messages exactly once (the sender its own
    /// copy too). Report deliveries/s, publish-to-delivery latency, and with
    /// --pid server CPU-seconds per million deliveries. Exits 1 when a
    /// delivery was missing or duplicated.
    Realtime {
        #[command(flatten)]
        common: Common,
        /// Messages per second from each publisher.
        #[arg(long, default_value_t = 10)]
        rate: u64,
        /// How long to publish.
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        duration: Duration,
        /// Bytes of each message's data object: 48 (the header alone) or at
        /// least 55 (header and padding).
        #[arg(long, value_parser = parse_size, default_value = "64")]
        payload: usize,
        /// Rooms the members are spread over (`load-0`, `load-1`, ...).
        #[arg(long, default_value_t = 1)]
        rooms: u32,
        /// Members of each room that publish.
        #[arg(long, default_value_t = 1)]
        publishers_per_room: u32,
        /// HS256 secret to sign each member's token (`sub`/`username`
        /// `load-N`); without one, members connect with no token.
        #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
        jwt_secret: Option<String>,
        /// Bearer token for the room-creating requests.
        #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Once every member joined, wait until none has heard from the
        /// server for this long before publishing (presence after many
        /// joins); 0 does not wait.
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        settle: Duration,
    },
    /// About N connections (-c, default 5,000) to a pub/sub URL for
    /// --duration: polite subscribers, churners, never-readers and garbage
    /// senders, each one that ends replaced by another of its kind, while one
    /// publisher broadcasts --rate messages/s. GET /health every second; with
    /// --pid, the server's RSS and descriptors every --sample-interval.
    /// Report how connections ended and whether RSS and descriptors stayed flat.
    Soak {
        #[command(flatten)]
        common: Common,
        /// How long the mix runs.
        #[arg(long, value_parser = parse_duration, default_value = "10m")]
        duration: Duration,
        /// Broadcasts per second (100: one every 10 ms).
        #[arg(long, default_value_t = 100)]
        rate: u64,
        /// Payload bytes per broadcast, at least 20 (sequence, send time,
        /// publisher). At 100/s, 1 KiB fills a never-reader's loopback socket
        /// buffers (~4 MB) in well under a minute.
        #[arg(long, value_parser = parse_size, default_value = "1KiB")]
        payload: usize,
        /// Percent of the connections that churn: after --lifetime-min..max
        /// they close (handshake), drop the socket, or leave mid-handshake.
        #[arg(long, default_value_t = 10.0)]
        churn: f64,
        /// Percent that never read (a Ping each second tells when the server
        /// dropped them).
        #[arg(long, default_value_t = 2.0)]
        silent: f64,
        /// Percent that send one invalid frame after --lifetime-min..max and
        /// expect the close code it calls for.
        #[arg(long, default_value_t = 2.0)]
        garbage: f64,
        /// Shortest churn lifetime (and garbage delay) after the 101; also the
        /// longest a churner lingers mid-handshake.
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        lifetime_min: Duration,
        /// Longest churn lifetime (and garbage delay).
        #[arg(long, value_parser = parse_duration, default_value = "5s")]
        lifetime_max: Duration,
        /// A never-reader the server has not cut off after this long is
        /// dropped and counted as `not cut off`.
        #[arg(long, value_parser = parse_duration, default_value = "120s")]
        stall_limit: Duration,
        /// How often the server's RSS and descriptors are sampled (--pid).
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        sample_interval: Duration,
        /// Samples before this, counted from the start, are warm-up: the
        /// flat verdict looks at the ones after.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        warmup: Duration,
    },
    /// OCPP 1.6 charge points (-c) against a central system: charge point
    /// i connects to --url with `/{--id-prefix}{i}` added to the path,
    /// offering subprotocol `ocpp1.6`; at most --max-concurrent are in
    /// flight at once (handshake sent, BootNotification not yet answered):
    /// a reconnect storm. Each sends BootNotification once open, then (with
    /// --status) a StatusNotification, then --heartbeats Heartbeats
    /// --heartbeat-interval apart, answering the server's CALLs meanwhile,
    /// and checks every reply against its outstanding CALL; then all hold for
    /// --hold and close. Report boots/s, CALL-to-CALLRESULT latency, server
    /// CALLs answered and errors. Exits 1 when a charge point did not boot
    /// or any error was counted.
    Ocpp {
        #[command(flatten)]
        common: Common,
        /// Charge point i is PREFIX{i}.
        #[arg(long, default_value = "cp-")]
        id_prefix: String,
        /// Send one StatusNotification (connector 1 Available) after the boot.
        #[arg(long)]
        status: bool,
        /// Heartbeats per charge point after the boot (and status).
        #[arg(long, default_value_t = 1)]
        heartbeats: u64,
        /// Time from a CALL's answer to the next heartbeat.
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        heartbeat_interval: Duration,
        /// Keep the charge points connected this long once all are done.
        #[arg(long, value_parser = parse_duration, default_value = "0s")]
        hold: Duration,
        /// HTTP Basic password; each charge point's user name is its id.
        #[arg(long, env = "OCPP_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Downlink commands per second over all charge points, from the end
        /// of the boots until every charge point is done (heartbeats and
        /// --hold): `POST {--url's path}/{id}/commands` on the same host
        /// (GetConfiguration, ChangeConfiguration, TriggerMessage in turn,
        /// charge points in turn), at most 16 in flight. The run fails unless
        /// every one is answered (200 `accepted`).
        #[arg(long, value_name = "RATE")]
        commands: Option<u64>,
        /// Bearer token for the admin API (--commands).
        #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
    },
}

/// Flags every mode takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Server URL (ws:// only) [default: ws://127.0.0.1:8080/echo; for
    /// fanout ws://127.0.0.1:8080/pubsub?channel=bench; for realtime
    /// ws://127.0.0.1:8080/ws; for ocpp ws://127.0.0.1:8080/ocpp].
    #[arg(long)]
    pub url: Option<String>,
    /// Connections to open (fanout: subscribers; realtime: room members,
    /// publishers included; ocpp: charge points) [default: 100; soak 5000].
    #[arg(short = 'c', long)]
    pub connections: Option<u64>,
    /// Most handshakes in flight at once (over all threads; ocpp: handshakes
    /// and unanswered BootNotifications).
    #[arg(long, default_value_t = 256)]
    pub max_concurrent: u64,
    /// Client threads, each with its own event loop and share of connections.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Source addresses to spread connections over, e.g.
    /// `127.0.0.2-127.0.0.50` or `127.0.0.2,127.0.0.3`.
    #[arg(long)]
    pub source_ips: Option<String>,
    /// Server process id: report its CPU seconds (and RSS) for the run.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Print the progress line even when stderr is not a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Hard cap on the whole run [default: 120s; soak --duration + 2m;
    /// realtime --duration + 3m; ocpp 120s + heartbeats × interval + hold].
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// A handshake not done this long after connect() counts as `timeout`
    /// (realtime: a member without its `room_joined` by then, `not_joined`;
    /// ocpp: a charge point without its boot answer, `not_booted`).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub handshake_timeout: Duration,
    /// Allow a target that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Offer permessage-deflate (`Sec-WebSocket-Extensions:
    /// permessage-deflate; client_max_window_bits`). Where the server
    /// agrees, the messages sent are compressed (level 1; OCPP CALLs, soak
    /// garbage and control frames excepted) and compressed ones received are
    /// inflated before they are checked; the report counts the agreements
    /// and compares payload and wire bytes.
    #[arg(long)]
    pub deflate: bool,
}

/// Message shape, for the modes that send.
#[derive(Debug, Clone, Args)]
pub struct PayloadArgs {
    /// Payload bytes per message (`20`, `16KiB`, `1MiB`).
    #[arg(long, value_parser = parse_size, default_value = "20")]
    pub payload: usize,
    /// Send text frames instead of binary.
    #[arg(long)]
    pub text: bool,
}

/// What a run does after connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Storm {
        hold: Duration,
    },
    Throughput {
        /// `None` with `--duration`.
        messages: Option<u64>,
        duration: Option<Duration>,
    },
    Sustained {
        duration: Duration,
        interval: Duration,
        report_interval: Duration,
    },
    Idle {
        duration: Duration,
        /// Echoed messages per connection before idling.
        messages: u64,
        /// `--expect-marker`.
        marker: Option<Arc<Marker>>,
    },
    Fanout {
        /// Messages per second from each publisher.
        rate: u64,
        duration: Duration,
    },
    Soak(SoakPlan),
    Realtime(RealtimePlan),
    Ocpp(OcppPlan),
}

impl Mode {
    /// The mode's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Storm { .. } => "storm",
            Mode::Throughput { .. } => "throughput",
            Mode::Sustained { .. } => "sustained",
            Mode::Idle { .. } => "idle",
            Mode::Fanout { .. } => "fanout",
            Mode::Soak(_) => "soak",
            Mode::Realtime(_) => "realtime",
            Mode::Ocpp(_) => "ocpp",
        }
    }

    /// The subprotocol every connection offers and the server must select.
    pub fn subprotocol(&self) -> Option<&'static str> {
        match self {
            Mode::Ocpp(_) => Some(crate::ocpp::SUBPROTOCOL),
            _ => None,
        }
    }

    /// Whether the mode sends messages.
    pub fn sends(&self) -> bool {
        matches!(
            self,
            Mode::Throughput { .. }
                | Mode::Sustained { .. }
                | Mode::Fanout { .. }
                | Mode::Soak(_)
                | Mode::Realtime(_)
        )
    }

    /// Whether subscribers receive broadcasts (fanout, soak, realtime)
    /// rather than echoes.
    pub fn delivers(&self) -> bool {
        matches!(
            self,
            Mode::Fanout { .. } | Mode::Soak(_) | Mode::Realtime(_)
        )
    }

    /// An idle run's `--expect-marker`.
    pub fn marker(&self) -> Option<&Arc<Marker>> {
        match self {
            Mode::Idle { marker, .. } => marker.as_ref(),
            _ => None,
        }
    }

    /// An ocpp run's `--commands`.
    pub fn commands(&self) -> Option<&CommandPlan> {
        match self {
            Mode::Ocpp(ocpp) => ocpp.commands.as_ref(),
            _ => None,
        }
    }

    /// The URL used when `--url` is not given.
    pub fn default_url(&self) -> &'static str {
        match self {
            Mode::Fanout { .. } => "ws://127.0.0.1:8080/pubsub?channel=bench",
            Mode::Soak(_) => "ws://127.0.0.1:8080/pubsub?channel=soak",
            Mode::Realtime(_) => "ws://127.0.0.1:8080/ws",
            Mode::Ocpp(_) => "ws://127.0.0.1:8080/ocpp",
            _ => "ws://127.0.0.1:8080/echo",
        }
    }
}

/// A checked run description, shared read-only by every thread.
#[derive(Debug, Clone)]
pub struct Plan {
    pub mode: Mode,
    pub url: WsUrl,
    /// Connections to open (fanout: subscribers; realtime: the members that
    /// do not publish).
    pub connections: u64,
    /// Publishers (fanout's, soak's one, realtime's rooms × per room),
    /// opened after the subscribers (0 in other modes).
    pub publishers: u64,
    pub max_concurrent: u64,
    pub threads: usize,
    pub source_ips: Vec<IpAddr>,
    pub pid: Option<u32>,
    pub json: bool,
    pub progress: bool,
    pub timeout: Duration,
    pub handshake_timeout: Duration,
    pub payload: usize,
    pub text: bool,
    pub window: usize,
    /// Offer permessage-deflate.
    pub deflate: bool,
}

/// Connections when `-c` is not given (soak: [`SOAK_CONNECTIONS`]).
const DEFAULT_CONNECTIONS: u64 = 100;
const SOAK_CONNECTIONS: u64 = 5000;
/// The run's cap when `--timeout` is not given (soak: its `--duration` plus
/// [`SOAK_TIMEOUT_SLACK`]).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
const SOAK_TIMEOUT_SLACK: Duration = Duration::from_secs(120);
/// Realtime's default cap beyond `--duration`: joining and settling a big
/// room takes a while.
const REALTIME_TIMEOUT_SLACK: Duration = Duration::from_secs(180);
/// Most messages per connection in an idle run (all go at once).
const MAX_IDLE_MESSAGES: u64 = 1 << 16;
/// Most heartbeats per charge point.
const MAX_HEARTBEATS: u64 = 1_000_000;
/// Highest `--commands` rate, per second.
const MAX_COMMAND_RATE: u64 = 10_000;
/// Ocpp's default cap beyond the commands' own timeout, for their way back.
const COMMANDS_SLACK: Duration = Duration::from_secs(10);

/// Largest payload accepted (ringgate's default message limit).
pub const MAX_PAYLOAD: usize = 16 << 20;
/// Most connections one run may ask for.
pub const MAX_CONNECTIONS: u64 = 1_000_000;
/// Most client threads.
pub const MAX_THREADS: usize = 64;
/// Most fanout publishers (each subscriber tracks a sequence per publisher).
pub const MAX_PUBLISHERS: u64 = 64;
/// Highest fanout rate per publisher, messages/s.
pub const MAX_RATE: u64 = 10_000_000;

impl Plan {
    /// Every connection the run opens (subscribers and publishers).
    pub fn total_connections(&self) -> u64 {
        self.connections + self.publishers
    }
}

/// The seed's spelling of a mode, `--test-type MODE` (or `--test-type=MODE`)
/// anywhere on the line, rewritten as the subcommand `MODE` that clap parses
/// (`--test-type all` is the subcommand `all`).
pub fn seed_spelling(args: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>, String> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let Some(at) = args
        .iter()
        .position(|a| a == "--test-type" || a.to_string_lossy().starts_with("--test-type="))
    else {
        return Ok(args);
    };
    let flag = args.remove(at).to_string_lossy().into_owned();
    let mode = match flag.strip_prefix("--test-type=") {
        Some(mode) => mode.to_owned(),
        None if at < args.len() => args.remove(at).to_string_lossy().into_owned(),
        None => return Err(
            "--test-type needs a mode: storm, throughput, sustained, idle, fanout, soak, realtime, \
             ocpp, all"
                .into(),
        ),
    };
    args.insert(1.min(args.len()), mode.into());
    Ok(args)
}

impl Cli {
    /// Checks the flags: the job to run.
    pub fn into_job(self) -> Result<Job, String> {
        match self.command {
            Command::Mode(mode) => Ok(Job::One(Box::new(mode.into_plan()?))),
            Command::All(all) => all.into_plans().map(Job::All),
            Command::Attack(attack) => Ok(Job::Attack(Box::new(attack.into_plan()?))),
        }
    }
}

impl ModeCmd {
    /// Checks the flags and resolves the URL.
    pub fn into_plan(self) -> Result<Plan, String> {
        let no_payload = PayloadArgs {
            payload: 0,
            text: false,
        };
        let mut fanout_publishers = 0;
        let (common, payload, mode, window) = match self {
            ModeCmd::Storm { common, hold } => (common, no_payload, Mode::Storm { hold }, 1),
            ModeCmd::Throughput {
                common,
                payload,
                messages,
                duration,
                window,
            } => {
                let messages = duration.is_none().then_some(messages);
                (
                    common,
                    payload,
                    Mode::Throughput { messages, duration },
                    window,
                )
            }
            ModeCmd::Sustained {
                common,
                payload,
                duration,
                message_interval,
                report_interval,
                window,
            } => {
                if message_interval.is_zero() || report_interval.is_zero() {
                    return Err("--message-interval and --report-interval must be above 0".into());
                }
                let mode = Mode::Sustained {
                    duration,
                    interval: message_interval,
                    report_interval,
                };
                (common, payload, mode, window)
            }
            ModeCmd::Idle {
                common,
                duration,
                messages,
                payload,
                expect_marker,
            } => {
                check_range("--messages", messages, 0, MAX_IDLE_MESSAGES)?;
                let marker = expect_marker
                    .map(|text| Marker::new(&text).map(Arc::new))
                    .transpose()?;
                if marker.is_some() && messages > 0 {
                    return Err(
                        "--expect-marker watches what the server sends; it does not go with \
                         --messages, which checks echoes"
                            .into(),
                    );
                }
                let payload = if messages == 0 { no_payload } else { payload };
                let mode = Mode::Idle {
                    duration,
                    messages,
                    marker,
                };
                (common, payload, mode, messages.max(1) as usize)
            }
            ModeCmd::Fanout {
                common,
                rate,
                duration,
                payload,
                publishers,
            } => {
                check_range("--publishers", publishers, 1, MAX_PUBLISHERS)?;
                check_publishing(rate, payload, duration)?;
                fanout_publishers = publishers;
                let payload = PayloadArgs {
                    payload,
                    text: false,
                };
                (common, payload, Mode::Fanout { rate, duration }, 1)
            }
            ModeCmd::Realtime {
                mut common,
                rate,
                duration,
                payload,
                rooms,
                publishers_per_room,
                jwt_secret,
                admin_token,
                settle,
            } => {
                check_range("--rooms", u64::from(rooms), 1, u64::from(MAX_ROOMS))?;
                check_range(
                    "--publishers-per-room",
                    u64::from(publishers_per_room),
                    1,
                    MAX_PUBLISHERS,
                )?;
                check_range("--rate", rate, 1, MAX_RATE)?;
                crate::realtime::check_payload(payload)?;
                if crate::fanout::Schedule::new(rate, duration, 0, 1).total == 0 {
                    return Err("--rate × --duration must come to at least one message".into());
                }
                let members = common.connections.unwrap_or(DEFAULT_CONNECTIONS);
                let publishers = u64::from(rooms) * u64::from(publishers_per_room);
                let least = u64::from(rooms) * (u64::from(publishers_per_room) + 1);
                if members < least {
                    return Err(format!(
                        "--connections {members}: {rooms} rooms of {publishers_per_room} \
                         publisher(s) and at least one listener each need {least}"
                    ));
                }
                check_range("--connections", members, 1, MAX_CONNECTIONS)?;
                // From here on, connections are the listening members.
                common.connections = Some(members - publishers);
                fanout_publishers = publishers;
                let secret = |s: Option<String>| s.filter(|s| !s.is_empty()).map(Secret);
                let mode = Mode::Realtime(RealtimePlan {
                    rate,
                    duration,
                    rooms,
                    publishers_per_room,
                    jwt_secret: secret(jwt_secret),
                    admin_token: secret(admin_token),
                    settle,
                });
                common
                    .timeout
                    .get_or_insert(duration + REALTIME_TIMEOUT_SLACK);
                let payload = PayloadArgs {
                    payload,
                    text: true,
                };
                (common, payload, mode, 1)
            }
            ModeCmd::Ocpp {
                mut common,
                id_prefix,
                status,
                heartbeats,
                heartbeat_interval,
                hold,
                password,
                commands,
                admin_token,
            } => {
                check_range("--heartbeats", heartbeats, 0, MAX_HEARTBEATS)?;
                if let Some(rate) = commands {
                    check_range("--commands", rate, 1, MAX_COMMAND_RATE)?;
                }
                let beating = heartbeat_interval.saturating_mul(heartbeats as u32);
                // Commands in flight when the charge points are done may take
                // their whole timeout to come back.
                let draining = match commands {
                    Some(_) => crate::commands::COMMAND_TIMEOUT + COMMANDS_SLACK,
                    None => Duration::ZERO,
                };
                common.timeout.get_or_insert(
                    DEFAULT_TIMEOUT
                        .saturating_add(beating)
                        .saturating_add(hold)
                        .saturating_add(draining),
                );
                let secret = |s: Option<String>| s.filter(|s| !s.is_empty()).map(Secret);
                let mode = Mode::Ocpp(OcppPlan {
                    id_prefix,
                    status,
                    heartbeats,
                    heartbeat_interval,
                    hold,
                    password: secret(password),
                    commands: commands.map(|rate| CommandPlan {
                        rate,
                        admin_token: secret(admin_token),
                    }),
                });
                (common, no_payload, mode, 1)
            }
            ModeCmd::Soak {
                mut common,
                duration,
                rate,
                payload,
                churn,
                silent,
                garbage,
                lifetime_min,
                lifetime_max,
                stall_limit,
                sample_interval,
                warmup,
            } => {
                check_publishing(rate, payload, duration)?;
                if lifetime_max.is_zero() || lifetime_min > lifetime_max {
                    return Err(
                        "--lifetime-min must not exceed --lifetime-max, which must be above 0"
                            .into(),
                    );
                }
                if stall_limit.is_zero() || sample_interval.is_zero() {
                    return Err("--stall-limit and --sample-interval must be above 0".into());
                }
                let connections = *common.connections.get_or_insert(SOAK_CONNECTIONS);
                common.timeout.get_or_insert(duration + SOAK_TIMEOUT_SLACK);
                fanout_publishers = 1;
                let mode = Mode::Soak(SoakPlan {
                    duration,
                    rate,
                    mix: SoakPlan::mix_of(connections, churn, silent, garbage)?,
                    lifetime: (lifetime_min, lifetime_max),
                    stall_limit,
                    sample_every: sample_interval,
                    warmup,
                });
                let payload = PayloadArgs {
                    payload,
                    text: false,
                };
                (common, payload, mode, 1)
            }
        };
        let connections = common.connections.unwrap_or(DEFAULT_CONNECTIONS);
        let timeout = common.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let url = url::parse(common.url.as_deref().unwrap_or(mode.default_url()))?;
        if !url.addr.ip().is_loopback() && !common.allow_remote {
            return Err(format!(
                "{} is not a loopback address; pass --allow-remote to load another host",
                url.addr.ip()
            ));
        }
        let source_ips = match &common.source_ips {
            Some(spec) => crate::sourceip::parse(spec)?,
            None => Vec::new(),
        };
        if let Some(ip) = source_ips
            .iter()
            .find(|ip| ip.is_ipv4() != url.addr.is_ipv4())
        {
            return Err(format!("source address {ip} is not of the target's family"));
        }
        check_range("--connections", connections, 1, MAX_CONNECTIONS)?;
        check_range(
            "--max-concurrent",
            common.max_concurrent,
            1,
            MAX_CONNECTIONS,
        )?;
        check_range("--threads", common.threads as u64, 1, MAX_THREADS as u64)?;
        check_range("--window", window as u64, 1, 1 << 16)?;
        check_range("--payload", payload.payload as u64, 0, MAX_PAYLOAD as u64)?;
        if let Mode::Throughput {
            messages: Some(0), ..
        } = mode
        {
            return Err("--messages must be at least 1".into());
        }
        if timeout.is_zero() || common.handshake_timeout.is_zero() {
            return Err("--timeout and --handshake-timeout must be above 0".into());
        }
        Ok(Plan {
            mode,
            url,
            connections,
            publishers: fanout_publishers,
            max_concurrent: common.max_concurrent,
            threads: common
                .threads
                .min((connections + fanout_publishers) as usize),
            source_ips,
            pid: common.pid,
            json: common.json,
            progress: common.progress,
            timeout,
            handshake_timeout: common.handshake_timeout,
            payload: payload.payload,
            text: payload.text,
            window,
            deflate: common.deflate,
        })
    }
}

/// The publishing flags of `fanout` and `soak`: a rate and payload in range,
/// and at least one message over the run.
fn check_publishing(rate: u64, payload: usize, duration: Duration) -> Result<(), String> {
    check_range("--rate", rate, 1, MAX_RATE)?;
    check_range(
        "--payload",
        payload as u64,
        crate::fanout::HEADER_LEN as u64,
        MAX_PAYLOAD as u64,
    )?;
    if crate::fanout::Schedule::new(rate, duration, 0, 1).total == 0 {
        return Err("--rate × --duration must come to at least one message".into());
    }
    Ok(())
}

fn check_range(flag: &str, v: u64, lo: u64, hi: u64) -> Result<(), String> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(format!("{flag} {v}: must be in {lo}..={hi}"))
    }
}

/// `20`, `16k`, `16KiB`, `16KB`, `1m`, `1MiB` (all powers of 1024).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a byte count"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        _ => return Err(format!("{s:?}: unknown unit (use B, KiB or MiB)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?}: too large"))
}

/// `10s`, `250ms`, `2m`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_duration_unit(s, Duration::from_secs)
}

/// Like [`parse_duration`], but a plain number is milliseconds.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    parse_duration_unit(s, Duration::from_millis)
}

fn parse_duration_unit(s: &str, plain: fn(u64) -> Duration) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(plain(n));
    }
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(args: &[&str]) -> Result<Job, String> {
        let mut argv = vec!["ringgate-load"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .into_job()
    }

    fn plan(args: &[&str]) -> Result<Plan, String> {
        match job(args)? {
            Job::One(plan) => Ok(*plan),
            other => panic!("not a single mode: {other:?}"),
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("20"), Ok(20));
        assert_eq!(parse_size("16KiB"), Ok(16384));
        assert_eq!(parse_size("16k"), Ok(16384));
        assert_eq!(parse_size("1 MiB"), Ok(1 << 20));
        assert!(parse_size("1x").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_interval("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn builds_plans() {
        let p = plan(&[
            "throughput",
            "--url",
            "ws://127.0.0.1:9/echo",
            "--connections",
            "500",
            "--payload",
            "16KiB",
            "--source-ips",
            "127.0.0.2-127.0.0.3",
            "--threads",
            "2",
        ])
        .unwrap();
        assert_eq!(p.connections, 500);
        assert_eq!(p.payload, 16384);
        assert_eq!(p.window, 16);
        assert_eq!(p.source_ips.len(), 2);
        assert_eq!(
            p.mode,
            Mode::Throughput {
                messages: Some(1000),
                duration: None
            }
        );
        let p = plan(&["throughput", "--duration", "5s"]).unwrap();
        assert_eq!(
            p.mode,
            Mode::Throughput {
                messages: None,
                duration: Some(Duration::from_secs(5))
            }
        );
        let p = plan(&["storm", "-c", "3", "--threads", "8"]).unwrap();
        assert_eq!(p.threads, 3, "no more threads than connections");
        assert_eq!(p.mode.name(), "storm");
        assert!(!p.deflate);
    }

    #[test]
    fn builds_idle_plans_and_takes_deflate_everywhere() {
        let p = plan(&["idle"]).unwrap();
        let idle = |messages| Mode::Idle {
            duration: Duration::from_secs(10),
            messages,
            marker: None,
        };
        assert_eq!((p.mode, p.payload, p.window), (idle(0), 0, 1));
        let p = plan(&["idle", "--messages", "2", "--payload", "1KiB", "--deflate"]).unwrap();
        assert_eq!((p.mode, p.payload, p.window), (idle(2), 1024, 2));
        assert!(p.deflate);
        assert!(plan(&["idle", "--messages", "65537"]).is_err());
        let p = plan(&["idle", "--expect-marker", "rg-42"]).unwrap();
        let Mode::Idle { marker, .. } = p.mode else {
            panic!("idle")
        };
        assert_eq!(marker.unwrap().text(), "rg-42");
        assert!(plan(&["idle", "--expect-marker", ""]).is_err());
        assert!(plan(&["idle", "--expect-marker", "m", "--messages", "1"]).is_err());
        for mode in [
            "storm",
            "throughput",
            "sustained",
            "fanout",
            "realtime",
            "soak",
            "ocpp",
        ] {
            assert!(plan(&[mode, "--deflate"]).unwrap().deflate, "{mode}");
        }
    }

    #[test]
    fn takes_the_seeds_test_type_flag() {
        let argv = |args: &[&str]| args.iter().map(OsString::from).collect::<Vec<_>>();
        let rewritten = |args: &[&str]| seed_spelling(argv(args));
        assert_eq!(
            rewritten(&["load", "--test-type", "storm", "--connections", "200"]),
            Ok(argv(&["load", "storm", "--connections", "200"]))
        );
        assert_eq!(
            rewritten(&["load", "--duration", "120", "--test-type=sustained"]),
            Ok(argv(&["load", "sustained", "--duration", "120"]))
        );
        assert_eq!(rewritten(&["load", "idle"]), Ok(argv(&["load", "idle"])));
        assert_eq!(
            rewritten(&["load", "--test-type", "all", "-c", "30"]),
            Ok(argv(&["load", "all", "-c", "30"]))
        );
        assert!(rewritten(&["load", "--test-type"]).is_err());
        let cli = Cli::try_parse_from(
            rewritten(&["load", "--test-type", "sustained", "--duration", "120"]).unwrap(),
        )
        .unwrap();
        let Job::One(p) = cli.into_job().unwrap() else {
            panic!("one mode")
        };
        assert_eq!(p.mode.name(), "sustained");
    }

    #[test]
    fn builds_fanout_plans() {
        let p = plan(&["fanout", "-c", "1000", "--rate", "200", "--publishers", "3"]).unwrap();
        assert_eq!(
            p.url.target, "/pubsub?channel=bench",
            "fanout's default URL"
        );
        assert_eq!((p.connections, p.publishers), (1000, 3));
        assert_eq!(p.total_connections(), 1003);
        assert_eq!((p.payload, p.text), (64, false));
        assert_eq!(
            p.mode,
            Mode::Fanout {
                rate: 200,
                duration: Duration::from_secs(5)
            }
        );
        let p = plan(&["fanout", "-c", "1", "--threads", "4", "--payload", "20"]).unwrap();
        assert_eq!(
            p.threads, 2,
            "no more threads than subscribers and publishers"
        );
        assert_eq!(plan(&["storm"]).unwrap().url.target, "/echo");
        assert_eq!(plan(&["storm"]).unwrap().publishers, 0);
    }

    #[test]
    fn builds_realtime_plans() {
        let p = plan(&["realtime", "-c", "10000", "--rooms", "100"]).unwrap();
        assert_eq!(p.url.target, "/ws", "realtime's default URL");
        assert_eq!((p.connections, p.publishers), (9900, 100));
        assert_eq!(p.total_connections(), 10_000);
        assert_eq!(p.payload, 64);
        let Mode::Realtime(rt) = &p.mode else {
            panic!("{:?}", p.mode)
        };
        assert_eq!((rt.rate, rt.rooms, rt.publishers_per_room), (10, 100, 1));
        assert_eq!(rt.duration, Duration::from_secs(10));
        assert_eq!(rt.settle, Duration::from_secs(1));
        assert_eq!(p.timeout, Duration::from_secs(10 + 180));
        assert_eq!(p.mode.name(), "realtime");
        assert!(p.mode.delivers());
        let p = plan(&[
            "realtime",
            "-c",
            "9",
            "--rooms",
            "3",
            "--publishers-per-room",
            "2",
            "--jwt-secret",
            "k",
            "--admin-token",
            "",
            "--payload",
            "48",
        ])
        .unwrap();
        assert_eq!((p.connections, p.publishers), (3, 6));
        let Mode::Realtime(rt) = &p.mode else {
            panic!("{:?}", p.mode)
        };
        assert_eq!(rt.jwt_secret, Some(Secret("k".into())));
        assert_eq!(rt.admin_token, None, "an empty token is none");
        for bad in [
            &[
                "realtime",
                "-c",
                "8",
                "--rooms",
                "3",
                "--publishers-per-room",
                "2",
            ][..],
            &["realtime", "--rooms", "0"],
            &["realtime", "--publishers-per-room", "65"],
            &["realtime", "--payload", "50"],
            &["realtime", "--payload", "20"],
            &["realtime", "--rate", "0"],
            &["realtime", "--rate", "1", "--duration", "500ms"],
        ] {
            assert!(plan(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn builds_soak_plans() {
        let p = plan(&["soak"]).unwrap();
        assert_eq!(p.url.target, "/pubsub?channel=soak", "soak's default URL");
        assert_eq!((p.connections, p.publishers, p.payload), (5000, 1, 1024));
        assert_eq!(p.timeout, Duration::from_secs(600 + 120));
        let Mode::Soak(soak) = &p.mode else {
            panic!("{:?}", p.mode)
        };
        assert_eq!(soak.mix, [4300, 500, 100, 100]);
        assert_eq!((soak.duration, soak.rate), (Duration::from_secs(600), 100));
        let p = plan(&[
            "soak",
            "-c",
            "40",
            "--duration",
            "5s",
            "--churn",
            "25",
            "--silent",
            "0",
            "--garbage",
            "50",
            "--timeout",
            "9s",
        ])
        .unwrap();
        assert_eq!(p.timeout, Duration::from_secs(9));
        assert!(matches!(
            p.mode,
            Mode::Soak(SoakPlan {
                mix: [10, 10, 0, 20],
                ..
            })
        ));
        assert_eq!(plan(&["idle"]).unwrap().connections, 100);
    }

    #[test]
    fn refuses_bad_plans() {
        for bad in [
            &["storm", "--url", "ws://192.0.2.1/"][..],
            &["storm", "-c", "0"],
            &["storm", "--threads", "0"],
            &["throughput", "--messages", "0"],
            &["throughput", "--window", "0"],
            &["sustained", "--message-interval", "0"],
            &["idle", "--source-ips", "::1"],
            &["throughput", "--payload", "17MiB"],
            &["fanout", "--payload", "19"],
            &["fanout", "--rate", "0"],
            &["fanout", "--publishers", "0"],
            &["fanout", "--publishers", "65"],
            &["fanout", "--rate", "1", "--duration", "500ms"],
            &["fanout", "--text"],
            &["soak", "--churn", "60", "--garbage", "50"],
            &["soak", "--silent", "101"],
            &["soak", "--lifetime-min", "5s", "--lifetime-max", "1s"],
            &["soak", "--payload", "19"],
            &["soak", "--stall-limit", "0s"],
            &["soak", "-c", "0"],
        ] {
            assert!(plan(bad).is_err(), "{bad:?}");
        }
        assert!(plan(&["storm", "--url", "ws://192.0.2.1/", "--allow-remote"]).is_ok());
    }

    #[test]
    fn builds_ocpp_plans() {
        let p = plan(&["ocpp", "-c", "1000", "--max-concurrent", "100"]).unwrap();
        assert_eq!(p.url.target, "/ocpp", "ocpp's default URL");
        assert_eq!(
            (p.connections, p.publishers, p.max_concurrent),
            (1000, 0, 100)
        );
        assert_eq!(p.timeout, Duration::from_secs(121));
        assert_eq!(p.mode.subprotocol(), Some("ocpp1.6"));
        assert_eq!(
            p.mode,
            Mode::Ocpp(OcppPlan {
                id_prefix: "cp-".into(),
                status: false,
                heartbeats: 1,
                heartbeat_interval: Duration::from_secs(1),
                hold: Duration::ZERO,
                password: None,
                commands: None,
            })
        );
        let p = plan(&[
            "ocpp",
            "--id-prefix",
            "site-a-",
            "--status",
            "--heartbeats",
            "3",
            "--heartbeat-interval",
            "250ms",
            "--hold",
            "2s",
            "--password",
            "pw",
        ])
        .unwrap();
        let Mode::Ocpp(o) = &p.mode else {
            panic!("{:?}", p.mode)
        };
        assert_eq!(
            (o.id_prefix.as_str(), o.status, o.heartbeats),
            ("site-a-", true, 3)
        );
        assert_eq!(o.password, Some(Secret("pw".into())));
        assert_eq!(p.timeout, Duration::from_millis(120_000 + 750 + 2_000));
        assert_eq!(plan(&["storm"]).unwrap().mode.subprotocol(), None);
        assert!(plan(&["ocpp", "--heartbeats", "1000001"]).is_err());
        let p = plan(&[
            "ocpp",
            "--commands",
            "50",
            "--admin-token",
            "t",
            "--hold",
            "2s",
        ])
        .unwrap();
        assert_eq!(
            p.mode.commands(),
            Some(&CommandPlan {
                rate: 50,
                admin_token: Some(Secret("t".into()))
            })
        );
        assert_eq!(
            p.timeout,
            Duration::from_secs(120 + 1 + 2 + 10 + 10),
            "the commands' timeout and slack added"
        );
        assert!(plan(&["ocpp", "--commands", "0"]).is_err());
        assert!(plan(&["ocpp", "--commands", "10001"]).is_err());
        assert_eq!(plan(&["ocpp"]).unwrap().mode.commands(), None);
        assert!(
            plan(&["ocpp", "--payload", "20"]).is_err(),
            "no payload flag"
        );
    }
}
