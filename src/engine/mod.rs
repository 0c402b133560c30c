//! The I/O engine: one shard per CPU, each pinned, each with its own listener,
//! event loop and connections. `shard` holds the driver-independent logic;
//! `uring` (completion-based, the default) and `epoll` (readiness-based
//! fallback) only move bytes between sockets and the shard.

pub(crate) mod capacity;
pub(crate) mod cpus;
mod descriptor;
mod epoll;
pub(crate) mod handoff;
pub(crate) mod sendq;
pub(crate) mod shard;
pub(crate) mod socket;
mod uring;

use std::net::TcpListener;
use std::sync::atomic::AtomicUsize;

use crate::config::{Config, IoMode};
use crate::hub::{Hub, ShardInbox};
use crate::routes::Routes;
use capacity::Capacity;
use handoff::HttpGate;

/// Read-only state every shard shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) routes: Routes,
    pub(crate) hub: Hub,
    /// The connection limits the shards enforce.
    pub(crate) capacity: Capacity,
    /// Open sockets, all shards (the MAX_CONNECTIONS guard).
    pub(crate) sockets: AtomicUsize,
    /// Where plain-HTTP connections go once their first head is read.
    pub(crate) http_gate: HttpGate,
}

/// Which driver runs the shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Uring,
    Epoll,
}

impl Driver {
    /// The name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Uring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }

    /// Picks the driver for `mode`; `auto` probes io_uring and falls back to
    /// epoll with one log line saying why.
    pub(crate) fn select(mode: IoMode) -> Result<Driver, std::io::Error> {
        match mode {
            IoMode::Epoll => Ok(Driver::Epoll),
            IoMode::Uring => uring::probe().map(|_| Driver::Uring),
            IoMode::Auto => match uring::probe() {
                Ok(()) => Ok(Driver::Uring),
                Err(e) => {
                    tracing::warn!("io_uring unavailable ({e}); using the epoll driver");
                    Ok(Driver::Epoll)
                }
            },
        }
    }
}

/// What a shard thread tells the server handle.
pub(crate) enum ShardEvent {
    /// Set up (ring or poll instance, buffers) and serving.
    Ready,
    /// Ended; `Err` says what killed it.
    Exited(usize, Result<(), String>),
}

/// Everything one shard thread starts with.
pub(crate) struct ShardSeed {
    pub(crate) index: usize,
    pub(crate) cpu: Option<usize>,
    pub(crate) listener: TcpListener,
    pub(crate) inbox: ShardInbox,
    pub(crate) events: crossbeam_channel::Sender<ShardEvent>,
}

/// Runs one shard's event loop on the current thread until it has drained.
pub(crate) fn run_shard(
    driver: Driver,
    seed: ShardSeed,
    shared: std::sync::Arc<Shared>,
) -> std::io::Result<()> {
    if let Some(cpu) = seed.cpu {
        if !cpus::pin_to(cpu) {
            tracing::warn!(shard = seed.index, cpu, "could not pin shard to its CPU");
        }
    }
    let listener = seed.listener;
    let core = shard::Shard::new(seed.index, seed.inbox, seed.events, shared);
    #[cfg(debug_assertions)]
    fault::arm(seed.index);
    match driver {
        Driver::Uring => uring::run(core, listener),
        Driver::Epoll => epoll::run(core, listener),
    }
}

/// Fault injection for the test suite, compiled into debug builds only:
/// `RINGGATE_TEST_SHARD_PANIC=INDEX:MS` makes shard INDEX panic outside any
/// guard MS milliseconds after it starts, as an engine bug would, so the
/// tests can check that a dead shard stops the process.
#[cfg(debug_assertions)]
pub(crate) mod fault {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    thread_local! {
        static PANIC_AT: Cell<Option<Instant>> = const { Cell::new(None) };
    }

    pub(crate) fn arm(shard: usize) {
        let Ok(spec) = std::env::var("RINGGATE_TEST_SHARD_PANIC") else {
            return;
        };
        let Some((index, ms)) = spec.split_once(':') else {
            return;
        };
        if index.parse() == Ok(shard) {
            let after = Duration::from_millis(ms.parse().unwrap_or(0));
            PANIC_AT.set(Some(Instant::now() + after));
        }
    }

    /// Called from the shard's timer sweep.
    pub(crate) fn check() {
        if PANIC_AT.get().is_some_and(|at| Instant::now() >= at) {
            panic!("RINGGATE_TEST_SHARD_PANIC: injected shard failure");
        }
    }
}
