//! The main thread's side of a run: starts the workers (for a soak run, the
//! monitor; for ocpp with `--commands`, the commands), takes SIGUSR1 for a
//! hold (idle, storm), samples the server (CPU, RSS) and this process (CPU)
//! at each phase boundary, drives the progress line (and idle's marker
//! notice), and merges what the workers measured into an [`Outcome`].

use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::SIGUSR1;

use crate::cli::{Mode, Plan};
use crate::commands::{CommandStats, Commander};
use crate::monitor::{Monitor, Watch};
use crate::phases::{rendezvous_count, run_worker};
use crate::procinfo;
use crate::progress::Progress;
use crate::rooms::RoomSetup;
use crate::stats::{LiveSum, Stats};
use crate::worker::Shared;

/// How long past the deadline a rendezvous still waits for late threads.
pub const RENDEZVOUS_SLACK: Duration = Duration::from_secs(10);

/// The process facts at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub at: Instant,
    pub server_cpu: Option<procinfo::CpuTime>,
    pub server_rss_kib: Option<u64>,
    pub client_cpu_s: f64,
}

impl Sample {
    fn take(pid: Option<u32>) -> Sample {
        Sample {
            at: Instant::now(),
            server_cpu: pid.and_then(|p| procinfo::cpu_time(p).ok()),
            server_rss_kib: pid.and_then(|p| procinfo::rss_kib(p).ok()),
            client_cpu_s: procinfo::own_cpu_seconds(),
        }
    }
}

/// Everything a run measured.
#[derive(Debug)]
pub struct Outcome {
    pub stats: Stats,
    /// Before connecting, after connecting, after the work phase.
    pub start: Sample,
    pub connected: Sample,
    /// Realtime: when every member had joined (settling came next, until
    /// `connected`).
    pub joined: Option<Sample>,
    pub worked: Sample,
    /// Connections up when the connect phase ended.
    pub up_after_connect: u64,
    /// The run hit `--timeout`.
    pub timed_out: bool,
    /// Soak: what the monitor saw (health, server samples).
    pub watch: Option<Watch>,
    /// Realtime: what making the rooms did (set by the caller).
    pub rooms: Option<RoomSetup>,
    /// OCPP `--commands`: what they got.
    pub commands: Option<CommandStats>,
}

/// Says on stderr, once, that every connection opened has the
/// `--expect-marker` message: the moment a caller waiting for a broadcast
/// to arrive everywhere looks for.
struct MarkerNotice {
    pending: bool,
}

impl MarkerNotice {
    fn new(watching: bool) -> MarkerNotice {
        MarkerNotice { pending: watching }
    }

    fn check(&mut self, sum: LiveSum) {
        if self.pending && sum.handshakes > 0 && sum.marked >= sum.handshakes {
            self.pending = false;
            eprintln!(
                "ringgate-load: marker received on all {} connections",
                sum.handshakes
            );
        }
    }
}

/// Runs `plan` to the end.
pub fn run(plan: Plan) -> Outcome {
    let threads = plan.threads;
    let pid = plan.pid;
    if let Some(p) = pid {
        if let Err(e) = procinfo::cpu_time(p) {
            eprintln!("ringgate-load: --pid {p}: {e}");
        }
    }
    let progress_on = plan.progress || std::io::IsTerminal::is_terminal(&std::io::stderr());
    let start = Sample::take(pid);
    let shared = Arc::new(Shared::new(plan, start.at));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("load-{i}"))
                .spawn(move || run_worker(i, shared))
                .expect("spawning a worker thread")
        })
        .collect();
    let monitor = match shared.plan.mode {
        Mode::Soak(_) => Monitor::start(shared.clone(), start.at)
            .map_err(|e| eprintln!("ringgate-load: cannot start the monitor: {e}"))
            .ok(),
        _ => None,
    };
    // SIGUSR1 ends a hold early; other modes keep the signal's default.
    let holds = matches!(shared.plan.mode, Mode::Idle { .. } | Mode::Storm { .. });
    let hold_signal = holds
        .then(|| signal_hook::flag::register(SIGUSR1, shared.hold_stop.clone()))
        .transpose()
        .unwrap_or_else(|e| {
            eprintln!("ringgate-load: cannot take SIGUSR1: {e}");
            None
        });
    let mut progress = Progress::new(progress_on, shared.plan.mode.name(), start.at);
    let far = shared.deadline + RENDEZVOUS_SLACK;
    let tick = Duration::from_millis(100);
    // Every rendezvous but the last ends a part of the connect phase
    // (realtime: the one before the settling ends the joining).
    let mut all_arrived = true;
    let mut joined = None;
    let parts = rendezvous_count(&shared.plan.mode) - 1;
    for part in 1..=parts {
        all_arrived &= shared
            .rendezvous
            .wait(far, tick, || progress.tick(LiveSum::of(&shared.lives)));
        if part + 1 == parts && matches!(shared.plan.mode, Mode::Realtime(_)) {
            joined = Some(Sample::take(pid));
        }
    }
    let connected = Sample::take(pid);
    let up_after_connect = LiveSum::of(&shared.lives).up;
    let commands = shared.plan.mode.commands().map(|c| {
        let commander = Commander::start(&shared.plan, c);
        // The workers keep answering until the commands are back.
        while shared.work_done.load(Acquire) < threads && Instant::now() < far {
            progress.tick(LiveSum::of(&shared.lives));
            std::thread::sleep(tick);
        }
        let stats = commander.stop();
        shared.commands_done.store(true, Release);
        stats
    });
    let mut marker_seen = MarkerNotice::new(shared.plan.mode.marker().is_some());
    all_arrived &= shared.rendezvous.wait(far, tick, || {
        let sum = LiveSum::of(&shared.lives);
        progress.tick(sum);
        marker_seen.check(sum);
    });
    let worked = Sample::take(pid);
    if let Some(id) = hold_signal {
        signal_hook::low_level::unregister(id);
    }
    let watch = monitor.and_then(Monitor::stop);
    let mut stats = Stats::default();
    for h in handles {
        match h.join() {
            Ok(s) => stats.merge(&s),
            Err(_) => eprintln!("ringgate-load: a worker thread panicked"),
        }
    }
    progress.finish();
    Outcome {
        stats,
        start,
        connected,
        joined,
        worked,
        up_after_connect,
        timed_out: !all_arrived || worked.at >= shared.deadline,
        watch,
        rooms: None,
        commands,
    }
}
