//! Cross-shard work: a cloneable [`Hub`] handle that any thread uses to send to
//! a connection, broadcast to a channel, or close a connection. Each shard has
//! a lock-free mailbox and a waker; the hub never touches connection state, it
//! only posts commands that the owning shard carries out.

mod subscriptions;
mod waker;

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};

use crate::handler::Message;
use crate::protocol::writer::encode_frame;

pub use subscriptions::Subscriptions;
pub(crate) use waker::Waker;

/// A connection's id: its shard, a per-shard serial, and its slab slot.
/// Stable for the connection's life; never reused while it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    pub(crate) fn new(shard: usize, serial: u16, slot: u32) -> Self {
        Self(((shard as u64) << 48) | ((serial as u64) << 32) | slot as u64)
    }
    /// The shard that owns the connection.
    pub fn shard(self) -> usize {
        (self.0 >> 48) as usize
    }
    pub(crate) fn slot(self) -> u32 {
        self.0 as u32
    }
    /// The raw 64-bit value.
    pub fn as_u64(self) -> u64 {
        self.0
    }
    /// Rebuilds an id from [`ConnId::as_u64`].
    pub fn from_u64(raw: u64) -> Self {
        Self(raw)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Errors of hub calls.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("no shard {0}")]
    NoSuchShard(usize),
    #[error("the server is shut down")]
    Stopped,
}

/// A pre-encoded server frame shared by every connection it goes to.
pub(crate) type SharedFrame = Bytes;

/// What a shard's mailbox carries.
pub(crate) enum Command {
    Send(ConnId, SharedFrame),
    Broadcast(Arc<str>, SharedFrame),
    Subscribe(ConnId, Arc<str>),
    Unsubscribe(ConnId, Arc<str>),
    Close(ConnId, u16, String),
    Shutdown,
}

/// Counters one shard writes and anyone may read.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct ShardCounters {
    pub(crate) connections: AtomicUsize,
    pub(crate) messages_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
}

/// One shard's figures in [`HubStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardStats {
    pub connections: usize,
    pub messages_in: u64,
    pub messages_out: u64,
}

/// A snapshot of the server's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubStats {
    /// Open WebSocket connections, all shards.
    pub connections: usize,
    pub shards: Vec<ShardStats>,
}

pub(crate) struct Mailbox {
    pub(crate) tx: Sender<Command>,
    pub(crate) waker: Arc<Waker>,
}

struct HubInner {
    mailboxes: Vec<Mailbox>,
    counters: Vec<Arc<ShardCounters>>,
}

/// The cross-shard handle. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

/// The receiving end a shard keeps.
pub(crate) struct ShardInbox {
    pub(crate) rx: Receiver<Command>,
    pub(crate) waker: Arc<Waker>,
    pub(crate) counters: Arc<ShardCounters>,
}

impl Hub {
    /// Creates the hub and one inbox per shard.
    pub(crate) fn new(shards: usize) -> std::io::Result<(Hub, Vec<ShardInbox>)> {
        let mut mailboxes = Vec::with_capacity(shards);
        let mut inboxes = Vec::with_capacity(shards);
        let mut counters = Vec::with_capacity(shards);
        for _ in 0..shards {
            let (tx, rx) = crossbeam_channel::unbounded();
            let waker = Arc::new(Waker::new()?);
            let shard_counters = Arc::new(ShardCounters::default());
            mailboxes.push(Mailbox {
                tx,
                waker: waker.clone(),
            });
            counters.push(shard_counters.clone());
            inboxes.push(ShardInbox {
                rx,
                waker,
                counters: shard_counters,
            });
        }
        let inner = Arc::new(HubInner {
            mailboxes,
            counters,
        });
        Ok((Hub { inner }, inboxes))
    }

    fn post(&self, shard: usize, cmd: Command) -> Result<(), HubError> {
        let mailbox = self
            .inner
            .mailboxes
            .get(shard)
            .ok_or(HubError::NoSuchShard(shard))?;
        mailbox.tx.send(cmd).map_err(|_| HubError::Stopped)?;
        mailbox.waker.wake();
        Ok(())
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.inner.mailboxes.len()
    }

    /// Sends `msg` to one connection. Fire-and-forget: a connection that has
    /// gone by the time its shard reads the command is skipped silently.
    pub fn send(&self, id: ConnId, msg: Message<'_>) -> Result<(), HubError> {
        self.post(id.shard(), Command::Send(id, encode_shared(msg)))
    }

    /// Sends `msg` to every connection subscribed to `channel`, on every shard.
    /// The frame is encoded once and shared by all of them.
    pub fn broadcast(&self, channel: &str, msg: Message<'_>) -> Result<(), HubError> {
        let frame = encode_shared(msg);
        let channel: Arc<str> = Arc::from(channel);
        for shard in 0..self.shards() {
            self.post(shard, Command::Broadcast(channel.clone(), frame.clone()))?;
        }
        Ok(())
    }

    /// Subscribes a connection (on any shard) to `channel`.
    pub fn subscribe(&self, id: ConnId, channel: &str) -> Result<(), HubError> {
        self.post(id.shard(), Command::Subscribe(id, Arc::from(channel)))
    }

    /// Removes a connection from `channel`.
    pub fn unsubscribe(&self, id: ConnId, channel: &str) -> Result<(), HubError> {
        self.post(id.shard(), Command::Unsubscribe(id, Arc::from(channel)))
    }

    /// Starts the close handshake of a connection with `code` and `reason`.
    pub fn close(&self, id: ConnId, code: u16, reason: &str) -> Result<(), HubError> {
        self.post(id.shard(), Command::Close(id, code, reason.to_owned()))
    }

    /// Asks every shard to stop accepting and close its connections with 1001.
    pub(crate) fn shutdown(&self) {
        for shard in 0..self.shards() {
            // A shard that already exited has nothing left to close.
            let _ = self.post(shard, Command::Shutdown);
        }
    }

    /// A snapshot of every shard's counters.
    pub fn stats(&self) -> HubStats {
        let shards: Vec<ShardStats> = self
            .inner
            .counters
            .iter()
            .map(|c| ShardStats {
                connections: c.connections.load(Ordering::Relaxed),
                messages_in: c.messages_in.load(Ordering::Relaxed),
                messages_out: c.messages_out.load(Ordering::Relaxed),
            })
            .collect();
        HubStats {
            connections: shards.iter().map(|s| s.connections).sum(),
            shards,
        }
    }
}

fn encode_shared(msg: Message<'_>) -> SharedFrame {
    let mut out = Vec::with_capacity(msg.as_bytes().len() + 10);
    encode_frame(&mut out, msg.opcode(), msg.as_bytes());
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_id_round_trips_its_parts() {
        let id = ConnId::new(3, 0xBEEF, 123_456);
        assert_eq!(id.shard(), 3);
        assert_eq!(id.slot(), 123_456);
        assert_eq!(ConnId::from_u64(id.as_u64()), id);
    }

    #[test]
    fn posting_to_a_missing_shard_is_an_error() {
        let (hub, _inboxes) = Hub::new(2).unwrap();
        let id = ConnId::new(5, 0, 0);
        assert_eq!(
            hub.send(id, Message::Text("x")),
            Err(HubError::NoSuchShard(5))
        );
    }

    #[test]
    fn broadcast_reaches_every_shard_with_one_shared_frame() {
        let (hub, inboxes) = Hub::new(2).unwrap();
        hub.broadcast("room", Message::Text("hi")).unwrap();
        let mut ptrs = Vec::new();
        for inbox in &inboxes {
            match inbox.rx.try_recv().unwrap() {
                Command::Broadcast(ch, frame) => {
                    assert_eq!(&*ch, "room");
                    assert_eq!(&frame[..], &[0x81, 2, b'h', b'i']);
                    ptrs.push(frame.as_ptr());
                }
                _ => panic!("expected a broadcast"),
            }
        }
        assert_eq!(ptrs[0], ptrs[1], "the encoded frame is shared, not copied");
    }
}
