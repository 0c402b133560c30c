//! The state of one connection as its shard keeps it: socket, protocol
//! reader, send queue, route and identity, and the clock readings the timers
//! need. Plain data, visible to the shard's modules only: the logic that
//! changes it lives in the shard, and drivers go through the shard's methods.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::engine::descriptor::Descriptor;
use crate::engine::handoff::Ticket;
use crate::engine::sendq::SendQueue;
use crate::engine::shard::compression::{ConnDeflate, Dedicated, Negotiated};
use crate::engine::socket::PeerAddr;
use crate::handler::{ConnCtx, Identity, ShardScope};
use crate::hub::ConnId;
use crate::protocol::handshake::UpgradeInfo;
use crate::protocol::reader::{MessageReader, ReaderLimits};

/// Where the connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Reading the HTTP request head.
    Handshake,
    /// The route's handler deferred its answer to the upgrade: parked,
    /// until the answer, the upgrade timeout or the peer's going.
    Upgrading,
    /// WebSocket frames flow.
    Open,
    /// A plain HTTP request: the socket goes to the control plane once the
    /// driver has no operation on it; bytes arriving meanwhile are kept.
    HandOff,
}

/// How the connection is being closed. Every state but `No` ends in a freed
/// slot by its deadline at the latest, whatever the peer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Closing {
    No,
    /// Our close frame is queued; waiting for the peer's until `deadline` (ms).
    AwaitPeer {
        deadline: u64,
    },
    /// Close the socket once the queued output is written, or at `deadline`.
    AfterFlush {
        deadline: u64,
    },
    /// Close the socket now; `reset` drops it abortively (RST, no lingering
    /// kernel buffers), for peers that stopped taking data or timed out.
    Now {
        reset: bool,
    },
}

impl Closing {
    /// True once received bytes no longer matter.
    pub(super) fn ignores_input(self) -> bool {
        matches!(self, Closing::AfterFlush { .. } | Closing::Now { .. })
    }
}

/// The bytes so far of a request head that did not arrive in one read; for a
/// connection being handed off, every byte read and its place in the
/// control plane; for a parked upgrade, what it waits with and the bytes
/// that came after its head.
pub(super) struct PartialHead {
    pub(super) bytes: Vec<u8>,
    pub(super) ticket: Option<Ticket>,
    pub(super) parked: Option<ParkedUpgrade>,
}

impl PartialHead {
    pub(super) fn boxed(bytes: Vec<u8>) -> Box<Self> {
        Box::new(Self {
            bytes,
            ticket: None,
            parked: None,
        })
    }

    /// Tells whoever works on a parked upgrade's answer that it would be
    /// dropped.
    pub(super) fn forsake(&self) {
        if let Some(parked) = &self.parked {
            parked.wanted.store(false, Ordering::Relaxed);
        }
    }
}

/// An upgrade waiting for its handler's answer: what the 101 needs.
pub(super) struct ParkedUpgrade {
    pub(super) route: usize,
    pub(super) info: UpgradeInfo,
    /// The request path, for log lines.
    pub(super) path: Box<str>,
    /// Shard clock (ms) when the wait ends with a 503.
    pub(super) deadline: u64,
    /// Shared with the [`crate::PendingUpgrade`]: cleared once an answer
    /// would be dropped.
    pub(super) wanted: Arc<AtomicBool>,
}

/// The subprotocol, identity and label an upgrade handler chose for a connection.
pub(crate) struct Attached {
    pub(super) protocol: Option<Box<str>>,
    pub(super) identity: Option<Identity>,
    pub(super) label: Option<Box<str>>,
    /// A dedicated-mode connection's permessage-deflate codecs.
    pub(super) dedicated: Option<Box<Dedicated>>,
}

impl Attached {
    /// Boxed, or `None` when there is nothing to keep.
    pub(super) fn boxed(
        protocol: Option<String>,
        identity: Option<Identity>,
        label: Option<String>,
        dedicated: Option<Box<Dedicated>>,
    ) -> Option<Box<Self>> {
        let some = protocol.is_some() || identity.is_some() || label.is_some();
        (some || dedicated.is_some()).then(|| {
            Box::new(Self {
                protocol: protocol.map(String::into_boxed_str),
                identity,
                label: label.map(String::into_boxed_str),
                dedicated,
            })
        })
    }
}

pub(super) struct Conn {
    pub(super) id: ConnId,
    pub(super) socket: Descriptor,
    pub(super) phase: Phase,
    pub(super) closing: Closing,
    /// Index of the WebSocket route (valid once open).
    pub(super) route: u16,
    /// Admitted from the admin reserve past MAX_CONNECTIONS: plain HTTP only.
    pub(super) reserve: bool,
    pub(super) dirty: bool,
    pub(super) close_notified: bool,
    /// A request head that arrived in pieces (boxed: most arrive whole).
    pub(super) head: Option<Box<PartialHead>>,
    pub(super) reader: MessageReader,
    pub(super) sendq: SendQueue,
    /// permessage-deflate, when negotiated.
    pub(super) deflate: Negotiated,
    /// What the upgrade handler attached, boxed: most connections have none.
    pub(super) attached: Option<Box<Attached>>,
    /// Shard clock (ms) at accept.
    pub(super) accepted_at: u64,
    /// Shard clock (ms) when bytes last arrived.
    pub(super) last_rx: u64,
    /// When the next server ping is due (ms).
    pub(super) next_ping: u64,
    /// A ping is outstanding: the peer must send something by then (ms); 0 = none.
    pub(super) pong_deadline: u64,
}

impl Conn {
    pub(super) fn new(id: ConnId, socket: Descriptor, reserve: bool, now: u64) -> Self {
        Self {
            id,
            socket,
            phase: Phase::Handshake,
            closing: Closing::No,
            route: 0,
            reserve,
            dirty: false,
            close_notified: false,
            head: None,
            reader: MessageReader::new(ReaderLimits::default()),
            sendq: SendQueue::default(),
            deflate: Negotiated::Off,
            attached: None,
            accepted_at: now,
            last_rx: now,
            next_ping: 0,
            pong_deadline: 0,
        }
    }

    /// Splits the connection into its reader and a handler's view of it
    /// (disjoint borrows, so a handler runs while the reader is mid-feed).
    pub(super) fn split<'a>(
        &'a mut self,
        peer: PeerAddr,
        shard: ShardScope<'a>,
    ) -> (&'a mut MessageReader, ConnCtx<'a>) {
        let (protocol, identity, dedicated) = match self.attached.as_deref_mut() {
            Some(a) => (
                a.protocol.as_deref(),
                a.identity.as_deref_mut(),
                a.dedicated.as_deref_mut(),
            ),
            None => (None, None, None),
        };
        let ctx = ConnCtx {
            id: self.id,
            peer,
            protocol,
            identity,
            sendq: &mut self.sendq,
            deflate: ConnDeflate::new(self.deflate, dedicated),
            shard,
            sent: 0,
        };
        (&mut self.reader, ctx)
    }

    /// The connection's side of compression and its send queue, for a send
    /// from outside a handler callback.
    pub(super) fn deflate_and_sendq(&mut self) -> (ConnDeflate<'_>, &mut SendQueue) {
        let dedicated = self
            .attached
            .as_deref_mut()
            .and_then(|a| a.dedicated.as_deref_mut());
        (ConnDeflate::new(self.deflate, dedicated), &mut self.sendq)
    }
}

#[cfg(test)]
mod tests {
    /// The slab entry is most of an idle connection's memory (tuning.md
    /// quotes its size); growing it should be a decision, not an accident.
    #[test]
    fn a_connection_slot_stays_small() {
        assert!(
            std::mem::size_of::<super::Conn>() <= 168,
            "Conn is {} bytes",
            std::mem::size_of::<super::Conn>()
        );
    }
}
