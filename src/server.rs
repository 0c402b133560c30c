//! Starting and stopping a server: the builder collects routes, `start` binds
//! one listener per shard and spawns the pinned shard threads, and the handle
//! reports the address, triggers the graceful drain and joins the threads.

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::config::Config;
use crate::engine::{cpus, run_shard, socket, Driver, ShardSeed, Shared};
use crate::handler::Handler;
use crate::hub::Hub;
use crate::routes::{Echo, Health, HttpHandler, Routes};

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
        }
    }
}

/// Collects routes before the server starts.
pub struct ServerBuilder {
    config: Config,
    routes: Routes,
}

impl ServerBuilder {
    /// Serves WebSocket upgrades at `pattern` (an exact path, or a prefix
    /// ending in `/*`) with `handler`.
    pub fn websocket(mut self, pattern: &str, handler: impl Handler) -> Self {
        self.routes.add_ws(pattern, Arc::new(handler));
        self
    }

    /// Serves plain HTTP requests at `pattern` with `handler`.
    pub fn http(mut self, pattern: &str, handler: impl HttpHandler) -> Self {
        self.routes.add_http(pattern, Arc::new(handler));
        self
    }

    /// Binds the listeners and starts the shards. Built-in routes (`/echo`
    /// when enabled, `/health`) come after the ones added here.
    pub fn start(mut self) -> Result<ServerHandle, ServerError> {
        let config = self.config;
        if config.echo.enabled {
            self.routes.add_ws(&config.echo.path, Arc::new(Echo));
        }
        self.routes.add_http("/health", Arc::new(Health));
        self.routes.add_http("/ws/health", Arc::new(Health));

        let driver = Driver::select(config.server.io).map_err(ServerError::Driver)?;
        if config.server.direct_descriptors && driver == Driver::Epoll {
            tracing::warn!("RINGGATE_DIRECT_DESCRIPTORS applies to io_uring only; epoll uses process descriptors");
        }
        match socket::raise_fd_limit() {
            Ok(limit) => tracing::debug!("open file limit {limit}"),
            Err(e) => tracing::warn!("cannot raise the open file limit: {e}"),
        }
        let cores = cpus::allowed_cores();
        let shards = match config.server.shards {
            0 => cores.len().max(1),
            n => n,
        };
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

        let (hub, inboxes) = Hub::new(shards).map_err(ServerError::Setup)?;
        let shared = Arc::new(Shared {
            config,
            routes: self.routes,
            hub: hub.clone(),
            started: Instant::now(),
            sockets: AtomicUsize::new(0),
        });
        let pin = shards <= cores.len();
        let mut threads = Vec::with_capacity(shards);
        for (index, (listener, inbox)) in listeners.into_iter().zip(inboxes).enumerate() {
            let seed = ShardSeed {
                index,
                cpu: pin.then(|| cores[index]),
                listener,
                inbox,
            };
            let shared = shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("ringgate-shard-{index}"))
                .spawn(move || run_shard(driver, seed, shared))
                .map_err(ServerError::Setup)?;
            threads.push(thread);
        }
        tracing::info!(
            "listening on {local_addr} with {shards} shards on {}",
            driver.name()
        );
        Ok(ServerHandle {
            local_addr,
            driver,
            hub,
            threads,
        })
    }
}

/// A running server.
pub struct ServerHandle {
    local_addr: SocketAddr,
    driver: Driver,
    hub: Hub,
    threads: Vec<JoinHandle<std::io::Result<()>>>,
}

impl ServerHandle {
    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
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
    /// Waits for every shard to finish.
    pub fn join(self) -> Result<(), ServerError> {
        let mut result = Ok(());
        for (shard, thread) in self.threads.into_iter().enumerate() {
            let outcome = match thread.join() {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "panicked".to_owned(),
            };
            tracing::error!(shard, "shard failed: {outcome}");
            result = Err(ServerError::Shard {
                shard,
                message: outcome,
            });
        }
        result
    }
}
