//! The state of one connection as its shard keeps it: protocol reader, send
//! queue, route and identity, and the clock readings the timers need.
//! Plain data: the logic that changes it lives in the shard.

use std::os::fd::RawFd;

use crate::engine::sendq::SendQueue;
use crate::engine::socket::PeerAddr;
use crate::handler::{ConnCtx, Identity};
use crate::hub::{ConnId, Hub, Subscriptions};
use crate::protocol::reader::{MessageReader, ReaderLimits};

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading the HTTP request head.
    Handshake,
    /// WebSocket frames flow.
    Open,
}

/// How the connection is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    No,
    /// Our close frame is queued; waiting for the peer's until `deadline` (ms).
    AwaitPeer {
        deadline: u64,
    },
    /// Close the socket once the queued output is written.
    AfterFlush,
    /// Close the socket now.
    Now,
}

/// The bytes so far of a request head that did not arrive in one read.
pub(crate) struct PartialHead(pub(crate) Vec<u8>);

/// The subprotocol and identity an upgrade handler chose for a connection.
pub(crate) struct Attached {
    pub(crate) protocol: Option<Box<str>>,
    pub(crate) identity: Option<Identity>,
}

impl Attached {
    /// Boxed, or `None` when there is nothing to keep.
    pub(crate) fn boxed(protocol: Option<String>, identity: Option<Identity>) -> Option<Box<Self>> {
        (protocol.is_some() || identity.is_some()).then(|| {
            Box::new(Self {
                protocol: protocol.map(String::into_boxed_str),
                identity,
            })
        })
    }
}

pub(crate) struct Conn {
    pub(crate) id: ConnId,
    pub(crate) fd: RawFd,
    pub(crate) phase: Phase,
    pub(crate) closing: Closing,
    /// Index of the WebSocket route (valid once open).
    pub(crate) route: usize,
    /// A request head that arrived in pieces (boxed: most arrive whole).
    pub(crate) head: Option<Box<PartialHead>>,
    pub(crate) reader: MessageReader,
    pub(crate) sendq: SendQueue,
    /// What the upgrade handler attached, boxed: most connections have none.
    pub(crate) attached: Option<Box<Attached>>,
    /// Shard clock (ms) at accept.
    pub(crate) accepted_at: u64,
    /// Shard clock (ms) when bytes last arrived.
    pub(crate) last_rx: u64,
    /// Shard clock (ms) since output has been waiting without progress; 0 = none.
    pub(crate) tx_pending_since: u64,
    /// When the next server ping is due (ms).
    pub(crate) next_ping: u64,
    /// A ping is outstanding: the peer must send something by then (ms); 0 = none.
    pub(crate) pong_deadline: u64,
    pub(crate) dirty: bool,
    pub(crate) close_notified: bool,
    /// The accept reported the peer address (kept in the shard's `peers`):
    /// `fd` is a direct descriptor, which getpeername cannot ask.
    pub(crate) peer_known: bool,
}

impl Conn {
    pub(crate) fn new(id: ConnId, fd: RawFd, now: u64) -> Self {
        Self {
            id,
            fd,
            phase: Phase::Handshake,
            closing: Closing::No,
            route: 0,
            head: None,
            reader: MessageReader::new(ReaderLimits::default()),
            sendq: SendQueue::default(),
            attached: None,
            accepted_at: now,
            last_rx: now,
            tx_pending_since: 0,
            next_ping: 0,
            pong_deadline: 0,
            dirty: false,
            close_notified: false,
            peer_known: false,
        }
    }

    /// Splits the connection into its reader and a handler's view of it
    /// (disjoint borrows, so a handler runs while the reader is mid-feed).
    pub(crate) fn split<'a>(
        &'a mut self,
        peer: PeerAddr,
        subs: &'a mut Subscriptions,
        hub: &'a Hub,
        close: &'a mut Option<(u16, String)>,
    ) -> (&'a mut MessageReader, ConnCtx<'a>) {
        let ctx = ConnCtx {
            id: self.id,
            peer,
            protocol: self.attached.as_ref().and_then(|a| a.protocol.as_deref()),
            identity: self.attached.as_ref().and_then(|a| a.identity.as_deref()),
            sendq: &mut self.sendq,
            subs,
            hub,
            close,
        };
        (&mut self.reader, ctx)
    }
}

#[cfg(test)]
mod tests {
    /// The slab entry is most of an idle connection's memory (tuning.md
    /// quotes its size); growing it should be a decision, not an accident.
    #[test]
    fn a_connection_slot_stays_small() {
        assert!(
            std::mem::size_of::<super::Conn>() <= 176,
            "Conn is {} bytes",
            std::mem::size_of::<super::Conn>()
        );
    }
}
