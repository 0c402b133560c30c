//! Pub/sub on the library API, the target of `ringgate-load fanout`: every
//! connection to `/pubsub?channel=NAME` (default `bench`) subscribes to that
//! channel, except publishers (`&role=pub`), and every message any connection
//! sends is broadcast to the channel on every shard (the hub encodes the frame
//! once and shares it). Flags and environment are the `ringgate` binary's
//! (`--port`, `--shards`, `RINGGATE_SHARDS`, ...); the host defaults to
//! 127.0.0.1. Logs go to stderr (`LOG_LEVEL`); SIGTERM drains like the binary.
//!
//! Run: `RINGGATE_SHARDS=1 cargo run --release --example pubsub -- --port 0`
//! (prints `listening on 127.0.0.1:PORT`), then
//! `ringgate-load fanout --url 'ws://127.0.0.1:PORT/pubsub?channel=bench' -c 1000 --rate 1000`.

use std::io::{IsTerminal as _, Write as _};

use clap::Parser as _;
use mimalloc::MiMalloc;
use ringgate::config::Cli;
use ringgate::{Accept, Config, ConnCtx, Handler, Message, Reject, Server, UpgradeRequest};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// What a connection joined, attached at upgrade.
struct Peer {
    channel: String,
    publisher: bool,
}

struct PubSub;

impl Handler for PubSub {
    fn on_upgrade(&self, req: &UpgradeRequest<'_>) -> Result<Accept, Reject> {
        let channel = req.query_param("channel").unwrap_or_else(|| "bench".into());
        if channel.is_empty() || channel.len() > 64 {
            return Err(Reject::new(
                400,
                "bad_channel",
                "channel must be 1..=64 bytes",
            ));
        }
        let publisher = req.query_param("role").as_deref() == Some("pub");
        Ok(Accept::new().identity(Peer { channel, publisher }))
    }

    fn on_open(&self, ctx: &mut ConnCtx<'_>) {
        let channel = match ctx.identity::<Peer>() {
            Some(peer) if !peer.publisher => peer.channel.clone(),
            _ => return,
        };
        ctx.subscribe(&channel);
    }

    fn on_message(&self, ctx: &mut ConnCtx<'_>, msg: Message<'_>) {
        if let Some(peer) = ctx.identity::<Peer>() {
            if let Err(e) = ctx.hub().broadcast(&peer.channel, msg) {
                eprintln!("broadcast failed: {e}");
            }
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let env = |key: &str| {
        let default = (key == "SERVER_HOST").then(|| "127.0.0.1".to_owned());
        std::env::var(key).ok().or(default)
    };
    let mut config = Config::load(cli.config.as_deref(), &env)?;
    cli.apply(&mut config)?;
    config.validate()?;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(&config.log_level))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let signals = Signals::new([SIGTERM, SIGINT])?;
    let handle = Server::builder(config)
        .websocket("/pubsub", PubSub)
        .start()?;
    println!("listening on {}", handle.local_addr());
    std::io::stdout().flush()?;
    handle.stopper().on_signals(signals);
    handle.join()?;
    Ok(())
}
