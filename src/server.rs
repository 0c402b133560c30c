//! Starting and stopping a server: the builder collects routes, `start` plans
//! the connection limits, binds one listener per shard and spawns the pinned
//! shard threads, and the handle reports the address, triggers the graceful
//! drain and joins the threads. A shard that dies (an error or a panic in the
//! engine) stops the whole server: nothing runs on with a dead core.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use crate::config::Config;
use crate::control::{ControlPlane, HttpRoutes, ServerView};
use crate::engine::capacity::{self, NoCapacity};
use crate::engine::handoff::HttpGate;
use crate::engine::{cpus, run_shard, socket, Driver, ShardEvent, ShardSeed, Shared};
use crate::handler::Handler;
use crate::hub::{Hub, MailboxLimits};
use crate::routes::{Echo, Routes};

/// Why a server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("io_uring driver unavailable: {0} (set RINGGATE_IO=epoll or auto)")]
    Driver(std::io::Error),
    #[error("cannot set up shards: {0}")]
    Setup(std::io::Error),
    #[error(transparent)]
    Capacity(#[from] NoCapacity),
    #[error("shard {shard} failed: {message}")]
    Shard { shard: usize, message: String },
}

/// Entry point: `Server::builder(config)`.
pub struct Server;

impl Server {
    pub fn builder(config: Config) -> ServerBuilder {
        ServerBuilder {
            config,
            routes: Routes::default(),
            http: HttpRoutes::default(),
        }
    }
}

/// Collects routes before the server starts.
pub struct ServerBuilder {
    config: Config,
    routes: Routes,
    http: HttpRoutes,
}

impl ServerBuilder {
    /// Serves WebSocket upgrades at `pattern` (an exact path, or a prefix
    /// ending in `/*`) with `handler`.
    pub fn websocket(mut self, pattern: &str, handler: impl Handler) -> Self {
        self.routes.add_ws(pattern, Arc::new(handler));
        self
    }

    /// Serves plain HTTP at `path` (axum's syntax: `/items/{id}`) with
    /// `route`, for anyone. Handlers are async and run on the control
    /// plane's thread, never on a shard; `axum::Extension<ServerView>` gives
    /// them the hub. Panics, as axum does, on a path that is not valid or
    /// that another HTTP route already holds.
    pub fn http(mut self, path: &str, route: axum::routing::MethodRouter) -> Self {
        self.http.public(path, route);
        self
    }

    /// Like [`ServerBuilder::http`], for admin routes: callers need
    /// `Authorization: Bearer $ADMIN_TOKEN`, or, without a token configured,
    /// a loopback address and no sign of a browser page or proxy (README,
    /// the admin rule); a request body must be `application/json` (415).
    pub fn admin(mut self, path: &str, route: axum::routing::MethodRouter) -> Self {
        self.http.admin(path, route);
        self
    }

    /// Adds a service's figures to `/metrics`: `source` runs on each scrape.
    pub fn metrics(mut self, source: crate::control::MetricsSource) -> Self {
        self.http.metrics(source);
        self
    }

    /// The configuration the server will start with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Binds the listeners and starts the shards and the control plane.
    /// Built-in routes (`/echo` when enabled, `/health`, `/ws/health`) come
    /// after the ones added here.
    pub fn start(mut self) -> Result<ServerHandle, ServerError> {
        let config = self.config;
        if config.echo.enabled {
            let compression = config.deflate_mode(config.echo.compression);
            self.routes
                .add_ws(&config.echo.path, Arc::new(Echo { compression }));
        }
        self.http.add_builtin(&config);
        for path in self.http.paths() {
            self.routes.add_http(path);
        }

        let driver = Driver::select(config.server.io).map_err(ServerError::Driver)?;
        if config.server.direct_descriptors && driver == Driver::Epoll {
            tracing::warn!("RINGGATE_DIRECT_DESCRIPTORS applies to io_uring only; epoll uses process descriptors");
        }
        let nofile = socket::raise_fd_limit();
        tracing::debug!("open file limit {nofile}");
        let cores = cpus::allowed_cores();
        let shards = match config.server.shards {
            0 => cores.len().max(1),
            n => n,
        };
        let direct = config.server.direct_descriptors && driver == Driver::Uring;
        let capacity = capacity::plan(
            config.server.max_connections,
            config.server.admin_reserve,
            shards,
            nofile,
            direct,
        )?;
        let bind_err = |source| ServerError::Bind {
            addr: format!("{}:{}", config.server.host, config.server.port),
            source,
        };
        let addr = socket::resolve(&config.server.host, config.server.port).map_err(bind_err)?;
        socket::ensure_port_free(addr).map_err(bind_err)?;
        let listeners = socket::bind_listeners(
            addr,
            shards,
            config.server.backlog,
            config.server.defer_accept,
        )
        .map_err(bind_err)?;
        let local_addr = listeners[0].local_addr().map_err(bind_err)?;
        let admin_listener = match config.admin.listen.as_str() {
            "" => None,
            addr => {
                Some(
                    std::net::TcpListener::bind(addr).map_err(|source| ServerError::Bind {
                        addr: addr.to_owned(),
                        source,
                    })?,
                )
            }
        };
        let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());

        let mailbox = MailboxLimits {
            commands: config.server.mailbox_commands,
            bytes: config.server.mailbox_bytes,
        };
        let (hub, inboxes) = Hub::new(shards, mailbox).map_err(ServerError::Setup)?;
        let started = Instant::now();
        let (http_gate, handoffs) =
            HttpGate::new(config.http.max_connections, config.admin.max_connections);
        let view = ServerView {
            hub: hub.clone(),
            started,
            http_gate: http_gate.clone(),
            figures: Arc::default(),
        };
        let control = ControlPlane::start(
            self.http,
            &config,
            view,
            http_gate.clone(),
            handoffs,
            admin_listener,
        )
        .map_err(ServerError::Setup)?;
        let shared = Arc::new(Shared {
            config,
            routes: self.routes,
            hub: hub.clone(),
            capacity,
            sockets: AtomicUsize::new(0),
            http_gate,
        });
        let pin = shards <= cores.len();
        let (event_tx, events) = crossbeam_channel::unbounded();
        let mut threads = Vec::with_capacity(shards);
        for (index, (listener, inbox)) in listeners.into_iter().zip(inboxes).enumerate() {
            let seed = ShardSeed {
                index,
                cpu: pin.then(|| cores[index]),
                listener,
                inbox,
                events: event_tx.clone(),
            };
            let shared = shared.clone();
            let exits = event_tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("ringgate-shard-{index}"))
                .spawn(move || run_and_report(index, exits, || run_shard(driver, seed, shared)))
                .map_err(ServerError::Setup)?;
            threads.push(thread);
        }
        let handle = ServerHandle {
            local_addr,
            admin_addr,
            driver,
            hub,
            threads,
            events,
            control,
        };
        handle.wait_ready()?;
        tracing::info!(
            "listening on {local_addr} with {shards} shards on {}",
            driver.name()
        );
        if let Some(admin) = handle.admin_addr {
            tracing::info!("admin routes, /metrics and health also on {admin}");
        }
        Ok(handle)
    }
}

/// Runs a shard and reports how it ended, panics included, to the handle.
fn run_and_report(
    index: usize,
    exits: Sender<ShardEvent>,
    shard: impl FnOnce() -> std::io::Result<()>,
) {
    let outcome = match catch_unwind(AssertUnwindSafe(shard)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(payload) => Err(match payload.downcast_ref::<&str>() {
            Some(text) => format!("panicked: {text}"),
            None => match payload.downcast_ref::<String>() {
                Some(text) => format!("panicked: {text}"),
                None => "panicked".to_owned(),
            },
        }),
    };
    // The handle may be gone (a library user dropped it): nobody to tell.
    let _ = exits.send(ShardEvent::Exited(index, outcome));
}

/// Starts the graceful drain from any thread (a signal handler's, say).
#[derive(Clone)]
pub struct Stopper {
    hub: Hub,
}

impl Stopper {
    /// Stop accepting, close every connection with 1001, drain.
    pub fn stop(&self) {
        self.hub.shutdown();
    }

    /// Hands `signals` (registered early, so a signal during start-up is not
    /// lost) to a thread of its own: the first signal starts the drain, a
    /// second one exits the process at once with status 1.
    pub fn on_signals(self, mut signals: signal_hook::iterator::Signals) {
        std::thread::spawn(move || {
            let mut signals = signals.forever();
            if let Some(signal) = signals.next() {
                tracing::info!(signal, "shutting down");
                self.stop();
            }
            if let Some(signal) = signals.next() {
                eprintln!("ringgate: signal {signal} while draining, exiting now");
                std::process::exit(1);
            }
        });
    }
}

/// A running server.
pub struct ServerHandle {
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    driver: Driver,
    hub: Hub,
    threads: Vec<JoinHandle<()>>,
    events: Receiver<ShardEvent>,
    control: ControlPlane,
}

impl ServerHandle {
    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
    /// The admin listener's address (`RINGGATE_ADMIN_LISTEN`), if any.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }
    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.threads.len()
    }
    /// "io_uring" or "epoll".
    pub fn io_name(&self) -> &'static str {
        self.driver.name()
    }
    /// The cross-shard handle.
    pub fn hub(&self) -> Hub {
        self.hub.clone()
    }
    /// Starts the graceful drain: stop accepting, close every connection
    /// with 1001, wait for the close handshakes up to the drain timeout.
    pub fn shutdown(&self) {
        self.hub.shutdown();
    }
    /// A handle that starts the drain from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            hub: self.hub.clone(),
        }
    }
    /// Waits until every shard has set up its driver; a shard that fails
    /// its set-up fails the start (the others are told to stop).
    fn wait_ready(&self) -> Result<(), ServerError> {
        let mut ready = 0;
        while ready < self.threads.len() {
            match self.events.recv() {
                Ok(ShardEvent::Ready) => ready += 1,
                Ok(ShardEvent::Exited(shard, outcome)) => {
                    self.hub.shutdown();
                    let message = outcome.err().unwrap_or_else(|| "exited".to_owned());
                    return Err(ServerError::Shard { shard, message });
                }
                // Every shard thread is gone without a word: impossible while
                // `start` holds a sender, but no reason to hang either.
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Waits for every shard to finish. If a shard dies first (an error or
    /// a panic in the engine), it is logged at once, the other shards are
    /// drained, and the first failure is returned: the server never runs on
    /// with a dead shard.
    pub fn join(self) -> Result<(), ServerError> {
        let mut result = Ok(());
        let mut exited = 0;
        while exited < self.threads.len() {
            let Ok(event) = self.events.recv() else {
                break;
            };
            let ShardEvent::Exited(shard, outcome) = event else {
                continue;
            };
            exited += 1;
            if let Err(message) = outcome {
                tracing::error!(shard, "shard failed: {message}; stopping the server");
                if result.is_ok() {
                    self.hub.shutdown();
                    result = Err(ServerError::Shard { shard, message });
                }
            }
        }
        for thread in self.threads {
            // Every outcome, panics included, was reported above.
            let _ = thread.join();
        }
        if let Some((open, cut, took)) = self.hub.drain_summary() {
            tracing::info!(
                "drain ended after {} ms: {open} connections open when it began, {} closed cleanly, {cut} cut at the drain timeout",
                took.as_millis(),
                open - cut.min(open),
            );
        }
        self.control.stop();
        result
    }
}
