//! Peer WebSocket servers for `scripts/compare.sh`, which runs them side by
//! side with ringgate: an echo server on every path (against ringgate's
//! `/echo` route) and, on `/pubsub`, a pub/sub server with the semantics of
//! `examples/pubsub.rs` (against that example, for `ringgate-load fanout`).
//!
//! ```text
//! cargo run --release --example peer_echo -- --impl tungstenite|fastwebsockets|tokio-websockets [--host 127.0.0.1] [--port 0]
//! ```
//!
//! Each implementation is written the way the crate's own echo example and
//! benchmark server write it: one current-thread tokio runtime, one task per
//! connection, text and binary messages echoed, pings and closes answered by
//! the library, any path but `/pubsub` accepted. Two things differ from those
//! examples, so that the socket setup matches ringgate's and only the
//! WebSocket code is compared: the listen backlog is 4096 (tokio's default of
//! 128 overflows with 500 handshakes in flight, and the benchmark then
//! measures the SYN retransmit timer) and accepted sockets get `TCP_NODELAY`.
//!
//! Pub/sub: a connection to `/pubsub?channel=NAME` (default `bench`, 1..=64
//! bytes, else refused) subscribes to that channel unless it is a publisher
//! (`&role=pub`), and every text or binary message any connection on the
//! channel sends goes, as it came, to every subscriber (itself included when
//! it is one). Each channel is a `tokio::sync::broadcast` of the message in
//! the form the crate sends, in a map shared by the connections ([`Hub`]);
//! each subscriber writes what it receives to its socket, everything already
//! queued before one flush. A subscriber more than [`CHANNEL_CAPACITY`]
//! messages behind skips the oldest (the load tool counts them as
//! `fanout_gap`; the server prints how many on stderr when it leaves), so a
//! slow subscriber never holds up a publisher. Where the crate allows it the
//! payload is shared, not copied, per subscriber (fastwebsockets,
//! tokio-websockets); tungstenite 0.24's `Message` owns a `Vec`, so each
//! subscriber gets its own copy.
//!
//! When ready it prints `listening on HOST:PORT` on stdout, as ringgate does.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt as _, StreamExt as _, TryStreamExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::broadcast;

const BACKLOG: u32 = 4096;
/// Messages a channel keeps for its slowest subscriber (about 4 s of
/// `ringgate-load fanout --rate 1000`); one further behind skips the oldest.
const CHANNEL_CAPACITY: usize = 4096;
const USAGE: &str = "usage: peer_echo --impl tungstenite|fastwebsockets|tokio-websockets \
                     [--host 127.0.0.1] [--port 0]";

#[derive(Clone, Copy)]
enum Impl {
    Tungstenite,
    FastWebSockets,
    TokioWebSockets,
}

fn main() {
    let (imp, addr) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("peer_echo: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(serve(imp, addr)) {
        eprintln!("peer_echo: {e}");
        std::process::exit(1);
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(Impl, SocketAddr), String> {
    let (mut imp, mut host, mut port) = (None, "127.0.0.1".to_string(), "0".to_string());
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--impl" => {
                imp = Some(match value()?.as_str() {
                    "tungstenite" | "tokio-tungstenite" => Impl::Tungstenite,
                    "fastwebsockets" => Impl::FastWebSockets,
                    "tokio-websockets" => Impl::TokioWebSockets,
                    other => return Err(format!("unknown --impl {other}")),
                })
            }
            "--host" => host = value()?,
            "--port" => port = value()?,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    let imp = imp.ok_or("--impl is required")?;
    let addr = format!("{host}:{port}")
        .parse()
        .map_err(|e| format!("bad --host/--port: {e}"))?;
    Ok((imp, addr))
}

async fn serve(imp: Impl, addr: SocketAddr) -> std::io::Result<()> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener: TcpListener = socket.listen(BACKLOG)?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    match imp {
        Impl::Tungstenite => accept_loop(listener, tungstenite::serve).await,
        Impl::FastWebSockets => accept_loop(listener, fastws::serve).await,
        Impl::TokioWebSockets => accept_loop(listener, tokio_ws::serve).await,
    }
}

/// Accepts for ever, one task per connection, all sharing one [`Hub`].
async fn accept_loop<T, F>(listener: TcpListener, serve: impl Fn(TcpStream, Hub<T>) -> F) -> !
where
    F: Future<Output = ()> + Send + 'static,
{
    let hub = Hub::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // EMFILE and the like: keep serving the connections we have.
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream, hub.clone()));
    }
}

// ---- pub/sub: routes and channels, shared by the three implementations ----

/// Where a `/pubsub` connection goes, read from its query as
/// `examples/pubsub.rs` reads it.
struct Route {
    channel: String,
    publisher: bool,
}

impl Route {
    /// `Ok(None)` for any path but `/pubsub` (an echo connection), `Err` for a
    /// channel name that is empty or longer than 64 bytes.
    fn of(path: &str, query: Option<&str>) -> Result<Option<Route>, &'static str> {
        if path != "/pubsub" {
            return Ok(None);
        }
        let query = query.unwrap_or("");
        let channel = query_param(query, "channel").unwrap_or_else(|| "bench".into());
        if channel.is_empty() || channel.len() > 64 {
            return Err("channel must be 1..=64 bytes");
        }
        let publisher = query_param(query, "role").as_deref() == Some("pub");
        Ok(Some(Route { channel, publisher }))
    }
}

/// The value of the first `name=value` pair of `query`, `%XX` and `+`
/// decoded in both (as ringgate's `UpgradeRequest::query_param`).
fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| percent_decode(key) == name)
        .map(|(_, value)| percent_decode(value))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |i: usize| bytes.get(i).and_then(|&b| (b as char).to_digit(16));
    let (mut out, mut i) = (Vec::with_capacity(bytes.len()), 0);
    while i < bytes.len() {
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi << 4 | lo) as u8);
                i += 2;
            }
            (b'+', ..) => out.push(b' '),
            (b, ..) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The channels by name, each a broadcast of `T`, the message in the form the
/// crate sends (cloned once per subscriber). One per process; the lock is only
/// taken when a connection joins or leaves, never per message.
struct Hub<T>(Arc<Mutex<HashMap<String, broadcast::Sender<T>>>>);

impl<T> Hub<T> {
    fn new() -> Self {
        Hub(Arc::default())
    }
}

impl<T> Clone for Hub<T> {
    fn clone(&self) -> Self {
        Hub(Arc::clone(&self.0))
    }
}

impl<T: Clone> Hub<T> {
    /// Puts a connection on its channel (created on first use): the sender
    /// it publishes with and, unless it is a publisher, its subscription.
    fn join(&self, route: Route) -> (Member<T>, Subscription<T>) {
        let tx = self
            .0
            .lock()
            .expect("hub lock")
            .entry(route.channel.clone())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .clone();
        let rx = (!route.publisher).then(|| tx.subscribe());
        let member = Member {
            hub: self.clone(),
            channel: route.channel,
            tx,
        };
        (member, Subscription { rx, lost: 0 })
    }
}

/// A connection's place on a channel; the last one to leave removes the
/// channel from the hub.
struct Member<T> {
    hub: Hub<T>,
    channel: String,
    tx: broadcast::Sender<T>,
}

impl<T> Member<T> {
    /// Sends to every subscriber; never waits. With none, the message is
    /// dropped, as ringgate drops it.
    fn publish(&self, msg: T) {
        let _ = self.tx.send(msg);
    }
}

impl<T> Drop for Member<T> {
    fn drop(&mut self) {
        let mut channels = self.hub.0.lock().expect("hub lock");
        // Ours and the hub's: no other connection is left on the channel.
        if self.tx.strong_count() == 2 {
            channels.remove(&self.channel);
        }
    }
}

/// What a subscriber receives; nothing, for ever, for a publisher.
struct Subscription<T> {
    rx: Option<broadcast::Receiver<T>>,
    /// Messages skipped because this subscriber lagged.
    lost: u64,
}

impl<T: Clone> Subscription<T> {
    /// The next message. Cancel-safe, for `tokio::select!`.
    async fn recv(&mut self) -> T {
        if let Some(rx) = &mut self.rx {
            loop {
                match rx.recv().await {
                    Ok(msg) => return msg,
                    Err(broadcast::error::RecvError::Lagged(n)) => self.lost += n,
                    // The connection's own `Member` keeps the channel open.
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        }
        std::future::pending().await
    }

    /// A message already queued, without waiting.
    fn try_recv(&mut self) -> Option<T> {
        let rx = self.rx.as_mut()?;
        loop {
            match rx.try_recv() {
                Ok(msg) => return Some(msg),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.lost += n,
                Err(_) => return None,
            }
        }
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        if self.lost > 0 {
            let lost = self.lost;
            eprintln!("peer_echo: a subscriber lagged and skipped {lost} messages");
        }
    }
}

/// Pub/sub for a crate whose socket is a `Stream` and a `Sink` of its
/// messages (tokio-tungstenite, tokio-websockets): data messages (`is_data`)
/// are published, control frames are the crate's business, and everything
/// the subscription has queued is fed before one flush.
async fn pubsub_stream<S, M, E>(
    mut ws: S,
    (member, mut sub): (Member<M>, Subscription<M>),
    is_data: fn(&M) -> bool,
) -> Result<(), E>
where
    S: futures_util::Stream<Item = Result<M, E>> + futures_util::Sink<M, Error = E> + Unpin,
    M: Clone,
{
    loop {
        tokio::select! {
            msg = ws.next() => match msg.transpose()? {
                Some(msg) if is_data(&msg) => member.publish(msg),
                Some(_) => {}
                None => return Ok(()),
            },
            msg = sub.recv() => {
                ws.feed(msg).await?;
                while let Some(msg) = sub.try_recv() {
                    ws.feed(msg).await?;
                }
                ws.flush().await?;
            }
        }
    }
}

// ---- the implementations ---------------------------------------------------

/// tokio-tungstenite, as its `examples/echo-server.rs`: `accept_hdr_async`
/// with the default config (the callback only reads the path and query),
/// then for echo the read half forwarded into the write half. Pub/sub runs
/// one task per connection, `select!` between the stream and the channel;
/// queued messages are `feed` into tungstenite's write buffer, then one
/// `flush`. A `Message` owns its payload, so every subscriber clones it.
mod tungstenite {
    use super::*;
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    use tokio_tungstenite::tungstenite::http::StatusCode;
    use tokio_tungstenite::tungstenite::{Error, Message};
    use tokio_tungstenite::WebSocketStream;

    pub async fn serve(stream: TcpStream, hub: Hub<Message>) {
        let mut route = None;
        #[allow(clippy::result_large_err)] // the signature of tungstenite's `Callback`
        let read_route = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
            match Route::of(req.uri().path(), req.uri().query()) {
                Ok(r) => {
                    route = r;
                    Ok(resp)
                }
                Err(why) => {
                    let mut refusal = ErrorResponse::new(Some(why.into()));
                    *refusal.status_mut() = StatusCode::BAD_REQUEST;
                    Err(refusal)
                }
            }
        };
        let ws = match tokio_tungstenite::accept_hdr_async(stream, read_route).await {
            Ok(ws) => ws,
            Err(e) => return eprintln!("tungstenite handshake: {e}"),
        };
        let done = match route {
            None => echo(ws).await,
            Some(route) => pubsub(ws, hub.join(route)).await,
        };
        if let Err(e) = done {
            if !matches!(e, Error::ConnectionClosed | Error::AlreadyClosed) {
                eprintln!("tungstenite: {e}");
            }
        }
    }

    async fn echo(ws: WebSocketStream<TcpStream>) -> Result<(), Error> {
        let (write, read) = ws.split();
        read.try_filter(|msg| std::future::ready(msg.is_text() || msg.is_binary()))
            .forward(write)
            .await
    }

    async fn pubsub(
        ws: WebSocketStream<TcpStream>,
        joined: (Member<Message>, Subscription<Message>),
    ) -> Result<(), Error> {
        super::pubsub_stream(ws, joined, |msg| msg.is_text() || msg.is_binary()).await
    }
}

/// fastwebsockets, as its `examples/echo_server.rs`: hyper 1 HTTP/1 with
/// upgrades, `upgrade::upgrade`, a `FragmentCollector` with auto-close and
/// auto-pong, the connection task run `unconstrained`. Pub/sub is below.
mod fastws {
    use super::*;
    use bytes::Bytes;
    use fastwebsockets::{
        upgrade, FragmentCollector, Frame, OpCode, Payload, Role, WebSocket, WebSocketError,
    };
    use http_body_util::Empty;
    use hyper::body::Incoming;
    use hyper::{server::conn::http1, service::service_fn, Request, Response, StatusCode};
    use tokio::io::BufWriter;
    use tokio::sync::mpsc;

    /// A published message; its payload is shared by every subscriber.
    #[derive(Clone)]
    pub struct Shared {
        opcode: OpCode,
        payload: Bytes,
    }

    impl Shared {
        fn frame(&self) -> Frame<'_> {
            Frame::new(true, self.opcode, None, Payload::Borrowed(&self.payload))
        }
    }

    pub async fn serve(stream: TcpStream, hub: Hub<Shared>) {
        let io = hyper_util::rt::TokioIo::new(stream);
        let conn = http1::Builder::new()
            .serve_connection(io, service_fn(|req| upgrade_request(req, hub.clone())))
            .with_upgrades();
        if let Err(e) = conn.await {
            eprintln!("fastwebsockets http: {e}");
        }
    }

    async fn upgrade_request(
        mut req: Request<Incoming>,
        hub: Hub<Shared>,
    ) -> Result<Response<Empty<Bytes>>, WebSocketError> {
        let Ok(route) = Route::of(req.uri().path(), req.uri().query()) else {
            let mut refusal = Response::new(Empty::new());
            *refusal.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(refusal);
        };
        let (response, fut) = upgrade::upgrade(&mut req)?;
        // Subscribed before the 101 goes out, as in ringgate's `on_open`.
        let member = route.map(|route| hub.join(route));
        tokio::spawn(async move {
            let done = match member {
                None => tokio::task::unconstrained(echo(fut)).await,
                Some(member) => tokio::task::unconstrained(pubsub(fut, member)).await,
            };
            if let Err(e) = done {
                if !matches!(
                    e,
                    WebSocketError::UnexpectedEOF | WebSocketError::ConnectionClosed
                ) {
                    eprintln!("fastwebsockets: {e}");
                }
            }
        });
        Ok(response)
    }

    async fn echo(fut: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
        let mut ws = fut.await?;
        ws.set_auto_close(true);
        ws.set_auto_pong(true);
        let mut ws = FragmentCollector::new(ws);
        loop {
            let frame = ws.read_frame().await?;
            match frame.opcode {
                OpCode::Close => return Ok(()),
                OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
                _ => {}
            }
        }
    }

    /// `read_frame` is not cancel-safe, so a subscriber cannot `select!` it
    /// against the channel; it needs a read side and a write side. The crate
    /// has those behind its `unstable-split` feature (not enabled here), so
    /// this does the same with public API: the upgraded stream split by
    /// `tokio::io::split`, each half driven by its own `WebSocket`. The reader
    /// (auto-pong and auto-close off: its write side is a sink) publishes
    /// messages and hands pongs and the close reply to the writer. The
    /// writer's socket is buffered (`write_frame` writes straight to its
    /// stream, one `send` per frame otherwise): the queued messages are
    /// written, then one flush.
    async fn pubsub(
        fut: upgrade::UpgradeFut,
        (member, mut sub): (Member<Shared>, Subscription<Shared>),
    ) -> Result<(), WebSocketError> {
        let (read, write) = tokio::io::split(fut.await?.into_inner());
        let read = tokio::io::join(read, tokio::io::sink());
        let mut reader = WebSocket::after_handshake(read, Role::Server);
        reader.set_auto_close(false);
        reader.set_auto_pong(false);
        let mut reader = FragmentCollector::new(reader);
        let write = tokio::io::join(tokio::io::empty(), BufWriter::new(write));
        let mut writer = WebSocket::after_handshake(write, Role::Server);
        let (replies, mut to_reply) = mpsc::channel::<Frame<'static>>(16);

        let read = async move {
            loop {
                let frame = reader.read_frame().await?;
                match frame.opcode {
                    OpCode::Text | OpCode::Binary => member.publish(Shared {
                        opcode: frame.opcode,
                        payload: into_bytes(frame.payload),
                    }),
                    OpCode::Ping => {
                        let _ = replies.send(Frame::pong(frame.payload)).await;
                    }
                    OpCode::Close => {
                        let _ = replies.send(Frame::close_raw(frame.payload)).await;
                        return Ok(());
                    }
                    _ => {}
                }
            }
        };
        let write = async move {
            loop {
                tokio::select! {
                    biased;
                    reply = to_reply.recv() => {
                        // None: the reader is done and its replies are out.
                        let Some(reply) = reply else { return Ok(()) };
                        writer.write_frame(reply).await?;
                        writer.flush().await?;
                    }
                    msg = sub.recv() => {
                        writer.write_frame(msg.frame()).await?;
                        while let Some(msg) = sub.try_recv() {
                            writer.write_frame(msg.frame()).await?;
                        }
                        writer.flush().await?;
                    }
                }
            }
        };
        tokio::try_join!(read, write).map(|_| ())
    }

    /// A received payload as `Bytes`, without a copy.
    fn into_bytes(payload: Payload<'_>) -> Bytes {
        match payload {
            Payload::Bytes(b) => b.freeze(),
            Payload::Owned(v) => v.into(),
            borrowed => Bytes::copy_from_slice(&borrowed),
        }
    }
}

/// tokio-websockets, as its `examples/echo_server.rs` (the server its
/// benchmarks use): `ServerBuilder` with unlimited frame size and limits, the
/// stream and sink of one `WebSocketStream`, the task run `unconstrained`.
/// Pub/sub `select!`s between the stream and the channel; a `Message` is a
/// shared `Bytes` (cloning it is a refcount) and the sink queues it without a
/// copy, so the queued messages are `feed` and written by one `flush`
/// (vectored). `accept` has already answered 101 when the path is known, so
/// a bad channel is refused with close code 1008 rather than ringgate's 400.
mod tokio_ws {
    use super::*;
    use tokio_websockets::{
        CloseCode, Config, Error, Limits, Message, ServerBuilder, WebSocketStream,
    };

    pub async fn serve(stream: TcpStream, hub: Hub<Message>) {
        tokio::task::unconstrained(async move {
            let accepted = ServerBuilder::new()
                .config(Config::default().frame_size(usize::MAX))
                .limits(Limits::unlimited())
                .accept(stream)
                .await;
            let (request, mut ws) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => return eprintln!("tokio-websockets handshake: {e}"),
            };
            let done = match Route::of(request.uri().path(), request.uri().query()) {
                Ok(None) => return echo(ws).await,
                Ok(Some(route)) => pubsub(ws, hub.join(route)).await,
                Err(why) => {
                    let close = Message::close(Some(CloseCode::POLICY_VIOLATION), why);
                    match ws.feed(close).await {
                        Ok(()) => ws.close().await,
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = done {
                eprintln!("tokio-websockets: {e}");
            }
        })
        .await
    }

    async fn echo(mut ws: WebSocketStream<TcpStream>) {
        while let Some(item) = ws.next().await {
            let msg = match item {
                Ok(msg) => msg,
                Err(e) => return eprintln!("tokio-websockets: {e}"),
            };
            if msg.is_text() || msg.is_binary() {
                if let Err(e) = ws.send(msg).await {
                    return eprintln!("tokio-websockets send: {e}");
                }
            }
        }
    }

    async fn pubsub(
        ws: WebSocketStream<TcpStream>,
        joined: (Member<Message>, Subscription<Message>),
    ) -> Result<(), Error> {
        super::pubsub_stream(ws, joined, |msg| msg.is_text() || msg.is_binary()).await
    }
}
