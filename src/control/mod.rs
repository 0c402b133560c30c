//! The control plane: plain HTTP/1.1 on the server's port (and, when
//! `RINGGATE_ADMIN_LISTEN` is set, on an internal address too), served by
//! hyper and axum on one thread of its own with a small tokio runtime. A
//! shard hands a connection over once its first request head shows it is not
//! a WebSocket upgrade, so the upgrade path never runs this code. Routes are
//! public (health) or admin (behind `auth`); handlers are async, so an answer
//! may come later, from any thread, without blocking a shard. It talks to
//! the shards only through the hub.

mod auth;
mod body_cap;
mod busy;
mod errors;
mod health;
mod inspect;
mod json_body;
mod labels;
mod local_caller;
mod metrics;
mod prefixed;
mod priority;
mod scrape_cap;
mod serve;

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state, map_response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tower_http::timeout::RequestBodyTimeoutLayer;

pub use errors::ApiError;
pub use inspect::rfc3339;
pub use labels::{LabelValue, Labels};
pub use metrics::{family as metric_family, single as metric_single, MetricsSource};

use crate::config::Config;
use crate::engine::handoff::{HttpGate, PlainHttp};
use crate::hub::{Gathered, Hub, HubError, Latest, ShardMetrics};
use auth::AdminRule;
use serve::{Entrance, Plane};

/// What every request can see of the server: take it in a handler with
/// `axum::Extension<ServerView>`.
#[derive(Clone)]
pub struct ServerView {
    pub hub: Hub,
    pub started: Instant,
    /// Counts the control plane's connections.
    pub(crate) http_gate: HttpGate,
    /// Every shard's latest copy of its figures (what `/metrics` and `/stats` show).
    pub(crate) figures: Arc<Latest<ShardMetrics>>,
}

/// How long `/metrics` and `/stats` wait for the shards' figures before they answer with a
/// busy shard's last copy instead: a saturated shard may take seconds to reach its mailbox.
pub const FIGURES_WAIT: Duration = Duration::from_millis(20);

impl ServerView {
    /// Every shard's figures, fresh from each shard that answers within [`FIGURES_WAIT`],
    /// else its last copy.
    pub(crate) async fn shard_figures(&self) -> Result<Gathered<ShardMetrics>, HubError> {
        self.figures
            .gather(&self.hub, FIGURES_WAIT, |shard| shard.metrics())
            .await
    }
}

/// The HTTP routes a server builder collects.
#[derive(Default)]
pub(crate) struct HttpRoutes {
    public: Router,
    admin: Router,
    paths: Vec<String>,
    /// Figures services add to `/metrics`.
    metrics: Vec<MetricsSource>,
}

impl HttpRoutes {
    /// Routes anyone may call.
    pub(crate) fn public(&mut self, path: &str, route: MethodRouter) {
        self.public = std::mem::take(&mut self.public).route(path, route);
        self.paths.push(path.to_owned());
    }

    /// Routes behind the admin rule, whose bodies are JSON.
    pub(crate) fn admin(&mut self, path: &str, route: MethodRouter) {
        let route = route.route_layer(from_fn(json_body::json_only));
        self.admin = std::mem::take(&mut self.admin).route(path, route);
        self.paths.push(path.to_owned());
    }

    /// A service's figures for `/metrics`.
    pub(crate) fn metrics(&mut self, source: MetricsSource) {
        self.metrics.push(source);
    }

    /// Every path a route was added at.
    pub(crate) fn paths(&self) -> &[String] {
        &self.paths
    }

    /// Adds the built-in routes.
    pub(crate) fn add_builtin(&mut self, config: &Config) {
        self.public("/health", get(health::health));
        self.public("/ws/health", get(health::health));
        let sources = Arc::new(std::mem::take(&mut self.metrics));
        let max_bytes = config.admin.metrics_max_bytes;
        self.admin(
            "/metrics",
            get(move |server| metrics::metrics(server, sources.clone(), max_bytes)),
        );
        self.admin("/connections", get(inspect::connections));
        self.admin("/stats", get(inspect::stats));
    }

    /// One router: the admin routes behind their rule, a JSON 404 for any
    /// other path, the body limits, and JSON for every error answer.
    fn into_router(self, config: &Config) -> Router {
        let rule = Arc::new(AdminRule::new(config));
        let mut router = self.public;
        if self.admin.has_routes() {
            let admin = self
                .admin
                .route_layer(from_fn_with_state(rule, auth::admin_only));
            router = router.merge(admin);
        }
        router
            .fallback(|| async { ApiError::not_found("no route at this path") })
            .layer(DefaultBodyLimit::disable())
            .layer(from_fn_with_state(
                config.http.max_body,
                body_cap::cap_bodies,
            ))
            .layer(RequestBodyTimeoutLayer::new(config.http.body_timeout))
            .layer(map_response(errors::json_errors))
    }
}

/// The running control plane: its thread and the signal that stops it.
pub(crate) struct ControlPlane {
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
}

impl ControlPlane {
    /// Starts the control plane's thread. It serves the connections shards
    /// send through `handoffs` (under `gate`'s public budget), and those
    /// `admin_listener` accepts (under its internal budget).
    pub(crate) fn start(
        routes: HttpRoutes,
        config: &Config,
        view: ServerView,
        gate: HttpGate,
        handoffs: UnboundedReceiver<PlainHttp>,
        admin_listener: Option<std::net::TcpListener>,
    ) -> io::Result<Self> {
        if config.admin.token.0.is_empty() {
            match config.admin.listen.as_str() {
                "" => tracing::warn!("ADMIN_TOKEN is not set: admin routes answer local requests from loopback peers only"),
                listen => tracing::warn!("ADMIN_TOKEN is not set: admin routes answer local requests from loopback peers on {listen} only"),
            }
        }
        let plane = Arc::new(Plane {
            router: routes.into_router(config),
            view,
            idle_timeout: config.http.idle_timeout,
            max_requests: config.http.max_requests,
            max_head: config.server.max_header_bytes,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = watch::channel(false);
        let grace = config.server.drain_timeout;
        let realtime = config.http.realtime_priority;
        let thread = std::thread::Builder::new()
            .name("ringgate-control".to_owned())
            .spawn(move || {
                if realtime {
                    priority::raise_to_realtime();
                }
                runtime.block_on(run(plane, gate, handoffs, admin_listener, stopped, grace));
            })?;
        Ok(Self { stop, thread })
    }

    /// Lets every connection finish the request in hand (up to the drain
    /// timeout), then ends the thread.
    pub(crate) fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.thread.join();
    }
}

/// The control plane's loop: take connections until stopped, then wait for
/// the open ones to finish, at most `grace`.
async fn run(
    plane: Arc<Plane>,
    gate: HttpGate,
    mut handoffs: UnboundedReceiver<PlainHttp>,
    admin_listener: Option<std::net::TcpListener>,
    stopped: watch::Receiver<bool>,
    grace: Duration,
) {
    let admin = admin_listener.and_then(|l| {
        match l
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(l))
        {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!("admin listener unusable: {e}");
                None
            }
        }
    });
    let mut watch_stop = stopped.clone();
    loop {
        tokio::select! {
            conn = handoffs.recv() => match conn {
                Some(conn) => spawn_handed_off(&plane, conn, &stopped),
                None => break,
            },
            accepted = accept(admin.as_ref()) => match accepted {
                Ok((stream, _)) => match gate.internal.admit() {
                    Some(ticket) => {
                        let plane = plane.clone();
                        let stop = stopped.clone();
                        tokio::spawn(async move {
                            serve::serve(plane, Entrance::Internal, stream, Vec::new(), stop)
                                .await;
                            drop(ticket);
                        });
                    }
                    None => {
                        tokio::spawn(busy::refuse(stream));
                    }
                },
                Err(e) => {
                    tracing::warn!("admin listener: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = serve::stop_requested(&mut watch_stop) => break,
        }
    }
    let deadline = tokio::time::Instant::now() + grace;
    while gate.open() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The admin listener's next connection; never, without one.
async fn accept(listener: Option<&TcpListener>) -> io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Serves a connection a shard handed over.
fn spawn_handed_off(plane: &Arc<Plane>, conn: PlainHttp, stopped: &watch::Receiver<bool>) {
    let PlainHttp {
        socket,
        bytes,
        ticket,
    } = conn;
    let stream = match into_tokio(socket) {
        Ok(stream) => stream,
        Err(e) => {
            tracing::debug!("handed-over socket unusable: {e}");
            return;
        }
    };
    let plane = plane.clone();
    let stop = stopped.clone();
    tokio::spawn(async move {
        serve::serve(plane, Entrance::Public, stream, bytes, stop).await;
        drop(ticket);
    });
}

fn into_tokio(socket: OwnedFd) -> io::Result<TcpStream> {
    let stream = std::net::TcpStream::from(socket);
    stream.set_nonblocking(true)?;
    TcpStream::from_std(stream)
}
