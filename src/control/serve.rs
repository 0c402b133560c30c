//! One plain-HTTP connection on the control plane: hyper's HTTP/1.1 server
//! (keep-alive, pipelining, `Expect: 100-continue`, HEAD, chunked bodies)
//! over the socket a shard handed over, with the bytes that shard already
//! read in front (or one the internal address accepted). Each request gets
//! the peer's (canonical) address, the entrance it came in by and the server
//! view; the connection's last allowed request is answered with
//! `Connection: close`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tower::ServiceExt;

use super::prefixed::Prefixed;
use super::ServerView;
use crate::engine::socket::canonical;

/// What every connection of the control plane shares.
pub(super) struct Plane {
    pub(super) router: Router,
    pub(super) view: ServerView,
    pub(super) idle_timeout: Duration,
    pub(super) max_requests: usize,
    pub(super) max_head: usize,
}

/// Which address a connection came in on; every request of it carries this
/// as an extension (the admin rule reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entrance {
    /// The server's port: a shard handed the connection over.
    Public,
    /// The internal admin address (`RINGGATE_ADMIN_LISTEN`).
    Internal,
}

/// Serves one connection until it ends, or until `stop` asks every
/// connection to finish the request in hand and close.
pub(super) async fn serve(
    plane: Arc<Plane>,
    entrance: Entrance,
    stream: TcpStream,
    prefix: Vec<u8>,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(peer) = stream.peer_addr().map(canonical) else {
        return; // gone already
    };
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Prefixed::new(prefix, stream));
    let service = PerConnection {
        plane: plane.clone(),
        entrance,
        peer,
        served: Arc::new(AtomicUsize::new(0)),
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(plane.idle_timeout)
        .keep_alive(true)
        .max_buf_size(plane.max_head.max(8192))
        .pipeline_flush(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let stopped = stop_requested(&mut stop);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, "HTTP connection ended: {e}");
            }
        }
        () = stopped => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once the control plane is told to stop; never if its handle was
/// dropped without a word (a library user who let the `ServerHandle` go:
/// the shards serve on, and so does plain HTTP).
pub(super) async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The router as one connection's hyper service.
#[derive(Clone)]
struct PerConnection {
    plane: Arc<Plane>,
    entrance: Entrance,
    peer: SocketAddr,
    /// Requests this connection made so far.
    served: Arc<AtomicUsize>,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for PerConnection {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        request.extensions_mut().insert(self.entrance);
        request.extensions_mut().insert(self.plane.view.clone());
        let last = self.served.fetch_add(1, Ordering::Relaxed) + 1 >= self.plane.max_requests;
        let answer = self.plane.router.clone().oneshot(request);
        Box::pin(async move {
            let mut response = answer.await?;
            if last {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(response)
        })
    }
}
