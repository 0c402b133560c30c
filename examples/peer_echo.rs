//! Peer WebSocket echo servers for `scripts/compare.sh`, which runs them side
//! by side with ringgate's `/echo` route.
//!
//! ```text
//! cargo run --release --example peer_echo -- --impl tungstenite|fastwebsockets|tokio-websockets [--host 127.0.0.1] [--port 0]
//! ```
//!
//! Each implementation is written the way the crate's own echo example and
//! benchmark server write it: one current-thread tokio runtime, one task per
//! connection, text and binary messages echoed, pings and closes answered by
//! the library, any path accepted. Two things differ from those examples, so
//! that the socket setup matches ringgate's and only the WebSocket code is
//! compared: the listen backlog is 4096 (tokio's default of 128 overflows with
//! 500 handshakes in flight, and the benchmark then measures the SYN
//! retransmit timer) and accepted sockets get `TCP_NODELAY`.
//!
//! When ready it prints `listening on HOST:PORT` on stdout, as ringgate does.

use std::io::Write as _;
use std::net::SocketAddr;

use futures_util::{SinkExt as _, StreamExt as _, TryStreamExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const BACKLOG: u32 = 4096;
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
        match imp {
            Impl::Tungstenite => tokio::spawn(tungstenite::serve(stream)),
            Impl::FastWebSockets => tokio::spawn(fastws::serve(stream)),
            Impl::TokioWebSockets => tokio::spawn(tokio_ws::serve(stream)),
        };
    }
}

/// tokio-tungstenite, as its `examples/echo-server.rs`: `accept_async` with the
/// default config, then the read half forwarded into the write half.
mod tungstenite {
    use super::*;

    pub async fn serve(stream: TcpStream) {
        let ws = match tokio_tungstenite::accept_async(stream).await {
            Ok(ws) => ws,
            Err(e) => return eprintln!("tungstenite handshake: {e}"),
        };
        let (write, read) = ws.split();
        let echoed = read
            .try_filter(|msg| std::future::ready(msg.is_text() || msg.is_binary()))
            .forward(write)
            .await;
        if let Err(e) = echoed {
            use tokio_tungstenite::tungstenite::Error;
            if !matches!(e, Error::ConnectionClosed | Error::AlreadyClosed) {
                eprintln!("tungstenite: {e}");
            }
        }
    }
}

/// fastwebsockets, as its `examples/echo_server.rs`: hyper 1 HTTP/1 with
/// upgrades, `upgrade::upgrade`, a `FragmentCollector` with auto-close and
/// auto-pong, the connection task run `unconstrained`.
mod fastws {
    use super::*;
    use fastwebsockets::{upgrade, FragmentCollector, OpCode, WebSocketError};
    use http_body_util::Empty;
    use hyper::body::{Bytes, Incoming};
    use hyper::{server::conn::http1, service::service_fn, Request, Response};

    pub async fn serve(stream: TcpStream) {
        let io = hyper_util::rt::TokioIo::new(stream);
        let conn = http1::Builder::new()
            .serve_connection(io, service_fn(upgrade_request))
            .with_upgrades();
        if let Err(e) = conn.await {
            eprintln!("fastwebsockets http: {e}");
        }
    }

    async fn upgrade_request(
        mut req: Request<Incoming>,
    ) -> Result<Response<Empty<Bytes>>, WebSocketError> {
        let (response, fut) = upgrade::upgrade(&mut req)?;
        tokio::spawn(async move {
            if let Err(e) = tokio::task::unconstrained(echo(fut)).await {
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
}

/// tokio-websockets, as its `examples/echo_server.rs` (the server its
/// benchmarks use): `ServerBuilder` with unlimited frame size and limits, the
/// stream and sink of one `WebSocketStream`, the task run `unconstrained`.
mod tokio_ws {
    use super::*;
    use tokio_websockets::{Config, Limits, ServerBuilder};

    pub async fn serve(stream: TcpStream) {
        tokio::task::unconstrained(async move {
            let accepted = ServerBuilder::new()
                .config(Config::default().frame_size(usize::MAX))
                .limits(Limits::unlimited())
                .accept(stream)
                .await;
            let mut ws = match accepted {
                Ok((_request, ws)) => ws,
                Err(e) => return eprintln!("tokio-websockets handshake: {e}"),
            };
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
        })
        .await
    }
}
